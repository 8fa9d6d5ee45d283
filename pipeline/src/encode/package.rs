//! The last step of `rungs encode`: the assembled renditions, the master's audio tracks, extra
//! audio and subtitle files and trick-play thumbnails packaged as one CMAF title for DASH and
//! HLS in the output folder (`master.m3u8`, `manifest.mpd`, `video/`, `audio/`, `text/`,
//! `thumbs/`).

use std::path::{Path, PathBuf};

use media::Demuxer;
use packager::audio::AudioSource;
use packager::package::{self, Settings, Sources, SubtitleSource, VideoSource};
use packager::sink::Sink;
use serde::{Deserialize, Serialize};

/// What to package besides the renditions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PackageOptions {
    /// Segment duration, audio bit rate, thumbnail layout.
    pub settings: Settings,
    /// Extra audio files (their first audio stream) with their language and role.
    pub audio: Vec<(PathBuf, TrackLabel)>,
    /// Subtitle files (SRT or WebVTT) with their language and role.
    pub subtitles: Vec<(PathBuf, TrackLabel)>,
    /// Make trick-play thumbnails.
    pub thumbnails: bool,
}

/// An extra track's language, and its role when it is not the language's main track (forced
/// narrative or SDH subtitles, an audio description). A main track serialises as its language
/// alone, as before roles existed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackLabel {
    /// The language (BCP 47 or ISO 639).
    pub language: String,
    /// What the track is for.
    pub role: packager::presentation::Role,
}

impl TrackLabel {
    /// The language's main track.
    pub fn main(language: &str) -> Self {
        Self {
            language: language.to_owned(),
            role: packager::presentation::Role::Main,
        }
    }
}

impl From<&str> for TrackLabel {
    fn from(language: &str) -> Self {
        Self::main(language)
    }
}

impl Serialize for TrackLabel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Full<'a> {
            language: &'a str,
            role: packager::presentation::Role,
        }
        match self.role {
            packager::presentation::Role::Main => s.serialize_str(&self.language),
            role => Full {
                language: &self.language,
                role,
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for TrackLabel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Language(String),
            Full {
                language: String,
                role: packager::presentation::Role,
            },
        }
        Ok(match Form::deserialize(d)? {
            Form::Language(language) => Self::main(&language),
            Form::Full { language, role } => Self { language, role },
        })
    }
}

/// What packaging wrote, for the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackageReport {
    /// The HLS master playlist, relative to the output folder.
    pub hls: String,
    /// The DASH MPD, relative to the output folder.
    pub dash: String,
    /// Segments per track.
    pub segments: usize,
    /// The longest segment, seconds.
    pub max_segment_seconds: f64,
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Each video rendition: id, codecs string, peak and average bits per second.
    pub video: Vec<TrackReport>,
    /// Each audio track.
    pub audio: Vec<TrackReport>,
    /// Subtitle languages.
    pub subtitles: Vec<String>,
    /// Thumbnail sheets.
    pub thumbnail_sheets: u32,
    /// Repairs made to the inputs.
    pub warnings: Vec<String>,
    /// CPU seconds of packaging, thumbnails included.
    #[serde(default)]
    pub cpu_seconds: f64,
    /// CPU seconds of the thumbnails.
    #[serde(default)]
    pub thumbnails_cpu_seconds: f64,
}

/// One packaged track.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackReport {
    /// Identifier (rung name or language).
    pub id: String,
    /// RFC 6381 codecs string.
    pub codecs: String,
    /// Highest segment bit rate, bits per second.
    pub peak_bps: u64,
    /// Average bit rate, bits per second.
    pub average_bps: u64,
    /// How it is encrypted (never the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<TrackEncryption>,
}

/// A packaged track's encryption, as a report may say it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackEncryption {
    /// `cenc` or `cbcs`.
    pub scheme: String,
    /// The key ID (UUID form).
    pub kid: String,
    /// Leading segments left clear.
    pub clear_segments: usize,
}

/// Why a title could not be packaged.
#[derive(Debug, thiserror::Error)]
pub enum TitleError {
    /// A subtitle file could not be read.
    #[error("subtitles {}: {error}", path.display())]
    SubtitleFile {
        /// The file.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
    /// A subtitle file does not parse.
    #[error("subtitles {}:{line}: {reason}", path.display())]
    Subtitles {
        /// The file.
        path: PathBuf,
        /// The first faulty line, from 1.
        line: usize,
        /// What is wrong there.
        reason: String,
    },
    /// An audio file could not be opened as media.
    #[error("audio file {}: {error}", path.display())]
    AudioFile {
        /// The file.
        path: PathBuf,
        /// The demuxer's error.
        error: media::MediaError,
    },
    /// An audio file holds no audio.
    #[error("audio file {} has no audio stream", path.display())]
    NoAudio {
        /// The file.
        path: PathBuf,
    },
    /// A manifest of an earlier run could not be removed.
    #[error("cannot remove the old {manifest}: {error}")]
    OldManifest {
        /// The manifest's file name.
        manifest: &'static str,
        /// The system's error.
        error: std::io::Error,
    },
    /// The packager failed.
    #[error(transparent)]
    Package(#[from] package::PackageError),
}

/// Checks the extra inputs before any work: every subtitle file parses (the first fault with
/// its file and line), every audio file has an audio stream.
pub fn check_inputs(options: &PackageOptions) -> Result<(), TitleError> {
    for (path, _) in &options.subtitles {
        let bytes = packager::subtitles::read(path).map_err(|error| TitleError::SubtitleFile {
            path: path.clone(),
            error,
        })?;
        packager::subtitles::parse(&bytes).map_err(|e| TitleError::Subtitles {
            path: path.clone(),
            line: e.line,
            reason: e.reason,
        })?;
    }
    for (path, _) in &options.audio {
        first_audio_stream(path)?;
    }
    Ok(())
}

/// The index of the first audio stream of `path`.
fn first_audio_stream(path: &Path) -> Result<usize, TitleError> {
    let d = Demuxer::open(path).map_err(|error| TitleError::AudioFile {
        path: path.to_owned(),
        error,
    })?;
    d.info()
        .streams
        .iter()
        .find(|s| s.audio.is_some())
        .map(|s| s.index)
        .ok_or_else(|| TitleError::NoAudio {
            path: path.to_owned(),
        })
}

/// What one title is made of: the master, its video's start time and audio streams (stream,
/// language), and the renditions (name, file).
pub struct Title<'a> {
    /// The master.
    pub master: &'a Path,
    /// Start time of the master's video, seconds; its audio is aligned to it.
    pub origin_seconds: f64,
    /// The master's audio streams and their languages.
    pub audio: &'a [(usize, String)],
    /// The renditions, by name.
    pub rungs: &'a [(String, PathBuf)],
}

/// Removes the manifests of an earlier run from `out`, so that a failure never leaves a
/// manifest pointing at a mix of old and new segments.
pub fn remove_manifests(out: &Path) -> Result<(), TitleError> {
    for manifest in [packager::hls::MASTER, packager::dash::MPD] {
        match std::fs::remove_file(out.join(manifest)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(TitleError::OldManifest { manifest, error });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Packages `title` through `sink`, with scratch files in `work`.
pub fn package_title(
    title: &Title,
    sink: &dyn Sink,
    work: &Path,
    options: &PackageOptions,
) -> Result<PackageReport, TitleError> {
    let sources = sources(title, options)?;
    let started = media::cpu::thread_cpu_seconds();
    let done = package::package(&sources, &options.settings, work, sink)?;
    let cpu_seconds = media::cpu::thread_cpu_seconds() - started;
    Ok(report(done, cpu_seconds))
}

/// What the packager reads for `title`: the renditions, the master's audio tracks and the
/// extra audio files, the subtitles, and the master for thumbnails.
fn sources(title: &Title, options: &PackageOptions) -> Result<Sources, TitleError> {
    let origin = title.origin_seconds;
    let mut audio: Vec<AudioSource> = title
        .audio
        .iter()
        .map(|(stream, language)| AudioSource {
            path: title.master.to_owned(),
            stream: *stream,
            language: language.clone(),
            origin_seconds: origin,
            role: packager::presentation::Role::Main,
        })
        .collect();
    for (path, label) in &options.audio {
        audio.push(AudioSource {
            path: path.clone(),
            stream: first_audio_stream(path)?,
            language: label.language.clone(),
            origin_seconds: 0.0,
            role: label.role,
        });
    }
    Ok(Sources {
        videos: title
            .rungs
            .iter()
            .map(|(id, path)| VideoSource {
                id: id.clone(),
                path: path.clone(),
            })
            .collect(),
        audio,
        subtitles: options
            .subtitles
            .iter()
            .map(|(path, label)| SubtitleSource {
                path: path.clone(),
                language: label.language.clone(),
                role: label.role,
            })
            .collect(),
        thumbnails: options
            .thumbnails
            .then(|| (title.master.to_owned(), origin)),
    })
}

/// The report of a packaged title.
fn report(done: package::Packaged, cpu_seconds: f64) -> PackageReport {
    let p = &done.presentation;
    let track = |id: &str,
                 codecs: &str,
                 t: &packager::presentation::Timeline,
                 e: &Option<packager::presentation::Protection>| TrackReport {
        id: id.to_owned(),
        codecs: codecs.to_owned(),
        peak_bps: t.peak_bps(),
        average_bps: t.average_bps(),
        encryption: e.as_ref().map(|e| TrackEncryption {
            scheme: e.scheme.name().to_owned(),
            kid: packager::cenc::uuid(&e.kid),
            clear_segments: e.clear_segments,
        }),
    };
    let first = p.video.first().map(|v| &v.timeline);
    PackageReport {
        hls: packager::hls::MASTER.into(),
        dash: packager::dash::MPD.into(),
        segments: first.map_or(0, |t| t.segments.len()),
        max_segment_seconds: first.map_or(0.0, |t| {
            t.segments
                .iter()
                .map(|s| t.seconds(s.duration))
                .fold(0.0, f64::max)
        }),
        files: done.files,
        bytes: done.bytes,
        video: p
            .video
            .iter()
            .map(|v| track(&v.id, &v.codecs, &v.timeline, &v.protection))
            .collect(),
        audio: p
            .audio
            .iter()
            .map(|a| track(&a.id, &a.codecs, &a.timeline, &a.protection))
            .collect(),
        subtitles: p.text.iter().map(|t| t.language.clone()).collect(),
        thumbnail_sheets: p.thumbnails.as_ref().map_or(0, |t| t.sheets),
        warnings: done.warnings,
        cpu_seconds,
        thumbnails_cpu_seconds: done.thumbnails_cpu_seconds,
    }
}
