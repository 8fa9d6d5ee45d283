//! Per-title and shot-level ladders against Apple's fixed ladder and against an exhaustive
//! grid, in the same run.
//!
//! Every side encodes with x264 at the same final preset (`medium`, `RUNGS_BENCH_PRESET`
//! changes it) through `rungs encode`, and every rung is measured with the `vmaf` crate against
//! the master (mean VMAF, model v0.6.1). The reference is the exhaustive grid: 7 CRFs (16 to 46
//! in steps of 5) at every candidate resolution, with no VBV cap, encoded twice: by rungs,
//! chunked like the per-title and shot ladders, and by the ffmpeg CLI as one whole-file encode
//! each (the same scaler, x264 with its own scene-cut keyframes and a keyframe at least every
//! 4 s, one thread like a rungs worker). Each grid's upper convex hull in (bit rate, VMAF) is
//! the best ladder those settings give.
//!
//! It prints, per master:
//! - (a) per-title against Apple's fixed ladder: BD-rate (goal <= -15%), with Apple's rungs
//!   at the table's bit rates (whole-file two-pass encodes by the ffmpeg CLI), and at Apple's
//!   sizes with rungs' `fixed` rate control (CRF 23 capped at the table's rates, which already
//!   adapts to easy content);
//! - (b) per-title against the chunked grid hull: BD-rate (goal within 2%), and the probes'
//!   encode CPU (fast probes plus final-preset anchors) over the grid's (goal <= 25%);
//! - (c) shot-level against per-title, chunked the same way: BD-rate (goal <= -4%);
//! - (d) the chunking overhead: the chunked grid hull against the whole-file grid hull, and the
//!   shot-level ladder against the whole-file hull (goal <= 0%), with default chunks and with
//!   shots merged into chunks of at least 4 s (where each shot inside a chunk gets its own
//!   setting as an x264 zone);
//! - the pooling lever: shot-level ladders pooling the mean and the harmonic mean, both in
//!   harmonic-mean VMAF against per-title.
//!
//! Masters: the multi-shot fixture (640×360, 8 shots) and the real clip
//! `../shared/media/car-detection.mp4` (768×432; `RUNGS_MEDIA` moves the folder; skipped with a
//! message when missing).
//! One run: the outputs are deterministic, only CPU times vary. `RUNGS_BENCH_ONLY=TEXT` runs
//! only the masters whose label holds TEXT (`multi-shot`, `car-detection`).
//!
//! Run with `cargo bench -p benches --bench ladder`.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use fixtures::Fixture;
use ladders::bd;
use ladders::title::LadderRules;
use pipeline::encode::{
    self, DEFAULT_SEGMENT_SECONDS, EncodeOptions, EncodeReport, LadderChoice, Rung, VmafSummary,
};
use pipeline::ingest::{IngestOptions, ShotOptions};
use pipeline::shots::ChunkRules;
use workers::encode::{Codec, RateControl};

const CHILD: &str = "RUNGS_BENCH_LADDER_CHILD";
const GRID_CRFS: [f32; 7] = [16.0, 21.0, 26.0, 31.0, 36.0, 41.0, 46.0];

fn preset() -> String {
    std::env::var("RUNGS_BENCH_PRESET").unwrap_or_else(|_| "medium".into())
}

fn main() {
    if let benches::Mode::List | benches::Mode::Child(_) = benches::mode("ladder", CHILD, 1) {
        return;
    }
    let fixture = fixtures::ensure(Fixture::MultiShot).expect("the multi-shot master");
    let mut masters = vec![(
        "multi-shot fixture, 640x360".to_owned(),
        fixture.path,
        LadderRules::default(),
    )];
    // The real clip is a fixed camera: easy content, whose hull reaches VMAF 95 below 300
    // kbit/s, so the default floor of 145 kbit/s leaves room for one rung. A lower floor gives
    // it a ladder to compare.
    match fixtures::real_clip("car-detection.mp4") {
        Some(real) => masters.push((
            "car-detection.mp4 (real), 768x432".to_owned(),
            real,
            LadderRules {
                min_kbps: 30.0,
                ..LadderRules::default()
            },
        )),
        None => println!("skipping the real clip: ../shared/media is missing (set RUNGS_MEDIA)"),
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    // RUNGS_BENCH_ONLY=TEXT runs only the masters whose label holds TEXT.
    let only = std::env::var("RUNGS_BENCH_ONLY").unwrap_or_default();
    for (label, master, rules) in masters {
        if label.contains(&only) {
            study(&label, &master, &rules, dir.path());
        }
    }
}

/// Chunking: the default rules, or shots merged into chunks of at least `min` seconds.
fn chunking(min: Option<f64>) -> IngestOptions {
    let mut shots = ShotOptions::default();
    if let Some(min) = min {
        shots.rules = ChunkRules {
            min_seconds: min,
            max_seconds: (2.0 * min).max(10.0),
        };
    }
    IngestOptions {
        shots: Some(shots),
        ..Default::default()
    }
}

/// Runs one `rungs encode` job in `dir/name`.
fn job(
    (master, rules): (&Path, &LadderRules),
    dir: &Path,
    name: &str,
    ladder: LadderChoice,
    ingest: IngestOptions,
    probe_preset: Option<String>,
) -> EncodeReport {
    let out = dir.join(name);
    let options = EncodeOptions {
        codec: Codec::H264,
        ladder,
        preset: Some(preset()),
        ingest,
        probe_preset,
        rules: rules.clone(),
        // The renditions are what is compared; packaging them adds nothing here.
        package: None,
        ..Default::default()
    };
    encode::run(master, &out, &options, &AtomicBool::new(false), &|_| {})
        .unwrap_or_else(|e| panic!("the {name} job failed: {e}"))
}

/// `(kbps, pooled VMAF)` of every rung.
fn rd_pooled(report: &EncodeReport, pool: fn(&VmafSummary) -> f64) -> Vec<(f64, f64)> {
    report
        .rungs
        .iter()
        .filter_map(|r| r.vmaf.as_ref().map(|v| (r.average_kbps, pool(v))))
        .collect()
}

/// `(kbps, mean VMAF)` of every rung.
fn rd(report: &EncodeReport) -> Vec<(f64, f64)> {
    rd_pooled(report, |v| v.mean)
}

/// `(kbps, harmonic-mean VMAF)` of every rung.
fn rd_harmonic(report: &EncodeReport) -> Vec<(f64, f64)> {
    rd_pooled(report, |v| v.harmonic_mean)
}

/// The upper convex hull of a report's rungs (the grid's points).
fn hull(report: &EncodeReport) -> Vec<(f64, f64)> {
    upper(&rd(report))
}

fn upper(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    ladders::hull::upper(points)
        .into_iter()
        .map(|i| points[i])
        .collect()
}

/// One whole-file encode by the ffmpeg CLI at `w`×`h` with x264 at the bench's preset and the
/// rate control in `rate` (CRF, or `-b:v` with VBV in two passes), scored with the `vmaf`
/// crate: `(kbps, mean VMAF)` and the encode's CPU seconds.
fn ffmpeg_encode(
    master: &Path,
    (w, h): (u32, u32),
    rate: &[String],
    keyint: u32,
    out: &Path,
) -> ((f64, f64), f64) {
    let two_pass = rate.iter().any(|a| a == "-b:v");
    let passes: &[Option<&str>] = if two_pass {
        &[Some("1"), Some("2")]
    } else {
        &[None]
    };
    let log = out.with_extension("passlog");
    let mut cpu = 0.0;
    for pass in passes {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-v", "error", "-y", "-i"])
            .arg(master)
            .args(["-an", "-vf"])
            .arg(format!("scale={w}:{h}:flags=lanczos+accurate_rnd+bitexact"))
            .args(["-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset"])
            .arg(preset())
            .args(rate)
            .args(["-g", &keyint.to_string(), "-threads", "1"]);
        match pass {
            Some(p) => {
                cmd.args(["-pass", p, "-passlogfile"]).arg(&log);
                if *p == "1" {
                    cmd.args(["-f", "null", "/dev/null"]);
                } else {
                    cmd.arg(out);
                }
            }
            None => {
                cmd.arg(out);
            }
        }
        cpu += benches::measure(&mut cmd)
            .expect("the ffmpeg CLI encodes")
            .cpu
            .as_secs_f64();
    }
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=bit_rate", "-of", "csv=p=0"])
        .arg(out)
        .output()
        .expect("ffprobe runs");
    let kbps = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse::<f64>()
        .expect("a bit rate")
        / 1000.0;
    let m = workers::measure::measure(
        master,
        out,
        &workers::measure::MeasureOptions {
            extras: false,
            per_frame: false,
            ..Default::default()
        },
        &mut |_| {},
    )
    .expect("the encode measures");
    ((kbps, m.pooled.vmaf.mean), cpu)
}

/// The grid encoded by the ffmpeg CLI, one whole-file encode per point: `(kbps, mean VMAF)`
/// of every point, and the encodes' CPU seconds.
fn ffmpeg_grid(
    master: &Path,
    sizes: &[(u32, u32)],
    keyint: u32,
    dir: &Path,
) -> (Vec<(f64, f64)>, f64) {
    let mut points = Vec::new();
    let mut cpu = 0.0;
    std::fs::create_dir_all(dir).expect("the bench folder");
    for &(w, h) in sizes {
        for crf in GRID_CRFS {
            let out = dir.join(format!("ffmpeg-{w}x{h}-{crf}.mp4"));
            let rate = ["-crf".to_owned(), crf.to_string()];
            let (point, cost) = ffmpeg_encode(master, (w, h), &rate, keyint, &out);
            points.push(point);
            cpu += cost;
        }
    }
    (points, cpu)
}

/// Apple's ladder as its table states it: each rung at its average bit rate (x264 two-pass,
/// peak at most twice the average), one whole-file encode per rung. The sizes and rates are
/// the ones `rungs encode --ladder fixed` fitted to the master (`fixed`'s VBV caps).
fn ffmpeg_apple(master: &Path, fixed: &EncodeReport, keyint: u32, dir: &Path) -> Vec<(f64, f64)> {
    fixed
        .rungs
        .iter()
        .filter_map(|r| {
            let kbps = r.vbv?.maxrate_kbps;
            let rate = [
                "-b:v".to_owned(),
                format!("{kbps}k"),
                "-maxrate".to_owned(),
                format!("{}k", 2 * kbps),
                "-bufsize".to_owned(),
                format!("{}k", 2 * kbps),
            ];
            let out = dir.join(format!("apple-{}.mp4", r.name));
            Some(ffmpeg_encode(master, (r.width, r.height), &rate, keyint, &out).0)
        })
        .collect()
}

/// How far the rungs are from a hull: for each rung inside the hull's quality range, its bit
/// rate over the rate the hull needs for that quality (on the chord between hull points, which
/// a mix of those two encodes reaches), as the mean log-ratio in percent. Unlike a BD-rate,
/// which interpolates between the rungs, this does not depend on how far apart they are.
fn hull_gap(hull: &[(f64, f64)], rungs: &[(f64, f64)]) -> String {
    let ratios: Vec<f64> = rungs
        .iter()
        .filter_map(|&(k, v)| {
            let w = hull.windows(2).find(|w| w[0].1 <= v && v <= w[1].1)?;
            let t = (v - w[0].1) / (w[1].1 - w[0].1);
            Some((k / (w[0].0 + t * (w[1].0 - w[0].0))).ln())
        })
        .collect();
    if ratios.is_empty() {
        return "n/a (no rung inside the hull's range)".into();
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    format!("{:+.2}% over {} rungs", mean.exp_m1() * 100.0, ratios.len())
}

fn bd_text(anchor: &[(f64, f64)], test: &[(f64, f64)]) -> String {
    match bd::bd_rate(anchor, test) {
        Ok(r) => format!("{r:+.2}%"),
        Err(e) => format!("n/a ({e})"),
    }
}

fn ladder_text(report: &EncodeReport) -> String {
    report
        .rungs
        .iter()
        .map(|r| {
            format!(
                "{}x{} {:.0}k/{:.1}",
                r.width,
                r.height,
                r.average_kbps,
                r.vmaf.map_or(f64::NAN, |v| v.mean)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn study(label: &str, master: &Path, rules: &LadderRules, dir: &Path) {
    let at = (master, rules);
    let sub = dir.join(
        label
            .split(',')
            .next()
            .unwrap_or("master")
            .replace(' ', "-"),
    );
    let started = std::time::Instant::now();
    let apple = job(at, &sub, "apple", LadderChoice::Apple, chunking(None), None);
    let per_title = job(
        at,
        &sub,
        "per-title",
        LadderChoice::PerTitle,
        chunking(None),
        None,
    );
    let shot = job(at, &sub, "shot", LadderChoice::Shot, chunking(None), None);
    let shot_merged = job(
        at,
        &sub,
        "shot-4s",
        LadderChoice::Shot,
        chunking(Some(4.0)),
        None,
    );
    let harmonic_rules = LadderRules {
        pooling: ladders::Pooling::Harmonic,
        ..rules.clone()
    };
    let shot_harmonic = job(
        (master, &harmonic_rules),
        &sub,
        "shot-harmonic",
        LadderChoice::Shot,
        chunking(None),
        None,
    );
    let exact = job(
        at,
        &sub,
        "per-title-final-probes",
        LadderChoice::PerTitle,
        chunking(None),
        Some(preset()),
    );
    let lad = per_title.ladder.as_ref().expect("a per-title report");
    // The candidate resolutions, as the per-title job pooled them.
    let mut sizes: Vec<(u32, u32)> = lad
        .title_points
        .iter()
        .map(|p| (p.width, p.height))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let grid: Vec<Rung> = sizes
        .iter()
        .flat_map(|&(width, height)| {
            GRID_CRFS.iter().map(move |&crf| Rung {
                name: format!("{width}x{height}-crf{crf}"),
                width,
                height,
                rate: RateControl::Crf(crf),
                vbv: None,
            })
        })
        .collect();
    let grid_chunked = job(
        at,
        &sub,
        "grid",
        LadderChoice::Custom(grid),
        chunking(None),
        None,
    );
    let keyint = (DEFAULT_SEGMENT_SECONDS * f64::from(per_title.frame_rate.num)
        / f64::from(per_title.frame_rate.den))
    .round() as u32;
    let (whole_points, whole_cpu) = ffmpeg_grid(master, &sizes, keyint, &sub);
    let apple_rates = ffmpeg_apple(master, &apple, keyint, &sub);
    let (hull_chunked, hull_whole) = (hull(&grid_chunked), upper(&whole_points));
    let probe_cpu = lad.probe_encode_cpu_seconds + lad.anchor_encode_cpu_seconds;
    let grid_cpu = grid_chunked.encode_cpu_seconds;

    println!(
        "\n{label}: {} frames, {} chunks by default, {} with chunks >= 4 s; x264 {}; \
         {} resolutions, grid of {} settings each; rungs from {} kbit/s",
        per_title.frames,
        per_title.chunks,
        shot_merged.chunks,
        preset(),
        sizes.len(),
        GRID_CRFS.len(),
        rules.min_kbps
    );
    for (name, r) in [
        ("Apple fixed", &apple),
        ("per-title", &per_title),
        ("per-title, final-preset probes", &exact),
        ("shot", &shot),
        ("shot, chunks >= 4 s", &shot_merged),
    ] {
        println!("  {name:<31} {}", ladder_text(r));
    }
    println!(
        "  {:<31} {}",
        "grid hull, chunked",
        hull_chunked
            .iter()
            .map(|(k, v)| format!("{k:.0}k/{v:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  {:<31} {}",
        "Apple at its bit rates (CLI)",
        apple_rates
            .iter()
            .map(|(k, v)| format!("{k:.0}k/{v:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "(a) per-title vs Apple's fixed ladder at its bit rates (whole-file two-pass): BD-rate {} \
         (goal <= -15%); vs Apple's sizes at rungs' capped CRF 23 (`--ladder fixed`): {}",
        bd_text(&apple_rates, &rd(&per_title)),
        bd_text(&rd(&apple), &rd(&per_title))
    );
    println!(
        "(b) per-title vs exhaustive grid hull (chunked): BD-rate {} (goal within +2%); rungs' \
         distance in bits to the hull at their quality {}",
        bd_text(&hull_chunked, &rd(&per_title)),
        hull_gap(&hull_chunked, &rd(&per_title))
    );
    println!(
        "    probe encode CPU {:.1} s ({} fast probes {:.1} s + {} anchors at the final preset \
         {:.1} s) vs grid encode CPU {:.1} s: {:.1}% (goal <= 25%); probe scoring {:.1} s more",
        probe_cpu,
        lad.probe_encodes,
        lad.probe_encode_cpu_seconds,
        lad.anchor_encodes,
        lad.anchor_encode_cpu_seconds,
        grid_cpu,
        100.0 * probe_cpu / grid_cpu.max(1e-9),
        lad.probe_score_cpu_seconds + lad.anchor_score_cpu_seconds
    );
    let exact_cpu = exact
        .ladder
        .as_ref()
        .map_or(0.0, |l| l.probe_encode_cpu_seconds);
    println!(
        "    per-title decided on probes at the final preset instead: BD-rate {} vs the grid \
         hull, {} vs fast probes with anchors; probe encode CPU {:.1} s, {:.1}% of the grid's",
        bd_text(&hull_chunked, &rd(&exact)),
        bd_text(&rd(&exact), &rd(&per_title)),
        exact_cpu,
        100.0 * exact_cpu / grid_cpu.max(1e-9)
    );
    for (name, r) in [
        ("per-title", &per_title),
        ("per-title, final-preset probes", &exact),
        ("shot", &shot),
    ] {
        let l = r.ladder.as_ref().expect("a ladder report");
        let worst = |f: &dyn Fn(&encode::DecidedRungReport) -> f64| {
            l.rungs.iter().map(f).fold(0.0f64, |a, b| a.max(b.abs()))
        };
        println!(
            "    {name}: prediction vs final encode, worst |kbps error| {:.1}%, worst |VMAF \
             error| {:.2}",
            100.0 * worst(&|r| r.kbps_error),
            worst(&|r| r.vmaf_error.unwrap_or(0.0))
        );
    }
    println!(
        "(c) shot-level vs per-title, same chunks: BD-rate {} (goal <= -4%)",
        bd_text(&rd(&per_title), &rd(&shot))
    );
    println!(
        "(d) chunking overhead, grid hull chunked (rungs) vs whole file (ffmpeg CLI, {:.0} s of \
         encode CPU against rungs' {:.0} s): BD-rate {}",
        whole_cpu,
        grid_cpu,
        bd_text(&hull_whole, &hull_chunked)
    );
    for (name, r) in [
        ("per-title", &per_title),
        ("shot", &shot),
        ("shot, chunks >= 4 s", &shot_merged),
    ] {
        println!(
            "    {name} vs whole-file grid hull: BD-rate {} (goal for shot: <= 0%)",
            bd_text(&hull_whole, &rd(r))
        );
    }
    println!(
        "    shot, chunks >= 4 s vs per-title: BD-rate {}",
        bd_text(&rd(&per_title), &rd(&shot_merged))
    );
    println!(
        "(pooling) in harmonic-mean VMAF against per-title: shot pooling the mean {}, shot \
         pooling the harmonic mean {}",
        bd_text(&rd_harmonic(&per_title), &rd_harmonic(&shot)),
        bd_text(&rd_harmonic(&per_title), &rd_harmonic(&shot_harmonic))
    );
    println!("  ({:.0} s)", started.elapsed().as_secs_f64());
}
