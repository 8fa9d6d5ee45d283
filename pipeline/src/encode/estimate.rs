//! What Apple's fixed ladder would have given on this title, estimated from the curves the
//! decision measured: the honest "bits saved" of a per-title or shot-level ladder.
//!
//! Each of Apple's rungs (its size and table bit rate) gets the pooled VMAF that the title's
//! curves predict there: along a size's curve by log bit rate, and between the two sizes around
//! the rung's by log pixel count. The ladder's own rungs (as measured) are then compared with
//! those points by BD-rate, at equal quality, never by bit rates at different qualities. It is an
//! estimate: the curves are probes moved onto the final preset by the anchors, not encodes of
//! Apple's ladder, and the report says so.

use ladders::title::Size;
use serde::Serialize;

/// How the estimate is made, as the report and the dashboard label it.
pub const BASIS: &str = "estimate: Apple's rungs placed on this title's rate-quality curves \
                         (probes corrected by final-preset anchors), not encoded";

/// How the measured comparison is made (`--compare-fixed`).
pub const MEASURED_BASIS: &str = "measured: Apple's ladder for the master encoded with the same \
                                  encoder and preset (--compare-fixed) and scored like the rungs";

/// One of Apple's rungs, encoded and measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeasuredRung {
    /// Its name in Apple's table.
    pub name: String,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Its measured average bit rate, kbit/s.
    pub kbps: f64,
    /// Its measured pooled VMAF.
    pub vmaf: f64,
}

/// This ladder against Apple's fixed ladder for the same master, both encoded and measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FixedMeasured {
    /// How it was made.
    pub basis: String,
    /// Apple's rungs as encoded.
    pub rungs: Vec<MeasuredRung>,
    /// BD-rate of this ladder's rungs against them, in percent: negative when this ladder
    /// needs fewer bits for the same VMAF. `None` when either side has under two points.
    pub bd_rate_percent: Option<f64>,
    /// Why there is no BD-rate, when there is none.
    pub why_none: Option<String>,
}

/// This ladder's measured rungs (`(kbps, vmaf)`) against Apple's, measured too.
pub fn measured_against_fixed(fixed: Vec<MeasuredRung>, ladder: &[(f64, f64)]) -> FixedMeasured {
    let points: Vec<(f64, f64)> = fixed.iter().map(|r| (r.kbps, r.vmaf)).collect();
    let (bd, why) = bd_against(&points, ladder);
    FixedMeasured {
        basis: MEASURED_BASIS.to_owned(),
        rungs: fixed,
        bd_rate_percent: bd,
        why_none: why,
    }
}

/// The upper hull of `points` (`(kbps, vmaf)`) in rate order: a rung that gives lower quality
/// than a cheaper one is never worth switching to.
fn as_ladder(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut p = points.to_vec();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    ladders::hull::upper(&p).into_iter().map(|i| p[i]).collect()
}

/// BD-rate in percent (two decimals) of the ladder `own` against `fixed`, or why there is none.
fn bd_against(fixed: &[(f64, f64)], own: &[(f64, f64)]) -> (Option<f64>, Option<String>) {
    match ladders::bd::bd_rate(&as_ladder(fixed), &as_ladder(own)) {
        Ok(v) if v.is_finite() => (Some((v * 100.0).round() / 100.0), None),
        Ok(v) => (None, Some(format!("BD-rate is {v}"))),
        Err(e) => (None, Some(e.to_string())),
    }
}

/// One codec's ladder against the title's H.264 ladder, both measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CodecComparison {
    /// The codec compared with.
    pub anchor: String,
    /// `measured`: both ladders' renditions scored against the master.
    pub basis: String,
    /// BD-rate against the H.264 ladder, percent: negative when this codec needs fewer bits
    /// for the same VMAF.
    pub bd_rate_percent: Option<f64>,
    /// BD-VMAF: the average VMAF gain at equal bit rate.
    pub bd_vmaf: Option<f64>,
    /// The VMAF range both ladders cover, where the BD-rate is taken (a codec limited to the
    /// top rungs is compared on the top of the H.264 range only).
    pub quality_range: Option<(f64, f64)>,
    /// Why there is no BD-rate, when there is none.
    pub why_none: Option<String>,
}

/// The ladder `other` against the ladder `h264`, each the measured rungs' `(kbps, vmaf)`.
pub fn against_codec(h264: &[(f64, f64)], other: &[(f64, f64)]) -> CodecComparison {
    let (a, b) = (as_ladder(h264), as_ladder(other));
    let (bd, why) = bd_against(h264, other);
    let round = |v: f64| (v * 100.0).round() / 100.0;
    let range = |p: &[(f64, f64)]| {
        p.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(x.1), hi.max(x.1))
            })
    };
    let ((a0, a1), (b0, b1)) = (range(&a), range(&b));
    let (lo, hi) = (a0.max(b0), a1.min(b1));
    CodecComparison {
        anchor: "h264".into(),
        basis: "measured".into(),
        bd_rate_percent: bd,
        bd_vmaf: ladders::bd::bd_quality(&a, &b)
            .ok()
            .filter(|v| v.is_finite())
            .map(round),
        quality_range: (bd.is_some() && hi > lo).then(|| (round(lo), round(hi))),
        why_none: why,
    }
}

/// One of Apple's rungs with the quality the title's curves predict for it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EstimatedRung {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Apple's table bit rate, kbit/s.
    pub kbps: f64,
    /// The predicted pooled VMAF.
    pub vmaf: f64,
}

/// This ladder against Apple's fixed ladder for the same master.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FixedEstimate {
    /// How it was made.
    pub basis: String,
    /// Apple's rungs the curves cover.
    pub rungs: Vec<EstimatedRung>,
    /// Apple's rungs left out: their size or rate lies outside what the curves cover.
    pub left_out: usize,
    /// BD-rate of this ladder's rungs against them, in percent: negative when this ladder
    /// needs fewer bits for the same VMAF. `None` when either side has under two points.
    pub bd_rate_percent: Option<f64>,
    /// Why there is no BD-rate, when there is none.
    pub why_none: Option<String>,
}

/// The pooled VMAF at `kbps` along one size's points (`(kbps, vmaf)`, any order), by linear
/// interpolation in log bit rate; `None` outside the points' span.
fn along(points: &[(f64, f64)], kbps: f64) -> Option<f64> {
    let mut p: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0 > 0.0).collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    let i = p.iter().position(|q| q.0 >= kbps)?;
    if i == 0 {
        return (p[0].0 == kbps).then_some(p[0].1);
    }
    let (a, b) = (p[i - 1], p[i]);
    let t = (kbps.ln() - a.0.ln()) / (b.0.ln() - a.0.ln());
    Some(a.1 + t * (b.1 - a.1))
}

/// The pooled VMAF the curves (`(size, kbps, vmaf)` points) predict at `size` and `kbps`.
pub fn predict(points: &[(Size, f64, f64)], size: Size, kbps: f64) -> Option<f64> {
    let mut sizes: Vec<Size> = points.iter().map(|p| p.0).collect();
    sizes.sort_by_key(|s| (s.pixels(), s.width));
    sizes.dedup();
    let at = |s: Size| {
        let curve: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.0 == s)
            .map(|p| (p.1, p.2))
            .collect();
        along(&curve, kbps)
    };
    if sizes.contains(&size) {
        return at(size);
    }
    let px = size.pixels() as f64;
    let above = sizes.iter().position(|s| s.pixels() as f64 >= px)?;
    if above == 0 {
        return None;
    }
    let (lo, hi) = (sizes[above - 1], sizes[above]);
    let (qlo, qhi) = (at(lo)?, at(hi)?);
    let (plo, phi) = (lo.pixels() as f64, hi.pixels() as f64);
    let t = (px.ln() - plo.ln()) / (phi.ln() - plo.ln());
    Some(qlo + t * (qhi - qlo))
}

/// This ladder's rungs (`(kbps, vmaf)`) against Apple's (`(size, table kbps)`), on the title's
/// curves (`(size, kbps, vmaf)`).
pub fn against_fixed(
    curves: &[(Size, f64, f64)],
    apple: &[(Size, f64)],
    ladder: &[(f64, f64)],
) -> FixedEstimate {
    let mut rungs = Vec::new();
    for &(size, kbps) in apple {
        if let Some(vmaf) = predict(curves, size, kbps) {
            rungs.push(EstimatedRung {
                width: size.width,
                height: size.height,
                kbps,
                vmaf: (vmaf * 1e4).round() / 1e4,
            });
        }
    }
    let fixed: Vec<(f64, f64)> = rungs.iter().map(|r| (r.kbps, r.vmaf)).collect();
    let (bd, why) = bd_against(&fixed, ladder);
    FixedEstimate {
        basis: BASIS.to_owned(),
        left_out: apple.len() - rungs.len(),
        rungs,
        bd_rate_percent: bd,
        why_none: why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_codec_is_compared_with_h264_where_both_ladders_reach() {
        let h264: Vec<(f64, f64)> = [300.0, 600.0, 1200.0, 2400.0, 4800.0]
            .iter()
            .map(|&k: &f64| (k, 40.0 + 10.0 * (k / 300.0).log2()))
            .collect();
        let same = against_codec(&h264, &h264);
        assert_eq!(same.bd_rate_percent, Some(0.0));
        assert_eq!(same.bd_vmaf, Some(0.0));
        let half: Vec<(f64, f64)> = h264.iter().map(|&(k, v)| (k / 2.0, v)).collect();
        let got = against_codec(&h264, &half);
        assert!((got.bd_rate_percent.unwrap() + 50.0).abs() < 0.5, "{got:?}");
        assert!(got.bd_vmaf.unwrap() > 9.0, "{got:?}");
        // A codec with the top rungs only is compared on the top of the range.
        let top: Vec<(f64, f64)> = half[2..].to_vec();
        let got = against_codec(&h264, &top);
        assert_eq!(got.quality_range, Some((60.0, 80.0)));
        assert!((got.bd_rate_percent.unwrap() + 50.0).abs() < 0.5, "{got:?}");
        let apart = against_codec(&h264, &[(100.0, 10.0), (200.0, 20.0)]);
        assert_eq!(apart.bd_rate_percent, None);
        assert!(apart.why_none.is_some() && apart.quality_range.is_none());
    }

    fn size(w: u32, h: u32) -> Size {
        Size {
            width: w,
            height: h,
        }
    }

    /// Two sizes whose VMAF grows with log rate; the larger is better above 1000 kbit/s.
    fn curves() -> Vec<(Size, f64, f64)> {
        let mut c = Vec::new();
        for kbps in [200.0, 400.0, 800.0, 1600.0, 3200.0] {
            let l = f64::ln(kbps / 200.0);
            c.push((size(640, 360), kbps, 50.0 + 10.0 * l));
            c.push((size(1280, 720), kbps, 40.0 + 16.0 * l));
        }
        c
    }

    #[test]
    fn quality_is_read_along_rates_and_between_sizes() {
        let c = curves();
        let q = predict(&c, size(640, 360), 400.0).unwrap();
        assert!((q - (50.0 + 10.0 * 2f64.ln())).abs() < 1e-9);
        // Half way in log rate between 400 and 800.
        let mid = predict(&c, size(640, 360), 400.0 * 2f64.sqrt()).unwrap();
        assert!((mid - (50.0 + 10.0 * 1.5 * 2f64.ln())).abs() < 1e-9);
        // 960x540 lies between the sizes in log pixels (0.585 of the way up).
        let between = predict(&c, size(960, 540), 800.0).unwrap();
        let (lo, hi) = (
            predict(&c, size(640, 360), 800.0).unwrap(),
            predict(&c, size(1280, 720), 800.0).unwrap(),
        );
        let t = (2.25f64).ln() / 4f64.ln();
        assert!((between - (lo + t * (hi - lo))).abs() < 1e-9);
        // Outside the curves: no estimate.
        assert_eq!(predict(&c, size(640, 360), 100.0), None);
        assert_eq!(predict(&c, size(640, 360), 6400.0), None);
        assert_eq!(predict(&c, size(1920, 1080), 800.0), None);
        assert_eq!(predict(&c, size(416, 234), 800.0), None);
    }

    #[test]
    fn a_ladder_on_the_hull_beats_rungs_off_it_and_the_sign_says_so() {
        let c = curves();
        let apple = [
            (size(640, 360), 400.0),
            (size(960, 540), 900.0),
            (size(1280, 720), 1500.0),
            (size(1280, 720), 3000.0),
            (size(1920, 1080), 6000.0),
        ];
        // The ladder takes the better size at each rate, on the same curves.
        let best = |kbps: f64| {
            predict(&c, size(640, 360), kbps)
                .unwrap()
                .max(predict(&c, size(1280, 720), kbps).unwrap())
        };
        let ladder: Vec<(f64, f64)> = [250.0, 450.0, 900.0, 1700.0, 3100.0]
            .into_iter()
            .map(|k| (k, best(k)))
            .collect();
        let e = against_fixed(&c, &apple, &ladder);
        assert_eq!(e.rungs.len(), 4);
        assert_eq!(e.left_out, 1, "1080p is outside the curves");
        let bd = e.bd_rate_percent.unwrap();
        assert!(bd < 0.0, "{e:?}");
        // The same comparison the other way round saves nothing.
        let worse: Vec<(f64, f64)> = ladder.iter().map(|&(k, q)| (k * 1.3, q)).collect();
        let w = against_fixed(&c, &apple, &worse);
        assert!(w.bd_rate_percent.unwrap() > bd);
        // Too little to compare: no figure, and the reason.
        let none = against_fixed(&c, &apple[..1], &ladder);
        assert_eq!(none.bd_rate_percent, None);
        assert!(none.why_none.is_some());
        assert!(none.basis.starts_with("estimate"));
    }
}
