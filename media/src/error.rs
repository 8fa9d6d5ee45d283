//! The errors of the media layer.

use std::path::PathBuf;

/// Why a media operation failed. Every variant names the file, stream or position involved.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The file could not be read from disk at all.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said (part of the message).
        error: std::io::Error,
    },
    /// The file exists but holds no bytes.
    #[error("{path} is empty (0 bytes)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// libavformat does not recognise the file as media, or cannot parse its header.
    #[error("{path} is not a readable media file: {reason}")]
    NotMedia {
        /// The file.
        path: PathBuf,
        /// libavformat's reason, such as "Invalid data found when processing input".
        reason: String,
    },
    /// A stream index the file does not have.
    #[error("stream {index} does not exist (the file has {count} streams)")]
    NoSuchStream {
        /// The requested index.
        index: usize,
        /// How many streams the file has.
        count: usize,
    },
    /// The stream is not of the kind the caller asked for.
    #[error("stream {index} is {actual}, not {expected}")]
    WrongStreamKind {
        /// The stream index.
        index: usize,
        /// What the caller needed.
        expected: &'static str,
        /// What the stream is.
        actual: String,
    },
    /// This FFmpeg build has no decoder for the codec.
    #[error("no decoder for codec {codec} (stream {index})")]
    NoDecoder {
        /// The stream index.
        index: usize,
        /// The codec name.
        codec: String,
    },
    /// The decoder could not be opened with the stream's parameters.
    #[error("cannot open the {codec} decoder for stream {index}: {reason}")]
    DecoderOpen {
        /// The stream index.
        index: usize,
        /// The codec name.
        codec: String,
        /// FFmpeg's reason.
        reason: String,
    },
    /// Reading the next packet failed.
    #[error("demuxing failed at byte {position}: {reason}")]
    Demux {
        /// The byte offset in the file where the demuxer stood.
        position: u64,
        /// FFmpeg's reason.
        reason: String,
        /// True for "invalid data", after which the demuxer can usually resynchronise.
        recoverable: bool,
    },
    /// The decoder rejected a packet or failed to produce a frame.
    #[error("decoding stream {stream} failed{}: {reason}", at(*pts_seconds, *position))]
    Decode {
        /// The stream index.
        stream: usize,
        /// Presentation time of the packet, in seconds, when known.
        pts_seconds: Option<f64>,
        /// Byte offset of the packet in the file, when known.
        position: Option<u64>,
        /// FFmpeg's reason.
        reason: String,
    },
    /// A pixel format the pipeline cannot turn into planar YUV.
    #[error("unsupported pixel format {name}: {reason}")]
    UnsupportedPixelFormat {
        /// FFmpeg's name for the format.
        name: String,
        /// Why it is unsupported.
        reason: String,
    },
    /// Frame dimensions the scaler or the pipeline cannot handle.
    #[error("invalid frame size {width}x{height}: {reason}")]
    InvalidFrameSize {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Why it is invalid.
        reason: String,
    },
    /// Another FFmpeg call failed.
    #[error("{what}: {reason}")]
    Ffmpeg {
        /// What was being done.
        what: &'static str,
        /// FFmpeg's reason.
        reason: String,
    },
}

fn at(pts: Option<f64>, position: Option<u64>) -> String {
    match (pts, position) {
        (Some(t), Some(p)) => format!(" at {t:.3} s (byte {p})"),
        (Some(t), None) => format!(" at {t:.3} s"),
        (None, Some(p)) => format!(" at byte {p}"),
        (None, None) => String::new(),
    }
}

impl MediaError {
    /// True for a demuxer error after which reading may go on (skipped bad data).
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            MediaError::Demux {
                recoverable: true,
                ..
            }
        )
    }
}
