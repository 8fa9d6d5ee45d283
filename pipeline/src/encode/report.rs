//! `report.json`: what every rung of an encode came out as.

use std::path::PathBuf;

use serde::Serialize;
use workers::encode::{Codec, EncodeSettings, RateControl, Vbv};
use workers::media::Rational;

use super::ladder::Rung;
use packager::assemble::Assembled;

/// The report of an encode job.
#[derive(Clone, Debug, Serialize)]
pub struct EncodeReport {
    /// The master.
    pub master: PathBuf,
    /// The codec.
    pub codec: Codec,
    /// Frames in the master (and in every rung).
    pub frames: u64,
    /// The master's frame rate, kept by every rung.
    pub frame_rate: Rational,
    /// Frames divided by the rate.
    pub duration_seconds: f64,
    /// The first audio track's decoded duration, when the master has audio.
    pub audio_duration_seconds: Option<f64>,
    /// Chunks in the plan.
    pub chunks: usize,
    /// Chunk encodes reused from an earlier, interrupted run.
    pub reused_chunk_encodes: usize,
    /// Parallel encode tasks.
    pub workers: usize,
    /// One entry per rung, lowest first.
    pub rungs: Vec<RungReport>,
}

/// VMAF of a rung against the master, at the master's resolution.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct VmafSummary {
    /// Mean.
    pub mean: f64,
    /// Harmonic mean.
    pub harmonic_mean: f64,
    /// Worst frame.
    pub min: f64,
}

impl From<&vmaf::Pooled> for VmafSummary {
    fn from(p: &vmaf::Pooled) -> Self {
        Self {
            mean: p.mean,
            harmonic_mean: p.harmonic_mean,
            min: p.min,
        }
    }
}

/// One rung of the report.
#[derive(Clone, Debug, Serialize)]
pub struct RungReport {
    /// Name.
    pub name: String,
    /// The rendition file.
    pub file: PathBuf,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Rate control.
    pub rate: RateControl,
    /// VBV cap.
    pub vbv: Option<Vbv>,
    /// Preset.
    pub preset: String,
    /// Frames between keyframes inside a chunk.
    pub keyint: u32,
    /// Bytes of the file.
    pub size_bytes: u64,
    /// Average video bit rate.
    pub average_kbps: f64,
    /// Highest bit rate of any keyframe-to-keyframe span.
    pub peak_kbps: f64,
    /// Frames.
    pub frames: u64,
    /// Duration in seconds.
    pub duration_seconds: f64,
    /// Keyframes.
    pub keyframes: usize,
    /// VMAF against the master, when measured.
    pub vmaf: Option<VmafSummary>,
}

impl RungReport {
    pub(super) fn new(
        rung: &Rung,
        s: &EncodeSettings,
        a: Assembled,
        vmaf: Option<VmafSummary>,
    ) -> Self {
        Self {
            name: rung.name.clone(),
            file: a.path,
            width: s.width,
            height: s.height,
            rate: s.rate,
            vbv: s.vbv,
            preset: s.preset.clone(),
            keyint: s.keyint,
            size_bytes: a.file_bytes,
            average_kbps: a.average_kbps,
            peak_kbps: a.peak_kbps,
            frames: a.frames,
            duration_seconds: a.duration_seconds,
            keyframes: a.keyframes.len(),
            vmaf,
        }
    }
}
