//! Rate-distortion points, convex hulls, rung selection, the constant-slope shot optimizer,
//! BD-rate, and the ladder checks used as a CI gate. Pure and deterministic.
//!
//! This crate is a placeholder in the workspace until the ladder issue lands; it intentionally
//! exports nothing yet.
