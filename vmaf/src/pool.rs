//! Pooling per-frame scores into one number per title.

use serde::Serialize;

/// Pooled statistics of a series of per-frame scores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Pooled {
    /// Arithmetic mean.
    pub mean: f64,
    /// libvmaf's harmonic mean: `n / Σ 1/(x + 1) - 1`, which punishes bad frames.
    pub harmonic_mean: f64,
    /// Lowest frame.
    pub min: f64,
    /// Highest frame.
    pub max: f64,
    /// 5th percentile, linearly interpolated (as libvmaf and numpy compute it).
    pub p5: f64,
}

impl Pooled {
    /// Pools `scores`; all zeros for an empty series.
    pub fn of(scores: &[f64]) -> Self {
        if scores.is_empty() {
            return Self::default();
        }
        let n = scores.len() as f64;
        let mean = scores.iter().sum::<f64>() / n;
        let harmonic_mean = n / scores.iter().map(|x| 1.0 / (x + 1.0)).sum::<f64>() - 1.0;
        let mut sorted = scores.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            mean,
            harmonic_mean,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            p5: percentile(&sorted, 5.0),
        }
    }
}

/// The `perc` percentile of sorted values, interpolated between neighbours.
pub fn percentile(sorted: &[f64], perc: f64) -> f64 {
    let p = perc * (sorted.len() - 1) as f64 / 100.0;
    let (l, r) = (p.floor() as usize, p.ceil() as usize);
    if l == r {
        sorted[l]
    } else {
        sorted[l] * (r as f64 - p) + sorted[r] * (p - l as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_like_libvmaf() {
        let p = Pooled::of(&[90.0, 80.0, 100.0, 70.0]);
        assert_eq!(p.mean, 85.0);
        assert_eq!((p.min, p.max), (70.0, 100.0));
        let h = 4.0 / (1.0 / 91.0 + 1.0 / 81.0 + 1.0 / 101.0 + 1.0 / 71.0) - 1.0;
        assert!((p.harmonic_mean - h).abs() < 1e-12);
        assert!((p.p5 - (70.0 + 0.15 * 10.0)).abs() < 1e-12);
        assert_eq!(Pooled::of(&[]), Pooled::default());
    }
}
