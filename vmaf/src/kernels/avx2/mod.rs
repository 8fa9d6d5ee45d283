//! AVX2 twins of the portable kernels in the parent module: the same integer results, eight
//! columns at a time with the accumulators held in registers. Sums that need more than 32 bits
//! are kept in 64-bit lanes (even and odd columns apart) with `vpmuludq`. Columns past the last
//! full block of eight are left to the portable twin.

use std::arch::x86_64::*;

pub(crate) mod adm;
pub(crate) mod lowpass;
pub(crate) mod stat;
pub(crate) mod vif16;

use super::Pass;
use crate::picture::Sample;

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

/// Sums of products of eight columns, in the width the sums need.
///
/// # Safety
/// Every method needs AVX2.
trait Moment: Copy {
    /// All zeros.
    unsafe fn zero() -> Self;
    /// Adds `a * b` of 32-bit lanes.
    unsafe fn mac(&mut self, a: __m256i, b: __m256i);
    /// `(sum + round) >> shift`, as 32-bit lanes in column order.
    unsafe fn finish(self, shift: u32) -> __m256i;
}

/// 32-bit accumulators: 8-bit squares are never shifted (libvmaf's shift is 0 at 8 bits) and
/// their sums fit 32 bits.
#[derive(Clone, Copy)]
struct Acc32(__m256i);

impl Moment for Acc32 {
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn zero() -> Self {
        Self(_mm256_setzero_si256())
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn mac(&mut self, a: __m256i, b: __m256i) {
        self.0 = _mm256_add_epi32(self.0, _mm256_mullo_epi32(a, b));
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn finish(self, shift: u32) -> __m256i {
        debug_assert_eq!(shift, 0);
        self.0
    }
}

/// 64-bit accumulators of eight columns: even columns in one register, odd in the other.
#[derive(Clone, Copy)]
struct Acc64 {
    even: __m256i,
    odd: __m256i,
}

impl Moment for Acc64 {
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn zero() -> Self {
        Self {
            even: _mm256_setzero_si256(),
            odd: _mm256_setzero_si256(),
        }
    }

    /// Adds `a * b` of 32-bit lanes as 64-bit products.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn mac(&mut self, a: __m256i, b: __m256i) {
        self.even = _mm256_add_epi64(self.even, _mm256_mul_epu32(a, b));
        self.odd = _mm256_add_epi64(
            self.odd,
            _mm256_mul_epu32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(b, 32)),
        );
    }

    /// `(sum + round) >> shift`, truncated to 32 bits, back in column order.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn finish(self, shift: u32) -> __m256i {
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
    // SAFETY: guaranteed by the caller.
    unsafe {
        if T::NARROW {
            moments::<T, Acc32>(r, d, pass, j)
        } else {
            moments::<T, Acc64>(r, d, pass, j)
        }
    }
}

/// [`vertical_block`] with second moments summed in `A`.
///
/// # Safety
/// As for [`vertical_block`].
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn moments<T: Widen, A: Moment>(
    r: &[&[T]],
    d: &[&[T]],
    pass: Pass<'_>,
    j: usize,
) -> [__m256i; 5] {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let mu_round = _mm256_set1_epi32(1 << (pass.mu_shift - 1));
        let mu_count = _mm_cvtsi32_si128(pass.mu_shift as i32);
        let mean = |m: __m256i| _mm256_srl_epi32(_mm256_add_epi32(m, mu_round), mu_count);
        let (mut m1, mut m2) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        let (mut xx, mut yy, mut xy) = (A::zero(), A::zero(), A::zero());
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

/// `floor(log2(v))` of positive doubles below 2^53, from the exponent bits, as 64-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn exponent(v: __m256d) -> __m256i {
    _mm256_sub_epi64(
        _mm256_srli_epi64(_mm256_castpd_si256(v), 52),
        _mm256_set1_epi64x(1023),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::VifRows;
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
            }
        }
    }
}
