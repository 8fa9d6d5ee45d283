//! `rungs validate` and `rungs probe` through the real binary: the bad-input corpus, good
//! masters, exit codes and output handling.

mod common;

use common::{arg, rungs};
use fixtures::Fixture;
use serde_json::Value;

fn kinds(json: &Value) -> Vec<String> {
    json["problem_counts"]
        .as_object()
        .expect("problem_counts")
        .keys()
        .cloned()
        .collect()
}

#[test]
fn every_bad_file_is_rejected_with_its_problem_and_position() {
    let corpus = fixtures::corpus().unwrap();
    assert!(corpus.len() >= 15);
    for bad in &corpus {
        let name = bad.path.file_name().unwrap().to_string_lossy();
        let r = rungs(&["-q", "validate", arg(&bad.path)]);
        assert_eq!(
            r.code, 3,
            "{name} ({}): exit {} {}",
            bad.what, r.code, r.stderr
        );
        assert_eq!(r.json["accepted"], false, "{name}");
        let found = kinds(&r.json);
        for want in &bad.expect {
            assert!(
                found.contains(want),
                "{name} ({}): want {want}, got {found:?}",
                bad.what
            );
        }
        for p in r.json["problems"].as_array().unwrap() {
            assert!(!p["message"].as_str().unwrap().is_empty(), "{name}: {p}");
            let placed = ["stream", "at_seconds", "frame", "byte_offset"]
                .iter()
                .any(|k| p.get(*k).is_some_and(|v| !v.is_null()));
            let whole_file = p["kind"] == "no_video_stream";
            assert!(
                placed || whole_file,
                "{name}: problem without a position: {p}"
            );
        }
    }
}

#[test]
fn every_file_in_the_corpus_folder_survives_every_command() {
    let corpus = fixtures::corpus().unwrap();
    let dir = corpus[0].path.parent().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        for cmd in [
            &["probe"][..],
            &["validate", "--shots"],
            &["shots", "--scores"],
        ] {
            let mut args = vec!["-q"];
            args.extend_from_slice(cmd);
            args.push(arg(&path));
            let r = rungs(&args);
            assert!(
                [0, 3].contains(&r.code),
                "{cmd:?} {}: exit {} {}",
                path.display(),
                r.code,
                r.stderr
            );
        }
    }
}

#[test]
fn specific_problems_are_placed_precisely() {
    let corpus = fixtures::corpus().unwrap();
    let get = |name: &str| {
        let bad = corpus.iter().find(|b| b.path.ends_with(name)).unwrap();
        rungs(&["-q", "validate", arg(&bad.path)]).json
    };
    let first = |json: &Value, kind: &str| -> Value {
        json["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["kind"] == kind)
            .cloned()
            .unwrap()
    };
    // Truncated MP4: the mdat box runs past the end, which is where the file stops.
    let t = get("truncated.mp4");
    let size = std::fs::metadata(
        corpus
            .iter()
            .find(|b| b.path.ends_with("truncated.mp4"))
            .unwrap()
            .path
            .clone(),
    )
    .unwrap()
    .len();
    assert_eq!(first(&t, "truncated")["byte_offset"], size);
    // Bit flips: corrupt frames named by time, frame and byte.
    let b = get("bitflip.mp4");
    let p = first(&b, "corrupt_packet");
    assert!(
        p["at_seconds"].is_number() && p["byte_offset"].is_number(),
        "{p}"
    );
    // VFR: the first off-grid interval is where the rate changes (frame 50 of 80), or before.
    let v = first(&get("vfr.mp4"), "variable_frame_rate");
    assert!(v["frame"].as_u64().unwrap() <= 51, "{v}");
    // A/V mismatch: placed where the shorter stream ends.
    let a = first(&get("av-mismatch.mp4"), "av_duration_mismatch");
    assert!((a["at_seconds"].as_f64().unwrap() - 3.0).abs() < 0.1, "{a}");
    assert!(
        a["message"].as_str().unwrap().contains("audio longer"),
        "{a}"
    );
    // Interlaced: every frame, from the first.
    let i = first(&get("interlaced.mp4"), "interlaced");
    assert_eq!(i["frame"], 0);
}

#[test]
fn good_masters_are_accepted_with_nothing_to_report() {
    let mut masters: Vec<(String, std::path::PathBuf, Option<u64>)> = [
        Fixture::MultiShot,
        Fixture::MultiShot10Bit,
        Fixture::MultiShot2997,
        Fixture::ProRes,
        Fixture::TwoAudio,
    ]
    .iter()
    .map(|f| {
        let m = fixtures::ensure(*f).unwrap();
        (f.name().to_owned(), m.path, Some(m.truth.frames))
    })
    .collect();
    for clip in fixtures::REAL_CLIPS {
        if let Some(p) = fixtures::real_clip(clip) {
            masters.push((clip.to_string(), p, None));
        }
    }
    for (name, path, frames) in masters {
        let r = rungs(&["-q", "validate", arg(&path)]);
        assert_eq!(r.code, 0, "{name}: {}", r.json["problems"]);
        assert_eq!(r.json["accepted"], true);
        assert_eq!(r.json["problems"], serde_json::json!([]), "{name}");
        assert_eq!(
            r.json["video"]["timing"]["constant_frame_rate"], true,
            "{name}"
        );
        if let Some(f) = frames {
            assert_eq!(r.json["video"]["timing"]["frames"], f, "{name}");
        }
    }
}

#[test]
fn validate_with_shots_reads_every_packet_exactly_once() {
    let m = fixtures::ensure(Fixture::TwoAudio).unwrap();
    let packets = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
        ])
        .args(["-of", "csv=p=0"])
        .arg(&m.path)
        .output()
        .unwrap();
    let expected: u64 = String::from_utf8_lossy(&packets.stdout)
        .lines()
        .map(|l| l.trim().parse::<u64>().unwrap())
        .sum();
    assert!(expected > 0);
    let r = rungs(&["-q", "validate", "--shots", arg(&m.path)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json["packets_read"], expected);
    assert_eq!(r.json["video"]["timing"]["frames"], m.truth.frames);
    assert_eq!(r.json["shots"]["frames"], m.truth.frames);
    assert_eq!(r.json["audio"].as_array().unwrap().len(), 2);
    assert_eq!(r.json["audio"][1]["language"], "fra");
}

#[test]
fn probe_prints_json_and_a_summary() {
    let m = fixtures::ensure(Fixture::TwoAudio).unwrap();
    let r = rungs(&["probe", arg(&m.path)]);
    assert_eq!(r.code, 0);
    assert_eq!(r.json["streams"].as_array().unwrap().len(), 3);
    assert_eq!(r.json["streams"][0]["video"]["r_frame_rate"], "25/1");
    assert!(
        r.stderr.contains("#0 video h264") && r.stderr.contains("[fra]"),
        "{}",
        r.stderr
    );
    let q = rungs(&["-q", "probe", "--compact", arg(&m.path)]);
    assert!(q.stderr.is_empty(), "{}", q.stderr);
    assert_eq!(q.json, r.json);
}

#[test]
fn exit_codes_and_output_files() {
    let m = fixtures::ensure(Fixture::TwoAudio).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Usage errors.
    assert_eq!(rungs(&["validate"]).code, 2);
    assert_eq!(rungs(&["validate", "--no-such-flag", arg(&m.path)]).code, 2);
    assert_eq!(rungs(&["frobnicate"]).code, 2);
    // Missing input and a folder as input.
    let r = rungs(&["validate", "/no/such/master.mp4"]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("/no/such/master.mp4"), "{}", r.stderr);
    assert_eq!(rungs(&["validate", arg(dir.path())]).code, 4);
    assert_eq!(rungs(&["probe", "/no/such/master.mp4"]).code, 4);
    // -o writes the same JSON to a file.
    let out = dir.path().join("report.json");
    let r = rungs(&["-q", "validate", "-o", arg(&out), arg(&m.path)]);
    assert_eq!((r.code, r.json.clone()), (0, Value::Null));
    let written: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(written["accepted"], true);
    // An unwritable output is an I/O error, and no partial file appears.
    let r = rungs(&[
        "-q",
        "validate",
        "-o",
        "/no/such/dir/report.json",
        arg(&m.path),
    ]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    // A rejected master still writes its report, and exits 3.
    let bad = fixtures::corpus()
        .unwrap()
        .into_iter()
        .find(|b| b.path.ends_with("vfr.mp4"))
        .unwrap();
    let out2 = dir.path().join("bad.json");
    assert_eq!(
        rungs(&["-q", "validate", "-o", arg(&out2), arg(&bad.path)]).code,
        3
    );
    let written: Value = serde_json::from_slice(&std::fs::read(&out2).unwrap()).unwrap();
    assert_eq!(written["accepted"], false);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".rungs-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}

#[test]
fn av_tolerance_is_configurable() {
    let bad = fixtures::corpus()
        .unwrap()
        .into_iter()
        .find(|b| b.path.ends_with("av-mismatch.mp4"))
        .unwrap();
    let r = rungs(&["-q", "validate", "--av-tolerance", "5", arg(&bad.path)]);
    assert_eq!(r.code, 0, "{}", r.json["problems"]);
}
