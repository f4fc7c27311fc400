//! Running engine work from Python: GIL released, panics caught, kernel interrupts honoured.

use super::errors::to_pyerr;
use crate::error::{Error, Result};
use crate::progress::Progress;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// How often the waiting Python thread looks for a pending KeyboardInterrupt.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Run `work` on a helper thread with the GIL released, and wait for it.
///
/// The calling thread wakes every 50 ms to run Python's signal handlers (only the main thread has
/// any): a kernel interrupt trips the run's cancel token, waits for the run to stop, and raises
/// KeyboardInterrupt. A panic anywhere in `work` (rayon re-raises worker panics on its caller)
/// becomes an `InternalError`; the kernel survives.
pub(crate) fn run_blocking<T: Send>(
    py: Python<'_>,
    progress: &Progress,
    work: impl FnOnce() -> Result<T> + Send,
) -> PyResult<T> {
    // A mutex + condvar rather than a channel: the waiting closure handed to `py.detach` must be
    // Sync, which an mpsc receiver is not.
    let slot: (Mutex<Option<std::thread::Result<Result<T>>>>, Condvar) =
        (Mutex::new(None), Condvar::new());
    let wait = |timeout: Option<Duration>| -> Option<std::thread::Result<Result<T>>> {
        let (lock, cv) = &slot;
        let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(done) = guard.take() {
                return Some(done);
            }
            match timeout {
                Some(t) => {
                    let (g, res) = cv.wait_timeout(guard, t).unwrap_or_else(|p| p.into_inner());
                    guard = g;
                    if res.timed_out() {
                        return guard.take();
                    }
                }
                None => guard = cv.wait(guard).unwrap_or_else(|p| p.into_inner()),
            }
        }
    };
    let outcome = std::thread::scope(|scope| -> PyResult<std::thread::Result<Result<T>>> {
        scope.spawn(|| {
            let done = catch_unwind(AssertUnwindSafe(work));
            let (lock, cv) = &slot;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = Some(done);
            cv.notify_all();
        });
        loop {
            if let Some(done) = py.detach(|| wait(Some(SIGNAL_POLL))) {
                return Ok(done);
            }
            if let Err(interrupt) = py.check_signals() {
                progress.cancel();
                let _ = py.detach(|| wait(None));
                return Err(interrupt);
            }
        }
    })?;
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(to_pyerr(py, &e)),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(to_pyerr(
                py,
                &Error::internal(format!("engine panic: {msg}")),
            ))
        }
    }
}

/// Named Arrow tables to a dict of `pyarrow.Table` (through the Arrow C stream: no copy).
pub(crate) fn tables_to_py<'py>(
    py: Python<'py>,
    tables: Vec<(String, SchemaRef, Vec<RecordBatch>)>,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (name, schema, batches) in tables {
        let table = pyo3_arrow::PyTable::try_new(batches, schema)?;
        out.set_item(name, table.into_pyarrow(py)?)?;
    }
    Ok(out)
}
