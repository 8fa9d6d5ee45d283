//! Keys and DRM signalling: which key protects which track (the studio rule of separate keys
//! for audio, SD, HD and UHD video, or one for all), and the `pssh` boxes and key URIs that tell
//! players and license servers which keys a title needs: the W3C common `pssh` (ClearKey and
//! any CDM that reads key IDs), Widevine's, PlayReady's, and FairPlay's `skd://` URI.
//!
//! Only key IDs leave this module; content keys go to the [`crate::cenc::Protector`] and
//! nowhere else.

use base64::Engine as _;

use crate::cenc::{self, ContentKey, Scheme, full};

/// The W3C common system ID (`urn:uuid:1077efec-…`): a `pssh` listing key IDs.
pub const COMMON_SYSTEM: [u8; 16] = [
    0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b,
];
/// W3C ClearKey as DASH-IF names it in an MPD (`urn:uuid:e2719d58-…`).
pub const CLEARKEY_SYSTEM: [u8; 16] = [
    0xe2, 0x71, 0x9d, 0x58, 0xa9, 0x85, 0xb3, 0xc9, 0x78, 0x1a, 0xb0, 0x30, 0xaf, 0x78, 0xd3, 0x0e,
];
/// Widevine.
pub const WIDEVINE_SYSTEM: [u8; 16] = [
    0xed, 0xef, 0x8b, 0xa9, 0x79, 0xd6, 0x4a, 0xce, 0xa3, 0xc8, 0x27, 0xdc, 0xd5, 0x1d, 0x21, 0xed,
];
/// PlayReady.
pub const PLAYREADY_SYSTEM: [u8; 16] = [
    0x9a, 0x04, 0xf0, 0x79, 0x98, 0x40, 0x42, 0x86, 0xab, 0x92, 0xe6, 0x5b, 0xe0, 0x88, 0x5f, 0x95,
];

/// Which tracks a key protects.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TrackClass {
    /// Every audio track.
    Audio,
    /// Video below 720p (and below 1280 wide).
    Sd,
    /// Video from 720p to 1080p.
    Hd,
    /// Video above 1080p.
    Uhd,
}

impl TrackClass {
    /// Every class.
    pub const ALL: [Self; 4] = [Self::Audio, Self::Sd, Self::Hd, Self::Uhd];

    /// The class of a video rendition of `width` × `height`: by the larger of its two
    /// dimensions against 1280×720 and 1920×1080, so a 1920×800 scope picture is HD.
    pub fn of_video(width: u32, height: u32) -> Self {
        if width > 1920 || height > 1088 {
            Self::Uhd
        } else if width >= 1280 || height >= 720 {
            Self::Hd
        } else {
            Self::Sd
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Sd => "sd",
            Self::Hd => "hd",
            Self::Uhd => "uhd",
        }
    }
}

/// Why keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A `--key` value is not `KID:KEY[:TRACKS]`.
    #[error("key `{shown}`: {reason}")]
    Syntax {
        /// The value, with its key hidden.
        shown: String,
        /// What is wrong.
        reason: String,
    },
    /// Two keys claim one class of track.
    #[error("two keys for {0} tracks")]
    Twice(&'static str),
    /// A class of track has no key.
    #[error(
        "no key for {0} tracks (give one with --key KID:KEY:{0}, or one key with no tracks for all)"
    )]
    Missing(&'static str),
    /// One key ID with two different keys.
    #[error("key ID {0} is given with two different keys")]
    Conflict(String),
}

/// The keys of a title, by class of track.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPolicy {
    keys: Vec<(TrackClass, ContentKey)>,
}

impl KeyPolicy {
    /// One key for every track.
    pub fn single(key: ContentKey) -> Self {
        Self {
            keys: TrackClass::ALL.iter().map(|c| (*c, key.clone())).collect(),
        }
    }

    /// From `--key` values, each `KID:KEY` (32 hex digits each, dashes allowed in the KID) with
    /// an optional `:TRACKS`, a comma list of `audio`, `sd`, `hd`, `uhd`, `video` or `all`
    /// (the default). Every class must end with exactly one key.
    pub fn parse(values: &[String]) -> Result<Self, KeyError> {
        let mut keys: Vec<(TrackClass, ContentKey)> = Vec::new();
        for v in values {
            let (key, classes) = parse_one(v)?;
            keys.extend(classes.into_iter().map(|c| (c, key.clone())));
        }
        Self::from_keys(keys)
    }

    /// From each class's key: every class must have exactly one, and one key ID one key.
    pub fn from_keys(keys: Vec<(TrackClass, ContentKey)>) -> Result<Self, KeyError> {
        let mut keys = keys;
        for (i, (c, _)) in keys.iter().enumerate() {
            if keys[..i].iter().any(|(k, _)| k == c) {
                return Err(KeyError::Twice(c.name()));
            }
        }
        for c in TrackClass::ALL {
            if !keys.iter().any(|(k, _)| *k == c) {
                return Err(KeyError::Missing(c.name()));
            }
        }
        for (i, (_, a)) in keys.iter().enumerate() {
            if keys[..i]
                .iter()
                .any(|(_, b)| b.kid == a.kid && b.key != a.key)
            {
                return Err(KeyError::Conflict(cenc::uuid(&a.kid)));
            }
        }
        keys.sort_by_key(|(c, _)| *c);
        Ok(Self { keys })
    }

    /// The key of a class.
    pub fn key(&self, class: TrackClass) -> Option<&ContentKey> {
        self.keys.iter().find(|(c, _)| *c == class).map(|(_, k)| k)
    }

    /// 16 hex digits of a SHA-256 over every class's key ID and key: tells a change of key,
    /// gives nothing of one.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"rungs key policy");
        for (c, k) in &self.keys {
            h.update(c.name().as_bytes());
            h.update(k.kid);
            h.update(k.key);
        }
        cenc::hex(&h.finalize()[..8])
    }

    /// Every distinct key ID, in class order.
    pub fn kids(&self) -> Vec<[u8; 16]> {
        let mut out: Vec<[u8; 16]> = Vec::new();
        for (_, k) in &self.keys {
            if !out.contains(&k.kid) {
                out.push(k.kid);
            }
        }
        out
    }
}

/// One `--key` value.
fn parse_one(v: &str) -> Result<(ContentKey, Vec<TrackClass>), KeyError> {
    let mut parts = v.splitn(3, ':');
    let kid_text = parts.next().unwrap_or("");
    let key_text = parts.next().unwrap_or("");
    let shown = format!("{kid_text}:(key hidden)");
    let syntax = |reason: String| KeyError::Syntax {
        shown: shown.clone(),
        reason,
    };
    let kid = hex16(&kid_text.replace('-', ""))
        .ok_or_else(|| syntax("the key ID is not 32 hexadecimal digits".into()))?;
    let key =
        hex16(key_text).ok_or_else(|| syntax("the key is not 32 hexadecimal digits".into()))?;
    let classes = match parts.next() {
        None | Some("") | Some("all") => TrackClass::ALL.to_vec(),
        Some(list) => {
            let mut out = Vec::new();
            for name in list.split(',') {
                match name.trim() {
                    "audio" => out.push(TrackClass::Audio),
                    "sd" => out.push(TrackClass::Sd),
                    "hd" => out.push(TrackClass::Hd),
                    "uhd" => out.push(TrackClass::Uhd),
                    "video" => out.extend([TrackClass::Sd, TrackClass::Hd, TrackClass::Uhd]),
                    "all" => out.extend(TrackClass::ALL),
                    other => {
                        return Err(syntax(format!(
                            "tracks `{other}` (expected audio, sd, hd, uhd, video or all)"
                        )));
                    }
                }
            }
            out.sort();
            out.dedup();
            out
        }
    };
    Ok((ContentKey { kid, key }, classes))
}

/// 16 bytes from 32 hex digits.
pub fn hex16(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A `pssh` box: version 1 with key IDs when `kids` is given, else version 0.
pub fn pssh(system: &[u8; 16], kids: Option<&[[u8; 16]]>, data: &[u8]) -> Vec<u8> {
    let mut b = system.to_vec();
    if let Some(kids) = kids {
        b.extend((kids.len() as u32).to_be_bytes());
        for k in kids {
            b.extend(k);
        }
    }
    b.extend((data.len() as u32).to_be_bytes());
    b.extend(data);
    full(b"pssh", u8::from(kids.is_some()), 0, &b)
}

/// The W3C common `pssh`: key IDs and no data.
pub fn common_pssh(kids: &[[u8; 16]]) -> Vec<u8> {
    pssh(&COMMON_SYSTEM, Some(kids), &[])
}

/// Widevine's `pssh` built from a key ID: its `WidevinePsshData` message with the key ID
/// (field 2) and the scheme's four-character code (field 9).
pub fn widevine_pssh(kid: &[u8; 16], scheme: Scheme) -> Vec<u8> {
    let mut data = vec![0x12, 16];
    data.extend(kid);
    data.push(0x48);
    let mut v = u32::from_be_bytes(scheme.fourcc());
    while v >= 0x80 {
        data.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    data.push(v as u8);
    pssh(&WIDEVINE_SYSTEM, None, &data)
}

/// A key ID in PlayReady's byte order (a GUID: its first three fields little-endian).
fn playready_guid(kid: &[u8; 16]) -> [u8; 16] {
    let mut g = *kid;
    g[..4].reverse();
    g[4..6].reverse();
    g[6..8].reverse();
    g
}

/// The PlayReady object (its `pssh` data, and `mspr:pro` in the MPD) for a key ID: one
/// rights-management header record, `WRMHEADER` 4.0 for `cenc`, 4.3 (AES-CBC) for `cbcs`.
pub fn playready_object(kid: &[u8; 16], scheme: Scheme) -> Vec<u8> {
    let id = base64::engine::general_purpose::STANDARD.encode(playready_guid(kid));
    let xml = match scheme {
        Scheme::Cenc => format!(
            "<WRMHEADER xmlns=\"http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader\" version=\"4.0.0.0\"><DATA><PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO><KID>{id}</KID></DATA></WRMHEADER>"
        ),
        Scheme::Cbcs => format!(
            "<WRMHEADER xmlns=\"http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader\" version=\"4.3.0.0\"><DATA><PROTECTINFO><KIDS><KID ALGID=\"AESCBC\" VALUE=\"{id}\"></KID></KIDS></PROTECTINFO></DATA></WRMHEADER>"
        ),
    };
    let record: Vec<u8> = xml.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut pro = Vec::with_capacity(record.len() + 10);
    pro.extend(((record.len() + 10) as u32).to_le_bytes());
    pro.extend(1u16.to_le_bytes());
    pro.extend(1u16.to_le_bytes());
    pro.extend((record.len() as u16).to_le_bytes());
    pro.extend(record);
    pro
}

/// PlayReady's `pssh` for a key ID.
pub fn playready_pssh(kid: &[u8; 16], scheme: Scheme) -> Vec<u8> {
    pssh(&PLAYREADY_SYSTEM, None, &playready_object(kid, scheme))
}

/// The `pssh` boxes of a track protected by `kid`: common, Widevine, PlayReady.
pub fn track_pssh(kid: &[u8; 16], scheme: Scheme) -> Vec<Vec<u8>> {
    vec![
        common_pssh(&[*kid]),
        widevine_pssh(kid, scheme),
        playready_pssh(kid, scheme),
    ]
}

/// Base64 (standard alphabet, padded).
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Base64url without padding, as W3C ClearKey JSON has key IDs and keys.
pub fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A system ID as a URN (`urn:uuid:…`).
pub fn system_urn(system: &[u8; 16]) -> String {
    format!("urn:uuid:{}", cenc::uuid(system))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KID: &str = "0123456789abcdef0123456789abcdef";
    const KEY: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn a_key_policy_gives_every_class_one_key() {
        let one = KeyPolicy::parse(&[format!("{KID}:{KEY}")]).unwrap();
        assert!(TrackClass::ALL.iter().all(|c| one.key(*c).is_some()));
        assert_eq!(one.kids().len(), 1);
        let kid2 = "11111111-2222-3333-4444-555555555555";
        let studio = KeyPolicy::parse(&[
            format!("{KID}:{KEY}:audio,sd"),
            format!("{kid2}:{KEY}:hd,uhd"),
        ])
        .unwrap();
        assert_eq!(studio.kids().len(), 2);
        assert_eq!(cenc::uuid(&studio.key(TrackClass::Hd).unwrap().kid), kid2);
        assert_eq!(
            KeyPolicy::parse(&[format!("{KID}:{KEY}:audio")]).unwrap_err(),
            KeyError::Missing("sd")
        );
        assert_eq!(
            KeyPolicy::parse(&[format!("{KID}:{KEY}"), format!("{kid2}:{KEY}:hd")]).unwrap_err(),
            KeyError::Twice("hd")
        );
        let e = KeyPolicy::parse(&[format!("{KID}:{}", &KEY[..30])])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not 32 hexadecimal") && !e.contains(&KEY[..30]),
            "{e}"
        );
        let e = KeyPolicy::parse(&[format!("{KID}:{KEY}:4k")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`4k`") && !e.contains(KEY), "{e}");
        let other = "ffeeddccbbaa99887766554433221100";
        assert!(matches!(
            KeyPolicy::parse(&[
                format!("{KID}:{KEY}:audio,sd,hd"),
                format!("{KID}:{other}:uhd")
            ]),
            Err(KeyError::Conflict(_))
        ));
    }

    #[test]
    fn video_classes_follow_the_larger_dimension() {
        assert_eq!(TrackClass::of_video(640, 360), TrackClass::Sd);
        assert_eq!(TrackClass::of_video(1024, 576), TrackClass::Sd);
        assert_eq!(TrackClass::of_video(1280, 544), TrackClass::Hd);
        assert_eq!(TrackClass::of_video(1920, 1080), TrackClass::Hd);
        assert_eq!(TrackClass::of_video(3840, 2160), TrackClass::Uhd);
    }

    #[test]
    fn pssh_boxes_carry_the_key_id() {
        let kid = hex16(KID).unwrap();
        let c = common_pssh(&[kid]);
        // size, 'pssh', version 1, system, count 1, kid, data size 0.
        assert_eq!(c.len(), 8 + 4 + 16 + 4 + 16 + 4);
        assert_eq!(&c[4..8], b"pssh");
        assert_eq!(c[8], 1);
        assert_eq!(&c[32..48], &kid);
        let w = widevine_pssh(&kid, Scheme::Cbcs);
        assert_eq!(&w[12..28], &WIDEVINE_SYSTEM);
        // Data: 0x12 16 KID 0x48 varint('cbcs').
        assert_eq!(&w[32..34], &[0x12, 16]);
        assert_eq!(&w[34..50], &kid);
        let pro = playready_object(&kid, Scheme::Cbcs);
        assert_eq!(
            u32::from_le_bytes(pro[..4].try_into().unwrap()) as usize,
            pro.len()
        );
        let text = String::from_utf16(
            &pro[10..]
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        // The GUID of 01234567-89ab-cdef-… is 67452301-ab89-efcd-…: Z0UjAauJ780BI0VniavN7w==.
        assert!(
            text.contains("VALUE=\"Z0UjAauJ780BI0VniavN7w==\""),
            "{text}"
        );
        assert!(text.contains("AESCBC"));
    }
}
