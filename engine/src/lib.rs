//! AeroFS engine: the hot loops of every pipeline.
//!
//! Shared machinery: [`error`] (one error type, per-input problems), [`progress`] (counters and the
//! cancel token), [`parallel`] (a rayon pool per run, fork-safe), [`io`] (decompressing readers,
//! atomic outputs). One module per pipeline: [`csv`], [`words`], [`logs`], [`exif`], each pure Rust,
//! with its PyO3 binding beside it in `python.rs` (compiled only with the `python` feature, so
//! `cargo test` runs without Python).
//!
//! Binding convention, the same for every pipeline (`aerofs_kernel._engine.<name>`):
//! `name(inputs, options_json, progress) -> (result_json, tables)` where `result_json` is a JSON
//! object with at least `summary`, `outputs` and `errors` (a list of [`error::Problem`]) and `tables`
//! is a dict of `pyarrow.Table`.

pub mod error;
pub mod io;
pub mod parallel;
pub mod progress;

pub mod csv;
pub mod exif;
pub mod logs;
pub mod words;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, ErrorKind, OnError, Problem, Result};
pub use progress::Progress;
