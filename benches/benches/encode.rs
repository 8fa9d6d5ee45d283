//! `rungs encode --ladder fixed` against the ffmpeg CLI encoding the same rungs one after
//! another with the same settings, and 2 workers against 1, in the same run.
//!
//! Two masters of the same 720p multi-shot content: the H.264 fixture (long GOP, a keyframe
//! every 10 s, so chunk starts cost decoding from the keyframe before them) and a ProRes 422
//! mezzanine made from it (every frame a keyframe, the usual shape of a master). The ladder is
//! Apple's H.264 ladder fitted to 720p (six rungs), CRF 23 capped by each rung's VBV, x264
//! preset `medium` (`RUNGS_BENCH_PRESET` changes it), one encoder thread, keyframes every 4 s
//! with no scene-cut keyframes. A worker is one core: the ffmpeg CLI and rungs with 1 worker
//! run pinned to one core (`taskset`, threads and children included), rungs with 2 workers to
//! two. The ffmpeg
//! side scales with `lanczos+accurate_rnd` like rungs, and decodes with its default threads, as
//! rungs does with one worker. The rungs side includes its validation and shot-detection pass,
//! and skips the VMAF report (the ffmpeg CLI measures nothing). Medians of
//! `RUNGS_BENCH_RUNS` runs (default 2).
//!
//! Run with `cargo bench -p benches --bench encode`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;

use benches::{Cost, measure, median};
use fixtures::Fixture;
use pipeline::encode::{self, EncodeOptions, LadderChoice};
use workers::encode::{Codec, RateControl};

const CHILD: &str = "RUNGS_BENCH_ENCODE_CHILD";

fn preset() -> String {
    std::env::var("RUNGS_BENCH_PRESET").unwrap_or_else(|_| "medium".into())
}

fn main() {
    let runs = match benches::mode("encode", CHILD, 2) {
        benches::Mode::Child(spec) => return child(&spec.to_string_lossy()),
        benches::Mode::List => return,
        benches::Mode::Runs(n) => n,
    };
    let fixture = fixtures::ensure(Fixture::MultiShot720p).expect("the 720p master");
    let frames = fixture.truth.frames;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let prores = dir.path().join("mezzanine-prores.mov");
    let made = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(&fixture.path)
        .args(["-c:v", "prores_ks", "-profile:v", "2", "-c:a", "copy"])
        .arg(&prores)
        .status()
        .expect("ffmpeg runs");
    assert!(made.success(), "making the ProRes mezzanine failed");
    let rungs = encode::ladder::apple(Codec::H264, 1280, 720, 16.0 / 9.0);
    let keyint = (4.0 * 25.0) as u32;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = benches::can_pin();
    println!(
        "rungs encode --ladder fixed (H.264, {} rungs up to 720p, preset {}) on {frames} frames, \
         {runs} run(s) each, medians, {cores} cores{}",
        rungs.len(),
        preset(),
        if pin {
            ", one core per worker (taskset)"
        } else {
            ""
        },
    );
    println!(
        "{:<44} {:>9} {:>10} {:>9}",
        "", "wall s", "rung-fps", "CPU s"
    );
    for (label, master) in [
        ("H.264 master (long GOP)", fixture.path.as_path()),
        ("ProRes 422 mezzanine (intra)", prores.as_path()),
    ] {
        let mut ffmpeg = Vec::new();
        let mut one = Vec::new();
        let mut two = Vec::new();
        for run in 0..runs.max(1) {
            ffmpeg.push(ffmpeg_ladder(pin, master, &rungs, keyint, dir.path()));
            for (workers, into) in [(1usize, &mut one), (2, &mut two)] {
                let out = dir.path().join(format!("rungs-{workers}-{run}"));
                let _ = std::fs::remove_dir_all(&out);
                let spec = format!("{}\n{}\n{workers}", master.display(), out.display());
                let mut cmd = Command::new(std::env::current_exe().expect("own path"));
                cmd.env(CHILD, &spec).stdout(Stdio::null());
                into.push(
                    measure(&mut benches::pinned(pin, workers, cmd)).expect("rungs encode runs"),
                );
            }
        }
        let (f, a, b) = (median(&ffmpeg), median(&one), median(&two));
        let fps = |c: &Cost| frames as f64 * rungs.len() as f64 / c.wall.as_secs_f64();
        println!("{label}");
        for (name, c) in [
            ("  ffmpeg CLI, rungs one after another", &f),
            ("  rungs encode, 1 worker", &a),
            ("  rungs encode, 2 workers", &b),
        ] {
            println!(
                "{name:<44} {:>9.2} {:>10.1} {:>9.2}",
                c.wall.as_secs_f64(),
                fps(c),
                c.cpu.as_secs_f64()
            );
        }
        println!(
            "  wall ratio rungs (1 worker) / ffmpeg CLI: {:.3} (goal <= 1.05)",
            a.wall.as_secs_f64() / f.wall.as_secs_f64()
        );
        println!(
            "  speed-up 2 workers / 1 worker: {:.2}x (goal >= 1.8)",
            a.wall.as_secs_f64() / b.wall.as_secs_f64()
        );
    }
}

/// Encodes every rung with the ffmpeg CLI, one after another, with rungs' settings.
fn ffmpeg_ladder(
    pin: bool,
    master: &Path,
    rungs: &[encode::Rung],
    keyint: u32,
    dir: &Path,
) -> Cost {
    let script: Vec<String> = rungs
        .iter()
        .map(|r| {
            let crf = match r.rate {
                RateControl::Crf(q) => q.to_string(),
                RateControl::Qp(q) => q.to_string(),
            };
            let vbv = r.vbv.expect("the H.264 ladder has VBV caps");
            format!(
                "ffmpeg -nostdin -v error -y -i '{}' -an -vf scale={}:{}:flags=lanczos+accurate_rnd \
                 -pix_fmt yuv420p -c:v libx264 -preset {} -crf {crf} -maxrate {}k -bufsize {}k -g {keyint} \
                 -forced-idr 1 -x264-params scenecut=0:open-gop=0:vbv-init=0.9:vbv-end=0.9 -threads 1 '{}'",
                master.display(),
                r.width,
                r.height,
                preset(),
                vbv.maxrate_kbps,
                vbv.bufsize_kbit,
                dir.join(format!("ffmpeg-{}.mp4", r.name)).display()
            )
        })
        .collect();
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(script.join(" && "));
    measure(&mut benches::pinned(pin, 1, sh)).expect("ffmpeg runs")
}

fn child(spec: &str) {
    let mut lines = spec.lines();
    let (master, out, workers) = (
        lines.next().expect("master"),
        lines.next().expect("output"),
        lines.next().and_then(|w| w.parse().ok()).expect("workers"),
    );
    let options = EncodeOptions {
        codecs: pipeline::encode::Codecs::one(Codec::H264),
        ladder: LadderChoice::Apple,
        preset: Some(preset()),
        workers,
        measure: false,
        // The encode's speed is measured, not packaging's.
        package: None,
        ..Default::default()
    };
    encode::run(
        Path::new(master),
        Path::new(out),
        &options,
        &AtomicBool::new(false),
        &|_| {},
    )
    .expect("the encode job");
}
