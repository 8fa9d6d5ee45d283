//! Subtitles: SRT and WebVTT in, WebVTT out (one whole file for DASH, one file per segment with
//! `X-TIMESTAMP-MAP` for HLS).
//!
//! Bad input fails with the line and the reason. Where the fix is unambiguous the input is
//! repaired and a warning says what was done, with the line: a UTF-8 or UTF-16 byte-order mark,
//! CR or CRLF line ends, `.` instead of `,` in SRT times (and the reverse in WebVTT), a missing
//! SRT cue number, and a cue that runs into the next one (its end is moved to the next start).
//! Not repaired: text that is not UTF-8 (which code page was meant cannot be known), a time
//! that does not parse, a cue that ends before it starts, and cues out of order.

use std::fmt::Write;

/// One cue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cue {
    /// Start, milliseconds.
    pub start: u64,
    /// End, milliseconds (after the start).
    pub end: u64,
    /// WebVTT cue settings (`line:90% align:center`), empty when none.
    pub settings: String,
    /// The text, lines joined with `\n` (never empty lines, never `-->`).
    pub text: String,
}

/// A parsed subtitle file.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Subtitles {
    /// The cues, by start time.
    pub cues: Vec<Cue>,
    /// What was repaired, each with its line.
    pub warnings: Vec<String>,
}

/// Why a subtitle file was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct SubtitleError {
    /// The line (1-based) where the problem is.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

fn fail<T>(line: usize, reason: impl Into<String>) -> Result<T, SubtitleError> {
    Err(SubtitleError {
        line,
        reason: reason.into(),
    })
}

/// The file's text: UTF-8 (with or without a byte-order mark) or UTF-16 with one.
fn decode(bytes: &[u8], warnings: &mut Vec<String>) -> Result<String, SubtitleError> {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        warnings.push("line 1: UTF-8 byte-order mark removed".into());
        return decode_utf8(rest);
    }
    let utf16 = |le: bool, rest: &[u8]| -> Result<String, SubtitleError> {
        if !rest.len().is_multiple_of(2) {
            return fail(1, "UTF-16 text with an odd number of bytes");
        }
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units).or_else(|_| fail(1, "invalid UTF-16 text"))
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        warnings.push("line 1: UTF-16 (little-endian) converted to UTF-8".into());
        return utf16(true, rest);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        warnings.push("line 1: UTF-16 (big-endian) converted to UTF-8".into());
        return utf16(false, rest);
    }
    decode_utf8(bytes)
}

fn decode_utf8(bytes: &[u8]) -> Result<String, SubtitleError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_owned()),
        Err(e) => {
            let at = e.valid_up_to();
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            fail(
                line,
                format!(
                    "not UTF-8 (byte 0x{:02X} at offset {at}); convert the file to UTF-8",
                    bytes[at]
                ),
            )
        }
    }
}

/// Lines with their numbers, line ends normalised.
fn lines(text: &str, warnings: &mut Vec<String>) -> Vec<(usize, String)> {
    if text.contains('\r') {
        warnings.push("line 1: CR line ends converted to LF".into());
    }
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    unified
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect()
}

/// Parses `HH:MM:SS,mmm` (SRT) or `[HH:]MM:SS.mmm` (WebVTT) into milliseconds. `srt` picks the
/// expected separator; the other one is accepted with a warning.
fn timestamp(
    s: &str,
    srt: bool,
    line: usize,
    warnings: &mut Vec<String>,
) -> Result<u64, SubtitleError> {
    let bad = |why: &str| fail(line, format!("bad timestamp {s:?}: {why}"));
    let (clock, millis, sep) = match s.rfind([',', '.']) {
        Some(i) => (&s[..i], &s[i + 1..], s.as_bytes()[i]),
        None => return bad("no milliseconds"),
    };
    let expected = if srt { b',' } else { b'.' };
    if sep != expected {
        warnings.push(format!(
            "line {line}: timestamp {s:?} uses {:?} before the milliseconds; read as {:?}",
            sep as char, expected as char
        ));
    }
    if millis.len() != 3 || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return bad("milliseconds must be three digits");
    }
    let parts: Vec<&str> = clock.split(':').collect();
    let (h, m, sec) = match parts.as_slice() {
        [h, m, s] => (*h, *m, *s),
        [m, s] if !srt => ("0", *m, *s),
        _ => {
            return bad(if srt {
                "expected HH:MM:SS,mmm"
            } else {
                "expected [HH:]MM:SS.mmm"
            });
        }
    };
    let num = |x: &str, max: u64, what: &str| -> Result<u64, SubtitleError> {
        if x.is_empty() || x.len() > 9 || !x.bytes().all(|b| b.is_ascii_digit()) {
            return bad(&format!("{what} {x:?} is not a number"));
        }
        let v: u64 = x.parse().unwrap_or(u64::MAX);
        if v > max {
            return bad(&format!("{what} {v} is above {max}"));
        }
        Ok(v)
    };
    let h = num(h, 999_999, "hours")?;
    let m = num(m, 59, "minutes")?;
    let sec = num(sec, 59, "seconds")?;
    let ms = num(millis, 999, "milliseconds")?;
    Ok(((h * 60 + m) * 60 + sec) * 1000 + ms)
}

/// A timing line: `start --> end [settings]`.
fn timing(
    l: &str,
    srt: bool,
    line: usize,
    warnings: &mut Vec<String>,
) -> Result<(u64, u64, String), SubtitleError> {
    let Some((a, b)) = l.split_once("-->") else {
        return fail(
            line,
            format!("expected a timing line `start --> end`, found {l:?}"),
        );
    };
    let mut rest = b.split_whitespace();
    let end_text = rest.next().unwrap_or("");
    let settings: Vec<&str> = rest.collect();
    let start = timestamp(a.trim(), srt, line, warnings)?;
    let end = timestamp(end_text, srt, line, warnings)?;
    if end <= start {
        return fail(
            line,
            format!("the cue ends ({end_text}) before it starts ({})", a.trim()),
        );
    }
    Ok((
        start,
        end,
        if srt {
            String::new()
        } else {
            settings.join(" ")
        },
    ))
}

/// Parses WebVTT when the text starts with `WEBVTT` (after a UTF-8 byte-order mark), SRT
/// otherwise.
pub fn parse(bytes: &[u8]) -> Result<Subtitles, SubtitleError> {
    let vtt = bytes
        .strip_prefix(&[0xEF, 0xBB, 0xBF])
        .unwrap_or(bytes)
        .starts_with(b"WEBVTT");
    if vtt {
        parse_vtt(bytes)
    } else {
        parse_srt(bytes)
    }
}

/// Parses SRT.
pub fn parse_srt(bytes: &[u8]) -> Result<Subtitles, SubtitleError> {
    let mut warnings = Vec::new();
    let text = decode(bytes, &mut warnings)?;
    let lines = lines(&text, &mut warnings);
    let mut cues = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].1.trim().is_empty() {
            i += 1;
            continue;
        }
        let (n, first) = &lines[i];
        let timing_at = if first.contains("-->") {
            warnings.push(format!("line {n}: cue without a number"));
            i
        } else {
            if !first.trim().bytes().all(|b| b.is_ascii_digit()) {
                return fail(*n, format!("expected a cue number, found {first:?}"));
            }
            i + 1
        };
        let Some((tn, tl)) = lines.get(timing_at) else {
            return fail(*n, "a cue number with no timing line after it");
        };
        let (start, end, _) = timing(tl, true, *tn, &mut warnings)?;
        let mut j = timing_at + 1;
        let mut body = Vec::new();
        while j < lines.len() && !lines[j].1.trim().is_empty() {
            body.push(lines[j].1.clone());
            j += 1;
        }
        cues.push((*tn, cue(start, end, String::new(), &body)));
        i = j;
    }
    order(cues, warnings)
}

/// Parses WebVTT.
pub fn parse_vtt(bytes: &[u8]) -> Result<Subtitles, SubtitleError> {
    let mut warnings = Vec::new();
    let text = decode(bytes, &mut warnings)?;
    let lines = lines(&text, &mut warnings);
    let header = lines.first().map(|(_, l)| l.as_str()).unwrap_or("");
    if !(header == "WEBVTT" || header.starts_with("WEBVTT ") || header.starts_with("WEBVTT\t")) {
        return fail(1, "a WebVTT file starts with `WEBVTT`");
    }
    // The header block ends at the first blank line.
    let mut i = lines
        .iter()
        .position(|(_, l)| l.trim().is_empty())
        .unwrap_or(lines.len());
    let mut cues = Vec::new();
    while i < lines.len() {
        if lines[i].1.trim().is_empty() {
            i += 1;
            continue;
        }
        let (n, first) = &lines[i];
        let block_end = (i..lines.len())
            .find(|&k| lines[k].1.trim().is_empty())
            .unwrap_or(lines.len());
        let word = first.split_whitespace().next().unwrap_or("");
        if matches!(word, "NOTE" | "STYLE" | "REGION") && !first.contains("-->") {
            i = block_end;
            continue;
        }
        let timing_at = if first.contains("-->") { i } else { i + 1 };
        let Some((tn, tl)) = lines.get(timing_at).filter(|_| timing_at < block_end) else {
            return fail(
                *n,
                format!("a cue identifier {first:?} with no timing line after it"),
            );
        };
        let (start, end, settings) = timing(tl, false, *tn, &mut warnings)?;
        let body: Vec<String> = lines[timing_at + 1..block_end]
            .iter()
            .map(|(_, l)| l.clone())
            .collect();
        cues.push((*tn, cue(start, end, settings, &body)));
        i = block_end;
    }
    order(cues, warnings)
}

fn cue(start: u64, end: u64, settings: String, body: &[String]) -> Cue {
    Cue {
        start,
        end,
        settings,
        // `-->` cannot appear in WebVTT cue text.
        text: body.join("\n").replace("-->", "→"),
    }
}

/// Checks the order and trims cues that run into the next.
fn order(cues: Vec<(usize, Cue)>, mut warnings: Vec<String>) -> Result<Subtitles, SubtitleError> {
    let mut out: Vec<Cue> = Vec::with_capacity(cues.len());
    for (line, c) in cues {
        if let Some(prev) = out.last_mut() {
            if c.start < prev.start {
                return fail(
                    line,
                    format!(
                        "cues out of order: this one starts at {} before the previous one's start {}",
                        vtt_time(c.start),
                        vtt_time(prev.start)
                    ),
                );
            }
            if c.start < prev.end {
                if c.start > prev.start {
                    warnings.push(format!(
                        "line {line}: the previous cue ran until {}, past this cue's start; it now ends at {}",
                        vtt_time(prev.end),
                        vtt_time(c.start)
                    ));
                    prev.end = c.start;
                } else {
                    // Two cues from the same instant are meant to show together.
                }
            }
        }
        out.push(c);
    }
    Ok(Subtitles {
        cues: out,
        warnings,
    })
}

/// `HH:MM:SS.mmm`.
pub fn vtt_time(ms: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn write_cue(out: &mut String, c: &Cue) {
    let _ = write!(out, "{} --> {}", vtt_time(c.start), vtt_time(c.end));
    if !c.settings.is_empty() {
        let _ = write!(out, " {}", c.settings);
    }
    let _ = writeln!(out, "\n{}\n", c.text);
}

/// The whole file as WebVTT.
pub fn to_vtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for c in cues {
        write_cue(&mut out, c);
    }
    out
}

/// One WebVTT file per segment `[bounds[k], bounds[k+1])` (milliseconds): each holds the cues
/// shown during it, at their title times, with an `X-TIMESTAMP-MAP` that ties WebVTT time 0 to
/// media time 0 (the fMP4 tracks start there).
pub fn segment<'a>(cues: &'a [Cue], bounds: &'a [u64]) -> impl Iterator<Item = String> + 'a {
    // One segment at a time: a cue that spans the title is written into each segment as it
    // goes, never held once per segment in memory.
    bounds.windows(2).map(move |w| {
        let mut out = String::from("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n");
        for c in cues.iter().filter(|c| c.start < w[1] && c.end > w[0]) {
            write_cue(&mut out, c);
        }
        out
    })
}

/// The largest subtitle file rungs reads: far above any real one (a feature's SRT is a few
/// hundred kilobytes), and small enough to hold in memory.
pub const MAX_SUBTITLE_BYTES: u64 = 16 << 20;

/// Reads a subtitle file, refusing one larger than [`MAX_SUBTITLE_BYTES`] without reading past
/// the limit (a FIFO or a device that never ends is refused too).
pub fn read(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_SUBTITLE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SUBTITLE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than the limit of {} MiB for a subtitle file",
            MAX_SUBTITLE_BYTES >> 20
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srt_becomes_webvtt() {
        let srt = b"1\r\n00:00:01,000 --> 00:00:02,500\r\nHello\r\n<i>world</i>\r\n\r\n2\r\n00:00:03,000 --> 00:00:04,000\r\nA --> B\r\n";
        let s = parse_srt(srt).unwrap();
        assert_eq!(s.cues.len(), 2);
        assert_eq!(s.warnings, ["line 1: CR line ends converted to LF"]);
        assert_eq!(
            to_vtt(&s.cues),
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHello\n<i>world</i>\n\n00:00:03.000 --> 00:00:04.000\nA → B\n\n"
        );
        let segs: Vec<String> = segment(&s.cues, &[0, 2000, 4000, 6000]).collect();
        assert_eq!(segs.len(), 3);
        assert!(
            segs[0].contains("Hello") && segs[1].contains("Hello") && segs[1].contains("A → B")
        );
        assert_eq!(
            segs[2],
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n"
        );
    }

    #[test]
    fn a_cue_over_the_whole_title_is_written_segment_by_segment() {
        let long = Cue {
            start: 0,
            end: u64::MAX,
            settings: String::new(),
            text: "x".repeat(1 << 20),
        };
        let bounds: Vec<u64> = (0..=4000).map(|i| i * 2000).collect();
        let cues = [long];
        // Each segment is made when it is asked for: holding 4000 of them at once would take
        // 4 GB; one at a time takes one.
        let mut segments = segment(&cues, &bounds);
        let first = segments.next().unwrap();
        assert!(first.len() > 1 << 20);
        assert_eq!(segments.size_hint().0, 3999);
    }

    #[test]
    fn webvtt_keeps_settings_and_skips_notes() {
        let vtt = "WEBVTT - a title\n\nNOTE a comment\nmore\n\nSTYLE\n::cue { color: red }\n\nintro\n01:02.003 --> 01:04.000 line:90% align:center\nHi\n\n00:01:05.000 --> 00:01:06.000\nThere\n";
        let s = parse_vtt(vtt.as_bytes()).unwrap();
        assert!(s.warnings.is_empty());
        assert_eq!(
            s.cues[0],
            Cue {
                start: 62_003,
                end: 64_000,
                settings: "line:90% align:center".into(),
                text: "Hi".into()
            }
        );
        assert_eq!(s.cues[1].start, 65_000);
    }

    #[test]
    fn bad_input_names_the_line() {
        let cases: [(&[u8], bool, usize, &str); 9] = [
            (b"1\n00:00:01,000 --> 00:00:00,500\nx\n", true, 2, "ends"),
            (
                b"1\n00:00:61,000 --> 00:01:02,000\nx\n",
                true,
                2,
                "seconds 61",
            ),
            (
                b"1\n00:00:01 --> 00:00:02,000\nx\n",
                true,
                2,
                "milliseconds",
            ),
            (b"1\nhello\n", true, 2, "timing line"),
            (b"x\n00:00:01,000 --> 00:00:02,000\n", true, 1, "cue number"),
            (
                b"1\n00:00:05,000 --> 00:00:06,000\na\n\n2\n00:00:01,000 --> 00:00:02,000\nb\n",
                true,
                6,
                "out of order",
            ),
            (
                b"1\n00:00:01,000 --> 00:00:02,000\ncaf\xe9\n",
                true,
                3,
                "not UTF-8",
            ),
            (b"WEBVT\n", false, 1, "WEBVTT"),
            (b"WEBVTT\n\nid\n\nx\n", false, 3, "identifier"),
        ];
        for (input, srt, line, says) in cases {
            let e = if srt {
                parse_srt(input)
            } else {
                parse_vtt(input)
            }
            .unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.reason.contains(says), "{e}");
        }
    }

    #[test]
    fn unambiguous_faults_are_repaired_with_a_warning() {
        let srt =
            "\u{feff}00:00:01.000 --> 00:00:03,000\na\n\n2\n00:00:02,000 --> 00:00:04,000\nb\n";
        let s = parse_srt(srt.as_bytes()).unwrap();
        assert_eq!(s.cues[0].end, 2000, "the overlap was trimmed");
        assert_eq!(s.warnings.len(), 4, "{:?}", s.warnings);
        assert!(
            s.warnings
                .iter()
                .any(|w| w.starts_with("line 5: the previous cue"))
        );
        assert!(s.warnings.iter().any(|w| w.contains("without a number")));
        // UTF-16 with a byte-order mark.
        let mut utf16 = vec![0xFF, 0xFE];
        for u in "WEBVTT\n\n00:01.000 --> 00:02.000\né\n".encode_utf16() {
            utf16.extend(u.to_le_bytes());
        }
        let s = parse_vtt(&utf16).unwrap();
        assert_eq!(s.cues[0].text, "é");
    }

    proptest::proptest! {
        /// The fuzz target's property (fuzz/fuzz_targets/subtitles.rs) on stable: any bytes,
        /// and valid files with bytes changed, give cues that convert and parse again, or an
        /// error on a line of the input; never a panic.
        #[test]
        fn subtitle_parsers_survive_any_bytes(
            noise in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            edits in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..8),
        ) {
            let valid = b"WEBVTT\n\n00:01.000 --> 00:02.000 align:start\nHi\n\n1\n00:00:03,000 --> 00:00:04,000\nthere\n".to_vec();
            let mut edited = valid.clone();
            for (at, b) in &edits {
                let i = at % edited.len();
                edited[i] = *b;
            }
            for data in [noise, edited] {
                let lines = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
                for parsed in [parse_srt(&data), parse_vtt(&data)] {
                    match parsed {
                        Ok(s) => {
                            let vtt = to_vtt(&s.cues);
                            proptest::prop_assert!(parse_vtt(vtt.as_bytes()).is_ok(), "{vtt}");
                            let end = s.cues.iter().map(|c| c.end).max().unwrap_or(0);
                            let _ = segment(&s.cues, &[0, end / 2, end + 1]).count();
                        }
                        Err(e) => proptest::prop_assert!(e.line >= 1 && e.line <= lines, "{e}"),
                    }
                }
            }
        }
    }
}
