//! Fleet throughput: jobs done per minute by 1 against 2 worker processes, on SQS and S3 served
//! by moto on loopback, with the same jobs run by `rungs encode` (in-process, 1 and 2 worker
//! threads) in the same run as the reference.
//!
//! Each side runs `RUNGS_BENCH_JOBS` jobs (default 2) of the 640x360 multi-shot master:
//! Apple's H.264 ladder fitted to it, preset `veryfast` (`RUNGS_BENCH_PRESET` changes it), VMAF
//! of every rung, packaging with thumbnails. A fleet worker is a child process serving one task
//! at a time (what `rungs worker --threads 1` runs) pinned to a core of its own (`taskset`), as
//! a worker on a one-core instance would be, polling its jobs' drivers every second; the
//! reference runs on as many cores as it has worker threads.
//! The fleet's time runs from the first submission (the master's upload included) to the last
//! job's end. Medians of `RUNGS_BENCH_RUNS` runs (default 1).
//!
//! Run with `cargo bench -p benches --bench fleet`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use cloud::{AwsOptions, S3Store};
use fixtures::Fixture;
use fixtures::moto::Moto;
use pipeline::encode::{self, EncodeOptions, LadderChoice};
use pipeline::fleet::{self, Fleet, WorkerOptions};

const CHILD: &str = "RUNGS_BENCH_FLEET_CHILD";
const STORE: &str = "s3://bench/fleet";

fn aws(endpoint: &str) -> AwsOptions {
    AwsOptions {
        endpoint: Some(endpoint.to_owned()),
        region: Some("us-east-1".into()),
        credentials: Some(("bench".into(), "bench".into())),
    }
}

fn options(workers: usize) -> EncodeOptions {
    EncodeOptions {
        ladder: LadderChoice::Apple,
        preset: Some(std::env::var("RUNGS_BENCH_PRESET").unwrap_or_else(|_| "veryfast".into())),
        workers,
        ..Default::default()
    }
}

/// A worker process: `QUEUE ENDPOINT CACHE` in the child variable.
fn child(spec: &str) {
    let mut parts = spec.split(' ');
    let (Some(queue), Some(endpoint), Some(cache)) = (parts.next(), parts.next(), parts.next())
    else {
        panic!("bad child spec {spec:?}");
    };
    let fleet = Fleet::open(queue, STORE, &aws(endpoint), &aws(endpoint), None).unwrap();
    let options = WorkerOptions {
        threads: 1,
        cache: cache.into(),
        poll: Duration::from_secs(1),
        wait: Duration::from_secs(1),
        ..Default::default()
    };
    fleet::run_worker(&fleet, &options, &AtomicBool::new(false)).unwrap();
}

/// Runs `jobs` jobs of `master` on `workers` worker processes; the wall time.
fn fleet_run(
    moto: &Moto,
    master: &Path,
    jobs: usize,
    workers: usize,
    tag: &str,
    pin: bool,
) -> Duration {
    let queue = format!("bench-{tag}");
    let fleet = Fleet::open(
        &queue,
        STORE,
        &aws(&moto.endpoint),
        &aws(&moto.endpoint),
        None,
    )
    .expect("the fleet opens");
    let cache = tempfile::tempdir().expect("a cache folder");
    let mut children: Vec<Child> = (0..workers)
        .map(|n| {
            let exe = std::env::current_exe().expect("the bench executable");
            // One worker is one core (as one small instance would be): worker N on core N.
            let mut cmd = if pin {
                let mut t = Command::new("taskset");
                t.args(["-c", &(n % cores()).to_string()]).arg(exe);
                t
            } else {
                Command::new(exe)
            };
            cmd.env(
                CHILD,
                format!(
                    "{queue} {} {}",
                    moto.endpoint,
                    cache.path().join(n.to_string()).display()
                ),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("a worker process starts")
        })
        .collect();
    let start = Instant::now();
    let names: Vec<String> = (0..jobs)
        .map(|_| fleet::submit(&fleet, master, &options(1)).expect("submitted"))
        .collect();
    for job in &names {
        loop {
            let s = fleet::status(&fleet, job).expect("a status");
            assert_ne!(s.state, "failed", "{s:?}");
            if s.state == "done" {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let wall = start.elapsed();
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    wall
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Restricts this thread, and the threads it starts from now on, to the first `n` cores.
fn pin_to(n: usize) {
    // SAFETY: an all-zero cpu_set_t is a valid empty set; CPU_SET writes inside it;
    // sched_setaffinity reads it for the calling thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in 0..n.max(1) {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Runs `jobs` local encodes of `master` one after another with `workers` threads, on as many
/// cores.
fn local_run(master: &Path, jobs: usize, workers: usize) -> Duration {
    let dir = tempfile::tempdir().expect("a temporary folder");
    pin_to(workers);
    let start = Instant::now();
    for j in 0..jobs {
        encode::run(
            master,
            &dir.path().join(j.to_string()),
            &options(workers),
            &AtomicBool::new(false),
            &|_| {},
        )
        .expect("the local encode");
    }
    let wall = start.elapsed();
    pin_to(cores());
    wall
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs = match benches::mode("fleet", CHILD, 1) {
        benches::Mode::Child(spec) => return child(&spec.to_string_lossy()),
        benches::Mode::List => return,
        benches::Mode::Runs(n) => n,
    };
    let jobs: usize = std::env::var("RUNGS_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(2);
    let master = fixtures::ensure(Fixture::MultiShot).expect("the multi-shot master");
    let moto = Moto::start().expect("moto_server starts (scripts/setup installs it)");
    S3Store::open(STORE, &aws(&moto.endpoint))
        .and_then(|s| s.ensure_bucket())
        .expect("the bucket");
    let cores = cores();
    let pin = benches::can_pin();
    println!(
        "fleet throughput: {jobs} job(s) of {} ({} frames, Apple's ladder, VMAF, packaging), \
         {runs} run(s) each, medians, {cores} cores{}",
        master.path.display(),
        master.truth.frames,
        if pin {
            "; each worker pinned to a core of its own"
        } else {
            "; taskset is missing: workers are not pinned"
        }
    );
    let mut fleet_times = [Vec::new(), Vec::new()];
    let mut local_times = [Vec::new(), Vec::new()];
    for run in 0..runs {
        for (i, w) in [1usize, 2].into_iter().enumerate() {
            local_times[i].push(local_run(&master.path, jobs, w));
            fleet_times[i].push(fleet_run(
                &moto,
                &master.path,
                jobs,
                w,
                &format!("{w}w-{run}"),
                pin,
            ));
        }
    }
    let [f1, f2] = fleet_times.map(median);
    let [l1, l2] = local_times.map(median);
    let per_min = |t: Duration| jobs as f64 * 60.0 / t.as_secs_f64();
    println!(
        "  fleet, 1 worker process:   {:7.1} s  ({:.2} jobs/min)",
        f1.as_secs_f64(),
        per_min(f1)
    );
    println!(
        "  fleet, 2 worker processes: {:7.1} s  ({:.2} jobs/min)",
        f2.as_secs_f64(),
        per_min(f2)
    );
    println!(
        "  rungs encode, 1 worker:    {:7.1} s  ({:.2} jobs/min)",
        l1.as_secs_f64(),
        per_min(l1)
    );
    println!(
        "  rungs encode, 2 workers:   {:7.1} s  ({:.2} jobs/min)",
        l2.as_secs_f64(),
        per_min(l2)
    );
    println!(
        "  throughput 2 vs 1 worker processes: x{:.2}  (local threads: x{:.2}); fleet over \
         local at equal parallelism: x{:.2} (1), x{:.2} (2)",
        f1.as_secs_f64() / f2.as_secs_f64(),
        l1.as_secs_f64() / l2.as_secs_f64(),
        f1.as_secs_f64() / l1.as_secs_f64(),
        f2.as_secs_f64() / l2.as_secs_f64()
    );
}
