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
pub mod estimate;
pub mod job;
pub mod ladder;
pub mod package;
mod report;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use std::collections::BTreeMap;

use ladders::title::{LadderRules, Size};
use media::Rational;
use serde::Serialize;
use store::{FsStore, Key, Store};
use workers::encode::Codec;
use workers::queue::{LocalQueue, Queue};
use workers::worker::{self, PoolOptions, TaskFailure};

pub use ladder::Rung;
pub use report::{
    ChunkHull, ChunkReport, CodecReport, DecidedRungReport, EncodeReport, LadderReport, RdPoint,
    RungReport, StageTime, VmafSummary,
};

use crate::ingest::{self, IngestOptions, IngestReport, ShotOptions};

/// Default segment (and keyframe interval) target in seconds.
pub const DEFAULT_SEGMENT_SECONDS: f64 = 4.0;

/// Which ladder to encode.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
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
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EncodeOptions {
    /// Codecs and encoders: one, or several for a multi-codec title (each its own ladder).
    #[serde(rename = "codec")]
    pub codecs: Codecs,
    /// The ladder.
    pub ladder: LadderChoice,
    /// Encoder preset; `None` picks the codec's default.
    pub preset: Option<String>,
    /// Presets of some codecs, over `preset` (`--preset av1=6`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub codec_presets: BTreeMap<String, String>,
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
    /// Probe presets of some codecs, over `probe_preset` (`--probe-preset av1=12`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub codec_probe_presets: BTreeMap<String, String>,
    /// Probes score one frame in this many (the rest hold the nearest scored frame's score);
    /// 1 scores every frame.
    pub probe_sampling: u64,
    /// Package the title for DASH and HLS; `None` stops at the renditions.
    pub package: Option<package::PackageOptions>,
    /// With a per-title or shot-level ladder, also encode and measure Apple's fixed ladder for
    /// the master (not packaged), and report the BD-rate between the two as measured.
    pub compare_fixed: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            codecs: Codecs::one(Codec::H264),
            ladder: LadderChoice::Apple,
            preset: None,
            codec_presets: BTreeMap::new(),
            workers: 0,
            segment_seconds: DEFAULT_SEGMENT_SECONDS,
            ingest: IngestOptions {
                shots: Some(ShotOptions::default()),
                ..Default::default()
            },
            measure: true,
            rules: LadderRules::default(),
            probe_preset: None,
            codec_probe_presets: BTreeMap::new(),
            probe_sampling: DEFAULT_PROBE_SAMPLING,
            package: Some(package::PackageOptions {
                thumbnails: true,
                ..Default::default()
            }),
            compare_fixed: false,
        }
    }
}

impl EncodeOptions {
    /// The final encodes' preset of one codec.
    pub fn preset_of(&self, codec: Codec) -> String {
        self.codec_presets
            .get(codec.name())
            .or(self.preset.as_ref())
            .cloned()
            .unwrap_or_else(|| default_preset(codec).to_owned())
    }

    /// The probes' preset of one codec.
    pub fn probe_preset_of(&self, codec: Codec) -> String {
        self.codec_probe_presets
            .get(codec.name())
            .or(self.probe_preset.as_ref())
            .cloned()
            .unwrap_or_else(|| default_probe_preset(codec).to_owned())
    }
}

/// The codecs of a title, in the order given: at least one, none twice, one encoder per
/// format. One codec serialises as its name (as before multi-codec titles) and several as a
/// list, which a worker that knows only one codec refuses rather than encoding part of the
/// title.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codecs(Vec<Codec>);

impl Codecs {
    /// One codec.
    pub fn one(codec: Codec) -> Self {
        Self(vec![codec])
    }

    /// Several, checked.
    pub fn new(codecs: Vec<Codec>) -> Result<Self, String> {
        if codecs.is_empty() {
            return Err("no codec".into());
        }
        for (i, c) in codecs.iter().enumerate() {
            for earlier in &codecs[..i] {
                if earlier == c {
                    return Err(format!("{} is given twice", c.name()));
                }
                if family(*earlier) == family(*c) {
                    return Err(format!(
                        "{} and {} make the same format; choose one",
                        earlier.name(),
                        c.name()
                    ));
                }
            }
        }
        Ok(Self(codecs))
    }

    /// The first codec (the title's only one, for most titles).
    pub fn first(&self) -> Codec {
        self.0[0]
    }

    /// Every codec, in order.
    pub fn all(&self) -> &[Codec] {
        &self.0
    }

    /// True for a multi-codec title.
    pub fn several(&self) -> bool {
        self.0.len() > 1
    }

    /// The names, comma-separated.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.0.iter().map(|c| c.name()).collect();
        names.join(",")
    }
}

/// The format a codec makes: two encoders of one format would give the same renditions twice.
fn family(codec: Codec) -> &'static str {
    match codec {
        Codec::Av1 | Codec::Av1Rav1e => "av1",
        c => c.name(),
    }
}

impl Serialize for Codecs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Codecs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(Codec),
            Many(Vec<Codec>),
        }
        match Form::deserialize(d)? {
            Form::One(c) => Ok(Self::one(c)),
            Form::Many(v) => Self::new(v).map_err(serde::de::Error::custom),
        }
    }
}

/// Probes score one frame in this many by default: the motion feature still sees every frame,
/// and the pooled VMAF of a chunk moves by a fraction of a point (measured in the ladder
/// benchmark and `workers/tests/probe.rs`) for a quarter of the scoring.
pub const DEFAULT_PROBE_SAMPLING: u64 = 4;

/// The default probe preset of each encoder: fast, because anchors at the final preset
/// correct the probes' curves. For x264 and x265 `veryfast`, the fastest preset with the
/// macroblock tree (which `superfast` lacks): its curves keep the final preset's ranking of
/// resolutions on easy content, where superfast's misjudged the bits at low rates by up to 66%
/// (the real-set ladder benchmark).
pub fn default_probe_preset(codec: Codec) -> &'static str {
    match codec {
        Codec::H264 | Codec::Hevc => "veryfast",
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
        /// The codec whose encodes they are.
        codec: Codec,
        /// Chunk × rung encodes in the job.
        total: usize,
        /// Those found finished from an earlier run.
        reused: usize,
        /// Those that are anchors' encodes, made at the rung's settings while deciding.
        from_anchors: usize,
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
        /// The codec probed.
        codec: Codec,
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
    /// An extra input of packaging (audio or subtitles) is refused.
    #[error(transparent)]
    Inputs(package::TitleError),
    /// A stage's tasks are done but their outputs are missing from the store.
    #[error(
        "{stage}: {missing} of {total} tasks are done but their outputs are missing from {store}"
    )]
    Missing {
        /// The stage.
        stage: String,
        /// Tasks whose outputs are missing.
        missing: usize,
        /// The stage's tasks.
        total: usize,
        /// The store.
        store: String,
    },
    /// A rendition of a local job is not a file of this machine.
    #[error("rendition {rel} is not a local file")]
    NotLocal {
        /// Its key, relative to the job's prefix.
        rel: String,
    },
    /// A key under the job's prefix is not a valid store key.
    #[error("key {rel:?}: {error}")]
    Key {
        /// The key, relative to the job's prefix.
        rel: String,
        /// Why it is refused.
        error: store::KeyError,
    },
    /// Reading or writing the job's store failed.
    #[error("{error}")]
    Store {
        /// The key, relative to the job's prefix.
        rel: String,
        /// The store's error.
        error: store::StoreError,
    },
    /// An object of the job's state is not what it should be.
    #[error("{rel}: {error}")]
    Object {
        /// The key, relative to the job's prefix.
        rel: String,
        /// The parser's error.
        error: serde_json::Error,
    },
    /// An input kept in the store could not be fetched to this machine.
    #[error("fetching {name}: {error}")]
    Fetch {
        /// The input's file name.
        name: String,
        /// The store's error.
        error: store::StoreError,
    },
    /// An input could not be uploaded to the fleet's store.
    #[error("uploading {}: {error}", path.display())]
    Upload {
        /// The file.
        path: PathBuf,
        /// The store's error.
        error: store::StoreError,
    },
    /// The queue failed.
    #[error("{0}")]
    Queue(workers::queue::QueueError),
    /// A file or folder of this machine could not be read or written.
    #[error("cannot {action} {}: {error}", path.display())]
    File {
        /// What was being done: "read", "write", "create", ...
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
    /// Encode tasks failed for good.
    #[error("{} encode task(s) failed; the first: {}", .count, .first)]
    Tasks {
        /// How many.
        count: usize,
        /// The first failure.
        first: String,
    },
    /// A cache folder or file of this machine cannot be trusted.
    #[error("{0}")]
    Cache(crate::cache::CacheError),
    /// The job was interrupted; running it again resumes.
    #[error("interrupted; run the same command again to resume")]
    Interrupted,
    /// Another run is writing to the same output folder.
    #[error(
        "{} is in use by another run ({holder}); wait for it to end, or choose another folder",
        out.display()
    )]
    Busy {
        /// The output folder.
        out: PathBuf,
        /// Who holds it: the process id, when it started, and its command.
        holder: String,
    },
    /// A fleet job failed (`failed.json` says which task and why).
    #[error("the job failed: {0}")]
    Failed(String),
}

impl EncodeJobError {
    /// True for failures of the store, the queue or this machine's files, which another
    /// attempt may not meet.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Store { .. }
                | Self::Fetch { .. }
                | Self::Upload { .. }
                | Self::Queue(_)
                | Self::File { .. }
        )
    }
}

/// Everything fixed about a local job; a different identity means a fresh job.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
struct Identity {
    master: PathBuf,
    master_bytes: u64,
    master_modified: Option<u128>,
    /// The settings of a fixed ladder, or what decides a dynamic one.
    job: serde_json::Value,
    chunks: Vec<(u64, u64, Option<i64>)>,
}

/// Runs the job on this machine: the same tasks a fleet runs ([`job`]), on a local queue and
/// store in `OUT/.rungs/`, with a pool of worker threads. `stop` interrupts it between tasks
/// (the work done so far is kept).
pub fn run(
    master: &Path,
    out: &Path,
    options: &EncodeOptions,
    stop: &AtomicBool,
    events: &(dyn Fn(Event) + Sync),
) -> Result<EncodeReport, EncodeJobError> {
    // Inputs of packaging that can be refused are checked before hours of encoding.
    if let Some(p) = &options.package {
        package::check_inputs(p).map_err(EncodeJobError::Inputs)?;
    }
    let work = out.join(".rungs");
    let _lock = lock_output(out, &work)?;
    let (plan, derived) = plan_locally(master, options, events)?;
    open_work_folder(&work, &identity(master, options, &plan, &derived)?)?;
    let store = FsStore::open(work.join("store")).map_err(|error| EncodeJobError::Store {
        rel: String::new(),
        error,
    })?;
    let queue = LocalQueue::open(work.join("queue.journal")).map_err(EncodeJobError::Queue)?;
    // A run again after a failure retries the tasks that failed.
    let revived = queue.revive_dead().map_err(EncodeJobError::Queue)?;
    if revived > 0 {
        tracing::info!("{revived} task(s) that failed in the last run are run again");
    }
    // The markers of queued stages belong to the runs that queued them.
    let stages = Key::new("stages").expect("a valid key");
    let store_error = |error| EncodeJobError::Store {
        rel: "stages".into(),
        error,
    };
    for k in store.list(&stages).map_err(store_error)? {
        store.delete(&k).map_err(store_error)?;
    }

    let workers_n = if options.workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        options.workers
    };
    let spec = local_spec(master, out, options);
    let status = StatusFile::new(work.join("status.json"));
    let tracked = |e: Event| {
        if matches!(e, Event::ProbeDone | Event::ChunkDone { .. }) {
            status.task_done();
        }
        events(e);
    };
    let memo = job::Memo::default();
    let fetching = std::sync::Mutex::new(());
    let ctx = job::Ctx {
        store: &store,
        queue: &queue,
        job: "local".into(),
        root: String::new(),
        cache: work.join("cache"),
        // One task per core: decoders stay single-threaded unless there is one worker.
        decoder_threads: if workers_n == 1 { 0 } else { 1 },
        workers: workers_n,
        events: &tracked,
        memo: &memo,
        fetching: &fetching,
        attempt: 0,
    };
    ctx.write_json("plan.json", &plan)?;
    let pool = PoolOptions {
        workers: workers_n,
        ..Default::default()
    };
    drive(&ctx, &spec, (&queue, &work), &pool, stop, &status)
}

/// Validates the master and plans its chunks in this process (the plan stage of a local job),
/// with what it cost.
fn plan_locally(
    master: &Path,
    options: &EncodeOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<(job::Plan, Vec<job::Derived>), EncodeJobError> {
    let mut ingest_options = options.ingest.clone();
    ingest_options
        .shots
        .get_or_insert_with(ShotOptions::default);
    let (started, cpu) = (std::time::Instant::now(), media::cpu::process_cpu_seconds());
    let report = ingest::analyze(master, &ingest_options, &mut |p| events(Event::Ingest(*p)))?;
    if !report.accepted {
        return Err(EncodeJobError::Rejected(Box::new(report)));
    }
    let mut plan = job::Plan::from_report(&report)?;
    // Nothing else runs in this process yet: its clock is the plan's.
    plan.spent = job::Spent {
        wall_seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: media::cpu::process_cpu_seconds() - cpu,
    };
    let derived = job::derive(options, &plan)?;
    Ok((plan, derived))
}

/// A file error at `path`.
fn file_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EncodeJobError {
    let path = path.to_owned();
    move |error| EncodeJobError::File {
        action,
        path,
        error,
    }
}

/// What identifies a local job: the master as a file, and what the work depends on.
fn identity(
    master: &Path,
    options: &EncodeOptions,
    plan: &job::Plan,
    derived: &[job::Derived],
) -> Result<Identity, EncodeJobError> {
    let meta = std::fs::metadata(master).map_err(file_error("read", master))?;
    let master_abs = std::path::absolute(master).map_err(file_error("resolve", master))?;
    Ok(Identity {
        master: master_abs,
        master_bytes: meta.len(),
        master_modified: meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos()),
        job: job::identity_of(derived, options),
        chunks: plan
            .chunks
            .iter()
            .map(|c| (c.start_frame, c.frames, c.start_pts))
            .collect(),
    })
}

/// Makes `work` the folder of the job `identity`: kept when it holds this very job (a resume),
/// emptied otherwise.
fn open_work_folder(work: &Path, identity: &Identity) -> Result<(), EncodeJobError> {
    let id_path = work.join("job.json");
    let same_job = std::fs::read(&id_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Identity>(&b).ok())
        .is_some_and(|old| old == *identity);
    if !same_job && work.exists() {
        // Everything but the lock this run holds.
        for entry in std::fs::read_dir(work).map_err(file_error("clear", work))? {
            let path = entry.map_err(file_error("clear", work))?.path();
            if path.file_name() == Some(std::ffi::OsStr::new(LOCK)) {
                continue;
            }
            if path.is_dir() && !path.is_symlink() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            }
            .map_err(file_error("clear", &path))?;
        }
    }
    std::fs::create_dir_all(work).map_err(file_error("create", work))?;
    let id_json = serde_json::to_vec_pretty(identity).expect("identity serialises");
    store::fsutil::write_file_atomic(&id_path, |f| std::io::Write::write_all(f, &id_json))
        .map_err(file_error("write", &id_path))
}

/// The lock file of an output folder, in its work folder.
const LOCK: &str = "lock";

/// An output folder held by this run: the lock goes with the open file when the run ends,
/// however it ends (the kernel drops it when the process dies).
#[derive(Debug)]
struct OutputLock {
    /// Held, never read: closing it releases the lock.
    _file: std::fs::File,
}

/// Takes the exclusive lock of `out` (`OUT/.rungs/lock`, an advisory `flock`), or says who
/// holds it. Nothing in the folder is touched before the lock is held.
fn lock_output(out: &Path, work: &Path) -> Result<OutputLock, EncodeJobError> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(work).map_err(file_error("create", work))?;
    let path = work.join(LOCK);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(file_error("open", &path))?;
    // SAFETY: flock(2) on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(file_error("lock", &path)(error));
        }
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        return Err(EncodeJobError::Busy {
            out: out.to_owned(),
            holder: if holder.is_empty() {
                "a process that has not said who it is yet".into()
            } else {
                holder.chars().take(300).collect()
            },
        });
    }
    let command: Vec<String> = std::env::args().take(6).collect();
    let who = format!(
        "pid {}, started {} UTC: {}",
        std::process::id(),
        crate::fleet::stamp(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
        ),
        command.join(" ")
    );
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(who.as_bytes()))
        .map_err(file_error("write", &path))?;
    Ok(OutputLock { _file: file })
}

/// The spec of a local job: the inputs as files of this machine, the title in `out`.
fn local_spec(master: &Path, out: &Path, options: &EncodeOptions) -> job::JobSpec {
    let files = |of: Option<&Vec<(PathBuf, package::TrackLabel)>>| {
        of.into_iter()
            .flatten()
            .map(|(f, l)| (job::Input::Local(f.clone()), l.clone()))
            .collect()
    };
    job::JobSpec {
        master: job::Input::Local(master.to_owned()),
        audio: files(options.package.as_ref().map(|p| &p.audio)),
        subtitles: files(options.package.as_ref().map(|p| &p.subtitles)),
        options: EncodeOptions {
            package: options.package.clone().map(|p| package::PackageOptions {
                audio: Vec::new(),
                subtitles: Vec::new(),
                ..p
            }),
            ..options.clone()
        },
        output: job::Output::Dir(out.to_owned()),
    }
}

/// `OUT/.rungs/status.json`: the stage and its tasks done, for the dashboard (written at most
/// once a second as tasks finish, and at every change of stage).
struct StatusFile {
    path: PathBuf,
    /// The last status, and when it was last written.
    last: std::sync::Mutex<(Option<job::Status>, std::time::Instant)>,
}

impl StatusFile {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            last: std::sync::Mutex::new((None, std::time::Instant::now())),
        }
    }

    fn save(&self, s: &job::Status) {
        let saved = store::fsutil::write_file_atomic(&self.path, |f| {
            serde_json::to_writer(f, s).map_err(std::io::Error::other)
        });
        if let Err(e) = saved {
            tracing::warn!("cannot write {}: {e}", self.path.display());
        }
    }

    /// One more task of the stage is done.
    fn task_done(&self) {
        let mut p = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let due = p.1.elapsed() >= std::time::Duration::from_secs(1);
        if let Some(s) = &mut p.0 {
            s.waiting.done = (s.waiting.done + 1).min(s.waiting.total);
            s.updated = now_unix();
            if due {
                self.save(s);
            }
        }
        if due {
            p.1 = std::time::Instant::now();
        }
    }

    /// The driver waits for `w`.
    fn waiting(&self, w: &job::Waiting) {
        let mut p = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_unix();
        let since =
            p.0.as_ref()
                .filter(|s| s.waiting.stage == w.stage)
                .map_or(now, |s| s.since);
        let s = job::Status {
            waiting: w.clone(),
            updated: now,
            since,
        };
        self.save(&s);
        p.0 = Some(s);
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs the driver and the local worker pool in turn until the job is done, fails or is
/// interrupted.
fn drive(
    ctx: &job::Ctx,
    spec: &job::JobSpec,
    (queue, work): (&LocalQueue, &Path),
    pool: &PoolOptions,
    stop: &AtomicBool,
    status: &StatusFile,
) -> Result<EncodeReport, EncodeJobError> {
    let handler = |lease: &workers::queue::Lease| -> Result<(), TaskFailure> {
        job::execute(ctx, spec, &job::parse(lease)?)
    };
    let mut last: Option<job::Waiting> = None;
    loop {
        let w = match job::advance(ctx, spec)? {
            job::Step::Done(report) => return Ok(*report),
            job::Step::Waiting(w) => w,
        };
        status.waiting(&w);
        if last.as_ref() == Some(&w) {
            return Err(EncodeJobError::Missing {
                stage: w.stage,
                missing: w.total - w.done,
                total: w.total,
                store: work.join("store").display().to_string(),
            });
        }
        worker::run(queue, &handler, pool, stop).map_err(EncodeJobError::Queue)?;
        if stop.load(Ordering::Acquire) {
            return Err(EncodeJobError::Interrupted);
        }
        let dead = queue.dead_letters().map_err(EncodeJobError::Queue)?;
        if let Some(first) = dead.first() {
            return Err(EncodeJobError::Tasks {
                count: dead.len(),
                first: format!("{}: {}", first.message.id, first.error),
            });
        }
        last = Some(w);
    }
}

/// What probing did, for the report.
#[derive(Debug, Default)]
pub struct Probing {
    /// CPU seconds spent reading and encoding the probes (recorded with each probe, whichever
    /// run or worker made it).
    pub encode_cpu_seconds: f64,
    /// CPU seconds spent decoding and scoring the probes.
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
    /// CPU seconds spent reading and encoding the anchors.
    pub anchor_encode_cpu_seconds: f64,
    /// CPU seconds spent decoding and scoring the anchors.
    pub anchor_score_cpu_seconds: f64,
    /// The anchors' points, `[chunk][size]`.
    pub anchor_points: Vec<BTreeMap<Size, Vec<ladders::rd::CurvePoint>>>,
    /// How the anchors moved each resolution's curves.
    pub corrections: Vec<dynamic::Correction>,
    /// Rungs that sit on an anchor, whose chunks are the anchor's encodes.
    pub rungs_on_anchors: usize,
    /// The store keys of the anchors' encodes, each one a chunk at a rung's final settings.
    pub anchor_chunks: std::collections::BTreeSet<String>,
    /// Chunks of the rungs that are anchors' encodes (not encoded again).
    pub chunks_from_anchors: usize,
}

/// The frame rate as text, for summaries.
pub fn rate_text(r: Rational) -> String {
    format!("{}/{}", r.num, r.den)
}
