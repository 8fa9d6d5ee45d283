//! The CI gate: rules a finished ladder must keep, the outcome of every rule on every rung, a
//! readable table of it, and JUnit XML for CI systems.
//!
//! The ladder is read from an encode report (`report.json`); only the fields a check needs are
//! read, so reports may carry anything else.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::bd;

/// VMAF of a rung as the report gives it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RungVmaf {
    /// Mean.
    pub mean: f64,
    /// Harmonic mean.
    pub harmonic_mean: f64,
    /// Worst frame.
    pub min: f64,
}

/// Why a report's ladder cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The report is not JSON of the expected shape (the message gives the position).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The report's ladder is empty.
    #[error("the report has no rungs")]
    NoRungs,
}

/// Why a check rules file is refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckRulesError {
    /// The file is not TOML of the expected shape (the message gives the line).
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// A VMAF floor outside 0 to 100.
    #[error("a VMAF floor of {0} (expected 0 to 100)")]
    FloorRange(f64),
    /// A `[[rung]]` selects no rung.
    #[error("a [[rung]] has an empty select")]
    EmptySelect,
}

/// A rung as the report gives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RungView {
    /// Name.
    pub name: String,
    /// The codec, in a multi-codec report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Average bit rate, kbit/s.
    pub average_kbps: f64,
    /// Peak bit rate, kbit/s.
    pub peak_kbps: f64,
    /// VMAF, when measured.
    #[serde(default)]
    pub vmaf: Option<RungVmaf>,
}

/// A ladder as an encode report gives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LadderView {
    /// Rungs, lowest first.
    pub rungs: Vec<RungView>,
}

impl LadderView {
    /// Reads the ladder of a report. Errors give the JSON position.
    pub fn from_json(text: &str) -> Result<Self, ReportError> {
        let v: Self = serde_json::from_str(text)?;
        if v.rungs.is_empty() {
            return Err(ReportError::NoRungs);
        }
        Ok(v)
    }

    /// The codecs of a multi-codec report, in the order of its rungs; empty for a report of
    /// one codec.
    pub fn codecs(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in self.rungs.iter().filter_map(|r| r.codec.as_ref()) {
            if !out.contains(c) {
                out.push(c.clone());
            }
        }
        out
    }

    /// The ladder of one codec of a multi-codec report.
    pub fn of_codec(&self, codec: &str) -> LadderView {
        LadderView {
            rungs: self
                .rungs
                .iter()
                .filter(|r| r.codec.as_deref() == Some(codec))
                .cloned()
                .collect(),
        }
    }

    /// `(kbps, mean VMAF)` of every measured rung, for BD-rate.
    pub fn rd(&self) -> Vec<(f64, f64)> {
        self.rungs
            .iter()
            .filter_map(|r| r.vmaf.map(|v| (r.average_kbps, v.mean)))
            .collect()
    }
}

/// Quality floors of a rung; any left out is not checked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Floors {
    /// Lowest mean VMAF.
    pub min_vmaf_mean: Option<f64>,
    /// Lowest harmonic-mean VMAF.
    pub min_vmaf_harmonic: Option<f64>,
    /// Lowest VMAF of any frame.
    pub min_vmaf_frame: Option<f64>,
}

/// Floors for one rung, picked by name, or `top` / `bottom`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RungFloors {
    /// The rung's name, `top` or `bottom`.
    pub select: String,
    /// Its floors (they replace the defaults that they set).
    #[serde(flatten)]
    pub floors: Floors,
}

/// Rules of the whole ladder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LadderLimits {
    /// Bit rate and quality rise from rung to rung.
    pub monotonic: bool,
    /// Mean VMAF between neighbouring rungs at least this far apart.
    pub min_vmaf_step: Option<f64>,
    /// ... and at most this far.
    pub max_vmaf_step: Option<f64>,
    /// Bit rates of neighbouring rungs at least this ratio apart.
    pub min_bitrate_ratio: Option<f64>,
    /// Peak over average bit rate of each rung at most this.
    pub max_peak_ratio: Option<f64>,
    /// BD-rate against the baseline report at most this many percent (positive is worse).
    pub max_bd_rate: f64,
}

impl Default for LadderLimits {
    fn default() -> Self {
        Self {
            monotonic: true,
            min_vmaf_step: None,
            max_vmaf_step: None,
            min_bitrate_ratio: None,
            max_peak_ratio: None,
            max_bd_rate: 1.0,
        }
    }
}

/// Everything `rungs ladder check` enforces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckRules {
    /// Floors for every rung.
    pub rungs: Floors,
    /// Floors for particular rungs.
    pub rung: Vec<RungFloors>,
    /// Ladder-wide limits.
    pub ladder: LadderLimits,
}

impl CheckRules {
    /// Parses a rules file (TOML). Errors give the line.
    pub fn from_toml(text: &str) -> Result<Self, CheckRulesError> {
        let r: Self = toml::from_str(text)?;
        for f in r.rung.iter().map(|r| &r.floors).chain([&r.rungs]) {
            for v in [f.min_vmaf_mean, f.min_vmaf_harmonic, f.min_vmaf_frame]
                .into_iter()
                .flatten()
            {
                if !(0.0..=100.0).contains(&v) {
                    return Err(CheckRulesError::FloorRange(v));
                }
            }
        }
        if r.rung.iter().any(|x| x.select.is_empty()) {
            return Err(CheckRulesError::EmptySelect);
        }
        Ok(r)
    }

    /// The floors of rung `i` of `n` named `name`.
    fn floors_for(&self, i: usize, n: usize, name: &str) -> Floors {
        let mut f = self.rungs.clone();
        for r in &self.rung {
            let hit = r.select == name
                || (r.select == "top" && i + 1 == n)
                || (r.select == "bottom" && i == 0);
            if hit {
                f.min_vmaf_mean = r.floors.min_vmaf_mean.or(f.min_vmaf_mean);
                f.min_vmaf_harmonic = r.floors.min_vmaf_harmonic.or(f.min_vmaf_harmonic);
                f.min_vmaf_frame = r.floors.min_vmaf_frame.or(f.min_vmaf_frame);
            }
        }
        f
    }
}

/// The outcome of one rule on one rung (or on the ladder).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The rule, such as `min-vmaf-mean`.
    pub rule: String,
    /// The rung, or `None` for a ladder-wide rule.
    pub rung: Option<String>,
    /// What was found.
    pub found: String,
    /// What the rule asks.
    pub limit: String,
    /// Whether it held.
    pub passed: bool,
}

/// [`check`] of a report: of its one ladder, or of each codec's ladder of a multi-codec report
/// (against the same codec's in the baseline), each outcome's rule prefixed by its codec.
pub fn check_report(
    ladder: &LadderView,
    rules: &CheckRules,
    baseline: Option<&LadderView>,
) -> Vec<Outcome> {
    let codecs = ladder.codecs();
    if codecs.is_empty() {
        return check(ladder, rules, baseline);
    }
    let mut out = Vec::new();
    for c in codecs {
        let base = baseline.map(|b| {
            if b.codecs().is_empty() {
                b.clone()
            } else {
                b.of_codec(&c)
            }
        });
        for mut o in check(&ladder.of_codec(&c), rules, base.as_ref()) {
            o.rule = format!("{c}: {}", o.rule);
            out.push(o);
        }
    }
    out
}

/// Checks `ladder` (and, when given, its BD-rate against `baseline`) against `rules`. Every
/// rule that applies yields an outcome, passed or not.
pub fn check(
    ladder: &LadderView,
    rules: &CheckRules,
    baseline: Option<&LadderView>,
) -> Vec<Outcome> {
    let mut out = Outcomes::default();
    let n = ladder.rungs.len();
    for (i, r) in ladder.rungs.iter().enumerate() {
        out.floors(r, &rules.floors_for(i, n, &r.name));
        if let Some(max) = rules.ladder.max_peak_ratio {
            out.peak_ratio(r, max);
        }
        if let Some(prev) = i.checked_sub(1).map(|p| &ladder.rungs[p]) {
            out.steps(r, prev, &rules.ladder);
        }
    }
    if let Some(base) = baseline {
        out.bd_rate(ladder, base, rules.ladder.max_bd_rate);
    }
    out.0
}

/// Outcomes in the order they are checked: rung by rung, the ladder's last.
#[derive(Default)]
struct Outcomes(Vec<Outcome>);

impl Outcomes {
    fn push(&mut self, rule: &str, rung: Option<&str>, found: String, limit: String, passed: bool) {
        self.0.push(Outcome {
            rule: rule.to_owned(),
            rung: rung.map(str::to_owned),
            found,
            limit,
            passed,
        });
    }

    /// The quality floors of rung `r`.
    fn floors(&mut self, r: &RungView, f: &Floors) {
        for (rule, floor, value) in [
            ("min-vmaf-mean", f.min_vmaf_mean, r.vmaf.map(|v| v.mean)),
            (
                "min-vmaf-harmonic",
                f.min_vmaf_harmonic,
                r.vmaf.map(|v| v.harmonic_mean),
            ),
            ("min-vmaf-frame", f.min_vmaf_frame, r.vmaf.map(|v| v.min)),
        ] {
            let Some(floor) = floor else { continue };
            match value {
                Some(v) => self.push(
                    rule,
                    Some(&r.name),
                    format!("{v:.2}"),
                    format!(">= {floor}"),
                    v >= floor,
                ),
                None => self.push(
                    rule,
                    Some(&r.name),
                    "not measured".into(),
                    format!(">= {floor}"),
                    false,
                ),
            }
        }
    }

    /// Peak over average bit rate of rung `r`, at most `max`.
    fn peak_ratio(&mut self, r: &RungView, max: f64) {
        let ratio = if r.average_kbps > 0.0 {
            r.peak_kbps / r.average_kbps
        } else {
            f64::INFINITY
        };
        self.push(
            "max-peak-ratio",
            Some(&r.name),
            format!("{ratio:.2}"),
            format!("<= {max}"),
            ratio <= max,
        );
    }

    /// The step from rung `prev` to the next one, `r`.
    fn steps(&mut self, r: &RungView, prev: &RungView, limits: &LadderLimits) {
        if limits.monotonic {
            self.monotonic(r, prev);
        }
        let step = match (r.vmaf, prev.vmaf) {
            (Some(a), Some(b)) => Some(a.mean - b.mean),
            _ => None,
        };
        for (rule, limit, ok) in [
            (
                "min-vmaf-step",
                limits.min_vmaf_step.map(|m| format!(">= {m}")),
                limits.min_vmaf_step.map(|m| step.is_some_and(|s| s >= m)),
            ),
            (
                "max-vmaf-step",
                limits.max_vmaf_step.map(|m| format!("<= {m}")),
                limits.max_vmaf_step.map(|m| step.is_some_and(|s| s <= m)),
            ),
        ] {
            if let (Some(limit), Some(ok)) = (limit, ok) {
                let found = step.map_or("not measured".into(), |s| format!("{s:.2}"));
                self.push(rule, Some(&r.name), found, limit, ok);
            }
        }
        if let Some(min) = limits.min_bitrate_ratio {
            let ratio = r.average_kbps / prev.average_kbps;
            self.push(
                "min-bitrate-ratio",
                Some(&r.name),
                format!("{ratio:.2}"),
                format!(">= {min}"),
                ratio >= min,
            );
        }
    }

    /// Bit rate and mean VMAF rise from rung `prev` to `r`.
    fn monotonic(&mut self, r: &RungView, prev: &RungView) {
        self.push(
            "monotonic-bitrate",
            Some(&r.name),
            format!(
                "{:.1} after {:.1} kbit/s",
                r.average_kbps, prev.average_kbps
            ),
            "rises".into(),
            r.average_kbps > prev.average_kbps,
        );
        match (r.vmaf, prev.vmaf) {
            (Some(a), Some(b)) => self.push(
                "monotonic-vmaf",
                Some(&r.name),
                format!("{:.2} after {:.2}", a.mean, b.mean),
                "rises".into(),
                a.mean > b.mean,
            ),
            _ => self.push(
                "monotonic-vmaf",
                Some(&r.name),
                "not measured".into(),
                "rises".into(),
                false,
            ),
        }
    }

    /// BD-rate of `ladder` against `base`, at most `max` percent.
    fn bd_rate(&mut self, ladder: &LadderView, base: &LadderView, max: f64) {
        let limit = format!("<= {max}%");
        match bd::bd_rate(&base.rd(), &ladder.rd()) {
            Ok(b) => self.push("max-bd-rate", None, format!("{b:+.2}%"), limit, b <= max),
            Err(e) => self.push(
                "max-bd-rate",
                None,
                format!("cannot compute: {e}"),
                limit,
                false,
            ),
        }
    }
}

/// The outcomes as an aligned text table, failures marked.
pub fn table(outcomes: &[Outcome]) -> String {
    let rows: Vec<[String; 5]> = outcomes
        .iter()
        .map(|o| {
            [
                if o.passed { "ok" } else { "FAIL" }.to_owned(),
                o.rule.clone(),
                o.rung.clone().unwrap_or_else(|| "(ladder)".into()),
                o.found.clone(),
                o.limit.clone(),
            ]
        })
        .collect();
    let head = ["", "rule", "rung", "found", "limit"].map(str::to_owned);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&head).chain(&rows) {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut s = String::new();
    for row in std::iter::once(&head).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(s, "{}", line.join("  ").trim_end());
    }
    s
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML with one test case per rule and rung, in the common (Jenkins / GitLab / GitHub)
/// dialect: `testsuites` › `testsuite` › `testcase`, failures as `failure` elements.
pub fn junit(outcomes: &[Outcome], suite: &str) -> String {
    let failures = outcomes.iter().filter(|o| !o.passed).count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"rungs ladder check\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">",
        outcomes.len()
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"0\">",
        xml_escape(suite),
        outcomes.len()
    );
    for o in outcomes {
        let rung = o.rung.as_deref().unwrap_or("ladder");
        let _ = write!(
            s,
            "    <testcase classname=\"ladder.{}\" name=\"{}: {}\" time=\"0\"",
            xml_escape(&o.rule),
            xml_escape(rung),
            xml_escape(&o.rule)
        );
        if o.passed {
            s.push_str("/>\n");
        } else {
            let msg = format!("{} is {}, expected {}", o.rule, o.found, o.limit);
            let _ = writeln!(
                s,
                ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                xml_escape(&msg),
                xml_escape(&o.rule),
                xml_escape(&format!("{rung}: {msg}"))
            );
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(name: &str, kbps: f64, peak: f64, mean: f64) -> RungView {
        RungView {
            name: name.into(),
            codec: None,
            width: 640,
            height: 360,
            average_kbps: kbps,
            peak_kbps: peak,
            vmaf: Some(RungVmaf {
                mean,
                harmonic_mean: mean - 1.0,
                min: mean - 20.0,
            }),
        }
    }

    fn ladder() -> LadderView {
        LadderView {
            rungs: vec![
                rung("low", 300.0, 500.0, 50.0),
                rung("mid", 900.0, 1500.0, 72.0),
                rung("high", 2500.0, 6000.0, 90.0),
            ],
        }
    }

    #[test]
    fn each_codec_of_a_multi_codec_report_is_checked_alone() {
        let tagged = |c: &str, r: RungView| RungView {
            codec: Some(c.into()),
            ..r
        };
        // Not monotonic as one list, but each codec's ladder is.
        let report = LadderView {
            rungs: vec![
                tagged("h264", rung("360p-h264", 500.0, 800.0, 70.0)),
                tagged("h264", rung("720p-h264", 1500.0, 2500.0, 90.0)),
                tagged("av1", rung("360p-av1", 300.0, 500.0, 72.0)),
                tagged("av1", rung("720p-av1", 900.0, 1500.0, 91.0)),
            ],
        };
        assert_eq!(report.codecs(), ["h264", "av1"]);
        let one = check(&report, &CheckRules::default(), None);
        assert!(one.iter().any(|o| !o.passed), "{one:?}");
        let each = check_report(&report, &CheckRules::default(), None);
        assert!(each.iter().all(|o| o.passed), "{each:?}");
        assert!(each.iter().any(|o| o.rule.starts_with("h264: ")));
        assert!(each.iter().any(|o| o.rule.starts_with("av1: ")));
        // A report of one codec is checked as before.
        assert_eq!(
            check_report(&ladder(), &CheckRules::default(), None),
            check(&ladder(), &CheckRules::default(), None)
        );
    }

    #[test]
    fn every_rule_is_checked_on_every_rung() {
        let rules = CheckRules::from_toml(
            "[rungs]\nmin_vmaf_mean = 40\n[[rung]]\nselect = \"top\"\nmin_vmaf_mean = 93\nmin_vmaf_frame = 75\n[ladder]\nmin_vmaf_step = 5\nmax_vmaf_step = 20\nmin_bitrate_ratio = 1.5\nmax_peak_ratio = 2.0\n",
        )
        .unwrap();
        let out = check(&ladder(), &rules, None);
        let failed: Vec<(&str, &str)> = out
            .iter()
            .filter(|o| !o.passed)
            .map(|o| (o.rule.as_str(), o.rung.as_deref().unwrap()))
            .collect();
        assert_eq!(
            failed,
            [
                ("max-vmaf-step", "mid"),
                ("min-vmaf-mean", "high"),
                ("min-vmaf-frame", "high"),
                ("max-peak-ratio", "high"),
            ]
        );
        // 3 mean floors + 1 frame floor + 3 peak + 2×(2 monotonic + 2 steps + 1 ratio).
        assert_eq!(out.len(), 17);
        let t = table(&out);
        assert!(
            t.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w == ["FAIL", "max-peak-ratio", "high", "2.40", "<=", "2"]
            }),
            "{t}"
        );
    }

    #[test]
    fn non_monotonic_and_unmeasured_rungs_fail() {
        let mut l = ladder();
        l.rungs[2].average_kbps = 800.0;
        l.rungs[1].vmaf = None;
        let out = check(&l, &CheckRules::default(), None);
        let failed: Vec<_> = out
            .iter()
            .filter(|o| !o.passed)
            .map(|o| o.rule.as_str())
            .collect();
        assert_eq!(
            failed,
            ["monotonic-vmaf", "monotonic-bitrate", "monotonic-vmaf"]
        );
    }

    #[test]
    fn bd_rate_regressions_against_a_baseline_fail() {
        let base = ladder();
        let mut worse = ladder();
        for r in &mut worse.rungs {
            r.average_kbps *= 1.05;
            r.peak_kbps *= 1.05;
        }
        let out = check(&worse, &CheckRules::default(), Some(&base));
        let bd = out.iter().find(|o| o.rule == "max-bd-rate").unwrap();
        assert!(!bd.passed && bd.found == "+5.00%", "{bd:?}");
        let out = check(&base, &CheckRules::default(), Some(&worse));
        assert!(out.iter().all(|o| o.passed));
    }

    #[test]
    fn junit_escapes_and_counts() {
        let outcomes = vec![
            Outcome {
                rule: "min-vmaf-mean".into(),
                rung: Some("a<&>\"b".into()),
                found: "1".into(),
                limit: ">= 2".into(),
                passed: false,
            },
            Outcome {
                rule: "max-bd-rate".into(),
                rung: None,
                found: "0".into(),
                limit: "<= 1%".into(),
                passed: true,
            },
        ];
        let x = junit(&outcomes, "title\u{1}");
        assert!(x.contains("tests=\"2\" failures=\"1\""));
        assert!(x.contains("name=\"a&lt;&amp;&gt;&quot;b: min-vmaf-mean\""));
        assert!(x.contains("message=\"min-vmaf-mean is 1, expected &gt;= 2\""));
        assert!(x.contains("name=\"title\u{fffd}\""));
        assert_eq!(x.matches("<testcase ").count(), 2);
        assert_eq!(x.matches("</failure>").count(), 1);
    }

    #[test]
    fn rules_files_are_checked() {
        for (bad, says) in [
            ("[rungs]\nmin_vmaf_mean = 120\n", "expected 0 to 100"),
            ("[ladder]\nfoo = 1\n", "unknown field"),
            ("[[rung]]\nselect = \"\"\n", "empty select"),
            ("[rungs]\nmin_vmaf_mean = \"x\"\n", "line 2"),
        ] {
            let e = CheckRules::from_toml(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
