//! AV1 through the rav1e crate, natively: decoded frames go straight into rav1e's frames, with
//! no FFmpeg encoder in between.

use ffmpeg_next::util::frame;
use rav1e::prelude::{
    ChromaSampling, ColorDescription, ColorPrimaries, Config, Context, EncoderConfig,
    EncoderStatus, FrameParameters, FrameType, FrameTypeOverride, MatrixCoefficients, Pixel,
    PixelRange, Rational as RavRational, SceneDetectionSpeed, SpeedSettings,
    TransferCharacteristics,
};

use super::{EncodeError, EncodeSettings, RateControl};
use media::Rational;
use media::chunk::{ChunkPacket, EncodedChunk, FLAG_KEY, StreamParams, hex};

/// A rav1e context at 8 or 10 bits.
enum Ctx {
    Eight(Context<u8>),
    Ten(Context<u16>),
}

/// rav1e for one chunk; opens on the first frame, whose colour description it keeps.
pub(super) struct Rav1eEncoder {
    settings: EncodeSettings,
    frame_rate: Rational,
    ctx: Option<Ctx>,
    packets: Vec<ChunkPacket>,
    color: [i32; 4],
    frames_in: u64,
}

fn fail(what: &'static str, reason: impl ToString) -> EncodeError {
    EncodeError::Encoder {
        encoder: "rav1e",
        what,
        reason: reason.to_string(),
    }
}

impl Rav1eEncoder {
    pub(super) fn new(
        settings: &EncodeSettings,
        frame_rate: Rational,
    ) -> Result<Self, EncodeError> {
        Ok(Self {
            settings: settings.clone(),
            frame_rate,
            ctx: None,
            packets: Vec::new(),
            color: [0, 2, 2, 2],
            frames_in: 0,
        })
    }

    fn open(&mut self, first: &frame::Video) -> Result<(), EncodeError> {
        let s = &self.settings;
        // SAFETY: plain fields of a frame the resizer filled.
        let raw = unsafe { &*first.as_ptr() };
        self.color = [
            raw.color_range as i32,
            raw.color_primaries as i32,
            raw.color_trc as i32,
            raw.colorspace as i32,
        ];
        let quantizer = match s.rate {
            RateControl::Crf(q) => q as usize,
            RateControl::Qp(q) => q as usize,
        };
        let mut speed = SpeedSettings::from_preset(s.preset.parse().unwrap_or(6));
        // Keyframes only where the chunk plan puts them.
        speed.scene_detection_mode = SceneDetectionSpeed::None;
        let enc = EncoderConfig {
            width: s.width as usize,
            height: s.height as usize,
            bit_depth: usize::from(s.bit_depth),
            chroma_sampling: ChromaSampling::Cs420,
            time_base: RavRational::new(self.frame_rate.den as u64, self.frame_rate.num as u64),
            min_key_frame_interval: u64::from(s.keyint),
            max_key_frame_interval: u64::from(s.keyint),
            quantizer,
            speed_settings: speed,
            pixel_range: if self.color[0] == 2 {
                PixelRange::Full
            } else {
                PixelRange::Limited
            },
            color_description: color_description(self.color),
            ..Default::default()
        };
        // One thread: the same input gives the same bytes, and tasks run side by side.
        let cfg = Config::new().with_encoder_config(enc).with_threads(1);
        self.ctx = Some(if s.bit_depth > 8 {
            Ctx::Ten(cfg.new_context().map_err(|e| fail("configuring", e))?)
        } else {
            Ctx::Eight(cfg.new_context().map_err(|e| fail("configuring", e))?)
        });
        Ok(())
    }

    pub(super) fn push(&mut self, frame: &mut frame::Video, index: u64) -> Result<(), EncodeError> {
        if self.ctx.is_none() {
            self.open(frame)?;
        }
        let key = index.is_multiple_of(u64::from(self.settings.keyint));
        let bytes = if self.settings.bit_depth > 8 { 2 } else { 1 };
        match self.ctx.as_mut().expect("opened above") {
            Ctx::Eight(c) => send(c, frame, bytes, key, &mut self.packets)?,
            Ctx::Ten(c) => send(c, frame, bytes, key, &mut self.packets)?,
        }
        self.frames_in += 1;
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<EncodedChunk, EncodeError> {
        let header = match self.ctx.as_mut() {
            None => return Err(fail("finishing", "the chunk had no frames")),
            Some(Ctx::Eight(c)) => flush(c, &mut self.packets)?,
            Some(Ctx::Ten(c)) => flush(c, &mut self.packets)?,
        };
        if self.packets.len() as u64 != self.frames_in {
            return Err(fail(
                "finishing",
                format!(
                    "{} frames in, {} packets out",
                    self.frames_in,
                    self.packets.len()
                ),
            ));
        }
        let s = &self.settings;
        Ok(EncodedChunk {
            params: StreamParams {
                codec: "av1".into(),
                width: s.width,
                height: s.height,
                pixel_format: if s.bit_depth > 8 {
                    "yuv420p10le"
                } else {
                    "yuv420p"
                }
                .into(),
                profile: 0,
                level: -99,
                bit_depth: u32::from(s.bit_depth),
                sample_aspect_ratio: (1, 1),
                color: self.color,
                chroma_location: 0,
                video_delay: 0,
                extradata: hex(&header),
            },
            packets: self.packets,
        })
    }
}

/// Only BT.709 and BT.2020 (SDR, PQ and HLG) are described; anything else stays unspecified.
fn color_description([_, primaries, trc, matrix]: [i32; 4]) -> Option<ColorDescription> {
    let color_primaries = match primaries {
        1 => ColorPrimaries::BT709,
        9 => ColorPrimaries::BT2020,
        _ => return None,
    };
    let transfer_characteristics = match trc {
        1 => TransferCharacteristics::BT709,
        14 => TransferCharacteristics::BT2020_10Bit,
        16 => TransferCharacteristics::SMPTE2084,
        18 => TransferCharacteristics::HLG,
        _ => return None,
    };
    let matrix_coefficients = match matrix {
        1 => MatrixCoefficients::BT709,
        9 => MatrixCoefficients::BT2020NCL,
        _ => return None,
    };
    Some(ColorDescription {
        color_primaries,
        transfer_characteristics,
        matrix_coefficients,
    })
}

fn send<T: Pixel>(
    ctx: &mut Context<T>,
    src: &frame::Video,
    bytes: usize,
    key: bool,
    out: &mut Vec<ChunkPacket>,
) -> Result<(), EncodeError> {
    let mut f = ctx.new_frame();
    for (i, plane) in f.planes.iter_mut().enumerate() {
        plane.copy_from_raw_u8(src.data(i), src.stride(i), bytes);
    }
    let params = FrameParameters {
        frame_type_override: if key {
            FrameTypeOverride::Key
        } else {
            FrameTypeOverride::No
        },
        ..Default::default()
    };
    ctx.send_frame((f, params))
        .map_err(|e| fail("encoding a frame", e))?;
    receive(ctx, out, false)
}

fn flush<T: Pixel>(
    ctx: &mut Context<T>,
    out: &mut Vec<ChunkPacket>,
) -> Result<Vec<u8>, EncodeError> {
    ctx.flush();
    receive(ctx, out, true)?;
    Ok(ctx.container_sequence_header())
}

fn receive<T: Pixel>(
    ctx: &mut Context<T>,
    out: &mut Vec<ChunkPacket>,
    draining: bool,
) -> Result<(), EncodeError> {
    loop {
        match ctx.receive_packet() {
            Ok(p) => {
                let n = p.input_frameno as i64;
                out.push(ChunkPacket {
                    pts: n,
                    dts: n,
                    duration: 1,
                    flags: if p.frame_type == FrameType::KEY {
                        FLAG_KEY
                    } else {
                        0
                    },
                    data: p.data,
                });
            }
            Err(EncoderStatus::Encoded) => {}
            Err(EncoderStatus::LimitReached) => return Ok(()),
            Err(EncoderStatus::NeedMoreData) if !draining => return Ok(()),
            Err(e) => return Err(fail("receiving a packet", e)),
        }
    }
}
