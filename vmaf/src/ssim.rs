//! SSIM of luma, as libvmaf's `float_ssim` extractor computes it (the IQA implementation):
//! samples as floats (10-bit divided by 4), a box-filter decimation by `round(min(w, h)/256)`,
//! then an 11×11 Gaussian window (σ = 1.5) over the positions where it fits entirely.

use crate::picture::{Plane, PlaneView, Sample};

const WINDOW: [f32; 11] = [
    0.001028, 0.007599, 0.036001, 0.109361, 0.213006, 0.266012, 0.213006, 0.109361, 0.036001,
    0.007599, 0.001028,
];

/// IQA's rounding: away from zero at .5.
fn iqa_round(a: f32) -> i32 {
    let sign = if a > 0.0 { 1 } else { -1 };
    if a - (a as i32) as f32 >= 0.5 {
        a as i32 + sign
    } else {
        a as i32
    }
}

/// The samples of `p` as floats, box-filtered and subsampled by `factor` (IQA's decimation,
/// whose window is `factor` wide, centred on every `factor`-th sample, mirrored at the edges).
/// Returns the image and its size.
fn decimated<T: Sample>(
    p: &PlaneView<'_, T>,
    scaler: f32,
    factor: usize,
) -> (Vec<f32>, usize, usize) {
    let (w, h) = (p.width(), p.height());
    // The scalers are powers of two, so multiplying by the inverse divides exactly.
    let inv = 1.0 / scaler;
    let value = |v: T| Into::<u32>::into(v) as f32 * inv;
    if factor == 1 {
        let mut out = Vec::with_capacity(w * h);
        for y in 0..h {
            out.extend(p.row(y).iter().map(|&v| value(v)));
        }
        return (out, w, h);
    }
    let sw = w / factor + (w & 1);
    let sh = h / factor + (h & 1);
    let weight = 1.0f32 / (factor * factor) as f32;
    let half = (factor / 2) as isize;
    let even = isize::from(factor.is_multiple_of(2));
    let taps: Vec<isize> = (-half..=half - even).collect();
    // The source columns of every output column, tap by tap.
    let cols: Vec<usize> = (0..sw)
        .flat_map(|x| taps.iter().map(move |&u| sym((x * factor) as isize + u, w)))
        .collect();
    let mut out = Vec::with_capacity(sw * sh);
    let mut rows: Vec<&[T]> = Vec::with_capacity(taps.len());
    for y in 0..sh {
        rows.clear();
        rows.extend(
            taps.iter()
                .map(|&v| p.row(sym((y * factor) as isize + v, h))),
        );
        for x in 0..sw {
            let cx = &cols[x * taps.len()..(x + 1) * taps.len()];
            let mut sum = 0.0f64;
            for row in &rows {
                for &c in cx {
                    sum += f64::from(value(row[c]) * weight);
                }
            }
            out.push(sum as f32);
        }
    }
    (out, sw, sh)
}

/// IQA's symmetric boundary: mirrored with the edge sample repeated.
#[inline]
fn sym(i: isize, n: usize) -> usize {
    let n = n as isize;
    (if i < 0 {
        -1 - i
    } else if i >= n {
        n - (i - n) - 1
    } else {
        i
    }) as usize
}

/// The valid 11×11 separable convolution: `(w - 10)`×`(h - 10)` outputs. Each output sums
/// its taps in order in double precision, as IQA does; the loops run along rows so that the
/// sums of neighbouring outputs proceed together.
fn convolve(img: &[f32], w: usize, h: usize, cache: &mut Vec<f32>, out: &mut Vec<f32>) {
    let (dw, dh) = (w - 10, h - 10);
    let mut acc = vec![0.0f64; dw];
    cache.clear();
    for y in 0..h {
        let row = &img[y * w..(y + 1) * w];
        acc.fill(0.0);
        for (k, &c) in WINDOW.iter().enumerate() {
            for (a, &v) in acc.iter_mut().zip(&row[k..k + dw]) {
                *a += f64::from(v * c);
            }
        }
        cache.extend(acc.iter().map(|&a| a as f32));
    }
    out.clear();
    for y in 0..dh {
        acc.fill(0.0);
        for (k, &c) in WINDOW.iter().enumerate() {
            let row = &cache[(y + k) * dw..(y + k + 1) * dw];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += f64::from(v * c);
            }
        }
        out.extend(acc.iter().map(|&a| a as f32));
    }
}

/// The SSIM of two luma planes of the same size and bit depth; `None` if too small.
pub(crate) fn ssim(r: Plane<'_>, d: Plane<'_>, bpc: u32) -> Option<f64> {
    let scaler = match bpc {
        8 => 1.0,
        10 => 4.0,
        12 => 16.0,
        _ => 256.0,
    };
    let (w, h) = (r.width(), r.height());
    let scale = iqa_round(w.min(h) as f32 / 256.0).max(1) as usize;
    let ((rf, w, h), (df, _, _)) = match (r, d) {
        (Plane::U8(r), Plane::U8(d)) => {
            (decimated(&r, scaler, scale), decimated(&d, scaler, scale))
        }
        (Plane::U16(r), Plane::U16(d)) => {
            (decimated(&r, scaler, scale), decimated(&d, scaler, scale))
        }
        _ => return None,
    };
    if w < 11 || h < 11 {
        return None;
    }
    let (c1, c2) = (
        (0.01f32 * 255.0) * (0.01 * 255.0),
        (0.03f32 * 255.0) * (0.03 * 255.0),
    );
    let c3 = c2 / 2.0;
    let n = w * h;
    let (rf, df) = (&rf[..], &df[..]);
    let mut cache = Vec::new();
    let (mut mu1, mut mu2, mut s11, mut s22, mut s12) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    convolve(rf, w, h, &mut cache, &mut mu1);
    convolve(df, w, h, &mut cache, &mut mu2);
    let sq = |f: &dyn Fn(usize) -> f32| (0..n).map(f).collect::<Vec<f32>>();
    convolve(&sq(&|i| rf[i] * rf[i]), w, h, &mut cache, &mut s11);
    convolve(&sq(&|i| df[i] * df[i]), w, h, &mut cache, &mut s22);
    convolve(&sq(&|i| rf[i] * df[i]), w, h, &mut cache, &mut s12);
    let mut sum = 0.0f64;
    for i in 0..mu1.len() {
        let (m1, m2) = (mu1[i], mu2[i]);
        let v1 = (s11[i] - m1 * m1).max(0.0);
        let v2 = (s22[i] - m2 * m2).max(0.0);
        let both = s12[i] - m1 * m2;
        let root = (f64::from(v1 * v2)).sqrt() as f32;
        let l = (2.0 * f64::from(m1) * f64::from(m2) + f64::from(c1))
            / f64::from(m1 * m1 + m2 * m2 + c1);
        let c = (2.0 * f64::from(root) + f64::from(c2)) / f64::from(v1 + v2 + c2);
        let clamped = if both < 0.0 && root <= 0.0 { 0.0 } else { both };
        let s = f64::from((clamped + c3) / (root + c3));
        sum += l * c * s;
    }
    Some(f64::from((sum / mu1.len() as f64) as f32))
}
