//! What the manifests describe: the packaged tracks, their segment timelines and where their
//! files are. Both [`crate::hls`] and [`crate::dash`] write from this and nothing else, so the
//! two always agree.
//!
//! Paths are relative to the title's root folder: `video/ID/init.mp4`, `video/ID/00001.m4s`,
//! `audio/ID/…`, `text/ID/00001.vtt` (segmented, for HLS) and `text/ID/all.vtt` (whole, for
//! DASH), `thumbs/00001.jpg`.

/// A rational frame rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRate {
    /// Numerator.
    pub num: u32,
    /// Denominator.
    pub den: u32,
}

impl FrameRate {
    /// Frames per second.
    pub fn fps(self) -> f64 {
        f64::from(self.num) / f64::from(self.den.max(1))
    }
}

/// One segment's place on its track's timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Start, in the timeline's timescale.
    pub start: u64,
    /// Duration, in the timeline's timescale.
    pub duration: u64,
    /// Size of the segment file.
    pub bytes: u64,
    /// Bytes from the file's start to the end of its first keyframe (I-frame playlists).
    pub key_bytes: u64,
}

/// Segments of a track, numbered from 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    /// Ticks per second.
    pub timescale: u32,
    /// The segments, contiguous.
    pub segments: Vec<Segment>,
}

impl Timeline {
    /// Total duration in ticks.
    pub fn duration(&self) -> u64 {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// Seconds of `ticks`.
    pub fn seconds(&self, ticks: u64) -> f64 {
        ticks as f64 / f64::from(self.timescale.max(1))
    }

    /// The highest bit rate of any segment, bits per second.
    pub fn peak_bps(&self) -> u64 {
        self.peak_bps_of(|s| s.bytes)
    }

    /// The highest rate of `bytes(segment)` over each segment's duration, bits per second.
    pub fn peak_bps_of(&self, bytes: impl Fn(&Segment) -> u64) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.duration > 0)
            .map(|s| (bytes(s) as f64 * 8.0 / self.seconds(s.duration)).ceil() as u64)
            .max()
            .unwrap_or(0)
    }

    /// The average bit rate over the whole track, bits per second.
    pub fn average_bps(&self) -> u64 {
        let secs = self.seconds(self.duration());
        if secs <= 0.0 {
            return 0;
        }
        let bytes: u64 = self.segments.iter().map(|s| s.bytes).sum();
        (bytes as f64 * 8.0 / secs).ceil() as u64
    }
}

/// One video rendition (a rung).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Video {
    /// Identifier and folder name (`720p`).
    pub id: String,
    /// RFC 6381 codecs string.
    pub codecs: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Sample aspect ratio.
    pub sar: (u32, u32),
    /// Frame rate.
    pub frame_rate: FrameRate,
    /// The segments.
    pub timeline: Timeline,
    /// How it is encrypted, when it is.
    pub protection: Option<Protection>,
}

/// How a track is encrypted: what players and license servers need to know (never the key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protection {
    /// The common encryption scheme.
    pub scheme: crate::cenc::Scheme,
    /// The key ID.
    pub kid: [u8; 16],
    /// The `pssh` boxes of the init segment (whole boxes), W3C common first.
    pub pssh: Vec<Vec<u8>>,
    /// Leading segments left clear.
    pub clear_segments: usize,
}

/// What a track is for, beyond its language: the main track of the language, or an
/// accessibility or narrative one that players must tell apart.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The language's main track.
    #[default]
    Main,
    /// Subtitles of the foreign or on-screen text only (forced narrative), shown without the
    /// viewer asking.
    Forced,
    /// Subtitles for the deaf and hard of hearing: the dialogue and the sounds.
    Sdh,
    /// Audio description of the picture for blind and partially sighted viewers.
    Description,
}

impl Role {
    /// The role's name on the command line (`forced`, `sdh`, `description`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Main => "main",
            Role::Forced => "forced",
            Role::Sdh => "sdh",
            Role::Description => "description",
        }
    }

    /// The role a `FILE:LANG:ROLE` argument names.
    pub fn from_name(name: &str) -> Option<Self> {
        [Role::Main, Role::Forced, Role::Sdh, Role::Description]
            .into_iter()
            .find(|r| r.name() == name)
    }

    /// What a track's display name adds for the role (`English (SDH)`).
    pub fn label(self) -> &'static str {
        match self {
            Role::Main => "",
            Role::Forced => " (forced)",
            Role::Sdh => " (SDH)",
            Role::Description => " (audio description)",
        }
    }

    /// True for roles of subtitle tracks.
    pub fn is_for_text(self) -> bool {
        matches!(self, Role::Main | Role::Forced | Role::Sdh)
    }

    /// True for roles of audio tracks.
    pub fn is_for_audio(self) -> bool {
        matches!(self, Role::Main | Role::Description)
    }
}

/// One audio track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audio {
    /// Identifier and folder name (`en`, `en-2`).
    pub id: String,
    /// ISO 639 language (BCP 47 form, `en`, `fr`, `und`).
    pub language: String,
    /// Display name (`English`).
    pub name: String,
    /// RFC 6381 codecs string.
    pub codecs: String,
    /// Channel count.
    pub channels: u32,
    /// Samples per second.
    pub sample_rate: u32,
    /// The player's first choice.
    pub default: bool,
    /// The segments.
    pub timeline: Timeline,
    /// How it is encrypted, when it is.
    pub protection: Option<Protection>,
    /// What it is for.
    pub role: Role,
}

/// One subtitle track (WebVTT).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    /// Identifier and folder name.
    pub id: String,
    /// Language.
    pub language: String,
    /// Display name.
    pub name: String,
    /// Shown without the viewer asking.
    pub default: bool,
    /// Duration of each segment file (in the video's timeline, same boundaries), and the
    /// timescale.
    pub timeline: Timeline,
    /// Bytes of the whole file (DASH).
    pub bytes: u64,
    /// What it is for.
    pub role: Role,
}

/// Trick-play thumbnails: sprite sheets of `columns` × `rows` tiles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thumbnails {
    /// Seconds between thumbnails.
    pub interval: u32,
    /// Tiles across a sheet.
    pub columns: u32,
    /// Tiles down a sheet.
    pub rows: u32,
    /// Size of one tile.
    pub tile: (u32, u32),
    /// Sheets (the last may be partly filled).
    pub sheets: u32,
    /// The largest sheet, bytes.
    pub max_sheet_bytes: u64,
}

/// Everything the manifests list.
#[derive(Clone, Debug, PartialEq)]
pub struct Presentation {
    /// Length of the title in seconds (the video's).
    pub duration: f64,
    /// Video renditions, lowest first.
    pub video: Vec<Video>,
    /// Audio tracks.
    pub audio: Vec<Audio>,
    /// Subtitle tracks.
    pub text: Vec<Text>,
    /// Thumbnails, when made.
    pub thumbnails: Option<Thumbnails>,
}

/// The path of segment `number` (from 1) of a track folder with `extension`.
pub fn segment_name(number: usize, extension: &str) -> String {
    format!("{number:05}.{extension}")
}

/// `ticks / timescale` seconds in decimal: exact when it has at most six decimals, else
/// rounded to the microsecond; trailing zeros dropped, at least three decimals kept.
pub fn decimal_seconds(ticks: u64, timescale: u32) -> String {
    let ts = u128::from(timescale.max(1));
    let micros = (u128::from(ticks) * 1_000_000 + ts / 2) / ts;
    let mut s = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    while s.ends_with('0') && s.len() - s.find('.').unwrap_or(0) > 4 {
        s.pop();
    }
    s
}

/// A display name for an ISO 639-1 or 639-2 code (the common ones), or the code itself.
pub fn language_name(code: &str) -> String {
    let primary = code
        .split(['-', '_'])
        .next()
        .unwrap_or(code)
        .to_ascii_lowercase();
    let name = match primary.as_str() {
        "en" | "eng" => "English",
        "fr" | "fra" | "fre" => "Français",
        "de" | "deu" | "ger" => "Deutsch",
        "es" | "spa" => "Español",
        "it" | "ita" => "Italiano",
        "pt" | "por" => "Português",
        "nl" | "nld" | "dut" => "Nederlands",
        "sv" | "swe" => "Svenska",
        "no" | "nor" | "nb" | "nob" => "Norsk",
        "da" | "dan" => "Dansk",
        "fi" | "fin" => "Suomi",
        "pl" | "pol" => "Polski",
        "ru" | "rus" => "Русский",
        "uk" | "ukr" => "Українська",
        "tr" | "tur" => "Türkçe",
        "el" | "ell" | "gre" => "Ελληνικά",
        "ar" | "ara" => "العربية",
        "he" | "heb" => "עברית",
        "hi" | "hin" => "हिन्दी",
        "ja" | "jpn" => "日本語",
        "ko" | "kor" => "한국어",
        "zh" | "zho" | "chi" => "中文",
        "und" => "Unknown",
        _ => return code.to_owned(),
    };
    name.to_owned()
}

/// The two-letter (ISO 639-1) form of a language code where one exists, as HLS and DASH
/// players expect (BCP 47); other codes are kept, lower-cased.
pub fn bcp47(code: &str) -> String {
    let lower = code.to_ascii_lowercase();
    let two = match lower.as_str() {
        "eng" => "en",
        "fra" | "fre" => "fr",
        "deu" | "ger" => "de",
        "spa" => "es",
        "ita" => "it",
        "por" => "pt",
        "nld" | "dut" => "nl",
        "swe" => "sv",
        "nor" => "no",
        "nob" => "nb",
        "dan" => "da",
        "fin" => "fi",
        "pol" => "pl",
        "rus" => "ru",
        "ukr" => "uk",
        "tur" => "tr",
        "ell" | "gre" => "el",
        "ara" => "ar",
        "heb" => "he",
        "hin" => "hi",
        "jpn" => "ja",
        "kor" => "ko",
        "zho" | "chi" => "zh",
        other => other,
    };
    two.to_owned()
}

/// The three-letter (ISO 639-2/T) form of a language code, as MP4 stores it; `und` when the
/// code is neither a known two-letter code nor three ASCII letters.
pub fn iso639_2(code: &str) -> String {
    let lower = code.to_ascii_lowercase();
    let three = match lower.as_str() {
        "en" => "eng",
        "fr" => "fra",
        "de" => "deu",
        "es" => "spa",
        "it" => "ita",
        "pt" => "por",
        "nl" => "nld",
        "sv" => "swe",
        "no" => "nor",
        "nb" => "nob",
        "da" => "dan",
        "fi" => "fin",
        "pl" => "pol",
        "ru" => "rus",
        "uk" => "ukr",
        "tr" => "tur",
        "el" => "ell",
        "ar" => "ara",
        "he" => "heb",
        "hi" => "hin",
        "ja" => "jpn",
        "ko" => "kor",
        "zh" => "zho",
        other if other.len() == 3 && other.bytes().all(|b| b.is_ascii_lowercase()) => other,
        _ => "und",
    };
    three.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact_where_they_can_be() {
        assert_eq!(decimal_seconds(120 * 1001, 30000), "4.004");
        assert_eq!(decimal_seconds(51200, 12800), "4.000");
        assert_eq!(decimal_seconds(1001, 30000), "0.033367");
        assert_eq!(decimal_seconds(0, 90000), "0.000");
        assert_eq!(decimal_seconds(1, 48000), "0.000021");
        assert_eq!(decimal_seconds(3, 8), "0.375");
    }

    #[test]
    fn rates_come_from_the_segments() {
        let t = Timeline {
            timescale: 1000,
            segments: vec![
                Segment {
                    start: 0,
                    duration: 4000,
                    bytes: 50_000,
                    key_bytes: 9000,
                },
                Segment {
                    start: 4000,
                    duration: 2000,
                    bytes: 40_000,
                    key_bytes: 9000,
                },
            ],
        };
        assert_eq!(t.peak_bps(), 160_000);
        assert_eq!(t.average_bps(), 120_000);
        assert_eq!(bcp47("ENG"), "en");
        assert_eq!(bcp47("tlh"), "tlh");
        assert_eq!(iso639_2("fr"), "fra");
        assert_eq!(iso639_2("tlh"), "tlh");
        assert_eq!(iso639_2("x-1"), "und");
        assert_eq!(language_name("fra"), "Français");
        assert_eq!(language_name("x-klingon"), "x-klingon");
    }
}
