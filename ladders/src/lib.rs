//! Rate-distortion points, convex hulls, rung selection, the constant-slope shot optimizer,
//! BD-rate, and the ladder checks used as a CI gate. Pure and deterministic: nothing here
//! encodes or measures, it decides from measurements it is given.
//!
//! The flow: probes give each chunk a rate-distortion [`rd::Curve`] per resolution;
//! [`title::decide`] pools them into per-title curves, takes their upper convex hull and picks
//! the rungs; [`optimize::allocate`] then gives every chunk of a rung its own quality setting at
//! one Lagrangian slope; [`bd::bd_rate`] compares ladders, and [`check`] gates them in CI.

pub mod bd;
pub mod check;
pub mod hull;
pub mod optimize;
pub mod rd;
pub mod title;

pub use rd::{Curve, Pooling, Tally};
