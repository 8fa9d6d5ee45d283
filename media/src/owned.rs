//! Pictures that own their samples, and resizing with swscale.

use ffmpeg_next::software::scaling;
use ffmpeg_next::util::frame;

use super::MediaError;
use super::pixel::{Chroma, PixelLayout, Plane, PlaneRef};
use super::video::VideoFrame;

/// Samples of one plane, tightly packed (the stride is the plane's width).
#[derive(Clone, Debug, PartialEq)]
pub enum Samples {
    /// 8-bit samples.
    U8(Vec<u8>),
    /// 10-bit samples.
    U16(Vec<u16>),
}

/// A decoded picture that owns its samples, so it can cross threads.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedFrame {
    /// Planar layout.
    pub layout: PixelLayout,
    /// Luma width.
    pub width: usize,
    /// Luma height.
    pub height: usize,
    /// The planes: luma, then Cb and Cr unless the layout is grey.
    pub planes: Vec<Samples>,
    /// Presentation timestamp of the source frame, in its stream's time base.
    pub pts: Option<i64>,
}

impl OwnedFrame {
    /// Width and height of plane `i`.
    pub fn plane_size(&self, i: usize) -> (usize, usize) {
        let (sx, sy) = if i == 0 {
            (0, 0)
        } else {
            self.layout.chroma.shifts()
        };
        (self.width.div_ceil(1 << sx), self.height.div_ceil(1 << sy))
    }

    /// A view of plane `i`.
    pub fn plane(&self, i: usize) -> Option<PlaneRef<'_>> {
        let (w, h) = self.plane_size(i);
        match self.planes.get(i)? {
            Samples::U8(v) => Plane::new(v, w, w, h).map(PlaneRef::U8),
            Samples::U16(v) => Plane::new(v, w, w, h).map(PlaneRef::U16),
        }
    }

    /// An empty frame, whose buffers [`VideoFrame::copy_to`] fills.
    pub fn empty() -> Self {
        Self {
            layout: PixelLayout {
                chroma: Chroma::Cs420,
                bit_depth: 8,
            },
            width: 0,
            height: 0,
            planes: Vec::new(),
            pts: None,
        }
    }
}

/// Copies the rows of `p` into `out`, packed, reusing its allocation.
fn pack<T: Copy>(p: &Plane<'_, T>, out: &mut Vec<T>) {
    out.clear();
    out.reserve(p.width() * p.height());
    for row in p.rows() {
        out.extend_from_slice(row);
    }
}

impl VideoFrame<'_> {
    /// Copies the picture out of the decoder.
    pub fn to_owned_frame(&self) -> OwnedFrame {
        let mut out = OwnedFrame::empty();
        self.copy_to(&mut out);
        out
    }

    /// Copies the picture into `out`, reusing its buffers where it can.
    pub fn copy_to(&self, out: &mut OwnedFrame) {
        let layout = self.layout();
        let n = layout.chroma.planes();
        out.planes.truncate(n);
        for i in 0..n {
            let Some(p) = self.plane(i) else {
                out.planes.truncate(i);
                break;
            };
            if out.planes.len() == i {
                out.planes.push(Samples::U8(Vec::new()));
            }
            match (p, &mut out.planes[i]) {
                (PlaneRef::U8(p), Samples::U8(v)) => pack(&p, v),
                (PlaneRef::U16(p), Samples::U16(v)) => pack(&p, v),
                (PlaneRef::U8(p), slot) => {
                    let mut v = Vec::new();
                    pack(&p, &mut v);
                    *slot = Samples::U8(v);
                }
                (PlaneRef::U16(p), slot) => {
                    let mut v = Vec::new();
                    pack(&p, &mut v);
                    *slot = Samples::U16(v);
                }
            }
        }
        out.layout = layout;
        out.width = self.width();
        out.height = self.height();
        out.pts = self.pts;
    }
}

/// The interpolation of a [`Resizer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleFilter {
    /// Bicubic, the Netflix practice for VMAF upscaling. With accurate rounding, the same as
    /// FFmpeg's `scale=W:H:flags=bicubic+accurate_rnd`, and the same on every CPU; plain
    /// `flags=bicubic` takes SIMD shortcuts that move VMAF by about 0.01.
    Bicubic,
    /// Lanczos, for encoding.
    Lanczos,
}

/// Scales and converts decoded frames to one size and layout.
pub struct Resizer {
    width: u32,
    height: u32,
    layout: PixelLayout,
    filter: ScaleFilter,
    context: Option<(scaling::Context, (ffmpeg_next::format::Pixel, u32, u32))>,
    out: frame::Video,
}

// SAFETY: the swscale context is used only through `&mut Resizer` and has no thread affinity.
unsafe impl Send for Resizer {}

impl Resizer {
    /// A resizer to `width`×`height` in `layout`.
    pub fn new(width: u32, height: u32, layout: PixelLayout, filter: ScaleFilter) -> Self {
        Self {
            width,
            height,
            layout,
            filter,
            context: None,
            out: zeroed(frame::Video::new(layout.av_format().into(), width, height)),
        }
    }

    /// Scales `frame` and copies the result out.
    pub fn resize(&mut self, frame: &VideoFrame<'_>) -> Result<OwnedFrame, MediaError> {
        let mut out = OwnedFrame::empty();
        self.resize_into(frame, &mut out)?;
        Ok(out)
    }

    /// Scales `frame` into `out`, reusing its buffers.
    pub fn resize_into(
        &mut self,
        frame: &VideoFrame<'_>,
        out: &mut OwnedFrame,
    ) -> Result<(), MediaError> {
        let (layout, pts, time_base) = (self.layout, frame.pts, frame.time_base);
        let scaled = self.scale(frame)?;
        VideoFrame::wrap(scaled, layout, pts, time_base).copy_to(out);
        Ok(())
    }

    /// Scales `frame` into the resizer's own FFmpeg frame and lends it out, for an encoder.
    pub fn scale(&mut self, frame: &VideoFrame<'_>) -> Result<&mut frame::Video, MediaError> {
        let src = frame.ffmpeg_frame();
        let key = (src.format(), src.width(), src.height());
        if self.context.as_ref().map(|c| c.1) != Some(key) {
            self.context = None;
            let flags = match self.filter {
                ScaleFilter::Bicubic => scaling::Flags::BICUBIC,
                ScaleFilter::Lanczos => scaling::Flags::LANCZOS,
            } | scaling::Flags::ACCURATE_RND
                | scaling::Flags::BITEXACT;
            let ctx = scaling::Context::get(
                key.0,
                key.1,
                key.2,
                self.layout.av_format().into(),
                self.width,
                self.height,
                flags,
            )
            .map_err(|e| MediaError::Ffmpeg {
                what: "creating the scaler",
                reason: e.to_string(),
            })?;
            self.context = Some((ctx, key));
        }
        let Some((ctx, _)) = self.context.as_mut() else {
            return Err(MediaError::Ffmpeg {
                what: "scaling",
                reason: "no scaler".into(),
            });
        };
        ctx.run(src, &mut self.out)
            .map_err(|e| MediaError::Ffmpeg {
                what: "scaling",
                reason: e.to_string(),
            })?;
        Ok(&mut self.out)
    }
}

/// `frame` with every byte of its planes zero, the padding at the end of each row included:
/// the scaler writes only the picture, and encoders that read a little past it (in wide vector
/// loads) must not see whatever the allocator left there, or the same input would not always
/// encode to the same bytes.
fn zeroed(mut frame: frame::Video) -> frame::Video {
    for i in 0..frame.planes() {
        frame.data_mut(i).fill(0);
    }
    frame
}

impl Chroma {
    /// The chroma of a layout name such as `4:2:0`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "4:2:0" | "420" => Chroma::Cs420,
            "4:2:2" | "422" => Chroma::Cs422,
            "4:4:4" | "444" => Chroma::Cs444,
            "mono" | "gray" => Chroma::Mono,
            _ => return None,
        })
    }
}
