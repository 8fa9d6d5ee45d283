//! `rungs submit`, `rungs worker` and `rungs status` (fleet mode), and `rungs publish`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cloud::AwsOptions;
use pipeline::fleet::{self, Fleet, JobStatus, WorkerOptions};

use crate::args::{FleetArgs, Global, PublishArgs, RetryArgs, StatusArgs, SubmitArgs, WorkerArgs};
use crate::exit::{self, Failure};
use crate::output;

/// Opens the fleet's queue and store. Credentials come from the AWS chain (environment,
/// profile, instance role); they are never printed.
fn open(args: &FleetArgs, max_receives: Option<u32>) -> anyhow::Result<Fleet> {
    let sqs = AwsOptions {
        endpoint: args.endpoint.clone(),
        region: args.region.clone(),
        credentials: None,
    };
    let s3 = AwsOptions {
        endpoint: args.s3_endpoint.clone().or_else(|| args.endpoint.clone()),
        ..sqs.clone()
    };
    Fleet::open(&args.queue, &args.store, &sqs, &s3, max_receives).context("opening the fleet")
}

/// Opens a worker's fleet, waiting out an outage of the queue or the store (a worker started
/// while they are unreachable starts serving once they answer); `None` when stopped first.
fn open_waiting(args: &FleetArgs, max_receives: u32) -> anyhow::Result<Option<Fleet>> {
    use std::sync::atomic::Ordering;
    let mut pause = Duration::from_secs(1);
    loop {
        let err = match open(args, Some(max_receives)) {
            Ok(f) => return Ok(Some(f)),
            Err(e) => e,
        };
        let outage = matches!(
            err.downcast_ref::<fleet::FleetError>(),
            Some(
                fleet::FleetError::Queue(workers::queue::QueueError::Remote { .. })
                    | fleet::FleetError::Store(store::StoreError::Remote { .. })
            )
        );
        if !outage {
            return Err(err);
        }
        tracing::warn!("{err:#}; trying again in {} s", pause.as_secs());
        let until = std::time::Instant::now() + pause;
        while std::time::Instant::now() < until {
            if crate::interrupt::STOP.load(Ordering::Acquire) {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        pause = (pause * 2).min(workers::worker::MAX_BACKOFF);
    }
}

pub fn submit(global: &Global, args: &SubmitArgs) -> anyhow::Result<ExitCode> {
    if args.encode.drm.drm.is_some() {
        // A fleet job's options travel in its store as job.json: no place for content keys.
        return Err(Failure::usage(
            "--drm is not available for fleet jobs yet: the keys would have to be written to the job's store; encrypt with a local `rungs encode`",
        ));
    }
    let options = crate::encode::options(&args.encode)?;
    fleet::check_options(&options)?;
    if !args.encode.input.is_file() {
        return Err(Failure::io(format!(
            "{} is not a readable file",
            args.encode.input.display()
        )));
    }
    let fleet = open(&args.fleet, None)?;
    let job = fleet::submit(&fleet, &args.encode.input, &options)?;
    println!("{job}");
    if !global.quiet {
        eprintln!("submitted {job}: follow it with `rungs status {job}`");
    }
    if !args.wait {
        return Ok(exit::OK.into());
    }
    let out = args.encode.output.as_deref();
    follow(global, &fleet, &job, out, fleet::STALLED_AFTER)
}

pub fn worker(global: &Global, args: &WorkerArgs) -> anyhow::Result<ExitCode> {
    if !(1..=43_200).contains(&args.visibility) || !(1..=900).contains(&args.poll) {
        return Err(Failure::usage(format!(
            "--visibility {} (expected 1 to 43200 s) or --poll {} (expected 1 to 900 s)",
            args.visibility, args.poll
        )));
    }
    crate::interrupt::install(
        &[libc::SIGINT, libc::SIGTERM],
        b"\nstopping: finishing the task in hand (signal again to quit now)\n",
    );
    let Some(fleet) = open_waiting(&args.fleet, args.max_receives)? else {
        if !global.quiet {
            eprintln!(
                "worker {} stopped before the fleet answered",
                std::process::id()
            );
        }
        return Ok(exit::OK.into());
    };
    let mut options = WorkerOptions {
        poll: Duration::from_secs(args.poll),
        visibility: Duration::from_secs(args.visibility),
        heartbeat: Duration::from_secs(args.visibility).div_f64(4.0),
        max_dimension: args.max_dimension,
        max_frames: args.max_frames,
        ..Default::default()
    };
    if let Some(n) = args.threads {
        options.threads = n.max(1);
    }
    if let Some(c) = &args.cache {
        options.cache = c.clone();
    }
    if !global.quiet {
        eprintln!(
            "worker {}: {} task(s) at once on {}",
            std::process::id(),
            options.threads,
            fleet::queue_name(&args.fleet.queue)
        );
    }
    let report = fleet::run_worker(&fleet, &options, &crate::interrupt::STOP)
        .context("the worker stopped")?;
    if !global.quiet {
        eprintln!(
            "worker {} stopped: {} task(s) done, {} retried, {} dead-lettered",
            std::process::id(),
            report.done,
            report.retried,
            report.dead
        );
    }
    Ok(exit::OK.into())
}

pub fn status(global: &Global, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    fleet::check_job(&args.job)?;
    let fleet = open(&args.fleet, None)?;
    if args.wait {
        let stalled_after = Duration::from_secs(args.stalled_after);
        return follow(
            global,
            &fleet,
            &args.job,
            args.output.as_deref(),
            stalled_after,
        );
    }
    let s = fleet::status_within(&fleet, &args.job, Duration::from_secs(args.stalled_after))?;
    if let (Some(dir), "done") = (&args.output, s.state.as_str()) {
        download(global, &fleet, &s.job, dir)?;
    }
    print(global, &s)?;
    Ok(code(&s).into())
}

fn line(s: &JobStatus) -> String {
    match (&s.waiting, &s.error) {
        (_, Some(e)) => format!("{}: {}: {e}", s.job, s.state),
        (Some(w), None) => format!("{}: {} ({}/{})", s.job, w.stage, w.done, w.total),
        (None, None) => format!("{}: {}", s.job, s.state),
    }
}

fn print(global: &Global, s: &JobStatus) -> anyhow::Result<()> {
    output::json(
        s,
        &crate::args::OutputArgs {
            output: None,
            compact: false,
        },
    )?;
    if !global.quiet {
        eprintln!("{}", line(s));
        for (id, error) in &s.dead_letters {
            eprintln!("  dead letter {id}: {error}");
        }
    }
    Ok(())
}

fn code(s: &JobStatus) -> exit::Code {
    if s.state == "failed" || s.state == "stalled" {
        exit::ENCODE_FAILED
    } else {
        exit::OK
    }
}

fn download(
    global: &Global,
    fleet: &Fleet,
    job: &str,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let (files, bytes) = fleet::download(fleet, job, dir)?;
    if !global.quiet {
        eprintln!(
            "downloaded {files} files ({bytes} bytes) into {}",
            dir.display()
        );
    }
    Ok(())
}

/// Follows a job until it ends (done, failed or stalled), a line on stderr at every change;
/// downloads the title into `-o` when it is done.
fn follow(
    global: &Global,
    fleet: &Fleet,
    job: &str,
    out: Option<&std::path::Path>,
    stalled_after: Duration,
) -> anyhow::Result<ExitCode> {
    let mut last = String::new();
    loop {
        let s = fleet::status_within(fleet, job, stalled_after)?;
        let now = line(&s);
        if now != last && !global.quiet {
            eprintln!("{now}");
        }
        last = now;
        if ["done", "failed", "stalled"].contains(&s.state.as_str()) {
            if let (Some(dir), "done") = (out, s.state.as_str()) {
                download(global, fleet, job, dir)?;
            }
            print(global, &s)?;
            return Ok(code(&s).into());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

pub fn publish(global: &Global, args: &PublishArgs) -> anyhow::Result<ExitCode> {
    if !(1..=64).contains(&args.threads) {
        return Err(Failure::usage(format!(
            "--threads {} (expected 1 to 64)",
            args.threads
        )));
    }
    // The folder is checked before any request.
    packager::publish::title_files(&args.dir).map_err(|e| Failure::io(e.to_string()))?;
    let aws = AwsOptions {
        endpoint: args.endpoint.clone(),
        region: args.region.clone(),
        credentials: None,
    };
    let store =
        cloud::S3Store::open(&args.to, &aws).map_err(|e| Failure::usage(format!("--to: {e}")))?;
    let bar = crate::logging::progress(global);
    let done = std::sync::atomic::AtomicU64::new(0);
    let report =
        packager::publish::publish(&args.dir, &store, &args.to, args.threads, &|name, _| {
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            bar.set_message(format!("published {n} files: {name}"));
        });
    bar.finish_and_clear();
    let report = report.map_err(|e| match e {
        packager::publish::PublishError::Input(m) => Failure::io(m),
        e => Failure::io(format!("publishing to {}: {e}", args.to)),
    })?;
    // The record the dashboard reads (bytes published); the title's own work folder.
    let record = args.dir.join(".rungs").join("publish.json");
    let saved = std::fs::create_dir_all(args.dir.join(".rungs")).and_then(|()| {
        store::fsutil::write_file_atomic(&record, |f| {
            serde_json::to_writer_pretty(f, &report).map_err(std::io::Error::other)
        })
    });
    if let Err(e) = saved {
        tracing::warn!("cannot write {}: {e}", record.display());
    }
    output::pretty(&report)?;
    if !global.quiet {
        eprintln!(
            "published {} files to {}: {} uploaded ({} bytes), {} unchanged and skipped; \
             manifests last",
            report.files, report.to, report.uploaded, report.bytes_uploaded, report.unchanged
        );
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(exit::OK.into())
}

pub fn retry(global: &Global, args: &RetryArgs) -> anyhow::Result<ExitCode> {
    fleet::check_job(&args.job)?;
    let fleet = open(&args.fleet, None)?;
    let attempt = fleet::retry(&fleet, &args.job, Duration::from_secs(args.stalled_after))?;
    if !global.quiet {
        eprintln!(
            "{}: queued again (attempt {attempt}); follow it with `rungs status {}`",
            args.job, args.job
        );
    }
    Ok(exit::OK.into())
}
