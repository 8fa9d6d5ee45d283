//! Rate-distortion points: what encoding some frames at one setting cost and gave.
//!
//! A [`Tally`] is additive: the tally of a title is the sum of its chunks' tallies, and every
//! pooled quality (mean, harmonic mean) is a function of sums. That lets per-chunk probes pool
//! into per-title points exactly, and lets the shot optimizer add up its choices.

use serde::{Deserialize, Serialize};

/// How per-frame VMAF pools into one number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// The arithmetic mean.
    #[default]
    Mean,
    /// libvmaf's harmonic mean, `n / Σ 1/(1+v) − 1`: low frames weigh more.
    Harmonic,
}

impl Pooling {
    /// Its name in the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Harmonic => "harmonic",
        }
    }

    /// Parses [`Pooling::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Mean, Self::Harmonic]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// The additive outcome of encoding frames at one setting.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Frames.
    pub frames: u64,
    /// Bits of the encoded frames.
    pub bits: f64,
    /// Σ VMAF over the frames.
    pub vmaf_sum: f64,
    /// Σ 1/(1 + VMAF) over the frames (for the harmonic mean).
    pub inverse_sum: f64,
    /// The lowest frame VMAF.
    pub vmaf_min: f64,
}

impl Tally {
    /// Nothing: the identity of [`Tally::add`].
    pub const ZERO: Tally = Tally {
        frames: 0,
        bits: 0.0,
        vmaf_sum: 0.0,
        inverse_sum: 0.0,
        vmaf_min: f64::INFINITY,
    };

    /// The tally of frames scored `per_frame` that took `bits`.
    pub fn of_frames(bits: f64, per_frame: &[f64]) -> Self {
        Self {
            frames: per_frame.len() as u64,
            bits,
            vmaf_sum: per_frame.iter().sum(),
            inverse_sum: per_frame.iter().map(|v| 1.0 / (1.0 + v)).sum(),
            vmaf_min: per_frame.iter().copied().fold(f64::INFINITY, f64::min),
        }
    }

    /// Both tallies together.
    pub fn add(&self, other: &Tally) -> Tally {
        Tally {
            frames: self.frames + other.frames,
            bits: self.bits + other.bits,
            vmaf_sum: self.vmaf_sum + other.vmaf_sum,
            inverse_sum: self.inverse_sum + other.inverse_sum,
            vmaf_min: self.vmaf_min.min(other.vmaf_min),
        }
    }

    /// Mean VMAF (0 with no frames).
    pub fn mean(&self) -> f64 {
        if self.frames == 0 {
            return 0.0;
        }
        self.vmaf_sum / self.frames as f64
    }

    /// Harmonic-mean VMAF, as libvmaf pools it (0 with no frames).
    pub fn harmonic(&self) -> f64 {
        if self.frames == 0 || self.inverse_sum <= 0.0 {
            return 0.0;
        }
        self.frames as f64 / self.inverse_sum - 1.0
    }

    /// The quality under `pooling`.
    pub fn quality(&self, pooling: Pooling) -> f64 {
        match pooling {
            Pooling::Mean => self.mean(),
            Pooling::Harmonic => self.harmonic(),
        }
    }

    /// The additive distortion whose minimum is the best `pooling` quality: −Σv for the mean,
    /// Σ 1/(1+v) for the harmonic mean.
    pub fn distortion(&self, pooling: Pooling) -> f64 {
        match pooling {
            Pooling::Mean => -self.vmaf_sum,
            Pooling::Harmonic => self.inverse_sum,
        }
    }

    /// Average bit rate in kbit/s at `fps` frames per second.
    pub fn kbps(&self, fps: f64) -> f64 {
        if self.frames == 0 || fps <= 0.0 {
            return 0.0;
        }
        self.bits * fps / self.frames as f64 / 1000.0
    }
}

/// One measured setting of a curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// The quality setting (CRF or quantizer): higher means fewer bits.
    pub crf: f64,
    /// What it gave.
    pub tally: Tally,
}

/// The rate-distortion curve of some frames at one resolution, over the quality setting.
///
/// Between measured settings it interpolates: bits geometrically (log-bits is close to linear
/// in CRF), the VMAF sums linearly. It never extrapolates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    points: Vec<CurvePoint>,
}

impl Curve {
    /// A curve through `points`, in any order; a setting measured twice keeps its last value.
    /// Points with no frames, or with non-finite or negative values, are left out.
    pub fn new(points: impl IntoIterator<Item = CurvePoint>) -> Self {
        let mut points: Vec<CurvePoint> = points
            .into_iter()
            .filter(|p| {
                let t = &p.tally;
                p.crf.is_finite()
                    && t.frames > 0
                    && t.bits.is_finite()
                    && t.bits > 0.0
                    && t.vmaf_sum.is_finite()
                    && t.inverse_sum.is_finite()
                    && t.inverse_sum > 0.0
            })
            .collect();
        points.reverse();
        points.sort_by(|a, b| a.crf.total_cmp(&b.crf));
        points.dedup_by(|a, b| a.crf == b.crf);
        Self { points }
    }

    /// The measured points, by ascending setting.
    pub fn points(&self) -> &[CurvePoint] {
        &self.points
    }

    /// The measured range of settings.
    pub fn range(&self) -> Option<(f64, f64)> {
        Some((self.points.first()?.crf, self.points.last()?.crf))
    }

    /// The tally at `crf`, interpolated between the measured settings around it; `None`
    /// outside the measured range.
    pub fn at(&self, crf: f64) -> Option<Tally> {
        let i = self.points.partition_point(|p| p.crf < crf);
        let hi = self.points.get(i)?;
        if hi.crf == crf {
            return Some(hi.tally);
        }
        let lo = self.points.get(i.checked_sub(1)?)?;
        let t = (crf - lo.crf) / (hi.crf - lo.crf);
        let lerp = |a: f64, b: f64| a + (b - a) * t;
        let (a, b) = (&lo.tally, &hi.tally);
        Some(Tally {
            frames: a.frames,
            bits: lerp(a.bits.ln(), b.bits.ln()).exp(),
            vmaf_sum: lerp(a.vmaf_sum, b.vmaf_sum),
            inverse_sum: lerp(a.inverse_sum, b.inverse_sum),
            vmaf_min: lerp(a.vmaf_min, b.vmaf_min),
        })
    }

    /// The settings on a grid of `step` across the measured range, plus every measured one.
    pub fn grid(&self, step: f64) -> Vec<f64> {
        let Some((lo, hi)) = self.range() else {
            return Vec::new();
        };
        let mut out: Vec<f64> = self.points.iter().map(|p| p.crf).collect();
        if step > 0.0 {
            let first = (lo / step).ceil() as i64;
            let last = (hi / step).floor() as i64;
            out.extend((first..=last).map(|k| k as f64 * step));
        }
        out.sort_by(f64::total_cmp);
        out.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(crf: f64, bits: f64, vmaf: f64) -> CurvePoint {
        CurvePoint {
            crf,
            tally: Tally::of_frames(bits, &[vmaf, vmaf]),
        }
    }

    #[test]
    fn tallies_pool_like_libvmaf() {
        let t = Tally::of_frames(8000.0, &[90.0, 60.0, 30.0]);
        assert!((t.mean() - 60.0).abs() < 1e-12);
        let h = 3.0 / (1.0 / 91.0 + 1.0 / 61.0 + 1.0 / 31.0) - 1.0;
        assert!((t.harmonic() - h).abs() < 1e-12);
        assert_eq!(t.vmaf_min, 30.0);
        assert!((t.kbps(24.0) - 64.0).abs() < 1e-12);
        let both = t.add(&Tally::of_frames(0.0, &[100.0]));
        assert_eq!(both.frames, 4);
        assert!((both.mean() - 70.0).abs() < 1e-12);
        assert_eq!(Tally::ZERO.add(&t), t);
        assert_eq!(Tally::ZERO.mean(), 0.0);
    }

    #[test]
    fn curves_interpolate_inside_and_never_outside() {
        let c = Curve::new([
            point(30.0, 1000.0, 70.0),
            point(20.0, 4000.0, 90.0),
            point(25.0, f64::NAN, 1.0),
        ]);
        assert_eq!(c.points().len(), 2);
        let mid = c.at(25.0).unwrap();
        assert!((mid.bits - 2000.0).abs() < 1e-9, "{}", mid.bits);
        assert!((mid.mean() - 80.0).abs() < 1e-12);
        assert_eq!(c.at(20.0).unwrap().bits, 4000.0);
        assert!(c.at(19.9).is_none() && c.at(30.1).is_none());
        assert_eq!(c.grid(4.0), [20.0, 24.0, 28.0, 30.0]);
    }
}
