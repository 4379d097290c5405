//! Umbrella package owning the workspace-level tests and benchmarks.
pub use rantai_core as core;
