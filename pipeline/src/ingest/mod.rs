//! Ingest: probe and validate a master in one decode pass, computing shot statistics on the way.
//!
//! [`analyze`] opens the master, checks its container structure, decodes every video and audio
//! packet once, and reports every problem it meets with its kind, a message, and where it is
//! (time, frame, byte). When asked, the same pass feeds the shot detector, so `rungs validate
//! --shots` and `rungs shots` decode the master only once.

pub mod problem;
mod scan;
mod structure;
mod timing;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use media::MediaInfo;
use serde::Serialize;

use crate::shots::{ChunkRules, ChunkRulesError, DetectorParams, DetectorParamsError, ShotReport};
pub use problem::{Problem, ProblemKind, Severity};
pub use timing::Timing;

/// Default tolerance between audio and video durations, in seconds.
pub const DEFAULT_AV_TOLERANCE_SECONDS: f64 = 1.0;
/// Default smallest width or height accepted.
pub const DEFAULT_MIN_DIMENSION: u32 = 16;
/// Default largest width or height accepted.
pub const DEFAULT_MAX_DIMENSION: u32 = 16_384;
/// Default largest number of video frames accepted: over 9 hours at 60 fps.
pub const DEFAULT_MAX_FRAMES: u64 = 2_000_000;
/// Default widest display aspect ratio accepted (either way round).
pub const DEFAULT_MAX_ASPECT: f64 = 10.0;
/// Default number of problems of one kind listed one by one; the rest are counted.
pub const DEFAULT_MAX_LISTED: usize = 50;

/// How to ingest a master.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct IngestOptions {
    /// Shot detection settings; `None` skips shot detection.
    pub shots: Option<ShotOptions>,
    /// Largest accepted difference between audio and video durations, in seconds.
    pub av_tolerance_seconds: f64,
    /// Smallest accepted width or height.
    pub min_dimension: u32,
    /// Largest accepted width or height.
    pub max_dimension: u32,
    /// Most video frames accepted; decoding stops past it.
    pub max_frames: u64,
    /// Widest accepted display aspect ratio, either way round.
    pub max_aspect: f64,
    /// Decoder threads; 0 picks one per core.
    pub threads: usize,
    /// Problems of one kind listed one by one; the rest are counted.
    pub max_listed: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            shots: None,
            av_tolerance_seconds: DEFAULT_AV_TOLERANCE_SECONDS,
            min_dimension: DEFAULT_MIN_DIMENSION,
            max_dimension: DEFAULT_MAX_DIMENSION,
            max_frames: DEFAULT_MAX_FRAMES,
            max_aspect: DEFAULT_MAX_ASPECT,
            threads: 0,
            max_listed: DEFAULT_MAX_LISTED,
        }
    }
}

impl IngestOptions {
    /// Checks the options, naming the bad value and the allowed range.
    pub fn validate(&self) -> Result<(), IngestError> {
        if !self.av_tolerance_seconds.is_finite() || self.av_tolerance_seconds < 0.0 {
            return Err(OptionsError::AvTolerance(self.av_tolerance_seconds).into());
        }
        if self.min_dimension == 0 || self.min_dimension > self.max_dimension {
            return Err(OptionsError::Dimensions {
                min: self.min_dimension,
                max: self.max_dimension,
            }
            .into());
        }
        if self.max_frames == 0 {
            return Err(OptionsError::MaxFrames.into());
        }
        if !self.max_aspect.is_finite() || self.max_aspect < 1.0 {
            return Err(OptionsError::MaxAspect(self.max_aspect).into());
        }
        if let Some(s) = &self.shots {
            s.rules.validate().map_err(OptionsError::from)?;
            s.detector.validate().map_err(OptionsError::from)?;
        }
        Ok(())
    }
}

/// Shot detection settings for an ingest pass.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ShotOptions {
    /// How long chunks may be.
    pub rules: ChunkRules,
    /// Detector settings.
    pub detector: DetectorParams,
    /// Keep every frame's score in the report.
    pub keep_scores: bool,
}

/// Why ingest could not produce a report at all.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The master could not be read from disk (missing, a directory, no permission).
    #[error("cannot read master {path}: {error}")]
    Io {
        /// The master.
        path: PathBuf,
        /// What the OS said (part of the message).
        error: std::io::Error,
    },
    /// The options are invalid.
    #[error(transparent)]
    Config(#[from] OptionsError),
}

/// Which ingest option is invalid, with its value and the allowed range.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OptionsError {
    /// The A/V tolerance is negative or not a number.
    #[error("invalid A/V tolerance {0} s (expected >= 0)")]
    AvTolerance(f64),
    /// The dimension limits start at zero or are the wrong way round.
    #[error("invalid dimension limits {min}..{max} (expected 1 <= min <= max)")]
    Dimensions {
        /// The smallest width or height given.
        min: u32,
        /// The largest width or height given.
        max: u32,
    },
    /// The frame limit is zero.
    #[error("invalid frame limit 0 (expected >= 1)")]
    MaxFrames,
    /// The maximum aspect ratio is below 1 or not a number.
    #[error("invalid maximum aspect ratio {0} (expected >= 1)")]
    MaxAspect(f64),
    /// The chunk rules are invalid.
    #[error(transparent)]
    Chunks(#[from] ChunkRulesError),
    /// The shot detector settings are invalid.
    #[error(transparent)]
    Detector(#[from] DetectorParamsError),
}

/// Progress of a decode pass.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Media time reached, in seconds.
    pub seconds: f64,
    /// Media duration, in seconds, when known.
    pub total_seconds: Option<f64>,
    /// Video frames decoded.
    pub frames: u64,
}

/// The result of ingesting a master.
#[derive(Clone, Debug, Serialize)]
pub struct IngestReport {
    /// The master as given.
    pub master: PathBuf,
    /// True when no problem of error severity was found.
    pub accepted: bool,
    /// Problems of each kind, including those not listed one by one.
    pub problem_counts: BTreeMap<ProblemKind, u64>,
    /// The problems, in the order found.
    pub problems: Vec<Problem>,
    /// What the container declares, when it could be opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<MediaInfo>,
    /// What decoding the video found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoSummary>,
    /// What decoding each audio stream found.
    pub audio: Vec<AudioSummary>,
    /// Packets read from the file in the one pass (all streams).
    pub packets_read: u64,
    /// Shots and chunks, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shots: Option<ShotReport>,
}

impl IngestReport {
    /// Problems of error severity.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }

    /// True if a problem of this kind was found.
    pub fn has(&self, kind: ProblemKind) -> bool {
        self.problem_counts.get(&kind).is_some_and(|&n| n > 0)
    }
}

/// What decoding the video stream found.
#[derive(Clone, Debug, Serialize)]
pub struct VideoSummary {
    /// Stream index.
    pub stream: usize,
    /// Codec name.
    pub codec: String,
    /// Width of the first frame.
    pub width: u32,
    /// Height of the first frame.
    pub height: u32,
    /// The timestamps' verdict.
    pub timing: Timing,
    /// Frames flagged interlaced by the decoder.
    pub interlaced_frames: u64,
    /// Frames flagged corrupt by the decoder.
    pub corrupt_frames: u64,
}

/// What decoding one audio stream found.
#[derive(Clone, Debug, Serialize)]
pub struct AudioSummary {
    /// Stream index.
    pub stream: usize,
    /// Language tag, when set.
    pub language: Option<String>,
    /// Samples per second.
    pub sample_rate: u32,
    /// Samples per channel decoded.
    pub samples: u64,
    /// First presentation time, in seconds.
    pub start_seconds: Option<f64>,
    /// Decoded duration in seconds.
    pub duration_seconds: f64,
    /// Frames flagged corrupt by the decoder.
    pub corrupt_frames: u64,
}

/// Probes, validates and (optionally) finds the shots of `path` in one decode pass.
///
/// Every problem with the master goes into the report. Only a master that cannot be read from
/// disk at all, or invalid options, give an error.
pub fn analyze(
    path: &Path,
    options: &IngestOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<IngestReport, IngestError> {
    options.validate()?;
    let meta = std::fs::metadata(path).map_err(|error| IngestError::Io {
        path: path.to_owned(),
        error,
    })?;
    if meta.is_dir() {
        return Err(IngestError::Io {
            path: path.to_owned(),
            error: std::io::Error::new(std::io::ErrorKind::IsADirectory, "it is a directory"),
        });
    }
    scan::run(path, meta.len(), options, progress)
}
