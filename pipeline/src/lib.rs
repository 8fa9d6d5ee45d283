//! The rungs pipeline: ingest (validation and shots in one decode pass), and the encode job
//! (`encode`: fixed ladders, chunk × rung tasks through the queue, assembly, report). The
//! `rungs` binary lives here too.
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

pub mod dashboard;
pub mod encode;
pub mod fleet;
pub mod ingest;
pub mod shots;
