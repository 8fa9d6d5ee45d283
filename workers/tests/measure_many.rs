//! Measuring several renditions of one master in one pass gives, bit for bit, what measuring
//! each alone gives; and an input that does not match is named in the error.

use std::path::{Path, PathBuf};
use std::process::Command;

use fixtures::Fixture;
use workers::measure::{MeasureError, MeasureOptions, measure, measure_many};

/// A rendition of the first `frames` frames of `master` made by the ffmpeg CLI.
fn rendition(master: &Path, dir: &Path, name: &str, size: &str, crf: u32, frames: u32) -> PathBuf {
    let out = dir.join(format!("{name}.mp4"));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(master)
        .args(["-frames:v", &frames.to_string(), "-an", "-s", size])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-crf"])
        .arg(crf.to_string())
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    out
}

#[test]
fn one_pass_over_many_renditions_scores_each_as_alone() {
    let master = fixtures::ensure(Fixture::MultiShot).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reference = rendition(&master.path, dir.path(), "reference", "640x360", 0, 60);
    let renditions = [
        rendition(&master.path, dir.path(), "low", "416x234", 34, 60),
        rendition(&master.path, dir.path(), "mid", "512x288", 26, 60),
        rendition(&master.path, dir.path(), "same", "640x360", 40, 60),
    ];
    let options = MeasureOptions {
        per_frame: true,
        ..Default::default()
    };
    let paths: Vec<&Path> = renditions.iter().map(PathBuf::as_path).collect();
    let mut progress = Vec::new();
    let many = measure_many(&reference, &paths, &options, &mut |n| progress.push(n)).unwrap();
    assert_eq!(many.len(), 3);
    assert_eq!(progress.last(), Some(&60));
    for (path, together) in paths.iter().zip(&many) {
        let alone = measure(&reference, path, &options, &mut |_| {}).unwrap();
        assert_eq!(together.distorted, *path);
        assert_eq!(together.scaled, alone.scaled);
        assert_eq!(together.frames, 60);
        let (a, b) = (
            together.per_frame.as_ref().unwrap(),
            alone.per_frame.as_ref().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            // Every feature, bit for bit (JSON keeps every digit of an f64).
            assert_eq!(
                serde_json::to_string(x).unwrap(),
                serde_json::to_string(y).unwrap(),
                "{} frame {}",
                path.display(),
                x.frame
            );
        }
        assert_eq!(
            together.pooled.vmaf.mean.to_bits(),
            alone.pooled.vmaf.mean.to_bits()
        );
    }
    // The renditions differ, so the comparison above could fail.
    assert!(many[0].pooled.vmaf.mean < many[1].pooled.vmaf.mean);
    assert!(!many[2].scaled && many[0].scaled);
}

#[test]
fn a_rendition_with_other_frames_is_named() {
    let master = fixtures::ensure(Fixture::MultiShot).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reference = rendition(&master.path, dir.path(), "reference", "640x360", 0, 30);
    let good = rendition(&master.path, dir.path(), "good", "416x234", 30, 30);
    let short = rendition(&master.path, dir.path(), "short", "416x234", 30, 24);
    let err = measure_many(
        &reference,
        &[&good, &short],
        &MeasureOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    match &err {
        MeasureError::Of { path, error } => {
            assert_eq!(path, &short);
            assert!(
                matches!(
                    **error,
                    MeasureError::FrameCount {
                        reference: 30,
                        distorted: 24
                    }
                ),
                "{error}"
            );
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("short.mp4"), "{err}");
    // A file that is not media, among others, is named too.
    let junk = dir.path().join("junk.mp4");
    std::fs::write(&junk, b"not a video at all").unwrap();
    let err = measure_many(
        &reference,
        &[&good, &junk],
        &MeasureOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(&err, MeasureError::Of { path, .. } if path == &junk),
        "{err}"
    );
    assert!(
        measure_many(&reference, &[], &MeasureOptions::default(), &mut |_| {})
            .unwrap()
            .is_empty()
    );
}
