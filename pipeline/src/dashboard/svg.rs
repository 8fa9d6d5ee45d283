//! Server-side SVG charts: scatter and line charts with axes and ticks, and heat maps. Plain
//! text, no script, so a page or a report file shows them anywhere, offline.

use std::fmt::Write;

/// Escapes text for XML and HTML.
pub fn esc(s: &str) -> String {
    packager::dash::xml(s)
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A dot per point (`<circle class="pt">`).
    Dots,
    /// A line through the points (`<polyline>`).
    Line,
    /// A large diamond per point (`<path class="rung">`), for chosen rungs.
    Diamonds,
}

/// One series of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Its name, in the legend.
    pub name: String,
    /// Its CSS class (also on every element it draws).
    pub class: String,
    /// Its colour.
    pub color: String,
    /// How it is drawn.
    pub mark: Mark,
    /// The points (x, y).
    pub points: Vec<(f64, f64)>,
}

/// A name made safe for an element id or a CSS class: ASCII letters, digits and `-`, others
/// as `_`.
pub fn class_safe(name: &str) -> String {
    name.chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A palette of distinguishable colours.
pub fn color(i: usize) -> String {
    const C: [&str; 8] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    ];
    C[i % C.len()].to_owned()
}

const W: f64 = 720.0;
const H: f64 = 360.0;
const L: f64 = 64.0;
const R: f64 = 150.0;
const T: f64 = 30.0;
const B: f64 = 44.0;

/// The most ticks an axis draws.
const MAX_TICKS: usize = 12;

/// The largest magnitude a chart plots; beyond it a value is not a figure but garbage, and
/// spans of such values would overflow.
const MAX_PLOTTED: f64 = 1e300;

/// "Nice" tick values covering `lo..hi`: at most [`MAX_TICKS`], none for a range that is not
/// finite. The count is fixed before the first tick, so no range (equal ends, huge values
/// whose step is below their precision) can keep it looping.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi < lo {
        return Vec::new();
    }
    let span = (hi - lo).max(lo.abs().max(hi.abs()) * 1e-12).max(1e-12);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(mag * 10.0);
    let first = (lo / step).ceil() * step;
    let count = ((hi - first) / step + 1e-9).floor();
    if !(step.is_finite() && step > 0.0 && first.is_finite() && count.is_finite()) || count < 0.0 {
        return vec![lo, hi];
    }
    let mut out: Vec<f64> = (0..=(count as usize).min(MAX_TICKS))
        .map(|i| first + step * i as f64)
        .collect();
    out.dedup();
    out
}

fn label(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A scatter/line chart; `log_x` plots x on a log scale (bit rates).
pub fn chart(
    id: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
) -> String {
    let scale = Scale::fit(series, log_x);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg id="{id}" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><title>{t}</title><rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="#fff" stroke="#ccc"/>"##,
        t = esc(title),
        pw = W - L - R,
        ph = H - T - B
    );
    let _ = write!(
        s,
        r#"<text x="{L}" y="18" class="ct">{}</text>"#,
        esc(title)
    );
    axes(&mut s, &scale, x_label, y_label);
    for (i, se) in series.iter().enumerate() {
        marks(&mut s, &scale, se);
        legend(&mut s, i, se);
    }
    s.push_str("</svg>");
    s
}

/// Where a chart's data lands: the padded data ranges (x as its log when `log_x`) mapped onto
/// the plot area.
struct Scale {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    log_x: bool,
}

impl Scale {
    /// The ranges of every plottable point of `series`, padded by 5%; 0..1 when there is none.
    fn fit(series: &[Series], log_x: bool) -> Self {
        let mut scale = Scale {
            x0: f64::MAX,
            x1: f64::MIN,
            y0: f64::MAX,
            y1: f64::MIN,
            log_x,
        };
        let all: Vec<(f64, f64)> = series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|p| scale.plottable(*p))
            .collect();
        for (x, y) in &all {
            let fx = scale.fx(*x);
            scale.x0 = scale.x0.min(fx);
            scale.x1 = scale.x1.max(fx);
            scale.y0 = scale.y0.min(*y);
            scale.y1 = scale.y1.max(*y);
        }
        if all.is_empty() {
            (scale.x0, scale.x1, scale.y0, scale.y1) = (0.0, 1.0, 0.0, 1.0);
        }
        // Padded by 5% of the span, and at least by a millionth of the values' size, so
        // that equal values (at any magnitude) still give a range to draw in.
        let pad = |a: f64, b: f64| {
            let p = ((b - a) * 0.05).max(a.abs().max(b.abs()) * 1e-6).max(1e-6);
            (a - p, b + p)
        };
        (scale.x0, scale.x1) = pad(scale.x0, scale.x1);
        (scale.y0, scale.y1) = pad(scale.y0, scale.y1);
        scale
    }

    /// True for a point the chart can draw: finite, and with a positive x on a log scale.
    fn plottable(&self, (x, y): (f64, f64)) -> bool {
        x.abs() <= MAX_PLOTTED && y.abs() <= MAX_PLOTTED && (!self.log_x || x > 0.0)
    }

    /// x on the axis's scale.
    fn fx(&self, x: f64) -> f64 {
        if self.log_x { x.max(1e-9).log10() } else { x }
    }

    /// The horizontal position of `x`.
    fn px(&self, x: f64) -> f64 {
        L + (self.fx(x) - self.x0) / (self.x1 - self.x0) * (W - L - R)
    }

    /// The vertical position of `y`.
    fn py(&self, y: f64) -> f64 {
        H - B - (y - self.y0) / (self.y1 - self.y0) * (H - T - B)
    }

    /// The x ticks: 1, 2 and 5 of every decade on a log scale.
    fn x_ticks(&self) -> Vec<f64> {
        let (x0, x1) = (self.x0, self.x1);
        if !self.log_x {
            return ticks(x0, x1);
        }
        let (a, b) = (x0.floor() as i32, x1.ceil() as i32);
        let all: Vec<f64> = (a..=b)
            .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
            .filter(|v| (x0..=x1).contains(&v.log10()))
            .collect();
        if all.len() <= MAX_TICKS {
            return all;
        }
        // Many decades: their 1s only, thinned to the limit.
        let decades: Vec<f64> = (a..=b)
            .map(|e| 10f64.powi(e))
            .filter(|v| (x0..=x1).contains(&v.log10()))
            .collect();
        let every = decades.len().div_ceil(MAX_TICKS).max(1);
        decades.into_iter().step_by(every).collect()
    }
}

/// Grid lines with their tick labels, and the axis labels.
fn axes(s: &mut String, scale: &Scale, x_label: &str, y_label: &str) {
    for v in scale.x_ticks() {
        let x = scale.px(v);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" class="tk" text-anchor="middle">{}</text>"##,
            T,
            H - B,
            H - B + 14.0,
            label(v)
        );
    }
    for v in ticks(scale.y0, scale.y1) {
        let y = scale.py(v);
        let _ = write!(
            s,
            r##"<line x1="{L}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" class="tk" text-anchor="end">{}</text>"##,
            W - R,
            L - 4.0,
            y + 4.0,
            label(v)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{}" class="ax" text-anchor="middle">{}</text><text x="14" y="{:.1}" class="ax" text-anchor="middle" transform="rotate(-90 14 {:.1})">{}</text>"#,
        (L + W - R) / 2.0,
        H - 6.0,
        esc(x_label),
        (T + H - B) / 2.0,
        (T + H - B) / 2.0,
        esc(y_label)
    );
}

/// The plottable points of one series, drawn as its mark says.
fn marks(s: &mut String, scale: &Scale, se: &Series) {
    let pts: Vec<(f64, f64)> = se
        .points
        .iter()
        .copied()
        .filter(|p| scale.plottable(*p))
        .collect();
    let (class, c) = (esc(&se.class), &se.color);
    match se.mark {
        Mark::Dots => {
            for (x, y) in &pts {
                let _ = write!(
                    s,
                    r#"<circle class="pt {class}" cx="{:.1}" cy="{:.1}" r="3" fill="{c}" fill-opacity="0.7"><title>{:.0} kbit/s, {:.2}</title></circle>"#,
                    scale.px(*x),
                    scale.py(*y),
                    x,
                    y
                );
            }
        }
        Mark::Line => {
            let path: Vec<String> = pts
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", scale.px(*x), scale.py(*y)))
                .collect();
            let _ = write!(
                s,
                r#"<polyline class="{class}" points="{}" fill="none" stroke="{c}" stroke-width="1.5"/>"#,
                path.join(" ")
            );
        }
        Mark::Diamonds => {
            for (x, y) in &pts {
                let (cx, cy) = (scale.px(*x), scale.py(*y));
                let _ = write!(
                    s,
                    r##"<path class="rung {class}" d="M{cx:.1} {:.1} L{:.1} {cy:.1} L{cx:.1} {:.1} L{:.1} {cy:.1} Z" fill="{c}" stroke="#000"><title>{:.0} kbit/s, {:.2}</title></path>"##,
                    cy - 7.0,
                    cx + 7.0,
                    cy + 7.0,
                    cx - 7.0,
                    x,
                    y
                );
            }
        }
    }
}

/// The legend entry of the `i`th series.
fn legend(s: &mut String, i: usize, se: &Series) {
    let ly = T + 12.0 + 16.0 * i as f64;
    let _ = write!(
        s,
        r#"<rect x="{}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{}" y="{:.1}" class="lg">{}</text>"#,
        W - R + 10.0,
        ly - 9.0,
        se.color,
        W - R + 24.0,
        ly,
        esc(&se.name)
    );
}

/// One cell of a heat map: the value that colours it and the text shown on hover.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// The value (darker is lower).
    pub value: f64,
    /// What hovering the cell shows.
    pub hover: String,
}

/// A heat map: a row per label, a column per index, each cell (`<rect class="cell">`) coloured
/// from light (the highest value) to dark (the lowest), with its value printed when there is
/// room and its hover text as a tooltip. A missing cell stays blank.
pub fn heat_map(id: &str, title: &str, rows: &[String], cells: &[Vec<Option<Cell>>]) -> String {
    const ROW: f64 = 24.0;
    let cols = cells.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let values = cells
        .iter()
        .flatten()
        .flatten()
        .map(|c| c.value)
        .filter(|v| v.abs() <= MAX_PLOTTED);
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let span = (hi - lo).max(1e-9);
    let height = T + ROW * rows.len() as f64 + B;
    let cw = (W - L - R) / cols as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="{id}" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" height="{height}" role="img" aria-label="{t}"><title>{t}</title><text x="{L}" y="18" class="ct">{t}</text>"#,
        t = esc(title)
    );
    for (r, (label, row)) in rows.iter().zip(cells).enumerate() {
        let y = T + ROW * r as f64;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="tk" text-anchor="end">{}</text>"#,
            L - 4.0,
            y + ROW * 0.65,
            esc(label)
        );
        for (c, cell) in row.iter().enumerate() {
            let Some(cell) = cell else { continue };
            // Light (high value) to dark blue (low value).
            let t = if hi > lo && cell.value.abs() <= MAX_PLOTTED {
                (hi - cell.value) / span
            } else {
                0.5
            };
            let (red, green) = (230.0 - 200.0 * t, 240.0 - 150.0 * t);
            let x = L + cw * c as f64;
            let _ = write!(
                s,
                r#"<rect class="cell" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="rgb({red:.0},{green:.0},250)"><title>{}</title></rect>"#,
                (cw - 1.0).max(0.5),
                ROW - 1.0,
                esc(&cell.hover)
            );
            if cols <= 16 {
                let ink = if t > 0.6 { "#fff" } else { "#000" };
                let _ = write!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" class="tk" text-anchor="middle" style="fill:{ink}">{:.1}</text>"#,
                    x + cw / 2.0,
                    y + ROW * 0.65,
                    cell.value
                );
            }
        }
    }
    if cols <= 24 {
        for c in 0..cols {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" class="tk" text-anchor="middle">{c}</text>"#,
                L + cw * (c as f64 + 0.5),
                height - B + 14.0
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" class="ax" text-anchor="middle">chunk</text></svg>"#,
        L + (W - L - R) / 2.0,
        height - B + 32.0
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_draw_every_point_and_escape_text() {
        let s = chart(
            "rd",
            "RD <title>",
            "kbit/s",
            "VMAF",
            &[
                Series {
                    name: "360p".into(),
                    class: "s360".into(),
                    color: color(0),
                    mark: Mark::Dots,
                    points: vec![(100.0, 60.0), (200.0, 70.0), (400.0, 80.0), (f64::NAN, 1.0)],
                },
                Series {
                    name: "rungs".into(),
                    class: "chosen".into(),
                    color: color(1),
                    mark: Mark::Diamonds,
                    points: vec![(200.0, 70.0)],
                },
            ],
            true,
        );
        assert_eq!(s.matches("<circle class=\"pt s360\"").count(), 3);
        assert_eq!(s.matches("class=\"rung chosen\"").count(), 1);
        assert!(s.contains("RD &lt;title&gt;") && !s.contains("<title>RD <title>"));
        let cell = |v: f64| {
            Some(Cell {
                value: v,
                hover: format!("CRF {v} <b>"),
            })
        };
        let m = heat_map(
            "h",
            "CRF",
            &["720p".into(), "360p".into()],
            &[vec![cell(20.0), cell(30.0)], vec![None, cell(25.0)]],
        );
        assert_eq!(m.matches("<rect class=\"cell\"").count(), 3);
        assert!(m.contains("CRF 20 &lt;b&gt;"));
        // The lowest value is the darkest, the highest the lightest.
        assert!(m.contains("fill=\"rgb(30,90,250)\"") && m.contains("fill=\"rgb(230,240,250)\""));
        assert_eq!(ticks(0.0, 10.0), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    }

    /// The markup without its text: what remains are tags and their attributes.
    fn tags_only(svg: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in svg.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                _ => {}
            }
            if in_tag {
                out.push(c);
            }
        }
        out
    }

    fn value() -> impl proptest::strategy::Strategy<Value = f64> {
        use proptest::prelude::*;
        prop_oneof![
            Just(0.0),
            Just(1e12),
            Just(-1e12),
            Just(1e-12),
            Just(1e300),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            any::<f64>(),
            -1e6..1e6f64,
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

        /// Whatever the values (equal, huge, tiny, NaN, infinite), a chart ends with bounded
        /// ticks and every coordinate it draws is a number.
        #[test]
        fn chart_axes_are_sane_for_any_values(
            points in proptest::collection::vec((value(), value()), 0..6),
            same in value(),
            log_x: bool,
        ) {
            let mut all = points.clone();
            all.push((same, same));
            all.push((same, same));
            let s = chart(
                "c",
                "t",
                "x",
                "y",
                &[Series {
                    name: "s".into(),
                    class: "s".into(),
                    color: color(0),
                    mark: Mark::Line,
                    points: all,
                }],
                log_x,
            );
            let tags = tags_only(&s);
            proptest::prop_assert!(!tags.contains("NaN") && !tags.contains("inf"), "{}", tags);
            proptest::prop_assert!(s.matches("class=\"tk\"").count() <= 2 * (MAX_TICKS + 1));
            for (lo, hi) in [(same, same), (points.first().map_or(0.0, |p| p.0), same)] {
                proptest::prop_assert!(ticks(lo.min(hi), lo.max(hi)).len() <= MAX_TICKS + 1);
            }
            let cells: Vec<Option<Cell>> = points
                .iter()
                .map(|p| Some(Cell { value: p.1, hover: String::new() }))
                .collect();
            let m = heat_map("h", "t", &["r".into()], &[cells]);
            let tags = tags_only(&m);
            proptest::prop_assert!(!tags.contains("NaN") && !tags.contains("inf"), "{}", tags);
        }
    }
}
