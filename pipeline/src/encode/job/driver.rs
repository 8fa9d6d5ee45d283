//! The driver: what a job has, what it waits for, and its report at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ladders::title::{Size, TitleDecision};
use workers::encode::{Codec, EncodeSettings, RateControl};

use super::super::dynamic::{self, DecidedRung, ProbeAt, StoredProbe};
use super::super::report::{EncodeReport, LadderReport, StageTime};
use super::super::{EncodeJobError, EncodeOptions, Event, LadderChoice, Probing, package};
use super::{
    Ctx, Derived, Failed, JobSpec, Output, Plan, RenditionRecord, Step, Waiting, Work, derive,
    digest_of, io, now_unix,
};

/// Runs the driver once: reads the job's state, queues what is missing, and says what it
/// waits for, or writes the report when everything is there.
pub fn advance(ctx: &Ctx, spec: &JobSpec) -> Result<Step, EncodeJobError> {
    if let Some(f) = ctx.read_json::<Failed>("failed.json").map_err(io)? {
        return Err(EncodeJobError::Failed(format!("{}: {}", f.task, f.error)));
    }
    let dead: Vec<_> = ctx
        .queue
        .dead_letters()
        .map_err(|e| io(e.to_string()))?
        .into_iter()
        .filter(|d| ctx.owns(&d.message.id))
        .collect();
    if let Some(first) = dead.first() {
        return Err(EncodeJobError::Tasks {
            count: dead.len(),
            first: format!("{}: {}", first.message.id, first.error),
        });
    }
    let waiting = |stage: &str, done: usize, total: usize| {
        Ok(Step::Waiting(Waiting {
            stage: stage.to_owned(),
            done,
            total,
        }))
    };
    let Some(plan) = ctx.read_json::<Plan>("plan.json").map_err(io)? else {
        let task = Work::Plan {
            job: ctx.job.clone(),
        };
        ctx.queue_stage("plan", &[task], None, 0).map_err(io)?;
        return waiting("validating the master and finding its shots", 0, 1);
    };
    let options = &spec.options;
    let d = derive(options, &plan)?;
    let spans = plan.spans();

    let mut decided = if options.ladder.is_dynamic() {
        match decide(ctx, &plan, &d, options)? {
            Ok(x) => Some(x),
            Err(w) => return Ok(Step::Waiting(w)),
        }
    } else {
        None
    };

    // Every chunk's settings in every rung.
    let (names, rung_settings): (Vec<String>, Vec<Vec<EncodeSettings>>) = match &decided {
        None => d
            .fixed
            .iter()
            .map(|(n, s)| (n.clone(), vec![s.clone(); spans.len()]))
            .unzip(),
        Some((_, rungs, probing)) => rungs
            .iter()
            .map(|r| {
                let vbv = dynamic::rung_vbv(options.codec, r.maxrate_kbps);
                let per_chunk = (0..spans.len())
                    .map(|ci| {
                        let (crf, zones) = r.chunk_setting(&probing.units, ci);
                        EncodeSettings {
                            width: r.size.width,
                            height: r.size.height,
                            rate: RateControl::Crf(crf),
                            vbv,
                            zones,
                            ..d.base.clone()
                        }
                    })
                    .collect();
                (r.name.clone(), per_chunk)
            })
            .unzip(),
    };
    for (name, per_chunk) in names.iter().zip(&rung_settings) {
        for s in per_chunk {
            s.validate()
                .map_err(|e| EncodeJobError::Config(format!("rung {name}: {e}")))?;
        }
    }

    // Encode every chunk of every rung (an anchor made at a rung's settings already is one).
    let chunk_key = |ri: usize, ci: usize| chunk_key(ci, &rung_settings[ri][ci]);
    let anchored = |key: &String| {
        decided
            .as_ref()
            .is_some_and(|(_, _, p)| p.anchor_chunks.contains(key))
    };
    let from_anchors = (0..rung_settings.len())
        .flat_map(|ri| (0..spans.len()).map(move |ci| (ri, ci)))
        .filter(|&(ri, ci)| anchored(&chunk_key(ri, ci)))
        .count();
    let have = ctx.list("chunks").map_err(io)?;
    let mut tasks = Vec::new();
    let (mut done, mut done_by_anchors, mut frames_done) = (0, 0, 0);
    // Chunk by chunk, as the probes: the rungs of a chunk read its frames once.
    for (ci, span) in spans.iter().enumerate() {
        for (ri, per_chunk) in rung_settings.iter().enumerate() {
            let Some(s) = per_chunk.get(ci) else {
                continue;
            };
            let key = chunk_key(ri, ci);
            if have.contains(&key) {
                done += 1;
                done_by_anchors += usize::from(anchored(&key));
                frames_done += span.frames;
            } else {
                tasks.push(Work::Encode {
                    job: ctx.job.clone(),
                    chunk: ci,
                    settings: s.clone(),
                    key,
                });
            }
        }
    }
    if let Some((_, _, probing)) = &mut decided {
        probing.chunks_from_anchors = from_anchors;
    }
    let total = names.len() * spans.len();
    let encode_stage = format!("encode-{}", digest_of(&rung_settings));
    if ctx
        .queue_stage(&encode_stage, &tasks, None, done)
        .map_err(io)?
    {
        (ctx.events)(Event::Planned {
            total,
            reused: done - done_by_anchors,
            from_anchors: done_by_anchors,
            frames: spans.iter().map(|c| c.frames).sum::<u64>() * names.len() as u64,
            frames_done,
        });
    }
    if !tasks.is_empty() {
        return waiting("encoding chunks", done, total);
    }

    // Assemble and measure every rung.
    let mut tasks = Vec::new();
    let mut records = Vec::new();
    let have = ctx.list("renditions").map_err(io)?;
    for (ri, (name, per_chunk)) in names.iter().zip(&rung_settings).enumerate() {
        let chunks: Vec<String> = (0..spans.len()).map(|ci| chunk_key(ri, ci)).collect();
        let tag = digest_of(&(&chunks, options.measure));
        let record = format!("renditions/{name}-{tag}.json");
        let file = match spec.output {
            Output::Dir(_) => format!("renditions/{name}-{tag}.mp4"),
            Output::Store => format!("out/{name}.mp4"),
        };
        if !have.contains(&record) {
            tasks.push(Work::Assemble {
                job: ctx.job.clone(),
                name: name.clone(),
                settings: per_chunk.clone(),
                chunks,
                file: file.clone(),
                record: record.clone(),
            });
        }
        records.push((name.clone(), file, record));
    }
    let assemble_stage = format!("assemble-{}", digest_of(&records));
    ctx.queue_stage(&assemble_stage, &tasks, None, records.len() - tasks.len())
        .map_err(io)?;
    if !tasks.is_empty() {
        return waiting(
            "assembling and measuring renditions",
            records.len() - tasks.len(),
            records.len(),
        );
    }
    let mut rung_reports = Vec::new();
    let (mut encode_cpu, mut assemble_cpu, mut measure_cpu) = (0.0, 0.0, 0.0);
    for (name, file, record) in &records {
        let r: RenditionRecord = ctx.read_fixed(record).map_err(io)?;
        assemble_cpu += r.assemble_cpu_seconds;
        measure_cpu += r.measure_cpu_seconds;
        let mut report = r.report;
        report.file = match &spec.output {
            Output::Dir(out) => out.join(format!("{name}.mp4")),
            Output::Store => PathBuf::from(file.trim_start_matches("out/")),
        };
        encode_cpu += r.encode_cpu_seconds;
        rung_reports.push(report);
    }

    // Package.
    let packaged = match &options.package {
        None => None,
        Some(p) => {
            let renditions: Vec<(String, String)> = records
                .iter()
                .map(|(n, f, _)| (n.clone(), f.clone()))
                .collect();
            let record = format!(
                "package-{}.json",
                digest_of(&(&renditions, &records, p, &spec.audio, &spec.subtitles))
            );
            let report: Option<package::PackageReport> = ctx.read_json(&record).map_err(io)?;
            let fresh = match (&report, &spec.output) {
                (Some(_), Output::Dir(out)) => out.join(packager::hls::MASTER).is_file(),
                (Some(_), Output::Store) => true,
                (None, _) => false,
            };
            if !fresh {
                let task = Work::Package {
                    job: ctx.job.clone(),
                    renditions,
                    record: record.clone(),
                };
                let stage = format!("package-{}", digest_of(&record));
                ctx.queue_stage(&stage, &[task], None, 0).map_err(io)?;
                return waiting("packaging for DASH and HLS", 0, 1);
            }
            report
        }
    };

    // The report.
    let cpu = stage_cpu(
        &plan,
        [encode_cpu, assemble_cpu, measure_cpu],
        packaged.as_ref(),
        decided.as_ref().map(|(_, _, p)| p),
    );
    let stages = stage_times(ctx, &plan, &cpu)?;
    let ladder = decided.map(|(decision, rungs, probing)| {
        let mut ladder = LadderReport::new(
            if options.ladder == LadderChoice::Shot {
                "shot"
            } else {
                "per-title"
            },
            &options.rules,
            (&d.probe_preset, options.probe_sampling.max(1)),
            &decision,
            &rungs,
            &probing,
            &rung_reports,
            d.fps,
            encode_cpu,
        );
        let fixed =
            crate::encode::ladder::apple(options.codec, plan.width, plan.height, plan.aspect);
        ladder.fixed_estimate = ladder.estimate_fixed(&fixed);
        ladder
    });
    let frames: u64 = spans.iter().map(|c| c.frames).sum();
    let report = EncodeReport {
        master: spec.master.display(),
        codec: options.codec,
        frames,
        frame_rate: plan.frame_rate,
        duration_seconds: frames as f64 / d.fps,
        audio_duration_seconds: plan.audio_duration_seconds,
        chunks: spans.len(),
        // The anchors' encodes were there before the stage, but no earlier run made them.
        reused_chunk_encodes: ctx.stage_reused(&encode_stage).saturating_sub(from_anchors),
        workers: ctx.workers,
        encode_cpu_seconds: (encode_cpu * 1e4).round() / 1e4,
        rungs: rung_reports,
        ladder,
        package: packaged,
        stages,
    };
    let json = serde_json::to_vec_pretty(&report).expect("report serialises");
    match &spec.output {
        Output::Dir(out) => {
            for (name, file, _) in &records {
                let from = ctx
                    .store
                    .local_path(&ctx.key(file).map_err(io)?)
                    .ok_or_else(|| io(format!("rendition {file} is not a local file")))?;
                export(&from, &out.join(format!("{name}.mp4")))?;
            }
            let path = out.join("report.json");
            store::fsutil::write_file_atomic(&path, |f| std::io::Write::write_all(f, &json))
                .map_err(|e| io(format!("cannot write {}: {e}", path.display())))?;
        }
        Output::Store => {
            ctx.store
                .put(&ctx.key("out/report.json").map_err(io)?, &json)
                .map_err(|e| io(e.to_string()))?;
            ctx.write_json("done.json", &serde_json::json!({ "finished": now_unix() }))
                .map_err(io)?;
        }
    }
    Ok(Step::Done(Box::new(report)))
}

/// The stages of a job, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Plan,
    ProbeEncode,
    ProbeScore,
    AnchorEncode,
    AnchorScore,
    FinalEncode,
    Assembly,
    Measurement,
    Packaging,
    Thumbnails,
}

impl Stage {
    const ALL: [Stage; 10] = [
        Stage::Plan,
        Stage::ProbeEncode,
        Stage::ProbeScore,
        Stage::AnchorEncode,
        Stage::AnchorScore,
        Stage::FinalEncode,
        Stage::Assembly,
        Stage::Measurement,
        Stage::Packaging,
        Stage::Thumbnails,
    ];

    fn name(self) -> &'static str {
        match self {
            Stage::Plan => "plan",
            Stage::ProbeEncode => "probe encode",
            Stage::ProbeScore => "probe score",
            Stage::AnchorEncode => "anchor encode",
            Stage::AnchorScore => "anchor score",
            Stage::FinalEncode => "final encode",
            Stage::Assembly => "assembly",
            Stage::Measurement => "measurement",
            Stage::Packaging => "packaging",
            Stage::Thumbnails => "thumbnails",
        }
    }

    /// The stages whose tasks a queued stage marker (`stages/NAME.json`) stands for.
    fn of_marker(name: &str) -> &'static [Stage] {
        match name.split(['-', '.']).next().unwrap_or_default() {
            "plan" => &[Stage::Plan],
            "probes" => &[Stage::ProbeEncode, Stage::ProbeScore],
            "anchors" => &[Stage::AnchorEncode, Stage::AnchorScore],
            "encode" => &[Stage::FinalEncode],
            "assemble" => &[Stage::Assembly, Stage::Measurement],
            "package" => &[Stage::Packaging, Stage::Thumbnails],
            _ => &[],
        }
    }
}

/// CPU seconds of every stage as the tasks recorded them: the three figures are the final encodes',
/// the assembly's and the measurement's.
fn stage_cpu(
    plan: &Plan,
    [encode, assemble, measure]: [f64; 3],
    packaged: Option<&package::PackageReport>,
    probing: Option<&Probing>,
) -> BTreeMap<Stage, f64> {
    let thumbnails = packaged.map_or(0.0, |p| p.thumbnails_cpu_seconds);
    let mut cpu = BTreeMap::from([
        (Stage::Plan, plan.spent.cpu_seconds),
        (Stage::FinalEncode, encode),
        (Stage::Assembly, assemble),
        (Stage::Measurement, measure),
        (
            Stage::Packaging,
            packaged.map_or(0.0, |p| p.cpu_seconds) - thumbnails,
        ),
        (Stage::Thumbnails, thumbnails),
    ]);
    if let Some(p) = probing {
        cpu.extend([
            (Stage::ProbeEncode, p.encode_cpu_seconds),
            (Stage::ProbeScore, p.score_cpu_seconds),
            (Stage::AnchorEncode, p.anchor_encode_cpu_seconds),
            (Stage::AnchorScore, p.anchor_score_cpu_seconds),
        ]);
    }
    cpu
}

/// Wall and CPU seconds of every stage: CPU as the tasks recorded it (`cpu`), wall from the
/// times the stage markers were queued, each stage lasting until the next was queued (the
/// last until now), split by CPU between stages that share their tasks.
fn stage_times(
    ctx: &Ctx,
    plan: &Plan,
    cpu: &BTreeMap<Stage, f64>,
) -> Result<Vec<StageTime>, EncodeJobError> {
    let mut marks: Vec<(u64, String)> = Vec::new();
    for key in ctx.list("stages").map_err(io)? {
        let queued = ctx
            .read_json::<serde_json::Value>(&key)
            .map_err(io)?
            .and_then(|v| v["queued_ms"].as_u64());
        if let Some(t) = queued {
            let name = key.trim_start_matches("stages/").to_owned();
            marks.push((t, name));
        }
    }
    marks.sort();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut wall: BTreeMap<Stage, f64> = BTreeMap::new();
    for (i, (t, name)) in marks.iter().enumerate() {
        let end = marks.get(i + 1).map_or(now, |m| m.0);
        let seconds = end.saturating_sub(*t) as f64 / 1000.0;
        let shared = Stage::of_marker(name);
        let total: f64 = shared
            .iter()
            .map(|s| cpu.get(s).copied().unwrap_or(0.0))
            .sum();
        for s in shared {
            let share = if total > 0.0 {
                cpu.get(s).copied().unwrap_or(0.0) / total
            } else {
                1.0 / shared.len() as f64
            };
            *wall.entry(*s).or_default() += seconds * share;
        }
    }
    // A local job validates its master before anything is queued.
    wall.entry(Stage::Plan).or_insert(plan.spent.wall_seconds);
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Ok(Stage::ALL
        .iter()
        .filter(|s| wall.contains_key(s) || cpu.get(s).is_some_and(|c| *c > 0.0))
        .map(|s| StageTime {
            stage: s.name().to_owned(),
            wall_seconds: round(wall.get(s).copied().unwrap_or(0.0)),
            cpu_seconds: round(cpu.get(s).copied().unwrap_or(0.0)),
        })
        .collect())
}

/// Where the chunk `ci` encoded with `settings` is kept: by what it is, so that whichever
/// task made it (a rung's encode, or an anchor at the same settings) the others find it.
fn chunk_key(ci: usize, settings: &EncodeSettings) -> String {
    format!("chunks/{ci:05}-{}.chunk", digest_of(settings))
}

/// Puts the rendition `from` (in the local store) at `to`: a hard link, or a copy across
/// file systems.
fn export(from: &Path, to: &Path) -> Result<(), EncodeJobError> {
    let fail = |e: std::io::Error| io(format!("cannot write {}: {e}", to.display()));
    match std::fs::remove_file(to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    if std::fs::hard_link(from, to).is_err() {
        store::fsutil::write_file_atomic(to, |f| {
            std::io::copy(&mut std::fs::File::open(from)?, f).map(drop)
        })
        .map_err(fail)?;
    }
    Ok(())
}

type Decided = (TitleDecision, Vec<DecidedRung>, Probing);

/// Probe points, `[chunk][size index]`.
type Points = Vec<BTreeMap<usize, Vec<StoredProbe>>>;

/// Probes, anchors and decides a per-title or shot-level ladder from what the store holds;
/// queues the next round when it is missing.
fn decide(
    ctx: &Ctx,
    plan: &Plan,
    d: &Derived,
    options: &EncodeOptions,
) -> Result<Result<Decided, Waiting>, EncodeJobError> {
    let n = plan.chunks.len();
    let shot = options.ladder == LadderChoice::Shot;
    let units = dynamic::units(
        &plan
            .chunks
            .iter()
            .map(|c| (c.start_frame, c.frames, c.merged_cuts.clone()))
            .collect::<Vec<_>>(),
        shot && matches!(options.codec, Codec::H264 | Codec::Hevc),
        (d.fps / 2.0).round().max(1.0) as u64,
    );
    let config = |e: String| EncodeJobError::Config(e);
    let mut measured: Vec<BTreeMap<usize, Vec<f32>>> = vec![BTreeMap::new(); n];
    let mut points: Vec<BTreeMap<usize, Vec<StoredProbe>>> = vec![BTreeMap::new(); n];
    let mut pooled: Option<TitleDecision> = None;
    let mut probing = Probing::default();
    for round in 0..dynamic::MAX_ROUNDS {
        let next = dynamic::next_round(
            round,
            options.codec,
            &d.sizes,
            &measured,
            pooled.as_ref(),
            &options.rules,
        );
        if next.is_empty() {
            break;
        }
        for (si, crfs) in &next {
            probing.encodes += crfs.len() * n;
            probing.encoded_pixels += crfs.len() as u64 * d.sizes[*si].pixels();
        }
        let next: Vec<(usize, Vec<ProbeAt>)> = next
            .into_iter()
            .map(|(si, crfs)| (si, crfs.into_iter().map(ProbeAt::crf).collect()))
            .collect();
        let got = match gather(ctx, plan, d, &next, round + 1, false)? {
            Ok(got) => got,
            Err(w) => return Ok(Err(w)),
        };
        probing.rounds = round + 1;
        for (ci, by_size) in got.into_iter().enumerate() {
            for (si, ps) in by_size {
                for p in &ps {
                    probing.encode_cpu_seconds += p.encode_cpu;
                    probing.score_cpu_seconds += p.score_cpu;
                }
                measured[ci]
                    .entry(si)
                    .or_default()
                    .extend(ps.iter().map(|p| p.crf));
                points[ci].entry(si).or_default().extend(ps);
            }
        }
        let chunks = dynamic::chunk_probes(&d.sizes, &points, &units);
        pooled = Some(
            ladders::title::decide(&chunks, d.fps, &options.rules)
                .map_err(|e| config(format!("ladder decision: {e}")))?,
        );
    }
    let mut chunks = dynamic::chunk_probes(&d.sizes, &points, &units);
    let mut decision = pooled.ok_or_else(|| config("nothing was probed".into()))?;
    if d.probe_preset != d.preset {
        match anchor(
            ctx,
            plan,
            d,
            options,
            &units,
            &mut probing,
            decision,
            chunks,
        )? {
            Ok((anchored, corrected)) => (decision, chunks) = (anchored, corrected),
            Err(w) => return Ok(Err(w)),
        }
    }
    let rungs = dynamic::rungs(
        &decision,
        &chunks,
        d.fps,
        &options.rules,
        options.codec,
        shot,
    )
    .map_err(|e| config(format!("shot optimiser: {e}")))?;
    probing.chunks = chunks;
    probing.units = units;
    probing.grid_encodes = 7 * d.sizes.len() * n;
    probing.grid_pixels = 7 * d.sizes.iter().map(|s| s.pixels()).sum::<u64>();
    Ok(Ok((decision, rungs, probing)))
}

/// Probes at a faster preset than the final one rank settings, but their bits and quality are
/// off: anchors at the final preset, where the rungs fell, correct every curve, and the
/// decision is made again on the corrected curves. When the corrected decision moves a rung to
/// a resolution with no anchors yet, that one is anchored too. Rungs near an anchor then move
/// onto it, so that its encodes are theirs. Returns the corrected decision and curves, or
/// queues the next round of anchors.
#[allow(clippy::too_many_arguments)]
fn anchor(
    ctx: &Ctx,
    plan: &Plan,
    d: &Derived,
    options: &EncodeOptions,
    units: &[dynamic::Unit],
    probing: &mut Probing,
    mut decision: TitleDecision,
    mut chunks: Vec<ladders::title::ChunkProbes>,
) -> Result<Result<(TitleDecision, Vec<ladders::title::ChunkProbes>), Waiting>, EncodeJobError> {
    let n = plan.chunks.len();
    let config = |e: String| EncodeJobError::Config(e);
    let raw = chunks.clone();
    let mut got = vec![BTreeMap::<usize, Vec<StoredProbe>>::new(); n];
    let mut made: Vec<(Size, ProbeAt)> = Vec::new();
    for _ in 0..dynamic::MAX_ROUNDS {
        let anchored: BTreeMap<usize, Vec<f32>> = got
            .first()
            .map(|g| {
                g.iter()
                    .map(|(si, ps)| (*si, ps.iter().map(|p| p.crf).collect()))
                    .collect()
            })
            .unwrap_or_default();
        let next = dynamic::unanchored(
            dynamic::anchors(&decision, &d.sizes, options.codec),
            &anchored,
            options.codec,
        );
        if next.is_empty() {
            break;
        }
        for (si, ats) in &next {
            probing.anchor_encodes += ats.len() * n;
            probing.anchor_pixels += ats.len() as u64 * d.sizes[*si].pixels();
            made.extend(ats.iter().map(|a| (d.sizes[*si], *a)));
        }
        probing.anchor_rounds += 1;
        let round = probing.rounds + probing.anchor_rounds;
        let more = match gather(ctx, plan, d, &next, round, true)? {
            Ok(more) => more,
            Err(w) => return Ok(Err(w)),
        };
        for (into, more) in got.iter_mut().zip(more) {
            for ps in more.values() {
                for p in ps {
                    probing.anchor_encode_cpu_seconds += p.encode_cpu;
                    probing.anchor_score_cpu_seconds += p.score_cpu;
                }
            }
            // A resolution anchored again keeps its earlier anchors.
            for (si, ps) in more {
                into.entry(si).or_default().extend(ps);
            }
        }
        let anchor_points = dynamic::unit_points(&d.sizes, &got, units);
        let (corrected, corrections) =
            dynamic::calibrate(&raw, &anchor_points, dynamic::max_shift(options.codec));
        decision = ladders::title::decide(&corrected, d.fps, &options.rules)
            .map_err(|e| config(format!("ladder decision: {e}")))?;
        chunks = corrected;
        probing.corrections = corrections;
        probing.anchor_points = anchor_points;
    }
    probing.rungs_on_anchors =
        dynamic::settle_on_anchors(&mut decision, &made, &options.rules, options.codec);
    probing.anchor_chunks = made
        .iter()
        .flat_map(|&(size, at)| {
            let s = probe_settings(d, size, at, true);
            (0..n).map(move |ci| chunk_key(ci, &s))
        })
        .collect();
    Ok(Ok((decision, chunks)))
}

/// The settings of a probe: an anchor's are a rung's final settings, a probe's are at the probe
/// preset, uncapped.
fn probe_settings(d: &Derived, size: Size, at: ProbeAt, anchor: bool) -> EncodeSettings {
    EncodeSettings {
        width: size.width,
        height: size.height,
        rate: RateControl::Crf(at.crf),
        preset: if anchor {
            d.preset.clone()
        } else {
            d.probe_preset.clone()
        },
        vbv: at.vbv,
        ..d.base.clone()
    }
}

/// The points of one round of probes (every chunk at the given settings of each resolution),
/// `[chunk][size]`; queues the round's tasks when some are missing.
fn gather(
    ctx: &Ctx,
    plan: &Plan,
    d: &Derived,
    next: &[(usize, Vec<ProbeAt>)],
    round: usize,
    anchor: bool,
) -> Result<Result<Points, Waiting>, EncodeJobError> {
    let key_of = |size: Size, chunk: usize, at: ProbeAt| {
        if anchor {
            dynamic::anchor_key(size, chunk, at)
        } else {
            dynamic::probe_key(size, chunk, at.crf)
        }
        .as_str()
        .to_owned()
    };

    let have = ctx
        .list(if anchor { "anchors" } else { "probes" })
        .map_err(io)?;
    let mut tasks = Vec::new();
    let mut done = 0;
    // Chunk by chunk, so that a chunk's tasks run close together and read its frames from
    // the workers' memory rather than decoding them again.
    for ci in 0..plan.chunks.len() {
        for (si, ats) in next {
            let size = d.sizes[*si];
            let keys: Vec<String> = ats.iter().map(|&a| key_of(size, ci, a)).collect();
            if keys.iter().all(|k| have.contains(k)) {
                done += 1;
                continue;
            }
            let settings: Vec<EncodeSettings> = ats
                .iter()
                .map(|&a| probe_settings(d, size, a, anchor))
                .collect();
            let keep = if anchor {
                settings.iter().map(|s| Some(chunk_key(ci, s))).collect()
            } else {
                Vec::new()
            };
            tasks.push(Work::Probe {
                job: ctx.job.clone(),
                chunk: ci,
                settings,
                keys,
                keep,
            });
        }
    }
    let total = done + tasks.len();
    if !tasks.is_empty() {
        let kind = if anchor { "anchors" } else { "probes" };
        let stage = format!("{kind}-{round}-{}", digest_of(next));
        if ctx.queue_stage(&stage, &tasks, None, done).map_err(io)? {
            (ctx.events)(Event::Probing {
                round,
                total,
                reused: done,
            });
        }
        return Ok(Err(Waiting {
            stage: format!("probing, round {round}"),
            done,
            total,
        }));
    }
    let mut got = vec![BTreeMap::<usize, Vec<StoredProbe>>::new(); plan.chunks.len()];
    for (si, ats) in next {
        for (ci, by_size) in got.iter_mut().enumerate() {
            for &at in ats {
                let p: StoredProbe = ctx
                    .read_fixed(&key_of(d.sizes[*si], ci, at))
                    .map_err(|e| io(format!("probe: {e}")))?;
                by_size.entry(*si).or_default().push(p);
            }
        }
    }
    Ok(Ok(got))
}
