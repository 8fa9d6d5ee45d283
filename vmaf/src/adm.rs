//! Additive Detail Measure at four scales, as libvmaf's integer ADM extractor computes it.
//!
//! A Daubechies-2 wavelet splits each picture into approximation and detail bands. The
//! distorted details are decoupled into a part restored from the reference and an additive
//! impairment, both are weighted by a contrast sensitivity function, the impairment masks the
//! restored detail, and the masked detail (numerator) is compared with the reference detail
//! (denominator) in a cubic norm. Scale 0 runs in 16-bit fixed point and scales 1 to 3 in
//! 32-bit, with the same shifts and rounding as libvmaf.

use crate::kernels::{self, Isa, cm, dwt};
use crate::picture::{PlaneView, Sample};

const BORDER_FACTOR: f64 = 0.1;

/// libvmaf's default enhancement gain limit.
pub const DEFAULT_ADM_ENHN_GAIN_LIMIT: f64 = 100.0;
const NORM_VIEW_DIST: f64 = 3.0;
const REF_DISPLAY_HEIGHT: i32 = 1080;

/// Numerator and denominator of each scale.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AdmScales {
    /// Numerators, finest scale first.
    pub num: [f32; 4],
    /// Denominators, finest scale first.
    pub den: [f32; 4],
}

impl AdmScales {
    /// The score of scale `s` (`adm_scale{s}`).
    pub fn score(&self, s: usize) -> f64 {
        f64::from(self.num[s]) / f64::from(self.den[s])
    }

    /// The ADM2 score of a frame of `w`×`h` luma samples.
    pub fn adm2(&self, w: usize, h: usize) -> f64 {
        let limit = 1e-10 * (w * h) as f64 / (1920.0 * 1080.0);
        let mut num: f64 = self.num.iter().map(|&n| f64::from(n)).sum();
        let mut den: f64 = self.den.iter().map(|&d| f64::from(d)).sum();
        if num < limit {
            num = 0.0;
        }
        if den < limit {
            den = 0.0;
        }
        if den == 0.0 { 1.0 } else { num / den }
    }
}

/// The Watson et al. model parameters for luma, and the basis function amplitudes.
const MODEL_A: f32 = 0.495;
const MODEL_K: f32 = 0.466;
const MODEL_F0: f32 = 0.401;
const MODEL_G: [f32; 4] = [1.501, 1.0, 0.534, 1.0];
const AMPLITUDES: [[f32; 4]; 6] = [
    [0.62171, 0.67234, 0.72709, 0.67234],
    [0.34537, 0.41317, 0.49428, 0.41317],
    [0.18004, 0.22727, 0.28688, 0.22727],
    [0.091401, 0.11792, 0.15214, 0.11792],
    [0.045943, 0.059758, 0.077727, 0.059758],
    [0.023013, 0.030018, 0.039156, 0.030018],
];

/// The quantisation step of band `theta` at scale `lambda` (formula 9 of Watson et al.).
fn quant_step(lambda: i32, theta: usize) -> f32 {
    let r = (NORM_VIEW_DIST * f64::from(REF_DISPLAY_HEIGHT) * std::f64::consts::PI / 180.0) as f32;
    let temp = (2f64.powf(f64::from(lambda + 1)) * f64::from(MODEL_F0) * f64::from(MODEL_G[theta])
        / f64::from(r))
    .log10() as f32;
    let kt = MODEL_K * temp * temp;
    (2.0 * f64::from(MODEL_A) * 10f64.powf(f64::from(kt))
        / f64::from(AMPLITUDES[lambda as usize][theta])) as f32
}

/// 1/quantisation step for the h, v and d bands of `scale`.
fn rfactors(scale: i32) -> [f32; 3] {
    let f1 = quant_step(scale, 1);
    let f2 = quant_step(scale, 2);
    [1.0 / f1, 1.0 / f1, 1.0 / f2]
}

/// The reciprocal table: `div[32768 + i] = 2^30 / i`, negated for negative `i`.
pub(crate) struct DivTable(Box<[i32]>);

impl DivTable {
    pub(crate) fn new() -> Self {
        let mut t = vec![0i32; 65537];
        for i in 1..=32768i32 {
            let recip = 1_073_741_824 / i;
            t[(32768 + i) as usize] = recip;
            t[(32768 - i) as usize] = -recip;
        }
        Self(t.into_boxed_slice())
    }

    #[inline(always)]
    pub(crate) fn get(&self, i: i32) -> i64 {
        i64::from(self.0[(i + 32768) as usize])
    }
}

/// Four bands of one picture at one scale.
#[derive(Default)]
struct Bands<T> {
    a: Vec<T>,
    v: Vec<T>,
    h: Vec<T>,
    d: Vec<T>,
}

/// Sizes a buffer to `n` values, zeroing it only when the size changes: every stage writes
/// the same positions of a buffer for every frame of one size, and reads only those or the
/// zeros around them, so stale values are never seen.
fn fit<T: Default + Clone>(b: &mut Vec<T>, n: usize) {
    if b.len() != n {
        b.clear();
        b.resize(n, T::default());
    }
}

impl<T: Default + Clone> Bands<T> {
    fn resize(&mut self, n: usize) {
        for b in [&mut self.a, &mut self.v, &mut self.h, &mut self.d] {
            fit(b, n);
        }
    }
}

/// Three detail bands (h, v, d).
#[derive(Default)]
struct Details<T> {
    b: [Vec<T>; 3],
}

impl<T: Default + Clone> Details<T> {
    fn resize(&mut self, n: usize) {
        for b in &mut self.b {
            fit(b, n);
        }
    }
}

/// The 32-bit buffers of one of scales 1 to 3.
#[derive(Default)]
struct Scale32 {
    ref32: Bands<i32>,
    dis32: Bands<i32>,
    r32: Details<i32>,
    a32: Details<i32>,
    csf_a32: Details<i32>,
    csf_f32: Details<i32>,
}

/// Scratch memory, kept between frames.
pub(crate) struct Workspace {
    isa: Isa,
    tmp16: Vec<i16>,
    ref16: Bands<i16>,
    dis16: Bands<i16>,
    r16: Details<i16>,
    a16: Details<i16>,
    csf_a16: Details<i16>,
    csf_f16: Details<i16>,
    /// The buffers of scales 1 to 3, apart so that their sizes never change.
    s123: [Scale32; 3],
    prev_ref: Vec<i32>,
    prev_dis: Vec<i32>,
    tmp: Vec<i32>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self {
            isa: Isa::detect(),
            tmp16: Vec::new(),
            ref16: Bands::default(),
            dis16: Bands::default(),
            r16: Details::default(),
            a16: Details::default(),
            csf_a16: Details::default(),
            csf_f16: Details::default(),
            s123: Default::default(),
            prev_ref: Vec::new(),
            prev_dis: Vec::new(),
            tmp: Vec::new(),
        }
    }
}

impl Workspace {
    /// Runs the kernels of `isa` from now on (tests compare the implementations).
    #[cfg(test)]
    pub(crate) fn set_isa(&mut self, isa: Isa) {
        self.isa = isa;
    }
}

/// The region a stage works on: libvmaf skips a border of 10% on every side.
#[derive(Clone, Copy, Debug)]
struct Region {
    left: i32,
    top: i32,
    right: i32,
    bottom: i32,
}

impl Region {
    /// The region of the CSF denominator and the masking stage.
    fn inner(w: i32, h: i32) -> Self {
        let left = (f64::from(w) * BORDER_FACTOR - 0.5) as i32;
        let top = (f64::from(h) * BORDER_FACTOR - 0.5) as i32;
        Self {
            left,
            top,
            right: w - left,
            bottom: h - top,
        }
    }

    /// The region of decoupling and CSF: one more sample for the masking filter's taps.
    fn with_taps(w: i32, h: i32) -> Self {
        let left = (f64::from(w) * BORDER_FACTOR - 0.5 - 1.0) as i32;
        let top = (f64::from(h) * BORDER_FACTOR - 0.5 - 1.0) as i32;
        Self {
            left: left.max(0),
            top: top.max(0),
            right: (w - left + 2).min(w),
            bottom: (h - top + 2).min(h),
        }
    }

    fn area(&self) -> i32 {
        (self.bottom - self.top) * (self.right - self.left)
    }
}

/// The reference's half of ADM, which every distorted version of it shares: its wavelet bands
/// at the four scales (kept in `ws`) and the denominators, which depend on it alone.
pub(crate) fn prepare_reference<T: Sample>(
    reference: &PlaneView<'_, T>,
    bpc: u32,
    ws: &mut Workspace,
) -> [f32; 4] {
    let mut den = [0.0; 4];
    let (mut w, mut h) = dwt_first(ws, reference, bpc, true);
    den[0] = csf_den16(&ws.ref16, w, h);
    for (scale, d) in den.iter_mut().enumerate().skip(1) {
        (w, h) = dwt_scale(ws, scale, (w, h), true);
        *d = csf_den32(&ws.s123[scale - 1].ref32, scale, w, h);
    }
    den
}

/// The distorted half of ADM, against the reference last given to [`prepare_reference`] (of
/// the same size), whose denominators are `den`.
pub(crate) fn compute_distorted<T: Sample>(
    distorted: &PlaneView<'_, T>,
    den: [f32; 4],
    bpc: u32,
    gain_limit: f64,
    div: &DivTable,
    ws: &mut Workspace,
) -> AdmScales {
    let mut out = AdmScales {
        den,
        ..AdmScales::default()
    };
    // Scale 0: 16-bit bands.
    let (mut w, mut h) = dwt_first(ws, distorted, bpc, false);
    for d in [&mut ws.r16, &mut ws.a16, &mut ws.csf_a16, &mut ws.csf_f16] {
        d.resize(w * h);
    }
    decouple(
        ws.isa,
        [&ws.ref16, &ws.dis16],
        (w, h),
        gain_limit,
        div,
        [&mut ws.r16, &mut ws.a16],
        kernels::decouple_row16,
    );
    csf16(&ws.a16, w, h, &mut ws.csf_a16, &mut ws.csf_f16);
    out.num[0] = cm16(ws.isa, &ws.r16, &ws.csf_a16, &ws.csf_f16, w, h);
    // Scales 1 to 3: 32-bit bands, each from the previous scale's approximation band.
    for scale in 1..4 {
        (w, h) = dwt_scale(ws, scale, (w, h), false);
        let s = &mut ws.s123[scale - 1];
        for d in [&mut s.r32, &mut s.a32, &mut s.csf_a32, &mut s.csf_f32] {
            d.resize(w * h);
        }
        decouple(
            ws.isa,
            [&s.ref32, &s.dis32],
            (w, h),
            gain_limit,
            div,
            [&mut s.r32, &mut s.a32],
            kernels::decouple_row32,
        );
        csf32(&s.a32, scale, w, h, &mut s.csf_a32, &mut s.csf_f32);
        out.num[scale] = cm32(ws.isa, &s.r32, &s.csf_a32, &s.csf_f32, scale, w, h);
    }
    out
}

/// Decomposes scale 0 of the reference's or the distorted picture's pyramid into 16-bit bands,
/// keeping the approximation band widened for scale 1; returns the bands' size.
fn dwt_first<T: Sample>(
    ws: &mut Workspace,
    src: &PlaneView<'_, T>,
    bpc: u32,
    reference: bool,
) -> (usize, usize) {
    let (bw, bh) = (src.width().div_ceil(2), src.height().div_ceil(2));
    let (bands, prev) = if reference {
        (&mut ws.ref16, &mut ws.prev_ref)
    } else {
        (&mut ws.dis16, &mut ws.prev_dis)
    };
    bands.resize(bw * bh);
    dwt2_scale0(ws.isa, src, bpc, bands, &mut ws.tmp16);
    prev.clear();
    prev.extend(bands.a.iter().map(|&v| i32::from(v)));
    (bw, bh)
}

/// Decomposes scale `scale` (1 to 3) of the reference's or the distorted picture's pyramid
/// from the previous scale's approximation band, `w`×`h`; returns the new bands' size.
fn dwt_scale(
    ws: &mut Workspace,
    scale: usize,
    (w, h): (usize, usize),
    reference: bool,
) -> (usize, usize) {
    let (bw, bh) = (w.div_ceil(2), h.div_ceil(2));
    let (done, rest) = ws.s123.split_at_mut(scale - 1);
    let s = &mut rest[0];
    let (prev, out) = match (done.last(), reference) {
        (Some(p), true) => (&p.ref32.a, &mut s.ref32),
        (Some(p), false) => (&p.dis32.a, &mut s.dis32),
        (None, true) => (&ws.prev_ref, &mut s.ref32),
        (None, false) => (&ws.prev_dis, &mut s.dis32),
    };
    out.resize(bw * bh);
    dwt2_s123(ws.isa, prev, w, h, scale, out, &mut ws.tmp);
    (bw, bh)
}

/// The first DWT, from picture samples to 16-bit bands (normalised around zero).
fn dwt2_scale0<T: Sample>(
    isa: Isa,
    src: &PlaneView<'_, T>,
    bpc: u32,
    out: &mut Bands<i16>,
    tmp: &mut Vec<i16>,
) {
    let (w, h) = (src.width(), src.height());
    let bw = w.div_ceil(2);
    tmp.clear();
    tmp.resize(2 * w, 0);
    let (lo, hi) = tmp.split_at_mut(w);
    for i in 0..h.div_ceil(2) {
        let rows = dwt::taps(i, h).map(|y| src.row(y));
        kernels::dwt_vertical(isa, rows, bpc, lo, hi, w);
        let o = i * bw..(i + 1) * bw;
        kernels::dwt_horizontal(
            isa,
            lo,
            hi,
            w,
            [
                &mut out.a[o.clone()],
                &mut out.v[o.clone()],
                &mut out.h[o.clone()],
                &mut out.d[o],
            ],
        );
    }
}

/// Rounding of the vertical pass of the transforms of scales 1 to 3.
pub(crate) const DWT32_V: [dwt::Round; 3] = [
    dwt::Round { add: 0, shift: 0 },
    dwt::Round {
        add: 32768,
        shift: 16,
    },
    dwt::Round {
        add: 32768,
        shift: 16,
    },
];
/// Rounding of the horizontal pass of the transforms of scales 1 to 3.
pub(crate) const DWT32_H: [dwt::Round; 3] = [
    dwt::Round {
        add: 16384,
        shift: 15,
    },
    dwt::Round {
        add: 32768,
        shift: 16,
    },
    dwt::Round {
        add: 16384,
        shift: 15,
    },
];

/// The DWT of scales 1 to 3, on the previous approximation band.
fn dwt2_s123(
    isa: Isa,
    src: &[i32],
    w: usize,
    h: usize,
    scale: usize,
    out: &mut Bands<i32>,
    tmp: &mut Vec<i32>,
) {
    let bw = w.div_ceil(2);
    tmp.clear();
    tmp.resize(2 * w, 0);
    let (lo, hi) = tmp.split_at_mut(w);
    for i in 0..h.div_ceil(2) {
        let rows = dwt::taps(i, h).map(|y| &src[y * w..(y + 1) * w]);
        kernels::dwt_vertical32(isa, rows, DWT32_V[scale - 1], lo, hi, w);
        let o = i * bw..(i + 1) * bw;
        kernels::dwt_horizontal32(
            isa,
            lo,
            hi,
            w,
            DWT32_H[scale - 1],
            [
                &mut out.a[o.clone()],
                &mut out.v[o.clone()],
                &mut out.h[o.clone()],
                &mut out.d[o],
            ],
        );
    }
}

/// True when the (h, v) detail vectors of reference and distorted are within one degree.
#[inline(always)]
fn within_one_degree(oh: i64, ov: i64, th: i64, tv: i64) -> bool {
    let cos_1deg_sq = ((1.0f64 * std::f64::consts::PI / 180.0).cos().powi(2)) as f32;
    let ot_dp = oh * th + ov * tv;
    let o_mag_sq = oh * oh + ov * ov;
    let t_mag_sq = th * th + tv * tv;
    let dp = f64::from(ot_dp as f32) / 4096.0;
    dp >= 0.0
        && dp * dp
            >= f64::from(cos_1deg_sq)
                * (f64::from(o_mag_sq as f32) / 4096.0)
                * (f64::from(t_mag_sq as f32) / 4096.0)
}

/// Restores a reference coefficient `o` by the gain `tmp_k` (Q15, clamped to 0..=1) and applies
/// the enhancement limit against the distorted `t` (libvmaf's MIN/MAX in doubles).
#[inline(always)]
fn restore(tmp_k: i64, o: i64, t: i64, angle: bool, gain_limit: f64) -> f64 {
    let k = tmp_k.clamp(0, 32768);
    let rst = (k * o + 16384) >> 15;
    let rst_f = (k as f32 / 32768.0) * (o as f32 / 64.0);
    let scaled = rst as f64 * gain_limit;
    if angle && rst_f > 0.0 {
        if scaled < t as f64 { scaled } else { t as f64 }
    } else if angle && rst_f < 0.0 {
        if scaled > t as f64 { scaled } else { t as f64 }
    } else {
        rst as f64
    }
}

/// One row of the bands to decouple: reference (h, v, d) and distorted (h, v, d).
pub(crate) struct DecoupleRow<'a, T> {
    pub o: [&'a [T]; 3],
    pub t: [&'a [T]; 3],
}

/// A row kernel of the decoupling stage.
pub(crate) type DecoupleKernel<T> = fn(
    Isa,
    &DecoupleRow<'_, T>,
    f64,
    &DivTable,
    &mut [&mut [T]; 3],
    &mut [&mut [T]; 3],
    std::ops::Range<usize>,
);

/// The column loop shared by both decouplings: `gain` gives the Q15 gain of a reference
/// coefficient against its distorted one, and `store` narrows the restored value and the
/// distorted one back to the band type.
#[inline(always)]
fn decouple_cols<T: Copy + Into<i64>>(
    row: &DecoupleRow<'_, T>,
    gain_limit: f64,
    out_r: &mut [&mut [T]; 3],
    out_a: &mut [&mut [T]; 3],
    cols: std::ops::Range<usize>,
    gain: impl Fn(i64, i64) -> i64,
    store: impl Fn(f64, i64) -> (T, T),
) {
    for j in cols {
        let o = row.o.map(|b| b[j].into());
        let t = row.t.map(|b| b[j].into());
        let angle = within_one_degree(o[0], o[1], t[0], t[1]);
        for band in 0..3 {
            let (ov, tv) = (o[band], t[band]);
            let tmp_k = if ov == 0 { 32768 } else { gain(ov, tv) };
            let (rst, add) = store(restore(tmp_k, ov, tv, angle, gain_limit), tv);
            out_r[band][j] = rst;
            out_a[band][j] = add;
        }
    }
}

/// Decouples the columns `cols` of one row into restored detail and additive impairment.
pub(crate) fn decouple_row16(
    row: &DecoupleRow<'_, i16>,
    gain_limit: f64,
    div: &DivTable,
    out_r: &mut [&mut [i16]; 3],
    out_a: &mut [&mut [i16]; 3],
    cols: std::ops::Range<usize>,
) {
    decouple_cols(
        row,
        gain_limit,
        out_r,
        out_a,
        cols,
        |ov, tv| (div.get(ov as i32) * tv + 16384) >> 15,
        |rst, tv| {
            let rst = rst as i16;
            (rst, (tv as i16).wrapping_sub(rst))
        },
    );
}

/// Decouples every row of the bands inside the region with the given row kernel.
fn decouple<T>(
    isa: Isa,
    [r, t]: [&Bands<T>; 2],
    (w, h): (usize, usize),
    gain_limit: f64,
    div: &DivTable,
    [out_r, out_a]: [&mut Details<T>; 2],
    kernel: DecoupleKernel<T>,
) {
    let reg = Region::with_taps(w as i32, h as i32);
    let cols = reg.left as usize..reg.right as usize;
    let [rh, rv, rd] = &mut out_r.b;
    let [ah, av, ad] = &mut out_a.b;
    for i in reg.top as usize..reg.bottom as usize {
        let span = i * w..(i + 1) * w;
        let row = DecoupleRow {
            o: [&r.h[span.clone()], &r.v[span.clone()], &r.d[span.clone()]],
            t: [&t.h[span.clone()], &t.v[span.clone()], &t.d[span.clone()]],
        };
        let mut outs_r = [
            &mut rh[span.clone()],
            &mut rv[span.clone()],
            &mut rd[span.clone()],
        ];
        let mut outs_a = [&mut ah[span.clone()], &mut av[span.clone()], &mut ad[span]];
        kernel(
            isa,
            &row,
            gain_limit,
            div,
            &mut outs_r,
            &mut outs_a,
            cols.clone(),
        );
    }
}

/// Decouples the columns `cols` of one row of 32-bit bands (scales 1 to 3), where the
/// reference coefficient is first normalised to 15 bits for the reciprocal table.
pub(crate) fn decouple_row32(
    row: &DecoupleRow<'_, i32>,
    gain_limit: f64,
    div: &DivTable,
    out_r: &mut [&mut [i32]; 3],
    out_a: &mut [&mut [i32]; 3],
    cols: std::ops::Range<usize>,
) {
    let gain = |ov: i64, tv: i64| {
        let abs = (ov as i32).unsigned_abs();
        let sign: i64 = if ov < 0 { -1 } else { 1 };
        let (msb, shift) = if abs < 32768 {
            (abs as i32, 0)
        } else {
            let k = 17 - abs.leading_zeros();
            ((abs.wrapping_add(1 << (k - 1)) >> k) as u16 as i32, k)
        };
        ((div.get(msb) * tv) * sign + (1i64 << (14 + shift))) >> (15 + shift)
    };
    decouple_cols(row, gain_limit, out_r, out_a, cols, gain, |rst, tv| {
        let rst = rst as i32;
        (rst, (tv as i32).wrapping_sub(rst))
    });
}

/// The denominator of scale 0: the cubic norm of the reference's CSF-weighted details.
fn csf_den16(r: &Bands<i16>, w: usize, h: usize) -> f32 {
    let rf = rfactors(0);
    let reg = Region::inner(w as i32, h as i32);
    let shift = ((f64::from(reg.area())).log2() - 20.0).ceil().max(0.0) as u32;
    let add: u64 = if shift > 0 { 1 << (shift - 1) } else { 0 };
    let mut acc = [0u64; 3];
    for i in reg.top as usize..reg.bottom as usize {
        let mut inner = [0u64; 3];
        for j in reg.left as usize..reg.right as usize {
            let o = i * w + j;
            for (b, band) in [&r.h, &r.v, &r.d].into_iter().enumerate() {
                let x = u64::from(i32::from(band[o]).unsigned_abs() as u16);
                inner[b] += x * x * x;
            }
        }
        for b in 0..3 {
            acc[b] += (inner[b] + add) >> shift;
        }
    }
    let shift_csf = 2f64.powf(f64::from(18 - shift as i32));
    den_from(acc, shift_csf, rf, reg)
}

fn den_from(acc: [u64; 3], shift_csf: f64, rf: [f32; 3], reg: Region) -> f32 {
    let add = (reg.area() as f32 / 32.0).powf(1.0 / 3.0);
    (0..3)
        .map(|b| {
            let csf = (acc[b] as f64 / shift_csf) * f64::from(rf[b]).powf(3.0);
            (csf as f32).powf(1.0 / 3.0) + add
        })
        .fold(0.0f32, |s, x| s + x)
}

fn csf_den32(r: &Bands<i32>, scale: usize, w: usize, h: usize) -> f32 {
    const SHIFT_SQ: [u32; 3] = [31, 30, 31];
    const TO_FLOAT: [i32; 3] = [32, 27, 23];
    let rf = rfactors(scale as i32);
    let reg = Region::inner(w as i32, h as i32);
    let shift_sq = SHIFT_SQ[scale - 1];
    let add_sq = 1u64 << shift_sq;
    let shift_cub = f64::from(reg.right - reg.left).log2().ceil() as u32;
    let add_cub = 2f64.powf(f64::from(shift_cub as i32 - 1)) as u32 as u64;
    let shift_acc = f64::from(reg.bottom - reg.top).log2().ceil() as u32;
    let add_acc = 2f64.powf(f64::from(shift_acc as i32 - 1)) as u32 as u64;
    let mut acc = [0u64; 3];
    for i in reg.top as usize..reg.bottom as usize {
        let mut inner = [0u64; 3];
        for j in reg.left as usize..reg.right as usize {
            let o = i * w + j;
            for (b, band) in [&r.h, &r.v, &r.d].into_iter().enumerate() {
                let x = u64::from(band[o].unsigned_abs());
                inner[b] += ((((x * x) + add_sq) >> shift_sq) * x + add_cub) >> shift_cub;
            }
        }
        for b in 0..3 {
            acc[b] += (inner[b] + add_acc) >> shift_acc;
        }
    }
    let shift_csf = 2f64.powf(f64::from(
        TO_FLOAT[scale - 1] - shift_acc as i32 - shift_cub as i32,
    ));
    den_from(acc, shift_csf, rf, reg)
}

/// 1/quantisation step of scale 0 in fixed point (Q21, Q21, Q23), as libvmaf hard-codes it for
/// the default viewing distance and display height.
const I_RFACTOR0: [i32; 3] = [36453, 36453, 49417];

fn csf16(a: &Details<i16>, w: usize, h: usize, csf_a: &mut Details<i16>, csf_f: &mut Details<i16>) {
    const SHIFTS: [u32; 3] = [15, 15, 17];
    const ADDS: [i32; 3] = [16384, 16384, 65535];
    const FIX_ONE_BY_30: i32 = 4369;
    let reg = Region::with_taps(w as i32, h as i32);
    for theta in 0..3 {
        for i in reg.top as usize..reg.bottom as usize {
            for j in reg.left as usize..reg.right as usize {
                let o = i * w + j;
                let dst = I_RFACTOR0[theta] * i32::from(a.b[theta][o]);
                let v = ((dst + ADDS[theta]) >> SHIFTS[theta]) as i16;
                csf_a.b[theta][o] = v;
                csf_f.b[theta][o] = ((FIX_ONE_BY_30 * i32::from(v).abs() + 2048) >> 12) as i16;
            }
        }
    }
}

/// The fixed-point 1/quantisation steps of scales 1 to 3 (Q32).
fn i_rfactors(scale: usize) -> [u32; 3] {
    rfactors(scale as i32).map(|r| (f64::from(r) * 2f64.powf(32.0)) as u32)
}

fn csf32(
    a: &Details<i32>,
    scale: usize,
    w: usize,
    h: usize,
    csf_a: &mut Details<i32>,
    csf_f: &mut Details<i32>,
) {
    const FIX_ONE_BY_30: i64 = 143_165_577;
    let rf = i_rfactors(scale);
    let reg = Region::with_taps(w as i32, h as i32);
    for (theta, &rf) in rf.iter().enumerate() {
        for i in reg.top as usize..reg.bottom as usize {
            for j in reg.left as usize..reg.right as usize {
                let o = i * w + j;
                let dst = ((i64::from(rf) * i64::from(a.b[theta][o]) + (1 << 27)) >> 28) as i32;
                csf_a.b[theta][o] = dst;
                // libvmaf's rounding constant here is (int32_t)(1u << 31), that is -2^31.
                csf_f.b[theta][o] =
                    ((FIX_ONE_BY_30 * i64::from(dst.unsigned_abs()) - (1i64 << 31)) >> 32) as i32;
            }
        }
    }
}

/// The rows or columns the masking stage visits: the inner region, widened to the edge only
/// where the region touches it.
fn cm_span(lo: i32, hi: i32, n: i32) -> impl Iterator<Item = usize> {
    let start = lo.max(1);
    let end = hi.min(n - 1);
    let first = (lo <= 0).then_some(0);
    let last = (hi > n - 1).then_some(n - 1);
    first
        .into_iter()
        .chain(start..end)
        .chain(last)
        .map(|x| x as usize)
}

/// Sums the masking stage over the region's rows: each row's masked, cubed detail per band,
/// rounded down by `shift_inner` as libvmaf does row by row.
fn cm_sum<T: cm::CmBand + Default>(
    isa: Isa,
    [r, csf_a, csf_f]: [&Details<T>; 3],
    (w, h): (usize, usize),
    p: &cm::CmParams,
    kernel: cm::RowKernel<T>,
) -> [i64; 3] {
    let reg = Region::inner(w as i32, h as i32);
    let shift_inner = (h as f64).log2().ceil() as u32;
    let add_inner = 2f64.powf(f64::from(shift_inner as i32 - 1)) as u32 as i64;
    let (start, end) = (
        reg.left.max(1) as usize,
        reg.right.min(w as i32 - 1) as usize,
    );
    fn row<T>(band: &[T], y: usize, w: usize) -> &[T] {
        &band[y * w..(y + 1) * w]
    }
    let mut acc = [0i64; 3];
    for i in cm_span(reg.top, reg.bottom, h as i32) {
        let ys = [cm::neighbour(i, -1, h), i, cm::neighbour(i, 1, h)];
        let rows = cm::CmRows {
            r: [0, 1, 2].map(|b| row(&r.b[b], i, w)),
            a: [0, 1, 2].map(|b| row(&csf_a.b[b], i, w)),
            f: ys.map(|y| [0, 1, 2].map(|b| row(&csf_f.b[b], y, w))),
        };
        let mut inner = if start < end {
            kernel(isa, &rows, p, w, start..end)
        } else {
            [0; 3]
        };
        let edges = [
            (reg.left <= 0).then_some(0),
            (reg.right > w as i32 - 1).then_some(w - 1),
        ];
        for j in edges.into_iter().flatten() {
            let e = cm::row(&rows, p, w, j..j + 1);
            (0..3).for_each(|b| inner[b] += e[b]);
        }
        for (acc, inner) in acc.iter_mut().zip(inner) {
            *acc += (inner + add_inner) >> shift_inner;
        }
    }
    acc
}

/// The masking constants of scale 0 for a band `w` samples wide.
pub(crate) fn cm16_params(w: usize) -> cm::CmParams {
    let wf = (w as f64).log2();
    let shift_cub = [
        (wf - 4.0).ceil() as u32,
        (wf - 4.0).ceil() as u32,
        (wf - 3.0).ceil() as u32,
    ];
    cm::CmParams {
        rf: I_RFACTOR0.map(i64::from),
        sub: [10, 10, 12],
        add_sq: [268_435_456, 268_435_456, 536_870_912],
        shift_sq: [29, 29, 30],
        add_cub: shift_cub.map(|s| 2f64.powf(f64::from(s as i32 - 1)) as u32 as i64),
        shift_cub,
    }
}

/// The masking constants of `scale` (1 to 3) for a band `w` samples wide.
pub(crate) fn cm32_params(scale: usize, w: usize) -> cm::CmParams {
    let shift_cub = (w as f64).log2().ceil() as u32;
    let add_cub = 2f64.powf(f64::from(shift_cub as i32 - 1)) as u32 as i64;
    cm::CmParams {
        rf: i_rfactors(scale).map(i64::from),
        sub: [0; 3],
        add_sq: [536_870_912; 3],
        shift_sq: [30; 3],
        add_cub: [add_cub; 3],
        shift_cub: [shift_cub; 3],
    }
}

fn cm16(
    isa: Isa,
    r: &Details<i16>,
    csf_a: &Details<i16>,
    csf_f: &Details<i16>,
    w: usize,
    h: usize,
) -> f32 {
    let reg = Region::inner(w as i32, h as i32);
    let p = cm16_params(w);
    let shift_cub = p.shift_cub;
    let acc = cm_sum(isa, [r, csf_a, csf_f], (w, h), &p, kernels::cm_row16);
    let shift_inner = (h as f64).log2().ceil() as i32;
    let finals = [52i32, 52, 57];
    let add = (reg.area() as f32 / 32.0).powf(1.0 / 3.0);
    (0..3)
        .map(|b| {
            let f = (acc[b] as f64
                / 2f64.powf(f64::from(finals[b] - shift_cub[b] as i32 - shift_inner)))
                as f32;
            f.powf(1.0 / 3.0) + add
        })
        .fold(0.0f32, |s, x| s + x)
}

#[allow(clippy::too_many_arguments)]
fn cm32(
    isa: Isa,
    r: &Details<i32>,
    csf_a: &Details<i32>,
    csf_f: &Details<i32>,
    scale: usize,
    w: usize,
    h: usize,
) -> f32 {
    let reg = Region::inner(w as i32, h as i32);
    let p = cm32_params(scale, w);
    let shift_cub = p.shift_cub[0];
    let acc = cm_sum(isa, [r, csf_a, csf_f], (w, h), &p, kernels::cm_row32);
    let shift_inner = (h as f64).log2().ceil() as i32;
    let finals =
        [45i32, 39, 36].map(|f| 2f64.powf(f64::from(f - shift_cub as i32 - shift_inner)) as f32);
    let add = (reg.area() as f32 / 32.0).powf(1.0 / 3.0);
    (0..3)
        .map(|b| (acc[b] as f32 / finals[scale - 1]).powf(1.0 / 3.0) + add)
        .fold(0.0f32, |s, x| s + x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dwt_taps_mirror_like_libvmaf() {
        assert_eq!(dwt::taps(0, 10), [1, 0, 1, 2]);
        assert_eq!(dwt::taps(1, 10), [1, 2, 3, 4]);
        assert_eq!(dwt::taps(4, 10), [7, 8, 9, 9]);
        assert_eq!(dwt::taps(4, 9), [7, 8, 8, 7]);
    }
}
