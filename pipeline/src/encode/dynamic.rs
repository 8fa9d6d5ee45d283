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
use ladders::title::{self, ChunkProbes, LadderRules, Size, TitleDecision, TitleRung};
use ladders::{Curve, Tally};
use serde::{Deserialize, Serialize};
use store::Key;
use workers::encode::{Codec, Vbv, Zone};

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

/// The largest shift of the setting the anchors may find between the probe preset and the
/// final one: two thirds of the first round's extension step (4 CRF for x264 and x265).
pub fn max_shift(codec: Codec) -> f64 {
    f64::from(first_round(codec).1) * 2.0 / 3.0
}

/// The finest quality step the shot optimiser considers.
pub fn choice_step(codec: Codec) -> f64 {
    if codec == Codec::Av1Rav1e { 1.0 } else { 0.5 }
}

/// A setting as it appears in keys and task ids.
pub fn crf_text(crf: f32) -> String {
    format!("{crf:.2}")
}

/// The store key of one probe point; `space` is a codec's folder in a multi-codec title
/// (`av1/`), empty otherwise.
pub fn probe_key(space: &str, size: Size, chunk: usize, crf: f32) -> Key {
    Key::new(format!(
        "probes/{space}{}x{}/{chunk:05}/{}.json",
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
    /// Per-frame bits, in presentation order.
    #[serde(default)]
    pub frame_bits: Vec<u64>,
    /// Per-frame VMAF (with sampling, each frame holds the nearest scored frame's).
    pub vmaf: Vec<f64>,
    /// One frame in this many was scored.
    #[serde(default = "one")]
    pub scored_every: u64,
    /// CPU seconds spent reading and encoding it (its share of its task's).
    #[serde(default)]
    pub encode_cpu: f64,
    /// CPU seconds spent decoding and scoring it.
    #[serde(default)]
    pub score_cpu: f64,
}

impl StoredProbe {
    /// The tally of `unit`'s frames (of the probe's chunk).
    pub fn tally(&self, unit: &Unit) -> Tally {
        let range = unit.start as usize..(unit.start + unit.frames) as usize;
        let whole = unit.start == 0 && unit.frames as usize == self.vmaf.len();
        let vmaf = self.vmaf.get(range.clone()).unwrap_or(&[]);
        let bits = if whole {
            self.bits as f64
        } else if let Some(b) = self.frame_bits.get(range) {
            b.iter().sum::<u64>() as f64
        } else {
            // A probe stored without per-frame bits: a share by frames.
            self.bits as f64 * unit.frames as f64 / self.vmaf.len().max(1) as f64
        };
        Tally::of_frames(bits, vmaf)
    }
}

fn one() -> u64 {
    1
}

/// A stretch of a chunk that the shot optimiser gives its own setting: a shot inside the
/// chunk (encoded as a zone), or the whole chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Unit {
    /// The chunk.
    pub chunk: usize,
    /// First frame, counted from the chunk's first.
    pub start: u64,
    /// Frames.
    pub frames: u64,
}

/// The units of chunks given as (first frame, frames, cuts inside): with `zones`, one per shot
/// inside each chunk, a shot shorter than `min_frames` joining the next one (the chunk's last
/// shot, the one before it); otherwise one per chunk.
pub fn units(chunks: &[(u64, u64, Vec<u64>)], zones: bool, min_frames: u64) -> Vec<Unit> {
    let mut out = Vec::new();
    for (ci, (start, frames, cuts)) in chunks.iter().enumerate() {
        let mut starts = vec![0u64];
        if zones {
            let mut inner: Vec<u64> = cuts
                .iter()
                .filter(|&&c| c > *start && c < start + frames)
                .map(|c| c - start)
                .collect();
            inner.sort_unstable();
            for c in inner {
                let last = *starts.last().expect("one start");
                if c - last >= min_frames && frames - c >= min_frames {
                    starts.push(c);
                }
            }
        }
        for (i, &s) in starts.iter().enumerate() {
            let end = starts.get(i + 1).copied().unwrap_or(*frames);
            out.push(Unit {
                chunk: ci,
                start: s,
                frames: end - s,
            });
        }
    }
    out
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
    for (si, mid) in bisect_at_rungs(sizes, &common, decision, step) {
        let mid = fix(mid);
        if !common(si).contains(&mid) {
            out.entry(si).or_default().push(mid);
        }
    }
    for (si, c) in pinned_ends(sizes, &common, decision, rules, step, (lo_limit, hi_limit)) {
        let c = fix(c);
        if !common(si).contains(&c) {
            out.entry(si).or_default().push(c);
        }
    }
    for (si, lowest) in cut_off(sizes, &common, decision, rules.top_vmaf) {
        let c = fix(lowest - step);
        if lowest > lo_limit.max(1.0) && !common(si).contains(&c) {
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

/// Where the ladder's ends are pinned to the edge of the measured range, one `step` beyond it:
/// a top rung short of the top quality at the lowest setting measured, or a bottom rung above
/// the bit-rate floor at the highest (within the codec's `limits`).
fn pinned_ends(
    sizes: &[Size],
    common: &dyn Fn(usize) -> Vec<f32>,
    decision: &TitleDecision,
    rules: &LadderRules,
    step: f32,
    (lo_limit, hi_limit): (f32, f32),
) -> Vec<(usize, f32)> {
    let ends = [
        decision.rungs.last().map(|r| (r, true)),
        decision.rungs.first().map(|r| (r, false)),
    ];
    let mut out = Vec::new();
    for (r, top) in ends.into_iter().flatten() {
        let Some(si) = sizes.iter().position(|s| *s == r.point.size) else {
            continue;
        };
        let have = common(si);
        let (Some(&lowest), Some(&highest)) = (have.first(), have.last()) else {
            continue;
        };
        if top {
            if r.point.quality < rules.top_vmaf
                && f64::from(lowest) >= r.point.crf
                && lowest > lo_limit.max(1.0)
            {
                out.push((si, lowest - step));
            }
        } else if r.point.kbps > rules.min_kbps * 1.05
            && f64::from(highest) <= r.point.crf
            && highest < hi_limit
        {
            out.push((si, highest + step));
        }
    }
    out
}

/// Where the rungs are: the middle of the measured interval around each rung's setting, while
/// it is wider than `step`. Resolutions that hold no rung are dominated by the hull and get
/// nothing more.
fn bisect_at_rungs(
    sizes: &[Size],
    common: &dyn Fn(usize) -> Vec<f32>,
    decision: &TitleDecision,
    step: f32,
) -> Vec<(usize, f32)> {
    let mut out = Vec::new();
    for r in &decision.rungs {
        let Some(si) = sizes.iter().position(|s| *s == r.point.size) else {
            continue;
        };
        let crf = r.point.crf;
        for w in common(si).windows(2) {
            let (a, b) = (f64::from(w[0]), f64::from(w[1]));
            if crf > a && crf < b && (w[1] - w[0]) > step {
                out.push((si, (w[0] + w[1]) / 2.0));
            }
        }
    }
    out
}

/// Resolutions whose curve ends on the hull short of `top_vmaf`, with their lowest measured
/// setting (`common` gives a resolution's settings every chunk measured, rising). The best
/// setting of such a resolution still wins, so the hull above it (and any rung there) is made
/// by larger sizes only because this one was never measured higher: real masters that are soft
/// or noisy keep a smaller size on the hull up to the top rates.
fn cut_off(
    sizes: &[Size],
    common: &dyn Fn(usize) -> Vec<f32>,
    decision: &TitleDecision,
    top_vmaf: f64,
) -> Vec<(usize, f32)> {
    let on_hull = |size: Size, crf: f32| {
        decision
            .hull
            .iter()
            .filter_map(|&i| decision.points.get(i))
            .find(|p| p.size == size && p.measured && (p.crf - f64::from(crf)).abs() < 1e-3)
            .is_some_and(|p| p.quality < top_vmaf)
    };
    sizes
        .iter()
        .enumerate()
        .filter_map(|(si, &size)| {
            let lowest = *common(si).first()?;
            on_hull(size, lowest).then_some((si, lowest))
        })
        .collect()
}

/// Each unit's points by resolution, from its chunk's stored probes: `points[chunk][size]`.
pub fn unit_points(
    sizes: &[Size],
    points: &[BTreeMap<usize, Vec<StoredProbe>>],
    units: &[Unit],
) -> Vec<BTreeMap<Size, Vec<CurvePoint>>> {
    units
        .iter()
        .map(|u| {
            points
                .get(u.chunk)
                .into_iter()
                .flatten()
                .map(|(&si, probes)| {
                    let at = probes.iter().map(|p| CurvePoint {
                        crf: f64::from(p.crf),
                        tally: p.tally(u),
                    });
                    (sizes[si], at.collect())
                })
                .collect()
        })
        .collect()
}

/// The units' curves from their chunks' stored probes: `points[chunk][size]`.
pub fn chunk_probes(
    sizes: &[Size],
    points: &[BTreeMap<usize, Vec<StoredProbe>>],
    units: &[Unit],
) -> Vec<ChunkProbes> {
    unit_points(sizes, points, units)
        .into_iter()
        .map(|by_size| ChunkProbes {
            curves: by_size
                .into_iter()
                .map(|(size, at)| (size, Curve::new(at)))
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

/// One point to probe: a quality setting, and for an anchor the VBV cap of the rung it stands
/// for (an anchor is made at a rung's final settings, so that it can be that rung's chunk).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ProbeAt {
    /// The quality setting.
    pub crf: f32,
    /// The VBV cap, for anchors of codecs that take one.
    pub vbv: Option<Vbv>,
}

impl ProbeAt {
    /// A probe at `crf`, without a cap.
    pub fn crf(crf: f32) -> Self {
        Self { crf, vbv: None }
    }
}

/// The VBV cap of a rung whose maximum rate is `maxrate_kbps` (none for rav1e, which takes no
/// cap): a buffer of two seconds at that rate.
pub fn rung_vbv(codec: Codec, maxrate_kbps: f64) -> Option<Vbv> {
    (codec != Codec::Av1Rav1e).then(|| {
        let maxrate = maxrate_kbps.round().max(1.0) as u32;
        Vbv {
            maxrate_kbps: maxrate,
            bufsize_kbit: maxrate.saturating_mul(2),
        }
    })
}

/// Of the anchors a decision asks for, those not yet covered by the ones made (`made`: the
/// settings anchored per resolution index). A resolution is anchored whole the first time; after
/// that, only a rung that the corrected ladder moved out of its resolution's anchored span by
/// more than half of [`max_shift`] is anchored again: past the span the correction is held, not
/// measured, and it drifts with the setting (on a dark animated clip the top rung went to the
/// unanchored top of 598p, predicted at 95.8 VMAF, and measured 91.1).
pub fn unanchored(
    asked: Vec<(usize, Vec<ProbeAt>)>,
    made: &BTreeMap<usize, Vec<f32>>,
    codec: Codec,
) -> Vec<(usize, Vec<ProbeAt>)> {
    let within = max_shift(codec) / 2.0;
    asked
        .into_iter()
        .filter_map(|(si, ats)| {
            let Some(have) = made.get(&si).filter(|h| !h.is_empty()) else {
                return Some((si, ats));
            };
            let lo = have.iter().copied().fold(f32::INFINITY, f32::min) as f64 - within;
            let hi = have.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64 + within;
            let out: Vec<ProbeAt> = ats
                .into_iter()
                .filter(|a| !(lo..=hi).contains(&f64::from(a.crf)))
                .collect();
            (!out.is_empty()).then_some((si, out))
        })
        .collect()
}

/// The store key of one anchor: a probe at the final preset that checks the fast probes.
pub fn anchor_key(space: &str, size: Size, chunk: usize, at: ProbeAt) -> Key {
    let cap = at
        .vbv
        .map(|v| format!("-vbv{}", v.maxrate_kbps))
        .unwrap_or_default();
    Key::new(format!(
        "anchors/{space}{}x{}/{chunk:05}/{}{cap}.json",
        size.width,
        size.height,
        crf_text(at.crf)
    ))
    .expect("a valid key")
}

/// Where the final preset checks probes made at a faster one: at every resolution holding
/// rungs, the lowest and the highest rung setting there, so that the correction is a line
/// across the rungs' range rather than one shift (a fast preset's error grows with the setting:
/// without x264's macroblock tree, superfast misjudges the bits of easy content most at low
/// rates). Per-title and shot-level ladders anchor alike, so they start from the same per-title
/// decision. Resolutions without rungs borrow the correction of the nearest one that has some.
/// Each anchor takes its rung's VBV cap, so that a rung that stays on it is not encoded again.
pub fn anchors(
    decision: &TitleDecision,
    sizes: &[Size],
    codec: Codec,
) -> Vec<(usize, Vec<ProbeAt>)> {
    let step = choice_step(codec);
    let mut out: BTreeMap<usize, Vec<ProbeAt>> = BTreeMap::new();
    for r in &decision.rungs {
        if let Some(si) = sizes.iter().position(|s| *s == r.point.size) {
            out.entry(si).or_default().push(ProbeAt {
                crf: ((r.point.crf / step).round() * step) as f32,
                vbv: rung_vbv(codec, r.maxrate_kbps),
            });
        }
    }
    out.into_iter()
        .map(|(si, mut v)| {
            v.sort_by(|a, b| a.crf.total_cmp(&b.crf));
            let (lo, hi) = (v[0], v[v.len() - 1]);
            (
                si,
                if lo.crf == hi.crf {
                    vec![lo]
                } else {
                    vec![lo, hi]
                },
            )
        })
        .collect()
}

/// Moves the rungs onto the anchors near them (see [`title::prefer`]; the top rung loses at
/// most one VMAF point), so that those rungs' chunks are the anchors' encodes. Each rung that
/// now sits on an anchor takes the anchor's cap. Returns how many did.
pub fn settle_on_anchors(
    decision: &mut TitleDecision,
    made: &[(Size, ProbeAt)],
    rules: &LadderRules,
    codec: Codec,
) -> usize {
    let preferred: Vec<(Size, f64)> = made.iter().map(|(s, a)| (*s, f64::from(a.crf))).collect();
    let on = title::prefer(decision, &preferred, rules, 1.0);
    let mut count = 0;
    for (rung, on) in decision.rungs.iter_mut().zip(on) {
        let Some((size, crf)) = on else { continue };
        let cap = made
            .iter()
            .find(|(s, a)| *s == size && (f64::from(a.crf) - crf).abs() < 1e-6)
            .and_then(|(_, a)| a.vbv);
        match cap {
            Some(v) => rung.maxrate_kbps = f64::from(v.maxrate_kbps),
            None if codec != Codec::Av1Rav1e => continue,
            None => {}
        }
        count += 1;
    }
    count
}

/// How the final preset relates to the probe preset near one anchor: the final preset at
/// setting `at + delta` gives the quality the probe preset gives at `at`, spending `ln_bits`
/// more log-bits. A preset mostly shifts the setting and the efficiency; a shift of the
/// setting holds across the range far better than a difference of quality at equal settings,
/// which is large where quality falls steeply and vanishes where it saturates.
///
/// Where quality hardly changes with the setting (a static shot, or one that noise keeps low at
/// any setting), equal quality says little about the setting: the shift is then held to
/// `max_shift`, and what quality difference remains is added as it is.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Shift {
    at: f64,
    delta: f64,
    ln_bits: f64,
    quality: f64,
}

impl Shift {
    /// The shift that takes the probe curve through `anchor`: the probe setting of equal mean
    /// quality (the nearest end of the curve when the anchor is outside its quality range).
    fn to(curve: &Curve, anchor: &CurvePoint, max_shift: f64) -> Option<Shift> {
        let (lo, hi) = curve.range()?;
        let target = anchor.tally.mean();
        let q = |y: f64| curve.at(y).map(|t| t.mean());
        let y = if q(lo)? <= target {
            lo
        } else if q(hi)? >= target {
            hi
        } else {
            // Quality falls as the setting rises: bisect for the crossing.
            let (mut a, mut b) = (lo, hi);
            for _ in 0..50 {
                let m = 0.5 * (a + b);
                if q(m)? > target {
                    a = m;
                } else {
                    b = m;
                }
            }
            0.5 * (a + b)
        };
        let y = y
            .clamp(anchor.crf - max_shift, anchor.crf + max_shift)
            .clamp(lo, hi);
        let fast = curve.at(y)?;
        let s = Shift {
            at: y,
            delta: anchor.crf - y,
            ln_bits: (anchor.tally.bits / fast.bits).ln(),
            quality: target - fast.mean(),
        };
        (s.delta.is_finite() && s.ln_bits.is_finite() && s.quality.is_finite()).then_some(s)
    }

    /// The shift at probe setting `y`: linear between anchors, constant beyond them.
    fn at(shifts: &[Shift], y: f64) -> Shift {
        let i = shifts.partition_point(|s| s.at < y);
        match (i.checked_sub(1).and_then(|j| shifts.get(j)), shifts.get(i)) {
            (Some(a), Some(b)) if b.at > a.at => {
                let t = (y - a.at) / (b.at - a.at);
                let l = |x: f64, z: f64| x + (z - x) * t;
                Shift {
                    at: y,
                    delta: l(a.delta, b.delta),
                    ln_bits: l(a.ln_bits, b.ln_bits),
                    quality: l(a.quality, b.quality),
                }
            }
            (Some(s), _) | (None, Some(s)) => *s,
            (None, None) => Shift {
                at: y,
                delta: 0.0,
                ln_bits: 0.0,
                quality: 0.0,
            },
        }
    }

    /// `curve` moved by `shifts`; points whose moved setting would not rise are dropped.
    fn apply(shifts: &[Shift], curve: &Curve) -> Vec<CurvePoint> {
        let mut out: Vec<CurvePoint> = Vec::new();
        for p in curve.points() {
            let s = Shift::at(shifts, p.crf);
            let crf = p.crf + s.delta;
            if out.last().is_some_and(|l| l.crf >= crf) {
                continue;
            }
            let t = &p.tally;
            let n = t.frames as f64;
            let up = |v: f64| (v + s.quality).clamp(0.0, 100.0);
            out.push(CurvePoint {
                crf,
                tally: Tally {
                    frames: t.frames,
                    bits: t.bits * s.ln_bits.exp(),
                    vmaf_sum: up(t.mean()) * n,
                    // The harmonic mean moves by the same amount.
                    inverse_sum: n / (up(t.harmonic()) + 1.0),
                    vmaf_min: up(t.vmaf_min),
                },
            });
        }
        out
    }
}

/// How the anchors moved one resolution's curves, averaged over chunks.
#[derive(Clone, Debug, Serialize)]
pub struct Correction {
    /// Resolution.
    pub size: Size,
    /// Anchored settings (empty when the resolution borrowed a neighbour's correction).
    pub anchors: Vec<f64>,
    /// The final preset's setting minus the probe preset's setting of equal quality.
    pub crf_shift: f64,
    /// The final preset's bits over the probe preset's at equal quality, minus one, in percent.
    pub bits_percent: f64,
}

/// The probe curves moved onto the final preset by the anchors: `anchor_points[chunk]` holds
/// the final-preset points of that chunk per resolution. Each anchor gives a shift of the
/// setting and a ratio of bits at equal quality; between anchors they are interpolated, beyond
/// them held, and resolutions without anchors take those of the nearest anchored resolution.
/// The anchors themselves join their curves, so every corrected curve passes through them.
pub fn calibrate(
    chunks: &[ChunkProbes],
    anchor_points: &[BTreeMap<Size, Vec<CurvePoint>>],
    max_shift: f64,
) -> (Vec<ChunkProbes>, Vec<Correction>) {
    let mut sums: BTreeMap<Size, ShiftSums> = BTreeMap::new();
    let out = chunks
        .iter()
        .zip(anchor_points)
        .map(|(c, anchored)| {
            let shifts = chunk_shifts(c, anchored, max_shift, &mut sums);
            ChunkProbes {
                curves: c
                    .curves
                    .iter()
                    .map(|(size, curve)| {
                        let moved = match nearest_shifts(&shifts, *size) {
                            Some(v) => {
                                let own = if shifts.contains_key(size) {
                                    anchored.get(size).cloned().unwrap_or_default()
                                } else {
                                    Vec::new()
                                };
                                Curve::new(Shift::apply(v, curve).into_iter().chain(own))
                            }
                            None => curve.clone(),
                        };
                        (*size, moved)
                    })
                    .collect(),
            }
        })
        .collect();
    let corrections = chunks
        .first()
        .map(|c| {
            c.curves
                .keys()
                .map(|size| {
                    let (anchors, shift, bits, n) = sums.get(size).cloned().unwrap_or_default();
                    let n = n.max(1) as f64;
                    Correction {
                        size: *size,
                        anchors,
                        crf_shift: shift / n,
                        bits_percent: bits / n,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    (out, corrections)
}

/// Per resolution, over all chunks: the anchored settings, and the sums of the setting shifts,
/// of the bit differences in percent, and their count.
type ShiftSums = (Vec<f64>, f64, f64, usize);

/// The shifts of one chunk's anchored resolutions (by setting), added to `sums`.
fn chunk_shifts(
    c: &ChunkProbes,
    anchored: &BTreeMap<Size, Vec<CurvePoint>>,
    max_shift: f64,
    sums: &mut BTreeMap<Size, ShiftSums>,
) -> BTreeMap<Size, Vec<Shift>> {
    let mut shifts: BTreeMap<Size, Vec<Shift>> = BTreeMap::new();
    for (size, points) in anchored {
        let Some(curve) = c.curves.get(size) else {
            continue;
        };
        let mut v: Vec<Shift> = points
            .iter()
            .filter(|p| curve.points().first().map(|f| f.tally.frames) == Some(p.tally.frames))
            .filter_map(|p| Shift::to(curve, p, max_shift))
            .collect();
        v.sort_by(|a, b| a.at.total_cmp(&b.at));
        if !v.is_empty() {
            let e = sums.entry(*size).or_default();
            e.0 = points.iter().map(|p| p.crf).collect();
            for s in &v {
                e.1 += s.delta;
                e.2 += s.ln_bits.exp_m1() * 100.0;
                e.3 += 1;
            }
            shifts.insert(*size, v);
        }
    }
    shifts
}

/// The shifts of the anchored resolution nearest to `size` in log pixels.
fn nearest_shifts(shifts: &BTreeMap<Size, Vec<Shift>>, size: Size) -> Option<&Vec<Shift>> {
    let lp = (size.pixels() as f64).ln();
    shifts
        .iter()
        .min_by(|a, b| {
            let da = ((a.0.pixels() as f64).ln() - lp).abs();
            let db = ((b.0.pixels() as f64).ln() - lp).abs();
            da.total_cmp(&db)
        })
        .map(|(_, v)| v)
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
    /// The shot-level allocation (one choice per unit), in shot mode.
    pub allocation: Option<optimize::Allocation>,
}

impl DecidedRung {
    /// The setting of unit `i`.
    pub fn crf(&self, i: usize) -> f64 {
        self.allocation
            .as_ref()
            .and_then(|a| a.choices.get(i))
            .map_or(self.title_crf, |c| c.crf)
    }

    /// The setting of chunk `chunk` and its zones: the chunk takes its first unit's setting,
    /// and every later unit at another setting becomes a zone.
    pub fn chunk_setting(&self, units: &[Unit], chunk: usize) -> (f32, Vec<Zone>) {
        let mut mine = units
            .iter()
            .enumerate()
            .filter(|(_, u)| u.chunk == chunk)
            .map(|(i, u)| (u, self.crf(i) as f32));
        let Some((_, base)) = mine.next() else {
            return (self.title_crf as f32, Vec::new());
        };
        let zones = mine
            .filter(|(_, crf)| *crf != base)
            .map(|(u, crf)| Zone {
                start: u.start,
                frames: u.frames,
                crf,
            })
            .collect();
        (base, zones)
    }
}

/// How far below its rung's pooled quality the shot optimiser lets a unit's worst probed frame
/// fall: 12 VMAF points, leaving 3 of the 15 a viewer tolerates for the probes' sampling and
/// prediction error.
pub const FLOOR_BELOW_MEAN: f64 = 12.0;

/// How far below its rung's pooled quality a unit's worst probed frame may be lifted to, at
/// least, when the per-title setting's is already under [`FLOOR_BELOW_MEAN`]: one point short
/// of the 15 a viewer tolerates. Lifting such units to the full floor cost `bbb-chase` 7.7%
/// BD-rate against per-title.
pub const LIMIT_BELOW_MEAN: f64 = 14.0;

/// How far below its own pooled quality the per-title setting's worst probed frame in a unit
/// must be for that frame to count as hard in the master at that rate (the 15 points a viewer
/// tolerates): only such a unit may go under the per-title setting's worst frame.
pub const HARD_BELOW_MEAN: f64 = 15.0;

/// How much lower than the per-title setting's worst frame the shot optimiser may take a hard
/// unit's. Holding it exactly cost 7.9% BD-rate on the multi-shot fixture (its flash pins every
/// unit around it); 5 points cost 0.3%.
pub const HARD_FRAME_SLACK: f64 = 5.0;

/// The least predicted gain, in pooled VMAF at the per-title rung's bit rate, for which a
/// shot-level allocation replaces the per-title setting. The prediction errs by about half a
/// point per rung, and zones cost x264's rate control some bits at every boundary: on `bikes`
/// allocations predicted 0.10 to 0.18 better measured 0.2% BD-rate worse than per-title, while
/// `bbb-trailer`'s, predicted 0.25 to 0.64 better, measured 1.0% better. A rung that keeps its
/// per-title setting can also be an anchor's encode.
pub const MIN_SHOT_GAIN: f64 = 0.25;

/// The same for a quality target: the least share of bits an allocation must save.
pub const MIN_SHOT_SAVING: f64 = 0.02;

/// How much an allocation must raise the rung's predicted worst frame to replace the per-title
/// setting whatever its gain: the floors that keep a shot's frames from collapsing.
pub const MIN_FLOOR_GAIN: f64 = 2.0;

/// Whether shot-level allocation `a` is worth its zones against per-title rung `r`.
fn worth_zones(a: &optimize::Allocation, r: &TitleRung, target: optimize::Target) -> bool {
    let better = match target {
        optimize::Target::Kbps(_) => a.quality - r.point.quality >= MIN_SHOT_GAIN,
        optimize::Target::Vmaf(_) => {
            a.met && 1.0 - a.kbps / r.point.kbps.max(1e-9) >= MIN_SHOT_SAVING
        }
    };
    better || a.total.vmaf_min - r.point.tally.vmaf_min >= MIN_FLOOR_GAIN
}

/// Rounds of the shot allocation: a rung that reaches a higher quality than the per-title
/// rung it replaces (same bits, better spent) holds its worst frames under that quality.
const FLOOR_ROUNDS: usize = 4;

/// The shot-level allocation of per-title rung `r`: every unit's worst frame stays within
/// [`FLOOR_BELOW_MEAN`] of the quality the allocation reaches, or, where the per-title
/// setting's is under that already, at that worst frame and within [`LIMIT_BELOW_MEAN`]; only
/// units where the per-title setting itself drops more than [`HARD_BELOW_MEAN`] may go lower.
fn shot_allocation(
    r: &TitleRung,
    chunks: &[ChunkProbes],
    fps: f64,
    rules: &LadderRules,
    codec: Codec,
) -> Result<optimize::Allocation, optimize::OptimizeError> {
    let all = candidates(chunks, r.point.size, choice_step(codec));
    let baseline = vec![r.point.crf; all.len()];
    let constraints = Constraints {
        max_kbps: Some(rules.max_kbps),
        chunk_max_kbps: Some(r.maxrate_kbps),
    };
    let mut quality = r.point.quality;
    let mut last = None;
    for _ in 0..FLOOR_ROUNDS {
        let mut cands = all.clone();
        let floor = optimize::FrameFloor {
            floor: quality - FLOOR_BELOW_MEAN,
            limit: quality - LIMIT_BELOW_MEAN,
            hard: r.point.quality - HARD_BELOW_MEAN,
            slack: HARD_FRAME_SLACK,
        };
        optimize::hold_worst_frames(&mut cands, &baseline, floor);
        let a = optimize::allocate(
            &cands,
            fps,
            rules.pooling,
            title::shot_target(r, rules),
            constraints,
        )?;
        let settled = a.quality <= quality + 0.25;
        quality = quality.max(a.quality);
        last = Some(a);
        if settled {
            break;
        }
    }
    Ok(last.expect("at least one round"))
}

/// The rungs of the per-title decision, each with its shot-level allocation when `shot` and
/// the allocation is worth its zones ([`MIN_SHOT_GAIN`]); the others keep the per-title
/// setting. Names end with `suffix` (the codec's, in a multi-codec title).
pub fn rungs(
    decision: &TitleDecision,
    chunks: &[ChunkProbes],
    fps: f64,
    rules: &LadderRules,
    (codec, suffix): (Codec, &str),
    shot: bool,
) -> Result<Vec<DecidedRung>, optimize::OptimizeError> {
    let mut out: Vec<DecidedRung> = Vec::new();
    for r in &decision.rungs {
        let allocation = if shot {
            let a = shot_allocation(r, chunks, fps, rules, codec)?;
            worth_zones(&a, r, title::shot_target(r, rules)).then_some(a)
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
    for r in &mut out {
        r.name.push_str(suffix);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(crf: f64, bits: f64, vmaf: f64) -> CurvePoint {
        CurvePoint {
            crf,
            tally: Tally::of_frames(bits, &[vmaf, vmaf - 10.0]),
        }
    }

    #[test]
    fn zones_replace_the_per_title_setting_only_for_a_real_gain() {
        let tally = |kbps: f64, mean: f64, min: f64| {
            let mut t = Tally::of_frames(kbps * 1000.0, &[mean; 25]);
            t.vmaf_min = min;
            t
        };
        let rung = TitleRung {
            point: title::TitlePoint {
                size: Size {
                    width: 640,
                    height: 360,
                },
                crf: 26.0,
                tally: tally(1000.0, 90.0, 80.0),
                kbps: 1000.0,
                quality: 90.0,
                measured: true,
            },
            maxrate_kbps: 2000.0,
        };
        let alloc = |kbps: f64, quality: f64, min: f64| optimize::Allocation {
            lambda: 1.0,
            choices: Vec::new(),
            total: tally(kbps, quality, min),
            kbps,
            quality,
            met: true,
            over_peak: Vec::new(),
        };
        let by_rate = optimize::Target::Kbps(1000.0);
        assert!(!worth_zones(&alloc(1000.0, 90.1, 80.0), &rung, by_rate));
        assert!(worth_zones(&alloc(1000.0, 90.3, 80.0), &rung, by_rate));
        // No better on average, but a worst frame lifted by the floors.
        assert!(worth_zones(&alloc(1000.0, 90.0, 82.5), &rung, by_rate));
        let by_quality = optimize::Target::Vmaf(90.0);
        assert!(!worth_zones(&alloc(990.0, 90.0, 80.0), &rung, by_quality));
        assert!(worth_zones(&alloc(970.0, 90.0, 80.0), &rung, by_quality));
    }

    #[test]
    fn a_rung_moved_out_of_its_anchored_span_is_anchored_again() {
        let at = |crf| ProbeAt { crf, vbv: None };
        let asked = vec![(0, vec![at(24.0), at(34.0)]), (1, vec![at(20.0)])];
        // Nothing made yet: everything asked is made.
        assert_eq!(
            unanchored(asked.clone(), &BTreeMap::new(), Codec::H264),
            asked
        );
        // Size 0 holds an anchor at 35: 34 is within its span, 24 is 11 settings away.
        // Size 1 holds anchors at 18 and 26: 20 lies between them.
        let made = BTreeMap::from([(0, vec![35.0]), (1, vec![18.0, 26.0])]);
        assert_eq!(
            unanchored(asked, &made, Codec::H264),
            vec![(0, vec![at(24.0)])]
        );
    }

    /// 234p and 360p.
    fn small_and_big() -> (Size, Size) {
        let size = |width, height| Size { width, height };
        (size(416, 234), size(640, 360))
    }

    #[test]
    fn anchors_move_every_curve_onto_the_final_preset() {
        let (small, big) = small_and_big();
        let curve = |scale: f64| {
            Curve::new([
                point(20.0, 8000.0 * scale, 90.0),
                point(30.0, 2000.0 * scale, 75.0),
                point(40.0, 500.0 * scale, 50.0),
            ])
        };
        let chunks = vec![ChunkProbes {
            curves: [(small, curve(1.0)), (big, curve(2.0))].into(),
        }];
        // The final preset: at setting x, the probe preset's quality at x - 2 for 10% fewer
        // bits.
        let fast = |size: Size, crf: f64| chunks[0].curves[&size].at(crf).unwrap();
        let slow = |size: Size, crf: f64| {
            let f = fast(size, crf - 2.0);
            CurvePoint {
                crf,
                tally: Tally {
                    bits: f.bits * 0.9,
                    ..f
                },
            }
        };
        let anchored = vec![[(big, vec![slow(big, 35.0), slow(big, 25.0)])].into()];
        let (moved, corrections) = calibrate(&chunks, &anchored, 4.0);
        let at = |size: Size, crf: f64| moved[0].curves[&size].at(crf).unwrap();
        // Through the anchors, between them, and beyond them; the resolution without anchors
        // borrows the shift.
        for (size, crf) in [
            (big, 25.0),
            (big, 30.0),
            (big, 35.0),
            (big, 24.0),
            (small, 33.0),
        ] {
            let (m, s) = (at(size, crf), slow(size, crf).tally);
            assert!((m.bits / s.bits - 1.0).abs() < 1e-9, "{size:?} {crf}");
            assert!((m.mean() - s.mean()).abs() < 1e-9, "{size:?} {crf}");
        }
        // The moved curve ends where the probe's range ends, shifted.
        assert_eq!(moved[0].curves[&big].range(), Some((22.0, 42.0)));
        let c: Vec<_> = corrections
            .iter()
            .map(|c| (c.size, c.anchors.len()))
            .collect();
        assert_eq!(c, [(small, 0), (big, 2)]);
        assert!((corrections[1].crf_shift - 2.0).abs() < 1e-6);
        assert!((corrections[1].bits_percent + 10.0).abs() < 1e-6);

        // A flat curve: the final preset's quality is reached 10 settings away, which is held
        // to 4, and the rest of the difference is added; the curve still meets the anchor.
        let flat = vec![ChunkProbes {
            curves: [(
                big,
                Curve::new([
                    point(20.0, 4000.0, 50.0),
                    point(30.0, 1000.0, 49.0),
                    point(40.0, 250.0, 48.0),
                ]),
            )]
            .into(),
        }];
        let anchor = CurvePoint {
            crf: 30.0,
            tally: Tally::of_frames(900.0, &[55.0, 45.0]),
        };
        let (moved, corrections) = calibrate(&flat, &[[(big, vec![anchor])].into()], 4.0);
        let m = moved[0].curves[&big].at(30.0).unwrap();
        assert!((m.bits - 900.0).abs() < 1e-9 && (m.mean() - 50.0).abs() < 1e-9);
        assert!((corrections[0].crf_shift - 4.0).abs() < 1e-9);
        // Everywhere else: 4 settings on, and up by the anchor's quality less the probe's at 26.
        let fast = flat[0].curves[&big].at(26.0).unwrap();
        let far = moved[0].curves[&big].at(44.0).unwrap();
        let raw = flat[0].curves[&big].at(40.0).unwrap();
        assert!((far.mean() - (raw.mean() + 50.0 - fast.mean())).abs() < 1e-9);
        assert_eq!(moved[0].curves[&big].range(), Some((24.0, 44.0)));
    }

    #[test]
    fn units_are_the_shots_inside_chunks_and_become_zones() {
        // Chunk 0: frames 0..100 with cuts at 30, 36 and 80; chunk 1: 100..150, no cut.
        let chunks = [(0, 100, vec![30, 36, 80]), (100, 50, vec![])];
        let unit = |chunk, start, frames| Unit {
            chunk,
            start,
            frames,
        };
        assert_eq!(units(&chunks, false, 10), [unit(0, 0, 100), unit(1, 0, 50)]);
        // The shot at 30..36 is under 10 frames: it joins the next one.
        let u = units(&chunks, true, 10);
        assert_eq!(
            u,
            [
                unit(0, 0, 30),
                unit(0, 30, 50),
                unit(0, 80, 20),
                unit(1, 0, 50)
            ]
        );
        // A short last shot joins the one before it.
        assert_eq!(
            units(&[(0, 100, vec![50, 95])], true, 10),
            [unit(0, 0, 50), unit(0, 50, 50)]
        );
        // Each unit's probe tally is its own frames; a whole chunk keeps every bit.
        let probe = StoredProbe {
            crf: 30.0,
            bits: 1000,
            frame_bits: (0..100).map(|i| if i < 30 { 20 } else { 5 }).collect(),
            vmaf: (0..100).map(|i| if i < 30 { 90.0 } else { 60.0 }).collect(),
            scored_every: 1,
            encode_cpu: 0.0,
            score_cpu: 0.0,
        };
        let t = probe.tally(&u[0]);
        assert_eq!((t.frames, t.bits, t.mean()), (30, 600.0, 90.0));
        assert_eq!(probe.tally(&unit(0, 0, 100)).bits, 1000.0);
        // Settings: the chunk takes its first unit's, later units at another become zones.
        let choice = |crf| optimize::Choice {
            crf,
            tally: Tally::ZERO,
        };
        let rung = DecidedRung {
            name: "360p".into(),
            size: Size {
                width: 640,
                height: 360,
            },
            title_crf: 30.0,
            title_kbps: 300.0,
            title_vmaf: 80.0,
            maxrate_kbps: 600.0,
            allocation: Some(optimize::Allocation {
                lambda: 0.0,
                choices: vec![choice(28.0), choice(28.0), choice(33.5), choice(31.0)],
                total: Tally::ZERO,
                kbps: 0.0,
                quality: 0.0,
                met: true,
                over_peak: Vec::new(),
            }),
        };
        assert_eq!(
            rung.chunk_setting(&u, 0),
            (
                28.0,
                vec![Zone {
                    start: 80,
                    frames: 20,
                    crf: 33.5
                }]
            )
        );
        assert_eq!(rung.chunk_setting(&u, 1), (31.0, vec![]));
    }

    /// A smaller size still on the hull at its best setting is measured higher; one the
    /// hull leaves before its best setting is not.
    #[test]
    fn a_size_whose_curve_ends_on_the_hull_grows_upward() {
        let (small, big) = small_and_big();
        let sizes = [small, big];
        let measured = vec![BTreeMap::from([
            (0, vec![20.0, 29.0, 38.0]),
            (1, vec![20.0, 29.0, 38.0]),
        ])];
        let rules = LadderRules::default();
        let next = |small_top: f64| {
            let curves = BTreeMap::from([
                (
                    small,
                    Curve::new([
                        point(20.0, 400_000.0, small_top),
                        point(29.0, 150_000.0, 75.0),
                        point(38.0, 50_000.0, 55.0),
                    ]),
                ),
                (
                    big,
                    Curve::new([
                        point(20.0, 800_000.0, 90.0),
                        point(29.0, 250_000.0, 76.0),
                        point(38.0, 100_000.0, 58.0),
                    ]),
                ),
            ]);
            let decision = title::decide(&[ChunkProbes { curves }], 25.0, &rules).unwrap();
            next_round(1, Codec::H264, &sizes, &measured, Some(&decision), &rules)
        };
        let grows = |r: &[(usize, Vec<f32>)]| r.iter().any(|(si, c)| *si == 0 && c.contains(&14.0));
        // At CRF 20 the small size beats the big one's line: the hull runs through it.
        assert!(grows(&next(86.0)), "{:?}", next(86.0));
        // Far under it, the hull goes from the small size's CRF 29 straight to the big size.
        assert!(!grows(&next(77.0)), "{:?}", next(77.0));
    }

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
                "",
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
        let size = Size {
            width: 416,
            height: 234,
        };
        assert_eq!(
            probe_key("av1/", size, 3, 29.5).as_str(),
            "probes/av1/416x234/00003/29.50.json"
        );
        assert_eq!(
            anchor_key("av1/", size, 3, ProbeAt::crf(29.5)).as_str(),
            "anchors/av1/416x234/00003/29.50.json"
        );
    }
}
