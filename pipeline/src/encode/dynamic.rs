//! Per-title and shot-level ladders: which probes to run, and from their points, the settings
//! of every chunk of every rung.
//!
//! Probing runs in rounds. The first encodes every candidate resolution at three quality
//! settings spread over the useful range. Each later round places the rungs on the per-title
//! hull built so far and refines only where they fall: resolutions that hold no rung get
//! nothing more (the hull dominates them there), the measured interval around each rung's
//! setting is bisected, and the range grows at either end when the top rung's quality or the
//! bottom rung's bit rate is pinned to its edge. Points already in the store are reused.
//! Every round uses the same settings in every chunk, so that they pool into per-title points.

use std::collections::BTreeMap;

use ladders::optimize::{self, Choice, Constraints};
use ladders::rd::CurvePoint;
use ladders::title::{self, ChunkProbes, LadderRules, Size, TitleDecision};
use ladders::{Curve, Tally};
use serde::{Deserialize, Serialize};
use workers::encode::Codec;
use workers::store::Key;

/// Rounds of probing, the first included.
pub const MAX_ROUNDS: usize = 3;

/// The first round's settings for `codec`, and the step by which later rounds extend the range.
pub fn first_round(codec: Codec) -> ([f32; 3], f32) {
    match codec {
        Codec::H264 => ([20.0, 29.0, 38.0], 6.0),
        Codec::Hevc => ([22.0, 30.0, 38.0], 6.0),
        Codec::Av1 => ([25.0, 37.0, 49.0], 8.0),
        Codec::Vp9 => ([24.0, 36.0, 48.0], 8.0),
        Codec::Av1Rav1e => ([80.0, 130.0, 180.0], 30.0),
    }
}

/// The finest quality step the shot optimiser considers.
pub fn choice_step(codec: Codec) -> f64 {
    if codec == Codec::Av1Rav1e { 1.0 } else { 0.5 }
}

/// A setting as it appears in keys and task ids.
pub fn crf_text(crf: f32) -> String {
    format!("{crf:.2}")
}

/// The store key of one probe point.
pub fn probe_key(size: Size, chunk: usize, crf: f32) -> Key {
    Key::new(format!(
        "probes/{}x{}/{chunk:05}/{}.json",
        size.width,
        size.height,
        crf_text(crf)
    ))
    .expect("a valid key")
}

/// What the store keeps of a probe.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredProbe {
    /// The setting.
    pub crf: f32,
    /// Bits.
    pub bits: u64,
    /// Per-frame VMAF.
    pub vmaf: Vec<f64>,
}

/// The probes to add in the next round: for each resolution index, the settings every chunk
/// gets. Empty when probing is done.
pub fn next_round(
    round: usize,
    codec: Codec,
    sizes: &[Size],
    measured: &[BTreeMap<usize, Vec<f32>>],
    pooled: Option<&TitleDecision>,
    rules: &LadderRules,
) -> Vec<(usize, Vec<f32>)> {
    let (first, step) = first_round(codec);
    let (lo_limit, hi_limit) = codec.quality_range();
    let whole = codec == Codec::Av1Rav1e;
    let fix = |c: f32| {
        let c = c.clamp(lo_limit.max(1.0), hi_limit);
        if whole { c.round() } else { c }
    };
    if round == 0 {
        return (0..sizes.len()).map(|i| (i, first.to_vec())).collect();
    }
    let Some(decision) = pooled else {
        return Vec::new();
    };
    if round >= MAX_ROUNDS {
        return Vec::new();
    }
    // Settings every chunk measured, per resolution.
    let common = |si: usize| -> Vec<f32> {
        let mut sets = measured
            .iter()
            .map(|m| m.get(&si).cloned().unwrap_or_default());
        let Some(mut c) = sets.next() else {
            return Vec::new();
        };
        for s in sets {
            c.retain(|x| s.contains(x));
        }
        c.sort_by(f32::total_cmp);
        c
    };
    let mut out: BTreeMap<usize, Vec<f32>> = BTreeMap::new();
    let size_index = |size: Size| sizes.iter().position(|s| *s == size);
    // Refine where the rungs are: the measured interval around each rung's setting is halved
    // while it is wider than the extension step. Resolutions that hold no rung
    // are dominated by the hull and get nothing more.
    for r in &decision.rungs {
        let Some(si) = size_index(r.point.size) else {
            continue;
        };
        let have = common(si);
        let crf = r.point.crf;
        for w in have.windows(2) {
            let (a, b) = (f64::from(w[0]), f64::from(w[1]));
            if crf > a && crf < b && (w[1] - w[0]) > step {
                let mid = fix((w[0] + w[1]) / 2.0);
                if !have.contains(&mid) {
                    out.entry(si).or_default().push(mid);
                }
            }
        }
    }
    // Grow the range where the ladder's ends are pinned to its edge: a top rung short of the
    // top quality at the lowest setting measured, or a bottom rung above the bit-rate floor at
    // the highest.
    let ends = [
        decision.rungs.last().map(|r| (r, true)),
        decision.rungs.first().map(|r| (r, false)),
    ];
    for (r, top) in ends.into_iter().flatten() {
        let Some(si) = size_index(r.point.size) else {
            continue;
        };
        let have = common(si);
        let (Some(&lowest), Some(&highest)) = (have.first(), have.last()) else {
            continue;
        };
        let c = if top {
            if r.point.quality >= rules.top_vmaf
                || f64::from(lowest) < r.point.crf
                || lowest <= lo_limit.max(1.0)
            {
                continue;
            }
            fix(lowest - step)
        } else {
            if r.point.kbps <= rules.min_kbps * 1.05
                || f64::from(highest) > r.point.crf
                || highest >= hi_limit
            {
                continue;
            }
            fix(highest + step)
        };
        if !have.contains(&c) {
            out.entry(si).or_default().push(c);
        }
    }
    out.into_iter()
        .map(|(i, mut v)| {
            v.sort_by(f32::total_cmp);
            v.dedup();
            (i, v)
        })
        .collect()
}

/// The chunks' curves from their stored probes: `points[chunk][size]` lists (crf, bits, vmaf).
pub fn chunk_probes(
    sizes: &[Size],
    points: &[BTreeMap<usize, Vec<StoredProbe>>],
) -> Vec<ChunkProbes> {
    points
        .iter()
        .map(|by_size| ChunkProbes {
            curves: by_size
                .iter()
                .map(|(&si, probes)| {
                    (
                        sizes[si],
                        Curve::new(probes.iter().map(|p| CurvePoint {
                            crf: f64::from(p.crf),
                            tally: Tally::of_frames(p.bits as f64, &p.vmaf),
                        })),
                    )
                })
                .collect(),
        })
        .collect()
}

/// The shot optimiser's candidates for every chunk at `size`: each chunk's curve sampled every
/// `step` across its measured range.
pub fn candidates(chunks: &[ChunkProbes], size: Size, step: f64) -> Vec<Vec<Choice>> {
    chunks
        .iter()
        .map(|c| {
            c.curves
                .get(&size)
                .map(|curve| {
                    curve
                        .grid(step)
                        .into_iter()
                        .filter_map(|crf| curve.at(crf).map(|tally| Choice { crf, tally }))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

/// One rung decided from probes: its per-title point and, per chunk, the setting to encode.
#[derive(Clone, Debug, Serialize)]
pub struct DecidedRung {
    /// Name.
    pub name: String,
    /// Resolution.
    pub size: Size,
    /// The per-title setting (the same in every chunk).
    pub title_crf: f64,
    /// The per-title hull point's predicted average bit rate.
    pub title_kbps: f64,
    /// Its predicted pooled VMAF.
    pub title_vmaf: f64,
    /// The VBV maximum rate, kbit/s.
    pub maxrate_kbps: f64,
    /// The shot-level allocation, in shot mode.
    pub allocation: Option<optimize::Allocation>,
}

impl DecidedRung {
    /// The setting of chunk `i`.
    pub fn crf(&self, i: usize) -> f64 {
        self.allocation
            .as_ref()
            .and_then(|a| a.choices.get(i))
            .map_or(self.title_crf, |c| c.crf)
    }
}

/// The rungs of the per-title decision, each with its shot-level allocation when `shot`.
pub fn rungs(
    decision: &TitleDecision,
    chunks: &[ChunkProbes],
    fps: f64,
    rules: &LadderRules,
    codec: Codec,
    shot: bool,
) -> Result<Vec<DecidedRung>, optimize::OptimizeError> {
    let mut out: Vec<DecidedRung> = Vec::new();
    for r in &decision.rungs {
        let allocation = if shot {
            let cands = candidates(chunks, r.point.size, choice_step(codec));
            Some(optimize::allocate(
                &cands,
                fps,
                rules.pooling,
                title::shot_target(r, rules),
                Constraints {
                    max_kbps: Some(rules.max_kbps),
                    chunk_max_kbps: Some(r.maxrate_kbps),
                },
            )?)
        } else {
            None
        };
        let base = format!("{}p", r.point.size.short_side());
        let name = if out.iter().any(|o| o.name == base) {
            format!("{base}-{}k", r.point.kbps.round())
        } else {
            base
        };
        out.push(DecidedRung {
            name,
            size: r.point.size,
            title_crf: r.point.crf,
            title_kbps: r.point.kbps,
            title_vmaf: r.point.quality,
            maxrate_kbps: r.maxrate_kbps,
            allocation,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_rounds_cover_every_size_and_settings_are_valid_for_the_codec() {
        let sizes = title::candidate_sizes(1280, 720, 16.0 / 9.0, 1.5);
        for codec in Codec::ALL {
            let r = next_round(0, codec, &sizes, &[], None, &LadderRules::default());
            assert_eq!(r.len(), sizes.len());
            let (lo, hi) = codec.quality_range();
            for (_, crfs) in r {
                assert!(crfs.iter().all(|c| (lo..=hi).contains(c)));
            }
        }
        assert_eq!(
            probe_key(
                Size {
                    width: 416,
                    height: 234
                },
                3,
                29.5
            )
            .as_str(),
            "probes/416x234/00003/29.50.json"
        );
    }
}
