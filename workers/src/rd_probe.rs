//! The probe task: rate-distortion points of one chunk.
//!
//! The chunk is encoded at one resolution with several quality settings at once (the master is
//! read and scaled once for all of them). Each encoding is then decoded in memory, brought back
//! to the master's size with bicubic scaling, as a viewer's player would show it, and scored
//! frame by frame with VMAF against the master's own frames, read a second time. Nothing is
//! written to disk and memory holds a frame per encoding.
//!
//! The motion feature depends on the master alone, so it is tracked once for all settings, and
//! each master frame's wavelet decomposition (ADM's reference half) is made once for all. A
//! probe may score one frame in `every` (the rest are decoded but neither scaled nor scored):
//! each unscored frame takes the score of the nearest scored one, so per-frame scores keep
//! their length and every pooled figure is an estimate from the samples.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use vmaf::{Model, Tables};

use crate::encode::{
    ChunkSource, EncodeError, EncodeSettings, EncodedChunk, encode_chunk_many, source,
};
use crate::measure::picture;
use media::cpu::thread_cpu_seconds;
use media::{DecoderOptions, OwnedFrame, Resizer, ScaleFilter, VideoDecoder};

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
    /// VMAF of every frame, at the master's size (with sampling, each frame holds the
    /// nearest scored frame's).
    pub vmaf: Vec<f64>,
    /// One frame in this many was scored.
    pub scored_every: u64,
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
    /// The encodings themselves, one per setting: the same bytes [`crate::encode::encode_chunk`]
    /// gives, so a probe at a rung's final settings can stand as that rung's chunk.
    pub encoded: Vec<EncodedChunk>,
}

/// Encodes `source` with each of `settings` (one size and depth) and scores each against the
/// master with `model`, one frame in `every` (1: every frame).
#[tracing::instrument(skip_all, fields(start = source.start_frame, frames = source.frames, height = settings.first().map(|s| s.height)))]
pub fn probe_chunk(
    source: &ChunkSource,
    settings: &[EncodeSettings],
    model: &Model,
    every: u64,
) -> Result<ProbeRun, EncodeError> {
    let t0 = thread_cpu_seconds();
    let encoded = encode_chunk_many(source, settings)?;
    let t1 = thread_cpu_seconds();
    let every = every.max(1);
    let scores = score_chunks(source, &encoded, model, every)?;
    let t2 = thread_cpu_seconds();
    let points = settings
        .iter()
        .zip(&encoded)
        .zip(scores)
        .map(|((s, e), vmaf)| ProbePoint {
            settings: s.clone(),
            bits: e.packets.iter().map(|p| p.data.len() as u64 * 8).sum(),
            frame_bits: frame_bits(e),
            vmaf,
            scored_every: every,
        })
        .collect();
    Ok(ProbeRun {
        points,
        encode_cpu_seconds: t1 - t0,
        score_cpu_seconds: t2 - t1,
        encoded,
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

/// The frames scored when one in `every` of `frames` is: the middle of each run of `every`,
/// and at least one.
pub fn sampled_frames(frames: u64, every: u64) -> Vec<u64> {
    let every = every.max(1);
    if frames == 0 {
        return Vec::new();
    }
    let offset = (every / 2).min((frames - 1) / 2);
    (offset..frames).step_by(every as usize).collect()
}

/// Per-frame values from the samples at `at` (rising): each frame takes the nearest sample's
/// value, the earlier one on a tie.
pub fn hold(at: &[u64], values: &[f64], frames: u64) -> Vec<f64> {
    let mut out = Vec::with_capacity(frames as usize);
    let mut k = 0;
    for f in 0..frames {
        while k + 1 < at.len() && at[k + 1].abs_diff(f) < at[k].abs_diff(f) {
            k += 1;
        }
        out.push(values.get(k).copied().unwrap_or(0.0));
    }
    out
}

/// One encoding being decoded and scored in step with the master.
struct Scored<'a> {
    chunk: &'a EncodedChunk,
    decoder: VideoDecoder,
    next_packet: usize,
    eof: bool,
    resizer: Option<Resizer>,
    frame: OwnedFrame,
    /// The spatial features of the last scored frame, waiting for the next frame's motion.
    pending: Option<(u64, vmaf::Spatial)>,
    scores: Vec<f64>,
}

impl<'a> Scored<'a> {
    /// Ready to decode `chunk`, an encoding of `source` of which `picks` frames are scored.
    fn new(
        chunk: &'a EncodedChunk,
        source: &ChunkSource,
        picks: usize,
    ) -> Result<Self, EncodeError> {
        let decoder = VideoDecoder::for_chunk(
            &chunk.params,
            &chunk.extradata(),
            source.frame_rate,
            &DecoderOptions { threads: 1 },
        )?;
        Ok(Self {
            chunk,
            decoder,
            next_packet: 0,
            eof: false,
            resizer: None,
            frame: OwnedFrame::empty(),
            pending: None,
            scores: Vec::with_capacity(picks),
        })
    }

    /// Scores the frame waiting for its `motion2`, which needs the next frame's motion (none
    /// after the last frame); `motion` holds every frame's so far.
    fn settle(&mut self, model: &Model, motion: &[f64], next: Option<f64>) {
        if let Some((i, spatial)) = self.pending.take() {
            let own = motion[i as usize];
            let motion2 = match (i, next) {
                (0, _) => 0.0,
                (_, Some(n)) => own.min(n),
                (_, None) => own,
            };
            self.scores
                .push(vmaf::predict(model, &spatial, i, own, motion2).vmaf);
        }
    }

    /// Decodes the next frame; when `keep`, into `self.frame` at `reference`'s size and layout.
    fn next(&mut self, reference: &OwnedFrame, index: u64, keep: bool) -> Result<(), EncodeError> {
        let fail = |reason: String| EncodeError::Source {
            start_frame: index,
            reason,
        };
        loop {
            if let Some(f) = self.decoder.receive()? {
                if !keep {
                    return Ok(());
                }
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

/// Per-frame VMAF of each of `encoded` (encodings of `source`) against the master, scoring one
/// frame in `every`.
fn score_chunks(
    source: &ChunkSource,
    encoded: &[EncodedChunk],
    model: &Model,
    every: u64,
) -> Result<Vec<Vec<f64>>, EncodeError> {
    let options = vmaf::Options {
        psnr: false,
        ssim: false,
        motion: false,
        ..vmaf::Options::default()
    };
    let picks = sampled_frames(source.frames, every);
    let mut scored = encoded
        .iter()
        .map(|chunk| Scored::new(chunk, source, picks.len()))
        .collect::<Result<Vec<_>, EncodeError>>()?;
    let mut reference = OwnedFrame::empty();
    let mut workspace = vmaf::Workspace::default();
    let mut track = vmaf::Motion::new();
    let mut motion: Vec<f64> = Vec::with_capacity(source.frames as usize);
    let mut next_pick = 0;
    let score_error = |index: u64, e: vmaf::Error| EncodeError::Source {
        start_frame: source.start_frame + index,
        reason: format!("scoring: {e}"),
    };
    source::read_frames(source, &mut |f, index| {
        f.copy_to(&mut reference);
        let rp = picture(&reference).map_err(|e| score_error(index, e))?;
        let m = track.push(&rp).map_err(|e| score_error(index, e))?;
        motion.push(m);
        let keep = picks.get(next_pick) == Some(&index);
        if keep {
            next_pick += 1;
        }
        for s in &mut scored {
            s.settle(model, &motion, Some(m));
            s.next(&reference, source.start_frame + index, keep)?;
        }
        if keep {
            // Every encoding against the one reference frame, its decomposition done once.
            let pictures = scored
                .iter()
                .map(|s| picture(&s.frame))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| score_error(index, e))?;
            let spatials = vmaf::spatial_many(&rp, &pictures, &options, tables(), &mut workspace)
                .map_err(|e| score_error(index, e))?;
            drop(pictures);
            for (s, spatial) in scored.iter_mut().zip(spatials) {
                s.pending = Some((index, spatial));
            }
        }
        Ok(())
    })?;
    scored
        .into_iter()
        .map(|mut s| {
            s.settle(model, &motion, None);
            if motion.len() as u64 != source.frames || s.scores.len() != picks.len() {
                return Err(EncodeError::Source {
                    start_frame: source.start_frame,
                    reason: format!(
                        "scored {} of {} frames ({} read of {})",
                        s.scores.len(),
                        picks.len(),
                        motion.len(),
                        source.frames
                    ),
                });
            }
            Ok(hold(&picks, &s.scores, source.frames))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_sit_mid_run_and_hold_to_the_nearest() {
        assert_eq!(sampled_frames(10, 1), (0..10).collect::<Vec<_>>());
        assert_eq!(sampled_frames(10, 4), [2, 6]);
        assert_eq!(sampled_frames(1, 4), [0]);
        assert_eq!(sampled_frames(3, 8), [1]);
        assert!(sampled_frames(0, 4).is_empty());
        assert_eq!(
            hold(&[2, 6], &[1.0, 2.0], 10),
            [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]
        );
        assert_eq!(hold(&[0, 1, 2], &[5.0, 6.0, 7.0], 3), [5.0, 6.0, 7.0]);
    }
}
