//! `rungs encode` for a fixed ladder: validate the master and plan its chunks in one decode
//! pass, fan chunk × rung encode tasks out through the queue to the workers, assemble every
//! rung, measure it, and write the report.
//!
//! The work folder `OUT/.rungs/` holds the job's identity, the store of encoded chunks and the
//! queue's journal. Running the same command again after a crash or a `kill -9` finds them,
//! reuses every finished chunk and runs only the rest; a different master or different
//! settings start a fresh job.

pub mod ladder;
mod report;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use workers::encode::{ChunkSource, Codec, EncodeSettings, EncodedChunk, encode_chunk};
use workers::media::Rational;
use workers::queue::{LocalQueue, Message, Queue};
use workers::store::{FsStore, Key, Store};
use workers::worker::{self, PoolOptions, TaskFailure};

pub use ladder::Rung;
pub use report::{EncodeReport, RungReport, VmafSummary};

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
        }
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

/// Everything fixed about a job; a different identity means a fresh job.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
struct Identity {
    master: PathBuf,
    master_bytes: u64,
    master_modified: Option<u128>,
    settings: Vec<EncodeSettings>,
    chunks: Vec<(u64, u64, Option<i64>)>,
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
    let rungs = match &options.ladder {
        LadderChoice::Apple => ladder::apple(options.codec, video.width, video.height, aspect),
        LadderChoice::Custom(r) => r.clone(),
    };
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
    let depth = if options.codec == Codec::H264 {
        8
    } else {
        info.bit_depth.map_or(8, |d| if d > 8 { 10 } else { 8 })
    };
    let settings: Vec<EncodeSettings> = rungs
        .iter()
        .map(|r| EncodeSettings {
            codec: options.codec,
            width: r.width,
            height: r.height,
            rate: r.rate,
            preset: preset.clone(),
            vbv: r.vbv,
            keyint,
            bit_depth: depth,
        })
        .collect();
    for (r, s) in rungs.iter().zip(&settings) {
        s.validate()
            .map_err(|e| EncodeJobError::Config(format!("rung {}: {e}", r.name)))?;
    }
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
    let identity = Identity {
        master: std::path::absolute(master).map_err(|e| io("resolve", master, e))?,
        master_bytes: meta.len(),
        master_modified: meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos()),
        settings: settings.clone(),
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

    // Tasks: every chunk of every rung; finished ones are found in the store.
    let key = |rung: usize, chunk: usize| {
        Key::new(format!("chunks/{rung:02}/{chunk:05}.chunk")).expect("a valid key")
    };
    let mut reused = 0;
    let mut frames_done = 0;
    let total_frames = report_frames(&plan) * rungs.len() as u64;
    for ri in 0..rungs.len() {
        for (ci, span) in plan.iter().enumerate() {
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
                    id: format!("encode-r{ri}-c{ci}"),
                    body,
                })
                .map_err(|e| EncodeJobError::Io(e.to_string()))?;
        }
    }
    let total = rungs.len() * plan.len();
    if reused > 0 {
        tracing::info!("reusing {reused} of {total} chunk encodes from an earlier run");
    }
    events(Event::Planned {
        total,
        reused,
        frames: total_frames,
        frames_done,
    });

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
    let handler = |lease: &workers::queue::Lease| -> Result<(), TaskFailure> {
        let task: Task = serde_json::from_str(&lease.message.body)
            .map_err(|e| TaskFailure::fatal(format!("unreadable task: {e}")))?;
        let (Some(s), Some(src)) = (settings.get(task.rung), sources.get(task.chunk)) else {
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
        let chunk = encode_chunk(src, s).map_err(|e| TaskFailure::fatal(e.to_string()))?;
        store_ref
            .put(&k, &chunk.to_bytes())
            .map_err(|e| TaskFailure::retry(e.to_string()))?;
        events(Event::ChunkDone { frames: src.frames });
        Ok(())
    };
    let pool = PoolOptions {
        workers: workers_n,
        ..Default::default()
    };
    worker::run(&queue, &handler, &pool, stop).map_err(|e| EncodeJobError::Io(e.to_string()))?;
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

    // Assemble and measure every rung.
    let mut rung_reports = Vec::new();
    for (ri, (rung, s)) in rungs.iter().zip(&settings).enumerate() {
        events(Event::Assembling(rung.name.clone()));
        let file = out.join(format!("{}.mp4", rung.name));
        let assembled = assemble::assemble(
            &plan,
            rate,
            &mut |ci| {
                let bytes = store.get(&key(ri, ci)).map_err(|e| e.to_string())?;
                EncodedChunk::from_bytes(&bytes).map_err(|e| e.to_string())
            },
            &file,
        )
        .map_err(|error| EncodeJobError::Assemble {
            rung: rung.name.clone(),
            error,
        })?;
        let vmaf = if options.measure {
            let m = workers::measure::measure(
                master,
                &file,
                &workers::measure::MeasureOptions {
                    extras: false,
                    ..Default::default()
                },
                &mut |n| events(Event::Measuring(rung.name.clone(), n)),
            )
            .map_err(|error| EncodeJobError::Measure {
                rung: rung.name.clone(),
                error,
            })?;
            Some(VmafSummary::from(&m.pooled.vmaf))
        } else {
            None
        };
        rung_reports.push(RungReport::new(rung, s, assembled, vmaf));
    }
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
        rungs: rung_reports,
    };
    let path = out.join("report.json");
    let json = serde_json::to_vec_pretty(&report).expect("report serialises");
    workers::fsutil::write_file_atomic(&path, |f| std::io::Write::write_all(f, &json))
        .map_err(|e| io("write", &path, e))?;
    Ok(report)
}

fn report_frames(plan: &[ChunkSpan]) -> u64 {
    plan.iter().map(|c| c.frames).sum()
}

/// The frame rate as text, for summaries.
pub fn rate_text(r: Rational) -> String {
    format!("{}/{}", r.num, r.den)
}
