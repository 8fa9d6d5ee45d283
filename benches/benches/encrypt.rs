//! What common encryption costs in packaging: the 1080p fixture's renditions (1080p, 720p and
//! 360p H.264 and its AAC track, made by the ffmpeg CLI) packaged clear, under `cbcs` and under
//! `cenc`, best of `RUNGS_BENCH_RUNS` (default 3) each, thumbnails off; the ratio must stay
//! under 1.15. Then the encryptor alone on every segment of the packaged title, in MB/s,
//! against `openssl speed -evp aes-128-ctr` and `aes-128-cbc` (16 KiB blocks) on this machine
//! in the same run.
//!
//! Run with `cargo bench -p benches --bench encrypt`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use fixtures::Fixture;
use packager::audio::AudioSource;
use packager::cenc::{ContentKey, Protector, Scheme};
use packager::drm::KeyPolicy;
use packager::package::{Encryption, Settings, Sources, VideoSource, package};
use packager::sink::DirSink;

const KEY: &str = "0123456789abcdef0123456789abcdef:00112233445566778899aabbccddeeff";

/// One H.264 rendition of the master at `height`, keyframes every 2 s.
fn rendition(master: &Path, dir: &Path, height: u32) -> PathBuf {
    let path = dir.join(format!("{height}p.mp4"));
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(master)
        .args(["-vf", &format!("scale=-2:{height}"), "-c:v", "libx264"])
        .args(["-preset", "veryfast", "-g", "50", "-keyint_min", "50"])
        .args(["-sc_threshold", "0", "-c:a", "copy"])
        .arg(&path)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// Seconds of the best of `runs` packagings.
fn best(runs: usize, sources: &Sources, settings: &Settings, dir: &Path, name: &str) -> f64 {
    (0..runs)
        .map(|i| {
            let out = dir.join(format!("{name}-{i}"));
            let started = Instant::now();
            package(
                sources,
                settings,
                &dir.join(format!("work-{name}-{i}")),
                &DirSink::new(&out),
            )
            .unwrap();
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// `openssl speed`'s rate for 16 KiB blocks of `cipher`, MB/s.
fn openssl(cipher: &str) -> Option<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-evp", cipher, "-bytes", "16384", "-seconds", "2"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The last line: `AES-128-CTR  123456.78k` (thousands of bytes per second).
    let line = text
        .lines()
        .rev()
        .find(|l| l.to_lowercase().starts_with(cipher))?;
    let k: f64 = line
        .split_whitespace()
        .last()?
        .trim_end_matches('k')
        .parse()
        .ok()?;
    Some(k * 1000.0 / 1e6)
}

fn main() {
    let runs: usize = std::env::var("RUNGS_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let master = fixtures::ensure(Fixture::MultiShot1080p).unwrap().path;
    let dir = tempfile::tempdir().unwrap();
    let videos: Vec<VideoSource> = [1080, 720, 360]
        .iter()
        .map(|&h| VideoSource {
            id: format!("{h}p"),
            path: rendition(&master, dir.path(), h),
        })
        .collect();
    let sources = Sources {
        audio: vec![AudioSource {
            path: videos[0].path.clone(),
            stream: 1,
            language: "en".into(),
            origin_seconds: 0.0,
            role: packager::presentation::Role::Main,
        }],
        videos,
        ..Default::default()
    };
    let clear = Settings::default();
    let with = |scheme| Settings {
        encryption: Some(Encryption {
            scheme,
            keys: KeyPolicy::parse(&[KEY.to_owned()]).unwrap(),
            clear_lead: 0.0,
            pssh: Default::default(),
        }),
        ..clear.clone()
    };
    let t_clear = best(runs, &sources, &clear, dir.path(), "clear");
    let t_cbcs = best(runs, &sources, &with(Scheme::Cbcs), dir.path(), "cbcs");
    let t_cenc = best(runs, &sources, &with(Scheme::Cenc), dir.path(), "cenc");
    println!(
        "packaging 3 renditions and AAC of {} (best of {runs}):",
        master.display()
    );
    println!(
        "  clear {t_clear:.3} s, cbcs {t_cbcs:.3} s ({:.3}x), cenc {t_cenc:.3} s ({:.3}x)",
        t_cbcs / t_clear,
        t_cenc / t_clear
    );
    // The encryptor alone, on the clear title's segments.
    let key = ContentKey {
        kid: packager::drm::hex16(&KEY[..32]).unwrap(),
        key: packager::drm::hex16(&KEY[33..]).unwrap(),
    };
    let title = dir.path().join("clear-0");
    let mut tracks: Vec<PathBuf> = ["video/1080p", "video/720p", "video/360p", "audio/en"]
        .iter()
        .map(|t| title.join(t))
        .collect();
    tracks.retain(|t| t.is_dir());
    for scheme in [Scheme::Cbcs, Scheme::Cenc] {
        let mut bytes = 0usize;
        let mut seconds = 0.0;
        for t in &tracks {
            let init = std::fs::read(t.join("init.mp4")).unwrap();
            let p = Protector::new(&init, scheme, &key, &t.display().to_string()).unwrap();
            let mut names: Vec<PathBuf> = std::fs::read_dir(t)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "m4s"))
                .collect();
            names.sort();
            for (i, n) in names.iter().enumerate() {
                let seg = std::fs::read(n).unwrap();
                let started = Instant::now();
                let out = p.segment(&seg, i + 1, false).unwrap();
                seconds += started.elapsed().as_secs_f64();
                bytes += seg.len();
                assert!(out.len() >= seg.len());
            }
        }
        let cipher = match scheme {
            Scheme::Cbcs => "aes-128-cbc",
            Scheme::Cenc => "aes-128-ctr",
        };
        let ours = bytes as f64 / 1e6 / seconds;
        match openssl(cipher) {
            Some(reference) => println!(
                "  {scheme} segments: {:.1} MB in {seconds:.3} s = {ours:.0} MB/s; openssl speed -evp {cipher}: {reference:.0} MB/s (all bytes encrypted; cbcs encrypts about a tenth of the video's)",
                bytes as f64 / 1e6
            ),
            None => println!("  {scheme} segments: {ours:.0} MB/s (openssl speed did not run)"),
        }
    }
    let worst = (t_cbcs / t_clear).max(t_cenc / t_clear);
    assert!(
        worst <= 1.15,
        "encryption makes packaging {worst:.3}x slower (goal 1.15x)"
    );
}
