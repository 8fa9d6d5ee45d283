//! Common encryption (ISO/IEC 23001-7) of CMAF tracks: the `cenc` scheme (AES-128 in counter
//! mode, a per-sample IV) and the `cbcs` scheme (AES-128 in CBC mode with a constant IV, video
//! encrypted one block in ten).
//!
//! A [`Protector`] rewrites a track's init segment (the sample entry becomes `encv` or `enca`
//! with a `sinf`: `frma`, `schm`, `schi/tenc`; `pssh` boxes go into the `moov`) and each of its
//! media segments (the samples encrypted in place in the `mdat`, and `saiz`, `saio` and `senc`
//! added to the `traf`). Video samples are encrypted in subsamples: every NAL unit that is not a
//! slice stays clear, and a slice keeps its length field, its header and the start of its slice
//! header clear; the protected part of each is a whole number of 16-byte blocks, so the same
//! layout is right for both schemes. Audio samples are encrypted whole.
//!
//! With a clear lead, the init segment holds two sample entries, the protected one first and
//! the clear one second; the leading segments point at the clear one from their `tfhd`.
//!
//! The ciphers are RustCrypto's `aes`, `ctr` and `cbc`. IVs are derived, not drawn: a `cenc`
//! sample's IV is a hash of the key ID, the track's label, the segment's number and a checksum
//! of its samples, plus the sample's index, so the same input packages to the same bytes and two
//! different samples never share an IV under one key in practice.

use aes::Aes128;
use cbc::cipher::{BlockModeEncrypt, KeyIvInit, StreamCipher};
use sha2::{Digest, Sha256};

use crate::bmff::{self, BoxError, Mp4Box};

/// An AES block.
const BLOCK: usize = 16;

/// Bytes of a slice NAL unit, from its first, that stay clear: its header and the start of its
/// slice header. Apple's sample encryption keeps 32 clear too.
const SLICE_LEADER: usize = 32;

/// The protection scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// AES-CTR, whole subsample ranges, 8-byte per-sample IVs.
    Cenc,
    /// AES-CBC, 1:9 pattern for video and whole blocks for audio, constant IV.
    Cbcs,
}

impl Scheme {
    /// The four-character code in `schm`.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            Self::Cenc => *b"cenc",
            Self::Cbcs => *b"cbcs",
        }
    }

    /// The name, as in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cenc => "cenc",
            Self::Cbcs => "cbcs",
        }
    }
}

impl std::str::FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cenc" => Ok(Self::Cenc),
            "cbcs" => Ok(Self::Cbcs),
            other => Err(format!("scheme `{other}` (expected cenc or cbcs)")),
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A content key and its ID. The key never shows in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentKey {
    /// The key ID.
    pub kid: [u8; 16],
    /// The AES-128 key.
    pub key: [u8; 16],
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentKey")
            .field("kid", &hex(&self.kid))
            .field("key", &"(hidden)")
            .finish()
    }
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key ID as a UUID (`01234567-89ab-cdef-0123-456789abcdef`), as `cenc:default_KID` has it.
pub fn uuid(kid: &[u8; 16]) -> String {
    let h = hex(kid);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Why a track cannot be encrypted.
#[derive(Debug, thiserror::Error)]
pub enum CencError {
    /// The boxes are not what they should be.
    #[error(transparent)]
    Boxes(#[from] BoxError),
    /// The codec has no encryption layout here.
    #[error("sample entry `{0}`: rungs does not encrypt this codec yet")]
    Codec(String),
    /// A sample is not the NAL units its sample entry says.
    #[error("segment {segment}, sample {sample}: {reason}")]
    Sample {
        /// The segment (from 1).
        segment: usize,
        /// The sample in the segment (from 1).
        sample: usize,
        /// What is wrong.
        reason: String,
    },
    /// The fragment uses a layout the rewriter does not handle.
    #[error("segment {segment}: {reason}")]
    Layout {
        /// The segment (from 1).
        segment: usize,
        /// What is wrong.
        reason: String,
    },
}

/// How a track's samples are cut into clear and protected ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Length-prefixed NAL units (`avcC`/`hvcC`): slices protected, the rest clear.
    Nal { length_size: usize, hevc: bool },
    /// AV1 OBUs: tile data protected, every header clear.
    Av1,
    /// The whole sample protected (audio).
    Whole,
}

/// The track defaults of `trex`.
#[derive(Clone, Copy, Debug, Default)]
struct Trex {
    size: u32,
}

/// Encrypts one track: its init segment once, then each media segment.
pub struct Protector {
    scheme: Scheme,
    key: ContentKey,
    label: String,
    layout: Layout,
    trex: Trex,
    /// The `cbcs` constant IV.
    constant_iv: [u8; 16],
    /// An AV1 track's frames, followed in decode order.
    av1: Option<std::cell::RefCell<crate::av1::Reader>>,
}

impl std::fmt::Debug for Protector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protector")
            .field("scheme", &self.scheme)
            .field("key", &self.key)
            .field("label", &self.label)
            .finish()
    }
}

/// How one fragment is encrypted.
struct Plan {
    /// The `senc` box.
    senc: Vec<u8>,
    /// Each sample's `senc` entry size.
    sizes: Vec<u8>,
    /// Each sample's bytes in the `mdat` body.
    samples: Vec<std::ops::Range<usize>>,
    /// Each sample's subsamples (none: the whole sample).
    subsamples: Vec<Vec<Subsample>>,
    /// The first sample's IV (`cenc`).
    seed: u64,
}

/// One clear range followed by one protected range of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subsample {
    /// Clear bytes.
    pub clear: u16,
    /// Protected bytes, after the clear ones.
    pub protected: u32,
}

impl Protector {
    /// A protector for the track of `init` (one track), encrypting with `key` under `scheme`;
    /// `label` names the track uniquely among those that share the key (IVs derive from it).
    pub fn new(
        init: &[u8],
        scheme: Scheme,
        key: &ContentKey,
        label: &str,
    ) -> Result<Self, CencError> {
        let top = bmff::parse(init, 0)?;
        let moov = find(&top, b"moov")?;
        let entry = sample_entry(&moov)?;
        let layout = match &entry.kind {
            b"avc1" | b"avc3" => Layout::Nal {
                length_size: nal_length_size(&entry, b"avcC", 4)?,
                hevc: false,
            },
            b"hvc1" | b"hev1" => Layout::Nal {
                length_size: nal_length_size(&entry, b"hvcC", 21)?,
                hevc: true,
            },
            b"av01" => Layout::Av1,
            b"mp4a" | b"ac-3" | b"ec-3" | b"Opus" | b"fLaC" => Layout::Whole,
            other => {
                return Err(CencError::Codec(
                    String::from_utf8_lossy(other).into_owned(),
                ));
            }
        };
        let av1 = if layout == Layout::Av1 {
            let config = entry.child(78, b"av1C")?;
            let reader =
                crate::av1::Reader::new(config.body).map_err(|reason| CencError::Sample {
                    segment: 0,
                    sample: 0,
                    reason: format!("av1C: {reason}"),
                })?;
            Some(std::cell::RefCell::new(reader))
        } else {
            None
        };
        let trex = match moov.child(0, b"mvex").and_then(|m| m.child(0, b"trex")) {
            Ok(t) => Trex {
                size: t.u32_at(16)?,
            },
            Err(_) => Trex::default(),
        };
        let digest = Sha256::new()
            .chain_update(b"rungs cbcs constant IV")
            .chain_update(key.kid)
            .chain_update(label.as_bytes())
            .finalize();
        let mut constant_iv = [0u8; 16];
        constant_iv.copy_from_slice(&digest[..16]);
        Ok(Self {
            scheme,
            key: key.clone(),
            label: label.to_owned(),
            layout,
            trex,
            constant_iv,
            av1,
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The key ID.
    pub fn kid(&self) -> [u8; 16] {
        self.key.kid
    }

    /// True for video (pattern encryption under `cbcs`).
    fn is_video(&self) -> bool {
        matches!(self.layout, Layout::Nal { .. } | Layout::Av1)
    }

    /// The pattern (blocks encrypted, blocks skipped): 1:9 for `cbcs` video, none otherwise.
    fn pattern(&self) -> (u8, u8) {
        match (self.scheme, self.is_video()) {
            (Scheme::Cbcs, true) => (1, 9),
            _ => (0, 0),
        }
    }

    /// The `tenc` box.
    fn tenc(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self.scheme {
            Scheme::Cenc => {
                b.extend([0, 0, 1, 8]);
                b.extend(self.key.kid);
                full(b"tenc", 0, 0, &b)
            }
            Scheme::Cbcs => {
                let (crypt, skip) = self.pattern();
                b.extend([0, (crypt << 4) | skip, 1, 0]);
                b.extend(self.key.kid);
                b.push(16);
                b.extend(self.constant_iv);
                full(b"tenc", 1, 0, &b)
            }
        }
    }

    /// The init segment with the protected sample entry (and, with `clear_lead`, the clear one
    /// after it) and the `pssh` boxes (each a whole box) at the end of the `moov`.
    pub fn init(
        &self,
        init: &[u8],
        clear_lead: bool,
        pssh: &[Vec<u8>],
    ) -> Result<Vec<u8>, CencError> {
        let top = bmff::parse(init, 0)?;
        let mut out = Vec::with_capacity(init.len() + 512);
        for b in &top {
            if &b.kind != b"moov" {
                out.extend(whole(init, b));
                continue;
            }
            let mut body = Vec::new();
            for c in b.children(0)? {
                if &c.kind == b"trak" {
                    body.extend(rebuild(
                        init,
                        &c,
                        0,
                        &[b"mdia", b"minf", b"stbl", b"stsd"],
                        &mut |stsd| self.stsd(init, stsd, clear_lead),
                    )?);
                } else if &c.kind != b"pssh" {
                    body.extend(whole(init, &c));
                }
            }
            for p in pssh {
                body.extend(p);
            }
            out.extend(boxed(b"moov", &body));
        }
        Ok(out)
    }

    /// The `stsd` with the protected entry first, and the clear one after it on a clear lead.
    fn stsd(&self, file: &[u8], stsd: &Mp4Box<'_>, clear_lead: bool) -> Result<Vec<u8>, CencError> {
        let entries = stsd.children(8)?;
        let [entry] = entries.as_slice() else {
            return Err(CencError::Boxes(
                stsd.bad(format!("{} sample entries, expected one", entries.len())),
            ));
        };
        let protected_kind = if self.is_video() { b"encv" } else { b"enca" };
        let sinf = boxed(
            b"sinf",
            &[
                boxed(b"frma", &entry.kind),
                full(
                    b"schm",
                    0,
                    0,
                    &[&self.scheme.fourcc()[..], &[0, 1, 0, 0]].concat(),
                ),
                boxed(b"schi", &self.tenc()),
            ]
            .concat(),
        );
        let mut protected = entry.body.to_vec();
        protected.extend(sinf);
        let mut body = stsd.body[..4].to_vec();
        body.extend(if clear_lead { 2u32 } else { 1u32 }.to_be_bytes());
        body.extend(boxed(protected_kind, &protected));
        if clear_lead {
            body.extend(whole(file, entry));
        }
        Ok(boxed(b"stsd", &body))
    }

    /// Media segment `number` (from 1) encrypted, or, when `clear`, left clear and pointed at
    /// the clear sample entry (a clear lead).
    pub fn segment(&self, seg: &[u8], number: usize, clear: bool) -> Result<Vec<u8>, CencError> {
        let mut out = Vec::with_capacity(seg.len() + 4096);
        self.segment_into(seg, number, clear, &mut out)?;
        Ok(out)
    }

    /// [`Protector::segment`], appended to `out`: the sample data is copied once, into `out`,
    /// and encrypted there.
    pub fn segment_into(
        &self,
        seg: &[u8],
        number: usize,
        clear: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), CencError> {
        let layout = |reason: String| CencError::Layout {
            segment: number,
            reason,
        };
        let top = bmff::parse(seg, 0)?;
        let mut i = 0;
        while i < top.len() {
            let b = top[i];
            if &b.kind != b"moof" {
                out.extend(whole(seg, &b));
                i += 1;
                continue;
            }
            let mdat = top
                .get(i + 1)
                .filter(|m| &m.kind == b"mdat")
                .ok_or_else(|| {
                    layout(format!(
                        "the `moof` at byte {} has no `mdat` after it",
                        b.offset
                    ))
                })?;
            let (moof, plan) = self.fragment(seg, &b, mdat, number, clear)?;
            out.extend(moof);
            out.extend(((mdat.body.len() + 8) as u32).to_be_bytes());
            out.extend(b"mdat");
            let start = out.len();
            out.extend(mdat.body);
            if let Some(plan) = plan {
                self.apply(&mut out[start..], &plan);
            }
            i += 2;
        }
        Ok(())
    }

    /// One `moof` and its `mdat` body, rewritten.
    fn fragment(
        &self,
        file: &[u8],
        moof: &Mp4Box<'_>,
        mdat: &Mp4Box<'_>,
        number: usize,
        clear: bool,
    ) -> Result<(Vec<u8>, Option<Plan>), CencError> {
        let layout = |reason: String| CencError::Layout {
            segment: number,
            reason,
        };
        let children = moof.children(0)?;
        let trafs: Vec<_> = children.iter().filter(|c| &c.kind == b"traf").collect();
        let [traf] = trafs.as_slice() else {
            return Err(layout(format!(
                "{} track fragments, expected one",
                trafs.len()
            )));
        };
        let parts = traf.children(0)?;
        let tfhd = *parts
            .iter()
            .find(|c| &c.kind == b"tfhd")
            .ok_or_else(|| BoxError::Missing("tfhd".into()))?;
        let samples = self.samples(moof, mdat, &parts, &tfhd, number)?;
        let plan = if clear {
            self.follow(mdat.body, &samples, number)?;
            None
        } else {
            Some(self.plan(mdat.body, samples, number)?)
        };
        // With a constant IV and no subsamples (`cbcs` audio) every entry would be empty: no
        // sample auxiliary information at all, as the scheme allows.
        let aux = plan
            .as_ref()
            .map(|p| (&p.senc, &p.sizes))
            .filter(|(_, sizes)| sizes.iter().any(|&s| s > 0));
        // The new `traf`: `tfhd` (pointing at the clear entry on a clear lead), the rest as it
        // was, then `saiz`, `saio` and `senc`.
        let mut traf_body = Vec::new();
        for c in &parts {
            match &c.kind {
                b"tfhd" if clear => traf_body.extend(clear_tfhd(&tfhd)?),
                b"saiz" | b"saio" | b"senc" => {}
                _ => traf_body.extend(whole(file, c)),
            }
        }
        let before_traf: usize = children
            .iter()
            .take_while(|c| c.kind != *b"traf")
            .map(|c| c.size())
            .sum();
        if let Some((senc, sizes)) = aux {
            // The first `senc` entry: moof header, boxes before the traf, traf header, its
            // boxes so far, then the `senc` header and its count.
            let at = 8 + before_traf + 8 + traf_body.len() + 12 + 4;
            traf_body.extend(senc);
            traf_body.extend(saiz(sizes));
            traf_body.extend(full(
                b"saio",
                0,
                0,
                &[&1u32.to_be_bytes()[..], &(at as u32).to_be_bytes()].concat(),
            ));
        }
        let mut moof_body = Vec::new();
        for c in &children {
            if &c.kind == b"traf" {
                moof_body.extend(boxed(b"traf", &traf_body));
            } else {
                moof_body.extend(whole(file, c));
            }
        }
        let grown = (moof_body.len() + 8) as i64 - moof.size() as i64;
        let mut moof_bytes = boxed(b"moof", &moof_body);
        shift_data_offsets(&mut moof_bytes, grown)?;
        Ok((moof_bytes, plan))
    }

    /// Where each sample of a fragment is, as byte ranges of its `mdat` body.
    fn samples(
        &self,
        moof: &Mp4Box<'_>,
        mdat: &Mp4Box<'_>,
        parts: &[Mp4Box<'_>],
        tfhd: &Mp4Box<'_>,
        number: usize,
    ) -> Result<Vec<std::ops::Range<usize>>, CencError> {
        let layout = |reason: String| CencError::Layout {
            segment: number,
            reason,
        };
        let (_, tf_flags) = tfhd.version_flags()?;
        if tf_flags & 0x01 != 0 {
            return Err(layout(
                "`tfhd` has a base data offset; expected offsets from the `moof`".into(),
            ));
        }
        let default_size = if tf_flags & 0x10 != 0 {
            let at = 8
                + if tf_flags & 0x02 != 0 { 4 } else { 0 }
                + if tf_flags & 0x08 != 0 { 4 } else { 0 };
            tfhd.u32_at(at)?
        } else {
            self.trex.size
        };
        let data_start = (mdat.offset - moof.offset) as usize + mdat.header;
        let mut samples = Vec::new();
        for trun in parts.iter().filter(|c| &c.kind == b"trun") {
            for (offset, size) in trun_samples(trun, default_size)? {
                let from = offset
                    .checked_sub(data_start)
                    .filter(|f| f + size <= mdat.body.len())
                    .ok_or_else(|| {
                        layout(format!(
                            "a sample at byte {offset} of the `moof` is outside its `mdat`"
                        ))
                    })?;
                samples.push(from..from + size);
            }
        }
        Ok(samples)
    }

    /// How a fragment's samples are encrypted, found from its clear data: each sample's range,
    /// subsamples and IV, the `senc` box and each sample's entry size.
    fn plan(
        &self,
        data: &[u8],
        samples: Vec<std::ops::Range<usize>>,
        number: usize,
    ) -> Result<Plan, CencError> {
        let subsampled = self.is_video();
        let mut senc = Vec::new();
        senc.extend((samples.len() as u32).to_be_bytes());
        let mut sizes = Vec::with_capacity(samples.len());
        let mut subsamples = Vec::with_capacity(samples.len());
        let seed = self.iv_seed(data, number);
        for (k, range) in samples.iter().enumerate() {
            let subs = match self.layout {
                Layout::Nal { length_size, hevc } => {
                    nal_subsamples(&data[range.clone()], length_size, hevc).map_err(|reason| {
                        CencError::Sample {
                            segment: number,
                            sample: k + 1,
                            reason,
                        }
                    })?
                }
                Layout::Av1 => self.av1_subsamples(&data[range.clone()], number, k)?,
                Layout::Whole => vec![],
            };
            let start = senc.len();
            if self.scheme == Scheme::Cenc {
                senc.extend(seed.wrapping_add(k as u64).to_be_bytes());
            }
            if subsampled {
                senc.extend((subs.len() as u16).to_be_bytes());
                for s in &subs {
                    senc.extend(s.clear.to_be_bytes());
                    senc.extend(s.protected.to_be_bytes());
                }
            }
            sizes.push((senc.len() - start) as u8);
            subsamples.push(subs);
        }
        Ok(Plan {
            senc: full(b"senc", 0, if subsampled { 2 } else { 0 }, &senc),
            sizes,
            samples,
            subsamples,
            seed,
        })
    }

    /// Reads the frames of a clear fragment of an AV1 track, which later frames depend on.
    fn follow(
        &self,
        data: &[u8],
        samples: &[std::ops::Range<usize>],
        number: usize,
    ) -> Result<(), CencError> {
        if self.layout == Layout::Av1 {
            for (k, r) in samples.iter().enumerate() {
                self.av1_subsamples(&data[r.clone()], number, k)?;
            }
        }
        Ok(())
    }

    /// The subsamples of AV1 sample `k` (from 0) of segment `number`.
    fn av1_subsamples(
        &self,
        sample: &[u8],
        number: usize,
        k: usize,
    ) -> Result<Vec<Subsample>, CencError> {
        let reader = self.av1.as_ref().expect("an AV1 track has its reader");
        reader
            .borrow_mut()
            .subsamples(sample)
            .map_err(|reason| CencError::Sample {
                segment: number,
                sample: k + 1,
                reason,
            })
    }

    /// Encrypts a fragment's sample data in place as `plan` says.
    fn apply(&self, data: &mut [u8], plan: &Plan) {
        let (crypt, skip) = self.pattern();
        for (k, (range, subs)) in plan.samples.iter().zip(&plan.subsamples).enumerate() {
            let sample = &mut data[range.clone()];
            match self.scheme {
                Scheme::Cenc => {
                    let mut counter = [0u8; 16];
                    counter[..8].copy_from_slice(&plan.seed.wrapping_add(k as u64).to_be_bytes());
                    let mut cipher =
                        ctr::Ctr128BE::<Aes128>::new(&self.key.key.into(), &counter.into());
                    for r in protected_ranges(sample.len(), subs) {
                        cipher.apply_keystream(&mut sample[r]);
                    }
                }
                Scheme::Cbcs => {
                    for r in protected_ranges(sample.len(), subs) {
                        cbcs(
                            &self.key.key,
                            &self.constant_iv,
                            &mut sample[r],
                            crypt,
                            skip,
                        );
                    }
                }
            }
        }
    }

    /// The first `cenc` IV of segment `number`: from the key ID, the label, the number and a
    /// checksum of the clear `mdat`. Sample `k` uses the seed plus `k`.
    fn iv_seed(&self, data: &[u8], number: usize) -> u64 {
        let digest = Sha256::new()
            .chain_update(b"rungs cenc IV")
            .chain_update(self.key.kid)
            .chain_update(self.label.as_bytes())
            .chain_update((number as u64).to_be_bytes())
            .chain_update((data.len() as u64).to_be_bytes())
            .chain_update(crc32fast::hash(data).to_be_bytes())
            .finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(b)
    }
}

/// `cbcs` of one protected range: CBC from `iv`, `crypt` blocks encrypted then `skip` left,
/// repeated (every block when both are 0); a last partial block stays clear.
fn cbcs(key: &[u8; 16], iv: &[u8; 16], data: &mut [u8], crypt: u8, skip: u8) {
    let mut cipher = cbc::Encryptor::<Aes128>::new(&(*key).into(), &(*iv).into());
    let (crypt, skip) = if crypt == 0 && skip == 0 {
        (1usize, 0usize)
    } else {
        (usize::from(crypt), usize::from(skip))
    };
    let whole_blocks = data.len() / BLOCK;
    let mut block = 0;
    while block + crypt <= whole_blocks {
        for b in block..block + crypt {
            let chunk: &mut [u8; 16] = (&mut data[b * BLOCK..(b + 1) * BLOCK])
                .try_into()
                .expect("a 16-byte slice");
            cipher.encrypt_block((chunk).into());
        }
        block += crypt + skip;
    }
}

/// The protected byte ranges of a sample of `len` bytes: all of it without subsamples.
fn protected_ranges(len: usize, subs: &[Subsample]) -> Vec<std::ops::Range<usize>> {
    if subs.is_empty() {
        return std::iter::once(0..len).collect();
    }
    let mut at = 0;
    let mut out = Vec::with_capacity(subs.len());
    for s in subs {
        at += usize::from(s.clear);
        let p = s.protected as usize;
        if p > 0 {
            out.push(at..at + p);
        }
        at += p;
    }
    out
}

/// The subsamples of a sample of length-prefixed NAL units: a slice keeps its length field and
/// its first [`SLICE_LEADER`] bytes clear, and whole blocks of the rest are protected; every
/// other NAL unit is clear. Clear counts above 65,535 are split.
pub fn nal_subsamples(
    sample: &[u8],
    length_size: usize,
    hevc: bool,
) -> Result<Vec<Subsample>, String> {
    let mut out = Subsamples::default();
    let mut at = 0usize;
    while at < sample.len() {
        let Some(field) = sample.get(at..at + length_size) else {
            return Err(format!(
                "NAL length field at byte {at} runs past the sample"
            ));
        };
        let len = field.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        let end = at + length_size + len;
        if len == 0 || end > sample.len() {
            return Err(format!(
                "NAL unit at byte {at} of {len} bytes does not fit the sample's {} bytes",
                sample.len()
            ));
        }
        let header = sample[at + length_size];
        let slice = if hevc {
            (header >> 1) & 0x3f < 32
        } else {
            matches!(header & 0x1f, 1..=5)
        };
        let protected = if slice && len > SLICE_LEADER {
            (len - SLICE_LEADER) / BLOCK * BLOCK
        } else {
            0
        };
        out.clear(length_size + len - protected);
        out.protect(protected);
        at = end;
    }
    Ok(out.finish())
}

/// Subsamples built from runs of clear and protected bytes: clear runs add up until a
/// protected one closes a subsample; clear counts over 65,535 are split.
#[derive(Default)]
pub(crate) struct Subsamples {
    out: Vec<Subsample>,
    pending: usize,
}

impl Subsamples {
    /// `n` more clear bytes.
    pub(crate) fn clear(&mut self, n: usize) {
        self.pending += n;
    }

    /// `n` protected bytes after the clear ones so far (nothing when `n` is 0).
    pub(crate) fn protect(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        while self.pending > usize::from(u16::MAX) {
            self.out.push(Subsample {
                clear: u16::MAX,
                protected: 0,
            });
            self.pending -= usize::from(u16::MAX);
        }
        self.out.push(Subsample {
            clear: self.pending as u16,
            protected: n as u32,
        });
        self.pending = 0;
    }

    /// The subsamples, the last clear bytes in their own.
    pub(crate) fn finish(mut self) -> Vec<Subsample> {
        while self.pending > 0 {
            let c = self.pending.min(usize::from(u16::MAX));
            self.out.push(Subsample {
                clear: c as u16,
                protected: 0,
            });
            self.pending -= c;
        }
        self.out
    }
}

/// The `saiz` box: one default size when all entries are alike.
fn saiz(sizes: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    let same = sizes.windows(2).all(|w| w[0] == w[1]);
    b.push(if same {
        sizes.first().copied().unwrap_or(0)
    } else {
        0
    });
    b.extend((sizes.len() as u32).to_be_bytes());
    if !same {
        b.extend(sizes);
    }
    full(b"saiz", 0, 0, &b)
}

/// The `tfhd` with its sample description index set to 2 (the clear entry).
fn clear_tfhd(tfhd: &Mp4Box<'_>) -> Result<Vec<u8>, CencError> {
    let (v, flags) = tfhd.version_flags()?;
    let mut body = tfhd.body.to_vec();
    if flags & 0x02 != 0 {
        body[8..12].copy_from_slice(&2u32.to_be_bytes());
    } else {
        // Track ID (4 bytes after version and flags), then the index.
        body.splice(8..8, 2u32.to_be_bytes());
    }
    let flags = flags | 0x02;
    body[..4].copy_from_slice(&((u32::from(v) << 24) | flags).to_be_bytes());
    Ok(boxed(b"tfhd", &body))
}

/// Adds `by` to the data offset of every `trun` in a `moof`.
fn shift_data_offsets(moof: &mut [u8], by: i64) -> Result<(), CencError> {
    let mut patches = Vec::new();
    {
        let top = bmff::parse(moof, 0)?;
        for traf in top[0].children(0)?.iter().filter(|c| &c.kind == b"traf") {
            for trun in traf.children(0)?.iter().filter(|c| &c.kind == b"trun") {
                let (_, f) = trun.version_flags()?;
                if f & 0x01 != 0 {
                    let at = trun.offset as usize + trun.header + 8;
                    let old = trun.u32_at(8)? as i32;
                    let new = i32::try_from(i64::from(old) + by)
                        .map_err(|_| trun.bad("data offset overflows".into()))?;
                    patches.push((at, new));
                }
            }
        }
    }
    for (at, v) in patches {
        moof[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    Ok(())
}

/// Each sample of a `trun`: its offset from the `moof` start and its size.
fn trun_samples(trun: &Mp4Box<'_>, default_size: u32) -> Result<Vec<(usize, usize)>, BoxError> {
    let (_, f) = trun.version_flags()?;
    let count = trun.u32_at(4)? as usize;
    let mut at = 8;
    let Some(offset) = (f & 0x01 != 0).then(|| trun.u32_at(at)) else {
        return Err(trun.bad("no data offset".into()));
    };
    let mut offset = offset? as i32 as i64;
    at += 4;
    if f & 0x04 != 0 {
        at += 4;
    }
    let per = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|&&bit| f & bit != 0)
        .count();
    if trun.body.len().saturating_sub(at) / 4 < per * count {
        return Err(trun.bad(format!(
            "{count} samples do not fit its {} bytes",
            trun.body.len()
        )));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        if f & 0x100 != 0 {
            at += 4;
        }
        let size = if f & 0x200 != 0 {
            let s = trun.u32_at(at)?;
            at += 4;
            s
        } else {
            default_size
        };
        if f & 0x400 != 0 {
            at += 4;
        }
        if f & 0x800 != 0 {
            at += 4;
        }
        if offset < 0 {
            return Err(trun.bad(format!("negative data offset {offset}")));
        }
        out.push((offset as usize, size as usize));
        offset += i64::from(size);
    }
    Ok(out)
}

/// The NAL length size from a decoder configuration box: the low two bits of the byte at `at`,
/// plus one.
fn nal_length_size(entry: &Mp4Box<'_>, kind: &[u8; 4], at: usize) -> Result<usize, CencError> {
    let config = entry.child(78, kind)?;
    let [b] = config.bytes::<1>(at)?;
    Ok(usize::from(b & 0x03) + 1)
}

/// The first sample entry of the first track.
fn sample_entry<'a>(moov: &Mp4Box<'a>) -> Result<Mp4Box<'a>, CencError> {
    let trak = moov.child(0, b"trak")?;
    let stsd = bmff::path(&trak, &[b"mdia", b"minf", b"stbl"])?.child(0, b"stsd")?;
    let entries = stsd.children(8)?;
    Ok(*entries
        .first()
        .ok_or_else(|| stsd.bad("no sample entry".into()))?)
}

fn find<'a>(top: &[Mp4Box<'a>], kind: &[u8; 4]) -> Result<Mp4Box<'a>, BoxError> {
    top.iter()
        .find(|b| &b.kind == kind)
        .copied()
        .ok_or_else(|| BoxError::Missing(String::from_utf8_lossy(kind).into_owned()))
}

/// `b` as it is in `file`, header and all.
fn whole<'a>(file: &'a [u8], b: &Mp4Box<'_>) -> &'a [u8] {
    &file[b.offset as usize..b.offset as usize + b.size()]
}

/// `b` rebuilt with the box at the end of `path` (below it, each a plain container) replaced
/// by what `edit` makes of it; `skip` bytes of fields come before `b`'s children.
fn rebuild(
    file: &[u8],
    b: &Mp4Box<'_>,
    skip: usize,
    path: &[&[u8; 4]],
    edit: &mut dyn FnMut(&Mp4Box<'_>) -> Result<Vec<u8>, CencError>,
) -> Result<Vec<u8>, CencError> {
    let Some((next, rest)) = path.split_first() else {
        return edit(b);
    };
    let mut body = b.body[..skip].to_vec();
    let mut found = false;
    for c in b.children(skip)? {
        if &c.kind == *next && !found {
            found = true;
            body.extend(rebuild(file, &c, 0, rest, edit)?);
        } else {
            body.extend(whole(file, &c));
        }
    }
    if !found {
        return Err(BoxError::Missing(String::from_utf8_lossy(*next).into_owned()).into());
    }
    Ok(boxed(&b.kind, &body))
}

/// A box of `kind` around `body`.
pub fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 8);
    v.extend(((body.len() + 8) as u32).to_be_bytes());
    v.extend(kind);
    v.extend(body);
    v
}

/// A full box: version and flags, then `body`.
pub fn full(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut b = ((u32::from(version) << 24) | (flags & 0x00ff_ffff))
        .to_be_bytes()
        .to_vec();
    b.extend(body);
    boxed(kind, &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nal(kind: u8, len: usize) -> Vec<u8> {
        let mut v = (len as u32).to_be_bytes().to_vec();
        v.push(kind);
        v.extend(std::iter::repeat_n(0xab, len - 1));
        v
    }

    #[test]
    fn slices_are_protected_in_whole_blocks_and_the_rest_stays_clear() {
        // SEI (6), IDR slice (5) of 100 bytes, small slice (1) of 20 bytes, slice of 300.
        let mut s = nal(6, 30);
        s.extend(nal(5, 100));
        s.extend(nal(1, 20));
        s.extend(nal(1, 300));
        let subs = nal_subsamples(&s, 4, false).unwrap();
        // SEI clear (34) + IDR: 100 - 32 = 68 -> 64 protected, 4 + 36 clear.
        assert_eq!(
            subs[0],
            Subsample {
                clear: 34 + 40,
                protected: 64
            }
        );
        // Small slice all clear (24) + slice of 300: 268 -> 256 protected, 4 + 44 clear.
        assert_eq!(
            subs[1],
            Subsample {
                clear: 24 + 48,
                protected: 256
            }
        );
        assert_eq!(subs.len(), 2);
        let total: usize = subs
            .iter()
            .map(|x| usize::from(x.clear) + x.protected as usize)
            .sum();
        assert_eq!(total, s.len());
        // HEVC: type in bits 1..6 of the first header byte; 39 (SEI) clear, 1 (TRAIL_R) not.
        let mut h = nal(39 << 1, 40);
        h.extend(nal(1 << 1, 64));
        let subs = nal_subsamples(&h, 4, true).unwrap();
        assert_eq!(
            subs,
            [Subsample {
                clear: 44 + 4 + 32,
                protected: 32
            }]
        );
        // A NAL unit running past the sample, and a cut length field.
        assert!(
            nal_subsamples(&s[..s.len() - 1], 4, false)
                .unwrap_err()
                .contains("does not fit")
        );
        assert!(
            nal_subsamples(&[0, 0], 4, false)
                .unwrap_err()
                .contains("runs past")
        );
        // Long clear runs are split at 65,535.
        let big = nal(6, 70_000);
        let subs = nal_subsamples(&big, 4, false).unwrap();
        assert_eq!(
            subs.iter().map(|x| usize::from(x.clear)).sum::<usize>(),
            70_004
        );
        assert!(subs.iter().all(|x| x.protected == 0));
    }

    #[test]
    fn cbcs_encrypts_one_block_in_ten_and_leaves_a_partial_block() {
        let key = [7u8; 16];
        let iv = [9u8; 16];
        let clear = vec![0x55u8; 16 * 21 + 5];
        let mut data = clear.clone();
        cbcs(&key, &iv, &mut data, 1, 9);
        for b in 0..22 {
            let r = b * 16..((b + 1) * 16).min(data.len());
            let changed = data[r.clone()] != clear[r];
            assert_eq!(changed, b == 0 || b == 10 || b == 20, "block {b}");
        }
        // Whole blocks (audio): every full block, the tail clear.
        let mut data = clear.clone();
        cbcs(&key, &iv, &mut data, 0, 0);
        assert!((0..21).all(|b| data[b * 16..(b + 1) * 16] != clear[b * 16..(b + 1) * 16]));
        assert_eq!(data[336..], clear[336..]);
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let k = ContentKey {
            kid: [0x11; 16],
            key: [0xcd; 16],
        };
        let shown = format!("{k:?}");
        assert!(
            shown.contains("11111111") && !shown.contains("cdcd"),
            "{shown}"
        );
        assert_eq!(uuid(&[0x11; 16]), "11111111-1111-1111-1111-111111111111");
    }
}
