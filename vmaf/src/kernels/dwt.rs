//! Portable row kernels of ADM's first wavelet transform (16-bit bands).

/// Daubechies-2 low-pass taps, Q16 with libvmaf's rounding.
pub(crate) const DWT_LO: [i32; 4] = [15826, 27411, 7345, -4240];
/// Daubechies-2 high-pass taps.
pub(crate) const DWT_HI: [i32; 4] = [-4240, -7345, 27411, -15826];
/// Sum of the low-pass taps.
pub(crate) const DWT_LO_SUM: i32 = 46342;

/// The vertical pass for one output row: low and high pass of the four source rows, centred
/// around zero, with `shift` (the bit depth) and its rounding.
pub(crate) fn vertical<T: Copy + Into<u32>>(
    rows: [&[T]; 4],
    shift: u32,
    lo: &mut [i16],
    hi: &mut [i16],
    cols: std::ops::Range<usize>,
) {
    let add = 1i32 << (shift - 1);
    for j in cols {
        let s = rows.map(|r| Into::<u32>::into(r[j]) as i32);
        let (mut a, mut b) = (0i32, 0i32);
        for k in 0..4 {
            a += DWT_LO[k] * s[k];
            b += DWT_HI[k] * s[k];
        }
        a -= DWT_LO_SUM * add;
        lo[j] = ((a + add) >> shift) as i16;
        hi[j] = ((b + add) >> shift) as i16;
    }
}

/// Source columns of the four taps for output `j` of a transform over `n` samples, mirrored as
/// libvmaf does (whole-sample at the start, half-sample at the end).
#[inline(always)]
pub(crate) fn taps(j: usize, n: usize) -> [usize; 4] {
    let n = n as isize;
    let base = 2 * j as isize;
    [base - 1, base, base + 1, base + 2].map(|k| {
        let k = if k < 0 { -k } else { k };
        (if k >= n { 2 * n - k - 1 } else { k }).clamp(0, n - 1) as usize
    })
}

/// The horizontal pass for one output row: the four bands at outputs `cols`.
pub(crate) fn horizontal(
    lo: &[i16],
    hi: &[i16],
    w: usize,
    out: [&mut [i16]; 4],
    cols: std::ops::Range<usize>,
) {
    let [a_out, v_out, h_out, d_out] = out;
    for j in cols {
        let x = taps(j, w);
        let (mut a, mut v, mut hh, mut d) = (0i32, 0i32, 0i32, 0i32);
        for k in 0..4 {
            let (l, h) = (i32::from(lo[x[k]]), i32::from(hi[x[k]]));
            a += DWT_LO[k] * l;
            v += DWT_HI[k] * l;
            hh += DWT_LO[k] * h;
            d += DWT_HI[k] * h;
        }
        a_out[j] = ((a + 32768) >> 16) as i16;
        v_out[j] = ((v + 32768) >> 16) as i16;
        h_out[j] = ((hh + 32768) >> 16) as i16;
        d_out[j] = ((d + 32768) >> 16) as i16;
    }
}

/// Rounding and shift of one pass of the 32-bit transforms (scales 1 to 3).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Round {
    pub add: i64,
    pub shift: u32,
}

/// The vertical pass of a 32-bit transform for one output row.
pub(crate) fn vertical32(
    rows: [&[i32]; 4],
    r: Round,
    lo: &mut [i32],
    hi: &mut [i32],
    cols: std::ops::Range<usize>,
) {
    for j in cols {
        let s = rows.map(|row| i64::from(row[j]));
        let (mut a, mut b) = (0i64, 0i64);
        for k in 0..4 {
            a += i64::from(DWT_LO[k]) * s[k];
            b += i64::from(DWT_HI[k]) * s[k];
        }
        lo[j] = ((a + r.add) >> r.shift) as i32;
        hi[j] = ((b + r.add) >> r.shift) as i32;
    }
}

/// The horizontal pass of a 32-bit transform for one output row, at outputs `cols`.
pub(crate) fn horizontal32(
    lo: &[i32],
    hi: &[i32],
    w: usize,
    r: Round,
    out: [&mut [i32]; 4],
    cols: std::ops::Range<usize>,
) {
    let [a_out, v_out, h_out, d_out] = out;
    for j in cols {
        let x = taps(j, w);
        let (mut a, mut v, mut hh, mut d) = (0i64, 0i64, 0i64, 0i64);
        for k in 0..4 {
            let (l, h) = (i64::from(lo[x[k]]), i64::from(hi[x[k]]));
            a += i64::from(DWT_LO[k]) * l;
            v += i64::from(DWT_HI[k]) * l;
            hh += i64::from(DWT_LO[k]) * h;
            d += i64::from(DWT_HI[k]) * h;
        }
        a_out[j] = ((a + r.add) >> r.shift) as i32;
        v_out[j] = ((v + r.add) >> r.shift) as i32;
        h_out[j] = ((hh + r.add) >> r.shift) as i32;
        d_out[j] = ((d + r.add) >> r.shift) as i32;
    }
}
