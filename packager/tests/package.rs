//! Packaging real files: renditions made by the ffmpeg CLI (the fixture tool) with keyframes
//! that only partly line up, an audio track that starts late, subtitles with faults. What
//! comes out is read back by ffprobe and checked against the plan.

use std::path::{Path, PathBuf};
use std::process::Command;

use packager::audio::AudioSource;
use packager::package::{PackageError, Settings, Sources, SubtitleSource, VideoSource, package};
use packager::sink::MemorySink;

mod common;
use common::rendition;

fn video(id: &str, path: PathBuf) -> VideoSource {
    VideoSource {
        id: id.into(),
        path,
    }
}

fn ffprobe_frames(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn segments_fall_on_shared_keyframes_and_decode_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    // Keyframes every 25 and every 50 frames: only every second one is shared.
    let a = rendition(dir.path(), "a", "320x180", 25, 150);
    let b = rendition(dir.path(), "b", "640x360", 50, 150);
    let sink = MemorySink::default();
    let sources = Sources {
        videos: vec![video("a", a.clone()), video("b", b)],
        audio: vec![AudioSource {
            path: a.clone(),
            stream: 1,
            language: "eng".into(),
            origin_seconds: 0.0,
            role: packager::presentation::Role::Main,
        }],
        thumbnails: Some((a, 0.0)),
        ..Default::default()
    };
    let mut settings = Settings {
        segment_seconds: 1.0,
        ..Default::default()
    };
    settings.thumbnails.interval = 2;
    let done = package(&sources, &settings, &dir.path().join("work"), &sink).unwrap();
    let p = &done.presentation;
    // 1 s asked, 2 s is what the shared keyframes allow.
    for v in &p.video {
        let secs: Vec<f64> = v
            .timeline
            .segments
            .iter()
            .map(|s| v.timeline.seconds(s.duration))
            .collect();
        assert_eq!(secs, [2.0, 2.0, 2.0], "{}", v.id);
        // x264 ultrafast with B-frames: Main profile (0x4D), levels 1.2 and 3.0.
        let want = if v.id == "a" {
            "avc1.4D400C"
        } else {
            "avc1.4D401E"
        };
        assert_eq!(v.codecs, want);
    }
    assert_eq!(p.video[0].timeline.segments.len(), 3);
    let files = sink.files();
    // Init plus segments, concatenated, decode to every frame of the rendition.
    for id in ["a", "b"] {
        let mut whole = files[&format!("video/{id}/init.mp4")].clone();
        for n in 1..=3 {
            let seg = &files[&format!("video/{id}/{n:05}.m4s")];
            whole.extend_from_slice(seg);
        }
        let joined = dir.path().join(format!("{id}-joined.mp4"));
        std::fs::write(&joined, whole).unwrap();
        assert_eq!(ffprobe_frames(&joined), 150, "{id}");
    }
    // The audio: language set, the same boundaries (to the AAC frame), as long as the video.
    let audio = &p.audio[0];
    assert_eq!(audio.language, "en");
    assert_eq!(audio.codecs, "mp4a.40.2");
    assert_eq!((audio.channels, audio.sample_rate), (2, 48_000));
    let t = &audio.timeline;
    let total = t.seconds(t.duration());
    assert!((total - 6.0).abs() < 0.05, "audio lasts {total} s");
    for (k, s) in t.segments.iter().enumerate() {
        let start = t.seconds(s.start);
        assert!(
            (start - 2.0 * k as f64).abs() < 1024.0 / 48_000.0 + 1e-9,
            "{start}"
        );
    }
    let mut init = files["audio/en/init.mp4"].clone();
    init.extend_from_slice(&files["audio/en/00001.m4s"]);
    let joined = dir.path().join("audio.mp4");
    std::fs::write(&joined, init).unwrap();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream_tags=language",
            "-of",
            "csv=p=0",
        ])
        .arg(&joined)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "eng");
    // Thumbnails: three tiles (0, 2, 4 s) on one 5x5 sheet of 240x136 tiles.
    let sheet = image::load_from_memory(&files["thumbs/00001.jpg"]).unwrap();
    assert_eq!((sheet.width(), sheet.height()), (1200, 680));
    let vtt = String::from_utf8(files["thumbs/thumbnails.vtt"].clone()).unwrap();
    assert!(
        vtt.contains("00:00:04.000 --> 00:00:06.000\n00001.jpg#xywh=480,0,240,136\n"),
        "{vtt}"
    );
    assert_eq!(vtt.matches("#xywh=").count(), 3);
    // The tile holds the picture: the test pattern is not a flat grey.
    let rgb = sheet.to_rgb8();
    let first: Vec<&image::Rgb<u8>> = (0..240).map(|x| rgb.get_pixel(x, 60)).collect();
    assert!(first.iter().any(|p| p.0 != first[0].0));
    // The manifests went last, and list what was written.
    assert!(files["master.m3u8"].starts_with(b"#EXTM3U"));
    assert!(files.contains_key("manifest.mpd"));
    assert!(files.contains_key("video/b/iframes.m3u8"));
}

#[test]
fn bad_inputs_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let a = rendition(dir.path(), "a", "320x180", 25, 150);
    let short = rendition(dir.path(), "short", "320x180", 25, 100);
    let work = dir.path().join("work");
    let settings = Settings::default();
    // Renditions of different lengths.
    let sources = Sources {
        videos: vec![video("a", a.clone()), video("short", short)],
        ..Default::default()
    };
    let e = package(&sources, &settings, &work, &MemorySink::default()).unwrap_err();
    assert!(matches!(e, PackageError::Mismatch { .. }), "{e}");
    assert!(e.to_string().contains("100 frames"), "{e}");
    // Subtitles with a cue that ends before it starts: the file and line.
    let srt = dir.path().join("bad.srt");
    std::fs::write(
        &srt,
        "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:04,000 --> 00:00:03,000\nbad\n",
    )
    .unwrap();
    let sources = Sources {
        videos: vec![video("a", a.clone())],
        subtitles: vec![SubtitleSource {
            path: srt.clone(),
            language: "en".into(),
            role: packager::presentation::Role::Main,
        }],
        ..Default::default()
    };
    let e = package(&sources, &settings, &work, &MemorySink::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:6: the cue ends (00:00:03,000) before it starts (00:00:04,000)",
            srt.display()
        )
    );
    // A repairable file passes with a warning naming it.
    std::fs::write(&srt, "1\r\n00:00:01,000 --> 00:00:02,000\r\nok\r\n").unwrap();
    let done = package(&sources, &settings, &work, &MemorySink::default()).unwrap();
    assert_eq!(done.warnings.len(), 1);
    assert!(
        done.warnings[0].starts_with(&srt.display().to_string()),
        "{:?}",
        done.warnings
    );
    // A file that is not media.
    let junk = dir.path().join("junk.mp4");
    std::fs::write(&junk, b"not a video at all").unwrap();
    let sources = Sources {
        videos: vec![video("j", junk)],
        ..Default::default()
    };
    let e = package(&sources, &settings, &work, &MemorySink::default()).unwrap_err();
    assert!(e.to_string().starts_with("rendition j: "), "{e}");
    // An audio stream that is not there.
    let sources = Sources {
        videos: vec![video("a", a.clone())],
        audio: vec![AudioSource {
            path: a,
            stream: 7,
            language: "en".into(),
            origin_seconds: 0.0,
            role: packager::presentation::Role::Main,
        }],
        ..Default::default()
    };
    let e = package(&sources, &settings, &work, &MemorySink::default()).unwrap_err();
    assert!(e.to_string().contains("stream 7"), "{e}");
}
