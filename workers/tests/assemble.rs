//! The packager's assembly of chunks encoded by every encoder, checked with ffprobe (an
//! independent reader): the frame count equals the master's, timestamps run on the master's
//! frame clock with no gap or drift, the rate rational is kept, and video ends with the audio
//! to within a frame. It lives here so that the packager needs no encoder, even to test.

use std::path::Path;
use std::process::Command;

use fixtures::Fixture;
use media::{self, Rational};
use packager::assemble::{AssembleError, ChunkSpan, assemble};
use workers::encode::{
    ChunkSource, Codec, EncodeSettings, EncodedChunk, RateControl, encode_chunk,
};

struct Master {
    path: std::path::PathBuf,
    stream: usize,
    pts: Vec<Option<i64>>,
    rate: Rational,
    audio_seconds: f64,
}

fn master(f: Fixture) -> Master {
    master_at(&fixtures::ensure(f).unwrap().path)
}

fn master_at(path: &Path) -> Master {
    let (stream, pts) = media::frame_timestamps(path).unwrap();
    let info = media::probe(path, false).unwrap();
    let rate = info.streams[stream].video.as_ref().unwrap().avg_frame_rate;
    let audio = info.audio_streams().next().expect("the fixture has audio");
    let audio_seconds = info.streams[audio]
        .duration_seconds
        .expect("audio duration");
    Master {
        path: path.to_owned(),
        stream,
        pts,
        rate,
        audio_seconds,
    }
}

/// Splits the master into chunks at `cuts` (frame numbers).
fn plan(m: &Master, cuts: &[u64]) -> Vec<ChunkSpan> {
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(m.pts.len() as u64);
    bounds
        .windows(2)
        .map(|w| ChunkSpan {
            start_frame: w[0],
            frames: w[1] - w[0],
        })
        .collect()
}

fn encode_all(m: &Master, plan: &[ChunkSpan], s: &EncodeSettings) -> Vec<EncodedChunk> {
    plan.iter()
        .map(|c| {
            let src = ChunkSource {
                path: m.path.clone(),
                stream: m.stream,
                start_frame: c.start_frame,
                frames: c.frames,
                start_pts: m.pts[c.start_frame as usize],
                frame_rate: m.rate,
                decoder_threads: 1,
            };
            encode_chunk(&src, s).unwrap_or_else(|e| panic!("{}: {e}", s.codec.name()))
        })
        .collect()
}

fn settings(codec: Codec, keyint: u32) -> EncodeSettings {
    EncodeSettings {
        codec,
        width: 256,
        height: 144,
        rate: RateControl::Crf(35.0),
        preset: match codec {
            Codec::H264 => "veryfast",
            Codec::Hevc => "ultrafast",
            Codec::Av1 => "12",
            Codec::Vp9 => "8",
            Codec::Av1Rav1e => "10",
        }
        .into(),
        vbv: None,
        keyint,
        bit_depth: 8,
        zones: Vec::new(),
    }
}

/// ffprobe's view of the file's video: frame rate, decoded frame count, and every frame's
/// presentation time in seconds.
fn ffprobe(path: &Path) -> (String, Vec<f64>) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=avg_frame_rate:frame=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut rate = String::new();
    let mut times = Vec::new();
    for line in text.lines().map(|l| l.trim_end_matches(',')) {
        if line.contains('/') {
            rate = line.to_owned();
        } else if let Ok(t) = line.parse::<f64>() {
            times.push(t);
        }
    }
    (rate, times)
}

fn check(fixture: Fixture, codecs: &[Codec], cuts: &[u64], keyint: u32) {
    check_master(fixture.name(), &master(fixture), codecs, cuts, keyint);
}

fn check_master(label: &str, m: &Master, codecs: &[Codec], cuts: &[u64], keyint: u32) {
    let plan = plan(m, cuts);
    let dir = tempfile::tempdir().unwrap();
    let fps = m.rate.to_f64().unwrap();
    for &codec in codecs {
        let chunks = encode_all(m, &plan, &settings(codec, keyint));
        let out = dir.path().join(format!("{}.mp4", codec.name()));
        let a = assemble(&plan, m.rate, &mut |i| Ok(chunks[i].clone()), &out).unwrap();
        let name = format!("{label} {}", codec.name());
        assert_eq!(a.frames, m.pts.len() as u64, "{name}");
        // Keyframes at every chunk start and every keyint inside a chunk, nowhere else.
        let expected: Vec<u64> = plan
            .iter()
            .flat_map(|c| {
                (0..c.frames)
                    .step_by(keyint as usize)
                    .map(move |k| c.start_frame + k)
            })
            .collect();
        assert_eq!(a.keyframes, expected, "{name}");
        let (rate, times) = ffprobe(&out);
        assert_eq!(
            rate,
            format!("{}/{}", m.rate.num, m.rate.den),
            "{name}: rate kept"
        );
        assert_eq!(times.len(), m.pts.len(), "{name}: ffprobe's frame count");
        for (n, t) in times.iter().enumerate() {
            let want = n as f64 / fps;
            assert!(
                (t - want).abs() < 0.5 / fps,
                "{name}: frame {n} at {t} s, expected {want} s"
            );
        }
        let video_end = times.len() as f64 / fps;
        assert!(
            (video_end - m.audio_seconds).abs() <= 1.0 / fps,
            "{name}: video ends at {video_end} s, audio at {} s",
            m.audio_seconds
        );
        // The same chunks give the same file.
        let again = dir.path().join(format!("{}-again.mp4", codec.name()));
        assemble(&plan, m.rate, &mut |i| Ok(chunks[i].clone()), &again).unwrap();
        assert!(
            std::fs::read(&out).unwrap() == std::fs::read(&again).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn every_codec_assembles_the_multishot_master_exactly() {
    check(Fixture::MultiShot, &Codec::ALL, &[75, 100, 237, 300], 50);
}

#[test]
fn the_2997_master_keeps_its_rational_rate() {
    check(Fixture::MultiShot2997, &Codec::ALL, &[150, 333], 60);
}

#[test]
fn a_real_clip_assembles_exactly() {
    let Some(clip) = fixtures::real_clip("car-detection.mp4") else {
        eprintln!("skipping: the real clips are not in ../shared/media (set RUNGS_MEDIA)");
        return;
    };
    // 12.5 fps camera footage with AAC audio; chunks of uneven lengths.
    check_master(
        "car-detection",
        &master_at(&clip),
        &Codec::ALL,
        &[31, 150, 151, 290],
        25,
    );
}

#[test]
fn bad_chunks_are_refused_and_nothing_is_left_behind() {
    let m = master(Fixture::MultiShot);
    let plan = plan(&m, &[100, 250]);
    let chunks = encode_all(&m, &plan, &settings(Codec::H264, 50));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.mp4");
    std::fs::write(&out, b"the user's file").unwrap();

    let e = assemble(
        &plan,
        m.rate,
        &mut |i| Ok(chunks[(i + 1) % 3].clone()),
        &out,
    )
    .unwrap_err();
    assert!(matches!(e, AssembleError::Mismatch { index: 0, .. }), "{e}");
    // The chunks with chunk 1 encoded with other settings.
    let with_middle = |s: &EncodeSettings| {
        let other = encode_all(&m, &plan[1..2], s).remove(0);
        let mut c = chunks.clone();
        c[1] = other;
        assemble(&plan, m.rate, &mut |i| Ok(c[i].clone()), &out)
    };
    let e = with_middle(&settings(Codec::H264, 25));
    // Different keyint gives the same parameters, so this one joins; a different size does not.
    assert!(e.is_ok(), "{e:?}");
    let e = with_middle(&EncodeSettings {
        width: 128,
        height: 72,
        ..settings(Codec::H264, 50)
    })
    .unwrap_err();
    assert!(e.to_string().contains("128x72"), "{e}");
    let e = assemble(
        &plan,
        m.rate,
        &mut |_| Err("store unreachable".into()),
        &out,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "chunk 0: store unreachable");
    let gap = [plan[0], plan[2]];
    assert!(matches!(
        assemble(&gap, m.rate, &mut |i| Ok(chunks[i].clone()), &out),
        Err(AssembleError::Plan(_))
    ));
    // Only the finished file from the successful run is there; no partial files.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["r.mp4"]);
    assert_ne!(std::fs::read(&out).unwrap(), b"the user's file");
}
