//! Container structure checks that find truncation without decoding.
//!
//! ISO BMFF (MP4, MOV) and Matroska both declare the size of their top-level parts. A file that
//! ends before a declared size was cut short. This catches the case the demuxer cannot even
//! open (an MP4 whose index was at the end) and names the exact byte where the file stops.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::problem::{Problem, ProblemKind};

/// Box types that can open an ISO BMFF file.
const BMFF_FIRST_BOXES: &[&[u8; 4]] = &[
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp", b"uuid",
];

/// The most top-level boxes walked; real files have a handful.
const MAX_BOXES: usize = 100_000;

/// What the structure walk learned.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Structure {
    /// The truncation found, if any.
    pub truncation: Option<Problem>,
    /// For ISO BMFF: whether a complete `moov` (index) box was seen.
    pub has_index: Option<bool>,
}

/// Walks the top-level structure of `path`, if it is ISO BMFF or Matroska.
pub(crate) fn check(path: &Path) -> std::io::Result<Structure> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut head = [0u8; 16];
    let n = read_up_to(&mut file, &mut head)?;
    if n >= 8 && BMFF_FIRST_BOXES.iter().any(|t| &head[4..8] == *t) {
        return walk_bmff(&mut file, len);
    }
    if n >= 4 && head[..4] == [0x1A, 0x45, 0xDF, 0xA3] {
        return walk_matroska(&mut file, len);
    }
    Ok(Structure::default())
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn box_name(t: &[u8]) -> String {
    t.iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

fn walk_bmff(file: &mut File, len: u64) -> std::io::Result<Structure> {
    let mut out = Structure {
        truncation: None,
        has_index: Some(false),
    };
    let mut offset = 0u64;
    for _ in 0..MAX_BOXES {
        if offset >= len {
            break;
        }
        file.seek(SeekFrom::Start(offset))?;
        let mut header = [0u8; 16];
        let n = read_up_to(file, &mut header)?;
        if n < 8 {
            out.truncation = Some(
                Problem::new(
                    ProblemKind::Truncated,
                    format!("the file ends inside a box header at byte {offset}"),
                )
                .offset(Some(offset)),
            );
            break;
        }
        let kind = &header[4..8];
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let (size, header_len) = match size32 {
            0 => (len - offset, 8),
            1 if n >= 16 => (
                u64::from_be_bytes(header[8..16].try_into().unwrap_or([0; 8])),
                16,
            ),
            1 => {
                out.truncation = Some(
                    Problem::new(
                        ProblemKind::Truncated,
                        format!(
                            "the file ends inside the header of the '{}' box at byte {offset}",
                            box_name(kind)
                        ),
                    )
                    .offset(Some(offset)),
                );
                break;
            }
            s => (u64::from(s), 8),
        };
        if size < header_len {
            // Not a box boundary: leave the diagnosis to the demuxer.
            break;
        }
        let end = offset.saturating_add(size);
        if end > len {
            out.truncation = Some(
                Problem::new(
                    ProblemKind::Truncated,
                    format!(
                        "the '{}' box at byte {offset} declares {size} bytes, but the file ends \
                         after {} of them ({} bytes missing)",
                        box_name(kind),
                        len - offset,
                        end - len
                    ),
                )
                .offset(Some(len)),
            );
            break;
        }
        if kind == b"moov" {
            out.has_index = Some(true);
        }
        offset = end;
    }
    Ok(out)
}

/// Reads an EBML variable-length integer; returns (value, length, all-ones marker).
fn read_vint(file: &mut File) -> std::io::Result<Option<(u64, usize, bool)>> {
    let mut first = [0u8; 1];
    if read_up_to(file, &mut first)? == 0 {
        return Ok(None);
    }
    let width = first[0].leading_zeros() as usize + 1;
    if width > 8 {
        return Ok(None);
    }
    let mut rest = [0u8; 7];
    if read_up_to(file, &mut rest[..width - 1])? < width - 1 {
        return Ok(None);
    }
    let mask = if width == 8 { 0 } else { 0xFFu8 >> width };
    let mut value = u64::from(first[0] & mask);
    let mut all_ones = first[0] & mask == mask;
    for &b in &rest[..width - 1] {
        value = (value << 8) | u64::from(b);
        all_ones &= b == 0xFF;
    }
    Ok(Some((value, width, all_ones)))
}

fn walk_matroska(file: &mut File, len: u64) -> std::io::Result<Structure> {
    let mut out = Structure::default();
    // The EBML header: 4-byte ID, then its size.
    file.seek(SeekFrom::Start(4))?;
    let Some((header_size, w, _)) = read_vint(file)? else {
        return Ok(out);
    };
    let segment_at = 4 + w as u64 + header_size;
    if segment_at > len {
        out.truncation = Some(
            Problem::new(
                ProblemKind::Truncated,
                "the file ends inside the EBML header",
            )
            .offset(Some(len)),
        );
        return Ok(out);
    }
    file.seek(SeekFrom::Start(segment_at))?;
    let mut id = [0u8; 4];
    if read_up_to(file, &mut id)? < 4 || id != [0x18, 0x53, 0x80, 0x67] {
        return Ok(out);
    }
    let Some((size, w, unknown)) = read_vint(file)? else {
        return Ok(out);
    };
    if unknown {
        // A live-style segment of unknown size: nothing to compare with.
        return Ok(out);
    }
    let end = segment_at + 4 + w as u64 + size;
    if end > len {
        out.truncation = Some(
            Problem::new(
                ProblemKind::Truncated,
                format!(
                    "the Matroska segment declares {size} bytes, but the file ends {} bytes \
                     short of it",
                    end - len
                ),
            )
            .offset(Some(len)),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    fn bmff_box(kind: &[u8; 4], payload: usize) -> Vec<u8> {
        let mut v = ((payload + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.resize(payload + 8, 0);
        v
    }

    #[test]
    fn complete_bmff_passes_and_finds_the_index() {
        let mut bytes = bmff_box(b"ftyp", 16);
        bytes.extend(bmff_box(b"moov", 100));
        bytes.extend(bmff_box(b"mdat", 1000));
        let s = check(temp(&bytes).path()).unwrap();
        assert_eq!(
            s,
            Structure {
                truncation: None,
                has_index: Some(true)
            }
        );
    }

    #[test]
    fn cut_bmff_names_the_box_and_the_byte() {
        let mut bytes = bmff_box(b"ftyp", 16);
        bytes.extend(bmff_box(b"mdat", 1000));
        bytes.truncate(500);
        let s = check(temp(&bytes).path()).unwrap();
        let p = s.truncation.expect("truncation found");
        assert_eq!(p.kind, ProblemKind::Truncated);
        assert_eq!(p.byte_offset, Some(500));
        assert!(p.message.contains("'mdat' box at byte 24"), "{}", p.message);
        assert_eq!(s.has_index, Some(false));
    }

    #[test]
    fn matroska_segment_size_is_checked() {
        // EBML header of 0 bytes, then a Segment of declared size 1000 with 10 bytes present.
        let mut bytes = vec![0x1A, 0x45, 0xDF, 0xA3, 0x80];
        bytes.extend_from_slice(&[0x18, 0x53, 0x80, 0x67, 0x40 | 0x03, 0xE8]);
        bytes.extend_from_slice(&[0u8; 10]);
        let p = check(temp(&bytes).path())
            .unwrap()
            .truncation
            .expect("truncation found");
        assert!(p.message.contains("declares 1000 bytes"), "{}", p.message);
        // Unknown size (all ones) is accepted.
        let mut live = vec![0x1A, 0x45, 0xDF, 0xA3, 0x80, 0x18, 0x53, 0x80, 0x67, 0xFF];
        live.extend_from_slice(&[0u8; 10]);
        assert_eq!(check(temp(&live).path()).unwrap().truncation, None);
    }

    #[test]
    fn other_files_are_left_alone() {
        assert_eq!(
            check(temp(b"hello world, this is text").path()).unwrap(),
            Structure::default()
        );
        assert_eq!(check(temp(b"").path()).unwrap(), Structure::default());
    }
}
