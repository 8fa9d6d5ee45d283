//! Portable row kernel of ADM's contrast masking: for each pixel, the masking threshold from
//! the 3×3 neighbourhood of the CSF-filtered impairment over the three bands, and the cubed
//! restored detail above it.

use std::ops::Range;

/// The rows one output row reads.
pub(crate) struct CmRows<'a, T> {
    /// Restored detail (h, v, d) at the row.
    pub r: [&'a [T]; 3],
    /// CSF-weighted impairment (h, v, d) at the row.
    pub a: [&'a [T]; 3],
    /// CSF-filtered impairment: rows above, at and below, each (h, v, d).
    pub f: [[&'a [T]; 3]; 3],
}

/// A row kernel: the masked, cubed detail summed per band over some columns of a row.
pub(crate) type RowKernel<T> =
    fn(super::Isa, &CmRows<'_, T>, &CmParams, usize, Range<usize>) -> [i64; 3];

/// Fixed-point constants of one scale.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CmParams {
    /// 1/quantisation step per band (Q21/Q23 at scale 0, Q32 at scales 1 to 3).
    pub rf: [i64; 3],
    /// Left shift of the threshold per band.
    pub sub: [u32; 3],
    pub add_sq: [i64; 3],
    pub shift_sq: [u32; 3],
    pub add_cub: [i64; 3],
    pub shift_cub: [u32; 3],
}

/// How the two band widths differ.
pub(crate) trait CmBand: Copy + Into<i64> {
    /// The threshold's centre term from the impairment itself.
    fn centre(a: Self) -> i32;
    /// The restored detail scaled by 1/quantisation step.
    fn scaled(r: Self, rf: i64) -> i32;
}

impl CmBand for i16 {
    #[inline(always)]
    fn centre(a: Self) -> i32 {
        i32::from(((8738 * i32::from(a).abs() + 2048) >> 12) as i16)
    }

    #[inline(always)]
    fn scaled(r: Self, rf: i64) -> i32 {
        i32::from(r) * rf as i32
    }
}

impl CmBand for i32 {
    #[inline(always)]
    fn centre(a: Self) -> i32 {
        // libvmaf's rounding constant here is (int32_t)(1u << 31), that is -2^31.
        ((286_331_153 * i64::from(a.unsigned_abs()) - (1i64 << 31)) >> 32) as i32
    }

    #[inline(always)]
    fn scaled(r: Self, rf: i64) -> i32 {
        ((i64::from(r) * rf + (1 << 27)) >> 28) as i32
    }
}

/// Neighbour of `j` in a row of `n`: 1 left of the first, the last right of the last.
#[inline(always)]
pub(crate) fn neighbour(j: usize, delta: isize, n: usize) -> usize {
    match (j, delta) {
        (0, -1) => 1,
        (j, 1) if j == n - 1 => n - 1,
        (j, d) => (j as isize + d) as usize,
    }
}

/// The masking threshold at column `j`.
#[inline(always)]
pub(crate) fn threshold<T: CmBand>(rows: &CmRows<'_, T>, w: usize, j: usize) -> i32 {
    let cols = [neighbour(j, -1, w), j, neighbour(j, 1, w)];
    let mut thr = 0i32;
    for b in 0..3 {
        let mut sum = 0i32;
        for (ri, row) in rows.f.iter().enumerate() {
            for (ci, &x) in cols.iter().enumerate() {
                sum += if ri == 1 && ci == 1 {
                    T::centre(rows.a[b][x])
                } else {
                    row[b][x].into() as i32
                };
            }
        }
        thr += sum;
    }
    thr
}

/// The masked, cubed detail of the columns `cols`, summed per band.
pub(crate) fn row<T: CmBand>(
    rows: &CmRows<'_, T>,
    p: &CmParams,
    w: usize,
    cols: Range<usize>,
) -> [i64; 3] {
    let mut inner = [0i64; 3];
    for j in cols {
        let thr = threshold(rows, w, j);
        for (b, sum) in inner.iter_mut().enumerate() {
            let x = T::scaled(rows.r[b][j], p.rf[b]);
            let x = (x.abs() - (thr << p.sub[b])).max(0);
            let x_sq = ((i64::from(x) * i64::from(x) + p.add_sq[b]) >> p.shift_sq[b]) as i32;
            *sum += (i64::from(x_sq) * i64::from(x) + p.add_cub[b]) >> p.shift_cub[b];
        }
    }
    inner
}
