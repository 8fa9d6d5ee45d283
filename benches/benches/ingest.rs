//! `validate --shots` throughput and memory against `ffmpeg -i MASTER -f null -`.
//!
//! Both run as child processes on the same files in the same run; the bench prints frames per
//! second, the ratio (rungs / ffmpeg; goal >= 0.9) and the peak RSS of each, on the 1080p
//! master and on a copy ten times as long (goal: rungs' RSS grows by at most 10%).
//!
//! The two tools run alternately, several times, and the medians are compared: the wall-time
//! ratio is the throughput goal; the CPU-time ratio says the same with less noise from other
//! load on the machine.
//!
//! Run with `cargo bench -p benches --bench ingest`. `RUNGS_BENCH_RUNS` sets the repetitions
//! (default 5; the long master gets half as many).

use std::path::Path;
use std::process::{Command, Stdio};

use benches::{Cost, measure, median};
use fixtures::Fixture;
use pipeline::ingest::{IngestOptions, ShotOptions, analyze};

const CHILD: &str = "RUNGS_BENCH_INGEST_CHILD";

fn main() {
    let runs = match benches::mode("ingest", CHILD, 5) {
        benches::Mode::Child(path) => return child(Path::new(&path)),
        benches::Mode::List => return,
        benches::Mode::Runs(n) => n,
    };
    let master = fixtures::ensure(Fixture::MultiShot1080p).expect("1080p fixture");
    let frames = master.truth.frames;
    // The memory comparison uses video-only copies, 1x and 10x, made the same way.
    let short = fixtures::looped(Fixture::MultiShot1080p, 1).expect("1x fixture");
    let long = fixtures::looped(Fixture::MultiShot1080p, 10).expect("10x fixture");

    println!("validate --shots vs ffmpeg -f null (decode only), same files, same run");
    println!(
        "{:<34} {:>10} {:>10} {:>8} {:>8} {:>13} {:>13}",
        "master", "rungs fps", "ffmpeg fps", "ratio", "CPU", "rungs RSS", "ffmpeg RSS"
    );
    compare(&master.path, frames, runs);
    let a = compare(&short, frames, runs);
    let b = compare(&long, frames * 10, runs.div_ceil(2));
    let growth = b.0.max_rss_kib as f64 / a.0.max_rss_kib as f64 - 1.0;
    println!(
        "rungs peak RSS: {} KiB on the video, {} KiB on the 10x video: {:+.1}% (goal <= +10%)",
        a.0.max_rss_kib,
        b.0.max_rss_kib,
        growth * 100.0
    );
    let ff_growth = b.1.max_rss_kib as f64 / a.1.max_rss_kib as f64 - 1.0;
    println!("ffmpeg peak RSS for reference: {:+.1}%", ff_growth * 100.0);
    if let Some(real) = fixtures::real_clip("bottle-detection.mp4") {
        compare(&real, 1189, runs);
    }
}

/// Measures both tools on `path`; prints a row; returns (rungs, ffmpeg).
fn compare(path: &Path, frames: u64, runs: usize) -> (Cost, Cost) {
    let exe = std::env::current_exe().expect("own path");
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..runs.max(1) {
        theirs.push(
            measure(
                Command::new("ffmpeg")
                    .args(["-nostdin", "-v", "error", "-i"])
                    .arg(path)
                    .args(["-f", "null", "-"])
                    .stdout(Stdio::null()),
            )
            .expect("ffmpeg runs"),
        );
        ours.push(
            measure(Command::new(&exe).env(CHILD, path).stdout(Stdio::null())).expect("rungs runs"),
        );
    }
    let (o, t) = (median(&ours), median(&theirs));
    let fps = |c: &Cost| frames as f64 / c.wall.as_secs_f64();
    println!(
        "{:<34} {:>10.1} {:>10.1} {:>7.2}x {:>7.2}x {:>9} KiB {:>9} KiB",
        path.file_name().unwrap_or_default().to_string_lossy(),
        fps(&o),
        fps(&t),
        fps(&o) / fps(&t),
        t.cpu.as_secs_f64() / o.cpu.as_secs_f64(),
        o.max_rss_kib,
        t.max_rss_kib
    );
    (o, t)
}

/// The measured work: what `rungs validate --shots` does, JSON included.
fn child(path: &Path) {
    let options = IngestOptions {
        shots: Some(ShotOptions::default()),
        ..Default::default()
    };
    let report = analyze(path, &options, &mut |_| {}).expect("ingest runs");
    assert!(report.accepted, "the benchmark master must be accepted");
    serde_json::to_writer(std::io::sink(), &report).expect("serialises");
}
