//! The probe checked against the reference tool: every field that `ffprobe` also reports must
//! agree, on every generated master, the real clips, and the bad files that still open.

use std::path::{Path, PathBuf};

use fixtures::Fixture;
use media::{self, StreamKind};
use serde_json::Value;

fn ffprobe(path: &Path) -> Value {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe failed on {}", path.display());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = [
        Fixture::MultiShot,
        Fixture::MultiShot10Bit,
        Fixture::MultiShot2997,
        Fixture::ProRes,
        Fixture::TwoAudio,
    ]
    .iter()
    .map(|f| fixtures::ensure(*f).unwrap().path)
    .collect();
    files.extend(
        fixtures::REAL_CLIPS
            .iter()
            .filter_map(|c| fixtures::real_clip(c)),
    );
    for bad in fixtures::corpus().unwrap() {
        if media::Demuxer::open(&bad.path).is_ok() {
            files.push(bad.path);
        }
    }
    files
}

/// ffprobe writes ratios as "16:9"; we write "16/9".
fn ratio(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| *s != "0:1" && *s != "N/A")
        .map(|s| s.replace(':', "/"))
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|s| s != "unknown")
}

fn num_field(v: &Value, key: &str) -> Option<f64> {
    v.get(key)
        .and_then(|x| x.as_str().and_then(|s| s.parse().ok()).or(x.as_f64()))
}

#[test]
fn probe_agrees_with_ffprobe() {
    let mut compared = 0;
    for path in files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let ours = media::probe(&path, false).unwrap();
        let theirs = ffprobe(&path);
        let streams = theirs["streams"].as_array().unwrap();
        assert_eq!(ours.streams.len(), streams.len(), "{name}: stream count");
        let fmt = &theirs["format"];
        assert_eq!(
            Some(ours.container.clone()),
            str_field(fmt, "format_name"),
            "{name}"
        );
        if let (Some(a), Some(b)) = (ours.duration_seconds, num_field(fmt, "duration")) {
            assert!((a - b).abs() < 0.001, "{name}: duration {a} vs {b}");
        }
        for (o, t) in ours.streams.iter().zip(streams) {
            let at = format!("{name} stream {}", o.index);
            assert_eq!(o.kind.name(), t["codec_type"].as_str().unwrap(), "{at}");
            assert_eq!(Some(o.codec.clone()), str_field(t, "codec_name"), "{at}");
            assert_eq!(o.profile, str_field(t, "profile"), "{at}: profile");
            assert_eq!(
                Some(o.time_base.to_string()),
                str_field(t, "time_base"),
                "{at}"
            );
            assert_eq!(
                o.language,
                t["tags"]["language"]
                    .as_str()
                    .map(str::to_owned)
                    .filter(|l| l != "und"),
                "{at}"
            );
            if let (Some(a), Some(b)) = (o.duration_seconds, num_field(t, "duration")) {
                assert!((a - b).abs() < 0.001, "{at}: duration {a} vs {b}");
            }
            assert_eq!(
                o.frames,
                num_field(t, "nb_frames")
                    .map(|n| n as u64)
                    .filter(|n| *n > 0),
                "{at}"
            );
            if o.kind == StreamKind::Video {
                let v = o.video.as_ref().unwrap();
                assert_eq!(Some(v.width as f64), num_field(t, "width"), "{at}");
                assert_eq!(Some(v.height as f64), num_field(t, "height"), "{at}");
                assert_eq!(
                    Some(v.pixel_format.clone()),
                    str_field(t, "pix_fmt"),
                    "{at}"
                );
                assert_eq!(
                    Some(v.r_frame_rate.to_string()),
                    str_field(t, "r_frame_rate"),
                    "{at}"
                );
                assert_eq!(
                    Some(v.avg_frame_rate.to_string()),
                    str_field(t, "avg_frame_rate"),
                    "{at}"
                );
                let order = str_field(t, "field_order").unwrap_or_else(|| "unknown".into());
                assert_eq!(v.field_order, order, "{at}: field order");
                if let Some(sar) = ratio(&t["sample_aspect_ratio"]) {
                    assert_eq!(v.sample_aspect_ratio.to_string(), sar, "{at}: SAR");
                    assert_eq!(
                        Some(v.display_aspect_ratio.to_string()),
                        ratio(&t["display_aspect_ratio"]),
                        "{at}: DAR"
                    );
                }
                assert_eq!(v.color.primaries, str_field(t, "color_primaries"), "{at}");
                assert_eq!(v.color.transfer, str_field(t, "color_transfer"), "{at}");
                assert_eq!(v.color.matrix, str_field(t, "color_space"), "{at}");
                assert_eq!(v.color.range, str_field(t, "color_range"), "{at}");
                assert_eq!(
                    v.color.chroma_location,
                    str_field(t, "chroma_location").filter(|c| c != "unspecified"),
                    "{at}"
                );
            }
            if o.kind == StreamKind::Audio {
                let a = o.audio.as_ref().unwrap();
                assert_eq!(
                    Some(f64::from(a.sample_rate)),
                    num_field(t, "sample_rate"),
                    "{at}"
                );
                assert_eq!(
                    Some(f64::from(a.channels)),
                    num_field(t, "channels"),
                    "{at}"
                );
                assert_eq!(
                    Some(a.channel_layout.clone()),
                    str_field(t, "channel_layout"),
                    "{at}"
                );
                assert_eq!(
                    Some(a.sample_format.clone()),
                    str_field(t, "sample_fmt"),
                    "{at}"
                );
            }
            compared += 1;
        }
    }
    assert!(compared >= 25, "only {compared} streams compared");
}
