//! Splitting a fragmented MP4 into its init segment and its media segments, and reading back
//! each segment's timing from its `tfdt` and `trun`: the manifests state what the files hold,
//! not what the packager meant to write.

use crate::bmff::{self, BoxError, Mp4Box};

/// One media segment read back from its boxes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Byte range in the fragmented file: `[start, end)`.
    pub range: (u64, u64),
    /// Decode time of the first sample (`tfdt`), in the track's timescale.
    pub start: u64,
    /// Sum of the sample durations.
    pub duration: u64,
    /// Samples.
    pub samples: u32,
    /// True when the first sample is a sync sample (a keyframe).
    pub starts_with_sync: bool,
    /// Bytes from the segment's first byte to the end of its first sample's data: the byte
    /// range of an I-frame playlist entry (the boxes and the keyframe).
    pub first_sample_end: u64,
    /// Bytes of sample data.
    pub media_bytes: u64,
}

/// A fragmented MP4 split into parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// Byte length of the init segment (`ftyp` and `moov`, at the start).
    pub init_len: u64,
    /// The media segments, in order.
    pub segments: Vec<SegmentInfo>,
}

/// Defaults of the track from `moov/mvex/trex`: duration, size and flags of a sample.
#[derive(Clone, Copy, Debug, Default)]
struct Defaults {
    duration: u32,
    size: u32,
    flags: u32,
}

/// A sample is not a sync sample when this bit of its flags is set.
const NON_SYNC: u32 = 0x0001_0000;

/// Splits `file` (one track, fragmented, `default-base-is-moof`): every `moof` starts a segment,
/// with the `styp`, `sidx` and `prft` boxes just before it.
pub fn split(file: &[u8]) -> Result<Split, BoxError> {
    let top = bmff::parse(file, 0)?;
    let moov_at = top
        .iter()
        .position(|b| &b.kind == b"moov")
        .ok_or_else(|| BoxError::Missing("moov".into()))?;
    let moov = top[moov_at];
    let init_len = moov.offset + moov.size() as u64;
    let trex = moov.child(0, b"mvex").and_then(|m| m.child(0, b"trex"));
    let defaults = match trex {
        Ok(t) => Defaults {
            duration: t.u32_at(12)?,
            size: t.u32_at(16)?,
            flags: t.u32_at(20)?,
        },
        Err(_) => Defaults::default(),
    };
    let mut segments = Vec::new();
    let mut start_of_next: Option<u64> = None;
    for (i, b) in top.iter().enumerate().skip(moov_at + 1) {
        match &b.kind {
            b"styp" | b"sidx" | b"prft" => {
                start_of_next.get_or_insert(b.offset);
            }
            b"moof" => {
                let start = start_of_next.take().unwrap_or(b.offset);
                let mdat = top
                    .get(i + 1)
                    .filter(|m| &m.kind == b"mdat")
                    .ok_or_else(|| b.bad("not followed by an `mdat`".into()))?;
                let end = mdat.offset + mdat.size() as u64;
                segments.push(segment(b, mdat, start, end, defaults)?);
            }
            b"mdat" | b"free" | b"skip" | b"mfra" => {}
            _ => {}
        }
    }
    Ok(Split { init_len, segments })
}

fn segment(
    moof: &Mp4Box<'_>,
    mdat: &Mp4Box<'_>,
    start: u64,
    end: u64,
    track: Defaults,
) -> Result<SegmentInfo, BoxError> {
    let traf = moof.child(0, b"traf")?;
    let d = fragment_defaults(&traf.child(0, b"tfhd")?, track)?;
    let tfdt = traf.child(0, b"tfdt")?;
    let (v, _) = tfdt.version_flags()?;
    let base = if v == 1 {
        tfdt.u64_at(4)?
    } else {
        u64::from(tfdt.u32_at(4)?)
    };
    let mut runs = Runs::default();
    for trun in traf.children(0)?.iter().filter(|b| &b.kind == b"trun") {
        runs.read(trun, d, moof.offset)?;
    }
    let (offset, size, sflags) = runs.first.ok_or_else(|| traf.bad("no samples".into()))?;
    let data = mdat.offset + mdat.header as u64;
    if offset < data || offset + u64::from(size) > end {
        return Err(moof.bad(format!(
            "first sample at byte {offset} ({size} bytes) is outside its `mdat`"
        )));
    }
    Ok(SegmentInfo {
        range: (start, end),
        start: base,
        duration: runs.duration,
        samples: runs.samples,
        starts_with_sync: sflags & NON_SYNC == 0,
        first_sample_end: offset + u64::from(size) - start,
        media_bytes: runs.media_bytes,
    })
}

/// The fragment's sample defaults: the track's, overridden by the `tfhd`'s optional fields.
fn fragment_defaults(tfhd: &Mp4Box<'_>, track: Defaults) -> Result<Defaults, BoxError> {
    let (_, flags) = tfhd.version_flags()?;
    // Track ID, then the optional fields in the order of their flags.
    let mut at = 8;
    let mut d = track;
    if flags & 0x01 != 0 {
        at += 8; // base data offset
    }
    if flags & 0x02 != 0 {
        at += 4; // sample description index
    }
    if flags & 0x08 != 0 {
        d.duration = tfhd.u32_at(at)?;
        at += 4;
    }
    if flags & 0x10 != 0 {
        d.size = tfhd.u32_at(at)?;
        at += 4;
    }
    if flags & 0x20 != 0 {
        d.flags = tfhd.u32_at(at)?;
    }
    Ok(d)
}

/// What the `trun` boxes of a fragment add up to.
#[derive(Default)]
struct Runs {
    duration: u64,
    samples: u32,
    media_bytes: u64,
    /// The first sample's data offset (absolute), size and flags.
    first: Option<(u64, u32, u32)>,
}

impl Runs {
    /// Adds one `trun`'s samples; `d` gives the fields it leaves out, `moof_offset` the base
    /// of its data offset (`default-base-is-moof`).
    fn read(&mut self, trun: &Mp4Box<'_>, d: Defaults, moof_offset: u64) -> Result<(), BoxError> {
        let (_, f) = trun.version_flags()?;
        let count = trun.u32_at(4)?;
        let mut at = 8;
        let data_offset = if f & 0x01 != 0 {
            let o = trun.u32_at(at)? as i32;
            at += 4;
            Some(o)
        } else {
            None
        };
        let first_flags = if f & 0x04 != 0 {
            let x = trun.u32_at(at)?;
            at += 4;
            Some(x)
        } else {
            None
        };
        let per = [0x100, 0x200, 0x400, 0x800]
            .iter()
            .filter(|&&bit| f & bit != 0)
            .count();
        if (trun.body.len().saturating_sub(at)) / 4 < per * count as usize {
            return Err(trun.bad(format!(
                "{count} samples do not fit its {} bytes",
                trun.body.len()
            )));
        }
        for k in 0..count {
            let mut sd = d.duration;
            let mut size = d.size;
            let mut sflags = if k == 0 {
                first_flags.unwrap_or(d.flags)
            } else {
                d.flags
            };
            if f & 0x100 != 0 {
                sd = trun.u32_at(at)?;
                at += 4;
            }
            if f & 0x200 != 0 {
                size = trun.u32_at(at)?;
                at += 4;
            }
            if f & 0x400 != 0 {
                sflags = trun.u32_at(at)?;
                at += 4;
            }
            if f & 0x800 != 0 {
                at += 4;
            }
            if self.first.is_none() {
                let offset = data_offset.ok_or_else(|| trun.bad("no data offset".into()))?;
                self.first = Some((
                    moof_offset.wrapping_add_signed(i64::from(offset)),
                    size,
                    sflags,
                ));
            }
            self.duration += u64::from(sd);
            self.media_bytes += u64::from(size);
            self.samples += 1;
        }
        Ok(())
    }
}
