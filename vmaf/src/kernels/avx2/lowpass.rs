//! The separable low-pass filters of motion (the 5-tap blur) and of VIF's decimation, in
//! 16-bit lanes with `vpmaddwd`, like `vif16`.
//!
//! The vertical pass interleaves two source rows so that one `vpmaddwd` applies two taps to
//! eight columns, and leaves its results (which fit 16 bits) biased by -32768 in a padded
//! row; the horizontal pass reads pairs of neighbouring columns straight from that row, for
//! the even outputs from one load and the odd outputs from the next.

use std::arch::x86_64::*;

use super::super::{Edge, PAD, SLACK, pad_row};
use super::vif16::Pairs;
use super::{as_u8, as_u16};
use crate::picture::Sample;

/// The vertical pass into `out[PAD..PAD + w]`, biased, then padded; returns nothing for the
/// columns it leaves (the caller's portable pass fills them first).
///
/// # Safety
/// AVX2 must be available; every row holds `w` samples and `out` holds `w + 2 * PAD`.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn vertical<T: Sample>(
    rows: &[&[T]],
    filter: &[u16],
    shift: u32,
    out: &mut [i16],
    w: usize,
) -> usize {
    let n = w - w % 16;
    assert!(out.len() >= w + 2 * PAD && rows.iter().all(|r| r.len() >= w));
    let pairs = Pairs::new(filter);
    let round = _mm256_set1_epi32(1 << (shift - 1));
    let count = _mm_cvtsi32_si128(shift as i32);
    let bias = _mm256_set1_epi16(i16::MIN);
    // Rows past the last tap (a zero coefficient) are read from row 0.
    let row = |k: usize| if k < filter.len() { k } else { 0 };
    let u8_rows: Option<Vec<&[u8]>> = rows.iter().map(|r| as_u8(r)).collect();
    let u16_rows: Option<Vec<&[u16]>> = rows.iter().map(|r| as_u16(r)).collect();
    let mut j = 0;
    while j < n {
        let (mut lo, mut hi) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        // SAFETY: j + 16 <= n <= w, so every load and store is inside its row (asserted).
        unsafe {
            let packed = if let Some(r) = &u8_rows {
                // Bytes of two rows interleaved: columns 0-7 in `lo`, 8-15 in `hi`.
                for (&k, &c) in pairs.taps.iter().zip(&pairs.coefs) {
                    let a = _mm_loadu_si128(r[row(k)].as_ptr().add(j) as *const __m128i);
                    let b = _mm_loadu_si128(r[row(k + 1)].as_ptr().add(j) as *const __m128i);
                    let (l, h) = (
                        _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b)),
                        _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(a, b)),
                    );
                    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(l, c));
                    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(h, c));
                }
                let lo = _mm256_srl_epi32(_mm256_add_epi32(lo, round), count);
                let hi = _mm256_srl_epi32(_mm256_add_epi32(hi, round), count);
                _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(lo, hi))
            } else if let Some(r) = &u16_rows {
                // Biased 16-bit samples: columns 0-3 and 8-11 in `lo`, 4-7 and 12-15 in `hi`.
                for (&k, &c) in pairs.taps.iter().zip(&pairs.coefs) {
                    let a = _mm256_xor_si256(
                        _mm256_loadu_si256(r[row(k)].as_ptr().add(j) as *const __m256i),
                        bias,
                    );
                    let b = _mm256_xor_si256(
                        _mm256_loadu_si256(r[row(k + 1)].as_ptr().add(j) as *const __m256i),
                        bias,
                    );
                    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), c));
                    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), c));
                }
                let unbias = _mm256_set1_epi32(i32::MIN);
                let finish = |s: __m256i| {
                    _mm256_srl_epi32(_mm256_add_epi32(_mm256_add_epi32(s, unbias), round), count)
                };
                _mm256_packus_epi32(finish(lo), finish(hi))
            } else {
                return 0;
            };
            _mm256_storeu_si256(
                out.as_mut_ptr().add(PAD + j) as *mut __m256i,
                _mm256_xor_si256(packed, bias),
            );
        }
        j += 16;
    }
    n
}

/// The horizontal pass: `out[i]` is the filtered value at column `i * step` (`step` 1 or 2),
/// `(Σ c·v + 2^(shift-1)) >> shift`, from the padded, biased row `src`. Returns how many
/// outputs it wrote.
///
/// # Safety
/// AVX2 must be available; `src` holds `w + 2 * PAD + SLACK` values.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn horizontal(
    src: &[i16],
    filter: &[u16],
    shift: u32,
    w: usize,
    step: usize,
    out: &mut [u16],
) -> usize {
    assert!(src.len() >= w + 2 * PAD + SLACK && (step == 1 || step == 2));
    let pairs = Pairs::new(filter);
    let start = PAD - filter.len() / 2;
    let round = _mm256_set1_epi32(1 << (shift - 1));
    let count = _mm_cvtsi32_si128(shift as i32);
    let unbias = _mm256_set1_epi32(i32::MIN);
    // Sixteen columns per block: all outputs for step 1, the eight even ones for step 2.
    let per_block = 16 / step;
    let blocks = out.len().min(w.div_ceil(step)) / per_block;
    for b in 0..blocks {
        let j = b * 16;
        let (mut even, mut odd) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        // SAFETY: the loads read src[start + j + k ..= start + j + k + 16] with k < taps and
        // j + 16 <= w (a whole block of columns), so below w + 2 * PAD + SLACK (asserted);
        // the stores write out[b * per_block ..][..per_block], inside `out`.
        unsafe {
            let base = src.as_ptr().add(start + j);
            for (&k, &c) in pairs.taps.iter().zip(&pairs.coefs) {
                let e = _mm256_loadu_si256(base.add(k) as *const __m256i);
                even = _mm256_add_epi32(even, _mm256_madd_epi16(e, c));
                if step == 1 {
                    let o = _mm256_loadu_si256(base.add(k + 1) as *const __m256i);
                    odd = _mm256_add_epi32(odd, _mm256_madd_epi16(o, c));
                }
            }
            let finish = |s: __m256i| {
                _mm256_srl_epi32(_mm256_add_epi32(_mm256_add_epi32(s, unbias), round), count)
            };
            let dst = out.as_mut_ptr().add(b * per_block);
            if step == 1 {
                let (e, o) = (finish(even), finish(odd));
                let (l, h) = (_mm256_unpacklo_epi32(e, o), _mm256_unpackhi_epi32(e, o));
                let first = _mm256_permute2x128_si256::<0x20>(l, h);
                let second = _mm256_permute2x128_si256::<0x31>(l, h);
                let packed =
                    _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(first, second));
                _mm256_storeu_si256(dst as *mut __m256i, packed);
            } else {
                let e = finish(even);
                let packed = _mm256_permute4x64_epi64::<0b1000>(_mm256_packus_epi32(e, e));
                _mm_storeu_si128(dst as *mut __m128i, _mm256_castsi256_si128(packed));
            }
        }
    }
    blocks * per_block
}

/// Both passes for one output row, with the edges of `edge`.
///
/// # Safety
/// AVX2 must be available; rows hold `w` samples.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn low_pass<T: Sample>(
    rows: &[&[T]],
    filter: &[u16],
    shift: u32,
    edge: Edge,
    narrow: &mut [i16],
    w: usize,
    step: usize,
    out: &mut [u16],
) {
    // SAFETY: AVX2 is available (the caller's guarantee); the sizes are checked inside.
    let done = unsafe { vertical(rows, filter, shift, narrow, w) };
    for j in done..w {
        let mut a = 0u32;
        for (k, &c) in filter.iter().enumerate() {
            a = a.wrapping_add(u32::from(c).wrapping_mul(rows[k][j].into()));
        }
        narrow[PAD + j] = ((a.wrapping_add(1 << (shift - 1)) >> shift) as u16 as i16) ^ i16::MIN;
    }
    pad_row(narrow, w, edge);
    // SAFETY: as above.
    let done = unsafe { horizontal(narrow, filter, 16, w, step, out) };
    let start = PAD - filter.len() / 2;
    for (i, o) in out.iter_mut().enumerate().skip(done) {
        let j = i * step;
        let mut a = 0u32;
        for (k, &c) in filter.iter().enumerate() {
            let v = u32::from((narrow[start + j + k] ^ i16::MIN) as u16);
            a = a.wrapping_add(u32::from(c).wrapping_mul(v));
        }
        *o = (a.wrapping_add(1 << 15) >> 16) as u16;
    }
}
