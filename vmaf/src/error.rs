//! The crate's errors.

/// What went wrong. Every variant names the bad value and what was expected.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// A plane or picture of an unusable size.
    #[error("invalid size {width}x{height}: {reason}")]
    InvalidSize {
        /// Width in samples.
        width: usize,
        /// Height in rows.
        height: usize,
        /// Why.
        reason: &'static str,
    },
    /// A stride narrower than the width.
    #[error("invalid stride {stride} (expected >= width {width})")]
    InvalidStride {
        /// The stride in samples.
        stride: usize,
        /// The width in samples.
        width: usize,
    },
    /// A buffer too short for the plane it is said to hold.
    #[error("plane buffer of {len} samples is too short (expected >= {needed})")]
    ShortPlane {
        /// Samples given.
        len: usize,
        /// Samples needed.
        needed: usize,
    },
    /// A bit depth that does not match the sample type or is out of range.
    #[error("invalid bit depth {bit_depth} (expected 8 with u8 samples, 9..=16 with u16 samples)")]
    InvalidBitDepth {
        /// The bit depth given.
        bit_depth: u8,
    },
    /// Reference and distorted pictures differ.
    #[error("reference and distorted pictures differ: {what}")]
    Mismatch {
        /// What differs, with both values.
        what: String,
    },
    /// A model file that cannot be used.
    #[error("invalid VMAF model: {reason}")]
    Model {
        /// Why, with the position when JSON parsing failed.
        reason: String,
    },
}
