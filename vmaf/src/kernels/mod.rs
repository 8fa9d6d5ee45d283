//! The inner loops of VIF, ADM and motion. Each kernel has a portable version, written over
//! whole rows so that it reads as the definition, and an AVX2 twin in `avx2` that keeps its
//! accumulators in registers; the tests in `twins` check that the two agree on random input.
//!
//! The portable kernels keep libvmaf's 64-bit sums in two 32-bit halves: every filter sums to
//! 65536, so `Σ c·(v >> 16)` and `Σ c·(v & 0xffff)` each fit 32 bits, and recombining them
//! gives libvmaf's rounded, truncated value exactly. The AVX2 kernels use 64-bit lanes instead.

use std::ops::Range;

use crate::picture::Sample;
use crate::vif::{Accum, Log2Table, statistic};

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
pub(crate) mod cm;
pub(crate) mod dwt;
#[cfg(all(test, target_arch = "x86_64"))]
mod twins;

/// Margin on each side of a padded row; at least half the widest filter (17 taps).
pub(crate) const PAD: usize = 8;

/// Which implementation to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Isa {
    /// The best the running CPU offers, unless `RUNGS_VMAF_PORTABLE` is set.
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::env::var_os("RUNGS_VMAF_PORTABLE").is_none()
            && std::arch::is_x86_feature_detected!("avx2")
        {
            return Isa::Avx2;
        }
        Isa::Portable
    }
}

/// A filter and the rounding shifts of its vertical pass.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pass<'a> {
    pub filter: &'a [u16],
    /// Shift of the means.
    pub mu_shift: u32,
    /// Shift of the second moments (0 to 16).
    pub sq_shift: u32,
}

/// Per-row buffers of the VIF filters.
#[derive(Default)]
pub(crate) struct VifRows {
    /// Vertical results, padded by `PAD` mirrored samples each side.
    pub mu1: Vec<u32>,
    pub mu2: Vec<u32>,
    pub xx: Vec<u32>,
    pub yy: Vec<u32>,
    pub xy: Vec<u32>,
    /// The vertical results in 16-bit halves for the AVX2 horizontal pass (see
    /// `avx2::vif16`): mu1, mu2, then the high and low halves of xx, yy and xy, padded.
    pub packed: [Vec<i16>; 8],
    /// Horizontal results, `w` samples.
    pub h_mu1: Vec<u32>,
    pub h_mu2: Vec<u32>,
    pub h_xx: Vec<u32>,
    pub h_yy: Vec<u32>,
    pub h_xy: Vec<u32>,
}

fn fit<T: Copy + Default>(v: &mut Vec<T>, n: usize) {
    if v.len() != n {
        v.clear();
        v.resize(n, T::default());
    }
}

impl VifRows {
    pub(crate) fn ready(&mut self, w: usize) {
        for v in [
            &mut self.mu1,
            &mut self.mu2,
            &mut self.xx,
            &mut self.yy,
            &mut self.xy,
        ] {
            fit(v, w + 2 * PAD);
        }
        for v in &mut self.packed {
            // Padding the mirror does not reach reads as 0, which is -32768 biased.
            if v.len() != w + 2 * PAD + SLACK {
                v.clear();
                v.resize(w + 2 * PAD + SLACK, i16::MIN);
            }
        }
        for v in [
            &mut self.h_mu1,
            &mut self.h_mu2,
            &mut self.h_xx,
            &mut self.h_yy,
            &mut self.h_xy,
        ] {
            fit(v, w);
        }
    }
}

/// Mirrors the `PAD` samples beyond each end of a padded row of `w` samples.
pub(crate) fn mirror_pad<T: Copy>(v: &mut [T], w: usize) {
    for f in 1..=PAD.min(w - 1) {
        v[PAD - f] = v[PAD + f];
        v[PAD + w - 1 + f] = v[PAD + w - 1 - f];
    }
}

/// `(hi * 65536 + lo + round) >> shift` for `shift <= 16`, truncated to 32 bits, as libvmaf
/// computes it on the 64-bit sum.
#[inline(always)]
pub(crate) fn recombine(hi: u32, lo: u32, shift: u32) -> u32 {
    if shift == 0 {
        return (hi << 16).wrapping_add(lo);
    }
    let round = 1u32 << (shift - 1);
    (hi << (16 - shift)).wrapping_add(lo.wrapping_add(round) >> shift)
}

/// The vertical pass of VIF: for each column, the filtered means and second moments of the
/// rows `r[k]`, `d[k]` (one per filter tap), written at `PAD + j` of the padded rows (the
/// AVX2 pass writes them in 16-bit halves, which only its horizontal pass reads).
pub(crate) fn vif_vertical<T: Sample>(
    isa: Isa,
    r: &[&[T]],
    d: &[&[T]],
    pass: Pass<'_>,
    rows: &mut VifRows,
    w: usize,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            // SAFETY: `Avx2` is only chosen when the CPU supports AVX2.
            unsafe { avx2::vif16::vertical(r, d, pass, rows, w) };
            for v in &mut rows.packed {
                mirror_pad(v, w);
            }
        }
        Isa::Portable => {
            vertical(r, d, pass, rows, 0..w);
            for v in [
                &mut rows.mu1,
                &mut rows.mu2,
                &mut rows.xx,
                &mut rows.yy,
                &mut rows.xy,
            ] {
                mirror_pad(v, w);
            }
        }
    }
}

/// Portable vertical pass over the columns `cols`.
pub(crate) fn vertical<T: Sample>(
    r: &[&[T]],
    d: &[&[T]],
    pass: Pass<'_>,
    rows: &mut VifRows,
    cols: Range<usize>,
) {
    let mu_round = 1u32 << (pass.mu_shift - 1);
    for j in cols {
        let (mut m1, mut m2) = (0u32, 0u32);
        let mut hi = [0u32; 3];
        let mut lo = [0u32; 3];
        for (k, &c) in pass.filter.iter().enumerate() {
            let c = u32::from(c);
            let (x, y): (u32, u32) = (r[k][j].into(), d[k][j].into());
            m1 = m1.wrapping_add(c.wrapping_mul(x));
            m2 = m2.wrapping_add(c.wrapping_mul(y));
            for (q, p) in [x.wrapping_mul(x), y.wrapping_mul(y), x.wrapping_mul(y)]
                .into_iter()
                .enumerate()
            {
                hi[q] = hi[q].wrapping_add(c.wrapping_mul(p >> 16));
                lo[q] = lo[q].wrapping_add(c.wrapping_mul(p & 0xffff));
            }
        }
        rows.mu1[PAD + j] = m1.wrapping_add(mu_round) >> pass.mu_shift;
        rows.mu2[PAD + j] = m2.wrapping_add(mu_round) >> pass.mu_shift;
        rows.xx[PAD + j] = recombine(hi[0], lo[0], pass.sq_shift);
        rows.yy[PAD + j] = recombine(hi[1], lo[1], pass.sq_shift);
        rows.xy[PAD + j] = recombine(hi[2], lo[2], pass.sq_shift);
    }
}

/// The horizontal pass of VIF over the padded rows, into `h_mu1`..`h_xy` (libvmaf's
/// `mu1_32`, `mu2_32`, and the Q16 second moments).
pub(crate) fn vif_horizontal(isa: Isa, rows: &mut VifRows, w: usize, filter: &[u16]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2` is only chosen when the CPU supports AVX2.
        Isa::Avx2 => unsafe { avx2::vif16::horizontal(rows, w, filter) },
        Isa::Portable => horizontal(rows, filter, 0..w),
    }
}

/// Portable horizontal pass over the output columns `cols`.
pub(crate) fn horizontal(rows: &mut VifRows, filter: &[u16], cols: Range<usize>) {
    let start = PAD - filter.len() / 2;
    for j in cols {
        let (mut m1, mut m2) = (0u32, 0u32);
        let mut hi = [0u32; 3];
        let mut lo = [0u32; 3];
        for (k, &c) in filter.iter().enumerate() {
            let c = u32::from(c);
            let x = start + j + k;
            m1 = m1.wrapping_add(c.wrapping_mul(rows.mu1[x]));
            m2 = m2.wrapping_add(c.wrapping_mul(rows.mu2[x]));
            for (q, p) in [rows.xx[x], rows.yy[x], rows.xy[x]].into_iter().enumerate() {
                hi[q] = hi[q].wrapping_add(c.wrapping_mul(p >> 16));
                lo[q] = lo[q].wrapping_add(c.wrapping_mul(p & 0xffff));
            }
        }
        rows.h_mu1[j] = m1;
        rows.h_mu2[j] = m2;
        rows.h_xx[j] = recombine(hi[0], lo[0], 16);
        rows.h_yy[j] = recombine(hi[1], lo[1], 16);
        rows.h_xy[j] = recombine(hi[2], lo[2], 16);
    }
}

/// The VIF statistic of every pixel of the row left by [`vif_horizontal`].
pub(crate) fn vif_statistic(
    isa: Isa,
    rows: &VifRows,
    w: usize,
    log2: &Log2Table,
    gain_limit: f64,
    acc: &mut Accum,
) {
    let done = match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2` is only chosen when the CPU supports AVX2.
        Isa::Avx2 => unsafe { avx2::stat::statistic(rows, w, log2, gain_limit, acc) },
        Isa::Portable => 0,
    };
    for j in done..w {
        statistic(
            rows.h_mu1[j],
            rows.h_mu2[j],
            rows.h_xx[j],
            rows.h_yy[j],
            rows.h_xy[j],
            log2,
            gain_limit,
            acc,
        );
    }
}

/// How a low-passed row continues past its right edge: mirrored about the last sample, or
/// mirrored with the last sample repeated (libvmaf's motion filter). The left edge always
/// mirrors about the first sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Edge {
    Mirror,
    Repeat,
}

/// Fills the padding of a row of `w` values that starts at `PAD`.
pub(crate) fn pad_row<T: Copy>(v: &mut [T], w: usize, edge: Edge) {
    mirror_pad(v, w);
    if edge == Edge::Repeat {
        for f in 1..=PAD.min(w) {
            v[PAD + w - 1 + f] = v[PAD + w - f];
        }
    }
}

/// Room past the padding that the AVX2 horizontal passes may read (always multiplied by a
/// zero coefficient).
pub(crate) const SLACK: usize = 16;

/// The intermediate row of a low-pass filter.
#[derive(Default)]
pub(crate) struct LowPassRow {
    /// The portable pass's row, padded.
    wide: Vec<u32>,
    /// The AVX2 pass's row, padded and biased by -32768, with `SLACK` more.
    narrow: Vec<i16>,
}

/// A separable low-pass filter of `rows` (one per tap, centred on the output row): vertical
/// with rounding shift `shift`, horizontal with shift 16. `out[i]` is the result at column
/// `i * step`. The results fit 16 bits.
#[allow(clippy::too_many_arguments)]
pub(crate) fn low_pass<T: Sample>(
    isa: Isa,
    rows: &[&[T]],
    filter: &[u16],
    shift: u32,
    edge: Edge,
    buf: &mut LowPassRow,
    w: usize,
    step: usize,
    out: &mut [u16],
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            // Padding the mirror does not reach reads as 0, which is -32768 biased.
            if buf.narrow.len() != w + 2 * PAD + SLACK {
                buf.narrow.clear();
                buf.narrow.resize(w + 2 * PAD + SLACK, i16::MIN);
            }
            // SAFETY: `Avx2` is only chosen when the CPU supports AVX2.
            unsafe {
                avx2::lowpass::low_pass(rows, filter, shift, edge, &mut buf.narrow, w, step, out)
            }
        }
        Isa::Portable => {
            fit(&mut buf.wide, w + 2 * PAD);
            let v = &mut buf.wide;
            let round = 1u32 << (shift - 1);
            for j in 0..w {
                let mut a = 0u32;
                for (k, &c) in filter.iter().enumerate() {
                    a = a.wrapping_add(u32::from(c).wrapping_mul(rows[k][j].into()));
                }
                v[PAD + j] = a.wrapping_add(round) >> shift;
            }
            pad_row(v, w, edge);
            let start = PAD - filter.len() / 2;
            for (i, o) in out.iter_mut().enumerate() {
                let j = i * step;
                let mut a = 0u32;
                for (k, &c) in filter.iter().enumerate() {
                    a = a.wrapping_add(u32::from(c).wrapping_mul(v[start + j + k]));
                }
                *o = (a.wrapping_add(1 << 15) >> 16) as u16;
            }
        }
    }
}

/// The low-pass of the decimation between scales for one output row: both images filtered
/// vertically (shift `shift`) and horizontally (shift 16), every other column kept.
#[allow(clippy::too_many_arguments)]
pub(crate) fn vif_decimate_row<T: Sample>(
    isa: Isa,
    r: &[&[T]],
    d: &[&[T]],
    filter: &[u16],
    shift: u32,
    buf: &mut LowPassRow,
    w: usize,
    out_r: &mut [u16],
    out_d: &mut [u16],
) {
    low_pass(isa, r, filter, shift, Edge::Mirror, buf, w, 2, out_r);
    low_pass(isa, d, filter, shift, Edge::Mirror, buf, w, 2, out_d);
}

/// The vertical pass of ADM's first transform for one output row.
pub(crate) fn dwt_vertical<T: Sample>(
    isa: Isa,
    rows: [&[T]; 4],
    shift: u32,
    lo: &mut [i16],
    hi: &mut [i16],
    w: usize,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2` is only chosen when the CPU supports AVX2; samples of up to 15 bits
        // fit the signed 16-bit lanes it multiplies.
        Isa::Avx2 if shift <= 15 => unsafe { avx2::adm::dwt_vertical(rows, shift, lo, hi, w) },
        _ => dwt::vertical(rows, shift, lo, hi, 0..w),
    }
}

/// The horizontal pass of ADM's first transform for one output row.
pub(crate) fn dwt_horizontal(isa: Isa, lo: &[i16], hi: &[i16], w: usize, out: [&mut [i16]; 4]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2` is only chosen when the CPU supports AVX2.
        Isa::Avx2 => unsafe { avx2::adm::dwt_horizontal(lo, hi, w, out) },
        Isa::Portable => dwt::horizontal(lo, hi, w, out, 0..w.div_ceil(2)),
    }
}

/// The vertical pass of a 32-bit transform (scales 1 to 3) for one output row.
pub(crate) fn dwt_vertical32(
    isa: Isa,
    rows: [&[i32]; 4],
    r: dwt::Round,
    lo: &mut [i32],
    hi: &mut [i32],
    w: usize,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2` is only chosen when the CPU supports AVX2.
        Isa::Avx2 => unsafe { avx2::adm::vertical32(rows, r, lo, hi, w) },
        Isa::Portable => dwt::vertical32(rows, r, lo, hi, 0..w),
    }
}

/// The horizontal pass of a 32-bit transform for one output row.
pub(crate) fn dwt_horizontal32(
    isa: Isa,
    lo: &[i32],
    hi: &[i32],
    w: usize,
    r: dwt::Round,
    out: [&mut [i32]; 4],
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2` is only chosen when the CPU supports AVX2.
        Isa::Avx2 => unsafe { avx2::adm::horizontal32(lo, hi, w, r, out) },
        Isa::Portable => dwt::horizontal32(lo, hi, w, r, out, 0..w.div_ceil(2)),
    }
}

/// The masking stage of one row over the interior columns `cols` (`1 <= start`,
/// `end <= w - 1`), summed per band.
pub(crate) fn cm_row16(
    isa: Isa,
    rows: &cm::CmRows<'_, i16>,
    p: &cm::CmParams,
    w: usize,
    cols: Range<usize>,
) -> [i64; 3] {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2` is only chosen when the CPU supports AVX2; the caller passes interior
        // columns.
        Isa::Avx2 if cols.start >= 1 && cols.end < w => unsafe {
            avx2::adm::cm_row16(rows, p, w, cols)
        },
        _ => cm::row(rows, p, w, cols),
    }
}

/// [`cm_row16`] for the 32-bit bands of scales 1 to 3.
pub(crate) fn cm_row32(
    isa: Isa,
    rows: &cm::CmRows<'_, i32>,
    p: &cm::CmParams,
    w: usize,
    cols: Range<usize>,
) -> [i64; 3] {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2` is only chosen when the CPU supports AVX2; the caller passes interior
        // columns, and the factors are checked to fit the signed multiply.
        Isa::Avx2 if cols.start >= 1 && cols.end < w && p.rf.iter().all(|&r| r < 1 << 31) => unsafe {
            avx2::adm::cm_row32(rows, p, w, cols)
        },
        _ => cm::row(rows, p, w, cols),
    }
}

/// Decouples one row of 16-bit bands over the columns `cols`.
pub(crate) fn decouple_row16(
    isa: Isa,
    row: &crate::adm::DecoupleRow<'_, i16>,
    gain_limit: f64,
    div: &crate::adm::DivTable,
    out_r: &mut [&mut [i16]; 3],
    out_a: &mut [&mut [i16]; 3],
    cols: Range<usize>,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2` is only chosen when the CPU supports AVX2.
        Isa::Avx2 => unsafe { avx2::adm::decouple_row16(row, gain_limit, div, out_r, out_a, cols) },
        Isa::Portable => crate::adm::decouple_row16(row, gain_limit, div, out_r, out_a, cols),
    }
}

/// Decouples one row of 32-bit bands (scales 1 to 3) over the columns `cols`.
pub(crate) fn decouple_row32(
    isa: Isa,
    row: &crate::adm::DecoupleRow<'_, i32>,
    gain_limit: f64,
    div: &crate::adm::DivTable,
    out_r: &mut [&mut [i32]; 3],
    out_a: &mut [&mut [i32]; 3],
    cols: Range<usize>,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2` is only chosen when the CPU supports AVX2.
        Isa::Avx2 => unsafe { avx2::adm::decouple_row32(row, gain_limit, div, out_r, out_a, cols) },
        Isa::Portable => crate::adm::decouple_row32(row, gain_limit, div, out_r, out_a, cols),
    }
}
