//! The per-title decision: pool the chunks' probes into one curve per resolution, take the upper
//! convex hull across resolutions, and place the rungs on it by the ladder rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hull;
use crate::optimize::Target;
use crate::rd::{Curve, Pooling, Tally};

/// The smallest rung height the candidate resolutions start from (Apple's lowest rung).
pub const LOWEST_HEIGHT: u32 = 234;

/// A frame size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Size {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Size {
    /// The short side, which names a rung (`720p`).
    pub fn short_side(self) -> u32 {
        self.width.min(self.height)
    }

    /// Pixels per frame.
    pub fn pixels(self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

fn even(x: f64) -> u32 {
    ((x / 2.0).round().max(1.0) as u32) * 2
}

/// The resolutions worth probing for a `width`×`height` master shown at `aspect` (display
/// width over height): from about 234p up to the master, in equal steps of about `pixel_step`
/// times the pixel count (1.5 is usual). The top is the master's own size; the others keep the
/// display aspect ratio, with even sides.
pub fn candidate_sizes(width: u32, height: u32, aspect: f64, pixel_step: f64) -> Vec<Size> {
    let top = Size {
        width: even(f64::from(width)),
        height: even(f64::from(height)),
    };
    let short = f64::from(top.short_side());
    let low = f64::from(LOWEST_HEIGHT);
    let step = pixel_step.max(1.01).sqrt();
    if short <= low * step.sqrt() {
        return vec![top];
    }
    let n = ((short / low).ln() / step.ln()).round().max(1.0) as i32;
    let ratio = (short / low).powf(1.0 / f64::from(n));
    let aspect = if aspect.is_finite() && aspect > 0.0 {
        aspect
    } else {
        f64::from(width) / f64::from(height)
    };
    let mut out: Vec<Size> = (0..n)
        .map(|k| {
            let s = low * ratio.powi(k);
            let size = if aspect >= 1.0 {
                Size {
                    width: even(s * aspect),
                    height: even(s),
                }
            } else {
                Size {
                    width: even(s),
                    height: even(s / aspect),
                }
            };
            Size {
                width: size.width.min(top.width),
                height: size.height.min(top.height),
            }
        })
        .collect();
    out.push(top);
    out.dedup();
    out
}

/// The default bit-rate step between rungs: between Apple's 1.5 and 2, in the middle in log
/// terms.
pub const DEFAULT_STEP: f64 = 1.75;

/// How rungs are spaced along the hull.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "by", content = "step")]
pub enum Spacing {
    /// About this many VMAF points apart (at least this many, evenly over the range).
    Vmaf(f64),
    /// Bit rates about this ratio apart (evenly in log-rate over the range, never wider).
    Bitrate(f64),
}

/// The user's rules for a ladder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LadderRules {
    /// The most rungs.
    pub rungs: usize,
    /// The lowest rung's average bit rate, kbit/s (the bottom rung sits at or above it).
    pub min_kbps: f64,
    /// The highest average bit rate of any rung, kbit/s.
    pub max_kbps: f64,
    /// The tallest rung (short side in pixels); the master's by default.
    pub top_height: Option<u32>,
    /// The shortest rung (short side in pixels); none by default. The bottom rung then sits
    /// where this size becomes the best one on the hull, or at `min_kbps` if that is higher.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bottom_height: Option<u32>,
    /// The top rung stops where the hull reaches this quality.
    pub top_vmaf: f64,
    /// Spacing between rungs.
    pub spacing: Spacing,
    /// The widest bit-rate step between neighbouring rungs: where the spacing leaves a wider
    /// one (easy content, whose quality climbs fast at low rates), rungs are added inside it,
    /// up to `rungs` in all, so that players switch in small steps (Apple's HLS authoring
    /// guideline keeps neighbours 1.5 to 2 times apart). `inf` adds none.
    pub max_ratio: f64,
    /// The narrowest bit-rate step between neighbouring rungs: closer rungs cost storage and
    /// encodes and give players no useful choice.
    pub min_ratio: f64,
    /// The highest peak (VBV maximum rate) over average bit rate of a rung.
    pub peak_ratio: f64,
    /// How per-frame VMAF pools.
    pub pooling: Pooling,
    /// What each rung of the shot-level optimiser aims at: the per-title rung's `bitrate`
    /// (same bits, better quality) or its `vmaf` (same quality, fewer bits).
    pub shot_target: ShotTarget,
    /// The codec (`codec = "h264"`, which must be the command line's), or rules for each codec
    /// of a multi-codec title (`[codec.av1]` with `rungs = ">= 720"`, `min_kbps`, `max_kbps`,
    /// `top_vmaf`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec: Option<CodecRules>,
    /// Candidate resolutions step by about this factor in pixel count, from about 234p up to
    /// the master: fewer candidates probe faster, more find the best resolution more finely.
    pub size_step: f64,
}

/// What a shot-level rung aims at, taken from its per-title rung.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShotTarget {
    /// The per-title rung's average bit rate.
    #[default]
    Bitrate,
    /// The per-title rung's pooled VMAF.
    Vmaf,
}

impl Default for LadderRules {
    fn default() -> Self {
        Self {
            rungs: 7,
            min_kbps: 145.0,
            max_kbps: 8000.0,
            top_height: None,
            bottom_height: None,
            top_vmaf: 95.0,
            spacing: Spacing::Bitrate(DEFAULT_STEP),
            max_ratio: 2.0,
            min_ratio: 1.5,
            peak_ratio: 2.0,
            pooling: Pooling::Mean,
            shot_target: ShotTarget::Bitrate,
            codec: None,
            size_step: 1.5,
        }
    }
}

impl LadderRules {
    /// Parses a rules file (TOML) and checks it. Errors name the field.
    pub fn from_toml(text: &str) -> Result<Self, LadderRulesError> {
        let rules: Self = toml::from_str(text)?;
        rules.validate()?;
        Ok(rules)
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), InvalidRule> {
        let bad = |field: &'static str, value: &dyn std::fmt::Display, expected: String| {
            Err(InvalidRule {
                codec: None,
                field,
                value: value.to_string(),
                expected,
            })
        };
        if !(1..=30).contains(&self.rungs) {
            return bad("rungs", &self.rungs, "1 to 30".into());
        }
        if !(self.min_kbps.is_finite() && self.min_kbps >= 0.0) {
            return bad("min_kbps", &self.min_kbps, ">= 0".into());
        }
        if !(self.max_kbps.is_finite() && self.max_kbps > self.min_kbps) {
            let expected = format!("above min_kbps = {}", self.min_kbps);
            return bad("max_kbps", &self.max_kbps, expected);
        }
        if !(self.top_vmaf > 0.0 && self.top_vmaf <= 100.0) {
            return bad("top_vmaf", &self.top_vmaf, "0 < v <= 100".into());
        }
        match self.spacing {
            Spacing::Vmaf(s) if !(s.is_finite() && s > 0.0 && s < 100.0) => {
                return bad("spacing vmaf step", &s, "0 < step < 100".into());
            }
            Spacing::Bitrate(r) if !(r.is_finite() && r > 1.0 && r < 100.0) => {
                return bad("spacing bitrate ratio", &r, "1 < ratio < 100".into());
            }
            _ => {}
        }
        if self.max_ratio.is_nan() || self.max_ratio <= 1.0 {
            let expected = "above 1, or inf for no limit".into();
            return bad("max_ratio", &self.max_ratio, expected);
        }
        if !(self.min_ratio.is_finite()
            && self.min_ratio >= 1.0
            && self.min_ratio <= self.max_ratio)
        {
            let expected = format!("1 <= min_ratio <= max_ratio = {}", self.max_ratio);
            return bad("min_ratio", &self.min_ratio, expected);
        }
        if !(self.peak_ratio.is_finite() && self.peak_ratio >= 1.0) {
            return bad("peak_ratio", &self.peak_ratio, ">= 1".into());
        }
        if !(1.2..=4.0).contains(&self.size_step) {
            return bad("size_step", &self.size_step, "1.2 <= step <= 4".into());
        }
        if self.top_height == Some(0) {
            return bad("top_height", &0, "a positive height".into());
        }
        if let (Some(b), Some(t)) = (self.bottom_height, self.top_height)
            && b > t
        {
            return bad("bottom_height", &b, format!("at most top_height = {t}"));
        }
        if let Some(CodecRules::Each(each)) = &self.codec {
            for name in each.keys() {
                self.for_codec(name).validate().map_err(|e| InvalidRule {
                    codec: Some(name.clone()),
                    ..e
                })?;
            }
        }
        Ok(())
    }

    /// The rules one codec of the title follows: these, with the codec's own from
    /// `[codec.NAME]` applied over them.
    pub fn for_codec(&self, name: &str) -> LadderRules {
        let mut rules = LadderRules {
            codec: None,
            ..self.clone()
        };
        if let Some(CodecRules::Each(each)) = &self.codec
            && let Some(own) = each.get(name)
        {
            if let Some(select) = own.rungs {
                rules.bottom_height = select.min.or(rules.bottom_height);
                rules.top_height = match (rules.top_height, select.max) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            rules.min_kbps = own.min_kbps.unwrap_or(rules.min_kbps);
            rules.max_kbps = own.max_kbps.unwrap_or(rules.max_kbps);
            rules.top_vmaf = own.top_vmaf.unwrap_or(rules.top_vmaf);
        }
        rules
    }

    /// The rung heights `[codec.NAME]` selects, if it does.
    pub fn select_of(&self, name: &str) -> Option<RungSelect> {
        match &self.codec {
            Some(CodecRules::Each(each)) => each.get(name).and_then(|r| r.rungs),
            _ => None,
        }
    }

    /// The codec names the rules give rules for (`[codec.NAME]`), or the one they name.
    pub fn codec_names(&self) -> Vec<&str> {
        match &self.codec {
            None => Vec::new(),
            Some(CodecRules::One(c)) => vec![c.as_str()],
            Some(CodecRules::Each(each)) => each.keys().map(String::as_str).collect(),
        }
    }

    /// True when a rung of this short side is allowed (`bottom_height`, `top_height`).
    pub fn allows_height(&self, short_side: u32) -> bool {
        self.bottom_height.is_none_or(|b| short_side >= b)
            && self.top_height.is_none_or(|t| short_side <= t)
    }
}

/// The `codec` entry of the rules: one codec's name (the legacy form), or a table of rules
/// per codec.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CodecRules {
    /// `codec = "h264"`: the title's one codec.
    One(String),
    /// `[codec.av1]`, `[codec.hevc]`...: rules of each codec.
    Each(BTreeMap<String, CodecRule>),
}

impl<'de> Deserialize<'de> for CodecRules {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = CodecRules;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a codec name, or a table of rules per codec ([codec.av1])")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CodecRules, E> {
                Ok(CodecRules::One(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<CodecRules, A::Error> {
                let each =
                    BTreeMap::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(CodecRules::Each(each))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Rules of one codec of a multi-codec title, over the title's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodecRule {
    /// Which rungs this codec has, by short side: `">= 720"`, `">= 480, <= 1080"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rungs: Option<RungSelect>,
    /// The lowest rung's bit rate, kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kbps: Option<f64>,
    /// The highest bit rate, kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_kbps: Option<f64>,
    /// The top rung's quality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_vmaf: Option<f64>,
}

/// Bounds on the short side of a codec's rungs, inclusive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RungSelect {
    /// The shortest allowed.
    pub min: Option<u32>,
    /// The tallest allowed.
    pub max: Option<u32>,
}

impl RungSelect {
    const EXPECTED: &'static str = "a selector of rung heights such as \">= 720\" or \">= 480, \
         <= 1080\" (the number of rungs is the top-level `rungs`)";

    /// True when a rung of this short side is selected.
    pub fn allows(&self, short_side: u32) -> bool {
        self.min.is_none_or(|m| short_side >= m) && self.max.is_none_or(|m| short_side <= m)
    }
}

impl std::str::FromStr for RungSelect {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut select = RungSelect::default();
        for term in text.split(',') {
            let term = term.trim();
            let (op, rest) = [">=", "<=", ">", "<", "="]
                .iter()
                .find_map(|op| term.strip_prefix(op).map(|rest| (*op, rest)))
                .filter(|(_, rest)| !rest.trim_start().starts_with(['<', '>', '=']))
                .ok_or_else(|| format!("{term:?} is not a comparison"))?;
            let digits = rest.trim().trim_end_matches('p');
            let n: u32 = digits
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{:?} is not a positive height", rest.trim()))?;
            let (min, max) = match op {
                ">=" => (Some(n), None),
                ">" => (Some(n + 1), None),
                "<=" => (None, Some(n)),
                "<" => (None, Some(n - 1)),
                _ => (Some(n), Some(n)),
            };
            select.min = select.min.max(min);
            select.max = match (select.max, max) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if let (Some(lo), Some(hi)) = (select.min, select.max)
            && lo > hi
        {
            return Err(format!("{text:?} keeps no rung"));
        }
        Ok(select)
    }
}

impl std::fmt::Display for RungSelect {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match (self.min, self.max) {
            (Some(a), Some(b)) if a == b => write!(f, "= {a}"),
            (Some(a), Some(b)) => write!(f, ">= {a}, <= {b}"),
            (Some(a), None) => write!(f, ">= {a}"),
            (None, Some(b)) => write!(f, "<= {b}"),
            (None, None) => f.write_str(">= 1"),
        }
    }
}

impl Serialize for RungSelect {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RungSelect {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RungSelect;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(RungSelect::EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RungSelect, E> {
                v.parse()
                    .map_err(|why| E::custom(format!("{why}; expected {}", RungSelect::EXPECTED)))
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// A ladder rule out of its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{}{field} = {value} (expected {expected})",
    codec.as_ref().map(|c| format!("[codec.{c}] ")).unwrap_or_default()
)]
pub struct InvalidRule {
    /// The codec whose rules hold it, for `[codec.NAME]` rules.
    pub codec: Option<String>,
    /// The field, as the rules file names it.
    pub field: &'static str,
    /// Its value.
    pub value: String,
    /// What it may be.
    pub expected: String,
}

/// Why a ladder rules file is refused.
#[derive(Debug, thiserror::Error)]
pub enum LadderRulesError {
    /// The file is not TOML of the expected shape (the message gives the line).
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// A value is out of its range.
    #[error(transparent)]
    Invalid(#[from] InvalidRule),
}

/// Probes of one chunk: a curve per resolution.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkProbes {
    /// The curves.
    pub curves: BTreeMap<Size, Curve>,
}

/// A point of the per-title rate-quality plane.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TitlePoint {
    /// The resolution.
    pub size: Size,
    /// The quality setting, the same in every chunk.
    pub crf: f64,
    /// The pooled tally.
    pub tally: Tally,
    /// Average bit rate, kbit/s.
    pub kbps: f64,
    /// Pooled quality (by the rules' pooling).
    pub quality: f64,
    /// True when every chunk measured this setting; false when interpolated.
    pub measured: bool,
}

/// A rung of a per-title ladder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TitleRung {
    /// The hull point it sits on.
    pub point: TitlePoint,
    /// The VBV maximum rate, kbit/s (average × peak ratio, at most the rules' cap × ratio).
    pub maxrate_kbps: f64,
}

/// The per-title decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TitleDecision {
    /// Every pooled point (measured and interpolated), by resolution then setting.
    pub points: Vec<TitlePoint>,
    /// Indices into `points` of the upper convex hull, by rising bit rate.
    pub hull: Vec<usize>,
    /// The chosen rungs, lowest first.
    pub rungs: Vec<TitleRung>,
    /// Where the ladder could not follow the rules (a step wider than `max_ratio`, and why).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Why no ladder could be decided.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecideError {
    /// No resolution was probed in every chunk.
    #[error("no resolution has probes in every chunk")]
    NoCommonResolution,
    /// No hull point fits the rules.
    #[error("no probed point fits the rules ({0})")]
    NothingFits(String),
    /// The rules are invalid.
    #[error("invalid ladder rules: {0}")]
    Rules(InvalidRule),
}

/// Pooled per-title curves: for each resolution probed in every chunk, the tally at each
/// setting of a `step` grid inside the range every chunk measured.
pub fn pool(chunks: &[ChunkProbes], fps: f64, pooling: Pooling, step: f64) -> Vec<TitlePoint> {
    let Some(first) = chunks.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for size in first.curves.keys() {
        let curves: Option<Vec<&Curve>> = chunks.iter().map(|c| c.curves.get(size)).collect();
        let Some(curves) = curves else { continue };
        let Some((lo, hi)) = curves.iter().try_fold((f64::MIN, f64::MAX), |(lo, hi), c| {
            c.range().map(|(a, b)| (lo.max(a), hi.min(b)))
        }) else {
            continue;
        };
        if lo > hi {
            continue;
        }
        let mut grid: Vec<f64> = curves
            .iter()
            .flat_map(|c| c.grid(step))
            .filter(|x| (lo..=hi).contains(x))
            .collect();
        grid.sort_by(f64::total_cmp);
        grid.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        for crf in grid {
            let mut tally = Tally::ZERO;
            let mut measured = true;
            for c in &curves {
                let Some(t) = c.at(crf) else { continue };
                measured &= c.points().iter().any(|p| p.crf == crf);
                tally = tally.add(&t);
            }
            out.push(TitlePoint {
                size: *size,
                crf,
                tally,
                kbps: tally.kbps(fps),
                quality: tally.quality(pooling),
                measured,
            });
        }
    }
    out
}

/// Decides the per-title ladder from the chunks' probes.
pub fn decide(
    chunks: &[ChunkProbes],
    fps: f64,
    rules: &LadderRules,
) -> Result<TitleDecision, DecideError> {
    rules.validate().map_err(DecideError::Rules)?;
    let points = pool(chunks, fps, rules.pooling, 1.0);
    if points.is_empty() {
        return Err(DecideError::NoCommonResolution);
    }
    let allowed: Vec<usize> = (0..points.len())
        .filter(|&i| rules.allows_height(points[i].size.short_side()))
        .collect();
    if allowed.is_empty() {
        return Err(DecideError::NothingFits(
            "no probed resolution is within the rules' rung heights".into(),
        ));
    }
    let xy: Vec<(f64, f64)> = allowed
        .iter()
        .map(|&i| (points[i].kbps, points[i].quality))
        .collect();
    let hull: Vec<usize> = hull::upper(&xy).into_iter().map(|k| allowed[k]).collect();
    let stairs: Vec<usize> = hull::rising(&xy).into_iter().map(|k| allowed[k]).collect();
    let mut notes = Vec::new();
    let floored;
    let rules = match floor_of_bottom(&points, rules) {
        Some(kbps) if kbps > rules.min_kbps => {
            notes.push(format!(
                "rungs start at {}p: the bottom rung sits at {kbps:.0} kbit/s, where that size \
                 becomes the best one",
                rules.bottom_height.unwrap_or_default()
            ));
            floored = LadderRules {
                min_kbps: kbps.min(rules.max_kbps * 0.999),
                ..rules.clone()
            };
            &floored
        }
        _ => rules,
    };
    let (rungs, placed) = place(&points, &hull, &stairs, rules)?;
    notes.extend(placed);
    Ok(TitleDecision {
        points,
        hull,
        rungs,
        notes,
    })
}

/// With a `bottom_height`, the bit rate where the hull of every size first reaches an allowed
/// size: below it a smaller size is better, so an allowed rung there would be starved.
fn floor_of_bottom(points: &[TitlePoint], rules: &LadderRules) -> Option<f64> {
    rules.bottom_height?;
    let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.kbps, p.quality)).collect();
    hull::upper(&xy)
        .into_iter()
        .map(|i| &points[i])
        .find(|p| rules.allows_height(p.size.short_side()))
        .map(|p| p.kbps)
}

/// Places the rungs for viewers: the bottom at the hull point nearest above `min_kbps` (what a
/// poor network sustains), the top where the hull reaches `top_vmaf` (or at `max_kbps`), and
/// between them rungs evenly spread in log bit rate (`Spacing::Bitrate`, neighbours about
/// `step` apart) or in VMAF (`Spacing::Vmaf`), never fewer than keep every step within
/// `max_ratio` and never more than keep them `min_ratio` apart, within the `rungs` cap. Steps
/// still wider than `max_ratio` (the best point near a target may lie off it) get rungs inside,
/// widest first, while the cap allows; what remains is said in the notes. A rung takes the best
/// point at its rate (`stairs`, the rising staircase): a hull point, or where the hull jumps
/// between resolutions (a chord no single setting reaches) the best setting under the chord.
fn place(
    points: &[TitlePoint],
    hull: &[usize],
    stairs: &[usize],
    rules: &LadderRules,
) -> Result<(Vec<TitleRung>, Vec<String>), DecideError> {
    let (candidates, bottom, top) = ends(points, hull, stairs, rules)?;
    let mut notes = Vec::new();
    let (key, n) = rung_count(bottom, top, rules, &mut notes);
    let mut chosen: Vec<&TitlePoint> = Vec::new();
    if std::ptr::eq(bottom, top) || n <= 1 {
        chosen.push(top);
    } else {
        let (k0, k1) = (key(bottom), key(top));
        for k in 0..n {
            let target = k0 + (k1 - k0) * k as f64 / (n - 1) as f64;
            let best = if k == 0 {
                bottom
            } else if k == n - 1 {
                top
            } else {
                // Not closer than `min_ratio` to the rung below or to the top, when a candidate
                // allows it.
                let below = chosen.last().map_or(0.0, |p| p.kbps);
                let apart = |kbps: f64| {
                    rules.min_ratio <= 1.0
                        || (kbps >= below * rules.min_ratio * (1.0 - 1e-9)
                            && kbps * rules.min_ratio <= top.kbps * (1.0 + 1e-9))
                };
                nearest(&candidates, target, key, &apart)
                    .or_else(|| nearest(&candidates, target, key, &|_| true))
                    .unwrap_or(top)
            };
            if chosen.last().is_none_or(|l| l.kbps < best.kbps) {
                chosen.push(best);
            }
        }
    }
    split_wide_steps(&mut chosen, &candidates, rules);
    notes.extend(wide_step_notes(&chosen, rules));
    let rungs = chosen
        .into_iter()
        .map(|p| TitleRung {
            point: *p,
            maxrate_kbps: p.kbps * rules.peak_ratio,
        })
        .collect();
    Ok((rungs, notes))
}

/// The staircase points a rung may take, and the ladder's ends: the bottom is the staircase
/// point nearest above `min_kbps` (a chord point can sit closer to it than any hull point),
/// the top the first hull point reaching `top_vmaf` (or the last one under `max_kbps`).
fn ends<'a>(
    points: &'a [TitlePoint],
    hull: &[usize],
    stairs: &[usize],
    rules: &LadderRules,
) -> Result<(Vec<&'a TitlePoint>, &'a TitlePoint, &'a TitlePoint), DecideError> {
    let in_range: Vec<&TitlePoint> = hull
        .iter()
        .map(|&i| &points[i])
        .filter(|p| p.kbps <= rules.max_kbps)
        .collect();
    let lowest = in_range
        .iter()
        .position(|p| p.kbps >= rules.min_kbps)
        // Everything is cheaper than the floor: the best of it is the one rung.
        .unwrap_or(in_range.len().saturating_sub(1));
    let usable = in_range.get(lowest..).unwrap_or(&[]);
    let Some(&first) = usable.first() else {
        return Err(DecideError::NothingFits(format!(
            "the cheapest hull point is above max_kbps = {}",
            rules.max_kbps
        )));
    };
    let top = usable
        .iter()
        .find(|p| p.quality >= rules.top_vmaf)
        .copied()
        .unwrap_or(usable[usable.len() - 1]);
    let candidates: Vec<&TitlePoint> = stairs
        .iter()
        .map(|&i| &points[i])
        .filter(|p| p.kbps <= top.kbps && (p.kbps >= rules.min_kbps || std::ptr::eq(*p, first)))
        .collect();
    let bottom = candidates.first().copied().unwrap_or(first);
    Ok((candidates, bottom, top))
}

/// How far in bit rate a rung may move from the candidate nearest its target to a better one:
/// the staircase holds points of different resolutions at nearly the same rate (on
/// `bbb-meadow`, 282p at 281 kbit/s and 65.6 VMAF beside 410p at 282 kbit/s and 69.0).
pub const NEAR_RATE: f64 = 1.05;

/// The best candidate, by quality, within [`NEAR_RATE`] in bit rate of the one nearest to
/// `target` by `key`, among those `inside` a rate range.
fn nearest<'a>(
    candidates: &[&'a TitlePoint],
    target: f64,
    key: fn(&TitlePoint) -> f64,
    inside: &dyn Fn(f64) -> bool,
) -> Option<&'a TitlePoint> {
    let near = candidates
        .iter()
        .filter(|p| inside(p.kbps))
        .min_by(|a, b| (key(a) - target).abs().total_cmp(&(key(b) - target).abs()))?;
    candidates
        .iter()
        .filter(|p| inside(p.kbps) && (p.kbps / near.kbps).ln().abs() <= NEAR_RATE.ln())
        .max_by(|a, b| a.quality.total_cmp(&b.quality))
        .copied()
}

/// How rungs spread between the ends (the key they are even in) and how many: a bit-rate
/// spacing places enough for `max_ratio` from the start, never more than keep them
/// `min_ratio` apart; a VMAF spacing places its own, and steps too wide in bits are split
/// later. A note says when the rung cap is below what `max_ratio` needs.
fn rung_count(
    bottom: &TitlePoint,
    top: &TitlePoint,
    rules: &LadderRules,
    notes: &mut Vec<String>,
) -> (fn(&TitlePoint) -> f64, usize) {
    let span = (top.kbps / bottom.kbps).ln().max(0.0);
    let steps_within = |ratio: f64| -> usize {
        if ratio.is_finite() && ratio > 1.0 {
            (span / ratio.ln() - 1e-9).ceil().max(0.0) as usize + 1
        } else {
            1
        }
    };
    let needed = steps_within(rules.max_ratio);
    let most = if rules.min_ratio > 1.0 {
        (span / rules.min_ratio.ln() + 1e-9).floor() as usize + 1
    } else {
        usize::MAX
    };
    let (key, n): (fn(&TitlePoint) -> f64, usize) = match rules.spacing {
        Spacing::Bitrate(step) => (
            |p| p.kbps.ln(),
            steps_within(step).max(needed).min(most.max(needed)),
        ),
        Spacing::Vmaf(step) => (
            |p| p.quality,
            ((top.quality - bottom.quality) / step).floor().max(0.0) as usize + 1,
        ),
    };
    if needed > rules.rungs {
        notes.push(format!(
            "the rules allow {} rungs; {} would keep every step within max_ratio = {} from {:.0} \
             to {:.0} kbit/s",
            rules.rungs, needed, rules.max_ratio, bottom.kbps, top.kbps
        ));
    }
    (key, n.min(rules.rungs))
}

/// Splits the widest bit-rate step first, into as many parts as `max_ratio` needs: the rung
/// goes one part above its lower neighbour, and the rest of the step is split later, while the
/// rung cap allows and a candidate lies inside (not closer than `min_ratio` to either side).
fn split_wide_steps<'a>(
    chosen: &mut Vec<&'a TitlePoint>,
    candidates: &[&'a TitlePoint],
    rules: &LadderRules,
) {
    let mut unsplittable: Vec<f64> = Vec::new();
    while chosen.len() < rules.rungs {
        let widest = chosen
            .windows(2)
            .enumerate()
            .map(|(k, w)| (k, w[1].kbps / w[0].kbps))
            .filter(|&(k, ratio)| {
                ratio > rules.max_ratio && !unsplittable.contains(&chosen[k].kbps)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((k, ratio)) = widest else { break };
        let parts = (ratio.ln() / rules.max_ratio.ln()).ceil().max(2.0);
        let (lo, hi) = (chosen[k].kbps, chosen[k + 1].kbps);
        let target = lo.ln() + ratio.ln() / parts;
        let gap = rules.min_ratio.min(ratio.sqrt());
        let inside = |kbps: f64| {
            kbps > lo
                && kbps < hi
                && (rules.min_ratio <= 1.0 || (kbps / lo >= gap && hi / kbps >= gap))
        };
        match nearest(candidates, target, |p| p.kbps.ln(), &inside) {
            Some(p) => chosen.insert(k + 1, p),
            None => unsplittable.push(lo),
        }
    }
}

/// A note for every step still wider than `max_ratio`, with the reason.
fn wide_step_notes(chosen: &[&TitlePoint], rules: &LadderRules) -> Vec<String> {
    chosen
        .windows(2)
        .filter(|w| w[1].kbps / w[0].kbps > rules.max_ratio * (1.0 + 1e-9))
        .map(|w| {
            format!(
                "the step from {:.0} to {:.0} kbit/s is {:.2}x, above max_ratio = {}: {}",
                w[0].kbps,
                w[1].kbps,
                w[1].kbps / w[0].kbps,
                rules.max_ratio,
                if chosen.len() >= rules.rungs {
                    "the rung cap is reached"
                } else {
                    "no probed point lies inside it"
                }
            )
        })
        .collect()
}

/// How far in bit rate [`prefer`] moves a rung onto an already encoded point: 15%, a quarter
/// of the narrowest step the rules allow (1.5x).
pub const PREFER_WITHIN: f64 = 1.15;

/// Moves each rung onto a `preferred` point of its resolution (settings already encoded at the
/// final preset, so the rung costs no encode of its own) when one lies within [`PREFER_WITHIN`]
/// in bit rate and the ladder still keeps its rules: its steps stay within `min_ratio` and
/// `max_ratio` (or no wider out of them than before), it stays between `min_kbps` and
/// `max_kbps`, and the top rung loses at most `quality_slack` of pooled quality (the others
/// move along their resolution's curve, trading bits for quality at its own slope, which the
/// ladder's BD-rate barely sees). `preferred` holds `(size, setting)` pairs that must be among
/// the decision's points. Returns, per rung, the preferred point it now sits on.
pub fn prefer(
    decision: &mut TitleDecision,
    preferred: &[(Size, f64)],
    rules: &LadderRules,
    quality_slack: f64,
) -> Vec<Option<(Size, f64)>> {
    let mut on = vec![None; decision.rungs.len()];
    let outside = |ratio: f64| {
        if ratio < rules.min_ratio {
            rules.min_ratio / ratio
        } else if ratio > rules.max_ratio {
            ratio / rules.max_ratio
        } else {
            1.0
        }
    };
    for (i, slot) in on.iter_mut().enumerate() {
        let rung = decision.rungs[i].point;
        let lower = i.checked_sub(1).map(|k| decision.rungs[k].point.kbps);
        let upper = decision.rungs.get(i + 1).map(|r| r.point.kbps);
        // How far out of the rules the rung's two steps are, with the rung at `kbps`.
        let strain = |kbps: f64| {
            lower.map_or(1.0, |l| outside(kbps / l)) * upper.map_or(1.0, |u| outside(u / kbps))
        };
        let top = i + 1 == decision.rungs.len();
        let fits = |p: &TitlePoint| {
            (p.kbps / rung.kbps).ln().abs() <= PREFER_WITHIN.ln()
                && (!top || p.quality >= rung.quality - quality_slack)
                && p.kbps <= rules.max_kbps
                && (lower.is_some() || p.kbps >= rules.min_kbps.min(rung.kbps))
                && strain(p.kbps) <= strain(rung.kbps) * (1.0 + 1e-9)
        };
        let best = decision
            .points
            .iter()
            .filter(|p| {
                p.size == rung.size
                    && preferred
                        .iter()
                        .any(|&(s, crf)| s == p.size && (crf - p.crf).abs() < 1e-6)
            })
            .filter(|p| fits(p))
            .min_by(|a, b| {
                let d = |p: &TitlePoint| (p.kbps / rung.kbps).ln().abs();
                d(a).total_cmp(&d(b))
            })
            .copied();
        if let Some(p) = best {
            let r = &mut decision.rungs[i];
            r.maxrate_kbps *= p.kbps / r.point.kbps;
            r.point = p;
            *slot = Some((p.size, p.crf));
        }
    }
    on
}

/// The shot-level target of a rung decided per title.
pub fn shot_target(rung: &TitleRung, rules: &LadderRules) -> Target {
    match rules.shot_target {
        ShotTarget::Bitrate => Target::Kbps(rung.point.kbps),
        ShotTarget::Vmaf => Target::Vmaf(rung.point.quality),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rd::CurvePoint;

    #[test]
    fn a_rung_takes_the_best_point_at_nearly_its_rate() {
        let point = |height: u32, kbps: f64, quality: f64| TitlePoint {
            size: Size {
                width: height * 16 / 9,
                height,
            },
            crf: 30.0,
            tally: crate::Tally::of_frames(kbps * 1000.0, &[quality]),
            kbps,
            quality,
            measured: true,
        };
        let (small, big, far) = (
            point(282, 281.0, 66.2),
            point(410, 282.0, 69.0),
            point(496, 310.0, 71.0),
        );
        let stairs = [&small, &big, &far];
        let all = |_: f64| true;
        let key: fn(&TitlePoint) -> f64 = |p| p.kbps.ln();
        // 281 kbit/s is nearest to the target, but 410p is 2.8 better for 0.4% more bits;
        // 496p is 10% dearer and stays out.
        let got = nearest(&stairs, 280f64.ln(), key, &all).unwrap();
        assert_eq!(got.size.height, 410);
        let got = nearest(&stairs, 315f64.ln(), key, &all).unwrap();
        assert_eq!(got.size.height, 496);
    }

    #[test]
    fn candidate_sizes_step_by_about_one_and_a_half_in_pixels() {
        let hd = candidate_sizes(1920, 1080, 16.0 / 9.0, 1.5);
        assert_eq!(hd.first().unwrap().height, 234);
        assert_eq!(
            *hd.last().unwrap(),
            Size {
                width: 1920,
                height: 1080
            }
        );
        for w in hd.windows(2) {
            let r = w[1].pixels() as f64 / w[0].pixels() as f64;
            assert!((1.35..1.65).contains(&r), "{w:?}: {r}");
        }
        assert_eq!(hd.len(), 9);
        let small = candidate_sizes(640, 360, 16.0 / 9.0, 1.5);
        assert_eq!(
            small.iter().map(|s| s.height).collect::<Vec<_>>(),
            [234, 290, 360]
        );
        assert_eq!(candidate_sizes(320, 180, 16.0 / 9.0, 1.5).len(), 1);
        let portrait = candidate_sizes(1080, 1920, 9.0 / 16.0, 1.5);
        assert_eq!(portrait[0].width, 234);
        assert!(portrait.iter().all(|s| s.height > s.width));
    }

    /// A chunk whose quality at resolution `h` rises with log-bits and saturates lower for
    /// smaller sizes: the classic crossing curves.
    fn probes(difficulty: f64, frames: u64) -> ChunkProbes {
        let mut curves = BTreeMap::new();
        for (h, ceiling) in [(234u32, 70.0), (360, 85.0), (540, 93.0), (720, 98.0)] {
            let size = Size {
                width: h * 16 / 9,
                height: h,
            };
            let pts = (0..7).map(|k| {
                let crf = 18.0 + 4.0 * k as f64;
                let kbps = difficulty * f64::from(h) * 8.0 * (-0.12 * (crf - 18.0)).exp();
                let x = kbps / difficulty / f64::from(h);
                let vmaf = ceiling * (1.0 - (-x / 1.5).exp());
                CurvePoint {
                    crf,
                    tally: Tally::of_frames(
                        kbps * 1000.0 * frames as f64 / 25.0,
                        &vec![vmaf; frames as usize],
                    ),
                }
            });
            curves.insert(size, Curve::new(pts));
        }
        ChunkProbes { curves }
    }

    #[test]
    fn the_ladder_climbs_the_hull_through_the_resolutions() {
        let chunks = vec![probes(1.0, 50), probes(2.0, 75)];
        let d = decide(&chunks, 25.0, &LadderRules::default()).unwrap();
        // Hull points rise; low rates are served by small sizes, high rates by large ones.
        let h: Vec<&TitlePoint> = d.hull.iter().map(|&i| &d.points[i]).collect();
        assert!(
            h.windows(2)
                .all(|w| w[1].kbps > w[0].kbps && w[1].quality > w[0].quality)
        );
        assert_eq!(h[0].size.height, 234);
        assert_eq!(h.last().unwrap().size.height, 720);
        let r = &d.rungs;
        assert!(r.len() >= 4 && r.len() <= 7, "{}", r.len());
        for w in r.windows(2) {
            assert!(w[1].point.kbps > w[0].point.kbps);
            assert!(w[1].point.quality > w[0].point.quality);
            assert!(w[1].point.size.height >= w[0].point.size.height);
            // Neighbours within 2x in rate, as the default max_ratio asks, unless all seven
            // rungs are used.
            assert!(
                w[1].point.kbps / w[0].point.kbps <= 2.0 + 1e-9 || r.len() == 7,
                "{w:?}"
            );
        }
        assert!(r[0].point.kbps >= 145.0);
        assert!(r.last().unwrap().point.quality >= 94.0);
        // The ends are hull points; every rung is on the hull or just under a chord of it.
        assert!(h.contains(&&r[0].point) && h.contains(&&r.last().unwrap().point));
        for rung in r {
            let p = &rung.point;
            let k = h
                .partition_point(|q| q.kbps <= p.kbps)
                .clamp(1, h.len() - 1);
            let (a, b) = (h[k - 1], h[k]);
            let chord = a.quality + (b.quality - a.quality) * (p.kbps - a.kbps) / (b.kbps - a.kbps);
            assert!(
                p.quality <= chord + 1e-9 && chord - p.quality < 1.0,
                "{p:?}: {chord}"
            );
        }
        // By a VMAF spacing alone, about 6 VMAF apart.
        let spaced = LadderRules {
            spacing: Spacing::Vmaf(6.0),
            max_ratio: f64::INFINITY,
            min_ratio: 1.0,
            ..Default::default()
        };
        let d = decide(&chunks, 25.0, &spaced).unwrap();
        for w in d.rungs.windows(2) {
            assert!(
                w[1].point.quality - w[0].point.quality >= 6.0 - 1.5,
                "{w:?}"
            );
        }
        // Rules shape it.
        let rules = LadderRules {
            rungs: 3,
            top_height: Some(540),
            max_kbps: 3000.0,
            ..Default::default()
        };
        let d = decide(&chunks, 25.0, &rules).unwrap();
        assert_eq!(d.rungs.len(), 3);
        assert!(
            d.rungs
                .iter()
                .all(|r| r.point.size.height <= 540 && r.point.kbps <= 3000.0)
        );
        let by_rate = LadderRules {
            spacing: Spacing::Bitrate(2.0),
            ..Default::default()
        };
        let d = decide(&chunks, 25.0, &by_rate).unwrap();
        for w in d.rungs.windows(2) {
            assert!(w[1].point.kbps / w[0].point.kbps >= 1.6, "{w:?}");
        }
    }

    #[test]
    fn codec_rules_select_rungs_and_bad_ones_say_why() {
        let text = "rungs = 6\nmin_kbps = 200\n[codec.av1]\nrungs = \">= 720p\"\nmax_kbps = 6000\n\
                    [codec.hevc]\nrungs = \">= 360, < 1081\"\n";
        let rules = LadderRules::from_toml(text).unwrap();
        assert_eq!(rules.codec_names(), ["av1", "hevc"]);
        let av1 = rules.for_codec("av1");
        assert_eq!((av1.bottom_height, av1.top_height), (Some(720), None));
        assert_eq!((av1.rungs, av1.min_kbps, av1.max_kbps), (6, 200.0, 6000.0));
        assert!(av1.codec.is_none());
        let hevc = rules.for_codec("hevc");
        assert_eq!(
            (hevc.bottom_height, hevc.top_height),
            (Some(360), Some(1080))
        );
        assert_eq!(
            rules.for_codec("h264"),
            LadderRules {
                codec: None,
                ..rules.clone()
            }
        );
        // The canonical form round-trips, and the legacy one is unchanged.
        let again: LadderRules = toml::from_str(&toml::to_string(&rules).unwrap()).unwrap();
        assert_eq!(again, rules);
        let legacy: LadderRules = toml::from_str("codec = \"h264\"").unwrap();
        assert_eq!(legacy.codec, Some(CodecRules::One("h264".into())));
        assert_eq!(
            serde_json::to_value(&legacy).unwrap()["codec"],
            serde_json::json!("h264")
        );
        assert!(
            serde_json::to_value(LadderRules::default())
                .unwrap()
                .get("codec")
                .is_none()
        );
        let refused = |text: &str| LadderRules::from_toml(text).unwrap_err().to_string();
        for (text, says) in [
            (
                "[codec.av1]\nrungs = \"=> 720\"",
                "\"=> 720\" is not a comparison",
            ),
            (
                "[codec.av1]\nrungs = 3",
                "the number of rungs is the top-level `rungs`",
            ),
            ("[codec.av1]\nrungs = \">= 1080, <= 720\"", "keeps no rung"),
            ("[codec.av1]\nmax_kpbs = 5", "unknown field `max_kpbs`"),
            (
                "[codec.av1]\nmax_kbps = 100",
                "[codec.av1] max_kbps = 100 (expected above min_kbps = 145)",
            ),
            (
                "codec = \"h264\"\n[codec.av1]\nrungs = \">= 720\"",
                "cannot extend value of type string",
            ),
        ] {
            let got = refused(text);
            assert!(got.contains(says), "{text:?}: {got}");
        }
        assert!(refused("[codec.av1]\nrungs = 3").contains("line 2"));
    }

    #[test]
    fn a_bottom_height_keeps_the_upper_ladder_from_where_that_size_is_best() {
        let chunks = vec![probes(1.0, 50), probes(2.0, 75)];
        let all = decide(&chunks, 25.0, &LadderRules::default()).unwrap();
        let rules = LadderRules {
            bottom_height: Some(540),
            ..Default::default()
        };
        let d = decide(&chunks, 25.0, &rules).unwrap();
        assert!(d.rungs.iter().all(|r| r.point.size.height >= 540), "{d:?}");
        assert!(d.rungs.len() <= rules.rungs && d.rungs.len() >= 2);
        // The bottom rung is no cheaper than where 540p joins the hull of every size.
        let crossover = all
            .hull
            .iter()
            .map(|&i| &all.points[i])
            .find(|p| p.size.height >= 540)
            .unwrap()
            .kbps;
        assert!(
            d.rungs[0].point.kbps >= crossover * 0.999,
            "{} < {crossover}",
            d.rungs[0].point.kbps
        );
        assert!(d.notes.iter().any(|n| n.contains("540p")), "{:?}", d.notes);
        // The top is the same as the full ladder's.
        assert_eq!(
            d.rungs.last().unwrap().point,
            all.rungs.last().unwrap().point
        );
        let both = LadderRules {
            bottom_height: Some(360),
            top_height: Some(540),
            ..Default::default()
        };
        let d = decide(&chunks, 25.0, &both).unwrap();
        assert!(
            d.rungs
                .iter()
                .all(|r| (360..=540).contains(&r.point.size.height))
        );
        let none = LadderRules {
            bottom_height: Some(1080),
            ..Default::default()
        };
        assert!(matches!(
            decide(&chunks, 25.0, &none),
            Err(DecideError::NothingFits(_))
        ));
    }

    /// A decision on the crossing curves, and for every rung the settings of its resolution
    /// `deltas` away from its own that the decision has points at.
    fn decided_and_near(deltas: &[f64]) -> (TitleDecision, Vec<(Size, f64)>) {
        let chunks = vec![probes(1.0, 50), probes(2.0, 75)];
        let d = decide(&chunks, 25.0, &LadderRules::default()).unwrap();
        let mut near = Vec::new();
        for r in &d.rungs {
            for delta in deltas {
                let crf = r.point.crf + delta;
                if d.points
                    .iter()
                    .any(|p| p.size == r.point.size && p.crf == crf)
                {
                    near.push((r.point.size, crf));
                }
            }
        }
        (d, near)
    }

    fn point_at(d: &TitleDecision, size: Size, crf: f64) -> TitlePoint {
        *d.points
            .iter()
            .find(|p| p.size == size && (p.crf - crf).abs() < 1e-9)
            .unwrap()
    }

    #[test]
    fn rungs_move_onto_encoded_points_only_when_near_and_within_the_rules() {
        let rules = LadderRules::default();
        // For every rung, the neighbouring settings and a far one.
        let (d, preferred) = decided_and_near(&[-1.0, 1.0, 6.0]);
        let mut moved = d.clone();
        let on = prefer(&mut moved, &preferred, &rules, 1.0);
        assert_eq!(on.len(), d.rungs.len());
        for ((before, after), on) in d.rungs.iter().zip(&moved.rungs).zip(&on) {
            match on {
                Some((size, crf)) => {
                    assert_eq!(after.point, point_at(&d, *size, *crf));
                    let ratio = after.point.kbps / before.point.kbps;
                    assert!(
                        (1.0 / PREFER_WITHIN..=PREFER_WITHIN).contains(&ratio),
                        "{ratio}"
                    );
                    assert!(
                        after.point.quality >= before.point.quality - 1.0
                            || !std::ptr::eq(before, d.rungs.last().unwrap())
                    );
                    assert!(
                        (after.maxrate_kbps / after.point.kbps - rules.peak_ratio).abs() < 1e-9
                    );
                }
                None => assert_eq!(after, before),
            }
        }
        assert!(
            on.iter().any(Option::is_some),
            "some rung sits near its neighbours' settings"
        );
        // The steps keep the rules wherever they kept them before.
        for (w0, w1) in d.rungs.windows(2).zip(moved.rungs.windows(2)) {
            let ok = |w: &[TitleRung]| {
                let r = w[1].point.kbps / w[0].point.kbps;
                (rules.min_ratio - 1e-9..=rules.max_ratio + 1e-9).contains(&r)
            };
            assert!(!ok(w0) || ok(w1), "{w0:?} -> {w1:?}");
        }
    }

    #[test]
    fn nothing_moves_onto_far_points_or_without_any() {
        let rules = LadderRules::default();
        let (d, far) = decided_and_near(&[6.0, -6.0]);
        let mut same = d.clone();
        assert!(
            prefer(&mut same, &[], &rules, 1.0)
                .iter()
                .all(Option::is_none)
        );
        assert_eq!(same, d);
        let far: Vec<(Size, f64)> = far
            .into_iter()
            .filter(|&(size, crf)| {
                let p = point_at(&d, size, crf);
                d.rungs
                    .iter()
                    .all(|r| (p.kbps / r.point.kbps).ln().abs() > PREFER_WITHIN.ln())
            })
            .collect();
        assert!(!far.is_empty());
        let mut same = d.clone();
        assert!(
            prefer(&mut same, &far, &rules, 1.0)
                .iter()
                .all(Option::is_none)
        );
    }

    #[test]
    fn wide_rate_steps_get_rungs_inside() {
        // Quality steps far apart in bits.
        let chunks = vec![probes(0.2, 50), probes(0.3, 50)];
        let rate = |rules: &LadderRules| -> Vec<f64> {
            let d = decide(&chunks, 25.0, rules).unwrap();
            d.rungs.iter().map(|r| r.point.kbps).collect()
        };
        let base = LadderRules {
            min_kbps: 150.0,
            spacing: Spacing::Vmaf(15.0),
            rungs: 10,
            min_ratio: 1.0,
            ..Default::default()
        };
        let spaced = rate(&LadderRules {
            max_ratio: f64::INFINITY,
            ..base.clone()
        });
        let ratios = |r: &[f64]| r.windows(2).map(|w| w[1] / w[0]).collect::<Vec<_>>();
        assert!(ratios(&spaced).iter().any(|&x| x > 2.5), "{spaced:?}");
        let filled = rate(&base);
        assert!(filled.len() > spaced.len(), "{filled:?} vs {spaced:?}");
        assert!(
            ratios(&filled).iter().all(|&x| x > 1.0 && x <= 2.0),
            "{filled:?}"
        );
        // The spaced rungs stay; the new ones go between them.
        assert!(spaced.iter().all(|k| filled.contains(k)));
        // The rung count still caps it.
        let capped = rate(&LadderRules {
            rungs: spaced.len() + 1,
            ..base.clone()
        });
        assert_eq!(capped.len(), spaced.len() + 1);
    }

    #[test]
    fn default_rungs_are_spaced_for_viewers_from_the_floor_to_the_top() {
        let chunks = vec![probes(1.0, 50), probes(2.0, 75)];
        let rules = LadderRules::default();
        let d = decide(&chunks, 25.0, &rules).unwrap();
        let r: Vec<&TitlePoint> = d.rungs.iter().map(|r| &r.point).collect();
        assert!(r.len() >= 3, "{r:?}");
        // The bottom is the staircase point nearest above the floor; the top reaches the target.
        let stairs_below = d
            .points
            .iter()
            .filter(|p| p.kbps >= rules.min_kbps && p.kbps < r[0].kbps)
            .filter(|p| p.quality > r[0].quality)
            .count();
        assert_eq!(stairs_below, 0, "{:?}", r[0]);
        assert!(r[0].kbps >= rules.min_kbps);
        assert!(r.last().unwrap().quality >= rules.top_vmaf);
        for w in r.windows(2) {
            let ratio = w[1].kbps / w[0].kbps;
            assert!((1.4..=2.0 + 1e-9).contains(&ratio), "{ratio}: {w:?}");
        }
        assert!(d.notes.is_empty(), "{:?}", d.notes);
        // Too few rungs for the span: the steps widen and the notes say why.
        let few = LadderRules {
            rungs: 2,
            ..Default::default()
        };
        let d = decide(&chunks, 25.0, &few).unwrap();
        assert_eq!(d.rungs.len(), 2);
        assert!(
            d.notes
                .iter()
                .any(|n| n.contains("the rules allow 2 rungs")),
            "{:?}",
            d.notes
        );
        // A narrower step gives more rungs, never closer than min_ratio.
        let dense = LadderRules {
            spacing: Spacing::Bitrate(1.5),
            rungs: 20,
            ..Default::default()
        };
        let n_dense = decide(&chunks, 25.0, &dense).unwrap().rungs;
        assert!(n_dense.len() > r.len(), "{} vs {}", n_dense.len(), r.len());
        for w in n_dense.windows(2) {
            assert!(w[1].point.kbps / w[0].point.kbps >= 1.3, "{w:?}");
        }
    }

    #[test]
    fn rules_files_are_checked() {
        let r = LadderRules::from_toml(
            "rungs = 5\nmax_kbps = 6000\nspacing = { by = \"bitrate\", step = 1.6 }\npooling = \"harmonic\"\n",
        )
        .unwrap();
        assert_eq!(r.rungs, 5);
        assert_eq!(r.spacing, Spacing::Bitrate(1.6));
        assert_eq!(r.pooling, Pooling::Harmonic);
        let off = LadderRules::from_toml("max_ratio = inf").unwrap();
        assert_eq!(off.max_ratio, f64::INFINITY);
        for (bad, says) in [
            ("rungs = 0", "rungs = 0"),
            ("max_kbps = 10", "max_kbps"),
            ("spacing = { by = \"bitrate\", step = 0.9 }", "ratio"),
            ("speed = 3", "unknown field"),
            ("peak_ratio = 0.5", "peak_ratio"),
            ("max_ratio = 1", "max_ratio"),
            ("max_ratio = nan", "max_ratio"),
            ("min_ratio = 3", "min_ratio"),
            ("size_step = 9", "size_step"),
        ] {
            let e = LadderRules::from_toml(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn steps_stay_within_the_rules_or_the_notes_say_why(
            difficulty in 0.05f64..8.0,
            second in 0.05f64..8.0,
            min_kbps in 20.0f64..600.0,
            rungs in 2usize..10,
            step in 1.5f64..2.0,
        ) {
            let chunks = vec![probes(difficulty, 40), probes(second, 60)];
            let rules = LadderRules {
                min_kbps,
                rungs,
                spacing: Spacing::Bitrate(step),
                ..Default::default()
            };
            let d = decide(&chunks, 25.0, &rules).unwrap();
            proptest::prop_assert!(!d.rungs.is_empty() && d.rungs.len() <= rungs);
            for w in d.rungs.windows(2) {
                let (a, b) = (&w[0].point, &w[1].point);
                proptest::prop_assert!(b.kbps > a.kbps && b.quality > a.quality, "{:?}", w);
                if b.kbps / a.kbps > rules.max_ratio * (1.0 + 1e-9) {
                    proptest::prop_assert!(!d.notes.is_empty(), "{:?} without a note", w);
                }
            }
            proptest::prop_assert!(d.rungs.iter().all(|r| r.point.kbps <= rules.max_kbps));
        }
    }
}
