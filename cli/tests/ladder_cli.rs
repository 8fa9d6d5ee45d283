//! Per-title and shot-level ladders decided from probes, as a user drives them: the report's
//! points, hulls and rungs hold together; the renditions are what the report says (ffprobe);
//! `rungs ladder compare` and `rungs ladder check` gate the result, with JUnit XML that an
//! independent XML parser reads.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{arg, rungs_text};
use fixtures::Fixture;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(600);

/// A dynamic encode at `faster` with probes at `veryfast` (the default probe preset; anchors
/// correct them to the final preset, and rungs near an anchor take its encodes).
fn encode(master: &Path, out: &Path, ladder: &str, rules: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "encode",
        arg(master),
        "-o",
        arg(out),
        "--ladder",
        ladder,
        "--rules",
        arg(rules),
        "--preset",
        "faster",
        "--probe-preset",
        "veryfast",
        "-q",
    ];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = rungs_text(&args, LONG);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn frames_of(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// Checks what every dynamic report must hold; returns each rung's chunk and zone settings.
fn check_report(r: &Value, mode: &str) -> Vec<Vec<f64>> {
    let l = &r["ladder"];
    assert_eq!(l["mode"], mode);
    let frames = r["frames"].as_u64().unwrap();
    let title = l["title_points"].as_array().unwrap();
    let hull: Vec<usize> = l["hull"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as usize)
        .collect();
    assert!(hull.len() >= 2);
    for w in hull.windows(2) {
        let (a, b) = (&title[w[0]], &title[w[1]]);
        assert!(f(&b["kbps"]) > f(&a["kbps"]) && f(&b["vmaf_mean"]) > f(&a["vmaf_mean"]));
    }
    // Every title point under the hull's upper envelope (mean pooling).
    for p in title {
        let k = f(&p["kbps"]);
        let seg = hull
            .windows(2)
            .find(|w| f(&title[w[0]]["kbps"]) <= k && k <= f(&title[w[1]]["kbps"]));
        if let Some(w) = seg {
            let (a, b) = (&title[w[0]], &title[w[1]]);
            let t = (k - f(&a["kbps"])) / (f(&b["kbps"]) - f(&a["kbps"]));
            let y = f(&a["vmaf_mean"]) + t * (f(&b["vmaf_mean"]) - f(&a["vmaf_mean"]));
            assert!(f(&p["vmaf_mean"]) <= y + 0.01, "{p} above the hull");
        }
    }
    // The units (shots inside chunks, or chunks) cover every frame once, and each has a curve
    // at every resolution probed; each has every anchor of its chunk.
    let units = l["units"].as_array().unwrap();
    let chunk_count = r["chunks"].as_u64().unwrap();
    assert_eq!(
        units
            .iter()
            .map(|u| u["frames"].as_u64().unwrap())
            .sum::<u64>(),
        frames
    );
    assert!(units.len() as u64 >= chunk_count);
    let probes = l["chunk_points"].as_array().unwrap();
    let sizes: std::collections::BTreeSet<(u64, u64)> = title
        .iter()
        .map(|p| (p["width"].as_u64().unwrap(), p["height"].as_u64().unwrap()))
        .collect();
    for (i, _) in units.iter().enumerate() {
        for &(w, h) in &sizes {
            let n = probes
                .iter()
                .filter(|p| p["chunk"] == i && p["width"] == w && p["height"] == h)
                .count();
            assert!(n >= 2, "unit {i} at {w}x{h}: {n} points");
        }
    }
    assert_eq!(
        l["anchor_points"].as_array().unwrap().len() as u64 * chunk_count,
        l["anchor_encodes"].as_u64().unwrap() * units.len() as u64
    );
    assert!(
        l["anchor_encodes"].as_u64().unwrap() > 0,
        "the probe preset is checked"
    );
    assert!(l["probe_encodes"].as_u64() < l["grid_encodes"].as_u64());
    assert!(!l["chunk_hulls"].as_array().unwrap().is_empty());
    let decided = l["rungs"].as_array().unwrap();
    let rungs = r["rungs"].as_array().unwrap();
    assert_eq!(decided.len(), rungs.len());
    assert!(!rungs.is_empty() && rungs.len() <= 4);
    let mut settings = Vec::new();
    let anchors = l["anchor_points"].as_array().unwrap();
    let same_size = |a: &Value, b: &Value| a["width"] == b["width"] && a["height"] == b["height"];
    // The best quality any title point gives at `kbps` or less.
    let best_at = |kbps: f64| {
        title
            .iter()
            .filter(|p| f(&p["kbps"]) <= kbps * (1.0 + 1e-9))
            .map(|p| f(&p["vmaf_mean"]))
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let on_stairs = |p: &Value| f(&p["vmaf_mean"]) >= best_at(f(&p["kbps"])) - 1e-3;
    for (d, g) in decided.iter().zip(rungs) {
        // A rung is a title point on the rising staircase (a hull point or, where the hull
        // jumps between resolutions, the best setting under its chord, which may be of a
        // resolution the hull skips), or an anchor its staircase point moved onto: one of its
        // resolution within `PREFER_WITHIN` in bit rate.
        let me = title
            .iter()
            .find(|p| same_size(p, d) && (f(&p["crf"]) - f(&d["title_crf"])).abs() < 1e-3)
            .unwrap_or_else(|| panic!("rung {d} is not a title point"));
        let on_anchor = anchors
            .iter()
            .any(|a| same_size(a, d) && (f(&a["crf"]) - f(&d["title_crf"])).abs() < 1e-3);
        let moved_from_stairs = title.iter().any(|p| {
            same_size(p, d)
                && on_stairs(p)
                && (f(&p["kbps"]) / f(&me["kbps"])).ln().abs()
                    <= ladders::title::PREFER_WITHIN.ln() + 1e-6
        });
        assert!(
            on_stairs(me) || (on_anchor && moved_from_stairs),
            "rung {d} is neither on the staircase nor an anchor near it"
        );
        let file = PathBuf::from(g["file"].as_str().unwrap());
        assert_eq!(frames_of(&file), frames);
        let per_frame: Vec<f64> = g["per_frame_vmaf"]
            .as_array()
            .unwrap()
            .iter()
            .map(f)
            .collect();
        assert_eq!(per_frame.len() as u64, frames);
        let mean = per_frame.iter().sum::<f64>() / frames as f64;
        assert!((mean - f(&g["vmaf"]["mean"])).abs() < 1e-3);
        let chunks = g["chunks"].as_array().unwrap();
        assert_eq!(chunks.len() as u64, r["chunks"].as_u64().unwrap());
        let bits: u64 = chunks.iter().map(|c| c["bits"].as_u64().unwrap()).sum();
        let kbps = bits as f64 / r["duration_seconds"].as_f64().unwrap() / 1000.0;
        assert!(
            (kbps / f(&g["average_kbps"]) - 1.0).abs() < 0.01,
            "{kbps} vs {}",
            g["average_kbps"]
        );
        // Every chunk's setting and those of its zones.
        settings.push(
            chunks
                .iter()
                .flat_map(|c| {
                    let zones = c["zones"].as_array().cloned().unwrap_or_default();
                    std::iter::once(f(&c["crf"]))
                        .chain(zones.iter().map(|z| f(&z["crf"])).collect::<Vec<_>>())
                })
                .collect(),
        );
    }
    for w in rungs.windows(2) {
        assert!(f(&w[1]["average_kbps"]) > f(&w[0]["average_kbps"]));
    }
    settings
}

/// Counts the test cases and failures of a JUnit file with Python's XML parser.
fn junit_counts(path: &Path) -> (usize, usize) {
    let script = "import sys, xml.etree.ElementTree as E\n\
                  r = E.parse(sys.argv[1]).getroot()\n\
                  cases = r.findall('.//testcase')\n\
                  print(len(cases), sum(1 for c in cases if c.find('failure') is not None))";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut n = text.split_whitespace().map(|x| x.parse().unwrap());
    (n.next().unwrap(), n.next().unwrap())
}

/// `--compare-fixed`: Apple's rungs for the 360p master (234p and 360p) are encoded and
/// measured beside the ladder, compared by BD-rate, and neither packaged nor exported.
fn check_fixed_measured(r: &Value, dir: &Path) {
    let m = &r["ladder"]["fixed_measured"];
    assert!(m["basis"].as_str().unwrap().starts_with("measured"), "{m}");
    let fixed = m["rungs"].as_array().unwrap();
    let names: Vec<&str> = fixed.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["234p-145k", "360p-365k"]);
    for x in fixed {
        assert!(f(&x["kbps"]) > 0.0 && f(&x["kbps"]) < 365.0 * 1.1, "{x}");
        assert!(f(&x["vmaf"]) > 20.0 && f(&x["vmaf"]) <= 100.0, "{x}");
    }
    assert!(
        f(&fixed[1]["vmaf"]) > f(&fixed[0]["vmaf"]),
        "the bigger rung is the better one"
    );
    match m["bd_rate_percent"].as_f64() {
        Some(bd) => assert!(bd.is_finite() && bd > -100.0, "{m}"),
        None => assert!(!m["why_none"].as_str().unwrap().is_empty(), "{m}"),
    }
    for x in r["rungs"].as_array().unwrap() {
        assert!(!x["name"].as_str().unwrap().starts_with("compare-fixed"));
    }
    let manifest = std::fs::read_to_string(dir.join("master.m3u8")).unwrap();
    assert!(!manifest.contains("compare-fixed"), "{manifest}");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with("compare-fixed"), "{name} is in the title");
    }
}

#[test]
fn per_title_and_shot_ladders_are_decided_encoded_compared_and_gated() {
    let m = fixtures::ensure(Fixture::MultiShot).unwrap().path;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("ladder.toml");
    std::fs::write(&rules, "rungs = 4\nmin_kbps = 150\ntop_vmaf = 93\n").unwrap();
    let pt_dir = dir.path().join("per-title");
    let shot_dir = dir.path().join("shot");
    let pt = encode(&m, &pt_dir, "per-title", &rules, &["--compare-fixed"]);
    let shot = encode(&m, &shot_dir, "shot", &rules, &[]);
    check_fixed_measured(&pt, &pt_dir);
    assert!(shot["ladder"].get("fixed_measured").is_none());

    let pt_crfs = check_report(&pt, "per-title");
    for c in &pt_crfs {
        assert!(
            c.iter().all(|x| x == &c[0]),
            "per-title: one setting per rung"
        );
    }
    // Rungs on anchors take the anchors' encodes (made at their final settings, VBV included)
    // instead of encoding again, and the report tells them from a resumed run's.
    let l = &pt["ladder"];
    let on = l["rungs_on_anchors"].as_u64().unwrap();
    assert!(on >= 1, "no rung sits on an anchor");
    assert_eq!(
        l["chunks_from_anchors"].as_u64().unwrap(),
        on * pt["chunks"].as_u64().unwrap()
    );
    assert_eq!(pt["reused_chunk_encodes"].as_u64().unwrap(), 0);
    let sitting = l["rungs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            l["anchor_points"].as_array().unwrap().iter().any(|a| {
                a["width"] == d["width"] && a["height"] == d["height"] && a["crf"] == d["title_crf"]
            })
        })
        .count() as u64;
    assert_eq!(sitting, on);
    let shot_crfs = check_report(&shot, "shot");
    assert!(
        shot_crfs.iter().any(|c| c.iter().any(|x| x != &c[0])),
        "shot: settings vary by chunk"
    );
    // The shot rungs aim at the bit rates of their per-title decision (made on curves anchored
    // at both ends of each resolution's rungs, so it may differ a little from per-title mode's).
    for b in shot["ladder"]["rungs"].as_array().unwrap() {
        assert!(f(&b["predicted_kbps"]) <= f(&b["title_kbps"]) * 1.0001);
    }

    // Compare: the shot ladder needs fewer bits for the same quality here.
    let (code, stdout, stderr) = rungs_text(
        &[
            "ladder",
            "compare",
            arg(&pt_dir.join("report.json")),
            arg(&shot_dir.join("report.json")),
        ],
        LONG,
    );
    assert_eq!(code, 0, "{stderr}");
    let cmp: Value = serde_json::from_str(&stdout).unwrap();
    let bd = f(&cmp["bd_rate_percent"]);
    assert!(bd < 0.0, "shot against per-title: BD-rate {bd:+.2}%");
    assert!(f(&cmp["bd_vmaf"]) > 0.0);
    // A ladder against itself.
    let (_, same, _) = rungs_text(
        &[
            "ladder",
            "compare",
            arg(&pt_dir.join("report.json")),
            arg(&pt_dir.join("report.json")),
        ],
        LONG,
    );
    let same: Value = serde_json::from_str(&same).unwrap();
    assert!(f(&same["bd_rate_percent"]).abs() < 1e-9);

    // Check: passes against the per-title baseline, with every rule reported in JUnit.
    let check_rules = dir.path().join("check.toml");
    std::fs::write(
        &check_rules,
        "[rungs]\nmin_vmaf_mean = 20\n[ladder]\nmonotonic = true\nmax_bd_rate = 0\nmax_peak_ratio = 6\n",
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    let (code, stdout, stderr) = rungs_text(
        &[
            "ladder",
            "check",
            arg(&shot_dir.join("report.json")),
            "--rules",
            arg(&check_rules),
            "--baseline",
            arg(&pt_dir.join("report.json")),
            "--junit",
            arg(&junit),
        ],
        LONG,
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let n = shot["rungs"].as_array().unwrap().len();
    // Per rung: mean floor and peak ratio; per neighbour pair: two monotonic rules; one BD-rate.
    assert_eq!(junit_counts(&junit), (2 * n + 2 * (n - 1) + 1, 0));

    // A floor above the top rung fails, with the table and exit 1.
    std::fs::write(
        &check_rules,
        "[[rung]]\nselect = \"top\"\nmin_vmaf_mean = 99.5\n",
    )
    .unwrap();
    let (code, stdout, _) = rungs_text(
        &[
            "ladder",
            "check",
            arg(&shot_dir.join("report.json")),
            "--rules",
            arg(&check_rules),
            "--junit",
            arg(&junit),
        ],
        LONG,
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("min-vmaf-mean")),
        "{stdout}"
    );
    assert!(stdout.contains("1 failed"), "{stdout}");
    assert_eq!(junit_counts(&junit).1, 1);

    // Bad inputs: a report that is not one, rules with a typo.
    std::fs::write(dir.path().join("bad.json"), "{\"rungs\": 3}").unwrap();
    let (code, _, stderr) = rungs_text(
        &["ladder", "check", arg(&dir.path().join("bad.json"))],
        LONG,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not an encode report"), "{stderr}");
    std::fs::write(&check_rules, "[ladder]\nmax_bd_rat = 1\n").unwrap();
    let (code, _, stderr) = rungs_text(
        &[
            "ladder",
            "check",
            arg(&shot_dir.join("report.json")),
            "--rules",
            arg(&check_rules),
        ],
        LONG,
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown field `max_bd_rat`"), "{stderr}");

    // The title report: one self-contained page whose charts hold every pooled probe, every
    // rung, a VMAF line per rung, a heat-map cell per chunk of each rung, and a thumbnail per
    // chunk; its "bits saved" is a BD-rate against Apple's ladder, labelled as an estimate.
    let page = dir.path().join("shot.html");
    let (code, _, stderr) = rungs_text(&["report", arg(&shot_dir), "-o", arg(&page)], LONG);
    assert_eq!(code, 0, "{stderr}");
    let shot_png = dir.path().join("shot.png");
    let snap = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/players/snap.mjs"))
        .args(["--url", &format!("file://{}", page.display())])
        .args([
            "--count",
            "circle.pt,path.rung,polyline.vmaf-line,rect.cell,polyline.hull,div.shot,tr.rung-row,tr.stage-row",
        ])
        .args(["--screenshot", arg(&shot_png)])
        .output()
        .expect("node runs");
    let seen: Value = serde_json::from_slice(&snap.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&snap.stderr)));
    let n = |sel: &str| seen["counts"][sel].as_u64().unwrap_or(0) as usize;
    let rungs = shot["rungs"].as_array().unwrap().len();
    let chunks = shot["chunks"].as_u64().unwrap() as usize;
    assert_eq!(
        n("circle.pt"),
        shot["ladder"]["title_points"].as_array().unwrap().len(),
        "{seen}"
    );
    assert_eq!(n("path.rung"), rungs, "{seen}");
    assert_eq!(n("tr.rung-row"), rungs, "{seen}");
    assert_eq!(n("polyline.vmaf-line"), rungs, "{seen}");
    assert_eq!(n("rect.cell"), rungs * chunks, "{seen}");
    let estimate = &shot["ladder"]["fixed_estimate"];
    let bd = estimate["bd_rate_percent"]
        .as_f64()
        .unwrap_or_else(|| panic!("{estimate}"));
    assert!(bd.is_finite() && bd > -100.0, "{estimate}");
    assert!(
        estimate["rungs"].as_array().unwrap().len() >= 2,
        "{estimate}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains(&format!("(BD-rate {bd:+.1}%)")) && html.contains("An estimate"),
        "the page's bits saved is the report's estimate, labelled"
    );
    assert!(
        !html.contains("storage."),
        "no bit rates compared at different qualities"
    );
    // With --compare-fixed the page gives the measured comparison instead.
    let pt_page = dir.path().join("per-title.html");
    let (code, _, stderr) = rungs_text(&["report", arg(&pt_dir), "-o", arg(&pt_page)], LONG);
    assert_eq!(code, 0, "{stderr}");
    let pt_html = std::fs::read_to_string(&pt_page).unwrap();
    let measured = &pt["ladder"]["fixed_measured"];
    assert!(
        pt_html.contains("Measured: 2 of Apple's rungs"),
        "{measured}"
    );
    if let Some(bd) = measured["bd_rate_percent"].as_f64() {
        assert!(
            pt_html.contains(&format!("(BD-rate {bd:+.1}%)")),
            "{measured}"
        );
    }
    assert_eq!(n("polyline.hull"), 1, "{seen}");
    assert_eq!(n("div.shot"), chunks, "{seen}");
    // Where the time went: a row per stage the report timed.
    let stages = shot["stages"].as_array().unwrap();
    assert_eq!(n("tr.stage-row"), stages.len(), "{seen}");
    let names: Vec<&str> = stages.iter().filter_map(|s| s["stage"].as_str()).collect();
    for want in [
        "plan",
        "probe encode",
        "probe score",
        "final encode",
        "measurement",
        "packaging",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    for s in stages {
        assert!(s["cpu_seconds"].as_f64().unwrap() >= 0.0, "{s}");
        assert!(s["wall_seconds"].as_f64().unwrap() >= 0.0, "{s}");
    }
    assert!(seen["errors"].as_array().unwrap().is_empty(), "{seen}");
    assert!(
        seen["requests"].as_array().unwrap().is_empty(),
        "self-contained: {seen}"
    );
    assert!(
        std::fs::metadata(&shot_png).unwrap().len() > 10_000,
        "a screenshot"
    );
    let (code, _, stderr) = rungs_text(
        &[
            "report",
            arg(&dir.path().join("bad.json")),
            "-o",
            arg(&page),
        ],
        LONG,
    );
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn bad_ladder_options_are_refused() {
    let m = fixtures::ensure(Fixture::MultiShot).unwrap().path;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.toml");
    std::fs::write(&rules, "rungs = 0\n").unwrap();
    let out = dir.path().join("o");
    let (code, _, stderr) = rungs_text(
        &["encode", arg(&m), "-o", arg(&out), "--rules", arg(&rules)],
        LONG,
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("rungs = 0"), "{stderr}");
    std::fs::write(&rules, "[[rung]]\nname = \"a\"\nwidth = 64\nheight = 64\n").unwrap();
    let (code, _, stderr) = rungs_text(
        &[
            "encode",
            arg(&m),
            "-o",
            arg(&out),
            "--ladder",
            "shot",
            "--rungs",
            arg(&rules),
        ],
        LONG,
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot be used with --ladder shot"),
        "{stderr}"
    );
    let (code, _, stderr) = rungs_text(
        &["encode", arg(&m), "-o", arg(&out), "--probe-preset", "warp"],
        LONG,
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("probe preset"), "{stderr}");
    for (extra, says) in [
        (["--ladder", "fixed"], "per-title or shot-level"),
        (
            ["--no-vmaf", "--ladder=shot"],
            "cannot be used with --no-vmaf",
        ),
    ] {
        let mut args = vec!["encode", arg(&m), "-o", arg(&out), "--compare-fixed"];
        args.extend(extra);
        let (code, _, stderr) = rungs_text(&args, LONG);
        assert_eq!(code, 2, "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert!(!out.join("report.json").exists());
}
