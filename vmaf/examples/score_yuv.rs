//! Scores two raw planar YUV 4:2:0 files and prints per-frame features as JSON lines, for
//! comparing with the libvmaf tool by hand.
//!
//! `cargo run --release -p vmaf --example score_yuv -- REF.yuv DIST.yuv WIDTH HEIGHT [BITS]`

use std::io::Read;

use vmaf::{Model, Options, Picture, Plane, PlaneView, Scorer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err("usage: score_yuv REF.yuv DIST.yuv WIDTH HEIGHT [BITS]".into());
    }
    let (w, h): (usize, usize) = (args[3].parse()?, args[4].parse()?);
    let bits: u8 = args.get(5).map(|b| b.parse()).transpose()?.unwrap_or(8);
    let bytes = if bits > 8 { 2 } else { 1 };
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let frame = (w * h + 2 * cw * ch) * bytes;
    let mut r = std::fs::File::open(&args[1])?;
    let mut d = std::fs::File::open(&args[2])?;
    let mut rb = vec![0u8; frame];
    let mut db = vec![0u8; frame];
    let mut scorer = Scorer::new(Model::v061(), Options { psnr: true, ..Options::default() });
    let mut out = Vec::new();
    while r.read_exact(&mut rb).is_ok() && d.read_exact(&mut db).is_ok() {
        let to16 = |b: &[u8]| -> Vec<u16> { b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect() };
        let (r16, d16) = (to16(&rb), to16(&db));
        let pic = |b8: &[u8], b16: &[u16]| -> Result<Picture<'static>, vmaf::Error> {
            // The buffers outlive the picture within this loop; leak-free copies keep the
            // example simple.
            let y = w * h;
            let c = cw * ch;
            if bits == 8 {
                let b: &'static [u8] = Box::leak(b8.to_vec().into_boxed_slice());
                Picture::new(
                    8,
                    Plane::U8(PlaneView::new(&b[..y], w, w, h)?),
                    Some([
                        Plane::U8(PlaneView::new(&b[y..y + c], cw, cw, ch)?),
                        Plane::U8(PlaneView::new(&b[y + c..], cw, cw, ch)?),
                    ]),
                )
            } else {
                let b: &'static [u16] = Box::leak(b16.to_vec().into_boxed_slice());
                Picture::new(
                    bits,
                    Plane::U16(PlaneView::new(&b[..y], w, w, h)?),
                    Some([
                        Plane::U16(PlaneView::new(&b[y..y + c], cw, cw, ch)?),
                        Plane::U16(PlaneView::new(&b[y + c..], cw, cw, ch)?),
                    ]),
                )
            }
        };
        out.extend(scorer.push(&pic(&rb, &r16)?, &pic(&db, &d16)?)?);
    }
    out.extend(scorer.finish());
    for s in out {
        println!("{}", serde_json::to_string(&s)?);
    }
    Ok(())
}
