//! Per-title and shot-level ladders on the real-content set, against Apple's fixed ladder and
//! against an exhaustive grid, with the cost of the decision against the ffmpeg CLI, in the
//! same run.
//!
//! Every clip of `fixtures::realset::SET` (fetched on first use; `RUNGS_BENCH_ONLY=TEXT` keeps
//! the clips whose name holds TEXT) is encoded with x264 at the same final preset (`medium`,
//! `RUNGS_BENCH_PRESET` changes it), and every rung is measured with the `vmaf` crate against
//! the master (mean VMAF, model v0.6.1):
//! - Apple's fixed H.264 ladder at its table's bit rates up to 4.5 Mbit/s, sizes capped at the
//!   master's (whole-file two-pass encodes by the ffmpeg CLI, peak at most twice the average);
//!   `--ladder fixed` (Apple's sizes, CRF capped at the table's rates) is shown beside it;
//! - the exhaustive grid: 7 CRFs (16 to 46 in steps of 5) at every candidate resolution, no VBV
//!   cap, chunked like the ladders; its upper convex hull is the best ladder those settings
//!   give, the reachable limit;
//! - `rungs encode --ladder per-title`, and the default `rungs encode` (shot-level, VMAF
//!   report, packaging) run as a child process from nothing and timed;
//! - the cost reference: the ffmpeg CLI encoding the default run's rungs (its sizes, per-title
//!   CRFs and VBV caps), one after another, with as many threads as rungs has workers.
//!
//! Per clip it prints the BD-rates (VMAF against log bit rate through the rungs, as players
//! switch between them) of per-title and shot-level against the fixed ladder and against the
//! grid hull, shot-level against per-title, the rungs' bit-rate steps, the worst drop from a
//! rung's mean VMAF to its worst frame, the default run's wall time over the CLI's, and the CPU
//! of every stage; then a summary line with the worst clip for each figure.
//!
//! The grid, the fixed ladder and the per-title jobs keep their work under
//! `RUNGS_BENCH_DIR` (default `target/bench-ladder`), so a later run reuses what did not
//! change; the timed run always starts from nothing.
//!
//! Run with `cargo bench -p benches --bench ladder`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;

use fixtures::realset::{self, RealClip};
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

/// The probes' preset: rungs' default unless `RUNGS_BENCH_PROBE_PRESET` names one.
fn probe_preset() -> Option<String> {
    std::env::var("RUNGS_BENCH_PROBE_PRESET").ok()
}

/// Frames per scored probe frame: rungs' default unless `RUNGS_BENCH_PROBE_SAMPLING` says.
fn probe_sampling() -> u64 {
    std::env::var("RUNGS_BENCH_PROBE_SAMPLING")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(encode::DEFAULT_PROBE_SAMPLING)
}

/// The ladder rules: rungs' defaults, with `RUNGS_BENCH_SIZE_STEP` as the candidate sizes'
/// pixel step when set.
fn rules() -> LadderRules {
    let mut r = LadderRules::default();
    if let Some(s) = std::env::var("RUNGS_BENCH_SIZE_STEP")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        r.size_step = s;
    }
    r
}

/// Chunking: rungs' default, or shots merged into chunks of at least `RUNGS_BENCH_MIN_CHUNK`
/// seconds.
fn ingest() -> IngestOptions {
    let mut shots = ShotOptions::default();
    if let Some(min) = std::env::var("RUNGS_BENCH_MIN_CHUNK")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
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

fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() {
    match benches::mode("ladder", CHILD, 1) {
        benches::Mode::List => return,
        benches::Mode::Child(spec) => return child(&spec.to_string_lossy()),
        benches::Mode::Runs(_) => {}
    }
    let dir = std::env::var_os("RUNGS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from("target"), PathBuf::from)
                .join("bench-ladder")
        });
    let only = std::env::var("RUNGS_BENCH_ONLY").unwrap_or_default();
    let mut rows = Vec::new();
    for clip in realset::SET.iter().filter(|c| c.name.contains(&only)) {
        match realset::ensure(clip) {
            Ok(master) => rows.push(study(clip, &master.path, &dir.join(clip.name))),
            Err(e) => println!("skipping {}: {e}", clip.name),
        }
    }
    summary(&rows);
}

/// The default `rungs encode`: shot-level, VMAF report, packaging.
fn default_options() -> EncodeOptions {
    EncodeOptions {
        codecs: pipeline::encode::Codecs::one(Codec::H264),
        ladder: LadderChoice::Shot,
        preset: Some(preset()),
        probe_preset: probe_preset(),
        probe_sampling: probe_sampling(),
        ingest: ingest(),
        rules: rules(),
        ..Default::default()
    }
}

/// The measured child: the default `rungs encode` from nothing.
fn child(spec: &str) {
    let mut lines = spec.lines();
    let (master, out) = (lines.next().expect("master"), lines.next().expect("output"));
    encode::run(
        Path::new(master),
        Path::new(out),
        &default_options(),
        &AtomicBool::new(false),
        &|_| {},
    )
    .expect("the default encode");
}

/// Runs one `rungs encode` job in `dir/name` (resuming what is there), without packaging.
fn job(master: &Path, dir: &Path, name: &str, ladder: LadderChoice) -> EncodeReport {
    job_with(master, dir, name, ladder, rules())
}

/// [`job`] with other ladder rules.
fn job_with(
    master: &Path,
    dir: &Path,
    name: &str,
    ladder: LadderChoice,
    rules: LadderRules,
) -> EncodeReport {
    let out = dir.join(name);
    let options = EncodeOptions {
        codecs: pipeline::encode::Codecs::one(Codec::H264),
        ladder,
        preset: Some(preset()),
        probe_preset: probe_preset(),
        probe_sampling: probe_sampling(),
        ingest: ingest(),
        rules,
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
            psnr: false,
            ssim: false,
            per_frame: false,
            ..Default::default()
        },
        &mut |_| {},
    )
    .expect("the encode measures");
    ((kbps, m.pooled.vmaf.mean), cpu)
}

/// Apple's H.264 ladder as its table states it, for a `width`×`height` master: every row up to
/// 4.5 Mbit/s (Apple's top 720p rung) at its own average bit rate, its size capped at the
/// master's (a small master still gets the table's rates as rungs), each a whole-file two-pass
/// x264 encode by the ffmpeg CLI with the peak at most twice the average.
fn ffmpeg_fixed(
    master: &Path,
    (width, height): (u32, u32),
    keyint: u32,
    dir: &Path,
) -> Vec<(f64, f64)> {
    let aspect = f64::from(width) / f64::from(height);
    encode::ladder::apple(Codec::H264, 3840, 2160, aspect)
        .iter()
        .filter_map(|r| {
            let kbps = r.vbv?.maxrate_kbps;
            if kbps > 4500 {
                return None;
            }
            let (w, h) = if r.width > width || r.height > height {
                (width, height)
            } else {
                (r.width, r.height)
            };
            let rate = [
                "-b:v".to_owned(),
                format!("{kbps}k"),
                "-maxrate".to_owned(),
                format!("{}k", 2 * kbps),
                "-bufsize".to_owned(),
                format!("{}k", 2 * kbps),
            ];
            let out = dir.join(format!("fixed-{w}x{h}-{kbps}k.mp4"));
            Some(ffmpeg_encode(master, (w, h), &rate, keyint, &out).0)
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

/// One clip's figures.
struct Row {
    clip: &'static str,
    title_vs_fixed: Option<f64>,
    title_vs_grid: Option<f64>,
    shot_vs_fixed: Option<f64>,
    shot_vs_grid: Option<f64>,
    shot_vs_title: Option<f64>,
    grid_vs_fixed: Option<f64>,
    widest_step: f64,
    narrowest_step: f64,
    worst_drop: f64,
    collapses: usize,
    /// Of those, rungs whose worst frame the grid encode of equal quality does not lose.
    own_collapses: usize,
    wall_ratio: f64,
}

fn bd_opt(anchor: &[(f64, f64)], test: &[(f64, f64)]) -> Option<f64> {
    bd::bd_rate(anchor, test).ok()
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_owned(), |v| format!("{v:+.1}%"))
}

/// Bit-rate steps of a ladder's rungs.
fn steps(report: &EncodeReport) -> Vec<f64> {
    report
        .rungs
        .windows(2)
        .map(|w| w[1].average_kbps / w[0].average_kbps)
        .collect()
}

/// The ffmpeg CLI encoding `report`'s rungs (sizes, per-title CRFs, VBV caps) one after
/// another with `threads` threads each: the cost of a ladder known in advance.
fn ffmpeg_same_rungs(
    master: &Path,
    report: &EncodeReport,
    keyint: u32,
    dir: &Path,
) -> benches::Cost {
    let lad = report.ladder.as_ref().expect("a ladder report");
    let script: Vec<String> = lad
        .rungs
        .iter()
        .map(|r| {
            let maxrate = r.maxrate_kbps.round().max(1.0);
            format!(
                "ffmpeg -nostdin -v error -y -i '{}' -an -vf scale={}:{}:flags=lanczos+accurate_rnd \
                 -pix_fmt yuv420p -c:v libx264 -preset {} -crf {} -maxrate {maxrate}k -bufsize {}k \
                 -g {keyint} -threads {} '{}'",
                master.display(),
                r.width,
                r.height,
                preset(),
                r.title_crf,
                2.0 * maxrate,
                workers(),
                dir.join(format!("cli-{}.mp4", r.name)).display()
            )
        })
        .collect();
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(script.join(" && "));
    benches::measure(&mut sh).expect("the ffmpeg CLI encodes")
}

/// The default run, timed from nothing as a child process (`RUNGS_BENCH_UNTIMED` resumes it
/// instead, for quick studies of the decision), with the ffmpeg CLI encoding its rungs: its
/// report, both costs when timed, its stages as the timed run saw them, the keyframe interval.
#[allow(clippy::type_complexity)]
fn default_run(
    master: &Path,
    dir: &Path,
) -> (
    EncodeReport,
    Option<(benches::Cost, benches::Cost)>,
    Option<serde_json::Value>,
    u32,
) {
    let timed = dir.join("default");
    let untimed = std::env::var_os("RUNGS_BENCH_UNTIMED").is_some();
    let mut rungs_cost = None;
    if !untimed {
        let _ = std::fs::remove_dir_all(&timed);
        let mut cmd = Command::new(std::env::current_exe().expect("own path"));
        cmd.env(CHILD, format!("{}\n{}", master.display(), timed.display()))
            .stdout(Stdio::null());
        rungs_cost = Some(benches::measure(&mut cmd).expect("the default encode runs"));
    }
    // The stages as the timed run saw them (a resumed run times only its own stages).
    let timed_stages = std::fs::read(timed.join("report.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map(|r| r["stages"].clone());
    // The same job again: everything is in its store, so this only reads its report.
    let shot = encode::run(
        master,
        &timed,
        &default_options(),
        &AtomicBool::new(false),
        &|_| {},
    )
    .expect("the default run's report");
    let keyint = (DEFAULT_SEGMENT_SECONDS * f64::from(shot.frame_rate.num)
        / f64::from(shot.frame_rate.den))
    .round() as u32;
    let costs = rungs_cost.map(|r| (r, ffmpeg_same_rungs(master, &shot, keyint, dir)));
    (shot, costs, timed_stages, keyint)
}

/// The exhaustive grid, at every resolution of a 1.5x pixel step from 234p to the master
/// whatever sizes rungs probes: the master's size, the grid's sizes and its report.
#[allow(clippy::type_complexity)]
fn grid_job(
    clip: &RealClip,
    master: &Path,
    dir: &Path,
) -> ((u32, u32), Vec<(u32, u32)>, EncodeReport) {
    let master_geometry = realset::ensure(clip)
        .map(|g| (g.truth.width, g.truth.height))
        .expect("the master's size");
    let mut sizes: Vec<(u32, u32)> = ladders::title::candidate_sizes(
        master_geometry.0,
        master_geometry.1,
        f64::from(master_geometry.0) / f64::from(master_geometry.1),
        1.5,
    )
    .into_iter()
    .map(|s| (s.width, s.height))
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
    let grid_report = job(master, dir, "grid", LadderChoice::Custom(grid));
    (master_geometry, sizes, grid_report)
}

/// A rung's drop from its mean VMAF to its worst frame, the best grid encode's score at that
/// frame, and the drop there of the grid encode of equal quality.
type Drop = (f64, f64, Option<f64>);

/// For every shot-level rung: the drop from its mean VMAF to its worst frame, what the best
/// encode of the grid (the highest mean) scores at that frame, and how far the grid encode of
/// the rung's size nearest to it in mean VMAF drops there. Then two counts of rungs that drop
/// more than 15 points: where the best encode does not score under the rung's mean minus 15 at
/// that frame, and of those, where the grid encode of equal quality does not drop 15 there
/// either (a frame that every encode of that quality loses, such as the first frame, whose
/// VMAF has no motion term, is the master's and the model's, not the decision's).
fn frame_drops(grid_report: &EncodeReport, shot: &EncodeReport) -> (Vec<Drop>, usize, usize) {
    let mean = |r: &encode::RungReport| r.vmaf.map_or(0.0, |v| v.mean);
    let best = grid_report
        .rungs
        .iter()
        .filter(|r| r.per_frame_vmaf.is_some())
        .max_by(|a, b| mean(a).total_cmp(&mean(b)))
        .and_then(|r| r.per_frame_vmaf.clone())
        .unwrap_or_default();
    let drops: Vec<Drop> = shot
        .rungs
        .iter()
        .filter_map(|r| {
            let (v, frames) = (r.vmaf?, r.per_frame_vmaf.as_ref()?);
            let (at, _) = frames
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))?;
            let equal = grid_report
                .rungs
                .iter()
                .filter(|g| (g.width, g.height) == (r.width, r.height))
                .filter(|g| g.per_frame_vmaf.is_some())
                .min_by(|a, b| {
                    (mean(a) - v.mean)
                        .abs()
                        .total_cmp(&(mean(b) - v.mean).abs())
                })
                .and_then(|g| Some(mean(g) - g.per_frame_vmaf.as_ref()?.get(at)?));
            Some((
                v.mean - v.min,
                best.get(at).copied().unwrap_or(100.0),
                equal,
            ))
        })
        .collect();
    // Drops over 15 points where the best encode of the master scores well at that frame.
    let over = |(drop, best_there, _): &Drop, r: &encode::RungReport| {
        *drop > 15.0 && r.vmaf.is_some_and(|v| *best_there > v.mean - 15.0)
    };
    let collapses = drops
        .iter()
        .zip(&shot.rungs)
        .filter(|(d, r)| over(d, r))
        .count();
    let own = drops
        .iter()
        .zip(&shot.rungs)
        .filter(|(d, r)| over(d, r) && d.2.is_none_or(|e| e <= 15.0))
        .count();
    (drops, collapses, own)
}

/// How well the (corrected) probes predicted each resolution's final-preset curve: the BD-rate
/// of the predicted curve against the grid's encodes at that size (resolutions mispredicted
/// unevenly are picked wrongly); and each ladder's prediction against its final encodes.
fn print_predictions(
    sizes: &[(u32, u32)],
    grid_report: &EncodeReport,
    per_title: &EncodeReport,
    shot: &EncodeReport,
) {
    let predicted = |report: &EncodeReport| -> String {
        let Some(l) = &report.ladder else {
            return "n/a".into();
        };
        sizes
            .iter()
            .map(|&(w, h)| {
                let mut pred: Vec<(f64, f64)> = l
                    .title_points
                    .iter()
                    .filter(|p| (p.width, p.height) == (w, h))
                    .map(|p| (p.kbps, p.vmaf_mean))
                    .collect();
                pred.sort_by(|a, b| a.0.total_cmp(&b.0));
                let real: Vec<(f64, f64)> = grid_report
                    .rungs
                    .iter()
                    .filter(|r| (r.width, r.height) == (w, h))
                    .filter_map(|r| r.vmaf.map(|v| (r.average_kbps, v.mean)))
                    .collect();
                format!("{h}p {}", pct(bd_opt(&real, &pred)))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "  prediction vs the grid at each size (BD-rate of the predicted curve): per-title {}",
        predicted(per_title)
    );
    for (name, r) in [("per-title", per_title), ("shot", shot)] {
        if let Some(l) = &r.ladder {
            let worst = |f: &dyn Fn(&encode::DecidedRungReport) -> f64| {
                l.rungs.iter().map(f).fold(0.0f64, |a, b| a.max(b.abs()))
            };
            println!(
                "  {name}: prediction vs final encode, worst |kbps error| {:.1}%, worst |VMAF error| {:.2}",
                100.0 * worst(&|r| r.kbps_error),
                worst(&|r| r.vmaf_error.unwrap_or(0.0))
            );
        }
    }
}

/// The pooling lever (`RUNGS_BENCH_POOLING`): shot-level ladders pooling the harmonic mean,
/// judged in harmonic-mean VMAF and by their worst frames.
fn pooling_lever(master: &Path, dir: &Path, per_title: &EncodeReport, shot: &EncodeReport) {
    let harmonic = job_with(
        master,
        dir,
        "shot-harmonic",
        LadderChoice::Shot,
        LadderRules {
            pooling: ladders::Pooling::Harmonic,
            ..rules()
        },
    );
    let floor = |r: &EncodeReport| {
        r.rungs
            .iter()
            .filter_map(|x| x.vmaf.map(|v| v.mean - v.min))
            .fold(0.0f64, f64::max)
    };
    println!(
        "  pooling: in harmonic-mean VMAF vs per-title, shot pooling the mean {}, the harmonic \
             mean {}; in mean VMAF {} and {}; worst mean-to-min drop {:.1} and {:.1}",
        pct(bd_opt(&rd_harmonic(per_title), &rd_harmonic(shot))),
        pct(bd_opt(&rd_harmonic(per_title), &rd_harmonic(&harmonic))),
        pct(bd_opt(&rd(per_title), &rd(shot))),
        pct(bd_opt(&rd(per_title), &rd(&harmonic))),
        floor(shot),
        floor(&harmonic),
    );
}

/// The default run's wall and CPU time against the ffmpeg CLI's, and its stages.
fn print_costs(
    shot: &EncodeReport,
    costs: Option<&(benches::Cost, benches::Cost)>,
    timed_stages: Option<&serde_json::Value>,
) {
    if let Some((rungs_cost, cli_cost)) = costs {
        println!(
            "  default run {:.1} s wall, {:.1} s CPU; ffmpeg CLI, the same {} rungs one after \
             another ({} threads): {:.1} s wall, {:.1} s CPU; wall ratio {:.2} (goal <= 2.5)",
            rungs_cost.wall.as_secs_f64(),
            rungs_cost.cpu.as_secs_f64(),
            shot.rungs.len(),
            workers(),
            cli_cost.wall.as_secs_f64(),
            cli_cost.cpu.as_secs_f64(),
            rungs_cost.wall.as_secs_f64() / cli_cost.wall.as_secs_f64()
        );
    }
    if let Some(stages) = timed_stages.and_then(|s| s.as_array()) {
        let text: Vec<String> = stages
            .iter()
            .map(|s| {
                format!(
                    "{} {:.1}/{:.1}",
                    s["stage"].as_str().unwrap_or("?"),
                    s["wall_seconds"].as_f64().unwrap_or(0.0),
                    s["cpu_seconds"].as_f64().unwrap_or(0.0)
                )
            })
            .collect();
        println!(
            "  stages of the default run (wall/CPU s): {}",
            text.join(", ")
        );
    }
    if let Some(l) = &shot.ladder {
        println!(
            "  CPU: probe encodes {:.1} s, probe scoring {:.1} s, anchors {:.1} s + {:.1} s \
             scoring, final encodes {:.1} s; {} rungs on anchors, {} of {} chunks taken from \
             them",
            l.probe_encode_cpu_seconds,
            l.probe_score_cpu_seconds,
            l.anchor_encode_cpu_seconds,
            l.anchor_score_cpu_seconds,
            l.final_encode_cpu_seconds,
            l.rungs_on_anchors,
            l.chunks_from_anchors,
            shot.rungs.len() * shot.chunks
        );
    }
}

/// The clip's header line, its ladders (fixed, per-title, shot), the fixed ladder at its own
/// rates and the grid hull.
fn print_ladders(
    clip: &RealClip,
    sizes: &[(u32, u32)],
    [apple, per_title, shot]: [&EncodeReport; 3],
    apple_rates: &[(f64, f64)],
    grid_hull: &[(f64, f64)],
) {
    println!(
        "\n{} ({}; {}x{}, {} frames, {} chunks; {}): x264 {}, {} resolutions x {} CRFs in the grid",
        clip.name,
        clip.kinds
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        sizes.last().map_or(0, |s| s.0),
        sizes.last().map_or(0, |s| s.1),
        per_title.frames,
        per_title.chunks,
        clip.licence,
        preset(),
        sizes.len(),
        GRID_CRFS.len(),
    );
    for (name, r) in [
        ("fixed (rungs, capped CRF)", apple),
        ("per-title", per_title),
        ("shot (default)", shot),
    ] {
        println!("  {name:<28} {}", ladder_text(r));
    }
    let points = |p: &[(f64, f64)]| {
        p.iter()
            .map(|(k, v)| format!("{k:.0}k/{v:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "  {:<28} {}",
        "fixed at its rates (CLI)",
        points(apple_rates)
    );
    println!("  {:<28} {}", "grid hull", points(grid_hull));
}

/// What scoring one probe frame in 2, 4 or 8 costs in pooled VMAF on the grid's encodes.
fn print_sampling_error(grid_report: &EncodeReport) {
    let sampled: Vec<String> = [2u64, 4, 8]
        .iter()
        .map(|&k| {
            let (worst, mean) = sampling_error(grid_report, k);
            format!("1 in {k}: worst {worst:.2}, mean {mean:.3}")
        })
        .collect();
    println!(
        "  pooled VMAF error of scoring one frame in N, over the {} grid encodes: {}",
        grid_report.rungs.len(),
        sampled.join("; ")
    );
}

/// The rungs' bit-rate steps, and the worst drop from a shot rung's mean to its worst frame.
fn print_steps(
    per_title: &EncodeReport,
    shot: &EncodeReport,
    drops: &[Drop],
    (collapses, own): (usize, usize),
) {
    let worst_drop = drops.iter().map(|d| d.0).fold(0.0f64, f64::max);
    println!(
        "  steps: per-title {:?}, shot {:?}; worst mean-to-min VMAF drop of a shot rung {:.1} \
         (at its worst frame the best grid encode scores {}, the grid encode of equal quality \
         drops {}); rungs whose frames collapse by more than 15 where the master does not: \
         {collapses}, of which {own} where the grid encode of equal quality does not",
        steps(per_title)
            .iter()
            .map(|x| (x * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        steps(shot)
            .iter()
            .map(|x| (x * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        worst_drop,
        drops
            .iter()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map_or("n/a".into(), |d| format!("{:.1}", d.1)),
        drops
            .iter()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .and_then(|d| d.2)
            .map_or("n/a".into(), |e| format!("{e:.1}")),
    );
}

fn study(clip: &RealClip, master: &Path, dir: &Path) -> Row {
    std::fs::create_dir_all(dir).expect("the bench folder");
    let started = std::time::Instant::now();
    let (shot, costs, timed_stages, keyint) = default_run(master, dir);
    let apple = job(master, dir, "apple", LadderChoice::Apple);
    let per_title = job(master, dir, "per-title", LadderChoice::PerTitle);
    let (master_size, sizes, grid_report) = grid_job(clip, master, dir);
    // Rows whose quality no longer rises (a small master saturates below the table's top
    // rates) are left out: the fixed ladder is judged by its own envelope.
    let apple_rates = upper(&cached_points(&dir.join("fixed-cli.json"), || {
        ffmpeg_fixed(master, master_size, keyint, dir)
    }));
    let grid_hull = hull(&grid_report);
    let (title_rd, shot_rd) = (rd(&per_title), rd(&shot));

    let all_steps: Vec<f64> = steps(&per_title).into_iter().chain(steps(&shot)).collect();
    let (drops, collapses, own_collapses) = frame_drops(&grid_report, &shot);
    let worst_drop = drops.iter().map(|d| d.0).fold(0.0f64, f64::max);
    let row = Row {
        clip: clip.name,
        title_vs_fixed: bd_opt(&apple_rates, &title_rd),
        title_vs_grid: bd_opt(&grid_hull, &title_rd),
        shot_vs_fixed: bd_opt(&apple_rates, &shot_rd),
        shot_vs_grid: bd_opt(&grid_hull, &shot_rd),
        shot_vs_title: bd_opt(&title_rd, &shot_rd),
        grid_vs_fixed: bd_opt(&apple_rates, &grid_hull),
        widest_step: all_steps.iter().copied().fold(0.0, f64::max),
        narrowest_step: all_steps.iter().copied().fold(f64::INFINITY, f64::min),
        worst_drop,
        collapses,
        own_collapses,
        wall_ratio: costs.as_ref().map_or(f64::NAN, |(r, c)| {
            r.wall.as_secs_f64() / c.wall.as_secs_f64()
        }),
    };

    print_ladders(
        clip,
        &sizes,
        [&apple, &per_title, &shot],
        &apple_rates,
        &grid_hull,
    );
    println!(
        "  BD-rate vs fixed: per-title {}, shot {}, grid hull {} | vs grid hull: per-title {}, \
         shot {} | shot vs per-title {}",
        pct(row.title_vs_fixed),
        pct(row.shot_vs_fixed),
        pct(row.grid_vs_fixed),
        pct(row.title_vs_grid),
        pct(row.shot_vs_grid),
        pct(row.shot_vs_title),
    );
    println!(
        "  rungs' distance in bits to the grid hull at their quality: per-title {}, shot {}",
        hull_gap(&grid_hull, &title_rd),
        hull_gap(&grid_hull, &shot_rd)
    );
    print_steps(&per_title, &shot, &drops, (collapses, own_collapses));
    print_predictions(&sizes, &grid_report, &per_title, &shot);
    print_sampling_error(&grid_report);
    if std::env::var_os("RUNGS_BENCH_POOLING").is_some() {
        pooling_lever(master, dir, &per_title, &shot);
    }
    if let Some(l) = &shot.ladder {
        for n in &l.notes {
            println!("  note: {n}");
        }
    }
    print_costs(&shot, costs.as_ref(), timed_stages.as_ref());
    println!("  ({:.0} s)", started.elapsed().as_secs_f64());
    row
}

/// What scoring one frame in `every` costs in pooled accuracy, on the grid's encodes (whose
/// every frame was scored): per chunk, the probes' samples held to the frames between them,
/// as the probe task does. The worst and the mean |error| of the pooled mean VMAF.
fn sampling_error(grid: &EncodeReport, every: u64) -> (f64, f64) {
    let mut errors = Vec::new();
    for r in &grid.rungs {
        let Some(per_frame) = &r.per_frame_vmaf else {
            continue;
        };
        let mut held = Vec::with_capacity(per_frame.len());
        for c in &r.chunks {
            let start = c.start_frame as usize;
            let Some(frames) = per_frame.get(start..start + c.frames as usize) else {
                continue;
            };
            let at = workers::rd_probe::sampled_frames(c.frames, every);
            let values: Vec<f64> = at.iter().map(|&f| frames[f as usize]).collect();
            held.extend(workers::rd_probe::hold(&at, &values, c.frames));
        }
        if held.len() == per_frame.len() && !held.is_empty() {
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            errors.push((mean(&held) - mean(per_frame)).abs());
        }
    }
    let worst = errors.iter().copied().fold(0.0, f64::max);
    let mean = errors.iter().sum::<f64>() / errors.len().max(1) as f64;
    (worst, mean)
}

/// Points computed once and kept in `path`.
fn cached_points(path: &Path, make: impl FnOnce() -> Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if let Some(p) = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<(f64, f64)>>(&b).ok())
    {
        return p;
    }
    let p = make();
    std::fs::write(path, serde_json::to_vec(&p).expect("points serialise")).expect("the cache");
    p
}

/// The worst clip for each figure.
fn summary(rows: &[Row]) {
    if rows.is_empty() {
        println!("no clip was measured");
        return;
    }
    let worst = |f: &dyn Fn(&Row) -> Option<f64>| -> String {
        rows.iter()
            .filter_map(|r| f(r).map(|v| (v, r.clip)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map_or_else(|| "n/a".into(), |(v, c)| format!("{v:+.1}% ({c})"))
    };
    println!(
        "\nworst of {} clips: per-title vs fixed {} | shot vs fixed {} | per-title vs grid {} | \
         shot vs grid {} | shot vs per-title {}",
        rows.len(),
        worst(&|r| r.title_vs_fixed),
        worst(&|r| r.shot_vs_fixed),
        worst(&|r| r.title_vs_grid),
        worst(&|r| r.shot_vs_grid),
        worst(&|r| r.shot_vs_title),
    );
    // The largest (or with `low`, the smallest) finite value of a figure, with its clip.
    let extreme = |f: &dyn Fn(&Row) -> f64, low: bool, unit: &str| -> String {
        rows.iter()
            .map(|r| (f(r), r.clip))
            .filter(|(v, _)| v.is_finite())
            .max_by(|a, b| {
                if low {
                    b.0.total_cmp(&a.0)
                } else {
                    a.0.total_cmp(&b.0)
                }
            })
            .map_or_else(|| "n/a".into(), |(v, c)| format!("{v:.2}{unit} ({c})"))
    };
    println!(
        "worst: widest step {}, narrowest step {}, mean-to-min VMAF drop {}, wall ratio to the \
         CLI {}",
        extreme(&|r| r.widest_step, false, "x"),
        extreme(&|r| r.narrowest_step, true, "x"),
        extreme(&|r| r.worst_drop, false, ""),
        extreme(&|r| r.wall_ratio, false, "x"),
    );
    let collapsed: Vec<&str> = rows
        .iter()
        .filter(|r| r.collapses > 0)
        .map(|r| r.clip)
        .collect();
    println!(
        "rungs whose worst frame is over 15 VMAF under their mean where the master's best encode \
         is not: {} ({}); of them where the grid encode of equal quality is not either: {}",
        rows.iter().map(|r| r.collapses).sum::<usize>(),
        if collapsed.is_empty() {
            "none".to_owned()
        } else {
            collapsed.join(", ")
        },
        rows.iter().map(|r| r.own_collapses).sum::<usize>(),
    );
    let fixed_goal = rows
        .iter()
        .filter(|r| r.grid_vs_fixed.is_some_and(|g| g <= -10.0))
        .filter(|r| r.title_vs_fixed.is_none_or(|t| t > -8.0))
        .map(|r| r.clip)
        .collect::<Vec<_>>();
    println!(
        "clips where the grid hull beats fixed by 10% or more but per-title does not by 8%: {}",
        if fixed_goal.is_empty() {
            "none".to_owned()
        } else {
            fixed_goal.join(", ")
        }
    );
}
