//! The `csv-to-parquet` pipeline: CSV (plain, `.gz`, `.zst`) to Parquet, fast and streaming.
//!
//! * [`dialect`]: delimiter detection, quote/escape/comment/header settings;
//! * [`tokenize`]: fields of a block (64-byte bitmask tokenizer + a scalar reference);
//! * [`split`]: record-aligned blocks of an input (exact with quoted newlines);
//! * [`types`] and [`infer`]: value types, sampling, unification across inputs (drift report);
//! * [`decimal`]: exact fixed-point values and when a column is inferred as a decimal;
//! * [`build`]: Arrow arrays straight from the fields;
//! * [`partition`]: the partitioned layout's split by value and held row groups;
//! * [`writer`]: Parquet properties and row groups encoded in parallel;
//! * [`memory`]: the allocator keeps freed pages while a run is active;
//! * [`convert`]: the run (layouts, malformed rows, redo on widening); [`preview`]: a quick look.

pub mod build;
pub mod convert;
pub mod decimal;
pub mod dialect;
pub mod infer;
pub mod memory;
pub mod options;
pub mod partition;
pub mod preview;
pub mod split;
pub mod tokenize;
pub mod types;
pub mod writer;

#[cfg(feature = "python")]
pub(crate) mod python;

pub use convert::{run, RunResult};
pub use options::Options;
pub use preview::preview;

#[cfg(test)]
mod tests;
