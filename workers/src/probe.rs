//! The probe task: rate-distortion points of one chunk.
//!
//! The chunk is encoded at one resolution with several quality settings at once (the master is
//! read and scaled once for all of them). Each encoding is then decoded in memory, brought back
//! to the master's size with bicubic scaling, as a viewer's player would show it, and scored
//! frame by frame with VMAF against the master's own frames, read a second time. Nothing is
//! written to disk and memory holds a frame per encoding.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use vmaf::{Model, Tables, Temporal};

use crate::encode::{
    ChunkSource, EncodeError, EncodeSettings, EncodedChunk, encode_chunk_many, source,
};
use crate::measure::picture;
use crate::media::{DecoderOptions, OwnedFrame, Resizer, ScaleFilter, VideoDecoder};

/// What one setting gave on one chunk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbePoint {
    /// The setting.
    pub settings: EncodeSettings,
    /// Bits of the encoded frames.
    pub bits: u64,
    /// Bits of every frame, in presentation order (the stream headers count in the first
    /// frame coded).
    pub frame_bits: Vec<u64>,
    /// VMAF of every frame, at the master's size.
    pub vmaf: Vec<f64>,
}

/// The points of a probe task, and what they cost.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeRun {
    /// One point per setting, in order.
    pub points: Vec<ProbePoint>,
    /// CPU time of the calling thread spent reading and encoding, in seconds.
    pub encode_cpu_seconds: f64,
    /// CPU time of the calling thread spent decoding, scaling and scoring, in seconds.
    pub score_cpu_seconds: f64,
}

/// CPU time of the calling thread, in seconds.
pub fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    if r != 0 {
        return 0.0;
    }
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// Encodes `source` with each of `settings` (one size and depth) and scores each against the
/// master with `model`.
#[tracing::instrument(skip_all, fields(start = source.start_frame, frames = source.frames, height = settings.first().map(|s| s.height)))]
pub fn probe_chunk(
    source: &ChunkSource,
    settings: &[EncodeSettings],
    model: &Model,
) -> Result<ProbeRun, EncodeError> {
    let t0 = thread_cpu_seconds();
    let encoded = encode_chunk_many(source, settings)?;
    let t1 = thread_cpu_seconds();
    let scores = score_chunks(source, &encoded, model)?;
    let t2 = thread_cpu_seconds();
    let points = settings
        .iter()
        .zip(encoded)
        .zip(scores)
        .map(|((s, e), vmaf)| ProbePoint {
            settings: s.clone(),
            bits: e.packets.iter().map(|p| p.data.len() as u64 * 8).sum(),
            frame_bits: frame_bits(&e),
            vmaf,
        })
        .collect();
    Ok(ProbeRun {
        points,
        encode_cpu_seconds: t1 - t0,
        score_cpu_seconds: t2 - t1,
    })
}

/// Bits of every frame of `chunk` by presentation index; packets stamped outside the chunk
/// count in the nearest frame.
fn frame_bits(chunk: &EncodedChunk) -> Vec<u64> {
    let mut out = vec![0u64; chunk.packets.len()];
    let last = out.len().saturating_sub(1) as i64;
    for p in &chunk.packets {
        if let Some(slot) = out.get_mut(p.pts.clamp(0, last) as usize) {
            *slot += p.data.len() as u64 * 8;
        }
    }
    out
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(Tables::new)
}

/// One encoding being decoded and scored in step with the master.
struct Scored<'a> {
    chunk: &'a EncodedChunk,
    decoder: VideoDecoder,
    next_packet: usize,
    eof: bool,
    resizer: Option<Resizer>,
    frame: OwnedFrame,
    temporal: Temporal,
    scores: Vec<f64>,
}

impl Scored<'_> {
    /// Decodes the next frame into `self.frame`, at `reference`'s size and layout.
    fn next(&mut self, reference: &OwnedFrame, index: u64) -> Result<(), EncodeError> {
        let fail = |reason: String| EncodeError::Source {
            start_frame: index,
            reason,
        };
        loop {
            if let Some(f) = self.decoder.receive()? {
                if (f.width(), f.height(), f.layout())
                    == (reference.width, reference.height, reference.layout)
                {
                    f.copy_to(&mut self.frame);
                } else {
                    let r = self.resizer.get_or_insert_with(|| {
                        Resizer::new(
                            reference.width as u32,
                            reference.height as u32,
                            reference.layout,
                            ScaleFilter::Bicubic,
                        )
                    });
                    r.resize_into(&f, &mut self.frame)?;
                }
                return Ok(());
            }
            if let Some(p) = self.chunk.packets.get(self.next_packet) {
                self.decoder.send_chunk_packet(p)?;
                self.next_packet += 1;
            } else if !self.eof {
                self.decoder.send_eof()?;
                self.eof = true;
            } else {
                return Err(fail(format!(
                    "the encoding decoded to {index} frames, fewer than the master's"
                )));
            }
        }
    }
}

/// Per-frame VMAF of each of `encoded` (encodings of `source`) against the master.
fn score_chunks(
    source: &ChunkSource,
    encoded: &[EncodedChunk],
    model: &Model,
) -> Result<Vec<Vec<f64>>, EncodeError> {
    let options = vmaf::Options {
        psnr: false,
        ssim: false,
        ..vmaf::Options::default()
    };
    let mut scored = encoded
        .iter()
        .map(|chunk| {
            let decoder = VideoDecoder::for_chunk(
                &chunk.params,
                &chunk.extradata(),
                source.frame_rate,
                &DecoderOptions { threads: 1 },
            )?;
            Ok(Scored {
                chunk,
                decoder,
                next_packet: 0,
                eof: false,
                resizer: None,
                frame: OwnedFrame::empty(),
                temporal: Temporal::new(model.clone()),
                scores: Vec::with_capacity(source.frames as usize),
            })
        })
        .collect::<Result<Vec<_>, EncodeError>>()?;
    let mut reference = OwnedFrame::empty();
    let mut workspace = vmaf::Workspace::default();
    let score_error = |index: u64, e: vmaf::Error| EncodeError::Source {
        start_frame: source.start_frame + index,
        reason: format!("scoring: {e}"),
    };
    source::read_frames(source, &mut |f, index| {
        f.copy_to(&mut reference);
        let rp = picture(&reference).map_err(|e| score_error(index, e))?;
        for s in &mut scored {
            s.next(&reference, source.start_frame + index)?;
            let dp = picture(&s.frame).map_err(|e| score_error(index, e))?;
            let spatial = vmaf::spatial(&rp, &dp, &options, tables(), &mut workspace)
                .map_err(|e| score_error(index, e))?;
            if let Some(score) = s
                .temporal
                .push(spatial)
                .map_err(|e| score_error(index, e))?
            {
                s.scores.push(score.vmaf);
            }
        }
        Ok(())
    })?;
    scored
        .into_iter()
        .map(|mut s| {
            s.scores.extend(s.temporal.finish().map(|f| f.vmaf));
            if s.scores.len() as u64 != source.frames {
                return Err(EncodeError::Source {
                    start_frame: source.start_frame,
                    reason: format!("scored {} frames of {}", s.scores.len(), source.frames),
                });
            }
            Ok(s.scores)
        })
        .collect()
}
