//! `rungs serve` as content-ops use it: the jobs list, a title page and the fill page loaded in
//! headless Chromium (element counts and screenshots), the JSON API, `/metrics`, traversal
//! attempts refused, and the token: required off loopback, 401 without it.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::dashboard::{get, serve, snap};
use common::{arg, rungs, rungs_text};
use fixtures::Fixture;
use serde_json::Value;

#[test]
fn the_dashboard_shows_jobs_titles_and_fill_with_an_api_metrics_and_a_token() {
    let m = fixtures::ensure(Fixture::MultiShot).unwrap().path;
    let dir = tempfile::tempdir().unwrap();
    let jobs = dir.path().join("jobs");
    let title = jobs.join("multishot");
    let run = common::encode_fixed(&m, &title, &[]);
    let report = run.json;
    let n_rungs = report["rungs"].as_array().unwrap().len();
    let n_chunks = report["chunks"].as_u64().unwrap() as usize;
    // A job still running: its work folder and the status its run keeps, no report yet.
    std::fs::create_dir_all(jobs.join("in-progress/.rungs")).unwrap();
    std::fs::write(
        jobs.join("in-progress/.rungs/status.json"),
        r#"{"waiting":{"stage":"encoding chunks","done":10,"total":40},"updated":1100,"since":1000}"#,
    )
    .unwrap();

    // A fill plan over the finished title, one appliance half filled.
    let oca = dir.path().join("oca.toml");
    std::fs::write(
        &oca,
        "origin = \"http://origin.test/\"\n[[site]]\nname = \"lon\"\nregion = \"gb\"\n\
         window = \"00:00-24:00\"\nrate = 1000000\n[[site.appliance]]\nname = \"lon-s1\"\n\
         url = \"http://s1.test\"\ncapacity = 100000000000\ntier = \"storage\"\n",
    )
    .unwrap();
    let plan = dir.path().join("plan.json");
    let run = rungs(&[
        "fill",
        "plan",
        "--catalog",
        arg(&title),
        "--topology",
        arg(&oca),
        "-o",
        arg(&plan),
        "-q",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let p: Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    let files = p["files"].as_array().unwrap();
    let half: Vec<String> = files
        .iter()
        .take(files.len() / 2)
        .map(|f| format!("lon-s1 {}\n", f["key"].as_str().unwrap()))
        .collect();
    let mut journal = PathBuf::from(plan.as_os_str().to_owned());
    journal.as_mut_os_string().push(".journal");
    std::fs::write(&journal, half.concat()).unwrap();

    let s = serve(&["--jobs", arg(&jobs), "--plan", arg(&plan)]);
    let base = format!("http://127.0.0.1:{}", s.1);

    // The API.
    let (code, body) = get(s.1, "/api/jobs", None);
    assert_eq!(code, 200);
    let list: Value = serde_json::from_str(&body).unwrap();
    let states: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["name"].as_str().unwrap(), j["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("in-progress", "running"), ("multishot", "done")]);
    let running = &list[0];
    assert_eq!(running["stage"], "encoding chunks");
    assert_eq!(running["progress"], serde_json::json!([10, 40]));
    assert_eq!(running["eta_seconds"], 300);
    assert_eq!(list[1]["title"], "multishot.mp4");
    // The finished job's run left its last status behind: the stage it ended in.
    let last: Value =
        serde_json::from_slice(&std::fs::read(title.join(".rungs/status.json")).unwrap()).unwrap();
    assert!(last["waiting"]["total"].as_u64().unwrap() >= 1, "{last}");
    let (code, body) = get(s.1, "/api/jobs/multishot", None);
    assert_eq!(code, 200);
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["rungs"].as_array().unwrap().len(), n_rungs);
    let (code, body) = get(s.1, "/api/fill", None);
    assert_eq!(code, 200);
    let fill: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        fill["appliances"][0]["filled_files"].as_u64(),
        Some(half.len() as u64)
    );
    let (code, metrics) = get(s.1, "/metrics", None);
    assert_eq!(code, 200);
    for want in [
        "rungs_jobs{state=\"done\"} 1",
        "rungs_jobs{state=\"running\"} 1",
        "rungs_job_failures 0",
        "rungs_encode_fps ",
        "rungs_fill_bytes{state=\"filled\"} ",
        "rungs_published_bytes 0",
    ] {
        assert!(metrics.contains(want), "{want} in:\n{metrics}");
    }

    // Traversal: names that would leave the jobs folder are refused.
    for path in [
        "/jobs/%2e%2e",
        "/jobs/..%2f..%2fetc%2fpasswd",
        "/api/jobs/%2e%2e%2f%2e%2e",
        "/jobs/.rungs",
        "/api/jobs/multishot%2f.rungs",
    ] {
        let (code, body) = get(s.1, path, None);
        assert_eq!(code, 400, "{path}: {body}");
    }
    let (code, _) = get(s.1, "/jobs/../../etc/passwd", None);
    assert_eq!(code, 404);
    let (code, _) = get(s.1, "/api/jobs/nobody", None);
    assert_eq!(code, 404);

    // Every page in Chromium.
    let shots = dir.path().join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let v = snap(
        &format!("{base}/"),
        "tr.job,tr.job.done,tr.job.running",
        &shots.join("jobs.png"),
        None,
    );
    assert_eq!(v["counts"]["tr.job"], 2, "{v}");
    assert_eq!(v["counts"]["tr.job.running"], 1, "{v}");
    let v = snap(
        &format!("{base}/jobs/multishot"),
        "tr.rung-row,path.rung,polyline.vmaf-line,rect.cell,div.shot",
        &shots.join("title.png"),
        None,
    );
    let n = |k: &str| v["counts"][k].as_u64().unwrap() as usize;
    assert_eq!(n("tr.rung-row"), n_rungs, "{v}");
    assert_eq!(n("path.rung"), n_rungs, "{v}");
    assert_eq!(n("polyline.vmaf-line"), n_rungs, "{v}");
    assert_eq!(n("rect.cell"), n_rungs * n_chunks, "{v}");
    assert_eq!(n("div.shot"), n_chunks, "{v}");
    let v = snap(
        &format!("{base}/fill"),
        "tr.appliance,div.progress",
        &shots.join("fill.png"),
        None,
    );
    assert_eq!(v["counts"]["tr.appliance"], 1, "{v}");
    assert_eq!(v["counts"]["div.progress"], 1, "{v}");
    drop(s);

    // The token: needed off loopback, and every request without it gets 401.
    let (code, _, stderr) = rungs_text(&["serve", "--addr", "0.0.0.0:0"], Duration::from_secs(20));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--token"), "{stderr}");
    let secret = "s3cr3t-token-value";
    let s = serve(&["--jobs", arg(&jobs), "--token", secret]);
    for path in ["/", "/api/jobs", "/metrics", "/jobs/multishot"] {
        assert_eq!(get(s.1, path, None).0, 401, "{path}");
        assert_eq!(get(s.1, path, Some("wrong")).0, 401, "{path}");
        let (code, body) = get(s.1, path, Some(secret));
        assert_eq!(code, 200, "{path}");
        assert!(!body.contains(secret), "{path} shows the token");
    }
    let v = snap(
        &format!("http://127.0.0.1:{}/", s.1),
        "tr.job",
        &shots.join("jobs-token.png"),
        Some(secret),
    );
    assert_eq!(v["status"], 200, "{v}");
}
