//! Fleet mode: jobs on an SQS queue with their state in S3, run by any number of `rungs worker`
//! processes on any number of machines.
//!
//! `submit` uploads the master (and any extra audio and subtitle files) under `jobs/JOB/` in
//! the store, writes the job's spec and queues its driver task. A worker serves any task of any
//! job: the driver ([`crate::encode::job::advance`]) queues the stages' tasks and queues itself
//! again, after a short delay, until the job is finished or failed. Everything a task needs is
//! in its message or in the store, so workers can die, be killed or be replaced at any time:
//! an unfinished task comes back when its lease lapses, and a finished one is not run again.
//!
//! The store holds, under `jobs/JOB/`: `job.json` (the spec), `input/` (the uploaded files),
//! `plan.json`, `probes/`, `anchors/`, `chunks/`, `renditions/`, `stages/` (which stages were
//! queued), `status.json` (the driver's last word), `out/` (the title: renditions, manifests,
//! segments and `report.json`), then `done.json`, or `failed.json` with the task and the error.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloud::{AwsOptions, S3Store, SqsQueue};
use serde::{Deserialize, Serialize};
use store::{Key, Store};
use workers::queue::{Counts, Queue};
use workers::worker::{self, PoolOptions, PoolReport, TaskFailure};

use crate::encode::job::{self, Ctx, Failed, Input, JobSpec, Memo, Output, Status, Step, Work};
use crate::encode::{EncodeJobError, EncodeOptions, package};

/// A queue and a store shared by a fleet.
pub struct Fleet {
    /// Where jobs keep their state.
    pub store: Arc<dyn Store>,
    /// Where their tasks wait.
    pub queue: Arc<dyn Queue>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("store", &self.store)
            .field("queue", &self.queue)
            .finish()
    }
}

/// Why a fleet operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A job name that `rungs submit` would not make.
    #[error("job {job:?}: expected lowercase letters, digits and '-' (as `rungs submit` prints)")]
    JobName {
        /// The name given.
        job: String,
    },
    /// The store holds no such job.
    #[error("no job {job} in the store")]
    NoJob {
        /// The job.
        job: String,
    },
    /// Only a failed or stalled job can be retried.
    #[error("job {job} has neither failed nor stalled: nothing to retry")]
    NotFailed {
        /// The job.
        job: String,
    },
    /// The queue's state key is refused.
    #[error("queue {name:?}: {error}")]
    QueueName {
        /// The queue's name.
        name: String,
        /// Why the key is refused.
        error: store::KeyError,
    },
    /// A key of the job is refused.
    #[error("{0}")]
    Key(#[from] store::KeyError),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] store::StoreError),
    /// The queue failed.
    #[error("{0}")]
    Queue(#[from] workers::queue::QueueError),
    /// The worker's cache folder is not private.
    #[error("{0}")]
    Cache(#[from] crate::cache::CacheError),
    /// A folder of this machine could not be made.
    #[error("cannot create {}: {error}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
}

/// The queue's name from a name or a queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`).
pub fn queue_name(queue: &str) -> &str {
    queue
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(queue)
}

impl Fleet {
    /// Opens the SQS queue `queue` (a name or a URL; it and its dead-letter queue `NAME-dead`
    /// are created when missing) and the S3 store `store` (`s3://BUCKET/PREFIX`), reached
    /// through `sqs` and `s3` (which differ only in the endpoint, when they do). The queue keeps
    /// its task records in the store under `queue/NAME/`.
    pub fn open(
        queue: &str,
        store: &str,
        sqs: &AwsOptions,
        s3: &AwsOptions,
        max_receives: Option<u32>,
    ) -> Result<Self, FleetError> {
        let store: Arc<dyn Store> = Arc::new(S3Store::open(store, s3)?);
        let name = queue_name(queue);
        let state = Key::new(format!("queue/{name}")).map_err(|error| FleetError::QueueName {
            name: name.to_owned(),
            error,
        })?;
        let mut sqs = SqsQueue::open(name, sqs, store.clone(), state)?;
        if let Some(n) = max_receives {
            sqs = sqs.with_max_receives(n);
        }
        Ok(Self {
            store,
            queue: Arc::new(sqs),
        })
    }
}

/// Checks a job name given on the command line: letters, digits and `-`.
pub fn check_job(job: &str) -> Result<(), FleetError> {
    if (1..=100).contains(&job.len())
        && job
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !job.starts_with('-')
    {
        Ok(())
    } else {
        Err(FleetError::JobName {
            job: job.to_owned(),
        })
    }
}

fn root(job: &str) -> String {
    format!("jobs/{job}/")
}

/// The key of `rel` under the job's prefix.
fn job_key(job: &str, rel: &str) -> Result<Key, EncodeJobError> {
    Key::new(format!("{}{rel}", root(job))).map_err(|error| EncodeJobError::Key {
        rel: rel.to_owned(),
        error,
    })
}

fn now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// `YYYYMMDD-HHMMSS` (UTC) of a time since 1970.
pub(crate) fn stamp(t: Duration) -> String {
    let secs = t.as_secs();
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// A new job name: the master's name, the time and a random tag.
fn new_job_name(master: &Path) -> String {
    let stem: String = master
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let stem = stem.trim_matches('-');
    let stem = if stem.is_empty() { "job" } else { stem };
    let t = now();
    let tag = {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(t.as_nanos());
        h.write_u32(std::process::id());
        h.finish() & 0xffff
    };
    format!("{stem}-{}-{tag:04x}", stamp(t))
}

/// Checks what can be checked of the options without the master's plan (`submit` does too).
pub fn check_options(options: &EncodeOptions) -> Result<(), EncodeJobError> {
    if let Some(p) = &options.package {
        package::check_inputs(p).map_err(EncodeJobError::Inputs)?;
    }
    options.ingest.validate()?;
    // The largest master: rules that select the tallest rungs are checked against it.
    job::derive(options, &job::Plan::of_size(3840, 2160)).map(drop)
}

/// Starts a job: uploads the master and the extra files, writes the spec and queues the
/// driver. Returns the job's name.
pub fn submit(
    fleet: &Fleet,
    master: &Path,
    options: &EncodeOptions,
) -> Result<String, EncodeJobError> {
    check_options(options)?;
    if !master.is_file() {
        return Err(EncodeJobError::File {
            action: "read",
            path: master.to_owned(),
            error: std::io::Error::new(std::io::ErrorKind::NotFound, "not a readable file"),
        });
    }
    let job = new_job_name(master);
    let store = &*fleet.store;
    let upload = |kind: &str, n: usize, path: &Path| -> Result<Input, EncodeJobError> {
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let key = format!("input/{kind}-{n}-{}", job::safe_name(&name));
        let full = job_key(&job, &key)?;
        store
            .put_file(&full, path)
            .map_err(|error| EncodeJobError::Upload {
                path: path.to_owned(),
                error,
            })?;
        Ok(Input::Stored { key, name })
    };
    let master_input = upload("master", 0, master)?;
    let mut audio = Vec::new();
    let mut subtitles = Vec::new();
    if let Some(p) = &options.package {
        for (i, (path, lang)) in p.audio.iter().enumerate() {
            audio.push((upload("audio", i, path)?, lang.clone()));
        }
        for (i, (path, lang)) in p.subtitles.iter().enumerate() {
            subtitles.push((upload("subtitles", i, path)?, lang.clone()));
        }
    }
    let spec = JobSpec {
        master: master_input,
        audio,
        subtitles,
        options: EncodeOptions {
            package: options.package.clone().map(|p| package::PackageOptions {
                audio: Vec::new(),
                subtitles: Vec::new(),
                ..p
            }),
            ..options.clone()
        },
        output: Output::Store,
    };
    let body = serde_json::to_vec_pretty(&spec).expect("specs serialise");
    let key = job_key(&job, "job.json")?;
    store
        .put(&key, &body)
        .map_err(|error| EncodeJobError::Store {
            rel: "job.json".into(),
            error,
        })?;
    write_queued(store, &job).map_err(|error| EncodeJobError::Store {
        rel: "status.json".into(),
        error,
    })?;
    fleet
        .queue
        .push(
            Work::Advance {
                job: job.clone(),
                generation: 0,
            }
            .message(),
        )
        .map_err(EncodeJobError::Queue)?;
    tracing::info!(%job, "submitted");
    Ok(job)
}

/// Writes the status of a job that waits for its first driver run.
fn write_queued(store: &dyn Store, job: &str) -> Result<(), store::StoreError> {
    let at = now().as_secs();
    let status = Status {
        waiting: job::Waiting {
            stage: QUEUED_STAGE.into(),
            done: 0,
            total: 1,
        },
        updated: at,
        since: at,
    };
    let key = Key::new(format!("{}status.json", root(job)))?;
    store.put(
        &key,
        &serde_json::to_vec_pretty(&status).expect("serialises"),
    )
}

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Tasks at once (threads).
    pub threads: usize,
    /// A folder for fetched masters and scratch files: made 0700 when missing, and refused
    /// unless it is this user's and closed to others (`cache::ensure_private`).
    pub cache: PathBuf,
    /// How long the driver waits before it looks at a job again.
    pub poll: Duration,
    /// The lease of a task, renewed by a heartbeat while it runs.
    pub visibility: Duration,
    /// How often leases are renewed.
    pub heartbeat: Duration,
    /// How long one request for a task waits (SQS long polling: at most 20 s).
    pub wait: Duration,
    /// The largest master width or height this worker accepts: a job's spec may ask for
    /// less, never for more.
    pub max_dimension: u32,
    /// The most master frames this worker accepts, likewise.
    pub max_frames: u64,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cache: crate::cache::default_dir("worker"),
            poll: Duration::from_secs(5),
            visibility: Duration::from_secs(60),
            heartbeat: Duration::from_secs(15),
            wait: Duration::from_secs(5),
            max_dimension: crate::ingest::DEFAULT_MAX_DIMENSION,
            max_frames: crate::ingest::DEFAULT_MAX_FRAMES,
        }
    }
}

/// Runs a worker: tasks of any job until `stop` is set; the task in hand is finished first (a
/// task whose worker dies comes back to another worker when its lease lapses).
pub fn run_worker(
    fleet: &Fleet,
    options: &WorkerOptions,
    stop: &AtomicBool,
) -> Result<PoolReport, FleetError> {
    crate::cache::ensure_private(&options.cache)?;
    let specs = Specs::default();
    let memo = Memo::default();
    let fetching = Mutex::new(());
    let quiet = |_: crate::encode::Event| {};
    let handler = |lease: &workers::queue::Lease| -> Result<(), TaskFailure> {
        let work = job::parse(lease)?;
        let name = work.job().to_owned();
        check_job(&name).map_err(|e| TaskFailure::fatal(e.to_string()))?;
        let spec = specs.get(fleet, &name, options)?;
        if !options.cache.join(&name).exists() {
            prune_cache(&*fleet.store, &options.cache);
        }
        let ctx = Ctx {
            store: &*fleet.store,
            queue: &*fleet.queue,
            job: name.clone(),
            root: root(&name),
            cache: options.cache.clone(),
            decoder_threads: if options.threads == 1 { 0 } else { 1 },
            workers: options.threads,
            events: &quiet,
            memo: &memo,
            fetching: &fetching,
            attempt: 0,
        };
        let Work::Advance { generation, .. } = work else {
            let done = job::execute(&ctx, &spec, &work);
            if let Err(f) = &done
                && !f.retryable
            {
                ctx.fail(&lease.message.id, &f.message);
            }
            return done;
        };
        run_driver(fleet, options, ctx, &spec, generation)
    };
    let pool = PoolOptions {
        workers: options.threads.max(1),
        visibility: options.visibility,
        heartbeat: options.heartbeat,
        idle_wait: options.wait,
        retry_delay: Duration::from_secs(2),
        until_drained: false,
    };
    Ok(worker::run(&*fleet.queue, &handler, &pool, stop)?)
}

/// The specs of the jobs a worker has served, read once from the store.
#[derive(Default)]
struct Specs(Mutex<std::collections::HashMap<String, Arc<JobSpec>>>);

impl Specs {
    /// The spec of job `name` (`job.json`), checked for what a fleet worker refuses, with the
    /// worker's own limits where the spec asks for more.
    fn get(
        &self,
        fleet: &Fleet,
        name: &str,
        limits: &WorkerOptions,
    ) -> Result<Arc<JobSpec>, TaskFailure> {
        if let Some(s) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Ok(s.clone());
        }
        let key = Key::new(format!("{}job.json", root(name)))
            .map_err(|e| TaskFailure::fatal(e.to_string()))?;
        let bytes = fleet.store.get(&key).map_err(|e| match e {
            store::StoreError::NotFound { .. } => {
                TaskFailure::fatal(format!("job {name} has no job.json in the store"))
            }
            e => TaskFailure::retry(e.to_string()),
        })?;
        let mut spec: JobSpec = serde_json::from_slice(&bytes)
            .map_err(|e| TaskFailure::fatal(format!("job {name}: job.json: {e}")))?;
        spec.check_fleet()
            .map_err(|e| TaskFailure::fatal(format!("job {name}: job.json: {e}")))?;
        let ingest = &mut spec.options.ingest;
        ingest.max_dimension = ingest.max_dimension.min(limits.max_dimension);
        ingest.min_dimension = ingest.min_dimension.min(ingest.max_dimension);
        ingest.max_frames = ingest.max_frames.min(limits.max_frames);
        let spec = Arc::new(spec);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), spec.clone());
        Ok(spec)
    }
}

/// Runs a job's driver as the task `Advance { generation }`: it queues this attempt's tasks,
/// then itself again after `options.poll` until the job is done or failed. A failure of the
/// store or the queue gives the task back for another attempt; any other failure ends the job.
fn run_driver(
    fleet: &Fleet,
    options: &WorkerOptions,
    ctx: Ctx,
    spec: &JobSpec,
    generation: u64,
) -> Result<(), TaskFailure> {
    let retry = |e: EncodeJobError| TaskFailure::retry(e.to_string());
    let ctx = Ctx {
        attempt: ctx
            .read_json::<u32>("attempt.json")
            .map_err(retry)?
            .unwrap_or(0),
        ..ctx
    };
    let name = ctx.job.clone();
    match job::advance(&ctx, spec) {
        Ok(Step::Waiting(waiting)) => {
            let at = now().as_secs();
            let before: Option<Status> = ctx.read_json("status.json").ok().flatten();
            let since = match before {
                Some(b) if b.waiting.stage == waiting.stage && b.since > 0 => b.since,
                _ => at,
            };
            let status = Status {
                waiting,
                updated: at,
                since,
            };
            ctx.write_json("status.json", &status).map_err(retry)?;
            let next = Work::Advance {
                job: name,
                generation: generation + 1,
            };
            let mut message = next.message();
            message.id = ctx.task_id(&message.id);
            fleet
                .queue
                .push_after(message, options.poll)
                .map_err(|e| TaskFailure::retry(e.to_string()))?;
            Ok(())
        }
        Ok(Step::Done(_)) => {
            tracing::info!(job = %name, "finished");
            Ok(())
        }
        // Already recorded by the task that failed.
        Err(EncodeJobError::Failed(_)) => Ok(()),
        // The store or the queue: another attempt may do.
        Err(e) if e.is_transient() => Err(retry(e)),
        Err(e) => {
            ctx.fail("driver", &e.to_string());
            tracing::warn!(job = %name, "failed: {e}");
            Ok(())
        }
    }
}

/// Removes the cached files of jobs that ended (done or failed), before a new job's files
/// come in. Other worker processes may share the cache: a running job's files stay.
fn prune_cache(store: &dyn Store, cache: &Path) {
    let Ok(dirs) = std::fs::read_dir(cache) else {
        return;
    };
    for d in dirs.flatten() {
        let name = d.file_name().to_string_lossy().into_owned();
        if check_job(&name).is_err() {
            continue;
        }
        let ended = ["done.json", "failed.json"].iter().any(|f| {
            Key::new(format!("{}{f}", root(&name)))
                .ok()
                .is_some_and(|k| store.exists(&k).unwrap_or(false))
        });
        if ended {
            match std::fs::remove_dir_all(d.path()) {
                Ok(()) => tracing::info!(job = %name, "removed the cached files of an ended job"),
                Err(e) => tracing::warn!(job = %name, "cannot remove {}: {e}", d.path().display()),
            }
        }
    }
}

/// Runs a failed or stalled job again (stalled: no driver run for `stalled_after`): its
/// failure record and its stage markers go, and its driver is queued again under a new
/// attempt, whose tasks have new ids (the failed ones are known to the queue). Finished task
/// outputs are kept, so only what failed, and what follows, runs. Returns the attempt.
pub fn retry(fleet: &Fleet, job: &str, stalled_after: Duration) -> Result<u32, FleetError> {
    check_job(job)?;
    let key = |rel: &str| Key::new(format!("{}{rel}", root(job)));
    let store = &*fleet.store;
    let state = status_within(fleet, job, stalled_after)?.state;
    if state != "failed" && state != "stalled" {
        return Err(FleetError::NotFailed { job: job.into() });
    }
    let attempt = current_attempt(store, job)? + 1;
    store.put(&key("attempt.json")?, attempt.to_string().as_bytes())?;
    for k in store.list(&key("stages")?)? {
        store.delete(&k)?;
    }
    for rel in ["status.json", "failed.json"] {
        store.delete(&key(rel)?)?;
    }
    write_queued(store, job)?;
    let mut message = Work::Advance {
        job: job.to_owned(),
        generation: 0,
    }
    .message();
    message.id = format!("{}-a{attempt}", message.id);
    fleet.queue.push(message)?;
    tracing::info!(%job, attempt, "retried");
    Ok(attempt)
}

/// The job's attempt (`attempt.json`; 0 before any retry).
fn current_attempt(store: &dyn Store, job: &str) -> Result<u32, FleetError> {
    match store.get(&Key::new(format!("{}attempt.json", root(job)))?) {
        Ok(b) => Ok(serde_json::from_slice::<u32>(&b).unwrap_or(0)),
        Err(store::StoreError::NotFound { .. }) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Where a job is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job.
    pub job: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// What the driver waits for, when running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<job::Waiting>,
    /// When the driver last looked, seconds since 1970.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<u64>,
    /// Seconds left in the current stage at its pace so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its tasks in the dead-letter queue, with their errors.
    pub dead_letters: Vec<(String, String)>,
    /// Tasks pending and in flight in the whole queue, then the job's own tasks done and dead.
    pub queue: (usize, usize, usize, usize),
    /// Where the title is (`s3://…/jobs/JOB/out/` as a key), once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// How long a job may go without a run of its driver before it reads as stalled: its driver
/// task is queued again every few seconds, and waits at most for a worker to free up.
pub const STALLED_AFTER: Duration = Duration::from_secs(15 * 60);

/// What `status.json` says while a job waits for its first driver run (written by `submit` and
/// `retry`, so that a job whose first task is lost reads as stalled too).
pub const QUEUED_STAGE: &str = "waiting for a worker";

/// The status of `job`, stalled after [`STALLED_AFTER`] without a driver run.
pub fn status(fleet: &Fleet, job: &str) -> Result<JobStatus, FleetError> {
    status_within(fleet, job, STALLED_AFTER)
}

/// The status of `job`: `queued`, `running`, `done`, `failed`, or `stalled` when no driver
/// has run for `stalled_after` (its task was lost: a purged or expired queue), with the reason.
pub fn status_within(
    fleet: &Fleet,
    job: &str,
    stalled_after: Duration,
) -> Result<JobStatus, FleetError> {
    check_job(job)?;
    let read = |rel: &str| -> Result<Option<Vec<u8>>, FleetError> {
        match fleet.store.get(&Key::new(format!("{}{rel}", root(job)))?) {
            Ok(b) => Ok(Some(b)),
            Err(store::StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    };
    if read("job.json")?.is_none() {
        return Err(FleetError::NoJob { job: job.into() });
    }
    let Counts {
        pending,
        in_flight,
        done,
        dead,
    } = fleet.queue.counts_of(job)?;
    let buried = fleet.queue.dead_letters_of(job)?;
    let attempt = current_attempt(&*fleet.store, job)?;
    let status: Option<Status> = read("status.json")?.and_then(|b| serde_json::from_slice(&b).ok());
    let finished = read("done.json")?.is_some();
    // A task of this attempt that went to the dead letters ends the job even when no driver
    // ran to record it (its driver task itself, or a spec refused before any task ran).
    let failed: Option<Failed> = read("failed.json")?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .or_else(|| {
            buried
                .iter()
                .find(|d| !finished && job::attempt_of(&d.message.id) == attempt)
                .map(|d| Failed {
                    task: d.message.id.clone(),
                    error: d.error.clone(),
                })
        });
    let dead_letters = buried
        .into_iter()
        .map(|d| (d.message.id, d.error))
        .collect();
    let (state, failed) = state_of(job, failed, finished, status.as_ref(), stalled_after);
    Ok(JobStatus {
        job: job.to_owned(),
        state: state.into(),
        waiting: status
            .as_ref()
            .filter(|_| !finished)
            .map(|s| s.waiting.clone()),
        eta_seconds: status
            .as_ref()
            .filter(|_| !finished)
            .and_then(Status::eta_seconds),
        updated: status.map(|s| s.updated),
        error: failed.map(|f| format!("{}: {}", f.task, f.error)),
        dead_letters,
        queue: (pending, in_flight, done, dead),
        output: finished.then(|| format!("{}out/", root(job))),
    })
}

/// A job's state, and why it failed or stalled: failed, done, stalled (no driver run for
/// `stalled_after`), running, or queued (waiting for its first driver run).
fn state_of(
    job: &str,
    failed: Option<Failed>,
    finished: bool,
    status: Option<&Status>,
    stalled_after: Duration,
) -> (&'static str, Option<Failed>) {
    let quiet = status
        .map(|s| now().as_secs().saturating_sub(s.updated))
        .filter(|q| *q > stalled_after.as_secs());
    match (failed, quiet) {
        (Some(f), _) => ("failed", Some(f)),
        (None, _) if finished => ("done", None),
        (None, Some(q)) => (
            "stalled",
            Some(Failed {
                task: "driver".into(),
                error: format!(
                    "no driver has run for {q} s: its task was lost (a purged or expired \
                     queue?); `rungs retry {job}` restarts the job, keeping finished work"
                ),
            }),
        ),
        (None, None) => match status {
            Some(s) if s.waiting.stage != QUEUED_STAGE => ("running", None),
            _ => ("queued", None),
        },
    }
}

/// Copies what a title page needs of a finished job (`out/report.json` and the thumbnails) into
/// `dir`; false when the job has no report yet.
pub fn fetch_report(store: &dyn Store, job: &str, dir: &Path) -> Result<bool, FleetError> {
    check_job(job)?;
    let out = format!("{}out/", root(job));
    let report = Key::new(format!("{out}report.json"))?;
    if !store.exists(&report)? {
        return Ok(false);
    }
    create_folder(&dir.join("thumbs"), dir)?;
    store.get_to_file(&report, &dir.join("report.json"))?;
    let thumbs = Key::new(format!("{out}thumbs"))?;
    for k in store.list(&thumbs)? {
        let name = k.name().to_owned();
        store.get_to_file(&k, &dir.join("thumbs").join(name))?;
    }
    Ok(true)
}

/// Creates `path` with its parents; an error names `shown`.
fn create_folder(path: &Path, shown: &Path) -> Result<(), FleetError> {
    std::fs::create_dir_all(path).map_err(|error| FleetError::Folder {
        path: shown.to_owned(),
        error,
    })
}

/// Copies a finished job's title (`out/`) into `dir`. Returns files and bytes.
pub fn download(fleet: &Fleet, job: &str, dir: &Path) -> Result<(usize, u64), FleetError> {
    check_job(job)?;
    let prefix = Key::new(format!("{}out", root(job)))?;
    let keys = fleet.store.list(&prefix)?;
    let (mut files, mut bytes) = (0, 0);
    for k in keys {
        let Some(rel) = k.as_str().strip_prefix(&format!("{}/", prefix.as_str())) else {
            continue;
        };
        // A key has no `..`, no absolute part and no empty segment: it stays inside `dir`.
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            create_folder(parent, parent)?;
        }
        fleet.store.get_to_file(&k, &path)?;
        files += 1;
        bytes += std::fs::metadata(&path).map_or(0, |m| m.len());
    }
    Ok((files, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_job_names() {
        assert_eq!(stamp(Duration::ZERO), "19700101-000000");
        // 2026-11-30 10:15:42 UTC, and a leap day.
        assert_eq!(stamp(Duration::from_secs(1_796_033_742)), "20261130-101542");
        assert_eq!(stamp(Duration::from_secs(951_782_400)), "20000229-000000");
        let name = new_job_name(Path::new("/masters/My Film (final).MOV"));
        assert!(name.starts_with("my-film--final-"), "{name}");
        check_job(&name).unwrap();
        check_job(&new_job_name(Path::new("/"))).unwrap();
        assert_ne!(new_job_name(Path::new("a")), new_job_name(Path::new("a")));
    }

    #[test]
    fn hostile_job_names_are_refused() {
        for bad in ["", "../x", "a/b", "-a", "A", "a b", "a\0", &"a".repeat(101)] {
            assert!(check_job(bad).is_err(), "{bad:?}");
        }
        check_job("film-20261130-101542-00af").unwrap();
    }

    #[test]
    fn queue_names_from_urls() {
        assert_eq!(queue_name("rungs"), "rungs");
        assert_eq!(
            queue_name("https://sqs.eu-west-1.amazonaws.com/123456789012/rungs-jobs"),
            "rungs-jobs"
        );
        assert_eq!(queue_name("http://127.0.0.1:5000/123456789012/q/"), "q");
    }
}
