//! Python binding: `log_sessions` (see `aerofs_kernel/_engine.pyi`).

use crate::error::Error;
use crate::logs::Options;
use crate::python::{run_blocking, tables_to_py, to_pyerr, PyProgress};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Sessions and summary of access logs: `(result_json, {"sessions", "visitors", "counts"})`. With
/// `output_dir` the sessions are in `sessions.parquet` there (with `sessions_file`, in that file) and
/// the `sessions` table is empty.
#[pyfunction]
fn log_sessions<'py>(
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
    .map_err(|e| to_pyerr(py, &Error::options(format!("log-sessions: {e}"))))?;
    let p = progress.inner.clone();
    let out = run_blocking(py, &progress.inner, move || {
        let r = crate::logs::run(&inputs, &opts, &p)?;
        let json =
            serde_json::json!({"summary": r.summary, "outputs": r.outputs, "errors": r.errors});
        Ok((json.to_string(), r.schema, r.batches, r.visitors, r.counts))
    })?;
    let (json, schema, batches, visitors, counts) = out;
    Ok((
        json,
        tables_to_py(
            py,
            vec![
                ("sessions".to_string(), schema, batches),
                ("visitors".to_string(), visitors.schema(), vec![visitors]),
                ("counts".to_string(), counts.schema(), vec![counts]),
            ],
        )?,
    ))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(log_sessions, m)?)?;
    Ok(())
}
