//! Reading ISO base media (MP4) boxes: enough to split a fragmented file into its init segment
//! and media segments, to read back each fragment's timing, and to find a track's sample entry.
//!
//! Every read is bounds-checked; a truncated or inconsistent box is an error that names the
//! box and its byte offset, never a panic.

/// Why bytes are not the boxes they should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoxError {
    /// A box header or body runs past the end of its parent.
    #[error("box `{kind}` at byte {offset}: {reason}")]
    Bad {
        /// The box type (four characters), or `?` when the header itself is cut.
        kind: String,
        /// Byte offset of the box in the buffer read.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A box the caller needs is not there.
    #[error("no `{0}` box")]
    Missing(String),
}

/// One box: its type, where it starts, and its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mp4Box<'a> {
    /// The four-character type.
    pub kind: [u8; 4],
    /// Offset of the header's first byte, from the start of the buffer first read.
    pub offset: u64,
    /// Header size (8, or 16 with a 64-bit size).
    pub header: usize,
    /// The body (after the header).
    pub body: &'a [u8],
}

impl<'a> Mp4Box<'a> {
    /// The type as text.
    pub fn kind_str(&self) -> String {
        String::from_utf8_lossy(&self.kind).into_owned()
    }

    /// Total size with the header.
    pub fn size(&self) -> usize {
        self.header + self.body.len()
    }

    /// The boxes inside this one, starting `skip` bytes into the body (full boxes and sample
    /// entries have fields before their children).
    pub fn children(&self, skip: usize) -> Result<Vec<Mp4Box<'a>>, BoxError> {
        let Some(inner) = self.body.get(skip..) else {
            return Err(self.bad(format!(
                "body of {} bytes, expected at least {skip}",
                self.body.len()
            )));
        };
        parse(inner, self.offset + (self.header + skip) as u64)
    }

    /// The first child of `kind` (after `skip` bytes of fields).
    pub fn child(&self, skip: usize, kind: &[u8; 4]) -> Result<Mp4Box<'a>, BoxError> {
        self.children(skip)?
            .into_iter()
            .find(|b| &b.kind == kind)
            .ok_or_else(|| BoxError::Missing(String::from_utf8_lossy(kind).into_owned()))
    }

    /// An error about this box.
    pub fn bad(&self, reason: String) -> BoxError {
        BoxError::Bad {
            kind: self.kind_str(),
            offset: self.offset,
            reason,
        }
    }

    /// A big-endian field of `N` bytes at `at` in the body.
    pub fn bytes<const N: usize>(&self, at: usize) -> Result<[u8; N], BoxError> {
        self.body
            .get(at..at + N)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| {
                self.bad(format!(
                    "body of {} bytes has no {N}-byte field at {at}",
                    self.body.len()
                ))
            })
    }

    /// A big-endian `u32` at `at` in the body.
    pub fn u32_at(&self, at: usize) -> Result<u32, BoxError> {
        self.bytes::<4>(at).map(u32::from_be_bytes)
    }

    /// A big-endian `u64` at `at` in the body.
    pub fn u64_at(&self, at: usize) -> Result<u64, BoxError> {
        self.bytes::<8>(at).map(u64::from_be_bytes)
    }

    /// A full box's version and flags.
    pub fn version_flags(&self) -> Result<(u8, u32), BoxError> {
        let v = self.u32_at(0)?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
}

/// The boxes of `data`, back to back, whose first byte is at `base` in the whole buffer.
pub fn parse(data: &[u8], base: u64) -> Result<Vec<Mp4Box<'_>>, BoxError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        let offset = base + at as u64;
        let rest = &data[at..];
        let cut = |reason: String| BoxError::Bad {
            kind: rest
                .get(4..8)
                .map_or("?".into(), |k| String::from_utf8_lossy(k).into_owned()),
            offset,
            reason,
        };
        if rest.len() < 8 {
            return Err(cut(format!(
                "{} bytes left, a box header needs 8",
                rest.len()
            )));
        }
        let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        let (header, size) = match size32 {
            // To the end of the enclosing data.
            0 => (8usize, rest.len() as u64),
            1 => {
                let Some(big) = rest.get(8..16) else {
                    return Err(cut("64-bit size cut short".into()));
                };
                let mut b = [0u8; 8];
                b.copy_from_slice(big);
                (16, u64::from_be_bytes(b))
            }
            s => (8, u64::from(s)),
        };
        if size < header as u64 {
            return Err(cut(format!("size {size} is smaller than its header")));
        }
        if size > rest.len() as u64 {
            return Err(cut(format!(
                "size {size} runs past the end ({} bytes left)",
                rest.len()
            )));
        }
        let size = size as usize;
        out.push(Mp4Box {
            kind,
            offset,
            header,
            body: &rest[header..size],
        });
        at += size;
    }
    Ok(out)
}

/// Follows a path of container boxes (each with no fields before its children) from `root`.
pub fn path<'a>(root: &Mp4Box<'a>, kinds: &[&[u8; 4]]) -> Result<Mp4Box<'a>, BoxError> {
    let mut b = *root;
    for k in kinds {
        b = b.child(0, k)?;
    }
    Ok(b)
}

/// A box of `kind` around `body`, for tests.
#[cfg(test)]
pub(crate) fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_boxes_and_names_the_bad_one() {
        let inner = boxed(b"mvhd", &[0, 0, 0, 0, 1, 2, 3, 4]);
        let mut file = boxed(b"ftyp", b"isom\0\0\0\0");
        file.extend(boxed(b"moov", &inner));
        let top = parse(&file, 0).unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!(top[1].kind_str(), "moov");
        assert_eq!(top[1].offset, 16);
        let mvhd = path(&top[1], &[b"mvhd"]).unwrap();
        assert_eq!(mvhd.offset, 24);
        assert_eq!(mvhd.u32_at(4).unwrap(), 0x0102_0304);
        assert!(mvhd.u32_at(6).unwrap_err().to_string().contains("mvhd"));
        assert_eq!(
            top[1].child(0, b"trak").unwrap_err(),
            BoxError::Missing("trak".into())
        );
        // Truncated: the moov claims more than there is.
        let cut = &file[..file.len() - 3];
        let e = parse(cut, 0).unwrap_err().to_string();
        assert!(
            e.contains("`moov` at byte 16") && e.contains("runs past"),
            "{e}"
        );
        // A size below the header, and a header cut short.
        let mut tiny = file.clone();
        tiny[3] = 4;
        assert!(parse(&tiny, 0).unwrap_err().to_string().contains("smaller"));
        assert!(
            parse(&file[..4], 0)
                .unwrap_err()
                .to_string()
                .contains("4 bytes left")
        );
    }
}
