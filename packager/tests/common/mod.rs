//! Fixtures shared by the packaging tests: renditions made by the ffmpeg CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the ffmpeg CLI (fixture making only).
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 150 frames at 25 fps of a test pattern at `size`, H.264 with a keyframe every `gop` frames
/// and no others, and a sine from 0.5 s (so the audio starts late).
pub fn rendition(dir: &Path, name: &str, size: &str, gop: u32, frames: u32) -> PathBuf {
    let path = dir.join(format!("{name}.mp4"));
    let g = gop.to_string();
    let n = frames.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={size}:rate=25"),
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:r=44100",
        "-filter_complex",
        "[1:a]adelay=500|500,aformat=channel_layouts=stereo[a]",
        "-map",
        "0:v",
        "-map",
        "[a]",
        "-frames:v",
        &n,
        "-shortest",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        &g,
        "-keyint_min",
        &g,
        "-sc_threshold",
        "0",
        "-bf",
        "2",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        path.to_str().unwrap(),
    ]);
    path
}
