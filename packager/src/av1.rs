//! Where the tiles of an AV1 sample are, for its subsample encryption: the OBUs of a temporal
//! unit, the sequence header, and each frame header read far enough to know its length and
//! its tiles (AV1 bitstream specification, sections 5.3 to 5.11). The AV1 binding of common
//! encryption protects tile data only: every OBU header, size field, sequence header, frame
//! header and tile group header stays clear.
//!
//! A frame header's length depends on earlier frames (reference frame sizes, order hints and
//! segmentation), so a [`Reader`] follows a track's frames in decode order.

use crate::cenc::{Subsample, Subsamples};

const KEY_FRAME: u32 = 0;
const INTER_FRAME: u32 = 1;
const INTRA_ONLY_FRAME: u32 = 2;
const SWITCH_FRAME: u32 = 3;
const PRIMARY_REF_NONE: u32 = 7;
const SELECT: u32 = 2;
/// `refresh_frame_flags` of every slot.
const ALL_FRAMES: u32 = 0xff;

/// A bit reader over a byte slice, most significant bit first.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    fn f(&mut self, n: u32) -> Result<u32, String> {
        let mut v = 0u64;
        for _ in 0..n {
            let byte = self
                .data
                .get(self.at / 8)
                .ok_or_else(|| format!("a header runs past its OBU ({} bytes)", self.data.len()))?;
            v = (v << 1) | u64::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        Ok(v as u32)
    }

    fn flag(&mut self) -> Result<bool, String> {
        Ok(self.f(1)? == 1)
    }

    /// A signed value of `n` bits (`su`).
    fn su(&mut self, n: u32) -> Result<i32, String> {
        let v = self.f(n)? as i64;
        let sign = 1i64 << (n - 1);
        Ok(if v & sign != 0 { v - 2 * sign } else { v } as i32)
    }

    /// `ns(n)`: a value below `n` in as few bits as it needs.
    fn ns(&mut self, n: u32) -> Result<u32, String> {
        if n <= 1 {
            return Ok(0);
        }
        let w = 32 - n.leading_zeros();
        let m = (1u32 << w) - n;
        let v = self.f(w - 1)?;
        if v < m {
            return Ok(v);
        }
        let extra = self.f(1)?;
        Ok((v << 1) - m + extra)
    }

    /// `uvlc()`.
    fn uvlc(&mut self) -> Result<u32, String> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros >= 32 {
                return Err("a uvlc value of 32 leading zeros".into());
            }
        }
        Ok(self.f(zeros)?.wrapping_add((1u32 << zeros).wrapping_sub(1)))
    }

    /// Bytes read, the last partial one included (after `byte_alignment`).
    fn bytes(&self) -> usize {
        self.at.div_ceil(8)
    }
}

/// What the sequence header says that frame headers depend on.
#[derive(Clone, Debug, Default)]
struct Sequence {
    reduced_still_picture_header: bool,
    decoder_model_info_present: bool,
    equal_picture_interval: bool,
    buffer_removal_time_length: u32,
    frame_presentation_time_length: u32,
    operating_points: Vec<(u32, bool)>,
    frame_width_bits: u32,
    frame_height_bits: u32,
    max_width: u32,
    max_height: u32,
    frame_id_numbers_present: bool,
    delta_frame_id_length: u32,
    frame_id_length: u32,
    use_128x128_superblock: bool,
    enable_warped_motion: bool,
    enable_order_hint: bool,
    enable_ref_frame_mvs: bool,
    force_screen_content_tools: u32,
    force_integer_mv: u32,
    order_hint_bits: u32,
    enable_superres: bool,
    enable_cdef: bool,
    enable_restoration: bool,
    mono_chrome: bool,
    subsampling: (bool, bool),
    separate_uv_delta_q: bool,
    film_grain_params_present: bool,
}

fn sequence(b: &mut Bits<'_>) -> Result<Sequence, String> {
    let mut s = Sequence::default();
    let profile = b.f(3)?;
    let _still = b.f(1)?;
    s.reduced_still_picture_header = b.flag()?;
    if s.reduced_still_picture_header {
        let _level = b.f(5)?;
        s.operating_points = vec![(0, false)];
    } else {
        let timing_info_present = b.flag()?;
        if timing_info_present {
            let _ = b.f(32)?;
            let _ = b.f(32)?;
            s.equal_picture_interval = b.flag()?;
            if s.equal_picture_interval {
                let _ = b.uvlc()?;
            }
            s.decoder_model_info_present = b.flag()?;
        }
        let mut buffer_delay_length = 0;
        if s.decoder_model_info_present {
            buffer_delay_length = b.f(5)? + 1;
            let _ = b.f(32)?;
            s.buffer_removal_time_length = b.f(5)? + 1;
            s.frame_presentation_time_length = b.f(5)? + 1;
        }
        operating_points(b, &mut s, buffer_delay_length)?;
    }
    s.frame_width_bits = b.f(4)? + 1;
    s.frame_height_bits = b.f(4)? + 1;
    s.max_width = b.f(s.frame_width_bits)? + 1;
    s.max_height = b.f(s.frame_height_bits)? + 1;
    if !s.reduced_still_picture_header {
        s.frame_id_numbers_present = b.flag()?;
    }
    if s.frame_id_numbers_present {
        s.delta_frame_id_length = b.f(4)? + 2;
        s.frame_id_length = b.f(3)? + 1 + s.delta_frame_id_length;
    }
    s.use_128x128_superblock = b.flag()?;
    let _filter_intra = b.f(1)?;
    let _intra_edge = b.f(1)?;
    s.force_screen_content_tools = SELECT;
    s.force_integer_mv = SELECT;
    if !s.reduced_still_picture_header {
        let _interintra = b.f(1)?;
        let _masked = b.f(1)?;
        s.enable_warped_motion = b.flag()?;
        let _dual_filter = b.f(1)?;
        s.enable_order_hint = b.flag()?;
        if s.enable_order_hint {
            let _jnt = b.f(1)?;
            s.enable_ref_frame_mvs = b.flag()?;
        }
        s.force_screen_content_tools = if b.flag()? { SELECT } else { b.f(1)? };
        s.force_integer_mv = if s.force_screen_content_tools > 0 {
            if b.flag()? { SELECT } else { b.f(1)? }
        } else {
            SELECT
        };
        if s.enable_order_hint {
            s.order_hint_bits = b.f(3)? + 1;
        }
    }
    s.enable_superres = b.flag()?;
    s.enable_cdef = b.flag()?;
    s.enable_restoration = b.flag()?;
    color_config(b, profile, &mut s)?;
    s.film_grain_params_present = b.flag()?;
    Ok(s)
}

/// The operating points of a sequence header, with their decoder models.
fn operating_points(
    b: &mut Bits<'_>,
    s: &mut Sequence,
    buffer_delay_length: u32,
) -> Result<(), String> {
    let initial_display_delay_present = b.flag()?;
    let count = b.f(5)? + 1;
    for _ in 0..count {
        let idc = b.f(12)?;
        let level = b.f(5)?;
        if level > 7 {
            let _tier = b.f(1)?;
        }
        let mut model = false;
        if s.decoder_model_info_present {
            model = b.flag()?;
            if model {
                let _ = b.f(buffer_delay_length)?;
                let _ = b.f(buffer_delay_length)?;
                let _ = b.f(1)?;
            }
        }
        if initial_display_delay_present && b.flag()? {
            let _ = b.f(4)?;
        }
        s.operating_points.push((idc, model));
    }
    Ok(())
}

fn color_config(b: &mut Bits<'_>, profile: u32, s: &mut Sequence) -> Result<(), String> {
    let high_bitdepth = b.flag()?;
    let bit_depth = if profile == 2 && high_bitdepth {
        if b.flag()? { 12 } else { 10 }
    } else if high_bitdepth {
        10
    } else {
        8
    };
    s.mono_chrome = profile != 1 && b.flag()?;
    let (mut cp, mut tc, mut mc) = (2, 2, 2);
    if b.flag()? {
        cp = b.f(8)?;
        tc = b.f(8)?;
        mc = b.f(8)?;
    }
    if s.mono_chrome {
        let _range = b.f(1)?;
        s.subsampling = (true, true);
        return Ok(());
    }
    if cp == 1 && tc == 13 && mc == 0 {
        s.subsampling = (false, false);
    } else {
        let _range = b.f(1)?;
        s.subsampling = match profile {
            0 => (true, true),
            1 => (false, false),
            _ if bit_depth == 12 => {
                let x = b.flag()?;
                (x, x && b.flag()?)
            }
            _ => (true, false),
        };
        if s.subsampling == (true, true) {
            let _position = b.f(2)?;
        }
    }
    s.separate_uv_delta_q = b.flag()?;
    Ok(())
}

/// What a reference slot keeps of the frame stored in it.
#[derive(Clone, Debug, Default)]
struct Slot {
    frame_type: u32,
    upscaled_width: u32,
    frame_height: u32,
    order_hint: u32,
    /// Segmentation features (enabled, value) of each segment, as the frame left them.
    segmentation: Segments,
}

/// The frame a header describes, as far as its tiles need.
#[derive(Clone, Debug, Default)]
struct Frame {
    show_existing: bool,
    tile_cols: u32,
    tile_rows: u32,
    tile_cols_log2: u32,
    tile_rows_log2: u32,
    tile_size_bytes: u32,
}

/// Follows a track's frames, in decode order, to find each sample's tiles.
#[derive(Debug)]
pub struct Reader {
    seq: Option<Sequence>,
    slots: Vec<Slot>,
    /// The last frame header (a tile group OBU uses it).
    frame: Option<Frame>,
}

impl Reader {
    /// A reader that knows the sequence header of `config` (the `av1C` box's body).
    pub fn new(config: &[u8]) -> Result<Self, String> {
        let mut r = Self {
            seq: None,
            slots: vec![Slot::default(); 8],
            frame: None,
        };
        if let Some(obus) = config.get(4..) {
            for obu in obus_of(obus)? {
                if obu.kind == 1 {
                    r.seq = Some(sequence(&mut Bits::new(obu.payload(obus)))?);
                }
            }
        }
        Ok(r)
    }

    /// The tile data of one temporal unit: each tile's first byte in the sample and its
    /// length, in order.
    pub fn tiles(&mut self, sample: &[u8]) -> Result<Vec<(usize, usize)>, String> {
        let mut out = Vec::new();
        for obu in obus_of(sample)? {
            let payload = obu.payload(sample);
            let data = obu.start + obu.header;
            match obu.kind {
                1 => self.seq = Some(sequence(&mut Bits::new(payload))?),
                3 | 7 => {
                    let mut b = Bits::new(payload);
                    self.frame = Some(self.frame_header(&mut b, obu.temporal, obu.spatial)?);
                }
                6 => {
                    let mut b = Bits::new(payload);
                    let frame = self.frame_header(&mut b, obu.temporal, obu.spatial)?;
                    let header = b.bytes();
                    let group = payload
                        .get(header..)
                        .ok_or("a frame header runs past its OBU")?;
                    for (at, len) in tile_group(group, &frame)? {
                        out.push((data + header + at, len));
                    }
                    self.frame = Some(frame);
                }
                4 => {
                    let frame = self
                        .frame
                        .clone()
                        .ok_or("a tile group OBU before any frame header")?;
                    for (at, len) in tile_group(payload, &frame)? {
                        out.push((data + at, len));
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The subsamples of one temporal unit: each tile's data protected in whole 16-byte blocks
    /// (its first `len % 16` bytes clear), everything else clear. Clear counts over 65,535 are
    /// split.
    pub fn subsamples(&mut self, sample: &[u8]) -> Result<Vec<Subsample>, String> {
        let mut out = Subsamples::default();
        let mut at = 0usize;
        for (start, len) in self.tiles(sample)? {
            let protected = len / 16 * 16;
            out.clear(start - at + len - protected);
            out.protect(protected);
            at = start + len;
        }
        out.clear(sample.len() - at);
        Ok(out.finish())
    }
}

/// The tiles of a tile group's payload: each one's offset in it and its length.
fn tile_group(payload: &[u8], frame: &Frame) -> Result<Vec<(usize, usize)>, String> {
    if frame.show_existing {
        return Ok(Vec::new());
    }
    let tiles = frame.tile_cols * frame.tile_rows;
    let mut b = Bits::new(payload);
    let (mut start, mut end) = (0, tiles.saturating_sub(1));
    if tiles > 1 && b.flag()? {
        let bits = frame.tile_cols_log2 + frame.tile_rows_log2;
        start = b.f(bits)?;
        end = b.f(bits)?;
    }
    let mut at = b.bytes();
    let mut out = Vec::new();
    for tile in start..=end {
        let rest = payload.len().saturating_sub(at);
        if tile == end {
            out.push((at, rest));
            break;
        }
        let n = frame.tile_size_bytes as usize;
        let field = payload
            .get(at..at + n)
            .ok_or("a tile size field runs past its OBU")?;
        let size = field
            .iter()
            .rev()
            .fold(0usize, |v, &x| (v << 8) | usize::from(x))
            + 1;
        if size > rest - n {
            return Err(format!("a tile of {size} bytes runs past its OBU"));
        }
        out.push((at + n, size));
        at += n + size;
    }
    Ok(out)
}

/// One OBU of a temporal unit.
#[derive(Debug)]
struct Obu {
    kind: u8,
    temporal: u32,
    spatial: u32,
    start: usize,
    /// Bytes of the header and size field.
    header: usize,
    len: usize,
}

impl Obu {
    fn payload<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.start + self.header..self.start + self.header + self.len]
    }
}

/// The OBUs of `data`, each with its size field (as ISOBMFF samples have them).
fn obus_of(data: &[u8]) -> Result<Vec<Obu>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let h = data[at];
        let kind = (h >> 3) & 0x0f;
        let extension = h & 0x04 != 0;
        if h & 0x02 == 0 {
            return Err(format!("the OBU at byte {at} has no size field"));
        }
        let mut i = at + 1;
        let (mut temporal, mut spatial) = (0, 0);
        if extension {
            let e = *data.get(i).ok_or("an OBU extension header is cut")?;
            temporal = u32::from(e >> 5);
            spatial = u32::from((e >> 3) & 3);
            i += 1;
        }
        let mut len = 0usize;
        for k in 0..8 {
            let byte = *data.get(i).ok_or("an OBU size field is cut")?;
            len |= usize::from(byte & 0x7f) << (7 * k);
            i += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        if i + len > data.len() {
            return Err(format!(
                "the OBU at byte {at} ({len} bytes) runs past the sample's {} bytes",
                data.len()
            ));
        }
        out.push(Obu {
            kind,
            temporal,
            spatial,
            start: at,
            header: i - at,
            len,
        });
        at = i + len;
    }
    Ok(out)
}

/// Sizes of a frame (section 5.9.5 to 5.9.8).
#[derive(Clone, Copy, Debug, Default)]
struct Size {
    upscaled_width: u32,
    width: u32,
    height: u32,
}

impl Size {
    fn mi_cols(self) -> u32 {
        2 * ((self.width + 7) >> 3)
    }

    fn mi_rows(self) -> u32 {
        2 * ((self.height + 7) >> 3)
    }
}

/// `tile_log2`.
fn tile_log2(block: u32, target: u32) -> u32 {
    let mut k = 0;
    while (block << k) < target {
        k += 1;
    }
    k
}

impl Reader {
    /// Reads a frame header (`uncompressed_header`), updating the reference slots.
    fn frame_header(
        &mut self,
        b: &mut Bits<'_>,
        temporal: u32,
        spatial: u32,
    ) -> Result<Frame, String> {
        let s = self
            .seq
            .clone()
            .ok_or("a frame header before any sequence header")?;
        let Some((frame_type, show_frame, showable_frame, error_resilient)) = kind(b, &s)? else {
            return self.show_existing(b, &s);
        };
        let intra = frame_type == KEY_FRAME || frame_type == INTRA_ONLY_FRAME;
        if frame_type == KEY_FRAME && show_frame {
            self.slots.iter_mut().for_each(|slot| slot.order_hint = 0);
        }
        let disable_cdf_update = b.flag()?;
        let (screen_content, force_integer_mv) = screen_content(b, &s, intra)?;
        if s.frame_id_numbers_present {
            let _ = b.f(s.frame_id_length)?;
        }
        let size_override = if frame_type == SWITCH_FRAME {
            true
        } else if s.reduced_still_picture_header {
            false
        } else {
            b.flag()?
        };
        let order_hint = b.f(s.order_hint_bits)?;
        let primary_ref_frame = if intra || error_resilient {
            PRIMARY_REF_NONE
        } else {
            b.f(3)?
        };
        if s.decoder_model_info_present && b.flag()? {
            buffer_removal_times(b, &s, temporal, spatial)?;
        }
        let refresh = if frame_type == SWITCH_FRAME || (frame_type == KEY_FRAME && show_frame) {
            ALL_FRAMES
        } else {
            b.f(8)?
        };
        if (!intra || refresh != ALL_FRAMES) && error_resilient && s.enable_order_hint {
            for slot in &mut self.slots {
                slot.order_hint = b.f(s.order_hint_bits)?;
            }
        }
        let (size, allow_intrabc, ref_frame_idx, high_precision_mv) = if intra {
            let size = self.frame_size(b, &s, size_override)?;
            render_size(b)?;
            let intrabc = screen_content > 0 && size.upscaled_width == size.width && b.flag()?;
            (size, intrabc, [0; 7], false)
        } else {
            let (size, refs, high) =
                self.inter_size(b, &s, size_override, error_resilient, force_integer_mv)?;
            (size, false, refs, high)
        };
        if !(s.reduced_still_picture_header || disable_cdf_update) {
            let _disable_frame_end_update_cdf = b.f(1)?;
        }
        self.rest(
            b,
            &s,
            Rest {
                intra,
                frame_type,
                show_frame,
                showable_frame,
                error_resilient,
                primary_ref_frame,
                allow_intrabc,
                order_hint,
                refresh,
                size,
                ref_frame_idx,
                high_precision_mv,
            },
        )
    }

    /// A `show_existing_frame` header: no tile data follows; a key frame shown again
    /// refreshes every slot.
    fn show_existing(&mut self, b: &mut Bits<'_>, s: &Sequence) -> Result<Frame, String> {
        let idx = b.f(3)? as usize;
        if s.decoder_model_info_present && !s.equal_picture_interval {
            let _ = b.f(s.frame_presentation_time_length)?;
        }
        if s.frame_id_numbers_present {
            let _ = b.f(s.frame_id_length)?;
        }
        if self.slots[idx].frame_type == KEY_FRAME {
            let shown = self.slots[idx].clone();
            self.slots.iter_mut().for_each(|slot| *slot = shown.clone());
        }
        Ok(Frame {
            show_existing: true,
            ..Frame::default()
        })
    }

    /// An inter frame's references and size (from a reference's when it says so), then its
    /// motion vector settings; returns the size, the reference slots and whether motion
    /// vectors have high precision.
    fn inter_size(
        &self,
        b: &mut Bits<'_>,
        s: &Sequence,
        size_override: bool,
        error_resilient: bool,
        force_integer_mv: u32,
    ) -> Result<(Size, [usize; 7], bool), String> {
        let mut ref_frame_idx = [0usize; 7];
        let mut high_precision_mv = false;
        let mut size;
        let mut short_signaling = false;
        if s.enable_order_hint {
            short_signaling = b.flag()?;
            if short_signaling {
                return Err("AV1 frame_refs_short_signaling is not supported".into());
            }
        }
        for r in &mut ref_frame_idx {
            if !short_signaling {
                *r = b.f(3)? as usize;
            }
            if s.frame_id_numbers_present {
                let _ = b.f(s.delta_frame_id_length)?;
            }
        }
        if size_override && !error_resilient {
            size = Size::default();
            let mut found = false;
            for &r in &ref_frame_idx {
                if b.flag()? {
                    let slot = &self.slots[r];
                    size = Size {
                        upscaled_width: slot.upscaled_width,
                        width: slot.upscaled_width,
                        height: slot.frame_height,
                    };
                    found = true;
                    break;
                }
            }
            if found {
                superres(b, s, &mut size)?;
            } else {
                size = self.frame_size(b, s, size_override)?;
                render_size(b)?;
            }
        } else {
            size = self.frame_size(b, s, size_override)?;
            render_size(b)?;
        }
        if force_integer_mv == 0 {
            high_precision_mv = b.flag()?;
        }
        if !b.flag()? {
            let _filter = b.f(2)?;
        }
        let _motion_mode_switchable = b.f(1)?;
        if !error_resilient && s.enable_ref_frame_mvs {
            let _use_ref_frame_mvs = b.f(1)?;
        }
        Ok((size, ref_frame_idx, high_precision_mv))
    }

    fn frame_size(
        &self,
        b: &mut Bits<'_>,
        s: &Sequence,
        size_override: bool,
    ) -> Result<Size, String> {
        let (width, height) = if size_override {
            (b.f(s.frame_width_bits)? + 1, b.f(s.frame_height_bits)? + 1)
        } else {
            (s.max_width, s.max_height)
        };
        let mut size = Size {
            upscaled_width: width,
            width,
            height,
        };
        superres(b, s, &mut size)?;
        Ok(size)
    }
}

fn superres(b: &mut Bits<'_>, s: &Sequence, size: &mut Size) -> Result<(), String> {
    let denom = if s.enable_superres && b.flag()? {
        b.f(3)? + 9
    } else {
        8
    };
    size.width = (size.upscaled_width * 8 + denom / 2) / denom;
    Ok(())
}

fn render_size(b: &mut Bits<'_>) -> Result<(), String> {
    if b.flag()? {
        let _ = b.f(16)?;
        let _ = b.f(16)?;
    }
    Ok(())
}

/// What the second half of a frame header needs from the first.
struct Rest {
    intra: bool,
    frame_type: u32,
    show_frame: bool,
    showable_frame: bool,
    error_resilient: bool,
    primary_ref_frame: u32,
    allow_intrabc: bool,
    order_hint: u32,
    refresh: u32,
    size: Size,
    ref_frame_idx: [usize; 7],
    high_precision_mv: bool,
}

/// Each segment's features: enabled, and its value.
type Segments = [[(bool, i32); 8]; 8];

/// Bits, signedness and limit of each segmentation feature.
const SEGMENT_FEATURES: [(u32, bool, i32); 8] = [
    (8, true, 255),
    (6, true, 63),
    (6, true, 63),
    (6, true, 63),
    (6, true, 63),
    (3, false, 7),
    (0, false, 0),
    (0, false, 0),
];

impl Reader {
    /// The frame header from `tile_info` on, then the reference slots it refreshes.
    fn rest(&mut self, b: &mut Bits<'_>, s: &Sequence, r: Rest) -> Result<Frame, String> {
        let mut frame = Frame::default();
        tile_info(b, s, r.size, &mut frame)?;
        let (base_q_idx, deltas) = quantization(b, s)?;
        let (enabled, segmentation) = self.segmentation(b, &r)?;
        // delta_q_params, delta_lf_params
        let mut delta_q_present = false;
        if base_q_idx > 0 {
            delta_q_present = b.flag()?;
        }
        if delta_q_present {
            let _res = b.f(2)?;
            if !r.allow_intrabc && b.flag()? {
                let _res = b.f(2)?;
                let _multi = b.f(1)?;
            }
        }
        let coded_lossless = (0..8).all(|segment| {
            let (on, v) = segmentation[segment][0];
            let q = if enabled && on {
                (base_q_idx as i32 + v).clamp(0, 255)
            } else {
                base_q_idx as i32
            };
            q == 0 && deltas.iter().all(|&d| d == 0)
        });
        let all_lossless = coded_lossless && r.size.width == r.size.upscaled_width;
        filters(b, s, coded_lossless, all_lossless, r.allow_intrabc)?;
        // read_tx_mode, frame_reference_mode
        if !coded_lossless {
            let _tx_mode_select = b.f(1)?;
        }
        let reference_select = !r.intra && b.flag()?;
        // skip_mode_params
        if !r.intra && reference_select && s.enable_order_hint && self.skip_mode_allowed(s, &r) {
            let _skip_mode = b.f(1)?;
        }
        if !(r.intra || r.error_resilient || !s.enable_warped_motion) {
            let _warped = b.f(1)?;
        }
        let _reduced_tx_set = b.f(1)?;
        if !r.intra {
            global_motion(b, r.high_precision_mv)?;
        }
        film_grain(b, s, &r)?;
        // The reference update process.
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if r.refresh & (1 << i) != 0 {
                *slot = Slot {
                    frame_type: r.frame_type,
                    upscaled_width: r.size.upscaled_width,
                    frame_height: r.size.height,
                    order_hint: r.order_hint,
                    segmentation,
                };
            }
        }
        Ok(frame)
    }

    /// `segmentation_params`: whether segmentation is on, and each segment's features (read,
    /// or the primary reference frame's).
    fn segmentation(&self, b: &mut Bits<'_>, r: &Rest) -> Result<(bool, Segments), String> {
        let mut segmentation = [[(false, 0i32); 8]; 8];
        let enabled = b.flag()?;
        if enabled {
            let update_data = if r.primary_ref_frame == PRIMARY_REF_NONE {
                true
            } else {
                if b.flag()? {
                    let _temporal_update = b.f(1)?;
                }
                b.flag()?
            };
            if update_data {
                for segment in &mut segmentation {
                    for (feature, &(bits, signed, limit)) in
                        segment.iter_mut().zip(&SEGMENT_FEATURES)
                    {
                        if b.flag()? {
                            let v = if signed {
                                b.su(1 + bits)?.clamp(-limit, limit)
                            } else {
                                (b.f(bits)? as i32).clamp(0, limit)
                            };
                            *feature = (true, v);
                        }
                    }
                }
            } else {
                let prev = self
                    .slots
                    .get(r.ref_frame_idx[r.primary_ref_frame as usize])
                    .ok_or("a primary reference frame out of range")?;
                segmentation = prev.segmentation;
            }
        }
        Ok((enabled, segmentation))
    }

    /// Whether `skip_mode_present` is read: a forward and a backward (or second forward)
    /// reference by order hint.
    fn skip_mode_allowed(&self, s: &Sequence, r: &Rest) -> bool {
        let dist = |a: u32, b: u32| -> i32 {
            let bits = s.order_hint_bits;
            if bits == 0 {
                return 0;
            }
            let diff = a as i32 - b as i32;
            let m = 1i32 << (bits - 1);
            (diff & (m - 1)) - (diff & m)
        };
        let hints: Vec<u32> = r
            .ref_frame_idx
            .iter()
            .map(|&i| self.slots[i].order_hint)
            .collect();
        let mut forward: Option<u32> = None;
        let mut backward: Option<u32> = None;
        for &h in &hints {
            if dist(h, r.order_hint) < 0 {
                if forward.is_none_or(|f| dist(h, f) > 0) {
                    forward = Some(h);
                }
            } else if dist(h, r.order_hint) > 0 && backward.is_none_or(|bk| dist(h, bk) < 0) {
                backward = Some(h);
            }
        }
        match (forward, backward) {
            (None, _) => false,
            (Some(_), Some(_)) => true,
            (Some(f), None) => hints.iter().any(|&h| dist(h, f) < 0),
        }
    }
}

/// `allow_screen_content_tools` and `force_integer_mv`.
fn screen_content(b: &mut Bits<'_>, s: &Sequence, intra: bool) -> Result<(u32, u32), String> {
    let screen_content = if s.force_screen_content_tools == SELECT {
        b.f(1)?
    } else {
        s.force_screen_content_tools
    };
    // Read whenever the tools are on, even for an intra frame, which then ignores it.
    let read = if screen_content > 0 {
        if s.force_integer_mv == SELECT {
            b.f(1)?
        } else {
            s.force_integer_mv
        }
    } else {
        0
    };
    let force_integer_mv = if intra { 1 } else { read };
    Ok((screen_content, force_integer_mv))
}

/// The frame type, `show_frame`, `showable_frame` and `error_resilient_mode`; `None` for a
/// `show_existing_frame` header (its index is read next).
fn kind(b: &mut Bits<'_>, s: &Sequence) -> Result<Option<(u32, bool, bool, bool)>, String> {
    if s.reduced_still_picture_header {
        return Ok(Some((KEY_FRAME, true, false, true)));
    }
    if b.flag()? {
        return Ok(None);
    }
    let frame_type = b.f(2)?;
    let show_frame = b.flag()?;
    if show_frame && s.decoder_model_info_present && !s.equal_picture_interval {
        let _ = b.f(s.frame_presentation_time_length)?;
    }
    let showable_frame = if show_frame {
        frame_type != KEY_FRAME
    } else {
        b.flag()?
    };
    let error_resilient = if frame_type == SWITCH_FRAME || (frame_type == KEY_FRAME && show_frame) {
        true
    } else {
        b.flag()?
    };
    Ok(Some((
        frame_type,
        show_frame,
        showable_frame,
        error_resilient,
    )))
}

/// The `buffer_removal_time` of each operating point whose decoder model applies.
fn buffer_removal_times(
    b: &mut Bits<'_>,
    s: &Sequence,
    temporal: u32,
    spatial: u32,
) -> Result<(), String> {
    for &(idc, model) in &s.operating_points {
        let in_temporal = (idc >> temporal) & 1 == 1;
        let in_spatial = (idc >> (spatial + 8)) & 1 == 1;
        if model && (idc == 0 || (in_temporal && in_spatial)) {
            let _ = b.f(s.buffer_removal_time_length)?;
        }
    }
    Ok(())
}

/// `quantization_params`: the base quantizer and the delta quantizers.
fn quantization(b: &mut Bits<'_>, s: &Sequence) -> Result<(u32, Vec<i32>), String> {
    let base_q_idx = b.f(8)?;
    let delta_q =
        |b: &mut Bits<'_>| -> Result<i32, String> { Ok(if b.flag()? { b.su(7)? } else { 0 }) };
    let mut deltas = vec![delta_q(b)?];
    if !s.mono_chrome {
        let diff_uv = s.separate_uv_delta_q && b.flag()?;
        let u_dc = delta_q(b)?;
        let u_ac = delta_q(b)?;
        deltas.extend([u_dc, u_ac]);
        if diff_uv {
            deltas.extend([delta_q(b)?, delta_q(b)?]);
        }
    }
    if b.flag()? {
        let _qm_y = b.f(4)?;
        let _qm_u = b.f(4)?;
        if s.separate_uv_delta_q {
            let _qm_v = b.f(4)?;
        }
    }
    Ok((base_q_idx, deltas))
}

/// `loop_filter_params`, `cdef_params` and `lr_params`.
fn filters(
    b: &mut Bits<'_>,
    s: &Sequence,
    coded_lossless: bool,
    all_lossless: bool,
    allow_intrabc: bool,
) -> Result<(), String> {
    if !(coded_lossless || allow_intrabc) {
        let l0 = b.f(6)?;
        let l1 = b.f(6)?;
        if !s.mono_chrome && (l0 != 0 || l1 != 0) {
            let _ = b.f(6)?;
            let _ = b.f(6)?;
        }
        let _sharpness = b.f(3)?;
        if b.flag()? && b.flag()? {
            for _ in 0..8 {
                if b.flag()? {
                    let _ = b.su(7)?;
                }
            }
            for _ in 0..2 {
                if b.flag()? {
                    let _ = b.su(7)?;
                }
            }
        }
    }
    // cdef_params
    if !(coded_lossless || allow_intrabc || !s.enable_cdef) {
        let _damping = b.f(2)?;
        let bits = b.f(2)?;
        for _ in 0..(1u32 << bits) {
            let _ = b.f(6)?;
            if !s.mono_chrome {
                let _ = b.f(6)?;
            }
        }
    }
    // lr_params
    if !(all_lossless || allow_intrabc || !s.enable_restoration) {
        let planes = if s.mono_chrome { 1 } else { 3 };
        let (mut uses_lr, mut uses_chroma_lr) = (false, false);
        for plane in 0..planes {
            if b.f(2)? != 0 {
                uses_lr = true;
                uses_chroma_lr |= plane > 0;
            }
        }
        if uses_lr {
            // lr_unit_shift, and lr_unit_extra_shift after a set one with 64×64 superblocks.
            if b.flag()? && !s.use_128x128_superblock {
                let _ = b.f(1)?;
            }
            if s.subsampling == (true, true) && uses_chroma_lr {
                let _ = b.f(1)?;
            }
        }
    }
    Ok(())
}

/// `tile_info`: the tile grid and the size of tile size fields.
fn tile_info(b: &mut Bits<'_>, s: &Sequence, size: Size, frame: &mut Frame) -> Result<(), String> {
    let (shift, sb_size) = if s.use_128x128_superblock {
        (5, 7)
    } else {
        (4, 6)
    };
    let sb_cols = (size.mi_cols() + (1 << shift) - 1) >> shift;
    let sb_rows = (size.mi_rows() + (1 << shift) - 1) >> shift;
    let max_tile_width_sb = 4096 >> sb_size;
    let mut max_tile_area_sb = (4096 * 2304) >> (2 * sb_size);
    let min_log2_tile_cols = tile_log2(max_tile_width_sb, sb_cols);
    let max_log2_tile_cols = tile_log2(1, sb_cols.min(64));
    let max_log2_tile_rows = tile_log2(1, sb_rows.min(64));
    let min_log2_tiles = min_log2_tile_cols.max(tile_log2(max_tile_area_sb, sb_rows * sb_cols));
    if b.flag()? {
        let mut cols_log2 = min_log2_tile_cols;
        while cols_log2 < max_log2_tile_cols && b.flag()? {
            cols_log2 += 1;
        }
        let width_sb = (sb_cols + (1 << cols_log2) - 1) >> cols_log2;
        frame.tile_cols = sb_cols.div_ceil(width_sb.max(1));
        let mut rows_log2 = min_log2_tiles.saturating_sub(cols_log2);
        while rows_log2 < max_log2_tile_rows && b.flag()? {
            rows_log2 += 1;
        }
        let height_sb = (sb_rows + (1 << rows_log2) - 1) >> rows_log2;
        frame.tile_rows = sb_rows.div_ceil(height_sb.max(1));
        frame.tile_cols_log2 = cols_log2;
        frame.tile_rows_log2 = rows_log2;
    } else {
        let mut widest = 0;
        let (mut start, mut cols) = (0, 0);
        while start < sb_cols {
            let w = b.ns(max_tile_width_sb.min(sb_cols - start))? + 1;
            widest = widest.max(w);
            start += w;
            cols += 1;
        }
        max_tile_area_sb = if min_log2_tiles > 0 {
            (sb_rows * sb_cols) >> (min_log2_tiles + 1)
        } else {
            sb_rows * sb_cols
        };
        let max_tile_height_sb = (max_tile_area_sb / widest.max(1)).max(1);
        let (mut start, mut rows) = (0, 0);
        while start < sb_rows {
            start += b.ns(max_tile_height_sb.min(sb_rows - start))? + 1;
            rows += 1;
        }
        frame.tile_cols = cols;
        frame.tile_rows = rows;
        frame.tile_cols_log2 = tile_log2(1, cols);
        frame.tile_rows_log2 = tile_log2(1, rows);
    }
    if frame.tile_cols_log2 > 0 || frame.tile_rows_log2 > 0 {
        let _context_update_tile_id = b.f(frame.tile_cols_log2 + frame.tile_rows_log2)?;
        frame.tile_size_bytes = b.f(2)? + 1;
    }
    Ok(())
}

/// `global_motion_params`: their lengths depend only on the values read.
fn global_motion(b: &mut Bits<'_>, high_precision_mv: bool) -> Result<(), String> {
    for _ in 1..=7 {
        let kind = if b.flag()? {
            if b.flag()? {
                2
            } else if b.flag()? {
                1
            } else {
                3
            }
        } else {
            0
        };
        let param = |b: &mut Bits<'_>, idx: u32| -> Result<(), String> {
            let abs_bits = if idx < 2 {
                if kind == 1 {
                    9 - u32::from(!high_precision_mv)
                } else {
                    12
                }
            } else {
                12
            };
            subexp(b, 2 * (1u32 << abs_bits) + 1)
        };
        if kind >= 2 {
            param(b, 2)?;
            param(b, 3)?;
            if kind == 3 {
                param(b, 4)?;
                param(b, 5)?;
            }
        }
        if kind >= 1 {
            param(b, 0)?;
            param(b, 1)?;
        }
    }
    Ok(())
}

/// `decode_subexp(numSyms)`.
fn subexp(b: &mut Bits<'_>, num_syms: u32) -> Result<(), String> {
    let (mut i, mut mk, k) = (0u32, 0u32, 3u32);
    loop {
        let b2 = if i > 0 { k + i - 1 } else { k };
        let a = 1u32 << b2;
        if num_syms <= mk + 3 * a {
            b.ns(num_syms - mk)?;
            return Ok(());
        }
        if b.flag()? {
            i += 1;
            mk += a;
        } else {
            b.f(b2)?;
            return Ok(());
        }
    }
}

/// `film_grain_params`.
fn film_grain(b: &mut Bits<'_>, s: &Sequence, r: &Rest) -> Result<(), String> {
    if !s.film_grain_params_present || !(r.show_frame || r.showable_frame) || !b.flag()? {
        return Ok(());
    }
    let _seed = b.f(16)?;
    let update = r.frame_type != INTER_FRAME || b.flag()?;
    if !update {
        let _ref = b.f(3)?;
        return Ok(());
    }
    let y_points = b.f(4)?;
    for _ in 0..y_points {
        b.f(16)?;
    }
    let from_luma = !s.mono_chrome && b.flag()?;
    let (mut cb, mut cr) = (0, 0);
    if !(s.mono_chrome || from_luma || (s.subsampling == (true, true) && y_points == 0)) {
        cb = b.f(4)?;
        for _ in 0..cb {
            b.f(16)?;
        }
        cr = b.f(4)?;
        for _ in 0..cr {
            b.f(16)?;
        }
    }
    let _scaling = b.f(2)?;
    let lag = b.f(2)?;
    let luma = 2 * lag * (lag + 1);
    let chroma = if y_points > 0 {
        for _ in 0..luma {
            b.f(8)?;
        }
        luma + 1
    } else {
        luma
    };
    if from_luma || cb > 0 {
        for _ in 0..chroma {
            b.f(8)?;
        }
    }
    if from_luma || cr > 0 {
        for _ in 0..chroma {
            b.f(8)?;
        }
    }
    let _ar_shift = b.f(2)?;
    let _scale_shift = b.f(2)?;
    if cb > 0 {
        b.f(8 + 8 + 9)?;
    }
    if cr > 0 {
        b.f(8 + 8 + 9)?;
    }
    let _overlap = b.f(1)?;
    let _clip = b.f(1)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_reads_follow_the_spec() {
        // 101 | 1111100 | 0...: f(3) = 5, su(7) of 1111100 = 124 - 128 = -4.
        let mut b = Bits::new(&[0b1011_1111, 0b0000_0000]);
        assert_eq!(b.f(3).unwrap(), 5);
        assert_eq!(b.su(7).unwrap(), -4);
        assert_eq!(b.bytes(), 2);
        // ns(5): w = 3, m = 3; "10" (2) < 3 gives 2; "11" then 1 gives (3 << 1) - 3 + 1 = 4.
        let mut b = Bits::new(&[0b1011_1000]);
        assert_eq!(b.ns(5).unwrap(), 2);
        assert_eq!(b.ns(5).unwrap(), 4);
        // uvlc: 001 then 01 → 2 leading zeros, value 1 + 3 = 4.
        let mut b = Bits::new(&[0b0010_1000]);
        assert_eq!(b.uvlc().unwrap(), 4);
        // Running past the end is an error, not a panic.
        assert!(Bits::new(&[0]).f(9).unwrap_err().contains("runs past"));
        assert_eq!(tile_log2(1, 1), 0);
        assert_eq!(tile_log2(1, 5), 3);
        assert_eq!(tile_log2(64, 64), 0);
    }

    proptest::proptest! {
        /// Any bytes, as a configuration record then temporal units of one track: an error or
        /// subsamples that cover the sample exactly, never a panic.
        #[test]
        fn any_bytes_give_an_error_or_exact_subsamples(
            config in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            samples in proptest::collection::vec(
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 0..6),
        ) {
            if let Ok(mut r) = Reader::new(&config) {
                for sample in &samples {
                    if let Ok(subs) = r.subsamples(sample) {
                        let total: usize = subs
                            .iter()
                            .map(|s| usize::from(s.clear) + s.protected as usize)
                            .sum();
                        proptest::prop_assert_eq!(total, sample.len());
                    }
                }
            }
        }
    }

    #[test]
    fn obus_need_their_size_and_must_fit() {
        // A temporal delimiter (type 2, size 0) then a padding OBU (15) of 2 bytes.
        let tu = [0x12, 0x00, 0x7a, 0x02, 0xaa, 0xbb];
        let obus = obus_of(&tu).unwrap();
        assert_eq!(obus.len(), 2);
        assert_eq!((obus[1].kind, obus[1].header, obus[1].len), (15, 2, 2));
        assert!(obus_of(&tu[..5]).unwrap_err().contains("runs past"));
        assert!(obus_of(&[0x10]).unwrap_err().contains("no size field"));
        // No tiles anywhere: everything clear, in one subsample.
        let mut r = Reader::new(&[]).unwrap();
        let subs = r.subsamples(&tu).unwrap();
        assert_eq!(
            subs,
            [Subsample {
                clear: 6,
                protected: 0
            }]
        );
        // A frame before any sequence header is refused.
        let frame = [0x32, 0x01, 0x00];
        assert!(
            r.subsamples(&frame)
                .unwrap_err()
                .contains("sequence header")
        );
    }
}
