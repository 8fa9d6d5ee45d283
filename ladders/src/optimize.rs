//! The shot-level Dynamic Optimizer: one Lagrangian slope per rung, a quality setting per chunk.
//!
//! Every chunk of a rung offers candidate settings, each with its bits R and an additive
//! distortion D (see [`Tally::distortion`]). For a slope λ every chunk takes the candidate that
//! minimises D + λR; that choice lies on the chunk's lower convex hull in (R, D), and all chunks
//! then trade quality for bits at the same marginal rate, which is what makes the sum optimal.
//! λ is bisected until the rung meets its target (an average bit rate, or a pooled VMAF), and
//! the budget left by the last step is spent greedily at the steepest slopes that still fit.

use serde::{Deserialize, Serialize};

use crate::hull;
use crate::rd::{Pooling, Tally};

/// One candidate setting of a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// The quality setting (CRF).
    pub crf: f64,
    /// What it gives (measured or interpolated).
    pub tally: Tally,
}

/// What a rung must reach.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Target {
    /// The best quality at this average bit rate (kbit/s) or below.
    Kbps(f64),
    /// The fewest bits that reach this pooled VMAF.
    Vmaf(f64),
}

/// Limits the allocation may not break.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// The rung's average bit rate cap in kbit/s.
    pub max_kbps: Option<f64>,
    /// The highest average bit rate any one chunk may take, in kbit/s (the VBV peak).
    pub chunk_max_kbps: Option<f64>,
}

/// How low the allocation may take a chunk's worst frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameFloor {
    /// Where a chunk's worst frame stays when its baseline setting's does.
    pub floor: f64,
    /// Where a chunk whose baseline's worst frame is under `floor` is lifted to, at least
    /// (never above `floor`); under the baseline's worst frame, this holds that.
    pub limit: f64,
    /// A chunk whose baseline's worst frame is under this is hard in the master at this rate:
    /// it is held only `slack` under the baseline's worst frame.
    pub hard: f64,
    /// How far under the baseline's worst frame a hard chunk may go.
    pub slack: f64,
}

/// Keeps each chunk's worst frame from collapsing. Chunk `i` is hard in the master at this
/// rate when its `baseline[i]` setting (the nearest candidate to it) has its worst frame `w`
/// under `floor.hard`: it keeps the baseline and the candidates whose worst frame is at most
/// `floor.slack` under `w`, so the allocation may make that frame only a little worse. Any
/// other chunk keeps the candidates whose worst frame reaches `floor.floor` or, when `w` is
/// under that, `w` or `floor.limit`, whichever is higher; when none does, those at least as
/// good as the baseline.
pub fn hold_worst_frames(candidates: &mut [Vec<Choice>], baseline: &[f64], floor: FrameFloor) {
    for (cands, &base) in candidates.iter_mut().zip(baseline) {
        let Some(at_base) = cands
            .iter()
            .min_by(|a, b| (a.crf - base).abs().total_cmp(&(b.crf - base).abs()))
            .copied()
        else {
            continue;
        };
        let worst = at_base.tally.vmaf_min;
        if worst < floor.hard {
            cands.retain(|c| c.tally.vmaf_min >= worst - floor.slack || c.crf == at_base.crf);
            continue;
        }
        let bar = floor.floor.min(worst.max(floor.limit));
        if cands.iter().any(|c| c.tally.vmaf_min >= bar) {
            cands.retain(|c| c.tally.vmaf_min >= bar);
        } else {
            cands.retain(|c| c.tally.vmaf_min >= worst);
        }
    }
}

/// The outcome for one rung.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    /// The slope: VMAF (as the pooling's distortion) per bit.
    pub lambda: f64,
    /// The choice of every chunk, in order.
    pub choices: Vec<Choice>,
    /// Their sum.
    pub total: Tally,
    /// Predicted average bit rate.
    pub kbps: f64,
    /// Predicted pooled quality.
    pub quality: f64,
    /// False when the target could not be met within the constraints (the closest allowed
    /// allocation is given).
    pub met: bool,
    /// Chunks whose every candidate is above the chunk peak cap: they take their cheapest, and
    /// the encoder's VBV must hold the cap.
    pub over_peak: Vec<usize>,
}

/// Why no allocation exists.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimizeError {
    /// A chunk has no usable candidate.
    #[error("chunk {0} has no candidate setting")]
    NoCandidates(usize),
    /// The frame rate is not positive.
    #[error("invalid frame rate {0}")]
    FrameRate(f64),
}

/// A chunk's usable candidates: its hull in (bits, −distortion), by rising bits, and all of
/// them.
struct Chunk {
    hull: Vec<Choice>,
    all: Vec<Choice>,
}

impl Chunk {
    fn gain(c: &Choice, pooling: Pooling) -> f64 {
        -c.tally.distortion(pooling)
    }

    /// The hull index that maximises gain − λ·bits (the cheaper one on ties).
    fn pick(&self, lambda: f64, pooling: Pooling) -> usize {
        let mut best = 0;
        let mut best_v = f64::NEG_INFINITY;
        for (i, c) in self.hull.iter().enumerate() {
            let v = Self::gain(c, pooling) - lambda * c.tally.bits;
            if v > best_v + 1e-12 * (1.0 + v.abs()) {
                best = i;
                best_v = v;
            }
        }
        best
    }
}

/// Chooses one candidate per chunk for `target` under `constraints`. `fps` turns bits into
/// bit rates.
pub fn allocate(
    candidates: &[Vec<Choice>],
    fps: f64,
    pooling: Pooling,
    target: Target,
    constraints: Constraints,
) -> Result<Allocation, OptimizeError> {
    if !(fps.is_finite() && fps > 0.0) {
        return Err(OptimizeError::FrameRate(fps));
    }
    let (chunks, over_peak) = usable_chunks(candidates, fps, pooling, constraints)?;
    let frames: u64 = chunks.iter().map(|c| c.hull[0].tally.frames).sum();
    let budget_bits = |kbps: f64| kbps * 1000.0 * frames as f64 / fps;
    let solver = Solver::new(chunks, pooling, constraints.max_kbps.map(budget_bits));
    let (lambda, mut picks, met) = match target {
        Target::Kbps(kbps) => solver.for_kbps(budget_bits(kbps)),
        Target::Vmaf(q) => solver.for_vmaf(q),
    };
    if !solver.within_cap(&solver.total(&picks)) {
        picks = solver.picks_at(solver.lambda_max);
    }
    let mut choices: Vec<Choice> = solver
        .chunks
        .iter()
        .zip(&picks)
        .map(|(c, &i)| c.hull[i])
        .collect();
    if let Target::Kbps(kbps) = target {
        let limit = solver
            .cap_bits
            .map_or(budget_bits(kbps), |c| c.min(budget_bits(kbps)));
        fill(&solver.chunks, &mut choices, limit, pooling);
        // The greedy fill is not optimal: one setting over the whole title that fits the
        // budget and pools better wins, and what it leaves is filled in turn.
        let pooled = |c: &[Choice]| {
            c.iter()
                .fold(Tally::ZERO, |t, x| t.add(&x.tally))
                .quality(pooling)
        };
        if let Some(mut one) = best_uniform(&solver.chunks, limit, pooling)
            && pooled(&one) > pooled(&choices)
        {
            fill(&solver.chunks, &mut one, limit, pooling);
            choices = one;
        }
    }
    let sum = choices.iter().fold(Tally::ZERO, |t, c| t.add(&c.tally));
    Ok(Allocation {
        lambda,
        choices,
        kbps: sum.kbps(fps),
        quality: sum.quality(pooling),
        total: sum,
        met: met && solver.within_cap(&sum),
        over_peak,
    })
}

/// Spends what the hull left of `limit` bits on candidates off the hull. The hull's vertices
/// are what a slope can pick, and with few chunks the next vertex may lie far past the budget
/// (one chunk whose hull jumps from 1.6 to 3.3 Mbit/s cannot spend a 2.3 Mbit/s budget, though
/// a setting in between fits): each step moves the chunk, to the candidate, that adds the most
/// quality per bit and still fits, until none does.
fn fill(chunks: &[Chunk], choices: &mut [Choice], limit: f64, pooling: Pooling) {
    let limit = limit * (1.0 + 1e-12);
    let mut used: f64 = choices.iter().map(|c| c.tally.bits).sum();
    loop {
        let mut best: Option<(usize, Choice, f64)> = None;
        for (ci, c) in chunks.iter().enumerate() {
            let now = &choices[ci];
            for cand in &c.all {
                let extra = cand.tally.bits - now.tally.bits;
                let gain = Chunk::gain(cand, pooling) - Chunk::gain(now, pooling);
                if extra <= 0.0 || gain <= 0.0 || used + extra > limit {
                    continue;
                }
                let slope = gain / extra;
                if best.is_none_or(|(_, _, s)| slope > s) {
                    best = Some((ci, *cand, slope));
                }
            }
        }
        let Some((ci, cand, _)) = best else {
            return;
        };
        used += cand.tally.bits - choices[ci].tally.bits;
        choices[ci] = cand;
    }
}

/// The best allocation that gives every chunk the same CRF and fits `limit` bits, when one does
/// (a CRF that some chunk has no candidate at is not one).
fn best_uniform(chunks: &[Chunk], limit: f64, pooling: Pooling) -> Option<Vec<Choice>> {
    let limit = limit * (1.0 + 1e-12);
    let crfs: Vec<f64> = chunks.first()?.all.iter().map(|c| c.crf).collect();
    crfs.into_iter()
        .filter_map(|crf| {
            chunks
                .iter()
                .map(|c| c.all.iter().find(|x| x.crf == crf).copied())
                .collect::<Option<Vec<Choice>>>()
        })
        .map(|one| {
            let sum = one.iter().fold(Tally::ZERO, |t, x| t.add(&x.tally));
            (one, sum)
        })
        .filter(|(_, sum)| sum.bits <= limit)
        .max_by(|a, b| a.1.quality(pooling).total_cmp(&b.1.quality(pooling)))
        .map(|(one, _)| one)
}

/// Every chunk's hull of the candidates it may take, and the chunks none of whose candidates
/// is under the chunk peak cap (they keep only their cheapest).
fn usable_chunks(
    candidates: &[Vec<Choice>],
    fps: f64,
    pooling: Pooling,
    constraints: Constraints,
) -> Result<(Vec<Chunk>, Vec<usize>), OptimizeError> {
    let mut over_peak = Vec::new();
    let mut chunks = Vec::with_capacity(candidates.len());
    for (ci, cands) in candidates.iter().enumerate() {
        let usable: Vec<Choice> = cands
            .iter()
            .copied()
            .filter(|c| c.tally.frames > 0 && c.tally.bits.is_finite() && c.tally.bits > 0.0)
            .collect();
        let cheapest = usable
            .iter()
            .copied()
            .min_by(|a, b| a.tally.bits.total_cmp(&b.tally.bits))
            .ok_or(OptimizeError::NoCandidates(ci))?;
        let mut allowed: Vec<Choice> = usable
            .into_iter()
            .filter(|c| {
                constraints
                    .chunk_max_kbps
                    .is_none_or(|cap| c.tally.kbps(fps) <= cap)
            })
            .collect();
        if allowed.is_empty() {
            over_peak.push(ci);
            allowed.push(cheapest);
        }
        let pts: Vec<(f64, f64)> = allowed
            .iter()
            .map(|c| (c.tally.bits, Chunk::gain(c, pooling)))
            .collect();
        let hull = hull::upper(&pts).into_iter().map(|i| allowed[i]).collect();
        chunks.push(Chunk { hull, all: allowed });
    }
    Ok((chunks, over_peak))
}

/// The search over slopes for one rung: its chunks' hulls, and the rung's bit cap.
struct Solver {
    chunks: Vec<Chunk>,
    pooling: Pooling,
    /// The rung's cap in bits, when it has one.
    cap_bits: Option<f64>,
    /// A slope past every hull segment's: there each chunk takes its cheapest.
    lambda_max: f64,
}

/// A slope, the hull index each chunk takes, and whether the target was met.
type Solution = (f64, Vec<usize>, bool);

impl Solver {
    fn new(chunks: Vec<Chunk>, pooling: Pooling, cap_bits: Option<f64>) -> Self {
        // The slopes that matter lie between the flattest and the steepest hull segment.
        let mut steepest: f64 = 0.0;
        for c in &chunks {
            for w in c.hull.windows(2) {
                let s = (Chunk::gain(&w[1], pooling) - Chunk::gain(&w[0], pooling))
                    / (w[1].tally.bits - w[0].tally.bits);
                steepest = steepest.max(s);
            }
        }
        let lambda_max = if steepest > 0.0 { steepest * 2.0 } else { 1.0 };
        Self {
            chunks,
            pooling,
            cap_bits,
            lambda_max,
        }
    }

    /// Every chunk's pick at slope `lambda`.
    fn picks_at(&self, lambda: f64) -> Vec<usize> {
        self.chunks
            .iter()
            .map(|c| c.pick(lambda, self.pooling))
            .collect()
    }

    /// The sum of the picked candidates.
    fn total(&self, picks: &[usize]) -> Tally {
        self.chunks
            .iter()
            .zip(picks)
            .fold(Tally::ZERO, |t, (c, &i)| t.add(&c.hull[i].tally))
    }

    /// Whether `t` keeps the rung's cap.
    fn within_cap(&self, t: &Tally) -> bool {
        self.cap_bits.is_none_or(|c| t.bits <= c * (1.0 + 1e-12))
    }

    /// Bisects for the smallest λ whose total satisfies `fits` (fits is monotone in λ: a
    /// larger λ never spends more bits).
    fn bisect(&self, fits: &dyn Fn(&Tally) -> bool) -> Option<f64> {
        if fits(&self.total(&self.picks_at(0.0))) {
            return Some(0.0);
        }
        if !fits(&self.total(&self.picks_at(self.lambda_max))) {
            return None;
        }
        let (mut lo, mut hi) = (0.0f64, self.lambda_max);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if fits(&self.total(&self.picks_at(mid))) {
                hi = mid;
            } else {
                lo = mid;
            }
            if hi - lo <= hi * 1e-12 {
                break;
            }
        }
        Some(hi)
    }

    /// The best quality within `budget` bits (and the cap).
    fn for_kbps(&self, budget: f64) -> Solution {
        let limit = self.cap_bits.map_or(budget, |c| c.min(budget));
        match self.bisect(&|t| t.bits <= limit * (1.0 + 1e-12)) {
            Some(l) => {
                let mut p = self.picks_at(l);
                spend(&self.chunks, &mut p, limit, self.pooling);
                (l, p, true)
            }
            None => (self.lambda_max, self.picks_at(self.lambda_max), false),
        }
    }

    /// The fewest bits that reach pooled quality `q`; when that breaks the cap, or `q` is
    /// beyond the best candidates, the best the cap allows (not met).
    fn for_vmaf(&self, q: f64) -> Solution {
        // The largest λ that still reaches q: bisect on "misses q", which grows with λ.
        let misses = |t: &Tally| t.quality(self.pooling) < q;
        let reach = match self.bisect(&misses) {
            // λ = 0 already misses: q is beyond the best candidates.
            Some(0.0) => return self.under_cap(false),
            Some(l) => l,
            // Even the cheapest reaches q.
            None => self.lambda_max,
        };
        // `reach` is the first λ that misses; step back inside the reaching side.
        let mut lam = reach;
        let mut p = self.picks_at(lam);
        let mut guard = 0;
        while misses(&self.total(&p)) && guard < 200 {
            lam *= 1.0 - 1e-6;
            if lam < 1e-300 {
                lam = 0.0;
            }
            p = self.picks_at(lam);
            guard += 1;
        }
        trim(&self.chunks, &mut p, q, self.pooling);
        if self.within_cap(&self.total(&p)) {
            (lam, p, true)
        } else {
            self.under_cap(true)
        }
    }

    /// The best quality the cap allows, not meeting the target; `spend_rest` spends
    /// what the last bisection step left of the cap.
    fn under_cap(&self, spend_rest: bool) -> Solution {
        let limit = self.cap_bits.unwrap_or(f64::INFINITY);
        let l = self.bisect(&|t| t.bits <= limit).unwrap_or(self.lambda_max);
        let mut p = self.picks_at(l);
        if spend_rest {
            spend(&self.chunks, &mut p, limit, self.pooling);
        }
        (l, p, false)
    }
}

/// Spends what is left of `limit` bits: repeatedly takes the next hull step, over all chunks,
/// with the most gain per bit that still fits.
fn spend(chunks: &[Chunk], picks: &mut [usize], limit: f64, pooling: Pooling) {
    let mut used: f64 = chunks
        .iter()
        .zip(picks.iter())
        .map(|(c, &i)| c.hull[i].tally.bits)
        .sum();
    loop {
        let mut best: Option<(usize, f64, f64)> = None;
        for (ci, c) in chunks.iter().enumerate() {
            let i = picks[ci];
            let Some(next) = c.hull.get(i + 1) else {
                continue;
            };
            let extra = next.tally.bits - c.hull[i].tally.bits;
            if used + extra > limit {
                continue;
            }
            let slope = (Chunk::gain(next, pooling) - Chunk::gain(&c.hull[i], pooling)) / extra;
            if best.is_none_or(|(_, s, _)| slope > s) {
                best = Some((ci, slope, extra));
            }
        }
        let Some((ci, _, extra)) = best else {
            return;
        };
        picks[ci] += 1;
        used += extra;
    }
}

/// Saves bits while the pooled quality stays at or above `q`: repeatedly takes back the hull
/// step, over all chunks, that loses the least gain per bit saved.
fn trim(chunks: &[Chunk], picks: &mut [usize], q: f64, pooling: Pooling) {
    let mut sum = chunks
        .iter()
        .zip(picks.iter())
        .fold(Tally::ZERO, |t, (c, &i)| t.add(&c.hull[i].tally));
    loop {
        let mut best: Option<(usize, f64, Tally)> = None;
        for (ci, c) in chunks.iter().enumerate() {
            let i = picks[ci];
            if i == 0 {
                continue;
            }
            let (cur, prev) = (&c.hull[i].tally, &c.hull[i - 1].tally);
            let after = Tally {
                frames: sum.frames,
                bits: sum.bits - cur.bits + prev.bits,
                vmaf_sum: sum.vmaf_sum - cur.vmaf_sum + prev.vmaf_sum,
                inverse_sum: sum.inverse_sum - cur.inverse_sum + prev.inverse_sum,
                vmaf_min: sum.vmaf_min,
            };
            if after.quality(pooling) < q {
                continue;
            }
            let slope = (Chunk::gain(&c.hull[i], pooling) - Chunk::gain(&c.hull[i - 1], pooling))
                / (cur.bits - prev.bits);
            if best.as_ref().is_none_or(|(_, s, _)| slope < *s) {
                best = Some((ci, slope, after));
            }
        }
        let Some((ci, _, after)) = best else {
            return;
        };
        picks[ci] -= 1;
        sum = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A chunk whose VMAF follows a + b·ln(kbps) at a few CRFs, `frames` frames at 25 fps.
    fn chunk(frames: u64, difficulty: f64) -> Vec<Choice> {
        (0..12)
            .map(|k| {
                let crf = 18.0 + 2.0 * k as f64;
                let kbps = 4000.0 * difficulty * (-0.11 * (crf - 18.0)).exp();
                let vmaf = (30.0 + 12.0 * (kbps / difficulty / 100.0).ln()).clamp(0.0, 100.0);
                let bits = kbps * 1000.0 * frames as f64 / 25.0;
                Choice {
                    crf,
                    tally: Tally::of_frames(bits, &vec![vmaf; frames as usize]),
                }
            })
            .collect()
    }

    /// [`chunk`]'s candidates with every worst frame `dip` under its mean.
    fn with_dips(frames: u64, difficulty: f64, dip: f64) -> Vec<Choice> {
        chunk(frames, difficulty)
            .into_iter()
            .map(|mut c| {
                c.tally.vmaf_min = (c.tally.mean() - dip).max(0.0);
                c
            })
            .collect()
    }

    fn uniform(chunks: &[Vec<Choice>], crf: f64) -> Tally {
        chunks.iter().fold(Tally::ZERO, |t, c| {
            t.add(&c.iter().find(|x| x.crf == crf).unwrap().tally)
        })
    }

    /// One chunk whose quality saturates in steps, so that its hull skips the settings between
    /// 1.6 and 3.3 Mbit/s: a budget in between is spent on the best of them that fits, as one
    /// setting over the whole title would.
    #[test]
    fn a_budget_between_hull_vertices_is_spent_off_the_hull() {
        let frames = 50;
        let at = |crf: f64, kbps: f64, vmaf: f64| Choice {
            crf,
            tally: Tally::of_frames(kbps * 1000.0 * frames as f64 / 25.0, &vec![vmaf; frames]),
        };
        // 2.3 Mbit/s lies under the chord from 1.6 to 3.3: off the hull.
        let cands = vec![vec![
            at(30.0, 800.0, 86.0),
            at(24.0, 1600.0, 94.9),
            at(21.0, 2300.0, 95.8),
            at(18.0, 3300.0, 98.0),
        ]];
        let at_rate = |kbps: f64| {
            allocate(
                &cands,
                25.0,
                Pooling::Mean,
                Target::Kbps(kbps),
                Constraints::default(),
            )
            .unwrap()
        };
        let a = at_rate(2300.0);
        assert_eq!(a.choices[0].crf, 21.0, "{a:?}");
        assert!((a.kbps - 2300.0).abs() < 1e-6 && a.met);
        // A budget that nothing above the hull's pick fits keeps the pick.
        let b = at_rate(2000.0);
        assert_eq!(b.choices[0].crf, 24.0, "{b:?}");
    }

    #[test]
    fn equal_slope_beats_one_crf_at_the_same_bits() {
        let chunks = vec![
            chunk(50, 0.5),
            chunk(100, 1.0),
            chunk(30, 3.0),
            chunk(80, 1.5),
        ];
        let same = uniform(&chunks, 26.0);
        let a = allocate(
            &chunks,
            25.0,
            Pooling::Mean,
            Target::Kbps(same.kbps(25.0)),
            Constraints::default(),
        )
        .unwrap();
        assert!(a.met);
        assert!(a.kbps <= same.kbps(25.0) * (1.0 + 1e-9));
        assert!(
            a.quality > same.mean() + 0.1,
            "{} vs {}",
            a.quality,
            same.mean()
        );
        // Not every chunk at the same CRF.
        assert!(a.choices.iter().any(|c| c.crf != a.choices[0].crf));
    }

    #[test]
    fn vmaf_targets_are_reached_with_fewer_bits() {
        let chunks = vec![chunk(50, 0.5), chunk(100, 1.0), chunk(30, 3.0)];
        let same = uniform(&chunks, 24.0);
        for pooling in [Pooling::Mean, Pooling::Harmonic] {
            let q = same.quality(pooling);
            let a = allocate(
                &chunks,
                25.0,
                pooling,
                Target::Vmaf(q),
                Constraints::default(),
            )
            .unwrap();
            assert!(a.met && a.quality >= q - 1e-9, "{pooling:?}");
            assert!(a.total.bits <= same.bits, "{pooling:?}");
        }
        // Out of reach: the best there is, flagged.
        let a = allocate(
            &chunks,
            25.0,
            Pooling::Mean,
            Target::Vmaf(101.0),
            Constraints::default(),
        )
        .unwrap();
        assert!(!a.met);
    }

    #[test]
    fn caps_hold() {
        let chunks = vec![chunk(50, 0.5), chunk(100, 1.0), chunk(30, 3.0)];
        let c = Constraints {
            max_kbps: Some(1500.0),
            chunk_max_kbps: Some(3000.0),
        };
        let a = allocate(&chunks, 25.0, Pooling::Mean, Target::Vmaf(99.0), c).unwrap();
        assert!(a.kbps <= 1500.0 + 1e-6, "{}", a.kbps);
        assert!(!a.met);
        for ch in &a.choices {
            assert!(ch.tally.kbps(25.0) <= 3000.0 + 1e-6);
        }
        // A chunk that cannot get under the peak cap takes its cheapest and is named.
        let tight = Constraints {
            max_kbps: None,
            chunk_max_kbps: Some(500.0),
        };
        let a = allocate(&chunks, 25.0, Pooling::Mean, Target::Kbps(2000.0), tight).unwrap();
        assert_eq!(a.over_peak, [2]);
        assert_eq!(a.choices[2].crf, 40.0);
    }

    #[test]
    fn worst_frames_are_held_at_the_floor_or_at_the_baseline() {
        // The hard chunk's worst frame falls 12 points below its mean: left alone, the
        // optimiser starves it, since its mean buys little per bit.
        let chunks = vec![
            with_dips(50, 0.5, 5.0),
            with_dips(40, 4.0, 12.0),
            with_dips(80, 1.0, 5.0),
        ];
        let target = Target::Kbps(uniform(&chunks, 24.0).kbps(25.0));
        let free = allocate(&chunks, 25.0, Pooling::Mean, target, Constraints::default()).unwrap();
        let floor = free.quality - 15.0;
        assert!(
            free.choices.iter().any(|c| c.tally.vmaf_min < floor),
            "the case must collapse without a floor"
        );
        let baseline = [24.0; 3];
        // Every chunk under `bar` counts as hard: held `slack` under its baseline's worst frame.
        let held_at = |bar: f64, slack: f64| {
            let mut held = chunks.clone();
            let rule = FrameFloor {
                floor: bar,
                limit: bar,
                hard: bar,
                slack,
            };
            hold_worst_frames(&mut held, &baseline, rule);
            allocate(&held, 25.0, Pooling::Mean, target, Constraints::default()).unwrap()
        };
        let a = held_at(floor, 0.0);
        assert!(a.met, "the baseline's own settings fit the budget");
        assert!(a.choices.iter().all(|c| c.tally.vmaf_min >= floor), "{a:?}");
        // A floor nothing cheap reaches: each chunk keeps at least its baseline's worst frame,
        // and the baseline's budget is still met.
        let b = held_at(100.0, 0.0);
        assert!(b.met);
        for (choice, cands) in b.choices.iter().zip(&chunks) {
            let base = cands.iter().find(|c| c.crf == 24.0).unwrap();
            assert!(choice.tally.vmaf_min >= base.tally.vmaf_min, "{choice:?}");
        }
        // With slack, at most that much below the baseline's worst frame.
        let c = held_at(100.0, 3.0);
        for (choice, cands) in c.choices.iter().zip(&chunks) {
            let base = cands.iter().find(|c| c.crf == 24.0).unwrap();
            assert!(
                choice.tally.vmaf_min >= base.tally.vmaf_min - 3.0,
                "{choice:?}"
            );
        }
        assert!(c.quality >= b.quality - 1e-9, "more freedom, no worse");
    }

    #[test]
    fn only_a_chunk_hard_at_the_baseline_may_go_under_the_floor() {
        // A short, costly chunk whose worst frame dips 12 points between two long, cheap ones.
        let chunks = vec![
            with_dips(200, 0.5, 5.0),
            with_dips(20, 4.0, 12.0),
            with_dips(200, 0.5, 5.0),
        ];
        let baseline = [24.0; 3];
        let target = Target::Kbps(uniform(&chunks, 24.0).kbps(25.0));
        let base_min = chunks[1]
            .iter()
            .find(|c| c.crf == 24.0)
            .unwrap()
            .tally
            .vmaf_min;
        // The floor sits just above the hard chunk's baseline worst frame.
        let floor = base_min + 2.0;
        let held_with = |limit: f64, hard: f64| {
            let mut cands = chunks.clone();
            let rule = FrameFloor {
                floor,
                limit,
                hard,
                slack: 5.0,
            };
            hold_worst_frames(&mut cands, &baseline, rule);
            cands
        };
        let held = |hard: f64| held_with(floor, hard);
        // Counted as hard in the master, the chunk may go under its baseline by the slack.
        let lenient = held(floor);
        let lowest = |c: &[Choice]| c.iter().map(|c| c.tally.vmaf_min).fold(f64::MAX, f64::min);
        assert!(lowest(&lenient[1]) < base_min);
        assert!(lowest(&lenient[1]) >= base_min - 5.0);
        // Not hard (its baseline is only a little under the floor): only settings that reach
        // the floor stay, and the allocation lifts it with bits the easier chunks give up.
        let strict = held(base_min - 1.0);
        assert!(lowest(&strict[1]) >= floor);
        let free = allocate(&chunks, 25.0, Pooling::Mean, target, Constraints::default()).unwrap();
        assert!(free.choices[1].tally.vmaf_min < floor, "{free:?}");
        let lifted =
            allocate(&strict, 25.0, Pooling::Mean, target, Constraints::default()).unwrap();
        assert!(lifted.met, "{lifted:?}");
        assert!(lifted.choices.iter().all(|c| c.tally.vmaf_min >= floor));
        assert!(
            lifted.quality < free.quality,
            "the floor costs quality elsewhere"
        );
        // With the limit under its baseline's worst frame, it keeps at least the baseline's.
        let kept = held_with(base_min - 3.0, base_min - 4.0);
        assert_eq!(lowest(&kept[1]), base_min);
    }

    proptest! {
        /// With a bit-rate target, no single-chunk change to another candidate improves the
        /// quality while staying within the budget by more than the grid's granularity: the
        /// allocation is on the efficient frontier, and never over budget.
        #[test]
        fn bitrate_targets_stay_within_budget(
            diffs in prop::collection::vec((10u64..200, 0.2f64..4.0), 1..12),
            kbps in 100.0f64..6000.0,
        ) {
            let chunks: Vec<_> = diffs.iter().map(|&(f, d)| chunk(f, d)).collect();
            let a = allocate(&chunks, 25.0, Pooling::Mean, Target::Kbps(kbps), Constraints::default()).unwrap();
            let cheapest = uniform(&chunks, 40.0).kbps(25.0);
            if cheapest <= kbps {
                prop_assert!(a.met);
                prop_assert!(a.kbps <= kbps * (1.0 + 1e-9));
            } else {
                prop_assert!(!a.met);
            }
            // Uniform CRF under the same budget is never better.
            for k in 0..12 {
                let t = uniform(&chunks, 18.0 + 2.0 * k as f64);
                if t.kbps(25.0) <= a.kbps {
                    prop_assert!(t.mean() <= a.quality + 1e-9);
                }
            }
        }
    }
}
