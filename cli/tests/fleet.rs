//! Fleet mode against a real local S3 + SQS server (moto on loopback), with real `rungs worker`
//! processes: a job run by three workers gives the renditions and manifests of a local
//! `rungs encode`, byte for byte; so does a job whose workers are SIGKILLed at random and whose
//! storage traffic goes through a fault proxy, while a poison job (a corrupt master) lands in
//! the dead-letter queue without blocking it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{arg, rungs_text};
use fixtures::Fixture;
use fixtures::faults::FaultProxy;
use fixtures::moto::Moto;
use pipeline::fleet::{self, Fleet};

const QUEUE: &str = "rungs-test";
const STORE: &str = "s3://fleet/jobs-test";
/// A fleet job may take this long on two cores before the test gives up.
const JOB_TIMEOUT: Duration = Duration::from_secs(900);
/// How long the store and the queue are down in the middle of the chaos job.
const OUTAGE: Duration = Duration::from_secs(60);

/// The options of both the local run and the fleet jobs: a shot-level ladder (so that every
/// stage runs: plan, probes, anchors, decision, encodes, assembly with VMAF, packaging), with
/// the master's two audio tracks and an SRT file.
fn encode_args(rules: &Path, srt: &Path) -> Vec<String> {
    [
        "--ladder",
        "shot",
        "--rules",
        arg(rules),
        "--preset",
        "veryfast",
        "--subs",
        &format!("{}:en", srt.display()),
        "--thumbnails",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

struct Worker {
    child: Child,
    log: PathBuf,
}

/// Starts `rungs worker` (one task at a time) with its SQS traffic through `sqs` and its S3
/// traffic through `s3`.
fn worker(sqs: &str, s3: &str, cache: &Path, n: usize) -> Worker {
    let log = cache.join(format!("worker-{n}.log"));
    let child = Command::new(assert_cmd::cargo::cargo_bin("rungs"))
        .args(["worker", "--queue", QUEUE, "--store", STORE])
        .args(["--endpoint", sqs, "--s3-endpoint", s3])
        .args(["--threads", "1", "--poll", "1", "--visibility", "8"])
        .args(["--cache", arg(&cache.join(format!("cache-{n}")))])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "rungs-secret-never-printed")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("rungs worker starts");
    Worker { child, log }
}

fn submit(moto: &Moto, master: &Path, extra: &[String]) -> String {
    let mut args: Vec<String> = ["submit", arg(master), "--queue", QUEUE, "--store", STORE]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--endpoint".into(), moto.endpoint.clone()]);
    args.extend(extra.iter().cloned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = rungs_text(&refs, Duration::from_secs(120));
    assert_eq!(code, 0, "submit: {stderr}");
    let job = stdout.trim().to_owned();
    fleet::check_job(&job).unwrap();
    job
}

/// Waits for `job` to end, calling `tick` every second; its status at the end.
fn wait(fleet: &Fleet, job: &str, mut tick: impl FnMut(&fleet::JobStatus)) -> fleet::JobStatus {
    let end = Instant::now() + JOB_TIMEOUT;
    loop {
        let s = fleet::status(fleet, job).unwrap();
        if s.state == "done" || s.state == "failed" {
            return s;
        }
        assert!(Instant::now() < end, "job {job} did not end: {s:?}");
        tick(&s);
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn stop(workers: Vec<Worker>) -> Vec<String> {
    let mut logs = Vec::new();
    for mut w in workers {
        // SIGTERM: the worker finishes the task in hand and exits 0.
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(w.child.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = w.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < end, "a worker ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        };
        let log = std::fs::read_to_string(&w.log).unwrap();
        assert_eq!(status.code(), Some(0), "worker log:\n{log}");
        assert!(log.contains("stopped"), "{log}");
        logs.push(log);
    }
    logs
}

#[test]
fn fleet_jobs_match_a_local_encode_through_kills_and_storage_faults() {
    // SAFETY: the only test of this binary; no other thread reads the environment yet.
    unsafe { common::fake_aws_credentials() };
    let f = fixtures::ensure(Fixture::TwoAudio).unwrap();
    let srt = f.path.with_file_name("two-audio.eng.srt");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("ladder.toml");
    std::fs::write(&rules, "rungs = 3\nmin_kbps = 150\n").unwrap();
    let extra = encode_args(&rules, &srt);

    // The local reference.
    let local_dir = dir.path().join("local");
    let mut args = vec!["encode", arg(&f.path), "-o", arg(&local_dir), "-q"];
    args.extend(extra.iter().map(String::as_str));
    let (code, _, stderr) = rungs_text(&args, Duration::from_secs(600));
    assert_eq!(code, 0, "{stderr}");
    let local = common::title_files(&local_dir);
    assert!(local.contains_key("master.m3u8") && local.contains_key("manifest.mpd"));
    assert!(local.keys().any(|k| k.starts_with("text/")), "{local:?}");

    let moto = Moto::start().unwrap();
    let fleet = common::fleet::open(&moto, QUEUE, STORE);

    // 1. Three workers, a clean network.
    let job = submit(&moto, &f.path, &extra);
    let workers: Vec<Worker> = (0..3)
        .map(|n| worker(&moto.endpoint, &moto.endpoint, dir.path(), n))
        .collect();
    let clean_start = Instant::now();
    let mut seen = Vec::new();
    let s = wait(&fleet, &job, |s| {
        if let Some(w) = &s.waiting
            && seen.last() != Some(&w.stage)
        {
            seen.push(w.stage.clone());
        }
    });
    assert_eq!(s.state, "done", "{s:?}");
    let clean_time = clean_start.elapsed();
    assert!(seen.len() >= 3, "the stages went by: {seen:?}");
    let clean_dir = dir.path().join("clean");
    let (n, _) = fleet::download(&fleet, &job, &clean_dir).unwrap();
    assert!(n > 10);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(clean_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["ladder"]["mode"], "shot");
    common::assert_same_files(&local, &common::title_files(&clean_dir), "three workers");
    let logs = stop(workers);

    // 2. Chaos: storage faults on the workers' S3 traffic, three SIGKILLs with replacements,
    //    a poison job beside the good one, a forged message and a 1.1 kB id on the queue, and
    //    a 60 s outage of both S3 and SQS in the middle of the job.
    let proxy = FaultProxy::start(moto.port, 0.05, 0.05, 7);
    let sqs = FaultProxy::start(moto.port, 0.0, 0.0, 8);
    let poison = dir.path().join("poison.mp4");
    std::fs::write(
        &poison,
        (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let bad = submit(&moto, &poison, &[]);
    let job = submit(&moto, &f.path, &extra);
    // The job's plan task, with another job's body: it must neither run nor mark the real one
    // done; and an id too long for any key.
    let forged = serde_json::json!({
        "id": format!("{job}-plan"),
        "group": job,
        "body": serde_json::to_string(&pipeline::encode::job::Work::Plan { job: "intruder".into() }).unwrap(),
    });
    moto.send_raw(QUEUE, &forged.to_string()).unwrap();
    let long = serde_json::json!({ "id": format!("{job}-{}", "x".repeat(1100)), "group": job, "body": "{}" });
    moto.send_raw(QUEUE, &long.to_string()).unwrap();
    let mut workers: Vec<Worker> = (0..3)
        .map(|n| worker(&sqs.endpoint, &proxy.endpoint, dir.path(), 10 + n))
        .collect();
    let started = Instant::now();
    // One kill in each part of the job (probing; encoding; assembling, measuring and packaging), at a
    // random moment after the part is first seen, of a random worker.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut random = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let part = |stage: &str| {
        if stage.starts_with("encoding") {
            1
        } else if ["assembling", "measuring", "packaging"]
            .iter()
            .any(|p| stage.starts_with(p))
        {
            2
        } else {
            0
        }
    };
    let mut kills = Vec::new();
    let mut seen_at: Option<(usize, Instant)> = None;
    let mut delay = Duration::from_millis(random() % 3000);
    // The outage: from the first look at the encoding part, 60 s long.
    let mut outage: Option<(Instant, Option<Duration>)> = None;
    let s = wait(&fleet, &job, |s| {
        let Some(at) = &s.waiting else { return };
        let now = part(&at.stage);
        match outage {
            None if now == 1 => {
                proxy.set_down(true);
                sqs.set_down(true);
                outage = Some((Instant::now(), None));
                eprintln!(
                    "outage from {} s, while {}",
                    started.elapsed().as_secs(),
                    at.stage
                );
            }
            Some((from, None)) if from.elapsed() >= OUTAGE => {
                proxy.set_down(false);
                sqs.set_down(false);
                outage = Some((from, Some(from.elapsed())));
            }
            _ => {}
        }
        if now < kills.len() {
            return;
        }
        let since = match seen_at {
            Some((p, t)) if p == now => t,
            _ => {
                seen_at = Some((now, Instant::now()));
                Instant::now()
            }
        };
        if kills.len() < 3 && since.elapsed() >= delay {
            let victim = (random() % workers.len() as u64) as usize;
            let mut w = workers.remove(victim);
            w.child.kill().unwrap(); // SIGKILL
            w.child.wait().unwrap();
            kills.push((started.elapsed().as_secs(), at.stage.clone()));
            workers.push(worker(
                &sqs.endpoint,
                &proxy.endpoint,
                dir.path(),
                20 + kills.len(),
            ));
            delay = Duration::from_millis(random() % 1500);
        }
    });
    assert_eq!(s.state, "done", "{s:?} after kills {kills:?}");
    let (_, lasted) = outage.expect("the outage happened");
    assert!(
        lasted.is_some_and(|d| d >= OUTAGE),
        "the job ended in the outage"
    );
    assert!(s.dead_letters.is_empty(), "{s:?}");
    // The refused messages are buried outside every job.
    let refused: Vec<_> = fleet
        .queue
        .dead_letters()
        .unwrap()
        .into_iter()
        .filter(|d| d.message.group.is_empty())
        .collect();
    assert!(
        refused
            .iter()
            .any(|d| d.error.contains("does not match its body"))
            && refused
                .iter()
                .any(|d| d.error.contains("bytes): expected 1 to")),
        "{refused:#?}"
    );
    assert_eq!(
        kills.len(),
        3,
        "the job ended before three kills: {kills:?}"
    );
    let chaos_dir = dir.path().join("chaos");
    fleet::download(&fleet, &job, &chaos_dir).unwrap();
    common::assert_same_files(&local, &common::title_files(&chaos_dir), "chaos");
    let counts = &proxy.counts;
    let (errors, cut) = (
        counts.errors.load(std::sync::atomic::Ordering::Relaxed),
        counts.cut.load(std::sync::atomic::Ordering::Relaxed),
    );
    assert!(
        errors > 0 && cut > 0,
        "faults injected: {errors} errors, {cut} cut"
    );

    // The poison job failed with a clear error, and its task is in the dead-letter queue.
    let b = wait(&fleet, &bad, |_| {});
    assert_eq!(b.state, "failed", "{b:?}");
    let error = b.error.clone().unwrap();
    assert!(error.contains("poison.mp4"), "{error}");
    assert!(
        b.dead_letters
            .iter()
            .any(|(id, e)| id == &format!("{bad}-plan") && e.contains("poison.mp4")),
        "{b:?}"
    );
    let (code, stdout, stderr) = rungs_text(
        &[
            "status",
            &bad,
            "--queue",
            QUEUE,
            "--store",
            STORE,
            "--endpoint",
            &moto.endpoint,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 5, "a failed job exits 5: {stderr}");
    assert!(
        stdout.contains("\"failed\"") && stderr.contains("poison.mp4"),
        "{stderr}"
    );

    // A retry runs the failed plan again (a new attempt, new task ids): it fails again, and
    // both attempts' dead letters are there.
    let fleet_args = [
        "--queue",
        QUEUE,
        "--store",
        STORE,
        "--endpoint",
        &moto.endpoint,
    ];
    let mut args = vec!["retry", bad.as_str()];
    args.extend(fleet_args);
    let (code, _, stderr) = rungs_text(&args, Duration::from_secs(60));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("attempt 1"), "{stderr}");
    let b = wait(&fleet, &bad, |_| {});
    assert_eq!(b.state, "failed", "{b:?}");
    assert!(
        b.dead_letters
            .iter()
            .any(|(id, _)| id == &format!("{bad}-plan-a1")),
        "{b:?}"
    );
    let mut args = vec!["retry", job.as_str()];
    args.extend(fleet_args);
    let (code, _, stderr) = rungs_text(&args, Duration::from_secs(60));
    assert_eq!(code, 2, "a finished job is not retried: {stderr}");

    // The dashboard over the fleet: both jobs, and a retry only with its header.
    let port = fixtures::moto::free_port();
    let mut dash = Command::new(assert_cmd::cargo::cargo_bin("rungs"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "-q"])
        .args(fleet_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let curl = |args: &[&str]| {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new("curl")
                .args(["-s", "-w", "\n%{http_code}", "--max-time", "30"])
                .args(args)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let (body, code) = text.rsplit_once('\n').unwrap_or(("", "000"));
            if code != "000" || Instant::now() > end {
                return (code.to_owned(), body.to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let (code, body) = curl(&[&format!("http://127.0.0.1:{port}/api/jobs")]);
    assert_eq!(code, "200", "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let state_of = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .map(|j| j["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state_of(&job).as_deref(), Some("done"), "{list}");
    assert_eq!(state_of(&bad).as_deref(), Some("failed"), "{list}");
    // The finished job's title page, from the store: its rungs and a thumbnail per chunk.
    let rungs_n = report["rungs"].as_array().unwrap().len();
    let chunks_n = report["chunks"].as_u64().unwrap() as usize;
    let (code, page) = curl(&[&format!("http://127.0.0.1:{port}/jobs/{job}")]);
    assert_eq!(code, "200");
    assert_eq!(page.matches("<path class=\"rung").count(), rungs_n);
    assert_eq!(page.matches("class=\"shot\"").count(), chunks_n);
    let html = dir.path().join("fleet-title.html");
    let mut args = vec!["report", job.as_str(), "-o", arg(&html), "--store", STORE];
    args.extend(["--endpoint", &moto.endpoint]);
    let (code, _, stderr) = rungs_text(&args, Duration::from_secs(60));
    assert_eq!(code, 0, "{stderr}");
    let file = std::fs::read_to_string(&html).unwrap();
    assert_eq!(file.matches("<path class=\"rung").count(), rungs_n);
    assert_eq!(file.matches("class=\"shot\"").count(), chunks_n);
    let retry_url = format!("http://127.0.0.1:{port}/api/jobs/{bad}/retry");
    let (code, _) = curl(&["-X", "POST", &retry_url]);
    assert_eq!(code, "403", "a retry without its header is refused");
    let (code, body) = curl(&["-X", "POST", "-H", "X-Rungs-Action: retry", &retry_url]);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("\"attempt\":2"), "{body}");
    let (code, metrics) = curl(&[&format!("http://127.0.0.1:{port}/metrics")]);
    assert_eq!(code, "200");
    assert!(metrics.contains("rungs_tasks{state=\"dead\"}"), "{metrics}");
    assert!(!metrics.contains("rungs-secret"), "{metrics}");
    let _ = dash.kill();
    let _ = dash.wait();
    let b = wait(&fleet, &bad, |_| {});
    assert_eq!(b.state, "failed", "{b:?}");

    // 3. A multi-codec job (H.264 and HEVC, Apple's ladder for each) runs on the same tasks:
    //    a worker killed while the chunks of both codecs are encoded, and the files of a local
    //    encode.
    let multi: Vec<String> = [
        "--codec",
        "h264,hevc",
        "--ladder",
        "fixed",
        "--preset",
        "veryfast",
        "--no-vmaf",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let multi_local_dir = dir.path().join("multi-local");
    let mut args = vec!["encode", arg(&f.path), "-o", arg(&multi_local_dir), "-q"];
    args.extend(multi.iter().map(String::as_str));
    let (code, _, stderr) = rungs_text(&args, Duration::from_secs(600));
    assert_eq!(code, 0, "{stderr}");
    let multi_local = common::title_files(&multi_local_dir);
    let multi_job = submit(&moto, &f.path, &multi);
    let mut multi_kill = None;
    let s = wait(&fleet, &multi_job, |s| {
        let Some(at) = &s.waiting else { return };
        if multi_kill.is_none() && at.stage.contains("encoding") {
            let mut w = workers.remove(0);
            w.child.kill().unwrap(); // SIGKILL
            w.child.wait().unwrap();
            multi_kill = Some(at.stage.clone());
            workers.push(worker(&sqs.endpoint, &proxy.endpoint, dir.path(), 30));
        }
    });
    assert_eq!(s.state, "done", "{s:?}");
    let killed_while = multi_kill.expect("a worker was killed while encoding");
    let multi_dir = dir.path().join("multi");
    fleet::download(&fleet, &multi_job, &multi_dir).unwrap();
    common::assert_same_files(
        &multi_local,
        &common::title_files(&multi_dir),
        "multi-codec",
    );
    let multi_report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(multi_dir.join("report.json")).unwrap()).unwrap();
    let codecs: Vec<&str> = multi_report["codecs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["codec"].as_str())
        .collect();
    assert_eq!(codecs, ["h264", "hevc"]);
    let mpd = std::fs::read_to_string(multi_dir.join("manifest.mpd")).unwrap();
    assert!(
        mpd.contains("codecs=\"avc1.") && mpd.contains("codecs=\"hvc1."),
        "{mpd}"
    );
    eprintln!("multi-codec fleet job: a worker killed while {killed_while}");

    let mut logs = [logs, stop(workers)].concat();
    eprintln!("clean fleet job: {:.1} s", clean_time.as_secs_f64());
    for w in &kills {
        eprintln!("killed a worker at {} s while {}", w.0, w.1);
    }
    eprintln!("faults injected: {errors} errors, {cut} responses cut");
    let refused = [&proxy, &sqs]
        .iter()
        .map(|p| p.counts.refused.load(std::sync::atomic::Ordering::Relaxed))
        .sum::<u64>();
    eprintln!("requests refused in the outage: {refused}");
    assert!(refused > 0);
    // The workers waited the outage out, saying so (and those alive were stopped cleanly).
    let backed_off = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .filter(|log| log.contains("trying again in"))
        .count();
    assert!(backed_off > 0, "no worker logged its back-off");
    // Credentials never reach the logs.
    logs.retain(|l| l.contains("rungs-secret-never-printed"));
    assert!(logs.is_empty(), "a worker printed its secret key");
}
