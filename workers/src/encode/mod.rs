//! The encode task: one chunk of the master, in one rendition setting, to one encoded chunk.
//!
//! The chunk's frames are decoded from the master (seeking to the keyframe before the chunk
//! and selecting frames by their exact timestamps), scaled with swscale's lanczos, and fed to
//! the encoder, which runs single-threaded so that the same input and settings always give the
//! same bytes: parallelism comes from running tasks side by side. Every chunk starts with an
//! IDR frame and has keyframes every `keyint` frames from there and nowhere else, so when the
//! chunk plan and `keyint` are shared, keyframes line up across every rendition of a ladder.

mod ffenc;
mod frames;
mod rav1e_enc;
mod settings;
pub(crate) mod source;

use std::path::PathBuf;

pub use frames::{decoding_uncached, frame_cache_stats};
pub use media::chunk::{ChunkFormatError, ChunkPacket, EncodedChunk, FLAG_KEY, StreamParams};
pub use settings::{Codec, EncodeSettings, RateControl, SettingsError, Vbv, Zone};

use media::{MediaError, Rational};

/// Which frames of which master an encode task reads.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkSource {
    /// The master.
    pub path: PathBuf,
    /// Its video stream.
    pub stream: usize,
    /// Index of the chunk's first frame, in presentation order.
    pub start_frame: u64,
    /// Frames in the chunk.
    pub frames: u64,
    /// Presentation timestamp of the first frame in the stream's time base, when the master
    /// has timestamps.
    pub start_pts: Option<i64>,
    /// The master's frame rate; the chunk's timestamps count frames at this rate.
    pub frame_rate: Rational,
    /// Decoder threads (0: one per core).
    pub decoder_threads: usize,
}

/// Why an encode task failed.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// Reading the master failed.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The settings are out of range (see [`EncodeSettings::validate`]).
    #[error("invalid encode settings: {0}")]
    Invalid(#[from] SettingsError),
    /// The settings cannot be used (with this encoder or this FFmpeg).
    #[error("invalid encode settings: {0}")]
    Settings(String),
    /// The encoder is not in this FFmpeg build.
    #[error("the encoder {0} is not available in this FFmpeg build")]
    MissingEncoder(&'static str),
    /// The encoder refused to open or to take a frame.
    #[error("{encoder}: {what}: {reason}")]
    Encoder {
        /// The encoder.
        encoder: &'static str,
        /// What it was doing.
        what: &'static str,
        /// Its reason.
        reason: String,
    },
    /// The master does not hold the frames the chunk expects.
    #[error("chunk at frame {start_frame}: {reason}")]
    Source {
        /// The chunk's first frame.
        start_frame: u64,
        /// What was found instead.
        reason: String,
    },
}

/// Encodes the frames of `source` with `settings`.
#[tracing::instrument(skip_all, fields(start = source.start_frame, frames = source.frames, codec = settings.codec.name(), height = settings.height))]
pub fn encode_chunk(
    source: &ChunkSource,
    settings: &EncodeSettings,
) -> Result<EncodedChunk, EncodeError> {
    let mut out = encode_chunk_many(source, std::slice::from_ref(settings))?;
    Ok(out.pop().expect("one output per setting"))
}

/// Encodes the frames of `source` with each of `settings` at once, reading and scaling the
/// master once: the settings must share the frame size and bit depth (they differ in codec,
/// quality or preset). The outputs are the same bytes as [`encode_chunk`] gives for each.
pub fn encode_chunk_many(
    source: &ChunkSource,
    settings: &[EncodeSettings],
) -> Result<Vec<EncodedChunk>, EncodeError> {
    let Some(first) = settings.first() else {
        return Ok(Vec::new());
    };
    for s in settings {
        s.validate()?;
        if (s.width, s.height, s.bit_depth) != (first.width, first.height, first.bit_depth) {
            return Err(EncodeError::Settings(format!(
                "settings encoded together must share size and depth ({}x{} {}-bit, then {}x{} {}-bit)",
                first.width, first.height, first.bit_depth, s.width, s.height, s.bit_depth
            )));
        }
    }
    let rate = source.frame_rate;
    if rate.num <= 0 || rate.den <= 0 {
        return Err(EncodeError::Settings(format!(
            "invalid frame rate {rate} (expected a positive rational)"
        )));
    }
    let mut encoders = settings
        .iter()
        .map(|s| AnyEncoder::new(s, source))
        .collect::<Result<Vec<_>, _>>()?;
    source::read(source, first, &mut |frame, index| {
        encoders.iter_mut().try_for_each(|e| e.push(frame, index))
    })?;
    encoders.into_iter().map(AnyEncoder::finish).collect()
}

/// An encoder of either kind.
enum AnyEncoder {
    Ff(Box<ffenc::FfEncoder>),
    Rav1e(Box<rav1e_enc::Rav1eEncoder>),
}

impl AnyEncoder {
    fn new(settings: &EncodeSettings, source: &ChunkSource) -> Result<Self, EncodeError> {
        Ok(if settings.codec == Codec::Av1Rav1e {
            Self::Rav1e(Box::new(rav1e_enc::Rav1eEncoder::new(
                settings,
                source.frame_rate,
            )?))
        } else {
            Self::Ff(Box::new(ffenc::FfEncoder::new(
                settings,
                source.frame_rate,
                source.frames,
            )?))
        })
    }

    fn push(
        &mut self,
        frame: &mut ffmpeg_next::util::frame::Video,
        index: u64,
    ) -> Result<(), EncodeError> {
        match self {
            Self::Ff(e) => e.push(frame, index),
            Self::Rav1e(e) => e.push(frame, index),
        }
    }

    fn finish(self) -> Result<EncodedChunk, EncodeError> {
        match self {
            Self::Ff(e) => e.finish(),
            Self::Rav1e(e) => e.finish(),
        }
    }
}
