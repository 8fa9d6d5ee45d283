//! The tasks: plan, probe, encode, assemble (with the VMAF measure) and package.

use std::path::{Path, PathBuf};

use packager::assemble;
use packager::sink::{Sink, SinkError};
use store::{Key, Store};
use workers::encode::{ChunkSource, EncodeSettings, EncodedChunk, RateControl, encode_chunk};
use workers::queue::Lease;
use workers::worker::TaskFailure;

use super::super::dynamic::StoredProbe;
use super::super::report::RungReport;
use super::super::{Event, package};
use super::{
    Ctx, Input, JobSpec, MeasureRecord, Output, Plan, RenditionRecord, Work, derive, safe_name,
};
use crate::ingest::{IngestReport, Severity};

/// A failure that the store or the network may not repeat.
fn retry(e: impl std::fmt::Display) -> TaskFailure {
    TaskFailure::retry(e.to_string())
}

fn fatal(e: impl std::fmt::Display) -> TaskFailure {
    TaskFailure::fatal(e.to_string())
}

/// Runs one task (not `Advance`, which the caller runs: see [`advance`]).
pub fn execute(ctx: &Ctx, spec: &JobSpec, work: &Work) -> Result<(), TaskFailure> {
    let _span = tracing::info_span!(
        "task",
        job = %ctx.job,
        stage = work.stage(),
        chunk = work.chunk()
    )
    .entered();
    let done = run(ctx, spec, work);
    if done.is_ok() {
        tracing::info!("task done");
    }
    done
}

fn run(ctx: &Ctx, spec: &JobSpec, work: &Work) -> Result<(), TaskFailure> {
    match work {
        Work::Advance { .. } => Err(TaskFailure::fatal("the driver runs in the caller")),
        Work::Plan { .. } => run_plan(ctx, spec),
        Work::Probe {
            chunk,
            settings,
            keys,
            keep,
            ..
        } => run_probe(ctx, spec, *chunk, settings, keys, keep),
        Work::Encode {
            chunk,
            settings,
            key,
            ..
        } => run_encode(ctx, spec, *chunk, settings, key),
        Work::Assemble {
            name,
            settings,
            chunks,
            file,
            record,
            ..
        } => run_assemble(ctx, name, settings, chunks, file, record),
        Work::Measure {
            renditions, record, ..
        } => run_measure(ctx, spec, renditions, record),
        Work::Package {
            renditions, record, ..
        } => run_package(ctx, spec, renditions, record),
    }
}

/// The task's body as a task. A body that is not a task, or whose id or group is not the one
/// the task itself gives (a forged or altered message), is refused: it is buried outside every
/// job, and the task it names stays to run.
pub fn parse(lease: &Lease) -> Result<Work, TaskFailure> {
    let m = &lease.message;
    let work: Work = serde_json::from_str(&m.body)
        .map_err(|e| TaskFailure::refused(format!("unreadable task: {e}")))?;
    let own = work.message();
    let attempt = super::attempt_of(&m.id);
    let expected = if attempt == 0 {
        own.id
    } else {
        format!("{}-a{attempt}", own.id)
    };
    // Messages queued by versions before groups have none; their id still binds them.
    if m.id != expected || (!m.group.is_empty() && m.group != own.group) {
        return Err(TaskFailure::refused(format!(
            "task {} of group {:?} does not match its body (a {} task of job {}, whose id is {expected})",
            m.id,
            m.group,
            work.stage(),
            work.job()
        )));
    }
    Ok(work)
}

fn exists(ctx: &Ctx, rel: &str) -> Result<bool, TaskFailure> {
    let key = ctx.key(rel).map_err(fatal)?;
    ctx.store.exists(&key).map_err(retry)
}

fn put(ctx: &Ctx, rel: &str, body: &[u8]) -> Result<(), TaskFailure> {
    let key = ctx.key(rel).map_err(fatal)?;
    ctx.store.put(&key, body).map_err(retry)
}

fn master(ctx: &Ctx, spec: &JobSpec) -> Result<PathBuf, TaskFailure> {
    ctx.local_file(&spec.master).map_err(retry)
}

fn plan_of(ctx: &Ctx) -> Result<Plan, TaskFailure> {
    ctx.read_fixed("plan.json").map_err(retry)
}

fn source(
    ctx: &Ctx,
    spec: &JobSpec,
    plan: &Plan,
    chunk: usize,
) -> Result<ChunkSource, TaskFailure> {
    let c = plan
        .chunks
        .get(chunk)
        .ok_or_else(|| TaskFailure::fatal(format!("the plan has no chunk {chunk}")))?;
    Ok(ChunkSource {
        path: master(ctx, spec)?,
        stream: plan.stream,
        start_frame: c.start_frame,
        frames: c.frames,
        start_pts: c.start_pts,
        frame_rate: plan.frame_rate,
        decoder_threads: ctx.decoder_threads,
    })
}

fn run_plan(ctx: &Ctx, spec: &JobSpec) -> Result<(), TaskFailure> {
    if exists(ctx, "plan.json")? {
        return Ok(());
    }
    let path = master(ctx, spec)?;
    let mut ingest = spec.options.ingest.clone();
    ingest
        .shots
        .get_or_insert_with(crate::ingest::ShotOptions::default);
    let (started, cpu) = (std::time::Instant::now(), media::cpu::thread_cpu_seconds());
    let report = crate::ingest::analyze(&path, &ingest, &mut |_| {})
        .map_err(|e| TaskFailure::fatal(format!("{}: {e}", spec.master.display().display())))?;
    if !report.accepted {
        return Err(TaskFailure::fatal(rejection(
            &spec.master.display(),
            &report,
        )));
    }
    let mut plan = Plan::from_report(&report).map_err(|e| TaskFailure::fatal(e.to_string()))?;
    // The thread's own clock: other tasks may run in this process (decoder threads are missed).
    plan.spent = super::Spent {
        wall_seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: media::cpu::thread_cpu_seconds() - cpu,
    };
    derive(&spec.options, &plan).map_err(|e| TaskFailure::fatal(e.to_string()))?;
    ctx.write_json("plan.json", &plan).map_err(retry)
}

/// Why a master is rejected, in a line: its first errors with their positions.
pub fn rejection(master: &Path, report: &IngestReport) -> String {
    let errors: Vec<String> = report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .take(3)
        .map(|p| {
            let mut at = Vec::new();
            if let Some(s) = p.at_seconds {
                at.push(format!("at {s:.3} s"));
            }
            if let Some(f) = p.frame {
                at.push(format!("frame {f}"));
            }
            if let Some(b) = p.byte_offset {
                at.push(format!("byte {b}"));
            }
            if at.is_empty() {
                p.message.clone()
            } else {
                format!("{} ({})", p.message, at.join(", "))
            }
        })
        .collect();
    format!(
        "the master {} is rejected: {}",
        master.display(),
        errors.join("; ")
    )
}

fn run_probe(
    ctx: &Ctx,
    spec: &JobSpec,
    chunk: usize,
    settings: &[EncodeSettings],
    keys: &[String],
    keep: &[Option<String>],
) -> Result<(), TaskFailure> {
    let mut todo = Vec::new();
    for (i, (s, k)) in settings.iter().zip(keys).enumerate() {
        if !exists(ctx, k)? {
            todo.push((s.clone(), k, keep.get(i).cloned().flatten()));
        }
    }
    if !todo.is_empty() {
        let plan = plan_of(ctx)?;
        let src = source(ctx, spec, &plan, chunk)?;
        let set: Vec<EncodeSettings> = todo.iter().map(|(s, ..)| s.clone()).collect();
        let every = spec.options.probe_sampling.max(1);
        let run = workers::rd_probe::probe_chunk(&src, &set, &vmaf::Model::v061(), every)
            .map_err(|e| TaskFailure::fatal(e.to_string()))?;
        let share = 1.0 / todo.len() as f64;
        for (((s, k, chunk_key), p), encoded) in todo.iter().zip(run.points).zip(&run.encoded) {
            let RateControl::Crf(crf) = s.rate else {
                return Err(TaskFailure::fatal("a probe without a quality setting"));
            };
            // An anchor at a rung's final settings is that rung's chunk: kept before its point
            // is written (the point marks the task done), with no CPU of its own, since the
            // anchors' stage counts it.
            if let Some(chunk_key) = chunk_key {
                put(ctx, &format!("{chunk_key}.cpu"), b"0")?;
                put(ctx, chunk_key, &encoded.to_bytes())?;
            }
            let stored = StoredProbe {
                crf,
                bits: p.bits,
                frame_bits: p.frame_bits,
                vmaf: p.vmaf,
                scored_every: p.scored_every,
                encode_cpu: run.encode_cpu_seconds * share,
                score_cpu: run.score_cpu_seconds * share,
            };
            put(ctx, k, &serde_json::to_vec(&stored).expect("serialises"))?;
        }
    }
    (ctx.events)(Event::ProbeDone);
    Ok(())
}

fn run_encode(
    ctx: &Ctx,
    spec: &JobSpec,
    chunk: usize,
    settings: &EncodeSettings,
    key: &str,
) -> Result<(), TaskFailure> {
    if exists(ctx, key)? {
        return Ok(());
    }
    let plan = plan_of(ctx)?;
    let src = source(ctx, spec, &plan, chunk)?;
    let t0 = media::cpu::thread_cpu_seconds();
    let encoded = encode_chunk(&src, settings).map_err(|e| TaskFailure::fatal(e.to_string()))?;
    let cpu = media::cpu::thread_cpu_seconds() - t0;
    // The CPU record first: a chunk that exists has one.
    put(ctx, &format!("{key}.cpu"), cpu.to_string().as_bytes())?;
    put(ctx, key, &encoded.to_bytes())?;
    (ctx.events)(Event::ChunkDone { frames: src.frames });
    Ok(())
}

fn run_assemble(
    ctx: &Ctx,
    name: &str,
    settings: &[EncodeSettings],
    chunks: &[String],
    file: &str,
    record: &str,
) -> Result<(), TaskFailure> {
    if exists(ctx, record)? {
        return Ok(());
    }
    let plan = plan_of(ctx)?;
    let spans = plan.spans();
    if settings.len() != spans.len() || chunks.len() != spans.len() {
        return Err(TaskFailure::fatal("the task does not match the plan"));
    }
    (ctx.events)(Event::Assembling(name.to_owned()));
    let assemble_started = media::cpu::thread_cpu_seconds();
    let scratch = scratch_dir(ctx)?;
    let path = scratch.path().join(format!("{}.mp4", safe_name(name)));
    let (assembled, chunk_bits) = join_chunks(ctx, &plan, name, chunks, &path)?;
    let assemble_cpu = media::cpu::thread_cpu_seconds() - assemble_started;
    let encode_cpu = encode_cpu_of(ctx, chunks);
    let fps = plan.frame_rate.to_f64().unwrap_or(25.0);
    let report = RungReport::new(
        name,
        &settings[0],
        assembled,
        &spans,
        &chunk_bits,
        settings,
        fps,
    );
    let key = ctx.key(file).map_err(fatal)?;
    ctx.store.put_file(&key, &path).map_err(retry)?;
    let record_body = serde_json::to_vec_pretty(&RenditionRecord {
        report,
        encode_cpu_seconds: encode_cpu,
        assemble_cpu_seconds: assemble_cpu,
        measure_cpu_seconds: 0.0,
    })
    .expect("serialises");
    put(ctx, record, &record_body)
}

/// Joins a rung's chunks (from the store) into the rendition at `path`; returns it with each
/// chunk's bits. A chunk the store failed to give is worth another attempt.
fn join_chunks(
    ctx: &Ctx,
    plan: &Plan,
    name: &str,
    chunks: &[String],
    path: &Path,
) -> Result<(assemble::Assembled, Vec<u64>), TaskFailure> {
    let spans = plan.spans();
    let mut chunk_bits = vec![0u64; spans.len()];
    let mut transient = None;
    let assembled = assemble::assemble(
        &spans,
        plan.frame_rate,
        &mut |ci| {
            let key = ctx.key(&chunks[ci]).map_err(|e| e.to_string())?;
            let bytes = ctx.store.get(&key).map_err(|e| {
                transient = Some(e.to_string());
                e.to_string()
            })?;
            let chunk = EncodedChunk::from_bytes(&bytes).map_err(|e| e.to_string())?;
            chunk_bits[ci] = chunk.packets.iter().map(|p| p.data.len() as u64 * 8).sum();
            Ok(chunk)
        },
        path,
    );
    match (assembled, transient) {
        (Ok(a), _) => Ok((a, chunk_bits)),
        (Err(e), Some(_)) => Err(TaskFailure::retry(format!("assembling {name}: {e}"))),
        (Err(e), None) => Err(TaskFailure::fatal(format!("assembling {name}: {e}"))),
    }
}

/// CPU seconds the encodes of `chunks` took, as each recorded (`KEY.cpu`).
fn encode_cpu_of(ctx: &Ctx, chunks: &[String]) -> f64 {
    let mut encode_cpu = 0.0;
    for k in chunks {
        if let Ok(Some(cpu)) = ctx
            .key(&format!("{k}.cpu"))
            .map(|key| ctx.store.get(&key).ok())
        {
            encode_cpu += String::from_utf8_lossy(&cpu).parse::<f64>().unwrap_or(0.0);
        }
    }
    encode_cpu
}

/// VMAF of every rendition against the master, frame by frame, in one pass over the master.
fn run_measure(
    ctx: &Ctx,
    spec: &JobSpec,
    renditions: &[(String, String)],
    record: &str,
) -> Result<(), TaskFailure> {
    if exists(ctx, record)? {
        return Ok(());
    }
    let reference = master(ctx, spec)?;
    let scratch = scratch_dir(ctx)?;
    let files = rendition_files(ctx, scratch.path(), renditions)?;
    let paths: Vec<&Path> = files.iter().map(|(_, p)| p.as_path()).collect();
    let what = match renditions {
        [(name, _)] => name.clone(),
        _ => format!("{} renditions", renditions.len()),
    };
    let measured = workers::measure::measure_many(
        &reference,
        &paths,
        &workers::measure::MeasureOptions {
            psnr: false,
            ssim: false,
            per_frame: true,
            ..Default::default()
        },
        &mut |n| (ctx.events)(Event::Measuring(what.clone(), n)),
    )
    .map_err(|e| TaskFailure::fatal(format!("measuring: {e}")))?;
    let out = MeasureRecord {
        cpu_seconds: measured.iter().map(|m| m.cpu_seconds).sum(),
        per_frame_vmaf: measured
            .into_iter()
            .map(|m| {
                m.per_frame
                    .unwrap_or_default()
                    .iter()
                    .map(|f| f.vmaf)
                    .collect()
            })
            .collect(),
    };
    ctx.write_json(record, &out).map_err(retry)
}

/// Local paths of renditions kept in the store: their own file in a local store, otherwise a
/// copy in `scratch`.
fn rendition_files(
    ctx: &Ctx,
    scratch: &Path,
    renditions: &[(String, String)],
) -> Result<Vec<(String, PathBuf)>, TaskFailure> {
    let mut files = Vec::new();
    for (name, key) in renditions {
        let k = ctx.key(key).map_err(fatal)?;
        let path = match ctx.store.local_path(&k) {
            Some(p) => p,
            None => {
                let p = scratch.join(format!("{}.mp4", safe_name(name)));
                ctx.store.get_to_file(&k, &p).map_err(retry)?;
                p
            }
        };
        files.push((name.clone(), path));
    }
    Ok(files)
}

/// A scratch folder in the cache, removed when dropped.
fn scratch_dir(ctx: &Ctx) -> Result<tempfile::TempDir, TaskFailure> {
    let dir = ctx.cache.join(&ctx.job).join("scratch");
    std::fs::create_dir_all(&dir)
        .map_err(|e| TaskFailure::retry(format!("cannot create {}: {e}", dir.display())))?;
    tempfile::tempdir_in(&dir).map_err(|e| {
        TaskFailure::retry(format!("cannot create a folder in {}: {e}", dir.display()))
    })
}

/// Writes packaged files as objects under a prefix of the store.
struct StoreSink<'a> {
    store: &'a dyn Store,
    prefix: String,
    /// Set when the store failed a write (worth another attempt).
    failed: std::sync::atomic::AtomicBool,
}

impl Sink for StoreSink<'_> {
    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), SinkError> {
        packager::sink::check_name(name)?;
        let key = Key::new(format!("{}{name}", self.prefix)).map_err(|_| SinkError::Name {
            name: name.to_owned(),
            reason: "not a valid store key",
        })?;
        self.store.put(&key, bytes).map_err(|e| {
            self.failed
                .store(true, std::sync::atomic::Ordering::Release);
            SinkError::Io {
                path: PathBuf::from(key.as_str()),
                error: std::io::Error::other(e.to_string()),
            }
        })
    }
}

fn run_package(
    ctx: &Ctx,
    spec: &JobSpec,
    renditions: &[(String, String)],
    record: &str,
) -> Result<(), TaskFailure> {
    let Some(options) = &spec.options.package else {
        return Err(TaskFailure::fatal("the job packages nothing"));
    };
    if let (Output::Store, true) = (&spec.output, exists(ctx, record)?) {
        return Ok(());
    }
    (ctx.events)(Event::Packaging);
    let plan = plan_of(ctx)?;
    let master = master(ctx, spec)?;
    let scratch = scratch_dir(ctx)?;
    let files = rendition_files(ctx, scratch.path(), renditions)?;
    type Labelled = package::TrackLabel;
    let resolve = |list: &[(Input, Labelled)]| -> Result<Vec<(PathBuf, Labelled)>, TaskFailure> {
        list.iter()
            .map(|(i, lang)| Ok((ctx.local_file(i).map_err(retry)?, lang.clone())))
            .collect()
    };
    let options = package::PackageOptions {
        audio: resolve(&spec.audio)?,
        subtitles: resolve(&spec.subtitles)?,
        ..options.clone()
    };
    let title = package::Title {
        master: &master,
        origin_seconds: plan.origin_seconds,
        audio: &plan.audio,
        rungs: &files,
    };
    let report = match &spec.output {
        Output::Dir(out) => {
            package::remove_manifests(out).map_err(fatal)?;
            package::package_title(
                &title,
                &packager::sink::DirSink::new(out),
                &out.join(".rungs").join("package"),
                &options,
            )
        }
        Output::Store => {
            let sink = StoreSink {
                store: ctx.store,
                prefix: format!("{}out/", ctx.root),
                failed: Default::default(),
            };
            let done = package::package_title(&title, &sink, scratch.path(), &options);
            if done.is_err() && sink.failed.load(std::sync::atomic::Ordering::Acquire) {
                return Err(TaskFailure::retry(format!(
                    "packaging: {}",
                    done.err().map(|e| e.to_string()).unwrap_or_default()
                )));
            }
            done
        }
    }
    .map_err(|e| TaskFailure::fatal(format!("packaging: {e}")))?;
    ctx.write_json(record, &report).map_err(retry)?;
    // The folder now holds this packaging, whatever an older record says.
    let generation = record
        .trim_end_matches(".json")
        .rsplit('-')
        .next()
        .and_then(|g| g.parse::<u64>().ok())
        .unwrap_or(0);
    ctx.write_json(CURRENT_PACKAGE, &(record, generation))
        .map_err(retry)
}

/// The record of the packaging an output folder holds now, and its generation.
pub const CURRENT_PACKAGE: &str = "package-current.json";
