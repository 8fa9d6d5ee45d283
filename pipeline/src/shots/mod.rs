//! Shot detection and chunk planning.
//!
//! The ingest pass feeds every decoded frame to a [`Detector`]; at the end, the cuts become
//! shots, and the shots become encode chunks under [`ChunkRules`]. The result is a
//! [`ShotReport`], which `rungs shots` prints.

mod chunks;
mod detector;
mod features;

use media::Rational;
use serde::Serialize;

pub use chunks::{
    BoundaryReason, ChunkRules, ChunkRulesError, DEFAULT_MAX_CHUNK_SECONDS,
    DEFAULT_MIN_CHUNK_SECONDS,
};
pub use detector::{
    DEFAULT_DETECTOR, DetectedCut, Detector, DetectorParams, DetectorParamsError, FrameScore,
};
pub(crate) use features::Features;

use crate::round_ms;

/// Where the shots and chunks of a master are.
#[derive(Clone, Debug, Serialize)]
pub struct ShotReport {
    /// Frames in the video.
    pub frames: u64,
    /// The frame rate the chunk rules were applied at.
    pub frame_rate: Rational,
    /// The detected cuts, in order.
    pub cuts: Vec<Cut>,
    /// The shots between the cuts.
    pub shots: Vec<Segment>,
    /// The encode chunks.
    pub chunks: Vec<Chunk>,
    /// The rules the chunks obey.
    pub chunk_rules: ChunkRules,
    /// The detector settings used.
    pub detector: DetectorParams,
    /// Every frame's score, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scores: Option<Vec<FrameScore>>,
}

/// A scene cut: the first frame of a new shot.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Cut {
    /// Frame index in presentation order.
    pub frame: u64,
    /// Presentation timestamp in the stream's time base.
    pub pts: Option<i64>,
    /// Presentation time in seconds.
    pub seconds: f64,
    /// The detector's score for it.
    pub score: f32,
}

/// A shot.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Segment {
    /// Position in the list.
    pub index: usize,
    /// First frame.
    pub start_frame: u64,
    /// Frame count.
    pub frames: u64,
    /// Start time in seconds.
    pub start_seconds: f64,
    /// Duration in seconds.
    pub duration_seconds: f64,
}

/// An encode chunk.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Chunk {
    /// Position in the list.
    pub index: usize,
    /// First frame.
    pub start_frame: u64,
    /// Frame count.
    pub frames: u64,
    /// Presentation timestamp of the first frame in the stream's time base.
    pub start_pts: Option<i64>,
    /// Start time in seconds.
    pub start_seconds: f64,
    /// Duration in seconds.
    pub duration_seconds: f64,
    /// Why the chunk starts here.
    pub reason: BoundaryReason,
    /// Cuts inside this chunk that were merged away because their shots were too short.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub merged_cuts: Vec<u64>,
}

/// The frame timeline the report is expressed in.
pub(crate) struct Timeline<'a> {
    /// Presentation timestamp of every frame, in order.
    pub pts: &'a [Option<i64>],
    pub time_base: Rational,
    pub frame_rate: Rational,
    pub start_seconds: f64,
}

impl Timeline<'_> {
    fn fps(&self) -> f64 {
        self.frame_rate.to_f64().unwrap_or(25.0)
    }

    /// Seconds from the start of the video to frame `i`.
    fn seconds(&self, i: u64) -> f64 {
        match self.pts.get(i as usize).copied().flatten() {
            Some(p) => self.time_base.seconds(p) - self.start_seconds,
            None => i as f64 / self.fps(),
        }
    }

    fn span(&self, start: u64, end: u64) -> (f64, f64) {
        let s = self.seconds(start);
        let e = if (end as usize) < self.pts.len() {
            self.seconds(end)
        } else {
            self.seconds(end.saturating_sub(1)) + 1.0 / self.fps()
        };
        (round_ms(s), round_ms(e - s))
    }
}

/// Builds the report from the detected cuts.
pub(crate) fn report(
    cuts: &[DetectedCut],
    scores: Option<Vec<FrameScore>>,
    timeline: &Timeline<'_>,
    rules: &ChunkRules,
    detector: &DetectorParams,
) -> ShotReport {
    let frames = timeline.pts.len() as u64;
    let cut_frames: Vec<u64> = cuts.iter().map(|c| c.frame).collect();
    let bounds: Vec<u64> = std::iter::once(0)
        .chain(cut_frames.iter().copied())
        .collect();
    let shots = bounds
        .iter()
        .zip(bounds.iter().skip(1).chain(std::iter::once(&frames)))
        .enumerate()
        .map(|(index, (&start, &end))| {
            let (start_seconds, duration_seconds) = timeline.span(start, end);
            Segment {
                index,
                start_frame: start,
                frames: end - start,
                start_seconds,
                duration_seconds,
            }
        })
        .collect();
    let chunks = chunks::plan(frames, timeline.fps(), &cut_frames, rules)
        .into_iter()
        .enumerate()
        .map(|(index, s)| {
            let (start_seconds, duration_seconds) = timeline.span(s.start, s.end);
            Chunk {
                index,
                start_frame: s.start,
                frames: s.end - s.start,
                start_pts: timeline.pts.get(s.start as usize).copied().flatten(),
                start_seconds,
                duration_seconds,
                reason: s.reason,
                merged_cuts: s.merged_cuts,
            }
        })
        .collect();
    ShotReport {
        frames,
        frame_rate: timeline.frame_rate,
        cuts: cuts
            .iter()
            .map(|c| Cut {
                frame: c.frame,
                pts: timeline.pts.get(c.frame as usize).copied().flatten(),
                seconds: round_ms(timeline.seconds(c.frame)),
                score: (c.score * 1000.0).round() / 1000.0,
            })
            .collect(),
        shots,
        chunks,
        chunk_rules: rules.clone(),
        detector: detector.clone(),
        scores,
    }
}
