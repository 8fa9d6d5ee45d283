//! Hostile input, tried as an attacker would against a fleet on a real local S3 + SQS (moto on
//! loopback) with a real worker: specs that name the worker's own files or loosen its limits,
//! and messages that impersonate another job's tasks or are too long to be ids. Each test is
//! named after what it proves.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cloud::{AwsOptions, S3Store};
use common::{arg, rungs_text};
use fixtures::Fixture;
use fixtures::moto::Moto;
use pipeline::encode::EncodeOptions;
use pipeline::encode::job::{Input, JobSpec, Output, Work};
use pipeline::fleet::{self, Fleet, WorkerOptions};
use store::{Key, Store};

const QUEUE: &str = "rungs-hostile";
const STORE: &str = "s3://hostile/fleet";

fn aws(endpoint: &str) -> AwsOptions {
    AwsOptions {
        endpoint: Some(endpoint.to_owned()),
        region: Some("us-east-1".into()),
        credentials: Some(("test".into(), "test".into())),
    }
}

/// A moto server, its fleet, and a scratch folder.
struct Rig {
    moto: Moto,
    fleet: Fleet,
    dir: tempfile::TempDir,
}

impl Rig {
    fn start() -> Self {
        let moto = Moto::start().unwrap();
        S3Store::open(STORE, &aws(&moto.endpoint))
            .unwrap()
            .ensure_bucket()
            .unwrap();
        let fleet = Fleet::open(
            QUEUE,
            STORE,
            &aws(&moto.endpoint),
            &aws(&moto.endpoint),
            None,
        )
        .unwrap();
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
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let worker = s.spawn(|| fleet::run_worker(&self.fleet, options, &stop));
            let end = Instant::now() + Duration::from_secs(600);
            let statuses = loop {
                let all: Vec<_> = jobs
                    .iter()
                    .map(|j| fleet::status(&self.fleet, j).unwrap())
                    .collect();
                if all.iter().all(|s| s.state == "done" || s.state == "failed") {
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
    // The worker takes masters of at most 480 pixels a side; the master is 640×360.
    rig.plant("loosen-size", &master, &with(100_000, u64::MAX));
    let options = WorkerOptions {
        max_dimension: 480,
        ..rig.worker_options()
    };
    let s = rig.serve(&options, &["loosen-size"]);
    assert_eq!(s[0].state, "failed", "{s:?}");
    let error = s[0].error.clone().unwrap();
    assert!(error.contains("outside 16..480 pixels"), "{error}");
    // The worker takes 10 frames at most.
    rig.plant("loosen-frames", &master, &with(4096, u64::MAX));
    let options = WorkerOptions {
        max_dimension: 4096,
        max_frames: 10,
        ..rig.worker_options()
    };
    let s = rig.serve(&options, &["loosen-frames"]);
    assert_eq!(s[0].state, "failed", "{s:?}");
    let error = s[0].error.clone().unwrap();
    assert!(error.contains("more than 10 frames"), "{error}");
    // A spec may ask for less than the worker allows.
    rig.plant("tighten", &master, &with(4096, 5));
    let s = rig.serve(&rig.worker_options(), &["tighten"]);
    let error = s[0].error.clone().unwrap();
    assert!(error.contains("more than 5 frames"), "{error}");
}

#[test]
fn forged_and_oversized_messages_neither_stall_nor_fail_another_job() {
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { common::fake_aws_credentials() };
    let rig = Rig::start();
    let master = fixtures::ensure(Fixture::MultiShot).unwrap().path;
    let rungs = rig.dir.path().join("rungs.toml");
    std::fs::write(
        &rungs,
        "[[rung]]\nname = \"low\"\nwidth = 320\nheight = 180\ncrf = 30\n",
    )
    .unwrap();
    let (code, stdout, stderr) = rungs_text(
        &[
            "submit",
            arg(&master),
            "--queue",
            QUEUE,
            "--store",
            STORE,
            "--endpoint",
            &rig.moto.endpoint,
            "--rungs",
            arg(&rungs),
            "--preset",
            "ultrafast",
            "--no-vmaf",
            "--no-package",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{stderr}");
    let victim = stdout.trim().to_owned();
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
