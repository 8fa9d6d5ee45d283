//! Workers: what a worker is. Media I/O is the `media` crate's.
//!
//! - [`encode`]: the encode task, one chunk in one rendition through FFmpeg's encoders or rav1e.
//! - [`measure`]: VMAF, PSNR and SSIM of a distorted file against its reference.
//! - [`probe`]: rate-distortion points of a chunk: encode at several settings, decode, upscale
//!   and score against the master.
//! - [`store`] and [`queue`]: the `Store` and `Queue` traits every byte and every task goes
//!   through, with their local backends.
//! - [`worker`]: the generic worker loop that runs a handler on leased tasks.

pub mod encode;
pub mod fsutil;
pub mod measure;
pub mod probe;
pub mod queue;
pub mod store;
pub mod worker;
