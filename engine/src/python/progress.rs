//! `Progress`: the counters and cancel token Python shares with a running engine call.

use crate::progress::Progress;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Arc;

/// Live counters of one run, readable from any thread while the run goes on, and its cancel switch.
///
/// Create one, pass it to a pipeline call, and read `snapshot()` from another thread (a widget's
/// timer, the CLI bar). `cancel()` stops the run within one batch of work.
#[pyclass(frozen, name = "Progress", module = "aerofs_kernel._engine")]
pub(crate) struct PyProgress {
    pub(crate) inner: Arc<Progress>,
}

#[pymethods]
impl PyProgress {
    #[new]
    fn new() -> Self {
        PyProgress {
            inner: Arc::new(Progress::new()),
        }
    }

    /// Ask the run to stop; it raises `Cancelled` (or KeyboardInterrupt on a kernel interrupt).
    fn cancel(&self) {
        self.inner.cancel();
    }

    #[getter]
    fn cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    /// The counters now, as a dict: inputs_total, inputs_done, bytes_total, bytes_done, rows, errors,
    /// current, cancelled.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.snapshot();
        let d = PyDict::new(py);
        d.set_item("inputs_total", s.inputs_total)?;
        d.set_item("inputs_done", s.inputs_done)?;
        d.set_item("bytes_total", s.bytes_total)?;
        d.set_item("bytes_done", s.bytes_done)?;
        d.set_item("rows", s.rows)?;
        d.set_item("errors", s.errors)?;
        d.set_item("current", s.current)?;
        d.set_item("cancelled", s.cancelled)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let s = self.inner.snapshot();
        format!(
            "Progress(inputs={}/{}, bytes={}/{}, rows={}, errors={}, cancelled={})",
            s.inputs_done,
            s.inputs_total,
            s.bytes_done,
            s.bytes_total,
            s.rows,
            s.errors,
            s.cancelled
        )
    }
}
