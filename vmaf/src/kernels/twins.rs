//! Each AVX2 kernel against its portable twin, through the same dispatch the scorer uses, on
//! random rows of every width around the vector lengths. Inputs stay inside the ranges the
//! features produce (the portable kernels would overflow beyond them, as libvmaf would).

use proptest::prelude::*;

use super::{Isa, VifRows, cm};
use crate::adm::{self, DecoupleRow, DivTable};
use crate::vif::{Accum, FILTERS, Log2Table};

fn have_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// A small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn vec<T>(&mut self, n: usize, lo: i64, hi: i64, f: impl Fn(i64) -> T) -> Vec<T> {
        (0..n).map(|_| f(self.range(lo, hi))).collect()
    }
}

/// The restored and additive bands of one row through a decoupling kernel.
fn decoupled<T: Copy + Default>(
    kernel: adm::DecoupleKernel<T>,
    isa: Isa,
    row: &DecoupleRow<'_, T>,
    gain: f64,
    div: &DivTable,
) -> ([Vec<T>; 3], [Vec<T>; 3]) {
    let w = row.o[0].len();
    let mut r = [0, 1, 2].map(|_| vec![T::default(); w]);
    let mut a = [0, 1, 2].map(|_| vec![T::default(); w]);
    let [r0, r1, r2] = &mut r;
    let [a0, a1, a2] = &mut a;
    kernel(
        isa,
        row,
        gain,
        div,
        &mut [r0, r1, r2],
        &mut [a0, a1, a2],
        0..w,
    );
    (r, a)
}

/// Rows of samples shaped like pictures: noise, flat areas, ramps, or the reference with a
/// little noise added, so that every branch of the statistic is taken.
fn sample_rows(
    rng: &mut Rng,
    n: usize,
    w: usize,
    max: i64,
    like: Option<&[Vec<u16>]>,
) -> Vec<Vec<u16>> {
    let kind = rng.range(0, 3);
    (0..n)
        .map(|k| {
            (0..w)
                .map(|j| {
                    let v = match (like, kind) {
                        (Some(r), 0 | 1) => r[k][j] as i64 + rng.range(-3, 3),
                        (_, 2) => max / 2,
                        (_, 3) => (j as i64 * 7 + k as i64 * 3) % (max + 1),
                        _ => rng.range(0, max),
                    };
                    v.clamp(0, max) as u16
                })
                .collect()
        })
        .collect()
}

fn refs<T>(v: &[Vec<T>]) -> Vec<&[T]> {
    v.iter().map(|r| &r[..]).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn vif_statistic_agrees(w in 1usize..70, scale in 0usize..4, ten_bit: bool, seed: u64) {
        prop_assume!(have_avx2());
        let mut rng = Rng::new(seed);
        let taps = FILTERS[scale].len();
        let (max, pass) = match (scale, ten_bit) {
            (0, false) => (255, super::Pass { filter: FILTERS[0], mu_shift: 8, sq_shift: 0 }),
            (0, true) => (1023, super::Pass { filter: FILTERS[0], mu_shift: 10, sq_shift: 4 }),
            _ => (65535, super::Pass { filter: FILTERS[scale], mu_shift: 16, sq_shift: 16 }),
        };
        let r = sample_rows(&mut rng, taps, w, max, None);
        let d = sample_rows(&mut rng, taps, w, max, Some(&r));
        let mut rows = VifRows::default();
        rows.ready(w);
        super::vif_vertical(Isa::Portable, &refs(&r), &refs(&d), pass, &mut rows, w);
        super::vif_horizontal(Isa::Portable, &mut rows, w, FILTERS[scale]);
        let log2 = Log2Table::new();
        for limit in [100.0, 1.0] {
            let (mut a, mut b) = (Accum::default(), Accum::default());
            super::vif_statistic(Isa::Portable, &rows, w, &log2, limit, &mut a);
            super::vif_statistic(Isa::Avx2, &rows, w, &log2, limit, &mut b);
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn dwt16_agrees(w in 2usize..80, bpc in prop::sample::select(vec![8u32, 10, 12]), seed: u64) {
        prop_assume!(have_avx2());
        let mut rng = Rng::new(seed);
        let max = (1i64 << bpc) - 1;
        let src: Vec<Vec<u16>> = (0..4).map(|_| rng.vec(w, 0, max, |v| v as u16)).collect();
        let run = |isa| {
            let (mut lo, mut hi) = (vec![0i16; w], vec![0i16; w]);
            let rows = [0, 1, 2, 3].map(|k| &src[k][..]);
            if bpc == 8 {
                let bytes: Vec<Vec<u8>> = src.iter().map(|r| r.iter().map(|&v| v as u8).collect()).collect();
                super::dwt_vertical(isa, [0, 1, 2, 3].map(|k| &bytes[k][..]), bpc, &mut lo, &mut hi, w);
            } else {
                super::dwt_vertical(isa, rows, bpc, &mut lo, &mut hi, w);
            }
            let bw = w.div_ceil(2);
            let mut out = [vec![0i16; bw], vec![0i16; bw], vec![0i16; bw], vec![0i16; bw]];
            let [a, v, h, d] = &mut out;
            super::dwt_horizontal(isa, &lo, &hi, w, [a, v, h, d]);
            (lo, hi, out)
        };
        prop_assert_eq!(run(Isa::Portable), run(Isa::Avx2));
    }

    #[test]
    fn dwt32_agrees(w in 2usize..60, scale in 1usize..4, seed: u64) {
        prop_assume!(have_avx2());
        let mut rng = Rng::new(seed);
        // Approximation bands grow by about 1.4 per pass; 2^24 is well past what 16-bit
        // input reaches at scale 3.
        let bound = 1i64 << 24;
        let src: Vec<Vec<i32>> = (0..4).map(|_| rng.vec(w, -bound, bound, |v| v as i32)).collect();
        let run = |isa| {
            let (mut lo, mut hi) = (vec![0i32; w], vec![0i32; w]);
            let rows = [0, 1, 2, 3].map(|k| &src[k][..]);
            super::dwt_vertical32(isa, rows, adm::DWT32_V[scale - 1], &mut lo, &mut hi, w);
            let bw = w.div_ceil(2);
            let mut out = [vec![0i32; bw], vec![0i32; bw], vec![0i32; bw], vec![0i32; bw]];
            let [a, v, h, d] = &mut out;
            super::dwt_horizontal32(isa, &lo, &hi, w, adm::DWT32_H[scale - 1], [a, v, h, d]);
            (lo, hi, out)
        };
        prop_assert_eq!(run(Isa::Portable), run(Isa::Avx2));
    }

    #[test]
    fn contrast_masking_agrees(w in 3usize..70, scale in 0usize..4, seed: u64) {
        prop_assume!(have_avx2());
        let mut rng = Rng::new(seed);
        // Three rows (above, at, below) of three bands each, a little beyond the magnitudes
        // real detail reaches (the bands of 16-bit pictures stay within 2^17 at scales 1 to 3),
        // with the impairment smaller so that detail clears the masking threshold.
        let (rb, ab) = if scale == 0 { (8192, 512) } else { (1 << 20, 1 << 10) };
        let band = |rng: &mut Rng, b: i64| -> [Vec<i64>; 3] { [0, 1, 2].map(|_| rng.vec(w, -b, b, |v| v)) };
        let r = band(&mut rng, rb);
        let a = band(&mut rng, ab);
        let f = [0, 1, 2].map(|_| band(&mut rng, ab).map(|b| b.into_iter().map(|v| v.abs()).collect::<Vec<_>>()));
        let cols = 1..w - 1;
        if scale == 0 {
            let c = |v: &Vec<i64>| v.iter().map(|&x| x as i16).collect::<Vec<_>>();
            let (r, a, f) = (r.each_ref().map(c), a.each_ref().map(c), f.each_ref().map(|row| row.each_ref().map(c)));
            let rows = cm::CmRows {
                r: r.each_ref().map(|v| &v[..]),
                a: a.each_ref().map(|v| &v[..]),
                f: f.each_ref().map(|row| row.each_ref().map(|v| &v[..])),
            };
            let p = adm::cm16_params(w);
            let portable = super::cm_row16(Isa::Portable, &rows, &p, w, cols.clone());
            prop_assert_eq!(portable, super::cm_row16(Isa::Avx2, &rows, &p, w, cols));
            prop_assert!(w < 10 || portable.iter().all(|&s| s > 0), "{:?}", portable);
        } else {
            let c = |v: &Vec<i64>| v.iter().map(|&x| x as i32).collect::<Vec<_>>();
            let (r, a, f) = (r.each_ref().map(c), a.each_ref().map(c), f.each_ref().map(|row| row.each_ref().map(c)));
            let rows = cm::CmRows {
                r: r.each_ref().map(|v| &v[..]),
                a: a.each_ref().map(|v| &v[..]),
                f: f.each_ref().map(|row| row.each_ref().map(|v| &v[..])),
            };
            let p = adm::cm32_params(scale, w);
            // The AVX2 kernel multiplies by the factors as signed 32-bit values.
            prop_assert!(p.rf.iter().all(|&r| r < 1 << 31));
            let portable = super::cm_row32(Isa::Portable, &rows, &p, w, cols.clone());
            prop_assert_eq!(portable, super::cm_row32(Isa::Avx2, &rows, &p, w, cols));
            prop_assert!(w < 10 || portable.iter().all(|&s| s > 0), "{:?}", portable);
        }
    }

    #[test]
    fn decoupling_agrees(w in 1usize..40, seed: u64, small: bool) {
        prop_assume!(have_avx2());
        let mut rng = Rng::new(seed);
        let div = DivTable::new();
        // Small values exercise zero coefficients and the angle test; full-range ones the
        // 16-bit wrap of the impairment.
        let b = if small { 4 } else { 32767 };
        let o: [Vec<i16>; 3] = [0, 1, 2].map(|_| rng.vec(w, -b, b, |v| v as i16));
        let t: [Vec<i16>; 3] = [0, 1, 2].map(|k| {
            o[k].iter().map(|&v| (v as i64 + rng.range(-b / 2, b / 2)).clamp(-32768, 32767) as i16).collect()
        });
        let row = DecoupleRow { o: o.each_ref().map(|v| &v[..]), t: t.each_ref().map(|v| &v[..]) };
        for gain in [100.0, 1.0] {
            let run = |isa| decoupled(super::decouple_row16, isa, &row, gain, &div);
            prop_assert_eq!(run(Isa::Portable), run(Isa::Avx2));
        }
    }

    #[test]
    fn decoupling32_agrees(w in 1usize..40, seed: u64, range in 0usize..4) {
        prop_assume!(have_avx2());
        let mut rng = Rng::new(seed);
        let div = DivTable::new();
        // Small values, values around the 15-bit normalisation, the largest the fast path
        // takes, and beyond it (the portable fallback inside the AVX2 kernel).
        let b = [4i64, 70_000, (1 << 22) - 1, 1 << 30][range];
        let o: [Vec<i32>; 3] = [0, 1, 2].map(|_| rng.vec(w, -b, b, |v| v as i32));
        let t: [Vec<i32>; 3] = [0, 1, 2].map(|k| {
            o[k].iter().map(|&v| (v as i64 + rng.range(-b / 2, b / 2)).clamp(-b, b) as i32).collect()
        });
        let row = DecoupleRow { o: o.each_ref().map(|v| &v[..]), t: t.each_ref().map(|v| &v[..]) };
        for gain in [100.0, 1.0, 1.5] {
            let run = |isa| decoupled(super::decouple_row32, isa, &row, gain, &div);
            prop_assert_eq!(run(Isa::Portable), run(Isa::Avx2));
        }
    }

    #[test]
    fn low_pass_filters_agree(w in 1usize..70, ten_bit: bool, scale in 0usize..3, seed: u64) {
        prop_assume!(have_avx2());
        let mut rng = Rng::new(seed);
        // The motion blur on picture samples, and VIF's decimation filters on picture samples
        // (scale 0) or on 16-bit decimated samples (scales 1 and 2).
        let (max, bpc) = match (scale, ten_bit) {
            (0, false) => (255, 8),
            (0, true) => (1023, 10),
            _ => (65535, 16),
        };
        let src = sample_rows(&mut rng, 9, w, max, None);
        let blur = [3571u16, 16004, 26386, 16004, 3571];
        for (filter, edge, step) in [
            (&blur[..], super::Edge::Repeat, 1),
            (FILTERS[scale + 1], super::Edge::Mirror, 2),
            (FILTERS[scale + 1], super::Edge::Mirror, 1),
        ] {
            let taps: Vec<&[u16]> = src.iter().take(filter.len()).map(|r| &r[..]).collect();
            let bytes: Vec<Vec<u8>> = src.iter().map(|r| r.iter().map(|&v| v as u8).collect()).collect();
            let taps8: Vec<&[u8]> = bytes.iter().take(filter.len()).map(|r| &r[..]).collect();
            let run = |isa| {
                let mut buf = super::LowPassRow::default();
                let mut out = vec![0u16; w / step];
                if bpc == 8 {
                    super::low_pass(isa, &taps8, filter, bpc, edge, &mut buf, w, step, &mut out);
                } else {
                    super::low_pass(isa, &taps, filter, bpc, edge, &mut buf, w, step, &mut out);
                }
                out
            };
            prop_assert_eq!(run(Isa::Portable), run(Isa::Avx2), "{:?} step {}", edge, step);
        }
    }
}

#[test]
fn decoupling_takes_every_branch_of_the_gain_limit() {
    if !have_avx2() {
        return;
    }
    // Distorted detail parallel to and larger than the reference: enhancement, which the gain
    // limit clips, for positive and negative coefficients.
    let o: &[i16] = &[100, -100, 50, -50, 0, 7, -7, 1];
    let t: &[i16] = &[300, -300, 60, -60, 9, 7, -8, 32767];
    let row = DecoupleRow {
        o: [o; 3],
        t: [t; 3],
    };
    let div = DivTable::new();
    for gain in [1.0, 1.5, 100.0] {
        let run = |isa| {
            let (mut r, mut a) = (
                [0, 1, 2].map(|_| vec![0i16; 8]),
                [0, 1, 2].map(|_| vec![0i16; 8]),
            );
            let [r0, r1, r2] = &mut r;
            let [a0, a1, a2] = &mut a;
            super::decouple_row16(
                isa,
                &row,
                gain,
                &div,
                &mut [r0, r1, r2],
                &mut [a0, a1, a2],
                0..8,
            );
            (r, a)
        };
        assert_eq!(run(Isa::Portable), run(Isa::Avx2), "gain limit {gain}");
    }
}
