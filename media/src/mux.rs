//! Writing one compressed video stream into a container through libavformat, without
//! re-encoding.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::ptr;

use ffmpeg_next::ffi;

use super::{MediaError, Rational};
use crate::chunk::{ChunkPacket, StreamParams};

/// A container being written with one video stream. Dropping it without
/// [`VideoMuxer::finish`] leaves an unfinished file, which the caller discards.
pub struct VideoMuxer {
    ctx: *mut ffi::AVFormatContext,
    path: PathBuf,
    /// The duration of one frame, the unit of packet timestamps.
    frame: ffi::AVRational,
    stream_tb: ffi::AVRational,
    header_written: bool,
}

// SAFETY: the context is used only through `&mut VideoMuxer`, never shared.
unsafe impl Send for VideoMuxer {}

impl VideoMuxer {
    /// Creates `path` in the container its extension names (`.mp4`, `.mkv`, ...), with one
    /// video stream described by `params`, whose packet timestamps count frames at `frame_rate`.
    pub fn create(
        path: &Path,
        params: &StreamParams,
        extradata: &[u8],
        frame_rate: Rational,
    ) -> Result<Self, MediaError> {
        super::init();
        let fail = |what: &'static str, code: i32| MediaError::Ffmpeg {
            what,
            reason: format!("{}: {}", path.display(), ffmpeg_next::Error::from(code)),
        };
        if frame_rate.num <= 0 || frame_rate.den <= 0 {
            return Err(MediaError::Ffmpeg {
                what: "creating the output",
                reason: format!("invalid frame rate {frame_rate}"),
            });
        }
        let cpath = c_path(path)?;
        let frame = ffi::AVRational {
            num: frame_rate.den,
            den: frame_rate.num,
        };
        // SAFETY: standard libavformat output setup; every pointer is checked, and the context
        // is owned by `Self` (freed in Drop) as soon as it exists.
        unsafe {
            let ctx =
                alloc_output(&cpath, None).map_err(|r| fail("choosing the output container", r))?;
            let mut me = Self {
                ctx,
                path: path.to_owned(),
                frame,
                stream_tb: frame,
                header_written: false,
            };
            let st = ffi::avformat_new_stream(ctx, ptr::null());
            if st.is_null() {
                return Err(fail("adding the stream", ffi::AVERROR(libc::ENOMEM)));
            }
            fill_codecpar(&mut *(*st).codecpar, params, extradata).map_err(|r| match r {
                None => MediaError::Ffmpeg {
                    what: "adding the stream",
                    reason: format!("unknown codec {:?}", params.codec),
                },
                Some(code) => fail("adding the stream", code),
            })?;
            (*st).time_base = frame;
            (*st).avg_frame_rate = ffi::AVRational {
                num: frame_rate.num,
                den: frame_rate.den,
            };
            (*st).r_frame_rate = (*st).avg_frame_rate;
            let oformat = (*ctx).oformat;
            if (*oformat).flags & ffi::AVFMT_NOFILE == 0 {
                let r = ffi::avio_open(&mut (*ctx).pb, cpath.as_ptr(), ffi::AVIO_FLAG_WRITE);
                if r < 0 {
                    return Err(fail("opening the output", r));
                }
            }
            let r = ffi::avformat_write_header(ctx, ptr::null_mut());
            if r < 0 {
                return Err(fail("writing the header", r));
            }
            me.header_written = true;
            me.stream_tb = (*st).time_base;
            Ok(me)
        }
    }

    /// Writes one packet whose timestamps count frames from the start of the stream.
    pub fn write(&mut self, packet: &ChunkPacket, pts: i64, dts: i64) -> Result<(), MediaError> {
        // SAFETY: the packet is allocated, filled from a buffer FFmpeg owns, written and freed
        // here; the context is open with its header written.
        unsafe {
            let mut p = ffi::av_packet_alloc();
            if p.is_null() {
                return Err(MediaError::Ffmpeg {
                    what: "writing a packet",
                    reason: "out of memory".into(),
                });
            }
            let r = ffi::av_new_packet(p, packet.data.len() as i32);
            if r < 0 {
                ffi::av_packet_free(&mut p);
                return Err(self.error("writing a packet", r));
            }
            ptr::copy_nonoverlapping(packet.data.as_ptr(), (*p).data, packet.data.len());
            let to = |t: i64| ffi::av_rescale_q(t, self.frame, self.stream_tb);
            (*p).pts = to(pts);
            (*p).dts = to(dts);
            (*p).duration = to(packet.duration.max(1));
            (*p).stream_index = 0;
            if packet.is_key() {
                (*p).flags |= ffi::AV_PKT_FLAG_KEY;
            }
            let r = ffi::av_write_frame(self.ctx, p);
            ffi::av_packet_free(&mut p);
            if r < 0 {
                return Err(self.error("writing a packet", r));
            }
        }
        Ok(())
    }

    /// Writes the trailer (the MP4 index) and closes the file.
    pub fn finish(mut self) -> Result<(), MediaError> {
        // SAFETY: the context is open with its header written; Drop then frees it.
        let r = unsafe { ffi::av_write_trailer(self.ctx) };
        self.header_written = false;
        if r < 0 {
            return Err(self.error("writing the trailer", r));
        }
        Ok(())
    }

    fn error(&self, what: &'static str, code: i32) -> MediaError {
        MediaError::Ffmpeg {
            what,
            reason: format!(
                "{}: {}",
                self.path.display(),
                ffmpeg_next::Error::from(code)
            ),
        }
    }
}

/// `path` as a C string for libavformat.
pub(crate) fn c_path(path: &Path) -> Result<CString, MediaError> {
    CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| MediaError::Ffmpeg {
        what: "creating the output",
        reason: "the path contains a NUL byte".into(),
    })
}

/// A new bit-exact output context for `cpath`, in the container `format` names (else the one
/// the extension names). The caller owns it (`avformat_free_context`). Fails with FFmpeg's code.
///
/// # Safety
/// Plain libavformat allocation; the caller must free the context.
pub(crate) unsafe fn alloc_output(
    cpath: &CString,
    format: Option<&std::ffi::CStr>,
) -> Result<*mut ffi::AVFormatContext, i32> {
    let mut ctx: *mut ffi::AVFormatContext = ptr::null_mut();
    // SAFETY: valid C strings; `ctx` is checked before use.
    unsafe {
        let r = ffi::avformat_alloc_output_context2(
            &mut ctx,
            ptr::null(),
            format.map_or(ptr::null(), |f| f.as_ptr()),
            cpath.as_ptr(),
        );
        if r < 0 || ctx.is_null() {
            return Err(if r < 0 { r } else { ffi::AVERROR(libc::ENOMEM) });
        }
        (*ctx).flags |= ffi::AVFMT_FLAG_BITEXACT;
    }
    Ok(ctx)
}

/// Describes the stream of `params` in `par`, with `extradata` as its decoder configuration.
/// Fails with `None` for a codec FFmpeg does not know, `Some(code)` when out of memory.
///
/// # Safety
/// `par` must be a freshly allocated (zeroed or default) `AVCodecParameters` with no
/// extradata, owned by FFmpeg (it frees the extradata with it).
pub(crate) unsafe fn fill_codecpar(
    par: &mut ffi::AVCodecParameters,
    params: &StreamParams,
    extradata: &[u8],
) -> Result<(), Option<i32>> {
    let codec_name = CString::new(params.codec.as_str()).unwrap_or_default();
    // SAFETY: plain FFmpeg calls on valid C strings, and writes to the fields of `par`, which
    // the caller owns; the extradata buffer is allocated by FFmpeg, padded as it requires.
    unsafe {
        let desc = ffi::avcodec_descriptor_get_by_name(codec_name.as_ptr());
        if desc.is_null() {
            return Err(None);
        }
        par.codec_type = ffi::AVMediaType::AVMEDIA_TYPE_VIDEO;
        par.codec_id = (*desc).id;
        par.width = params.width as i32;
        par.height = params.height as i32;
        let fmt = CString::new(params.pixel_format.as_str()).unwrap_or_default();
        par.format = ffi::av_get_pix_fmt(fmt.as_ptr()) as i32;
        par.profile = params.profile;
        par.level = params.level;
        par.bits_per_raw_sample = params.bit_depth as i32;
        par.sample_aspect_ratio = ffi::AVRational {
            num: params.sample_aspect_ratio.0,
            den: params.sample_aspect_ratio.1,
        };
        // The colour fields are C enums stored as ints; values outside FFmpeg's tables (from a
        // damaged chunk) become "unspecified".
        let [range, primaries, trc, space] = params.color;
        set_int(&mut par.color_range, range, 0..=2, 0);
        set_int(&mut par.color_primaries, primaries, 0..=22, 2);
        set_int(&mut par.color_trc, trc, 0..=18, 2);
        set_int(&mut par.color_space, space, 0..=14, 2);
        set_int(&mut par.chroma_location, params.chroma_location, 0..=6, 0);
        par.video_delay = params.video_delay;
        if !extradata.is_empty() {
            let size = extradata.len();
            let buf = ffi::av_mallocz(size + ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize) as *mut u8;
            if buf.is_null() {
                return Err(Some(ffi::AVERROR(libc::ENOMEM)));
            }
            ptr::copy_nonoverlapping(extradata.as_ptr(), buf, size);
            par.extradata = buf;
            par.extradata_size = size as i32;
        }
    }
    Ok(())
}

/// Stores `value` (or `fallback` when outside `valid`) into a C enum field.
///
/// # Safety
/// `T` must be a 4-byte C enum whose C type is `int`-sized, as FFmpeg's colour enums are.
unsafe fn set_int<T>(
    field: &mut T,
    value: i32,
    valid: std::ops::RangeInclusive<i32>,
    fallback: i32,
) {
    const { assert!(std::mem::size_of::<T>() == 4) };
    let v = if valid.contains(&value) {
        value
    } else {
        fallback
    };
    // SAFETY: the field is 4 bytes of FFmpeg-owned memory that only C code reads as an int.
    unsafe { (field as *mut T).cast::<i32>().write(v) };
}

impl Drop for VideoMuxer {
    fn drop(&mut self) {
        // SAFETY: the context was allocated in `create`; its I/O context is closed if open.
        unsafe {
            if !self.ctx.is_null() {
                let oformat = (*self.ctx).oformat;
                if !oformat.is_null() && (*oformat).flags & ffi::AVFMT_NOFILE == 0 {
                    ffi::avio_closep(&mut (*self.ctx).pb);
                }
                ffi::avformat_free_context(self.ctx);
            }
        }
    }
}
