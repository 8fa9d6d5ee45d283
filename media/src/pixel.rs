//! Planar YUV layouts, plane views and the pixel-format support rules.

use std::ffi::CStr;

use ffmpeg_next::ffi::{self, AVPixelFormat};
use serde::Serialize;

/// Chroma subsampling of a planar frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Chroma {
    /// Luma only.
    #[serde(rename = "mono")]
    Mono,
    /// Chroma halved in both directions.
    #[serde(rename = "4:2:0")]
    Cs420,
    /// Chroma halved horizontally.
    #[serde(rename = "4:2:2")]
    Cs422,
    /// Full-resolution chroma.
    #[serde(rename = "4:4:4")]
    Cs444,
}

impl Chroma {
    /// The horizontal and vertical chroma shifts (log2 of the subsampling factors).
    pub fn shifts(self) -> (u32, u32) {
        match self {
            Chroma::Mono | Chroma::Cs444 => (0, 0),
            Chroma::Cs420 => (1, 1),
            Chroma::Cs422 => (1, 0),
        }
    }

    /// How many planes a frame of this subsampling has.
    pub fn planes(self) -> usize {
        if self == Chroma::Mono { 1 } else { 3 }
    }
}

/// The layout every decoded video frame is delivered in: planar, 8 or 10 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PixelLayout {
    /// Chroma subsampling.
    pub chroma: Chroma,
    /// Bits per sample: 8 (stored in `u8`) or 10 (stored in the low bits of `u16`).
    pub bit_depth: u8,
}

impl PixelLayout {
    /// The FFmpeg pixel format with exactly this layout.
    pub fn av_format(self) -> AVPixelFormat {
        use AVPixelFormat::*;
        match (self.chroma, self.bit_depth) {
            (Chroma::Mono, 8) => AV_PIX_FMT_GRAY8,
            (Chroma::Cs420, 8) => AV_PIX_FMT_YUV420P,
            (Chroma::Cs422, 8) => AV_PIX_FMT_YUV422P,
            (Chroma::Cs444, 8) => AV_PIX_FMT_YUV444P,
            (Chroma::Mono, _) => AV_PIX_FMT_GRAY10LE,
            (Chroma::Cs420, _) => AV_PIX_FMT_YUV420P10LE,
            (Chroma::Cs422, _) => AV_PIX_FMT_YUV422P10LE,
            (Chroma::Cs444, _) => AV_PIX_FMT_YUV444P10LE,
        }
    }
}

/// What the media layer does with a decoder's pixel format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PixelSupport {
    /// Delivered as decoded, with no copy.
    Native(PixelLayout),
    /// Converted by swscale into this layout. `lossy` is true when bits are dropped (a source
    /// deeper than 10 bits).
    Convert {
        /// The layout frames are delivered in.
        layout: PixelLayout,
        /// True when the conversion reduces precision.
        lossy: bool,
    },
    /// Not usable as a video master.
    Unsupported(String),
}

/// Converts a raw pixel-format number into the enum, mapping out-of-range values to NONE.
pub fn pix_fmt_from_raw(raw: i32) -> AVPixelFormat {
    if (0..AVPixelFormat::AV_PIX_FMT_NB as i32).contains(&raw) {
        // SAFETY: the value is inside the enum's contiguous range 0..NB.
        unsafe { std::mem::transmute::<i32, AVPixelFormat>(raw) }
    } else {
        AVPixelFormat::AV_PIX_FMT_NONE
    }
}

/// FFmpeg's name of a pixel format.
pub fn pix_fmt_name(fmt: AVPixelFormat) -> String {
    // SAFETY: av_get_pix_fmt_name returns null or a static NUL-terminated string.
    unsafe {
        let p = ffi::av_get_pix_fmt_name(fmt);
        if p.is_null() {
            "none".into()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// Decides how frames of pixel format `fmt` reach the pipeline.
pub fn classify(fmt: AVPixelFormat) -> PixelSupport {
    use AVPixelFormat::*;
    let native = |chroma, bit_depth| PixelSupport::Native(PixelLayout { chroma, bit_depth });
    match fmt {
        AV_PIX_FMT_YUV420P | AV_PIX_FMT_YUVJ420P => return native(Chroma::Cs420, 8),
        AV_PIX_FMT_YUV422P | AV_PIX_FMT_YUVJ422P => return native(Chroma::Cs422, 8),
        AV_PIX_FMT_YUV444P | AV_PIX_FMT_YUVJ444P => return native(Chroma::Cs444, 8),
        AV_PIX_FMT_GRAY8 => return native(Chroma::Mono, 8),
        AV_PIX_FMT_YUV420P10LE => return native(Chroma::Cs420, 10),
        AV_PIX_FMT_YUV422P10LE => return native(Chroma::Cs422, 10),
        AV_PIX_FMT_YUV444P10LE => return native(Chroma::Cs444, 10),
        AV_PIX_FMT_GRAY10LE => return native(Chroma::Mono, 10),
        AV_PIX_FMT_NONE => return PixelSupport::Unsupported("no pixel format".into()),
        _ => {}
    }
    // SAFETY: av_pix_fmt_desc_get returns null or a pointer to a static descriptor.
    let desc = unsafe { ffi::av_pix_fmt_desc_get(fmt) };
    if desc.is_null() {
        return PixelSupport::Unsupported("unknown pixel format".into());
    }
    // SAFETY: checked non-null above; descriptors are immutable statics.
    let desc = unsafe { &*desc };
    let flags = desc.flags as i32;
    let name = pix_fmt_name(fmt);
    let unsupported = |why: &str| PixelSupport::Unsupported(why.into());
    if flags & ffi::AV_PIX_FMT_FLAG_HWACCEL != 0 {
        return unsupported("a hardware surface, not pixels");
    }
    if flags & ffi::AV_PIX_FMT_FLAG_PAL != 0 {
        return unsupported("palette-based images are not a video master format");
    }
    if flags & ffi::AV_PIX_FMT_FLAG_BITSTREAM != 0 {
        return unsupported("1-bit images are not a video master format");
    }
    if flags & ffi::AV_PIX_FMT_FLAG_BAYER != 0 {
        return unsupported("raw Bayer sensor data must be debayered before mastering");
    }
    if flags & ffi::AV_PIX_FMT_FLAG_FLOAT != 0 {
        return unsupported("floating-point pixels are not supported");
    }
    if name.starts_with("xyz") {
        return unsupported("CIE XYZ (cinema) pixels need a colour transform first");
    }
    let depth = desc.comp[0].depth;
    if !(1..=16).contains(&depth) {
        return unsupported("bit depth outside 1..16");
    }
    // SAFETY: plain query of a static table.
    if unsafe { ffi::sws_isSupportedInput(fmt) } == 0 {
        return unsupported("swscale cannot read it");
    }
    let is_rgb = flags & ffi::AV_PIX_FMT_FLAG_RGB != 0;
    let chroma = if desc.nb_components <= 2 && !is_rgb {
        Chroma::Mono
    } else if is_rgb {
        Chroma::Cs444
    } else {
        match (desc.log2_chroma_w, desc.log2_chroma_h) {
            (0, 0) => Chroma::Cs444,
            (1, 0) => Chroma::Cs422,
            (1, 1) => Chroma::Cs420,
            _ => return unsupported("chroma subsampling other than 4:2:0, 4:2:2 or 4:4:4"),
        }
    };
    let bit_depth = if depth <= 8 { 8 } else { 10 };
    PixelSupport::Convert {
        layout: PixelLayout { chroma, bit_depth },
        lossy: depth > 10,
    }
}

/// A read-only view of one image plane.
#[derive(Clone, Copy, Debug)]
pub struct Plane<'a, T> {
    data: &'a [T],
    stride: usize,
    width: usize,
    height: usize,
}

impl<'a, T> Plane<'a, T> {
    /// Wraps `data` as a plane of `width`×`height` samples whose rows start every `stride`
    /// samples. Returns `None` when `data` is too short or the stride narrower than the width.
    pub fn new(data: &'a [T], stride: usize, width: usize, height: usize) -> Option<Self> {
        let needed = if height == 0 {
            0
        } else {
            stride * (height - 1) + width
        };
        (stride >= width && data.len() >= needed).then_some(Self {
            data,
            stride,
            width,
            height,
        })
    }

    /// Width in samples.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Distance between row starts, in samples.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// One row, exactly `width` samples long.
    pub fn row(&self, y: usize) -> &'a [T] {
        let start = y * self.stride;
        &self.data[start..start + self.width]
    }

    /// All rows, top to bottom.
    pub fn rows(&self) -> impl Iterator<Item = &'a [T]> + '_ {
        (0..self.height).map(|y| self.row(y))
    }
}

/// A plane of either bit depth.
#[derive(Clone, Copy, Debug)]
pub enum PlaneRef<'a> {
    /// 8-bit samples.
    U8(Plane<'a, u8>),
    /// 10-bit samples in `u16`.
    U16(Plane<'a, u16>),
}

impl PlaneRef<'_> {
    /// Width in samples.
    pub fn width(&self) -> usize {
        match self {
            PlaneRef::U8(p) => p.width(),
            PlaneRef::U16(p) => p.width(),
        }
    }

    /// Height in rows.
    pub fn height(&self) -> usize {
        match self {
            PlaneRef::U8(p) => p.height(),
            PlaneRef::U16(p) => p.height(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AVPixelFormat::*;

    #[test]
    fn classifies_the_formats_masters_come_in() {
        let layout = |chroma, bit_depth| PixelLayout { chroma, bit_depth };
        assert_eq!(
            classify(AV_PIX_FMT_YUV420P),
            PixelSupport::Native(layout(Chroma::Cs420, 8))
        );
        assert_eq!(
            classify(AV_PIX_FMT_YUV422P10LE),
            PixelSupport::Native(layout(Chroma::Cs422, 10))
        );
        assert_eq!(
            classify(AV_PIX_FMT_NV12),
            PixelSupport::Convert {
                layout: layout(Chroma::Cs420, 8),
                lossy: false
            }
        );
        assert_eq!(
            classify(AV_PIX_FMT_RGB24),
            PixelSupport::Convert {
                layout: layout(Chroma::Cs444, 8),
                lossy: false
            }
        );
        assert_eq!(
            classify(AV_PIX_FMT_YUV444P12LE),
            PixelSupport::Convert {
                layout: layout(Chroma::Cs444, 10),
                lossy: true
            }
        );
        for bad in [
            AV_PIX_FMT_PAL8,
            AV_PIX_FMT_MONOBLACK,
            AV_PIX_FMT_BAYER_RGGB8,
            AV_PIX_FMT_NONE,
        ] {
            assert!(
                matches!(classify(bad), PixelSupport::Unsupported(_)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn plane_rejects_short_buffers() {
        let data = [0u8; 10];
        assert!(Plane::new(&data, 4, 4, 3).is_none());
        assert!(Plane::new(&data, 3, 4, 2).is_none());
        let p = Plane::new(&data, 4, 2, 3).unwrap();
        assert_eq!(p.row(2).len(), 2);
        assert_eq!(p.rows().count(), 3);
    }
}
