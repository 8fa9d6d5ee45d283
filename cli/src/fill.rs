//! `rungs fill plan|run|locate`: Open Connect-style edge fill.

use std::process::ExitCode;

use packager::fill::{self, Popularity, Topology};

use crate::args::{FillCommand, FillLocateArgs, FillPlanArgs, FillRunArgs, Global};
use crate::exit::{self, Failure};
use crate::output;

pub fn run(global: &Global, command: &FillCommand) -> anyhow::Result<ExitCode> {
    match command {
        FillCommand::Plan(a) => plan(global, a),
        FillCommand::Run(a) => fill_run(global, a),
        FillCommand::Locate(a) => locate(a),
    }
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))
}

fn time(now: Option<&str>) -> anyhow::Result<Option<u64>> {
    now.map(|t| fill::popularity::parse_time(t).map_err(|e| Failure::usage(format!("--now: {e}"))))
        .transpose()
}

fn now_or_clock(now: Option<&str>) -> anyhow::Result<u64> {
    Ok(time(now)?.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }))
}

fn load_plan(path: &std::path::Path) -> anyhow::Result<fill::FillPlan> {
    let text = read(path)?;
    let plan: fill::FillPlan = serde_json::from_str(&text)
        .map_err(|e| Failure::usage(format!("{}: not a fill plan: {e}", path.display())))?;
    plan.validate()
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    Ok(plan)
}

fn plan(global: &Global, args: &FillPlanArgs) -> anyhow::Result<ExitCode> {
    let topology = Topology::from_toml(&read(&args.topology)?)
        .map_err(|e| Failure::usage(format!("{}: {e}", args.topology.display())))?;
    let popularity = match &args.popularity {
        Some(p) => Popularity::parse(&read(p)?)
            .map_err(|e| Failure::usage(format!("{}: {e}", p.display())))?,
        None => Popularity::default(),
    };
    let now = now_or_clock(args.now.as_deref())?;
    let titles = if args.catalog.starts_with("s3://") {
        let aws = cloud::AwsOptions {
            endpoint: args.endpoint.clone(),
            ..Default::default()
        };
        let store = cloud::S3Store::open(&args.catalog, &aws)
            .map_err(|e| Failure::usage(format!("--catalog: {e}")))?;
        let root = args
            .catalog
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        fill::catalog_store(&store, root).map_err(|e| Failure::io(e.to_string()))?
    } else {
        fill::catalog_dir(std::path::Path::new(&args.catalog))
            .map_err(|e| Failure::io(e.to_string()))?
    };
    let plan = fill::plan(&titles, &args.catalog, &topology, &popularity, now)
        .map_err(|e| Failure::usage(e.to_string()))?;
    output::json(&plan, &args.output)?;
    if !global.quiet {
        let placements: usize = plan.files.iter().map(|f| f.on.len()).sum();
        eprintln!(
            "{} titles, {} files, {placements} placements on {} appliances",
            titles.len(),
            plan.files.len(),
            plan.appliances.len()
        );
        for t in plan
            .titles
            .iter()
            .filter(|t| t.placed == fill::Placed::Partial)
        {
            eprintln!(
                "  {} at {}: partial, rungs {} (left out: {})",
                t.title,
                t.site,
                t.rungs.join(", "),
                t.left_out.join(", ")
            );
        }
    }
    Ok(exit::OK.into())
}

fn fill_run(global: &Global, args: &FillRunArgs) -> anyhow::Result<ExitCode> {
    let plan = load_plan(&args.plan)?;
    let mut options = fill::run::RunOptions::for_plan(&args.plan);
    options.now = time(args.now.as_deref())?;
    options.timeout = std::time::Duration::from_secs(args.timeout.max(1));
    options.trip = args.trip.max(1);
    options.cool_down = std::time::Duration::from_secs(args.cool_down);
    let report = fill::run::run(&plan, &options).map_err(|e| Failure::io(e.to_string()))?;
    output::pretty(&report)?;
    if !global.quiet {
        eprintln!(
            "fill: {} of {} placements done ({} now, {} before), {} missing; {} fallback(s) to \
             the origin",
            report.filled + report.already,
            report.placements,
            report.filled,
            report.already,
            report.missing,
            report.fallbacks
        );
        for (link, bytes) in &report.links {
            eprintln!("  {link}: {bytes} bytes");
        }
        for (site, wait) in &report.outside_window {
            eprintln!("  site {site} is outside its fill window (opens in {wait} s)");
        }
        for (a, n) in &report.breakers_opened {
            eprintln!("  {a}: circuit breaker opened {n} time(s)");
        }
        for f in report.failures.iter().take(10) {
            eprintln!("  failed: {f}");
        }
    }
    Ok(if report.complete() {
        exit::OK
    } else {
        exit::INCOMPLETE
    }
    .into())
}

fn locate(args: &FillLocateArgs) -> anyhow::Result<ExitCode> {
    let plan = load_plan(&args.plan)?;
    let now = now_or_clock(args.now.as_deref())?;
    let urls = fill::locate(&plan, &args.what, &args.site, now)
        .map_err(|e| Failure::rejected(e.to_string()))?;
    output::pretty(&urls)?;
    Ok(exit::OK.into())
}
