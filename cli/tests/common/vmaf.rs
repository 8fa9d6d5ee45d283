//! Running libvmaf's `vmaf` tool and comparing its log with `rungs vmaf`'s report.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::arg;

/// Per-frame VMAF and pooled VMAF bars of the issue.
pub const FRAME_BAR: f64 = 0.2;
pub const POOLED_BAR: f64 = 0.05;
/// Elementary features: libvmaf prints six decimals, so its values are within 5e-7 of ours
/// when the computation is the same.
pub const FEATURE_TOL: f64 = 2e-6;
/// PSNR is printed with six decimals too, but in dB; SSIM as a fraction.
pub const PSNR_TOL: f64 = 1e-5;

/// Our per-frame keys and libvmaf's.
fn feature_keys() -> Vec<(&'static str, Option<usize>, String)> {
    let mut keys = vec![
        ("adm2", None, "integer_adm2".to_owned()),
        ("motion", None, "integer_motion".to_owned()),
        ("motion2", None, "integer_motion2".to_owned()),
        ("ssim", None, "float_ssim".to_owned()),
    ];
    for i in 0..4 {
        keys.push(("vif", Some(i), format!("integer_vif_scale{i}")));
        keys.push(("adm", Some(i), format!("integer_adm_scale{i}")));
    }
    for (i, p) in ["psnr_y", "psnr_cb", "psnr_cr"].into_iter().enumerate() {
        keys.push(("psnr", Some(i), p.to_owned()));
    }
    keys
}

/// Runs libvmaf's `vmaf` on Y4M inputs with PSNR and SSIM, and returns its JSON log.
pub fn libvmaf(reference: &Path, distorted: &Path, model: &str) -> Value {
    let cli = fixtures::libvmaf_cli().expect("the libvmaf reference tool builds");
    let out = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new(&cli)
        .args(["-r", arg(reference), "-d", arg(distorted)])
        .args(["--json", "-o", arg(out.path()), "--threads", "2", "-q"])
        .args(["--feature", "psnr", "--feature", "float_ssim", "-m", model])
        .output()
        .expect("libvmaf runs");
    assert!(
        status.status.success(),
        "libvmaf failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap()
}

/// How far apart two runs are.
#[derive(Debug, Default)]
pub struct Deltas {
    pub frames: usize,
    pub pooled_mean: f64,
    pub pooled_harmonic: f64,
    pub pooled_min: f64,
    pub frame_max: f64,
    /// The largest feature difference, its feature and frame.
    pub feature_max: (f64, String, usize),
    pub psnr_max: f64,
    pub vmaf_mean: f64,
}

pub fn compare(name: &str, theirs: &Value, ours: &Value) -> Deltas {
    let frames = theirs["frames"].as_array().expect("libvmaf frames");
    let mine = ours["per_frame"].as_array().expect("our per-frame scores");
    assert_eq!(
        frames.len(),
        mine.len(),
        "{name}: libvmaf scored {} frames, rungs {}",
        frames.len(),
        mine.len()
    );
    let mut d = Deltas {
        frames: frames.len(),
        ..Deltas::default()
    };
    for (i, (t, o)) in frames.iter().zip(mine).enumerate() {
        let m = &t["metrics"];
        let dv = (m["vmaf"].as_f64().unwrap() - o["vmaf"].as_f64().unwrap()).abs();
        d.frame_max = d.frame_max.max(dv);
        for (ours_key, index, their_key) in feature_keys() {
            let Some(tv) = m[&their_key].as_f64() else {
                panic!("{name}: libvmaf has no {their_key}")
            };
            let ov = match index {
                Some(k) => &o[ours_key][k],
                None => &o[ours_key],
            };
            let ov = ov
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: rungs has no {ours_key} at frame {i}"));
            let delta = (tv - ov).abs();
            if ours_key == "psnr" {
                d.psnr_max = d.psnr_max.max(delta);
            } else if delta > d.feature_max.0 {
                d.feature_max = (delta, their_key, i);
            }
        }
    }
    let tp = &theirs["pooled_metrics"]["vmaf"];
    let op = &ours["pooled"]["vmaf"];
    let diff = |k: &str| (tp[k].as_f64().unwrap() - op[k].as_f64().unwrap()).abs();
    d.pooled_mean = diff("mean");
    d.pooled_harmonic = diff("harmonic_mean");
    d.pooled_min = diff("min");
    d.vmaf_mean = op["mean"].as_f64().unwrap();
    d
}
