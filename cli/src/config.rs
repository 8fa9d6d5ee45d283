//! From arguments to validated options ("high-level arguments"): the config file first, then
//! command-line flags over it, then the libraries' own validation.

use std::path::Path;

use pipeline::ingest::{IngestOptions, ShotOptions};
use pipeline::shots::{ChunkRules, DetectorParams};
use serde::Deserialize;

use crate::args::IngestSettings;
use crate::exit::Failure;

/// The config file. Every section and key is optional; unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    validate: ValidateSection,
    chunks: Option<ChunkRules>,
    shot_detector: Option<DetectorParams>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ValidateSection {
    av_tolerance_seconds: Option<f64>,
    min_dimension: Option<u32>,
    max_dimension: Option<u32>,
    max_frames: Option<u64>,
    max_aspect: Option<f64>,
    threads: Option<usize>,
    max_listed: Option<usize>,
}

fn load(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::io(format!("cannot read config {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| Failure::usage(format!("config {}: {e}", path.display())))
}

/// What to do about shots.
pub struct ShotChoice {
    pub detect: bool,
    pub threshold: Option<f32>,
    pub keep_scores: bool,
}

/// Builds the ingest options from the config file and the flags.
pub fn ingest_options(args: &IngestSettings, shots: ShotChoice) -> anyhow::Result<IngestOptions> {
    let file = match &args.config {
        Some(p) => load(p)?,
        None => FileConfig::default(),
    };
    let d = IngestOptions::default();
    let v = &file.validate;
    let mut rules = file.chunks.unwrap_or_default();
    if let Some(m) = args.min_chunk {
        rules.min_seconds = m;
    }
    if let Some(m) = args.max_chunk {
        rules.max_seconds = m;
    }
    let mut detector = file.shot_detector.unwrap_or_default();
    if let Some(t) = shots.threshold {
        detector.threshold = t;
    }
    let options = IngestOptions {
        shots: shots.detect.then_some(ShotOptions {
            rules,
            detector,
            keep_scores: shots.keep_scores,
        }),
        av_tolerance_seconds: args
            .av_tolerance
            .or(v.av_tolerance_seconds)
            .unwrap_or(d.av_tolerance_seconds),
        min_dimension: v.min_dimension.unwrap_or(d.min_dimension),
        max_dimension: v.max_dimension.unwrap_or(d.max_dimension),
        max_frames: v.max_frames.unwrap_or(d.max_frames),
        max_aspect: v.max_aspect.unwrap_or(d.max_aspect),
        threads: args.threads.or(v.threads).unwrap_or(d.threads),
        max_listed: v.max_listed.unwrap_or(d.max_listed),
    };
    options
        .validate()
        .map_err(|e| Failure::usage(e.to_string()))?;
    Ok(options)
}
