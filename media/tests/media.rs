//! Media I/O against generated fixtures and the real clips.

use std::path::Path;

use fixtures::Fixture;
use media::{
    self, Chroma, DecoderOptions, Demuxer, MediaError, PixelLayout, PlaneRef, Rational, StreamKind,
};

fn master(f: Fixture) -> fixtures::Generated {
    fixtures::ensure(f).unwrap_or_else(|e| panic!("fixture {}: {e}", f.name()))
}

/// Decodes every video frame and returns (pts, layout, width, height) per frame.
fn decode_all(path: &Path) -> Vec<(Option<i64>, PixelLayout, usize, usize)> {
    let mut d = Demuxer::open(path).unwrap();
    let v = d.info().best_video().unwrap();
    let mut dec = d.video_decoder(v, &DecoderOptions::default()).unwrap();
    let mut out = Vec::new();
    let take = |dec: &mut media::VideoDecoder, out: &mut Vec<_>| {
        while let Some(f) = dec.receive().unwrap() {
            out.push((f.pts, f.layout(), f.width(), f.height()));
        }
    };
    while let Some(p) = d.read().unwrap() {
        if p.stream() == v {
            dec.send(&p).unwrap();
            take(&mut dec, &mut out);
        }
    }
    dec.send_eof().unwrap();
    take(&mut dec, &mut out);
    out
}

#[test]
fn probe_reads_geometry_rates_and_colour() {
    let m = master(Fixture::MultiShot);
    let info = media::probe(&m.path, true).unwrap();
    assert_eq!(info.container, "mov,mp4,m4a,3gp,3g2,mj2");
    assert!((info.duration_seconds.unwrap() - 19.6).abs() < 0.05);
    let v = &info.streams[info.best_video().unwrap()];
    assert_eq!(v.kind, StreamKind::Video);
    assert_eq!(v.codec, "h264");
    let vi = v.video.as_ref().unwrap();
    assert_eq!((vi.width, vi.height), (640, 360));
    assert_eq!(vi.sample_aspect_ratio, Rational::new(1, 1));
    assert_eq!(vi.display_aspect_ratio, Rational::new(16, 9));
    assert_eq!(vi.avg_frame_rate, Rational::new(25, 1));
    assert_eq!(vi.r_frame_rate, Rational::new(25, 1));
    assert_eq!(vi.field_order, "progressive");
    assert_eq!(vi.pixel_format, "yuv420p");
    assert_eq!(vi.bit_depth, Some(8));
    assert_eq!(vi.hdr.format, "sdr");
    assert_eq!(v.frames, Some(490));
    let a = info
        .streams
        .iter()
        .find(|s| s.kind == StreamKind::Audio)
        .unwrap();
    assert_eq!(a.codec, "aac");
    let ai = a.audio.as_ref().unwrap();
    assert_eq!((ai.sample_rate, ai.channels), (48_000, 1));
    assert_eq!(ai.channel_layout, "mono");
}

#[test]
fn probe_finds_hdr10_metadata_in_the_bitstream() {
    let m = master(Fixture::MultiShot10Bit);
    let without = media::probe(&m.path, false).unwrap();
    let info = media::probe(&m.path, true).unwrap();
    let vi = info.streams[0].video.as_ref().unwrap();
    assert_eq!(vi.bit_depth, Some(10));
    assert_eq!(vi.color.primaries.as_deref(), Some("bt2020"));
    assert_eq!(vi.color.transfer.as_deref(), Some("smpte2084"));
    assert_eq!(vi.color.matrix.as_deref(), Some("bt2020nc"));
    assert_eq!(vi.hdr.format, "hdr10");
    // x265 was given G(13250,34500) B(7500,3000) R(34000,16000) WP(15635,16450)
    // L(10000000,50) and max-cll 1000,400: primaries in 0.00002 units, luminance in 0.0001.
    let md = vi
        .hdr
        .mastering_display
        .as_ref()
        .expect("mastering display metadata");
    let p = md.primaries.unwrap();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-4;
    assert!(close(p[0][0], 0.68) && close(p[0][1], 0.32), "{p:?}");
    assert!(close(p[1][0], 0.265) && close(p[1][1], 0.69), "{p:?}");
    assert!(close(p[2][0], 0.15) && close(p[2][1], 0.06), "{p:?}");
    let wp = md.white_point.unwrap();
    assert!(close(wp[0], 0.3127) && close(wp[1], 0.329), "{wp:?}");
    assert!(close(md.max_luminance.unwrap(), 1000.0));
    assert!(close(md.min_luminance.unwrap(), 0.005));
    let cll = vi.hdr.content_light_level.as_ref().unwrap();
    assert_eq!((cll.max_cll, cll.max_fall), (1000, 400));
    // Without decoding, only what the container declares is known.
    assert!(
        without.streams[0]
            .video
            .as_ref()
            .unwrap()
            .hdr
            .mastering_display
            .is_none()
    );
}

#[test]
fn probe_reads_languages_and_layouts() {
    let m = master(Fixture::TwoAudio);
    let info = media::probe(&m.path, false).unwrap();
    let audio: Vec<_> = info
        .streams
        .iter()
        .filter(|s| s.kind == StreamKind::Audio)
        .collect();
    assert_eq!(audio.len(), 2);
    assert_eq!(audio[0].language.as_deref(), Some("eng"));
    assert_eq!(audio[1].language.as_deref(), Some("fra"));
    assert!(audio[0].disposition.contains(&"default"));
    assert!(!audio[1].disposition.contains(&"default"));
    for a in audio {
        let ai = a.audio.as_ref().unwrap();
        assert_eq!((ai.channels, ai.channel_layout.as_str()), (2, "stereo"));
    }
}

#[test]
fn decodes_every_frame_with_exact_timestamps() {
    let m = master(Fixture::MultiShot);
    let info = media::probe(&m.path, false).unwrap();
    let tb = info.streams[0].time_base;
    let frames = decode_all(&m.path);
    assert_eq!(frames.len() as u64, m.truth.frames);
    let ticks = i64::from(tb.den) / 25;
    for (i, (pts, layout, w, h)) in frames.iter().enumerate() {
        assert_eq!(*pts, Some(i as i64 * ticks), "frame {i}");
        assert_eq!(
            *layout,
            PixelLayout {
                chroma: Chroma::Cs420,
                bit_depth: 8
            }
        );
        assert_eq!((*w, *h), (640, 360));
    }
}

#[test]
fn keeps_the_ntsc_rational_exactly() {
    let m = master(Fixture::MultiShot2997);
    let info = media::probe(&m.path, false).unwrap();
    let v = info.streams[0].video.as_ref().unwrap();
    assert_eq!(v.r_frame_rate, Rational::new(30000, 1001));
    let tb = info.streams[0].time_base;
    let frames = decode_all(&m.path);
    assert_eq!(frames.len(), 490);
    // Every timestamp is exactly i * 1001/30000 s in the stream's time base.
    for (i, (pts, ..)) in frames.iter().enumerate() {
        let expect = i as i128 * 1001 * i128::from(tb.den) / (30000 * i128::from(tb.num));
        assert_eq!(pts.map(i128::from), Some(expect), "frame {i}");
    }
}

#[test]
fn ten_bit_frames_come_as_u16_planes() {
    for (f, chroma) in [
        (Fixture::MultiShot10Bit, Chroma::Cs420),
        (Fixture::ProRes, Chroma::Cs422),
    ] {
        let m = master(f);
        let mut d = Demuxer::open(&m.path).unwrap();
        let v = d.info().best_video().unwrap();
        let mut dec = d.video_decoder(v, &DecoderOptions::default()).unwrap();
        let mut checked = 0;
        while let Some(p) = d.read().unwrap() {
            if p.stream() != v {
                continue;
            }
            dec.send(&p).unwrap();
            while let Some(frame) = dec.receive().unwrap() {
                assert_eq!(
                    frame.layout(),
                    PixelLayout {
                        chroma,
                        bit_depth: 10
                    }
                );
                let Some(PlaneRef::U16(y)) = frame.plane(0) else {
                    panic!("luma is not 16-bit")
                };
                let Some(PlaneRef::U16(cb)) = frame.plane(1) else {
                    panic!("chroma is not 16-bit")
                };
                assert_eq!((y.width(), y.height()), (640, 360));
                let (sx, sy) = chroma.shifts();
                assert_eq!((cb.width(), cb.height()), (640 >> sx, 360 >> sy));
                let max = y.rows().flat_map(|r| r.iter()).copied().max().unwrap();
                assert!(max <= 1023, "{} sample {max} above 10 bits", f.name());
                // The 8-bit range is exceeded, so these really are 10-bit samples.
                assert!(max > 255, "{} max {max}", f.name());
                checked += 1;
            }
            if checked >= 5 {
                break;
            }
        }
        assert!(checked >= 5);
    }
}

#[test]
fn other_pixel_formats_are_converted_to_planar_yuv() {
    // Pure red in RGB, through FFV1 in Matroska: swscale turns it into planar 4:4:4.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("red-rgb.mkv");
    let ok = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=64x48:d=0.2",
            "-pix_fmt",
            "rgb24",
        ])
        .args(["-c:v", "ffv1"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(ok.success());
    let mut d = Demuxer::open(&path).unwrap();
    let vi = d.info().streams[0].video.clone().unwrap();
    // FFV1 keeps RGB as bgr0.
    assert_eq!(
        (vi.pixel_format.as_str(), vi.pixel_support.as_str()),
        ("bgr0", "convert")
    );
    let mut dec = d.video_decoder(0, &DecoderOptions::default()).unwrap();
    let p = d.read().unwrap().unwrap();
    dec.send(&p).unwrap();
    dec.send_eof().unwrap();
    let frame = dec.receive().unwrap().expect("a frame");
    assert_eq!(
        frame.layout(),
        PixelLayout {
            chroma: Chroma::Cs444,
            bit_depth: 8
        }
    );
    let sample = |i| match frame.plane(i) {
        Some(PlaneRef::U8(p)) => p.row(10)[10],
        _ => panic!("plane {i}"),
    };
    // BT.601 limited range red: Y 81, Cb 90, Cr 240 (within rounding).
    let (y, cb, cr) = (sample(0), sample(1), sample(2));
    assert!(
        (79..=83).contains(&y) && (88..=92).contains(&cb) && (238..=242).contains(&cr),
        "{y} {cb} {cr}"
    );
}

#[test]
fn decodes_audio_to_the_right_tone() {
    let m = master(Fixture::MultiShot);
    let mut d = Demuxer::open(&m.path).unwrap();
    let a = d.info().audio_streams().next().unwrap();
    let mut dec = d.audio_decoder(a).unwrap();
    let mut samples: Vec<f32> = Vec::new();
    let mut rate = 0;
    while let Some(p) = d.read().unwrap() {
        if p.stream() != a {
            continue;
        }
        dec.send(&p).unwrap();
        while let Some(f) = dec.receive().unwrap() {
            rate = f.sample_rate;
            samples.extend(&f.to_f32_planar().unwrap()[0]);
        }
    }
    assert_eq!(rate, 48_000);
    let seconds = samples.len() as f64 / 48_000.0;
    assert!(
        (seconds - m.truth.audio[0].seconds).abs() < 0.05,
        "{seconds}"
    );
    assert!(samples.iter().all(|s| (-1.0..=1.0).contains(s)));
    // A 440 Hz sine crosses zero upwards 440 times a second.
    let middle = &samples[48_000..96_000];
    let ups = middle
        .windows(2)
        .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
        .count();
    assert!(
        (438..=442).contains(&ups),
        "{ups} upward zero crossings in one second"
    );
}

#[test]
fn reads_the_real_clips() {
    let Some(dir) = fixtures::shared_media() else {
        eprintln!("skipped: the real clips in ../shared/media are missing");
        return;
    };
    let expect = [
        ("car-detection.mp4", 377, Rational::new(25, 2)),
        (
            "one-by-one-person-detection.mp4",
            1394,
            Rational::new(10, 1),
        ),
        ("bottle-detection.mp4", 1189, Rational::new(179, 6)),
    ];
    for (name, frames, rate) in expect {
        let path = dir.join(name);
        let info = media::probe(&path, false).unwrap();
        let v = info.streams[info.best_video().unwrap()]
            .video
            .as_ref()
            .unwrap();
        assert_eq!(v.r_frame_rate, rate, "{name}");
        assert_eq!(decode_all(&path).len(), frames, "{name}");
    }
}

#[test]
fn hostile_and_missing_paths_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A name that libavformat would read as a protocol must be treated as a plain file.
    let m = master(Fixture::TwoAudio);
    let tricky = dir.path().join("concat:a|b.mp4");
    std::fs::copy(&m.path, &tricky).unwrap();
    assert!(Demuxer::open(&tricky).is_ok());
    // Not UTF-8.
    use std::os::unix::ffi::OsStrExt;
    let odd = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"m\xffaster.mp4"));
    std::fs::copy(&m.path, &odd).unwrap();
    assert!(Demuxer::open(&odd).is_ok());
    match Demuxer::open(dir.path().join("missing.mp4")) {
        Err(MediaError::Io { .. }) => {}
        other => panic!("expected an I/O error, got {:?}", other.err()),
    }
    match Demuxer::open(dir.path()) {
        Err(MediaError::NotMedia { reason, .. }) => assert!(reason.contains("directory")),
        other => panic!("expected not-media, got {:?}", other.err()),
    }
    let empty = dir.path().join("empty.mov");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        Demuxer::open(&empty),
        Err(MediaError::Empty { .. })
    ));
    let text = dir.path().join("text.mp4");
    std::fs::write(&text, "hello\n".repeat(100)).unwrap();
    let e = Demuxer::open(&text).err().unwrap();
    assert!(e.to_string().contains("not a readable media file"), "{e}");
    // Asking for the wrong kind of stream.
    let d = Demuxer::open(&m.path).unwrap();
    assert!(matches!(
        d.audio_decoder(0),
        Err(MediaError::WrongStreamKind { .. })
    ));
    assert!(matches!(
        d.video_decoder(9, &DecoderOptions::default()),
        Err(MediaError::NoSuchStream { .. })
    ));
}
