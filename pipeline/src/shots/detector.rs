//! Finding hard cuts in a stream of frame statistics.
//!
//! Each frame is compared with the previous one on two signals: the change of the block
//! means (picture layout, sensitive to motion) and the change of the luma histogram (tones,
//! blind to motion). A frame starts a new shot when, on either signal, its change is
//! 1. above that signal's absolute threshold,
//! 2. several times the activity around it (the 75th percentile of that signal in a window on
//!    both sides), so fast motion, pans, exposure drift and grain do not trigger it, and
//! 3. the largest in its immediate neighbourhood;
//!
//! and when it is not a flash: no frame shortly before it looks like a frame shortly after it
//! (this rejects both the start and the end of a flash, and one- or two-frame inserts).
//!
//! The detector is streaming. It holds only a window of recent frames, so memory does not grow
//! with the length of the master.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::features::{Difference, Features};

/// Settings of the cut detector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorParams {
    /// The lowest block change (luma plus half the chroma, 0..1) a cut can have.
    pub threshold: f32,
    /// The lowest histogram change (0..1) a cut found on tones alone can have.
    pub histogram_threshold: f32,
    /// How many times the surrounding activity a cut's score must be.
    pub ratio: f32,
    /// Activity floor added before applying `ratio`, so that still scenes need a real change
    /// (histogram activity gets twice this floor).
    pub floor: f32,
    /// Half-width of the activity window, in seconds.
    pub window_seconds: f64,
    /// How far after a candidate to look for a return to the earlier picture, in seconds.
    pub flash_seconds: f64,
    /// A candidate is a flash if a frame shortly before it and one shortly after it differ by
    /// less than this fraction of the candidate's own change.
    pub flash_ratio: f32,
}

/// The default detector settings.
pub const DEFAULT_DETECTOR: DetectorParams = DetectorParams {
    threshold: 0.06,
    histogram_threshold: 0.4,
    ratio: 3.0,
    floor: 0.01,
    window_seconds: 0.5,
    flash_seconds: 0.3,
    flash_ratio: 0.5,
};

impl Default for DetectorParams {
    fn default() -> Self {
        DEFAULT_DETECTOR
    }
}

impl DetectorParams {
    /// Checks the settings, naming the bad one.
    pub fn validate(&self) -> Result<(), DetectorParamsError> {
        let checks: [(&str, f64, f64, f64); 7] = [
            ("threshold", self.threshold.into(), 0.0, 3.0),
            (
                "histogram_threshold",
                self.histogram_threshold.into(),
                0.0,
                1.0,
            ),
            ("ratio", self.ratio.into(), 1.0, 100.0),
            ("floor", self.floor.into(), 0.0, 1.0),
            ("window_seconds", self.window_seconds, 0.05, 10.0),
            ("flash_seconds", self.flash_seconds, 0.0, 5.0),
            ("flash_ratio", self.flash_ratio.into(), 0.0, 1.0),
        ];
        for (name, v, lo, hi) in checks {
            if !(lo..=hi).contains(&v) || !v.is_finite() {
                return Err(DetectorParamsError {
                    name,
                    value: v,
                    lo,
                    hi,
                });
            }
        }
        Ok(())
    }
}

/// A detector setting out of its range.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("invalid shot detector {name} {value} (expected >= {lo}, <= {hi})")]
pub struct DetectorParamsError {
    /// The setting, as named in the configuration.
    pub name: &'static str,
    /// The value given.
    pub value: f64,
    /// The lowest value allowed.
    pub lo: f64,
    /// The highest value allowed.
    pub hi: f64,
}

/// One frame's score, kept when the caller asks for the series.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FrameScore {
    /// Frame index.
    pub frame: u64,
    /// The combined score.
    pub score: f32,
    /// Luma block change.
    pub luma: f32,
    /// Chroma block change.
    pub chroma: f32,
    /// Histogram change.
    pub histogram: f32,
}

/// A detected cut.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectedCut {
    /// First frame of the new shot.
    pub frame: u64,
    /// Its score.
    pub score: f32,
}

struct Slot {
    index: u64,
    features: Option<Features>,
    diff: Difference,
}

/// The streaming detector.
pub struct Detector {
    params: DetectorParams,
    window: usize,
    flash: usize,
    slots: VecDeque<Slot>,
    next_index: u64,
    cuts: Vec<DetectedCut>,
    scores: Option<Vec<FrameScore>>,
}

impl Detector {
    /// A detector for video at `fps` frames per second. `keep_scores` keeps every frame's
    /// score for output (memory then grows with the length).
    pub fn new(params: DetectorParams, fps: f64, keep_scores: bool) -> Self {
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            25.0
        };
        let window = ((params.window_seconds * fps).round() as usize).clamp(2, 120);
        let flash = ((params.flash_seconds * fps).round() as usize).clamp(1, 60);
        Self {
            params,
            window,
            flash,
            slots: VecDeque::new(),
            next_index: 0,
            cuts: Vec::new(),
            scores: keep_scores.then(Vec::new),
        }
    }

    /// Adds the next frame's statistics (`None` for a frame whose picture could not be read,
    /// which never starts a cut).
    pub(crate) fn push(&mut self, features: Option<Features>) {
        let diff = match (
            self.slots.back().and_then(|s| s.features.as_ref()),
            &features,
        ) {
            (Some(prev), Some(cur)) => prev.difference(cur),
            _ => Difference::default(),
        };
        let index = self.next_index;
        self.next_index += 1;
        if let Some(scores) = &mut self.scores {
            scores.push(FrameScore {
                frame: index,
                score: diff.score(),
                luma: diff.luma,
                chroma: diff.chroma,
                histogram: diff.histogram,
            });
        }
        self.slots.push_back(Slot {
            index,
            features,
            diff,
        });
        // Decide the frame that now has a full window after it.
        let lookahead = self.window.max(self.flash);
        if self.slots.len() > lookahead {
            let at = self.slots.len() - 1 - lookahead;
            self.decide(at);
        }
        // Keep a full window before the next frame to decide, plus the frame before it.
        while self.slots.len() > lookahead + self.window + 2 {
            self.slots.pop_front();
        }
    }

    /// Decides the remaining frames and returns the cuts and, if kept, the score series.
    pub fn finish(mut self) -> (Vec<DetectedCut>, Option<Vec<FrameScore>>) {
        let lookahead = self.window.max(self.flash);
        let undecided = self.slots.len().min(lookahead);
        for at in self.slots.len() - undecided..self.slots.len() {
            self.decide(at);
        }
        (self.cuts, self.scores)
    }

    fn decide(&mut self, at: usize) {
        let slot = &self.slots[at];
        if slot.index == 0 || slot.features.is_none() {
            return;
        }
        let p = &self.params;
        let blocks = |d: &Difference| d.luma + 0.5 * d.chroma;
        let tones = |d: &Difference| d.histogram;
        let stands_out = self.stands_out(at, blocks, p.threshold, p.floor)
            || self.stands_out(at, tones, p.histogram_threshold, 2.0 * p.floor);
        if !stands_out || self.is_flash(at) {
            return;
        }
        self.cuts.push(DetectedCut {
            frame: slot.index,
            score: slot.diff.score(),
        });
    }

    /// True when `signal` at `at` is above `threshold`, the largest nearby, and several times
    /// the activity around it.
    fn stands_out(
        &self,
        at: usize,
        signal: impl Fn(&Difference) -> f32,
        threshold: f32,
        floor: f32,
    ) -> bool {
        let value = signal(&self.slots[at].diff);
        if value < threshold {
            return false;
        }
        // Largest in its immediate neighbourhood (ties go to the earlier frame).
        let near = 2;
        let lo = at.saturating_sub(near);
        let hi = (at + near).min(self.slots.len() - 1);
        for j in lo..=hi {
            let s = signal(&self.slots[j].diff);
            if (j < at && s >= value) || (j > at && s > value) {
                return false;
            }
        }
        let lo = at.saturating_sub(self.window);
        let hi = (at + self.window).min(self.slots.len() - 1);
        let mut around: Vec<f32> = (lo..=hi)
            .filter(|&j| j != at && self.slots[j].index != 0)
            .map(|j| signal(&self.slots[j].diff))
            .collect();
        value >= self.params.ratio * (percentile75(&mut around) + floor)
    }

    /// True when a frame shortly before `at` looks like a frame shortly after it: the change at
    /// `at` is a flash (its start or its end) or a brief insert, not a new shot.
    fn is_flash(&self, at: usize) -> bool {
        let score = self.slots[at].diff.score();
        let limit = self.params.flash_ratio * score;
        let first = at.saturating_sub(self.flash + 1);
        let last = (at + self.flash).min(self.slots.len() - 1);
        for i in first..at {
            let Some(before) = &self.slots[i].features else {
                continue;
            };
            for j in at..=last {
                if i + 1 == at && j == at {
                    continue;
                }
                if let Some(after) = &self.slots[j].features
                    && before.difference(after).score() < limit
                {
                    return true;
                }
            }
        }
        false
    }
}

fn percentile75(values: &mut [f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let k = (values.len() * 3 / 4).min(values.len() - 1);
    let (_, v, _) = values.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    *v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_of_small_sets() {
        assert_eq!(percentile75(&mut []), 0.0);
        assert_eq!(percentile75(&mut [5.0]), 5.0);
        assert_eq!(percentile75(&mut [4.0, 1.0, 3.0, 2.0]), 4.0);
        assert_eq!(
            percentile75(&mut [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]),
            0.0
        );
    }

    #[test]
    fn params_are_checked() {
        assert!(DetectorParams::default().validate().is_ok());
        let bad = DetectorParams {
            ratio: 0.5,
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("ratio 0.5")
        );
        let nan = DetectorParams {
            window_seconds: f64::NAN,
            ..Default::default()
        };
        assert!(nan.validate().is_err());
    }
}
