//! What content-ops people read instead of JSON: a title's page (the ladder, why it is what it
//! is) as one self-contained HTML file (`rungs report`), with server-rendered SVG charts.

pub mod serve;
pub mod svg;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use serde_json::Value;
use svg::{Mark, Series, esc};

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn size_name(p: &Value) -> String {
    format!("{}x{}", p["width"], p["height"])
}

/// The page's CSS.
const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse}\
td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f4f4f4}\
td:first-child,th:first-child{text-align:left}.chart{display:block;margin:8px 0}\
.ct{font-weight:600;font-size:13px}.tk{font-size:10px;fill:#555}.ax{font-size:11px}\
.lg{font-size:11px}.thumbs{display:flex;flex-wrap:wrap;gap:6px}.thumb{font-size:11px;text-align:center}\
.note{color:#555}.saved{font-size:16px;font-weight:600}.pair{display:flex;flex-wrap:wrap;gap:8px}\
.pair .chart{max-width:49%;height:auto}";

/// Where the time went: wall and CPU seconds of every stage, with each one's share of the CPU.
fn stages_table(report: &Value) -> String {
    let Some(stages) = report["stages"].as_array().filter(|s| !s.is_empty()) else {
        return String::new();
    };
    let total: f64 = stages.iter().map(|s| f(&s["cpu_seconds"])).sum();
    let mut h = String::from(
        "<h2>Where the time went</h2><table id=\"stages\"><tr><th>stage</th><th>wall s</th>\
         <th>CPU s</th><th>share of CPU</th></tr>",
    );
    for s in stages {
        let cpu = f(&s["cpu_seconds"]);
        let _ = write!(
            h,
            "<tr class=\"stage-row\"><td>{}</td><td>{:.1}</td><td>{cpu:.1}</td><td>{:.0}%</td></tr>",
            esc(s["stage"].as_str().unwrap_or("")),
            f(&s["wall_seconds"]),
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

/// The title page of an encode report (`report.json` as JSON), with thumbnails from the
/// packaged title in `dir` when it has them. Self-contained: styles, charts and images inline.
pub fn title_page(report: &Value, dir: Option<&Path>) -> String {
    let mut h = String::new();
    let master = report["master"].as_str().unwrap_or("title");
    let name = Path::new(master)
        .file_name()
        .map_or(master.to_owned(), |n| n.to_string_lossy().into_owned());
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · rungs</title>\
         <style>{STYLE}</style></head><body><h1>{t}</h1><p class=\"note\">{codec}, {frames} frames \
         at {rate} fps ({dur:.1} s), {chunks} chunks, {n} rungs{mode}</p>",
        t = esc(&name),
        codec = esc(report["codec"].as_str().unwrap_or("")),
        frames = report["frames"],
        rate = esc(report["frame_rate"].as_str().unwrap_or("")),
        dur = f(&report["duration_seconds"]),
        chunks = report["chunks"],
        n = report["rungs"].as_array().map_or(0, Vec::len),
        mode = report["ladder"]["mode"]
            .as_str()
            .map(|m| format!(", a {m} ladder"))
            .unwrap_or_else(|| ", a fixed ladder".into()),
    );
    let rungs = report["rungs"].as_array().cloned().unwrap_or_default();
    // The ladder table.
    h.push_str("<h2>Ladder</h2><table id=\"ladder\"><tr><th>rung</th><th>size</th><th>average kbit/s</th><th>peak kbit/s</th><th>VMAF mean</th><th>harmonic</th><th>min</th><th>CRF (first chunk)</th></tr>");
    for r in &rungs {
        let v = &r["vmaf"];
        let crf = r["chunks"][0]["crf"]
            .as_f64()
            .map_or("–".into(), |c| format!("{c:.1}"));
        let _ = write!(
            h,
            "<tr class=\"rung-row\"><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.0}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{crf}</td></tr>",
            esc(r["name"].as_str().unwrap_or("")),
            size_name(r),
            f(&r["average_kbps"]),
            f(&r["peak_kbps"]),
            f(&v["mean"]),
            f(&v["harmonic_mean"]),
            f(&v["min"]),
        );
    }
    h.push_str("</table>");

    // Bits saved against the fixed ladder (Apple's for this master), at equal quality.
    h.push_str(&saved(report));
    if let Some(notes) = report["ladder"]["notes"]
        .as_array()
        .filter(|n| !n.is_empty())
    {
        h.push_str("<ul id=\"ladder-notes\">");
        for n in notes {
            let _ = write!(h, "<li>{}</li>", esc(n.as_str().unwrap_or("")));
        }
        h.push_str("</ul>");
    }
    h.push_str(&stages_table(report));

    // The RD scatter per resolution, the hull, the chosen rungs.
    let ladder = &report["ladder"];
    let mut series = Vec::new();
    if let Some(points) = ladder["title_points"].as_array() {
        let mut by_size: BTreeMap<(u64, u64), Vec<(f64, f64)>> = BTreeMap::new();
        for p in points {
            by_size
                .entry((
                    p["height"].as_u64().unwrap_or(0),
                    p["width"].as_u64().unwrap_or(0),
                ))
                .or_default()
                .push((f(&p["kbps"]), f(&p["vmaf_mean"])));
        }
        for (i, ((hgt, wid), pts)) in by_size.into_iter().enumerate() {
            series.push(Series {
                name: format!("{wid}x{hgt}"),
                class: format!("s{wid}x{hgt}"),
                color: svg::color(i),
                mark: Mark::Dots,
                points: pts,
            });
        }
        let hull: Vec<(f64, f64)> = ladder["hull"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i.as_u64().and_then(|i| points.get(i as usize)))
            .map(|p| (f(&p["kbps"]), f(&p["vmaf_mean"])))
            .collect();
        let mut hull = hull;
        hull.sort_by(|a, b| a.0.total_cmp(&b.0));
        series.push(Series {
            name: "convex hull".into(),
            class: "hull".into(),
            color: "#000".into(),
            mark: Mark::Line,
            points: hull,
        });
    }
    series.push(Series {
        name: "rungs (measured)".into(),
        class: "chosen".into(),
        color: "#d62728".into(),
        mark: Mark::Diamonds,
        points: rungs
            .iter()
            .map(|r| (f(&r["average_kbps"]), f(&r["vmaf"]["mean"])))
            .collect(),
    });
    h.push_str("<h2>Rate and quality</h2>");
    h.push_str(&svg::chart(
        "rd",
        "Pooled probes per resolution, the convex hull and the rungs",
        "kbit/s (log)",
        "VMAF (mean)",
        &series,
        true,
    ));

    // Every rung's setting per chunk, one heat map (bit rates on hover).
    let rows: Vec<String> = rungs
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("").to_owned())
        .collect();
    let cells: Vec<Vec<Option<svg::Cell>>> = rungs
        .iter()
        .map(|r| {
            let name = r["name"].as_str().unwrap_or("");
            r["chunks"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, c)| {
                    c["crf"].as_f64().map(|crf| svg::Cell {
                        value: crf,
                        hover: format!(
                            "{name}, chunk {i}: CRF {crf:.2}, {:.0} kbit/s",
                            f(&c["kbps"])
                        ),
                    })
                })
                .collect()
        })
        .collect();
    if cells.iter().flatten().any(Option::is_some) {
        h.push_str("<h2>Chunks</h2>");
        h.push_str(&svg::heat_map(
            "chunks",
            "CRF of every chunk of every rung (darker spends more bits; kbit/s on hover)",
            &rows,
            &cells,
        ));
    }

    // Per-frame VMAF, per rung (at most 1500 points a line: the minimum of each bucket, so
    // dips stay visible).
    let lines: Vec<Series> = rungs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let v: Vec<f64> = r["per_frame_vmaf"].as_array()?.iter().map(f).collect();
            let step = v.len().div_ceil(1500).max(1);
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
                name: r["name"].as_str().unwrap_or("").to_owned(),
                class: "vmaf-line".into(),
                color: svg::color(i),
                mark: Mark::Line,
                points,
            })
        })
        .collect();
    if !lines.is_empty() {
        h.push_str("<h2>VMAF per frame</h2>");
        h.push_str(&svg::chart(
            "vmaf",
            "VMAF of every frame, per rung",
            "frame",
            "VMAF",
            &lines,
            false,
        ));
    }

    // Thumbnails of the chunks' first frames, from the packaged title's sprite sheets.
    if let Some(dir) = dir {
        h.push_str(&thumbnails(report, dir));
    }
    h.push_str("</body></html>\n");
    h
}

/// The bits this ladder saves against Apple's fixed ladder for the same master, at equal
/// quality: the report's estimate on the title's curves, labelled as one. Nothing for a fixed
/// ladder, which has no curves to estimate from.
fn saved(report: &Value) -> String {
    let e = &report["ladder"]["fixed_estimate"];
    if !e.is_object() {
        return String::new();
    }
    let n = e["rungs"].as_array().map_or(0, Vec::len);
    let left_out = e["left_out"].as_u64().unwrap_or(0);
    let headline = match e["bd_rate_percent"].as_f64() {
        Some(bd) if bd <= 0.0 => format!(
            "{:.1}% fewer bits than Apple's fixed ladder at equal VMAF (BD-rate {bd:+.1}%)",
            -bd
        ),
        Some(bd) => format!(
            "{bd:.1}% more bits than Apple's fixed ladder at equal VMAF (BD-rate {bd:+.1}%)"
        ),
        None => format!(
            "no comparison: {}",
            e["why_none"].as_str().unwrap_or("too few points")
        ),
    };
    format!(
        "<h2>Bits saved against the fixed ladder</h2><p id=\"saved\" class=\"saved\">{}</p>\
         <p class=\"note\">An {}: {n} of Apple's rungs for this master compared{}. \
         `rungs encode --ladder fixed` encodes Apple's ladder for a measured comparison.</p>",
        esc(&headline),
        esc(e["basis"].as_str().unwrap_or("estimate")),
        if left_out > 0 {
            format!(", {left_out} outside the curves left out")
        } else {
            String::new()
        },
    )
}

/// A tile per chunk: the sprite tile nearest its start, cropped out of the sheet with CSS.
fn thumbnails(report: &Value, dir: &Path) -> String {
    let Ok(vtt) = std::fs::read_to_string(dir.join("thumbs/thumbnails.vtt")) else {
        return String::new();
    };
    // Cues: start seconds, sheet, x, y, w, h.
    let mut cues = Vec::new();
    let mut lines = vtt.lines().peekable();
    while let Some(l) = lines.next() {
        let Some((a, _)) = l.split_once(" --> ") else {
            continue;
        };
        let Some(target) = lines.next() else { break };
        let secs = a.split(':').fold(0.0, |acc, p| {
            acc * 60.0 + p.trim().parse::<f64>().unwrap_or(0.0)
        });
        let Some((sheet, frag)) = target.split_once("#xywh=") else {
            continue;
        };
        let v: Vec<u32> = frag.split(',').filter_map(|x| x.parse().ok()).collect();
        if let [x, y, w, h] = v[..] {
            cues.push((secs, sheet.to_owned(), x, y, w, h));
        }
    }
    let mut sheets: BTreeMap<String, String> = BTreeMap::new();
    let mut out = String::from("<h2>Shots</h2><div class=\"thumbs\">");
    let rate = report["frame_rate"]
        .as_str()
        .and_then(|r| r.split_once('/'))
        .and_then(|(n, d)| Some(n.parse::<f64>().ok()? / d.parse::<f64>().ok()?))
        .unwrap_or(25.0);
    let starts: Vec<f64> = report["rungs"][0]["chunks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| f(&c["start_frame"]) / rate)
        .collect();
    for (i, s) in starts.iter().enumerate() {
        let Some(c) = cues
            .iter()
            .min_by(|a, b| (a.0 - s).abs().total_cmp(&(b.0 - s).abs()))
        else {
            continue;
        };
        // Sheet names come from our own VTT; only plain names inside thumbs/ are read.
        if crate::encode::job::safe_name(&c.1) != c.1 {
            continue;
        }
        if !sheets.contains_key(&c.1) {
            let Ok(bytes) = std::fs::read(dir.join("thumbs").join(&c.1)) else {
                continue;
            };
            sheets.insert(c.1.clone(), base64(&bytes));
        }
        let _ = write!(
            out,
            "<div class=\"thumb\"><div class=\"shot\" style=\"width:{w}px;height:{h}px;background:url(data:image/jpeg;base64,{data}) -{x}px -{y}px\"></div>chunk {i} · {s:.1} s</div>",
            w = c.4,
            h = c.5,
            x = c.2,
            y = c.3,
            data = sheets[&c.1],
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
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
