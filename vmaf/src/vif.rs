//! Visual Information Fidelity at four scales, as libvmaf's integer VIF extractor computes it.
//!
//! Each scale filters the reference and distorted luma with a Gaussian (17, 9, 5 and 3 taps),
//! forms the local means, variances and covariance in fixed point, and sums a per-pixel
//! information ratio in the log domain through a 2048-step log2 table. Between scales the
//! images are low-passed with the next scale's filter and decimated by two. Integer stages are
//! bit-exact with libvmaf; the few floating-point steps follow its order of operations.

use crate::kernels;
use crate::picture::{PlaneView, Sample};

/// The Gaussian filters of the four scales, Q16 (each sums to 65536).
pub(crate) const FILTERS: [&[u16]; 4] = [
    &[
        489, 935, 1640, 2640, 3896, 5274, 6547, 7455, 7784, 7455, 6547, 5274, 3896, 2640, 1640,
        935, 489,
    ],
    &[1244, 3663, 7925, 12590, 14692, 12590, 7925, 3663, 1244],
    &[3571, 16004, 26386, 16004, 3571],
    &[10904, 43728, 10904],
];

/// The noise variance of the model, 2.0 in Q16.
pub(crate) const SIGMA_NSQ: i32 = 65536 << 1;

/// libvmaf's default enhancement gain limit.
pub const DEFAULT_VIF_ENHN_GAIN_LIMIT: f64 = 100.0;

/// Numerator and denominator of each scale.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VifScales {
    /// Numerators, finest scale first.
    pub num: [f32; 4],
    /// Denominators, finest scale first.
    pub den: [f32; 4],
}

impl VifScales {
    /// The score of scale `s`, as libvmaf reports it (`vif_scale{s}`).
    pub fn score(&self, s: usize) -> f64 {
        f64::from(self.num[s] / self.den[s])
    }
}

/// The integer accumulators of one scale. Sums of integers, so the order of rows does not
/// change the result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Accum {
    pub num_log: i64,
    pub den_log: i64,
    pub num_non_log: i64,
    pub den_non_log: i64,
    pub x: i64,
    pub x2: i64,
    pub num_x: i64,
}

impl Accum {
    fn finish(&self) -> (f32, f32) {
        let num = self.num_log as f64 / 2048.0
            + self.x2 as f64
            + (self.den_non_log as f64 - (self.num_non_log as f64 / 16384.0) / 65025.0);
        let den = self.den_log as f64 / 2048.0 - (self.x + self.num_x * 17) as f64
            + self.den_non_log as f64;
        (num as f32, den as f32)
    }
}

/// `round(log2f(i) * 2048)` for the 16-bit mantissas the statistic looks up.
/// Entries are `u32` so that SIMD code can gather them directly.
pub(crate) struct Log2Table(Box<[u32]>);

impl Log2Table {
    pub(crate) fn new() -> Self {
        let mut t = vec![0u32; 65536];
        for (i, v) in t.iter_mut().enumerate().skip(32767) {
            *v = u32::from(((i as f32).log2() * 2048.0).round() as u16);
        }
        Self(t.into_boxed_slice())
    }

    #[inline(always)]
    pub(crate) fn get(&self, i: u16) -> i64 {
        i64::from(self.0[i as usize])
    }

    /// The table itself, 65536 entries.
    pub(crate) fn entries(&self) -> &[u32] {
        &self.0
    }
}

/// The top 16 bits of a 32-bit value and the (negative) shift that produced them.
#[inline(always)]
fn best16_from32(v: u32) -> (u16, i32) {
    let k = 16 - v.leading_zeros() as i32;
    ((v >> k) as u16, -k)
}

/// A 64-bit value normalised to 16 bits, and the shift applied (positive: shifted left).
#[inline(always)]
fn best16_from64(v: u64) -> (u16, i32) {
    let k = v.leading_zeros() as i32;
    if k > 48 {
        let k = k - 48;
        ((v << k) as u16, k)
    } else if k < 47 {
        let k = 48 - k;
        ((v >> k) as u16, -k)
    } else if v >> 16 != 0 {
        ((v >> 1) as u16, -1)
    } else {
        (v as u16, 0)
    }
}

/// libvmaf's eps, below which a variance counts as zero.
pub(crate) const EPS: f64 = 65536.0 * 1.0e-10;

/// Adds one pixel's contribution to the accumulators, given its filtered means (Q32 of the
/// normalised range) and second moments (Q16).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn statistic(
    mu1: u32,
    mu2: u32,
    xx: u32,
    yy: u32,
    xy: u32,
    log2: &Log2Table,
    gain_limit: f64,
    acc: &mut Accum,
) {
    let round_q32 = |a: u32, b: u32| ((u64::from(a) * u64::from(b) + 2_147_483_648) >> 32) as u32;
    let mut sigma1_sq = xx.wrapping_sub(round_q32(mu1, mu1)) as i32;
    let mut sigma2_sq = yy.wrapping_sub(round_q32(mu2, mu2)) as i32;
    let sigma12 = xy.wrapping_sub(round_q32(mu1, mu2)) as i32;
    sigma1_sq = sigma1_sq.max(0);
    sigma2_sq = sigma2_sq.max(0);
    let eps = EPS;
    let mut g = f64::from(sigma12) / (f64::from(sigma1_sq) + eps);
    let mut sv_sq = (f64::from(sigma2_sq) - g * f64::from(sigma12)) as i32;
    if f64::from(sigma1_sq) < eps {
        g = 0.0;
        sv_sq = sigma2_sq;
        sigma1_sq = 0;
    }
    if f64::from(sigma2_sq) < eps {
        g = 0.0;
        sv_sq = 0;
    }
    if g < 0.0 {
        sv_sq = sigma2_sq;
        g = 0.0;
    }
    // MAX(sv_sq, eps) then a cast to unsigned: anything at or below zero becomes 0.
    if f64::from(sv_sq) <= eps {
        sv_sq = 0;
    }
    g = g.min(gain_limit);
    if sigma1_sq >= SIGMA_NSQ {
        let (log_den1, x) = best16_from32(SIGMA_NSQ.wrapping_add(sigma1_sq) as u32);
        acc.num_x += 1;
        acc.x += i64::from(x);
        let den_val = log2.get(log_den1);
        if sigma12 >= 0 {
            let numer1 = sv_sq.wrapping_add(SIGMA_NSQ) as u32;
            let numer1_tmp = (g * g * f64::from(sigma1_sq)) as i64 + i64::from(numer1);
            let (numlog, x1) = best16_from64(numer1_tmp as u64);
            if numer1 > 0 {
                let (denlog, x2) = best16_from64(u64::from(numer1));
                acc.x2 += i64::from(x2 - x1);
                acc.num_log += log2.get(numlog) - log2.get(denlog);
                acc.den_log += den_val;
            } else {
                acc.num_non_log += i64::from(sigma2_sq);
                acc.den_non_log += 1;
            }
        } else {
            acc.den_log += den_val;
        }
    } else {
        acc.num_non_log += i64::from(sigma2_sq);
        acc.den_non_log += 1;
    }
}

/// Reflects an index into `0..n` the way libvmaf pads VIF buffers (mirror without repeating
/// the edge sample).
#[inline(always)]
pub(crate) fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let r = if i < 0 {
        -i
    } else if i >= n {
        2 * (n - 1) - i
    } else {
        i
    };
    r as usize
}

/// Shifts of one filtering stage.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shifts {
    /// Vertical pass, means.
    pub mu: u32,
    /// Vertical pass, second moments.
    pub sq: u32,
}

impl Shifts {
    /// The vertical shifts at `scale` for input of `bpc` bits.
    pub(crate) fn at(scale: usize, bpc: u32) -> Self {
        if scale == 0 {
            Self {
                mu: bpc,
                sq: (bpc - 8) * 2,
            }
        } else {
            Self { mu: 16, sq: 16 }
        }
    }
}

/// Scratch memory, kept between frames.
pub(crate) struct Workspace {
    isa: kernels::Isa,
    /// The decimated images of the next scale.
    next: [Vec<u16>; 2],
    cur: [Vec<u16>; 2],
    rows: kernels::VifRows,
    low: kernels::LowPassRow,
}

impl Default for Workspace {
    fn default() -> Self {
        Self {
            isa: kernels::Isa::detect(),
            next: Default::default(),
            cur: Default::default(),
            rows: Default::default(),
            low: Default::default(),
        }
    }
}

impl Workspace {
    /// Runs the kernels of `isa` from now on (tests compare the implementations).
    #[cfg(test)]
    pub(crate) fn set_isa(&mut self, isa: kernels::Isa) {
        self.isa = isa;
    }
}

/// Computes VIF for one frame pair of `bpc`-bit samples.
pub(crate) fn compute<T: Sample>(
    reference: &PlaneView<'_, T>,
    distorted: &PlaneView<'_, T>,
    bpc: u32,
    log2: &Log2Table,
    gain_limit: f64,
    ws: &mut Workspace,
) -> VifScales {
    let mut out = VifScales::default();
    let acc = scale_statistic(
        ws.isa,
        reference,
        distorted,
        0,
        bpc,
        log2,
        gain_limit,
        &mut ws.rows,
    );
    (out.num[0], out.den[0]) = acc.finish();
    decimate(
        ws.isa,
        reference,
        distorted,
        0,
        bpc,
        &mut ws.next,
        &mut ws.low,
    );
    let (mut w, mut h) = (reference.width() / 2, reference.height() / 2);
    for scale in 1..4 {
        std::mem::swap(&mut ws.cur, &mut ws.next);
        let [rc, dc] = &ws.cur;
        let r = PlaneView::packed(&rc[..w * h], w, h);
        let d = PlaneView::packed(&dc[..w * h], w, h);
        let acc = scale_statistic(ws.isa, &r, &d, scale, bpc, log2, gain_limit, &mut ws.rows);
        (out.num[scale], out.den[scale]) = acc.finish();
        if scale < 3 {
            decimate(ws.isa, &r, &d, scale, bpc, &mut ws.next, &mut ws.low);
        }
        w /= 2;
        h /= 2;
    }
    out
}

/// The rows of `img` under a vertical filter of `taps` centred on row `i`, mirrored at the edges.
fn tap_rows<'a, T: Sample>(img: &PlaneView<'a, T>, i: usize, taps: usize, out: &mut Vec<&'a [T]>) {
    out.clear();
    let half = (taps / 2) as isize;
    out.extend((0..taps).map(|k| img.row(reflect(i as isize - half + k as isize, img.height()))));
}

/// The statistic of one scale over the whole image.
#[allow(clippy::too_many_arguments)]
fn scale_statistic<T: Sample>(
    isa: kernels::Isa,
    r: &PlaneView<'_, T>,
    d: &PlaneView<'_, T>,
    scale: usize,
    bpc: u32,
    log2: &Log2Table,
    gain_limit: f64,
    rows: &mut kernels::VifRows,
) -> Accum {
    let (w, h) = (r.width(), r.height());
    let filter = FILTERS[scale];
    let shifts = Shifts::at(scale, bpc);
    let pass = kernels::Pass {
        filter,
        mu_shift: shifts.mu,
        sq_shift: shifts.sq,
    };
    rows.ready(w);
    let mut acc = Accum::default();
    let (mut rr, mut dr) = (Vec::new(), Vec::new());
    for i in 0..h {
        tap_rows(r, i, filter.len(), &mut rr);
        tap_rows(d, i, filter.len(), &mut dr);
        kernels::vif_vertical(isa, &rr, &dr, pass, rows, w);
        kernels::vif_horizontal(isa, rows, w, filter);
        kernels::vif_statistic(isa, rows, w, log2, gain_limit, &mut acc);
    }
    acc
}

/// Low-passes both images with the next scale's filter and keeps every other sample.
fn decimate<T: Sample>(
    isa: kernels::Isa,
    r: &PlaneView<'_, T>,
    d: &PlaneView<'_, T>,
    scale: usize,
    bpc: u32,
    next: &mut [Vec<u16>; 2],
    low: &mut kernels::LowPassRow,
) {
    let (w, h) = (r.width(), r.height());
    let (nw, nh) = (w / 2, h / 2);
    let filter = FILTERS[scale + 1];
    let shift = if scale == 0 { bpc } else { 16 };
    for buf in next.iter_mut() {
        // Every sample is written below.
        if buf.len() != nw * nh {
            buf.clear();
            buf.resize(nw * nh, 0);
        }
    }
    let (mut rr, mut dr) = (Vec::new(), Vec::new());
    let [nr, nd] = next;
    for i in 0..nh {
        tap_rows(r, 2 * i, filter.len(), &mut rr);
        tap_rows(d, 2 * i, filter.len(), &mut dr);
        kernels::vif_decimate_row(
            isa,
            &rr,
            &dr,
            filter,
            shift,
            low,
            w,
            &mut nr[i * nw..(i + 1) * nw],
            &mut nd[i * nw..(i + 1) * nw],
        );
    }
}
