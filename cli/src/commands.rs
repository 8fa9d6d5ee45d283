//! The commands.

use std::process::ExitCode;

use anyhow::Context;
use media::{self, MediaError};
use pipeline::ingest::{self, IngestReport};
use serde::Serialize;

use crate::args::{
    CheckArgs, Cli, Command, CompareArgs, Global, IngestArgs, LadderCommand, ProbeArgs, ShotsArgs,
    ValidateArgs, VmafArgs,
};
use crate::config::{self, ShotChoice};
use crate::exit::{self, Failure};
use crate::{logging, output};

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Probe(a) => probe(&cli.global, a),
        Command::Validate(a) => validate(&cli.global, a),
        Command::Shots(a) => shots(&cli.global, a),
        Command::Vmaf(a) => vmaf(&cli.global, a),
        Command::Encode(a) => crate::encode::run(&cli.global, a),
        Command::Submit(a) => crate::fleet::submit(&cli.global, a),
        Command::Worker(a) => crate::fleet::worker(&cli.global, a),
        Command::Status(a) => crate::fleet::status(&cli.global, a),
        Command::Retry(a) => crate::fleet::retry(&cli.global, a),
        Command::Publish(a) => crate::fleet::publish(&cli.global, a),
        Command::Fill(c) => crate::fill::run(&cli.global, c),
        Command::Report(a) => report(&cli.global, a),
        Command::Serve(a) => serve(&cli.global, a),
        Command::Ladder(LadderCommand::Compare(a)) => compare(a),
        Command::Ladder(LadderCommand::Check(a)) => check(&cli.global, a),
    }
}

/// Reads the ladder of an encode report.
fn read_ladder(path: &std::path::Path) -> anyhow::Result<ladders::check::LadderView> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))?;
    ladders::check::LadderView::from_json(&text)
        .map_err(|e| Failure::usage(format!("{}: not an encode report: {e}", path.display())))
}

/// `rungs ladder compare A B`.
fn compare(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let (a, b) = (read_ladder(&args.a)?, read_ladder(&args.b)?);
    // Multi-codec reports are compared codec by codec (or the one `--codec` names).
    let codecs: Vec<String> = match &args.codec {
        Some(c) => vec![c.clone()],
        None => a
            .codecs()
            .into_iter()
            .filter(|c| b.codecs().contains(c))
            .collect(),
    };
    let of = |l: &ladders::check::LadderView, c: &str| {
        if l.codecs().is_empty() {
            l.clone()
        } else {
            l.of_codec(c)
        }
    };
    let (a, b) = match codecs.as_slice() {
        [] if !a.codecs().is_empty() || !b.codecs().is_empty() => {
            return Err(Failure::usage(
                "the reports have no codec in common; name one with --codec",
            ));
        }
        [] => (a, b),
        [one] => (of(&a, one), of(&b, one)),
        several => {
            return Err(Failure::usage(format!(
                "the reports hold several codecs ({}); name one with --codec",
                several.join(", ")
            )));
        }
    };
    if a.rungs.is_empty() || b.rungs.is_empty() {
        return Err(Failure::usage(format!(
            "a report has no rungs of codec {}",
            codecs.join(",")
        )));
    }
    let unusable = |e: ladders::bd::BdError| Failure::rejected(format!("cannot compare: {e}"));
    let bd_rate = ladders::bd::bd_rate(&a.rd(), &b.rd()).map_err(unusable)?;
    let bd_vmaf = ladders::bd::bd_quality(&a.rd(), &b.rd()).map_err(unusable)?;
    #[derive(Serialize)]
    struct Comparison<'a> {
        anchor: &'a std::path::Path,
        test: &'a std::path::Path,
        /// Percent bit rate of B against A at equal mean VMAF (negative: B saves).
        bd_rate_percent: f64,
        /// Mean VMAF gained by B at equal bit rate.
        bd_vmaf: f64,
        anchor_rungs: Vec<(f64, f64)>,
        test_rungs: Vec<(f64, f64)>,
    }
    output::json(
        &Comparison {
            anchor: &args.a,
            test: &args.b,
            bd_rate_percent: bd_rate,
            bd_vmaf,
            anchor_rungs: a.rd(),
            test_rungs: b.rd(),
        },
        &args.output,
    )?;
    Ok(exit::OK.into())
}

/// `rungs ladder check REPORT`.
fn check(global: &Global, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let ladder = read_ladder(&args.report)?;
    let rules = match &args.rules {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))?;
            ladders::check::CheckRules::from_toml(&text)
                .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?
        }
        None => ladders::check::CheckRules::default(),
    };
    let baseline = args.baseline.as_deref().map(read_ladder).transpose()?;
    let outcomes = ladders::check::check_report(&ladder, &rules, baseline.as_ref());
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    if let Some(path) = &args.junit {
        let suite = args.report.display().to_string();
        let xml = ladders::check::junit(&outcomes, &suite);
        store::fsutil::write_file_atomic(path, |f| std::io::Write::write_all(f, xml.as_bytes()))
            .map_err(|e| Failure::io(format!("cannot write {}: {e}", path.display())))?;
    }
    if failed > 0 || !global.quiet {
        print!("{}", ladders::check::table(&outcomes));
        println!(
            "{} of {} checks passed{}",
            outcomes.len() - failed,
            outcomes.len(),
            if failed > 0 {
                format!("; {failed} failed")
            } else {
                String::new()
            }
        );
    }
    Ok(if failed > 0 {
        exit::CHECK_FAILED
    } else {
        exit::OK
    }
    .into())
}

fn load_model(args: &VmafArgs) -> anyhow::Result<vmaf::Model> {
    let model = match vmaf::Model::builtin(&args.model) {
        Some(m) => m,
        None => {
            let path = std::path::Path::new(&args.model);
            if !path.exists() {
                return Err(Failure::usage(format!(
                    "unknown model {:?} (built-in: vmaf_v0.6.1, vmaf_4k_v0.6.1; or a JSON file)",
                    args.model
                )));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::io(format!("cannot read model {}: {e}", path.display())))?;
            vmaf::Model::from_json(&path.display().to_string(), &text)
                .map_err(|e| Failure::usage(e.to_string()))?
        }
    };
    Ok(if args.phone {
        model.with_transform()
    } else {
        model
    })
}

fn vmaf(global: &Global, args: &VmafArgs) -> anyhow::Result<ExitCode> {
    let options = workers::measure::MeasureOptions {
        model: load_model(args)?,
        threads: args.threads.unwrap_or(0),
        psnr: !args.vmaf_only && args.features.iter().any(|f| f == "psnr"),
        ssim: !args.vmaf_only && args.features.iter().any(|f| f == "ssim"),
        per_frame: args.per_frame,
    };
    let total = media::Demuxer::open(&args.reference).ok().and_then(|d| {
        d.info()
            .best_video()
            .and_then(|v| d.info().streams[v].frames)
    });
    let bar = logging::progress(global);
    if let Some(t) = total {
        bar.set_length(t);
    }
    let report = workers::measure::measure(&args.reference, &args.distorted, &options, &mut |n| {
        bar.set_position(n);
        bar.set_message(format!("{n} frames"));
    });
    bar.finish_and_clear();
    let report = report?;
    output::json(&report, &args.output)?;
    if !global.quiet {
        eprintln!("{}", output::vmaf_summary(&report));
    }
    Ok(exit::OK.into())
}

fn probe(global: &Global, args: &ProbeArgs) -> anyhow::Result<ExitCode> {
    let info = media::probe(&args.input, !args.no_decode).map_err(|e| match e {
        MediaError::Io { .. } => Failure::io(e.to_string()),
        other => Failure::rejected(other.to_string()),
    })?;
    output::json(&info, &args.output)?;
    if !global.quiet {
        eprintln!("{}", output::probe_summary(&info));
    }
    Ok(exit::OK.into())
}

/// Runs the ingest pass with a progress bar.
fn ingest(
    global: &Global,
    input: &std::path::Path,
    args: &IngestArgs,
    choice: ShotChoice,
) -> anyhow::Result<IngestReport> {
    let options = config::ingest_options(&args.settings, choice)?;
    let bar = logging::progress(global);
    let report = ingest::analyze(input, &options, &mut |p| {
        if let Some(total) = p.total_seconds {
            bar.set_length((total * 1000.0) as u64);
        }
        bar.set_position((p.seconds * 1000.0).max(0.0) as u64);
        bar.set_message(format!("{} frames", p.frames));
    });
    bar.finish_and_clear();
    Ok(report?)
}

fn verdict(report: &IngestReport) -> ExitCode {
    if report.accepted {
        exit::OK.into()
    } else {
        exit::REJECTED.into()
    }
}

fn validate(global: &Global, args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let choice = ShotChoice {
        detect: args.shots,
        threshold: None,
        keep_scores: false,
    };
    let report = ingest(global, &args.input, &args.ingest, choice)?;
    output::json(&report, &args.ingest.output)?;
    if !global.quiet {
        eprintln!("{}", output::validate_summary(&report));
    }
    Ok(verdict(&report))
}

/// What `rungs shots` prints: the shots, with the verdict on the master beside them.
#[derive(Serialize)]
struct ShotsOutput<'a> {
    master: &'a std::path::Path,
    accepted: bool,
    problems: &'a [ingest::Problem],
    #[serde(flatten)]
    shots: Option<&'a pipeline::shots::ShotReport>,
}

fn shots(global: &Global, args: &ShotsArgs) -> anyhow::Result<ExitCode> {
    let choice = ShotChoice {
        detect: true,
        threshold: args.threshold,
        keep_scores: args.scores,
    };
    let report = ingest(global, &args.input, &args.ingest, choice)?;
    let out = ShotsOutput {
        master: &report.master,
        accepted: report.accepted,
        problems: &report.problems,
        shots: report.shots.as_ref(),
    };
    output::json(&out, &args.ingest.output)?;
    if !global.quiet {
        if !report.accepted {
            eprintln!("{}", output::validate_summary(&report));
        } else if let Some(s) = &report.shots {
            eprintln!("{}:\n{}", report.master.display(), output::shots_summary(s));
        }
    }
    Ok(verdict(&report))
}

/// `rungs report JOB -o FILE.html`.
fn report(global: &Global, args: &crate::args::ReportArgs) -> anyhow::Result<ExitCode> {
    let fetched = tempfile::tempdir()
        .map_err(|e| Failure::io(format!("cannot create a temporary folder: {e}")))?;
    let (dir, file) = if let Some(url) = &args.store {
        let name = args.job.to_string_lossy().into_owned();
        pipeline::fleet::check_job(&name)?;
        let aws = cloud::AwsOptions {
            endpoint: args.endpoint.clone(),
            ..Default::default()
        };
        let store =
            cloud::S3Store::open(url, &aws).map_err(|e| Failure::usage(format!("--store: {e}")))?;
        if !pipeline::fleet::fetch_report(&store, &name, fetched.path())? {
            return Err(Failure::io(format!(
                "job {name} has no report yet (see `rungs status {name}`)"
            )));
        }
        (
            fetched.path().to_owned(),
            fetched.path().join("report.json"),
        )
    } else if args.job.is_dir() {
        (args.job.clone(), args.job.join("report.json"))
    } else {
        (
            args.job
                .parent()
                .map_or_else(|| std::path::PathBuf::from("."), |p| p.to_owned()),
            args.job.clone(),
        )
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| Failure::io(format!("cannot read {}: {e}", file.display())))?;
    let report = pipeline::dashboard::TitleReport::parse(text.as_bytes())
        .map_err(|e| Failure::usage(format!("{}: not an encode report: {e}", file.display())))?;
    if !report.has_rungs() {
        return Err(Failure::usage(format!(
            "{}: not an encode report (no rungs)",
            file.display()
        )));
    }
    let page = pipeline::dashboard::title_page(&report, Some(&dir));
    store::fsutil::write_file_atomic(&args.output, |f| {
        std::io::Write::write_all(f, page.as_bytes())
    })
    .map_err(|e| Failure::io(format!("cannot write {}: {e}", args.output.display())))?;
    if !global.quiet {
        eprintln!("wrote {} ({} bytes)", args.output.display(), page.len());
    }
    Ok(exit::OK.into())
}

/// `rungs serve`.
fn serve(global: &Global, args: &crate::args::ServeArgs) -> anyhow::Result<ExitCode> {
    use pipeline::dashboard::serve::{self, ServeOptions};
    let addr: std::net::SocketAddr = args
        .addr
        .parse()
        .map_err(|e| Failure::usage(format!("--addr {}: {e}", args.addr)))?;
    serve::check_bind(&addr, args.token.as_deref()).map_err(|e| Failure::usage(e.to_string()))?;
    if let Some(d) = &args.jobs
        && !d.is_dir()
    {
        return Err(Failure::io(format!("--jobs {}: not a folder", d.display())));
    }
    let fleet = match (&args.queue, &args.store) {
        (Some(q), Some(s)) => {
            let aws = cloud::AwsOptions {
                endpoint: args.endpoint.clone(),
                ..Default::default()
            };
            Some(std::sync::Arc::new(
                pipeline::fleet::Fleet::open(q, s, &aws, &aws, None)
                    .context("opening the fleet")?,
            ))
        }
        _ => None,
    };
    let options = ServeOptions {
        addr,
        token: args.token.clone().filter(|t| !t.is_empty()),
        allow_hosts: args.allow_host.clone(),
        jobs: args.jobs.clone(),
        fleet,
        plan: args.plan.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::io(format!("cannot start the server: {e}")))?;
    let quiet = global.quiet;
    crate::interrupt::install(
        &[libc::SIGINT, libc::SIGTERM],
        b"\nstopping the dashboard\n",
    );
    rt.block_on(serve::serve(
        options,
        move |at| {
            if !quiet {
                eprintln!("rungs dashboard on http://{at}/");
            }
        },
        async {
            while !crate::interrupt::STOP.load(std::sync::atomic::Ordering::Acquire) {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        },
    ))
    .map_err(|e| Failure::io(e.to_string()))?;
    Ok(exit::OK.into())
}
