//! Writing one stream as fragmented MP4 (CMAF) through libavformat's MP4 muxer, without
//! re-encoding: an empty `moov` first (the init segment), then a `styp`/`moof`/`mdat`
//! fragment each time the caller cuts. The packager splits the file into segments.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::ptr;

use ffmpeg_next::ffi;
use ffmpeg_next::packet::Mut as _;

use super::mux::{alloc_output, c_path};
use super::{AacEncoder, Demuxer, MediaError, Packet, Rational};

/// The muxer flags: an init segment with no samples, fragments only where the caller cuts,
/// `tfhd` offsets relative to each `moof` (so a segment stands alone), CMAF brands and boxes,
/// no index trailer (the manifests index the segments), and composition offsets that may be
/// negative instead of an edit list (CMAF's `cmfc` brand forbids one).
const MOVFLAGS: &str =
    "+empty_moov+default_base_moof+frag_custom+cmaf+skip_trailer+negative_cts_offsets";

/// A fragmented MP4 being written with one stream copied from a [`Demuxer`].
pub struct Fragmenter {
    ctx: *mut ffi::AVFormatContext,
    path: PathBuf,
    out_tb: ffi::AVRational,
    header_written: bool,
    packets: u64,
}

// SAFETY: the context is used only through `&mut Fragmenter`, never shared.
unsafe impl Send for Fragmenter {}

impl Fragmenter {
    /// Creates `path` (fragmented MP4) with stream `index` of `input`'s file, same codec and
    /// parameters; `language` (ISO 639-2) is written into the track when given.
    pub fn create(
        path: &Path,
        input: &Demuxer,
        index: usize,
        language: Option<&str>,
    ) -> Result<Self, MediaError> {
        let ist = input.stream_ptr(index)?;
        // SAFETY: `ist` is a stream of the open input, which outlives this call; `st` is the
        // new output stream.
        Self::open(path, language, |st| unsafe {
            let r = ffi::avcodec_parameters_copy((*st).codecpar, (*ist).codecpar);
            // The input container's tag may not be valid in MP4; let the muxer choose, except
            // for HEVC: `hvc1` (parameter sets in the sample entry only), which Apple's
            // players require, not the muxer's default `hev1`.
            (*(*st).codecpar).codec_tag =
                if (*(*st).codecpar).codec_id == ffi::AVCodecID::AV_CODEC_ID_HEVC {
                    u32::from_le_bytes(*b"hvc1")
                } else {
                    0
                };
            (*st).time_base = (*ist).time_base;
            (*st).avg_frame_rate = (*ist).avg_frame_rate;
            (*st).r_frame_rate = (*ist).r_frame_rate;
            (*st).sample_aspect_ratio = (*ist).sample_aspect_ratio;
            r
        })
    }

    /// Creates `path` (fragmented MP4) for the packets of `encoder`.
    pub fn for_aac(
        path: &Path,
        encoder: &AacEncoder,
        language: Option<&str>,
    ) -> Result<Self, MediaError> {
        let ctx = encoder.context();
        // SAFETY: `ctx` is the open encoder, which outlives this call; `st` is the new stream.
        Self::open(path, language, |st| unsafe {
            (*st).time_base = (*ctx).time_base;
            ffi::avcodec_parameters_from_context((*st).codecpar, ctx)
        })
    }

    /// Opens the output with one stream that `fill` describes (returning an FFmpeg code).
    fn open(
        path: &Path,
        language: Option<&str>,
        fill: impl FnOnce(*mut ffi::AVStream) -> i32,
    ) -> Result<Self, MediaError> {
        super::init();
        let cpath = c_path(path)?;
        let fail = |what: &'static str, code: i32| MediaError::Ffmpeg {
            what,
            reason: format!("{}: {}", path.display(), ffmpeg_next::Error::from(code)),
        };
        // SAFETY: standard libavformat output setup; every pointer is checked, and the context
        // is owned by `Self` (freed in Drop) as soon as it exists.
        unsafe {
            let ctx = alloc_output(&cpath, Some(c"mp4"))
                .map_err(|r| fail("choosing the output container", r))?;
            let mut me = Self {
                ctx,
                path: path.to_owned(),
                out_tb: ffi::AVRational { num: 1, den: 1 },
                header_written: false,
                packets: 0,
            };
            let st = ffi::avformat_new_stream(ctx, ptr::null());
            if st.is_null() {
                return Err(fail("adding the stream", ffi::AVERROR(libc::ENOMEM)));
            }
            let r = fill(st);
            if r < 0 {
                return Err(fail("describing the stream", r));
            }
            if let Some(lang) = language {
                let lang = CString::new(lang).unwrap_or_default();
                ffi::av_dict_set(&mut (*st).metadata, c"language".as_ptr(), lang.as_ptr(), 0);
            }
            let r = ffi::avio_open(&mut (*ctx).pb, cpath.as_ptr(), ffi::AVIO_FLAG_WRITE);
            if r < 0 {
                return Err(fail("opening the output", r));
            }
            let mut opts: *mut ffi::AVDictionary = ptr::null_mut();
            let flags = CString::new(MOVFLAGS).unwrap_or_default();
            ffi::av_dict_set(&mut opts, c"movflags".as_ptr(), flags.as_ptr(), 0);
            let r = ffi::avformat_write_header(ctx, &mut opts);
            ffi::av_dict_free(&mut opts);
            if r < 0 {
                return Err(fail("writing the header", r));
            }
            me.header_written = true;
            me.out_tb = (*st).time_base;
            Ok(me)
        }
    }

    /// Writes one packet of the copied stream.
    pub fn write(&mut self, packet: &Packet) -> Result<(), MediaError> {
        let mut p = packet.inner.clone();
        p.rescale_ts(
            packet.time_base(),
            Rational::new(self.out_tb.num, self.out_tb.den),
        );
        p.set_stream(0);
        p.set_position(-1);
        // SAFETY: the context is open with its header written; the packet is a valid,
        // reference-counted packet that FFmpeg only reads.
        let r = unsafe { ffi::av_write_frame(self.ctx, p.as_mut_ptr()) };
        if r < 0 {
            return Err(self.error("writing a packet", r));
        }
        self.packets += 1;
        Ok(())
    }

    /// Ends the current fragment: the packets written since the last cut become one
    /// `moof`/`mdat` pair. Does nothing before the first packet.
    pub fn cut(&mut self) -> Result<(), MediaError> {
        if self.packets == 0 {
            return Ok(());
        }
        // SAFETY: a null packet asks the muxer to flush its queued fragment (frag_custom).
        let r = unsafe { ffi::av_write_frame(self.ctx, ptr::null_mut()) };
        if r < 0 {
            return Err(self.error("cutting a fragment", r));
        }
        Ok(())
    }

    /// Writes the last fragment and closes the file; returns the packets written.
    pub fn finish(mut self) -> Result<u64, MediaError> {
        // SAFETY: the context is open with its header written; Drop then frees it.
        let r = unsafe { ffi::av_write_trailer(self.ctx) };
        self.header_written = false;
        if r < 0 {
            return Err(self.error("writing the trailer", r));
        }
        Ok(self.packets)
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

impl Drop for Fragmenter {
    fn drop(&mut self) {
        // SAFETY: the context was allocated in `create`; its I/O context is closed if open.
        unsafe {
            if !self.ctx.is_null() {
                ffi::avio_closep(&mut (*self.ctx).pb);
                ffi::avformat_free_context(self.ctx);
            }
        }
    }
}
