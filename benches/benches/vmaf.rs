//! `rungs vmaf` against libvmaf 2.3.1's `vmaf` tool on the same 1080p pair, in the same run.
//!
//! Both read the same two Y4M files and compute VMAF v0.6.1, first limited to one core with 1
//! thread each, then to two cores with 2 threads each (`taskset`, so that neither can use more
//! cores than the other; a decoding or reading thread counts against the same cores). The
//! bench prints frames per second, the ratio (rungs / libvmaf; goal >= 1.5) and CPU time, for
//! VMAF alone and for VMAF with PSNR and SSIM. The two tools run alternately, several times;
//! medians are compared.
//!
//! The rungs side is the measure task the `rungs vmaf` command runs (decoding, scaling checks,
//! pipelined scoring, the JSON report), in a child process like the reference tool.
//!
//! Run with `cargo bench -p benches --bench vmaf`. `RUNGS_BENCH_RUNS` sets the repetitions
//! (default 3).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use benches::{Cost, measure, median};
use workers::measure::{MeasureOptions, measure as score};

const CHILD: &str = "RUNGS_BENCH_VMAF_CHILD";

fn main() {
    let runs = match benches::mode("vmaf", CHILD, 3) {
        benches::Mode::Child(spec) => return child(&spec.to_string_lossy()),
        benches::Mode::List => return,
        benches::Mode::Runs(n) => n,
    };
    let pair = fixtures::pair(&fixtures::BENCH_1080P).expect("the 1080p benchmark pair");
    let libvmaf = fixtures::libvmaf_cli().expect("the libvmaf tool");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = benches::can_pin();

    println!(
        "rungs vmaf vs libvmaf 2.3.1 on {} frames of {}x{} ({}), {} run(s) each, medians{}",
        pair.frames,
        pair.width,
        pair.height,
        pair.name,
        runs,
        if pinned { ", pinned with taskset" } else { "" }
    );
    println!(
        "{:<22} {:>7} {:>10} {:>12} {:>7} {:>10} {:>12}",
        "metrics", "threads", "rungs fps", "libvmaf fps", "ratio", "rungs CPU", "libvmaf CPU"
    );
    for threads in [1usize, 2] {
        if threads > cores {
            println!("(skipping {threads} threads: only {cores} core(s))");
            continue;
        }
        for extras in [false, true] {
            let spec = format!(
                "{}\n{}\n{threads}\n{}",
                pair.reference.display(),
                pair.distorted.display(),
                u8::from(extras)
            );
            let mut ours = Vec::new();
            let mut theirs = Vec::new();
            for _ in 0..runs.max(1) {
                theirs.push(
                    measure(&mut benches::pinned(
                        pinned,
                        threads,
                        reference(&libvmaf, &pair.reference, &pair.distorted, threads, extras),
                    ))
                    .expect("libvmaf runs"),
                );
                let mut cmd = Command::new(std::env::current_exe().expect("own path"));
                cmd.env(CHILD, &spec).stdout(Stdio::null());
                ours.push(measure(&mut benches::pinned(pinned, threads, cmd)).expect("rungs runs"));
            }
            row(
                extras,
                threads,
                pair.frames,
                &median(&ours),
                &median(&theirs),
            );
        }
    }
    many_distorted(&pair, runs);
}

/// The many-distorted pass against scoring each distorted version alone: a probe scores
/// several encodings of one chunk against the same master frames, so the reference's share of
/// the work (ADM's wavelet decomposition and denominators) is done once for all of them. One
/// thread, the pair's distorted frames standing for 2 and 4 encodings, in-process (pictures in
/// memory, no decoding), medians of `runs`.
fn many_distorted(pair: &fixtures::Pair, runs: usize) {
    let reference = fixtures::y4m_luma(&pair.reference).expect("the reference reads");
    let distorted = fixtures::y4m_luma(&pair.distorted).expect("the distorted reads");
    assert_eq!(reference.bit_depth, 8, "the benchmark pair is 8-bit");
    let (r8, d8) = (reference.bytes(), distorted.bytes());
    let (w, h) = (reference.width, reference.height);
    fn picture(data: &[u8], w: usize, h: usize) -> vmaf::Picture<'_> {
        vmaf::Picture::new(
            8,
            vmaf::Plane::U8(vmaf::PlaneView::new(data, w, w, h).expect("a plane")),
            None,
        )
        .expect("a picture")
    }
    let (tables, options) = (
        vmaf::Tables::new(),
        vmaf::Options {
            motion: false,
            ..vmaf::Options::default()
        },
    );
    let mut ws = vmaf::Workspace::default();
    println!("many-distorted pass (1 thread, in memory): each alone vs one pass, medians");
    for n in [2usize, 4] {
        let time = |many: bool, ws: &mut vmaf::Workspace| {
            let t0 = std::time::Instant::now();
            for (r, d) in r8.iter().zip(&d8) {
                let rp = picture(r, w, h);
                let ds: Vec<_> = (0..n).map(|_| picture(d, w, h)).collect();
                if many {
                    vmaf::spatial_many(&rp, &ds, &options, &tables, ws).expect("scores");
                } else {
                    for dp in &ds {
                        vmaf::spatial(&rp, dp, &options, &tables, ws).expect("scores");
                    }
                }
            }
            t0.elapsed().as_secs_f64()
        };
        let mut alone = Vec::new();
        let mut one_pass = Vec::new();
        for _ in 0..runs.max(1) {
            alone.push(time(false, &mut ws));
            one_pass.push(time(true, &mut ws));
        }
        let mid = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (a, m) = (mid(&mut alone), mid(&mut one_pass));
        let frames = (r8.len() * n) as f64;
        println!(
            "  {n} encodings: alone {:.2} frames/s, one pass {:.2} frames/s, {:.1}% less time",
            frames / a,
            frames / m,
            (1.0 - m / a) * 100.0
        );
    }
}

/// The libvmaf command for one run.
fn reference(cli: &Path, r: &Path, d: &Path, threads: usize, extras: bool) -> Command {
    let mut cmd = Command::new(cli);
    cmd.args(["-r".as_ref(), r.as_os_str(), "-d".as_ref(), d.as_os_str()])
        .args([
            "--threads",
            &threads.to_string(),
            "-q",
            "--json",
            "-o",
            "/dev/null",
        ])
        .args(["-m", "version=vmaf_v0.6.1"])
        .stdout(Stdio::null());
    if extras {
        cmd.args(["--feature", "psnr", "--feature", "float_ssim"]);
    }
    cmd
}

fn row(extras: bool, threads: usize, frames: u64, o: &Cost, t: &Cost) {
    let fps = |c: &Cost| frames as f64 / c.wall.as_secs_f64();
    println!(
        "{:<22} {:>7} {:>10.2} {:>12.2} {:>6.2}x {:>9.2}s {:>11.2}s",
        if extras { "VMAF + PSNR + SSIM" } else { "VMAF" },
        threads,
        fps(o),
        fps(t),
        fps(o) / fps(t),
        o.cpu.as_secs_f64(),
        t.cpu.as_secs_f64()
    );
}

/// The measured work: what `rungs vmaf` does, JSON included.
fn child(spec: &str) {
    let parts: Vec<&str> = spec.lines().collect();
    let [r, d, threads, extras] = parts[..] else {
        panic!("bad child spec {spec:?}");
    };
    let options = MeasureOptions {
        threads: threads.parse().expect("threads"),
        psnr: extras == "1",
        ssim: extras == "1",
        per_frame: true,
        ..MeasureOptions::default()
    };
    let report =
        score(&PathBuf::from(r), &PathBuf::from(d), &options, &mut |_| {}).expect("scores");
    serde_json::to_writer(std::io::sink(), &report).expect("serialises");
}
