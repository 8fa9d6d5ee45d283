//! The dashboard as its tests drive it: a `rungs serve` process, `curl`, and Chromium.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::arg;

/// A running `rungs serve` and its port.
pub struct Server(pub Child, pub u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `rungs serve` on a free loopback port with `extra` arguments.
pub fn serve(extra: &[&str]) -> Server {
    let port = fixtures::moto::free_port();
    let child = Command::new(assert_cmd::cargo::cargo_bin("rungs"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "-q"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "the dashboard did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server(child, port)
}

/// `curl`: status and body.
pub fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let headers: Vec<&str> = auth.iter().map(String::as_str).collect();
    get_with(port, path, &headers)
}

/// `curl` with extra request headers: status and body.
pub fn get_with(port: u16, path: &str, headers: &[&str]) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "--path-as-is",
        "-w",
        "\n%{http_code}",
        "--max-time",
        "30",
    ]);
    for h in headers {
        c.args(["-H", h]);
    }
    let out = c
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_owned())
}

/// Loads `url` in headless Chromium (`tools/players/snap.mjs`): counts of the `counts`
/// selectors, a screenshot, what scripts did; no page errors.
pub fn snap(url: &str, counts: &str, png: &Path, token: Option<&str>) -> Value {
    let mut c = Command::new("node");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/players/snap.mjs"))
        .args(["--url", url, "--count", counts, "--screenshot", arg(png)]);
    if let Some(t) = token {
        c.args(["--token", t]);
    }
    let out = c.output().expect("node runs");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(v["errors"].as_array().unwrap().is_empty(), "{url}: {v}");
    assert!(
        std::fs::metadata(png).unwrap().len() > 5_000,
        "a screenshot of {url}"
    );
    v
}
