//! What the user typed: the clap definitions ("low-level arguments"). [`crate::config`] turns
//! them into validated library options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Turn a source master into a streaming-ready title.
#[derive(Debug, Parser)]
#[command(
    name = "rungs",
    version,
    after_help = crate::exit::help_text(),
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// More log output on stderr (-v info, -vv debug, -vvv trace with FFmpeg's messages).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr: no summary, no progress bar.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// Log formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Describe every stream of a file: JSON on stdout, a summary on stderr.
    Probe(ProbeArgs),
    /// Decode the whole master once and report every problem (exit 3 if rejected).
    Validate(ValidateArgs),
    /// Find the scene cuts and plan the encode chunks (exit 3 if the master is rejected).
    Shots(ShotsArgs),
    /// VMAF (with PSNR and SSIM) of a distorted video against its reference.
    Vmaf(VmafArgs),
    /// Encode the master into a ladder of renditions, in parallel chunks (resumable).
    Encode(Box<EncodeArgs>),
    /// Start an encode job on a fleet: upload the master to the S3 store and queue the job.
    ///
    /// Prints the job's name. Workers (`rungs worker`) on any machine run it; `rungs status
    /// JOB` follows it. Takes every option of `rungs encode`; with --wait it follows the job
    /// to the end, and with -o also downloads the title.
    Submit(Box<SubmitArgs>),
    /// Serve the tasks of a fleet's jobs until SIGTERM or Ctrl-C.
    ///
    /// The first signal lets the task in hand finish and takes no new one; a second one quits
    /// at once (the task's lease lapses and another worker takes it).
    Worker(WorkerArgs),
    /// Show a fleet job's progress (JSON on stdout, a line on stderr).
    Status(StatusArgs),
    /// Run a failed fleet job again: what failed and what follows runs, finished work is kept.
    Retry(RetryArgs),
    /// Publish a packaged title to S3 as a CDN origin.
    ///
    /// Every file goes up with its Content-Type and Cache-Control (immutable segments, short
    /// for manifests), checksummed; unchanged objects are skipped, so an interrupted publish
    /// resumes; manifests go last.
    Publish(PublishArgs),
    /// One self-contained HTML page of a title: the ladder table, the RD scatter with the
    /// hull and the rungs, per-chunk settings and bit rates, per-frame VMAF, shot thumbnails.
    Report(ReportArgs),
    /// The content-ops dashboard: jobs, title pages, fill progress, a JSON API and /metrics.
    ///
    /// Binds to loopback by default; another address needs --token (every request then carries
    /// `Authorization: Bearer TOKEN`).
    Serve(ServeArgs),
    /// Fill Open Connect-style edge caches: plan, run, locate.
    #[command(subcommand)]
    Fill(FillCommand),
    /// Compare ladders (BD-rate) and gate them in CI.
    #[command(subcommand)]
    Ladder(LadderCommand),
}

/// `rungs ladder ...`.
#[derive(Debug, Subcommand)]
pub enum LadderCommand {
    /// BD-rate and BD-VMAF of ladder B against ladder A (two encode reports).
    Compare(CompareArgs),
    /// Check an encode report against ladder rules: exit 1 on a violation.
    Check(CheckArgs),
}

/// `rungs ladder compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The anchor's report.json.
    pub a: PathBuf,
    /// The tested report.json.
    pub b: PathBuf,
    /// The codec to compare, for reports of multi-codec titles (needed when they share
    /// several).
    #[arg(long)]
    pub codec: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `rungs ladder check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The report.json to check.
    pub report: PathBuf,
    /// A TOML file of rules ([rungs], [[rung]], [ladder]); without it, rungs must rise in bit
    /// rate and quality, and a baseline may not be more than 1% worse in BD-rate.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// An earlier report to compare against (the max_bd_rate rule).
    #[arg(long, value_name = "OLD.json")]
    pub baseline: Option<PathBuf>,
    /// Also write the outcomes as JUnit XML (one test case per rule and rung).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// Where JSON goes.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Write the JSON to this file instead of stdout (written whole, or not at all).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// One-line JSON instead of pretty-printed.
    #[arg(long)]
    pub compact: bool,
}

/// `rungs probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The media file.
    pub input: PathBuf,
    /// Do not decode the first video frame (HDR metadata carried in the bitstream is then
    /// not seen).
    #[arg(long)]
    pub no_decode: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Settings shared by `validate` and `shots`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub settings: IngestSettings,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How the master is validated and cut into chunks.
#[derive(Debug, Args)]
pub struct IngestSettings {
    /// A TOML file with [validate], [chunks] and [shot_detector] sections.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Shortest chunk in seconds (default 1).
    #[arg(long, value_name = "SECONDS")]
    pub min_chunk: Option<f64>,
    /// Longest chunk in seconds (default 10).
    #[arg(long, value_name = "SECONDS")]
    pub max_chunk: Option<f64>,
    /// Largest accepted audio/video duration difference in seconds (default 1).
    #[arg(long, value_name = "SECONDS")]
    pub av_tolerance: Option<f64>,
    /// Decoder threads for validation (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// `rungs encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// The master.
    pub input: PathBuf,
    /// The output folder (default: out/MASTER-NAME). Renditions, report.json and the work
    /// folder .rungs/ go there; nothing else in it is touched.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// The ladder: `shot` (rungs on the title's convex hull, a quality setting per chunk at
    /// one slope per rung), `per-title` (the same rungs, one setting each) or `fixed` (Apple's
    /// HLS authoring ladder for the codec, fitted to the master). Default: shot, or fixed with
    /// --rungs.
    #[arg(long, value_parser = ["shot", "per-title", "fixed"])]
    pub ladder: Option<String>,
    /// A TOML file of [[rung]] tables (name, width, height, crf or qp, maxrate_kbps,
    /// bufsize_kbit) to use instead of Apple's ladder (a fixed ladder).
    #[arg(long, value_name = "FILE")]
    pub rungs: Option<PathBuf>,
    /// Rules of per-title and shot ladders (TOML): rungs, min_kbps, max_kbps, top_height,
    /// bottom_height, top_vmaf, spacing, max_ratio, peak_ratio, pooling, shot_target, and per
    /// codec of a multi-codec title `[codec.av1]` with rungs = ">= 720", min_kbps, max_kbps,
    /// top_vmaf.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// How VMAF pools for the decision (overrides the rules file).
    #[arg(long, value_parser = ["mean", "harmonic"])]
    pub pooling: Option<String>,
    /// What a shot-level rung aims at: the per-title rung's `bitrate` or its `vmaf`
    /// (overrides the rules file).
    #[arg(long, value_parser = ["bitrate", "vmaf"])]
    pub shot_target: Option<String>,
    /// Encoder preset of the probes (default: a fast one; the report compares its
    /// predictions with the final encodes); `CODEC=PRESET` for one codec of several
    /// (`--probe-preset av1=12,h264=veryfast`).
    #[arg(long, value_name = "PRESET", value_delimiter = ',')]
    pub probe_preset: Vec<String>,
    /// Probes score one frame in N (1: every frame); the others take the nearest scored
    /// frame's score.
    #[arg(long, default_value_t = pipeline::encode::DEFAULT_PROBE_SAMPLING, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=100))]
    pub probe_sampling: u64,
    /// The codec and encoder, or several for one title with a ladder per codec
    /// (`h264,av1`): players pick the variants their device decodes.
    #[arg(long, default_value = "h264", value_delimiter = ',',
          value_parser = ["h264", "hevc", "av1", "av1-rav1e", "vp9"])]
    pub codec: Vec<String>,
    /// Encoder preset (x264/x265 names; SVT-AV1, libvpx and rav1e numbers); `CODEC=PRESET`
    /// for one codec of several (`--preset h264=slow,av1=6`).
    #[arg(long, value_delimiter = ',')]
    pub preset: Vec<String>,
    /// Parallel encode tasks (default: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Keyframe interval and segment duration target in seconds.
    #[arg(long, default_value_t = 4.0, value_name = "SECONDS")]
    pub segment: f64,
    /// Skip measuring each rung's VMAF for the report.
    #[arg(long)]
    pub no_vmaf: bool,
    /// With a per-title or shot-level ladder, also encode and measure Apple's fixed ladder for
    /// the master (not packaged) and report the bits saved against it as measured, not only
    /// as estimated from the probes.
    #[arg(long)]
    pub compare_fixed: bool,
    /// Another audio track: the first audio stream of FILE, in language LANG (ISO 639, such
    /// as `fr` or `fra`); `:description` marks an audio description. Repeatable; the master's
    /// own tracks come first.
    #[arg(long, value_name = "FILE:LANG[:description]")]
    pub audio: Vec<String>,
    /// A subtitle track: an SRT or WebVTT FILE in language LANG; `:forced` marks forced
    /// narrative subtitles (shown without the viewer asking), `:sdh` subtitles for the deaf
    /// and hard of hearing. Repeatable.
    #[arg(long, value_name = "FILE:LANG[:forced|sdh]")]
    pub subs: Vec<String>,
    /// AAC bit rate of the audio tracks, kbit/s.
    #[arg(long, default_value_t = 128, value_name = "KBPS")]
    pub audio_kbps: u32,
    /// Seconds between trick-play thumbnails (0: none).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub thumbnails: u32,
    /// Stop at the renditions: no DASH or HLS packaging.
    #[arg(long)]
    pub no_package: bool,
    #[command(flatten)]
    pub drm: DrmArgs,
    #[command(flatten)]
    pub ingest: IngestSettings,
}

/// Encryption of the packaged title.
#[derive(Debug, Args)]
pub struct DrmArgs {
    /// Encrypt the video and audio segments (common encryption) with keys from: `raw`, the
    /// --key values; `cpix`, the CPIX 2.3 document of --cpix; `speke`, the SPEKE v2 key server
    /// of --speke-url.
    #[arg(long, value_parser = ["raw", "cpix", "speke"], value_name = "SOURCE")]
    pub drm: Option<String>,
    /// The CPIX document of --drm cpix (clear content keys, usage rules, each system's PSSH).
    #[arg(long, value_name = "FILE")]
    pub cpix: Option<PathBuf>,
    /// The SPEKE v2 key server of --drm speke.
    #[arg(long, value_name = "URL")]
    pub speke_url: Option<String>,
    /// The content ID sent to the key server (default: the master's file name without its
    /// extension).
    #[arg(long, value_name = "ID")]
    pub content_id: Option<String>,
    /// With --drm speke: a key for each of audio, SD, HD and UHD (`studio`), or one for all.
    #[arg(long, default_value = "studio", value_parser = ["studio", "single"])]
    pub speke_keys: String,
    /// Also write the keys used as a CPIX 2.3 document to FILE (readable by its owner only),
    /// for a licence server or another packager.
    #[arg(long, value_name = "FILE")]
    pub cpix_out: Option<PathBuf>,
    /// A content key, KID:KEY (32 hex digits each), and which tracks it protects: a comma list
    /// of audio, sd, hd, uhd, video or all (the default). Repeatable; every class of track
    /// needs exactly one key (the studio rule: --key A:KA:audio,sd --key B:KB:hd,uhd).
    #[arg(long, value_name = "KID:KEY[:TRACKS]")]
    pub key: Vec<String>,
    /// The scheme: `cbcs` (AES-CBC, one set of segments for DASH and HLS, FairPlay, Widevine
    /// and PlayReady) or `cenc` (AES-CTR).
    #[arg(long, default_value = "cbcs", value_parser = ["cenc", "cbcs"])]
    pub scheme: String,
    /// Seconds at the start left unencrypted (every segment that starts before it), so
    /// playback starts before the licence arrives.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub clear_lead: f64,
}

/// `rungs validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The master.
    pub input: PathBuf,
    /// Also find the shots and chunks, in the same decode pass.
    #[arg(long)]
    pub shots: bool,
    #[command(flatten)]
    pub ingest: IngestArgs,
}

/// `rungs shots`.
#[derive(Debug, Args)]
pub struct ShotsArgs {
    /// The master.
    pub input: PathBuf,
    /// The lowest score a cut can have (default 0.06).
    #[arg(long, value_name = "SCORE")]
    pub threshold: Option<f32>,
    /// Include every frame's score in the JSON.
    #[arg(long)]
    pub scores: bool,
    #[command(flatten)]
    pub ingest: IngestArgs,
}

/// `rungs vmaf`.
#[derive(Debug, Args)]
pub struct VmafArgs {
    /// The reference (any file FFmpeg reads).
    pub reference: PathBuf,
    /// The distorted video; scaled to the reference's size (bicubic) when they differ.
    pub distorted: PathBuf,
    /// Include every frame's scores in the JSON.
    #[arg(long)]
    pub per_frame: bool,
    /// A built-in model (vmaf_v0.6.1, vmaf_4k_v0.6.1) or the path of a libvmaf JSON model.
    #[arg(long, default_value = "vmaf_v0.6.1", value_name = "NAME|FILE")]
    pub model: String,
    /// Apply the model's score transform: with v0.6.1, the phone model.
    #[arg(long)]
    pub phone: bool,
    /// Scoring threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// The features to compute besides VMAF itself, which is always computed: `vmaf` alone is
    /// the fastest.
    #[arg(long, value_delimiter = ',', default_value = "vmaf,psnr,ssim",
          value_parser = ["vmaf", "psnr", "ssim"], value_name = "LIST")]
    pub features: Vec<String>,
    /// The same as `--features vmaf`.
    #[arg(long)]
    pub vmaf_only: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Where a fleet's queue and store are.
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// The SQS queue, by name or URL (created with its dead-letter queue NAME-dead when missing)
    #[arg(long, env = "RUNGS_QUEUE", value_name = "NAME|URL")]
    pub queue: String,
    /// The S3 store: a bucket and a prefix for the fleet's jobs
    #[arg(long, env = "RUNGS_STORE", value_name = "s3://BUCKET/PREFIX")]
    pub store: String,
    /// Endpoint of an S3- and SQS-compatible server (AWS_ENDPOINT_URL works too)
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Endpoint of S3 alone, when it differs from the queue's
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// AWS region (default: the AWS configuration, then us-east-1)
    #[arg(long)]
    pub region: Option<String>,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub encode: EncodeArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Follow the job until it ends (exit 0 when done, 5 when it failed)
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Tasks at once (default: one per core)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Folder for fetched masters and scratch files, private to this user (default:
    /// $XDG_CACHE_HOME/rungs/worker or ~/.cache/rungs/worker)
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Seconds between two looks of a job's driver at its tasks
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub poll: u64,
    /// Seconds a task stays leased without a heartbeat (renewed every quarter of it)
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub visibility: u64,
    /// Deliveries of a task before it goes to the dead-letter queue
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_receives: u32,
    /// Largest master width or height this worker accepts, whatever a job asks
    #[arg(long, default_value_t = pipeline::ingest::DEFAULT_MAX_DIMENSION, value_name = "PIXELS")]
    pub max_dimension: u32,
    /// Most master frames this worker accepts, whatever a job asks
    #[arg(long, default_value_t = pipeline::ingest::DEFAULT_MAX_FRAMES, value_name = "N")]
    pub max_frames: u64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The job, as `rungs submit` printed it
    pub job: String,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Follow the job until it ends (exit 0 when done, 5 when it failed)
    #[arg(long)]
    pub wait: bool,
    /// Download the finished title into this folder
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Seconds without a run of the job's driver after which it reads as stalled
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub stalled_after: u64,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The packaged title: the output folder of `rungs encode`
    pub dir: PathBuf,
    /// Where to publish it
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    pub to: String,
    /// Endpoint of an S3-compatible server (AWS_ENDPOINT_URL works too)
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// AWS region (default: the AWS configuration, then us-east-1)
    #[arg(long)]
    pub region: Option<String>,
    /// Uploads at once
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub threads: usize,
}

#[derive(Debug, Subcommand)]
pub enum FillCommand {
    /// Which appliance holds which file (JSON on stdout, or -o FILE).
    ///
    /// Storage appliances get every licensed file; edges get titles by their region's views
    /// until full (a title's most-watched rungs first when it does not fit whole); inside a site
    /// files are spread by rendezvous hashing.
    Plan(FillPlanArgs),
    /// Push a plan's files to the appliances by HTTP PUT (windows, rate, breakers, tiered fill),
    /// read each back and check it; resumable.
    Run(FillRunArgs),
    /// Up to ten URLs holding a file (TITLE/PATH) or a whole title, best first, for a client of
    /// a site.
    Locate(FillLocateArgs),
}

#[derive(Debug, Args)]
pub struct FillPlanArgs {
    /// The catalog: a folder of packaged titles (or one title's folder), or where they are
    /// published (s3://BUCKET/PREFIX, a title per folder)
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub catalog: String,
    /// Endpoint of an S3-compatible server, for an s3:// catalog (AWS_ENDPOINT_URL works too)
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Sites and appliances (TOML)
    #[arg(long, value_name = "oca.toml")]
    pub topology: PathBuf,
    /// Predicted views per title and region, with licence windows (CSV)
    #[arg(long, value_name = "pop.csv")]
    pub popularity: Option<PathBuf>,
    /// The time the plan is for (licences): YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct FillRunArgs {
    /// The plan (from `rungs fill plan`)
    pub plan: PathBuf,
    /// The clock for the fill windows: YYYY-MM-DDTHH:MM:SSZ
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Seconds one request may take
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
    /// Failures in a row that open an appliance's circuit breaker
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub trip: u32,
    /// Seconds an open breaker skips its appliance
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub cool_down: u64,
}

#[derive(Debug, Args)]
pub struct FillLocateArgs {
    /// A file (TITLE/PATH) or a title
    pub what: String,
    /// The client's site
    #[arg(long)]
    pub site: String,
    /// The plan (from `rungs fill plan`)
    #[arg(long, value_name = "PLAN")]
    pub plan: PathBuf,
    /// The time (licences): YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The output folder of `rungs encode` (or its report.json), or a fleet job with --store
    pub job: PathBuf,
    /// A fleet's store: JOB is then a fleet job's name
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    pub store: Option<String>,
    /// Endpoint of an S3-compatible server, with --store
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Where to write the page
    #[arg(short, long, value_name = "FILE.html")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// A folder of `rungs encode` output folders, one per job
    #[arg(long, value_name = "DIR")]
    pub jobs: Option<PathBuf>,
    /// A fleet's store (with --queue), for its jobs
    #[arg(long, value_name = "s3://BUCKET/PREFIX", requires = "queue")]
    pub store: Option<String>,
    /// A fleet's queue (with --store)
    #[arg(long, value_name = "NAME|URL", requires = "store")]
    pub queue: Option<String>,
    /// Endpoint of an S3- and SQS-compatible server
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// A fill plan, for the fill page (its journal beside it)
    #[arg(long, value_name = "PLAN.json")]
    pub plan: Option<PathBuf>,
    /// The bearer token every request must carry (needed off loopback)
    #[arg(long, env = "RUNGS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Another name the dashboard answers to in the Host header (repeatable). On loopback
    /// only its own address and `localhost` are accepted otherwise, which closes DNS rebinding
    #[arg(long, value_name = "NAME")]
    pub allow_host: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The job, as `rungs submit` printed it
    pub job: String,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Seconds without a run of the job's driver after which a job that has not failed may be
    /// retried (it stalled: its tasks were lost)
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub stalled_after: u64,
}
