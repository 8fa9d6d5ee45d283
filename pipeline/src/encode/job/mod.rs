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

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use ladders::title::{LadderRules, Size};
use media::Rational;
use packager::assemble::ChunkSpan;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use store::{Key, Store, StoreError};
use workers::encode::{Codec, EncodeSettings};
use workers::queue::{Message, Queue};

use super::report::{EncodeReport, RungReport};
use super::{EncodeJobError, EncodeOptions, Event, LadderChoice, ladder};
use crate::ingest::IngestReport;

mod driver;
mod tasks;

pub use driver::advance;
pub use tasks::{execute, parse, rejection};

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
    /// Extra audio files with their languages and roles.
    pub audio: Vec<(Input, super::package::TrackLabel)>,
    /// Subtitle files with their languages and roles.
    pub subtitles: Vec<(Input, super::package::TrackLabel)>,
    /// What to make (the package options' file lists are empty: see `audio`, `subtitles`).
    pub options: EncodeOptions,
    /// Where the title goes.
    pub output: Output,
}

impl JobSpec {
    /// Checks a spec that a fleet worker read from the store, which is no authority over the
    /// worker's own disk: every input must be an object under the job's `input/`, the title
    /// must go to the store, and no option may name a file of the machine.
    pub fn check_fleet(&self) -> Result<(), SpecError> {
        let local = |what: &'static str, p: &std::path::Path| {
            Err(SpecError::Local {
                what,
                path: p.to_owned(),
            })
        };
        let inputs = std::iter::once(("the master", &self.master))
            .chain(self.audio.iter().map(|(i, _)| ("an audio input", i)))
            .chain(self.subtitles.iter().map(|(i, _)| ("a subtitle input", i)));
        for (what, input) in inputs {
            match input {
                Input::Local(p) => return local(what, p),
                Input::Stored { key, .. } if !key.starts_with("input/") => {
                    return Err(SpecError::OutsideInput {
                        what,
                        key: key.clone(),
                    });
                }
                Input::Stored { .. } => {}
            }
        }
        if let Output::Dir(p) = &self.output {
            return local("the output", p);
        }
        if let Some(p) = &self.options.package {
            if let Some((path, _)) = p.audio.first() {
                return local("the package options' audio", path);
            }
            if let Some((path, _)) = p.subtitles.first() {
                return local("the package options' subtitles", path);
            }
        }
        Ok(())
    }
}

/// What a fleet worker refuses in a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A file of the worker's machine.
    #[error(
        "{what} names a file of the worker's machine ({}); a fleet job's inputs are objects in the store",
        path.display()
    )]
    Local {
        /// What names it.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// An object outside the job's inputs.
    #[error("{what} is the object {key:?}, outside the job's input/")]
    OutsideInput {
        /// What names it.
        what: &'static str,
        /// The key.
        key: String,
    },
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
    /// What validating the master and finding its shots cost.
    #[serde(default)]
    pub spent: Spent,
}

/// Wall and CPU time of a piece of work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spent {
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// CPU seconds.
    pub cpu_seconds: f64,
}

impl Plan {
    /// A plan with no chunks of an 8-bit 25 fps master of this size: what options are checked
    /// against before a master is read.
    pub fn of_size(width: u32, height: u32) -> Self {
        Self {
            stream: 0,
            width,
            height,
            aspect: f64::from(width) / f64::from(height),
            bit_depth: Some(8),
            frame_rate: media::Rational { num: 25, den: 1 },
            chunks: Vec::new(),
            origin_seconds: 0.0,
            audio: Vec::new(),
            audio_duration_seconds: None,
            spent: Spent::default(),
        }
    }

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
            spent: Spent::default(),
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

/// The settings a job's options and plan fix for one codec, checked.
#[derive(Clone, Debug)]
pub struct Derived {
    /// The codec.
    pub codec: Codec,
    /// The ladder rules of this codec (the title's, with its `[codec.NAME]` ones applied).
    pub rules: LadderRules,
    /// What the codec's rendition names end with: nothing for a single-codec title, else
    /// `-{codec}`.
    pub suffix: String,
    /// Where its probes and anchors are kept under `probes/` and `anchors/`: nothing for a
    /// single-codec title, else `{codec}/`.
    pub space: String,
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
    /// Apple's rungs encoded beside a dynamic ladder to compare with (`compare_fixed`).
    pub compare: Vec<(String, EncodeSettings)>,
    /// Candidate sizes of dynamic ladders.
    pub sizes: Vec<Size>,
}

impl Derived {
    /// What identifies one codec's work: the fixed settings, or what decides a dynamic ladder.
    fn identity_with(&self, options: &EncodeOptions, rules: &LadderRules) -> serde_json::Value {
        if options.ladder.is_dynamic() {
            serde_json::json!({
                "ladder": if options.ladder == LadderChoice::Shot { "shot" } else { "per-title" },
                "base": self.base,
                "probe_preset": self.probe_preset,
                "probe_sampling": options.probe_sampling,
                "rules": rules,
                "sizes": self.sizes,
            })
        } else {
            let settings: Vec<&EncodeSettings> = self.fixed.iter().map(|(_, s)| s).collect();
            serde_json::json!({ "settings": settings })
        }
    }
}

/// What identifies the job's work: one codec's (as before multi-codec titles), or every
/// codec's with its own rules.
pub fn identity_of(ds: &[Derived], options: &EncodeOptions) -> serde_json::Value {
    match ds {
        [d] => d.identity_with(options, &options.rules),
        _ => serde_json::json!({
            "codecs": ds.iter().map(|d| d.identity_with(options, &d.rules)).collect::<Vec<_>>()
        }),
    }
}

/// Checks the options against the plan and derives every codec's settings, in the order of
/// the codecs.
pub fn derive(options: &EncodeOptions, plan: &Plan) -> Result<Vec<Derived>, EncodeJobError> {
    let several = options.codecs.several();
    check_codec_rules(options)?;
    options
        .codecs
        .all()
        .iter()
        .map(|&codec| {
            derive_codec(options, plan, codec).map_err(|e| match e {
                EncodeJobError::Config(m) if several => {
                    EncodeJobError::Config(format!("codec {}: {m}", codec.name()))
                }
                e => e,
            })
        })
        .collect()
}

/// The codecs the rules name are codecs, and a rules file for one codec names the title's.
fn check_codec_rules(options: &EncodeOptions) -> Result<(), EncodeJobError> {
    let known: Vec<&str> = Codec::ALL.iter().map(|c| c.name()).collect();
    match &options.rules.codec {
        None => Ok(()),
        Some(ladders::title::CodecRules::One(c)) if options.codecs.several() => {
            Err(EncodeJobError::Config(format!(
                "ladder rules: codec = {c:?} names one codec, but the title has {}; give each \
                 codec's rules as [codec.NAME]",
                options.codecs.names()
            )))
        }
        Some(ladders::title::CodecRules::One(c)) => match Codec::from_name(c) {
            Some(codec) if codec == options.codecs.first() => Ok(()),
            _ => Err(EncodeJobError::Config(format!(
                "the rules name codec {c:?} but the encode uses {}",
                options.codecs.first().name()
            ))),
        },
        Some(ladders::title::CodecRules::Each(each)) => {
            match each.keys().find(|n| Codec::from_name(n).is_none()) {
                Some(name) => Err(EncodeJobError::Config(format!(
                    "ladder rules: [codec.{name}]: unknown codec (expected {})",
                    known.join(", ")
                ))),
                None => Ok(()),
            }
        }
    }
}

/// One codec's settings.
fn derive_codec(
    options: &EncodeOptions,
    plan: &Plan,
    codec: Codec,
) -> Result<Derived, EncodeJobError> {
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
    let several = options.codecs.several();
    // Every codec has its keyframes on the same frames: the segments of all line up.
    let keyint = ((options.segment_seconds * fps).round() as u32).max(1);
    let preset = options.preset_of(codec);
    let probe_preset = options.probe_preset_of(codec);
    let rules = options.rules.for_codec(codec.name());
    let select = options.rules.select_of(codec.name());
    let depth = if codec == Codec::H264 {
        8
    } else {
        plan.bit_depth.map_or(8, |d| if d > 8 { 10 } else { 8 })
    };
    let base = EncodeSettings {
        codec,
        width: (plan.width & !1).max(2),
        height: (plan.height & !1).max(2),
        rate: ladder::default_quality(codec),
        preset: preset.clone(),
        vbv: None,
        keyint,
        bit_depth: depth,
        zones: Vec::new(),
    };
    base.validate()
        .map_err(|e| EncodeJobError::Config(e.to_string()))?;
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
    let sizes =
        ladders::title::candidate_sizes(plan.width, plan.height, plan.aspect, rules.size_step);
    if !sizes.iter().any(|s| rules.allows_height(s.short_side())) {
        return Err(EncodeJobError::Config(format!(
            "the ladder rules' rung heights ({}) leave no resolution of this {}x{} master",
            heights(&rules),
            plan.width,
            plan.height
        )));
    }
    let suffix = if several {
        format!("-{}", codec.name())
    } else {
        String::new()
    };
    let fixed = match &options.ladder {
        LadderChoice::Apple => apple_settings(codec, &rules, select, plan, &base, &suffix)?,
        LadderChoice::Custom(r) => rung_settings(r, &base, &suffix)?,
        LadderChoice::PerTitle | LadderChoice::Shot => Vec::new(),
    };
    let compare = if options.compare_fixed && options.ladder.is_dynamic() {
        apple_settings(codec, &rules, select, plan, &base, &suffix)?
            .into_iter()
            .map(|(name, s)| (format!("{}{name}", super::report::FIXED_PREFIX), s))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Derived {
        codec,
        space: if several {
            format!("{}/", codec.name())
        } else {
            String::new()
        },
        suffix,
        rules,
        fps,
        sizes,
        base,
        preset,
        probe_preset,
        fixed,
        compare,
    })
}

/// The rules' rung heights, for messages.
fn heights(rules: &LadderRules) -> String {
    match (rules.bottom_height, rules.top_height) {
        (Some(b), Some(t)) => format!(">= {b}, <= {t}"),
        (Some(b), None) => format!(">= {b}"),
        (None, Some(t)) => format!("<= {t}"),
        (None, None) => "any".into(),
    }
}

/// The settings of Apple's ladder for the master, each checked, with the rungs the rules'
/// heights allow.
fn apple_settings(
    codec: Codec,
    rules: &LadderRules,
    select: Option<ladders::title::RungSelect>,
    plan: &Plan,
    base: &EncodeSettings,
    suffix: &str,
) -> Result<Vec<(String, EncodeSettings)>, EncodeJobError> {
    let rungs: Vec<ladder::Rung> = ladder::apple(codec, plan.width, plan.height, plan.aspect)
        .into_iter()
        .filter(|r| select.is_none_or(|s| s.allows(r.width.min(r.height))))
        .collect();
    if rungs.is_empty() {
        return Err(EncodeJobError::Config(format!(
            "the ladder rules' rung heights ({}) leave no rung of Apple's ladder",
            heights(rules)
        )));
    }
    rung_settings(&rungs, base, suffix)
}

/// The settings of fixed rungs, each checked.
fn rung_settings(
    rungs: &[ladder::Rung],
    base: &EncodeSettings,
    suffix: &str,
) -> Result<Vec<(String, EncodeSettings)>, EncodeJobError> {
    rungs
        .iter()
        .map(|r| {
            let s = EncodeSettings {
                width: r.width,
                height: r.height,
                rate: r.rate,
                vbv: r.vbv,
                ..base.clone()
            };
            s.validate()
                .map_err(|e| EncodeJobError::Config(format!("rung {}: {e}", r.name)))?;
            Ok((format!("{}{suffix}", r.name), s))
        })
        .collect()
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
        /// Where to keep each encoding as a rung's chunk (anchors made at a rung's final
        /// settings); empty, or one per point.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        keep: Vec<Option<String>>,
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
    /// Join a rung's chunks.
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
    /// Measure the VMAF of every rendition against the master, in one pass.
    Measure {
        /// The job.
        job: String,
        /// Each rendition's name and key.
        renditions: Vec<(String, String)>,
        /// Where the measurement record goes.
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
            | Self::Measure { job, .. }
            | Self::Package { job, .. } => job,
        }
    }

    /// The stage the task belongs to, for logs.
    pub fn stage(&self) -> &'static str {
        match self {
            Self::Advance { .. } => "advance",
            Self::Plan { .. } => "plan",
            Self::Probe { keep, .. } if !keep.is_empty() => "anchor",
            Self::Probe { .. } => "probe",
            Self::Encode { .. } => "encode",
            Self::Assemble { .. } => "assemble",
            Self::Measure { .. } => "measure",
            Self::Package { .. } => "package",
        }
    }

    /// The chunk a task works on, when it works on one.
    pub fn chunk(&self) -> Option<usize> {
        match self {
            Self::Probe { chunk, .. } | Self::Encode { chunk, .. } => Some(*chunk),
            _ => None,
        }
    }

    /// The queue message; its id is fixed by what the task computes, and its group is the
    /// job.
    pub fn message(&self) -> Message {
        let id = match self {
            Self::Advance { job, generation } => format!("{job}-advance-{generation}"),
            Self::Plan { job } => format!("{job}-plan"),
            Self::Probe { job, keys, .. } => format!("{job}-probe-{}", digest_of(keys)),
            Self::Encode { job, key, .. } => format!("{job}-encode-{}", digest_of(key)),
            Self::Assemble {
                job,
                chunks,
                record,
                ..
            } => format!("{job}-assemble-{}", digest_of(&(chunks, record))),
            Self::Measure { job, record, .. } => format!("{job}-measure-{}", digest_of(record)),
            Self::Package { job, record, .. } => format!("{job}-package-{}", digest_of(record)),
        };
        Message {
            id,
            body: serde_json::to_string(self).expect("tasks serialise"),
            group: self.job().to_owned(),
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

/// What the memo holds at most; past it, it starts again empty (a long-lived worker serves job
/// after job).
const MEMO_BYTES: usize = 256 << 20;

impl Memo {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn insert(&self, key: &str, bytes: Vec<u8>) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if m.values().map(Vec::len).sum::<usize>() + bytes.len() > MEMO_BYTES {
            m.clear();
        }
        m.insert(key.to_owned(), bytes);
    }
}

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
    /// How many times the job was retried: task ids carry it, so that a retried job's tasks
    /// are new to the queue, and only this attempt's dead letters count.
    pub attempt: u32,
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
    /// CPU seconds of joining the chunks.
    #[serde(default)]
    assemble_cpu_seconds: f64,
    /// CPU seconds of the VMAF measurement, in records of versions that measured each rung as
    /// it was assembled (their reports hold its VMAF).
    #[serde(default, skip_serializing)]
    measure_cpu_seconds: f64,
}

/// What the measure task found: every rendition's VMAF frame by frame, in the task's order.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct MeasureRecord {
    /// Per rendition, every frame's VMAF.
    per_frame_vmaf: Vec<Vec<f64>>,
    /// CPU seconds of the whole pass.
    cpu_seconds: f64,
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
    /// When the job entered this stage, seconds since 1970.
    #[serde(default)]
    pub since: u64,
}

impl Status {
    /// Seconds left in the stage at its pace so far, once some of its tasks are done.
    pub fn eta_seconds(&self) -> Option<u64> {
        let w = &self.waiting;
        (w.done > 0 && w.total >= w.done && self.updated > self.since).then(|| {
            let per_task = (self.updated - self.since) as f64 / w.done as f64;
            (per_task * (w.total - w.done) as f64).round() as u64
        })
    }
}

impl Ctx<'_> {
    /// The key of `rel` under the job's prefix.
    pub fn key(&self, rel: &str) -> Result<Key, EncodeJobError> {
        Key::new(format!("{}{rel}", self.root)).map_err(|error| EncodeJobError::Key {
            rel: rel.to_owned(),
            error,
        })
    }

    /// Reads a JSON object; `None` when there is none.
    pub fn read_json<T: DeserializeOwned>(&self, rel: &str) -> Result<Option<T>, EncodeJobError> {
        match self.store.get(&self.key(rel)?) {
            Ok(bytes) => parse_object(rel, &bytes).map(Some),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(error) => Err(store_error(rel, error)),
        }
    }

    /// Reads an object that never changes once written, from memory when read before.
    fn read_fixed<T: DeserializeOwned>(&self, rel: &str) -> Result<T, EncodeJobError> {
        let key = self.key(rel)?;
        let bytes = match self.memo.get(key.as_str()) {
            Some(b) => b,
            None => {
                let b = self.store.get(&key).map_err(|e| store_error(rel, e))?;
                self.memo.insert(key.as_str(), b.clone());
                b
            }
        };
        parse_object(rel, &bytes)
    }

    /// Writes a JSON object.
    pub fn write_json<T: Serialize>(&self, rel: &str, value: &T) -> Result<(), EncodeJobError> {
        let body = serde_json::to_vec_pretty(value).expect("serialises");
        self.store
            .put(&self.key(rel)?, &body)
            .map_err(|e| store_error(rel, e))
    }

    /// The keys under `rel/`, relative to the job's prefix.
    fn list(&self, rel: &str) -> Result<BTreeSet<String>, EncodeJobError> {
        let keys = self
            .store
            .list(&self.key(rel)?)
            .map_err(|e| store_error(rel, e))?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.as_str().strip_prefix(&self.root).map(str::to_owned))
            .collect())
    }

    /// The input as a file of this machine, fetched into the cache the first time.
    pub fn local_file(&self, input: &Input) -> Result<PathBuf, EncodeJobError> {
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
        // Checked once per process: the file matches the record of its fetch.
        let seen = format!("verified:{}", path.display());
        if self.memo.get(&seen).is_some() && path.is_file() {
            return Ok(path);
        }
        crate::cache::ensure_private(&dir).map_err(EncodeJobError::Cache)?;
        crate::cache::fetch_verified(&path, |p| self.store.get_to_file(&key, p)).map_err(|e| {
            match e {
                crate::cache::FetchError::Fetch(error) => EncodeJobError::Fetch {
                    name: name.clone(),
                    error,
                },
                crate::cache::FetchError::Cache(e) => EncodeJobError::Cache(e),
            }
        })?;
        self.memo.insert(&seen, Vec::new());
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
    ) -> Result<bool, EncodeJobError> {
        let marker = format!("stages/{stage}.json");
        let exists = self.store.exists(&self.key(&marker)?);
        if exists.map_err(|e| store_error(&marker, e))? {
            return Ok(false);
        }
        for t in tasks {
            let mut m = t.message();
            m.id = self.task_id(&m.id);
            match delay {
                Some(d) => self.queue.push_after(m, d),
                None => self.queue.push(m),
            }
            .map_err(EncodeJobError::Queue)?;
        }
        let queued_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.write_json(
            &marker,
            &serde_json::json!({ "tasks": tasks.len(), "done": done, "queued_ms": queued_ms }),
        )?;
        Ok(true)
    }

    /// A task id for this attempt.
    pub fn task_id(&self, id: &str) -> String {
        if self.attempt == 0 {
            id.to_owned()
        } else {
            format!("{id}-a{}", self.attempt)
        }
    }

    /// This attempt's dead tasks of the job, matched by the job they carry (never by a prefix
    /// of their ids).
    pub fn dead_letters(&self) -> Result<Vec<workers::queue::DeadLetter>, EncodeJobError> {
        Ok(self
            .queue
            .dead_letters_of(&self.job)
            .map_err(EncodeJobError::Queue)?
            .into_iter()
            .filter(|d| attempt_of(&d.message.id) == self.attempt)
            .collect())
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

/// The attempt a task id belongs to (`…-aN`, or 0).
pub fn attempt_of(id: &str) -> u32 {
    id.rsplit_once("-a")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
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

/// A store error at `rel` (relative to the job's prefix).
fn store_error(rel: &str, error: StoreError) -> EncodeJobError {
    EncodeJobError::Store {
        rel: rel.to_owned(),
        error,
    }
}

/// Parses the JSON object at `rel`.
fn parse_object<T: DeserializeOwned>(rel: &str, bytes: &[u8]) -> Result<T, EncodeJobError> {
    serde_json::from_slice(bytes).map_err(|error| EncodeJobError::Object {
        rel: rel.to_owned(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_are_fixed_by_what_the_task_computes() {
        let settings = EncodeSettings {
            codec: Codec::H264,
            width: 640,
            height: 360,
            rate: workers::encode::RateControl::Crf(23.0),
            preset: "medium".into(),
            vbv: None,
            keyint: 100,
            bit_depth: 8,
            zones: Vec::new(),
        };
        let encode = |key: &str| Work::Encode {
            job: "j".into(),
            chunk: 3,
            settings: settings.clone(),
            key: key.into(),
        };
        let a = encode("chunks/00/00003-x.chunk").message();
        assert_eq!(a, encode("chunks/00/00003-x.chunk").message());
        assert_ne!(a.id, encode("chunks/00/00003-y.chunk").message().id);
        assert!(a.id.starts_with("j-encode-"), "{}", a.id);
        assert_eq!(a.group, "j");
        a.check().unwrap();
        let back: Work = serde_json::from_str(&a.body).unwrap();
        assert_eq!(back, encode("chunks/00/00003-x.chunk"));
        let advance = Work::Advance {
            job: "j".into(),
            generation: 7,
        };
        assert_eq!(advance.message().id, "j-advance-7");
        assert_eq!(Work::Plan { job: "j".into() }.message().id, "j-plan");
    }

    #[test]
    fn a_message_whose_id_or_group_is_not_its_bodys_is_refused() {
        let lease = |m: Message| workers::queue::Lease {
            message: m,
            receipt: "r".into(),
            receives: 1,
        };
        let victim = Work::Advance {
            job: "victim".into(),
            generation: 1,
        };
        let other = Work::Advance {
            job: "other".into(),
            generation: 2,
        };
        assert_eq!(parse(&lease(victim.message())).unwrap(), victim);
        let mut retried = victim.message();
        retried.id.push_str("-a3");
        assert_eq!(parse(&lease(retried)).unwrap(), victim);
        // The forgery of the issue: the victim's driver id on another body.
        let forged = Message {
            id: "victim-advance-1".into(),
            group: "victim".into(),
            ..other.message()
        };
        let f = parse(&lease(forged)).unwrap_err();
        assert!(f.refused && f.message.contains("does not match"), "{f:?}");
        // The right id and body in another job's group.
        let moved = Message {
            group: "other".into(),
            ..victim.message()
        };
        assert!(parse(&lease(moved)).unwrap_err().refused);
        let junk = Message::new("victim-plan", "{\"kind\":\"nope\"}");
        assert!(parse(&lease(junk)).unwrap_err().refused);
    }

    proptest::proptest! {
        /// What the fuzz target `tasks` checks, on stable in CI: any message or spec decodes to
        /// a value or an error, and an accepted task is the one its id names.
        #[test]
        fn task_and_spec_decoders_survive_any_input(
            id in "[a-z0-9._-]{1,30}",
            group in "[a-z0-9-]{0,8}",
            body in proptest::prelude::any::<String>(),
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let lease = workers::queue::Lease {
                message: Message { id: id.clone(), body: body.clone(), group: group.clone() },
                receipt: "r".into(),
                receives: 1,
            };
            if let Ok(work) = parse(&lease) {
                proptest::prop_assert!(id.starts_with(&work.message().id));
            }
            if let Ok(spec) = serde_json::from_slice::<JobSpec>(&bytes) {
                let _ = spec.check_fleet();
            }
            let _ = serde_json::from_slice::<Message>(&bytes).map(|m| m.check());
        }
    }

    #[test]
    fn one_codec_serialises_as_before_and_several_as_a_list() {
        // A job of an earlier version (one codec, a preset) reads and writes back unchanged.
        let old = r#"{"codec":"hevc","ladder":"per-title","preset":"slow","probe_preset":null}"#;
        let o: EncodeOptions = serde_json::from_str(old).unwrap();
        assert_eq!(o.codecs.all(), [Codec::Hevc]);
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["codec"], "hevc");
        assert!(v.get("codec_presets").is_none() && v.get("codec_probe_presets").is_none());
        let back: EncodeOptions = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), v);
        // Several codecs are a list, which a worker knowing one codec refuses.
        let multi: EncodeOptions =
            serde_json::from_str(r#"{"codec":["h264","av1"],"codec_presets":{"av1":"6"}}"#)
                .unwrap();
        assert_eq!(multi.codecs.all(), [Codec::H264, Codec::Av1]);
        assert_eq!(multi.preset_of(Codec::Av1), "6");
        assert_eq!(multi.preset_of(Codec::H264), "medium");
        let v = serde_json::to_value(&multi).unwrap();
        assert_eq!(v["codec"], serde_json::json!(["h264", "av1"]));
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct OldOptions {
            codec: Codec,
        }
        assert!(serde_json::from_value::<OldOptions>(v).is_err());
        for (bad, says) in [
            (r#"{"codec":[]}"#, "no codec"),
            (r#"{"codec":["h264","h264"]}"#, "given twice"),
            (r#"{"codec":["av1","av1-rav1e"]}"#, "the same format"),
        ] {
            let e = serde_json::from_str::<EncodeOptions>(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_main_track_label_is_its_language_as_before_roles() {
        use super::super::package::TrackLabel;
        use packager::presentation::Role;
        let main: TrackLabel = "en".into();
        assert_eq!(
            serde_json::to_value(&main).unwrap(),
            serde_json::json!("en")
        );
        let old: Vec<(std::path::PathBuf, TrackLabel)> =
            serde_json::from_str(r#"[["a.srt","fr"]]"#).unwrap();
        assert_eq!(old[0].1, TrackLabel::main("fr"));
        let forced = TrackLabel {
            language: "en".into(),
            role: Role::Forced,
        };
        let v = serde_json::to_value(&forced).unwrap();
        assert_eq!(v, serde_json::json!({"language": "en", "role": "forced"}));
        assert_eq!(serde_json::from_value::<TrackLabel>(v).unwrap(), forced);
        assert!(serde_json::from_str::<TrackLabel>(r#"{"language":"en","role":"loud"}"#).is_err());
    }

    #[test]
    fn each_codec_has_its_own_names_keys_and_markers() {
        let plan = Plan::of_size(1280, 720);
        let one = EncodeOptions::default();
        let ds = derive(&one, &plan).unwrap();
        assert_eq!(
            (ds.len(), ds[0].suffix.as_str(), ds[0].space.as_str()),
            (1, "", "")
        );
        assert!(ds[0].fixed.iter().all(|(n, _)| !n.contains("h264")));
        // The identity of a single-codec job keeps its earlier form.
        let id = identity_of(&ds, &one);
        assert!(
            id.get("settings").is_some() && id.get("codecs").is_none(),
            "{id}"
        );

        let rules =
            ladders::title::LadderRules::from_toml("[codec.av1]\nrungs = \">= 540\"\n").unwrap();
        let multi = EncodeOptions {
            codecs: super::super::Codecs::new(vec![Codec::H264, Codec::Av1]).unwrap(),
            rules,
            ..Default::default()
        };
        let ds = derive(&multi, &plan).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[0].base.keyint, ds[1].base.keyint, "keyframes line up");
        assert_eq!(
            (ds[1].suffix.as_str(), ds[1].space.as_str()),
            ("-av1", "av1/")
        );
        let mut names: Vec<&str> = ds
            .iter()
            .flat_map(|d| d.fixed.iter().map(|(n, _)| n.as_str()))
            .collect();
        assert!(ds[0].fixed.iter().all(|(n, _)| n.ends_with("-h264")));
        assert!(
            ds[1]
                .fixed
                .iter()
                .all(|(n, s)| n.ends_with("-av1") && s.height >= 540),
            "{:?}",
            ds[1].fixed
        );
        assert!(ds[0].fixed.len() > ds[1].fixed.len());
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "names are unique");
        let size = ds[0].sizes[0];
        let keys: Vec<String> = ds
            .iter()
            .map(|d| {
                super::super::dynamic::probe_key(&d.space, size, 0, 30.0)
                    .as_str()
                    .to_owned()
            })
            .collect();
        assert_ne!(keys[0], keys[1]);
        assert_eq!(
            driver::stage_of_marker("probes-av1-2-abc"),
            driver::stage_of_marker("probes-2-abc")
        );
        let id = identity_of(&ds, &multi);
        assert_eq!(id["codecs"].as_array().unwrap().len(), 2, "{id}");
        // A selector that keeps no size of the master is refused, naming the codec.
        let tall = EncodeOptions {
            rules: ladders::title::LadderRules::from_toml("[codec.av1]\nrungs = \">= 1080\"\n")
                .unwrap(),
            ladder: LadderChoice::PerTitle,
            ..multi.clone()
        };
        let e = derive(&tall, &plan).unwrap_err().to_string();
        assert!(
            e.starts_with("codec av1: ") && e.contains("leave no resolution of this 1280x720"),
            "{e}"
        );
    }

    #[test]
    fn a_stage_eta_follows_its_pace() {
        let status = |done, total, since, updated| Status {
            waiting: Waiting {
                stage: "encoding chunks".into(),
                done,
                total,
            },
            updated,
            since,
        };
        assert_eq!(status(10, 40, 1000, 1100).eta_seconds(), Some(300));
        assert_eq!(status(0, 40, 1000, 1100).eta_seconds(), None, "no pace yet");
        assert_eq!(status(40, 40, 1000, 1100).eta_seconds(), Some(0));
    }

    #[test]
    fn file_names_are_made_safe() {
        assert_eq!(safe_name("My Film (1).mov"), "My_Film__1_.mov");
        assert_eq!(safe_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_name("..."), "file");
        assert_eq!(safe_name(""), "file");
    }
}
