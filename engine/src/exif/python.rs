//! Python binding: `extract_exif` (see `aerofs_kernel/_engine.pyi`).

use crate::error::Error;
use crate::exif::Options;
use crate::python::{run_blocking, tables_to_py, to_pyerr, PyProgress};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// EXIF of images (files or folders): `(result_json, {"table": table})`.
#[pyfunction]
fn extract_exif<'py>(
    py: Python<'py>,
    inputs: Vec<String>,
    options_json: &str,
    progress: &PyProgress,
) -> PyResult<(String, Bound<'py, PyDict>)> {
    let opts: Options = serde_json::from_str(if options_json.trim().is_empty() {
        "{}"
    } else {
        options_json
    })
    .map_err(|e| to_pyerr(py, &Error::options(format!("exif: {e}"))))?;
    let p = progress.inner.clone();
    let out = run_blocking(py, &progress.inner, move || {
        let r = crate::exif::run(&inputs, &opts, &p)?;
        let json =
            serde_json::json!({"summary": r.summary, "outputs": r.outputs, "errors": r.errors});
        Ok((json.to_string(), r.schema, r.batches))
    })?;
    let (json, schema, batches) = out;
    Ok((
        json,
        tables_to_py(py, vec![("table".to_string(), schema, batches)])?,
    ))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(extract_exif, m)?)?;
    Ok(())
}
