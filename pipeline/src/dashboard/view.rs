//! The title page's data, read from an encode report (`report.json` as JSON) before any of it
//! is rendered. Missing or mistyped fields read as empty text, `NaN` figures or absent
//! sections, as the page has always shown them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// A figure of the report; `NaN` when missing.
fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Text of the report; empty when missing.
fn text(v: &Value) -> String {
    v.as_str().unwrap_or("").to_owned()
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
    /// Reads the page's data from `report`.
    pub fn from_report(report: &Value) -> Self {
        let master = report["master"].as_str().unwrap_or("title");
        let name = Path::new(master)
            .file_name()
            .map_or(master.to_owned(), |n| n.to_string_lossy().into_owned());
        let ladder = &report["ladder"];
        Self {
            name,
            codec: text(&report["codec"]),
            frames: report["frames"].to_string(),
            frame_rate: text(&report["frame_rate"]),
            duration_seconds: f(&report["duration_seconds"]),
            chunks: report["chunks"].to_string(),
            mode: ladder["mode"].as_str().map(str::to_owned),
            rungs: report["rungs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(Rung::from_report)
                .collect(),
            saved: Saved::from_measured(&ladder["fixed_measured"])
                .or_else(|| Saved::from_estimate(&ladder["fixed_estimate"])),
            notes: ladder["notes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect(),
            stages: report["stages"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| Stage {
                    name: text(&s["stage"]),
                    wall_seconds: f(&s["wall_seconds"]),
                    cpu_seconds: f(&s["cpu_seconds"]),
                })
                .collect(),
            rd: Rd::from_ladder(ladder),
        }
    }
}

impl Rung {
    fn from_report(r: &Value) -> Self {
        let v = &r["vmaf"];
        Self {
            name: text(&r["name"]),
            size: format!("{}x{}", r["width"], r["height"]),
            average_kbps: f(&r["average_kbps"]),
            peak_kbps: f(&r["peak_kbps"]),
            vmaf_mean: f(&v["mean"]),
            vmaf_harmonic: f(&v["harmonic_mean"]),
            vmaf_min: f(&v["min"]),
            chunks: r["chunks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| Chunk {
                    crf: c["crf"].as_f64(),
                    kbps: f(&c["kbps"]),
                    start_frame: f(&c["start_frame"]),
                })
                .collect(),
            per_frame_vmaf: r["per_frame_vmaf"]
                .as_array()
                .map(|v| v.iter().map(f).collect()),
        }
    }
}

impl Saved {
    /// The measured comparison, when the encode made one.
    fn from_measured(e: &Value) -> Option<Self> {
        Self::from_estimate(e).map(|s| Self {
            measured: true,
            ..s
        })
    }

    /// The estimate, when `e` is one (a fixed ladder has none).
    fn from_estimate(e: &Value) -> Option<Self> {
        e.is_object().then(|| Self {
            measured: false,
            rungs: e["rungs"].as_array().map_or(0, Vec::len),
            left_out: e["left_out"].as_u64().unwrap_or(0),
            bd_rate_percent: e["bd_rate_percent"].as_f64(),
            why_none: e["why_none"]
                .as_str()
                .unwrap_or("too few points")
                .to_owned(),
            basis: e["basis"].as_str().unwrap_or("estimate").to_owned(),
        })
    }
}

impl Rd {
    /// The ladder's title points and hull, when it has title points.
    fn from_ladder(ladder: &Value) -> Option<Self> {
        let points = ladder["title_points"].as_array()?;
        let rd = |p: &Value| (f(&p["kbps"]), f(&p["vmaf_mean"]));
        let mut by_size: BTreeMap<(u64, u64), Vec<(f64, f64)>> = BTreeMap::new();
        for p in points {
            by_size
                .entry((
                    p["height"].as_u64().unwrap_or(0),
                    p["width"].as_u64().unwrap_or(0),
                ))
                .or_default()
                .push(rd(p));
        }
        let mut hull: Vec<(f64, f64)> = ladder["hull"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i.as_u64().and_then(|i| points.get(i as usize)))
            .map(rd)
            .collect();
        hull.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(Self { by_size, hull })
    }
}
