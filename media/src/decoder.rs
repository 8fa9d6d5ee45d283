//! What video and audio decoders share: opening a codec context for a stream, feeding packets,
//! taking frames, and explaining errors with what the decoder logged.

use ffmpeg_next::decoder::Opened;
use ffmpeg_next::format::stream::Stream;

use super::input::{Packet, codec_name};
use super::log::LogCapture;
use super::{MediaError, Rational};

/// The stream-side state of a decoder.
pub(crate) struct Core {
    pub stream: usize,
    pub codec: String,
    pub time_base: Rational,
    capture: LogCapture,
}

impl Core {
    /// Makes a codec context for `stream` with its log captured; `threads` (0 = automatic)
    /// applies to decoders that thread. The caller opens it as video or audio.
    pub(crate) fn prepare(
        stream: &Stream<'_>,
        threads: Option<usize>,
    ) -> Result<(ffmpeg_next::codec::Context, Core), MediaError> {
        Self::from_parameters(
            stream.index(),
            stream.parameters(),
            Rational::from(stream.time_base()),
            threads,
        )
    }

    /// Like [`Core::prepare`], for a stream described by `params` alone (stream `index`,
    /// timestamps in `time_base`).
    pub(crate) fn from_parameters(
        index: usize,
        params: ffmpeg_next::codec::Parameters,
        time_base: Rational,
        threads: Option<usize>,
    ) -> Result<(ffmpeg_next::codec::Context, Core), MediaError> {
        let codec = codec_name(params.id().into());
        if ffmpeg_next::decoder::find(params.id()).is_none() {
            return Err(MediaError::NoDecoder { index, codec });
        }
        let mut context = ffmpeg_next::codec::Context::from_parameters(params)
            .map_err(|e| open_error(index, &codec, e))?;
        let capture = LogCapture::new();
        // SAFETY: the context is allocated and not yet opened, so its fields may be written.
        // `opaque` is only read back by our log callback.
        unsafe {
            let ctx = context.as_mut_ptr();
            (*ctx).opaque = capture.token();
            (*ctx).pkt_timebase = ffmpeg_next::Rational::from(time_base).into();
            if let Some(n) = threads {
                (*ctx).thread_count = n.min(64) as i32;
            }
        }
        Ok((
            context,
            Core {
                stream: index,
                codec,
                time_base,
                capture,
            },
        ))
    }

    /// The error for a decoder that would not open.
    pub(crate) fn open_error(&self, e: ffmpeg_next::Error) -> MediaError {
        open_error(self.stream, &self.codec, e)
    }

    pub(crate) fn send(&self, decoder: &mut Opened, packet: &Packet) -> Result<(), MediaError> {
        decoder
            .send_packet(&packet.inner)
            .map_err(|e| MediaError::Decode {
                stream: self.stream,
                pts_seconds: packet.seconds(),
                position: packet.position(),
                reason: self.explain(e),
            })
    }

    pub(crate) fn send_eof(&self, decoder: &mut Opened) -> Result<(), MediaError> {
        match decoder.send_eof() {
            Ok(()) | Err(ffmpeg_next::Error::Eof) => Ok(()),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Interprets `receive_frame`'s result: `Ok(true)` for a frame, `Ok(false)` when the
    /// decoder needs input or is drained.
    pub(crate) fn received(
        &self,
        result: Result<(), ffmpeg_next::Error>,
    ) -> Result<bool, MediaError> {
        match result {
            Ok(()) => Ok(true),
            Err(ffmpeg_next::Error::Eof) => Ok(false),
            Err(ffmpeg_next::Error::Other { errno }) if errno == libc::EAGAIN => Ok(false),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// The warnings and errors the decoder logged since the last call.
    pub(crate) fn take_messages(&self) -> Vec<String> {
        self.capture.drain()
    }

    fn failed(&self, e: ffmpeg_next::Error) -> MediaError {
        MediaError::Decode {
            stream: self.stream,
            pts_seconds: None,
            position: None,
            reason: self.explain(e),
        }
    }

    fn explain(&self, e: ffmpeg_next::Error) -> String {
        let said = self.capture.drain();
        if said.is_empty() {
            e.to_string()
        } else {
            format!("{e} ({})", said.join("; "))
        }
    }
}

fn open_error(index: usize, codec: &str, e: ffmpeg_next::Error) -> MediaError {
    MediaError::DecoderOpen {
        index,
        codec: codec.to_owned(),
        reason: e.to_string(),
    }
}

/// FFmpeg's best-effort presentation timestamp of a decoded frame.
pub(crate) fn frame_pts(raw: &ffmpeg_next::ffi::AVFrame) -> Option<i64> {
    [raw.best_effort_timestamp, raw.pts]
        .into_iter()
        .find(|&t| t != ffmpeg_next::ffi::AV_NOPTS_VALUE)
}

/// True when the decoder flagged the frame as corrupt or reported errors in it.
pub(crate) fn frame_corrupt(raw: &ffmpeg_next::ffi::AVFrame) -> bool {
    raw.flags & ffmpeg_next::ffi::AV_FRAME_FLAG_CORRUPT != 0 || raw.decode_error_flags != 0
}

/// The byte offset of the packet a frame came from.
pub(crate) fn frame_position(raw: &ffmpeg_next::ffi::AVFrame) -> Option<u64> {
    (raw.pkt_pos >= 0).then_some(raw.pkt_pos as u64)
}
