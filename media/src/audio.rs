//! Audio decoding.

use ffmpeg_next::ffi::AVSampleFormat;
use ffmpeg_next::util::frame;

use super::decoder::{Core, frame_corrupt, frame_position, frame_pts};
use super::input::Packet;
use super::probe::sample_fmt_from_raw;
use super::{MediaError, Rational};

/// A decoder for one audio stream. It lends out one frame at a time.
pub struct AudioDecoder {
    decoder: ffmpeg_next::decoder::Audio,
    core: Core,
    decoded: frame::Audio,
}

/// A block of decoded audio, borrowed from its decoder until the next call.
pub struct AudioFrame<'a> {
    frame: &'a frame::Audio,
    /// Presentation timestamp in [`AudioFrame::time_base`] units (FFmpeg's best effort).
    pub pts: Option<i64>,
    /// The stream's time base.
    pub time_base: Rational,
    /// Samples per channel in this frame.
    pub samples: usize,
    /// Samples per second.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: usize,
    /// True when the decoder flagged the frame as corrupt.
    pub corrupt: bool,
    /// Byte offset in the file of the packet this frame came from, when known.
    pub position: Option<u64>,
}

impl AudioDecoder {
    pub(crate) fn new(
        stream: &ffmpeg_next::format::stream::Stream<'_>,
    ) -> Result<Self, MediaError> {
        let (context, core) = Core::prepare(stream, None)?;
        let decoder = context.decoder().audio().map_err(|e| core.open_error(e))?;
        Ok(Self {
            decoder,
            core,
            decoded: frame::Audio::empty(),
        })
    }

    /// The stream this decoder reads.
    pub fn stream(&self) -> usize {
        self.core.stream
    }

    /// Feeds one packet; see [`super::VideoDecoder::send`].
    pub fn send(&mut self, packet: &Packet) -> Result<(), MediaError> {
        self.core.send(&mut self.decoder, packet)
    }

    /// Signals the end of the stream.
    pub fn send_eof(&mut self) -> Result<(), MediaError> {
        self.core.send_eof(&mut self.decoder)
    }

    /// Takes the next decoded frame, or `None` when the decoder needs more input.
    pub fn receive(&mut self) -> Result<Option<AudioFrame<'_>>, MediaError> {
        if !self
            .core
            .received(self.decoder.receive_frame(&mut self.decoded))?
        {
            return Ok(None);
        }
        // SAFETY: `decoded` holds a frame the decoder just returned; we read plain fields.
        let raw = unsafe { &*self.decoded.as_ptr() };
        Ok(Some(AudioFrame {
            frame: &self.decoded,
            pts: frame_pts(raw),
            time_base: self.core.time_base,
            samples: raw.nb_samples.max(0) as usize,
            sample_rate: raw.sample_rate.max(0) as u32,
            channels: raw.ch_layout.nb_channels.max(0) as usize,
            corrupt: frame_corrupt(raw),
            position: frame_position(raw),
        }))
    }

    /// The warnings and errors the decoder logged since the last call.
    pub fn take_messages(&mut self) -> Vec<String> {
        self.core.take_messages()
    }
}

impl AudioFrame<'_> {
    /// Presentation time in seconds.
    pub fn seconds(&self) -> Option<f64> {
        self.pts.map(|t| self.time_base.seconds(t))
    }

    /// Duration in seconds.
    pub fn duration_seconds(&self) -> f64 {
        if self.sample_rate == 0 {
            0.0
        } else {
            self.samples as f64 / f64::from(self.sample_rate)
        }
    }

    /// The samples as one `f32` vector per channel, in [-1, 1] for integer formats.
    ///
    /// Returns `None` for a sample format that FFmpeg's decoders do not produce.
    pub fn to_f32_planar(&self) -> Option<Vec<Vec<f32>>> {
        use AVSampleFormat::*;
        // SAFETY: reading the frame's format field.
        let fmt = sample_fmt_from_raw(unsafe { (*self.frame.as_ptr()).format });
        let (n, ch) = (self.samples, self.channels);
        let planar = matches!(
            fmt,
            AV_SAMPLE_FMT_U8P
                | AV_SAMPLE_FMT_S16P
                | AV_SAMPLE_FMT_S32P
                | AV_SAMPLE_FMT_FLTP
                | AV_SAMPLE_FMT_DBLP
                | AV_SAMPLE_FMT_S64P
        );
        let bytes_per = match fmt {
            AV_SAMPLE_FMT_U8 | AV_SAMPLE_FMT_U8P => 1,
            AV_SAMPLE_FMT_S16 | AV_SAMPLE_FMT_S16P => 2,
            AV_SAMPLE_FMT_S32 | AV_SAMPLE_FMT_S32P | AV_SAMPLE_FMT_FLT | AV_SAMPLE_FMT_FLTP => 4,
            AV_SAMPLE_FMT_DBL | AV_SAMPLE_FMT_DBLP | AV_SAMPLE_FMT_S64 | AV_SAMPLE_FMT_S64P => 8,
            _ => return None,
        };
        let convert = |b: &[u8]| -> f32 {
            match fmt {
                AV_SAMPLE_FMT_U8 | AV_SAMPLE_FMT_U8P => (f32::from(b[0]) - 128.0) / 128.0,
                AV_SAMPLE_FMT_S16 | AV_SAMPLE_FMT_S16P => {
                    f32::from(i16::from_ne_bytes([b[0], b[1]])) / 32768.0
                }
                AV_SAMPLE_FMT_S32 | AV_SAMPLE_FMT_S32P => {
                    i32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0
                }
                AV_SAMPLE_FMT_FLT | AV_SAMPLE_FMT_FLTP => {
                    f32::from_ne_bytes([b[0], b[1], b[2], b[3]])
                }
                AV_SAMPLE_FMT_DBL | AV_SAMPLE_FMT_DBLP => {
                    f64::from_ne_bytes(b[..8].try_into().unwrap_or([0; 8])) as f32
                }
                _ => {
                    i64::from_ne_bytes(b[..8].try_into().unwrap_or([0; 8])) as f32
                        / 9_223_372_036_854_775_808.0
                }
            }
        };
        let mut out = vec![Vec::with_capacity(n); ch];
        // SAFETY: a decoded frame holds `ch` planes of `n` samples (planar) or one plane of
        // `n * ch` interleaved samples, of `bytes_per` bytes each, at `extended_data`.
        unsafe {
            let raw = &*self.frame.as_ptr();
            if raw.extended_data.is_null() {
                return None;
            }
            if planar {
                for (c, dst) in out.iter_mut().enumerate() {
                    let p = *raw.extended_data.add(c);
                    let bytes = std::slice::from_raw_parts(p, n * bytes_per);
                    dst.extend(bytes.chunks_exact(bytes_per).map(convert));
                }
            } else {
                let p = *raw.extended_data;
                let bytes = std::slice::from_raw_parts(p, n * ch * bytes_per);
                for (i, s) in bytes.chunks_exact(bytes_per).enumerate() {
                    out[i % ch].push(convert(s));
                }
            }
        }
        Some(out)
    }
}

impl std::fmt::Debug for AudioDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioDecoder")
            .field("stream", &self.core.stream)
            .finish()
    }
}
