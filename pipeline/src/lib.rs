//! The rungs pipeline: ingest (validation and shots in one decode pass), and the encode job
//! (`encode`: fixed and per-title ladders, chunk × rung tasks through the queue, assembly,
//! packaging, report), fleet mode and the dashboard. The `rungs` binary is the `cli` crate.
//!
//! ```no_run
//! use pipeline::ingest::{IngestOptions, ShotOptions, analyze};
//!
//! let options = IngestOptions { shots: Some(ShotOptions::default()), ..Default::default() };
//! let report = analyze("master.mp4".as_ref(), &options, &mut |_| {}).unwrap();
//! if report.accepted {
//!     let shots = report.shots.unwrap();
//!     println!("{} cuts, {} chunks", shots.cuts.len(), shots.chunks.len());
//! } else {
//!     for p in report.errors() {
//!         println!("{}: {} ({})", p.kind.name(), p.message, p.position());
//!     }
//! }
//! ```

pub mod cache;
pub mod dashboard;
pub mod encode;
pub mod fleet;
pub mod ingest;
pub mod shots;

/// Rounds seconds to the millisecond, which is finer than any frame and keeps the JSON short
/// (shared by `ingest` and `shots`, so that neither module imports the other for it).
pub(crate) fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}
