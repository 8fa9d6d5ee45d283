//! `rungs shots`: cut accuracy on generated and real material, and chunk planning.

mod common;

use common::{arg, assert_cuts, cut_frames, rungs};
use fixtures::Fixture;

#[test]
fn every_cut_of_every_generated_master_is_found() {
    for &f in Fixture::SYNTHETIC {
        let m = fixtures::ensure(f).unwrap();
        let r = rungs(&["-q", "shots", arg(&m.path)]);
        assert_eq!(r.code, 0, "{}: {}", f.name(), r.stderr);
        assert_cuts(f.name(), &cut_frames(&r.json), &m.truth.cuts);
        assert_eq!(r.json["frames"], m.truth.frames, "{}", f.name());
    }
}

#[test]
fn cuts_carry_frame_pts_and_seconds() {
    let m = fixtures::ensure(Fixture::MultiShot2997).unwrap();
    let r = rungs(&["-q", "shots", arg(&m.path)]);
    for c in r.json["cuts"].as_array().unwrap() {
        let frame = c["frame"].as_u64().unwrap() as f64;
        let seconds = c["seconds"].as_f64().unwrap();
        assert!((seconds - frame * 1001.0 / 30000.0).abs() < 0.001, "{c}");
        assert!(c["pts"].as_i64().is_some(), "{c}");
    }
    assert_eq!(r.json["frame_rate"], "30000/1001");
}

#[test]
fn real_footage_with_pans_zooms_and_flashes() {
    if fixtures::shared_media().is_none() {
        eprintln!("skipped: the real clips in ../shared/media are missing");
        return;
    }
    // The clips alone are single shots: camera motion, exposure drift and people walking in
    // must not look like cuts.
    for clip in fixtures::REAL_CLIPS {
        let path = fixtures::real_clip(clip).unwrap();
        let r = rungs(&["-q", "shots", arg(&path)]);
        assert_eq!(r.code, 0, "{clip}: {}", r.stderr);
        assert_cuts(clip, &cut_frames(&r.json), &[]);
    }
    let m = fixtures::ensure(Fixture::RealMix).unwrap();
    let r = rungs(&["-q", "shots", arg(&m.path)]);
    assert_cuts("real-mix", &cut_frames(&r.json), &m.truth.cuts);
    // Random mixes with seeds nobody tuned the detector on.
    for seed in [1001, 2002, 3003] {
        let m = fixtures::random_mix(seed).unwrap();
        let r = rungs(&["-q", "shots", arg(&m.path)]);
        assert_eq!(r.code, 0, "mix {seed}: {}", r.stderr);
        assert_cuts(&format!("mix-{seed}"), &cut_frames(&r.json), &m.truth.cuts);
    }
}

#[test]
fn default_chunks_merge_the_short_shot_and_record_why() {
    let m = fixtures::ensure(Fixture::MultiShot).unwrap();
    let r = rungs(&["-q", "shots", arg(&m.path)]);
    let chunks = r.json["chunks"].as_array().unwrap();
    let mut next = 0;
    for c in chunks {
        assert_eq!(c["start_frame"], next, "chunks are contiguous");
        let frames = c["frames"].as_u64().unwrap();
        assert!(
            (25..=250).contains(&frames),
            "chunk of {frames} frames breaks 1..10 s: {c}"
        );
        next += frames;
    }
    assert_eq!(next, m.truth.frames);
    assert_eq!(chunks[0]["reason"], "start");
    // The 15-frame bars card at 300 is too short: it joins the noise shot before it.
    let merged: Vec<_> = chunks.iter().filter(|c| c["reason"] == "merge").collect();
    assert_eq!(merged.len(), 1, "{chunks:?}");
    assert_eq!(merged[0]["merged_cuts"], serde_json::json!([300]));
    assert!(chunks.iter().filter(|c| c["reason"] == "cut").count() >= 5);
}

#[test]
fn long_shots_split_under_a_short_maximum() {
    let m = fixtures::ensure(Fixture::MultiShot).unwrap();
    let r = rungs(&[
        "-q",
        "shots",
        "--min-chunk",
        "0.5",
        "--max-chunk",
        "1.5",
        arg(&m.path),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let chunks = r.json["chunks"].as_array().unwrap();
    assert!(chunks.iter().any(|c| c["reason"] == "split"));
    for c in chunks {
        let d = c["duration_seconds"].as_f64().unwrap();
        assert!((0.5..=1.5).contains(&d), "{c}");
    }
    // Every true cut is still a chunk boundary.
    for cut in &m.truth.cuts {
        assert!(
            chunks.iter().any(|c| c["start_frame"] == *cut),
            "cut {cut} is not a boundary"
        );
    }
}

#[test]
fn chunk_rules_come_from_a_config_file_and_bad_ones_are_refused() {
    let m = fixtures::ensure(Fixture::TwoAudio).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("rungs.toml");
    std::fs::write(&good, "[chunks]\nmin_seconds = 3.0\nmax_seconds = 6.0\n").unwrap();
    let r = rungs(&["-q", "shots", "--config", arg(&good), arg(&m.path)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json["chunk_rules"]["min_seconds"], 3.0);
    for c in r.json["chunks"].as_array().unwrap() {
        let d = c["duration_seconds"].as_f64().unwrap();
        assert!((3.0..=6.0).contains(&d), "{c}");
    }
    // An unknown key, with its line.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[chunks]\nmin_seconds = 1.0\nmax_secs = 6.0\n").unwrap();
    let r = rungs(&["shots", "--config", arg(&bad), arg(&m.path)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("line 3") && r.stderr.contains("max_secs"),
        "{}",
        r.stderr
    );
    // A maximum below twice the minimum.
    let r = rungs(&[
        "shots",
        "--min-chunk",
        "2",
        "--max-chunk",
        "3",
        arg(&m.path),
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("invalid maximum chunk length 3"),
        "{}",
        r.stderr
    );
    // A nonsense detector setting.
    let r = rungs(&["shots", "--threshold", "5", arg(&m.path)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("threshold"), "{}", r.stderr);
}

#[test]
fn scores_are_available_on_request() {
    let m = fixtures::ensure(Fixture::TwoAudio).unwrap();
    let r = rungs(&["-q", "shots", "--scores", arg(&m.path)]);
    let scores = r.json["scores"].as_array().unwrap();
    assert_eq!(scores.len() as u64, m.truth.frames);
    let at = |f: u64| scores[f as usize]["score"].as_f64().unwrap();
    for &cut in &m.truth.cuts {
        assert!(at(cut) > 5.0 * at(cut - 5), "cut {cut} does not stand out");
    }
    let r = rungs(&["-q", "shots", arg(&m.path)]);
    assert!(r.json.get("scores").is_none());
}
