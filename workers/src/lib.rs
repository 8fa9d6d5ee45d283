//! Workers: what a worker is. Media I/O is the `media` crate's.
//!
//! - [`encode`]: the encode task, one chunk in one rendition through FFmpeg's encoders or rav1e.
//! - [`measure`]: VMAF, PSNR and SSIM of a distorted file against its reference.
//! - [`rd_probe`]: rate-distortion points of a chunk: encode at several settings, decode, upscale
//!   and score against the master.
//! - [`queue`]: the `Queue` trait every task goes through, with its local backend (bytes go
//!   through the `store` crate's `Store`).
//! - [`worker`]: the generic worker loop that runs a handler on leased tasks.

pub mod encode;
pub mod measure;
pub mod queue;
pub mod rd_probe;
pub mod worker;
