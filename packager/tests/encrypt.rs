//! Common encryption checked by tools that share no code with it: FFmpeg's own decryptor
//! (`-decryption_key`, both schemes) and an independent decryptor and box checker written from
//! the spec in Python (`tools/drm/cenc.py`, with the `cryptography` package). Decrypted frames
//! must equal the clear package's, bit for bit; a wrong key must not give them.

use std::path::{Path, PathBuf};
use std::process::Command;

use packager::audio::AudioSource;
use packager::cenc::Scheme;
use packager::drm::KeyPolicy;
use packager::package::{Encryption, Settings, Sources, VideoSource, package};
use packager::sink::DirSink;

mod common;
use common::rendition;

const KID_SD: &str = "0123456789abcdef0123456789abcdef";
const KEY_SD: &str = "00112233445566778899aabbccddeeff";
const KID_HD: &str = "fedcba9876543210fedcba9876543210";
const KEY_HD: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
const WRONG: &str = "000102030405060708090a0b0c0d0e0f";

/// Two renditions (SD and HD) and the SD one's audio.
fn sources(dir: &Path) -> Sources {
    let sd = rendition(dir, "sd", "320x180", 25, 100);
    let hd = rendition(dir, "hd", "1280x720", 25, 100);
    Sources {
        videos: vec![
            VideoSource {
                id: "sd".into(),
                path: sd.clone(),
            },
            VideoSource {
                id: "hd".into(),
                path: hd,
            },
        ],
        audio: vec![AudioSource {
            path: sd,
            stream: 1,
            language: "eng".into(),
            origin_seconds: 0.0,
            role: packager::presentation::Role::Main,
        }],
        ..Default::default()
    }
}

/// Packages `sources` into `dir/name`, encrypted when `encryption` is given.
fn make(dir: &Path, name: &str, sources: &Sources, encryption: Option<Encryption>) -> PathBuf {
    let out = dir.join(name);
    let settings = Settings {
        segment_seconds: 1.0,
        encryption,
        ..Default::default()
    };
    package(
        sources,
        &settings,
        &dir.join(format!("work-{name}")),
        &DirSink::new(&out),
    )
    .unwrap();
    out
}

/// The studio rule: audio and SD under one key, HD and UHD under another.
fn policy() -> KeyPolicy {
    KeyPolicy::parse(&[
        format!("{KID_SD}:{KEY_SD}:audio,sd"),
        format!("{KID_HD}:{KEY_HD}:hd,uhd"),
    ])
    .unwrap()
}

/// Each segment of a track with its init segment before it, as a file of its own (FFmpeg
/// 5.1 applies the encryption data of the wrong fragment when one file holds several, so each
/// is decrypted alone).
fn segment_files(track: &Path, into: &Path, tag: &str) -> Vec<PathBuf> {
    let mut names: Vec<_> = std::fs::read_dir(track)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".m4s"))
        .collect();
    names.sort();
    let init = std::fs::read(track.join("init.mp4")).unwrap();
    names
        .iter()
        .map(|n| {
            let mut bytes = init.clone();
            bytes.extend(std::fs::read(track.join(n)).unwrap());
            let path = into.join(format!("{tag}-{n}.mp4"));
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect()
}

/// The decoded frames' MD5s (video or audio), through FFmpeg, with a decryption key if given;
/// FFmpeg's complaint when it fails.
fn framemd5(file: &Path, key: Option<&str>) -> Result<String, String> {
    let mut c = Command::new("ffmpeg");
    c.args(["-nostdin", "-v", "error"]);
    if let Some(k) = key {
        c.args(["-decryption_key", k]);
    }
    let out = c
        .arg("-i")
        .arg(file)
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() && text.lines().any(|l| !l.starts_with('#')) {
        Ok(text)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Every file under `dir`, read.
fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

/// No file of the title holds a content key, in hex (either case) or base64.
fn assert_no_keys(dir: &Path) {
    for (path, bytes) in all_files(dir) {
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        for key in [KEY_SD, KEY_HD] {
            let raw = packager::drm::hex16(key).unwrap();
            assert!(!text.contains(key), "{} holds a key", path.display());
            for b64 in [packager::drm::base64(&raw), packager::drm::base64url(&raw)] {
                assert!(
                    !text.contains(&b64.to_lowercase()),
                    "{} holds a key in base64",
                    path.display()
                );
            }
            assert!(
                !bytes.windows(16).any(|w| w == raw),
                "{} holds a raw key",
                path.display()
            );
        }
    }
}

#[test]
fn cenc_tracks_decrypt_in_ffmpeg_to_the_clear_frames_and_a_wrong_key_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let sources = sources(dir.path());
    let clear = make(dir.path(), "clear", &sources, None);
    let enc = make(dir.path(), "cenc", &sources, encrypted(Scheme::Cenc, 0.0));
    for (track, key) in [
        ("video/sd", KEY_SD),
        ("video/hd", KEY_HD),
        ("audio/en", KEY_SD),
    ] {
        let name = track.replace('/', "-");
        let clear_files = segment_files(&clear.join(track), dir.path(), &format!("{name}-clear"));
        let enc_files = segment_files(&enc.join(track), dir.path(), &format!("{name}-cenc"));
        assert_eq!(clear_files.len(), 4, "{track}");
        assert_eq!(enc_files.len(), clear_files.len(), "{track}");
        for (c, e) in clear_files.iter().zip(&enc_files) {
            let want = framemd5(c, None).expect("the clear track decodes");
            let got = framemd5(e, Some(key)).unwrap_or_else(|err| panic!("{}: {err}", e.display()));
            assert!(
                got == want,
                "{}: decrypted frames differ from the clear ones",
                e.display()
            );
            let wrong = framemd5(e, Some(WRONG));
            assert!(
                wrong.as_ref().map_or(true, |w| *w != want),
                "{}: a wrong key gave the clear frames",
                e.display()
            );
            // The samples changed: nothing was left in the clear by mistake.
            assert_ne!(std::fs::read(c).unwrap(), std::fs::read(e).unwrap());
        }
    }
    // Signalling: one video adaptation set per key, each with its default KID; every HLS
    // media playlist names its method and key ID; keys nowhere.
    let mpd = std::fs::read_to_string(enc.join("manifest.mpd")).unwrap();
    assert_eq!(mpd.matches("contentType=\"video\"").count(), 2, "{mpd}");
    for kid in [KID_SD, KID_HD] {
        let uuid = packager::cenc::uuid(&packager::drm::hex16(kid).unwrap());
        assert!(
            mpd.contains(&format!("value=\"cenc\" cenc:default_KID=\"{uuid}\"")),
            "{mpd}"
        );
    }
    let hd = std::fs::read_to_string(enc.join("video/hd/index.m3u8")).unwrap();
    assert!(hd.contains("#EXT-X-KEY:METHOD=SAMPLE-AES-CTR"), "{hd}");
    assert!(
        hd.contains(&format!("KEYID=0x{}", KID_HD.to_uppercase())),
        "{hd}"
    );
    let master = std::fs::read_to_string(enc.join("master.m3u8")).unwrap();
    assert!(
        master.contains("#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES-CTR"),
        "{master}"
    );
    assert_no_keys(&enc);
}

/// The independent decryptor and checker (tools/drm/cenc.py) in the venv that scripts/setup
/// makes (its `cryptography` package).
fn cenc_py(args: &[&str]) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Command::new(root.join("tools/aws/venv/bin/python"))
        .arg(root.join("tools/drm/cenc.py"))
        .args(args)
        .output()
        .expect("the tools venv's python runs (scripts/setup makes it)")
}

/// Encryption under the studio policy with `scheme`, the first `clear_lead` seconds clear.
fn encrypted(scheme: Scheme, clear_lead: f64) -> Option<Encryption> {
    Some(Encryption {
        scheme,
        keys: policy(),
        clear_lead,
        pssh: Default::default(),
    })
}

/// A track's init segment and segments joined into the file `into`.
fn joined(track: &Path, into: &Path) -> PathBuf {
    let mut bytes = Vec::new();
    for f in track_files(track) {
        bytes.extend(std::fs::read(f).unwrap());
    }
    std::fs::write(into, bytes).unwrap();
    into.to_owned()
}

/// `cenc.py inspect` of a track's files for `kid`: its report on failure.
fn inspect(files: &[String], kid: &str) -> Result<(), String> {
    let mut args = vec!["inspect", "--expect-kid", kid, "--nal-length-check"];
    args.extend(files.iter().map(String::as_str));
    let out = cenc_py(&args);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

/// `cenc.py decrypt` of a track's files with `KID:KEY` into `out`; what it said.
fn decrypt(files: &[String], key: &str, out: &Path) -> String {
    let mut args = vec!["decrypt", "--key", key, "-o", out.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    let run = cenc_py(&args);
    let said = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "{said}");
    said
}

/// A track's init segment and segments, in order.
fn track_files(track: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(track)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|n| n.ends_with(".m4s"))
        .collect();
    names.sort();
    names.insert(0, track.join("init.mp4").display().to_string());
    names
}

#[test]
fn cbcs_with_a_clear_lead_decrypts_in_an_independent_decryptor_and_in_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let sources = sources(dir.path());
    let clear = make(dir.path(), "clear", &sources, None);
    let enc = make(dir.path(), "cbcs", &sources, encrypted(Scheme::Cbcs, 1.0));
    for (track, kid, key, clear_samples) in [
        ("video/sd", KID_SD, KEY_SD, 25),
        ("video/hd", KID_HD, KEY_HD, 25),
        // 1 s of 48 kHz AAC: 47 frames of 1,024 samples.
        ("audio/en", KID_SD, KEY_SD, 47),
    ] {
        let name = track.replace('/', "-");
        let files = track_files(&enc.join(track));
        // The boxes: tenc's KID, one senc entry per sample, clear NAL headers.
        inspect(&files, kid).unwrap_or_else(|e| panic!("{track}: {e}"));
        // Decrypted by the independent tool: the clear frames, the first second left clear.
        let want = framemd5(
            &joined(
                &clear.join(track),
                &dir.path().join(format!("{name}-clear.mp4")),
            ),
            None,
        )
        .unwrap();
        let decrypted = dir.path().join(format!("{name}-py.mp4"));
        let said = decrypt(&files, &format!("{kid}:{key}"), &decrypted);
        assert!(
            said.contains(&format!("{clear_samples} clear samples")),
            "{track}: {said}"
        );
        assert!(
            framemd5(&decrypted, None).unwrap() == want,
            "{track}: the independent decryptor's frames differ"
        );
        decrypt(&files, &format!("{kid}:{WRONG}"), &decrypted);
        assert!(
            framemd5(&decrypted, None).map_or(true, |w| w != want),
            "{track}: a wrong key gave the clear frames"
        );
        // And by FFmpeg, segment by segment.
        let clear_files = segment_files(&clear.join(track), dir.path(), &format!("{name}-c"));
        let enc_files = segment_files(&enc.join(track), dir.path(), &format!("{name}-e"));
        for (c, e) in clear_files.iter().zip(&enc_files) {
            let got = framemd5(e, Some(key)).unwrap_or_else(|err| panic!("{}: {err}", e.display()));
            assert!(
                got == framemd5(c, None).unwrap(),
                "{}: FFmpeg's frames differ",
                e.display()
            );
        }
    }
    let hls = std::fs::read_to_string(enc.join("video/hd/index.m3u8")).unwrap();
    // The first (clear) segment comes before the keys.
    let key_at = hls.find("#EXT-X-KEY:METHOD=SAMPLE-AES,").expect(&hls);
    assert!(
        hls.find("00001.m4s").unwrap() < key_at && key_at < hls.find("00002.m4s").unwrap(),
        "{hls}"
    );
    assert!(hls.contains(&format!("URI=\"skd://{KID_HD}\"")), "{hls}");
    assert_no_keys(&enc);
}

#[test]
fn hevc_slices_are_encrypted_with_their_headers_clear() {
    let dir = tempfile::tempdir().unwrap();
    let h264 = rendition(dir.path(), "src", "640x360", 25, 75);
    let hevc = dir.path().join("hevc.mp4");
    common::ffmpeg(&[
        "-i",
        h264.to_str().unwrap(),
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-x265-params",
        "keyint=25:min-keyint=25:scenecut=0:log-level=error",
        "-an",
        hevc.to_str().unwrap(),
    ]);
    let sources = Sources {
        videos: vec![VideoSource {
            id: "hevc".into(),
            path: hevc,
        }],
        ..Default::default()
    };
    let clear = make(dir.path(), "clear", &sources, None);
    let enc = make(dir.path(), "cbcs", &sources, encrypted(Scheme::Cbcs, 0.0));
    let files = track_files(&enc.join("video/hevc"));
    inspect(&files, KID_SD).unwrap();
    let decrypted = dir.path().join("hevc-py.mp4");
    decrypt(&files, &format!("{KID_SD}:{KEY_SD}"), &decrypted);
    let whole = joined(
        &clear.join("video/hevc"),
        &dir.path().join("hevc-clear.mp4"),
    );
    assert!(framemd5(&decrypted, None).unwrap() == framemd5(&whole, None).unwrap());
    let mpd = std::fs::read_to_string(enc.join("manifest.mpd")).unwrap();
    assert!(mpd.contains("codecs=\"hvc1."), "{mpd}");
}

/// An AV1 rendition made by SVT-AV1 through the ffmpeg CLI, with `params` for the encoder.
fn av1_rendition(dir: &Path, name: &str, params: &str) -> PathBuf {
    let path = dir.join(format!("{name}.mp4"));
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25",
        "-frames:v",
        "75",
        "-c:v",
        "libsvtav1",
        "-preset",
        "12",
        "-g",
        "25",
        "-svtav1-params",
        params,
        path.to_str().unwrap(),
    ]);
    path
}

/// FFmpeg's reading of an AV1 file (its `trace_headers` filter): for each packet, each frame
/// OBU's first byte after its frame header (from the packet's start) and its tile count.
fn ffmpeg_frame_headers(path: &Path) -> Vec<Vec<(usize, u32)>> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "trace", "-i"])
        .arg(path)
        .args(["-c", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stderr);
    let mut packets: Vec<Vec<(usize, u32)>> = Vec::new();
    // The current OBU: its start in the packet, header bytes, payload size, type; the last
    // syntax element's end (bits from the OBU's start) in its frame header.
    let (mut obu_start, mut header, mut size, mut kind) = (0usize, 0usize, 0usize, 0u32);
    let mut last_end = 0usize;
    let mut in_frame_header = false;
    let mut tiles = 0u32;
    for line in text.lines().filter(|l| l.contains("[trace_headers")) {
        let body = line.split("] ").nth(1).unwrap_or("").trim();
        if body.starts_with("Packet:") {
            packets.push(Vec::new());
            (obu_start, header, size) = (0, 0, 0);
        } else if body == "OBU header" {
            obu_start += header + size;
            (header, size, in_frame_header) = (1, 0, false);
        } else if body == "Frame Header" {
            in_frame_header = true;
        } else if body == "Tile Group" && in_frame_header && kind == 6 {
            in_frame_header = false;
            if let Some(p) = packets.last_mut() {
                p.push((obu_start + last_end.div_ceil(8), tiles));
            }
        } else if body.contains(" tiles ") && body.starts_with("Frame ") {
            // "Frame 0:  size 640x360 ... tiles 2x2." for the frame just read.
            let grid = body
                .rsplit("tiles ")
                .next()
                .unwrap_or("")
                .trim_end_matches('.');
            let (c, r) = grid.split_once('x').unwrap_or(("0", "0"));
            tiles = c.parse::<u32>().unwrap_or(0) * r.parse::<u32>().unwrap_or(0);
        } else {
            let mut parts = body.split_whitespace();
            let (Some(pos), Some(name)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(pos) = pos.parse::<usize>() else {
                continue;
            };
            let bits = parts.next().unwrap_or("");
            match name {
                "obu_type" => kind = u32::from_str_radix(bits, 2).unwrap_or(0),
                "obu_extension_flag" if bits == "1" => header += 1,
                n if n.starts_with("leb128_byte") => header += 1,
                "obu_size" => {
                    size = body
                        .rsplit("= ")
                        .next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                }
                _ => {}
            }
            if in_frame_header {
                last_end = pos + bits.len();
            }
        }
    }
    packets
}

#[test]
fn av1_tiles_are_where_ffmpeg_reads_them_and_only_tile_data_is_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    for (name, params) in [
        ("one-tile", "tile-columns=0"),
        ("four-tiles", "tile-columns=1:tile-rows=1"),
    ] {
        let path = av1_rendition(dir.path(), name, params);
        // Every frame's tiles start where FFmpeg's own reader ends the frame header (one tile),
        // or after the tile group's header and size field (several), and there are as many as
        // FFmpeg counts.
        let want = ffmpeg_frame_headers(&path);
        let mut d = media::Demuxer::open(&path).unwrap();
        let init = {
            // The av1C box's body, from a packaged copy's init segment.
            let sources = Sources {
                videos: vec![VideoSource {
                    id: name.into(),
                    path: path.clone(),
                }],
                ..Default::default()
            };
            let clear = make(dir.path(), &format!("{name}-clear"), &sources, None);
            std::fs::read(clear.join(format!("video/{name}/init.mp4"))).unwrap()
        };
        let at = init.windows(4).position(|w| w == b"av1C").unwrap();
        let len = u32::from_be_bytes(init[at - 4..at].try_into().unwrap()) as usize;
        let mut reader = packager::av1::Reader::new(&init[at + 4..at - 4 + len]).unwrap();
        let mut k = 0;
        let mut frames = 0;
        while let Some(p) = d.read().unwrap() {
            let tiles = reader.tiles(p.data()).unwrap();
            let expected = &want[k];
            let mut t = tiles.iter();
            for &(header_end, count) in expected {
                frames += 1;
                let first = t
                    .next()
                    .unwrap_or_else(|| panic!("{name} packet {k}: no tiles"));
                if count == 1 {
                    assert_eq!(first.0, header_end, "{name} packet {k}");
                } else {
                    assert!(
                        first.0 > header_end && first.0 <= header_end + 5,
                        "{name} packet {k}: {first:?} after {header_end}"
                    );
                    for _ in 1..count {
                        t.next().unwrap_or_else(|| {
                            panic!("{name} packet {k}: fewer than {count} tiles")
                        });
                    }
                }
            }
            assert!(
                t.next().is_none(),
                "{name} packet {k}: more tiles than FFmpeg reads"
            );
            k += 1;
        }
        assert_eq!(k, want.len(), "{name}");
        assert!(frames >= 75, "{name}: {frames} frames");
        // Encrypted, checked by the independent tool (OBU headers clear) and decrypted to the
        // clear frames, under both schemes.
        let sources = Sources {
            videos: vec![VideoSource {
                id: name.into(),
                path: path.clone(),
            }],
            ..Default::default()
        };
        let clear = dir.path().join(format!("{name}-clear"));
        let whole = joined(
            &clear.join(format!("video/{name}")),
            &dir.path().join(format!("{name}.whole.mp4")),
        );
        for scheme in [Scheme::Cbcs, Scheme::Cenc] {
            let enc = make(
                dir.path(),
                &format!("{name}-{scheme}"),
                &sources,
                encrypted(scheme, 0.0),
            );
            let files = track_files(&enc.join(format!("video/{name}")));
            inspect(&files, KID_SD).unwrap_or_else(|e| panic!("{name} {scheme}: {e}"));
            let decrypted = dir.path().join(format!("{name}-{scheme}-py.mp4"));
            decrypt(&files, &format!("{KID_SD}:{KEY_SD}"), &decrypted);
            assert!(
                framemd5(&decrypted, None).unwrap() == framemd5(&whole, None).unwrap(),
                "{name} {scheme}"
            );
        }
    }
}
