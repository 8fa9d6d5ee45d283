//! The title page's data, deserialised from an encode report (`report.json`) into typed
//! structures before any of it is rendered. A field of the wrong type refuses the whole report
//! with its position; a missing field reads as empty text, a `NaN` figure (JSON `null` too)
//! or an absent section, so that reports of older versions still show.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;

/// An encode report as the title page reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TitleReport {
    master: String,
    codec: String,
    frames: u64,
    frame_rate: String,
    duration_seconds: Option<f64>,
    chunks: u64,
    rungs: Vec<RungIn>,
    ladder: Option<LadderIn>,
    codecs: Vec<CodecIn>,
    stages: Vec<StageIn>,
    package: Option<PackageIn>,
}

/// One codec's ladder of a multi-codec title.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CodecIn {
    codec: String,
    rungs: Vec<String>,
    ladder: Option<LadderIn>,
    against_h264: Option<ComparisonIn>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ComparisonIn {
    bd_rate_percent: Option<f64>,
    bd_vmaf: Option<f64>,
    quality_range: Option<(Option<f64>, Option<f64>)>,
    why_none: Option<String>,
    basis: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PackageIn {
    video: Vec<TrackIn>,
    audio: Vec<TrackIn>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TrackIn {
    id: String,
    encryption: Option<EncryptionIn>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EncryptionIn {
    scheme: String,
    kid: String,
    clear_segments: u64,
}

impl TitleReport {
    /// Reads a report; the error names the line and column of the first field that is not
    /// what a report holds there.
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// True when the report has rungs to show (a running job's status has none).
    pub fn has_rungs(&self) -> bool {
        !self.rungs.is_empty()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RungIn {
    name: String,
    width: u32,
    height: u32,
    average_kbps: Option<f64>,
    peak_kbps: Option<f64>,
    vmaf: Option<VmafIn>,
    chunks: Vec<ChunkIn>,
    per_frame_vmaf: Option<Vec<Option<f64>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VmafIn {
    mean: Option<f64>,
    harmonic_mean: Option<f64>,
    min: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ChunkIn {
    crf: Option<f64>,
    kbps: Option<f64>,
    start_frame: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LadderIn {
    mode: Option<String>,
    notes: Vec<String>,
    fixed_measured: Option<EstimateIn>,
    fixed_estimate: Option<EstimateIn>,
    title_points: Option<Vec<PointIn>>,
    hull: Vec<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EstimateIn {
    rungs: Vec<IgnoredAny>,
    left_out: u64,
    bd_rate_percent: Option<f64>,
    why_none: Option<String>,
    basis: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PointIn {
    width: u32,
    height: u32,
    kbps: Option<f64>,
    vmaf_mean: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StageIn {
    stage: String,
    wall_seconds: Option<f64>,
    cpu_seconds: Option<f64>,
}

/// A figure; `NaN` when missing.
fn f(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

/// What the title page shows.
pub(super) struct TitlePage {
    /// The master's file name.
    pub name: String,
    /// The codec.
    pub codec: String,
    /// Frames, as the report writes them.
    pub frames: String,
    /// The frame rate, as a fraction (`25/1`).
    pub frame_rate: String,
    /// Duration in seconds.
    pub duration_seconds: f64,
    /// Chunks, as the report writes them.
    pub chunks: String,
    /// The ladder's mode (`per-title`, `shot`, ...), when it has one.
    pub mode: Option<String>,
    /// The rungs, top to bottom as the report lists them.
    pub rungs: Vec<Rung>,
    /// The estimate of bits saved against the fixed ladder, when the report has one.
    pub saved: Option<Saved>,
    /// The ladder's notes.
    pub notes: Vec<String>,
    /// Where the time went, per stage.
    pub stages: Vec<Stage>,
    /// The probes' points and the hull, when the ladder has them.
    pub rd: Option<Rd>,
    /// Each encrypted track: `video/ID` or `audio/ID`, the scheme, the key ID and the clear
    /// segments (never a key: reports hold none).
    pub protection: Vec<Protected>,
    /// Each codec's ladder, in a multi-codec title (empty otherwise: the page's own fields
    /// are the one ladder).
    pub sections: Vec<Section>,
}

/// One codec's ladder of a multi-codec title.
pub(super) struct Section {
    /// The codec.
    pub codec: String,
    /// The ladder's mode, when it has one.
    pub mode: Option<String>,
    /// Its rungs.
    pub rungs: Vec<Rung>,
    /// Against Apple's fixed ladder for the codec.
    pub saved: Option<Saved>,
    /// The ladder's notes.
    pub notes: Vec<String>,
    /// Its probes and hull.
    pub rd: Option<Rd>,
    /// Against the title's H.264 ladder.
    pub against_h264: Option<Comparison>,
}

/// A codec's ladder against the title's H.264 ladder.
pub(super) struct Comparison {
    /// BD-rate, percent.
    pub bd_rate_percent: Option<f64>,
    /// BD-VMAF.
    pub bd_vmaf: Option<f64>,
    /// The VMAF range both cover.
    pub quality_range: Option<(f64, f64)>,
    /// Why there is none.
    pub why_none: String,
    /// How it is made.
    pub basis: String,
}

/// One encrypted track.
pub(super) struct Protected {
    /// `video/ID` or `audio/ID`.
    pub track: String,
    /// `cenc` or `cbcs`.
    pub scheme: String,
    /// The key ID.
    pub kid: String,
    /// Leading segments left clear.
    pub clear_segments: u64,
}

/// One rung.
pub(super) struct Rung {
    /// Its name.
    pub name: String,
    /// `WIDTHxHEIGHT`.
    pub size: String,
    /// Average bit rate, kbit/s.
    pub average_kbps: f64,
    /// Peak bit rate, kbit/s.
    pub peak_kbps: f64,
    /// Mean VMAF.
    pub vmaf_mean: f64,
    /// Harmonic mean VMAF.
    pub vmaf_harmonic: f64,
    /// Lowest frame VMAF.
    pub vmaf_min: f64,
    /// Its chunks, in order.
    pub chunks: Vec<Chunk>,
    /// VMAF of every frame, when measured.
    pub per_frame_vmaf: Option<Vec<f64>>,
}

/// One chunk of a rung.
pub(super) struct Chunk {
    /// Its CRF, when encoded at one.
    pub crf: Option<f64>,
    /// Its bit rate, kbit/s.
    pub kbps: f64,
    /// Its first frame.
    pub start_frame: f64,
}

/// The bits saved against Apple's fixed ladder, at equal quality: measured (`--compare-fixed`)
/// or estimated on the title's curves.
pub(super) struct Saved {
    /// Apple's ladder was encoded and measured.
    pub measured: bool,
    /// Apple's rungs compared.
    pub rungs: usize,
    /// Apple's rungs outside the title's curves, left out.
    pub left_out: u64,
    /// The BD-rate in percent (negative saves bits), when it could be computed.
    pub bd_rate_percent: Option<f64>,
    /// Why there is no BD-rate.
    pub why_none: String,
    /// What the estimate rests on.
    pub basis: String,
}

/// One stage's time.
pub(super) struct Stage {
    /// Its name.
    pub name: String,
    /// Wall seconds.
    pub wall_seconds: f64,
    /// CPU seconds.
    pub cpu_seconds: f64,
}

/// The rate-quality inputs: the pooled probes per resolution and the convex hull.
pub(super) struct Rd {
    /// (kbit/s, VMAF) points per (height, width).
    pub by_size: BTreeMap<(u64, u64), Vec<(f64, f64)>>,
    /// The hull's (kbit/s, VMAF) points, by rising bit rate.
    pub hull: Vec<(f64, f64)>,
}

impl TitlePage {
    /// The page's data of `report`.
    pub fn from_report(report: &TitleReport) -> Self {
        let master = if report.master.is_empty() {
            "title"
        } else {
            &report.master
        };
        let name = Path::new(master)
            .file_name()
            .map_or(master.to_owned(), |n| n.to_string_lossy().into_owned());
        let ladder = report.ladder.as_ref();
        let sections = report
            .codecs
            .iter()
            .map(|c| {
                let ladder = c.ladder.as_ref();
                Section {
                    codec: c.codec.clone(),
                    mode: ladder.and_then(|l| l.mode.clone()),
                    rungs: report
                        .rungs
                        .iter()
                        .filter(|r| c.rungs.contains(&r.name))
                        .map(Rung::from_report)
                        .collect(),
                    saved: ladder.and_then(saved_of),
                    notes: ladder.map(|l| l.notes.clone()).unwrap_or_default(),
                    rd: ladder.and_then(Rd::from_ladder),
                    against_h264: c.against_h264.as_ref().map(|a| Comparison {
                        bd_rate_percent: a.bd_rate_percent,
                        bd_vmaf: a.bd_vmaf,
                        quality_range: a.quality_range.map(|(lo, hi)| (f(lo), f(hi))),
                        why_none: a
                            .why_none
                            .clone()
                            .unwrap_or_else(|| "too few points".into()),
                        basis: a.basis.clone().unwrap_or_else(|| "measured".into()),
                    }),
                }
            })
            .collect();
        Self {
            sections,
            name,
            codec: if report.codecs.is_empty() {
                report.codec.clone()
            } else {
                let names: Vec<&str> = report.codecs.iter().map(|c| c.codec.as_str()).collect();
                names.join(", ")
            },
            frames: report.frames.to_string(),
            frame_rate: report.frame_rate.clone(),
            duration_seconds: f(report.duration_seconds),
            chunks: report.chunks.to_string(),
            mode: ladder.and_then(|l| l.mode.clone()),
            rungs: report.rungs.iter().map(Rung::from_report).collect(),
            saved: ladder.and_then(saved_of),
            notes: ladder.map(|l| l.notes.clone()).unwrap_or_default(),
            stages: report
                .stages
                .iter()
                .map(|s| Stage {
                    name: s.stage.clone(),
                    wall_seconds: f(s.wall_seconds),
                    cpu_seconds: f(s.cpu_seconds),
                })
                .collect(),
            rd: ladder.and_then(Rd::from_ladder),
            protection: report
                .package
                .iter()
                .flat_map(|p| {
                    let video = p.video.iter().map(|t| ("video", t));
                    video.chain(p.audio.iter().map(|t| ("audio", t)))
                })
                .filter_map(|(kind, t)| {
                    t.encryption.as_ref().map(|e| Protected {
                        track: format!("{kind}/{}", t.id),
                        scheme: e.scheme.clone(),
                        kid: e.kid.clone(),
                        clear_segments: e.clear_segments,
                    })
                })
                .collect(),
        }
    }
}

/// A ladder's comparison with Apple's: measured when it was, estimated otherwise.
fn saved_of(l: &LadderIn) -> Option<Saved> {
    l.fixed_measured
        .as_ref()
        .map(|e| Saved::from_estimate(e, true))
        .or_else(|| {
            l.fixed_estimate
                .as_ref()
                .map(|e| Saved::from_estimate(e, false))
        })
}

impl Rung {
    fn from_report(r: &RungIn) -> Self {
        let v = r.vmaf.as_ref();
        Self {
            name: r.name.clone(),
            size: format!("{}x{}", r.width, r.height),
            average_kbps: f(r.average_kbps),
            peak_kbps: f(r.peak_kbps),
            vmaf_mean: f(v.and_then(|v| v.mean)),
            vmaf_harmonic: f(v.and_then(|v| v.harmonic_mean)),
            vmaf_min: f(v.and_then(|v| v.min)),
            chunks: r
                .chunks
                .iter()
                .map(|c| Chunk {
                    crf: c.crf,
                    kbps: f(c.kbps),
                    start_frame: c.start_frame as f64,
                })
                .collect(),
            per_frame_vmaf: r
                .per_frame_vmaf
                .as_ref()
                .map(|v| v.iter().map(|x| f(*x)).collect()),
        }
    }
}

impl Saved {
    /// The comparison against the fixed ladder: measured, or estimated on the title's curves.
    fn from_estimate(e: &EstimateIn, measured: bool) -> Self {
        Self {
            measured,
            rungs: e.rungs.len(),
            left_out: e.left_out,
            bd_rate_percent: e.bd_rate_percent,
            why_none: e
                .why_none
                .clone()
                .unwrap_or_else(|| "too few points".into()),
            basis: e.basis.clone().unwrap_or_else(|| "estimate".into()),
        }
    }
}

impl Rd {
    /// The ladder's title points and hull, when it has title points.
    fn from_ladder(ladder: &LadderIn) -> Option<Self> {
        let points = ladder.title_points.as_ref()?;
        let rd = |p: &PointIn| (f(p.kbps), f(p.vmaf_mean));
        let mut by_size: BTreeMap<(u64, u64), Vec<(f64, f64)>> = BTreeMap::new();
        for p in points {
            by_size
                .entry((u64::from(p.height), u64::from(p.width)))
                .or_default()
                .push(rd(p));
        }
        let mut hull: Vec<(f64, f64)> = ladder
            .hull
            .iter()
            .filter_map(|&i| points.get(i))
            .map(rd)
            .collect();
        hull.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(Self { by_size, hull })
    }
}
