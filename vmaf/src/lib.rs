//! VMAF in pure Rust: the VIF, ADM and motion features, the SVM model and pooling, plus PSNR and
//! SSIM, computed from plane views with no I/O.
//!
//! This crate is a placeholder in the workspace until the VMAF issue lands; it intentionally
//! exports nothing yet.
