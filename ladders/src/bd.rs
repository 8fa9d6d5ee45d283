//! Bjøntegaard delta rate: how many more (or fewer) bits one rate-quality curve needs than
//! another for the same quality, averaged over the quality range both cover.
//!
//! Log-rate is interpolated as a function of quality with a monotone piecewise cubic (PCHIP,
//! Fritsch–Carlson), as in the current JVET and AOM practice, rather than the original
//! third-order polynomial, which oscillates on ladders with many rungs. The integrals are exact:
//! each piece is a cubic and Simpson's rule integrates cubics exactly.

/// Why a BD-rate cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BdError {
    /// A curve has fewer than two usable points.
    #[error("{0} has fewer than two points with a positive rate and a finite quality")]
    TooFewPoints(&'static str),
    /// A curve's quality does not rise with its rate.
    #[error(
        "{which}: quality does not rise with rate ({q0:.3} at {r0:.1} kbit/s, then {q1:.3} at {r1:.1} kbit/s)"
    )]
    NotMonotonic {
        /// `anchor` or `test`.
        which: &'static str,
        /// The first rate.
        r0: f64,
        /// Its quality.
        q0: f64,
        /// The next rate.
        r1: f64,
        /// Its quality.
        q1: f64,
    },
    /// The curves cover no common quality range.
    #[error("the curves share no quality range (anchor {a0:.2}–{a1:.2}, test {b0:.2}–{b1:.2})")]
    NoOverlap {
        /// Anchor's lowest quality.
        a0: f64,
        /// Anchor's highest quality.
        a1: f64,
        /// Test's lowest quality.
        b0: f64,
        /// Test's highest quality.
        b1: f64,
    },
}

/// A monotone piecewise cubic through `(x, y)` knots with strictly rising x.
struct Pchip {
    x: Vec<f64>,
    y: Vec<f64>,
    d: Vec<f64>,
}

impl Pchip {
    fn new(x: Vec<f64>, y: Vec<f64>) -> Self {
        let n = x.len();
        let h: Vec<f64> = x.windows(2).map(|w| w[1] - w[0]).collect();
        let delta: Vec<f64> = (0..n - 1).map(|k| (y[k + 1] - y[k]) / h[k]).collect();
        let mut d = vec![0.0; n];
        if n == 2 {
            d = vec![delta[0]; 2];
        } else {
            for k in 1..n - 1 {
                if delta[k - 1] * delta[k] > 0.0 {
                    let w1 = 2.0 * h[k] + h[k - 1];
                    let w2 = h[k] + 2.0 * h[k - 1];
                    d[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k]);
                }
            }
            let end = |h0: f64, h1: f64, d0: f64, d1: f64| {
                let s = ((2.0 * h0 + h1) * d0 - h0 * d1) / (h0 + h1);
                if s.signum() != d0.signum() {
                    0.0
                } else if d0.signum() != d1.signum() && s.abs() > 3.0 * d0.abs() {
                    3.0 * d0
                } else {
                    s
                }
            };
            d[0] = end(h[0], h[1], delta[0], delta[1]);
            d[n - 1] = end(h[n - 2], h[n - 3], delta[n - 2], delta[n - 3]);
        }
        Self { x, y, d }
    }

    /// The value at `t` inside piece `k`.
    fn eval(&self, k: usize, t: f64) -> f64 {
        let h = self.x[k + 1] - self.x[k];
        let s = (t - self.x[k]) / h;
        let (s2, s3) = (s * s, s * s * s);
        (2.0 * s3 - 3.0 * s2 + 1.0) * self.y[k]
            + (s3 - 2.0 * s2 + s) * h * self.d[k]
            + (-2.0 * s3 + 3.0 * s2) * self.y[k + 1]
            + (s3 - s2) * h * self.d[k + 1]
    }

    /// ∫ from `a` to `b`, both inside the knots' range.
    fn integral(&self, a: f64, b: f64) -> f64 {
        let mut total = 0.0;
        for k in 0..self.x.len() - 1 {
            let lo = a.max(self.x[k]);
            let hi = b.min(self.x[k + 1]);
            if hi > lo {
                let mid = 0.5 * (lo + hi);
                total += (hi - lo) / 6.0
                    * (self.eval(k, lo) + 4.0 * self.eval(k, mid) + self.eval(k, hi));
            }
        }
        total
    }
}

/// Sorts a curve by rate and checks that quality rises with it.
fn prepare(which: &'static str, points: &[(f64, f64)]) -> Result<Vec<(f64, f64)>, BdError> {
    let mut p: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(r, q)| r.is_finite() && *r > 0.0 && q.is_finite())
        .collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Two rungs that encoded alike (the same quality, the rates a few header bytes apart)
    // count once, at the lower rate.
    p.dedup_by(|b, a| b.1 == a.1 && b.0 <= a.0 * 1.001);
    if p.len() < 2 {
        return Err(BdError::TooFewPoints(which));
    }
    for w in p.windows(2) {
        if w[1].1 <= w[0].1 || w[1].0 <= w[0].0 {
            return Err(BdError::NotMonotonic {
                which,
                r0: w[0].0,
                q0: w[0].1,
                r1: w[1].0,
                q1: w[1].1,
            });
        }
    }
    Ok(p)
}

/// The BD-rate of `test` against `anchor`, in percent: negative when `test` needs fewer bits
/// for the same quality. Points are `(rate, quality)`; any positive rate unit works, the same
/// for both.
pub fn bd_rate(anchor: &[(f64, f64)], test: &[(f64, f64)]) -> Result<f64, BdError> {
    let a = prepare("anchor", anchor)?;
    let b = prepare("test", test)?;
    let curve = |p: &[(f64, f64)]| {
        Pchip::new(
            p.iter().map(|x| x.1).collect(),
            p.iter().map(|x| x.0.ln()).collect(),
        )
    };
    let (lo, hi) = overlap(&a, &b)?;
    let (ca, cb) = (curve(&a), curve(&b));
    let mean_diff = (cb.integral(lo, hi) - ca.integral(lo, hi)) / (hi - lo);
    Ok((mean_diff.exp() - 1.0) * 100.0)
}

/// The BD-quality of `test` against `anchor`: its average quality gain at equal rate, over the
/// log-rate range both cover (BD-VMAF when quality is VMAF).
pub fn bd_quality(anchor: &[(f64, f64)], test: &[(f64, f64)]) -> Result<f64, BdError> {
    let a = prepare("anchor", anchor)?;
    let b = prepare("test", test)?;
    let curve = |p: &[(f64, f64)]| {
        Pchip::new(
            p.iter().map(|x| x.0.ln()).collect(),
            p.iter().map(|x| x.1).collect(),
        )
    };
    // The common log-rate range.
    let log_rate =
        |p: &[(f64, f64)]| -> Vec<(f64, f64)> { p.iter().map(|x| (x.1, x.0.ln())).collect() };
    let (lo, hi) = overlap(&log_rate(&a), &log_rate(&b))?;
    let (ca, cb) = (curve(&a), curve(&b));
    Ok((cb.integral(lo, hi) - ca.integral(lo, hi)) / (hi - lo))
}

/// The common range of the second coordinates.
fn overlap(a: &[(f64, f64)], b: &[(f64, f64)]) -> Result<(f64, f64), BdError> {
    let range = |p: &[(f64, f64)]| {
        p.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(x.1), hi.max(x.1))
            })
    };
    let ((a0, a1), (b0, b1)) = (range(a), range(b));
    let (lo, hi) = (a0.max(b0), a1.min(b1));
    if hi - lo <= 1e-9 {
        return Err(BdError::NoOverlap { a0, a1, b0, b1 });
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ladder() -> Vec<(f64, f64)> {
        vec![
            (145.0, 38.0),
            (365.0, 55.0),
            (730.0, 68.0),
            (2000.0, 82.0),
            (4500.0, 91.0),
            (7800.0, 95.0),
        ]
    }

    #[test]
    fn a_curve_against_itself_is_zero() {
        assert!(bd_rate(&ladder(), &ladder()).unwrap().abs() < 1e-12);
        assert!(bd_quality(&ladder(), &ladder()).unwrap().abs() < 1e-12);
    }

    #[test]
    fn scaled_rates_give_the_scale() {
        let cheaper: Vec<_> = ladder().iter().map(|&(r, q)| (r * 0.8, q)).collect();
        let b = bd_rate(&ladder(), &cheaper).unwrap();
        assert!((b + 20.0).abs() < 1e-9, "{b}");
        let back = bd_rate(&cheaper, &ladder()).unwrap();
        assert!((back - 25.0).abs() < 1e-9, "{back}");
        let better: Vec<_> = ladder().iter().map(|&(r, q)| (r, q + 2.0)).collect();
        let d = bd_quality(&ladder(), &better).unwrap();
        assert!((d - 2.0).abs() < 1e-9, "{d}");
        assert!(bd_rate(&ladder(), &better).unwrap() < 0.0);
    }

    #[test]
    fn matches_a_hand_computed_two_point_case() {
        // Two points: log-rate is linear in quality. Anchor from ln 100 at q=50 to ln 400 at
        // q=90; test from ln 100 at q=60 to ln 200 at q=90. Over q ∈ [60, 90]:
        // anchor mean log-rate = ln100 + ln4 · (75 − 50)/40, test = ln100 + ln2 · 0.5.
        let a = [(100.0, 50.0), (400.0, 90.0)];
        let t = [(100.0, 60.0), (200.0, 90.0)];
        let expected = ((2f64.ln() * 0.5) - (4f64.ln() * 25.0 / 40.0)).exp() - 1.0;
        let got = bd_rate(&a, &t).unwrap();
        assert!((got - expected * 100.0).abs() < 1e-9, "{got}");
    }

    #[test]
    fn bad_curves_are_refused_with_the_reason() {
        assert_eq!(
            bd_rate(&[(1.0, 1.0)], &ladder()),
            Err(BdError::TooFewPoints("anchor"))
        );
        let dip = [(100.0, 50.0), (200.0, 49.0)];
        assert!(matches!(
            bd_rate(&ladder(), &dip),
            Err(BdError::NotMonotonic { which: "test", .. })
        ));
        // Two rungs that encoded alike count once; a repeated rate at another quality is not
        // a curve.
        let mut twice = ladder();
        twice.push(twice[1]);
        twice.push((twice[1].0 * 1.0005, twice[1].1));
        assert_eq!(bd_rate(&ladder(), &twice), Ok(0.0));
        let mut clash = ladder();
        clash.push((clash[1].0, clash[1].1 + 0.5));
        assert!(matches!(
            bd_rate(&ladder(), &clash),
            Err(BdError::NotMonotonic { .. })
        ));
        let far = [(100.0, 96.0), (200.0, 99.0)];
        assert!(matches!(
            bd_rate(&ladder(), &far),
            Err(BdError::NoOverlap { .. })
        ));
    }

    proptest! {
        /// The interpolant passes through its knots and stays monotone between them.
        #[test]
        fn pchip_is_monotone(steps in prop::collection::vec((0.1f64..10.0, 0.01f64..5.0), 2..10)) {
            let mut x = vec![0.0];
            let mut y = vec![1.0];
            for (dx, dy) in &steps {
                x.push(x.last().unwrap() + dx);
                y.push(y.last().unwrap() + dy);
            }
            let p = Pchip::new(x.clone(), y.clone());
            for k in 0..x.len() - 1 {
                prop_assert!((p.eval(k, x[k]) - y[k]).abs() < 1e-9);
                prop_assert!((p.eval(k, x[k + 1]) - y[k + 1]).abs() < 1e-9);
                let mut prev = y[k];
                for i in 1..=20 {
                    let v = p.eval(k, x[k] + (x[k + 1] - x[k]) * i as f64 / 20.0);
                    prop_assert!(v >= prev - 1e-9);
                    prev = v;
                }
            }
        }

        /// Scaling every rate of the test curve by s gives a BD-rate of (s − 1) · 100.
        #[test]
        fn scale_is_recovered(s in 0.3f64..3.0) {
            let t: Vec<_> = ladder().iter().map(|&(r, q)| (r * s, q)).collect();
            let b = bd_rate(&ladder(), &t).unwrap();
            prop_assert!((b - (s - 1.0) * 100.0).abs() < 1e-7);
        }
    }
}
