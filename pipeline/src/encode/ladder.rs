//! Fixed ladders: Apple's HLS authoring ladder per codec, or one from a TOML file, fitted to
//! the master (never above its size, always at its display aspect ratio).

use serde::{Deserialize, Serialize};
use workers::encode::{Codec, RateControl, Vbv};

/// One rung of Apple's table: 16:9 height and average bit rate in kbit/s.
type AppleRung = (u32, u32);

/// H.264 rungs of the HLS Authoring Specification for Apple Devices (16:9, SDR).
const APPLE_H264: [AppleRung; 9] = [
    (234, 145),
    (360, 365),
    (432, 730),
    (432, 1100),
    (540, 2000),
    (720, 3000),
    (720, 4500),
    (1080, 6000),
    (1080, 7800),
];

/// HEVC rungs of the same specification (16:9, SDR). AV1 and VP9, which Apple does not list,
/// use these too: their efficiency is close to HEVC's.
const APPLE_HEVC: [AppleRung; 12] = [
    (360, 145),
    (432, 300),
    (540, 600),
    (540, 900),
    (540, 1600),
    (720, 2400),
    (720, 3400),
    (1080, 4500),
    (1080, 5800),
    (1440, 8100),
    (2160, 11600),
    (2160, 16800),
];

/// One rendition of a fixed ladder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    /// Name, used for the file (`NAME.mp4`) and in the report; letters, digits, `-` and `_`.
    pub name: String,
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Rate control.
    pub rate: RateControl,
    /// VBV cap, if any.
    pub vbv: Option<Vbv>,
}

/// The default constant-quality value of each codec for fixed ladders, capped by VBV.
pub fn default_quality(codec: Codec) -> RateControl {
    RateControl::Crf(match codec {
        Codec::H264 => 23.0,
        Codec::Hevc => 26.0,
        Codec::Av1 => 32.0,
        Codec::Vp9 => 33.0,
        Codec::Av1Rav1e => 100.0,
    })
}

/// The even number nearest to `x`, at least 2.
fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32).max(1) * 2
}

/// Apple's ladder for `codec`, fitted to a master of `width`×`height` whose display aspect
/// ratio is `aspect` (width / height on screen): rungs taller than the master are dropped, the
/// widths follow the master's aspect ratio, and a master smaller than every rung gets one rung
/// at its own size. Rate control is the codec's default CRF capped at the rung's rate (buffer
/// of two seconds); rav1e, which has no VBV, gets the quantizer alone.
pub fn apple(codec: Codec, width: u32, height: u32, aspect: f64) -> Vec<Rung> {
    let table: &[AppleRung] = match codec {
        Codec::H264 => &APPLE_H264,
        _ => &APPLE_HEVC,
    };
    let fit = |h: u32| {
        // Portrait masters keep their short side as the rung's "height" class.
        let (w, hh) = if aspect >= 1.0 {
            (even(f64::from(h) * aspect), h)
        } else {
            (h, even(f64::from(h) / aspect))
        };
        (
            w.min(even(f64::from(width))),
            hh.min(even(f64::from(height))),
        )
    };
    let short_side = width.min(height);
    let mut rungs: Vec<Rung> = table
        .iter()
        .filter(|(h, _)| *h <= short_side)
        .map(|&(h, kbps)| {
            let (w, hh) = fit(h);
            rung(codec, w, hh, kbps)
        })
        .collect();
    if rungs.is_empty() {
        let (h, kbps) = table[0];
        let scale = f64::from(short_side) / f64::from(h);
        let (w, hh) = (even(f64::from(width)), even(f64::from(height)));
        rungs.push(rung(
            codec,
            w,
            hh,
            ((f64::from(kbps) * scale).round() as u32).max(16),
        ));
    }
    // Equal sizes are told apart by their rate.
    for r in &mut rungs {
        r.name = match r.vbv {
            Some(v) => format!("{}p-{}k", r.height.min(r.width), v.maxrate_kbps),
            None => format!("{}p", r.height.min(r.width)),
        };
    }
    rungs.dedup_by(|a, b| a.name == b.name);
    rungs
}

fn rung(codec: Codec, width: u32, height: u32, kbps: u32) -> Rung {
    Rung {
        name: String::new(),
        width,
        height,
        rate: default_quality(codec),
        vbv: (codec != Codec::Av1Rav1e).then_some(Vbv {
            maxrate_kbps: kbps,
            bufsize_kbit: kbps * 2,
        }),
    }
}

/// A ladder file: `[[rung]]` tables with `name`, `width`, `height`, and `crf` or `qp`, and
/// optionally `maxrate_kbps` and `bufsize_kbit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LadderFile {
    rung: Vec<RungEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RungEntry {
    name: String,
    width: u32,
    height: u32,
    crf: Option<f32>,
    qp: Option<u32>,
    maxrate_kbps: Option<u32>,
    bufsize_kbit: Option<u32>,
}

/// Why a ladder file is refused.
#[derive(Debug, thiserror::Error)]
pub enum LadderFileError {
    /// Not TOML, or not a ladder (the parser's message has the line).
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// The file holds no rung.
    #[error("the ladder has no [[rung]]")]
    Empty,
    /// A rung is wrong.
    #[error("rung {index} ({name:?}): {reason}")]
    Rung {
        /// Its place in the file, from 1.
        index: usize,
        /// Its name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Parses a ladder file. Errors name the rung and the problem (TOML errors their line).
pub fn from_toml(text: &str, codec: Codec) -> Result<Vec<Rung>, LadderFileError> {
    let file: LadderFile = toml::from_str(text)?;
    if file.rung.is_empty() {
        return Err(LadderFileError::Empty);
    }
    let mut out: Vec<Rung> = Vec::new();
    for (i, r) in file.rung.into_iter().enumerate() {
        let at = |reason: &'static str| LadderFileError::Rung {
            index: i + 1,
            name: r.name.clone(),
            reason,
        };
        if r.name.is_empty()
            || r.name.len() > 64
            || !r
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(at(
                "invalid name (expected 1 to 64 letters, digits, - or _)",
            ));
        }
        if out.iter().any(|o| o.name == r.name) {
            return Err(at("the name is used twice"));
        }
        let rate = match (r.crf, r.qp) {
            (Some(c), None) => RateControl::Crf(c),
            (None, Some(q)) => RateControl::Qp(q),
            (None, None) => default_quality(codec),
            (Some(_), Some(_)) => return Err(at("give crf or qp, not both")),
        };
        let vbv = match (r.maxrate_kbps, r.bufsize_kbit) {
            (None, None) => None,
            (Some(m), b) => Some(Vbv {
                maxrate_kbps: m,
                bufsize_kbit: b.unwrap_or(m.saturating_mul(2)),
            }),
            (None, Some(_)) => return Err(at("bufsize_kbit needs maxrate_kbps")),
        };
        out.push(Rung {
            name: r.name,
            width: r.width,
            height: r.height,
            rate,
            vbv,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(r: &[Rung]) -> Vec<(u32, u32, Option<u32>)> {
        r.iter()
            .map(|r| (r.width, r.height, r.vbv.map(|v| v.maxrate_kbps)))
            .collect()
    }

    #[test]
    fn apple_ladders_are_capped_at_the_master_and_keep_its_shape() {
        let hd = apple(Codec::H264, 1920, 1080, 16.0 / 9.0);
        assert_eq!(hd.len(), 9);
        assert_eq!(sizes(&hd)[0], (416, 234, Some(145)));
        assert_eq!(sizes(&hd)[8], (1920, 1080, Some(7800)));
        assert_eq!(hd[3].name, "432p-1100k");
        let small = apple(Codec::H264, 640, 360, 16.0 / 9.0);
        assert_eq!(
            sizes(&small),
            [(416, 234, Some(145)), (640, 360, Some(365))]
        );
        let hevc = apple(Codec::Hevc, 1280, 720, 16.0 / 9.0);
        assert_eq!(hevc.len(), 7);
        assert_eq!(sizes(&hevc)[0], (640, 360, Some(145)));
        // 2.39:1 scope: widths follow the aspect ratio, never past the master.
        let scope = apple(Codec::H264, 1920, 804, 1920.0 / 804.0);
        assert_eq!(sizes(&scope).last().unwrap().0, 1720);
        assert!(scope.iter().all(|r| r.width <= 1920 && r.height <= 804));
        // Anamorphic: 720x576 shown at 16:9.
        let pal = apple(Codec::H264, 720, 576, 16.0 / 9.0);
        assert_eq!(sizes(&pal)[4], (720, 540, Some(2000)));
        // Portrait phone video.
        let portrait = apple(Codec::H264, 1080, 1920, 9.0 / 16.0);
        assert_eq!(sizes(&portrait)[0], (234, 416, Some(145)));
        // Smaller than every rung: one rung at the master's size.
        let tiny = apple(Codec::Hevc, 320, 180, 16.0 / 9.0);
        assert_eq!(tiny.len(), 1);
        assert_eq!((tiny[0].width, tiny[0].height), (320, 180));
        // rav1e has no VBV.
        assert!(
            apple(Codec::Av1Rav1e, 1920, 1080, 16.0 / 9.0)
                .iter()
                .all(|r| r.vbv.is_none())
        );
        let names = |r: &[Rung]| r.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        let n = names(&apple(Codec::Av1Rav1e, 1920, 1080, 16.0 / 9.0));
        assert_eq!(n, ["360p", "432p", "540p", "720p", "1080p"]);
    }

    #[test]
    fn ladder_files_are_checked() {
        let ok = "[[rung]]\nname = \"low\"\nwidth = 640\nheight = 360\ncrf = 28\nmaxrate_kbps = 800\n\n[[rung]]\nname = \"high\"\nwidth = 1280\nheight = 720\nqp = 22\n";
        let r = from_toml(ok, Codec::H264).unwrap();
        assert_eq!(
            r[0].vbv,
            Some(Vbv {
                maxrate_kbps: 800,
                bufsize_kbit: 1600
            })
        );
        assert_eq!(r[1].rate, RateControl::Qp(22));
        for (bad, says) in [
            ("", "missing field `rung`"),
            (
                "[[rung]]\nname = \"a b\"\nwidth = 2\nheight = 2\n",
                "invalid name",
            ),
            (
                "[[rung]]\nname = \"a\"\nwidth = 2\nheight = 2\ncrf = 1\nqp = 1\n",
                "not both",
            ),
            (
                "[[rung]]\nname = \"a\"\nwidth = 2\nheight = 2\nspeed = 1\n",
                "unknown field",
            ),
            (
                "[[rung]]\nname = \"a\"\nwidth = 2\nheight = 2\n[[rung]]\nname = \"a\"\nwidth = 2\nheight = 2\n",
                "used twice",
            ),
            ("[[rung]]\nname = \"a\"\nwidth = -2\nheight = 2\n", "line 3"),
        ] {
            let e = from_toml(bad, Codec::H264).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
