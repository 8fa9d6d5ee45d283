//! A job as tasks on a queue, with all of its state in a store.
//!
//! Every stage of an encode is a task: plan (validate the master and cut it into chunks),
//! probe, encode, assemble (with the VMAF measure) and package. Tasks are self-describing (the
//! settings, the chunk and the output key travel in the message), and each writes its output
//! under a key fixed by what it computes, so a task run twice writes the same bytes.
//!
//! [`advance`] is the driver: it reads what the store holds, decides what is cheap to decide
//! (the probe rounds, the ladder, the report), queues the tasks of the next stage that are
//! missing, and says what it waits for. It keeps no state of its own, so it can run anywhere
//! and again at any time: `rungs encode` calls it between runs of its local worker pool, and a
//! fleet runs it as one more task (`Work::Advance`) that queues itself again until the job
//! ends. Local and fleet jobs run the same tasks with the same settings, so they write the same
//! renditions and manifests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ladders::title::{Size, TitleDecision};
use packager::assemble::{self, ChunkSpan};
use packager::sink::{Sink, SinkError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use workers::encode::{
    ChunkSource, Codec, EncodeSettings, EncodedChunk, RateControl, Vbv, encode_chunk,
};
use workers::media::Rational;
use workers::queue::{Lease, Message, Queue};
use workers::store::{Key, Store, StoreError};
use workers::worker::TaskFailure;

use super::dynamic::{self, DecidedRung, StoredProbe};
use super::report::{EncodeReport, LadderReport, RungReport};
use super::{EncodeJobError, EncodeOptions, Event, LadderChoice, Probing, ladder, package};
use crate::ingest::{IngestReport, Severity};

/// Where one of the job's input files is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// A file on this machine (a local run).
    Local(PathBuf),
    /// An object in the store, relative to the job's prefix, with the file's own name.
    Stored {
        /// The key under the job's prefix.
        key: String,
        /// The file name it was submitted as.
        name: String,
    },
}

impl Input {
    /// The name to show: the path, or the submitted file name.
    pub fn display(&self) -> PathBuf {
        match self {
            Self::Local(p) => p.clone(),
            Self::Stored { name, .. } => PathBuf::from(name),
        }
    }
}

/// Where the finished title goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// A folder on this machine (a local run).
    Dir(PathBuf),
    /// `out/` under the job's prefix in the store (a fleet run).
    Store,
}

/// Everything a job is, fixed when it starts (`job.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobSpec {
    /// The master.
    pub master: Input,
    /// Extra audio files with their languages.
    pub audio: Vec<(Input, String)>,
    /// Subtitle files with their languages.
    pub subtitles: Vec<(Input, String)>,
    /// What to make (the package options' file lists are empty: see `audio`, `subtitles`).
    pub options: EncodeOptions,
    /// Where the title goes.
    pub output: Output,
}

/// What the plan stage found, as the later stages need it (`plan.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The video stream.
    pub stream: usize,
    /// Its size.
    pub width: u32,
    /// Its size.
    pub height: u32,
    /// Display aspect ratio.
    pub aspect: f64,
    /// Bits per sample, when declared.
    pub bit_depth: Option<u8>,
    /// Frame rate.
    pub frame_rate: Rational,
    /// The encode chunks.
    pub chunks: Vec<crate::shots::Chunk>,
    /// Start time of the video, seconds (audio is aligned to it).
    pub origin_seconds: f64,
    /// The master's audio streams and languages.
    pub audio: Vec<(usize, String)>,
    /// The first audio track's decoded duration.
    pub audio_duration_seconds: Option<f64>,
}

impl Plan {
    /// The plan of an accepted master.
    pub fn from_report(report: &IngestReport) -> Result<Self, EncodeJobError> {
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
        Ok(Self {
            stream: video.stream,
            width: video.width,
            height: video.height,
            aspect: info
                .display_aspect_ratio
                .to_f64()
                .filter(|a| *a > 0.0)
                .unwrap_or(f64::from(video.width) / f64::from(video.height)),
            bit_depth: info.bit_depth,
            frame_rate: shots.frame_rate,
            chunks: shots.chunks.clone(),
            origin_seconds: video.timing.start_seconds.unwrap_or(0.0),
            audio: report
                .audio
                .iter()
                .map(|a| (a.stream, a.language.clone().unwrap_or_else(|| "und".into())))
                .collect(),
            audio_duration_seconds: report.audio.first().map(|a| a.duration_seconds),
        })
    }

    fn spans(&self) -> Vec<ChunkSpan> {
        self.chunks
            .iter()
            .map(|c| ChunkSpan {
                start_frame: c.start_frame,
                frames: c.frames,
            })
            .collect()
    }
}

/// The settings a job's options and plan fix, checked.
#[derive(Clone, Debug)]
pub struct Derived {
    /// Frames per second.
    pub fps: f64,
    /// Settings shared by every encode.
    pub base: EncodeSettings,
    /// The final encodes' preset.
    pub preset: String,
    /// The probes' preset.
    pub probe_preset: String,
    /// A fixed ladder's rungs and settings (empty for dynamic ladders).
    pub fixed: Vec<(String, EncodeSettings)>,
    /// Candidate sizes of dynamic ladders.
    pub sizes: Vec<Size>,
}

impl Derived {
    /// What identifies the job's work: the fixed settings, or what decides a dynamic ladder.
    pub fn identity(&self, options: &EncodeOptions) -> serde_json::Value {
        if options.ladder.is_dynamic() {
            serde_json::json!({
                "ladder": if options.ladder == LadderChoice::Shot { "shot" } else { "per-title" },
                "base": self.base,
                "probe_preset": self.probe_preset,
                "rules": options.rules,
                "sizes": self.sizes,
            })
        } else {
            let settings: Vec<&EncodeSettings> = self.fixed.iter().map(|(_, s)| s).collect();
            serde_json::json!({ "settings": settings })
        }
    }
}

/// Checks the options against the plan and derives every setting.
pub fn derive(options: &EncodeOptions, plan: &Plan) -> Result<Derived, EncodeJobError> {
    let rate = plan.frame_rate;
    let fps = rate
        .to_f64()
        .filter(|f| *f > 0.0)
        .ok_or_else(|| EncodeJobError::Config(format!("unusable frame rate {rate}")))?;
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
        .unwrap_or_else(|| super::default_preset(options.codec).to_owned());
    let probe_preset = options
        .probe_preset
        .clone()
        .unwrap_or_else(|| super::default_probe_preset(options.codec).to_owned());
    let depth = if options.codec == Codec::H264 {
        8
    } else {
        plan.bit_depth.map_or(8, |d| if d > 8 { 10 } else { 8 })
    };
    let base = EncodeSettings {
        codec: options.codec,
        width: (plan.width & !1).max(2),
        height: (plan.height & !1).max(2),
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
        LadderChoice::Apple => ladder::apple(options.codec, plan.width, plan.height, plan.aspect),
        LadderChoice::Custom(r) => r.clone(),
        LadderChoice::PerTitle | LadderChoice::Shot => Vec::new(),
    };
    let mut fixed = Vec::new();
    for r in &fixed_rungs {
        let s = EncodeSettings {
            width: r.width,
            height: r.height,
            rate: r.rate,
            vbv: r.vbv,
            ..base.clone()
        };
        s.validate()
            .map_err(|e| EncodeJobError::Config(format!("rung {}: {e}", r.name)))?;
        fixed.push((r.name.clone(), s));
    }
    Ok(Derived {
        fps,
        sizes: ladders::title::candidate_sizes(plan.width, plan.height, plan.aspect, 1.5),
        base,
        preset,
        probe_preset,
        fixed,
    })
}

/// One task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// Run the driver once more.
    Advance {
        /// The job.
        job: String,
        /// Counts the driver's runs; each one queues the next.
        generation: u64,
    },
    /// Validate the master and cut it into chunks.
    Plan {
        /// The job.
        job: String,
    },
    /// Encode a chunk at a resolution at several settings and score each.
    Probe {
        /// The job.
        job: String,
        /// The chunk.
        chunk: usize,
        /// One per point.
        settings: Vec<EncodeSettings>,
        /// Where each point goes, under the job's prefix.
        keys: Vec<String>,
    },
    /// Encode a chunk of a rung.
    Encode {
        /// The job.
        job: String,
        /// The chunk.
        chunk: usize,
        /// Its settings.
        settings: EncodeSettings,
        /// Where it goes.
        key: String,
    },
    /// Join a rung's chunks and measure it.
    Assemble {
        /// The job.
        job: String,
        /// The rung.
        name: String,
        /// Every chunk's settings.
        settings: Vec<EncodeSettings>,
        /// Every chunk's key.
        chunks: Vec<String>,
        /// Where the rendition goes.
        file: String,
        /// Where its record goes (written last).
        record: String,
    },
    /// Package the renditions for DASH and HLS.
    Package {
        /// The job.
        job: String,
        /// Each rendition's name and key.
        renditions: Vec<(String, String)>,
        /// Where the packaging record goes (written last).
        record: String,
    },
}

impl Work {
    /// The job the task belongs to.
    pub fn job(&self) -> &str {
        match self {
            Self::Advance { job, .. }
            | Self::Plan { job }
            | Self::Probe { job, .. }
            | Self::Encode { job, .. }
            | Self::Assemble { job, .. }
            | Self::Package { job, .. } => job,
        }
    }

    /// The queue message; its id is fixed by what the task computes.
    pub fn message(&self) -> Message {
        let id = match self {
            Self::Advance { job, generation } => format!("{job}-advance-{generation}"),
            Self::Plan { job } => format!("{job}-plan"),
            Self::Probe { job, keys, .. } => format!("{job}-probe-{}", digest_of(keys)),
            Self::Encode { job, key, .. } => format!("{job}-encode-{}", digest_of(key)),
            Self::Assemble { job, chunks, .. } => format!("{job}-assemble-{}", digest_of(chunks)),
            Self::Package { job, record, .. } => format!("{job}-package-{}", digest_of(record)),
        };
        Message {
            id,
            body: serde_json::to_string(self).expect("tasks serialise"),
        }
    }
}

/// A short, stable digest of a value, for keys and task ids: FNV-1a over its JSON.
pub fn digest_of<T: Serialize + ?Sized>(value: &T) -> String {
    let json = serde_json::to_vec(value).expect("serialises");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Objects read before, which never change once written (probes, records, the plan).
#[derive(Debug, Default)]
pub struct Memo(Mutex<HashMap<String, Vec<u8>>>);

/// What a task or the driver works with.
pub struct Ctx<'a> {
    /// The store of the job's objects.
    pub store: &'a dyn Store,
    /// The queue.
    pub queue: &'a dyn Queue,
    /// The job's name, in task ids.
    pub job: String,
    /// The key prefix of the job's objects: empty, or `jobs/JOB/`.
    pub root: String,
    /// A folder of this machine for fetched inputs and scratch files.
    pub cache: PathBuf,
    /// Decoder threads per task.
    pub decoder_threads: usize,
    /// Parallel tasks of this process, for the report.
    pub workers: usize,
    /// Progress.
    pub events: &'a (dyn Fn(Event) + Sync),
    /// Objects read before.
    pub memo: &'a Memo,
    /// Held while an input is fetched from the store.
    pub fetching: &'a Mutex<()>,
}

/// What the driver waits for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    /// The stage, for people.
    pub stage: String,
    /// Its tasks done.
    pub done: usize,
    /// Its tasks.
    pub total: usize,
}

/// What one run of the driver found.
#[derive(Debug)]
pub enum Step {
    /// Tasks are queued or running.
    Waiting(Waiting),
    /// The job is finished.
    Done(Box<EncodeReport>),
}

/// A finished rendition: its report entry and the encode CPU of its chunks.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RenditionRecord {
    report: RungReport,
    encode_cpu_seconds: f64,
}

/// Why a job failed (`failed.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Failed {
    /// The task that failed, or "driver".
    pub task: String,
    /// Why.
    pub error: String,
}

/// How far the job is (`status.json`), for `rungs status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    /// What it waits for.
    pub waiting: Waiting,
    /// When the driver last ran, seconds since 1970.
    pub updated: u64,
}

fn store_text(e: StoreError) -> String {
    e.to_string()
}

impl Ctx<'_> {
    /// The key of `rel` under the job's prefix.
    pub fn key(&self, rel: &str) -> Result<Key, String> {
        Key::new(format!("{}{rel}", self.root)).map_err(|e| format!("key {rel:?}: {e}"))
    }

    /// Reads a JSON object; `None` when there is none.
    pub fn read_json<T: DeserializeOwned>(&self, rel: &str) -> Result<Option<T>, String> {
        match self.store.get(&self.key(rel)?) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{rel}: {e}")),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_text(e)),
        }
    }

    /// Reads an object that never changes once written, from memory when read before.
    fn read_fixed<T: DeserializeOwned>(&self, rel: &str) -> Result<T, String> {
        let key = self.key(rel)?;
        let cached = self
            .memo
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key.as_str())
            .cloned();
        let bytes = match cached {
            Some(b) => b,
            None => {
                let b = self.store.get(&key).map_err(store_text)?;
                self.memo
                    .0
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.as_str().to_owned(), b.clone());
                b
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| format!("{rel}: {e}"))
    }

    /// Writes a JSON object.
    pub fn write_json<T: Serialize>(&self, rel: &str, value: &T) -> Result<(), String> {
        let body = serde_json::to_vec_pretty(value).expect("serialises");
        self.store.put(&self.key(rel)?, &body).map_err(store_text)
    }

    /// The keys under `rel/`, relative to the job's prefix.
    fn list(&self, rel: &str) -> Result<BTreeSet<String>, String> {
        let keys = self.store.list(&self.key(rel)?).map_err(store_text)?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.as_str().strip_prefix(&self.root).map(str::to_owned))
            .collect())
    }

    /// The input as a file of this machine, fetched into the cache the first time.
    pub fn local_file(&self, input: &Input) -> Result<PathBuf, String> {
        let (key, name) = match input {
            Input::Local(p) => return Ok(p.clone()),
            Input::Stored { key, name } => (self.key(key)?, name),
        };
        if let Some(p) = self.store.local_path(&key) {
            return Ok(p);
        }
        let _one = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        let dir = self.cache.join(&self.job).join("input");
        let path = dir.join(format!("{}-{}", digest_of(key.as_str()), safe_name(name)));
        if !path.is_file() {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            self.store
                .get_to_file(&key, &path)
                .map_err(|e| format!("fetching {name}: {e}"))?;
        }
        Ok(path)
    }

    /// Queues the tasks of a stage, once: a marker under `stages/` records that they were
    /// queued (with how many were already done). True when this call queued them.
    fn queue_stage(
        &self,
        stage: &str,
        tasks: &[Work],
        delay: Option<std::time::Duration>,
        done: usize,
    ) -> Result<bool, String> {
        let marker = format!("stages/{stage}.json");
        if self.store.exists(&self.key(&marker)?).map_err(store_text)? {
            return Ok(false);
        }
        for t in tasks {
            let m = t.message();
            match delay {
                Some(d) => self.queue.push_after(m, d),
                None => self.queue.push(m),
            }
            .map_err(|e| e.to_string())?;
        }
        self.write_json(
            &marker,
            &serde_json::json!({ "tasks": tasks.len(), "done": done }),
        )?;
        Ok(true)
    }

    /// How many tasks of `stage` were found done when it was queued.
    fn stage_reused(&self, stage: &str) -> usize {
        self.read_json::<serde_json::Value>(&format!("stages/{stage}.json"))
            .ok()
            .flatten()
            .and_then(|v| v["done"].as_u64())
            .unwrap_or(0) as usize
    }

    /// Records the job as failed (the first failure wins).
    pub fn fail(&self, task: &str, error: &str) {
        let already = self.key("failed.json").ok().map(|k| self.store.exists(&k));
        if !matches!(already, Some(Ok(true))) {
            let _ = self.write_json(
                "failed.json",
                &Failed {
                    task: task.to_owned(),
                    error: error.to_owned(),
                },
            );
        }
    }
}

/// A file name reduced to letters, digits, `.`, `-` and `_`.
pub fn safe_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_start_matches('.').to_owned();
    if s.is_empty() { "file".into() } else { s }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn io(e: String) -> EncodeJobError {
    EncodeJobError::Io(e)
}

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
        .filter(|d| d.message.id.starts_with(&format!("{}-", ctx.job)))
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

    let decided = if options.ladder.is_dynamic() {
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
                let vbv = (options.codec != Codec::Av1Rav1e).then(|| {
                    let maxrate = r.maxrate_kbps.round().max(1.0) as u32;
                    Vbv {
                        maxrate_kbps: maxrate,
                        bufsize_kbit: maxrate.saturating_mul(2),
                    }
                });
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

    // Encode every chunk of every rung.
    let chunk_key = |ri: usize, ci: usize| {
        format!(
            "chunks/{ri:02}/{ci:05}-{}.chunk",
            digest_of(&rung_settings[ri][ci])
        )
    };
    let have = ctx.list("chunks").map_err(io)?;
    let mut tasks = Vec::new();
    let (mut done, mut frames_done) = (0, 0);
    for (ri, per_chunk) in rung_settings.iter().enumerate() {
        for (ci, s) in per_chunk.iter().enumerate() {
            let key = chunk_key(ri, ci);
            if have.contains(&key) {
                done += 1;
                frames_done += spans[ci].frames;
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
    let total = names.len() * spans.len();
    let encode_stage = format!("encode-{}", digest_of(&rung_settings));
    if ctx
        .queue_stage(&encode_stage, &tasks, None, done)
        .map_err(io)?
    {
        (ctx.events)(Event::Planned {
            total,
            reused: done,
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
    let mut encode_cpu = 0.0;
    for (name, file, record) in &records {
        let r: RenditionRecord = ctx.read_fixed(record).map_err(io)?;
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
    let ladder = decided.map(|(decision, rungs, probing)| {
        LadderReport::new(
            if options.ladder == LadderChoice::Shot {
                "shot"
            } else {
                "per-title"
            },
            &options.rules,
            &d.probe_preset,
            &decision,
            &rungs,
            &probing,
            &rung_reports,
            d.fps,
            encode_cpu,
        )
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
        reused_chunk_encodes: ctx.stage_reused(&encode_stage),
        workers: ctx.workers,
        encode_cpu_seconds: (encode_cpu * 1e4).round() / 1e4,
        rungs: rung_reports,
        ladder,
        package: packaged,
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
            workers::fsutil::write_file_atomic(&path, |f| std::io::Write::write_all(f, &json))
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

/// Puts the rendition `from` (in the local store) at `to`: a hard link, or a copy across
/// file systems.
fn export(from: &Path, to: &Path) -> Result<(), EncodeJobError> {
    let fail = |e: std::io::Error| io(format!("cannot write {}: {e}", to.display()));
    match std::fs::remove_file(to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    if std::fs::hard_link(from, to).is_err() {
        workers::fsutil::write_file_atomic(to, |f| {
            std::io::copy(&mut std::fs::File::open(from)?, f).map(drop)
        })
        .map_err(fail)?;
    }
    Ok(())
}

type Decided = (TitleDecision, Vec<DecidedRung>, Probing);

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
    // Probes at a faster preset than the final one rank settings, but their bits and quality
    // are off: anchors at the final preset, where the rungs fell, correct every curve, and the
    // decision is made again on the corrected curves. When the corrected decision moves a
    // rung to a resolution with no anchors yet, that one is anchored too.
    if d.probe_preset != d.preset {
        let raw = chunks.clone();
        let mut got = vec![BTreeMap::<usize, Vec<StoredProbe>>::new(); n];
        for _ in 0..dynamic::MAX_ROUNDS {
            let next: Vec<(usize, Vec<f32>)> =
                dynamic::anchors(&decision, &d.sizes, options.codec, shot)
                    .into_iter()
                    .filter(|(si, _)| !got.first().is_some_and(|g| g.contains_key(si)))
                    .collect();
            if next.is_empty() {
                break;
            }
            for (si, crfs) in &next {
                probing.anchor_encodes += crfs.len() * n;
                probing.anchor_pixels += crfs.len() as u64 * d.sizes[*si].pixels();
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
                into.extend(more);
            }
            let anchor_points = dynamic::unit_points(&d.sizes, &got, &units);
            let (corrected, corrections) =
                dynamic::calibrate(&raw, &anchor_points, dynamic::max_shift(options.codec));
            decision = ladders::title::decide(&corrected, d.fps, &options.rules)
                .map_err(|e| config(format!("ladder decision: {e}")))?;
            chunks = corrected;
            probing.corrections = corrections;
            probing.anchor_points = anchor_points;
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

/// The points of one round of probes (every chunk at the given settings of each resolution),
/// `[chunk][size]`; queues the round's tasks when some are missing.
fn gather(
    ctx: &Ctx,
    plan: &Plan,
    d: &Derived,
    next: &[(usize, Vec<f32>)],
    round: usize,
    anchor: bool,
) -> Result<Result<Vec<BTreeMap<usize, Vec<StoredProbe>>>, Waiting>, EncodeJobError> {
    let key_of = |size: Size, chunk: usize, crf: f32| {
        if anchor {
            dynamic::anchor_key(size, chunk, crf)
        } else {
            dynamic::probe_key(size, chunk, crf)
        }
        .as_str()
        .to_owned()
    };
    let have = ctx
        .list(if anchor { "anchors" } else { "probes" })
        .map_err(io)?;
    let mut tasks = Vec::new();
    let mut done = 0;
    for (si, crfs) in next {
        let size = d.sizes[*si];
        for ci in 0..plan.chunks.len() {
            let keys: Vec<String> = crfs.iter().map(|&c| key_of(size, ci, c)).collect();
            if keys.iter().all(|k| have.contains(k)) {
                done += 1;
                continue;
            }
            let settings = crfs
                .iter()
                .map(|&crf| EncodeSettings {
                    width: size.width,
                    height: size.height,
                    rate: RateControl::Crf(crf),
                    preset: if anchor {
                        d.preset.clone()
                    } else {
                        d.probe_preset.clone()
                    },
                    ..d.base.clone()
                })
                .collect();
            tasks.push(Work::Probe {
                job: ctx.job.clone(),
                chunk: ci,
                settings,
                keys,
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
    for (si, crfs) in next {
        for (ci, by_size) in got.iter_mut().enumerate() {
            for &crf in crfs {
                let p: StoredProbe = ctx
                    .read_fixed(&key_of(d.sizes[*si], ci, crf))
                    .map_err(|e| io(format!("probe: {e}")))?;
                by_size.entry(*si).or_default().push(p);
            }
        }
    }
    Ok(Ok(got))
}

/// A failure that the store or the network may not repeat.
fn retry(e: impl std::fmt::Display) -> TaskFailure {
    TaskFailure::retry(e.to_string())
}

/// Runs one task (not `Advance`, which the caller runs: see [`advance`]).
pub fn execute(ctx: &Ctx, spec: &JobSpec, work: &Work) -> Result<(), TaskFailure> {
    match work {
        Work::Advance { .. } => Err(TaskFailure::fatal("the driver runs in the caller")),
        Work::Plan { .. } => run_plan(ctx, spec),
        Work::Probe {
            chunk,
            settings,
            keys,
            ..
        } => run_probe(ctx, spec, *chunk, settings, keys),
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
        } => run_assemble(ctx, spec, name, settings, chunks, file, record),
        Work::Package {
            renditions, record, ..
        } => run_package(ctx, spec, renditions, record),
    }
}

/// The task's body as a task, or a fatal failure.
pub fn parse(lease: &Lease) -> Result<Work, TaskFailure> {
    serde_json::from_str(&lease.message.body)
        .map_err(|e| TaskFailure::fatal(format!("unreadable task: {e}")))
}

fn exists(ctx: &Ctx, rel: &str) -> Result<bool, TaskFailure> {
    let key = ctx.key(rel).map_err(TaskFailure::fatal)?;
    ctx.store.exists(&key).map_err(retry)
}

fn put(ctx: &Ctx, rel: &str, body: &[u8]) -> Result<(), TaskFailure> {
    let key = ctx.key(rel).map_err(TaskFailure::fatal)?;
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
    let report = crate::ingest::analyze(&path, &ingest, &mut |_| {})
        .map_err(|e| TaskFailure::fatal(format!("{}: {e}", spec.master.display().display())))?;
    if !report.accepted {
        return Err(TaskFailure::fatal(rejection(
            &spec.master.display(),
            &report,
        )));
    }
    let plan = Plan::from_report(&report).map_err(|e| TaskFailure::fatal(e.to_string()))?;
    derive(&spec.options, &plan).map_err(|e| TaskFailure::fatal(e.to_string()))?;
    ctx.write_json("plan.json", &plan)
        .map_err(TaskFailure::retry)
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
) -> Result<(), TaskFailure> {
    let mut todo = Vec::new();
    for (s, k) in settings.iter().zip(keys) {
        if !exists(ctx, k)? {
            todo.push((s.clone(), k));
        }
    }
    if !todo.is_empty() {
        let plan = plan_of(ctx)?;
        let src = source(ctx, spec, &plan, chunk)?;
        let set: Vec<EncodeSettings> = todo.iter().map(|(s, _)| s.clone()).collect();
        let run = workers::probe::probe_chunk(&src, &set, &vmaf::Model::v061())
            .map_err(|e| TaskFailure::fatal(e.to_string()))?;
        let share = 1.0 / todo.len() as f64;
        for ((s, k), p) in todo.iter().zip(run.points) {
            let RateControl::Crf(crf) = s.rate else {
                return Err(TaskFailure::fatal("a probe without a quality setting"));
            };
            let stored = StoredProbe {
                crf,
                bits: p.bits,
                frame_bits: p.frame_bits,
                vmaf: p.vmaf,
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
    let t0 = workers::probe::thread_cpu_seconds();
    let encoded = encode_chunk(&src, settings).map_err(|e| TaskFailure::fatal(e.to_string()))?;
    let cpu = workers::probe::thread_cpu_seconds() - t0;
    // The CPU record first: a chunk that exists has one.
    put(ctx, &format!("{key}.cpu"), cpu.to_string().as_bytes())?;
    put(ctx, key, &encoded.to_bytes())?;
    (ctx.events)(Event::ChunkDone { frames: src.frames });
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_assemble(
    ctx: &Ctx,
    spec: &JobSpec,
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
    let scratch = scratch_dir(ctx)?;
    let path = scratch.path().join(format!("{}.mp4", safe_name(name)));
    let mut chunk_bits = vec![0u64; spans.len()];
    let mut transient = None;
    let assembled = assemble::assemble(
        &spans,
        plan.frame_rate,
        &mut |ci| {
            let key = ctx.key(&chunks[ci])?;
            let bytes = ctx.store.get(&key).map_err(|e| {
                transient = Some(e.to_string());
                e.to_string()
            })?;
            let chunk = EncodedChunk::from_bytes(&bytes).map_err(|e| e.to_string())?;
            chunk_bits[ci] = chunk.packets.iter().map(|p| p.data.len() as u64 * 8).sum();
            Ok(chunk)
        },
        &path,
    );
    let assembled = match (assembled, transient) {
        (Ok(a), _) => a,
        (Err(e), Some(_)) => return Err(TaskFailure::retry(format!("assembling {name}: {e}"))),
        (Err(e), None) => return Err(TaskFailure::fatal(format!("assembling {name}: {e}"))),
    };
    let mut encode_cpu = 0.0;
    for k in chunks {
        if let Ok(Some(cpu)) = ctx
            .key(&format!("{k}.cpu"))
            .map(|key| ctx.store.get(&key).ok())
        {
            encode_cpu += String::from_utf8_lossy(&cpu).parse::<f64>().unwrap_or(0.0);
        }
    }
    let measured = if spec.options.measure {
        let reference = master(ctx, spec)?;
        let m = workers::measure::measure(
            &reference,
            &path,
            &workers::measure::MeasureOptions {
                extras: false,
                per_frame: true,
                ..Default::default()
            },
            &mut |n| (ctx.events)(Event::Measuring(name.to_owned(), n)),
        )
        .map_err(|e| TaskFailure::fatal(format!("measuring {name}: {e}")))?;
        Some(m)
    } else {
        None
    };
    let fps = plan.frame_rate.to_f64().unwrap_or(25.0);
    let report = RungReport::new(
        name,
        &settings[0],
        assembled,
        measured.as_ref(),
        &spans,
        &chunk_bits,
        settings,
        fps,
    );
    let key = ctx.key(file).map_err(TaskFailure::fatal)?;
    ctx.store.put_file(&key, &path).map_err(retry)?;
    let record_body = serde_json::to_vec_pretty(&RenditionRecord {
        report,
        encode_cpu_seconds: encode_cpu,
    })
    .expect("serialises");
    put(ctx, record, &record_body)
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
    let mut files = Vec::new();
    for (name, key) in renditions {
        let k = ctx.key(key).map_err(TaskFailure::fatal)?;
        let path = match ctx.store.local_path(&k) {
            Some(p) => p,
            None => {
                let p = scratch.path().join(format!("{}.mp4", safe_name(name)));
                ctx.store.get_to_file(&k, &p).map_err(retry)?;
                p
            }
        };
        files.push((name.clone(), path));
    }
    let resolve = |list: &[(Input, String)]| -> Result<Vec<(PathBuf, String)>, TaskFailure> {
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
            package::remove_manifests(out).map_err(TaskFailure::fatal)?;
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
                    done.err().unwrap_or_default()
                )));
            }
            done
        }
    }
    .map_err(|e| TaskFailure::fatal(format!("packaging: {e}")))?;
    ctx.write_json(record, &report).map_err(TaskFailure::retry)
}
