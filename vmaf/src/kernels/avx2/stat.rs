//! The VIF statistic, eight pixels at a time.
//!
//! The integer steps run in eight 32-bit lanes; the steps libvmaf takes in double precision
//! (the gain and its square) run in two halves of four doubles. The log2 table is indexed by
//! the top sixteen bits of a value and shifted by its bit length: both come straight from the
//! bits of the value converted to a double, which is exact below 2^53: the exponent field
//! gives the bit length, and the sixteen leading significand bits (the hidden bit and fifteen
//! stored bits) are the index.

use std::arch::x86_64::*;

use super::super::VifRows;
use crate::vif::{Accum, EPS, Log2Table, SIGMA_NSQ};

/// Eight u32 from `v` at `j`.
///
/// # Safety
/// `j + 8 <= v.len()`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load8(v: &[u32], j: usize) -> __m256i {
    debug_assert!(j + 8 <= v.len());
    // SAFETY: guaranteed by the caller.
    unsafe { _mm256_loadu_si256(v.as_ptr().add(j) as *const __m256i) }
}

/// `(a · b + 2^31) >> 32` of unsigned 32-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn q32(a: __m256i, b: __m256i) -> __m256i {
    let r = _mm256_set1_epi64x(1 << 31);
    let even = _mm256_add_epi64(_mm256_mul_epu32(a, b), r);
    let odd = _mm256_add_epi64(
        _mm256_mul_epu32(_mm256_srli_epi64::<32>(a), _mm256_srli_epi64::<32>(b)),
        r,
    );
    _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd)
}

/// The low and high four lanes of eight signed 32-bit lanes as doubles.
#[inline]
#[target_feature(enable = "avx2")]
fn to_pd(v: __m256i) -> [__m256d; 2] {
    [
        _mm256_cvtepi32_pd(_mm256_castsi256_si128(v)),
        _mm256_cvtepi32_pd(_mm256_extracti128_si256::<1>(v)),
    ]
}

/// The low and high four lanes of eight unsigned 32-bit lanes as doubles.
#[inline]
#[target_feature(enable = "avx2")]
fn to_pd_unsigned(v: __m256i) -> [__m256d; 2] {
    let flipped = _mm256_xor_si256(v, _mm256_set1_epi32(i32::MIN));
    let two31 = _mm256_set1_pd(2_147_483_648.0);
    to_pd(flipped).map(|h| _mm256_add_pd(h, two31))
}

/// A 32-bit lane mask widened to the two halves' 64-bit masks.
#[inline]
#[target_feature(enable = "avx2")]
fn to_mask_pd(m: __m256i) -> [__m256d; 2] {
    [
        _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(m))),
        _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(m))),
    ]
}

/// The low 32 bits of the 64-bit lanes of two halves, as eight 32-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn join(lo: __m256i, hi: __m256i) -> __m256i {
    let pick = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    let lo = _mm256_permutevar8x32_epi32(lo, pick);
    let hi = _mm256_permutevar8x32_epi32(hi, pick);
    _mm256_permute2x128_si256::<0x20>(lo, hi)
}

/// For positive integer doubles below 2^53: the top sixteen bits of the integer (the table
/// index) and its bit length minus sixteen (the right shift that produced them), as eight
/// 32-bit lanes from two halves.
#[inline]
#[target_feature(enable = "avx2")]
fn normalise(v: [__m256d; 2]) -> (__m256i, __m256i) {
    let bits = v.map(|h| _mm256_castpd_si256(h));
    let index = bits.map(|b| {
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi64::<37>(b), _mm256_set1_epi64x(0x7fff)),
            _mm256_set1_epi64x(0x8000),
        )
    });
    // Biased exponent 1023 + e for a value in [2^e, 2^(e+1)); the shift is e - 15.
    let shift =
        bits.map(|b| _mm256_sub_epi64(_mm256_srli_epi64::<52>(b), _mm256_set1_epi64x(1038)));
    (join(index[0], index[1]), join(shift[0], shift[1]))
}

/// Eight table entries.
///
/// # Safety
/// Every index must be inside the table.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn lookup(table: &[u32], idx: __m256i) -> __m256i {
    let mut i = [0u32; 8];
    // SAFETY: `i` has room for eight u32.
    unsafe { _mm256_storeu_si256(i.as_mut_ptr() as *mut __m256i, idx) };
    // SAFETY: the caller guarantees the indices are in range.
    let v = i.map(|k| unsafe { *table.get_unchecked(k as usize) });
    // SAFETY: `v` holds eight u32.
    unsafe { _mm256_loadu_si256(v.as_ptr() as *const __m256i) }
}

/// The sum of eight 32-bit lanes, sign-extended.
#[inline]
#[target_feature(enable = "avx2")]
fn sum32(v: __m256i) -> i64 {
    let wide = _mm256_add_epi64(
        _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
        _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(v)),
    );
    sum64(wide)
}

/// The sum of four 64-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn sum64(v: __m256i) -> i64 {
    let s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    _mm_cvtsi128_si64(s) + _mm_extract_epi64::<1>(s)
}

/// The VIF statistic of eight pixels at a time; returns how many pixels it handled (a
/// multiple of eight), leaving the rest to the scalar twin.
///
/// # Safety
/// AVX2 must be available.
// Long on purpose: one loop body mirrors libvmaf's integer VIF statistic step by step (gain,
// noise, the log and non-log domains), with seven per-lane accumulators live across it; cut
// into helpers, the steps no longer line up with the reference or with the scalar twin it is
// tested against.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn statistic(
    rows: &VifRows,
    w: usize,
    log2: &Log2Table,
    gain_limit: f64,
    acc: &mut Accum,
) -> usize {
    // Per-lane 32-bit sums hold for rows below 2^18 samples.
    if w >= 1 << 18 {
        return 0;
    }
    let n = w - w % 8;
    let table = log2.entries();
    let zero = _mm256_setzero_si256();
    let nsq = _mm256_set1_epi32(SIGMA_NSQ);
    let eps = _mm256_set1_pd(EPS);
    let limit = _mm256_set1_pd(gain_limit);
    let one = _mm256_set1_epi32(1);
    // Per-lane sums over the row: 32 bits suffice for all but the non-log numerator, whose
    // terms reach 2^31 (table values are below 2^15, and a lane sees under 2^15 pixels).
    let (mut num_log, mut den_log, mut den_non_log) = (zero, zero, zero);
    let (mut x, mut x2, mut num_x) = (zero, zero, zero);
    let mut num_non_log = _mm256_setzero_si256();
    let mut j = 0;
    while j < n {
        // SAFETY: j + 8 <= n <= w, the length of the horizontal rows; table indices have
        // their top bit set and are below 2^16, inside the 65536-entry table.
        unsafe {
            let (m1, m2) = (load8(&rows.h_mu1, j), load8(&rows.h_mu2, j));
            let s1 = _mm256_max_epi32(_mm256_sub_epi32(load8(&rows.h_xx, j), q32(m1, m1)), zero);
            let s2 = _mm256_max_epi32(_mm256_sub_epi32(load8(&rows.h_yy, j), q32(m2, m2)), zero);
            let s12 = _mm256_sub_epi32(load8(&rows.h_xy, j), q32(m1, m2));
            let (s1d, s2d, s12d) = (to_pd(s1), to_pd(s2), to_pd(s12));
            // g = s12 / (s1 + eps); sv = s2 - g·s12, truncated.
            let mut g = [0, 1].map(|h| _mm256_div_pd(s12d[h], _mm256_add_pd(s1d[h], eps)));
            let sv_h = [0, 1]
                .map(|h| _mm256_cvttpd_epi32(_mm256_sub_pd(s2d[h], _mm256_mul_pd(g[h], s12d[h]))));
            let mut sv = _mm256_set_m128i(sv_h[1], sv_h[0]);
            // s1 below eps (that is, 0): no gain, all of s2 is noise. s2 below eps: nothing
            // left. Otherwise a negative gain (the sign of s12) counts s2 as noise.
            let c1 = _mm256_cmpeq_epi32(s1, zero);
            let c2 = _mm256_cmpeq_epi32(s2, zero);
            let c3 = _mm256_andnot_si256(_mm256_or_si256(c1, c2), _mm256_cmpgt_epi32(zero, s12));
            sv = _mm256_blendv_epi8(sv, s2, c1);
            sv = _mm256_andnot_si256(c2, sv);
            // (libvmaf also sets sv to s2 where c3 holds, but sv is only read where s12 >= 0.)
            // sv at or below eps becomes 0.
            sv = _mm256_max_epi32(sv, zero);
            let no_gain = to_mask_pd(_mm256_or_si256(_mm256_or_si256(c1, c2), c3));
            for h in 0..2 {
                g[h] = _mm256_min_pd(_mm256_andnot_pd(no_gain[h], g[h]), limit);
            }

            // The log domain, where s1 >= SIGMA_NSQ.
            let log = _mm256_cmpgt_epi32(s1, _mm256_set1_epi32(SIGMA_NSQ - 1));
            let (den_idx, k) = normalise(to_pd_unsigned(_mm256_add_epi32(s1, nsq)));
            let den_val = lookup(table, den_idx);
            let numer1 = _mm256_add_epi32(sv, nsq);
            let numer1d = to_pd_unsigned(numer1);
            // floor(g²·s1) + numer1, exact in double.
            let total = [0, 1].map(|h| {
                let fl = _mm256_floor_pd(_mm256_mul_pd(_mm256_mul_pd(g[h], g[h]), s1d[h]));
                _mm256_add_pd(fl, numer1d[h])
            });
            let (num_idx, shift1) = normalise(total);
            let (den1_idx, shift2) = normalise(numer1d);
            let numlog = lookup(table, num_idx);
            let denlog = lookup(table, den1_idx);
            let pos = _mm256_and_si256(log, _mm256_cmpgt_epi32(s12, _mm256_set1_epi32(-1)));
            x2 = _mm256_add_epi32(x2, _mm256_and_si256(pos, _mm256_sub_epi32(shift1, shift2)));
            num_log = _mm256_add_epi32(
                num_log,
                _mm256_and_si256(pos, _mm256_sub_epi32(numlog, denlog)),
            );
            den_log = _mm256_add_epi32(den_log, _mm256_and_si256(log, den_val));
            num_x = _mm256_add_epi32(num_x, _mm256_and_si256(log, one));
            x = _mm256_sub_epi32(x, _mm256_and_si256(log, k));
            let not_log = _mm256_andnot_si256(log, s2);
            num_non_log = _mm256_add_epi64(
                num_non_log,
                _mm256_add_epi64(
                    _mm256_cvtepu32_epi64(_mm256_castsi256_si128(not_log)),
                    _mm256_cvtepu32_epi64(_mm256_extracti128_si256::<1>(not_log)),
                ),
            );
            den_non_log = _mm256_add_epi32(den_non_log, _mm256_andnot_si256(log, one));
        }
        j += 8;
    }
    acc.num_log += sum32(num_log);
    acc.den_log += sum32(den_log);
    acc.num_non_log += sum64(num_non_log);
    acc.den_non_log += sum32(den_non_log);
    acc.x += sum32(x);
    acc.x2 += sum32(x2);
    acc.num_x += sum32(num_x);
    n
}
