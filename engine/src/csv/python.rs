//! Python binding: `csv_to_parquet`, `preview_csv` and `infer_csv_schema` (see `aerofs_kernel/_engine.pyi`).

use crate::csv::options::Options;
use crate::error::Error;
use crate::python::{run_blocking, tables_to_py, to_pyerr, PyProgress};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

fn to_json<T: serde::Serialize>(v: &T) -> crate::Result<String> {
    serde_json::to_string(v).map_err(|e| Error::internal(format!("result to JSON: {e}")))
}

/// Convert CSV inputs to Parquet; returns `(result_json, {})`.
#[pyfunction]
fn csv_to_parquet<'py>(
    py: Python<'py>,
    inputs: Vec<String>,
    options_json: &str,
    progress: &PyProgress,
) -> PyResult<(String, Bound<'py, PyDict>)> {
    let opts = Options::from_json(options_json).map_err(|e| to_pyerr(py, &e))?;
    let paths: Vec<PathBuf> = inputs.into_iter().map(PathBuf::from).collect();
    let p = progress.inner.clone();
    let json = run_blocking(py, &progress.inner, move || {
        to_json(&crate::csv::run(&paths, &opts, &p)?)
    })?;
    Ok((json, tables_to_py(py, Vec::new())?))
}

/// Preview CSV inputs: `(result_json, {"sample": table})` (no table when nothing was readable).
#[pyfunction]
fn preview_csv<'py>(
    py: Python<'py>,
    inputs: Vec<String>,
    options_json: &str,
    progress: &PyProgress,
) -> PyResult<(String, Bound<'py, PyDict>)> {
    let opts = Options::from_json(options_json).map_err(|e| to_pyerr(py, &e))?;
    let paths: Vec<PathBuf> = inputs.into_iter().map(PathBuf::from).collect();
    let p = progress.inner.clone();
    let (json, sample) = run_blocking(py, &progress.inner, move || {
        let (r, sample) = crate::csv::preview(&paths, &opts, &p)?;
        Ok((to_json(&r)?, sample))
    })?;
    let tables = match sample {
        Some(b) => vec![("sample".to_string(), b.schema(), vec![b])],
        None => Vec::new(),
    };
    Ok((json, tables_to_py(py, tables)?))
}

/// The unified schema a run over `inputs` would start with: `result_json` (see
/// `crate::csv::preview::SchemaResult`).
#[pyfunction]
fn infer_csv_schema(
    py: Python<'_>,
    inputs: Vec<String>,
    options_json: &str,
    progress: &PyProgress,
) -> PyResult<String> {
    let opts = Options::from_json(options_json).map_err(|e| to_pyerr(py, &e))?;
    let paths: Vec<PathBuf> = inputs.into_iter().map(PathBuf::from).collect();
    let p = progress.inner.clone();
    run_blocking(py, &progress.inner, move || {
        to_json(&crate::csv::preview::schema(&paths, &opts, &p)?)
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(csv_to_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(preview_csv, m)?)?;
    m.add_function(wrap_pyfunction!(infer_csv_schema, m)?)?;
    Ok(())
}
