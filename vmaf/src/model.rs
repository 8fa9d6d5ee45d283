//! VMAF models: libvmaf's JSON format, the libsvm ν-SVR inside it, normalisation, the optional
//! score transform ("phone") and clipping.

use serde_json::Value;

use crate::Error;

/// The default model, VMAF v0.6.1, as libvmaf ships it.
pub const VMAF_V061: &str = include_str!("../models/vmaf_v0.6.1.json");
/// The 4K model, VMAF 4K v0.6.1.
pub const VMAF_4K_V061: &str = include_str!("../models/vmaf_4k_v0.6.1.json");

/// The features a model may ask for, all computed by this crate's integer extractors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// ADM2.
    Adm2,
    /// motion2.
    Motion2,
    /// VIF at scale `n`.
    Vif(usize),
}

impl Feature {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "VMAF_integer_feature_adm2_score" => Feature::Adm2,
            "VMAF_integer_feature_motion2_score" => Feature::Motion2,
            "VMAF_integer_feature_vif_scale0_score" => Feature::Vif(0),
            "VMAF_integer_feature_vif_scale1_score" => Feature::Vif(1),
            "VMAF_integer_feature_vif_scale2_score" => Feature::Vif(2),
            "VMAF_integer_feature_vif_scale3_score" => Feature::Vif(3),
            _ => return None,
        })
    }
}

/// The polynomial and rectification of a model's score transform.
#[derive(Clone, Debug, Default, PartialEq)]
struct Transform {
    /// Applied only when true (or when the caller enables it, as for the phone model).
    enabled: bool,
    p: [Option<f64>; 3],
    knots: Vec<(f64, f64)>,
    out_lte_in: bool,
    out_gte_in: bool,
}

/// A loaded VMAF model.
#[derive(Clone, Debug)]
pub struct Model {
    name: String,
    features: Vec<(Feature, f64, f64)>,
    slope: f64,
    intercept: f64,
    linear_rescale: bool,
    clip: Option<(f64, f64)>,
    transform: Transform,
    gamma: f64,
    rho: f64,
    support: Vec<(f64, Vec<f64>)>,
}

impl Model {
    /// VMAF v0.6.1, libvmaf's default.
    pub fn v061() -> Self {
        Self::from_json("vmaf_v0.6.1", VMAF_V061)
            .unwrap_or_else(|e| unreachable!("built-in model: {e}"))
    }

    /// VMAF 4K v0.6.1.
    pub fn v061_4k() -> Self {
        Self::from_json("vmaf_4k_v0.6.1", VMAF_4K_V061)
            .unwrap_or_else(|e| unreachable!("built-in model: {e}"))
    }

    /// A built-in model by libvmaf's version name (`vmaf_v0.6.1`, `vmaf_4k_v0.6.1`).
    pub fn builtin(version: &str) -> Option<Self> {
        match version {
            "vmaf_v0.6.1" => Some(Self::v061()),
            "vmaf_4k_v0.6.1" => Some(Self::v061_4k()),
            _ => None,
        }
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Turns on the model's score transform: for v0.6.1 this is the phone model.
    pub fn with_transform(mut self) -> Self {
        self.transform.enabled = true;
        self
    }

    /// The features the model reads, in its order.
    pub fn features(&self) -> impl Iterator<Item = Feature> + '_ {
        self.features.iter().map(|f| f.0)
    }

    /// Parses a model in libvmaf's JSON format.
    pub fn from_json(name: &str, json: &str) -> Result<Self, Error> {
        // serde_json's message ends with the line and column.
        let v: Value = serde_json::from_str(json).map_err(|e| Error::Model {
            reason: format!("{name}: {e}"),
        })?;
        let dict = ModelDict {
            name,
            dict: v.get("model_dict").ok_or_else(|| Error::Model {
                reason: format!("{name}: no model_dict"),
            })?,
        };
        let (features, slope, intercept) = dict.features()?;
        let linear_rescale = dict.linear_rescale()?;
        let clip = dict.clip()?;
        let transform = dict.transform()?;
        let (gamma, rho, support) = dict.libsvm(features.len())?;
        Ok(Self {
            name: name.to_owned(),
            features,
            slope,
            intercept,
            linear_rescale,
            clip,
            transform,
            gamma,
            rho,
            support,
        })
    }

    /// The score for one frame's features, looked up by `value`.
    pub fn predict(&self, value: impl Fn(Feature) -> f64) -> f64 {
        let x: Vec<f64> = self
            .features
            .iter()
            .map(|&(f, slope, intercept)| {
                let v = value(f);
                if self.linear_rescale {
                    slope * v + intercept
                } else {
                    v
                }
            })
            .collect();
        let mut sum = 0.0;
        for (coef, sv) in &self.support {
            let mut d2 = 0.0;
            for (a, b) in x.iter().zip(sv) {
                let d = a - b;
                d2 += d * d;
            }
            sum += coef * (-self.gamma * d2).exp();
        }
        let mut y = sum - self.rho;
        if self.linear_rescale {
            y = (y - self.intercept) / self.slope;
        }
        y = self.transform.apply(y);
        if let Some((lo, hi)) = self.clip {
            y = y.max(lo).min(hi);
        }
        y
    }
}

impl Transform {
    fn apply(&self, y_in: f64) -> f64 {
        if !self.enabled {
            return y_in;
        }
        let mut y = if self.p.iter().any(Option::is_some) {
            let mut out = 0.0;
            if let Some(p0) = self.p[0] {
                out += p0;
            }
            if let Some(p1) = self.p[1] {
                out += p1 * y_in;
            }
            if let Some(p2) = self.p[2] {
                out += p2 * y_in * y_in;
            }
            out
        } else {
            y_in
        };
        if self.knots.len() > 1 {
            y = piecewise_linear(y, &self.knots);
        }
        if self.out_lte_in && y > y_in {
            y = y_in;
        }
        if self.out_gte_in && y < y_in {
            y = y_in;
        }
        y
    }
}

/// libvmaf's piecewise-linear mapping, extrapolating the end segments.
fn piecewise_linear(x: f64, knots: &[(f64, f64)]) -> f64 {
    let n = knots.len() - 1;
    let mut y = 0.0;
    for idx in 0..n {
        let ((x0, y0), (x1, y1)) = (knots[idx], knots[idx + 1]);
        let inside = x0 <= x && x <= x1;
        let below = idx == 0 && x < x0;
        let above = idx == n - 1 && x > x1;
        if y0 == y1 {
            if inside || below || above {
                y = y0;
            }
        } else {
            let slope = (y1 - y0) / (x1 - x0);
            let offset = y0 - x0 * slope;
            if inside || below || above {
                y = slope * x + offset;
            }
        }
    }
    y
}

/// The `model_dict` of a model file named `name`, read field by field.
struct ModelDict<'a> {
    name: &'a str,
    dict: &'a Value,
}

/// The model's features with their slopes and intercepts, and the overall slope and intercept.
type Features = (Vec<(Feature, f64, f64)>, f64, f64);

impl ModelDict<'_> {
    /// A model error naming the file.
    fn bad(&self, reason: impl std::fmt::Display) -> Error {
        Error::Model {
            reason: format!("{}: {reason}", self.name),
        }
    }

    /// The list at `key`.
    fn list(&self, key: &str) -> Result<&Vec<Value>, Error> {
        self.dict
            .get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| self.bad(format_args!("model_dict.{key} is missing or not a list")))
    }

    /// The list of strings at `key`.
    fn strs(&self, key: &str) -> Result<Vec<String>, Error> {
        self.list(key)?
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.bad(format_args!("{key} holds a non-string")))
            })
            .collect()
    }

    /// The list of numbers at `key`.
    fn nums(&self, key: &str) -> Result<Vec<f64>, Error> {
        self.list(key)?
            .iter()
            .map(|x| {
                x.as_f64()
                    .ok_or_else(|| self.bad(format_args!("{key} holds a non-number")))
            })
            .collect()
    }

    /// The features, each with its slope and intercept (the first of each list is the
    /// model's own).
    fn features(&self) -> Result<Features, Error> {
        let feature_names = self.strs("feature_names")?;
        let slopes = self.nums("slopes")?;
        let intercepts = self.nums("intercepts")?;
        if slopes.len() != feature_names.len() + 1 || intercepts.len() != feature_names.len() + 1 {
            return Err(self.bad(format_args!(
                "{} features need {} slopes and intercepts, got {} and {}",
                feature_names.len(),
                feature_names.len() + 1,
                slopes.len(),
                intercepts.len()
            )));
        }
        let features = feature_names
            .iter()
            .enumerate()
            .map(|(i, f)| {
                Feature::from_name(f)
                    .map(|feat| (feat, slopes[i + 1], intercepts[i + 1]))
                    .ok_or_else(|| self.bad(format_args!("unsupported feature {f:?} (only libvmaf's integer VIF, ADM2 and motion2)")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((features, slopes[0], intercepts[0]))
    }

    /// Whether features are rescaled linearly (`norm_type`).
    fn linear_rescale(&self) -> Result<bool, Error> {
        match self.dict.get("norm_type").and_then(Value::as_str) {
            Some("linear_rescale") => Ok(true),
            Some("none") | None => Ok(false),
            Some(other) => Err(self.bad(format_args!("unsupported norm_type {other:?}"))),
        }
    }

    /// The range scores are clipped to, if any.
    fn clip(&self) -> Result<Option<(f64, f64)>, Error> {
        match self.dict.get("score_clip") {
            None | Some(Value::Null) => Ok(None),
            Some(c) => {
                let c = c
                    .as_array()
                    .filter(|c| c.len() == 2)
                    .ok_or_else(|| self.bad("score_clip must be [min, max]"))?;
                Ok(Some((
                    c[0].as_f64().unwrap_or(0.0),
                    c[1].as_f64().unwrap_or(100.0),
                )))
            }
        }
    }

    /// The score transform (off unless the model has one).
    fn transform(&self) -> Result<Transform, Error> {
        match self.dict.get("score_transform") {
            Some(t) => {
                parse_transform(t).map_err(|r| self.bad(format_args!("score_transform: {r}")))
            }
            None => Ok(Transform::default()),
        }
    }

    /// The support vector regression: its type must be libsvm's nu-SVR.
    fn libsvm(&self, n_features: usize) -> Result<Libsvm, Error> {
        if self.dict.get("model_type").and_then(Value::as_str) != Some("LIBSVMNUSVR") {
            return Err(self.bad("only LIBSVMNUSVR models are supported"));
        }
        let text = self
            .dict
            .get("model")
            .and_then(Value::as_str)
            .ok_or_else(|| self.bad("no libsvm model text"))?;
        parse_libsvm(text, n_features).map_err(|r| self.bad(format_args!("libsvm model: {r}")))
    }
}

fn parse_transform(t: &Value) -> Result<Transform, String> {
    let obj = t.as_object().ok_or("not an object")?;
    let flag = |k: &str| match obj.get(k) {
        Some(Value::String(s)) => s == "true",
        Some(Value::Bool(b)) => *b,
        _ => false,
    };
    let p = |k: &str| obj.get(k).and_then(Value::as_f64);
    let knots = match obj.get("knots") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|k| {
                let k = k
                    .as_array()
                    .filter(|k| k.len() == 2)
                    .ok_or("each knot must be [x, y]")?;
                Ok((
                    k[0].as_f64().ok_or("knot x")?,
                    k[1].as_f64().ok_or("knot y")?,
                ))
            })
            .collect::<Result<Vec<_>, &str>>()?,
        _ => Vec::new(),
    };
    Ok(Transform {
        enabled: flag("enabled"),
        p: [p("p0"), p("p1"), p("p2")],
        knots,
        out_lte_in: flag("out_lte_in"),
        out_gte_in: flag("out_gte_in"),
    })
}

/// A parsed libsvm model: gamma, rho, and the (coefficient, vector) pairs.
type Libsvm = (f64, f64, Vec<(f64, Vec<f64>)>);

/// Parses libsvm's text format: the header, then one support vector per line.
fn parse_libsvm(text: &str, n_features: usize) -> Result<Libsvm, String> {
    let mut lines = text.lines().enumerate();
    let mut gamma = None;
    let mut rho = None;
    for (no, line) in lines.by_ref() {
        let mut parts = line.split_whitespace();
        match parts.next() {
            Some("SV") => break,
            Some("svm_type") if parts.next() != Some("nu_svr") => {
                return Err(format!("line {}: only nu_svr", no + 1));
            }
            Some("kernel_type") if parts.next() != Some("rbf") => {
                return Err(format!("line {}: only the rbf kernel", no + 1));
            }
            Some("gamma") => gamma = parts.next().and_then(|g| g.parse().ok()),
            Some("rho") => rho = parts.next().and_then(|r| r.parse().ok()),
            _ => {}
        }
    }
    let gamma = gamma.ok_or("no gamma")?;
    let rho = rho.ok_or("no rho")?;
    let mut support = Vec::new();
    for (no, line) in lines {
        let mut parts = line.split_whitespace();
        let Some(coef) = parts.next() else { continue };
        let coef: f64 = coef
            .parse()
            .map_err(|_| format!("line {}: bad coefficient {coef:?}", no + 1))?;
        let mut sv = vec![0.0; n_features];
        for p in parts {
            let (i, v) = p
                .split_once(':')
                .ok_or_else(|| format!("line {}: bad pair {p:?}", no + 1))?;
            let i: usize = i
                .parse()
                .map_err(|_| format!("line {}: bad index {i:?}", no + 1))?;
            let v: f64 = v
                .parse()
                .map_err(|_| format!("line {}: bad value {v:?}", no + 1))?;
            if i == 0 || i > n_features {
                return Err(format!(
                    "line {}: feature index {i} outside 1..={n_features}",
                    no + 1
                ));
            }
            sv[i - 1] = v;
        }
        support.push((coef, sv));
    }
    if support.is_empty() {
        return Err("no support vectors".into());
    }
    Ok((gamma, rho, support))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_models_load() {
        let m = Model::v061();
        assert_eq!(m.support.len(), 211);
        assert_eq!(m.features().count(), 6);
        assert_eq!(Model::v061_4k().support.len(), 262);
    }

    #[test]
    fn perfect_features_score_high_and_scores_are_clipped() {
        let m = Model::v061();
        let perfect = m.predict(|f| match f {
            Feature::Adm2 | Feature::Vif(_) => 1.0,
            Feature::Motion2 => 10.0,
        });
        assert!(perfect > 95.0 && perfect <= 100.0, "{perfect}");
        let awful = m.predict(|_| 0.0);
        assert!((0.0..10.0).contains(&awful), "{awful}");
        // The phone transform raises mid scores and never lowers them.
        let mid = |m: &Model| m.predict(|f| if f == Feature::Motion2 { 4.0 } else { 0.8 });
        assert!(mid(&Model::v061().with_transform()) >= mid(&Model::v061()));
    }

    #[test]
    fn bad_models_are_refused_with_a_reason() {
        let e = Model::from_json("x", "{ nope").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = Model::from_json(
            "x",
            r#"{"model_dict": {"feature_names": ["foo"], "slopes": [1, 1], "intercepts": [0, 0]}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unsupported feature"), "{e}");
    }

    #[test]
    fn piecewise_linear_extrapolates() {
        let k = [(0.0, 0.0), (1.0, 2.0), (2.0, 2.0)];
        assert_eq!(piecewise_linear(0.5, &k), 1.0);
        assert_eq!(piecewise_linear(-1.0, &k), -2.0);
        assert_eq!(piecewise_linear(3.0, &k), 2.0);
    }
}
