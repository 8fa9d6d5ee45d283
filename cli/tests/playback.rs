//! The packaged title as players see it: `rungs encode` on a master with two audio languages
//! and an SRT file, then the HLS and DASH manifests parsed back by independent parsers
//! (m3u8-rs, dash-mpd), read by ffprobe, and played in Shaka Player, hls.js and dash.js in
//! headless Chromium (tools/players, installed by scripts/setup).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{arg, rungs};
use fixtures::Fixture;
use serde_json::Value;

/// A two-rung ladder, fast to encode.
const RUNGS: &str = "[[rung]]\nname = \"low\"\nwidth = 416\nheight = 234\ncrf = 32\n\n\
[[rung]]\nname = \"high\"\nwidth = 640\nheight = 360\ncrf = 26\n";

/// The SRT cue shown from 3.0 to 5.25 s.
const CUE_TIME: f64 = 4.0;
const CUE_TEXT: &str = "mandelbrot";

fn tools() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/players")
}

/// Encodes and packages the two-audio master with `codec`; returns the title folder.
fn title(codec: &str, extra: &[&str], dir: &Path) -> PathBuf {
    let f = fixtures::ensure(Fixture::TwoAudio).unwrap();
    let srt = f.path.with_file_name("two-audio.eng.srt");
    let ladder = dir.join("rungs.toml");
    std::fs::write(&ladder, RUNGS).unwrap();
    let out = dir.join(codec);
    let subs = format!("{}:en", srt.display());
    let mut args = vec![
        "encode",
        arg(&f.path),
        "-o",
        arg(&out),
        "--rungs",
        arg(&ladder),
        "--codec",
        codec,
        "--segment",
        "2",
        "--subs",
        &subs,
        "--no-vmaf",
        "-q",
    ];
    args.extend_from_slice(extra);
    let run = rungs(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json["package"]["hls"], "master.m3u8");
    out
}

/// Runs one player on the title, with extra harness arguments (`--keys` for a ClearKey
/// licence server, `--timeout`).
fn play_with(
    root: &Path,
    manifest: &str,
    player: &str,
    boundaries: &[f64],
    extra: &[&str],
) -> Value {
    let b: Vec<String> = boundaries.iter().map(|x| format!("{x}")).collect();
    let out = Command::new("node")
        .arg(tools().join("play.mjs"))
        .args(extra)
        .args([
            "--root",
            arg(root),
            "--manifest",
            manifest,
            "--player",
            player,
        ])
        .args(["--boundaries", &b.join(",")])
        .args(["--cue-time", &CUE_TIME.to_string(), "--text-lang", "en"])
        .output()
        .expect("node runs (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "{player} on {manifest}: the harness failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{player}: bad JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Segment boundaries in seconds, from the first video media playlist.
fn boundaries(root: &Path) -> Vec<f64> {
    let text = std::fs::read(root.join("video/low/index.m3u8")).unwrap();
    let media = match m3u8_rs::parse_playlist_res(&text).unwrap() {
        m3u8_rs::Playlist::MediaPlaylist(m) => m,
        m3u8_rs::Playlist::MasterPlaylist(_) => panic!("a media playlist"),
    };
    let mut t = 0.0;
    media
        .segments
        .iter()
        .map(|s| {
            t += f64::from(s.duration);
            t
        })
        .collect()
}

/// Every check the issue lists, for one player and manifest.
fn check_player(root: &Path, manifest: &str, player: &str) {
    check_player_with(root, manifest, player, &[]);
}

/// [`check_player`] with extra harness arguments.
fn check_player_with(root: &Path, manifest: &str, player: &str, extra: &[&str]) {
    let bounds = boundaries(root);
    let r = play_with(root, manifest, player, &bounds, extra);
    let ctx = format!("{player} on {manifest}: {r:#}");
    assert_eq!(r["errors"], serde_json::json!([]), "{ctx}");
    assert_eq!(r["started"], true, "{ctx}");
    assert!(r["boundariesCrossed"].as_u64().unwrap_or(0) >= 3, "{ctx}");
    let switched = r["switched"].as_array().unwrap();
    assert_eq!(switched.len(), 2, "both rungs listed: {ctx}");
    assert!(switched.iter().all(|s| s["ok"] == true), "{ctx}");
    // Both rungs' segments were fetched.
    let requests: Vec<&str> = r["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for rung in ["low", "high"] {
        assert!(
            requests
                .iter()
                .any(|q| q.starts_with(&format!("video/{rung}/")) && q.ends_with(".m4s")),
            "{rung} never fetched: {ctx}"
        );
    }
    let mut langs: Vec<&str> = r["audioLanguages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    langs.sort_unstable();
    langs.dedup();
    assert_eq!(langs, ["en", "fr"], "{ctx}");
    let cues: Vec<&str> = r["cueTexts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(cues.iter().any(|c| c.contains(CUE_TEXT)), "{ctx}");
    assert_eq!(r["ended"], true, "{ctx}");
    // Shaka reads the DASH thumbnail tiles: the first tile of the first sheet.
    if player == "shaka" && manifest.ends_with(".mpd") {
        let t = &r["thumbnail"];
        assert!(
            t["uris"][0]
                .as_str()
                .is_some_and(|u| u.ends_with("/thumbs/00001.jpg")),
            "{ctx}"
        );
        assert_eq!(
            (t["x"].as_u64(), t["y"].as_u64()),
            (Some(0), Some(0)),
            "{ctx}"
        );
        assert_eq!(t["width"].as_u64(), Some(240), "{ctx}");
    }
}

/// The codecs string of each rendition agrees with what ffprobe reads from its first segment
/// (profile and level), written the RFC 6381 way for the codec.
fn check_codecs(root: &Path, video_codec: &str) {
    let mpd = std::fs::read_to_string(root.join("manifest.mpd")).unwrap();
    for rung in ["low", "high"] {
        let dir = root.join("video").join(rung);
        let mut bytes = std::fs::read(dir.join("init.mp4")).unwrap();
        bytes.extend(std::fs::read(dir.join("00001.m4s")).unwrap());
        let joined = dir.join("probe.mp4");
        std::fs::write(&joined, bytes).unwrap();
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=profile,level", "-of", "json"])
            .arg(&joined)
            .output()
            .unwrap();
        std::fs::remove_file(&joined).unwrap();
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        let profile = j["streams"][0]["profile"].as_str().unwrap_or("").to_owned();
        let level = j["streams"][0]["level"].as_i64().unwrap_or(-1);
        let want = match video_codec {
            "avc1." => {
                let idc = match profile.as_str() {
                    "High" => 0x64,
                    "Main" => 0x4D,
                    "Baseline" | "Constrained Baseline" => 0x42,
                    other => panic!("unexpected H.264 profile {other}"),
                };
                format!("avc1.{idc:02X}")
            }
            "hvc1." => {
                let idc = match profile.as_str() {
                    "Main" => 1,
                    "Main 10" => 2,
                    other => panic!("unexpected HEVC profile {other}"),
                };
                format!("hvc1.{idc}.")
            }
            _ => {
                assert_eq!(profile, "Main");
                format!("av01.0.{level:02}M.08")
            }
        };
        let re = format!("id=\"{rung}\" bandwidth=");
        let line = mpd.lines().find(|l| l.contains(&re)).unwrap();
        let codecs = line
            .split("codecs=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(
            codecs.starts_with(&want),
            "{rung}: {codecs} against ffprobe {profile} {level}"
        );
        match video_codec {
            "avc1." => assert!(
                codecs.ends_with(&format!("{level:02X}")),
                "{codecs} level {level}"
            ),
            "hvc1." => assert!(
                codecs.contains(&format!(".L{level}")),
                "{codecs} level {level}"
            ),
            _ => {}
        }
    }
}

fn check_parsers(root: &Path, video_codec: &str) {
    check_codecs(root, video_codec);
    // HLS, with m3u8-rs.
    let text = std::fs::read(root.join("master.m3u8")).unwrap();
    let master = match m3u8_rs::parse_playlist_res(&text).unwrap() {
        m3u8_rs::Playlist::MasterPlaylist(m) => m,
        m3u8_rs::Playlist::MediaPlaylist(_) => panic!("a master playlist"),
    };
    assert_eq!(master.variants.iter().filter(|v| !v.is_i_frame).count(), 2);
    assert_eq!(master.variants.iter().filter(|v| v.is_i_frame).count(), 2);
    for v in &master.variants {
        let codecs = v.codecs.as_deref().unwrap_or("");
        assert!(codecs.starts_with(video_codec), "{codecs}");
        let media = std::fs::read(root.join(&v.uri)).unwrap();
        let m3u8_rs::Playlist::MediaPlaylist(m) = m3u8_rs::parse_playlist_res(&media).unwrap()
        else {
            panic!("{} is a media playlist", v.uri)
        };
        assert!(m.end_list && m.segments.len() >= 5, "{}", v.uri);
        let folder = root.join(&v.uri).parent().unwrap().to_owned();
        for s in &m.segments {
            assert!(folder.join(&s.uri).is_file(), "{}", s.uri);
        }
    }
    let alt: Vec<(String, Option<String>)> = master
        .alternatives
        .iter()
        .map(|a| (a.media_type.to_string(), a.language.clone()))
        .collect();
    assert_eq!(
        alt,
        [
            ("AUDIO".to_owned(), Some("en".to_owned())),
            ("AUDIO".to_owned(), Some("fr".to_owned())),
            ("SUBTITLES".to_owned(), Some("en".to_owned()))
        ]
    );
    // DASH, with dash-mpd.
    let mpd =
        dash_mpd::parse(&std::fs::read_to_string(root.join("manifest.mpd")).unwrap()).unwrap();
    let sets = &mpd.periods[0].adaptations;
    let kinds: Vec<String> = sets
        .iter()
        .map(|a| a.contentType.clone().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["video", "audio", "audio", "text", "image"]);
    let video = &sets[0];
    assert_eq!(video.representations.len(), 2);
    for r in &video.representations {
        assert!(r.codecs.as_deref().unwrap_or("").starts_with(video_codec));
    }
    // ffprobe reads both manifests and finds the renditions (its DASH reader refuses a `.vtt`
    // sidecar unless told to allow every extension).
    for manifest in ["master.m3u8", "manifest.mpd"] {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-protocol_whitelist", "file,crypto,data"])
            .args(["-allowed_extensions", "ALL"])
            .args([
                "-show_entries",
                "stream=codec_type,width,height",
                "-of",
                "json",
            ])
            .arg(root.join(manifest))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ffprobe {manifest}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        let streams = j["streams"].as_array().unwrap();
        let heights: Vec<u64> = streams
            .iter()
            .filter(|s| s["codec_type"] == "video")
            .filter_map(|s| s["height"].as_u64())
            .collect();
        assert!(
            heights.contains(&234) && heights.contains(&360),
            "{manifest}: {j}"
        );
        assert!(
            streams
                .iter()
                .filter(|s| s["codec_type"] == "audio")
                .count()
                >= 2,
            "{manifest}: {j}"
        );
        if manifest.ends_with(".mpd") {
            assert!(
                streams.iter().any(|s| s["codec_type"] == "subtitle"),
                "{manifest}: {j}"
            );
        }
    }
}

/// Encodes with `codec`, checks the manifests, and plays them in Shaka (DASH and HLS), hls.js
/// and dash.js.
fn plays_everywhere(codec: &str, preset: &str, codecs_prefix: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = title(codec, &["--preset", preset], dir.path());
    check_parsers(&root, codecs_prefix);
    for (manifest, player) in [
        ("manifest.mpd", "shaka"),
        ("master.m3u8", "shaka"),
        ("master.m3u8", "hlsjs"),
        ("manifest.mpd", "dashjs"),
    ] {
        check_player(&root, manifest, player);
    }
}

#[test]
fn h264_title_plays_in_every_player() {
    plays_everywhere("h264", "veryfast", "avc1.");
}

#[test]
fn av1_title_plays_in_every_player() {
    plays_everywhere("av1", "12", "av01.");
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The test keys: one key ID and its key, and a wrong key for the same ID.
const KID: &str = "0123456789abcdef0123456789abcdef";
const KEY: &str = "00112233445566778899aabbccddeeff";
const WRONG_KEY: &str = "ffeeddccbbaa99887766554433221100";

/// An encrypted title (its first `clear_lead` seconds clear) plays to the end in every player
/// through a ClearKey licence server (the harness's, asked for exactly the title's key ID),
/// switching rungs; with a wrong key it does not play.
fn plays_encrypted(
    (codec, preset, prefix): (&str, &str, &str),
    scheme: &str,
    clear_lead: u64,
    players: &[(&str, &str)],
    wrong: (&str, &str),
) {
    let dir = tempfile::tempdir().unwrap();
    let key = format!("{KID}:{KEY}");
    let lead = clear_lead.to_string();
    let root = title(
        codec,
        &[
            "--preset",
            preset,
            "--drm",
            "raw",
            "--key",
            &key,
            "--scheme",
            scheme,
            "--clear-lead",
            &lead,
        ],
        dir.path(),
    );
    check_parsers(&root, prefix);
    // The key is in no file of the title, the report included.
    for f in walk(&root) {
        let bytes = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        assert!(!text.contains(KEY), "{} holds the key", f.display());
    }
    let mpd = std::fs::read_to_string(root.join("manifest.mpd")).unwrap();
    assert!(
        mpd.contains(&format!("value=\"{scheme}\" cenc:default_KID=")),
        "{mpd}"
    );
    // The report says how each track is encrypted, by key ID.
    let report: Value =
        serde_json::from_slice(&std::fs::read(root.join("report.json")).unwrap()).unwrap();
    for kind in ["video", "audio"] {
        for t in report["package"][kind].as_array().unwrap() {
            assert_eq!(t["encryption"]["scheme"], scheme, "{t}");
            assert_eq!(
                t["encryption"]["kid"], "01234567-89ab-cdef-0123-456789abcdef",
                "{t}"
            );
            // 2-second segments: a lead of N seconds leaves N / 2 of them clear.
            assert_eq!(t["encryption"]["clear_segments"], clear_lead / 2, "{t}");
        }
    }
    let keys = format!("{KID}:{KEY}");
    for (manifest, player) in players {
        check_player_with(&root, manifest, player, &["--keys", &keys]);
    }
    let bad = format!("{KID}:{WRONG_KEY}");
    let (manifest, player) = wrong;
    let r = play_with(
        &root,
        manifest,
        player,
        &boundaries(&root),
        &["--keys", &bad, "--timeout", "30"],
    );
    let errors = r["errors"].to_string();
    assert!(
        errors.contains("DECODE") && r["ended"] != true,
        "{player} on {manifest} played with a wrong key: {r:#}"
    );
    // The licence server was asked for the title's key ID.
    let kid_b64 = "ASNFZ4mrze8BI0VniavN7w";
    assert!(r["licenses"].to_string().contains(kid_b64), "{r:#}");
}

#[test]
fn cbcs_title_plays_with_clearkey_in_every_player() {
    plays_encrypted(
        ("h264", "veryfast", "avc1."),
        "cbcs",
        0,
        &[
            ("manifest.mpd", "shaka"),
            ("manifest.mpd", "dashjs"),
            ("master.m3u8", "hlsjs"),
        ],
        ("master.m3u8", "hlsjs"),
    );
}

#[test]
fn cenc_title_with_a_clear_lead_plays_with_clearkey_in_the_dash_players() {
    plays_encrypted(
        ("h264", "veryfast", "avc1."),
        "cenc",
        2,
        &[("manifest.mpd", "shaka"), ("manifest.mpd", "dashjs")],
        ("manifest.mpd", "shaka"),
    );
}

#[test]
fn av1_cbcs_title_plays_with_clearkey() {
    plays_encrypted(
        ("av1", "12", "av01."),
        "cbcs",
        0,
        &[("manifest.mpd", "shaka"), ("master.m3u8", "hlsjs")],
        ("manifest.mpd", "shaka"),
    );
}

/// The video renditions whose segments a player fetched.
fn fetched_renditions(r: &Value) -> Vec<String> {
    let mut out: Vec<String> = r["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|q| q.starts_with("video/") && q.ends_with(".m4s"))
        .filter_map(|q| q.split('/').nth(1).map(str::to_owned))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A title of H.264 and AV1 (Apple's ladder for each) plays in Shaka, DASH and HLS: Shaka
/// keeps one codec of the two and switches among its rungs; told through its configuration to
/// prefer H.264 (AV1 disabled), it plays the H.264 variants only.
#[test]
fn an_h264_and_av1_title_plays_in_shaka_and_plays_h264_only_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures::ensure(Fixture::TwoAudio).unwrap();
    let srt = f.path.with_file_name("two-audio.eng.srt");
    let root = dir.path().join("title");
    let subs = format!("{}:en", srt.display());
    let run = rungs(&[
        "encode",
        arg(&f.path),
        "-o",
        arg(&root),
        "--codec",
        "h264,av1",
        "--ladder",
        "fixed",
        "--preset",
        "h264=veryfast,av1=12",
        "--segment",
        "2",
        "--subs",
        &subs,
        "--no-vmaf",
        "-q",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names: Vec<&str> = run.json["rungs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(names.iter().any(|n| n.ends_with("-h264")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("-av1")), "{names:?}");
    let bounds = {
        let first = names.iter().find(|n| n.ends_with("-h264")).unwrap();
        let text = std::fs::read(root.join(format!("video/{first}/index.m3u8"))).unwrap();
        let m3u8_rs::Playlist::MediaPlaylist(media) = m3u8_rs::parse_playlist_res(&text).unwrap()
        else {
            panic!("a media playlist")
        };
        let mut t = 0.0;
        media
            .segments
            .iter()
            .map(|s| {
                t += f64::from(s.duration);
                t
            })
            .collect::<Vec<f64>>()
    };
    // Shaka's own choice between the codecs depends on what the browser reports of its
    // decoders at the moment; told which codec to prefer, it keeps that codec's variants only.
    let h264_only = r#"{"preferredVideoCodecs":["avc1"]}"#;
    let av1_first = r#"{"preferredVideoCodecs":["av01"]}"#;
    for manifest in ["manifest.mpd", "master.m3u8"] {
        for config in [None, Some(h264_only), Some(av1_first)] {
            let extra: Vec<&str> = config
                .map(|c| vec!["--shaka-config", c])
                .unwrap_or_default();
            let r = play_with(&root, manifest, "shaka", &bounds, &extra);
            let ctx = format!("shaka on {manifest} with {config:?}: {r:#}");
            assert_eq!(r["errors"], serde_json::json!([]), "{ctx}");
            assert_eq!(r["started"], true, "{ctx}");
            assert_eq!(r["ended"], true, "{ctx}");
            assert!(r["boundariesCrossed"].as_u64().unwrap_or(0) >= 3, "{ctx}");
            let families: Vec<String> = r["variants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["codec"].as_str().unwrap_or("").chars().take(4).collect())
                .collect();
            // Every variant offered was switched to (AV1 has one rung on this 360p master:
            // Apple's HEVC/AV1 table starts at 360p).
            let switched = r["switched"].as_array().unwrap();
            assert!(
                !switched.is_empty() && switched.len() == families.len(),
                "{ctx}"
            );
            assert!(switched.iter().all(|s| s["ok"] == true), "{ctx}");
            let fetched = fetched_renditions(&r);
            assert!(!fetched.is_empty(), "{ctx}");
            let (family, suffix) = match config {
                Some(c) if c == h264_only => ("avc1", "-h264"),
                Some(_) => ("av01", "-av1"),
                None => ("", ""),
            };
            if family.is_empty() {
                // Its own choice: renditions of the title, of either codec.
                assert!(
                    fetched
                        .iter()
                        .all(|n| n.ends_with("-h264") || n.ends_with("-av1")),
                    "{fetched:?}: {ctx}"
                );
            } else {
                // The other codec disabled: its variants gone, none of its segments fetched.
                assert!(families.iter().all(|c| c == family), "{families:?}: {ctx}");
                assert!(
                    fetched.iter().all(|n| n.ends_with(suffix)),
                    "{fetched:?}: {ctx}"
                );
            }
        }
    }
}

#[test]
fn keys_from_a_speke_server_package_a_title_that_its_cpix_packages_again() {
    use fixtures::keyserver::{Behaviour, KeyServer};
    let server = KeyServer::start(Behaviour::Good).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cpix = dir.path().join("keys.cpix.xml");
    let url = server.url();
    for d in ["speke", "cpix"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    let first = title(
        "h264",
        &[
            "--preset",
            "veryfast",
            "--drm",
            "speke",
            "--speke-url",
            &url,
            "--content-id",
            "two-audio-title",
            "--cpix-out",
            arg(&cpix),
        ],
        &dir.path().join("speke"),
    );
    // One SPEKE v2 request for the content, a key ID for each of audio, SD, HD and UHD.
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].version.as_deref(), Some("2.0"));
    assert_eq!(seen[0].content_id, "two-audio-title");
    assert_eq!(seen[0].kids.len(), 4, "{seen:?}");
    // The server's Widevine pssh is the one the MPD carries.
    let mpd = std::fs::read_to_string(first.join("manifest.mpd")).unwrap();
    let given = seen[0].kids.iter().any(|k| {
        let b64 = packager::drm::base64(&fixtures::keyserver::pssh_of(k));
        mpd.contains(&format!("<cenc:pssh>{b64}</cenc:pssh>"))
    });
    assert!(given, "{mpd}");
    // The CPIX written beside is its owner's only, and packages the very same title.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cpix).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let second = title(
        "h264",
        &[
            "--preset",
            "veryfast",
            "--drm",
            "cpix",
            "--cpix",
            arg(&cpix),
            "--content-id",
            "two-audio-title",
        ],
        &dir.path().join("cpix"),
    );
    common::assert_same_files(
        &common::title_files(&first),
        &common::title_files(&second),
        "the CPIX title",
    );
    // And it plays with the server's keys.
    let keys: Vec<String> = seen[0]
        .kids
        .iter()
        .map(|k| {
            let hex = k.replace('-', "");
            format!("{hex}:{}", packager::cenc::hex(&KeyServer::key_of(&hex)))
        })
        .collect();
    check_player_with(
        &first,
        "manifest.mpd",
        "shaka",
        &["--keys", &keys.join(",")],
    );
    // A key server that fails, answers nonsense or leaves out a key stops the run before any
    // encoding, saying why.
    let f = fixtures::ensure(Fixture::TwoAudio).unwrap();
    for (behaviour, says) in [
        (Behaviour::Fails, "HTTP 500"),
        (Behaviour::Garbage, "CPIX"),
        (Behaviour::DropsAKey, "no key"),
    ] {
        let bad = KeyServer::start(behaviour).unwrap();
        let out = dir.path().join("bad");
        let run = rungs(&[
            "encode",
            arg(&f.path),
            "-o",
            arg(&out),
            "--drm",
            "speke",
            "--speke-url",
            &bad.url(),
            "-q",
        ]);
        assert_eq!(run.code, 4, "{behaviour:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{behaviour:?}: {}", run.stderr);
        assert!(!out.exists(), "{behaviour:?}: nothing encoded");
    }
}

#[test]
fn hevc_title_is_read_by_ffprobe_and_the_parsers() {
    // Chromium here cannot decode HEVC: the parsers and ffprobe check it.
    let dir = tempfile::tempdir().unwrap();
    let root = title("hevc", &["--preset", "ultrafast"], dir.path());
    check_parsers(&root, "hvc1.");
}

#[test]
fn bad_packaging_inputs_are_refused_before_encoding() {
    let f = fixtures::ensure(Fixture::TwoAudio).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // `rungs encode MASTER -o OUT FLAG VALUE -q`: exit 2 with `says` in the message, and
    // nothing encoded.
    let refused = |flag: &str, value: &str, says: &str| {
        let run = rungs(&["encode", arg(&f.path), "-o", arg(&out), flag, value, "-q"]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains(says), "{}", run.stderr);
        assert!(!out.exists(), "nothing was encoded");
    };
    let srt = dir.path().join("bad.srt");
    std::fs::write(
        &srt,
        "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 --> 00:00:2,500\nno\n",
    )
    .unwrap();
    refused(
        "--subs",
        &format!("{}:en", srt.display()),
        &format!("{}:6: the cue ends", srt.display()),
    );
    // An audio file without audio, and a language that is not one.
    let not_audio = dir.path().join("video-only.mp4");
    std::fs::write(&not_audio, b"\0\0\0\x18ftypisom").unwrap();
    refused(
        "--audio",
        &format!("{}:fr", not_audio.display()),
        "audio file",
    );
    refused("--subs", &format!("{}:1x", srt.display()), "language code");
    // Encryption: each bad combination refused with its reason, and a key never shown.
    let drm_refused = |extra: &[&str], says: &str| {
        let mut args = vec!["encode", arg(&f.path), "-o", arg(&out), "-q"];
        args.extend_from_slice(extra);
        let run = rungs(&args);
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{extra:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains(KEY),
            "{extra:?} shows the key: {}",
            run.stderr
        );
        assert!(!out.exists(), "nothing was encoded");
    };
    let key = format!("{KID}:{KEY}");
    drm_refused(&["--key", &key], "--key needs --drm");
    drm_refused(&["--drm", "raw"], "at least one --key");
    drm_refused(
        &["--drm", "raw", "--key", &format!("{KID}:{}", &KEY[..31])],
        "not 32 hexadecimal",
    );
    drm_refused(
        &["--drm", "raw", "--key", &format!("{key}:audio")],
        "no key for sd tracks",
    );
    drm_refused(
        &["--drm", "raw", "--key", &format!("{key}:4k")],
        "tracks `4k`",
    );
    drm_refused(
        &["--drm", "raw", "--key", &key, "--clear-lead", "5000"],
        "--clear-lead",
    );
    drm_refused(
        &["--drm", "raw", "--key", &key, "--codec", "vp9"],
        "H.264, HEVC and AV1",
    );
    drm_refused(
        &["--drm", "raw", "--key", &key, "--no-package"],
        "--no-package",
    );
}

#[test]
fn a_prores_master_with_mixed_colour_tags_encodes_and_packages() {
    // The ProRes fixture tags some frames BT.709 and others not: every chunk must still carry
    // one colour description (the stream's), or the chunks of a rung cannot be joined. Its PCM
    // audio becomes AAC.
    let f = fixtures::ensure(Fixture::ProRes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = rungs(&[
        "encode",
        arg(&f.path),
        "-o",
        arg(&out),
        "--ladder",
        "fixed",
        "--preset",
        "ultrafast",
        "--no-vmaf",
        "-q",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.json["chunks"].as_u64().unwrap() >= 2, "{}", run.json);
    let audio = run.json["package"]["audio"].as_array().unwrap();
    assert_eq!(audio.len(), 1);
    assert_eq!(audio[0]["codecs"], "mp4a.40.2");
    assert!(out.join("master.m3u8").is_file() && out.join("manifest.mpd").is_file());
}
