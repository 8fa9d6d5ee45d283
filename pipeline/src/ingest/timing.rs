//! The frame clock: is the video constant frame rate, and where does it slip?
//!
//! Every interval between consecutive presentation timestamps is tallied. The most common
//! interval is the frame duration. Intervals within a tick (or 1%) of it are rounding jitter;
//! whole multiples of it are frames missing from a constant-rate timeline; anything else means
//! the frame rate varies.

use std::collections::BTreeMap;

use media::Rational;
use serde::Serialize;

use super::problem::{Problem, ProblemKind, round_ms};

/// The most irregular intervals remembered with their positions.
const MAX_EVENTS: usize = 1000;
/// The most distinct interval values tallied.
const MAX_DISTINCT: usize = 4096;
/// The most problems of one kind listed one by one.
const MAX_LISTED: usize = 20;

/// What the frame clock measured.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Timing {
    /// Frames seen.
    pub frames: u64,
    /// The frame rate the timestamps follow.
    pub frame_rate: Option<Rational>,
    /// First presentation time in seconds.
    pub start_seconds: Option<f64>,
    /// Duration from the first frame's start to the last frame's end, in seconds.
    pub duration_seconds: f64,
    /// True when every interval is the nominal one (within rounding).
    pub constant_frame_rate: bool,
}

#[derive(Clone, Copy)]
struct Event {
    frame: u64,
    pts: i64,
    delta: i64,
}

pub(crate) struct FrameClock {
    time_base: Rational,
    declared: Option<Rational>,
    frames: u64,
    first: Option<i64>,
    prev: Option<i64>,
    last_duration: i64,
    deltas: BTreeMap<i64, u64>,
    distinct_overflow: u64,
    events: Vec<Event>,
    events_overflow: u64,
    missing: Vec<u64>,
    missing_count: u64,
}

impl FrameClock {
    /// `declared` is the container's frame rate, used only to decide which intervals are worth
    /// remembering before the real one is known.
    pub(crate) fn new(time_base: Rational, declared: Option<Rational>) -> Self {
        Self {
            time_base,
            declared: declared.filter(|r| r.is_positive()),
            frames: 0,
            first: None,
            prev: None,
            last_duration: 0,
            deltas: BTreeMap::new(),
            distinct_overflow: 0,
            events: Vec::new(),
            events_overflow: 0,
            missing: Vec::new(),
            missing_count: 0,
        }
    }

    fn declared_ticks(&self) -> Option<f64> {
        let r = self.declared?;
        let tb = self.time_base;
        (tb.is_positive())
            .then(|| f64::from(tb.den) * f64::from(r.den) / (f64::from(tb.num) * f64::from(r.num)))
    }

    pub(crate) fn push(&mut self, pts: Option<i64>, duration: i64) {
        let index = self.frames;
        self.frames += 1;
        let Some(pts) = pts else {
            self.missing_count += 1;
            if self.missing.len() < MAX_LISTED {
                self.missing.push(index);
            }
            return;
        };
        self.last_duration = duration;
        if self.first.is_none() {
            self.first = Some(pts);
        }
        if let Some(prev) = self.prev {
            // Hostile timestamps can be anywhere in i64: the interval saturates.
            let delta = pts.saturating_sub(prev);
            if let Some(c) = self.deltas.get_mut(&delta) {
                *c += 1;
            } else if self.deltas.len() < MAX_DISTINCT {
                self.deltas.insert(delta, 1);
            } else {
                self.distinct_overflow += 1;
            }
            let irregular = match self.declared_ticks() {
                Some(n) => (delta as f64 - n).abs() > tolerance(n),
                None => true,
            };
            if irregular {
                if self.events.len() < MAX_EVENTS {
                    self.events.push(Event {
                        frame: index,
                        pts,
                        delta,
                    });
                } else {
                    self.events_overflow += 1;
                }
            }
        }
        self.prev = Some(pts.max(self.prev.unwrap_or(pts)));
    }

    /// The measured timing and the problems found, for stream `stream`.
    pub(crate) fn finish(&self, stream: usize) -> (Timing, Vec<Problem>) {
        let mut problems = Vec::new();
        if self.missing_count > 0 {
            let mut p = Problem::new(
                ProblemKind::NonMonotonicTimestamps,
                format!("{} frames have no timestamp", self.missing_count),
            )
            .stream(stream);
            if let Some(&f) = self.missing.first() {
                p = p.frame(f);
            }
            problems.push(p);
        }
        let nominal = self.nominal();
        let constant = match nominal {
            Some(m) => Intervals {
                clock: self,
                nominal: m,
                stream,
            }
            .check(&mut problems),
            None => true,
        };
        (self.timing(nominal, constant), problems)
    }

    /// The nominal interval: the most common positive one (the shorter of equals).
    fn nominal(&self) -> Option<i64> {
        self.deltas
            .iter()
            .filter(|(d, _)| **d > 0)
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(d, _)| *d)
    }

    /// The timing, given the nominal interval and whether every interval is nominal.
    fn timing(&self, nominal: Option<i64>, constant: bool) -> Timing {
        let seconds = |pts: i64| self.time_base.seconds(pts);
        let last_duration = match (self.last_duration, nominal) {
            (d, _) if d > 0 => d,
            (_, Some(m)) => m,
            _ => 0,
        };
        let duration_seconds = match (self.first, self.prev) {
            (Some(f), Some(l)) => {
                round_ms(seconds(l.saturating_sub(f).saturating_add(last_duration)))
            }
            _ => 0.0,
        };
        Timing {
            frames: self.frames,
            frame_rate: nominal.map(|m| self.rate_for(m)),
            start_seconds: self.first.map(|f| round_ms(seconds(f))),
            duration_seconds,
            constant_frame_rate: constant && self.missing_count == 0,
        }
    }

    /// The declared rate when it matches interval `m`, else the rate `m` implies.
    fn rate_for(&self, m: i64) -> Rational {
        if let (Some(r), Some(n)) = (self.declared, self.declared_ticks())
            && (m as f64 - n).abs() <= tolerance(n)
        {
            return r;
        }
        let tb = self.time_base;
        let num = i64::from(tb.den);
        let den = i64::from(tb.num).checked_mul(m).unwrap_or(i64::MAX);
        if num <= i64::from(i32::MAX) && den <= i64::from(i32::MAX) && den > 0 {
            Rational::new(num as i32, den as i32).reduced()
        } else {
            Rational::new(0, 1)
        }
    }
}

/// The frame clock's intervals judged against the nominal one, for one stream's problems.
struct Intervals<'a> {
    clock: &'a FrameClock,
    /// The nominal interval, in ticks.
    nominal: i64,
    stream: usize,
}

impl Intervals<'_> {
    /// Adds the problems of off-grid intervals, gaps and backward steps; true when there are
    /// none.
    fn check(&self, problems: &mut Vec<Problem>) -> bool {
        let off_grid = self.off_grid(problems);
        let gaps = self.gaps(problems);
        let backwards = self.backwards(problems);
        !(off_grid || gaps || backwards)
    }

    fn class(&self, delta: i64) -> Class {
        classify(delta, self.nominal as f64)
    }

    fn seconds(&self, pts: i64) -> f64 {
        self.clock.time_base.seconds(pts)
    }

    /// How many intervals are of class `c`, from the exact tally.
    fn count(&self, c: Class) -> u64 {
        self.clock
            .deltas
            .iter()
            .filter(|(d, _)| self.class(**d) == c)
            .map(|(_, n)| n)
            .sum()
    }

    /// The first remembered interval of class `c`, for its position.
    fn first(&self, c: Class) -> Option<Event> {
        self.clock
            .events
            .iter()
            .find(|e| self.class(e.delta) == c)
            .copied()
    }

    /// Intervals that are neither nominal nor whole multiples of it: a variable frame rate.
    fn off_grid(&self, problems: &mut Vec<Problem>) -> bool {
        let off_grid = self.count(Class::OffGrid);
        let overflow = self.clock.distinct_overflow;
        if off_grid == 0 && overflow == 0 {
            return false;
        }
        let off: Vec<f64> = self
            .clock
            .deltas
            .keys()
            .filter(|d| self.class(**d) == Class::OffGrid)
            .map(|d| self.seconds(*d) * 1000.0)
            .collect();
        let nominal_ms = self.seconds(self.nominal) * 1000.0;
        let min = off.iter().copied().fold(nominal_ms, f64::min);
        let max = off.iter().copied().fold(nominal_ms, f64::max);
        let mut p = Problem::new(
            ProblemKind::VariableFrameRate,
            format!(
                "{} frame intervals differ from the nominal {nominal_ms:.3} ms (seen \
                 {min:.3} to {max:.3} ms); the master must be constant frame rate",
                off_grid + overflow
            ),
        )
        .stream(self.stream);
        if let Some(e) = self.first(Class::OffGrid) {
            p = p.at(Some(self.seconds(e.pts))).frame(e.frame);
        }
        problems.push(p);
        true
    }

    /// Whole multiples of the nominal interval: frames missing from the timeline, listed one
    /// by one up to a limit.
    fn gaps(&self, problems: &mut Vec<Problem>) -> bool {
        let m = self.nominal as f64;
        let gaps: Vec<Event> = self
            .clock
            .events
            .iter()
            .filter(|e| self.class(e.delta) == Class::Gap)
            .copied()
            .collect();
        let gap_count = self.count(Class::Gap);
        for e in gaps.iter().take(MAX_LISTED) {
            let missing = (e.delta as f64 / m).round() as u64 - 1;
            problems.push(
                Problem::new(
                    ProblemKind::TimestampGap,
                    format!("{missing} frame(s) missing before this frame"),
                )
                .stream(self.stream)
                .at(Some(self.seconds(e.pts)))
                .frame(e.frame),
            );
        }
        let listed = gaps.len().min(MAX_LISTED);
        if gap_count as usize > listed {
            problems.push(
                Problem::new(
                    ProblemKind::TimestampGap,
                    format!("and {} more gaps", gap_count as usize - listed),
                )
                .stream(self.stream),
            );
        }
        gap_count > 0
    }

    /// Timestamps that repeat or go backwards.
    fn backwards(&self, problems: &mut Vec<Problem>) -> bool {
        let backwards = self.count(Class::Backwards);
        if backwards == 0 {
            return false;
        }
        let mut p = Problem::new(
            ProblemKind::NonMonotonicTimestamps,
            format!("{backwards} timestamps repeat or go backwards"),
        )
        .stream(self.stream);
        if let Some(e) = self.first(Class::Backwards) {
            p = p.at(Some(self.seconds(e.pts))).frame(e.frame);
        }
        problems.push(p);
        true
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Nominal,
    Gap,
    OffGrid,
    Backwards,
}

/// Places an interval relative to the nominal interval `m`.
fn classify(delta: i64, m: f64) -> Class {
    let d = delta as f64;
    let tol = tolerance(m);
    if delta <= 0 {
        return Class::Backwards;
    }
    if (d - m).abs() <= tol {
        return Class::Nominal;
    }
    let k = (d / m).round();
    if k >= 2.0 && (d - k * m).abs() <= tol {
        Class::Gap
    } else {
        Class::OffGrid
    }
}

/// How far an interval may stray from nominal and still be rounding: one tick, or 1%.
fn tolerance(nominal_ticks: f64) -> f64 {
    (nominal_ticks * 0.01).max(1.0) + 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(tb: Rational, declared: Option<Rational>, pts: &[i64]) -> (Timing, Vec<Problem>) {
        let mut c = FrameClock::new(tb, declared);
        for &p in pts {
            c.push(Some(p), 0);
        }
        c.finish(0)
    }

    proptest::proptest! {
        /// Timestamps anywhere in i64, with any durations and time bases, never overflow:
        /// the clock reports what it saw without a panic.
        #[test]
        fn any_timestamps_are_measured_without_overflow(
            pts in proptest::collection::vec(proptest::prelude::any::<i64>(), 0..40),
            durations in proptest::collection::vec(proptest::prelude::any::<i64>(), 40),
            num in 1..100_000i32,
            den in 1..100_000i32,
        ) {
            let mut c = FrameClock::new(Rational::new(num, den), Some(Rational::new(den, num)));
            for (p, d) in pts.iter().zip(&durations) {
                c.push(Some(*p), *d);
            }
            let (t, _) = c.finish(0);
            proptest::prop_assert_eq!(t.frames, pts.len() as u64);
        }
    }

    #[test]
    fn millisecond_rounding_of_2997_is_constant() {
        let pts: Vec<i64> = (0..300)
            .map(|i| (i as f64 * 1001.0 / 30.0).round() as i64)
            .collect();
        let (t, p) = run(
            Rational::new(1, 1000),
            Some(Rational::new(30000, 1001)),
            &pts,
        );
        assert!(p.is_empty(), "{p:?}");
        assert!(t.constant_frame_rate);
        assert_eq!(t.frame_rate, Some(Rational::new(30000, 1001)));
        assert_eq!(t.frames, 300);
    }

    #[test]
    fn two_rates_are_variable() {
        let mut pts: Vec<i64> = (0..50).map(|i| i * 3600).collect();
        pts.extend((1..=30).map(|i| 49 * 3600 + i * 6000));
        let (t, p) = run(Rational::new(1, 90000), Some(Rational::new(25, 1)), &pts);
        assert!(!t.constant_frame_rate);
        let vfr: Vec<_> = p
            .iter()
            .filter(|p| p.kind == ProblemKind::VariableFrameRate)
            .collect();
        assert_eq!(vfr.len(), 1, "{p:?}");
        assert_eq!(vfr[0].frame, Some(50));
        assert_eq!(vfr[0].at_seconds, Some(2.027));
    }

    #[test]
    fn a_dropped_frame_is_a_gap_not_vfr() {
        let pts: Vec<i64> = (0..100).filter(|&i| i != 40).map(|i| i * 512).collect();
        let (t, p) = run(Rational::new(1, 12800), Some(Rational::new(25, 1)), &pts);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].kind, ProblemKind::TimestampGap);
        assert_eq!(p[0].frame, Some(40));
        assert!(!t.constant_frame_rate);
        assert_eq!(t.duration_seconds, 4.0);
    }

    #[test]
    fn repeated_timestamps_are_reported() {
        let pts = [0, 40, 80, 80, 120, 160];
        let (_, p) = run(Rational::new(1, 1000), None, &pts);
        assert!(
            p.iter()
                .any(|p| p.kind == ProblemKind::NonMonotonicTimestamps),
            "{p:?}"
        );
    }

    #[test]
    fn wrong_declared_rate_does_not_matter() {
        let pts: Vec<i64> = (0..100).map(|i| i * 2000).collect();
        let (t, p) = run(Rational::new(1, 25000), Some(Rational::new(30, 1)), &pts);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(t.frame_rate, Some(Rational::new(25, 2)));
    }
}
