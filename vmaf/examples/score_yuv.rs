//! Scores two raw planar YUV 4:2:0 files and prints per-frame scores as JSON lines, for
//! comparing with the libvmaf tool by hand. Frames are read into memory first; the scoring
//! time and rate go to stderr.
//!
//! `cargo run --release -p vmaf --example score_yuv -- REF.yuv DIST.yuv WIDTH HEIGHT [BITS]`

use std::time::Instant;

use vmaf::{Model, Options, Picture, Plane, PlaneView, Scorer};

enum Frame {
    U8(Vec<u8>),
    U16(Vec<u16>),
}

fn frames(path: &str, size: usize, bits: u8) -> std::io::Result<Vec<Frame>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes
        .chunks_exact(size)
        .map(|f| {
            if bits > 8 {
                Frame::U16(
                    f.chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect(),
                )
            } else {
                Frame::U8(f.to_vec())
            }
        })
        .collect())
}

fn picture(f: &Frame, w: usize, h: usize, bits: u8) -> Result<Picture<'_>, vmaf::Error> {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (y, c) = (w * h, cw * ch);
    match f {
        Frame::U8(b) => Picture::new(
            8,
            Plane::U8(PlaneView::new(&b[..y], w, w, h)?),
            Some([
                Plane::U8(PlaneView::new(&b[y..y + c], cw, cw, ch)?),
                Plane::U8(PlaneView::new(&b[y + c..], cw, cw, ch)?),
            ]),
        ),
        Frame::U16(b) => Picture::new(
            bits,
            Plane::U16(PlaneView::new(&b[..y], w, w, h)?),
            Some([
                Plane::U16(PlaneView::new(&b[y..y + c], cw, cw, ch)?),
                Plane::U16(PlaneView::new(&b[y + c..], cw, cw, ch)?),
            ]),
        ),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err("usage: score_yuv REF.yuv DIST.yuv WIDTH HEIGHT [BITS]".into());
    }
    let (w, h): (usize, usize) = (args[3].parse()?, args[4].parse()?);
    let bits: u8 = args.get(5).map(|b| b.parse()).transpose()?.unwrap_or(8);
    let size = (w * h + 2 * w.div_ceil(2) * h.div_ceil(2)) * if bits > 8 { 2 } else { 1 };
    let refs = frames(&args[1], size, bits)?;
    let dists = frames(&args[2], size, bits)?;
    let psnr = std::env::var_os("NO_PSNR").is_none();
    let mut scorer = Scorer::new(
        Model::v061(),
        Options {
            psnr,
            ssim: psnr,
            ..Options::default()
        },
    );
    let start = Instant::now();
    let mut out = Vec::new();
    for (r, d) in refs.iter().zip(&dists) {
        out.extend(scorer.push(&picture(r, w, h, bits)?, &picture(d, w, h, bits)?)?);
    }
    out.extend(scorer.finish());
    let t = start.elapsed().as_secs_f64();
    eprintln!(
        "{} frames in {t:.3} s: {:.2} fps",
        out.len(),
        out.len() as f64 / t
    );
    for s in out {
        println!("{}", serde_json::to_string(&s)?);
    }
    Ok(())
}
