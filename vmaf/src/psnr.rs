//! PSNR per plane, as libvmaf's `psnr` extractor computes it.

use crate::picture::{Plane, PlaneView, Sample};

/// The PSNR of one plane pair, capped at `6 * bpc + 12` dB.
pub(crate) fn plane(r: Plane<'_>, d: Plane<'_>, bpc: u32) -> Option<f64> {
    let sse = match (r, d) {
        (Plane::U8(r), Plane::U8(d)) => sse(&r, &d),
        (Plane::U16(r), Plane::U16(d)) => sse(&r, &d),
        _ => return None,
    };
    let (w, h) = (r.width(), r.height());
    // libvmaf uses 255 for 8-bit input and (1 << bpc) - 1 otherwise.
    let peak = if bpc == 8 {
        255.0
    } else {
        f64::from((1u32 << bpc) - 1)
    };
    let mse = sse as f64 / (w * h) as f64;
    let max_db = f64::from(6 * bpc + 12);
    Some((10.0 * (peak * peak / mse.max(1e-16)).log10()).min(max_db))
}

fn sse<T: Sample>(r: &PlaneView<'_, T>, d: &PlaneView<'_, T>) -> u64 {
    (0..r.height())
        .map(|y| {
            r.row(y)
                .iter()
                .zip(d.row(y))
                .map(|(&a, &b)| {
                    let e = i64::from(Into::<u32>::into(a)) - i64::from(Into::<u32>::into(b));
                    (e * e) as u64
                })
                .sum::<u64>()
        })
        .sum()
}
