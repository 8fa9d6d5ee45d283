//! `report.json`: what every rung of an encode came out as.

use std::path::PathBuf;

use ladders::title::{LadderRules, Size, TitleDecision};
use media::Rational;
use serde::Serialize;
use workers::encode::{Codec, EncodeSettings, RateControl, Vbv};

use super::Probing;
use super::dynamic::{self, DecidedRung};
use packager::assemble::{Assembled, ChunkSpan};

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
    /// CPU seconds spent reading and encoding the renditions' chunks, recorded with each chunk
    /// by whichever run or worker made it (probes are counted in `ladder`).
    pub encode_cpu_seconds: f64,
    /// One entry per rung, lowest first (codec by codec in a multi-codec title).
    pub rungs: Vec<RungReport>,
    /// How a per-title or shot-level ladder was decided (of the one codec; see `codecs` for
    /// a multi-codec title).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ladder: Option<LadderReport>,
    /// Each codec's ladder, in a multi-codec title.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub codecs: Vec<CodecReport>,
    /// What packaging wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<super::package::PackageReport>,
    /// Where the time went: wall and CPU seconds of every stage.
    pub stages: Vec<StageTime>,
}

/// One codec's ladder in a multi-codec title.
#[derive(Clone, Debug, Serialize)]
pub struct CodecReport {
    /// The codec.
    pub codec: Codec,
    /// Its final encodes' preset.
    pub preset: String,
    /// Its rungs' names (in `rungs`), lowest first.
    pub rungs: Vec<String>,
    /// How its ladder was decided, for per-title and shot-level ladders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ladder: Option<LadderReport>,
    /// CPU seconds of its final encodes.
    pub encode_cpu_seconds: f64,
    /// Its measured ladder against the title's H.264 ladder (none for H.264 itself, or when
    /// nothing was measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub against_h264: Option<super::estimate::CodecComparison>,
}

/// Wall and CPU time of one stage of a job.
///
/// CPU is what the stage's tasks recorded, whichever run or worker ran them. Wall time runs
/// from the moment the stage was queued to the moment the next one was; a stage that shares
/// its tasks with another (probe encodes and their scoring, assembly and measurement,
/// packaging and thumbnails) has that time split by CPU. Stages finished by an earlier run of
/// a resumed local job have no wall time in this one.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct StageTime {
    /// `plan`, `probe encode`, `probe score`, `anchor encode`, `anchor score`,
    /// `final encode`, `assembly`, `measurement`, `packaging` or `thumbnails`.
    pub stage: String,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// CPU seconds.
    pub cpu_seconds: f64,
}

/// VMAF of a rung against the master, at the master's resolution.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
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

/// One chunk of a rung: its setting and what it took.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ChunkReport {
    /// First frame.
    pub start_frame: u64,
    /// Frames.
    pub frames: u64,
    /// The quality setting it was encoded with.
    pub crf: Option<f32>,
    /// Bits of its frames.
    pub bits: u64,
    /// Its average bit rate.
    pub kbps: f64,
    /// Its mean VMAF, when measured.
    pub vmaf_mean: Option<f64>,
    /// Stretches at their own setting (shots inside the chunk), counted from its first frame.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub zones: Vec<workers::encode::Zone>,
}

/// One rung of the report.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct RungReport {
    /// Name.
    pub name: String,
    /// The codec, in a multi-codec title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<Codec>,
    /// The rendition file.
    pub file: PathBuf,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Rate control (of the first chunk; see `chunks` for each one's).
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
    /// Every chunk's setting and bits.
    pub chunks: Vec<ChunkReport>,
    /// Every frame's VMAF (4 decimals), when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_frame_vmaf: Option<Vec<f64>>,
}

fn round4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

impl RungReport {
    /// The report of an assembled rung, without VMAF until [`RungReport::set_vmaf`].
    pub(super) fn new(
        name: &str,
        s: &EncodeSettings,
        a: Assembled,
        plan: &[ChunkSpan],
        chunk_bits: &[u64],
        per_chunk: &[EncodeSettings],
        fps: f64,
    ) -> Self {
        let chunks = plan
            .iter()
            .zip(chunk_bits)
            .zip(per_chunk)
            .map(|((span, &bits), settings)| ChunkReport {
                start_frame: span.start_frame,
                frames: span.frames,
                crf: match settings.rate {
                    RateControl::Crf(c) => Some(c),
                    RateControl::Qp(_) => None,
                },
                bits,
                kbps: bits as f64 * fps / span.frames.max(1) as f64 / 1000.0,
                vmaf_mean: None,
                zones: settings.zones.clone(),
            })
            .collect();
        Self {
            name: name.to_owned(),
            codec: None,
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
            vmaf: None,
            chunks,
            per_frame_vmaf: None,
        }
    }

    /// Takes the rung's VMAF, measured frame by frame against the master: pooled over the
    /// title and over each chunk.
    pub(super) fn set_vmaf(&mut self, per_frame: &[f64]) {
        self.vmaf = Some(VmafSummary::from(&vmaf::Pooled::of(per_frame)));
        for c in &mut self.chunks {
            let range = c.start_frame as usize..(c.start_frame + c.frames) as usize;
            c.vmaf_mean = per_frame
                .get(range)
                .map(|part| round4(part.iter().sum::<f64>() / part.len().max(1) as f64));
        }
        self.per_frame_vmaf = Some(per_frame.iter().copied().map(round4).collect());
    }
}

/// One rate-distortion point for the report.
#[derive(Clone, Debug, Serialize)]
pub struct RdPoint {
    /// The chunk, or `None` for a per-title (pooled) point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk: Option<usize>,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// The quality setting.
    pub crf: f64,
    /// Average bit rate.
    pub kbps: f64,
    /// Mean VMAF.
    pub vmaf_mean: f64,
    /// Harmonic-mean VMAF.
    pub vmaf_harmonic: f64,
    /// Worst frame (interpolated between measured settings).
    pub vmaf_min: f64,
    /// Measured (true) or interpolated between measured settings (false).
    pub measured: bool,
}

impl RdPoint {
    fn of(
        chunk: Option<usize>,
        size: ladders::title::Size,
        crf: f64,
        t: &ladders::Tally,
        fps: f64,
        measured: bool,
    ) -> Self {
        Self {
            chunk,
            width: size.width,
            height: size.height,
            crf,
            kbps: round4(t.kbps(fps)),
            vmaf_mean: round4(t.mean()),
            vmaf_harmonic: round4(t.harmonic()),
            vmaf_min: round4(t.vmaf_min),
            measured,
        }
    }
}

/// A decided rung: what the probes predicted and what the final encodes gave.
#[derive(Clone, Debug, Serialize)]
pub struct DecidedRungReport {
    /// Name.
    pub name: String,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// The per-title setting.
    pub title_crf: f64,
    /// The per-title hull point's predicted bit rate.
    pub title_kbps: f64,
    /// Its predicted pooled VMAF.
    pub title_vmaf: f64,
    /// The VBV maximum rate.
    pub maxrate_kbps: f64,
    /// The shot optimiser's slope, in shot mode.
    pub lambda: Option<f64>,
    /// Whether the shot optimiser met the target within the caps.
    pub target_met: Option<bool>,
    /// Chunks that could not get under the peak cap at any probed setting.
    pub over_peak_chunks: Vec<usize>,
    /// The probes' prediction of the rung as encoded: bit rate.
    pub predicted_kbps: f64,
    /// ... and pooled VMAF.
    pub predicted_vmaf: f64,
    /// Measured bit rate of the final encode.
    pub measured_kbps: f64,
    /// Its pooled VMAF, when measured.
    pub measured_vmaf: Option<f64>,
    /// Measured over predicted bit rate, minus one: how far the probe preset's prediction is
    /// from the final preset.
    pub kbps_error: f64,
    /// Measured minus predicted VMAF.
    pub vmaf_error: Option<f64>,
}

/// How a per-title or shot-level ladder was decided: everything the dashboard plots.
#[derive(Clone, Debug, Serialize)]
pub struct LadderReport {
    /// `per-title` or `shot`.
    pub mode: String,
    /// The rules.
    pub rules: LadderRules,
    /// The probes' encoder preset.
    pub probe_preset: String,
    /// Probes scored one frame in this many.
    pub probe_sampling: u64,
    /// Rounds of probing.
    pub probe_rounds: usize,
    /// Probe encodes (chunk × resolution × setting), reused ones included.
    pub probe_encodes: usize,
    /// What an exhaustive grid of 7 settings at every resolution would encode.
    pub grid_encodes: usize,
    /// Probe encodes against the grid's, each weighted by its pixel count (the probes run at a
    /// faster preset, so their CPU share is lower still).
    pub probe_pixels_vs_grid: f64,
    /// CPU seconds spent reading and encoding the probes (recorded with each probe, whichever
    /// run or worker made it).
    pub probe_encode_cpu_seconds: f64,
    /// CPU seconds spent decoding and scoring the probes.
    pub probe_score_cpu_seconds: f64,
    /// CPU seconds spent in the final encodes (recorded with each chunk).
    pub final_encode_cpu_seconds: f64,
    /// Anchor encodes at the final preset, checking probes made at a faster one.
    pub anchor_encodes: usize,
    /// Rounds of anchors: another comes when the corrected decision moves a rung to a
    /// resolution without anchors.
    pub anchor_rounds: usize,
    /// Anchor encodes against the grid's, weighted by pixel count.
    pub anchor_pixels_vs_grid: f64,
    /// CPU seconds spent reading and encoding the anchors.
    pub anchor_encode_cpu_seconds: f64,
    /// CPU seconds spent decoding and scoring the anchors.
    pub anchor_score_cpu_seconds: f64,
    /// Every anchor of every chunk, as measured at the final preset.
    pub anchor_points: Vec<RdPoint>,
    /// How the anchors moved each resolution's probe curves (none without anchors).
    pub corrections: Vec<dynamic::Correction>,
    /// Rungs moved onto (or left on) an anchor near them, so that the anchor's encodes are the
    /// rung's chunks: no setting is encoded twice at the final preset.
    #[serde(default)]
    pub rungs_on_anchors: usize,
    /// Chunks of the rungs taken from the anchors' encodes rather than encoded again.
    #[serde(default)]
    pub chunks_from_anchors: usize,
    /// The shot optimiser's units: the shots inside each chunk that got a setting of their
    /// own (as zones), or whole chunks. `chunk` in `chunk_points`, `anchor_points` and
    /// `chunk_hulls` is an index into this list.
    pub units: Vec<dynamic::Unit>,
    /// Every probe of every unit, as the decision saw it: moved onto the final preset by the
    /// anchors when there are some.
    pub chunk_points: Vec<RdPoint>,
    /// Pooled per-title points, measured and interpolated.
    pub title_points: Vec<RdPoint>,
    /// Indices into `title_points` of the per-title convex hull.
    pub hull: Vec<usize>,
    /// Each chunk's own hull at each rung's resolution (indices into `chunk_points` of
    /// measured points, by rising bit rate).
    pub chunk_hulls: Vec<ChunkHull>,
    /// The rungs.
    pub rungs: Vec<DecidedRungReport>,
    /// Bit-rate ratio of each rung to the one below it.
    pub step_ratios: Vec<f64>,
    /// Where the ladder could not follow the rules, and why (a step wider than `max_ratio`
    /// because the rules allow too few rungs, or because no probed point lies inside it).
    pub notes: Vec<String>,
    /// This ladder against Apple's fixed ladder for the same master, estimated on the title's
    /// curves (the dashboard's "bits saved").
    pub fixed_estimate: Option<super::estimate::FixedEstimate>,
    /// This ladder against Apple's ladder encoded and measured too (`--compare-fixed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_measured: Option<super::estimate::FixedMeasured>,
}

/// A chunk's convex hull at one resolution.
#[derive(Clone, Debug, Serialize)]
pub struct ChunkHull {
    /// The chunk.
    pub chunk: usize,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Indices into `chunk_points`.
    pub points: Vec<usize>,
}

/// Every chunk's probe points at every resolution, and the hulls of the resolutions that hold
/// a rung (indices into the points).
fn chunk_curves(
    probing: &Probing,
    rungs: &[DecidedRung],
    rules: &LadderRules,
    fps: f64,
) -> (Vec<RdPoint>, Vec<ChunkHull>) {
    let mut chunk_points = Vec::new();
    let mut chunk_hulls = Vec::new();
    for (ci, c) in probing.chunks.iter().enumerate() {
        for (size, curve) in &c.curves {
            let first = chunk_points.len();
            for p in curve.points() {
                chunk_points.push(RdPoint::of(Some(ci), *size, p.crf, &p.tally, fps, true));
            }
            if rungs.iter().any(|r| r.size == *size) {
                let xy: Vec<(f64, f64)> = curve
                    .points()
                    .iter()
                    .map(|p| (p.tally.bits, p.tally.quality(rules.pooling)))
                    .collect();
                chunk_hulls.push(ChunkHull {
                    chunk: ci,
                    width: size.width,
                    height: size.height,
                    points: ladders::hull::upper(&xy)
                        .into_iter()
                        .map(|i| first + i)
                        .collect(),
                });
            }
        }
    }
    (chunk_points, chunk_hulls)
}

impl DecidedRungReport {
    /// A decided rung `r` with its rendition `e`: what was predicted, what was measured.
    fn of(r: &DecidedRung, e: &RungReport, pooling: ladders::Pooling) -> Self {
        let (predicted_kbps, predicted_vmaf) = match &r.allocation {
            Some(a) => (a.kbps, a.quality),
            None => (r.title_kbps, r.title_vmaf),
        };
        let measured_vmaf = e.vmaf.map(|v| match pooling {
            ladders::Pooling::Mean => v.mean,
            ladders::Pooling::Harmonic => v.harmonic_mean,
        });
        Self {
            name: r.name.clone(),
            width: r.size.width,
            height: r.size.height,
            title_crf: r.title_crf,
            title_kbps: round4(r.title_kbps),
            title_vmaf: round4(r.title_vmaf),
            maxrate_kbps: round4(r.maxrate_kbps),
            lambda: r.allocation.as_ref().map(|a| a.lambda),
            target_met: r.allocation.as_ref().map(|a| a.met),
            over_peak_chunks: r
                .allocation
                .as_ref()
                .map(|a| a.over_peak.clone())
                .unwrap_or_default(),
            predicted_kbps: round4(predicted_kbps),
            predicted_vmaf: round4(predicted_vmaf),
            measured_kbps: e.average_kbps,
            measured_vmaf,
            kbps_error: round4(e.average_kbps / predicted_kbps - 1.0),
            vmaf_error: measured_vmaf.map(|m| round4(m - predicted_vmaf)),
        }
    }
}

/// The name prefix of Apple's rungs encoded for `--compare-fixed` (never a rung of the title).
pub const FIXED_PREFIX: &str = "compare-fixed-";

impl LadderReport {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        mode: &str,
        rules: &LadderRules,
        (probe_preset, probe_sampling): (&str, u64),
        decision: &TitleDecision,
        rungs: &[DecidedRung],
        probing: &Probing,
        encoded: &[RungReport],
        fps: f64,
        final_encode_cpu_seconds: f64,
    ) -> Self {
        let (chunk_points, chunk_hulls) = chunk_curves(probing, rungs, rules, fps);
        let anchor_points = probing
            .anchor_points
            .iter()
            .enumerate()
            .flat_map(|(ci, by_size)| {
                by_size.iter().flat_map(move |(size, ps)| {
                    ps.iter()
                        .map(move |p| RdPoint::of(Some(ci), *size, p.crf, &p.tally, fps, true))
                })
            })
            .collect();
        let title_points = decision
            .points
            .iter()
            .map(|p| RdPoint::of(None, p.size, p.crf, &p.tally, fps, p.measured))
            .collect();
        let rungs = rungs
            .iter()
            .zip(encoded)
            .map(|(r, e)| DecidedRungReport::of(r, e, rules.pooling))
            .collect();
        Self {
            mode: mode.to_owned(),
            rules: rules.clone(),
            probe_preset: probe_preset.to_owned(),
            probe_sampling,
            probe_rounds: probing.rounds,
            probe_encodes: probing.encodes,
            grid_encodes: probing.grid_encodes,
            probe_pixels_vs_grid: round4(
                probing.encoded_pixels as f64 / probing.grid_pixels.max(1) as f64,
            ),
            probe_encode_cpu_seconds: round4(probing.encode_cpu_seconds),
            probe_score_cpu_seconds: round4(probing.score_cpu_seconds),
            final_encode_cpu_seconds: round4(final_encode_cpu_seconds),
            anchor_encodes: probing.anchor_encodes,
            anchor_rounds: probing.anchor_rounds,
            anchor_pixels_vs_grid: round4(
                probing.anchor_pixels as f64 / probing.grid_pixels.max(1) as f64,
            ),
            anchor_encode_cpu_seconds: round4(probing.anchor_encode_cpu_seconds),
            anchor_score_cpu_seconds: round4(probing.anchor_score_cpu_seconds),
            anchor_points,
            corrections: probing.corrections.clone(),
            rungs_on_anchors: probing.rungs_on_anchors,
            chunks_from_anchors: probing.chunks_from_anchors,
            units: probing.units.clone(),
            chunk_points,
            title_points,
            hull: decision.hull.clone(),
            chunk_hulls,
            step_ratios: decision
                .rungs
                .windows(2)
                .map(|w| round4(w[1].point.kbps / w[0].point.kbps))
                .collect(),
            rungs,
            notes: decision.notes.clone(),
            fixed_estimate: None,
            fixed_measured: None,
        }
    }

    /// This ladder's measured rungs against `fixed` (Apple's rungs for the master), on the
    /// title's curves; `None` when the fixed rungs have no bit rates (rav1e's).
    /// The rungs as measured, `(kbps, pooled VMAF)` (the predicted VMAF when not measured).
    fn measured_points(&self) -> Vec<(f64, f64)> {
        self.rungs
            .iter()
            .map(|r| (r.measured_kbps, r.measured_vmaf.unwrap_or(r.predicted_vmaf)))
            .collect()
    }

    /// This ladder's measured rungs against Apple's rungs encoded (`--compare-fixed`).
    pub(super) fn measure_fixed(&self, fixed: &[RungReport]) -> super::estimate::FixedMeasured {
        let pooled = |v: &VmafSummary| match self.rules.pooling {
            ladders::Pooling::Mean => v.mean,
            ladders::Pooling::Harmonic => v.harmonic_mean,
        };
        let rungs = fixed
            .iter()
            .filter_map(|r| {
                Some(super::estimate::MeasuredRung {
                    name: r.name.trim_start_matches(FIXED_PREFIX).to_owned(),
                    width: r.width,
                    height: r.height,
                    kbps: r.average_kbps,
                    vmaf: round4(pooled(r.vmaf.as_ref()?)),
                })
            })
            .collect();
        super::estimate::measured_against_fixed(rungs, &self.measured_points())
    }

    pub(super) fn estimate_fixed(
        &self,
        fixed: &[super::ladder::Rung],
    ) -> Option<super::estimate::FixedEstimate> {
        let apple: Vec<(Size, f64)> = fixed
            .iter()
            .filter_map(|r| {
                let size = Size {
                    width: r.width,
                    height: r.height,
                };
                r.vbv.map(|v| (size, f64::from(v.maxrate_kbps)))
            })
            .collect();
        if apple.is_empty() {
            return None;
        }
        let pooled = |mean: f64, harmonic: f64| match self.rules.pooling {
            ladders::Pooling::Mean => mean,
            ladders::Pooling::Harmonic => harmonic,
        };
        let curves: Vec<(Size, f64, f64)> = self
            .title_points
            .iter()
            .map(|p| {
                let size = Size {
                    width: p.width,
                    height: p.height,
                };
                (size, p.kbps, pooled(p.vmaf_mean, p.vmaf_harmonic))
            })
            .collect();
        Some(super::estimate::against_fixed(
            &curves,
            &apple,
            &self.measured_points(),
        ))
    }
}
