//! `rungs fill` against real nginx servers on loopback (WebDAV PUT) in two sites with mixed
//! tiers: the plan, a fill during which an appliance dies and which resumes after it comes
//! back, tiered fill with the origin as fallback when a storage peer is down, every placement
//! checked by GET, and a real player (Shaka, in headless Chromium) playing the title from the
//! edge that `rungs fill locate` returned.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{arg, rungs, rungs_text};
use fixtures::Fixture;
use fixtures::nginx::Nginx;
use serde_json::Value;

fn http_get(url: &str) -> Option<Vec<u8>> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "10", url])
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

#[test]
fn a_title_fills_two_sites_through_a_dead_appliance_and_plays_from_the_edge() {
    let m = fixtures::ensure(Fixture::MultiShot).unwrap().path;
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog");
    common::encode_fixed(&m, &catalog.join("multishot"), &["--no-vmaf"]);

    // The origin and five appliances: London (storage, two edges, two copies of each file on
    // the edges) and Paris (storage, edge).
    let origin = Nginx::start(&catalog, &dir.path().join("origin")).unwrap();
    let names = ["lon-s1", "lon-e1", "lon-e2", "par-s1", "par-e1"];
    let mut ocas: Vec<Nginx> = names
        .iter()
        .map(|n| Nginx::start(&dir.path().join(n).join("www"), &dir.path().join(n)).unwrap())
        .collect();
    let tier = |n: &str| if n.contains("-s") { "storage" } else { "edge" };
    let appliance = |i: usize| {
        format!(
            "[[site.appliance]]\nname = \"{}\"\nurl = \"{}\"\ncapacity = 10000000000\ntier = \"{}\"\n",
            names[i],
            ocas[i].url,
            tier(names[i])
        )
    };
    // A rate that makes the fill take a few seconds, so that an appliance can die during it.
    let bytes: u64 = packager::fill::catalog_dir(&catalog)
        .unwrap()
        .iter()
        .flat_map(|t| &t.files)
        .map(|f| f.size)
        .sum();
    let rate = (bytes / 2).max(100_000);
    let topology = format!(
        "origin = \"{}\"\n\
         [[site]]\nname = \"lon\"\nregion = \"gb\"\nwindow = \"00:00-24:00\"\nrate = {rate}\nreplication = 2\n{}{}{}\
         [[site]]\nname = \"par\"\nregion = \"fr\"\nwindow = \"01:00-05:00\"\nrate = {rate}\n{}{}",
        origin.url,
        appliance(0),
        appliance(1),
        appliance(2),
        appliance(3),
        appliance(4)
    );
    let oca = dir.path().join("oca.toml");
    std::fs::write(&oca, topology).unwrap();
    let pop = dir.path().join("pop.csv");
    std::fs::write(
        &pop,
        "title,region,views,licensed_from,licensed_until\nmultishot,gb,1000,,\nmultishot,fr,10,2020-01-01,2040-01-01\n",
    )
    .unwrap();
    let plan = dir.path().join("plan.json");
    let run = rungs(&[
        "fill",
        "plan",
        "--catalog",
        arg(&catalog),
        "--topology",
        arg(&oca),
        "--popularity",
        arg(&pop),
        "--now",
        "2026-11-30",
        "-o",
        arg(&plan),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let p: Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    let files = p["files"].as_array().unwrap();
    assert!(files.len() > 10);
    for f in files {
        let on: Vec<&str> = f["on"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["appliance"].as_str().unwrap())
            .collect();
        // Every file: both London edges, London's and Paris's storage, Paris's edge.
        let mut sorted = on.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            ["lon-e1", "lon-e2", "lon-s1", "par-e1", "par-s1"],
            "{f}"
        );
    }

    // Fill at 02:00 UTC (inside both windows); lon-e2 dies mid-fill.
    let journal = dir.path().join("plan.json.journal");
    let child = Command::new(assert_cmd::cargo::cargo_bin("rungs"))
        .args(["fill", "run", arg(&plan), "--now", "2026-11-30T02:00:00Z"])
        .args(["--timeout", "3", "--trip", "2", "--cool-down", "60", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&journal)
        .map(|j| j.lines().count())
        .unwrap_or(0)
        < files.len()
    {
        assert!(Instant::now() < end, "the fill made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    ocas[2].kill();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(6), "an incomplete fill exits 6");
    let r1: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r1["missing"].as_u64().unwrap() > 0, "{r1}");
    assert!(
        r1["breakers_opened"]["lon-e2"].as_u64().unwrap() >= 1,
        "{r1}"
    );
    assert!(
        r1["failures"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f.as_str().unwrap().starts_with("lon-e2 ")),
        "only the dead appliance failed: {r1}"
    );
    // Tiered fill: London's edges read from London's storage, not the origin.
    assert!(
        r1["links"]["lon-s1 -> lon-e1"].as_u64().unwrap() > 0,
        "{r1}"
    );
    assert!(r1["links"].get("origin -> lon-e1").is_none(), "{r1}");

    // It comes back; the fill resumes where it stopped.
    ocas[2].restart().unwrap();
    let (code, r2, stderr) = fill_run_at(&plan, "2026-11-30T02:30:00Z");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        r2["already"].as_u64().unwrap() >= r1["filled"].as_u64().unwrap(),
        "{r2}"
    );
    assert_eq!(r2["missing"].as_u64(), Some(0));

    eprintln!(
        "fill 1 (lon-e2 killed mid-way): {} filled, {} missing, breakers {}, links {}",
        r1["filled"], r1["missing"], r1["breakers_opened"], r1["links"]
    );
    eprintln!(
        "fill 2 (resumed): {} already, {} filled",
        r2["already"], r2["filled"]
    );
    // Every placement, read back by GET from its appliance: the catalog's bytes.
    for f in files {
        let key = f["key"].as_str().unwrap();
        let want = std::fs::read(catalog.join(key)).unwrap();
        for x in f["on"].as_array().unwrap() {
            let i = names.iter().position(|n| *n == x["appliance"]).unwrap();
            let got = http_get(&format!("{}/{key}", ocas[i].url)).unwrap_or_default();
            assert!(got == want, "{key} on {}", names[i]);
        }
    }

    // Outside Paris's window (12:00 UTC) with a fresh journal, Paris waits; London's storage is
    // down, so London's edges fall back to the origin.
    std::fs::remove_file(&journal).unwrap();
    ocas[0].kill();
    let (code, r3, _) = fill_run_at(&plan, "2026-11-30T12:00:00Z");
    assert_eq!(code, 6);
    assert!(r3["outside_window"]["par"].as_u64().unwrap() > 0, "{r3}");
    assert!(r3["fallbacks"].as_u64().unwrap() > 0, "{r3}");
    assert!(
        r3["links"]["origin -> lon-e1"].as_u64().unwrap() > 0,
        "{r3}"
    );
    let moved: u64 = r3["links"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    eprintln!(
        "fill 3 (lon-s1 down, Paris outside its window): {} fallbacks, links {}; {moved} bytes \
         in {} s at a site rate of {rate} B/s (1 s of burst)",
        r3["fallbacks"], r3["links"], r3["seconds"]
    );
    ocas[0].restart().unwrap();

    // Steering: London's clients get London's edges first, then its storage, then Paris, then
    // the origin.
    let (code, stdout, stderr) = rungs_text(
        &[
            "fill",
            "locate",
            "multishot",
            "--site",
            "lon",
            "--plan",
            arg(&plan),
            "--now",
            "2026-11-30",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "{stderr}");
    let urls: Vec<String> = serde_json::from_str(&stdout).unwrap();
    let at = |n: &str| {
        urls.iter()
            .position(|u| u.starts_with(&ocas[names.iter().position(|x| *x == n).unwrap()].url))
    };
    assert!(
        at("lon-e1").unwrap() < 2 && at("lon-e2").unwrap() < 2,
        "{urls:?}"
    );
    assert_eq!(at("lon-s1"), Some(2), "{urls:?}");
    assert!(at("par-e1").unwrap() > 2, "{urls:?}");
    assert!(urls.last().unwrap().starts_with(&origin.url), "{urls:?}");
    // Paris is licensed until 2040 only.
    let (code, _, stderr) = rungs_text(
        &[
            "fill",
            "locate",
            "multishot",
            "--site",
            "par",
            "--plan",
            arg(&plan),
            "--now",
            "2041-01-01",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("not licensed"), "{stderr}");

    // A real player plays the title from the first edge returned.
    let players = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/players");
    let out = Command::new("node")
        .arg(players.join("play.mjs"))
        .args([
            "--root",
            arg(dir.path()),
            "--url",
            &urls[0],
            "--manifest",
            "manifest.mpd",
        ])
        .args(["--player", "shaka", "--timeout", "120"])
        .output()
        .expect("node runs");
    let result: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        result["errors"].as_array().is_some_and(|e| e.is_empty()),
        "{result}"
    );
    assert_eq!(result["started"], true, "{result}");
    assert_eq!(result["ended"], true, "{result}");
    assert!(
        result["switched"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["ok"] == true),
        "every rung played from the edge: {result}"
    );
}

fn fill_run_at(plan: &Path, now: &str) -> (i32, Value, String) {
    let (code, stdout, stderr) = rungs_text(
        &[
            "fill",
            "run",
            arg(plan),
            "--now",
            now,
            "--timeout",
            "3",
            "--trip",
            "2",
            "--cool-down",
            "60",
        ],
        Duration::from_secs(300),
    );
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (code, json, stderr)
}
