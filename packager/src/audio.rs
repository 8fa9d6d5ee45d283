//! Audio tracks: each source track decoded, re-encoded to AAC-LC, laid on the title's
//! timeline (time 0 is the first video frame; gaps become silence, sound before the start or
//! after the end is cut) and fragmented at the video's segment boundaries.

use std::path::{Path, PathBuf};

use media::{AAC_RATE, AacEncoder, Demuxer, Fragmenter, MediaError};

use crate::bmff::BoxError;
use crate::codecs::{self, Media};
use crate::fragments;
use crate::presentation::{Audio, Segment, Timeline, bcp47, iso639_2, language_name};

/// One audio track to package.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioSource {
    /// The file.
    pub path: PathBuf,
    /// Its stream index.
    pub stream: usize,
    /// Language (ISO 639-1 or -2; `und` when unknown).
    pub language: String,
    /// Seconds of this file's clock at the title's start (the master's first video frame).
    pub origin_seconds: f64,
    /// What it is for (an audio description, or the language's main track).
    pub role: crate::presentation::Role,
}

/// Why an audio track could not be packaged.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// Reading, decoding, encoding or writing failed.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The stream is not usable.
    #[error("{path} stream {stream}: {reason}")]
    Stream {
        /// The file.
        path: PathBuf,
        /// The stream.
        stream: usize,
        /// Why.
        reason: String,
    },
    /// The encoded track's boxes could not be read back.
    #[error(transparent)]
    Boxes(#[from] BoxError),
    /// The encoded track is not audio.
    #[error("the track is not audio")]
    NotAudio,
    /// Another number of segments than the video has.
    #[error("{written} segments written, the video has {expected}")]
    Segments {
        /// Segments in the track.
        written: usize,
        /// Segments of the video.
        expected: usize,
    },
}

/// What [`encode`] wrote: a fragmented MP4 at `path`, ready to split.
pub struct Encoded {
    /// The file.
    pub path: PathBuf,
}

/// Decodes `source`, encodes AAC at `bitrate` for `duration_seconds` of title time, and writes
/// a fragmented MP4 to `out`, cut at each of `cuts_seconds` (segment starts after the first).
pub fn encode(
    source: &AudioSource,
    bitrate: u32,
    duration_seconds: f64,
    cuts_seconds: &[f64],
    out: &Path,
) -> Result<Encoded, AudioError> {
    let mut demuxer = Demuxer::open(&source.path)?;
    let info = demuxer
        .info()
        .streams
        .get(source.stream)
        .cloned()
        .ok_or_else(|| stream_error(source, "no such stream".into()))?;
    let rate = info
        .audio
        .as_ref()
        .map(|a| a.sample_rate)
        .filter(|r| *r > 0)
        .ok_or_else(|| stream_error(source, format!("not an audio stream ({:?})", info.kind)))?;
    let mut decoder = demuxer.audio_decoder(source.stream)?;
    let mut encoder = AacEncoder::new(bitrate, rate)?;
    let lang = iso639_2(&source.language);
    let mut cutter = Cutter {
        fragmenter: Fragmenter::for_aac(out, &encoder, Some(&lang))?,
        cuts: cuts_seconds
            .iter()
            .map(|s| (s * f64::from(AAC_RATE)).round() as i64)
            .collect(),
        next: 0,
    };
    let mut placer = Placer {
        source,
        rate,
        total: (duration_seconds * f64::from(rate)).round().max(0.0) as u64,
        placed: 0,
    };
    let mut eof = false;
    while !eof {
        match demuxer.read() {
            Ok(Some(p)) => {
                if p.stream() != source.stream {
                    continue;
                }
                decoder.send(&p)?;
            }
            Ok(None) => {
                decoder.send_eof()?;
                eof = true;
            }
            Err(e) => return Err(e.into()),
        }
        while let Some(frame) = decoder.receive()? {
            let packets = placer.feed(&frame, &mut encoder)?;
            cutter.write(packets)?;
        }
    }
    // Silence to the end of the title.
    if placer.placed < placer.total {
        let packets = encoder.push_silence((placer.total - placer.placed) as usize)?;
        cutter.write(packets)?;
    }
    let packets = encoder.finish()?;
    cutter.write(packets)?;
    cutter.fragmenter.finish()?;
    Ok(Encoded {
        path: out.to_owned(),
    })
}

fn stream_error(source: &AudioSource, reason: String) -> AudioError {
    AudioError::Stream {
        path: source.path.clone(),
        stream: source.stream,
        reason,
    }
}

/// The fragmenter, cutting a new segment at each cut (AAC sample times).
struct Cutter {
    fragmenter: Fragmenter,
    cuts: Vec<i64>,
    /// The next cut to make.
    next: usize,
}

impl Cutter {
    fn write(&mut self, packets: Vec<media::Packet>) -> Result<(), MediaError> {
        for p in packets {
            let pts = p.pts().unwrap_or(0);
            while self.next < self.cuts.len() && pts >= self.cuts[self.next] {
                self.fragmenter.cut()?;
                self.next += 1;
            }
            self.fragmenter.write(&p)?;
        }
        Ok(())
    }
}

/// Lays decoded frames on the title's timeline, at the input rate.
struct Placer<'a> {
    source: &'a AudioSource,
    rate: u32,
    /// The title's length.
    total: u64,
    /// Input samples placed so far.
    placed: u64,
}

impl Placer<'_> {
    /// Encodes the part of `frame` that falls inside the title, after silence for any gap
    /// before it.
    fn feed(
        &mut self,
        frame: &media::AudioFrame<'_>,
        encoder: &mut AacEncoder,
    ) -> Result<Vec<media::Packet>, AudioError> {
        let rate = self.rate;
        if frame.sample_rate != rate {
            return Err(stream_error(
                self.source,
                format!(
                    "the sample rate changes from {rate} to {} at {:.3} s",
                    frame.sample_rate,
                    frame.seconds().unwrap_or(0.0)
                ),
            ));
        }
        let Some(planar) = frame.to_f32_planar() else {
            return Err(stream_error(
                self.source,
                "a sample format FFmpeg's decoders do not produce".into(),
            ));
        };
        let start_s = frame
            .seconds()
            .unwrap_or(self.placed as f64 / f64::from(rate))
            - self.source.origin_seconds;
        let start = (start_s * f64::from(rate)).round() as i64;
        let mut packets = Vec::new();
        // A gap before this frame becomes silence (up to the title's end).
        if start > self.placed as i64 {
            let gap = (start as u64).min(self.total) - self.placed;
            packets.extend(encoder.push_silence(gap as usize)?);
            self.placed += gap;
        }
        // Samples already placed (overlap) or before the start are dropped, as is anything
        // after the end.
        let skip = (self.placed as i64 - start).max(0) as usize;
        let room = (self.total - self.placed) as usize;
        let take: Vec<Vec<f32>> = planar
            .iter()
            .map(|c| c.iter().skip(skip).take(room).copied().collect())
            .collect();
        let n = take.first().map_or(0, Vec::len);
        if n > 0 {
            packets.extend(encoder.push(&take)?);
            self.placed += n as u64;
        }
        Ok(packets)
    }
}

/// An encoded track read back: its description, and where its parts are in the file.
pub struct Described {
    /// What the manifests list.
    pub track: Audio,
    /// Bytes of the init segment at the start.
    pub init_len: usize,
    /// Byte ranges of the media segments.
    pub ranges: Vec<(usize, usize)>,
}

/// Reads an encoded track back into its init segment, segments and description.
pub fn describe(
    source: &AudioSource,
    id: &str,
    default: bool,
    bytes: &[u8],
) -> Result<Described, AudioError> {
    let split = fragments::split(bytes)?;
    let init_len = split.init_len as usize;
    let info = codecs::track_info(&bytes[..init_len])?;
    let Media::Audio {
        channels,
        sample_rate,
    } = info.media
    else {
        return Err(AudioError::NotAudio);
    };
    let mut timeline = Timeline {
        timescale: info.timescale,
        segments: Vec::new(),
    };
    let mut ranges = Vec::new();
    for s in &split.segments {
        ranges.push((s.range.0 as usize, s.range.1 as usize));
        timeline.segments.push(Segment {
            start: s.start,
            duration: s.duration,
            bytes: s.range.1 - s.range.0,
            key_bytes: s.first_sample_end,
        });
    }
    let language = bcp47(&source.language);
    Ok(Described {
        track: Audio {
            id: id.to_owned(),
            name: format!("{}{}", language_name(&language), source.role.label()),
            language,
            codecs: info.codecs,
            channels,
            sample_rate,
            default,
            timeline,
            protection: None,
            role: source.role,
        },
        init_len,
        ranges,
    })
}
