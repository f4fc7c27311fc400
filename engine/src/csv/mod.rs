//! The `csv` pipeline (placeholder: being written).

#[cfg(feature = "python")]
pub(crate) mod python;
