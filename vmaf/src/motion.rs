//! Temporal information, as libvmaf's integer motion extractor computes it: the mean absolute
//! difference between consecutive low-passed luma frames, and `motion2`, the smaller of the
//! differences to the previous and to the next frame.

use crate::kernels::{self, Edge, Isa, LowPassRow};
use crate::picture::{PlaneView, Sample};

const FILTER: [u16; 5] = [3571, 16004, 26386, 16004, 3571];

/// Reflects an index into `0..n` the way libvmaf's motion filter does: mirrored without the
/// edge sample at the start, with it at the end.
#[inline(always)]
fn mirror(i: isize, n: usize) -> usize {
    let n = n as isize;
    (if i < 0 {
        -i
    } else if i >= n {
        n - (i - n + 1)
    } else {
        i
    }) as usize
}

/// Low-passes the luma of a frame (5-tap Gaussian, vertical then horizontal) into `out`, a
/// packed `w`×`h` buffer.
pub(crate) fn blur<T: Sample>(
    isa: Isa,
    src: &PlaneView<'_, T>,
    bpc: u32,
    buf: &mut LowPassRow,
    out: &mut Vec<u16>,
) {
    let (w, h) = (src.width(), src.height());
    // Every sample is written below.
    if out.len() != w * h {
        out.clear();
        out.resize(w * h, 0);
    }
    let mut taps: Vec<&[T]> = Vec::with_capacity(FILTER.len());
    for (i, row) in out.chunks_exact_mut(w).enumerate() {
        taps.clear();
        taps.extend((0..FILTER.len()).map(|k| src.row(mirror(i as isize - 2 + k as isize, h))));
        // libvmaf mirrors the right edge with the edge sample repeated.
        kernels::low_pass(isa, &taps, &FILTER, bpc, Edge::Repeat, buf, w, 1, row);
    }
}

/// The mean absolute difference of two blurred frames, normalised as libvmaf does.
pub(crate) fn sad_score(a: &[u16], b: &[u16], w: usize, h: usize) -> f64 {
    let mut sad = 0u64;
    for (ra, rb) in a.chunks_exact(w).zip(b.chunks_exact(w)) {
        let inner: u32 = ra
            .iter()
            .zip(rb)
            .map(|(&x, &y)| (i32::from(x) - i32::from(y)).unsigned_abs())
            .sum();
        sad += u64::from(inner);
    }
    f64::from((sad as f64 / 256.0) as f32 / (w * h) as u32 as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_matches_libvmaf_edges() {
        assert_eq!(mirror(-2, 10), 2);
        assert_eq!(mirror(-1, 10), 1);
        assert_eq!(mirror(10, 10), 9);
        assert_eq!(mirror(11, 10), 8);
    }

    #[test]
    fn flat_frames_have_no_motion() {
        let a = vec![128u8; 64 * 48];
        let p = PlaneView::new(&a, 64, 64, 48).unwrap();
        let (mut t, mut x, mut y) = (Default::default(), Vec::new(), Vec::new());
        blur(Isa::Portable, &p, 8, &mut t, &mut x);
        blur(Isa::detect(), &p, 8, &mut t, &mut y);
        assert_eq!(sad_score(&x, &y, 64, 48), 0.0);
        assert!(x.iter().all(|&v| v == 128 * 256));
    }
}
