//! The playlist and MPD writers, exactly: a 29.97 fps ladder with variable segment durations,
//! two audio languages, subtitles and thumbnails. Each text is compared whole, then parsed
//! back by independent parsers (m3u8-rs, dash-mpd).

use packager::presentation::{
    Audio, FrameRate, Presentation, Role, Segment, Text, Thumbnails, Timeline, Video,
};
use packager::{dash, hls};

/// Segments of `frames` frames each at 30000/1001 fps, timescale 30000.
fn ntsc(frames: &[u64], bytes: &[u64]) -> Timeline {
    let mut start = 0;
    let segments = frames
        .iter()
        .zip(bytes)
        .map(|(&f, &b)| {
            let s = Segment {
                start,
                duration: f * 1001,
                bytes: b,
                key_bytes: b / 5,
            };
            start += f * 1001;
            s
        })
        .collect();
    Timeline {
        timescale: 30000,
        segments,
    }
}

/// AAC at 48 kHz: 1024-sample frames, cut at the first frame at or after each video cut.
fn aac(frames: &[u64]) -> Timeline {
    let mut start = 0u64;
    let mut video = 0u64;
    let mut segments = Vec::new();
    for &f in frames {
        video += f * 1001;
        // The first AAC frame boundary at or after the video boundary (48000/30000 ticks).
        let end = (video * 48000 / 30000).div_ceil(1024) * 1024;
        segments.push(Segment {
            start,
            duration: end - start,
            bytes: (end - start) * 16 / 1000,
            key_bytes: 0,
        });
        start = end;
    }
    Timeline {
        timescale: 48000,
        segments,
    }
}

fn title() -> Presentation {
    let frames = [120, 120, 96, 144, 45];
    let rate = FrameRate {
        num: 30000,
        den: 1001,
    };
    let video = |id: &str, codecs: &str, w, h, scale: u64| Video {
        id: id.into(),
        codecs: codecs.into(),
        width: w,
        height: h,
        sar: (1, 1),
        frame_rate: rate,
        timeline: ntsc(
            &frames,
            &[
                200_000 * scale,
                180_000 * scale,
                210_000 * scale,
                260_000 * scale,
                40_000 * scale,
            ],
        ),
        protection: None,
    };
    let audio = |id: &str, lang: &str, name: &str, default| Audio {
        id: id.into(),
        language: lang.into(),
        name: name.into(),
        codecs: "mp4a.40.2".into(),
        channels: 2,
        sample_rate: 48000,
        default,
        timeline: aac(&frames),
        protection: None,
        role: Role::Main,
    };
    Presentation {
        duration: 525.0 * 1001.0 / 30000.0,
        video: vec![
            video("234p", "avc1.64000D", 416, 234, 1),
            video("720p", "avc1.64001F", 1280, 720, 6),
        ],
        audio: vec![
            audio("en", "en", "English", true),
            audio("fr", "fr", "Français", false),
        ],
        text: vec![Text {
            id: "en".into(),
            language: "en".into(),
            name: "English".into(),
            default: false,
            timeline: ntsc(&frames, &[100, 100, 100, 100, 100]),
            bytes: 2100,
            role: Role::Main,
        }],
        thumbnails: Some(Thumbnails {
            interval: 10,
            columns: 5,
            rows: 4,
            tile: (160, 90),
            sheets: 1,
            max_sheet_bytes: 48_000,
        }),
    }
}

/// Compares `text` with the golden file `name` (under tests/golden/), exactly. With
/// `RUNGS_BLESS=1` the file is written instead, to be reviewed in the diff.
fn golden(name: &str, text: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("RUNGS_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (RUNGS_BLESS=1 writes it)", path.display()));
    assert!(
        text == want,
        "{name} differs from its golden file:\n--- got\n{text}\n--- want\n{want}"
    );
}

fn media(text: &str) -> m3u8_rs::MediaPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()).expect("m3u8-rs parses it") {
        m3u8_rs::Playlist::MediaPlaylist(m) => m,
        m3u8_rs::Playlist::MasterPlaylist(_) => panic!("not a media playlist"),
    }
}

#[test]
fn master_playlist_is_exact_and_parses() {
    let p = title();
    let text = hls::master(&p);
    golden("master.m3u8", &text);
    let m3u8_rs::Playlist::MasterPlaylist(m) =
        m3u8_rs::parse_playlist_res(text.as_bytes()).expect("m3u8-rs parses it")
    else {
        panic!("not a master playlist")
    };
    assert!(m.independent_segments);
    let variants: Vec<_> = m.variants.iter().filter(|v| !v.is_i_frame).collect();
    assert_eq!(variants.len(), 2);
    // BANDWIDTH is the video's peak segment rate plus the top audio peak.
    let audio_peak = p.audio[0].timeline.peak_bps();
    for (v, rung) in variants.iter().zip(&p.video) {
        assert_eq!(v.bandwidth, rung.timeline.peak_bps() + audio_peak);
        assert_eq!(
            v.average_bandwidth,
            Some(rung.timeline.average_bps() + p.audio[0].timeline.average_bps())
        );
        assert_eq!(
            v.codecs.as_deref(),
            Some(format!("{},mp4a.40.2", rung.codecs).as_str())
        );
        assert_eq!(v.audio.as_deref(), Some("audio"));
        assert_eq!(v.subtitles.as_deref(), Some("subs"));
        assert!((v.frame_rate.unwrap() - 29.97).abs() < 1e-9);
    }
    assert_eq!(m.variants.iter().filter(|v| v.is_i_frame).count(), 2);
    let defaults: Vec<(String, bool)> = m
        .alternatives
        .iter()
        .map(|a| (a.language.clone().unwrap(), a.default))
        .collect();
    assert_eq!(
        defaults,
        [
            ("en".into(), true),
            ("fr".into(), false),
            ("en".into(), false)
        ]
    );
}

#[test]
fn media_playlists_are_exact_with_variable_durations() {
    let p = title();
    let video = hls::media(&p.video[0].timeline, None);
    golden("video.m3u8", &video);
    golden("iframes.m3u8", &hls::iframes(&p.video[1]));
    golden("audio.m3u8", &hls::media(&p.audio[0].timeline, None));
    golden("subtitles.m3u8", &hls::subtitles(&p.text[0]));
    let m = media(&video);
    assert_eq!(m.target_duration, 5);
    assert!(m.end_list);
    let secs: Vec<f32> = m.segments.iter().map(|s| s.duration).collect();
    assert_eq!(secs, [4.004, 4.004, 3.2032, 4.8048, 1.5015]);
    assert_eq!(
        m.segments[0].map.as_ref().map(|x| x.uri.as_str()),
        Some("init.mp4")
    );
    let i = media(&hls::iframes(&p.video[1]));
    assert!(i.i_frames_only);
    let ranges: Vec<(u64, Option<u64>)> = i
        .segments
        .iter()
        .map(|s| {
            let b = s.byte_range.as_ref().unwrap();
            (b.length, b.offset)
        })
        .collect();
    assert_eq!(
        ranges,
        p.video[1]
            .timeline
            .segments
            .iter()
            .map(|s| (s.key_bytes, Some(0)))
            .collect::<Vec<_>>()
    );
}

#[test]
fn mpd_is_exact_and_parses() {
    let p = title();
    let text = dash::mpd(&p);
    golden("manifest.mpd", &text);
    let mpd = dash_mpd::parse(&text).expect("dash-mpd parses it");
    assert_eq!(mpd.mpdtype.as_deref(), Some("static"));
    let sets = &mpd.periods[0].adaptations;
    let kinds: Vec<&str> = sets
        .iter()
        .map(|a| a.contentType.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["video", "audio", "audio", "text", "image"]);
    let timeline = sets[0]
        .SegmentTemplate
        .as_ref()
        .and_then(|t| t.SegmentTimeline.as_ref())
        .expect("a shared SegmentTimeline");
    // Expanded, the timeline gives back every segment's start and duration.
    let mut expanded = Vec::new();
    let mut t = 0u64;
    for s in &timeline.segments {
        t = s.t.unwrap_or(t);
        for _ in 0..=s.r.unwrap_or(0) {
            expanded.push((t, s.d));
            t += s.d;
        }
    }
    let want: Vec<(u64, u64)> = p.video[0]
        .timeline
        .segments
        .iter()
        .map(|s| (s.start, s.duration))
        .collect();
    assert_eq!(expanded, want);
    let reps = &sets[0].representations;
    assert_eq!(reps[1].codecs.as_deref(), Some("avc1.64001F"));
    assert_eq!(reps[1].frameRate.as_deref(), Some("30000/1001"));
    assert_eq!(reps[1].sar.as_deref(), Some("1:1"));
    assert_eq!(sets[1].lang.as_deref(), Some("en"));
    assert_eq!(sets[2].lang.as_deref(), Some("fr"));
}

/// Forced narrative and SDH subtitles and an audio description are signalled as such, in
/// both manifests, as the independent parsers read them.
#[test]
fn accessibility_roles_are_signalled_in_both_manifests() {
    let mut p = title();
    let mut forced = p.text[0].clone();
    forced.id = "en-2".into();
    forced.name = "English (forced)".into();
    forced.role = Role::Forced;
    let mut sdh = p.text[0].clone();
    sdh.id = "en-3".into();
    sdh.name = "English (SDH)".into();
    sdh.role = Role::Sdh;
    p.text.extend([forced, sdh]);
    let mut described = p.audio[0].clone();
    described.id = "en-2".into();
    described.name = "English (audio description)".into();
    described.default = false;
    described.role = Role::Description;
    p.audio.push(described);

    let text = hls::master(&p);
    let m3u8_rs::Playlist::MasterPlaylist(m) =
        m3u8_rs::parse_playlist_res(text.as_bytes()).expect("m3u8-rs parses it")
    else {
        panic!("not a master playlist")
    };
    let of = |name: &str| {
        m.alternatives
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("{name}: {text}"))
    };
    assert!(
        of("English (forced)").forced && !of("English").forced,
        "{text}"
    );
    assert_eq!(
        of("English (SDH)").characteristics.as_deref(),
        Some(
            "public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound"
        )
    );
    assert_eq!(
        of("English (audio description)").characteristics.as_deref(),
        Some("public.accessibility.describes-video")
    );
    assert!(of("English (forced)").characteristics.is_none());

    let text = dash::mpd(&p);
    let mpd = dash_mpd::parse(&text).expect("dash-mpd parses it");
    let sets = &mpd.periods[0].adaptations;
    let by_label = |label: &str| {
        sets.iter()
            .find(|a| a.Label.iter().any(|l| l.content == label))
            .unwrap_or_else(|| panic!("{label}: {text}"))
    };
    let roles = |label: &str| -> Vec<String> {
        by_label(label)
            .Role
            .iter()
            .filter_map(|r| r.value.clone())
            .collect()
    };
    let purpose = |label: &str| -> Vec<String> {
        by_label(label)
            .Accessibility
            .iter()
            .filter(|a| a.schemeIdUri == "urn:tva:metadata:cs:AudioPurposeCS:2007")
            .filter_map(|a| a.value.clone())
            .collect()
    };
    assert_eq!(roles("English (forced)"), ["forced-subtitle"]);
    assert_eq!(roles("English (SDH)"), ["caption"]);
    assert_eq!(purpose("English (SDH)"), ["2"]);
    assert_eq!(roles("English (audio description)"), ["description"]);
    assert_eq!(purpose("English (audio description)"), ["1"]);
    assert!(purpose("English (forced)").is_empty());
}
