//! Media I/O over ffmpeg-next, built against the system FFmpeg, and the chunk wire format.
//!
//! - [`Demuxer`] opens a file through libavformat (local files only: the `file` protocol is the
//!   only one allowed, so a hostile name cannot reach the network or another protocol) and reads
//!   packets with their byte positions.
//! - [`VideoDecoder`] turns packets into [`VideoFrame`]s: planar YUV (4:2:0, 4:2:2, 4:4:4 or
//!   grey) at 8 or 10 bits, borrowed from the decoder without a copy when the decoder already
//!   produces such a layout, converted by swscale otherwise.
//! - [`AudioDecoder`] turns packets into [`AudioFrame`]s.
//! - [`VideoMuxer`] writes a stream into a file; [`Fragmenter`] copies one into fragmented MP4.
//! - [`MediaInfo`] is the probe: every stream's codec, geometry, rates, colour description, HDR
//!   metadata, channel layout and language.
//! - [`cpu`]: the CPU clocks of a thread and of the process, for stage timings.
//! - [`chunk`]: the encoded chunk as it travels through the store, from the encode task to
//!   assembly, which the muxers and decoders here read and write.
//!
//! Messages that FFmpeg logs go to `tracing` under the `ffmpeg` target; a decoder's own messages
//! are also kept so that a corrupt frame can be reported with the decoder's explanation.
//!
//! ```no_run
//! use media::{Demuxer, Packet};
//!
//! # fn main() -> Result<(), media::MediaError> {
//! let mut demuxer = Demuxer::open("master.mp4")?;
//! let video = demuxer.info().best_video().expect("a video stream");
//! let mut decoder = demuxer.video_decoder(video, &Default::default())?;
//! let mut frames = 0;
//! while let Some(packet) = demuxer.read()? {
//!     if packet.stream() != video {
//!         continue;
//!     }
//!     decoder.send(&packet)?;
//!     while let Some(frame) = decoder.receive()? {
//!         let _luma = frame.luma();
//!         frames += 1;
//!     }
//! }
//! decoder.send_eof()?;
//! while decoder.receive()?.is_some() {
//!     frames += 1;
//! }
//! println!("{frames} frames");
//! # Ok(())
//! # }
//! ```

mod aac;
mod audio;
pub mod chunk;
pub mod cpu;
mod decoder;
mod error;
mod fragment;
mod input;
mod log;
mod mux;
mod owned;
mod pixel;
mod probe;
mod rational;
mod video;

pub use aac::{AAC_RATE, AacEncoder, DEFAULT_AAC_BITRATE};
pub use audio::{AudioDecoder, AudioFrame};
pub use error::MediaError;
pub use fragment::Fragmenter;
pub use input::{Demuxer, Packet};
pub use mux::VideoMuxer;
pub use owned::{OwnedFrame, Resizer, Samples, ScaleFilter};
pub use pixel::{Chroma, PixelLayout, PixelSupport, Plane, PlaneRef, classify};
pub use probe::{
    AudioInfo, ColorInfo, ContentLightLevel, HdrInfo, MasteringDisplay, MediaInfo, StreamInfo,
    StreamKind, VideoInfo, probe,
};
pub use rational::Rational;
pub use video::{DecoderOptions, VideoDecoder, VideoFrame};

// FFmpeg glue the encoders of `workers` share with this crate; not part of the media API.
#[doc(hidden)]
pub use input::codec_name as codec_name_of;
#[doc(hidden)]
pub use pixel::{pix_fmt_from_raw, pix_fmt_name};

/// Initialises FFmpeg once per process and routes its log into `tracing`.
///
/// Every entry point of this module calls it, so callers never need to; it is public for
/// programs that call FFmpeg through other paths first.
pub fn init() {
    log::init();
}

/// The version of the libavcodec, libavformat and libavutil this process runs against, as
/// `"avcodec 59.37.100, avformat 59.27.100, avutil 57.28.100"`.
pub fn library_versions() -> String {
    init();
    fn split(v: u32) -> String {
        format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
    }
    format!(
        "avcodec {}, avformat {}, avutil {}",
        split(ffmpeg_next::codec::version()),
        split(ffmpeg_next::format::version()),
        split(ffmpeg_next::util::version())
    )
}

/// Decodes the best video stream of `path` and returns its index and every frame's
/// presentation timestamp, in presentation order. A whole decode pass: for tests, tools and
/// small files; ingest gathers the same while validating.
pub fn frame_timestamps(
    path: impl AsRef<std::path::Path>,
) -> Result<(usize, Vec<Option<i64>>), MediaError> {
    let mut demuxer = Demuxer::open(path)?;
    let video = demuxer
        .info()
        .best_video()
        .ok_or(MediaError::NoSuchStream {
            index: 0,
            count: demuxer.info().streams.len(),
        })?;
    let mut decoder = demuxer.video_decoder(video, &DecoderOptions::default())?;
    let mut out = Vec::new();
    let mut eof = false;
    while !eof {
        match demuxer.read()? {
            Some(p) if p.stream() == video => decoder.send(&p)?,
            Some(_) => continue,
            None => {
                decoder.send_eof()?;
                eof = true;
            }
        }
        while let Some(f) = decoder.receive()? {
            out.push(f.pts);
        }
    }
    Ok((video, out))
}
