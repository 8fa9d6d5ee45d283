//! Helpers for driving the real `rungs` binary.

#![allow(dead_code)]

pub mod dashboard;
pub mod fleet;
pub mod vmaf;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

/// No command may take longer than this on a fixture; a hang fails the test.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// What a run of `rungs` gave.
pub struct Run {
    pub code: i32,
    pub json: Value,
    pub stderr: String,
}

/// Runs `rungs ARGS...` under the timeout and parses its stdout as JSON (Null if empty).
pub fn rungs(args: &[&str]) -> Run {
    let (code, stdout, stderr) = rungs_text(args, TIMEOUT);
    let json = if stdout.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("rungs {args:?} printed invalid JSON ({e}):\n{stdout}"))
    };
    Run { code, json, stderr }
}

/// Runs `rungs ARGS...` under `timeout`: exit code, stdout and stderr.
pub fn rungs_text(args: &[&str], timeout: Duration) -> (i32, String, String) {
    let out = Command::cargo_bin("rungs")
        .expect("the rungs binary")
        .args(args)
        .timeout(timeout)
        .output()
        .expect("rungs runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "rungs {args:?} panicked:\n{stderr}"
    );
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("rungs {args:?} was killed (timeout?):\n{stderr}"));
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

pub fn arg(p: &Path) -> &str {
    p.to_str().expect("fixture paths are UTF-8")
}

/// The frames of the detected cuts.
pub fn cut_frames(json: &Value) -> Vec<u64> {
    json["cuts"]
        .as_array()
        .expect("cuts")
        .iter()
        .map(|c| c["frame"].as_u64().unwrap())
        .collect()
}

/// Asserts that `got` matches `want` within one frame, with nothing missed or extra.
pub fn assert_cuts(name: &str, got: &[u64], want: &[u64]) {
    let missed: Vec<_> = want
        .iter()
        .filter(|w| !got.iter().any(|g| g.abs_diff(**w) <= 1))
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|g| !want.iter().any(|w| w.abs_diff(**g) <= 1))
        .collect();
    assert!(
        missed.is_empty() && extra.is_empty() && got.len() == want.len(),
        "{name}: missed cuts {missed:?}, false cuts {extra:?} (got {got:?}, want {want:?})"
    );
}

/// Credentials for the `rungs` processes a test starts against moto (it takes any).
///
/// # Safety
/// Call before the test starts threads that read the environment (tests that call it are the
/// only test of their binary).
pub unsafe fn fake_aws_credentials() {
    // SAFETY: the caller guarantees no other thread reads the environment yet.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::set_var("AWS_REGION", "us-east-1");
    }
}

/// `rungs encode MASTER -o OUT --ladder fixed --preset veryfast -q EXTRA…`, which must succeed.
pub fn encode_fixed(master: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "encode",
        arg(master),
        "-o",
        arg(out),
        "--ladder",
        "fixed",
        "--preset",
        "veryfast",
        "-q",
    ];
    args.extend(extra);
    let run = rungs(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

/// Every file under `dir` (relative path → bytes), leaving out the report and the work folder.
pub fn title_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if rel == ".rungs" || rel == "report.json" {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Asserts that two title folders hold the same files, byte for byte.
pub fn assert_same_files(
    local: &BTreeMap<String, Vec<u8>>,
    fleet: &BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(fleet), names(local), "{what}: the same files");
    for (name, bytes) in local {
        assert!(
            fleet[name] == *bytes,
            "{what}: {name} differs from the local run"
        );
    }
}
