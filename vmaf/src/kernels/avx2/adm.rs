//! AVX2 twins of the ADM row kernels in `kernels::dwt`.

use std::arch::x86_64::*;

use std::ops::Range;

use super::exponent;
use crate::adm::{DecoupleRow, DivTable};
use crate::kernels::cm::{CmParams, CmRows};
use crate::kernels::dwt::{self, DWT_HI, DWT_LO, DWT_LO_SUM, Round};
use crate::picture::Sample;

use super::{as_u8, as_u16};

/// Two 16-bit coefficients repeated as the pairs `vpmaddwd` multiplies.
#[inline]
#[target_feature(enable = "avx2")]
fn pair(a: i32, b: i32) -> __m256i {
    _mm256_set1_epi32((b << 16) | (a & 0xffff))
}

/// Sixteen samples as signed 16-bit lanes.
trait Load16: Sample {
    /// # Safety
    /// `p` must point to sixteen readable samples; AVX2 must be available.
    unsafe fn load16(p: *const Self) -> __m256i;
}

impl Load16 for u8 {
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load16(p: *const Self) -> __m256i {
        // SAFETY: the caller guarantees sixteen readable bytes.
        unsafe { _mm256_cvtepu8_epi16(_mm_loadu_si128(p as *const __m128i)) }
    }
}

impl Load16 for u16 {
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load16(p: *const Self) -> __m256i {
        // SAFETY: the caller guarantees sixteen readable u16.
        unsafe { _mm256_loadu_si256(p as *const __m256i) }
    }
}

/// # Safety
/// AVX2 must be available. Samples must fit 15 bits (`shift <= 15`).
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn dwt_vertical<T: Sample>(
    rows: [&[T]; 4],
    shift: u32,
    lo: &mut [i16],
    hi: &mut [i16],
    w: usize,
) {
    let n = w - w % 16;
    let as8 = [
        as_u8(rows[0]),
        as_u8(rows[1]),
        as_u8(rows[2]),
        as_u8(rows[3]),
    ];
    let as16 = [
        as_u16(rows[0]),
        as_u16(rows[1]),
        as_u16(rows[2]),
        as_u16(rows[3]),
    ];
    if let [Some(a), Some(b), Some(c), Some(d)] = as8 {
        // SAFETY: AVX2 is enabled here; every row holds w samples.
        unsafe { dwt_vertical_w::<u8>([a, b, c, d], shift, lo, hi, n) }
    } else if let [Some(a), Some(b), Some(c), Some(d)] = as16 {
        // SAFETY: as above.
        unsafe { dwt_vertical_w::<u16>([a, b, c, d], shift, lo, hi, n) }
    }
    dwt::vertical(rows, shift, lo, hi, n..w);
}

#[target_feature(enable = "avx2")]
unsafe fn dwt_vertical_w<T: Load16>(
    rows: [&[T]; 4],
    shift: u32,
    lo: &mut [i16],
    hi: &mut [i16],
    n: usize,
) {
    let add = 1i32 << (shift - 1);
    let (lo01, lo23) = (pair(DWT_LO[0], DWT_LO[1]), pair(DWT_LO[2], DWT_LO[3]));
    let (hi01, hi23) = (pair(DWT_HI[0], DWT_HI[1]), pair(DWT_HI[2], DWT_HI[3]));
    let lo_bias = _mm256_set1_epi32(add - DWT_LO_SUM * add);
    let hi_bias = _mm256_set1_epi32(add);
    let count = _mm_cvtsi32_si128(shift as i32);
    let mut j = 0;
    while j < n {
        // SAFETY: j + 16 <= n <= w and every row holds w samples; lo and hi hold w values.
        unsafe {
            let s = [
                T::load16(rows[0].as_ptr().add(j)),
                T::load16(rows[1].as_ptr().add(j)),
                T::load16(rows[2].as_ptr().add(j)),
                T::load16(rows[3].as_ptr().add(j)),
            ];
            // Columns 0-3 and 8-11 in `l`, 4-7 and 12-15 in `h` (the unpacks work per lane).
            let (p01l, p01h) = (
                _mm256_unpacklo_epi16(s[0], s[1]),
                _mm256_unpackhi_epi16(s[0], s[1]),
            );
            let (p23l, p23h) = (
                _mm256_unpacklo_epi16(s[2], s[3]),
                _mm256_unpackhi_epi16(s[2], s[3]),
            );
            let l = _mm256_packs_epi32(
                taps4(p01l, p23l, lo01, lo23, lo_bias, count),
                taps4(p01h, p23h, lo01, lo23, lo_bias, count),
            );
            let h = _mm256_packs_epi32(
                taps4(p01l, p23l, hi01, hi23, hi_bias, count),
                taps4(p01h, p23h, hi01, hi23, hi_bias, count),
            );
            _mm256_storeu_si256(lo.as_mut_ptr().add(j) as *mut __m256i, l);
            _mm256_storeu_si256(hi.as_mut_ptr().add(j) as *mut __m256i, h);
        }
        j += 16;
    }
}

/// `(p01·c01 + p23·c23 + bias) >> count` of interleaved 16-bit pairs, in 32-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn taps4(
    p01: __m256i,
    p23: __m256i,
    c01: __m256i,
    c23: __m256i,
    bias: __m256i,
    count: __m128i,
) -> __m256i {
    let v = _mm256_add_epi32(_mm256_madd_epi16(p01, c01), _mm256_madd_epi16(p23, c23));
    _mm256_sra_epi32(_mm256_add_epi32(v, bias), count)
}

/// Eight outputs of the horizontal pass starting at output `j`: Q16-rounded sums of the taps
/// at columns `2j - 1 .. 2j + 2`.
///
/// # Safety
/// Columns `2j - 1 .. 2j + 16` of `src` must be readable.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn eight(src: &[i16], j: usize, c01: __m256i, c23: __m256i) -> __m256i {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let p = src.as_ptr().add(2 * j - 1);
        let a = _mm256_loadu_si256(p as *const __m256i);
        let b = _mm256_loadu_si256(p.add(2) as *const __m256i);
        let s = _mm256_add_epi32(_mm256_madd_epi16(a, c01), _mm256_madd_epi16(b, c23));
        _mm256_srai_epi32(_mm256_add_epi32(s, _mm256_set1_epi32(32768)), 16)
    }
}

/// Sixteen outputs of one band starting at output `j`, stored in order.
///
/// # Safety
/// Columns `2j - 1 .. 2j + 32` of `src` and outputs `j .. j + 16` of `dst` must exist.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn sixteen(src: &[i16], j: usize, c01: __m256i, c23: __m256i, dst: &mut [i16]) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let packed = _mm256_packs_epi32(eight(src, j, c01, c23), eight(src, j + 8, c01, c23));
        let ordered = _mm256_permute4x64_epi64::<0b11_01_10_00>(packed);
        _mm256_storeu_si256(dst.as_mut_ptr().add(j) as *mut __m256i, ordered);
    }
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn dwt_horizontal(lo: &[i16], hi: &[i16], w: usize, out: [&mut [i16]; 4]) {
    let bw = w.div_ceil(2);
    // Outputs 1.. read columns 2j-1 .. 2j+2 with no mirroring while 2j + 2 < w; a block of
    // sixteen outputs reads up to column 2(j + 15) + 16, which must stay inside the row.
    let first = 1;
    let mut last = first;
    while last + 16 <= bw && 2 * (last + 15) + 16 < w {
        last += 16;
    }
    let [a, v, h, d] = out;
    let (lo01, lo23) = (pair(DWT_LO[0], DWT_LO[1]), pair(DWT_LO[2], DWT_LO[3]));
    let (hi01, hi23) = (pair(DWT_HI[0], DWT_HI[1]), pair(DWT_HI[2], DWT_HI[3]));
    let mut j = first;
    while j < last {
        // SAFETY: for outputs j..j+16 the loads cover columns 2j-1 .. 2j+32 < w (checked when
        // choosing `last`); outputs hold bw values.
        unsafe {
            sixteen(lo, j, lo01, lo23, a);
            sixteen(lo, j, hi01, hi23, v);
            sixteen(hi, j, lo01, lo23, h);
            sixteen(hi, j, hi01, hi23, d);
        }
        j += 16;
    }
    dwt::horizontal(lo, hi, w, [&mut *a, &mut *v, &mut *h, &mut *d], 0..first);
    dwt::horizontal(lo, hi, w, [a, v, h, d], last..bw);
}

/// `(x + add) >> shift` of signed 64-bit lanes (AVX2 has no arithmetic 64-bit shift).
#[inline]
#[target_feature(enable = "avx2")]
fn round_shift64(x: __m256i, r: Round) -> __m256i {
    let x = _mm256_add_epi64(x, _mm256_set1_epi64x(r.add));
    let neg = _mm256_cmpgt_epi64(_mm256_setzero_si256(), x);
    let count = _mm_cvtsi32_si128(r.shift as i32);
    _mm256_xor_si256(_mm256_srl_epi64(_mm256_xor_si256(x, neg), count), neg)
}

/// Σ c_k · s_k of four 32-bit tap vectors as 64-bit products: even columns, then odd.
#[inline]
#[target_feature(enable = "avx2")]
fn taps64(s: [__m256i; 4], c: &[__m256i; 4]) -> (__m256i, __m256i) {
    let mut even = _mm256_setzero_si256();
    let mut odd = _mm256_setzero_si256();
    for k in 0..4 {
        even = _mm256_add_epi64(even, _mm256_mul_epi32(s[k], c[k]));
        odd = _mm256_add_epi64(odd, _mm256_mul_epi32(_mm256_srli_epi64(s[k], 32), c[k]));
    }
    (even, odd)
}

/// Even and odd 64-bit results, truncated to 32 bits, back in column order.
#[inline]
#[target_feature(enable = "avx2")]
fn interleave32(even: __m256i, odd: __m256i) -> __m256i {
    _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64(odd, 32))
}

fn coefs64(c: [i32; 4]) -> [__m256i; 4] {
    // SAFETY: only called from AVX2 code; set1 needs no feature beyond AVX.
    c.map(|v| unsafe { _mm256_set1_epi64x(i64::from(v)) })
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn vertical32(
    rows: [&[i32]; 4],
    r: Round,
    lo: &mut [i32],
    hi: &mut [i32],
    w: usize,
) {
    let n = w - w % 8;
    let (cl, ch) = (coefs64(DWT_LO), coefs64(DWT_HI));
    let mut j = 0;
    while j < n {
        // SAFETY: j + 8 <= n <= w; rows, lo and hi hold w values.
        unsafe {
            let s =
                [0, 1, 2, 3].map(|k| _mm256_loadu_si256(rows[k].as_ptr().add(j) as *const __m256i));
            let (le, lo_odd) = taps64(s, &cl);
            let (he, ho) = taps64(s, &ch);
            let l = interleave32(round_shift64(le, r), round_shift64(lo_odd, r));
            let h = interleave32(round_shift64(he, r), round_shift64(ho, r));
            _mm256_storeu_si256(lo.as_mut_ptr().add(j) as *mut __m256i, l);
            _mm256_storeu_si256(hi.as_mut_ptr().add(j) as *mut __m256i, h);
        }
        j += 8;
    }
    dwt::vertical32(rows, r, lo, hi, n..w);
}

/// Four outputs of a 32-bit horizontal pass starting at output `j`, as 64-bit lanes.
///
/// # Safety
/// Columns `2j - 1 .. 2j + 9` of `src` must be readable.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn four32(src: &[i32], j: usize, c: &[__m256i; 4], r: Round) -> __m256i {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let p = _mm256_loadu_si256(src.as_ptr().add(2 * j - 1) as *const __m256i);
        let q = _mm256_loadu_si256(src.as_ptr().add(2 * j + 1) as *const __m256i);
        let mut s = _mm256_mul_epi32(p, c[0]);
        s = _mm256_add_epi64(s, _mm256_mul_epi32(_mm256_srli_epi64(p, 32), c[1]));
        s = _mm256_add_epi64(s, _mm256_mul_epi32(q, c[2]));
        s = _mm256_add_epi64(s, _mm256_mul_epi32(_mm256_srli_epi64(q, 32), c[3]));
        round_shift64(s, r)
    }
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn horizontal32(
    lo: &[i32],
    hi: &[i32],
    w: usize,
    r: Round,
    out: [&mut [i32]; 4],
) {
    let bw = w.div_ceil(2);
    // Outputs j..j+4 read columns 2j-1 .. 2j+9; stay clear of the mirrored end.
    let first = 1;
    let mut last = first;
    while last + 4 <= bw && 2 * (last + 4) + 9 < w {
        last += 4;
    }
    let (cl, ch) = (coefs64(DWT_LO), coefs64(DWT_HI));
    let pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0);
    let [a, v, h, d] = out;
    let mut j = first;
    while j < last {
        // SAFETY: columns 2j-1 .. 2j+9 < w by the choice of `last`; outputs hold bw values.
        unsafe {
            for (src, c, dst) in [
                (lo, &cl, &mut *a),
                (lo, &ch, &mut *v),
                (hi, &cl, &mut *h),
                (hi, &ch, &mut *d),
            ] {
                let s = four32(src, j, c, r);
                let packed = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(s, pick));
                _mm_storeu_si128(dst.as_mut_ptr().add(j) as *mut __m128i, packed);
            }
        }
        j += 4;
    }
    dwt::horizontal32(lo, hi, w, r, [&mut *a, &mut *v, &mut *h, &mut *d], 0..first);
    dwt::horizontal32(lo, hi, w, r, [a, v, h, d], last..bw);
}

/// Eight 16-bit band values widened to 32-bit lanes.
///
/// # Safety
/// `s[j..j + 8]` must exist.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn band8_i16(s: &[i16], j: usize) -> __m256i {
    // SAFETY: guaranteed by the caller.
    unsafe { _mm256_cvtepi16_epi32(_mm_loadu_si128(s.as_ptr().add(j) as *const __m128i)) }
}

/// Eight 32-bit band values.
///
/// # Safety
/// `s[j..j + 8]` must exist.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn band8_i32(s: &[i32], j: usize) -> __m256i {
    // SAFETY: guaranteed by the caller.
    unsafe { _mm256_loadu_si256(s.as_ptr().add(j) as *const __m256i) }
}

/// Adds the masked, cubed detail of band `b` for eight columns to `acc` (64-bit lanes).
#[inline]
#[target_feature(enable = "avx2")]
fn cube(x: __m256i, thr_shifted: __m256i, b: usize, p: &CmParams, acc: &mut __m256i) {
    let x = _mm256_max_epi32(
        _mm256_sub_epi32(_mm256_abs_epi32(x), thr_shifted),
        _mm256_setzero_si256(),
    );
    let sq = Round {
        add: p.add_sq[b],
        shift: p.shift_sq[b],
    };
    let cub = Round {
        add: p.add_cub[b],
        shift: p.shift_cub[b],
    };
    let x_odd = _mm256_srli_epi64(x, 32);
    // x >= 0, so its square is an unsigned product; the shifted square is truncated to 32 bits
    // and then multiplied as a signed value, as libvmaf does.
    let sq_even = round_shift64(_mm256_mul_epu32(x, x), sq);
    let sq_odd = round_shift64(_mm256_mul_epu32(x_odd, x_odd), sq);
    let v_even = round_shift64(_mm256_mul_epi32(sq_even, x), cub);
    let v_odd = round_shift64(_mm256_mul_epi32(sq_odd, x_odd), cub);
    *acc = _mm256_add_epi64(*acc, _mm256_add_epi64(v_even, v_odd));
}

/// The sum of four 64-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum64(v: __m256i) -> i64 {
    let s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    _mm_cvtsi128_si64(s) + _mm_extract_epi64::<1>(s)
}

/// The sum over band `b` of the eight neighbours of columns `j .. j + 8` in the rows above, at
/// and below (the centre excluded), read with `load`.
///
/// # Safety
/// AVX2 must be available; columns `j - 1 .. j + 9` must exist in every row.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn neighbours<T>(
    f: &[[&[T]; 3]; 3],
    b: usize,
    j: usize,
    load: unsafe fn(&[T], usize) -> __m256i,
) -> __m256i {
    let mut sum = _mm256_setzero_si256();
    for (ri, row) in f.iter().enumerate() {
        // SAFETY: guaranteed by the caller.
        unsafe {
            sum = _mm256_add_epi32(sum, load(row[b], j - 1));
            sum = _mm256_add_epi32(sum, load(row[b], j + 1));
            if ri != 1 {
                sum = _mm256_add_epi32(sum, load(row[b], j));
            }
        }
    }
    sum
}

/// # Safety
/// AVX2 must be available; `1 <= cols.start` and `cols.end <= w - 1` (interior columns).
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn cm_row16(
    rows: &CmRows<'_, i16>,
    p: &CmParams,
    w: usize,
    cols: Range<usize>,
) -> [i64; 3] {
    let n = cols.start + (cols.end - cols.start) / 8 * 8;
    let mut acc = [_mm256_setzero_si256(); 3];
    let rf = p.rf.map(|r| _mm256_set1_epi32(r as i32));
    let (k8738, k2048) = (_mm256_set1_epi32(8738), _mm256_set1_epi32(2048));
    let mut j = cols.start;
    while j < n {
        // SAFETY: 1 <= j - 1 and j + 8 <= n <= w - 1, so columns j-1 .. j+8 exist in every row.
        unsafe {
            let mut thr = _mm256_setzero_si256();
            for b in 0..3 {
                thr = _mm256_add_epi32(thr, neighbours(&rows.f, b, j, band8_i16));
                let a = _mm256_abs_epi32(band8_i16(rows.a[b], j));
                let c =
                    _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(a, k8738), k2048), 12);
                thr = _mm256_add_epi32(thr, _mm256_srai_epi32(_mm256_slli_epi32(c, 16), 16));
            }
            for b in 0..3 {
                let x = _mm256_mullo_epi32(band8_i16(rows.r[b], j), rf[b]);
                let sub = _mm_cvtsi32_si128(p.sub[b] as i32);
                cube(x, _mm256_sll_epi32(thr, sub), b, p, &mut acc[b]);
            }
        }
        j += 8;
    }
    let tail = super::super::cm::row(rows, p, w, n..cols.end);
    [0, 1, 2].map(|b| hsum64(acc[b]) + tail[b])
}

/// # Safety
/// AVX2 must be available; `1 <= cols.start`, `cols.end <= w - 1`, and every `p.rf` below 2^31.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn cm_row32(
    rows: &CmRows<'_, i32>,
    p: &CmParams,
    w: usize,
    cols: Range<usize>,
) -> [i64; 3] {
    let n = cols.start + (cols.end - cols.start) / 8 * 8;
    let mut acc = [_mm256_setzero_si256(); 3];
    let rf = p.rf.map(|r| _mm256_set1_epi64x(r));
    let one_by_15 = _mm256_set1_epi64x(286_331_153);
    let minus_half = _mm256_set1_epi64x(-(1i64 << 31));
    let scale = Round {
        add: 1 << 27,
        shift: 28,
    };
    let mut j = cols.start;
    while j < n {
        // SAFETY: 1 <= j - 1 and j + 8 <= n <= w - 1, so columns j-1 .. j+8 exist in every row.
        unsafe {
            let mut thr = _mm256_setzero_si256();
            for b in 0..3 {
                thr = _mm256_add_epi32(thr, neighbours(&rows.f, b, j, band8_i32));
                // ((1/15 in Q32) * |a| - 2^31) >> 32: the high half of the 64-bit value.
                let a = _mm256_abs_epi32(band8_i32(rows.a[b], j));
                let e = _mm256_add_epi64(_mm256_mul_epu32(a, one_by_15), minus_half);
                let o = _mm256_add_epi64(
                    _mm256_mul_epu32(_mm256_srli_epi64(a, 32), one_by_15),
                    minus_half,
                );
                thr = _mm256_add_epi32(
                    thr,
                    _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64(e, 32), o),
                );
            }
            for b in 0..3 {
                let r = band8_i32(rows.r[b], j);
                let e = round_shift64(_mm256_mul_epi32(r, rf[b]), scale);
                let o = round_shift64(_mm256_mul_epi32(_mm256_srli_epi64(r, 32), rf[b]), scale);
                cube(interleave32(e, o), thr, b, p, &mut acc[b]);
            }
        }
        j += 8;
    }
    let tail = super::super::cm::row(rows, p, w, n..cols.end);
    [0, 1, 2].map(|b| hsum64(acc[b]) + tail[b])
}

/// Four 16-bit values as doubles.
///
/// # Safety
/// `s[j..j + 4]` must exist.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn four_i16(s: &[i16], j: usize) -> __m256d {
    // SAFETY: guaranteed by the caller.
    unsafe {
        _mm256_cvtepi32_pd(_mm_cvtepi16_epi32(_mm_loadl_epi64(
            s.as_ptr().add(j) as *const __m128i
        )))
    }
}

/// Rounds doubles to single precision and back, as libvmaf's `(float)` casts do.
#[inline]
#[target_feature(enable = "avx2")]
fn via_f32(v: __m256d) -> __m256d {
    _mm256_cvtps_pd(_mm256_cvtpd_ps(v))
}

/// `floor(v / 32768)` of exact integer doubles: libvmaf's `>> 15`.
#[inline]
#[target_feature(enable = "avx2")]
fn shr15(v: __m256d) -> __m256d {
    _mm256_floor_pd(_mm256_mul_pd(v, _mm256_set1_pd(1.0 / 32768.0)))
}

/// Stores four doubles holding integers as 16-bit values, truncated like a C cast.
///
/// # Safety
/// `dst[j..j + 4]` must exist.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store4_i16(dst: &mut [i16], j: usize, v: __m128i) {
    let packed = _mm_packs_epi32(v, v);
    // SAFETY: guaranteed by the caller.
    unsafe { _mm_storel_epi64(dst.as_mut_ptr().add(j) as *mut __m128i, packed) }
}

/// The angle test of four columns: true where the (h, v) detail vectors of reference and
/// distorted are within one degree, with libvmaf's float roundings (the products are exact
/// in double for values below 2^26).
#[inline]
#[target_feature(enable = "avx2")]
fn within_one_degree(o: &[__m256d; 3], t: &[__m256d; 3]) -> __m256d {
    let cos_1deg_sq = _mm256_set1_pd(f64::from(
        ((1.0f64 * std::f64::consts::PI / 180.0).cos().powi(2)) as f32,
    ));
    let q4096 = _mm256_set1_pd(1.0 / 4096.0);
    let zero = _mm256_setzero_pd();
    let dot = _mm256_add_pd(_mm256_mul_pd(o[0], t[0]), _mm256_mul_pd(o[1], t[1]));
    let om = _mm256_add_pd(_mm256_mul_pd(o[0], o[0]), _mm256_mul_pd(o[1], o[1]));
    let tm = _mm256_add_pd(_mm256_mul_pd(t[0], t[0]), _mm256_mul_pd(t[1], t[1]));
    let dp = _mm256_mul_pd(via_f32(dot), q4096);
    let rhs = _mm256_mul_pd(
        _mm256_mul_pd(cos_1deg_sq, _mm256_mul_pd(via_f32(om), q4096)),
        _mm256_mul_pd(via_f32(tm), q4096),
    );
    _mm256_and_pd(
        _mm256_cmp_pd::<_CMP_GE_OQ>(dp, zero),
        _mm256_cmp_pd::<_CMP_GE_OQ>(_mm256_mul_pd(dp, dp), rhs),
    )
}

/// The restored coefficient of four columns of one band, given the gain `k` (Q15) already
/// clamped: `(k·o + 2^14) >> 15`, limited by the enhancement gain where the angle test holds.
#[inline]
#[target_feature(enable = "avx2")]
fn restored(ov: __m256d, tv: __m256d, k: __m256d, angle: __m256d, gain: __m256d) -> __m256d {
    let zero = _mm256_setzero_pd();
    let rst = shr15(_mm256_add_pd(_mm256_mul_pd(k, ov), _mm256_set1_pd(16384.0)));
    let k_pos = _mm256_and_pd(angle, _mm256_cmp_pd::<_CMP_GT_OQ>(k, zero));
    let pos = _mm256_and_pd(k_pos, _mm256_cmp_pd::<_CMP_GT_OQ>(ov, zero));
    let neg = _mm256_and_pd(k_pos, _mm256_cmp_pd::<_CMP_LT_OQ>(ov, zero));
    let scaled = _mm256_mul_pd(rst, gain);
    let lim_pos = _mm256_blendv_pd(tv, scaled, _mm256_cmp_pd::<_CMP_LT_OQ>(scaled, tv));
    let lim_neg = _mm256_blendv_pd(tv, scaled, _mm256_cmp_pd::<_CMP_GT_OQ>(scaled, tv));
    _mm256_blendv_pd(_mm256_blendv_pd(rst, lim_pos, pos), lim_neg, neg)
}

/// `2^30 / max(|o|, 1)`, truncated, with the sign of `o`: libvmaf's reciprocal table.
#[inline]
#[target_feature(enable = "avx2")]
fn reciprocal(abs: __m256d, negative: __m256d) -> __m256d {
    let recip = _mm256_floor_pd(_mm256_div_pd(
        _mm256_set1_pd(1_073_741_824.0),
        _mm256_max_pd(abs, _mm256_set1_pd(1.0)),
    ));
    _mm256_blendv_pd(recip, _mm256_sub_pd(_mm256_setzero_pd(), recip), negative)
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn decouple_row16(
    row: &DecoupleRow<'_, i16>,
    gain_limit: f64,
    div: &DivTable,
    out_r: &mut [&mut [i16]; 3],
    out_a: &mut [&mut [i16]; 3],
    cols: Range<usize>,
) {
    let n = cols.start + (cols.end - cols.start) / 4 * 4;
    let zero = _mm256_setzero_pd();
    let k_max = _mm256_set1_pd(32768.0);
    let half = _mm256_set1_pd(16384.0);
    let gain = _mm256_set1_pd(gain_limit);
    let mut j = cols.start;
    while j < n {
        // SAFETY: j + 4 <= n <= the row length, for every input and output row.
        unsafe {
            let o = [0, 1, 2].map(|b| four_i16(row.o[b], j));
            let t = [0, 1, 2].map(|b| four_i16(row.t[b], j));
            let angle = within_one_degree(&o, &t);
            for b in 0..3 {
                let (ov, tv) = (o[b], t[b]);
                let abs = _mm256_andnot_pd(_mm256_set1_pd(-0.0), ov);
                let recip = reciprocal(abs, _mm256_cmp_pd::<_CMP_LT_OQ>(ov, zero));
                let tmp = shr15(_mm256_add_pd(_mm256_mul_pd(recip, tv), half));
                let tmp = _mm256_blendv_pd(tmp, k_max, _mm256_cmp_pd::<_CMP_EQ_OQ>(ov, zero));
                let k = _mm256_min_pd(_mm256_max_pd(tmp, zero), k_max);
                let r_i = _mm256_cvttpd_epi32(restored(ov, tv, k, angle, gain));
                // The impairment wraps to 16 bits like libvmaf's int16 store.
                let t_i = _mm256_cvttpd_epi32(tv);
                let r16 = _mm_srai_epi32(_mm_slli_epi32(r_i, 16), 16);
                let a16 = _mm_srai_epi32(_mm_slli_epi32(_mm_sub_epi32(t_i, r16), 16), 16);
                store4_i16(out_r[b], j, r16);
                store4_i16(out_a[b], j, a16);
            }
        }
        j += 4;
    }
    crate::adm::decouple_row16(row, gain_limit, div, out_r, out_a, n..cols.end);
}

/// Four 32-bit values as doubles.
///
/// # Safety
/// `s[j..j + 4]` must exist.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn four_i32(s: &[i32], j: usize) -> (__m128i, __m256d) {
    // SAFETY: guaranteed by the caller.
    let v = unsafe { _mm_loadu_si128(s.as_ptr().add(j) as *const __m128i) };
    (v, _mm256_cvtepi32_pd(v))
}

/// Doubles `2^e` for integer exponents `e` in 64-bit lanes (normal range only).
#[inline]
#[target_feature(enable = "avx2")]
fn pow2(e: __m256i) -> __m256d {
    _mm256_castsi256_pd(_mm256_slli_epi64::<52>(_mm256_add_epi64(
        e,
        _mm256_set1_epi64x(1023),
    )))
}

/// The 32-bit bands of scales 1 to 3. Blocks whose coefficients all lie below 2^22 in
/// magnitude run in doubles, where every product is exact; others (which natural video does
/// not produce) go to the portable twin.
///
/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn decouple_row32(
    row: &DecoupleRow<'_, i32>,
    gain_limit: f64,
    div: &DivTable,
    out_r: &mut [&mut [i32]; 3],
    out_a: &mut [&mut [i32]; 3],
    cols: Range<usize>,
) {
    let zero = _mm256_setzero_pd();
    let k_max = _mm256_set1_pd(32768.0);
    let gain = _mm256_set1_pd(gain_limit);
    let big = _mm_set1_epi32((1 << 22) - 1);
    let mut j = cols.start;
    while j + 4 <= cols.end {
        // SAFETY: j + 4 <= cols.end <= the row length, for every input and output row.
        unsafe {
            let o = [0, 1, 2].map(|b| four_i32(row.o[b], j));
            let t = [0, 1, 2].map(|b| four_i32(row.t[b], j));
            let large = o.iter().chain(&t).fold(_mm_setzero_si128(), |m, (v, _)| {
                _mm_or_si128(m, _mm_cmpgt_epi32(_mm_abs_epi32(*v), big))
            });
            if _mm_movemask_epi8(large) != 0 {
                crate::adm::decouple_row32(row, gain_limit, div, out_r, out_a, j..j + 4);
                j += 4;
                continue;
            }
            let (o, t) = (o.map(|v| v.1), t.map(|v| v.1));
            let angle = within_one_degree(&o, &t);
            for b in 0..3 {
                let (ov, tv) = (o[b], t[b]);
                let abs = _mm256_andnot_pd(_mm256_set1_pd(-0.0), ov);
                // Magnitudes of 2^15 and more are rounded to 15 significant bits, shift s.
                let e = _mm256_sub_epi64(exponent(abs), _mm256_set1_epi64x(14));
                let s = _mm256_and_si256(
                    e,
                    _mm256_castpd_si256(_mm256_cmp_pd::<_CMP_GE_OQ>(abs, k_max)),
                );
                let msb = _mm256_floor_pd(_mm256_mul_pd(
                    _mm256_add_pd(abs, _mm256_mul_pd(pow2(s), _mm256_set1_pd(0.5))),
                    pow2(_mm256_sub_epi64(_mm256_setzero_si256(), s)),
                ));
                let recip = reciprocal(msb, _mm256_cmp_pd::<_CMP_LT_OQ>(ov, zero));
                // ((recip · t) + 2^(14 + s)) >> (15 + s)
                let tmp = _mm256_floor_pd(_mm256_mul_pd(
                    _mm256_add_pd(
                        _mm256_mul_pd(recip, tv),
                        pow2(_mm256_add_epi64(s, _mm256_set1_epi64x(14))),
                    ),
                    pow2(_mm256_sub_epi64(_mm256_set1_epi64x(-15), s)),
                ));
                let tmp = _mm256_blendv_pd(tmp, k_max, _mm256_cmp_pd::<_CMP_EQ_OQ>(ov, zero));
                let k = _mm256_min_pd(_mm256_max_pd(tmp, zero), k_max);
                let r = _mm256_cvttpd_epi32(restored(ov, tv, k, angle, gain));
                let a = _mm_sub_epi32(_mm256_cvttpd_epi32(tv), r);
                _mm_storeu_si128(out_r[b].as_mut_ptr().add(j) as *mut __m128i, r);
                _mm_storeu_si128(out_a[b].as_mut_ptr().add(j) as *mut __m128i, a);
            }
        }
        j += 4;
    }
    crate::adm::decouple_row32(row, gain_limit, div, out_r, out_a, j..cols.end);
}
