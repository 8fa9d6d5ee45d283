//! AAC-LC encoding through FFmpeg's native encoder: any decoded audio in, stereo at 48 kHz
//! out, in 1024-sample packets that start at the first input sample.
//!
//! Channels are mixed to stereo here (FFmpeg's channel order: front left, front right, centre,
//! LFE, then surround pairs; centre and surrounds at -3 dB, LFE dropped, the mix scaled so it
//! cannot clip) and the rate is converted by swresample. The encoder's priming delay is
//! taken out of the input, so a packet's timestamp is exactly when its sound plays.

use ffmpeg_next::format::Sample;
use ffmpeg_next::format::sample::Type;
use ffmpeg_next::software::resampling;
use ffmpeg_next::{ChannelLayout, ffi, frame};

use super::{MediaError, Packet, Rational};

/// The output sample rate.
pub const AAC_RATE: u32 = 48_000;
/// The default bit rate, bits per second.
pub const DEFAULT_AAC_BITRATE: u32 = 128_000;

/// -3 dB.
const MINUS_3DB: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// An AAC-LC encoder with its rate converter and sample queue.
pub struct AacEncoder {
    encoder: ffmpeg_next::encoder::Audio,
    resampler: Option<resampling::Context>,
    input_rate: u32,
    /// Stereo samples waiting to fill a frame.
    queue: [Vec<f32>; 2],
    /// Input samples (at 48 kHz) still to drop for the priming delay.
    skip: usize,
    /// The encoder's priming delay, samples.
    padding: i64,
    /// Timestamp of the next frame sent, in samples.
    next_pts: i64,
    frame_size: usize,
    packets: Vec<Packet>,
}

fn ffmpeg(what: &'static str) -> impl Fn(ffmpeg_next::Error) -> MediaError {
    move |e| MediaError::Ffmpeg {
        what,
        reason: e.to_string(),
    }
}

impl AacEncoder {
    /// An encoder at `bitrate` bits per second for input at `input_rate` samples per second.
    pub fn new(bitrate: u32, input_rate: u32) -> Result<Self, MediaError> {
        super::init();
        if !(8_000..=768_000).contains(&input_rate) {
            return Err(MediaError::Ffmpeg {
                what: "opening the AAC encoder",
                reason: format!("input sample rate {input_rate} (expected 8000 to 768000)"),
            });
        }
        if !(16_000..=512_000).contains(&bitrate) {
            return Err(MediaError::Ffmpeg {
                what: "opening the AAC encoder",
                reason: format!("bit rate {bitrate} (expected 16000 to 512000)"),
            });
        }
        let codec =
            ffmpeg_next::encoder::find(ffmpeg_next::codec::Id::AAC).ok_or(MediaError::Ffmpeg {
                what: "opening the AAC encoder",
                reason: "this FFmpeg has no AAC encoder".into(),
            })?;
        let ctx = ffmpeg_next::codec::context::Context::new_with_codec(codec);
        let mut enc = ctx
            .encoder()
            .audio()
            .map_err(ffmpeg("opening the AAC encoder"))?;
        enc.set_rate(AAC_RATE as i32);
        enc.set_format(Sample::F32(Type::Planar));
        enc.set_bit_rate(bitrate as usize);
        enc.set_time_base(ffmpeg_next::Rational(1, AAC_RATE as i32));
        // SAFETY: plain field writes on an encoder context not yet opened.
        unsafe {
            let raw = enc.as_mut_ptr();
            ffi::av_channel_layout_default(&mut (*raw).ch_layout, 2);
            // MP4 keeps the decoder configuration in the sample entry; bit-exact output makes
            // packaging repeatable.
            (*raw).flags |=
                ffi::AV_CODEC_FLAG_GLOBAL_HEADER as i32 | ffi::AV_CODEC_FLAG_BITEXACT as i32;
        }
        let encoder = enc
            .open_as(codec)
            .map_err(ffmpeg("opening the AAC encoder"))?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        // SAFETY: reading a field of the open encoder.
        let priming = unsafe { (*encoder.as_ptr()).initial_padding.max(0) as usize };
        let resampler = if input_rate == AAC_RATE {
            None
        } else {
            Some(
                resampling::Context::get(
                    Sample::F32(Type::Planar),
                    ChannelLayout::STEREO,
                    input_rate,
                    Sample::F32(Type::Planar),
                    ChannelLayout::STEREO,
                    AAC_RATE,
                )
                .map_err(ffmpeg("opening the resampler"))?,
            )
        };
        Ok(Self {
            encoder,
            resampler,
            input_rate,
            queue: [Vec::new(), Vec::new()],
            skip: priming,
            padding: priming as i64,
            next_pts: 0,
            frame_size,
            packets: Vec::new(),
        })
    }

    /// The encoder, for a muxer to copy its parameters.
    pub(crate) fn context(&self) -> *const ffi::AVCodecContext {
        // SAFETY: the pointer stays valid as long as `self`.
        unsafe { self.encoder.as_ptr() }
    }

    /// Adds samples (one vector per channel, any channel count, at the input rate). Returns
    /// the packets that became ready.
    pub fn push(&mut self, channels: &[Vec<f32>]) -> Result<Vec<Packet>, MediaError> {
        let [l, r] = stereo(channels);
        self.push_stereo(l, r)?;
        Ok(std::mem::take(&mut self.packets))
    }

    /// Adds `samples` of silence (input rate).
    pub fn push_silence(&mut self, samples: usize) -> Result<Vec<Packet>, MediaError> {
        let z = vec![0.0; samples];
        self.push_stereo(z.clone(), z)?;
        Ok(std::mem::take(&mut self.packets))
    }

    fn push_stereo(&mut self, l: Vec<f32>, r: Vec<f32>) -> Result<(), MediaError> {
        if l.is_empty() {
            return Ok(());
        }
        let (l, r) = match self.resampler.as_mut() {
            None => (l, r),
            Some(rs) => {
                let n = l.len();
                let mut input =
                    frame::Audio::new(Sample::F32(Type::Planar), n, ChannelLayout::STEREO);
                input.set_rate(self.input_rate);
                input.plane_mut::<f32>(0).copy_from_slice(&l);
                input.plane_mut::<f32>(1).copy_from_slice(&r);
                let cap = n * AAC_RATE as usize / self.input_rate as usize + 64;
                let mut out =
                    frame::Audio::new(Sample::F32(Type::Planar), cap, ChannelLayout::STEREO);
                rs.run(&input, &mut out).map_err(ffmpeg("resampling"))?;
                let got = out.samples();
                (
                    out.plane::<f32>(0)[..got].to_vec(),
                    out.plane::<f32>(1)[..got].to_vec(),
                )
            }
        };
        self.queue_samples(&l, &r)
    }

    fn queue_samples(&mut self, l: &[f32], r: &[f32]) -> Result<(), MediaError> {
        let drop = self.skip.min(l.len());
        self.skip -= drop;
        self.queue[0].extend_from_slice(&l[drop..]);
        self.queue[1].extend_from_slice(&r[drop..]);
        while self.queue[0].len() >= self.frame_size {
            let n = self.frame_size;
            self.send(n)?;
        }
        Ok(())
    }

    /// Sends the first `n` queued samples as one frame.
    fn send(&mut self, n: usize) -> Result<(), MediaError> {
        let mut f = frame::Audio::new(Sample::F32(Type::Planar), n, ChannelLayout::STEREO);
        f.set_rate(AAC_RATE);
        f.plane_mut::<f32>(0).copy_from_slice(&self.queue[0][..n]);
        f.plane_mut::<f32>(1).copy_from_slice(&self.queue[1][..n]);
        self.queue[0].drain(..n);
        self.queue[1].drain(..n);
        f.set_pts(Some(self.next_pts));
        self.next_pts += n as i64;
        self.encoder
            .send_frame(&f)
            .map_err(ffmpeg("encoding AAC"))?;
        self.drain()
    }

    fn drain(&mut self) -> Result<(), MediaError> {
        loop {
            let mut p = ffmpeg_next::Packet::empty();
            match self.encoder.receive_packet(&mut p) {
                Ok(()) => {
                    // Priming was taken from the input: shift the packets back onto it.
                    p.set_pts(p.pts().map(|t| t + self.padding));
                    p.set_dts(p.dts().map(|t| t + self.padding));
                    p.set_flags(ffmpeg_next::packet::Flags::KEY);
                    self.packets
                        .push(Packet::new(p, Rational::new(1, AAC_RATE as i32)));
                }
                Err(ffmpeg_next::Error::Other {
                    errno: libc::EAGAIN,
                })
                | Err(ffmpeg_next::Error::Eof) => {
                    return Ok(());
                }
                Err(e) => return Err(ffmpeg("encoding AAC")(e)),
            }
        }
    }

    /// Encodes what is queued (the last frame may be short) and flushes the encoder.
    pub fn finish(&mut self) -> Result<Vec<Packet>, MediaError> {
        if let Some(rs) = self.resampler.as_mut() {
            let mut out = frame::Audio::new(Sample::F32(Type::Planar), 4096, ChannelLayout::STEREO);
            if rs.flush(&mut out).is_ok() && out.samples() > 0 {
                let got = out.samples();
                let (l, r) = (
                    out.plane::<f32>(0)[..got].to_vec(),
                    out.plane::<f32>(1)[..got].to_vec(),
                );
                self.queue_samples(&l, &r)?;
            }
        }
        let rest = self.queue[0].len();
        if rest > 0 {
            self.send(rest)?;
        }
        self.encoder.send_eof().map_err(ffmpeg("encoding AAC"))?;
        self.drain()?;
        Ok(std::mem::take(&mut self.packets))
    }
}

/// Mixes any channel count to stereo (see the module's notes).
fn stereo(channels: &[Vec<f32>]) -> [Vec<f32>; 2] {
    match channels {
        [] => [Vec::new(), Vec::new()],
        [mono] => [mono.clone(), mono.clone()],
        [l, r] => [l.clone(), r.clone()],
        [l, r, rest @ ..] => {
            let n = l.len();
            // Centre (index 2) to both sides; LFE (3) dropped; then pairs of surrounds.
            let centre = rest.first();
            let surrounds: Vec<&Vec<f32>> = rest.iter().skip(2).collect();
            let pairs = surrounds.len().div_ceil(2);
            let gain = 1.0
                / (1.0 + if centre.is_some() { MINUS_3DB } else { 0.0 } + MINUS_3DB * pairs as f32);
            let mut out = [vec![0.0f32; n], vec![0.0f32; n]];
            for i in 0..n {
                let c = centre.and_then(|c| c.get(i)).copied().unwrap_or(0.0) * MINUS_3DB;
                let mut sl = 0.0;
                let mut sr = 0.0;
                for (k, s) in surrounds.iter().enumerate() {
                    let v = s.get(i).copied().unwrap_or(0.0) * MINUS_3DB;
                    if k % 2 == 0 { sl += v } else { sr += v }
                }
                out[0][i] = (l[i] + c + sl) * gain;
                out[1][i] = (r.get(i).copied().unwrap_or(0.0) + c + sr) * gain;
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_mix_to_stereo_without_clipping() {
        let [l, r] = stereo(&[vec![0.5, -0.25]]);
        assert_eq!(
            (l, r),
            (vec![0.5, -0.25], vec![0.5, -0.25]),
            "mono to both sides"
        );
        // 5.1 (FL FR FC LFE SL SR) at full scale everywhere: the mix stays within [-1, 1],
        // the LFE is dropped, and the centre reaches both sides at -3 dB.
        let full: Vec<Vec<f32>> = vec![vec![1.0]; 6];
        let [l, r] = stereo(&full);
        assert!(
            (l[0] - 1.0).abs() < 1e-6 && (r[0] - 1.0).abs() < 1e-6,
            "{l:?} {r:?}"
        );
        let mut centre = vec![vec![0.0f32]; 6];
        centre[2] = vec![1.0];
        let [l, r] = stereo(&centre);
        let gain = 1.0 / (1.0 + 2.0 * MINUS_3DB);
        assert!((l[0] - MINUS_3DB * gain).abs() < 1e-6 && l == r);
        let mut lfe = vec![vec![0.0f32]; 6];
        lfe[3] = vec![1.0];
        assert_eq!(stereo(&lfe), [vec![0.0], vec![0.0]]);
        // A surround pair goes to its side.
        let mut sl = vec![vec![0.0f32]; 6];
        sl[4] = vec![1.0];
        let [l, r] = stereo(&sl);
        assert!(l[0] > 0.0 && r[0] == 0.0);
    }
}
