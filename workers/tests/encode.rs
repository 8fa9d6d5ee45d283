//! The encode task on generated masters: frame counts, keyframe placement, determinism and
//! exact frame selection, for every encoder.

mod common;

use common::source;
use fixtures::Fixture;
use workers::encode::{
    ChunkSource, Codec, EncodeSettings, RateControl, Vbv, decoding_uncached, encode_chunk,
    frame_cache_stats,
};

fn settings(codec: Codec) -> EncodeSettings {
    let preset = match codec {
        Codec::H264 => "veryfast",
        Codec::Hevc => "ultrafast",
        Codec::Av1 => "12",
        Codec::Vp9 => "8",
        Codec::Av1Rav1e => "10",
    };
    EncodeSettings {
        codec,
        width: 320,
        height: 180,
        rate: RateControl::Crf(30.0),
        preset: preset.into(),
        vbv: None,
        keyint: 25,
        bit_depth: 8,
        zones: Vec::new(),
    }
}

#[test]
fn every_encoder_places_keyframes_exactly_and_repeats_itself() {
    let src = source(Fixture::MultiShot, 100, 60);
    for codec in Codec::ALL {
        let s = settings(codec);
        let a = encode_chunk(&src, &s).unwrap_or_else(|e| panic!("{}: {e}", codec.name()));
        assert_eq!(a.frames(), 60, "{}", codec.name());
        let keys: Vec<i64> = a
            .packets
            .iter()
            .filter(|p| p.is_key())
            .map(|p| p.pts)
            .collect();
        assert_eq!(keys, [0, 25, 50], "{}", codec.name());
        assert!(a.packets[0].is_key());
        let mut pts: Vec<i64> = a.packets.iter().map(|p| p.pts).collect();
        pts.sort();
        assert_eq!(pts, (0..60).collect::<Vec<_>>(), "{}", codec.name());
        assert!(
            a.packets.windows(2).all(|w| w[0].dts < w[1].dts),
            "{}: decoding times rise",
            codec.name()
        );
        assert_eq!((a.params.width, a.params.height), (320, 180));
        let b = encode_chunk(&src, &s).unwrap();
        assert!(
            a.to_bytes() == b.to_bytes(),
            "{}: not deterministic",
            codec.name()
        );
    }
    // A size whose low-resolution lookahead is not a whole number of vector widths, encoded
    // three times in one process (where freed memory is reused): x264 with AVX-512 gave
    // three different results here.
    let s = EncodeSettings {
        width: 416,
        height: 234,
        ..settings(Codec::H264)
    };
    let runs: Vec<Vec<u8>> = (0..3)
        .map(|_| encode_chunk(&src, &s).unwrap().to_bytes())
        .collect();
    assert!(
        runs[0] == runs[1] && runs[1] == runs[2],
        "416x234 H.264 repeats itself"
    );
}

#[test]
fn seeking_selects_the_same_frames_as_counting_from_the_start() {
    let s = settings(Codec::H264);
    // Starts on reference and non-reference frames, near and far from the keyframe before.
    for start in [237, 238, 101, 333, 402, 489] {
        let seek = source(
            Fixture::MultiShot,
            start,
            490u64.saturating_sub(start).min(15),
        );
        let count = ChunkSource {
            start_pts: None,
            ..seek.clone()
        };
        // Separate threads: neither continues a reader the other left open.
        let (a, b) = std::thread::scope(|t| {
            let a = t.spawn(|| decoding_uncached(|| encode_chunk(&seek, &s).unwrap().to_bytes()));
            let b = t.spawn(|| decoding_uncached(|| encode_chunk(&count, &s).unwrap().to_bytes()));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert!(a == b, "chunk at {start}: seeking and counting differ");
    }
    let seek = source(Fixture::MultiShot, 237, 40);
    // A different start gives a different chunk (the comparison can fail).
    let other = source(Fixture::MultiShot, 238, 40);
    assert_ne!(
        encode_chunk(&other, &s).unwrap().to_bytes(),
        encode_chunk(&seek, &s).unwrap().to_bytes()
    );
}

#[test]
fn vbv_caps_and_bad_settings() {
    let src = source(Fixture::MultiShot, 0, 50);
    let free = encode_chunk(&src, &settings(Codec::H264)).unwrap();
    let capped = encode_chunk(
        &src,
        &EncodeSettings {
            rate: RateControl::Crf(18.0),
            vbv: Some(Vbv {
                maxrate_kbps: 100,
                bufsize_kbit: 200,
            }),
            ..settings(Codec::H264)
        },
    )
    .unwrap();
    let bytes =
        |c: &workers::encode::EncodedChunk| c.packets.iter().map(|p| p.data.len()).sum::<usize>();
    // 2 s at 100 kbit/s plus one buffer is at most 50 kB.
    assert!(bytes(&capped) <= 50_000, "{} bytes", bytes(&capped));
    assert!(bytes(&free) > 0);

    let bad = EncodeSettings {
        preset: "warp".into(),
        ..settings(Codec::H264)
    };
    let e = encode_chunk(&src, &bad).unwrap_err().to_string();
    assert!(e.contains("invalid preset \"warp\""), "{e}");
    let past_end = ChunkSource {
        frames: 10_000,
        ..src.clone()
    };
    let e = encode_chunk(&past_end, &settings(Codec::H264))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ended after 490 of the chunk's 10000 frames"),
        "{e}"
    );
}

#[test]
fn a_worker_going_on_to_the_next_chunk_reads_the_same_frames() {
    decoding_uncached(going_on_to_the_next_chunk);
}

fn going_on_to_the_next_chunk() {
    let a = source(Fixture::MultiShot, 100, 37);
    let b = source(Fixture::MultiShot, 137, 60);
    let s = settings(Codec::H264);
    // In a fresh thread, b is read after a seek.
    let fresh = std::thread::spawn({
        let (b, s) = (b.clone(), s.clone());
        move || decoding_uncached(|| encode_chunk(&b, &s).unwrap().to_bytes())
    })
    .join()
    .unwrap();
    // Here, b continues the reader a left open.
    encode_chunk(&a, &s).unwrap();
    let carried = encode_chunk(&b, &s).unwrap().to_bytes();
    assert!(fresh == carried, "continuing changed the frames");
    // And a chunk that does not follow does not continue (it would take the wrong frames).
    let c = source(Fixture::MultiShot, 300, 20);
    let d = source(Fixture::MultiShot, 200, 20);
    encode_chunk(&c, &s).unwrap();
    let after = encode_chunk(&d, &s).unwrap().to_bytes();
    let alone = std::thread::spawn(move || {
        decoding_uncached(|| encode_chunk(&d, &settings(Codec::H264)).unwrap().to_bytes())
    })
    .join()
    .unwrap();
    assert!(after == alone);
}

/// The tasks of one chunk decode it once: a second read comes from memory, and gives the same
/// frames as decoding does.
#[test]
fn a_chunk_read_again_comes_from_memory_with_the_same_frames() {
    let src = source(Fixture::MultiShot, 180, 30);
    let s = settings(Codec::H264);
    let decoded = decoding_uncached(|| encode_chunk(&src, &s).unwrap().to_bytes());
    let (hits, _) = frame_cache_stats();
    let first = encode_chunk(&src, &s).unwrap().to_bytes();
    let again = encode_chunk(&src, &s).unwrap().to_bytes();
    let (hits_after, _) = frame_cache_stats();
    assert!(hits_after > hits, "the second read was decoded again");
    assert!(
        first == decoded && again == decoded,
        "memory gave other frames"
    );
    // Other frames of the same master are another chunk, not a hit on this one.
    let other = source(Fixture::MultiShot, 181, 30);
    assert!(encode_chunk(&other, &s).unwrap().to_bytes() != decoded);
}

/// Shot-level ladders encode the chunks of one rung at different quality settings; assembly
/// needs them to share one decoder configuration.
#[test]
fn chunks_at_different_quality_share_their_decoder_configuration() {
    let src = source(Fixture::MultiShot, 0, 30);
    for codec in Codec::ALL {
        let mut a = settings(codec);
        let mut b = settings(codec);
        let (lo, hi) = if codec == Codec::Av1Rav1e {
            (60.0, 200.0)
        } else {
            (20.0, 40.0)
        };
        a.rate = RateControl::Crf(lo);
        b.rate = RateControl::Crf(hi);
        let (x, y) = (
            encode_chunk(&src, &a).unwrap(),
            encode_chunk(&src, &b).unwrap(),
        );
        assert!(
            x.packets.iter().map(|p| p.data.len()).sum::<usize>()
                > y.packets.iter().map(|p| p.data.len()).sum::<usize>(),
            "{}: the settings differ",
            codec.name()
        );
        assert_eq!(x.params, y.params, "{}", codec.name());
        assert_eq!(x.extradata(), y.extradata(), "{}", codec.name());
    }
}

#[test]
fn zones_give_a_stretch_of_a_chunk_its_own_setting() {
    // Frames 60..120 of the multi-shot master; a zone is any stretch of a chunk.
    let src = source(Fixture::MultiShot, 60, 60);
    let per_frame = |c: &workers::encode::EncodedChunk| {
        let mut bits = vec![0usize; c.packets.len()];
        for p in &c.packets {
            bits[p.pts as usize] += p.data.len() * 8;
        }
        bits
    };
    for codec in [Codec::H264, Codec::Hevc] {
        let plain = settings(codec);
        let zoned = EncodeSettings {
            zones: vec![workers::encode::Zone {
                start: 30,
                frames: 30,
                crf: 20.0,
            }],
            ..plain.clone()
        };
        let (a, b) = (
            per_frame(&encode_chunk(&src, &plain).unwrap()),
            per_frame(&encode_chunk(&src, &zoned).unwrap()),
        );
        let sum = |v: &[usize]| v.iter().sum::<usize>() as f64;
        let (before, inside) = (sum(&b[..25]) / sum(&a[..25]), sum(&b[30..]) / sum(&a[30..]));
        // Ten CRF steps finer in the zone: far more bits there, about the same before it.
        assert!(inside > 1.8, "{}: zone at {inside:.2}x", codec.name());
        assert!(
            (0.8..1.25).contains(&before),
            "{}: before the zone at {before:.2}x",
            codec.name()
        );
        assert_eq!(b.len(), 60);
    }
    // Refused: zones where the encoder has none, out of order, or at a bad setting.
    for (s, want) in [
        (Codec::Vp9, "vp9 has no zones"),
        (Codec::H264, "must not overlap"),
        (Codec::Hevc, "invalid zone crf 99"),
    ] {
        let zone = |start, crf| workers::encode::Zone {
            start,
            frames: 10,
            crf,
        };
        let zones = match want {
            "must not overlap" => vec![zone(10, 20.0), zone(15, 20.0)],
            "invalid zone crf 99" => vec![zone(10, 99.0)],
            _ => vec![zone(10, 20.0)],
        };
        let bad = EncodeSettings {
            zones,
            ..settings(s)
        };
        let e = encode_chunk(&src, &bad).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
}
