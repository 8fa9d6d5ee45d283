//! What an init segment says about its track: the RFC 6381 `codecs` string, read from the
//! decoder configuration the muxer took from the bitstream (`avcC`, `hvcC`, `av1C`, `vpcC`,
//! `esds`), the timescale, and the picture or sound format.

use crate::bmff::{self, BoxError, Mp4Box};

/// The media of a track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Media {
    /// Pictures.
    Video {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Sample (pixel) aspect ratio, 1:1 when the file does not say.
        sar: (u32, u32),
    },
    /// Sound.
    Audio {
        /// Channel count.
        channels: u32,
        /// Samples per second.
        sample_rate: u32,
    },
}

/// One track of an init segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInfo {
    /// `track_ID`.
    pub track_id: u32,
    /// Ticks per second of the track's timestamps.
    pub timescale: u32,
    /// The RFC 6381 codecs string, such as `avc1.64001F` or `mp4a.40.2`.
    pub codecs: String,
    /// Picture or sound.
    pub media: Media,
}

/// Reads the first track of an init segment (`ftyp` + `moov`).
pub fn track_info(init: &[u8]) -> Result<TrackInfo, BoxError> {
    let top = bmff::parse(init, 0)?;
    let moov = top
        .iter()
        .find(|b| &b.kind == b"moov")
        .ok_or_else(|| BoxError::Missing("moov".into()))?;
    let trak = moov.child(0, b"trak")?;
    let tkhd = trak.child(0, b"tkhd")?;
    let (v, _) = tkhd.version_flags()?;
    let track_id = tkhd.u32_at(if v == 1 { 20 } else { 12 })?;
    let mdia = trak.child(0, b"mdia")?;
    let mdhd = mdia.child(0, b"mdhd")?;
    let (v, _) = mdhd.version_flags()?;
    let timescale = mdhd.u32_at(if v == 1 { 20 } else { 12 })?;
    let stsd = bmff::path(&mdia, &[b"minf", b"stbl"])?.child(0, b"stsd")?;
    // Full box header and entry count, then the sample entries.
    let mut entry = *stsd
        .children(8)?
        .first()
        .ok_or_else(|| stsd.bad("no sample entry".into()))?;
    // An encrypted entry (`encv`, `enca`) names its codec in `sinf/frma`.
    if &entry.kind == b"encv" || &entry.kind == b"enca" {
        let fields = if &entry.kind == b"encv" {
            VISUAL_FIELDS
        } else {
            AUDIO_FIELDS
        };
        let frma = entry.child(fields, b"sinf")?.child(0, b"frma")?;
        entry.kind = frma.bytes::<4>(0)?;
    }
    let (codecs, media) = match &entry.kind {
        b"avc1" | b"avc3" | b"hvc1" | b"hev1" | b"av01" | b"vp09" => visual(&entry)?,
        b"mp4a" => audio(&entry)?,
        other => {
            return Err(entry.bad(format!(
                "sample entry `{}` is not a codec rungs packages",
                String::from_utf8_lossy(other)
            )));
        }
    };
    Ok(TrackInfo {
        track_id,
        timescale,
        codecs,
        media,
    })
}

/// Bytes of a visual sample entry before its child boxes.
const VISUAL_FIELDS: usize = 78;
/// Bytes of an audio sample entry (version 0) before its child boxes.
const AUDIO_FIELDS: usize = 28;

fn visual(entry: &Mp4Box<'_>) -> Result<(String, Media), BoxError> {
    let width = u32::from(u16::from_be_bytes(entry.bytes::<2>(24)?));
    let height = u32::from(u16::from_be_bytes(entry.bytes::<2>(26)?));
    let kind = entry.kind_str();
    let children = entry.children(VISUAL_FIELDS)?;
    let find = |k: &[u8; 4]| {
        children
            .iter()
            .find(|b| &b.kind == k)
            .copied()
            .ok_or_else(|| entry.bad(format!("no `{}` box", String::from_utf8_lossy(k))))
    };
    let codecs = match &entry.kind {
        b"avc1" | b"avc3" => {
            let c = find(b"avcC")?;
            let [_, profile, compat, level] = c.bytes::<4>(0)?;
            format!("{kind}.{profile:02X}{compat:02X}{level:02X}")
        }
        b"hvc1" | b"hev1" => hevc(&kind, &find(b"hvcC")?)?,
        b"av01" => {
            let c = find(b"av1C")?;
            let [_, a, b] = c.bytes::<3>(0)?;
            let depth = if b & 0x20 != 0 {
                12
            } else if b & 0x40 != 0 {
                10
            } else {
                8
            };
            let tier = if b & 0x80 != 0 { 'H' } else { 'M' };
            format!("av01.{}.{:02}{tier}.{depth:02}", a >> 5, a & 0x1f)
        }
        _ => {
            let c = find(b"vpcC")?;
            // Full box: version and flags, then profile, level, bit depth in the top nibble.
            let [profile, level, bits] = c.bytes::<3>(4)?;
            format!("vp09.{profile:02}.{level:02}.{:02}", bits >> 4)
        }
    };
    let sar = match children.iter().find(|b| &b.kind == b"pasp") {
        Some(p) => (p.u32_at(0)?, p.u32_at(4)?),
        None => (1, 1),
    };
    Ok((codecs, Media::Video { width, height, sar }))
}

/// `hvc1.A.B.Lnn.CC`: profile space and profile, the compatibility flags bit-reversed in hex,
/// tier and level, then the constraint bytes without trailing zero bytes (ISO/IEC 14496-15 E.3).
fn hevc(kind: &str, c: &Mp4Box<'_>) -> Result<String, BoxError> {
    let head = c.bytes::<13>(0)?;
    let space = ["", "A", "B", "C"][usize::from(head[1] >> 6)];
    let tier = if head[1] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = head[1] & 0x1f;
    let compat = u32::from_be_bytes([head[2], head[3], head[4], head[5]]).reverse_bits();
    let mut constraints: Vec<String> = head[6..12].iter().map(|b| format!("{b:02X}")).collect();
    while constraints.last().is_some_and(|b| b == "00") {
        constraints.pop();
    }
    let mut s = format!("{kind}.{space}{profile}.{compat:X}.{tier}{}", head[12]);
    for b in constraints {
        s.push('.');
        s.push_str(&b);
    }
    Ok(s)
}

fn audio(entry: &Mp4Box<'_>) -> Result<(String, Media), BoxError> {
    let channels = u32::from(u16::from_be_bytes(entry.bytes::<2>(16)?));
    let sample_rate = entry.u32_at(24)? >> 16;
    let esds = entry.child(AUDIO_FIELDS, b"esds")?;
    let aot = esds_object_type(&esds)?;
    Ok((
        format!("mp4a.40.{aot}"),
        Media::Audio {
            channels,
            sample_rate,
        },
    ))
}

/// The audio object type in an `esds` box: ES descriptor → decoder config (object type 0x40,
/// MPEG-4 audio) → decoder specific info, whose first five bits are the type.
fn esds_object_type(esds: &Mp4Box<'_>) -> Result<u8, BoxError> {
    let body = esds.body.get(4..).unwrap_or(&[]);
    let bad = |r: &str| esds.bad(r.to_owned());
    // Walks descriptors: tag, then a size of 1 to 4 bytes (7 bits each).
    let descriptor = |data: &[u8]| -> Option<(u8, usize, usize)> {
        let tag = *data.first()?;
        let mut size = 0usize;
        for i in 1..=4 {
            let b = *data.get(i)?;
            size = (size << 7) | usize::from(b & 0x7f);
            if b & 0x80 == 0 {
                return Some((tag, i + 1, size));
            }
        }
        None
    };
    let (tag, head, _) = descriptor(body).ok_or_else(|| bad("ES descriptor cut short"))?;
    if tag != 3 {
        return Err(bad("no ES descriptor"));
    }
    // ES_ID (2) and flags (1); the optional fields rungs' muxer never writes are refused.
    let flags = *body
        .get(head + 2)
        .ok_or_else(|| bad("ES descriptor cut short"))?;
    if flags & 0xe0 != 0 {
        return Err(bad("ES descriptor with dependency, URL or OCR fields"));
    }
    let rest = &body[head + 3..];
    let (tag, head, _) = descriptor(rest).ok_or_else(|| bad("decoder config cut short"))?;
    if tag != 4 || rest.get(head) != Some(&0x40) {
        return Err(bad("not MPEG-4 audio"));
    }
    // Object type (1), stream type (1), buffer size (3), max and average bit rates (8).
    let rest = rest
        .get(head + 13..)
        .ok_or_else(|| bad("decoder config cut short"))?;
    let (tag, head, _) = descriptor(rest).ok_or_else(|| bad("no decoder specific info"))?;
    if tag != 5 {
        return Err(bad("no decoder specific info"));
    }
    let first = *rest
        .get(head)
        .ok_or_else(|| bad("empty decoder specific info"))?;
    Ok(first >> 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bmff::boxed;

    #[test]
    fn hevc_strings_follow_the_spec_examples() {
        // Main profile, level 3.1 (93), compatibility flags 0x60000000, progressive source
        // flag (0xB0): ISO/IEC 14496-15's `hvc1.1.6.L93.B0`.
        let mut body = vec![1, 0x01, 0x60, 0, 0, 0, 0xB0, 0, 0, 0, 0, 0, 93];
        body.extend_from_slice(&[0; 10]);
        let c = boxed(b"hvcC", &body);
        let b = bmff::parse(&c, 0).unwrap()[0];
        assert_eq!(hevc("hvc1", &b).unwrap(), "hvc1.1.6.L93.B0");
        // Main 10, high tier, level 4.1: `hev1.2.4.H123.B0`.
        let mut body = vec![1, 0x22, 0x20, 0, 0, 0, 0xB0, 0, 0, 0, 0, 0, 123];
        body.extend_from_slice(&[0; 10]);
        let c = boxed(b"hvcC", &body);
        let b = bmff::parse(&c, 0).unwrap()[0];
        assert_eq!(hevc("hev1", &b).unwrap(), "hev1.2.4.H123.B0");
    }

    #[test]
    fn audio_object_type_comes_from_the_esds() {
        // ES descriptor (tag 3) → decoder config (tag 4, 0x40) → specific info (tag 5) with
        // AAC-LC (type 2) at 48 kHz stereo: 0x11 0x90.
        let dsi = [5u8, 2, 0x11, 0x90];
        let mut dc = vec![4u8, (13 + dsi.len()) as u8, 0x40, 0x15, 0, 0, 0];
        dc.extend_from_slice(&[0; 8]);
        dc.extend_from_slice(&dsi);
        let mut es = vec![3u8, (3 + dc.len()) as u8, 0, 1, 0];
        es.extend_from_slice(&dc);
        let mut body = vec![0u8; 4];
        body.extend_from_slice(&es);
        let c = boxed(b"esds", &body);
        let b = bmff::parse(&c, 0).unwrap()[0];
        assert_eq!(esds_object_type(&b).unwrap(), 2);
        // Cut anywhere, it errs with the box named, never panics.
        for n in 8..c.len() {
            let mut cut = c[..n].to_vec();
            cut[3] = n as u8;
            let b = bmff::parse(&cut, 0).unwrap()[0];
            if let Err(e) = esds_object_type(&b) {
                assert!(e.to_string().contains("esds"), "{e}");
            }
        }
    }
}
