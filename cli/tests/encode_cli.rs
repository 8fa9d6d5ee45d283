//! `rungs encode` as a user drives it: a fixed ladder from a master, the report, a resumed run
//! after `kill -9` that gives the same bytes, and clear refusals.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{arg, rungs};
use fixtures::Fixture;

fn master(f: Fixture) -> PathBuf {
    fixtures::ensure(f).unwrap().path
}

/// ffprobe's decoded frame count and average frame rate of a file's video.
fn ffprobe(path: &Path) -> (u64, String) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args([
            "-show_entries",
            "stream=nb_read_frames,avg_frame_rate",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.trim().split(',');
    let rate = parts.next().unwrap_or_default().to_owned();
    let frames = parts.next().and_then(|f| f.parse().ok()).unwrap_or(0);
    (frames, rate)
}

/// `rungs encode MASTER -o OUT EXTRA...`.
fn encode(master: &Path, out: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec!["encode", arg(master), "-o", arg(out)];
    args.extend_from_slice(extra);
    rungs(&args)
}

#[test]
fn encodes_apples_ladder_capped_at_the_master_with_a_report() {
    let m = master(Fixture::MultiShot2997);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("title");
    let run = encode(
        &m,
        &out,
        &[
            "--ladder",
            "fixed",
            "--preset",
            "veryfast",
            "--log-format",
            "json",
            "-v",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report, run.json, "stdout and report.json agree");
    follow_the_job_in_the_log(&run.stderr, report["chunks"].as_u64().unwrap());
    let frames = report["frames"].as_u64().unwrap();
    assert_eq!(report["frame_rate"], "30000/1001");
    let rungs = report["rungs"].as_array().unwrap();
    let names: Vec<&str> = rungs.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["234p-145k", "360p-365k"],
        "Apple's ladder up to the master's 360p"
    );
    let audio = report["audio_duration_seconds"].as_f64().unwrap();
    for r in rungs {
        let file = PathBuf::from(r["file"].as_str().unwrap());
        let (n, rate) = ffprobe(&file);
        assert_eq!(n, frames, "{}", file.display());
        assert_eq!(rate, "30000/1001");
        assert_eq!(r["frames"].as_u64(), Some(frames));
        let video = r["duration_seconds"].as_f64().unwrap();
        assert!(
            (video - audio).abs() <= 1001.0 / 30000.0,
            "{video} s against audio {audio} s"
        );
        let v = &r["vmaf"];
        let (mean, harmonic, min) = (
            v["mean"].as_f64().unwrap(),
            v["harmonic_mean"].as_f64().unwrap(),
            v["min"].as_f64().unwrap(),
        );
        assert!(
            min <= harmonic && harmonic <= mean && mean <= 100.0 && mean > 20.0,
            "{v}"
        );
        assert!(r["average_kbps"].as_f64().unwrap() > 0.0);
        assert!(r["peak_kbps"].as_f64().unwrap() >= r["average_kbps"].as_f64().unwrap());
    }
    // The higher rung is the better one.
    assert!(rungs[1]["vmaf"]["mean"].as_f64() > rungs[0]["vmaf"]["mean"].as_f64());
}

/// A ladder of ten rungs is measured in two passes over the master (eight rungs, then two),
/// and every rung's VMAF in the report is what `rungs vmaf` gives for its file.
#[test]
fn a_large_ladder_is_measured_in_passes_with_the_scores_of_each_alone() {
    let m = master(Fixture::ProRes);
    let dir = tempfile::tempdir().unwrap();
    let ladder = dir.path().join("ladder.toml");
    let text: String = (0..10)
        .map(|k| {
            format!(
                "[[rung]]\nname = \"r{k}\"\nwidth = {}\nheight = {}\ncrf = {}\n\n",
                256 + 32 * k,
                144 + 18 * k,
                40 - 2 * k
            )
        })
        .collect();
    std::fs::write(&ladder, text).unwrap();
    let out = dir.path().join("title");
    let run = encode(
        &m,
        &out,
        &[
            "--rungs",
            arg(&ladder),
            "--preset",
            "ultrafast",
            "--no-package",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let store = out.join(".rungs").join("store");
    let passes = std::fs::read_dir(&store)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("measure-") && name.ends_with(".json")
        })
        .count();
    assert_eq!(passes, 2, "eight rungs per pass");
    let rungs_json = run.json["rungs"].as_array().unwrap();
    assert_eq!(rungs_json.len(), 10);
    for r in [&rungs_json[0], &rungs_json[9]] {
        let file = r["file"].as_str().unwrap();
        let alone = common::rungs(&["vmaf", arg(&m), file, "--features", "vmaf", "--per-frame"]);
        assert_eq!(alone.code, 0, "{}", alone.stderr);
        let theirs = alone.json["per_frame"].as_array().unwrap();
        let ours = r["per_frame_vmaf"].as_array().unwrap();
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(theirs) {
            let (a, b) = (a.as_f64().unwrap(), b["vmaf"].as_f64().unwrap());
            assert!((a - b).abs() <= 5e-5, "{file}: {a} vs {b}");
        }
        assert!(
            (r["vmaf"]["mean"].as_f64().unwrap()
                - alone.json["pooled"]["vmaf"]["mean"].as_f64().unwrap())
            .abs()
                < 1e-9,
            "{file}"
        );
    }
}

/// The JSON log of a local fixed-ladder job can be followed per job: every line logged in a
/// stage of the driver or in a task carries the job and the stage, the driver's stages log in
/// order, and every chunk's encode task says it is done.
fn follow_the_job_in_the_log(stderr: &str, chunks: u64) {
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let mut stages = Vec::new();
    let mut encoded = std::collections::BTreeSet::new();
    for l in &lines {
        let span = &l["span"];
        if !span.is_object() {
            continue;
        }
        assert_eq!(span["job"], "local", "{l}");
        let stage = span["stage"].as_str().unwrap_or_else(|| panic!("{l}"));
        match span["name"].as_str() {
            Some("stage") if stages.last() != Some(&stage) => stages.push(stage),
            Some("task") if stage == "encode" && l["fields"]["message"] == "task done" => {
                encoded.insert(span["chunk"].as_u64().unwrap_or_else(|| panic!("{l}")));
            }
            _ => {}
        }
    }
    assert_eq!(
        stages,
        ["encode", "assemble", "measure", "package", "report"],
        "the driver's stages in the log"
    );
    assert_eq!(encoded, (0..chunks).collect(), "every chunk's encode task");
}

/// Files of `dir` (not the work folder) and their bytes.
fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn chunk_files(out: &Path) -> usize {
    let root = out.join(".rungs/store/chunks");
    std::fs::read_dir(&root)
        .map(|chunks| {
            chunks
                .flatten()
                .filter(|f| {
                    // A write in progress is a temporary file, not a finished chunk.
                    let name = f.file_name().to_string_lossy().into_owned();
                    name.ends_with(".chunk") && !name.starts_with('.')
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_killed_run_resumes_and_gives_the_same_bytes() {
    let m = master(Fixture::MultiShot720p);
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    // Two small rungs keep the test quick; the master is 720p.
    let ladder = dir.path().join("ladder.toml");
    std::fs::write(
        &ladder,
        "[[rung]]\nname = \"low\"\nwidth = 416\nheight = 234\ncrf = 26\n\n\
         [[rung]]\nname = \"high\"\nwidth = 640\nheight = 360\ncrf = 24\nmaxrate_kbps = 900\n",
    )
    .unwrap();
    let args = |out: &Path| {
        vec![
            "encode".to_owned(),
            arg(&m).to_owned(),
            "-o".into(),
            arg(out).to_owned(),
            "--preset".into(),
            "medium".into(),
            "--rungs".into(),
            arg(&ladder).to_owned(),
            "--workers".into(),
            "1".into(),
            "--no-vmaf".into(),
            "-q".into(),
        ]
    };
    let a: Vec<String> = args(&whole);
    let run = rungs(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let total =
        run.json["chunks"].as_u64().unwrap() as usize * run.json["rungs"].as_array().unwrap().len();

    // Start again elsewhere and kill -9 once a few chunks are done.
    let resumed = dir.path().join("resumed");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rungs"))
        .args(args(&resumed))
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while chunk_files(&resumed) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no chunks appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done_before = chunk_files(&resumed);
    assert!(
        done_before < total,
        "killed mid-run ({done_before} of {total})"
    );
    assert!(
        outputs(&resumed).is_empty(),
        "no rendition presented before the run finished"
    );

    let mut b = args(&resumed);
    b.retain(|x| x != "-q");
    let run = rungs(&b.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reused = run.json["reused_chunk_encodes"].as_u64().unwrap() as usize;
    assert!(
        reused >= done_before.min(3) && reused < total,
        "reused {reused}, had {done_before}"
    );
    assert!(
        run.stderr.contains(&format!(
            "resuming: {reused} of {total} chunk encodes reused"
        )),
        "{}",
        run.stderr
    );
    let (x, y) = (outputs(&whole), outputs(&resumed));
    assert_eq!(x.len(), y.len());
    for ((na, a), (nb, b)) in x.iter().zip(&y) {
        assert_eq!(na, nb);
        assert!(a == b, "{na} differs after resuming");
    }
}

#[test]
fn rejected_masters_and_bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = fixtures::corpus().unwrap();
    let interlaced = &corpus
        .iter()
        .find(|b| b.path.ends_with("interlaced.mp4"))
        .unwrap()
        .path;
    let out = dir.path().join("o");
    let run = rungs(&["encode", arg(interlaced), "-o", arg(&out)]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("interlaced"), "{}", run.stderr);
    assert!(!out.join("report.json").exists());

    let m = master(Fixture::MultiShot);
    let ladder = dir.path().join("ladder.toml");
    std::fs::write(
        &ladder,
        "[[rung]]\nname = \"x\"\nwidth = 640\nheight = 360\ncrf = 99\n",
    )
    .unwrap();
    let run = rungs(&["encode", arg(&m), "-o", arg(&out), "--rungs", arg(&ladder)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("rung x: invalid crf 99"),
        "{}",
        run.stderr
    );
    let run = rungs(&["encode", arg(&m), "-o", arg(&out), "--preset", "warp"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("invalid preset \"warp\""),
        "{}",
        run.stderr
    );
    let run = rungs(&["encode", arg(&m), "--codec", "mpeg2"]);
    assert_eq!(run.code, 2);
}

#[test]
fn fleet_commands_refuse_bad_input_before_reaching_the_network() {
    let m = master(Fixture::MultiShot);
    let fleet = ["--queue", "q", "--store", "s3://bucket/prefix"];
    let key = "0123456789abcdef0123456789abcdef:00112233445566778899aabbccddeeff";
    let cases: [(Vec<&str>, i32, &str); 6] = [
        (
            vec!["submit", arg(&m), "--drm", "raw", "--key", key],
            2,
            "--drm is not available for fleet jobs",
        ),
        (vec!["status", "../../etc"], 2, "job \"../../etc\""),
        (vec!["status", "Job"], 2, "lowercase"),
        (
            vec!["submit", "/no/such/master.mov"],
            4,
            "not a readable file",
        ),
        (
            vec!["submit", arg(&m), "--segment", "0.1"],
            2,
            "segment duration",
        ),
        (vec!["worker", "--visibility", "0"], 2, "--visibility 0"),
    ];
    for (args, code, says) in cases {
        let all: Vec<&str> = args.iter().chain(fleet.iter()).copied().collect();
        let run = rungs(&all);
        assert_eq!(run.code, code, "{all:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{all:?}: {}", run.stderr);
    }
}

#[test]
fn a_folder_packaged_again_with_other_keys_holds_the_new_packaging() {
    // Clear, then under one key, then under another, then clear again: the renditions are
    // encoded once, and the title in the folder is always the last run's.
    let m = master(Fixture::MultiShot);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let kid = "0123456789abcdef0123456789abcdef";
    let one = format!("{kid}:00112233445566778899aabbccddeeff");
    let two = format!("{kid}:ffeeddccbbaa99887766554433221100");
    let base = ["--ladder", "fixed", "--no-vmaf", "--thumbnails", "0", "-q"];
    let lowest = || {
        let mut rungs: Vec<PathBuf> = std::fs::read_dir(out.join("video"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        rungs.sort();
        rungs[0].clone()
    };
    let mut seen = Vec::new();
    for keys in [None, Some(&one), Some(&two), None, Some(&one)] {
        let mut extra: Vec<&str> = base.to_vec();
        if let Some(k) = keys {
            extra.extend(["--drm", "raw", "--key", k]);
        }
        let run = encode(&m, &out, &extra);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let boxes = std::fs::read(lowest().join("init.mp4")).unwrap();
        let encrypted = boxes.windows(4).any(|w| w == b"encv");
        assert_eq!(encrypted, keys.is_some(), "{keys:?}");
        seen.push(std::fs::read(lowest().join("00001.m4s")).unwrap());
    }
    // Clear twice alike, the same key twice alike, two keys different.
    assert_eq!(seen[0], seen[3]);
    assert_eq!(seen[1], seen[4]);
    assert_ne!(seen[1], seen[2]);
    assert_ne!(seen[0], seen[1]);
}

/// Writes `text` to `dir/name`; the path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The RFC 6381 codecs string of a video init segment, read from its `avcC` or `av1C` box by
/// this test (not by the packager's code): `avc1.PPCCLL`, or `av01.P.LLT.DD`.
fn codecs_of_init(init: &[u8]) -> String {
    let body = |fourcc: &[u8]| {
        init.windows(4)
            .position(|w| w == fourcc)
            .map(|i| &init[i + 4..])
    };
    if let Some(c) = body(b"avcC") {
        return format!("avc1.{:02X}{:02X}{:02X}", c[1], c[2], c[3]);
    }
    let c = body(b"av1C").expect("an avcC or av1C box");
    let (profile, level) = (c[1] >> 5, c[1] & 0x1f);
    let tier = if c[2] & 0x80 != 0 { 'H' } else { 'M' };
    let depth = match (c[2] & 0x40 != 0, c[2] & 0x20 != 0) {
        (true, true) => 12,
        (true, false) => 10,
        _ => 8,
    };
    format!("av01.{profile}.{level:02}{tier}.{depth:02}")
}

/// The chunk files of a job and their modification times.
fn chunk_times(out: &Path) -> Vec<(String, std::time::SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(out.join(".rungs/store/chunks"))
        .unwrap()
        .flatten()
        .map(|e| {
            let t = e.metadata().unwrap().modified().unwrap();
            (e.file_name().to_string_lossy().into_owned(), t)
        })
        .collect();
    v.sort();
    v
}

/// `--codec h264,av1` with per-title ladders: a ladder per codec (AV1's limited by the rules to
/// its taller rungs), the BD-rate of AV1 against H.264, one DASH period with an adaptation set
/// per codec, one HLS master whose every CODECS is its init segment's, segments cut at the same
/// times in every rendition, and a second run that encodes nothing again.
#[test]
fn a_multi_codec_title_has_a_ladder_per_codec_and_one_set_of_segments() {
    let m = master(Fixture::MultiShot);
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        dir.path(),
        "rules.toml",
        "rungs = 4\nmin_kbps = 150\ntop_vmaf = 93\n[codec.av1]\nrungs = \">= 290\"\n",
    );
    let out = dir.path().join("title");
    let args = [
        "--codec",
        "h264,av1",
        "--ladder",
        "per-title",
        "--rules",
        arg(&rules),
        // Probes at the final presets: no anchors, a shorter test.
        "--preset",
        "h264=veryfast,av1=12",
        "--probe-preset",
        "h264=veryfast,av1=12",
        "-q",
    ];
    let run = |args: &[&str]| {
        let mut all = vec!["encode", arg(&m), "-o", arg(&out)];
        all.extend_from_slice(args);
        let (code, stdout, stderr) = common::rungs_text(&all, Duration::from_secs(900));
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let r = &run(&args);
    let codecs = r["codecs"].as_array().expect("codecs");
    let names: Vec<&str> = codecs
        .iter()
        .map(|c| c["codec"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["h264", "av1"]);
    assert!(r.get("ladder").is_none(), "the ladders are per codec");
    let rungs_of = |codec: &str| -> Vec<&serde_json::Value> {
        r["rungs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["codec"] == codec)
            .collect()
    };
    let total = r["rungs"].as_array().unwrap().len();
    for (c, codec) in codecs.iter().zip(["h264", "av1"]) {
        let own = rungs_of(codec);
        assert!(!own.is_empty() && own.len() <= 4, "{codec}: {own:?}");
        assert_eq!(c["rungs"].as_array().unwrap().len(), own.len());
        assert_eq!(c["ladder"]["mode"], "per-title");
        for x in &own {
            let name = x["name"].as_str().unwrap();
            assert!(name.ends_with(&format!("-{codec}")), "{name}");
            assert!(out.join(format!("{name}.mp4")).is_file(), "{name}");
        }
    }
    assert_eq!(rungs_of("h264").len() + rungs_of("av1").len(), total);
    for x in rungs_of("av1") {
        let short = x["width"]
            .as_u64()
            .unwrap()
            .min(x["height"].as_u64().unwrap());
        assert!(short >= 290, "{x}");
    }
    assert!(codecs[0].get("against_h264").is_none());
    let vs = &codecs[1]["against_h264"];
    assert!(vs["bd_rate_percent"].is_number(), "{vs}");
    assert!(vs["quality_range"][0].as_f64().unwrap() < vs["quality_range"][1].as_f64().unwrap());

    // DASH: one period, an adaptation set per codec with that codec's rungs.
    let mpd = dash_mpd::parse(&std::fs::read_to_string(out.join("manifest.mpd")).unwrap())
        .expect("dash-mpd parses the MPD");
    assert_eq!(mpd.periods.len(), 1);
    let video: Vec<&dash_mpd::AdaptationSet> = mpd.periods[0]
        .adaptations
        .iter()
        .filter(|a| a.contentType.as_deref() == Some("video"))
        .collect();
    assert_eq!(video.len(), 2);
    for (set, (family, codec)) in video.iter().zip([("avc1", "h264"), ("av01", "av1")]) {
        assert_eq!(set.representations.len(), rungs_of(codec).len());
        for rep in &set.representations {
            let c = rep.codecs.as_deref().or(set.codecs.as_deref()).unwrap();
            assert!(c.starts_with(family), "{c}");
        }
    }

    // HLS: every variant, H.264 first, each CODECS its init segment's.
    let text = std::fs::read(out.join("master.m3u8")).unwrap();
    let m3u8_rs::Playlist::MasterPlaylist(master) = m3u8_rs::parse_playlist_res(&text).unwrap()
    else {
        panic!("a master playlist")
    };
    let variants: Vec<&m3u8_rs::VariantStream> =
        master.variants.iter().filter(|v| !v.is_i_frame).collect();
    assert_eq!(variants.len(), total);
    assert!(variants[0].codecs.as_deref().unwrap().starts_with("avc1"));
    let mut timelines = Vec::new();
    for v in &variants {
        let folder = out.join(&v.uri).parent().unwrap().to_owned();
        let from_init = codecs_of_init(&std::fs::read(folder.join("init.mp4")).unwrap());
        let video_codecs = v.codecs.as_deref().unwrap().split(',').next().unwrap();
        assert!(
            video_codecs.starts_with(&from_init),
            "{}: CODECS {video_codecs}, init {from_init}",
            v.uri
        );
        let media = std::fs::read(out.join(&v.uri)).unwrap();
        let m3u8_rs::Playlist::MediaPlaylist(media) = m3u8_rs::parse_playlist_res(&media).unwrap()
        else {
            panic!("{} is a media playlist", v.uri)
        };
        let durations: Vec<String> = media
            .segments
            .iter()
            .map(|s| format!("{:.3}", s.duration))
            .collect();
        timelines.push(durations);
    }
    assert!(timelines.len() >= 2 && timelines[0].len() >= 2);
    assert!(
        timelines.windows(2).all(|w| w[0] == w[1]),
        "every rendition's segments start at the same times: {timelines:?}"
    );

    // A second run finds every chunk done and encodes nothing.
    let before = chunk_times(&out);
    let again = run(&args);
    assert_eq!(chunk_times(&out), before);
    assert_eq!(again["rungs"], r["rungs"]);
}

#[test]
fn multi_codec_settings_that_cannot_work_are_refused_before_encoding() {
    let m = master(Fixture::MultiShot);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let file = |name: &str, text: &str| write(dir.path(), name, text);
    let ladder = file(
        "l.toml",
        "[[rung]]\nname = \"x\"\nwidth = 640\nheight = 360\n",
    );
    let unknown = file("u.toml", "[codec.av2]\nrungs = \">= 720\"\n");
    let tall = file("t.toml", "[codec.av1]\nrungs = \">= 2160\"\n");
    let one = file("o.toml", "codec = \"h264\"\n");
    let key = "0123456789abcdef0123456789abcdef:00112233445566778899aabbccddeeff";
    let cases: [(Vec<&str>, &str); 8] = [
        (vec!["--codec", "h264,h264"], "h264 is given twice"),
        (vec!["--codec", "av1,av1-rav1e"], "make the same format"),
        (
            vec!["--codec", "h264,av1", "--rungs", arg(&ladder)],
            "--rungs gives one codec",
        ),
        (
            vec!["--codec", "h264,vp9", "--drm", "raw", "--key", key],
            "rungs encrypts H.264, HEVC and AV1",
        ),
        (
            vec![
                "--codec",
                "h264,av1",
                "--ladder",
                "per-title",
                "--rules",
                arg(&unknown),
            ],
            "[codec.av2]: unknown codec",
        ),
        (
            vec![
                "--codec",
                "h264,av1",
                "--ladder",
                "per-title",
                "--rules",
                arg(&tall),
            ],
            "codec av1: the ladder rules' rung heights (>= 2160) leave no resolution",
        ),
        (
            vec![
                "--codec",
                "h264,av1",
                "--ladder",
                "per-title",
                "--rules",
                arg(&one),
            ],
            "give each codec's rules as [codec.NAME]",
        ),
        (
            vec!["--codec", "h264,av1", "--preset", "av1=slow"],
            "codec av1",
        ),
    ];
    for (extra, says) in cases {
        let run = encode(&m, &out, &extra);
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{extra:?}: {}", run.stderr);
        // Only the master's own size is checked after reading it; nothing was encoded.
        assert!(
            !out.join(".rungs/store/chunks").exists() && !out.join(".rungs/store/probes").exists(),
            "{extra:?} encoded"
        );
    }
}

/// `--subs FILE:LANG:forced|sdh` and `--audio FILE:LANG:description` reach both manifests as
/// the independent parsers read them; a role of the wrong kind of track is refused.
#[test]
fn accessibility_roles_reach_both_manifests() {
    let f = fixtures::ensure(Fixture::TwoAudio).unwrap();
    let srt = f.path.with_file_name("two-audio.eng.srt");
    let dir = tempfile::tempdir().unwrap();
    let ladder = write(
        dir.path(),
        "l.toml",
        "[[rung]]\nname = \"low\"\nwidth = 416\nheight = 234\ncrf = 32\n",
    );
    let out = dir.path().join("t");
    let forced = format!("{}:en:forced", srt.display());
    let sdh = format!("{}:en:sdh", srt.display());
    let described = format!("{}:en:description", f.path.display());
    let run = encode(
        &f.path,
        &out,
        &[
            "--rungs",
            arg(&ladder),
            "--preset",
            "ultrafast",
            "--no-vmaf",
            "--thumbnails",
            "0",
            "--subs",
            &forced,
            "--subs",
            &sdh,
            "--audio",
            &described,
            "-q",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read(out.join("master.m3u8")).unwrap();
    let m3u8_rs::Playlist::MasterPlaylist(m) = m3u8_rs::parse_playlist_res(&text).unwrap() else {
        panic!("a master playlist")
    };
    let subs: Vec<(bool, Option<String>)> = m
        .alternatives
        .iter()
        .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Subtitles)
        .map(|a| (a.forced, a.characteristics.clone()))
        .collect();
    assert_eq!(subs.len(), 2, "{subs:?}");
    assert!(subs[0].0 && subs[0].1.is_none(), "{subs:?}");
    assert!(
        !subs[1].0
            && subs[1]
                .1
                .as_deref()
                .unwrap()
                .contains("transcribes-spoken-dialog")
    );
    let audio: Vec<Option<String>> = m
        .alternatives
        .iter()
        .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio)
        .map(|a| a.characteristics.clone())
        .collect();
    assert_eq!(audio.len(), 3, "two of the master and the description");
    assert_eq!(
        audio[2].as_deref(),
        Some("public.accessibility.describes-video")
    );
    let mpd = dash_mpd::parse(&std::fs::read_to_string(out.join("manifest.mpd")).unwrap()).unwrap();
    let roles: Vec<String> = mpd.periods[0]
        .adaptations
        .iter()
        .flat_map(|a| a.Role.iter().filter_map(|r| r.value.clone()))
        .collect();
    for want in ["forced-subtitle", "caption", "description"] {
        assert!(roles.iter().any(|r| r == want), "{want}: {roles:?}");
    }
    // A role of the other kind of track.
    let wrong = format!("{}:en:description", srt.display());
    let run = encode(&f.path, &out, &["--subs", &wrong, "--rungs", arg(&ladder)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("description is not a role of subtitle tracks"),
        "{}",
        run.stderr
    );
}
