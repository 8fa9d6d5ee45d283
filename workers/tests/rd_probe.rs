//! The probe task against an independent path: the same chunk encoded alone, written to a file,
//! and scored by the measure task (file decoding, bicubic upscale) against the chunk's frames
//! cut from the master by the ffmpeg CLI.

mod common;

use std::process::Command;

use common::source;
use fixtures::Fixture;
use media::VideoMuxer;
use workers::encode::{Codec, EncodeSettings, RateControl, encode_chunk};
use workers::measure::{MeasureOptions, measure};
use workers::rd_probe::probe_chunk;

fn settings(codec: Codec, width: u32, height: u32, crf: f32) -> EncodeSettings {
    EncodeSettings {
        codec,
        width,
        height,
        rate: RateControl::Crf(crf),
        preset: if codec == Codec::H264 {
            "veryfast"
        } else {
            "10"
        }
        .into(),
        vbv: None,
        keyint: 50,
        bit_depth: 8,
        zones: Vec::new(),
    }
}

#[test]
fn probes_agree_with_encoding_and_measuring_separately() {
    let src = source(Fixture::MultiShot, 137, 75);
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("ref.y4m");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&src.path)
        .args([
            "-vf",
            "select=between(n\\,137\\,211)",
            "-fps_mode",
            "passthrough",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&reference)
        .status()
        .unwrap();
    assert!(status.success());

    let crfs = [22.0, 30.0, 38.0];
    let set: Vec<EncodeSettings> = crfs
        .iter()
        .map(|&c| settings(Codec::H264, 416, 234, c))
        .collect();
    let run = probe_chunk(&src, &set, &vmaf::Model::v061(), 1).unwrap();
    assert!(run.encode_cpu_seconds > 0.0 && run.score_cpu_seconds > 0.0);
    // The probe's encodings are the bytes a rung's own encode would give, so an anchor made
    // at a rung's settings can stand as that rung's chunk.
    assert_eq!(run.encoded.len(), 3);
    assert_eq!(
        run.encoded[1].to_bytes(),
        encode_chunk(&src, &set[1]).unwrap().to_bytes()
    );
    let points = run.points;
    assert_eq!(points.len(), 3);
    for w in points.windows(2) {
        let mean =
            |p: &workers::rd_probe::ProbePoint| p.vmaf.iter().sum::<f64>() / p.vmaf.len() as f64;
        assert!(w[1].bits < w[0].bits, "bits fall with CRF");
        assert!(mean(&w[1]) < mean(&w[0]), "quality falls with CRF");
    }
    for (p, s) in points.iter().zip(&set) {
        assert_eq!(p.vmaf.len(), 75);
        assert_eq!(p.frame_bits.len(), 75);
        assert_eq!(p.frame_bits.iter().sum::<u64>(), p.bits);
        assert!(
            p.frame_bits.iter().all(|&b| b > 0),
            "every frame costs bits"
        );
        // Encoded alone, the same bytes.
        let alone = encode_chunk(&src, s).unwrap();
        let bits: u64 = alone.packets.iter().map(|p| p.data.len() as u64 * 8).sum();
        assert_eq!(p.bits, bits);
        // Written to a file and measured there, the same scores.
        let file = dir.path().join(format!("{}.mkv", p.bits));
        let mut mux =
            VideoMuxer::create(&file, &alone.params, &alone.extradata(), src.frame_rate).unwrap();
        for pk in &alone.packets {
            mux.write(pk, pk.pts, pk.dts).unwrap();
        }
        mux.finish().unwrap();
        let m = measure(
            &reference,
            &file,
            &MeasureOptions {
                psnr: false,
                ssim: false,
                per_frame: true,
                threads: 1,
                ..Default::default()
            },
            &mut |_| {},
        )
        .unwrap();
        assert!(m.scaled);
        let theirs: Vec<f64> = m.per_frame.unwrap().iter().map(|f| f.vmaf).collect();
        assert_eq!(theirs.len(), 75);
        for (i, (a, b)) in p.vmaf.iter().zip(&theirs).enumerate() {
            assert!(
                (a - b).abs() < 1e-9,
                "crf {:?} frame {i}: {a} vs {b}",
                s.rate
            );
        }
    }
}

#[test]
fn settings_of_different_sizes_are_refused() {
    let src = source(Fixture::MultiShot, 0, 10);
    let set = [
        settings(Codec::H264, 416, 234, 30.0),
        settings(Codec::H264, 640, 360, 30.0),
    ];
    let e = probe_chunk(&src, &set, &vmaf::Model::v061(), 1).unwrap_err();
    assert!(e.to_string().contains("share size"), "{e}");
}

#[test]
fn sampled_scoring_keeps_the_scored_frames_exact_and_the_mean_close() {
    // A chunk across a cut, with motion: every fourth frame scored.
    let src = source(Fixture::MultiShot, 30, 60);
    let set: Vec<EncodeSettings> = [24.0, 36.0]
        .iter()
        .map(|&c| settings(Codec::H264, 416, 234, c))
        .collect();
    let full = probe_chunk(&src, &set, &vmaf::Model::v061(), 1).unwrap();
    let sampled = probe_chunk(&src, &set, &vmaf::Model::v061(), 4).unwrap();
    let picks = workers::rd_probe::sampled_frames(60, 4);
    assert_eq!(picks.len(), 15);
    for (a, b) in full.points.iter().zip(&sampled.points) {
        assert_eq!((a.scored_every, b.scored_every), (1, 4));
        assert_eq!(a.bits, b.bits);
        assert_eq!(b.vmaf.len(), 60);
        // The scored frames score exactly as in a full pass (motion is tracked on every frame).
        for &f in &picks {
            assert_eq!(a.vmaf[f as usize], b.vmaf[f as usize], "frame {f}");
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let error = (mean(&a.vmaf) - mean(&b.vmaf)).abs();
        assert!(error < 2.0, "pooled error {error}");
        // Frames between samples hold a sample's value.
        assert!(
            b.vmaf
                .iter()
                .all(|v| picks.iter().any(|&f| b.vmaf[f as usize] == *v))
        );
    }
    assert!(sampled.score_cpu_seconds < full.score_cpu_seconds);
}
