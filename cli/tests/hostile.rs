//! Hostile input, tried as an attacker would against a fleet on a real local S3 + SQS (moto on
//! loopback) with a real worker: specs that name the worker's own files or loosen its limits,
//! and messages that impersonate another job's tasks or are too long to be ids. Each test is
//! named after what it proves.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cloud::S3Store;
use common::fleet::aws;
use common::{arg, rungs_text};
use fixtures::Fixture;
use fixtures::moto::Moto;
use pipeline::encode::EncodeOptions;
use pipeline::encode::job::{Input, JobSpec, Output, Work};
use pipeline::fleet::{self, Fleet, WorkerOptions};
use store::{Key, Store};

const QUEUE: &str = "rungs-hostile";
const STORE: &str = "s3://hostile/fleet";

/// A moto server, its fleet, and a scratch folder.
struct Rig {
    moto: Moto,
    fleet: Fleet,
    dir: tempfile::TempDir,
}

impl Rig {
    fn start() -> Self {
        let moto = Moto::start().unwrap();
        let fleet = common::fleet::open(&moto, QUEUE, STORE);
        Self {
            moto,
            fleet,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes `spec` as job `job`'s `job.json`, with the master uploaded under `input/`, and
    /// queues its driver, as a hostile client with write access to the store could.
    fn plant(&self, job: &str, master: &Path, spec: &JobSpec) {
        let key = |rel: &str| Key::new(format!("fleet/jobs/{job}/{rel}")).unwrap();
        let store = S3Store::open("s3://hostile", &aws(&self.moto.endpoint)).unwrap();
        store
            .put_file(&key("input/master-0-m.mp4"), master)
            .unwrap();
        store
            .put(&key("job.json"), &serde_json::to_vec(spec).unwrap())
            .unwrap();
        self.fleet
            .queue
            .push(
                Work::Advance {
                    job: job.into(),
                    generation: 0,
                }
                .message(),
            )
            .unwrap();
    }

    /// Runs a worker in this process with `options` until every job in `jobs` has ended.
    fn serve(&self, options: &WorkerOptions, jobs: &[&str]) -> Vec<fleet::JobStatus> {
        self.serve_until(options, jobs, |all| {
            all.iter().all(|s| s.state == "done" || s.state == "failed")
        })
    }

    /// Runs a worker in this process with `options` until the statuses of `jobs` meet `until`
    /// (the worker finishes the task in hand, then stops).
    fn serve_until(
        &self,
        options: &WorkerOptions,
        jobs: &[&str],
        until: impl Fn(&[fleet::JobStatus]) -> bool,
    ) -> Vec<fleet::JobStatus> {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let worker = s.spawn(|| fleet::run_worker(&self.fleet, options, &stop));
            let end = Instant::now() + Duration::from_secs(600);
            let statuses = loop {
                let all: Vec<_> = jobs
                    .iter()
                    .map(|j| fleet::status(&self.fleet, j).unwrap())
                    .collect();
                if until(&all) {
                    break all;
                }
                assert!(
                    !worker.is_finished(),
                    "the worker stopped: {:?}",
                    all.iter().map(|s| &s.state).collect::<Vec<_>>()
                );
                assert!(Instant::now() < end, "jobs did not end: {all:#?}");
                std::thread::sleep(Duration::from_millis(300));
            };
            stop.store(true, Ordering::Release);
            worker.join().unwrap().expect("the worker ran to its stop");
            statuses
        })
    }

    /// `--queue`, `--store` and `--endpoint` of the rig's fleet.
    fn fleet_args(&self) -> [&str; 6] {
        [
            "--queue",
            QUEUE,
            "--store",
            STORE,
            "--endpoint",
            &self.moto.endpoint,
        ]
    }

    /// Submits the multi-shot master with `rungs submit` and a fixed ladder of `rungs` (TOML),
    /// not packaged, with `extra` options; the job's name.
    fn submit(&self, rungs: &str, extra: &[&str]) -> String {
        let master = fixtures::ensure(Fixture::MultiShot).unwrap().path;
        let file = self.dir.path().join("rungs.toml");
        std::fs::write(&file, rungs).unwrap();
        let mut args = vec![
            "submit",
            arg(&master),
            "--rungs",
            arg(&file),
            "--no-package",
        ];
        args.extend(self.fleet_args());
        args.extend(extra);
        let (code, stdout, stderr) = rungs_text(&args, Duration::from_secs(120));
        assert_eq!(code, 0, "{stderr}");
        stdout.trim().to_owned()
    }

    fn worker_options(&self) -> WorkerOptions {
        WorkerOptions {
            threads: 1,
            cache: self.dir.path().join("cache"),
            poll: Duration::from_secs(1),
            wait: Duration::from_secs(1),
            ..Default::default()
        }
    }
}

/// A spec as `rungs submit` writes it: the master in the store, the title to the store, a
/// one-rung fixed ladder.
fn spec() -> JobSpec {
    JobSpec {
        master: Input::Stored {
            key: "input/master-0-m.mp4".into(),
            name: "m.mp4".into(),
        },
        audio: Vec::new(),
        subtitles: Vec::new(),
        options: EncodeOptions {
            ladder: pipeline::encode::LadderChoice::Custom(vec![pipeline::encode::ladder::Rung {
                name: "low".into(),
                width: 320,
                height: 180,
                rate: workers::encode::RateControl::Crf(30.0),
                vbv: None,
            }]),
            preset: Some("ultrafast".into()),
            measure: false,
            package: None,
            ..Default::default()
        },
        output: Output::Store,
    }
}

#[test]
fn a_fleet_spec_that_names_the_workers_own_files_is_refused_before_any_is_touched() {
    let rig = Rig::start();
    let master = fixtures::ensure(Fixture::MultiShot).unwrap().path;
    // A folder of the worker's machine that a spec tries to write to and clean.
    let victim = rig.dir.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("keep.txt"), b"the user's file").unwrap();
    let environ = Input::Local("/proc/self/environ".into());
    let cases: Vec<(&str, JobSpec, &str)> = vec![
        (
            "env-subs",
            JobSpec {
                subtitles: vec![(environ.clone(), "en".into())],
                ..spec()
            },
            "a subtitle input names a file of the worker's machine (/proc/self/environ)",
        ),
        (
            "local-master",
            JobSpec {
                master: Input::Local(master.clone()),
                ..spec()
            },
            "the master names a file of the worker's machine",
        ),
        (
            "out-dir",
            JobSpec {
                output: Output::Dir(victim.clone()),
                ..spec()
            },
            "the output names a file of the worker's machine",
        ),
        (
            "plan-as-master",
            JobSpec {
                master: Input::Stored {
                    key: "job.json".into(),
                    name: "m.mp4".into(),
                },
                ..spec()
            },
            "outside the job's input/",
        ),
        ("fine", spec(), ""),
    ];
    for (job, spec, _) in &cases {
        rig.plant(job, &master, spec);
    }
    let jobs: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let statuses = rig.serve(&rig.worker_options(), &jobs);
    for ((job, _, why), s) in cases.iter().zip(&statuses) {
        if why.is_empty() {
            assert_eq!(s.state, "done", "{job}: {s:?}");
            continue;
        }
        assert_eq!(s.state, "failed", "{job}: {s:?}");
        let error = s.error.clone().unwrap_or_default();
        assert!(error.contains(why), "{job}: {error}");
        // Nothing of the worker's environment reached the job's records.
        assert!(!error.contains("PATH="), "{job}: {error}");
    }
    let left: Vec<_> = std::fs::read_dir(&victim)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        ["keep.txt"],
        "the worker wrote into a folder of its machine"
    );
    assert_eq!(
        std::fs::read(victim.join("keep.txt")).unwrap(),
        b"the user's file"
    );
}

#[test]
fn a_spec_can_tighten_the_workers_limits_but_never_loosen_them() {
    let rig = Rig::start();
    let master = fixtures::ensure(Fixture::MultiShot).unwrap().path;
    let with = |max_dimension: u32, max_frames: u64| {
        let mut s = spec();
        s.options.ingest.max_dimension = max_dimension;
        s.options.ingest.max_frames = max_frames;
        s
    };
    // Plants `job` with `spec`, serves it with `options`, and checks how it failed.
    let fails = |job: &str, spec: JobSpec, options: WorkerOptions, why: &str| {
        rig.plant(job, &master, &spec);
        let s = rig.serve(&options, &[job]);
        assert_eq!(s[0].state, "failed", "{s:?}");
        let error = s[0].error.clone().unwrap();
        assert!(error.contains(why), "{job}: {error}");
    };
    // The worker takes masters of at most 480 pixels a side; the master is 640×360.
    let small = WorkerOptions {
        max_dimension: 480,
        ..rig.worker_options()
    };
    fails(
        "loosen-size",
        with(100_000, u64::MAX),
        small,
        "outside 16..480 pixels",
    );
    // The worker takes 10 frames at most.
    let short = WorkerOptions {
        max_dimension: 4096,
        max_frames: 10,
        ..rig.worker_options()
    };
    fails(
        "loosen-frames",
        with(4096, u64::MAX),
        short,
        "more than 10 frames",
    );
    // A spec may ask for less than the worker allows.
    fails(
        "tighten",
        with(4096, 5),
        rig.worker_options(),
        "more than 5 frames",
    );
}

#[test]
fn forged_and_oversized_messages_neither_stall_nor_fail_another_job() {
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { common::fake_aws_credentials() };
    let rig = Rig::start();
    let victim = rig.submit(
        "[[rung]]\nname = \"low\"\nwidth = 320\nheight = 180\ncrf = 30\n",
        &["--preset", "ultrafast", "--no-vmaf"],
    );
    // The victim's plan task, with another job's body: before the fix, a worker ran the body,
    // marked the victim's plan done (so the real one was dropped as a duplicate) or buried it
    // under the victim's name (so the victim failed).
    let forged = serde_json::json!({
        "id": format!("{victim}-plan"),
        "group": victim,
        "body": serde_json::to_string(&Work::Plan { job: "attacker".into() }).unwrap(),
    });
    rig.moto.send_raw(QUEUE, &forged.to_string()).expect("sent");
    // A 1.1 kB id (it used to end the worker: its state key was longer than a key may be).
    let long = serde_json::json!({
        "id": format!("{victim}-{}", "x".repeat(1100)),
        "group": victim,
        "body": "{}",
    });
    rig.moto.send_raw(QUEUE, &long.to_string()).expect("sent");
    let s = rig.serve(&rig.worker_options(), &[&victim]);
    assert_eq!(s[0].state, "done", "{s:?}");
    assert!(s[0].dead_letters.is_empty(), "{s:?}");
    let refused = rig.fleet.queue.dead_letters().unwrap();
    assert_eq!(refused.len(), 2, "{refused:#?}");
    assert!(refused.iter().all(|d| d.message.group.is_empty()));
    assert!(
        refused
            .iter()
            .any(|d| d.error.contains("does not match its body")),
        "{refused:#?}"
    );
    assert!(
        refused.iter().any(|d| d.error.contains("1110 bytes")
            || d.error.contains(&format!("{} bytes", victim.len() + 1101))),
        "{refused:#?}"
    );
}

#[test]
fn a_playlist_or_concat_master_is_refused_before_it_reads_another_file() {
    let rig = Rig::start();
    let master = fixtures::ensure(Fixture::MultiShot).unwrap().path;
    let dir = rig.dir.path();
    // Each points at a master of this machine (on a worker: another job's cached master).
    let hls = dir.join("master.m3u8");
    std::fs::write(
        &hls,
        format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:20\n#EXTINF:20.0,\nfile:{}\n#EXT-X-ENDLIST\n",
            master.display()
        ),
    )
    .unwrap();
    let concat = dir.join("list.ffconcat");
    std::fs::write(
        &concat,
        format!("ffconcat version 1.0\nfile 'file:{}'\n", master.display()),
    )
    .unwrap();
    for (file, what) in [(&hls, "(hls)"), (&concat, "(concat)")] {
        let (code, _, stderr) = rungs_text(&["validate", arg(file)], Duration::from_secs(60));
        assert_eq!(code, 3, "{stderr}");
        assert!(
            stderr.contains(what) && stderr.contains("rungs opens media containers only"),
            "{stderr}"
        );
    }
    // The same playlist submitted to the fleet.
    let mut s = spec();
    s.master = Input::Stored {
        key: "input/master-0-m.mp4".into(),
        name: "master.m3u8".into(),
    };
    rig.plant("playlist", &hls, &s);
    let st = rig.serve(&rig.worker_options(), &["playlist"]);
    assert_eq!(st[0].state, "failed", "{st:?}");
    let error = st[0].error.clone().unwrap();
    assert!(error.contains("(hls)"), "{error}");
}

#[test]
fn a_second_run_on_the_same_output_folder_is_refused_and_the_first_finishes() {
    let master = fixtures::ensure(Fixture::MultiShot).unwrap().path;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("title");
    let first = std::process::Command::new(assert_cmd::cargo::cargo_bin("rungs"))
        .args(["encode", arg(&master), "-o", arg(&out), "-q"])
        .args(["--ladder", "fixed", "--workers", "1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lock = out.join(".rungs/lock");
    let end = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&lock).map_or(true, |s| s.is_empty()) {
        assert!(Instant::now() < end, "the first run never took its lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Another master, other settings: before the lock, this run cleared the first one's work.
    let other = fixtures::ensure(Fixture::TwoAudio).unwrap().path;
    let (code, _, stderr) = rungs_text(
        &["encode", arg(&other), "-o", arg(&out), "--ladder", "fixed"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains(&format!("is in use by another run (pid {}", first.id()))
            && stderr.contains("rungs encode"),
        "{stderr}"
    );
    let done = first.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "the first run: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(out.join("master.m3u8").is_file() && out.join("manifest.mpd").is_file());
    // Once the first has ended, the folder is free again.
    let (code, _, stderr) = rungs_text(
        &[
            "encode",
            arg(&other),
            "-o",
            arg(&out),
            "--ladder",
            "fixed",
            "-q",
        ],
        Duration::from_secs(300),
    );
    assert_eq!(code, 0, "{stderr}");
}

/// Markup that runs script where it is not escaped: it opens a dialog and marks the window.
const PAYLOAD: &str = "<img src=x onerror=\"window.__rungs_pwned=1;alert(1)\">";

#[test]
fn report_values_render_as_text_and_only_the_dashboards_own_host_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = dir.path().join("jobs");
    // Every text of a report holds the payload; in the second, numbers hold it too.
    let texts = serde_json::json!({
        "master": format!("/m/{PAYLOAD}.mp4"), "codec": PAYLOAD, "frames": 50,
        "frame_rate": PAYLOAD, "chunks": 2, "duration_seconds": 2.0,
        "rungs": [{
            "name": PAYLOAD, "width": 640, "height": 360, "average_kbps": 800.0,
            "peak_kbps": 1200.0, "vmaf": { "mean": 90.0, "harmonic_mean": 89.0, "min": 80.0 },
            "chunks": [{ "start_frame": 0, "crf": 23.0, "kbps": 700.0 },
                       { "start_frame": 25, "crf": 25.0, "kbps": 900.0 }],
            "per_frame_vmaf": [90.0, null, 91.0]
        }],
        "ladder": { "mode": PAYLOAD, "notes": [PAYLOAD],
                    "fixed_estimate": { "basis": PAYLOAD, "why_none": PAYLOAD, "rungs": [] } },
        "stages": [{ "stage": PAYLOAD, "wall_seconds": 1.0, "cpu_seconds": 2.0 }],
    });
    let mut numbers = texts.clone();
    numbers["frames"] = PAYLOAD.into();
    numbers["rungs"][0]["average_kbps"] = PAYLOAD.into();
    for (name, report) in [("texts", &texts), ("numbers", &numbers)] {
        std::fs::create_dir_all(jobs.join(name)).unwrap();
        std::fs::write(
            jobs.join(name).join("report.json"),
            serde_json::to_vec(report).unwrap(),
        )
        .unwrap();
    }
    let s = common::dashboard::serve(&["--jobs", arg(&jobs)]);
    let base = format!("http://127.0.0.1:{}", s.1);
    let shots = dir.path().join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    for (path, shows) in [
        ("/", "texts"),
        ("/jobs/texts", PAYLOAD),
        ("/jobs/numbers", "cannot be shown"),
    ] {
        let v = common::dashboard::snap(
            &format!("{base}{path}"),
            "img",
            &shots.join(format!("{}.png", path.replace('/', "_"))),
            None,
        );
        assert_eq!(v["dialogs"], serde_json::json!([]), "{path}: {v}");
        assert_eq!(v["scripted"], false, "{path}: {v}");
        assert_eq!(
            v["counts"]["img"], 0,
            "{path}: an <img> element was made: {v}"
        );
        let text = v["text"].as_str().unwrap();
        assert!(text.contains(shows), "{path}: {text}");
    }
    // The page of the mistyped report names the field's position, as text.
    let (code, body) = common::dashboard::get(s.1, "/jobs/numbers", None);
    assert_eq!(code, 200);
    assert!(
        body.contains("line 1 column") && !body.contains("<img"),
        "{body}"
    );
    // `rungs report` writes the same page to a file.
    let html = dir.path().join("texts.html");
    let (code, _, stderr) = rungs_text(
        &["report", arg(&jobs.join("texts")), "-o", arg(&html), "-q"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{stderr}");
    let v = common::dashboard::snap(
        &format!("file://{}", html.display()),
        "img",
        &shots.join("file.png"),
        None,
    );
    assert!(
        v["dialogs"] == serde_json::json!([]) && v["scripted"] == false,
        "{v}"
    );
    let (code, _, stderr) = rungs_text(
        &["report", arg(&jobs.join("numbers")), "-o", arg(&html)],
        Duration::from_secs(60),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("line 1 column"), "{stderr}");

    // DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 sends its own
    // name as Host, and is refused; the dashboard's own names are served.
    let port = s.1;
    for (host, code) in [
        (format!("evil.example:{port}"), 421),
        ("evil.example".to_owned(), 421),
        (format!("127.0.0.1:{}", port + 1), 421),
        (format!("127.0.0.1:{port}"), 200),
        (format!("localhost:{port}"), 200),
    ] {
        let (got, body) =
            common::dashboard::get_with(port, "/api/jobs", &[&format!("Host: {host}")]);
        assert_eq!(got, code, "{host}: {body}");
    }
    drop(s);
    let s = common::dashboard::serve(&["--jobs", arg(&jobs), "--allow-host", "dash.internal"]);
    let (code, _) = common::dashboard::get_with(s.1, "/", &["Host: dash.internal"]);
    assert_eq!(code, 200);
    let (code, _) = common::dashboard::get_with(s.1, "/", &["Host: evil.example"]);
    assert_eq!(code, 421);
}

#[test]
fn an_oversized_subtitle_file_is_refused_before_any_work() {
    let master = fixtures::ensure(Fixture::MultiShot).unwrap().path;
    let dir = tempfile::tempdir().unwrap();
    // 17 MiB of valid SRT: one cue over the whole title, and a long tail of cues.
    let srt = dir.path().join("huge.srt");
    let mut text = String::from("1\n00:00:00,000 --> 99:00:00,000\nall along\n\n");
    let mut n = 2;
    while text.len() < 17 << 20 {
        text.push_str(&format!(
            "{n}\n00:00:01,000 --> 00:00:02,000\nline {n} of a subtitle file far too large\n\n"
        ));
        n += 1;
    }
    std::fs::write(&srt, text).unwrap();
    let out = dir.path().join("title");
    let (code, _, stderr) = rungs_text(
        &[
            "encode",
            arg(&master),
            "-o",
            arg(&out),
            "--ladder",
            "fixed",
            "--subs",
            &format!("{}:en", srt.display()),
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("huge.srt") && stderr.contains("larger than the limit of 16 MiB"),
        "{stderr}"
    );
    assert!(!out.join("master.m3u8").exists());
}

#[test]
fn a_job_whose_tasks_were_purged_reads_as_stalled_and_a_retry_finishes_it() {
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { common::fake_aws_credentials() };
    let rig = Rig::start();
    let job = rig.submit(
        "[[rung]]\nname = \"a\"\nwidth = 320\nheight = 180\ncrf = 30\n\n\
         [[rung]]\nname = \"b\"\nwidth = 640\nheight = 360\ncrf = 26\n",
        &[],
    );
    let fleet_args = rig.fleet_args();
    // Mid-job (the encodes queued), the queue is purged: every task is gone, the driver's too.
    let s = rig.serve_until(&rig.worker_options(), &[&job], |s| {
        s[0].waiting
            .as_ref()
            .is_some_and(|w| w.stage.starts_with("encoding"))
    });
    assert_eq!(s[0].state, "running", "{s:?}");
    rig.moto.purge(QUEUE).unwrap();
    // No driver runs any more: the job reads as stalled, with the reason, and exits 5.
    std::thread::sleep(Duration::from_secs(3));
    let mut args = vec!["status", job.as_str(), "--stalled-after", "2"];
    args.extend(fleet_args);
    let (code, stdout, stderr) = rungs_text(&args, Duration::from_secs(60));
    assert_eq!(code, 5, "{stderr}");
    let status: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(status["state"], "stalled", "{status}");
    assert!(
        stderr.contains("was lost") && stderr.contains("rungs retry"),
        "{stderr}"
    );
    // A running job is not retried; a stalled one is, and finishes.
    let mut args = vec!["retry", job.as_str()];
    args.extend(fleet_args);
    let (code, _, stderr) = rungs_text(&args, Duration::from_secs(60));
    assert_eq!(code, 2, "not stalled yet at 900 s: {stderr}");
    args.extend(["--stalled-after", "2"]);
    let (code, _, stderr) = rungs_text(&args, Duration::from_secs(60));
    assert_eq!(code, 0, "{stderr}");
    let s = rig.serve(&rig.worker_options(), &[&job]);
    assert_eq!(s[0].state, "done", "{s:?}");
    let out = rig.dir.path().join("title");
    let (files, _) = fleet::download(&rig.fleet, &job, &out).unwrap();
    assert!(files >= 2 && out.join("a.mp4").is_file() && out.join("b.mp4").is_file());
}

#[test]
fn a_run_killed_five_times_in_the_same_assembly_resumes_to_the_same_title() {
    let master = fixtures::ensure(Fixture::MultiShot1080p).unwrap().path;
    let dir = tempfile::tempdir().unwrap();
    let encode = |out: &Path| {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("rungs"));
        c.args(["encode", arg(&master), "-o", arg(out), "-q"])
            .args([
                "--ladder",
                "fixed",
                "--preset",
                "ultrafast",
                "--workers",
                "1",
            ])
            .args(["--no-vmaf", "--no-package"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        c
    };
    let reference = dir.path().join("reference");
    let done = encode(&reference).output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    // The same encode, SIGKILLed while the assembly of its top rung (the longest: 1080p) is
    // leased, five times over.
    let out = dir.path().join("killed");
    let journal = out.join(".rungs/queue.journal");
    let lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    // The id of the task that assembles a 1080p rung, once it is queued.
    let top = || -> Option<String> {
        lines().iter().find_map(|l| {
            let id = l["id"].as_str()?;
            (l["op"] == "push"
                && id.contains("-assemble-")
                && l["body"].as_str()?.contains("\"name\":\"1080p"))
            .then(|| id.to_owned())
        })
    };
    // True while `id` is leased and not settled.
    let leased = |id: &str| -> bool {
        let all = lines();
        all.iter().enumerate().any(|(i, l)| {
            l["op"] == "lease"
                && l["id"] == id
                && !all[i + 1..]
                    .iter()
                    .any(|x| x["id"] == id && x["op"] != "lease")
        })
    };
    // The journal as it was before a run: a run opens it by rewriting it whole (a new file),
    // so only leases written after that are the run's own.
    let inode = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&journal).map(|m| m.ino()).ok()
    };
    let mut target: Option<String> = None;
    for kill in 1..=5 {
        let before = inode();
        let mut run = encode(&out).spawn().unwrap();
        let end = Instant::now() + Duration::from_secs(300);
        let id = loop {
            if target.is_none() {
                target = top();
            }
            let opened = before.is_none() || inode() != before;
            if let Some(id) = target.clone().filter(|id| opened && leased(id)) {
                break id;
            }
            if let Some(status) = run.try_wait().unwrap() {
                panic!("run {kill} ended ({status}) before its assembly was caught");
            }
            assert!(Instant::now() < end, "run {kill}: no assembly leased");
            std::thread::sleep(Duration::from_millis(1));
        };
        run.kill().unwrap(); // SIGKILL
        run.wait().unwrap();
        assert!(
            !lines().iter().any(|l| l["id"] == id && l["op"] == "ack"),
            "{id} finished"
        );
    }
    // The sixth run resumes: the task killed five times runs, not dead-lettered.
    let done = encode(&out).output().unwrap();
    assert!(
        done.status.success(),
        "the resume after five kills of {target:?}: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    common::assert_same_files(
        &common::title_files(&reference),
        &common::title_files(&out),
        "killed five times",
    );
}

#[test]
fn finished_files_and_their_folders_are_synced_before_the_manifests_name_them() {
    let master = fixtures::ensure(Fixture::MultiShot).unwrap().path;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("title");
    let trace = dir.path().join("trace.txt");
    // The system calls of a whole encode, with the path of every descriptor (strace -y).
    let done = std::process::Command::new("strace")
        .args(["-f", "-y", "-qq", "-s", "4096", "-o", arg(&trace)])
        .args(["-e", "trace=fsync,fdatasync,rename,renameat,renameat2"])
        .arg(assert_cmd::cargo::cargo_bin("rungs"))
        .args([
            "encode",
            arg(&master),
            "-o",
            arg(&out),
            "--ladder",
            "fixed",
            "-q",
        ])
        .output()
        .expect("strace runs (scripts/setup installs it)");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let lines: Vec<String> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let quoted =
        |l: &str| -> Vec<String> { l.split('"').skip(1).step_by(2).map(str::to_owned).collect() };
    // The rename that put `name` (under `out`) in place: its line and its temporary source.
    let renamed = |name: &str| -> (usize, String) {
        let dest = out.join(name).display().to_string();
        lines
            .iter()
            .enumerate()
            .find_map(|(i, l)| {
                let q = quoted(l);
                (l.contains("rename") && l.contains("= 0") && q.last() == Some(&dest))
                    .then(|| (i, q[0].clone()))
            })
            .unwrap_or_else(|| panic!("no rename to {dest}"))
    };
    let synced = |path: &str, range: std::ops::Range<usize>| {
        lines[range].iter().any(|l| {
            (l.contains("fsync(") || l.contains("fdatasync(")) && l.contains(&format!("<{path}>"))
        })
    };
    let folder = out.display().to_string();
    for manifest in ["master.m3u8", "manifest.mpd"] {
        let (i, tmp) = renamed(manifest);
        assert!(
            synced(&tmp, 0..i),
            "{manifest} was not synced before its rename"
        );
        assert!(
            synced(&folder, i..lines.len()),
            "the folder of {manifest} was not synced"
        );
    }
    // Every segment was in place, synced, before the first manifest named it.
    let (first_manifest, _) = renamed("master.m3u8").min(renamed("manifest.mpd"));
    let segments: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l.contains("rename") && quoted(l).last().is_some_and(|d| d.ends_with(".m4s"))
        })
        .map(|(i, _)| i)
        .collect();
    assert!(!segments.is_empty());
    for &i in &segments {
        let tmp = quoted(&lines[i])[0].clone();
        assert!(i < first_manifest && synced(&tmp, 0..i), "{}", lines[i]);
    }
    // The queue's journal records are synced as they are written.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("fdatasync(") && l.contains("queue.journal>")),
        "the journal is never synced"
    );
}
