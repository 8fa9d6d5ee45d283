//! HLS playlists (RFC 8216bis, version 7): the master playlist, media playlists with
//! `EXT-X-MAP`, I-frame playlists with byte ranges, and WebVTT subtitle playlists. Pure text
//! from a [`Presentation`].

use std::fmt::Write;

use crate::cenc::{self, Scheme};
use crate::drm;
use crate::presentation::{
    Presentation, Protection, Role, Text, Timeline, Video, decimal_seconds, segment_name,
};

/// The protocol version written: fMP4 with `EXT-X-MAP` in I-frame playlists needs 6; 7 allows
/// the full set of attributes used here.
pub const VERSION: u32 = 7;

/// The group IDs of the renditions.
const AUDIO_GROUP: &str = "audio";
const TEXT_GROUP: &str = "subs";

/// Name of the master playlist in the title's root.
pub const MASTER: &str = "master.m3u8";
/// Name of each track's media playlist in its folder.
pub const MEDIA: &str = "index.m3u8";
/// Name of each video rendition's I-frame playlist in its folder.
pub const IFRAMES: &str = "iframes.m3u8";

/// Quotes an attribute value (HLS quoted strings cannot hold `"` or line breaks).
fn quoted(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c == '"' || c == '\n' || c == '\r' {
                '\''
            } else {
                c
            }
        })
        .collect();
    format!("\"{clean}\"")
}

fn yes(b: bool) -> &'static str {
    if b { "YES" } else { "NO" }
}

/// The master playlist.
pub fn master(p: &Presentation) -> String {
    let mut out = format!("#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    // Every key of the title once, so a player can fetch licences before it picks a variant.
    let mut session: Vec<String> = Vec::new();
    let protections = p
        .video
        .iter()
        .filter_map(|v| v.protection.as_ref())
        .chain(p.audio.iter().filter_map(|a| a.protection.as_ref()));
    for pr in protections {
        for k in keys(pr) {
            if !session.contains(&k) {
                session.push(k);
            }
        }
    }
    for k in &session {
        let _ = writeln!(out, "#EXT-X-SESSION-KEY:{k}");
    }
    media_renditions(&mut out, p);
    variants(&mut out, p);
    if !p.video.is_empty() {
        out.push('\n');
    }
    for v in &p.video {
        let _ = writeln!(
            out,
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={},CODECS={},RESOLUTION={}x{},URI={}",
            // The I-frame playlist's peak: keyframe bytes over the span each one stands for.
            v.timeline.peak_bps_of(|s| s.key_bytes),
            quoted(&v.codecs),
            v.width,
            v.height,
            quoted(&format!("video/{}/{IFRAMES}", v.id)),
        );
    }
    out
}

/// The `EXT-X-MEDIA` lines: the audio tracks, then the subtitle tracks.
fn media_renditions(out: &mut String, p: &Presentation) {
    if !p.audio.is_empty() {
        out.push('\n');
    }
    for a in &p.audio {
        let characteristics = match a.role {
            Role::Description => ",CHARACTERISTICS=\"public.accessibility.describes-video\"",
            _ => "",
        };
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID={},LANGUAGE={},NAME={},DEFAULT={},AUTOSELECT=YES{characteristics},CHANNELS={},URI={}",
            quoted(AUDIO_GROUP),
            quoted(&a.language),
            quoted(&a.name),
            yes(a.default),
            quoted(&a.channels.to_string()),
            quoted(&format!("audio/{}/{MEDIA}", a.id)),
        );
    }
    if !p.text.is_empty() {
        out.push('\n');
    }
    for t in &p.text {
        let characteristics = match t.role {
            Role::Sdh => {
                ",CHARACTERISTICS=\"public.accessibility.transcribes-spoken-dialog,\
                 public.accessibility.describes-music-and-sound\""
            }
            _ => "",
        };
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID={},LANGUAGE={},NAME={},DEFAULT={},AUTOSELECT=YES,FORCED={}{characteristics},URI={}",
            quoted(TEXT_GROUP),
            quoted(&t.language),
            quoted(&t.name),
            yes(t.default),
            yes(t.role == Role::Forced),
            quoted(&format!("text/{}/{MEDIA}", t.id)),
        );
    }
}

/// One `EXT-X-STREAM-INF` per video rendition. A variant's bandwidth covers its video and the
/// most demanding audio it may play with.
fn variants(out: &mut String, p: &Presentation) {
    let audio_peak = p
        .audio
        .iter()
        .map(|a| a.timeline.peak_bps())
        .max()
        .unwrap_or(0);
    let audio_average = p
        .audio
        .iter()
        .map(|a| a.timeline.average_bps())
        .max()
        .unwrap_or(0);
    let audio_codecs: Vec<&str> = {
        let mut c: Vec<&str> = p.audio.iter().map(|a| a.codecs.as_str()).collect();
        c.dedup();
        c
    };
    for v in &p.video {
        let mut codecs = vec![v.codecs.as_str()];
        codecs.extend(&audio_codecs);
        out.push('\n');
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS={},RESOLUTION={}x{},FRAME-RATE={:.3}",
            v.timeline.peak_bps() + audio_peak,
            v.timeline.average_bps() + audio_average,
            quoted(&codecs.join(",")),
            v.width,
            v.height,
            v.frame_rate.fps(),
        );
        if !p.audio.is_empty() {
            let _ = write!(out, ",AUDIO={}", quoted(AUDIO_GROUP));
        }
        if !p.text.is_empty() {
            let _ = write!(out, ",SUBTITLES={}", quoted(TEXT_GROUP));
        }
        let _ = writeln!(out, ",CLOSED-CAPTIONS=NONE\nvideo/{}/{MEDIA}", v.id);
    }
}

/// `EXT-X-TARGETDURATION`: the longest segment rounded to the nearest second (every `EXTINF`
/// rounded must be at most it), and at least 1.
fn target_duration(t: &Timeline) -> u64 {
    let ts = u64::from(t.timescale.max(1));
    t.segments
        .iter()
        .map(|s| (2 * s.duration + ts) / (2 * ts))
        .max()
        .unwrap_or(1)
        .max(1)
}

/// A VOD media playlist: the header, `extra` tags, one entry per segment (its `EXTINF`, then
/// `per_segment`'s tags, then the file `NNNNN.extension`), and the end tag.
fn playlist(
    t: &Timeline,
    extra: &str,
    extension: &str,
    protection: Option<&Protection>,
    per_segment: impl Fn(&crate::presentation::Segment) -> String,
) -> String {
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-TARGETDURATION:{}\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n{extra}",
        target_duration(t)
    );
    for (i, s) in t.segments.iter().enumerate() {
        // The keys apply from the first encrypted segment on; a clear lead comes before.
        if let Some(p) = protection
            && i == p.clear_segments
        {
            for k in keys(p) {
                let _ = writeln!(out, "#EXT-X-KEY:{k}");
            }
        }
        let _ = writeln!(
            out,
            "#EXTINF:{},\n{}{}",
            decimal_seconds(s.duration, t.timescale),
            per_segment(s),
            segment_name(i + 1, extension)
        );
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// The media playlist of a CMAF track (video or audio): its init segment and its segments,
/// with its keys when it is encrypted.
pub fn media(t: &Timeline, protection: Option<&Protection>) -> String {
    playlist(
        t,
        "#EXT-X-MAP:URI=\"init.mp4\"\n",
        "m4s",
        protection,
        |_| String::new(),
    )
}

/// The I-frame playlist of a video rendition: each segment's first keyframe, as the byte range
/// from the segment's start through the keyframe's data, lasting until the next one.
pub fn iframes(v: &Video) -> String {
    playlist(
        &v.timeline,
        "#EXT-X-I-FRAMES-ONLY\n#EXT-X-MAP:URI=\"init.mp4\"\n",
        "m4s",
        v.protection.as_ref(),
        |s| format!("#EXT-X-BYTERANGE:{}@0\n", s.key_bytes),
    )
}

/// The media playlist of a subtitle track: one WebVTT file per segment.
pub fn subtitles(t: &Text) -> String {
    playlist(&t.timeline, "", "vtt", None, |_| String::new())
}

/// The attribute lists of a track's `EXT-X-KEY` (and `EXT-X-SESSION-KEY`) tags, one per key
/// system: FairPlay (`skd://` and the key ID, `cbcs` only), Widevine and PlayReady (their
/// `pssh` data as a data URI), and W3C ClearKey (the key ID as a data URI).
pub fn keys(p: &Protection) -> Vec<String> {
    let method = match p.scheme {
        Scheme::Cbcs => "SAMPLE-AES",
        Scheme::Cenc => "SAMPLE-AES-CTR",
    };
    let kid = cenc::hex(&p.kid);
    let mut out = Vec::new();
    if p.scheme == Scheme::Cbcs {
        out.push(format!(
            "METHOD={method},URI=\"skd://{kid}\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\""
        ));
    }
    for pssh in &p.pssh {
        let Some(system) = pssh.get(12..28).and_then(|s| <[u8; 16]>::try_from(s).ok()) else {
            continue;
        };
        let (uri, format) = match system {
            drm::WIDEVINE_SYSTEM => (
                format!("data:text/plain;base64,{}", drm::base64(pssh)),
                drm::system_urn(&system),
            ),
            drm::PLAYREADY_SYSTEM => (
                format!(
                    "data:text/plain;charset=UTF-16;base64,{}",
                    drm::base64(pssh.get(32..).unwrap_or_default())
                ),
                "com.microsoft.playready".to_owned(),
            ),
            // hls.js reads the key ID from ClearKey's data URI.
            drm::COMMON_SYSTEM => (
                format!("data:text/plain;base64,{}", drm::base64(&p.kid)),
                "org.w3.clearkey".to_owned(),
            ),
            _ => continue,
        };
        out.push(format!(
            "METHOD={method},URI={},KEYID=0x{},KEYFORMAT={},KEYFORMATVERSIONS=\"1\"",
            quoted(&uri),
            kid.to_uppercase(),
            quoted(&format)
        ));
    }
    out
}
