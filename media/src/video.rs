//! Video decoding to planar YUV frames.

use ffmpeg_next::ffi;
use ffmpeg_next::software::scaling;
use ffmpeg_next::util::frame;

use super::decoder::{Core, frame_corrupt, frame_position, frame_pts};
use super::input::Packet;
use super::mux::fill_codecpar;
use super::pixel::{
    PixelLayout, PixelSupport, Plane, PlaneRef, classify, pix_fmt_from_raw, pix_fmt_name,
};
use super::probe::{ContentLightLevel, MasteringDisplay, parse_content_light, parse_mastering};
use super::{MediaError, Rational};
use crate::chunk::{ChunkPacket, StreamParams};

/// How a video decoder runs.
#[derive(Clone, Debug, Default)]
pub struct DecoderOptions {
    /// Decoder threads; 0 lets FFmpeg pick one per core.
    pub threads: usize,
}

/// A decoder for one video stream. It lends out one frame at a time.
pub struct VideoDecoder {
    decoder: ffmpeg_next::decoder::Video,
    core: Core,
    decoded: frame::Video,
    converted: frame::Video,
    scaler: Option<Scaler>,
}

struct Scaler {
    context: scaling::Context,
    from: (ffi::AVPixelFormat, u32, u32),
}

// SAFETY: the swscale context is only used through `&mut VideoDecoder`, never shared, and
// swscale contexts carry no thread affinity.
unsafe impl Send for Scaler {}

/// A decoded picture, borrowed from its decoder until the next call.
pub struct VideoFrame<'a> {
    frame: &'a frame::Video,
    layout: PixelLayout,
    /// Presentation timestamp in [`VideoFrame::time_base`] units (FFmpeg's best effort).
    pub pts: Option<i64>,
    /// The stream's time base.
    pub time_base: Rational,
    /// Duration in time-base units as the container gave it, 0 when unknown.
    pub duration: i64,
    /// Byte offset in the file of the packet this frame came from, when known.
    pub position: Option<u64>,
    /// True for a keyframe.
    pub key: bool,
    /// Picture type: `I`, `P`, `B` or `?`.
    pub picture_type: char,
    /// True when the decoder says the frame is interlaced.
    pub interlaced: bool,
    /// For interlaced frames, true when the top field comes first.
    pub top_field_first: bool,
    /// True when the decoder flagged the frame as corrupt or concealed errors in it.
    pub corrupt: bool,
    /// FFmpeg's decode error flags (missing reference, invalid bitstream, ...).
    pub decode_error_flags: u32,
    /// The decoder's own pixel format, before any conversion.
    pub source_format: ffi::AVPixelFormat,
    source: &'a frame::Video,
}

impl VideoDecoder {
    pub(crate) fn new(
        stream: &ffmpeg_next::format::stream::Stream<'_>,
        options: &DecoderOptions,
    ) -> Result<Self, MediaError> {
        let (context, core) = Core::prepare(stream, Some(options.threads))?;
        Self::open(context, core)
    }

    /// Opens a prepared codec context as a video decoder.
    fn open(context: ffmpeg_next::codec::Context, core: Core) -> Result<Self, MediaError> {
        let decoder = context.decoder().video().map_err(|e| core.open_error(e))?;
        Ok(Self {
            decoder,
            core,
            decoded: frame::Video::empty(),
            converted: frame::Video::empty(),
            scaler: None,
        })
    }

    /// A decoder for the stream of an encoded chunk, described by `params` and `extradata`,
    /// whose packets count frames at `frame_rate`.
    pub fn for_chunk(
        params: &StreamParams,
        extradata: &[u8],
        frame_rate: Rational,
        options: &DecoderOptions,
    ) -> Result<Self, MediaError> {
        super::init();
        let mut parameters = ffmpeg_next::codec::Parameters::new();
        // SAFETY: the parameters are freshly allocated and owned by `parameters`.
        unsafe { fill_codecpar(&mut *parameters.as_mut_ptr(), params, extradata) }.map_err(
            |code| MediaError::DecoderOpen {
                index: 0,
                codec: params.codec.clone(),
                reason: match code {
                    None => "unknown codec".into(),
                    Some(c) => ffmpeg_next::Error::from(c).to_string(),
                },
            },
        )?;
        let time_base = Rational::new(frame_rate.den, frame_rate.num.max(1));
        let (context, core) =
            Core::from_parameters(0, parameters, time_base, Some(options.threads))?;
        Self::open(context, core)
    }

    /// Feeds one packet of an encoded chunk (see [`VideoDecoder::for_chunk`]).
    pub fn send_chunk_packet(&mut self, packet: &ChunkPacket) -> Result<(), MediaError> {
        let mut p = ffmpeg_next::Packet::copy(&packet.data);
        p.set_pts(Some(packet.pts));
        p.set_dts(Some(packet.dts));
        p.set_duration(packet.duration);
        if packet.is_key() {
            p.set_flags(ffmpeg_next::packet::Flags::KEY);
        }
        self.send(&Packet::new(p, self.core.time_base))
    }

    /// The stream this decoder reads.
    pub fn stream(&self) -> usize {
        self.core.stream
    }

    /// The codec name.
    pub fn codec(&self) -> &str {
        &self.core.codec
    }

    /// Feeds one packet. A decode error names the packet's time and byte offset; the decoder
    /// stays usable, so the caller may record the error and go on.
    pub fn send(&mut self, packet: &Packet) -> Result<(), MediaError> {
        self.core.send(&mut self.decoder, packet)
    }

    /// Signals the end of the stream, so that buffered frames come out.
    pub fn send_eof(&mut self) -> Result<(), MediaError> {
        self.core.send_eof(&mut self.decoder)
    }

    /// Takes the next decoded frame, or `None` when the decoder needs more input (or is done).
    pub fn receive(&mut self) -> Result<Option<VideoFrame<'_>>, MediaError> {
        if !self
            .core
            .received(self.decoder.receive_frame(&mut self.decoded))?
        {
            return Ok(None);
        }
        self.deliver().map(Some)
    }

    /// Makes the decoder skip (true) or decode (false) frames that no other frame references,
    /// from the next packet on. Exact only for a single-threaded decoder, where the setting
    /// applies to each packet as it is sent; frame threads would apply it late.
    pub fn skip_unreferenced(&mut self, skip: bool) {
        // SAFETY: a plain field of the open decoder context, read when a packet is decoded.
        unsafe {
            (*self.decoder.as_mut_ptr()).skip_frame = if skip {
                ffi::AVDiscard::AVDISCARD_NONREF
            } else {
                ffi::AVDiscard::AVDISCARD_DEFAULT
            };
        }
    }

    /// The warnings and errors the decoder logged since the last call.
    pub fn take_messages(&mut self) -> Vec<String> {
        self.core.take_messages()
    }

    fn deliver(&mut self) -> Result<VideoFrame<'_>, MediaError> {
        // SAFETY: `decoded` holds a frame the decoder just returned; we read plain fields.
        let raw = unsafe { &*self.decoded.as_ptr() };
        let (w, h) = (raw.width.max(0) as u32, raw.height.max(0) as u32);
        if w == 0 || h == 0 {
            return Err(MediaError::InvalidFrameSize {
                width: w,
                height: h,
                reason: "the decoder returned an empty picture".into(),
            });
        }
        let fmt = pix_fmt_from_raw(raw.format);
        let negative_stride = raw.linesize.iter().take(3).any(|&l| l < 0);
        let (converted, layout) = match classify(fmt) {
            PixelSupport::Native(layout) if !negative_stride => (false, layout),
            PixelSupport::Native(layout) | PixelSupport::Convert { layout, .. } => {
                self.convert(fmt, w, h, layout)?;
                (true, layout)
            }
            PixelSupport::Unsupported(reason) => {
                return Err(MediaError::UnsupportedPixelFormat {
                    name: pix_fmt_name(fmt),
                    reason,
                });
            }
        };
        let target = if converted {
            &self.converted
        } else {
            &self.decoded
        };
        Ok(VideoFrame {
            frame: target,
            layout,
            pts: frame_pts(raw),
            time_base: self.core.time_base,
            duration: raw.pkt_duration.max(0),
            position: frame_position(raw),
            key: raw.key_frame != 0,
            picture_type: picture_char(raw.pict_type),
            interlaced: raw.interlaced_frame != 0,
            top_field_first: raw.top_field_first != 0,
            corrupt: frame_corrupt(raw),
            decode_error_flags: raw.decode_error_flags as u32,
            source_format: fmt,
            source: &self.decoded,
        })
    }

    fn convert(
        &mut self,
        fmt: ffi::AVPixelFormat,
        w: u32,
        h: u32,
        layout: PixelLayout,
    ) -> Result<(), MediaError> {
        let key = (fmt, w, h);
        if self.scaler.as_ref().map(|s| s.from) != Some(key) {
            let context = scaling::Context::get(
                fmt.into(),
                w,
                h,
                layout.av_format().into(),
                w,
                h,
                scaling::Flags::BICUBIC
                    | scaling::Flags::ACCURATE_RND
                    | scaling::Flags::FULL_CHR_H_INT,
            )
            .map_err(|e| MediaError::Ffmpeg {
                what: "creating the pixel-format converter",
                reason: e.to_string(),
            })?;
            self.scaler = Some(Scaler { context, from: key });
            self.converted = frame::Video::new(layout.av_format().into(), w, h);
        }
        let scaler = self.scaler.as_mut().map(|s| &mut s.context);
        if let Some(context) = scaler {
            context
                .run(&self.decoded, &mut self.converted)
                .map_err(|e| MediaError::Ffmpeg {
                    what: "converting the pixel format",
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }
}

fn picture_char(t: ffi::AVPictureType) -> char {
    use ffi::AVPictureType::*;
    match t {
        AV_PICTURE_TYPE_I | AV_PICTURE_TYPE_SI => 'I',
        AV_PICTURE_TYPE_P | AV_PICTURE_TYPE_SP => 'P',
        AV_PICTURE_TYPE_B | AV_PICTURE_TYPE_BI => 'B',
        _ => '?',
    }
}

impl<'a> VideoFrame<'a> {
    /// Views an FFmpeg frame already in `layout` (for the resizer's output).
    pub fn wrap(
        frame: &'a frame::Video,
        layout: PixelLayout,
        pts: Option<i64>,
        time_base: Rational,
    ) -> Self {
        Self {
            frame,
            layout,
            pts,
            time_base,
            duration: 0,
            position: None,
            key: false,
            picture_type: '?',
            interlaced: false,
            top_field_first: false,
            corrupt: false,
            decode_error_flags: 0,
            source_format: layout.av_format(),
            source: frame,
        }
    }

    /// The FFmpeg frame holding the picture in [`VideoFrame::layout`].
    pub fn ffmpeg_frame(&self) -> &'a frame::Video {
        self.frame
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.frame.width() as usize
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.frame.height() as usize
    }

    /// The planar layout of [`VideoFrame::plane`].
    pub fn layout(&self) -> PixelLayout {
        self.layout
    }

    /// Presentation time in seconds.
    pub fn seconds(&self) -> Option<f64> {
        self.pts.map(|t| self.time_base.seconds(t))
    }

    /// The luma plane; `None` only if the decoder handed over a malformed picture.
    pub fn luma(&self) -> Option<PlaneRef<'a>> {
        self.plane(0)
    }

    /// Plane `index` (0 = Y, 1 = Cb, 2 = Cr), or `None` past the last plane.
    pub fn plane(&self, index: usize) -> Option<PlaneRef<'a>> {
        if index >= self.layout.chroma.planes() {
            return None;
        }
        let (sx, sy) = if index == 0 {
            (0, 0)
        } else {
            self.layout.chroma.shifts()
        };
        let w = self.width().div_ceil(1 << sx);
        let h = self.height().div_ceil(1 << sy);
        // SAFETY: the frame holds a picture in `self.layout`, so plane `index` exists with
        // `h` rows of at least `w` samples, `linesize` bytes apart (checked non-negative before
        // delivery). FFmpeg aligns plane buffers to at least 16 bytes, and 16-bit formats have
        // even line sizes, so the u16 view is aligned; both facts are checked anyway.
        unsafe {
            let raw = &*self.frame.as_ptr();
            let ptr = raw.data[index];
            let linesize = raw.linesize[index];
            if ptr.is_null() || linesize <= 0 {
                return None;
            }
            let linesize = linesize as usize;
            let bytes = linesize * (h - 1) + w * if self.layout.bit_depth > 8 { 2 } else { 1 };
            if self.layout.bit_depth > 8 {
                if ptr.align_offset(2) != 0 || !linesize.is_multiple_of(2) {
                    return None;
                }
                let data = std::slice::from_raw_parts(ptr as *const u16, bytes / 2);
                Plane::new(data, linesize / 2, w, h).map(PlaneRef::U16)
            } else {
                let data = std::slice::from_raw_parts(ptr as *const u8, bytes);
                Plane::new(data, linesize, w, h).map(PlaneRef::U8)
            }
        }
    }

    /// SMPTE ST 2086 mastering display metadata attached to this frame.
    pub fn mastering_display(&self) -> Option<MasteringDisplay> {
        self.side_data(ffi::AVFrameSideDataType::AV_FRAME_DATA_MASTERING_DISPLAY_METADATA)
            .and_then(parse_mastering)
    }

    /// CTA-861.3 content light level attached to this frame.
    pub fn content_light_level(&self) -> Option<ContentLightLevel> {
        self.side_data(ffi::AVFrameSideDataType::AV_FRAME_DATA_CONTENT_LIGHT_LEVEL)
            .and_then(parse_content_light)
    }

    /// True when this frame carries Dolby Vision metadata.
    pub fn has_dolby_vision(&self) -> bool {
        self.side_data(ffi::AVFrameSideDataType::AV_FRAME_DATA_DOVI_METADATA)
            .is_some()
            || self
                .side_data(ffi::AVFrameSideDataType::AV_FRAME_DATA_DOVI_RPU_BUFFER)
                .is_some()
    }

    fn side_data(&self, kind: ffi::AVFrameSideDataType) -> Option<&'a [u8]> {
        // SAFETY: side data belongs to the decoded frame, which outlives 'a; the returned
        // pointer and size describe one allocation.
        unsafe {
            let sd = ffi::av_frame_get_side_data(self.source.as_ptr(), kind);
            if sd.is_null() || (*sd).data.is_null() {
                return None;
            }
            Some(std::slice::from_raw_parts((*sd).data, (*sd).size))
        }
    }
}
