//! What content-ops people read instead of JSON: a title's page (the ladder, why it is what it
//! is) as one self-contained HTML file (`rungs report`), with server-rendered SVG charts.

pub mod serve;
pub mod svg;
mod view;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use svg::{Mark, Series, esc};
pub use view::TitleReport;
use view::{Protected, Rd, Rung, Saved, Section, Stage, TitlePage};

/// The page's CSS.
const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse}\
td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f4f4f4}\
td:first-child,th:first-child{text-align:left}.chart{display:block;margin:8px 0}\
.ct{font-weight:600;font-size:13px}.tk{font-size:10px;fill:#555}.ax{font-size:11px}\
.lg{font-size:11px}.thumbs{display:flex;flex-wrap:wrap;gap:6px}.thumb{font-size:11px;text-align:center}\
.note{color:#555}.saved{font-size:16px;font-weight:600}.pair{display:flex;flex-wrap:wrap;gap:8px}\
.pair .chart{max-width:49%;height:auto}";

/// The most points a per-frame VMAF line draws.
const MAX_LINE_POINTS: usize = 1500;

/// The title page of an encode report (`report.json`, read with [`TitleReport::parse`]), with
/// thumbnails from the packaged title in `dir` when it has them. Self-contained: styles,
/// charts and images inline.
pub fn title_page(report: &TitleReport, dir: Option<&Path>) -> String {
    let page = TitlePage::from_report(report);
    let mut h = head(&page);
    if page.sections.is_empty() {
        h.push_str(&ladder_table(&page.rungs, "ladder"));
        // Bits saved against the fixed ladder (Apple's for this master), at equal quality.
        if let Some(s) = &page.saved {
            h.push_str(&saved(s, "saved"));
        }
        h.push_str(&notes(&page.notes, "ladder-notes"));
        h.push_str(&protection_table(&page.protection));
        h.push_str(&stages_table(&page.stages));
        h.push_str(&rd_chart(page.rd.as_ref(), &page.rungs, "rd"));
        h.push_str(&chunks_heat_map(&page.rungs));
        h.push_str(&vmaf_chart(&page.rungs));
    } else {
        h.push_str(&codecs_table(&page.sections));
        h.push_str(&codecs_chart(&page.sections));
        h.push_str(&protection_table(&page.protection));
        h.push_str(&stages_table(&page.stages));
        for s in &page.sections {
            h.push_str(&section(s));
        }
    }
    // Thumbnails of the chunks' first frames, from the packaged title's sprite sheets.
    if let Some(dir) = dir {
        h.push_str(&thumbnails(&page, dir));
    }
    h.push_str("</body></html>\n");
    h
}

/// The document's head, the title and the line that sums the title up.
fn head(page: &TitlePage) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · rungs</title>\
         <style>{STYLE}</style></head><body><h1>{t}</h1><p class=\"note\">{codec}, {frames} frames \
         at {rate} fps ({dur:.1} s), {chunks} chunks, {n} rungs{mode}</p>",
        t = esc(&page.name),
        codec = esc(&page.codec),
        frames = esc(&page.frames),
        rate = esc(&page.frame_rate),
        dur = page.duration_seconds,
        chunks = esc(&page.chunks),
        n = page.rungs.len(),
        mode = page
            .mode
            .as_ref()
            .map(|m| format!(", a {} ladder", esc(m)))
            .unwrap_or_else(|| ", a fixed ladder".into()),
    )
}

/// The codecs of a multi-codec title side by side, each against the H.264 ladder.
fn codecs_table(sections: &[Section]) -> String {
    let mut h = String::from(
        "<h2>Codecs</h2><table id=\"codecs\"><tr><th>codec</th><th>rungs</th><th>kbit/s</th>\
         <th>VMAF mean</th><th>BD-rate vs H.264</th><th>BD-VMAF</th><th>compared over VMAF</th></tr>",
    );
    for s in sections {
        let range = |f: fn(&Rung) -> f64, digits: usize| {
            let v: Vec<f64> = s.rungs.iter().map(f).filter(|x| x.is_finite()).collect();
            match (
                v.iter().copied().reduce(f64::min),
                v.iter().copied().reduce(f64::max),
            ) {
                (Some(lo), Some(hi)) => format!("{lo:.digits$}–{hi:.digits$}"),
                _ => "–".into(),
            }
        };
        let (bd, vmaf, over) = match &s.against_h264 {
            None => ("–".into(), "–".into(), "(the anchor)".into()),
            Some(a) => match (a.bd_rate_percent, a.quality_range) {
                (Some(bd), Some((lo, hi))) => (
                    format!("{bd:+.1}%"),
                    a.bd_vmaf.map_or("–".into(), |v| format!("{v:+.2}")),
                    format!("{lo:.1}–{hi:.1} ({})", esc(&a.basis)),
                ),
                _ => (
                    "–".into(),
                    "–".into(),
                    format!("none: {}", esc(&a.why_none)),
                ),
            },
        };
        let _ = write!(
            h,
            "<tr class=\"codec-row\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{bd}</td><td>{vmaf}</td><td>{over}</td></tr>",
            esc(&s.codec),
            s.rungs.len(),
            range(|r| r.average_kbps, 0),
            range(|r| r.vmaf_mean, 2),
        );
    }
    h.push_str("</table>");
    h
}

/// Every codec's measured rungs on one rate-quality chart.
fn codecs_chart(sections: &[Section]) -> String {
    let series: Vec<Series> = sections
        .iter()
        .enumerate()
        .map(|(i, s)| Series {
            name: s.codec.clone(),
            class: format!("codec-{}", svg::class_safe(&s.codec)),
            color: svg::color(i),
            mark: Mark::Line,
            points: s
                .rungs
                .iter()
                .map(|r| (r.average_kbps, r.vmaf_mean))
                .collect(),
        })
        .collect();
    svg::chart(
        "codecs-rd",
        "Each codec's rungs as measured",
        "kbit/s (log)",
        "VMAF (mean)",
        &series,
        true,
    )
}

/// One codec's ladder: its table, its comparison with Apple's ladder, its notes and charts.
fn section(s: &Section) -> String {
    let id = svg::class_safe(&s.codec);
    let mut h = format!(
        "<h2 id=\"codec-{id}\">{}{}</h2>",
        esc(&s.codec),
        s.mode
            .as_ref()
            .map(|m| format!(": a {} ladder", esc(m)))
            .unwrap_or_else(|| ": a fixed ladder".into())
    );
    h.push_str(&ladder_table(&s.rungs, &format!("ladder-{id}")));
    if let Some(saved_) = &s.saved {
        h.push_str(&saved(saved_, &format!("saved-{id}")));
    }
    h.push_str(&notes(&s.notes, &format!("ladder-notes-{id}")));
    h.push_str(&rd_chart(s.rd.as_ref(), &s.rungs, &format!("rd-{id}")));
    h.push_str(&chunks_heat_map(&s.rungs));
    h
}

/// The ladder table: a row per rung.
fn ladder_table(rungs: &[Rung], id: &str) -> String {
    let mut h = format!(
        "<h2>Ladder</h2><table id=\"{id}\"><tr><th>rung</th><th>size</th><th>average kbit/s</th><th>peak kbit/s</th><th>VMAF mean</th><th>harmonic</th><th>min</th><th>CRF (first chunk)</th></tr>",
    );
    for r in rungs {
        let crf = r
            .chunks
            .first()
            .and_then(|c| c.crf)
            .map_or("–".into(), |c| format!("{c:.1}"));
        let _ = write!(
            h,
            "<tr class=\"rung-row\"><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.0}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{crf}</td></tr>",
            esc(&r.name),
            esc(&r.size),
            r.average_kbps,
            r.peak_kbps,
            r.vmaf_mean,
            r.vmaf_harmonic,
            r.vmaf_min,
        );
    }
    h.push_str("</table>");
    h
}

/// The encrypted tracks, by key ID (nothing when the title is clear).
fn protection_table(tracks: &[Protected]) -> String {
    if tracks.is_empty() {
        return String::new();
    }
    let mut h = String::from(
        "<h2>Encryption</h2><table id=\"protection\"><tr><th>track</th><th>scheme</th><th>key ID</th><th>clear segments</th></tr>",
    );
    for t in tracks {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.track),
            esc(&t.scheme),
            esc(&t.kid),
            t.clear_segments
        );
    }
    h.push_str("</table>");
    h
}

/// The ladder's notes, as a list.
fn notes(notes: &[String], id: &str) -> String {
    if notes.is_empty() {
        return String::new();
    }
    let mut h = format!("<ul id=\"{id}\">");
    for n in notes {
        let _ = write!(h, "<li>{}</li>", esc(n));
    }
    h.push_str("</ul>");
    h
}

/// Where the time went: wall and CPU seconds of every stage, with each one's share of the CPU.
fn stages_table(stages: &[Stage]) -> String {
    if stages.is_empty() {
        return String::new();
    }
    let total: f64 = stages.iter().map(|s| s.cpu_seconds).sum();
    let mut h = String::from(
        "<h2>Where the time went</h2><table id=\"stages\"><tr><th>stage</th><th>wall s</th>\
         <th>CPU s</th><th>share of CPU</th></tr>",
    );
    for s in stages {
        let cpu = s.cpu_seconds;
        let _ = write!(
            h,
            "<tr class=\"stage-row\"><td>{}</td><td>{:.1}</td><td>{cpu:.1}</td><td>{:.0}%</td></tr>",
            esc(&s.name),
            s.wall_seconds,
            if total > 0.0 {
                100.0 * cpu / total
            } else {
                0.0
            },
        );
    }
    h.push_str("</table>");
    h
}

/// The RD scatter per resolution, the hull, the chosen rungs.
fn rd_chart(rd: Option<&Rd>, rungs: &[Rung], id: &str) -> String {
    let mut series = Vec::new();
    if let Some(rd) = rd {
        for (i, ((hgt, wid), pts)) in rd.by_size.iter().enumerate() {
            series.push(Series {
                name: format!("{wid}x{hgt}"),
                class: format!("s{wid}x{hgt}"),
                color: svg::color(i),
                mark: Mark::Dots,
                points: pts.clone(),
            });
        }
        series.push(Series {
            name: "convex hull".into(),
            class: "hull".into(),
            color: "#000".into(),
            mark: Mark::Line,
            points: rd.hull.clone(),
        });
    }
    series.push(Series {
        name: "rungs (measured)".into(),
        class: "chosen".into(),
        color: "#d62728".into(),
        mark: Mark::Diamonds,
        points: rungs
            .iter()
            .map(|r| (r.average_kbps, r.vmaf_mean))
            .collect(),
    });
    let mut h = String::from("<h2>Rate and quality</h2>");
    h.push_str(&svg::chart(
        id,
        "Pooled probes per resolution, the convex hull and the rungs",
        "kbit/s (log)",
        "VMAF (mean)",
        &series,
        true,
    ));
    h
}

/// Every rung's setting per chunk, one heat map (bit rates on hover); nothing when no chunk
/// has a CRF.
fn chunks_heat_map(rungs: &[Rung]) -> String {
    let rows: Vec<String> = rungs.iter().map(|r| r.name.clone()).collect();
    let cells: Vec<Vec<Option<svg::Cell>>> = rungs
        .iter()
        .map(|r| {
            r.chunks
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    c.crf.map(|crf| svg::Cell {
                        value: crf,
                        hover: format!("{}, chunk {i}: CRF {crf:.2}, {:.0} kbit/s", r.name, c.kbps),
                    })
                })
                .collect()
        })
        .collect();
    if !cells.iter().flatten().any(Option::is_some) {
        return String::new();
    }
    let mut h = String::from("<h2>Chunks</h2>");
    h.push_str(&svg::heat_map(
        "chunks",
        "CRF of every chunk of every rung (darker spends more bits; kbit/s on hover)",
        &rows,
        &cells,
    ));
    h
}

/// Per-frame VMAF, per rung (at most [`MAX_LINE_POINTS`] points a line: the minimum of each
/// bucket, so dips stay visible); nothing when no rung has it.
fn vmaf_chart(rungs: &[Rung]) -> String {
    let lines: Vec<Series> = rungs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let v = r.per_frame_vmaf.as_ref()?;
            let step = v.len().div_ceil(MAX_LINE_POINTS).max(1);
            let points = v
                .chunks(step)
                .enumerate()
                .map(|(k, c)| {
                    (
                        (k * step) as f64,
                        c.iter().copied().fold(f64::MAX, f64::min),
                    )
                })
                .collect();
            Some(Series {
                name: r.name.clone(),
                class: "vmaf-line".into(),
                color: svg::color(i),
                mark: Mark::Line,
                points,
            })
        })
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    let mut h = String::from("<h2>VMAF per frame</h2>");
    h.push_str(&svg::chart(
        "vmaf",
        "VMAF of every frame, per rung",
        "frame",
        "VMAF",
        &lines,
        false,
    ));
    h
}

/// The bits this ladder saves against Apple's fixed ladder for the same master, at equal
/// quality: measured when the encode also encoded Apple's ladder (`--compare-fixed`), otherwise
/// the report's estimate on the title's curves, labelled as one. A fixed ladder has neither.
fn saved(e: &Saved, id: &str) -> String {
    let headline = match e.bd_rate_percent {
        Some(bd) if bd <= 0.0 => format!(
            "{:.1}% fewer bits than Apple's fixed ladder at equal VMAF (BD-rate {bd:+.1}%)",
            -bd
        ),
        Some(bd) => format!(
            "{bd:.1}% more bits than Apple's fixed ladder at equal VMAF (BD-rate {bd:+.1}%)"
        ),
        None => format!("no comparison: {}", e.why_none),
    };
    let note = if e.measured {
        format!(
            "Measured: {} of Apple's rungs for this master encoded with the same encoder and \
             preset and scored like the rungs ({}).",
            e.rungs,
            esc(&e.basis)
        )
    } else {
        format!(
            "An {}: {} of Apple's rungs for this master compared{}. \
             `rungs encode --compare-fixed` encodes Apple's ladder for a measured comparison.",
            esc(&e.basis),
            e.rungs,
            if e.left_out > 0 {
                format!(", {} outside the curves left out", e.left_out)
            } else {
                String::new()
            },
        )
    };
    format!(
        "<h2>Bits saved against the fixed ladder</h2><p id=\"{id}\" class=\"saved\">{}</p>\
         <p class=\"note\">{note}</p>",
        esc(&headline),
    )
}

/// One cue of the thumbnails' WebVTT: a sprite tile and when it starts.
struct Cue {
    /// Start, in seconds.
    seconds: f64,
    /// The sprite sheet's file name.
    sheet: String,
    /// The tile's left edge in the sheet.
    x: u32,
    /// The tile's top edge in the sheet.
    y: u32,
    /// The tile's width.
    w: u32,
    /// The tile's height.
    h: u32,
}

/// The cues of a thumbnails WebVTT file; cues it cannot read are skipped.
fn cues(vtt: &str) -> Vec<Cue> {
    let mut cues = Vec::new();
    let mut lines = vtt.lines().peekable();
    while let Some(l) = lines.next() {
        let Some((a, _)) = l.split_once(" --> ") else {
            continue;
        };
        let Some(target) = lines.next() else { break };
        let seconds = a.split(':').fold(0.0, |acc, p| {
            acc * 60.0 + p.trim().parse::<f64>().unwrap_or(0.0)
        });
        let Some((sheet, frag)) = target.split_once("#xywh=") else {
            continue;
        };
        let v: Vec<u32> = frag.split(',').filter_map(|x| x.parse().ok()).collect();
        if let [x, y, w, h] = v[..] {
            cues.push(Cue {
                seconds,
                sheet: sheet.to_owned(),
                x,
                y,
                w,
                h,
            });
        }
    }
    cues
}

/// A tile per chunk: the sprite tile nearest its start, cropped out of the sheet with CSS.
fn thumbnails(page: &TitlePage, dir: &Path) -> String {
    let Ok(vtt) = std::fs::read_to_string(dir.join("thumbs/thumbnails.vtt")) else {
        return String::new();
    };
    let cues = cues(&vtt);
    let mut sheets: BTreeMap<String, String> = BTreeMap::new();
    let mut out = String::from("<h2>Shots</h2><div class=\"thumbs\">");
    let rate = page
        .frame_rate
        .split_once('/')
        .and_then(|(n, d)| Some(n.parse::<f64>().ok()? / d.parse::<f64>().ok()?))
        .unwrap_or(25.0);
    let starts: Vec<f64> = page
        .rungs
        .first()
        .into_iter()
        .flat_map(|r| &r.chunks)
        .map(|c| c.start_frame / rate)
        .collect();
    for (i, s) in starts.iter().enumerate() {
        let Some(c) = cues
            .iter()
            .min_by(|a, b| (a.seconds - s).abs().total_cmp(&(b.seconds - s).abs()))
        else {
            continue;
        };
        // Sheet names come from our own VTT; only plain names inside thumbs/ are read.
        if crate::encode::job::safe_name(&c.sheet) != c.sheet {
            continue;
        }
        if !sheets.contains_key(&c.sheet) {
            let Ok(bytes) = std::fs::read(dir.join("thumbs").join(&c.sheet)) else {
                continue;
            };
            sheets.insert(c.sheet.clone(), base64(&bytes));
        }
        let _ = write!(
            out,
            "<div class=\"thumb\"><div class=\"shot\" style=\"width:{w}px;height:{h}px;background:url(data:image/jpeg;base64,{data}) -{x}px -{y}px\"></div>chunk {i} · {s:.1} s</div>",
            w = c.w,
            h = c.h,
            x = c.x,
            y = c.y,
            data = sheets[&c.sheet],
        );
    }
    out.push_str("</div>");
    out
}

/// Standard base64.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                o.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_edited_report_cannot_inject_markup() {
        let evil = "<script>x</script>";
        // Text fields hold it: it is shown as text.
        let report = serde_json::json!({
            "master": evil, "codec": evil, "frames": 10, "frame_rate": evil,
            "chunks": 1, "duration_seconds": 1.0,
            "rungs": [{ "name": evil, "width": 64, "height": 36, "chunks": [] }],
            "ladder": { "mode": evil, "notes": [evil] },
            "stages": [{ "stage": evil, "wall_seconds": null, "cpu_seconds": 1.0 }],
        });
        let r = TitleReport::parse(report.to_string().as_bytes()).unwrap();
        let page = title_page(&r, None);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"), "{page}");
        // A number field that holds text refuses the report, at its position.
        let e = TitleReport::parse(br#"{"rungs": [], "frames": "<b>"}"#).unwrap_err();
        assert!(e.to_string().contains("line 1 column"), "{e}");
    }

    #[test]
    fn a_multi_codec_title_shows_each_ladder_and_the_bd_rate_against_h264() {
        let evil = "<script>x</script>\" onload=\"y";
        let rung = |name: &str, h: u32, kbps: f64, vmaf: f64| {
            serde_json::json!({ "name": name, "width": h * 16 / 9, "height": h,
                "average_kbps": kbps, "peak_kbps": kbps * 1.5,
                "vmaf": { "mean": vmaf, "harmonic_mean": vmaf, "min": vmaf - 5.0 }, "chunks": [] })
        };
        let report = serde_json::json!({
            "master": "m.mov", "codec": "h264", "frames": 10, "frame_rate": "25/1", "chunks": 1,
            "rungs": [rung("360p-h264", 360, 500.0, 80.0), rung("720p-h264", 720, 1500.0, 92.0),
                      rung("720p-av1", 720, 900.0, 93.0), rung(evil, 1080, 2000.0, 96.0)],
            "codecs": [
                { "codec": "h264", "rungs": ["360p-h264", "720p-h264"],
                  "ladder": { "mode": "per-title", "notes": ["h264 note"] } },
                { "codec": "av1", "rungs": ["720p-av1"],
                  "against_h264": { "bd_rate_percent": -38.2, "bd_vmaf": 4.1,
                                    "quality_range": [88.0, 92.0], "basis": "measured" } },
                { "codec": evil, "rungs": [evil],
                  "against_h264": { "bd_rate_percent": null, "why_none": evil } },
            ],
        });
        let r = TitleReport::parse(report.to_string().as_bytes()).unwrap();
        let page = title_page(&r, None);
        for id in [
            "codecs",
            "codecs-rd",
            "ladder-h264",
            "ladder-av1",
            "ladder-notes-h264",
        ] {
            assert!(page.contains(&format!("id=\"{id}\"")), "{id}: {page}");
        }
        assert!(!page.contains("id=\"ladder\""), "{page}");
        assert!(page.contains("<td>av1</td><td>1</td><td>900–900</td><td>93.00–93.00</td><td>-38.2%</td><td>+4.10</td><td>88.0–92.0 (measured)</td>"), "{page}");
        assert!(
            page.contains("<td>h264</td><td>2</td><td>500–1500</td>"),
            "{page}"
        );
        assert!(page.contains("h264, av1, "), "{page}");
        assert!(
            !page.contains("<script>") && !page.contains("\" onload"),
            "{page}"
        );
        // The single-codec page is unchanged.
        let one = serde_json::json!({ "master": "m.mov", "codec": "h264",
            "rungs": [rung("360p", 360, 500.0, 80.0)] });
        let r = TitleReport::parse(one.to_string().as_bytes()).unwrap();
        let page = title_page(&r, None);
        assert!(page.contains("id=\"ladder\"") && !page.contains("id=\"codecs\""));
    }

    #[test]
    fn encrypted_tracks_are_listed_by_key_id() {
        let report = serde_json::json!({
            "master": "m.mov", "codec": "h264", "frames": 10, "frame_rate": "25/1",
            "chunks": 1, "rungs": [{ "name": "360p", "width": 640, "height": 360 }],
            "package": {
                "video": [{ "id": "360p", "encryption": {
                    "scheme": "cbcs", "kid": "01234567-89ab-cdef-0123-456789abcdef", "clear_segments": 1 } }],
                "audio": [{ "id": "en" }],
            },
        });
        let r = TitleReport::parse(report.to_string().as_bytes()).unwrap();
        let page = title_page(&r, None);
        assert!(page.contains("<td>video/360p</td><td>cbcs</td><td>01234567-89ab-cdef-0123-456789abcdef</td><td>1</td>"), "{page}");
        assert!(!page.contains("audio/en"), "{page}");
        // A clear title has no such table.
        let clear = serde_json::json!({ "master": "m.mov", "rungs": [] });
        let r = TitleReport::parse(clear.to_string().as_bytes()).unwrap();
        assert!(!title_page(&r, None).contains("id=\"protection\""));
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
