//! The VIF filters in 16-bit lanes with `vpmaddwd`, sixteen columns at a time.
//!
//! The vertical pass leaves its results as 16-bit halves instead of 32-bit values: the means
//! (which fit 16 bits) and the high and low halves of the second moments, each stored biased
//! by -32768 so that they are signed 16-bit lanes. The horizontal pass then multiplies pairs
//! of taps at once: `vpmaddwd` of two interleaved source vectors with a pair of coefficients.
//! Every filter sums to 65536, so the bias adds exactly `-32768 · 65536 = -2^31` to every sum,
//! which is taken back with a wrapping add; sums are exact modulo 2^32, and libvmaf's values
//! fit 32 bits. Coefficients of 2^15 or more (the middle tap of scale 3) are split in two
//! halves at the same position so that every coefficient is a positive `i16`.

use std::arch::x86_64::*;

use super::super::{PAD, Pass, SLACK, VifRows, recombine};
use super::{Widen, as_u8, rows_as};
use crate::picture::Sample;

/// The bias of the stored halves.
const BIAS: i16 = i16::MIN;

/// A filter as pairs of neighbouring taps for `vpmaddwd`, every coefficient below 2^15.
pub(crate) struct Pairs {
    /// The first tap of each pair; the pair covers taps `k` and `k + 1`.
    pub taps: Vec<usize>,
    /// The two coefficients of each pair, packed as `vpmaddwd` reads them.
    pub coefs: Vec<__m256i>,
}

impl Pairs {
    /// Pairs of taps (0, 1), (2, 3)… with a zero coefficient past an odd last tap; when a
    /// coefficient is 2^15 or more (the middle tap of scale 3), overlapping pairs (0, 1),
    /// (1, 2)… share every inner tap in two halves instead.
    #[target_feature(enable = "avx2")]
    pub(crate) fn new(filter: &[u16]) -> Self {
        let t = filter.len();
        let c = |k: usize| i32::from(filter.get(k).copied().unwrap_or(0));
        let pairs: Vec<(usize, i32, i32)> = if filter.iter().all(|&c| c < 1 << 15) {
            (0..t).step_by(2).map(|k| (k, c(k), c(k + 1))).collect()
        } else {
            let half = |k: usize| c(k) / 2;
            (0..t - 1)
                .map(|k| {
                    let a = if k == 0 { c(0) } else { c(k) - half(k) };
                    let b = if k + 1 == t - 1 {
                        c(t - 1)
                    } else {
                        half(k + 1)
                    };
                    (k, a, b)
                })
                .collect()
        };
        assert!(
            pairs.iter().all(|&(_, a, b)| a < 1 << 15 && b < 1 << 15),
            "a filter tap too large for vpmaddwd"
        );
        Self {
            taps: pairs.iter().map(|p| p.0).collect(),
            coefs: pairs
                .iter()
                .map(|&(_, a, b)| _mm256_set1_epi32((b << 16) | a))
                .collect(),
        }
    }
}

/// Sixteen 16-bit values at `p`.
///
/// # Safety
/// `p` must point to sixteen readable values.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load16(p: *const i16) -> __m256i {
    // SAFETY: guaranteed by the caller.
    unsafe { _mm256_loadu_si256(p as *const __m256i) }
}

/// Sixteen bytes widened to 16-bit lanes.
///
/// # Safety
/// `p` must point to sixteen readable bytes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load_u8x16(p: *const u8) -> __m256i {
    // SAFETY: guaranteed by the caller.
    unsafe { _mm256_cvtepu8_epi16(_mm_loadu_si128(p as *const __m128i)) }
}

/// Sums of sixteen columns: columns 0-3 and 8-11 in `lo`, 4-7 and 12-15 in `hi`, the order
/// `vpunpck*wd` leaves them in.
#[derive(Clone, Copy)]
struct Sum16 {
    lo: __m256i,
    hi: __m256i,
}

impl Sum16 {
    #[inline]
    #[target_feature(enable = "avx2")]
    fn zero() -> Self {
        Self {
            lo: _mm256_setzero_si256(),
            hi: _mm256_setzero_si256(),
        }
    }

    /// Adds `c_a · a + c_b · b` column by column.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn madd(&mut self, a: __m256i, b: __m256i, c: __m256i) {
        self.lo = _mm256_add_epi32(self.lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), c));
        self.hi = _mm256_add_epi32(self.hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), c));
    }

    /// The sums of biased inputs, unbiased.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn unbias(self) -> Self {
        let b = _mm256_set1_epi32(i32::MIN);
        Self {
            lo: _mm256_add_epi32(self.lo, b),
            hi: _mm256_add_epi32(self.hi, b),
        }
    }

    /// Sixteen 32-bit values below 2^16, biased into 16-bit lanes in column order.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn pack_biased(self) -> __m256i {
        _mm256_xor_si256(
            _mm256_packus_epi32(self.lo, self.hi),
            _mm256_set1_epi16(BIAS),
        )
    }

    /// The high and low 16-bit halves of the sums, biased, in column order.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn halves(self) -> (__m256i, __m256i) {
        let mask = _mm256_set1_epi32(0xffff);
        let hi = Self {
            lo: _mm256_srli_epi32(self.lo, 16),
            hi: _mm256_srli_epi32(self.hi, 16),
        };
        let lo = Self {
            lo: _mm256_and_si256(self.lo, mask),
            hi: _mm256_and_si256(self.hi, mask),
        };
        (hi.pack_biased(), lo.pack_biased())
    }
}

/// # Safety
/// `dst[at..at + 16]` must exist.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store16(dst: &mut [i16], at: usize, v: __m256i) {
    debug_assert!(at + 16 <= dst.len());
    // SAFETY: guaranteed by the caller.
    unsafe { _mm256_storeu_si256(dst.as_mut_ptr().add(at) as *mut __m256i, v) }
}

/// # Safety
/// `dst[at..at + 8]` must exist.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store8(dst: &mut [i16], at: usize, v: __m128i) {
    debug_assert!(at + 8 <= dst.len());
    // SAFETY: guaranteed by the caller.
    unsafe { _mm_storeu_si128(dst.as_mut_ptr().add(at) as *mut __m128i, v) }
}

/// The vertical pass into the 16-bit layout of `rows.packed`, for every column.
///
/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn vertical<T: Sample>(
    r: &[&[T]],
    d: &[&[T]],
    pass: Pass<'_>,
    rows: &mut VifRows,
    w: usize,
) {
    let mut done = 0;
    if let (Some(r8), Some(d8)) = (rows_as(r, as_u8), rows_as(d, as_u8))
        && pass.sq_shift == 0
    {
        done = w - w % 16;
        // SAFETY: AVX2 is enabled here; the rows hold w samples.
        unsafe { vertical_u8(&r8, &d8, pass, rows, done) };
    } else if let (Some(r8), Some(d8)) = (rows_as(r, as_u8), rows_as(d, as_u8)) {
        done = w - w % 8;
        // SAFETY: as above.
        unsafe { vertical_wide::<u8>(&r8, &d8, pass, rows, done) };
    } else if let (Some(r16), Some(d16)) = (rows_as(r, super::as_u16), rows_as(d, super::as_u16)) {
        done = w - w % 8;
        // SAFETY: as above.
        unsafe { vertical_wide::<u16>(&r16, &d16, pass, rows, done) };
    }
    // The last columns through the portable pass, then into the 16-bit layout.
    super::super::vertical(r, d, pass, rows, done..w);
    for j in done..w {
        pack_column(rows, PAD + j);
    }
}

/// Moves one column of the portable pass's 32-bit results into the 16-bit layout.
fn pack_column(rows: &mut VifRows, at: usize) {
    let bias = |v: u32| (v as u16 as i16) ^ BIAS;
    let [mu1, mu2, xx_hi, xx_lo, yy_hi, yy_lo, xy_hi, xy_lo] = &mut rows.packed;
    mu1[at] = bias(rows.mu1[at]);
    mu2[at] = bias(rows.mu2[at]);
    for (v, hi, lo) in [
        (rows.xx[at], xx_hi, xx_lo),
        (rows.yy[at], yy_hi, yy_lo),
        (rows.xy[at], xy_hi, xy_lo),
    ] {
        hi[at] = bias(v >> 16);
        lo[at] = bias(v & 0xffff);
    }
}

/// 8-bit samples with unshifted squares (scale 0 of 8-bit video): sixteen columns at a time,
/// two taps per `vpmaddwd`. The squares fit 16 bits and are biased; the means are not.
#[target_feature(enable = "avx2")]
unsafe fn vertical_u8(r: &[&[u8]], d: &[&[u8]], pass: Pass<'_>, rows: &mut VifRows, n: usize) {
    let pairs = Pairs::new(pass.filter);
    let bias = _mm256_set1_epi16(BIAS);
    let mu_round = _mm256_set1_epi32(1 << (pass.mu_shift - 1));
    let mu_count = _mm_cvtsi32_si128(pass.mu_shift as i32);
    let [p_mu1, p_mu2, xx_hi, xx_lo, yy_hi, yy_lo, xy_hi, xy_lo] = &mut rows.packed;
    let mut j = 0;
    while j < n {
        let (mut m1, mut m2) = (Sum16::zero(), Sum16::zero());
        let (mut xx, mut yy, mut xy) = (Sum16::zero(), Sum16::zero(), Sum16::zero());
        // SAFETY: j + 16 <= n <= w, and every tap row holds w samples; the padded outputs
        // hold w + 2 * PAD values.
        unsafe {
            for (&ka, &c) in pairs.taps.iter().zip(&pairs.coefs) {
                // A padding tap (coefficient 0) past the last row reads row 0 instead.
                let kb = if ka + 1 < r.len() { ka + 1 } else { 0 };
                let (xa, xb) = (
                    load_u8x16(r[ka].as_ptr().add(j)),
                    load_u8x16(r[kb].as_ptr().add(j)),
                );
                let (ya, yb) = (
                    load_u8x16(d[ka].as_ptr().add(j)),
                    load_u8x16(d[kb].as_ptr().add(j)),
                );
                m1.madd(xa, xb, c);
                m2.madd(ya, yb, c);
                let sq = |a: __m256i, b: __m256i| _mm256_xor_si256(_mm256_mullo_epi16(a, b), bias);
                xx.madd(sq(xa, xa), sq(xb, xb), c);
                yy.madd(sq(ya, ya), sq(yb, yb), c);
                xy.madd(sq(xa, ya), sq(xb, yb), c);
            }
            let mean = |s: Sum16| {
                Sum16 {
                    lo: _mm256_srl_epi32(_mm256_add_epi32(s.lo, mu_round), mu_count),
                    hi: _mm256_srl_epi32(_mm256_add_epi32(s.hi, mu_round), mu_count),
                }
                .pack_biased()
            };
            store16(p_mu1, PAD + j, mean(m1));
            store16(p_mu2, PAD + j, mean(m2));
            for (s, hi, lo) in [
                (xx, &mut *xx_hi, &mut *xx_lo),
                (yy, &mut *yy_hi, &mut *yy_lo),
                (xy, &mut *xy_hi, &mut *xy_lo),
            ] {
                let (h, l) = s.unbias().halves();
                store16(hi, PAD + j, h);
                store16(lo, PAD + j, l);
            }
        }
        j += 16;
    }
}

/// Eight 32-bit values below 2^16, biased, as eight 16-bit values.
#[inline]
#[target_feature(enable = "avx2")]
fn narrow8(v: __m256i) -> __m128i {
    let packed = _mm256_permute4x64_epi64::<0b1000>(_mm256_packus_epi32(v, v));
    _mm_xor_si128(_mm256_castsi256_si128(packed), _mm_set1_epi16(BIAS))
}

/// Other depths and scales: the 32-bit pass of the parent module, eight columns at a time,
/// stored into the 16-bit layout.
#[target_feature(enable = "avx2")]
unsafe fn vertical_wide<T: Widen>(
    r: &[&[T]],
    d: &[&[T]],
    pass: Pass<'_>,
    rows: &mut VifRows,
    n: usize,
) {
    let mask = _mm256_set1_epi32(0xffff);
    let mut j = 0;
    while j < n {
        // SAFETY: j + 8 <= n <= w, as `vertical_block` requires; the padded outputs hold
        // w + 2 * PAD values.
        unsafe {
            let [m1, m2, xx, yy, xy] = super::vertical_block(r, d, pass, j);
            let [p_mu1, p_mu2, xx_hi, xx_lo, yy_hi, yy_lo, xy_hi, xy_lo] = &mut rows.packed;
            store8(p_mu1, PAD + j, narrow8(m1));
            store8(p_mu2, PAD + j, narrow8(m2));
            for (v, hi, lo) in [
                (xx, &mut *xx_hi, &mut *xx_lo),
                (yy, &mut *yy_hi, &mut *yy_lo),
                (xy, &mut *xy_hi, &mut *xy_lo),
            ] {
                store8(hi, PAD + j, narrow8(_mm256_srli_epi32(v, 16)));
                store8(lo, PAD + j, narrow8(_mm256_and_si256(v, mask)));
            }
        }
        j += 8;
    }
}

/// The horizontal pass from the 16-bit layout into `h_mu1`..`h_xy`.
///
/// A 256-bit load of the row at column `j + k` holds the pairs (`j + k`, `j + k + 1`),
/// (`j + k + 2`, `j + k + 3`)…, which is what taps `k` and `k + 1` of the even outputs
/// `j, j + 2, …, j + 14` read; the load at `j + k + 1` serves the odd outputs. So every pair of
/// taps costs two loads and two `vpmaddwd` per sixteen outputs, and no shuffles.
///
/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn horizontal(rows: &mut VifRows, w: usize, filter: &[u16]) {
    let pairs = Pairs::new(filter);
    let start = PAD - filter.len() / 2;
    let n = w - w % 16;
    let round = _mm256_set1_epi32(1 << 15);
    let unbias = _mm256_set1_epi32(i32::MIN);
    let VifRows {
        packed,
        h_mu1,
        h_mu2,
        h_xx,
        h_yy,
        h_xy,
        ..
    } = rows;
    // The last load of a block reads up to column start + n + taps + 15 < w + 2 * PAD + SLACK.
    assert!(packed.iter().all(|p| p.len() >= w + 2 * PAD + SLACK) && h_xy.len() >= w);
    // Each quantity in turn, so that two accumulators suffice; the high halves of the second
    // moments are stored first and the low halves added to them.
    for (q, src) in packed.iter().enumerate() {
        let out: &mut [u32] = match q {
            0 => h_mu1,
            1 => h_mu2,
            2 | 3 => h_xx,
            4 | 5 => h_yy,
            _ => h_xy,
        };
        let low_half = q >= 2 && q % 2 == 1;
        let mut j = 0;
        while j < n {
            let (mut even, mut odd) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            // SAFETY: the loads read src[start + j + k ..= start + j + k + 16] with k < taps,
            // inside the padded row and its slack (asserted above); the stores write
            // out[j .. j + 16] with j + 16 <= n <= w.
            unsafe {
                let base = src.as_ptr().add(start + j);
                for (&k, &c) in pairs.taps.iter().zip(&pairs.coefs) {
                    even = _mm256_add_epi32(even, _mm256_madd_epi16(load16(base.add(k)), c));
                    odd = _mm256_add_epi32(odd, _mm256_madd_epi16(load16(base.add(k + 1)), c));
                }
                let (even, odd) = (
                    _mm256_add_epi32(even, unbias),
                    _mm256_add_epi32(odd, unbias),
                );
                let (lo, hi) = (
                    _mm256_unpacklo_epi32(even, odd),
                    _mm256_unpackhi_epi32(even, odd),
                );
                let a = _mm256_permute2x128_si256::<0x20>(lo, hi);
                let b = _mm256_permute2x128_si256::<0x31>(lo, hi);
                let dst = out.as_mut_ptr().add(j) as *mut __m256i;
                if low_half {
                    // recombine(hi, lo, 16): hi + ((lo + 2^15) >> 16).
                    let add = |lo: __m256i| _mm256_srli_epi32(_mm256_add_epi32(lo, round), 16);
                    _mm256_storeu_si256(dst, _mm256_add_epi32(_mm256_loadu_si256(dst), add(a)));
                    _mm256_storeu_si256(
                        dst.add(1),
                        _mm256_add_epi32(_mm256_loadu_si256(dst.add(1)), add(b)),
                    );
                } else {
                    _mm256_storeu_si256(dst, a);
                    _mm256_storeu_si256(dst.add(1), b);
                }
            }
            j += 16;
        }
    }
    horizontal_tail(rows, filter, n..w);
}

/// The horizontal pass over the columns `cols`, one at a time, from the 16-bit layout.
pub(crate) fn horizontal_tail(rows: &mut VifRows, filter: &[u16], cols: std::ops::Range<usize>) {
    let start = PAD - filter.len() / 2;
    let unbias = |v: i16| u32::from((v ^ BIAS) as u16);
    for j in cols {
        let mut s = [0u32; 8];
        for (k, &c) in filter.iter().enumerate() {
            for (q, src) in rows.packed.iter().enumerate() {
                s[q] = s[q].wrapping_add(u32::from(c).wrapping_mul(unbias(src[start + j + k])));
            }
        }
        rows.h_mu1[j] = s[0];
        rows.h_mu2[j] = s[1];
        rows.h_xx[j] = recombine(s[2], s[3], 16);
        rows.h_yy[j] = recombine(s[4], s[5], 16);
        rows.h_xy[j] = recombine(s[6], s[7], 16);
    }
}
