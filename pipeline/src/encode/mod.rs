//! `rungs encode`: validate the master and plan its chunks in one decode pass; for per-title
//! and shot-level ladders, probe every chunk through the queue and decide the ladder from the
//! points; fan chunk × rung encode tasks out through the queue to the workers; assemble every
//! rung, measure it, package the title (CMAF for DASH and HLS), and write the report.
//!
//! The work folder `OUT/.rungs/` holds the job's identity, the store of encoded chunks and the
//! queue's journal. Running the same command again after a crash or a `kill -9` finds them,
//! reuses every finished chunk and runs only the rest; a different master or different
//! settings start a fresh job.

pub mod dynamic;
pub mod ladder;
pub mod package;
mod report;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use std::collections::BTreeMap;

use ladders::title::{LadderRules, Size};
use serde::Serialize;
use workers::encode::{
    ChunkSource, Codec, EncodeSettings, EncodedChunk, RateControl, Vbv, encode_chunk,
};
use workers::media::Rational;
use workers::queue::{LocalQueue, Message, Queue};
use workers::store::{FsStore, Key, Store};
use workers::worker::{self, PoolOptions, TaskFailure};

pub use ladder::Rung;
pub use report::{
    ChunkHull, ChunkReport, DecidedRungReport, EncodeReport, LadderReport, RdPoint, RungReport,
    VmafSummary,
};

use crate::ingest::{self, IngestOptions, IngestReport, ShotOptions};
use packager::assemble::{self, ChunkSpan};

/// Default segment (and keyframe interval) target in seconds.
pub const DEFAULT_SEGMENT_SECONDS: f64 = 4.0;

/// Which ladder to encode.
#[derive(Clone, Debug, PartialEq)]
pub enum LadderChoice {
    /// Apple's HLS authoring ladder for the codec, fitted to the master.
    Apple,
    /// These rungs.
    Custom(Vec<Rung>),
    /// Rungs on the title's convex hull, one setting per rung.
    PerTitle,
    /// The per-title rungs, with a setting per chunk from the shot-level optimiser.
    Shot,
}

impl LadderChoice {
    /// True for the ladders decided from probes.
    pub fn is_dynamic(&self) -> bool {
        matches!(self, Self::PerTitle | Self::Shot)
    }
}

/// What `rungs encode` does.
#[derive(Clone, Debug)]
pub struct EncodeOptions {
    /// Codec and encoder.
    pub codec: Codec,
    /// The ladder.
    pub ladder: LadderChoice,
    /// Encoder preset; `None` picks the codec's default.
    pub preset: Option<String>,
    /// Parallel encode tasks; 0 means one per core.
    pub workers: usize,
    /// Keyframe interval target in seconds (the packager's segment duration).
    pub segment_seconds: f64,
    /// Validation and chunking.
    pub ingest: IngestOptions,
    /// Measure every rung's VMAF against the master for the report.
    pub measure: bool,
    /// Rules of per-title and shot-level ladders.
    pub rules: LadderRules,
    /// Encoder preset of the probes; `None` picks a fast one for the codec.
    pub probe_preset: Option<String>,
    /// Package the title for DASH and HLS; `None` stops at the renditions.
    pub package: Option<package::PackageOptions>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            codec: Codec::H264,
            ladder: LadderChoice::Apple,
            preset: None,
            workers: 0,
            segment_seconds: DEFAULT_SEGMENT_SECONDS,
            ingest: IngestOptions {
                shots: Some(ShotOptions::default()),
                ..Default::default()
            },
            measure: true,
            rules: LadderRules::default(),
            probe_preset: None,
            package: Some(package::PackageOptions {
                thumbnails: true,
                ..Default::default()
            }),
        }
    }
}

/// The default probe preset of each encoder: fast, because anchors at the final preset
/// correct the probes' curves (x264 `superfast` probes with anchors decided per-title ladders
/// within 2% BD-rate of the exhaustive grid's hull at under a quarter of its encode CPU).
pub fn default_probe_preset(codec: Codec) -> &'static str {
    match codec {
        Codec::H264 | Codec::Hevc => "superfast",
        Codec::Av1 => "12",
        Codec::Vp9 => "8",
        Codec::Av1Rav1e => "10",
    }
}

/// The default preset of each encoder: a good speed for quality.
pub fn default_preset(codec: Codec) -> &'static str {
    match codec {
        Codec::H264 | Codec::Hevc => "medium",
        Codec::Av1 => "8",
        Codec::Vp9 => "4",
        Codec::Av1Rav1e => "6",
    }
}

/// What happened, for progress display.
#[derive(Clone, Debug)]
pub enum Event {
    /// The validation pass advanced.
    Ingest(ingest::Progress),
    /// Tasks are planned; `reused` of `total` chunk encodes were already done.
    Planned {
        /// Chunk × rung encodes in the job.
        total: usize,
        /// Those found finished from an earlier run.
        reused: usize,
        /// Frames to encode in total (all rungs).
        frames: u64,
        /// Frames already encoded.
        frames_done: u64,
    },
    /// One chunk encode finished.
    ChunkDone {
        /// Its frames.
        frames: u64,
    },
    /// A rung is being assembled.
    Assembling(String),
    /// A rung's VMAF is being measured; frames done so far.
    Measuring(String, u64),
    /// A round of probes is planned: `total` probe tasks, `reused` of them already done.
    Probing {
        /// The round, from 1.
        round: usize,
        /// Probe tasks (a chunk at a resolution, several settings each).
        total: usize,
        /// Found done from an earlier run.
        reused: usize,
    },
    /// One probe task finished.
    ProbeDone,
    /// The title is being packaged.
    Packaging,
}

/// Why an encode job failed.
#[derive(Debug, thiserror::Error)]
pub enum EncodeJobError {
    /// Validation rejected the master.
    #[error("the master is rejected ({} problems)", .0.problems.len())]
    Rejected(Box<IngestReport>),
    /// The master could not be read, or the options are invalid.
    #[error(transparent)]
    Ingest(#[from] ingest::IngestError),
    /// The settings are invalid.
    #[error("{0}")]
    Config(String),
    /// The work folder or an output could not be written.
    #[error("{0}")]
    Io(String),
    /// Encode tasks failed for good.
    #[error("{} encode task(s) failed; the first: {}", .count, .first)]
    Tasks {
        /// How many.
        count: usize,
        /// The first failure.
        first: String,
    },
    /// The job was interrupted; running it again resumes.
    #[error("interrupted; run the same command again to resume")]
    Interrupted,
    /// Assembly failed.
    #[error("assembling {rung}: {error}")]
    Assemble {
        /// The rung.
        rung: String,
        /// Why.
        error: assemble::AssembleError,
    },
    /// Packaging failed.
    #[error("packaging: {0}")]
    Package(String),
    /// Measuring failed.
    #[error("measuring {rung}: {error}")]
    Measure {
        /// The rung.
        rung: String,
        /// Why.
        error: workers::measure::MeasureError,
    },
}

/// One encode task: a chunk in a rung.
#[derive(Debug, Serialize, serde::Deserialize)]
struct Task {
    rung: usize,
    chunk: usize,
}

/// One probe task: a chunk at a resolution, at several settings.
#[derive(Debug, Serialize, serde::Deserialize)]
struct ProbeTask {
    size: usize,
    chunk: usize,
    crfs: Vec<f32>,
    /// An anchor: at the final preset, checking the fast probes.
    #[serde(default)]
    anchor: bool,
}

/// Everything fixed about a job; a different identity means a fresh job.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
struct Identity {
    master: PathBuf,
    master_bytes: u64,
    master_modified: Option<u128>,
    /// The settings of a fixed ladder, or what decides a dynamic one.
    job: serde_json::Value,
    chunks: Vec<(u64, u64, Option<i64>)>,
}

/// A short, stable digest of settings, for keys: FNV-1a over their JSON.
fn digest(settings: &EncodeSettings) -> String {
    let json = serde_json::to_vec(settings).expect("settings serialise");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Runs the job. `stop` interrupts it between tasks (the work done so far is kept).
pub fn run(
    master: &Path,
    out: &Path,
    options: &EncodeOptions,
    stop: &AtomicBool,
    events: &(dyn Fn(Event) + Sync),
) -> Result<EncodeReport, EncodeJobError> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        EncodeJobError::Io(format!("cannot {what} {}: {e}", p.display()))
    };
    // Inputs of packaging that can be refused are checked before hours of encoding.
    if let Some(p) = &options.package {
        package::check_inputs(p).map_err(EncodeJobError::Config)?;
    }
    let mut ingest_options = options.ingest.clone();
    ingest_options
        .shots
        .get_or_insert_with(ShotOptions::default);
    let report = ingest::analyze(master, &ingest_options, &mut |p| events(Event::Ingest(*p)))?;
    if !report.accepted {
        return Err(EncodeJobError::Rejected(Box::new(report)));
    }
    let (Some(video), Some(shots), Some(probe)) = (&report.video, &report.shots, &report.probe)
    else {
        return Err(EncodeJobError::Config(
            "the master has no video to encode".into(),
        ));
    };
    let info = probe.streams[video.stream]
        .video
        .as_ref()
        .ok_or_else(|| EncodeJobError::Config("the video stream has no geometry".into()))?;
    let rate = shots.frame_rate;
    let fps = rate
        .to_f64()
        .filter(|f| *f > 0.0)
        .ok_or_else(|| EncodeJobError::Config(format!("unusable frame rate {rate}")))?;
    let aspect = info
        .display_aspect_ratio
        .to_f64()
        .filter(|a| *a > 0.0)
        .unwrap_or(f64::from(video.width) / f64::from(video.height));
    if !(0.5..=60.0).contains(&options.segment_seconds) {
        return Err(EncodeJobError::Config(format!(
            "invalid segment duration {} s (expected >= 0.5, <= 60)",
            options.segment_seconds
        )));
    }
    let keyint = ((options.segment_seconds * fps).round() as u32).max(1);
    let preset = options
        .preset
        .clone()
        .unwrap_or_else(|| default_preset(options.codec).to_owned());
    let probe_preset = options
        .probe_preset
        .clone()
        .unwrap_or_else(|| default_probe_preset(options.codec).to_owned());
    let depth = if options.codec == Codec::H264 {
        8
    } else {
        info.bit_depth.map_or(8, |d| if d > 8 { 10 } else { 8 })
    };
    let base = EncodeSettings {
        codec: options.codec,
        width: (video.width & !1).max(2),
        height: (video.height & !1).max(2),
        rate: ladder::default_quality(options.codec),
        preset: preset.clone(),
        vbv: None,
        keyint,
        bit_depth: depth,
        zones: Vec::new(),
    };
    base.validate().map_err(EncodeJobError::Config)?;
    if options.ladder.is_dynamic() {
        options
            .rules
            .validate()
            .map_err(|e| EncodeJobError::Config(format!("ladder rules: {e}")))?;
        EncodeSettings {
            preset: probe_preset.clone(),
            ..base.clone()
        }
        .validate()
        .map_err(|e| EncodeJobError::Config(format!("probe preset: {e}")))?;
    }
    let fixed_rungs = match &options.ladder {
        LadderChoice::Apple => ladder::apple(options.codec, video.width, video.height, aspect),
        LadderChoice::Custom(r) => r.clone(),
        LadderChoice::PerTitle | LadderChoice::Shot => Vec::new(),
    };
    let fixed_settings: Vec<EncodeSettings> = fixed_rungs
        .iter()
        .map(|r| EncodeSettings {
            width: r.width,
            height: r.height,
            rate: r.rate,
            vbv: r.vbv,
            ..base.clone()
        })
        .collect();
    for (r, s) in fixed_rungs.iter().zip(&fixed_settings) {
        s.validate()
            .map_err(|e| EncodeJobError::Config(format!("rung {}: {e}", r.name)))?;
    }
    let sizes = ladders::title::candidate_sizes(video.width, video.height, aspect, 1.5);
    let plan: Vec<ChunkSpan> = shots
        .chunks
        .iter()
        .map(|c| ChunkSpan {
            start_frame: c.start_frame,
            frames: c.frames,
        })
        .collect();

    // The work folder, fresh unless it holds this very job.
    let work = out.join(".rungs");
    let meta = std::fs::metadata(master).map_err(|e| io("read", master, e))?;
    let job = if options.ladder.is_dynamic() {
        serde_json::json!({
            "ladder": if options.ladder == LadderChoice::Shot { "shot" } else { "per-title" },
            "base": base,
            "probe_preset": probe_preset,
            "rules": options.rules,
            "sizes": sizes,
        })
    } else {
        serde_json::json!({ "settings": fixed_settings })
    };
    let identity = Identity {
        master: std::path::absolute(master).map_err(|e| io("resolve", master, e))?,
        master_bytes: meta.len(),
        master_modified: meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos()),
        job,
        chunks: shots
            .chunks
            .iter()
            .map(|c| (c.start_frame, c.frames, c.start_pts))
            .collect(),
    };
    let id_path = work.join("job.json");
    let same_job = std::fs::read(&id_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Identity>(&b).ok())
        .is_some_and(|old| old == identity);
    if !same_job && work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| io("clear", &work, e))?;
    }
    std::fs::create_dir_all(&work).map_err(|e| io("create", &work, e))?;
    let id_json = serde_json::to_vec_pretty(&identity).expect("identity serialises");
    workers::fsutil::write_file_atomic(&id_path, |f| std::io::Write::write_all(f, &id_json))
        .map_err(|e| io("write", &id_path, e))?;
    let store = FsStore::open(work.join("store")).map_err(|e| EncodeJobError::Io(e.to_string()))?;
    let queue = LocalQueue::open(work.join("queue.journal"))
        .map_err(|e| EncodeJobError::Io(e.to_string()))?;

    let workers_n = if options.workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        options.workers
    };
    let sources: Vec<ChunkSource> = shots
        .chunks
        .iter()
        .map(|c| ChunkSource {
            path: master.to_owned(),
            stream: video.stream,
            start_frame: c.start_frame,
            frames: c.frames,
            start_pts: c.start_pts,
            frame_rate: rate,
            // One task per core: decoders stay single-threaded unless there is one worker.
            decoder_threads: if workers_n == 1 { 0 } else { 1 },
        })
        .collect();
    let store_ref: &dyn Store = &store;
    let pool = PoolOptions {
        workers: workers_n,
        ..Default::default()
    };
    // Runs the queued tasks with `handler`; fails on an interruption or a dead task.
    let run_pool =
        |handler: &(dyn Fn(&workers::queue::Lease) -> Result<(), TaskFailure> + Sync)| {
            worker::run(&queue, &handler, &pool, stop)
                .map_err(|e| EncodeJobError::Io(e.to_string()))?;
            if stop.load(Ordering::Acquire) {
                return Err(EncodeJobError::Interrupted);
            }
            let dead = queue
                .dead_letters()
                .map_err(|e| EncodeJobError::Io(e.to_string()))?;
            if let Some(first) = dead.first() {
                return Err(EncodeJobError::Tasks {
                    count: dead.len(),
                    first: format!("{}: {}", first.message.id, first.error),
                });
            }
            Ok(())
        };

    // CPU time of this run's probe tasks (encode, score) and final encodes.
    let probe_cpu = CpuTally::default();
    let anchor_cpu = CpuTally::default();
    let encode_cpu = CpuTally::default();

    // Per-title and shot-level ladders: probe, then decide.
    let mut decided: Option<(
        ladders::title::TitleDecision,
        Vec<dynamic::DecidedRung>,
        Probing,
    )> = None;
    if options.ladder.is_dynamic() {
        let probe_settings = |si: usize, crf: f32, anchor: bool| EncodeSettings {
            width: sizes[si].width,
            height: sizes[si].height,
            rate: RateControl::Crf(crf),
            preset: if anchor {
                preset.clone()
            } else {
                probe_preset.clone()
            },
            ..base.clone()
        };
        let key_of = |anchor: bool, size: Size, chunk: usize, crf: f32| {
            if anchor {
                dynamic::anchor_key(size, chunk, crf)
            } else {
                dynamic::probe_key(size, chunk, crf)
            }
        };
        let model = vmaf::Model::v061();
        let probe_cpu = &probe_cpu;
        let anchor_cpu = &anchor_cpu;
        let probe_handler = |lease: &workers::queue::Lease| -> Result<(), TaskFailure> {
            let task: ProbeTask = serde_json::from_str(&lease.message.body)
                .map_err(|e| TaskFailure::fatal(format!("unreadable task: {e}")))?;
            let (Some(size), Some(src)) = (sizes.get(task.size), sources.get(task.chunk)) else {
                return Err(TaskFailure::fatal(
                    "the task names no size or chunk of this job",
                ));
            };
            let mut todo = Vec::new();
            for &crf in &task.crfs {
                let k = key_of(task.anchor, *size, task.chunk, crf);
                if !store_ref
                    .exists(&k)
                    .map_err(|e| TaskFailure::retry(e.to_string()))?
                {
                    todo.push(crf);
                }
            }
            if !todo.is_empty() {
                let set: Vec<EncodeSettings> = todo
                    .iter()
                    .map(|&c| probe_settings(task.size, c, task.anchor))
                    .collect();
                let run = workers::probe::probe_chunk(src, &set, &model)
                    .map_err(|e| TaskFailure::fatal(e.to_string()))?;
                if task.anchor {
                    anchor_cpu.add(run.encode_cpu_seconds, run.score_cpu_seconds);
                } else {
                    probe_cpu.add(run.encode_cpu_seconds, run.score_cpu_seconds);
                }
                for (crf, p) in todo.iter().zip(run.points) {
                    let stored = dynamic::StoredProbe {
                        crf: *crf,
                        bits: p.bits,
                        frame_bits: p.frame_bits,
                        vmaf: p.vmaf,
                    };
                    let body = serde_json::to_vec(&stored).expect("serialises");
                    store_ref
                        .put(&key_of(task.anchor, *size, task.chunk, *crf), &body)
                        .map_err(|e| TaskFailure::retry(e.to_string()))?;
                }
            }
            events(Event::ProbeDone);
            Ok(())
        };
        // Queues one round of probe tasks (every chunk at the given settings of each
        // resolution), runs them, and reads their points back: `[chunk][size]`.
        let run_round = |next: &[(usize, Vec<f32>)],
                         round: usize,
                         anchor: bool|
         -> Result<
            Vec<BTreeMap<usize, Vec<dynamic::StoredProbe>>>,
            EncodeJobError,
        > {
            let mut total = 0;
            let mut reused = 0;
            for (si, crfs) in next {
                for ci in 0..plan.len() {
                    let done = crfs.iter().all(|&c| {
                        store
                            .exists(&key_of(anchor, sizes[*si], ci, c))
                            .unwrap_or(false)
                    });
                    reused += usize::from(done);
                    total += 1;
                    let crf_ids: Vec<String> = crfs.iter().map(|&c| dynamic::crf_text(c)).collect();
                    let body = serde_json::to_string(&ProbeTask {
                        size: *si,
                        chunk: ci,
                        crfs: crfs.clone(),
                        anchor,
                    })
                    .expect("serialises");
                    queue
                        .push(Message {
                            id: format!(
                                "{}-{}x{}-c{ci}-{}",
                                if anchor { "anchor" } else { "probe" },
                                sizes[*si].width,
                                sizes[*si].height,
                                crf_ids.join("-")
                            ),
                            body,
                        })
                        .map_err(|e| EncodeJobError::Io(e.to_string()))?;
                }
            }
            events(Event::Probing {
                round,
                total,
                reused,
            });
            run_pool(&probe_handler)?;
            let mut got = vec![BTreeMap::<usize, Vec<dynamic::StoredProbe>>::new(); plan.len()];
            for (si, crfs) in next {
                for (ci, by_size) in got.iter_mut().enumerate() {
                    for &crf in crfs {
                        let k = key_of(anchor, sizes[*si], ci, crf);
                        let bytes = store
                            .get(&k)
                            .map_err(|e| EncodeJobError::Io(e.to_string()))?;
                        let p: dynamic::StoredProbe =
                            serde_json::from_slice(&bytes).map_err(|e| {
                                EncodeJobError::Io(format!("probe {}: {e}", k.as_str()))
                            })?;
                        by_size.entry(*si).or_default().push(p);
                    }
                }
            }
            Ok(got)
        };
        // The shot optimiser's units: the shots inside each chunk where the encoder has zones
        // (a shot under half a second joins the next one), otherwise the chunks.
        let units = dynamic::units(
            &shots
                .chunks
                .iter()
                .map(|c| (c.start_frame, c.frames, c.merged_cuts.clone()))
                .collect::<Vec<_>>(),
            options.ladder == LadderChoice::Shot
                && matches!(options.codec, Codec::H264 | Codec::Hevc),
            (fps / 2.0).round().max(1.0) as u64,
        );
        // measured[chunk][size] = settings in the store; points likewise.
        let mut measured: Vec<BTreeMap<usize, Vec<f32>>> = vec![BTreeMap::new(); plan.len()];
        let mut points: Vec<BTreeMap<usize, Vec<dynamic::StoredProbe>>> =
            vec![BTreeMap::new(); plan.len()];
        let mut pooled: Option<ladders::title::TitleDecision> = None;
        let mut probing = Probing::default();
        for round in 0..dynamic::MAX_ROUNDS {
            let next = dynamic::next_round(
                round,
                options.codec,
                &sizes,
                &measured,
                pooled.as_ref(),
                &options.rules,
            );
            if next.is_empty() {
                break;
            }
            for (si, crfs) in &next {
                probing.encodes += crfs.len() * plan.len();
                probing.encoded_pixels += crfs.len() as u64 * sizes[*si].pixels();
            }
            let got = run_round(&next, round + 1, false)?;
            probing.rounds = round + 1;
            for (ci, by_size) in got.into_iter().enumerate() {
                for (si, ps) in by_size {
                    measured[ci]
                        .entry(si)
                        .or_default()
                        .extend(ps.iter().map(|p| p.crf));
                    points[ci].entry(si).or_default().extend(ps);
                }
            }
            let chunks = dynamic::chunk_probes(&sizes, &points, &units);
            pooled = Some(
                ladders::title::decide(&chunks, fps, &options.rules)
                    .map_err(|e| EncodeJobError::Config(format!("ladder decision: {e}")))?,
            );
        }
        let mut chunks = dynamic::chunk_probes(&sizes, &points, &units);
        let mut decision =
            pooled.ok_or_else(|| EncodeJobError::Config("nothing was probed".into()))?;
        // Probes at a faster preset than the final one rank settings, but their bits and
        // quality are off: anchors at the final preset, where the rungs fell, correct every
        // curve, and the decision is made again on the corrected curves.
        if probe_preset != preset {
            // Anchor the resolutions the rungs sit on; when the corrected decision moves a rung
            // to a resolution with no anchors yet, anchor that one too and decide again.
            let raw = chunks.clone();
            let mut got = vec![BTreeMap::<usize, Vec<dynamic::StoredProbe>>::new(); plan.len()];
            for _ in 0..dynamic::MAX_ROUNDS {
                let next: Vec<(usize, Vec<f32>)> = dynamic::anchors(
                    &decision,
                    &sizes,
                    options.codec,
                    options.ladder == LadderChoice::Shot,
                )
                .into_iter()
                .filter(|(si, _)| !got.first().is_some_and(|g| g.contains_key(si)))
                .collect();
                if next.is_empty() {
                    break;
                }
                for (si, crfs) in &next {
                    probing.anchor_encodes += crfs.len() * plan.len();
                    probing.anchor_pixels += crfs.len() as u64 * sizes[*si].pixels();
                }
                probing.anchor_rounds += 1;
                let round = probing.rounds + probing.anchor_rounds;
                for (into, more) in got.iter_mut().zip(run_round(&next, round, true)?) {
                    into.extend(more);
                }
                let anchor_points = dynamic::unit_points(&sizes, &got, &units);
                let (corrected, corrections) =
                    dynamic::calibrate(&raw, &anchor_points, dynamic::max_shift(options.codec));
                decision = ladders::title::decide(&corrected, fps, &options.rules)
                    .map_err(|e| EncodeJobError::Config(format!("ladder decision: {e}")))?;
                chunks = corrected;
                probing.corrections = corrections;
                probing.anchor_points = anchor_points;
            }
        }
        let rungs = dynamic::rungs(
            &decision,
            &chunks,
            fps,
            &options.rules,
            options.codec,
            options.ladder == LadderChoice::Shot,
        )
        .map_err(|e| EncodeJobError::Config(format!("shot optimiser: {e}")))?;
        probing.chunks = chunks;
        probing.units = units;
        (probing.encode_cpu_seconds, probing.score_cpu_seconds) = probe_cpu.get();
        (
            probing.anchor_encode_cpu_seconds,
            probing.anchor_score_cpu_seconds,
        ) = anchor_cpu.get();
        probing.grid_encodes = 7 * sizes.len() * plan.len();
        probing.grid_pixels = 7 * sizes.iter().map(|s| s.pixels()).sum::<u64>();
        decided = Some((decision, rungs, probing));
    }

    // The final encodes: every chunk of every rung, with its settings.
    let (names, rung_settings): (Vec<String>, Vec<Vec<EncodeSettings>>) = match &decided {
        None => fixed_rungs
            .iter()
            .zip(&fixed_settings)
            .map(|(r, s)| (r.name.clone(), vec![s.clone(); plan.len()]))
            .unzip(),
        Some((_, rungs, probing)) => rungs
            .iter()
            .map(|r| {
                let vbv = (options.codec != Codec::Av1Rav1e).then(|| {
                    let maxrate = r.maxrate_kbps.round().max(1.0) as u32;
                    Vbv {
                        maxrate_kbps: maxrate,
                        bufsize_kbit: maxrate.saturating_mul(2),
                    }
                });
                let per_chunk = (0..plan.len())
                    .map(|ci| {
                        let (crf, zones) = r.chunk_setting(&probing.units, ci);
                        EncodeSettings {
                            width: r.size.width,
                            height: r.size.height,
                            rate: RateControl::Crf(crf),
                            vbv,
                            zones,
                            ..base.clone()
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
    let key = |rung: usize, chunk: usize| {
        Key::new(format!(
            "chunks/{rung:02}/{chunk:05}-{}.chunk",
            digest(&rung_settings[rung][chunk])
        ))
        .expect("a valid key")
    };
    let mut reused = 0;
    let mut frames_done = 0;
    let total_frames = report_frames(&plan) * names.len() as u64;
    for (ri, per_chunk) in rung_settings.iter().enumerate() {
        for (ci, (span, settings)) in plan.iter().zip(per_chunk).enumerate() {
            if store.exists(&key(ri, ci)).unwrap_or(false) {
                reused += 1;
                frames_done += span.frames;
            }
            let body = serde_json::to_string(&Task {
                rung: ri,
                chunk: ci,
            })
            .expect("serialises");
            queue
                .push(Message {
                    id: format!("encode-r{ri}-c{ci}-{}", digest(settings)),
                    body,
                })
                .map_err(|e| EncodeJobError::Io(e.to_string()))?;
        }
    }
    let total = names.len() * plan.len();
    if reused > 0 {
        tracing::info!("reusing {reused} of {total} chunk encodes from an earlier run");
    }
    events(Event::Planned {
        total,
        reused,
        frames: total_frames,
        frames_done,
    });
    let handler = |lease: &workers::queue::Lease| -> Result<(), TaskFailure> {
        let task: Task = serde_json::from_str(&lease.message.body)
            .map_err(|e| TaskFailure::fatal(format!("unreadable task: {e}")))?;
        let (Some(s), Some(src)) = (
            rung_settings.get(task.rung).and_then(|r| r.get(task.chunk)),
            sources.get(task.chunk),
        ) else {
            return Err(TaskFailure::fatal(
                "the task names no rung or chunk of this job",
            ));
        };
        let k = key(task.rung, task.chunk);
        if store_ref
            .exists(&k)
            .map_err(|e| TaskFailure::retry(e.to_string()))?
        {
            return Ok(());
        }
        let t0 = workers::probe::thread_cpu_seconds();
        let chunk = encode_chunk(src, s).map_err(|e| TaskFailure::fatal(e.to_string()))?;
        encode_cpu.add(workers::probe::thread_cpu_seconds() - t0, 0.0);
        store_ref
            .put(&k, &chunk.to_bytes())
            .map_err(|e| TaskFailure::retry(e.to_string()))?;
        events(Event::ChunkDone { frames: src.frames });
        Ok(())
    };
    run_pool(&handler)?;

    // Assemble and measure every rung.
    let mut rung_reports = Vec::new();
    for (ri, (name, per_chunk)) in names.iter().zip(&rung_settings).enumerate() {
        events(Event::Assembling(name.clone()));
        let file = out.join(format!("{name}.mp4"));
        let mut chunk_bits = vec![0u64; plan.len()];
        let assembled = assemble::assemble(
            &plan,
            rate,
            &mut |ci| {
                let bytes = store.get(&key(ri, ci)).map_err(|e| e.to_string())?;
                let chunk = EncodedChunk::from_bytes(&bytes).map_err(|e| e.to_string())?;
                chunk_bits[ci] = chunk.packets.iter().map(|p| p.data.len() as u64 * 8).sum();
                Ok(chunk)
            },
            &file,
        )
        .map_err(|error| EncodeJobError::Assemble {
            rung: name.clone(),
            error,
        })?;
        let measured = if options.measure {
            let m = workers::measure::measure(
                master,
                &file,
                &workers::measure::MeasureOptions {
                    extras: false,
                    per_frame: true,
                    ..Default::default()
                },
                &mut |n| events(Event::Measuring(name.clone(), n)),
            )
            .map_err(|error| EncodeJobError::Measure {
                rung: name.clone(),
                error,
            })?;
            Some(m)
        } else {
            None
        };
        rung_reports.push(RungReport::new(
            name,
            &per_chunk[0],
            assembled,
            measured.as_ref(),
            &plan,
            &chunk_bits,
            per_chunk,
            fps,
        ));
    }
    let ladder_report = decided.map(|(decision, rungs, probing)| {
        LadderReport::new(
            if options.ladder == LadderChoice::Shot {
                "shot"
            } else {
                "per-title"
            },
            &options.rules,
            &probe_preset,
            &decision,
            &rungs,
            &probing,
            &rung_reports,
            fps,
            encode_cpu.get().0,
        )
    });
    let packaged = match &options.package {
        Some(p) => {
            events(Event::Packaging);
            let files: Vec<(String, PathBuf)> = names
                .iter()
                .map(|n| (n.clone(), out.join(format!("{n}.mp4"))))
                .collect();
            Some(
                package::package_title(master, &report, &files, out, p)
                    .map_err(EncodeJobError::Package)?,
            )
        }
        None => None,
    };
    let report = EncodeReport {
        master: master.to_owned(),
        codec: options.codec,
        frames: report_frames(&plan),
        frame_rate: rate,
        duration_seconds: report_frames(&plan) as f64 / fps,
        audio_duration_seconds: report.audio.first().map(|a| a.duration_seconds),
        chunks: plan.len(),
        reused_chunk_encodes: reused,
        workers: workers_n,
        encode_cpu_seconds: (encode_cpu.get().0 * 1e4).round() / 1e4,
        rungs: rung_reports,
        ladder: ladder_report,
        package: packaged,
    };
    let path = out.join("report.json");
    let json = serde_json::to_vec_pretty(&report).expect("report serialises");
    workers::fsutil::write_file_atomic(&path, |f| std::io::Write::write_all(f, &json))
        .map_err(|e| io("write", &path, e))?;
    Ok(report)
}

/// CPU seconds added up across worker threads, in two parts.
#[derive(Debug, Default)]
struct CpuTally(std::sync::Mutex<(f64, f64)>);

impl CpuTally {
    fn add(&self, a: f64, b: f64) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        t.0 += a;
        t.1 += b;
    }

    fn get(&self) -> (f64, f64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What probing did, for the report.
#[derive(Debug, Default)]
pub struct Probing {
    /// CPU seconds this run spent reading and encoding probes (reused ones cost nothing).
    pub encode_cpu_seconds: f64,
    /// CPU seconds this run spent decoding and scoring probes.
    pub score_cpu_seconds: f64,
    /// Rounds run.
    pub rounds: usize,
    /// Probe encodes (chunk × resolution × setting).
    pub encodes: usize,
    /// Pixels per frame summed over the probe encodes of one chunk (a proxy of their cost).
    pub encoded_pixels: u64,
    /// Encodes an exhaustive grid (7 settings × every resolution) would take.
    pub grid_encodes: usize,
    /// Its pixels per frame, summed likewise.
    pub grid_pixels: u64,
    /// The units' curves (corrected by the anchors when there are some).
    pub chunks: Vec<ladders::title::ChunkProbes>,
    /// The shot optimiser's units: shots inside chunks, or whole chunks.
    pub units: Vec<dynamic::Unit>,
    /// Anchor encodes at the final preset (chunk × resolution × setting).
    pub anchor_encodes: usize,
    /// Rounds of anchors.
    pub anchor_rounds: usize,
    /// Their pixels per frame, summed over one chunk.
    pub anchor_pixels: u64,
    /// CPU seconds this run spent reading and encoding anchors.
    pub anchor_encode_cpu_seconds: f64,
    /// CPU seconds this run spent decoding and scoring anchors.
    pub anchor_score_cpu_seconds: f64,
    /// The anchors' points, `[chunk][size]`.
    pub anchor_points: Vec<BTreeMap<Size, Vec<ladders::rd::CurvePoint>>>,
    /// How the anchors moved each resolution's curves.
    pub corrections: Vec<dynamic::Correction>,
}

fn report_frames(plan: &[ChunkSpan]) -> u64 {
    plan.iter().map(|c| c.frames).sum()
}

/// The frame rate as text, for summaries.
pub fn rate_text(r: Rational) -> String {
    format!("{}/{}", r.num, r.den)
}
