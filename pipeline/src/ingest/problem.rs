//! What validation finds wrong with a master.

use serde::{Deserialize, Serialize};

/// The kind of a problem, as a stable machine-readable name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The file holds no bytes.
    EmptyFile,
    /// libavformat does not recognise the file as media.
    NotMedia,
    /// The file ends before its own structure or index says it should.
    Truncated,
    /// A packet is damaged: the demuxer flagged it, or the decoder rejected it or concealed
    /// errors in the picture it produced.
    CorruptPacket,
    /// No video stream (cover images do not count).
    NoVideoStream,
    /// The video stream decodes to no frame at all.
    NoDecodableFrames,
    /// A stream whose codec this FFmpeg cannot decode.
    UndecodableStream,
    /// Frame durations vary: the master is not constant frame rate.
    VariableFrameRate,
    /// Frames are missing from an otherwise constant-rate timeline.
    TimestampGap,
    /// Timestamps repeat or go backwards.
    NonMonotonicTimestamps,
    /// Interlaced (field-coded) video.
    Interlaced,
    /// An audio track's duration differs from the video's by more than the tolerance.
    AvDurationMismatch,
    /// Width, height or aspect ratio outside what a video master can be.
    AbsurdDimensions,
    /// The picture size changes in the middle of the stream.
    ResolutionChange,
    /// A pixel format the pipeline cannot convert to planar YUV.
    UnsupportedPixelFormat,
    /// More than 10 bits per sample; the pipeline works at 10 bits at most.
    HighBitDepth,
    /// More video frames than the limit (`max_frames`): decoding stopped there.
    TooManyFrames,
}

impl ProblemKind {
    /// Whether this kind of problem rejects the master.
    pub fn severity(self) -> Severity {
        match self {
            ProblemKind::HighBitDepth => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// The snake_case name used in the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::EmptyFile => "empty_file",
            ProblemKind::NotMedia => "not_media",
            ProblemKind::Truncated => "truncated",
            ProblemKind::CorruptPacket => "corrupt_packet",
            ProblemKind::NoVideoStream => "no_video_stream",
            ProblemKind::NoDecodableFrames => "no_decodable_frames",
            ProblemKind::UndecodableStream => "undecodable_stream",
            ProblemKind::VariableFrameRate => "variable_frame_rate",
            ProblemKind::TimestampGap => "timestamp_gap",
            ProblemKind::NonMonotonicTimestamps => "non_monotonic_timestamps",
            ProblemKind::Interlaced => "interlaced",
            ProblemKind::AvDurationMismatch => "av_duration_mismatch",
            ProblemKind::AbsurdDimensions => "absurd_dimensions",
            ProblemKind::ResolutionChange => "resolution_change",
            ProblemKind::UnsupportedPixelFormat => "unsupported_pixel_format",
            ProblemKind::HighBitDepth => "high_bit_depth",
            ProblemKind::TooManyFrames => "too_many_frames",
        }
    }
}

/// Whether a problem rejects the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The master is rejected.
    Error,
    /// Worth knowing; the master is still accepted.
    Warning,
}

/// One problem, with where it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// Whether it rejects the master.
    pub severity: Severity,
    /// A sentence for people.
    pub message: String,
    /// The stream it concerns, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<usize>,
    /// Presentation time in seconds where it is, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_seconds: Option<f64>,
    /// Frame index (presentation order) where it is, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<u64>,
    /// Byte offset in the file where it is, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byte_offset: Option<u64>,
    /// What FFmpeg's decoder said, when it said something.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub details: Vec<String>,
}

impl Problem {
    /// A problem of `kind` with a message and no position yet.
    pub fn new(kind: ProblemKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            severity: kind.severity(),
            message: message.into(),
            stream: None,
            at_seconds: None,
            frame: None,
            byte_offset: None,
            details: Vec::new(),
        }
    }

    /// Sets the stream.
    pub fn stream(mut self, index: usize) -> Self {
        self.stream = Some(index);
        self
    }

    /// Sets the time.
    pub fn at(mut self, seconds: Option<f64>) -> Self {
        self.at_seconds = seconds.map(round_ms);
        self
    }

    /// Sets the frame index.
    pub fn frame(mut self, frame: u64) -> Self {
        self.frame = Some(frame);
        self
    }

    /// Sets the byte offset.
    pub fn offset(mut self, offset: Option<u64>) -> Self {
        self.byte_offset = offset;
        self
    }

    /// Adds the decoder's messages.
    pub fn details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    /// "at 1.234 s, frame 31, byte 5678", or "" when nothing is known.
    pub fn position(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.stream {
            parts.push(format!("stream {s}"));
        }
        if let Some(t) = self.at_seconds {
            parts.push(format!("{t:.3} s"));
        }
        if let Some(f) = self.frame {
            parts.push(format!("frame {f}"));
        }
        if let Some(b) = self.byte_offset {
            parts.push(format!("byte {b}"));
        }
        parts.join(", ")
    }
}

pub(crate) use crate::round_ms;
