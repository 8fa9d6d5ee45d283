//! Per-frame statistics for shot detection, taken from the decoded planes.
//!
//! A frame is reduced to a coarse grid of block means for Y, Cb and Cr, and a luma histogram.
//! Block means average away grain and noise, so two frames of the same noisy shot look alike,
//! while a change of scene moves most blocks. Only a few rows per block are read, whole, which
//! keeps the cost far below that of decoding.

use media::{Plane, PlaneRef, VideoFrame};

/// Histogram bins for luma.
pub(crate) const HIST_BINS: usize = 32;
/// Grid columns; rows follow the aspect ratio.
const GRID_COLUMNS: usize = 32;
/// Rows read per block, at most.
const SAMPLES_PER_SIDE: usize = 4;
/// The histogram reads every HIST_STEP-th sample of every HIST_STEP-th row read.
const HIST_STEP: usize = 4;

/// The statistics of one frame.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Features {
    y: Vec<f32>,
    u: Vec<f32>,
    v: Vec<f32>,
    hist: [f32; HIST_BINS],
}

/// How two frames differ; every part is in [0, 1].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Difference {
    /// Mean absolute difference of the luma block means.
    pub luma: f32,
    /// Mean absolute difference of the chroma block means.
    pub chroma: f32,
    /// Half the L1 distance between the luma histograms.
    pub histogram: f32,
}

impl Difference {
    /// One score: block luma and chroma changes, with the histogram change as a tie-breaker for
    /// scenes whose layout is similar but whose tones differ.
    pub fn score(&self) -> f32 {
        self.luma + 0.5 * self.chroma + 0.25 * self.histogram
    }
}

impl Features {
    /// Takes the statistics of a decoded frame. `None` if the frame has no readable luma.
    pub(crate) fn of(frame: &VideoFrame<'_>) -> Option<Self> {
        let luma = frame.luma()?;
        let (gw, gh) = grid_size(luma.width(), luma.height());
        let max = f32::from((1u16 << frame.layout().bit_depth) - 1);
        let mut hist = [0f32; HIST_BINS];
        let y = grid_means(&luma, gw, gh, max, Some(&mut hist));
        let total: f32 = hist.iter().sum();
        if total > 0.0 {
            hist.iter_mut().for_each(|h| *h /= total);
        }
        let chroma = |i| frame.plane(i).map(|p| grid_means(&p, gw, gh, max, None));
        Some(Self {
            y,
            u: chroma(1).unwrap_or_default(),
            v: chroma(2).unwrap_or_default(),
            hist,
        })
    }

    /// How `self` and `other` differ.
    pub(crate) fn difference(&self, other: &Self) -> Difference {
        let mad = |a: &[f32], b: &[f32]| -> f32 {
            if a.is_empty() || a.len() != b.len() {
                return 0.0;
            }
            a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
        };
        // A resolution change gives grids of another size: treat it as total change.
        if self.y.len() != other.y.len() {
            return Difference {
                luma: 1.0,
                chroma: 1.0,
                histogram: 1.0,
            };
        }
        Difference {
            luma: mad(&self.y, &other.y),
            chroma: 0.5 * (mad(&self.u, &other.u) + mad(&self.v, &other.v)),
            histogram: 0.5
                * self
                    .hist
                    .iter()
                    .zip(&other.hist)
                    .map(|(a, b)| (a - b).abs())
                    .sum::<f32>(),
        }
    }
}

fn grid_size(w: usize, h: usize) -> (usize, usize) {
    let gw = GRID_COLUMNS.min(w.max(1));
    let gh = ((GRID_COLUMNS * h) as f64 / w.max(1) as f64).round() as usize;
    (gw, gh.clamp(1, GRID_COLUMNS).min(h.max(1)))
}

fn grid_means(
    plane: &PlaneRef<'_>,
    gw: usize,
    gh: usize,
    max: f32,
    hist: Option<&mut [f32; HIST_BINS]>,
) -> Vec<f32> {
    match plane {
        PlaneRef::U8(p) => means(p, gw, gh, max, hist),
        PlaneRef::U16(p) => means(p, gw, gh, max, hist),
    }
}

fn means<T: Copy + Into<u32>>(
    p: &Plane<'_, T>,
    gw: usize,
    gh: usize,
    max: f32,
    hist: Option<&mut [f32; HIST_BINS]>,
) -> Vec<f32> {
    let (w, h) = (p.width(), p.height());
    let mut out = vec![0f32; gw * gh];
    if w == 0 || h == 0 {
        return out;
    }
    // Whole rows are read, but only every `step_y`-th row; the histogram takes every HIST_STEP-th sample of every HIST_STEP-th
    // of those rows, which is thousands of samples, plenty for 32 bins.
    let step_y = (h / gh).div_ceil(SAMPLES_PER_SIDE).max(1);
    let edges: Vec<usize> = (0..=gw).map(|bx| (bx * w / gw).min(w)).collect();
    // Samples map to bins by a shift: 8-bit >> 3 and 10-bit >> 5 give 32 bins.
    let bin_shift = (max + 1.0).log2().round() as u32 - HIST_BINS.trailing_zeros();
    let mut counts = [0u32; HIST_BINS];
    // Column sums over the rows read of one band of blocks: adding whole rows element-wise
    // vectorises well; each band is then folded into its blocks once.
    // At most SAMPLES_PER_SIDE rows of 10-bit samples meet in one column: u16 is enough, and
    // halves the memory traffic.
    let mut columns = vec![0u16; w];
    let mut sampled_rows = 0usize;
    for by in 0..gh {
        let (y0, y1) = (by * h / gh, ((by + 1) * h / gh).max(by * h / gh + 1).min(h));
        columns.iter_mut().for_each(|c| *c = 0);
        let mut rows = 0u32;
        for y in (y0..y1).step_by(step_y) {
            let row = p.row(y);
            add_row(&mut columns, row);
            if hist.is_some() && sampled_rows.is_multiple_of(HIST_STEP) {
                for &s in row.iter().step_by(HIST_STEP) {
                    let s: u32 = s.into();
                    counts[((s >> bin_shift) as usize).min(HIST_BINS - 1)] += 1;
                }
            }
            sampled_rows += 1;
            rows += 1;
        }
        for bx in 0..gw {
            let sum: u64 = columns[edges[bx]..edges[bx + 1]]
                .iter()
                .map(|&c| u32::from(c))
                .sum::<u32>()
                .into();
            let n = u64::from(rows) * (edges[bx + 1] - edges[bx]) as u64;
            out[by * gw + bx] = if n == 0 {
                0.0
            } else {
                sum as f32 / n as f32 / max
            };
        }
    }
    if let Some(hist) = hist {
        for (h, c) in hist.iter_mut().zip(counts) {
            *h += c as f32;
        }
    }
    out
}

/// `columns[i] += row[i]`, in fixed-size chunks so that the compiler vectorises it.
fn add_row<T: Copy + Into<u32>>(columns: &mut [u16], row: &[T]) {
    const LANES: usize = 16;
    let n = columns.len().min(row.len());
    let (cols, rows) = (&mut columns[..n], &row[..n]);
    let mut c = cols.chunks_exact_mut(LANES);
    let mut r = rows.chunks_exact(LANES);
    for (cc, rr) in (&mut c).zip(&mut r) {
        for i in 0..LANES {
            cc[i] = cc[i].wrapping_add(rr[i].into() as u16);
        }
    }
    for (cc, &rr) in c.into_remainder().iter_mut().zip(r.remainder()) {
        *cc = cc.wrapping_add(rr.into() as u16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane_features(data: &[u8], w: usize, h: usize) -> Features {
        let p = PlaneRef::U8(Plane::new(data, w, w, h).unwrap());
        let (gw, gh) = grid_size(w, h);
        let mut hist = [0f32; HIST_BINS];
        let y = grid_means(&p, gw, gh, 255.0, Some(&mut hist));
        let total: f32 = hist.iter().sum();
        hist.iter_mut().for_each(|x| *x /= total);
        Features {
            y,
            u: vec![],
            v: vec![],
            hist,
        }
    }

    #[test]
    fn identical_frames_do_not_differ_and_inverted_ones_do() {
        let (w, h) = (64, 36);
        // A dark gradient and its inverse, a bright one: layout and tones both change.
        let a: Vec<u8> = (0..w * h).map(|i| (i % 120) as u8).collect();
        let b: Vec<u8> = a.iter().map(|x| 255 - x).collect();
        let fa = plane_features(&a, w, h);
        assert_eq!(fa.difference(&fa).score(), 0.0);
        let d = fa.difference(&plane_features(&b, w, h));
        assert!(d.luma > 0.1 && d.histogram > 0.1, "{d:?}");
    }

    #[test]
    fn noise_averages_out() {
        let (w, h) = (640, 360);
        let mut seed = 1u32;
        let mut noise = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            96 + (seed >> 24) as u8 / 4
        };
        let a: Vec<u8> = (0..w * h).map(|_| noise()).collect();
        let b: Vec<u8> = (0..w * h).map(|_| noise()).collect();
        // Per pixel these frames differ by about 0.08 on average; block means by far less,
        // well under the 0.06 cut threshold.
        let d = plane_features(&a, w, h).difference(&plane_features(&b, w, h));
        assert!(d.luma < 0.02, "{d:?}");
    }

    #[test]
    fn grid_follows_the_aspect_ratio() {
        assert_eq!(grid_size(1920, 1080), (32, 18));
        assert_eq!(grid_size(640, 480), (32, 24));
        assert_eq!(grid_size(20000, 8), (32, 1));
        assert_eq!(grid_size(8, 8), (8, 8));
    }
}
