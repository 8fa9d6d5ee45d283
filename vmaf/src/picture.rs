//! Borrowed picture planes: the only input the crate takes.

use crate::Error;

/// A read-only view of one plane of samples.
#[derive(Clone, Copy, Debug)]
pub struct PlaneView<'a, T> {
    data: &'a [T],
    stride: usize,
    width: usize,
    height: usize,
}

impl<'a, T: Copy> PlaneView<'a, T> {
    /// Wraps `data` as `width`×`height` samples whose rows start every `stride` samples.
    pub fn new(data: &'a [T], stride: usize, width: usize, height: usize) -> Result<Self, Error> {
        if width == 0 || height == 0 {
            return Err(Error::InvalidSize {
                width,
                height,
                reason: "empty plane",
            });
        }
        if stride < width {
            return Err(Error::InvalidStride { stride, width });
        }
        let needed = stride * (height - 1) + width;
        if data.len() < needed {
            return Err(Error::ShortPlane {
                len: data.len(),
                needed,
            });
        }
        Ok(Self {
            data,
            stride,
            width,
            height,
        })
    }

    /// A view of a tightly packed `width`×`height` buffer the crate made itself. Rows are
    /// sliced on use, so a short buffer panics rather than reading out of bounds.
    pub(crate) fn packed(data: &'a [T], width: usize, height: usize) -> Self {
        Self {
            data,
            stride: width,
            width,
            height,
        }
    }

    /// Width in samples.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Row `y`, exactly `width` samples.
    #[inline]
    pub fn row(&self, y: usize) -> &'a [T] {
        &self.data[y * self.stride..y * self.stride + self.width]
    }
}

/// A plane of 8-bit or high-bit-depth samples.
#[derive(Clone, Copy, Debug)]
pub enum Plane<'a> {
    /// 8-bit samples.
    U8(PlaneView<'a, u8>),
    /// 9- to 16-bit samples in `u16` (the picture's bit depth says how many bits are used).
    U16(PlaneView<'a, u16>),
}

impl<'a> Plane<'a> {
    /// The 8-bit samples, if these are.
    pub fn as_u8(&self) -> Option<PlaneView<'a, u8>> {
        match self {
            Plane::U8(p) => Some(*p),
            Plane::U16(_) => None,
        }
    }

    /// The high-bit-depth samples, if these are.
    pub fn as_u16(&self) -> Option<PlaneView<'a, u16>> {
        match self {
            Plane::U16(p) => Some(*p),
            Plane::U8(_) => None,
        }
    }

    /// Width in samples.
    pub fn width(&self) -> usize {
        match self {
            Plane::U8(p) => p.width(),
            Plane::U16(p) => p.width(),
        }
    }

    /// Height in rows.
    pub fn height(&self) -> usize {
        match self {
            Plane::U8(p) => p.height(),
            Plane::U16(p) => p.height(),
        }
    }
}

/// A picture: luma and, optionally, two chroma planes, at one bit depth.
#[derive(Clone, Copy, Debug)]
pub struct Picture<'a> {
    bit_depth: u8,
    luma: Plane<'a>,
    chroma: Option<[Plane<'a>; 2]>,
}

impl<'a> Picture<'a> {
    /// A picture from its luma plane and optional chroma planes. 8-bit planes need
    /// `bit_depth == 8`; `u16` planes need 9 to 16.
    pub fn new(
        bit_depth: u8,
        luma: Plane<'a>,
        chroma: Option<[Plane<'a>; 2]>,
    ) -> Result<Self, Error> {
        let check = |p: &Plane<'_>| match p {
            Plane::U8(_) if bit_depth == 8 => Ok(()),
            Plane::U16(_) if (9..=16).contains(&bit_depth) => Ok(()),
            _ => Err(Error::InvalidBitDepth { bit_depth }),
        };
        check(&luma)?;
        if luma.width() < 16 || luma.height() < 16 {
            return Err(Error::InvalidSize {
                width: luma.width(),
                height: luma.height(),
                reason: "VMAF needs at least 16x16 luma samples",
            });
        }
        if let Some([cb, cr]) = &chroma {
            check(cb)?;
            check(cr)?;
            if cb.width() != cr.width() || cb.height() != cr.height() {
                return Err(Error::InvalidSize {
                    width: cr.width(),
                    height: cr.height(),
                    reason: "the two chroma planes differ in size",
                });
            }
        }
        Ok(Self {
            bit_depth,
            luma,
            chroma,
        })
    }

    /// Bits per sample.
    pub fn bit_depth(&self) -> u8 {
        self.bit_depth
    }

    /// The luma plane.
    pub fn luma(&self) -> Plane<'a> {
        self.luma
    }

    /// Plane `i` (0 luma, 1 Cb, 2 Cr), if present.
    pub fn plane(&self, i: usize) -> Option<Plane<'a>> {
        match (i, &self.chroma) {
            (0, _) => Some(self.luma),
            (1 | 2, Some(c)) => Some(c[i - 1]),
            _ => None,
        }
    }

    /// Width of the luma plane.
    pub fn width(&self) -> usize {
        self.luma().width()
    }

    /// Height of the luma plane.
    pub fn height(&self) -> usize {
        self.luma().height()
    }
}

/// Sample types the kernels read.
pub(crate) trait Sample: Copy + Into<u32> + Send + Sync + 'static {}
impl Sample for u8 {}
impl Sample for u16 {}
