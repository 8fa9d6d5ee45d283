//! Opening files and reading packets.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;

use ffmpeg_next::ffi;
use ffmpeg_next::format::context::Input;

use super::audio::AudioDecoder;
use super::probe::{MediaInfo, describe};
use super::video::{DecoderOptions, VideoDecoder};
use super::{MediaError, Rational};

/// How many "invalid data" packets in a row the demuxer may skip before the file is treated
/// as unreadable from there on. Bounds the work on a hostile file.
const MAX_CONSECUTIVE_INVALID: u32 = 10_000;

/// The demuxers a file may be opened with: media containers and elementary streams. Playlists
/// (`hls`, `dash`), `concat` lists, image sequences (`image2`) and every other demuxer that
/// reads further files by name are not among them, so that a file cannot make rungs read
/// another one.
pub const DEMUXERS: &str = "mov,matroska,mpegts,mpeg,avi,mxf,flv,ogg,asf,nut,dv,gxf,wav,aiff,\
                            w64,caf,mp3,aac,ac3,eac3,flac,truehd,h264,hevc,m4v,mpegvideo,ivf,\
                            obu,yuv4mpegpipe";

/// An opened media file.
pub struct Demuxer {
    input: Input,
    info: MediaInfo,
    invalid_in_a_row: u32,
}

/// One demuxed packet, with where it came from.
pub struct Packet {
    pub(crate) inner: ffmpeg_next::Packet,
    time_base: Rational,
}

impl Packet {
    /// Wraps a packet whose timestamps are in `time_base`.
    pub(crate) fn new(inner: ffmpeg_next::Packet, time_base: Rational) -> Self {
        Self { inner, time_base }
    }

    /// The stream the packet belongs to.
    pub fn stream(&self) -> usize {
        self.inner.stream()
    }

    /// Presentation timestamp in the stream's time base.
    pub fn pts(&self) -> Option<i64> {
        self.inner.pts()
    }

    /// Decoding timestamp in the stream's time base.
    pub fn dts(&self) -> Option<i64> {
        self.inner.dts()
    }

    /// Duration in the stream's time base, 0 when unknown.
    pub fn duration(&self) -> i64 {
        self.inner.duration()
    }

    /// The stream's time base.
    pub fn time_base(&self) -> Rational {
        self.time_base
    }

    /// Presentation (or else decoding) time in seconds.
    pub fn seconds(&self) -> Option<f64> {
        self.pts().or(self.dts()).map(|t| self.time_base.seconds(t))
    }

    /// Byte offset of the packet in the file, when the container knows it.
    pub fn position(&self) -> Option<u64> {
        let p = self.inner.position();
        (p >= 0).then_some(p as u64)
    }

    /// Payload size in bytes.
    pub fn size(&self) -> usize {
        self.inner.size()
    }

    /// True for a keyframe.
    pub fn is_key(&self) -> bool {
        self.inner.is_key()
    }

    /// True when the demuxer flagged the packet as corrupt.
    pub fn is_corrupt(&self) -> bool {
        self.inner.is_corrupt()
    }

    /// The payload.
    pub fn data(&self) -> &[u8] {
        self.inner.data().unwrap_or(&[])
    }
}

impl Demuxer {
    /// Opens a local file and reads its stream information.
    ///
    /// Only the `file` protocol is allowed, so a name such as `concat:a|b` or `http://…` is
    /// treated as a plain path, and only the demuxers of [`DEMUXERS`]: a playlist or a concat
    /// list is refused, naming what it is, before it reads anything else.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, MediaError> {
        super::init();
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|error| MediaError::Io {
            path: path.to_owned(),
            error,
        })?;
        if meta.is_dir() {
            return Err(MediaError::NotMedia {
                path: path.to_owned(),
                reason: "it is a directory".into(),
            });
        }
        if meta.len() == 0 {
            return Err(MediaError::Empty {
                path: path.to_owned(),
            });
        }
        let absolute = std::path::absolute(path).map_err(|error| MediaError::Io {
            path: path.to_owned(),
            error,
        })?;
        let input = open_input(path, &absolute)?;
        // SAFETY: the context is open and its stream info has been read.
        let info = unsafe { describe(input.as_ptr(), path.to_owned(), meta.len()) };
        Ok(Self {
            input,
            info,
            invalid_in_a_row: 0,
        })
    }

    /// Stream `index` of the open file, for muxers that copy its parameters.
    pub(crate) fn stream_ptr(&self, index: usize) -> Result<*const ffi::AVStream, MediaError> {
        let count = self.input.nb_streams() as usize;
        match self.input.stream(index) {
            // SAFETY: the stream belongs to the open context and lives as long as `self`.
            Some(s) => Ok(unsafe { s.as_ptr() }),
            None => Err(MediaError::NoSuchStream { index, count }),
        }
    }

    /// The colour description stream `index` declares (range, primaries, transfer, matrix,
    /// chroma location): one value for the whole stream, where decoded frames may each carry
    /// their own.
    pub fn stream_color(
        &self,
        index: usize,
    ) -> Result<
        (
            ffi::AVColorRange,
            ffi::AVColorPrimaries,
            ffi::AVColorTransferCharacteristic,
            ffi::AVColorSpace,
            ffi::AVChromaLocation,
        ),
        MediaError,
    > {
        let st = self.stream_ptr(index)?;
        // SAFETY: the stream and its parameters belong to the open context.
        let par = unsafe { &*(*st).codecpar };
        Ok((
            par.color_range,
            par.color_primaries,
            par.color_trc,
            par.color_space,
            par.chroma_location,
        ))
    }

    /// What the file holds.
    pub fn info(&self) -> &MediaInfo {
        &self.info
    }

    /// The file's path as given to [`Demuxer::open`].
    pub fn path(&self) -> &PathBuf {
        &self.info.path
    }

    /// The byte offset the demuxer has reached.
    pub fn position(&self) -> u64 {
        // SAFETY: `pb` is owned by the open context; avio_seek with SEEK_CUR and offset 0 only
        // reports the position.
        unsafe {
            let pb = (*self.input.as_ptr()).pb;
            if pb.is_null() {
                return 0;
            }
            ffi::avio_seek(pb, 0, libc::SEEK_CUR).max(0) as u64
        }
    }

    /// Reads the next packet of any stream. `Ok(None)` is the end of the file.
    ///
    /// An error with `recoverable: true` means the demuxer skipped bad data and the next call
    /// may succeed; any other error ends the file.
    pub fn read(&mut self) -> Result<Option<Packet>, MediaError> {
        let mut packet = ffmpeg_next::Packet::empty();
        match packet.read(&mut self.input) {
            Ok(()) => {
                self.invalid_in_a_row = 0;
                let time_base = self
                    .input
                    .stream(packet.stream())
                    .map(|s| Rational::from(s.time_base()))
                    .unwrap_or(Rational::new(0, 1));
                Ok(Some(Packet {
                    inner: packet,
                    time_base,
                }))
            }
            Err(ffmpeg_next::Error::Eof) => Ok(None),
            Err(e) => {
                let recoverable = matches!(e, ffmpeg_next::Error::InvalidData)
                    && self.invalid_in_a_row < MAX_CONSECUTIVE_INVALID;
                self.invalid_in_a_row += 1;
                Err(MediaError::Demux {
                    position: self.position(),
                    reason: e.to_string(),
                    recoverable,
                })
            }
        }
    }

    /// Moves to the last keyframe of stream `index` at or before `timestamp` (in the stream's
    /// time base), so that decoding from there reaches `timestamp` exactly. Open a new decoder
    /// after seeking. Some containers land after the target; callers check the first frame.
    pub fn seek(&mut self, index: usize, timestamp: i64) -> Result<(), MediaError> {
        let count = self.input.nb_streams() as usize;
        if index >= count {
            return Err(MediaError::NoSuchStream { index, count });
        }
        // SAFETY: the context is open; the stream index was checked above.
        let r = unsafe {
            ffi::av_seek_frame(
                self.input.as_mut_ptr(),
                index as i32,
                timestamp,
                ffi::AVSEEK_FLAG_BACKWARD,
            )
        };
        if r < 0 {
            return Err(MediaError::Demux {
                position: self.position(),
                reason: format!(
                    "seeking to timestamp {timestamp}: {}",
                    ffmpeg_next::Error::from(r)
                ),
                recoverable: false,
            });
        }
        self.invalid_in_a_row = 0;
        Ok(())
    }

    /// Opens a decoder for video stream `index`.
    pub fn video_decoder(
        &self,
        index: usize,
        options: &DecoderOptions,
    ) -> Result<VideoDecoder, MediaError> {
        let stream = self.stream_for(index, "video", ffi::AVMediaType::AVMEDIA_TYPE_VIDEO)?;
        VideoDecoder::new(&stream, options)
    }

    /// Opens a decoder for audio stream `index`.
    pub fn audio_decoder(&self, index: usize) -> Result<AudioDecoder, MediaError> {
        let stream = self.stream_for(index, "audio", ffi::AVMediaType::AVMEDIA_TYPE_AUDIO)?;
        AudioDecoder::new(&stream)
    }

    fn stream_for(
        &self,
        index: usize,
        expected: &'static str,
        kind: ffi::AVMediaType,
    ) -> Result<ffmpeg_next::format::stream::Stream<'_>, MediaError> {
        let count = self.input.nb_streams() as usize;
        let stream = self
            .input
            .stream(index)
            .ok_or(MediaError::NoSuchStream { index, count })?;
        if ffi::AVMediaType::from(stream.parameters().medium()) != kind {
            return Err(MediaError::WrongStreamKind {
                index,
                expected,
                actual: self.info.streams[index].kind.name().to_owned(),
            });
        }
        Ok(stream)
    }
}

/// The reason text and name of the codec of a stream, for errors.
pub fn codec_name(id: ffi::AVCodecID) -> String {
    // SAFETY: avcodec_get_name always returns a static NUL-terminated string.
    unsafe { super::probe::cstr(ffi::avcodec_get_name(id)).unwrap_or_else(|| "unknown".into()) }
}

/// Opens `absolute` (shown as `path`) with the `file` protocol and the demuxers of [`DEMUXERS`]
/// only, and reads its stream information.
fn open_input(path: &Path, absolute: &Path) -> Result<Input, MediaError> {
    let mut url = b"file:".to_vec();
    url.extend_from_slice(absolute.as_os_str().as_bytes());
    let url = CString::new(url).map_err(|_| MediaError::NotMedia {
        path: path.to_owned(),
        reason: "the path contains a NUL byte".into(),
    })?;
    let not_media = |code: i32| MediaError::NotMedia {
        path: path.to_owned(),
        reason: ffmpeg_next::Error::from(code).to_string(),
    };
    let mut ps: *mut ffi::AVFormatContext = ptr::null_mut();
    let mut opts: *mut ffi::AVDictionary = ptr::null_mut();
    // SAFETY: standard open sequence; `opts` is freed below whatever happens, and `ps` is
    // either null (on failure, libavformat frees it) or owned by `Input` from here on.
    unsafe {
        ffi::av_dict_set(
            &mut opts,
            c"protocol_whitelist".as_ptr(),
            c"file".as_ptr(),
            0,
        );
        let demuxers =
            CString::new(DEMUXERS.replace(char::is_whitespace, "")).expect("no NUL in the list");
        ffi::av_dict_set(
            &mut opts,
            c"format_whitelist".as_ptr(),
            demuxers.as_ptr(),
            0,
        );
        let r = ffi::avformat_open_input(&mut ps, url.as_ptr(), ptr::null(), &mut opts);
        ffi::av_dict_free(&mut opts);
        if r < 0 {
            // A format off the list fails the open with EINVAL.
            let refused = (r == ffi::AVERROR(libc::EINVAL))
                .then(|| refused_format(absolute))
                .flatten();
            return Err(match refused {
                Some(format) => MediaError::NotMedia {
                    path: path.to_owned(),
                    reason: format!(
                        "it is {format}, which rungs does not open: rungs opens media \
                             containers only (playlists, lists and image sequences would make \
                             it read other files)"
                    ),
                },
                None => not_media(r),
            });
        }
        let r = ffi::avformat_find_stream_info(ps, ptr::null_mut());
        if r < 0 {
            ffi::avformat_close_input(&mut ps);
            return Err(not_media(r));
        }
        Ok(Input::wrap(ps))
    }
}

/// What a file is, when the probe names a demuxer outside [`DEMUXERS`]: its long name and
/// name, read from the file's first bytes alone (the probe opens nothing else).
fn refused_format(path: &Path) -> Option<String> {
    use std::io::Read;
    const PROBE_BYTES: u64 = 1 << 16;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(PROBE_BYTES)
        .read_to_end(&mut head)
        .ok()?;
    let size = i32::try_from(head.len()).ok()?;
    // The probe reads past the data by up to the padding, which must be zeros.
    head.resize(head.len() + ffi::AVPROBE_PADDING_SIZE as usize, 0);
    let name = CString::new(path.as_os_str().as_bytes()).ok()?;
    let data = ffi::AVProbeData {
        filename: name.as_ptr(),
        buf: head.as_mut_ptr(),
        buf_size: size,
        mime_type: ptr::null(),
    };
    let allowed = CString::new(DEMUXERS.replace(char::is_whitespace, "")).ok()?;
    // SAFETY: `data` points at live, padded memory for the call; the format returned is
    // static, and its names are NUL-terminated static strings.
    unsafe {
        let format = ffi::av_probe_input_format(&data, 1);
        if format.is_null() || ffi::av_match_list((*format).name, allowed.as_ptr(), b',' as _) > 0 {
            return None;
        }
        let text = |p: *const std::ffi::c_char| {
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        let name = text((*format).name)?;
        Some(match text((*format).long_name) {
            Some(long) => format!("{long} ({name})"),
            None => name,
        })
    }
}
