//! `rungs vmaf` as a user drives it: any input FFmpeg reads, scaling of a smaller distorted
//! video, the JSON report, thread counts, and clear refusals of inputs that cannot be
//! compared.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::vmaf::{POOLED_BAR, compare, libvmaf};
use common::{arg, rungs};
use fixtures::{PARITY, Pair};
use serde_json::Value;

fn pair(name: &str) -> Pair {
    let spec = PARITY
        .iter()
        .find(|p| p.name == name)
        .expect("a parity pair");
    fixtures::pair(spec).expect("the pair is made")
}

/// Runs `rungs vmaf REF DIST EXTRA...` and returns its JSON, failing on a non-zero exit.
fn score(reference: &Path, distorted: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["vmaf", arg(reference), arg(distorted), "-q"];
    args.extend(extra);
    let run = rungs(&args);
    assert_eq!(run.code, 0, "rungs {args:?}: {}", run.stderr);
    run.json
}

/// Makes `out` from `input` with the ffmpeg tool (for derived test inputs only).
fn ffmpeg(input: &Path, args: &[&str], out: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i", arg(input)])
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg {args:?} failed");
}

#[test]
fn the_report_has_pooled_metrics_and_frames_only_when_asked() {
    let p = pair("360p-crf27");
    let json = score(&p.reference, &p.distorted, &[]);
    assert_eq!(json["frames"], p.frames);
    assert_eq!(json["width"], p.width);
    assert_eq!(json["height"], p.height);
    assert_eq!(json["bit_depth"], 8);
    assert_eq!(json["frame_rate"], "25/1");
    assert_eq!(json["model"], "vmaf_v0.6.1");
    assert_eq!(json["scaled"], false);
    assert!(json.get("per_frame").is_none(), "per-frame scores unasked");
    let pooled = &json["pooled"];
    for metric in ["vmaf", "psnr_y", "psnr_cb", "psnr_cr", "ssim"] {
        for stat in ["mean", "harmonic_mean", "min", "max", "p5"] {
            assert!(
                pooled[metric][stat].is_f64(),
                "pooled.{metric}.{stat} missing: {pooled}"
            );
        }
        let (min, p5, mean, max) = (
            pooled[metric]["min"].as_f64().unwrap(),
            pooled[metric]["p5"].as_f64().unwrap(),
            pooled[metric]["mean"].as_f64().unwrap(),
            pooled[metric]["max"].as_f64().unwrap(),
        );
        assert!(min <= p5 && p5 <= mean && mean <= max, "{metric}: {pooled}");
    }

    let only = score(&p.reference, &p.distorted, &["--vmaf-only", "--per-frame"]);
    assert!(only["pooled"].get("psnr_y").is_none() && only["pooled"].get("ssim").is_none());
    let frames = only["per_frame"].as_array().expect("per-frame scores");
    assert_eq!(frames.len() as u64, p.frames);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f["frame"], i as u64);
        assert!(f["vif"].as_array().is_some_and(|v| v.len() == 4));
        assert!(f["adm"].as_array().is_some_and(|v| v.len() == 4));
        assert!(f.get("psnr").is_none());
    }
    // The first frame has no motion; VMAF is the same with or without the extras.
    assert_eq!(frames[0]["motion2"], 0.0);
    assert_eq!(only["pooled"]["vmaf"], json["pooled"]["vmaf"]);
    // `--features` picks them one by one; `vmaf` alone is `--vmaf-only`.
    let by_list = score(
        &p.reference,
        &p.distorted,
        &["--features", "vmaf", "--per-frame"],
    );
    assert_eq!(by_list["pooled"], only["pooled"]);
    assert_eq!(by_list["per_frame"], only["per_frame"]);
    let psnr = score(&p.reference, &p.distorted, &["--features", "vmaf,psnr"]);
    assert!(psnr["pooled"].get("psnr_y").is_some() && psnr["pooled"].get("ssim").is_none());
    assert_eq!(psnr["pooled"]["vmaf"], json["pooled"]["vmaf"]);
}

#[test]
fn an_encode_scores_like_its_decoded_frames() {
    // rungs decodes the H.264 file itself; libvmaf's input is the same frames as Y4M.
    let p = pair("720p-crf40");
    let from_mp4 = score(&p.reference, &p.encoded, &["--per-frame"]);
    let from_y4m = score(&p.reference, &p.distorted, &["--per-frame"]);
    assert_eq!(from_mp4["per_frame"], from_y4m["per_frame"]);
    assert_eq!(from_mp4["pooled"], from_y4m["pooled"]);
}

#[test]
fn a_smaller_distorted_video_is_upscaled_bicubic_like_ffmpeg() {
    let p = pair("720p-360p-bicubic");
    let ours = score(&p.reference, &p.encoded, &["--per-frame"]);
    assert_eq!(ours["scaled"], true);
    assert_eq!(ours["width"], 1280);
    // The same upscale by the ffmpeg tool, scored by libvmaf.
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up.y4m");
    ffmpeg(
        &p.encoded,
        &[
            "-vf",
            "scale=1280:720:flags=bicubic+accurate_rnd",
            "-pix_fmt",
            "yuv420p",
        ],
        &up,
    );
    let theirs = libvmaf(&p.reference, &up, "version=vmaf_v0.6.1");
    let d = compare("upscaled", &theirs, &ours);
    assert!(d.frame_max <= 1e-5, "{d:?}");
    assert!(d.pooled_mean <= POOLED_BAR / 100.0, "{d:?}");
}

#[test]
fn thread_counts_give_identical_reports() {
    let p = pair("360p-cuts-crf32");
    let one = score(
        &p.reference,
        &p.distorted,
        &["--per-frame", "--threads", "1"],
    );
    let two = score(
        &p.reference,
        &p.distorted,
        &["--per-frame", "--threads", "2"],
    );
    let many = score(
        &p.reference,
        &p.distorted,
        &["--per-frame", "--threads", "7"],
    );
    assert_eq!(one["per_frame"], two["per_frame"]);
    assert_eq!(one["per_frame"], many["per_frame"]);
    assert_eq!(one["pooled"], many["pooled"]);
}

#[test]
fn the_report_can_go_to_a_file() {
    let p = pair("360p-crf45");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let run = rungs(&[
        "vmaf",
        arg(&p.reference),
        arg(&p.distorted),
        "-o",
        arg(&out),
        "-q",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(json["frames"], p.frames);
}

/// Runs a command that must fail and returns its exit code and message.
fn refused(args: &[&str]) -> (i32, String) {
    let run = rungs(args);
    assert_ne!(run.code, 0, "rungs {args:?} succeeded");
    assert!(run.json.is_null(), "no report on failure: {}", run.json);
    (run.code, run.stderr)
}

#[test]
fn inputs_that_cannot_be_compared_are_refused_with_the_reason() {
    let p = pair("360p-crf27");
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| -> PathBuf { dir.path().join(name) };

    let short = path("short.y4m");
    ffmpeg(&p.distorted, &["-frames:v", "40"], &short);
    let (code, msg) = refused(&["vmaf", arg(&p.reference), arg(&short)]);
    assert_eq!(code, 3, "{msg}");
    assert!(msg.contains("frame counts differ") && msg.contains("48") && msg.contains("40"));

    let fast = path("fast.y4m");
    ffmpeg(&p.distorted, &["-vf", "fps=30"], &fast);
    let (code, msg) = refused(&["vmaf", arg(&p.reference), arg(&fast)]);
    assert_eq!(code, 3, "{msg}");
    assert!(
        msg.contains("frame rates differ") && msg.contains("30"),
        "{msg}"
    );

    let missing = path("missing.mp4");
    let (code, msg) = refused(&["vmaf", arg(&p.reference), arg(&missing)]);
    assert_eq!(code, 4, "{msg}");
    assert!(msg.contains("missing.mp4"), "{msg}");

    let not_media = path("notes.txt");
    std::fs::write(&not_media, "not a video\n").unwrap();
    let (code, msg) = refused(&["vmaf", arg(&not_media), arg(&p.distorted)]);
    assert_eq!(code, 3, "{msg}");
    assert!(msg.contains("notes.txt"), "{msg}");

    let truncated = path("truncated.mp4");
    let bytes = std::fs::read(&p.encoded).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let (code, msg) = refused(&["vmaf", arg(&p.reference), arg(&truncated)]);
    assert_eq!(code, 3, "{msg}");
}

#[test]
fn bad_models_and_options_are_usage_errors() {
    let p = pair("360p-crf27");
    let (r, d) = (arg(&p.reference), arg(&p.distorted));
    let (code, msg) = refused(&["vmaf", r, d, "--model", "vmaf_v9"]);
    assert_eq!(code, 2, "{msg}");
    assert!(
        msg.contains("vmaf_v9") && msg.contains("vmaf_v0.6.1"),
        "{msg}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("model.json");
    std::fs::write(&bad, "{\n  \"model_dict\": [1,\n").unwrap();
    let (code, msg) = refused(&["vmaf", r, d, "--model", arg(&bad)]);
    assert_eq!(code, 2, "{msg}");
    assert!(
        msg.contains("model.json") && msg.contains("line 3"),
        "{msg}"
    );

    let (code, msg) = refused(&["vmaf", r, d, "--threads", "lots"]);
    assert_eq!(code, 2, "{msg}");
}
