//! Turning shots into encode chunks.
//!
//! Chunks exist for parallelism and for aligned segment boundaries, and every chunk start costs
//! an IDR frame, so chunks should be long. Shots shorter than the minimum are merged into a
//! neighbour; shots (or merged groups) longer than the maximum are split evenly. Every chunk
//! records why it starts where it does.

use serde::{Deserialize, Serialize};

/// Default shortest chunk, in seconds.
pub const DEFAULT_MIN_CHUNK_SECONDS: f64 = 1.0;
/// Default longest chunk, in seconds.
pub const DEFAULT_MAX_CHUNK_SECONDS: f64 = 10.0;

/// How long chunks may be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChunkRules {
    /// Shortest chunk in seconds; shorter shots are merged into a neighbour.
    pub min_seconds: f64,
    /// Longest chunk in seconds; longer shots are split.
    pub max_seconds: f64,
}

impl Default for ChunkRules {
    fn default() -> Self {
        Self {
            min_seconds: DEFAULT_MIN_CHUNK_SECONDS,
            max_seconds: DEFAULT_MAX_CHUNK_SECONDS,
        }
    }
}

impl ChunkRules {
    /// Checks the rules, naming the bad value and the allowed range.
    pub fn validate(&self) -> Result<(), ChunkRulesError> {
        if !self.min_seconds.is_finite() || !(0.04..=600.0).contains(&self.min_seconds) {
            return Err(ChunkRulesError::Min {
                seconds: self.min_seconds,
            });
        }
        let lowest = 2.0 * self.min_seconds;
        if !self.max_seconds.is_finite() || !(lowest..=3600.0).contains(&self.max_seconds) {
            return Err(ChunkRulesError::Max {
                seconds: self.max_seconds,
                lowest,
            });
        }
        Ok(())
    }
}

/// Why chunk rules are invalid.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ChunkRulesError {
    /// The minimum chunk length is out of range.
    #[error("invalid minimum chunk length {seconds} s (expected >= 0.04, <= 600)")]
    Min {
        /// The minimum given, in seconds.
        seconds: f64,
    },
    /// The maximum chunk length is out of range: under twice the minimum, or too long.
    #[error(
        "invalid maximum chunk length {seconds} s (expected >= {lowest} (twice the minimum, so \
         that splitting a long shot never makes a chunk below the minimum), <= 3600)"
    )]
    Max {
        /// The maximum given, in seconds.
        seconds: f64,
        /// The lowest maximum allowed: twice the minimum.
        lowest: f64,
    },
}

/// Why a chunk starts where it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundaryReason {
    /// The first chunk of the title.
    Start,
    /// A scene cut; the chunk holds one shot, or the first part of it.
    Cut,
    /// A scene cut; the chunk also holds the short shots after it, whose cuts it absorbed.
    Merge,
    /// Inside a long shot, which was split to respect the maximum length.
    Split,
}

/// A chunk as frame ranges, before times are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u64,
    pub end: u64,
    pub reason: BoundaryReason,
    pub merged_cuts: Vec<u64>,
}

impl Span {
    fn len(&self) -> u64 {
        self.end - self.start
    }
}

/// Cuts `frames` frames at `cuts` (sorted first frames of shots) into chunks obeying `rules` at
/// `fps` frames per second.
pub(crate) fn plan(frames: u64, fps: f64, cuts: &[u64], rules: &ChunkRules) -> Vec<Span> {
    if frames == 0 {
        return Vec::new();
    }
    let min = ((rules.min_seconds * fps).round() as u64).max(1);
    let max = ((rules.max_seconds * fps).floor() as u64).max(2 * min);
    let mut spans = shots(frames, cuts);
    merge_short(&mut spans, min, max);
    let mut out = Vec::with_capacity(spans.len());
    for span in spans {
        split_long(span, max, &mut out);
    }
    out
}

/// One span per shot: the title cut at every cut inside it.
fn shots(frames: u64, cuts: &[u64]) -> Vec<Span> {
    let mut bounds: Vec<u64> = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < frames)
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    std::iter::once(0)
        .chain(bounds.iter().copied())
        .zip(bounds.iter().copied().chain(std::iter::once(frames)))
        .map(|(start, end)| Span {
            start,
            end,
            reason: if start == 0 {
                BoundaryReason::Start
            } else {
                BoundaryReason::Cut
            },
            merged_cuts: Vec::new(),
        })
        .collect()
}

/// Merges the shortest span under `min` frames into a neighbour until none is left (or only
/// one span is).
fn merge_short(spans: &mut Vec<Span>, min: u64, max: u64) {
    while spans.len() > 1 {
        let Some((i, _)) = spans
            .iter()
            .enumerate()
            .filter(|(_, s)| s.len() < min)
            .min_by_key(|(i, s)| (s.len(), *i))
        else {
            break;
        };
        let Some(target) = merge_target(spans, i, max) else {
            break;
        };
        let (a, b) = if target < i { (target, i) } else { (i, target) };
        let second = spans.remove(b);
        let first = &mut spans[a];
        first.merged_cuts.push(second.start);
        first.merged_cuts.extend(second.merged_cuts);
        first.end = second.end;
        if first.reason == BoundaryReason::Cut {
            first.reason = BoundaryReason::Merge;
        }
    }
}

/// The neighbour span `i` merges into: the one the merge keeps within `max` frames, else the
/// shorter (the left one on a tie).
fn merge_target(spans: &[Span], i: usize, max: u64) -> Option<usize> {
    let left = i.checked_sub(1);
    let right = (i + 1 < spans.len()).then_some(i + 1);
    let fits = |j: usize| spans[j].len() + spans[i].len() <= max;
    match (left, right) {
        (Some(l), Some(r)) => Some(match (fits(l), fits(r)) {
            (true, false) => l,
            (false, true) => r,
            _ if spans[r].len() < spans[l].len() => r,
            _ => l,
        }),
        (Some(l), None) => Some(l),
        (None, Some(r)) => Some(r),
        (None, None) => None,
    }
}

/// Pushes `span` onto `out`, split evenly into parts of at most `max` frames.
fn split_long(span: Span, max: u64, out: &mut Vec<Span>) {
    let n = span.len().div_ceil(max);
    if n <= 1 {
        out.push(span);
        return;
    }
    let len = span.len();
    for k in 0..n {
        let start = span.start + len * k / n;
        let end = span.start + len * (k + 1) / n;
        out.push(Span {
            start,
            end,
            reason: match k {
                0 => span.reason,
                _ if span.merged_cuts.contains(&start) => BoundaryReason::Cut,
                _ => BoundaryReason::Split,
            },
            merged_cuts: span
                .merged_cuts
                .iter()
                .copied()
                .filter(|&c| c > start && c < end)
                .collect(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BoundaryReason::*;
    use proptest::prelude::*;

    fn rules(min: f64, max: f64) -> ChunkRules {
        ChunkRules {
            min_seconds: min,
            max_seconds: max,
        }
    }

    #[test]
    fn shots_within_bounds_become_chunks_as_they_are() {
        let s = plan(100, 10.0, &[30, 60], &rules(1.0, 10.0));
        assert_eq!(
            s.iter()
                .map(|s| (s.start, s.end, s.reason))
                .collect::<Vec<_>>(),
            [(0, 30, Start), (30, 60, Cut), (60, 100, Cut)]
        );
    }

    #[test]
    fn short_shots_merge_into_the_shorter_neighbour() {
        // Shots: 0-30, 30-35 (short), 35-50, 50-100.
        let s = plan(100, 10.0, &[30, 35, 50], &rules(1.0, 10.0));
        assert_eq!(s.len(), 3);
        assert_eq!((s[1].start, s[1].end, s[1].reason), (30, 50, Merge));
        assert_eq!(s[1].merged_cuts, [35]);
    }

    #[test]
    fn long_shots_split_evenly() {
        let s = plan(250, 10.0, &[], &rules(1.0, 10.0));
        assert_eq!(
            s.iter()
                .map(|s| (s.start, s.end, s.reason))
                .collect::<Vec<_>>(),
            [(0, 83, Start), (83, 166, Split), (166, 250, Split)]
        );
    }

    #[test]
    fn a_title_shorter_than_the_minimum_is_one_chunk() {
        let s = plan(5, 10.0, &[2], &rules(1.0, 10.0));
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].start, s[0].end, s[0].reason), (0, 5, Start));
        assert_eq!(s[0].merged_cuts, [2]);
    }

    #[test]
    fn rules_are_validated() {
        assert!(ChunkRules::default().validate().is_ok());
        assert!(
            rules(1.0, 1.5)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("twice the minimum")
        );
        assert!(rules(0.0, 10.0).validate().is_err());
        assert!(rules(f64::NAN, 10.0).validate().is_err());
    }

    proptest! {
        #[test]
        fn chunks_tile_the_title_within_bounds(
            frames in 1u64..5000,
            cuts in proptest::collection::vec(1u64..5000, 0..60),
            min in 0.5f64..3.0,
            extra in 0.0f64..10.0,
        ) {
            let fps = 25.0;
            let r = rules(min, 2.0 * min + extra);
            let spans = plan(frames, fps, &cuts, &r);
            let min_f = (min * fps).round() as u64;
            let max_f = ((r.max_seconds * fps).floor() as u64).max(2 * min_f);
            prop_assert_eq!(spans.first().map(|s| s.start), Some(0));
            prop_assert_eq!(spans.last().map(|s| s.end), Some(frames));
            for w in spans.windows(2) {
                prop_assert_eq!(w[0].end, w[1].start);
            }
            for s in &spans {
                prop_assert!(s.end > s.start);
                prop_assert!(s.end - s.start <= max_f, "{:?} longer than {}", s, max_f);
                if spans.len() > 1 {
                    prop_assert!(s.end - s.start >= min_f, "{:?} shorter than {}", s, min_f);
                }
                let cut_here = cuts.contains(&s.start);
                match s.reason {
                    Start => prop_assert_eq!(s.start, 0),
                    Cut | Merge => prop_assert!(cut_here),
                    Split => {}
                }
            }
            // Every cut is either a chunk start or recorded as merged.
            for &c in cuts.iter().filter(|&&c| c < frames) {
                let starts = spans.iter().any(|s| s.start == c);
                let merged = spans.iter().any(|s| s.merged_cuts.contains(&c));
                prop_assert!(starts || merged, "cut {} lost", c);
            }
        }
    }
}
