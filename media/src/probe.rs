//! Stream metadata: what `rungs probe` prints.

use std::collections::BTreeMap;
use std::ffi::{CStr, c_char};
use std::path::PathBuf;

use ffmpeg_next::ffi::{self, AVMediaType};
use serde::Serialize;

use super::Rational;
use super::pixel::{PixelSupport, classify, pix_fmt_from_raw, pix_fmt_name};

/// Everything known about a file before decoding it.
#[derive(Clone, Debug, Serialize)]
pub struct MediaInfo {
    /// The file as given.
    pub path: PathBuf,
    /// Size in bytes.
    pub size_bytes: u64,
    /// libavformat's short name of the container, such as `mov,mp4,m4a,3gp,3g2,mj2`.
    pub container: String,
    /// libavformat's long name of the container.
    pub container_long_name: String,
    /// Container duration in seconds, when declared.
    pub duration_seconds: Option<f64>,
    /// Start time of the earliest stream in seconds, when declared.
    pub start_seconds: Option<f64>,
    /// Overall bit rate in bits per second, when known.
    pub bit_rate: Option<u64>,
    /// Container tags (title, encoder, creation time, ...).
    pub tags: BTreeMap<String, String>,
    /// Every stream, in file order.
    pub streams: Vec<StreamInfo>,
}

impl MediaInfo {
    /// The index of the main video stream: the first video stream that is not a cover image.
    pub fn best_video(&self) -> Option<usize> {
        self.streams
            .iter()
            .find(|s| s.kind == StreamKind::Video && !s.attached_picture)
            .map(|s| s.index)
    }

    /// Indices of every audio stream.
    pub fn audio_streams(&self) -> impl Iterator<Item = usize> + '_ {
        self.streams
            .iter()
            .filter(|s| s.kind == StreamKind::Audio)
            .map(|s| s.index)
    }

    /// The stream with this index.
    pub fn stream(&self, index: usize) -> Option<&StreamInfo> {
        self.streams.get(index)
    }
}

/// The kind of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    /// Pictures.
    Video,
    /// Sound.
    Audio,
    /// Text or bitmap subtitles.
    Subtitle,
    /// Timed data, such as timecode tracks.
    Data,
    /// Attached files, such as fonts.
    Attachment,
    /// Anything else.
    Unknown,
}

impl StreamKind {
    fn from_av(t: AVMediaType) -> Self {
        match t {
            AVMediaType::AVMEDIA_TYPE_VIDEO => Self::Video,
            AVMediaType::AVMEDIA_TYPE_AUDIO => Self::Audio,
            AVMediaType::AVMEDIA_TYPE_SUBTITLE => Self::Subtitle,
            AVMediaType::AVMEDIA_TYPE_DATA => Self::Data,
            AVMediaType::AVMEDIA_TYPE_ATTACHMENT => Self::Attachment,
            _ => Self::Unknown,
        }
    }

    /// A lower-case name, as in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Subtitle => "subtitle",
            Self::Data => "data",
            Self::Attachment => "attachment",
            Self::Unknown => "unknown",
        }
    }
}

/// One stream of the file.
#[derive(Clone, Debug, Serialize)]
pub struct StreamInfo {
    /// Index in the container.
    pub index: usize,
    /// Kind of stream.
    pub kind: StreamKind,
    /// Codec short name (`h264`, `aac`, ...).
    pub codec: String,
    /// Codec long name.
    pub codec_long_name: String,
    /// Codec profile name, when the codec has profiles.
    pub profile: Option<String>,
    /// Codec level as coded, when known.
    pub level: Option<i32>,
    /// Time base of the stream's timestamps.
    pub time_base: Rational,
    /// First timestamp, in seconds.
    pub start_seconds: Option<f64>,
    /// Declared duration, in seconds.
    pub duration_seconds: Option<f64>,
    /// Declared frame or packet count.
    pub frames: Option<u64>,
    /// Declared bit rate in bits per second.
    pub bit_rate: Option<u64>,
    /// ISO 639 language tag, when set and not `und`.
    pub language: Option<String>,
    /// Title tag.
    pub title: Option<String>,
    /// Disposition flags such as `default` and `forced`.
    pub disposition: Vec<&'static str>,
    /// True for a cover image rather than a moving picture.
    pub attached_picture: bool,
    /// Video properties, for video streams.
    pub video: Option<VideoInfo>,
    /// Audio properties, for audio streams.
    pub audio: Option<AudioInfo>,
    /// Every other tag.
    pub tags: BTreeMap<String, String>,
}

/// Video properties of a stream.
#[derive(Clone, Debug, Serialize)]
pub struct VideoInfo {
    /// Coded width in pixels.
    pub width: u32,
    /// Coded height in pixels.
    pub height: u32,
    /// Sample (pixel) aspect ratio; `0/1` when unknown.
    pub sample_aspect_ratio: Rational,
    /// Display aspect ratio derived from the size and the SAR.
    pub display_aspect_ratio: Rational,
    /// FFmpeg's name for the decoder's pixel format.
    pub pixel_format: String,
    /// Bits per sample of the pixel format.
    pub bit_depth: Option<u8>,
    /// Whether and how rungs can use the pixel format: `native`, `convert` or `unsupported`.
    pub pixel_support: String,
    /// Why the pixel format is unsupported, when it is.
    pub pixel_support_reason: Option<String>,
    /// Average frame rate over the stream.
    pub avg_frame_rate: Rational,
    /// The lowest frame rate that represents every timestamp exactly ("real" rate).
    pub r_frame_rate: Rational,
    /// Field order: `progressive`, `tt`, `bb`, `tb`, `bt` or `unknown`.
    pub field_order: &'static str,
    /// Colour description.
    pub color: ColorInfo,
    /// HDR metadata.
    pub hdr: HdrInfo,
    /// True when the stream may reorder frames (B-frames).
    pub has_b_frames: bool,
}

/// The colour description of a video stream, with FFmpeg's names.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ColorInfo {
    /// Colour primaries (`bt709`, `bt2020`, ...).
    pub primaries: Option<String>,
    /// Transfer characteristics (`bt709`, `smpte2084`, `arib-std-b67`, ...).
    pub transfer: Option<String>,
    /// Matrix coefficients (`bt709`, `bt2020nc`, ...).
    pub matrix: Option<String>,
    /// Range: `tv` (limited) or `pc` (full).
    pub range: Option<String>,
    /// Chroma sample location (`left`, `topleft`, ...).
    pub chroma_location: Option<String>,
}

/// HDR description of a video stream.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct HdrInfo {
    /// `sdr`, `hdr10` (PQ), or `hlg`, from the transfer characteristics.
    pub format: &'static str,
    /// SMPTE ST 2086 mastering display colour volume.
    pub mastering_display: Option<MasteringDisplay>,
    /// CTA-861.3 content light level.
    pub content_light_level: Option<ContentLightLevel>,
    /// True when the stream carries a Dolby Vision configuration record.
    pub dolby_vision: bool,
}

/// SMPTE ST 2086 mastering display metadata, in CIE 1931 xy and cd/m².
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MasteringDisplay {
    /// Red, green and blue primaries as (x, y).
    pub primaries: Option<[[f64; 2]; 3]>,
    /// White point as (x, y).
    pub white_point: Option<[f64; 2]>,
    /// Minimum luminance in cd/m².
    pub min_luminance: Option<f64>,
    /// Maximum luminance in cd/m².
    pub max_luminance: Option<f64>,
}

/// CTA-861.3 content light level.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ContentLightLevel {
    /// Maximum content light level in cd/m².
    pub max_cll: u32,
    /// Maximum frame-average light level in cd/m².
    pub max_fall: u32,
}

/// Audio properties of a stream.
#[derive(Clone, Debug, Serialize)]
pub struct AudioInfo {
    /// Samples per second.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u32,
    /// Channel layout name (`stereo`, `5.1(side)`, ...).
    pub channel_layout: String,
    /// FFmpeg's name of the decoded sample format.
    pub sample_format: String,
}

// The mastering-display and content-light structs of libavutil/mastering_display_metadata.h,
// whose header the bindings do not include. Their layout has been stable since FFmpeg 3.
#[repr(C)]
#[derive(Clone, Copy)]
struct AvMasteringDisplayMetadata {
    display_primaries: [[ffi::AVRational; 2]; 3],
    white_point: [ffi::AVRational; 2],
    min_luminance: ffi::AVRational,
    max_luminance: ffi::AVRational,
    has_primaries: i32,
    has_luminance: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct AvContentLightMetadata {
    max_cll: u32,
    max_fall: u32,
}

fn q(r: ffi::AVRational) -> f64 {
    if r.den == 0 {
        0.0
    } else {
        f64::from(r.num) / f64::from(r.den)
    }
}

/// Parses a mastering-display side-data payload; `None` when it is too short.
pub(crate) fn parse_mastering(data: &[u8]) -> Option<MasteringDisplay> {
    if data.len() < std::mem::size_of::<AvMasteringDisplayMetadata>() {
        return None;
    }
    // SAFETY: the length was checked; read_unaligned copes with any alignment and every bit
    // pattern is a valid value of this all-integer struct.
    let m = unsafe { std::ptr::read_unaligned(data.as_ptr() as *const AvMasteringDisplayMetadata) };
    let primaries = (m.has_primaries != 0).then(|| m.display_primaries.map(|p| [q(p[0]), q(p[1])]));
    let white_point = (m.has_primaries != 0).then(|| [q(m.white_point[0]), q(m.white_point[1])]);
    let lum = m.has_luminance != 0;
    Some(MasteringDisplay {
        primaries,
        white_point,
        min_luminance: lum.then(|| q(m.min_luminance)),
        max_luminance: lum.then(|| q(m.max_luminance)),
    })
}

/// Parses a content-light-level side-data payload; `None` when it is too short.
pub(crate) fn parse_content_light(data: &[u8]) -> Option<ContentLightLevel> {
    if data.len() < std::mem::size_of::<AvContentLightMetadata>() {
        return None;
    }
    // SAFETY: the length was checked; any bit pattern is a valid pair of u32.
    let c = unsafe { std::ptr::read_unaligned(data.as_ptr() as *const AvContentLightMetadata) };
    Some(ContentLightLevel {
        max_cll: c.max_cll,
        max_fall: c.max_fall,
    })
}

pub(crate) fn cstr(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: FFmpeg name functions return static NUL-terminated strings.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

pub(crate) fn dictionary(dict: *const ffi::AVDictionary) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut entry: *mut ffi::AVDictionaryEntry = std::ptr::null_mut();
    let empty = c"";
    loop {
        // SAFETY: iterating a dictionary owned by the format context with the documented
        // AV_DICT_IGNORE_SUFFIX idiom; entries stay valid while the context lives.
        entry =
            unsafe { ffi::av_dict_get(dict, empty.as_ptr(), entry, ffi::AV_DICT_IGNORE_SUFFIX) };
        if entry.is_null() {
            break;
        }
        // SAFETY: non-null entries have NUL-terminated key and value.
        let (k, v) = unsafe { (cstr((*entry).key), cstr((*entry).value)) };
        if let (Some(k), Some(v)) = (k, v) {
            out.insert(k, v);
        }
    }
    out
}

fn positive(v: i64) -> Option<u64> {
    (v > 0).then_some(v as u64)
}

fn ts_seconds(ts: i64, tb: Rational) -> Option<f64> {
    (ts != ffi::AV_NOPTS_VALUE).then(|| tb.seconds(ts))
}

fn field_order_name(f: ffi::AVFieldOrder) -> &'static str {
    use ffi::AVFieldOrder::*;
    match f {
        AV_FIELD_PROGRESSIVE => "progressive",
        AV_FIELD_TT => "tt",
        AV_FIELD_BB => "bb",
        AV_FIELD_TB => "tb",
        AV_FIELD_BT => "bt",
        _ => "unknown",
    }
}

const DISPOSITIONS: &[(i32, &str)] = &[
    (ffi::AV_DISPOSITION_DEFAULT, "default"),
    (ffi::AV_DISPOSITION_DUB, "dub"),
    (ffi::AV_DISPOSITION_ORIGINAL, "original"),
    (ffi::AV_DISPOSITION_COMMENT, "comment"),
    (ffi::AV_DISPOSITION_FORCED, "forced"),
    (ffi::AV_DISPOSITION_HEARING_IMPAIRED, "hearing_impaired"),
    (ffi::AV_DISPOSITION_VISUAL_IMPAIRED, "visual_impaired"),
    (ffi::AV_DISPOSITION_CAPTIONS, "captions"),
    (ffi::AV_DISPOSITION_DESCRIPTIONS, "descriptions"),
    (ffi::AV_DISPOSITION_ATTACHED_PIC, "attached_pic"),
];

/// Builds the probe of an opened format context.
///
/// # Safety
/// `ctx` must point to an opened format context whose stream info has been read.
pub(crate) unsafe fn describe(
    ctx: *const ffi::AVFormatContext,
    path: PathBuf,
    size_bytes: u64,
) -> MediaInfo {
    // SAFETY: guaranteed by the caller; every pointer read below belongs to that context.
    unsafe {
        let c = &*ctx;
        let (container, container_long_name) = if c.iformat.is_null() {
            (String::new(), String::new())
        } else {
            (
                cstr((*c.iformat).name).unwrap_or_default(),
                cstr((*c.iformat).long_name).unwrap_or_default(),
            )
        };
        let av_tb = Rational::new(1, ffi::AV_TIME_BASE);
        let streams = (0..c.nb_streams as usize)
            .map(|i| describe_stream(*c.streams.add(i)))
            .collect();
        MediaInfo {
            path,
            size_bytes,
            container,
            container_long_name,
            duration_seconds: positive(c.duration).map(|d| av_tb.seconds(d as i64)),
            start_seconds: ts_seconds(c.start_time, av_tb),
            bit_rate: positive(c.bit_rate),
            tags: dictionary(c.metadata),
            streams,
        }
    }
}

unsafe fn describe_stream(st: *const ffi::AVStream) -> StreamInfo {
    // SAFETY: `st` is a stream of an opened context (see `describe`).
    unsafe {
        let s = &*st;
        let par = &*s.codecpar;
        let tb = Rational::from(s.time_base);
        let kind = StreamKind::from_av(par.codec_type);
        let desc = ffi::avcodec_descriptor_get(par.codec_id);
        let (codec, codec_long_name) = if desc.is_null() {
            ("unknown".to_owned(), String::new())
        } else {
            (
                cstr((*desc).name).unwrap_or_default(),
                cstr((*desc).long_name).unwrap_or_default(),
            )
        };
        let profile = cstr(ffi::avcodec_profile_name(par.codec_id, par.profile));
        let mut tags = dictionary(s.metadata);
        let language = tags
            .remove("language")
            .filter(|l| !l.is_empty() && l != "und");
        let title = tags.remove("title");
        let disposition = DISPOSITIONS
            .iter()
            .filter(|(f, _)| s.disposition & f != 0)
            .map(|(_, n)| *n)
            .collect();
        let side_data: &[ffi::AVPacketSideData] = if s.side_data.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(s.side_data, s.nb_side_data.max(0) as usize)
        };
        let video = (kind == StreamKind::Video).then(|| describe_video(s, par, side_data));
        let audio = (kind == StreamKind::Audio).then(|| describe_audio(par));
        StreamInfo {
            index: s.index as usize,
            kind,
            codec,
            codec_long_name,
            profile,
            level: (par.level >= 0 && kind == StreamKind::Video).then_some(par.level),
            time_base: tb,
            start_seconds: ts_seconds(s.start_time, tb),
            duration_seconds: (s.duration > 0).then(|| tb.seconds(s.duration)),
            frames: positive(s.nb_frames),
            bit_rate: positive(par.bit_rate),
            language,
            title,
            disposition,
            attached_picture: s.disposition & ffi::AV_DISPOSITION_ATTACHED_PIC != 0,
            video,
            audio,
            tags,
        }
    }
}

unsafe fn describe_video(
    s: &ffi::AVStream,
    par: &ffi::AVCodecParameters,
    side_data: &[ffi::AVPacketSideData],
) -> VideoInfo {
    // SAFETY: reading plain fields and static name tables of an opened stream.
    unsafe {
        let sar = if s.sample_aspect_ratio.num > 0 {
            Rational::from(s.sample_aspect_ratio)
        } else {
            Rational::from(par.sample_aspect_ratio)
        };
        let (w, h) = (par.width.max(0) as u32, par.height.max(0) as u32);
        let pix = pix_fmt_from_raw(par.format);
        let (pixel_support, pixel_support_reason) = match classify(pix) {
            PixelSupport::Native(_) => ("native", None),
            PixelSupport::Convert { .. } => ("convert", None),
            PixelSupport::Unsupported(why) => ("unsupported", Some(why)),
        };
        let pdesc = ffi::av_pix_fmt_desc_get(pix);
        let bit_depth = (!pdesc.is_null()).then(|| (*pdesc).comp[0].depth as u8);
        let transfer = cstr(ffi::av_color_transfer_name(par.color_trc));
        let hdr = describe_hdr(transfer.as_deref(), side_data);
        VideoInfo {
            width: w,
            height: h,
            sample_aspect_ratio: if sar.is_positive() {
                sar
            } else {
                Rational::new(0, 1)
            },
            display_aspect_ratio: display_aspect(w, h, sar),
            pixel_format: pix_fmt_name(pix),
            bit_depth,
            pixel_support: pixel_support.to_owned(),
            pixel_support_reason,
            avg_frame_rate: s.avg_frame_rate.into(),
            r_frame_rate: s.r_frame_rate.into(),
            field_order: field_order_name(par.field_order),
            color: describe_color(par, transfer),
            hdr,
            has_b_frames: par.video_delay > 0,
        }
    }
}

/// The display aspect ratio of `w`×`h` pixels of aspect `sar` (square when unknown); 0:1 when
/// it does not fit a rational of `i32`s.
fn display_aspect(w: u32, h: u32, sar: Rational) -> Rational {
    let (sn, sd) = if sar.is_positive() {
        (sar.num, sar.den)
    } else {
        (1, 1)
    };
    let (n, d) = (i64::from(w) * i64::from(sn), i64::from(h) * i64::from(sd));
    if n > 0 && d > 0 && n <= i64::from(i32::MAX) && d <= i64::from(i32::MAX) {
        Rational::new(n as i32, d as i32).reduced()
    } else {
        Rational::new(0, 1)
    }
}

/// The HDR family (from FFmpeg's transfer name) and the metadata the side data carries.
///
/// # Safety
/// Every entry of `side_data` with a non-null `data` points at `size` readable bytes.
unsafe fn describe_hdr(transfer: Option<&str>, side_data: &[ffi::AVPacketSideData]) -> HdrInfo {
    let mut hdr = HdrInfo {
        format: hdr_format(transfer),
        ..Default::default()
    };
    for sd in side_data {
        let data = if sd.data.is_null() {
            &[][..]
        } else {
            // SAFETY: the caller promises `size` readable bytes at a non-null `data`.
            unsafe { std::slice::from_raw_parts(sd.data, sd.size) }
        };
        match sd.type_ {
            ffi::AVPacketSideDataType::AV_PKT_DATA_MASTERING_DISPLAY_METADATA => {
                hdr.mastering_display = parse_mastering(data)
            }
            ffi::AVPacketSideDataType::AV_PKT_DATA_CONTENT_LIGHT_LEVEL => {
                hdr.content_light_level = parse_content_light(data)
            }
            ffi::AVPacketSideDataType::AV_PKT_DATA_DOVI_CONF => hdr.dolby_vision = true,
            _ => {}
        }
    }
    hdr
}

/// The colour description of a stream, names FFmpeg leaves unknown or unspecified left out.
fn describe_color(par: &ffi::AVCodecParameters, transfer: Option<String>) -> ColorInfo {
    let unspecified = |n: Option<String>| n.filter(|n| n != "unknown" && n != "unspecified");
    // SAFETY: the name functions return static strings (or null) for any value.
    unsafe {
        ColorInfo {
            primaries: unspecified(cstr(ffi::av_color_primaries_name(par.color_primaries))),
            transfer: unspecified(transfer),
            matrix: unspecified(cstr(ffi::av_color_space_name(par.color_space))),
            range: unspecified(cstr(ffi::av_color_range_name(par.color_range))),
            chroma_location: unspecified(cstr(ffi::av_chroma_location_name(par.chroma_location))),
        }
    }
}

/// Names the HDR family from FFmpeg's transfer name.
pub(crate) fn hdr_format(transfer: Option<&str>) -> &'static str {
    match transfer {
        Some("smpte2084") => "hdr10",
        Some("arib-std-b67") => "hlg",
        _ => "sdr",
    }
}

unsafe fn describe_audio(par: &ffi::AVCodecParameters) -> AudioInfo {
    // SAFETY: reading plain fields of opened codec parameters; the layout describe call writes
    // at most `buf.len()` bytes, NUL-terminated.
    unsafe {
        let mut buf = [0 as c_char; 128];
        let n = ffi::av_channel_layout_describe(&par.ch_layout, buf.as_mut_ptr(), buf.len());
        let channel_layout = if n > 0 {
            cstr(buf.as_ptr()).unwrap_or_default()
        } else {
            "unknown".to_owned()
        };
        let fmt = sample_fmt_from_raw(par.format);
        AudioInfo {
            sample_rate: par.sample_rate.max(0) as u32,
            channels: par.ch_layout.nb_channels.max(0) as u32,
            channel_layout,
            sample_format: cstr(ffi::av_get_sample_fmt_name(fmt)).unwrap_or_else(|| "none".into()),
        }
    }
}

/// Converts a raw sample-format number into the enum, mapping out-of-range values to NONE.
pub(crate) fn sample_fmt_from_raw(raw: i32) -> ffi::AVSampleFormat {
    if (0..ffi::AVSampleFormat::AV_SAMPLE_FMT_NB as i32).contains(&raw) {
        // SAFETY: the value is inside the enum's contiguous range 0..NB.
        unsafe { std::mem::transmute::<i32, ffi::AVSampleFormat>(raw) }
    } else {
        ffi::AVSampleFormat::AV_SAMPLE_FMT_NONE
    }
}

/// The most packets read while looking for the first video frame.
const FIRST_FRAME_PACKET_LIMIT: usize = 2_000;

/// Describes `path`. With `decode_first_frame`, also decodes the first video frame to read
/// what only the bitstream carries, such as HDR10 metadata in SEI messages.
pub fn probe(
    path: impl AsRef<std::path::Path>,
    decode_first_frame: bool,
) -> Result<MediaInfo, super::MediaError> {
    let mut demuxer = super::Demuxer::open(path)?;
    let mut info = demuxer.info().clone();
    let Some(index) = info.best_video().filter(|_| decode_first_frame) else {
        return Ok(info);
    };
    let supported = info.streams[index]
        .video
        .as_ref()
        .is_some_and(|v| v.pixel_support != "unsupported");
    if !supported {
        return Ok(info);
    }
    let Ok(mut decoder) = demuxer.video_decoder(index, &super::DecoderOptions { threads: 1 })
    else {
        return Ok(info);
    };
    let mut found = None;
    for _ in 0..FIRST_FRAME_PACKET_LIMIT {
        let packet = match demuxer.read() {
            Ok(Some(p)) => p,
            Ok(None) => {
                let _ = decoder.send_eof();
                break;
            }
            Err(super::MediaError::Demux {
                recoverable: true, ..
            }) => continue,
            Err(_) => break,
        };
        if packet.stream() != index || decoder.send(&packet).is_err() {
            continue;
        }
        if let Ok(Some(frame)) = decoder.receive() {
            found = Some((
                frame.mastering_display(),
                frame.content_light_level(),
                frame.has_dolby_vision(),
            ));
            break;
        }
    }
    if found.is_none()
        && let Ok(Some(frame)) = decoder.receive()
    {
        found = Some((
            frame.mastering_display(),
            frame.content_light_level(),
            frame.has_dolby_vision(),
        ));
    }
    if let (Some((md, cll, dv)), Some(v)) = (found, info.streams[index].video.as_mut()) {
        v.hdr.mastering_display = v.hdr.mastering_display.take().or(md);
        v.hdr.content_light_level = v.hdr.content_light_level.take().or(cll);
        v.hdr.dolby_vision |= dv;
    }
    Ok(info)
}
