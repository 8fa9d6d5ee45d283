//! Workers: everything that touches media bytes.
//!
//! - [`media`]: the media I/O layer over ffmpeg-next: opening any container that libavformat
//!   reads, decoding video to planar YUV frames with exact timestamps, decoding audio, and
//!   reading stream metadata.
//! - [`measure`]: VMAF, PSNR and SSIM of a distorted file against its reference.
//! - [`probe`]: rate-distortion points of a chunk: encode at several settings, decode, upscale
//!   and score against the master.
//! - [`store`] and [`queue`]: the `Store` and `Queue` traits every byte and every task goes
//!   through, with their local backends.
//! - [`worker`]: the generic worker loop that runs a handler on leased tasks.
//!
//! ```no_run
//! use workers::media::{Demuxer, Packet};
//!
//! # fn main() -> Result<(), workers::media::MediaError> {
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

pub mod encode;
pub mod fsutil;
pub mod measure;
pub mod media;
pub mod probe;
pub mod queue;
pub mod store;
pub mod worker;
