//! Writing JSON (to stdout or a file, whole or not at all) and the human summaries on stderr.

use std::io::Write;
use std::path::Path;

use media::MediaInfo;
use pipeline::ingest::{IngestReport, Severity};
use pipeline::shots::ShotReport;
use serde::Serialize;

use crate::args::OutputArgs;
use crate::exit::Failure;

/// Writes `value` as JSON to the chosen place.
/// Pretty JSON on stdout.
pub fn pretty<T: Serialize>(value: &T) -> anyhow::Result<()> {
    json(
        value,
        &OutputArgs {
            output: None,
            compact: false,
        },
    )
}

pub fn json<T: Serialize>(value: &T, out: &OutputArgs) -> anyhow::Result<()> {
    let mut text = if out.compact {
        serde_json::to_string(value)?
    } else {
        serde_json::to_string_pretty(value)?
    };
    text.push('\n');
    match &out.output {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| Failure::io(format!("cannot write to stdout: {e}")))
        }
        Some(path) => write_atomically(path, text.as_bytes()),
    }
}

/// Writes the whole file or nothing (see [`store::fsutil::write_file_atomic`]).
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    store::fsutil::write_file_atomic(path, |f| f.write_all(bytes))
        .map_err(|e| Failure::io(format!("cannot write {}: {e}", path.display())))
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The probe summary.
pub fn probe_summary(info: &MediaInfo) -> String {
    let mut s = format!(
        "{}: {}, {}, {}",
        info.path.display(),
        info.container,
        info.duration_seconds
            .map(|d| format!("{d:.3} s"))
            .unwrap_or_else(|| "unknown duration".into()),
        mb(info.size_bytes),
    );
    if let Some(b) = info.bit_rate {
        s.push_str(&format!(", {:.0} kb/s", b as f64 / 1000.0));
    }
    for st in &info.streams {
        s.push_str(&format!(
            "\n  #{} {} {}",
            st.index,
            st.kind.name(),
            st.codec
        ));
        if let Some(p) = &st.profile {
            s.push_str(&format!(" ({p})"));
        }
        if let Some(v) = &st.video {
            s.push_str(&format!(
                " {}x{} SAR {} DAR {} {} {}-bit {} fps {}",
                v.width,
                v.height,
                v.sample_aspect_ratio,
                v.display_aspect_ratio,
                v.pixel_format,
                v.bit_depth.unwrap_or(0),
                v.r_frame_rate,
                v.field_order
            ));
            if v.hdr.format != "sdr" {
                s.push_str(&format!(" {}", v.hdr.format.to_uppercase()));
            }
        }
        if let Some(a) = &st.audio {
            s.push_str(&format!(" {} Hz {}", a.sample_rate, a.channel_layout));
        }
        if let Some(l) = &st.language {
            s.push_str(&format!(" [{l}]"));
        }
    }
    s
}

/// The validation summary.
pub fn validate_summary(r: &IngestReport) -> String {
    let errors = r.errors().count();
    let warnings = r
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Warning)
        .count();
    let mut s = format!(
        "{}: {} ({errors} errors, {warnings} warnings)",
        r.master.display(),
        if r.accepted { "ACCEPTED" } else { "REJECTED" }
    );
    for p in r.problems.iter().take(20) {
        let sev = match p.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let pos = p.position();
        s.push_str(&format!("\n  {sev:<7} {:<24} {}", p.kind.name(), p.message));
        if !pos.is_empty() {
            s.push_str(&format!(" [{pos}]"));
        }
    }
    if r.problems.len() > 20 {
        s.push_str(&format!(
            "\n  ... {} more in the JSON",
            r.problems.len() - 20
        ));
    }
    if let Some(v) = &r.video {
        s.push_str(&format!(
            "\n  video: {} {}x{}, {} frames, {:.3} s at {} fps{}",
            v.codec,
            v.width,
            v.height,
            v.timing.frames,
            v.timing.duration_seconds,
            v.timing
                .frame_rate
                .map(|r| r.to_string())
                .unwrap_or_else(|| "?".into()),
            if v.timing.constant_frame_rate {
                ""
            } else {
                " (not constant)"
            }
        ));
    }
    for a in &r.audio {
        s.push_str(&format!(
            "\n  audio #{}: {:.3} s at {} Hz{}",
            a.stream,
            a.duration_seconds,
            a.sample_rate,
            a.language
                .as_ref()
                .map(|l| format!(" [{l}]"))
                .unwrap_or_default()
        ));
    }
    if let Some(sh) = &r.shots {
        s.push('\n');
        s.push_str(&shots_summary(sh));
    }
    s
}

/// The shots summary.
pub fn shots_summary(r: &ShotReport) -> String {
    let mut s = format!(
        "  shots: {} cuts, {} shots, {} chunks (min {} s, max {} s)",
        r.cuts.len(),
        r.shots.len(),
        r.chunks.len(),
        r.chunk_rules.min_seconds,
        r.chunk_rules.max_seconds
    );
    for c in r.chunks.iter().take(30) {
        s.push_str(&format!(
            "\n    chunk {:>3}: frames {:>6}..{:<6} {:>9.3} s +{:.3} s  {:?}",
            c.index,
            c.start_frame,
            c.start_frame + c.frames,
            c.start_seconds,
            c.duration_seconds,
            c.reason
        ));
    }
    if r.chunks.len() > 30 {
        s.push_str(&format!(
            "\n    ... {} more in the JSON",
            r.chunks.len() - 30
        ));
    }
    s
}

/// The VMAF summary.
pub fn vmaf_summary(r: &workers::measure::MeasureReport) -> String {
    let v = &r.pooled.vmaf;
    let mut s = format!(
        "{}: VMAF {:.2} (harmonic mean {:.2}, min {:.2}, 5th percentile {:.2}) over {} frames at {}x{}, model {}",
        r.distorted.display(),
        v.mean,
        v.harmonic_mean,
        v.min,
        v.p5,
        r.frames,
        r.width,
        r.height,
        r.model
    );
    if let Some(p) = &r.pooled.psnr_y {
        s.push_str(&format!("; PSNR-Y {:.2} dB", p.mean));
    }
    if let Some(p) = &r.pooled.ssim {
        s.push_str(&format!("; SSIM {:.4}", p.mean));
    }
    s
}

pub fn encode_summary(r: &pipeline::encode::EncodeReport, out: &Path) -> String {
    let mut s = format!(
        "{}: {} frames at {} fps in {} chunks, {} rungs of {} in {}",
        r.master.display(),
        r.frames,
        pipeline::encode::rate_text(r.frame_rate),
        r.chunks,
        r.rungs.len(),
        if r.codecs.is_empty() {
            r.codec.name().to_owned()
        } else {
            let names: Vec<&str> = r.codecs.iter().map(|c| c.codec.name()).collect();
            names.join(", ")
        },
        out.display()
    );
    if r.reused_chunk_encodes > 0 {
        s += &format!(" ({} chunk encodes reused)", r.reused_chunk_encodes);
    }
    for c in &r.codecs {
        s += &format!("\n  {}: {} rungs", c.codec.name(), c.rungs.len());
        if let Some(b) = &c.against_h264 {
            match (b.bd_rate_percent, b.quality_range) {
                (Some(bd), Some((lo, hi))) => {
                    s += &format!(", BD-rate {bd:+.1}% against H.264 (VMAF {lo:.0}-{hi:.0})")
                }
                _ => {
                    s += &format!(
                        ", no BD-rate against H.264 ({})",
                        b.why_none.as_deref().unwrap_or("?")
                    )
                }
            }
        }
    }
    for g in &r.rungs {
        s += &format!(
            "\n  {:<16} {:>5}x{:<5} {:>8.0} kbps avg {:>8.0} peak",
            g.name, g.width, g.height, g.average_kbps, g.peak_kbps
        );
        if let Some(v) = g.vmaf {
            s += &format!(
                "  VMAF {:.2} (harmonic {:.2}, min {:.2})",
                v.mean, v.harmonic_mean, v.min
            );
        }
    }
    if let Some(p) = &r.package {
        s += &format!(
            "\npackaged: {} and {} in {} ({} segments per track, {} audio, {} subtitle tracks, {} thumbnail sheets, {} files)",
            p.hls,
            p.dash,
            out.display(),
            p.segments,
            p.audio.len(),
            p.subtitles.len(),
            p.thumbnail_sheets,
            p.files
        );
        let encrypted: Vec<&pipeline::encode::package::TrackEncryption> = p
            .video
            .iter()
            .chain(&p.audio)
            .filter_map(|t| t.encryption.as_ref())
            .collect();
        if let Some(first) = encrypted.first() {
            let mut kids: Vec<&str> = encrypted.iter().map(|e| e.kid.as_str()).collect();
            kids.sort_unstable();
            kids.dedup();
            s += &format!(
                "\nencrypted: {} ({} of {} tracks, {} key{}: {})",
                first.scheme,
                encrypted.len(),
                p.video.len() + p.audio.len(),
                kids.len(),
                if kids.len() == 1 { "" } else { "s" },
                kids.join(", ")
            );
        }
        for w in &p.warnings {
            s += &format!("\n  warning: {w}");
        }
    }
    s
}
