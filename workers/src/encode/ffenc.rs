//! The FFmpeg encoders (libx264, libx265, libsvtav1, libvpx-vp9) behind one interface.

use std::ffi::CString;
use std::ptr;

use ffmpeg_next::ffi;
use ffmpeg_next::util::frame;

use super::{Codec, EncodeError, EncodeSettings, RateControl};
use media::chunk::{ChunkPacket, EncodedChunk, FLAG_KEY, StreamParams, hex};
use media::{Chroma, PixelLayout, Rational};

/// An encoder for one chunk. It opens on the first frame, whose colour description it copies
/// into the bitstream.
pub(super) struct FfEncoder {
    settings: EncodeSettings,
    name: &'static str,
    frame_rate: Rational,
    encoder: Option<ffmpeg_next::encoder::video::Encoder>,
    packets: Vec<ChunkPacket>,
    params: Option<StreamParams>,
    frames_in: u64,
    /// Frames the chunk will have (the VBV end target needs it).
    frames_total: u64,
}

// SAFETY: the encoder is used only through `&mut FfEncoder` on one thread at a time; FFmpeg
// encoder contexts have no thread affinity.
unsafe impl Send for FfEncoder {}

impl FfEncoder {
    pub(super) fn new(
        settings: &EncodeSettings,
        frame_rate: Rational,
        frames_total: u64,
    ) -> Result<Self, EncodeError> {
        media::init();
        let name = settings
            .codec
            .ffmpeg_encoder()
            .ok_or(EncodeError::MissingEncoder("rav1e"))?;
        if ffmpeg_next::encoder::find_by_name(name).is_none() {
            return Err(EncodeError::MissingEncoder(name));
        }
        Ok(Self {
            settings: settings.clone(),
            name,
            frame_rate,
            encoder: None,
            packets: Vec::new(),
            params: None,
            frames_in: 0,
            frames_total,
        })
    }

    fn err(&self, what: &'static str) -> impl Fn(ffmpeg_next::Error) -> EncodeError + '_ {
        move |e| EncodeError::Encoder {
            encoder: self.name,
            what,
            reason: e.to_string(),
        }
    }

    /// Encodes frame `index` of the chunk (frames come in order).
    pub(super) fn push(&mut self, frame: &mut frame::Video, index: u64) -> Result<(), EncodeError> {
        if self.encoder.is_none() {
            self.open(frame)?;
        }
        let key = index.is_multiple_of(u64::from(self.settings.keyint));
        frame.set_pts(Some(index as i64));
        frame.set_kind(if key {
            ffmpeg_next::picture::Type::I
        } else {
            ffmpeg_next::picture::Type::None
        });
        let result = self
            .encoder
            .as_mut()
            .expect("opened above")
            .send_frame(frame);
        result.map_err(self.err("encoding a frame"))?;
        self.frames_in += 1;
        self.drain()
    }

    /// Flushes the encoder and returns the chunk.
    pub(super) fn finish(mut self) -> Result<EncodedChunk, EncodeError> {
        let Some(encoder) = self.encoder.as_mut() else {
            return Err(EncodeError::Encoder {
                encoder: self.name,
                what: "finishing",
                reason: "the chunk had no frames".into(),
            });
        };
        let r = encoder.send_eof();
        r.map_err(self.err("flushing"))?;
        self.drain()?;
        if self.packets.len() as u64 != self.frames_in {
            return Err(EncodeError::Encoder {
                encoder: self.name,
                what: "finishing",
                reason: format!(
                    "{} frames in, {} packets out (frames were dropped or merged)",
                    self.frames_in,
                    self.packets.len()
                ),
            });
        }
        Ok(EncodedChunk {
            params: self.params.take().expect("set when opened"),
            packets: self.packets,
        })
    }

    fn drain(&mut self) -> Result<(), EncodeError> {
        let encoder = self.encoder.as_mut().expect("opened");
        let mut packet = ffmpeg_next::Packet::empty();
        loop {
            match encoder.receive_packet(&mut packet) {
                Ok(()) => {}
                Err(ffmpeg_next::Error::Eof) => return Ok(()),
                Err(ffmpeg_next::Error::Other { errno }) if errno == libc::EAGAIN => {
                    return Ok(());
                }
                Err(e) => return Err(self.err("receiving a packet")(e)),
            }
            let pts = packet.pts().unwrap_or(self.packets.len() as i64);
            self.packets.push(ChunkPacket {
                pts,
                dts: packet.dts().unwrap_or(pts),
                duration: 1,
                flags: if packet.is_key() { FLAG_KEY } else { 0 },
                data: packet.data().map(<[u8]>::to_vec).unwrap_or_default(),
            });
        }
    }

    fn open(&mut self, first: &frame::Video) -> Result<(), EncodeError> {
        let s = &self.settings;
        let codec = ffmpeg_next::encoder::find_by_name(self.name)
            .ok_or(EncodeError::MissingEncoder(self.name))?;
        let context = ffmpeg_next::codec::context::Context::new_with_codec(codec);
        let mut video = context.encoder().video().map_err(self.err("allocating"))?;
        let layout = PixelLayout {
            chroma: Chroma::Cs420,
            bit_depth: s.bit_depth,
        };
        let options = codec_options(s, self.frames_total);
        // SAFETY: the context is allocated and not yet open; these are plain fields, and the
        // dictionary is freed whatever avcodec_open2 returns.
        unsafe {
            let c = &mut *video.as_mut_ptr();
            let src = &*first.as_ptr();
            c.width = s.width as i32;
            c.height = s.height as i32;
            c.pix_fmt = layout.av_format();
            c.time_base = ffi::AVRational {
                num: self.frame_rate.den,
                den: self.frame_rate.num,
            };
            c.framerate = ffi::AVRational {
                num: self.frame_rate.num,
                den: self.frame_rate.den,
            };
            c.sample_aspect_ratio = ffi::AVRational { num: 1, den: 1 };
            c.gop_size = s.keyint as i32;
            if s.codec != Codec::H264 {
                c.keyint_min = s.keyint as i32;
            }
            c.thread_count = 1;
            c.flags |=
                ffi::AV_CODEC_FLAG_GLOBAL_HEADER as i32 | ffi::AV_CODEC_FLAG_CLOSED_GOP as i32;
            c.flags |= ffi::AV_CODEC_FLAG_BITEXACT as i32;
            c.color_range = src.color_range;
            c.color_primaries = src.color_primaries;
            c.color_trc = src.color_trc;
            c.colorspace = src.colorspace;
            c.chroma_sample_location = src.chroma_location;
            if let Some(v) = s.vbv {
                c.rc_max_rate = i64::from(v.maxrate_kbps) * 1000;
                c.rc_buffer_size = (u64::from(v.bufsize_kbit) * 1000).min(i32::MAX as u64) as i32;
                if s.codec == Codec::Vp9 {
                    // libvpx's constrained quality: the CRF, capped at the target rate.
                    c.bit_rate = c.rc_max_rate;
                }
            }
            let mut dict: *mut ffi::AVDictionary = ptr::null_mut();
            for (k, v) in &options {
                let (k, v) = (cstring(k), cstring(v));
                ffi::av_dict_set(&mut dict, k.as_ptr(), v.as_ptr(), 0);
            }
            let r = ffi::avcodec_open2(video.as_mut_ptr(), codec.as_ptr(), &mut dict);
            let leftover = first_key(dict);
            ffi::av_dict_free(&mut dict);
            if r < 0 {
                return Err(self.err("opening")(ffmpeg_next::Error::from(r)));
            }
            if let Some(k) = leftover {
                return Err(EncodeError::Settings(format!(
                    "{} in this FFmpeg does not take the option {k:?}",
                    self.name
                )));
            }
            self.params = Some(stream_params(video.as_ptr(), s.bit_depth)?);
        }
        self.encoder = Some(ffmpeg_next::encoder::video::Encoder(video));
        Ok(())
    }
}

/// The encoder options for `s`: rate control, preset, IDR forcing, no scene-cut keyframes and
/// one thread, so that keyframes fall exactly where the chunk plan puts them and the output is
/// the same on every run.
fn codec_options(s: &EncodeSettings, frames: u64) -> Vec<(String, String)> {
    let mut o: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| o.push((k.to_owned(), v));
    let quality = match s.rate {
        RateControl::Crf(q) => ("crf", format!("{q}")),
        RateControl::Qp(q) => ("qp", q.to_string()),
    };
    match s.codec {
        Codec::H264 => {
            set("preset", s.preset.clone());
            set(quality.0, quality.1);
            set("forced-idr", "1".into());
            set(
                "x264-params",
                // Stitchable headers do not depend on the rate control, so chunks encoded at
                // different quality settings share one decoder configuration.
                format!(
                    "scenecut=0:open-gop=0:stitchable=1{}{}{}",
                    chunk_vbv(s, frames),
                    zones(s),
                    x264_asm()
                ),
            );
        }
        Codec::Hevc => {
            set("preset", s.preset.clone());
            set(quality.0, quality.1);
            set("forced-idr", "1".into());
            set(
                "x265-params",
                format!(
                    "scenecut=0:open-gop=0:keyint={k}:min-keyint={k}:pools=1:frame-threads=1:info=0:\
                     log-level=error{}{}",
                    chunk_vbv(s, frames),
                    zones(s),
                    k = s.keyint
                ),
            );
        }
        Codec::Av1 => {
            set("preset", s.preset.clone());
            set(quality.0, quality.1);
            set("svtav1-params", "scd=0:irefresh-type=2:lp=1".into());
        }
        Codec::Vp9 => {
            set("deadline", "good".into());
            set("cpu-used", s.preset.clone());
            match s.rate {
                RateControl::Crf(q) => set("crf", format!("{}", q.round())),
                RateControl::Qp(q) => {
                    set("qmin", q.to_string());
                    set("qmax", q.to_string());
                }
            }
            set("row-mt", "0".into());
            if s.vbv.is_none() {
                set("b", "0".into());
            }
        }
        Codec::Av1Rav1e => {}
    }
    o
}

/// The zones of `s` as an `x264-params`/`x265-params` suffix. Both encoders take a zone's
/// setting as a bit-rate factor `b` that divides the frame's quantizer scale, and a CRF step of
/// 6 doubles that scale, so a zone at CRF `z` in a chunk at CRF `c` gets `b = 2^((c - z) / 6)`.
fn zones(s: &EncodeSettings) -> String {
    let RateControl::Crf(base) = s.rate else {
        return String::new();
    };
    if s.zones.is_empty() {
        return String::new();
    }
    let list: Vec<String> = s
        .zones
        .iter()
        .map(|z| {
            let b = 2f64.powf((f64::from(base) - f64::from(z.crf)) / 6.0);
            format!("{},{},b={b:.6}", z.start, z.start + z.frames - 1)
        })
        .collect();
    format!(":zones={}", list.join("/"))
}

/// x264's instruction sets, as an `x264-params` suffix. With AVX-512, x264 0.164's macroblock-
/// tree code reads past the end of its own rows when the low-resolution width is not a multiple
/// of 16 macroblocks, so the same frames do not always encode to the same bytes (measured: a
/// 416×234 chunk at `veryfast` gave three different sizes in three runs in one process). On
/// such CPUs x264 gets every instruction set up to AVX2, which all of them have, and is exact;
/// elsewhere it detects its own.
fn x264_asm() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        return ":asm=MMX2,SSE,SSE2,SSE2Fast,LZCNT,SSE3,SSSE3,SSE4.1,SSE4.2,AVX,FMA3,BMI1,BMI2,AVX2";
    }
    ""
}

/// With a VBV cap, every chunk starts and ends with its buffer at the same fullness, so that
/// the joined stream keeps the cap across chunk boundaries (otherwise each chunk would start
/// with a nearly full buffer whatever the last one left, and the joined stream overshoot).
/// The encoders honour the end target only when they know the frame count.
fn chunk_vbv(s: &EncodeSettings, frames: u64) -> String {
    if s.vbv.is_some() {
        format!(":vbv-init=0.9:vbv-end=0.9:frames={frames}")
    } else {
        String::new()
    }
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).expect("no NUL left")
}

/// The first key left in a dictionary after an open: an option nobody took.
///
/// # Safety
/// `dict` must be null or a valid dictionary.
unsafe fn first_key(dict: *mut ffi::AVDictionary) -> Option<String> {
    // SAFETY: guaranteed by the caller; av_dict_get with an empty key and IGNORE_SUFFIX
    // returns the first entry or null.
    unsafe {
        let e = ffi::av_dict_get(dict, c"".as_ptr(), ptr::null(), ffi::AV_DICT_IGNORE_SUFFIX);
        if e.is_null() {
            return None;
        }
        let key = (*e).key;
        (!key.is_null()).then(|| std::ffi::CStr::from_ptr(key).to_string_lossy().into_owned())
    }
}

/// The stream parameters of an open encoder.
///
/// # Safety
/// `ctx` must be an open encoder context.
unsafe fn stream_params(
    ctx: *const ffi::AVCodecContext,
    bit_depth: u8,
) -> Result<StreamParams, EncodeError> {
    // SAFETY: guaranteed by the caller; the parameters are allocated here and freed below.
    unsafe {
        let mut par = ffi::avcodec_parameters_alloc();
        if par.is_null() {
            return Err(EncodeError::Settings("out of memory".into()));
        }
        ffi::avcodec_parameters_from_context(par, ctx);
        let p = &*par;
        let extradata = if p.extradata.is_null() || p.extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(p.extradata, p.extradata_size as usize).to_vec()
        };
        let fmt = media::pix_fmt_from_raw(p.format);
        let params = StreamParams {
            codec: media::codec_name_of(p.codec_id),
            width: p.width as u32,
            height: p.height as u32,
            pixel_format: media::pix_fmt_name(fmt),
            profile: p.profile,
            level: p.level,
            bit_depth: u32::from(bit_depth),
            sample_aspect_ratio: (p.sample_aspect_ratio.num, p.sample_aspect_ratio.den),
            color: [
                p.color_range as i32,
                p.color_primaries as i32,
                p.color_trc as i32,
                p.color_space as i32,
            ],
            chroma_location: p.chroma_location as i32,
            video_delay: p.video_delay,
            extradata: hex(&extradata),
        };
        ffi::avcodec_parameters_free(&mut par);
        Ok(params)
    }
}
