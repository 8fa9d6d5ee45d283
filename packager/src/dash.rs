//! The DASH MPD: static, ISO live and CMAF profiles, `SegmentTemplate` with `SegmentTimeline`,
//! one adaptation set per video codec, per audio language and per text language, and the
//! DASH-IF thumbnail tiles. Pure text from a [`Presentation`].

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::drm;
use crate::presentation::{
    Audio, Presentation, Protection, Role, Text, Thumbnails, Timeline, Video,
};

/// Name of the MPD in the title's root.
pub const MPD: &str = "manifest.mpd";

/// The profiles declared: ISO BMFF live (segment templates) and CMAF.
const PROFILES: &str = "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019";

/// Escapes text for an XML (or HTML) attribute or element.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// An ISO 8601 duration in seconds, to the millisecond (`PT30.160S`).
pub fn iso_duration(seconds: f64) -> String {
    format!("PT{:.3}S", seconds.max(0.0))
}

/// Greatest common divisor.
fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

/// The `SegmentTimeline`, runs of equal durations folded with `r`.
fn timeline(t: &Timeline, indent: &str) -> String {
    let mut out = format!("{indent}<SegmentTimeline>\n");
    let mut i = 0;
    let mut expected: Option<u64> = None;
    while i < t.segments.len() {
        let s = t.segments[i];
        let mut run = 0;
        while i + run + 1 < t.segments.len()
            && t.segments[i + run + 1].duration == s.duration
            && t.segments[i + run + 1].start == s.start + (run as u64 + 1) * s.duration
        {
            run += 1;
        }
        // `t` only where the timeline does not simply continue.
        let start = if expected == Some(s.start) {
            String::new()
        } else {
            format!(" t=\"{}\"", s.start)
        };
        let repeat = if run > 0 {
            format!(" r=\"{run}\"")
        } else {
            String::new()
        };
        let _ = writeln!(out, "{indent}  <S{start} d=\"{}\"{repeat}/>", s.duration);
        expected = Some(s.start + (run as u64 + 1) * s.duration);
        i += run + 1;
    }
    let _ = writeln!(out, "{indent}</SegmentTimeline>");
    out
}

fn template(folder: &str, t: &Timeline, indent: &str) -> String {
    format!(
        "{indent}<SegmentTemplate timescale=\"{}\" initialization=\"{folder}/$RepresentationID$/init.mp4\" media=\"{folder}/$RepresentationID$/$Number%05d$.m4s\" startNumber=\"1\">\n{}{indent}</SegmentTemplate>\n",
        t.timescale,
        timeline(t, &format!("{indent}  "))
    )
}

fn frame_rate(v: &Video) -> String {
    let (n, d) = (v.frame_rate.num, v.frame_rate.den.max(1));
    let g = gcd(u64::from(n), u64::from(d)) as u32;
    if d / g == 1 {
        format!("{}", n / g)
    } else {
        format!("{}/{}", n / g, d / g)
    }
}

/// The picture aspect ratio of a video rendition, reduced (`16:9`).
fn par(v: &Video) -> String {
    let w = u64::from(v.width) * u64::from(v.sar.0.max(1));
    let h = u64::from(v.height) * u64::from(v.sar.1.max(1));
    let g = gcd(w, h);
    format!("{}:{}", w / g, h / g)
}

/// The MPD.
pub fn mpd(p: &Presentation) -> String {
    let max_segment = p
        .video
        .iter()
        .flat_map(|v| {
            v.timeline
                .segments
                .iter()
                .map(|s| v.timeline.seconds(s.duration))
        })
        .fold(0.0f64, f64::max);
    let protected = p.video.iter().any(|v| v.protection.is_some())
        || p.audio.iter().any(|a| a.protection.is_some());
    let namespaces = if protected {
        " xmlns:cenc=\"urn:mpeg:cenc:2013\" xmlns:mspr=\"urn:microsoft:playready\""
    } else {
        ""
    };
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\"{namespaces} profiles=\"{PROFILES}\" type=\"static\" mediaPresentationDuration=\"{}\" maxSegmentDuration=\"{}\" minBufferTime=\"{}\">\n  <Period id=\"0\" start=\"PT0S\">\n",
        iso_duration(p.duration),
        iso_duration(max_segment),
        iso_duration(max_segment.max(1.0)),
    );
    let mut set_id = 0;
    // One adaptation set per video codec family (avc1, hvc1, av01, vp09...) and key: players
    // switch only between renditions that one key decrypts. H.264 comes first, AV1 last.
    type SetKey<'a> = (u8, &'a str, Option<[u8; 16]>);
    let mut by_codec: BTreeMap<SetKey, Vec<&Video>> = BTreeMap::new();
    for v in &p.video {
        let family = v.codecs.split('.').next().unwrap_or("");
        let kid = v.protection.as_ref().map(|x| x.kid);
        let rank = crate::package::compatibility_rank(&v.codecs);
        by_codec.entry((rank, family, kid)).or_default().push(v);
    }
    for videos in by_codec.values() {
        video_set(&mut out, set_id, videos);
        set_id += 1;
    }
    for a in &p.audio {
        audio_set(&mut out, set_id, a);
        set_id += 1;
    }
    for t in &p.text {
        text_set(&mut out, set_id, t, p.duration);
        set_id += 1;
    }
    if let Some(th) = &p.thumbnails {
        thumbnail_set(&mut out, set_id, th);
    }
    out.push_str("  </Period>\n</MPD>\n");
    out
}

/// The adaptation set of one video codec family: one `SegmentTemplate` for all when their
/// segments have the same times, else one in each representation.
fn video_set(out: &mut String, set_id: usize, videos: &[&Video]) {
    let shared = videos
        .windows(2)
        .all(|w| same_times(&w[0].timeline, &w[1].timeline));
    let max_w = videos.iter().map(|v| v.width).max().unwrap_or(0);
    let max_h = videos.iter().map(|v| v.height).max().unwrap_or(0);
    let top = videos.iter().max_by_key(|v| v.width * v.height).copied();
    let _ = writeln!(
        out,
        "    <AdaptationSet id=\"{set_id}\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\" maxWidth=\"{max_w}\" maxHeight=\"{max_h}\"{}{}>",
        top.map(|v| format!(" maxFrameRate=\"{}\"", frame_rate(v)))
            .unwrap_or_default(),
        top.map(|v| format!(" par=\"{}\"", par(v)))
            .unwrap_or_default(),
    );
    if let Some(p) = videos.first().and_then(|v| v.protection.as_ref()) {
        content_protection(out, p);
    }
    out.push_str("      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"main\"/>\n");
    if shared && let Some(first) = videos.first() {
        out.push_str(&template("video", &first.timeline, "      "));
    }
    for v in videos {
        let _ = write!(
            out,
            "      <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\" width=\"{}\" height=\"{}\" frameRate=\"{}\" sar=\"{}:{}\"",
            xml(&v.id),
            v.timeline.peak_bps(),
            xml(&v.codecs),
            v.width,
            v.height,
            frame_rate(v),
            v.sar.0,
            v.sar.1,
        );
        if shared {
            out.push_str("/>\n");
        } else {
            out.push_str(">\n");
            out.push_str(&template("video", &v.timeline, "        "));
            out.push_str("      </Representation>\n");
        }
    }
    out.push_str("    </AdaptationSet>\n");
}

/// The adaptation set of one audio track.
fn audio_set(out: &mut String, set_id: usize, a: &Audio) {
    let _ = writeln!(
        out,
        "    <AdaptationSet id=\"{set_id}\" contentType=\"audio\" mimeType=\"audio/mp4\" lang=\"{}\" segmentAlignment=\"true\" startWithSAP=\"1\">",
        xml(&a.language)
    );
    if let Some(p) = &a.protection {
        content_protection(out, p);
    }
    let role = match a.role {
        Role::Description => "description",
        _ if a.default => "main",
        _ => "alternate",
    };
    let _ = writeln!(
        out,
        "      <Label>{}</Label>\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{role}\"/>",
        xml(&a.name)
    );
    if a.role == Role::Description {
        // TV-Anytime's audio purpose 1: for the visually impaired.
        out.push_str(&accessibility(1));
    }
    out.push_str(&template("audio", &a.timeline, "      "));
    let _ = writeln!(
        out,
        "      <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\" audioSamplingRate=\"{}\">\n        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{}\"/>\n      </Representation>\n    </AdaptationSet>",
        xml(&a.id),
        a.timeline.peak_bps(),
        xml(&a.codecs),
        a.sample_rate,
        a.channels,
    );
}

/// The `ContentProtection` elements of an adaptation set: the scheme and default key ID,
/// ClearKey's (DASH-IF's `e2719d58`, with no `pssh`: players build its init data from the
/// default key ID), then Widevine and PlayReady with their `pssh` (and PlayReady's object as
/// `mspr:pro`). The W3C common `pssh` stays in the init segment only: dash.js would take it
/// from the MPD as ClearKey init data of the wrong type.
fn content_protection(out: &mut String, p: &Protection) {
    let _ = writeln!(
        out,
        "      <ContentProtection schemeIdUri=\"urn:mpeg:dash:mp4protection:2011\" value=\"{}\" cenc:default_KID=\"{}\"/>\n      <ContentProtection schemeIdUri=\"{}\" value=\"ClearKey1.0\"/>",
        p.scheme.name(),
        crate::cenc::uuid(&p.kid),
        drm::system_urn(&drm::CLEARKEY_SYSTEM),
    );
    for pssh in &p.pssh {
        let Some(system) = pssh.get(12..28).and_then(|s| <[u8; 16]>::try_from(s).ok()) else {
            continue;
        };
        let (value, pro) = match system {
            drm::WIDEVINE_SYSTEM => (" value=\"Widevine\"", None),
            drm::PLAYREADY_SYSTEM => (" value=\"MSPR 2.0\"", pssh.get(32..)),
            _ => continue,
        };
        let _ = writeln!(
            out,
            "      <ContentProtection schemeIdUri=\"{}\"{value}>\n        <cenc:pssh>{}</cenc:pssh>",
            drm::system_urn(&system),
            drm::base64(pssh)
        );
        if let Some(pro) = pro {
            let _ = writeln!(out, "        <mspr:pro>{}</mspr:pro>", drm::base64(pro));
        }
        out.push_str("      </ContentProtection>\n");
    }
}

/// The adaptation set of one subtitle track: its whole WebVTT file.
fn text_set(out: &mut String, set_id: usize, t: &Text, duration: f64) {
    let seconds = duration.max(1e-3);
    let _ = writeln!(
        out,
        "    <AdaptationSet id=\"{set_id}\" contentType=\"text\" mimeType=\"text/vtt\" lang=\"{}\">\n      <Label>{}</Label>\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{}\"/>\n{}      <Representation id=\"text-{}\" bandwidth=\"{}\">\n        <BaseURL>text/{}/all.vtt</BaseURL>\n      </Representation>\n    </AdaptationSet>",
        xml(&t.language),
        xml(&t.name),
        match t.role {
            Role::Forced => "forced-subtitle",
            // Subtitles for the hard of hearing are captions in DASH's roles.
            Role::Sdh => "caption",
            _ => "subtitle",
        },
        if t.role == Role::Sdh {
            // TV-Anytime's audio purpose 2: for the hard of hearing.
            accessibility(2)
        } else {
            String::new()
        },
        xml(&t.id),
        ((t.bytes as f64 * 8.0 / seconds).ceil() as u64).max(1),
        xml(&t.id),
    );
}

/// An `Accessibility` descriptor with a TV-Anytime audio purpose.
fn accessibility(purpose: u8) -> String {
    format!(
        "      <Accessibility schemeIdUri=\"urn:tva:metadata:cs:AudioPurposeCS:2007\" value=\"{purpose}\"/>\n"
    )
}

/// The adaptation set of the thumbnail sheets (DASH-IF thumbnail tiles).
fn thumbnail_set(out: &mut String, set_id: usize, th: &Thumbnails) {
    let per_sheet = th.interval * th.columns * th.rows;
    let _ = writeln!(
        out,
        "    <AdaptationSet id=\"{set_id}\" contentType=\"image\" mimeType=\"image/jpeg\">\n      <SegmentTemplate media=\"thumbs/$Number%05d$.jpg\" timescale=\"1\" duration=\"{per_sheet}\" startNumber=\"1\"/>\n      <Representation id=\"thumbnails\" bandwidth=\"{}\" width=\"{}\" height=\"{}\">\n        <EssentialProperty schemeIdUri=\"http://dashif.org/thumbnail_tile\" value=\"{}x{}\"/>\n      </Representation>\n    </AdaptationSet>",
        ((th.max_sheet_bytes as f64 * 8.0 / f64::from(per_sheet.max(1))).ceil() as u64).max(1),
        th.tile.0 * th.columns,
        th.tile.1 * th.rows,
        th.columns,
        th.rows,
    );
}

/// Two timelines with the same timescale and segment times (sizes may differ).
fn same_times(a: &Timeline, b: &Timeline) -> bool {
    a.timescale == b.timescale
        && a.segments.len() == b.segments.len()
        && a.segments
            .iter()
            .zip(&b.segments)
            .all(|(x, y)| x.start == y.start && x.duration == y.duration)
}
