//! Any bytes into the SRT and WebVTT parsers: they return cues or an error with a line inside
//! the input; they never panic, and what they return converts and segments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packager::subtitles::{parse_srt, parse_vtt, segment, to_vtt};

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
    for parsed in [parse_srt(data), parse_vtt(data)] {
        match parsed {
            Ok(s) => {
                let vtt = to_vtt(&s.cues);
                assert!(parse_vtt(vtt.as_bytes()).is_ok());
                let end = s.cues.iter().map(|c| c.end).max().unwrap_or(0);
                let _ = segment(&s.cues, &[0, end / 2, end + 1]).count();
            }
            Err(e) => assert!(e.line >= 1 && e.line <= lines, "{e}"),
        }
    }
});
