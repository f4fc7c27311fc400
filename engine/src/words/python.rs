//! Python binding: `word_count` (see `aerofs_kernel/_engine.pyi`).

use crate::error::Error;
use crate::python::{run_blocking, tables_to_py, to_pyerr, PyProgress};
use crate::words::Options;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Word counts of text files: `(result_json, {"table": (word, count) table})`.
#[pyfunction]
fn word_count<'py>(
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
    .map_err(|e| to_pyerr(py, &Error::options(format!("word-count: {e}"))))?;
    let p = progress.inner.clone();
    let (json, schema, batches) = run_blocking(py, &progress.inner, move || {
        let r = crate::words::run(&inputs, &opts, &p)?;
        let json =
            serde_json::json!({"summary": r.summary, "outputs": r.outputs, "errors": r.errors});
        Ok((json.to_string(), r.schema, r.batches))
    })?;
    Ok((
        json,
        tables_to_py(py, vec![("table".to_string(), schema, batches)])?,
    ))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(word_count, m)?)?;
    Ok(())
}
