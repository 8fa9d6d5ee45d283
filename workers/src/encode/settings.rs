//! Rendition settings: codec, size, rate control, preset, VBV and keyframe interval.

use serde::{Deserialize, Serialize};

/// A video codec and the encoder that makes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Codec {
    /// H.264 with libx264.
    H264,
    /// HEVC with libx265.
    Hevc,
    /// AV1 with SVT-AV1 (libsvtav1).
    Av1,
    /// AV1 with the rav1e crate, natively.
    Av1Rav1e,
    /// VP9 with libvpx.
    Vp9,
}

impl Codec {
    /// Every codec, in the order of `--codec`'s help.
    pub const ALL: [Codec; 5] = [
        Codec::H264,
        Codec::Hevc,
        Codec::Av1,
        Codec::Av1Rav1e,
        Codec::Vp9,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::Hevc => "hevc",
            Codec::Av1 => "av1",
            Codec::Av1Rav1e => "av1-rav1e",
            Codec::Vp9 => "vp9",
        }
    }

    /// The codec named on the command line.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The FFmpeg encoder, or `None` for rav1e (not through FFmpeg).
    pub fn ffmpeg_encoder(self) -> Option<&'static str> {
        match self {
            Codec::H264 => Some("libx264"),
            Codec::Hevc => Some("libx265"),
            Codec::Av1 => Some("libsvtav1"),
            Codec::Vp9 => Some("libvpx-vp9"),
            Codec::Av1Rav1e => None,
        }
    }

    /// The encoder's name, for messages.
    pub fn encoder_name(self) -> &'static str {
        self.ffmpeg_encoder().unwrap_or("rav1e")
    }

    /// The range of the constant-quality value (CRF, or rav1e's quantizer).
    pub fn quality_range(self) -> (f32, f32) {
        match self {
            Codec::H264 | Codec::Hevc => (0.0, 51.0),
            Codec::Av1 | Codec::Vp9 => (0.0, 63.0),
            Codec::Av1Rav1e => (0.0, 255.0),
        }
    }

    /// The presets the encoder takes, for messages and validation.
    pub fn presets(self) -> &'static [&'static str] {
        match self {
            Codec::H264 | Codec::Hevc => &[
                "ultrafast",
                "superfast",
                "veryfast",
                "faster",
                "fast",
                "medium",
                "slow",
                "slower",
                "veryslow",
                "placebo",
            ],
            // SVT-AV1 presets 0 (slowest) to 13; libvpx cpu-used 0 to 8; rav1e speed 0 to 10.
            Codec::Av1 => &[
                "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13",
            ],
            Codec::Vp9 => &["0", "1", "2", "3", "4", "5", "6", "7", "8"],
            Codec::Av1Rav1e => &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"],
        }
    }
}

/// How the encoder spends bits.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateControl {
    /// Constant quality (CRF; rav1e's quantizer).
    Crf(f32),
    /// Constant quantizer.
    Qp(u32),
}

/// A video buffering verifier cap: the peak rate a player's buffer can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vbv {
    /// Maximum rate in kbit/s.
    pub maxrate_kbps: u32,
    /// Buffer size in kbit.
    pub bufsize_kbit: u32,
}

/// One rendition's encode settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncodeSettings {
    /// Codec and encoder.
    pub codec: Codec,
    /// Output width (even).
    pub width: u32,
    /// Output height (even).
    pub height: u32,
    /// Rate control.
    pub rate: RateControl,
    /// Encoder preset (x264/x265 names; SVT-AV1, libvpx and rav1e numbers).
    pub preset: String,
    /// Optional VBV cap.
    pub vbv: Option<Vbv>,
    /// Frames from one keyframe to the next inside a chunk.
    pub keyint: u32,
    /// Bits per sample of the output: 8 or 10.
    pub bit_depth: u8,
    /// Stretches of the chunk at another quality setting than `rate` (x264 and x265, with a
    /// CRF): a shot inside a chunk gets its own setting without a keyframe of its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<Zone>,
}

/// A stretch of a chunk at its own quality setting.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    /// First frame, counted from the chunk's first.
    pub start: u64,
    /// Frames.
    pub frames: u64,
    /// The CRF there.
    pub crf: f32,
}

impl EncodeSettings {
    /// Checks every value, naming the bad one and the allowed range.
    pub fn validate(&self) -> Result<(), SettingsError> {
        for (what, value) in [("width", self.width), ("height", self.height)] {
            if !(16..=16384).contains(&value) || value % 2 != 0 {
                return Err(SettingsError::Dimension { what, value });
            }
        }
        self.validate_rate()?;
        let codec = self.codec;
        if !codec.presets().contains(&self.preset.as_str()) {
            return Err(SettingsError::Preset {
                preset: self.preset.clone(),
                codec,
            });
        }
        if let Some(v) = self.vbv {
            validate_vbv(v, codec)?;
        }
        if !(1..=1000).contains(&self.keyint) {
            return Err(SettingsError::Keyint(self.keyint));
        }
        if !self.zones.is_empty() {
            self.validate_zones()?;
        }
        match (self.bit_depth, codec) {
            (8, _) | (10, Codec::Hevc | Codec::Av1 | Codec::Av1Rav1e | Codec::Vp9) => Ok(()),
            (10, Codec::H264) => Err(SettingsError::TenBitH264),
            (d, _) => Err(SettingsError::BitDepth(d)),
        }
    }

    /// The CRF or QP is in the codec's range.
    fn validate_rate(&self) -> Result<(), SettingsError> {
        let codec = self.codec;
        match self.rate {
            RateControl::Crf(crf) => {
                let (lo, hi) = codec.quality_range();
                if !crf.is_finite() || !(lo..=hi).contains(&crf) {
                    return Err(SettingsError::Crf { crf, codec, lo, hi });
                }
                if codec == Codec::Av1Rav1e && crf.fract() != 0.0 {
                    return Err(SettingsError::FractionalQuantizer(crf));
                }
            }
            RateControl::Qp(qp) => {
                let hi = codec.quality_range().1 as u32;
                if qp > hi {
                    return Err(SettingsError::Qp { qp, codec, hi });
                }
            }
        }
        Ok(())
    }

    /// Zones need x264 or x265 with a CRF, and lie in order without overlapping.
    fn validate_zones(&self) -> Result<(), SettingsError> {
        let codec = self.codec;
        let RateControl::Crf(_) = self.rate else {
            return Err(SettingsError::ZonesNeedCrf);
        };
        if !matches!(codec, Codec::H264 | Codec::Hevc) {
            return Err(SettingsError::ZonesUnsupported(codec));
        }
        let (lo, hi) = codec.quality_range();
        let mut next = 0;
        for z in &self.zones {
            if z.frames == 0 || z.start < next || z.start > 10_000_000 {
                return Err(SettingsError::ZoneOrder {
                    start: z.start,
                    frames: z.frames,
                });
            }
            if !z.crf.is_finite() || !(lo..=hi).contains(&z.crf) {
                return Err(SettingsError::ZoneCrf {
                    crf: z.crf,
                    start: z.start,
                    lo,
                    hi,
                });
            }
            next = z.start + z.frames;
        }
        Ok(())
    }
}

/// The VBV cap is in range and the encoder has one.
fn validate_vbv(v: Vbv, codec: Codec) -> Result<(), SettingsError> {
    if !(16..=1_000_000).contains(&v.maxrate_kbps) {
        return Err(SettingsError::Maxrate(v.maxrate_kbps));
    }
    if !(16..=4_000_000).contains(&v.bufsize_kbit) {
        return Err(SettingsError::Bufsize(v.bufsize_kbit));
    }
    if codec == Codec::Av1Rav1e {
        return Err(SettingsError::VbvUnsupported);
    }
    Ok(())
}

/// Why encode settings cannot be used; each names the bad value and what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    /// The width or height is odd or out of range.
    #[error("invalid {what} {value} (expected an even number >= 16, <= 16384)")]
    Dimension {
        /// `width` or `height`.
        what: &'static str,
        /// The value.
        value: u32,
    },
    /// The CRF is outside the codec's range.
    #[error("invalid crf {crf} for {} (expected >= {lo}, <= {hi})", .codec.name())]
    Crf {
        /// The CRF.
        crf: f32,
        /// The codec.
        codec: Codec,
        /// The codec's lowest CRF.
        lo: f32,
        /// The codec's highest CRF.
        hi: f32,
    },
    /// rav1e's quantizer given with a fraction.
    #[error("invalid crf {0} for av1-rav1e (its quantizer is a whole number)")]
    FractionalQuantizer(f32),
    /// The QP is above the codec's range.
    #[error("invalid qp {qp} for {} (expected <= {hi})", .codec.name())]
    Qp {
        /// The QP.
        qp: u32,
        /// The codec.
        codec: Codec,
        /// The codec's highest QP.
        hi: u32,
    },
    /// The encoder has no such preset.
    #[error(
        "invalid preset {preset:?} for {} (expected one of {})",
        .codec.name(),
        .codec.presets().join(", ")
    )]
    Preset {
        /// The preset.
        preset: String,
        /// The codec.
        codec: Codec,
    },
    /// The VBV maximum rate is out of range.
    #[error("invalid maxrate {0} kbit/s (expected >= 16, <= 1000000)")]
    Maxrate(u32),
    /// The VBV buffer size is out of range.
    #[error("invalid bufsize {0} kbit (expected >= 16, <= 4000000)")]
    Bufsize(u32),
    /// rav1e given a VBV cap.
    #[error("av1-rav1e has no VBV cap; remove maxrate and bufsize")]
    VbvUnsupported,
    /// The keyframe interval is out of range.
    #[error("invalid keyint {0} frames (expected >= 1, <= 1000)")]
    Keyint(u32),
    /// Zones with a constant quantizer.
    #[error("zones need a crf")]
    ZonesNeedCrf,
    /// Zones with an encoder that has none.
    #[error("{} has no zones (only h264 and hevc have)", .0.name())]
    ZonesUnsupported(Codec),
    /// An empty zone, or one out of order or overlapping the one before.
    #[error(
        "invalid zone at frame {start} of {frames} frames (zones must be non-empty, in order, \
         and must not overlap)"
    )]
    ZoneOrder {
        /// The zone's first frame.
        start: u64,
        /// Its frames.
        frames: u64,
    },
    /// A zone's CRF is outside the codec's range.
    #[error("invalid zone crf {crf} at frame {start} (expected >= {lo}, <= {hi})")]
    ZoneCrf {
        /// The zone's CRF.
        crf: f32,
        /// The zone's first frame.
        start: u64,
        /// The codec's lowest CRF.
        lo: f32,
        /// The codec's highest CRF.
        hi: f32,
    },
    /// 10-bit output asked of libx264.
    #[error("10-bit output needs hevc, av1 or vp9 (this libx264 is 8-bit)")]
    TenBitH264,
    /// A bit depth other than 8 or 10.
    #[error("invalid bit depth {0} (expected 8 or 10)")]
    BitDepth(u8),
}
