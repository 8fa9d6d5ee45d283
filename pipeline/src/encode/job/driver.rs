//! The driver: what a job has, what it waits for, and its report at the end.
//!
//! One run of the driver goes through the stages in order (plan, decide, encode, assemble,
//! package, report); each stage either has everything it needs in the store, or queues what
//! is missing and says what it waits for. Every stage runs in a `stage` span that carries the
//! job and the stage, so that `--log-format json` can be followed per job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ladders::title::{Size, TitleDecision};
use packager::assemble::ChunkSpan;
use workers::encode::{Codec, EncodeSettings, RateControl};

use super::super::dynamic::{self, DecidedRung, ProbeAt, StoredProbe};
use super::super::report::{CodecReport, EncodeReport, LadderReport, RungReport, StageTime};
use super::super::{EncodeJobError, Event, LadderChoice, Probing, package};
use super::{
    Ctx, Derived, Failed, JobSpec, MeasureRecord, Output, Plan, RenditionRecord, Step, Waiting,
    Work, derive, digest_of, now_unix,
};

/// A stage's outcome: its value, or what it waits for.
type Ready<T> = Result<T, Waiting>;

/// The value of a stage, or returns from the driver with what the stage waits for.
macro_rules! ready {
    ($stage:expr) => {
        match $stage? {
            Ok(value) => value,
            Err(waiting) => return Ok(Step::Waiting(waiting)),
        }
    };
}

/// Renditions measured in one pass (one task): the master is decoded once for them all, and
/// memory holds a few frames of each (about 150 MB for eight rungs of a 1080p master); a
/// larger ladder is measured by several tasks, which a fleet runs side by side.
const MEASURE_GROUP: usize = 8;

/// The value of a stage, or returns from the calling stage with what it waits for.
macro_rules! or_wait {
    ($stage:expr) => {
        match $stage? {
            Ok(value) => value,
            Err(waiting) => return Ok(Err(waiting)),
        }
    };
}

/// A stage waiting for `done` of `total` tasks.
fn waiting<T>(stage: &str, done: usize, total: usize) -> Result<Ready<T>, EncodeJobError> {
    tracing::info!(done, total, "waiting: {stage}");
    Ok(Err(Waiting {
        stage: stage.to_owned(),
        done,
        total,
    }))
}

/// The span of one stage of the driver, carrying the job and the stage.
fn stage_span(ctx: &Ctx, stage: &'static str) -> tracing::span::EnteredSpan {
    tracing::info_span!("stage", job = %ctx.job, stage).entered()
}

/// Runs the driver once: reads the job's state, queues what is missing, and says what it
/// waits for, or writes the report when everything is there.
///
/// Each codec of the title is a lane (decide, encode, assemble) that goes at its own pace:
/// one codec's final encodes are queued while another still probes. The lanes join to be
/// measured, packaged and reported together.
pub fn advance(ctx: &Ctx, spec: &JobSpec) -> Result<Step, EncodeJobError> {
    check_failures(ctx)?;
    let plan = ready!(planned(ctx));
    let ds = derive(&spec.options, &plan)?;
    let job = Job {
        ctx,
        spec,
        spans: plan.spans(),
        plan,
        ds,
    };
    let mut lanes = Vec::new();
    let mut waits = Vec::new();
    for d in &job.ds {
        match job.lane(d)? {
            Ok(lane) => lanes.push(lane),
            Err(w) => waits.push((d.codec, w)),
        }
    }
    if !waits.is_empty() {
        return Ok(Step::Waiting(merge(waits, job.ds.len() > 1)));
    }
    let measure_cpu = ready!(job.measure(&mut lanes));
    let titles: Vec<(String, String, String)> = lanes
        .iter()
        .flat_map(|l| l.assembled.records[..l.rungs.title].iter().cloned())
        .collect();
    let packaged = ready!(job.package(&titles));
    let report = job.report(lanes, measure_cpu, packaged)?;
    Ok(Step::Done(Box::new(report)))
}

/// What the lanes wait for, as one: a single lane's as it is, several summed, each named by
/// its codec.
fn merge(waits: Vec<(Codec, Waiting)>, several: bool) -> Waiting {
    if !several && waits.len() == 1 {
        return waits.into_iter().next().expect("one wait").1;
    }
    Waiting {
        stage: waits
            .iter()
            .map(|(c, w)| format!("{}: {}", c.name(), w.stage))
            .collect::<Vec<_>>()
            .join("; "),
        done: waits.iter().map(|(_, w)| w.done).sum(),
        total: waits.iter().map(|(_, w)| w.total).sum(),
    }
}

/// A job fails when a task recorded a failure (`failed.json`) or when tasks of this attempt
/// went to the dead-letter list.
fn check_failures(ctx: &Ctx) -> Result<(), EncodeJobError> {
    if let Some(f) = ctx.read_json::<Failed>("failed.json")? {
        return Err(EncodeJobError::Failed(format!("{}: {}", f.task, f.error)));
    }
    let dead = ctx.dead_letters()?;
    match dead.first() {
        Some(first) => Err(EncodeJobError::Tasks {
            count: dead.len(),
            first: format!("{}: {}", first.message.id, first.error),
        }),
        None => Ok(()),
    }
}

/// The plan stage: the master validated and cut into chunks (`plan.json`), or its task queued.
fn planned(ctx: &Ctx) -> Result<Ready<Plan>, EncodeJobError> {
    let _stage = stage_span(ctx, "plan");
    if let Some(plan) = ctx.read_json::<Plan>("plan.json")? {
        return Ok(Ok(plan));
    }
    let task = Work::Plan {
        job: ctx.job.clone(),
    };
    ctx.queue_stage("plan", &[task], None, 0)?;
    waiting("validating the master and finding its shots", 0, 1)
}

/// What every stage after the plan works with.
struct Job<'a> {
    ctx: &'a Ctx<'a>,
    spec: &'a JobSpec,
    plan: Plan,
    /// One per codec.
    ds: Vec<Derived>,
    spans: Vec<ChunkSpan>,
}

/// One codec's renditions, decided, encoded and assembled.
struct Lane<'d> {
    d: &'d Derived,
    decided: Option<Decided>,
    rungs: Rungs,
    encoded: Encoded,
    assembled: Assembled,
}

/// The rungs to encode: names, and every chunk's settings in every rung. The first `title`
/// are the title's; after them come Apple's rungs encoded only to compare with
/// (`compare_fixed`).
struct Rungs {
    names: Vec<String>,
    settings: Vec<Vec<EncodeSettings>>,
    title: usize,
}

impl Rungs {
    /// Where rung `ri`'s chunk `ci` is kept.
    fn chunk_key(&self, ri: usize, ci: usize) -> String {
        chunk_key(ci, &self.settings[ri][ci])
    }
}

/// What the encode stage found, for the report.
struct Encoded {
    /// The stage's marker name.
    stage: String,
    /// Chunks that are anchors' encodes.
    from_anchors: usize,
}

/// The assembled and measured renditions.
struct Assembled {
    /// Each rung's name, rendition key and record key.
    records: Vec<(String, String, String)>,
    /// Each rung's report.
    rungs: Vec<RungReport>,
    /// CPU seconds of the final encodes, the assembly and (by an earlier version of the job)
    /// the measurement.
    cpu: [f64; 3],
}

impl Job<'_> {
    /// One codec's lane: its ladder decided (for dynamic ladders), its rungs encoded and
    /// assembled.
    fn lane<'d>(&self, d: &'d Derived) -> Result<Ready<Lane<'d>>, EncodeJobError> {
        let mut decided = if self.spec.options.ladder.is_dynamic() {
            let _stage = stage_span(self.ctx, "decide");
            Some(or_wait!(decide(self, d)))
        } else {
            None
        };
        let rungs = self.rungs(d, decided.as_ref())?;
        let encoded = or_wait!(self.encode(d, &rungs, decided.as_mut()));
        let assembled = or_wait!(self.assemble(d, &rungs));
        Ok(Ok(Lane {
            d,
            decided,
            rungs,
            encoded,
            assembled,
        }))
    }

    /// Every chunk's settings in every rung: the fixed ladder's, or the decided rungs' (a
    /// setting per chunk, with zones, in shot mode); all checked.
    fn rungs(&self, d: &Derived, decided: Option<&Decided>) -> Result<Rungs, EncodeJobError> {
        let n = self.spans.len();
        let (names, settings): (Vec<String>, Vec<Vec<EncodeSettings>>) = match decided {
            None => d
                .fixed
                .iter()
                .map(|(name, s)| (name.clone(), vec![s.clone(); n]))
                .unzip(),
            Some((_, rungs, probing)) => rungs
                .iter()
                .map(|r| {
                    let vbv = dynamic::rung_vbv(d.codec, r.maxrate_kbps);
                    let per_chunk = (0..n)
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
        for (name, per_chunk) in names.iter().zip(&settings) {
            for s in per_chunk {
                s.validate()
                    .map_err(|e| EncodeJobError::Config(format!("rung {name}: {e}")))?;
            }
        }
        let title = names.len();
        let (mut names, mut settings) = (names, settings);
        for (name, s) in &d.compare {
            names.push(name.clone());
            settings.push(vec![s.clone(); n]);
        }
        Ok(Rungs {
            names,
            settings,
            title,
        })
    }

    /// The encode stage: every chunk of every rung (an anchor made at a rung's settings
    /// already is one), chunk by chunk as the probes, so that the rungs of a chunk read its
    /// frames once.
    fn encode(
        &self,
        d: &Derived,
        rungs: &Rungs,
        decided: Option<&mut Decided>,
    ) -> Result<Ready<Encoded>, EncodeJobError> {
        let ctx = self.ctx;
        let _stage = stage_span(ctx, "encode");
        let anchored = |key: &String| {
            decided
                .as_ref()
                .is_some_and(|(_, _, p)| p.anchor_chunks.contains(key))
        };
        let every = || {
            (0..rungs.settings.len()).flat_map(|ri| (0..self.spans.len()).map(move |ci| (ri, ci)))
        };
        let from_anchors = every()
            .filter(|&(ri, ci)| anchored(&rungs.chunk_key(ri, ci)))
            .count();
        let have = ctx.list("chunks")?;
        let mut tasks = Vec::new();
        let (mut done, mut done_by_anchors, mut frames_done) = (0, 0, 0);
        for (ci, span) in self.spans.iter().enumerate() {
            for (ri, per_chunk) in rungs.settings.iter().enumerate() {
                let Some(s) = per_chunk.get(ci) else {
                    continue;
                };
                let key = rungs.chunk_key(ri, ci);
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
        if let Some((_, _, probing)) = decided {
            probing.chunks_from_anchors = from_anchors;
        }
        let total = rungs.names.len() * self.spans.len();
        let stage = format!("encode-{}", digest_of(&rungs.settings));
        if ctx.queue_stage(&stage, &tasks, None, done)? {
            (ctx.events)(Event::Planned {
                codec: d.codec,
                total,
                reused: done - done_by_anchors,
                from_anchors: done_by_anchors,
                frames: self.spans.iter().map(|c| c.frames).sum::<u64>() * rungs.names.len() as u64,
                frames_done,
            });
        }
        if !tasks.is_empty() {
            return waiting("encoding chunks", done, total);
        }
        Ok(Ok(Encoded {
            stage,
            from_anchors,
        }))
    }

    /// The assemble stage: every rung joined from its chunks, each rung's record written last
    /// by its task.
    fn assemble(&self, d: &Derived, rungs: &Rungs) -> Result<Ready<Assembled>, EncodeJobError> {
        let (ctx, spec) = (self.ctx, self.spec);
        let _stage = stage_span(ctx, "assemble");
        let mut tasks = Vec::new();
        let mut records = Vec::new();
        let have = ctx.list("renditions")?;
        for (ri, (name, per_chunk)) in rungs.names.iter().zip(&rungs.settings).enumerate() {
            let chunks: Vec<String> = (0..self.spans.len())
                .map(|ci| rungs.chunk_key(ri, ci))
                .collect();
            // The tag keeps the form it had when assembly also measured, so that a job started
            // by an earlier version resumes with its renditions.
            let tag = digest_of(&(&chunks, spec.options.measure));
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
        let stage = format!("assemble-{}", digest_of(&records));
        let done = records.len() - tasks.len();
        ctx.queue_stage(&stage, &tasks, None, done)?;
        if !tasks.is_empty() {
            return waiting("assembling renditions", done, records.len());
        }
        let mut reports = Vec::new();
        let mut cpu = [0.0; 3];
        for (name, file, record) in &records {
            let r: RenditionRecord = ctx.read_fixed(record)?;
            cpu[0] += r.encode_cpu_seconds;
            cpu[1] += r.assemble_cpu_seconds;
            cpu[2] += r.measure_cpu_seconds;
            let mut report = r.report;
            if self.ds.len() > 1 {
                report.codec = Some(d.codec);
            }
            report.file = match &spec.output {
                Output::Dir(out) => out.join(format!("{name}.mp4")),
                Output::Store => PathBuf::from(file.trim_start_matches("out/")),
            };
            reports.push(report);
        }
        Ok(Ok(Assembled {
            records,
            rungs: reports,
            cpu,
        }))
    }

    /// The measure stage: every rendition's VMAF (of every codec) against the master, in
    /// groups that each decode the master once (a task each), taken into the rungs' reports.
    /// Nothing when the job measures nothing. Returns the CPU seconds it took, if it ran.
    fn measure(&self, lanes: &mut [Lane]) -> Result<Ready<Option<f64>>, EncodeJobError> {
        let (ctx, spec) = (self.ctx, self.spec);
        let all: Vec<(String, String, String)> = lanes
            .iter()
            .flat_map(|l| l.assembled.records.iter().cloned())
            .collect();
        // Renditions assembled and measured by an earlier version of the job keep their VMAF.
        let mut rungs: Vec<&mut RungReport> = lanes
            .iter_mut()
            .flat_map(|l| l.assembled.rungs.iter_mut())
            .collect();
        if !spec.options.measure || rungs.iter().all(|r| r.per_frame_vmaf.is_some()) {
            return Ok(Ok(None));
        }
        let _stage = stage_span(ctx, "measure");
        let groups: Vec<&[(String, String, String)]> = all.chunks(MEASURE_GROUP).collect();
        let record = |g: &[(String, String, String)]| format!("measure-{}.json", digest_of(g));
        let mut tasks = Vec::new();
        let mut measured = Vec::new();
        for g in &groups {
            match ctx.read_json::<MeasureRecord>(&record(g))? {
                Some(m) if m.per_frame_vmaf.len() == g.len() => measured.push(m),
                Some(m) => {
                    return Err(EncodeJobError::Config(format!(
                        "{} holds {} renditions, not {}",
                        record(g),
                        m.per_frame_vmaf.len(),
                        g.len()
                    )));
                }
                None => tasks.push(Work::Measure {
                    job: ctx.job.clone(),
                    renditions: g.iter().map(|(n, f, _)| (n.clone(), f.clone())).collect(),
                    record: record(g),
                }),
            }
        }
        if !tasks.is_empty() {
            let stage = format!("measure-{}", digest_of(&all));
            ctx.queue_stage(&stage, &tasks, None, measured.len())?;
            return waiting("measuring renditions", measured.len(), groups.len());
        }
        let per_frame = measured.iter().flat_map(|m| &m.per_frame_vmaf);
        for (rung, per_frame) in rungs.iter_mut().zip(per_frame) {
            rung.set_vmaf(per_frame);
        }
        Ok(Ok(Some(measured.iter().map(|m| m.cpu_seconds).sum())))
    }

    /// The package stage: the title packaged for DASH and HLS (a record per set of inputs),
    /// or nothing when the job packages nothing.
    fn package(
        &self,
        records: &[(String, String, String)],
    ) -> Result<Ready<Option<package::PackageReport>>, EncodeJobError> {
        let (ctx, spec) = (self.ctx, self.spec);
        let _stage = stage_span(ctx, "package");
        let Some(p) = &spec.options.package else {
            return Ok(Ok(None));
        };
        let renditions: Vec<(String, String)> = records
            .iter()
            .map(|(n, f, _)| (n.clone(), f.clone()))
            .collect();
        let options = digest_of(&(&renditions, records, p, &spec.audio, &spec.subtitles));
        // An output folder may have been packaged since with other options (other keys,
        // subtitles…): it holds the packaging its marker names, and packaging again takes the
        // next generation, so the task is new to the queue.
        let (record, fresh) = match &spec.output {
            Output::Dir(out) => {
                let current: Option<(String, u64)> =
                    ctx.read_json(super::tasks::CURRENT_PACKAGE)?;
                match current {
                    Some((r, _))
                        if r.starts_with(&format!("package-{options}-"))
                            && out.join(packager::hls::MASTER).is_file() =>
                    {
                        (r, true)
                    }
                    Some((_, generation)) => {
                        (format!("package-{options}-{}.json", generation + 1), false)
                    }
                    None => (format!("package-{options}-0.json"), false),
                }
            }
            Output::Store => (format!("package-{options}-0.json"), true),
        };
        let report: Option<package::PackageReport> = ctx.read_json(&record)?;
        if fresh && report.is_some() {
            return Ok(Ok(report));
        }
        let task = Work::Package {
            job: ctx.job.clone(),
            renditions,
            record: record.clone(),
        };
        let stage = format!("package-{}", digest_of(&record));
        ctx.queue_stage(&stage, &[task], None, 0)?;
        waiting("packaging for DASH and HLS", 0, 1)
    }

    /// The report stage: the job's report, with each codec's ladder decision and the time of
    /// every stage, written with the renditions where the title goes.
    fn report(
        &self,
        lanes: Vec<Lane>,
        measure_cpu: Option<f64>,
        packaged: Option<package::PackageReport>,
    ) -> Result<EncodeReport, EncodeJobError> {
        let (ctx, spec, plan) = (self.ctx, self.spec, &self.plan);
        let _stage = stage_span(ctx, "report");
        let options = &spec.options;
        let mut spent = [0.0; 3];
        for lane in &lanes {
            for (sum, cpu) in spent.iter_mut().zip(lane.assembled.cpu) {
                *sum += cpu;
            }
        }
        spent[2] = measure_cpu.unwrap_or(spent[2]);
        let probings: Vec<&Probing> = lanes
            .iter()
            .filter_map(|l| l.decided.as_ref().map(|(_, _, p)| p))
            .collect();
        let cpu = stage_cpu(plan, spent, packaged.as_ref(), &probings);
        let stages = stage_times(ctx, plan, &cpu)?;
        let fps = lanes.first().map_or(1.0, |l| l.d.fps);
        let mut reused = 0;
        let (mut rungs, mut titles, mut codecs) = (Vec::new(), Vec::new(), Vec::new());
        for lane in lanes {
            let Lane {
                d,
                decided,
                rungs: lane_rungs,
                encoded,
                mut assembled,
            } = lane;
            // The anchors' encodes were there before the stage, but no earlier run made them.
            reused += ctx
                .stage_reused(&encoded.stage)
                .saturating_sub(encoded.from_anchors);
            let compared = assembled.rungs.split_off(lane_rungs.title);
            let encode_cpu = assembled.cpu[0];
            let ladder = decided.map(|(decision, decided_rungs, probing)| {
                let mut ladder = LadderReport::new(
                    if options.ladder == LadderChoice::Shot {
                        "shot"
                    } else {
                        "per-title"
                    },
                    if options.codecs.several() {
                        &d.rules
                    } else {
                        &options.rules
                    },
                    (&d.probe_preset, options.probe_sampling.max(1)),
                    &decision,
                    &decided_rungs,
                    &probing,
                    &assembled.rungs,
                    d.fps,
                    encode_cpu,
                );
                let select = options.rules.select_of(d.codec.name());
                let fixed: Vec<_> =
                    crate::encode::ladder::apple(d.codec, plan.width, plan.height, plan.aspect)
                        .into_iter()
                        .filter(|r| select.is_none_or(|s| s.allows(r.width.min(r.height))))
                        .collect();
                ladder.fixed_estimate = ladder.estimate_fixed(&fixed);
                if !compared.is_empty() {
                    ladder.fixed_measured = Some(ladder.measure_fixed(&compared));
                }
                ladder
            });
            titles.extend(assembled.records[..lane_rungs.title].iter().cloned());
            codecs.push(CodecReport {
                codec: d.codec,
                preset: d.preset.clone(),
                rungs: assembled.rungs.iter().map(|r| r.name.clone()).collect(),
                ladder,
                encode_cpu_seconds: (encode_cpu * 1e4).round() / 1e4,
                against_h264: None,
            });
            rungs.extend(assembled.rungs);
        }
        compare_with_h264(&mut codecs, &rungs, options.rules.pooling);
        let ladder = if codecs.len() == 1 {
            codecs.pop().and_then(|c| c.ladder)
        } else {
            None
        };
        let frames: u64 = self.spans.iter().map(|c| c.frames).sum();
        let report = EncodeReport {
            master: spec.master.display(),
            codec: options.codecs.first(),
            frames,
            frame_rate: plan.frame_rate,
            duration_seconds: frames as f64 / fps,
            audio_duration_seconds: plan.audio_duration_seconds,
            chunks: self.spans.len(),
            reused_chunk_encodes: reused,
            workers: ctx.workers,
            encode_cpu_seconds: (spent[0] * 1e4).round() / 1e4,
            rungs,
            ladder,
            codecs,
            package: packaged,
            stages,
        };
        self.deliver(&titles, &report)?;
        tracing::info!(rungs = report.rungs.len(), "report written");
        Ok(report)
    }

    /// Puts the renditions and the report where the title goes: the output folder, or `out/`
    /// in the store (then `done.json`).
    fn deliver(
        &self,
        records: &[(String, String, String)],
        report: &EncodeReport,
    ) -> Result<(), EncodeJobError> {
        let ctx = self.ctx;
        let json = serde_json::to_vec_pretty(report).expect("report serialises");
        match &self.spec.output {
            Output::Dir(out) => {
                for (name, file, _) in records {
                    let from = ctx
                        .store
                        .local_path(&ctx.key(file)?)
                        .ok_or_else(|| EncodeJobError::NotLocal { rel: file.clone() })?;
                    export(&from, &out.join(format!("{name}.mp4")))?;
                }
                let path = out.join("report.json");
                store::fsutil::write_file_atomic(&path, |f| std::io::Write::write_all(f, &json))
                    .map_err(|error| EncodeJobError::File {
                        action: "write",
                        path,
                        error,
                    })?;
            }
            Output::Store => {
                let rel = "out/report.json";
                ctx.store
                    .put(&ctx.key(rel)?, &json)
                    .map_err(|error| EncodeJobError::Store {
                        rel: rel.to_owned(),
                        error,
                    })?;
                ctx.write_json("done.json", &serde_json::json!({ "finished": now_unix() }))?;
            }
        }
        Ok(())
    }
}

/// Each codec's measured ladder against the title's H.264 ladder, by BD-rate over the VMAF
/// range both cover. Nothing when the title has no H.264 or nothing was measured.
fn compare_with_h264(codecs: &mut [CodecReport], rungs: &[RungReport], pooling: ladders::Pooling) {
    let points = |c: &CodecReport| -> Vec<(f64, f64)> {
        rungs
            .iter()
            .filter(|r| c.rungs.contains(&r.name))
            .filter_map(|r| {
                let v = r.vmaf.as_ref()?;
                let vmaf = match pooling {
                    ladders::Pooling::Mean => v.mean,
                    ladders::Pooling::Harmonic => v.harmonic_mean,
                };
                Some((r.average_kbps, vmaf))
            })
            .collect()
    };
    let Some(h264) = codecs.iter().find(|c| c.codec == Codec::H264) else {
        return;
    };
    let anchor = points(h264);
    if anchor.is_empty() {
        return;
    }
    let compared: Vec<Option<_>> = codecs
        .iter()
        .map(|c| {
            let own = points(c);
            (c.codec != Codec::H264 && !own.is_empty())
                .then(|| super::super::estimate::against_codec(&anchor, &own))
        })
        .collect();
    for (c, with) in codecs.iter_mut().zip(compared) {
        c.against_h264 = with;
    }
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
            "assemble" => &[Stage::Assembly],
            "measure" => &[Stage::Measurement],
            "package" => &[Stage::Packaging, Stage::Thumbnails],
            _ => &[],
        }
    }
}

/// The stages a marker's name stands for, by name (for tests).
#[cfg(test)]
pub(super) fn stage_of_marker(name: &str) -> Vec<&'static str> {
    Stage::of_marker(name).iter().map(|s| s.name()).collect()
}

/// CPU seconds of every stage as the tasks recorded them: the three figures are the final encodes',
/// the assembly's and the measurement's.
fn stage_cpu(
    plan: &Plan,
    [encode, assemble, measure]: [f64; 3],
    packaged: Option<&package::PackageReport>,
    probings: &[&Probing],
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
    if !probings.is_empty() {
        let sum = |f: fn(&Probing) -> f64| probings.iter().map(|p| f(p)).sum::<f64>();
        cpu.extend([
            (Stage::ProbeEncode, sum(|p| p.encode_cpu_seconds)),
            (Stage::ProbeScore, sum(|p| p.score_cpu_seconds)),
            (Stage::AnchorEncode, sum(|p| p.anchor_encode_cpu_seconds)),
            (Stage::AnchorScore, sum(|p| p.anchor_score_cpu_seconds)),
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
    for key in ctx.list("stages")? {
        let queued = ctx
            .read_json::<serde_json::Value>(&key)?
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
    let fail = |error| EncodeJobError::File {
        action: "write",
        path: to.to_owned(),
        error,
    };
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
fn decide(job: &Job, d: &Derived) -> Result<Ready<Decided>, EncodeJobError> {
    let (plan, options) = (&job.plan, &job.spec.options);
    let shot = options.ladder == LadderChoice::Shot;
    let units = dynamic::units(
        &plan
            .chunks
            .iter()
            .map(|c| (c.start_frame, c.frames, c.merged_cuts.clone()))
            .collect::<Vec<_>>(),
        shot && matches!(d.codec, Codec::H264 | Codec::Hevc),
        (d.fps / 2.0).round().max(1.0) as u64,
    );
    let mut probing = Probing::default();
    let (points, decision) = or_wait!(probe_rounds(job, d, &units, &mut probing));
    let mut chunks = dynamic::chunk_probes(&d.sizes, &points, &units);
    let mut decision = decision;
    if d.probe_preset != d.preset {
        (decision, chunks) = or_wait!(anchor(job, d, &units, &mut probing, decision, chunks));
    }
    let rungs = dynamic::rungs(
        &decision,
        &chunks,
        d.fps,
        &d.rules,
        (d.codec, &d.suffix),
        shot,
    )
    .map_err(|e| EncodeJobError::Config(format!("shot optimiser: {e}")))?;
    probing.chunks = chunks;
    probing.units = units;
    probing.grid_encodes = 7 * d.sizes.len() * plan.chunks.len();
    probing.grid_pixels = 7 * d.sizes.iter().map(|s| s.pixels()).sum::<u64>();
    Ok(Ok((decision, rungs, probing)))
}

/// The probe rounds at the probe preset: each round refines the curves where the decision so
/// far needs it, until a round has nothing to add. Returns the points and the decision made
/// on them.
fn probe_rounds(
    job: &Job,
    d: &Derived,
    units: &[dynamic::Unit],
    probing: &mut Probing,
) -> Result<Ready<(Points, TitleDecision)>, EncodeJobError> {
    let plan = &job.plan;
    let n = plan.chunks.len();
    let mut measured: Vec<BTreeMap<usize, Vec<f32>>> = vec![BTreeMap::new(); n];
    let mut points: Points = vec![BTreeMap::new(); n];
    let mut pooled: Option<TitleDecision> = None;
    for round in 0..dynamic::MAX_ROUNDS {
        let next = dynamic::next_round(
            round,
            d.codec,
            &d.sizes,
            &measured,
            pooled.as_ref(),
            &d.rules,
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
        let got = or_wait!(gather(job.ctx, plan, d, &next, round + 1, false));
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
        let chunks = dynamic::chunk_probes(&d.sizes, &points, units);
        pooled = Some(
            ladders::title::decide(&chunks, d.fps, &d.rules)
                .map_err(|e| EncodeJobError::Config(format!("ladder decision: {e}")))?,
        );
    }
    let decision = pooled.ok_or_else(|| EncodeJobError::Config("nothing was probed".into()))?;
    Ok(Ok((points, decision)))
}

/// Probes at a faster preset than the final one rank settings, but their bits and quality are
/// off: anchors at the final preset, where the rungs fell, correct every curve, and the
/// decision is made again on the corrected curves. When the corrected decision moves a rung to
/// a resolution with no anchors yet, that one is anchored too. Rungs near an anchor then move
/// onto it, so that its encodes are theirs. Returns the corrected decision and curves, or
/// queues the next round of anchors.
fn anchor(
    job: &Job,
    d: &Derived,
    units: &[dynamic::Unit],
    probing: &mut Probing,
    mut decision: TitleDecision,
    mut chunks: Vec<ladders::title::ChunkProbes>,
) -> Result<Ready<(TitleDecision, Vec<ladders::title::ChunkProbes>)>, EncodeJobError> {
    let (ctx, plan) = (job.ctx, &job.plan);
    let n = plan.chunks.len();
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
            dynamic::anchors(&decision, &d.sizes, d.codec),
            &anchored,
            d.codec,
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
        let more = or_wait!(gather(ctx, plan, d, &next, round, true));
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
            dynamic::calibrate(&raw, &anchor_points, dynamic::max_shift(d.codec));
        decision = ladders::title::decide(&corrected, d.fps, &d.rules)
            .map_err(|e| EncodeJobError::Config(format!("ladder decision: {e}")))?;
        chunks = corrected;
        probing.corrections = corrections;
        probing.anchor_points = anchor_points;
    }
    probing.rungs_on_anchors = dynamic::settle_on_anchors(&mut decision, &made, &d.rules, d.codec);
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
) -> Result<Ready<Points>, EncodeJobError> {
    let key_of = |size: Size, chunk: usize, at: ProbeAt| {
        if anchor {
            dynamic::anchor_key(&d.space, size, chunk, at)
        } else {
            dynamic::probe_key(&d.space, size, chunk, at.crf)
        }
        .as_str()
        .to_owned()
    };
    let (tasks, done) = missing_probes(ctx, plan, d, next, anchor, &key_of)?;
    let total = done + tasks.len();
    if !tasks.is_empty() {
        let kind = if anchor { "anchors" } else { "probes" };
        // A codec's markers differ from another's that probes the same sizes and settings.
        let space = d.space.replace('/', "-");
        let stage = format!("{kind}-{space}{round}-{}", digest_of(next));
        if ctx.queue_stage(&stage, &tasks, None, done)? {
            (ctx.events)(Event::Probing {
                codec: d.codec,
                round,
                total,
                reused: done,
            });
        }
        return waiting(&format!("probing, round {round}"), done, total);
    }
    let mut got = vec![BTreeMap::<usize, Vec<StoredProbe>>::new(); plan.chunks.len()];
    for (si, ats) in next {
        for (ci, by_size) in got.iter_mut().enumerate() {
            for &at in ats {
                let p: StoredProbe = ctx.read_fixed(&key_of(d.sizes[*si], ci, at))?;
                by_size.entry(*si).or_default().push(p);
            }
        }
    }
    Ok(Ok(got))
}

/// The probe tasks of a round whose points the store does not hold yet, and how many tasks
/// are done. Chunk by chunk, so that a chunk's tasks run close together and read its frames
/// from the workers' memory rather than decoding them again. A task encodes one chunk at one
/// resolution at all the round's settings there (the master's frames read and its share of
/// the scoring done once for all), unless the round would then have fewer than two tasks per
/// worker: its tasks are then split into one per setting, so that every worker has work (the
/// points are the same either way).
fn missing_probes(
    ctx: &Ctx,
    plan: &Plan,
    d: &Derived,
    next: &[(usize, Vec<ProbeAt>)],
    anchor: bool,
    key_of: &dyn Fn(Size, usize, ProbeAt) -> String,
) -> Result<(Vec<Work>, usize), EncodeJobError> {
    let have = ctx.list(if anchor { "anchors" } else { "probes" })?;
    let mut groups: Vec<(usize, Size, Vec<ProbeAt>)> = Vec::new();
    let mut done = 0;
    for ci in 0..plan.chunks.len() {
        for (si, ats) in next {
            let size = d.sizes[*si];
            let missing: Vec<ProbeAt> = ats
                .iter()
                .copied()
                .filter(|&a| !have.contains(&key_of(size, ci, a)))
                .collect();
            if missing.is_empty() {
                done += 1;
            } else {
                groups.push((ci, size, missing));
            }
        }
    }
    if groups.len() < 2 * ctx.workers.max(1) {
        groups = groups
            .into_iter()
            .flat_map(|(ci, size, ats)| ats.into_iter().map(move |a| (ci, size, vec![a])))
            .collect();
    }
    let tasks = groups
        .into_iter()
        .map(|(ci, size, ats)| {
            let settings: Vec<EncodeSettings> = ats
                .iter()
                .map(|&a| probe_settings(d, size, a, anchor))
                .collect();
            let keep = if anchor {
                settings.iter().map(|s| Some(chunk_key(ci, s))).collect()
            } else {
                Vec::new()
            };
            Work::Probe {
                job: ctx.job.clone(),
                chunk: ci,
                settings,
                keys: ats.iter().map(|&a| key_of(size, ci, a)).collect(),
                keep,
            }
        })
        .collect();
    Ok((tasks, done))
}
