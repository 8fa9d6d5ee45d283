//! The inner loops, in plain Rust. Each is written so that it can be checked against a SIMD
//! twin (see `simd`) and against libvmaf's own C.

use crate::picture::{PlaneView, Sample};
use crate::vif::{Accum, Log2Table, Shifts, reflect, round_shift_u64, statistic};

/// Per-row scratch of the VIF filters.
#[derive(Default)]
pub(crate) struct VifRows {
    pub mu1: Vec<u16>,
    pub mu2: Vec<u16>,
    pub xx: Vec<u32>,
    pub yy: Vec<u32>,
    pub xy: Vec<u32>,
    acc_mu1: Vec<u32>,
    acc_mu2: Vec<u32>,
    acc_xx: Vec<u64>,
    acc_yy: Vec<u64>,
    acc_xy: Vec<u64>,
}

impl VifRows {
    fn ready(&mut self, w: usize) {
        fn fit<T: Default + Clone>(v: &mut Vec<T>, w: usize) {
            v.clear();
            v.resize(w, T::default());
        }
        fit(&mut self.mu1, w);
        fit(&mut self.mu2, w);
        fit(&mut self.xx, w);
        fit(&mut self.yy, w);
        fit(&mut self.xy, w);
        fit(&mut self.acc_mu1, w);
        fit(&mut self.acc_mu2, w);
        fit(&mut self.acc_xx, w);
        fit(&mut self.acc_yy, w);
        fit(&mut self.acc_xy, w);
    }
}

/// The vertical pass of VIF at row `i`: filtered means and second moments of every column.
pub(crate) fn vif_vertical<T: Sample>(
    r: &PlaneView<'_, T>,
    d: &PlaneView<'_, T>,
    i: usize,
    filter: &[u16],
    shifts: Shifts,
    rows: &mut VifRows,
) {
    let (w, h) = (r.width(), r.height());
    rows.ready(w);
    let half = filter.len() / 2;
    for (k, &c) in filter.iter().enumerate() {
        let y = reflect(i as isize - half as isize + k as isize, h);
        let (rr, dr) = (r.row(y), d.row(y));
        let c32 = u32::from(c);
        for j in 0..w {
            let (a, b): (u32, u32) = (rr[j].into(), dr[j].into());
            let (ca, cb) = (c32 * a, c32 * b);
            rows.acc_mu1[j] += ca;
            rows.acc_mu2[j] += cb;
            rows.acc_xx[j] += u64::from(ca) * u64::from(a);
            rows.acc_yy[j] += u64::from(cb) * u64::from(b);
            rows.acc_xy[j] += u64::from(ca) * u64::from(b);
        }
    }
    for j in 0..w {
        rows.mu1[j] = round_shift_u64(u64::from(rows.acc_mu1[j]), shifts.mu) as u16;
        rows.mu2[j] = round_shift_u64(u64::from(rows.acc_mu2[j]), shifts.mu) as u16;
        rows.xx[j] = round_shift_u64(rows.acc_xx[j], shifts.sq) as u32;
        rows.yy[j] = round_shift_u64(rows.acc_yy[j], shifts.sq) as u32;
        rows.xy[j] = round_shift_u64(rows.acc_xy[j], shifts.sq) as u32;
    }
}

/// The horizontal pass of VIF over the row left by [`vif_vertical`], feeding every pixel to the
/// statistic.
pub(crate) fn vif_horizontal_statistic(
    rows: &VifRows,
    w: usize,
    filter: &[u16],
    log2: &Log2Table,
    gain_limit: f64,
    acc: &mut Accum,
) {
    let half = filter.len() as isize / 2;
    for j in 0..w {
        let (mut m1, mut m2) = (0u32, 0u32);
        let (mut xx, mut yy, mut xy) = (0u64, 0u64, 0u64);
        for (k, &c) in filter.iter().enumerate() {
            let x = reflect(j as isize - half + k as isize, w);
            let c32 = u32::from(c);
            m1 += c32 * u32::from(rows.mu1[x]);
            m2 += c32 * u32::from(rows.mu2[x]);
            xx += u64::from(c) * u64::from(rows.xx[x]);
            yy += u64::from(c) * u64::from(rows.yy[x]);
            xy += u64::from(c) * u64::from(rows.xy[x]);
        }
        statistic(
            m1,
            m2,
            round_shift_u64(xx, 16) as u32,
            round_shift_u64(yy, 16) as u32,
            round_shift_u64(xy, 16) as u32,
            log2,
            gain_limit,
            acc,
        );
    }
}

/// One output row of the decimation between scales: row `i` of both images low-passed with
/// `filter` (vertical shift `shift`, horizontal 16), every other column kept.
#[allow(clippy::too_many_arguments)]
pub(crate) fn vif_decimate_row<T: Sample>(
    r: &PlaneView<'_, T>,
    d: &PlaneView<'_, T>,
    i: usize,
    filter: &[u16],
    shift: u32,
    rows: &mut VifRows,
    out_r: &mut [u16],
    out_d: &mut [u16],
) {
    let (w, h) = (r.width(), r.height());
    rows.ready(w);
    let half = filter.len() / 2;
    for (k, &c) in filter.iter().enumerate() {
        let y = reflect(i as isize - half as isize + k as isize, h);
        let (rr, dr) = (r.row(y), d.row(y));
        let c32 = u32::from(c);
        for j in 0..w {
            rows.acc_mu1[j] += c32 * Into::<u32>::into(rr[j]);
            rows.acc_mu2[j] += c32 * Into::<u32>::into(dr[j]);
        }
    }
    for j in 0..w {
        rows.mu1[j] = round_shift_u64(u64::from(rows.acc_mu1[j]), shift) as u16;
        rows.mu2[j] = round_shift_u64(u64::from(rows.acc_mu2[j]), shift) as u16;
    }
    let half = half as isize;
    for (o, (or, od)) in out_r.iter_mut().zip(out_d.iter_mut()).enumerate() {
        let j = 2 * o as isize;
        let (mut a, mut b) = (0u32, 0u32);
        for (k, &c) in filter.iter().enumerate() {
            let x = reflect(j - half + k as isize, w);
            a += u32::from(c) * u32::from(rows.mu1[x]);
            b += u32::from(c) * u32::from(rows.mu2[x]);
        }
        *or = ((a + 32768) >> 16) as u16;
        *od = ((b + 32768) >> 16) as u16;
    }
}
