//! AVX2 twins of the portable kernels in the parent module: the same integer results, eight
//! columns at a time with the accumulators held in registers. Sums that need more than 32 bits
//! are kept in 64-bit lanes (even and odd columns apart) with `vpmuludq`. Columns past the last
//! full block of eight are left to the portable twin.

use std::arch::x86_64::*;

pub(crate) mod adm;
pub(crate) mod vif16;

use super::{PAD, Pass, VifRows};
use crate::picture::Sample;
use crate::vif::{Accum, EPS, Log2Table, SIGMA_NSQ};

/// Loads eight samples widened to 32-bit lanes.
pub(crate) trait Widen: Sample {
    /// True for 8-bit samples, whose filtered squares fit 32 bits.
    const NARROW: bool;
    /// # Safety
    /// `p` must point to at least eight readable samples; AVX2 must be available.
    unsafe fn load8(p: *const Self) -> __m256i;
}

impl Widen for u8 {
    const NARROW: bool = true;
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load8(p: *const Self) -> __m256i {
        // SAFETY: the caller guarantees eight readable bytes.
        unsafe { _mm256_cvtepu8_epi32(_mm_loadl_epi64(p as *const __m128i)) }
    }
}

impl Widen for u16 {
    const NARROW: bool = false;
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load8(p: *const Self) -> __m256i {
        // SAFETY: the caller guarantees eight readable u16.
        unsafe { _mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i)) }
    }
}

/// Reinterprets a slice of generic samples as its concrete width.
pub(crate) fn as_u8<T: Sample>(s: &[T]) -> Option<&[u8]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<u8>())
        // SAFETY: the type ids are equal, so the slice really holds u8.
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr() as *const u8, s.len()) })
}

pub(crate) fn as_u16<T: Sample>(s: &[T]) -> Option<&[u16]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<u16>())
        // SAFETY: the type ids are equal, so the slice really holds u16.
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr() as *const u16, s.len()) })
}

pub(crate) fn rows_as<'a, T: Sample, U>(
    rows: &[&'a [T]],
    f: impl Fn(&'a [T]) -> Option<&'a [U]>,
) -> Option<Vec<&'a [U]>> {
    rows.iter().map(|r| f(r)).collect()
}

#[inline]
#[target_feature(enable = "avx2")]
unsafe fn loadu(p: *const u32) -> __m256i {
    // SAFETY: the caller guarantees eight readable u32.
    unsafe { _mm256_loadu_si256(p as *const __m256i) }
}

#[inline]
#[target_feature(enable = "avx2")]
unsafe fn storeu(p: *mut u32, v: __m256i) {
    // SAFETY: the caller guarantees eight writable u32.
    unsafe { _mm256_storeu_si256(p as *mut __m256i, v) }
}

/// 64-bit accumulators of eight columns: even columns in one register, odd in the other.
#[derive(Clone, Copy)]
struct Acc64 {
    even: __m256i,
    odd: __m256i,
}

impl Acc64 {
    #[inline]
    #[target_feature(enable = "avx2")]
    fn zero() -> Self {
        Self {
            even: _mm256_setzero_si256(),
            odd: _mm256_setzero_si256(),
        }
    }

    /// Adds `a * b` of 32-bit lanes as 64-bit products.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn mac(&mut self, a: __m256i, b: __m256i) {
        self.even = _mm256_add_epi64(self.even, _mm256_mul_epu32(a, b));
        self.odd = _mm256_add_epi64(
            self.odd,
            _mm256_mul_epu32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(b, 32)),
        );
    }

    /// `(sum + round) >> shift`, truncated to 32 bits, back in column order.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn finish(self, shift: u32) -> __m256i {
        let round = if shift == 0 { 0 } else { 1i64 << (shift - 1) };
        let r = _mm256_set1_epi64x(round);
        let count = _mm_cvtsi32_si128(shift as i32);
        let e = _mm256_srl_epi64(_mm256_add_epi64(self.even, r), count);
        let o = _mm256_srl_epi64(_mm256_add_epi64(self.odd, r), count);
        _mm256_blend_epi32::<0b1010_1010>(e, _mm256_slli_epi64(o, 32))
    }
}

/// The vertical pass of eight columns from `j`: the means, shifted, and the second moments,
/// finished, as 32-bit lanes `[mu1, mu2, xx, yy, xy]`.
///
/// # Safety
/// AVX2 must be available; `j + 8` must not exceed the length of any tap row.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn vertical_block<T: Widen>(
    r: &[&[T]],
    d: &[&[T]],
    pass: Pass<'_>,
    j: usize,
) -> [__m256i; 5] {
    let mu_round = _mm256_set1_epi32(1 << (pass.mu_shift - 1));
    let mu_count = _mm_cvtsi32_si128(pass.mu_shift as i32);
    let (mut m1, mut m2) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    let mean = |m: __m256i| _mm256_srl_epi32(_mm256_add_epi32(m, mu_round), mu_count);
    // SAFETY: guaranteed by the caller.
    unsafe {
        if T::NARROW {
            // 8-bit squares are never shifted (libvmaf's shift is 0 at 8 bits) and their
            // sums fit 32 bits.
            let (mut xx, mut yy, mut xy) = (
                _mm256_setzero_si256(),
                _mm256_setzero_si256(),
                _mm256_setzero_si256(),
            );
            for (k, &c) in pass.filter.iter().enumerate() {
                let c = _mm256_set1_epi32(i32::from(c));
                let x = T::load8(r[k].as_ptr().add(j));
                let y = T::load8(d[k].as_ptr().add(j));
                let cx = _mm256_mullo_epi32(c, x);
                let cy = _mm256_mullo_epi32(c, y);
                m1 = _mm256_add_epi32(m1, cx);
                m2 = _mm256_add_epi32(m2, cy);
                xx = _mm256_add_epi32(xx, _mm256_mullo_epi32(cx, x));
                yy = _mm256_add_epi32(yy, _mm256_mullo_epi32(cy, y));
                xy = _mm256_add_epi32(xy, _mm256_mullo_epi32(cx, y));
            }
            [mean(m1), mean(m2), xx, yy, xy]
        } else {
            let (mut xx, mut yy, mut xy) = (Acc64::zero(), Acc64::zero(), Acc64::zero());
            for (k, &c) in pass.filter.iter().enumerate() {
                let c = _mm256_set1_epi32(i32::from(c));
                let x = T::load8(r[k].as_ptr().add(j));
                let y = T::load8(d[k].as_ptr().add(j));
                let cx = _mm256_mullo_epi32(c, x);
                let cy = _mm256_mullo_epi32(c, y);
                m1 = _mm256_add_epi32(m1, cx);
                m2 = _mm256_add_epi32(m2, cy);
                xx.mac(cx, x);
                yy.mac(cy, y);
                xy.mac(cx, y);
            }
            [
                mean(m1),
                mean(m2),
                xx.finish(pass.sq_shift),
                yy.finish(pass.sq_shift),
                xy.finish(pass.sq_shift),
            ]
        }
    }
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn vertical_sum<T: Sample>(
    rows: &[&[T]],
    filter: &[u16],
    shift: u32,
    out: &mut [u32],
    w: usize,
) {
    let n = w - w % 8;
    if let Some(r8) = rows_as(rows, as_u8) {
        // SAFETY: AVX2 is enabled here; the rows hold w samples.
        unsafe { vertical_sum_w::<u8>(&r8, filter, shift, out, n) }
    } else if let Some(r16) = rows_as(rows, as_u16) {
        // SAFETY: as above.
        unsafe { vertical_sum_w::<u16>(&r16, filter, shift, out, n) }
    }
    super::vertical_sum_portable(rows, filter, shift, out, n..w);
}

#[target_feature(enable = "avx2")]
unsafe fn vertical_sum_w<T: Widen>(
    rows: &[&[T]],
    filter: &[u16],
    shift: u32,
    out: &mut [u32],
    n: usize,
) {
    let round = _mm256_set1_epi32(1 << (shift - 1));
    let count = _mm_cvtsi32_si128(shift as i32);
    let taps = filter.len().min(rows.len());
    let mut j = 0;
    while j < n {
        let mut a = _mm256_setzero_si256();
        // SAFETY: j + 8 <= n <= w; rows hold w samples; `out` holds w + 2 * PAD.
        unsafe {
            for k in 0..taps {
                let c = _mm256_set1_epi32(i32::from(*filter.get_unchecked(k)));
                a = _mm256_add_epi32(
                    a,
                    _mm256_mullo_epi32(c, T::load8(rows.get_unchecked(k).as_ptr().add(j))),
                );
            }
            storeu(
                out.as_mut_ptr().add(PAD + j),
                _mm256_srl_epi32(_mm256_add_epi32(a, round), count),
            );
        }
        j += 8;
    }
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn horizontal_sum(
    src: &[u32],
    filter: &[u16],
    shift: u32,
    out: &mut [u32],
    w: usize,
) {
    let n = w - w % 8;
    let start = PAD - filter.len() / 2;
    let round = _mm256_set1_epi32(1 << (shift - 1));
    let count = _mm_cvtsi32_si128(shift as i32);
    assert!(src.len() >= w + 2 * PAD && out.len() >= w);
    let mut j = 0;
    while j < n {
        let mut a = _mm256_setzero_si256();
        // SAFETY: start + j + k + 8 <= w + 2 * PAD <= src.len() (asserted); j + 8 <= w.
        unsafe {
            for (k, &c) in filter.iter().enumerate() {
                let c = _mm256_set1_epi32(i32::from(c));
                a = _mm256_add_epi32(
                    a,
                    _mm256_mullo_epi32(c, loadu(src.as_ptr().add(start + j + k))),
                );
            }
            storeu(
                out.as_mut_ptr().add(j),
                _mm256_srl_epi32(_mm256_add_epi32(a, round), count),
            );
        }
        j += 8;
    }
    super::horizontal_sum_portable(src, filter, shift, out, n..w);
}

/// The low 32 bits of each 64-bit lane, packed into four 32-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn low32(v: __m256i) -> __m128i {
    _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
        v,
        _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0),
    ))
}

/// `floor(log2(v))` of positive doubles below 2^53, from the exponent bits, as 64-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn exponent(v: __m256d) -> __m256i {
    _mm256_sub_epi64(
        _mm256_srli_epi64(_mm256_castpd_si256(v), 52),
        _mm256_set1_epi64x(1023),
    )
}

/// Unsigned 32-bit lanes as doubles.
#[inline]
#[target_feature(enable = "avx2")]
fn u32_to_pd(v: __m128i) -> __m256d {
    let flipped = _mm_xor_si128(v, _mm_set1_epi32(i32::MIN));
    _mm256_add_pd(_mm256_cvtepi32_pd(flipped), _mm256_set1_pd(2_147_483_648.0))
}

/// Four 32-bit lanes, sign-extended, as a 64-bit mask or value.
#[inline]
#[target_feature(enable = "avx2")]
fn wide(v: __m128i) -> __m256i {
    _mm256_cvtepi32_epi64(v)
}

/// Four table entries at 32-bit indices (scalar loads: faster than a gather on many CPUs).
///
/// # Safety
/// Every index must be below 65536, the table's length.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn lookup32(table: *const i32, idx: __m128i) -> __m128i {
    let mut i = [0u32; 4];
    // SAFETY: `i` has room for four u32; indices are in range (guaranteed by the caller).
    unsafe {
        _mm_storeu_si128(i.as_mut_ptr() as *mut __m128i, idx);
        _mm_setr_epi32(
            *table.add(i[0] as usize),
            *table.add(i[1] as usize),
            *table.add(i[2] as usize),
            *table.add(i[3] as usize),
        )
    }
}

/// Four table entries at 64-bit indices.
///
/// # Safety
/// Every index must be below 65536, the table's length.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn lookup64(table: *const i32, idx: __m256i) -> __m128i {
    let mut i = [0u64; 4];
    // SAFETY: `i` has room for four u64; indices are in range (guaranteed by the caller).
    unsafe {
        _mm256_storeu_si256(i.as_mut_ptr() as *mut __m256i, idx);
        _mm_setr_epi32(
            *table.add(i[0] as usize),
            *table.add(i[1] as usize),
            *table.add(i[2] as usize),
            *table.add(i[3] as usize),
        )
    }
}

/// Four u32 from `v` at `j`.
///
/// # Safety
/// `j + 4 <= v.len()`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn ld4(v: &[u32], j: usize) -> __m128i {
    // SAFETY: guaranteed by the caller.
    unsafe { _mm_loadu_si128(v.as_ptr().add(j) as *const __m128i) }
}

/// `(a * b + 2^31) >> 32` of 32-bit values held in 64-bit lanes, packed to 32-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn q32(a: __m256i, b: __m256i, r31: __m256i) -> __m128i {
    low32(_mm256_srli_epi64(
        _mm256_add_epi64(_mm256_mul_epu32(a, b), r31),
        32,
    ))
}

/// A 32-bit lane mask widened to a double mask.
#[inline]
#[target_feature(enable = "avx2")]
fn mask_pd(m: __m128i) -> __m256d {
    _mm256_castsi256_pd(wide(m))
}

/// The sum of four 64-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn sum(v: __m256i) -> i64 {
    let s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    _mm_cvtsi128_si64(s) + _mm_extract_epi64::<1>(s)
}

/// The VIF statistic of four pixels at a time; returns how many pixels it handled (a multiple
/// of four), leaving the rest to the scalar twin.
///
/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn statistic(
    rows: &VifRows,
    w: usize,
    log2: &Log2Table,
    gain_limit: f64,
    acc: &mut Accum,
) -> usize {
    let n = w - w % 4;
    let table = log2.entries().as_ptr() as *const i32;
    let zero = _mm_setzero_si128();
    let r31 = _mm256_set1_epi64x(1 << 31);
    let nsq = _mm_set1_epi32(SIGMA_NSQ);
    let eps = _mm256_set1_pd(EPS);
    let limit = _mm256_set1_pd(gain_limit);
    let magic = _mm256_set1_pd(4_503_599_627_370_496.0); // 2^52
    let fifteen = _mm256_set1_epi64x(15);
    let (mut num_log, mut den_log, mut num_non_log, mut den_non_log) = (
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
    );
    let (mut ax, mut ax2, mut anx) = (
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
    );
    let mut j = 0;
    while j < n {
        // SAFETY: j + 4 <= n <= w, the length of the horizontal rows; table indices are
        // 16-bit mantissas, inside the 65536-entry table.
        unsafe {
            let (m1, m2) = (
                _mm256_cvtepu32_epi64(ld4(&rows.h_mu1, j)),
                _mm256_cvtepu32_epi64(ld4(&rows.h_mu2, j)),
            );
            let s1 = _mm_max_epi32(_mm_sub_epi32(ld4(&rows.h_xx, j), q32(m1, m1, r31)), zero);
            let s2 = _mm_max_epi32(_mm_sub_epi32(ld4(&rows.h_yy, j), q32(m2, m2, r31)), zero);
            let s12 = _mm_sub_epi32(ld4(&rows.h_xy, j), q32(m1, m2, r31));
            let (s1d, s2d, s12d) = (
                _mm256_cvtepi32_pd(s1),
                _mm256_cvtepi32_pd(s2),
                _mm256_cvtepi32_pd(s12),
            );
            let mut g = _mm256_div_pd(s12d, _mm256_add_pd(s1d, eps));
            let mut sv = _mm256_cvttpd_epi32(_mm256_sub_pd(s2d, _mm256_mul_pd(g, s12d)));
            let zd = _mm256_setzero_pd();
            // sigma1_sq < eps, that is 0: no gain, all of sigma2 is noise.
            let c1 = _mm_cmpeq_epi32(s1, zero);
            g = _mm256_blendv_pd(g, zd, mask_pd(c1));
            sv = _mm_blendv_epi8(sv, s2, c1);
            // sigma2_sq < eps: nothing left.
            let c2 = _mm_cmpeq_epi32(s2, zero);
            g = _mm256_blendv_pd(g, zd, mask_pd(c2));
            sv = _mm_blendv_epi8(sv, zero, c2);
            // Negative gain.
            let c3 = _mm256_cmp_pd::<_CMP_LT_OQ>(g, zd);
            sv = _mm_blendv_epi8(sv, s2, low32(_mm256_castpd_si256(c3)));
            g = _mm256_blendv_pd(g, zd, c3);
            // sv_sq <= eps, that is <= 0, becomes 0.
            sv = _mm_blendv_epi8(sv, zero, _mm_cmpgt_epi32(_mm_set1_epi32(1), sv));
            g = _mm256_min_pd(g, limit);

            // The log domain, for sigma1_sq >= sigma_nsq.
            let log = _mm_cmpgt_epi32(s1, _mm_set1_epi32(SIGMA_NSQ - 1));
            let v = _mm_add_epi32(s1, nsq);
            let k = _mm_sub_epi32(low32(exponent(u32_to_pd(v))), _mm_set1_epi32(15));
            let den_val = lookup32(table, _mm_srlv_epi32(v, k));
            let numer1 = _mm_add_epi32(sv, nsq);
            let numer1d = u32_to_pd(numer1);
            let fl = _mm256_floor_pd(_mm256_mul_pd(_mm256_mul_pd(g, g), s1d));
            let fl_int = _mm256_sub_epi64(
                _mm256_castpd_si256(_mm256_add_pd(fl, magic)),
                _mm256_castpd_si256(magic),
            );
            let nt = _mm256_add_epi64(fl_int, _mm256_cvtepu32_epi64(numer1));
            let shift1 = _mm256_sub_epi64(exponent(_mm256_add_pd(fl, numer1d)), fifteen);
            let numlog = lookup64(table, _mm256_srlv_epi64(nt, shift1));
            let shift2 = _mm256_sub_epi64(exponent(numer1d), fifteen);
            let denlog = lookup64(
                table,
                _mm256_srlv_epi64(_mm256_cvtepu32_epi64(numer1), shift2),
            );
            let lw = wide(log);
            let pos = _mm256_and_si256(lw, wide(_mm_cmpgt_epi32(s12, _mm_set1_epi32(-1))));
            let not_log = _mm256_andnot_si256(lw, _mm256_set1_epi64x(-1));
            ax2 = _mm256_add_epi64(ax2, _mm256_and_si256(pos, _mm256_sub_epi64(shift1, shift2)));
            num_log = _mm256_add_epi64(
                num_log,
                _mm256_and_si256(pos, _mm256_sub_epi64(wide(numlog), wide(denlog))),
            );
            den_log = _mm256_add_epi64(den_log, _mm256_and_si256(lw, wide(den_val)));
            anx = _mm256_sub_epi64(anx, lw);
            ax = _mm256_sub_epi64(ax, _mm256_and_si256(lw, wide(k)));
            num_non_log = _mm256_add_epi64(num_non_log, _mm256_and_si256(not_log, wide(s2)));
            den_non_log = _mm256_sub_epi64(den_non_log, not_log);
        }
        j += 4;
    }
    acc.num_log += sum(num_log);
    acc.den_log += sum(den_log);
    acc.num_non_log += sum(num_non_log);
    acc.den_non_log += sum(den_non_log);
    acc.x += sum(ax);
    acc.x2 += sum(ax2);
    acc.num_x += sum(anx);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vif::FILTERS;
    use proptest::prelude::*;

    fn have_avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// The vertical and horizontal VIF passes through the dispatcher, as the scorer runs them.
    fn filtered<T: Sample>(
        r: &[Vec<T>],
        d: &[Vec<T>],
        pass: Pass<'_>,
        w: usize,
        isa: super::super::Isa,
    ) -> [Vec<u32>; 5] {
        let rr: Vec<&[T]> = r.iter().map(|v| &v[..]).collect();
        let dr: Vec<&[T]> = d.iter().map(|v| &v[..]).collect();
        let mut rows = VifRows::default();
        rows.ready(w);
        super::super::vif_vertical(isa, &rr, &dr, pass, &mut rows, w);
        super::super::vif_horizontal(isa, &mut rows, w, pass.filter);
        [rows.h_mu1, rows.h_mu2, rows.h_xx, rows.h_yy, rows.h_xy]
    }

    proptest! {
        #[test]
        fn vif_filters_agree(w in 1usize..70, scale in 0usize..4, seed in any::<u64>(), ten_bit in any::<bool>(), extreme in any::<bool>()) {
            prop_assume!(have_avx2());
            use super::super::Isa::{Avx2, Portable};
            let taps = FILTERS[scale].len();
            let mut s = seed | 1;
            let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
            // Extremes: only the largest and smallest samples, where the sums are largest.
            let mut sample = move |max: u64| {
                let v = next();
                if extreme { if v & 1 == 0 { 0 } else { max } } else { v % (max + 1) }
            };
            if scale == 0 && !ten_bit {
                let r: Vec<Vec<u8>> = (0..taps).map(|_| (0..w).map(|_| sample(255) as u8).collect()).collect();
                let d: Vec<Vec<u8>> = (0..taps).map(|_| (0..w).map(|_| sample(255) as u8).collect()).collect();
                let pass = Pass { filter: FILTERS[0], mu_shift: 8, sq_shift: 0 };
                prop_assert_eq!(filtered(&r, &d, pass, w, Portable), filtered(&r, &d, pass, w, Avx2));
            } else {
                let max = if scale == 0 { 1023 } else { u64::from(u16::MAX) };
                let r: Vec<Vec<u16>> = (0..taps).map(|_| (0..w).map(|_| sample(max) as u16).collect()).collect();
                let d: Vec<Vec<u16>> = (0..taps).map(|_| (0..w).map(|_| sample(max) as u16).collect()).collect();
                let pass = if scale == 0 {
                    Pass { filter: FILTERS[0], mu_shift: 10, sq_shift: 4 }
                } else {
                    Pass { filter: FILTERS[scale], mu_shift: 16, sq_shift: 16 }
                };
                prop_assert_eq!(filtered(&r, &d, pass, w, Portable), filtered(&r, &d, pass, w, Avx2));
                let rr: Vec<&[u16]> = r.iter().map(|v| &v[..]).collect();
                let (mut p, mut q) = (vec![0u32; w + 2 * PAD], vec![0u32; w + 2 * PAD]);
                super::super::vertical_sum_portable(&rr, FILTERS[scale], pass.mu_shift, &mut p, 0..w);
                // SAFETY: checked above.
                unsafe { vertical_sum(&rr, FILTERS[scale], pass.mu_shift, &mut q, w) };
                prop_assert_eq!(&p, &q);
                let (mut p2, mut q2) = (vec![0u32; w], vec![0u32; w]);
                super::super::horizontal_sum_portable(&p, FILTERS[scale], 16, &mut p2, 0..w);
                // SAFETY: checked above.
                unsafe { horizontal_sum(&p, FILTERS[scale], 16, &mut q2, w) };
                prop_assert_eq!(&p2, &q2);
            }
        }
    }
}
