//! Python-provided streams: `register_streams` / `unregister_streams`.
//!
//! A remote input reaches the engine as an object Python registers (see `aerofs_kernel.sources`):
//! `url` (str), `size` (int), `open(offset)` returning a file-like with `readinto` (and `close`),
//! and `read_at(offset, n)` returning bytes. The engine gets a token path for it and reads it like a
//! file ([`crate::io`]). The engine runs with the GIL released; a read re-attaches for one large
//! chunk (the engine's 4 MiB buffer, or the whole of a larger read), so the GIL is taken a few times
//! per second per reader, not per line. Python exceptions become `io::Error`s whose message names
//! the input's URL; a `FileNotFoundError` / `PermissionError` keeps its kind, so the run reports the
//! input as missing or forbidden, per input, and goes on with the others.

use crate::io::Stream;
use pyo3::exceptions::{PyFileNotFoundError, PyPermissionError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use std::io::Read;
use std::sync::Arc;

struct PyStream {
    url: String,
    size: u64,
    obj: Py<PyAny>,
}

/// A Python exception as an `io::Error` naming the input's URL (never its credentials: the
/// exception text is the remote store's message about the object).
fn io_error(py: Python<'_>, url: &str, e: PyErr) -> std::io::Error {
    let kind = if e.is_instance_of::<PyFileNotFoundError>(py) {
        std::io::ErrorKind::NotFound
    } else if e.is_instance_of::<PyPermissionError>(py) {
        std::io::ErrorKind::PermissionDenied
    } else {
        std::io::ErrorKind::Other
    };
    std::io::Error::new(kind, format!("reading {url}: {e}"))
}

/// Run `f` attached to Python. `None` when the interpreter is going away (a read then fails
/// instead of touching a dying interpreter).
fn attached<R>(
    url: &str,
    f: impl for<'py> FnOnce(Python<'py>) -> std::io::Result<R>,
) -> std::io::Result<R> {
    Python::try_attach(f).unwrap_or_else(|| {
        Err(std::io::Error::other(format!(
            "reading {url}: the Python interpreter is shutting down"
        )))
    })
}

impl Stream for PyStream {
    fn url(&self) -> &str {
        &self.url
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn open(&self, offset: u64) -> std::io::Result<Box<dyn Read + Send>> {
        attached(&self.url, |py| {
            let reader = self
                .obj
                .bind(py)
                .call_method1("open", (offset,))
                .map_err(|e| io_error(py, &self.url, e))?;
            Ok(Box::new(PyReader {
                url: self.url.clone(),
                obj: Some(reader.unbind()),
            }) as Box<dyn Read + Send>)
        })
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        attached(&self.url, |py| {
            let got = self
                .obj
                .bind(py)
                .call_method1("read_at", (offset, buf.len()))
                .map_err(|e| io_error(py, &self.url, e))?;
            let bytes = got.cast::<PyBytes>().map_err(|_| {
                std::io::Error::other(format!(
                    "reading {}: read_at did not return bytes",
                    self.url
                ))
            })?;
            let data = bytes.as_bytes();
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            Ok(n)
        })
    }
}

/// One sequential reader opened by Python; `read` fills the engine's buffer through `readinto`.
struct PyReader {
    url: String,
    obj: Option<Py<PyAny>>,
}

impl Read for PyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(obj) = &self.obj else {
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        attached(&self.url, |py| {
            // A writable memoryview over the engine's buffer: Python copies straight into it.
            // SAFETY: `buf` outlives the view, which is released before this call returns; the
            // length fits isize (a slice never exceeds isize::MAX bytes).
            let view = unsafe {
                Bound::from_owned_ptr_or_err(
                    py,
                    pyo3::ffi::PyMemoryView_FromMemory(
                        buf.as_mut_ptr().cast(),
                        buf.len() as pyo3::ffi::Py_ssize_t,
                        pyo3::ffi::PyBUF_WRITE,
                    ),
                )
            }
            .map_err(|e| io_error(py, &self.url, e))?;
            let got = obj.bind(py).call_method1("readinto", (&view,));
            // Release the view even when readinto kept a reference to it: after this, Python
            // code holding it gets a ValueError instead of touching freed memory.
            let _ = view.call_method0("release");
            let n: usize = got
                .and_then(|n| n.extract())
                .map_err(|e| io_error(py, &self.url, e))?;
            if n > buf.len() {
                return Err(std::io::Error::other(format!(
                    "reading {}: readinto returned {n} for a {}-byte buffer",
                    self.url,
                    buf.len()
                )));
            }
            Ok(n)
        })
    }
}

impl Drop for PyReader {
    fn drop(&mut self) {
        // Close it now (its prefetched chunks are dropped and pending fetches cancelled) rather
        // than whenever Python collects it.
        if let Some(obj) = self.obj.take() {
            let _ = Python::try_attach(|py| {
                let _ = obj.bind(py).call_method0("close");
            });
        }
    }
}

/// Register remote inputs with the engine: `items` is a list of `(name, stream)`; returns their token
/// paths (`aerofs-stream://<n>/<name>`, in order) to pass to a pipeline instead of local paths.
/// `name` should be the input's path relative to its source folder: tokens of one call share a
/// root, so outputs mirror the same tree, and the extension still tells the compression.
#[pyfunction]
fn register_streams(items: &Bound<'_, PyList>) -> PyResult<Vec<String>> {
    let mut streams: Vec<(String, Arc<dyn Stream>)> = Vec::with_capacity(items.len());
    for item in items.iter() {
        let (name, obj): (String, Bound<'_, PyAny>) = item.extract()?;
        for method in ["open", "read_at"] {
            if !obj.hasattr(method)? {
                return Err(PyTypeError::new_err(format!(
                    "stream {name:?} has no {method}() method"
                )));
            }
        }
        let url: String = obj.getattr("url")?.extract()?;
        let size: u64 = obj.getattr("size")?.extract()?;
        streams.push((
            name,
            Arc::new(PyStream {
                url,
                size,
                obj: obj.unbind(),
            }),
        ));
    }
    Ok(crate::io::register_streams(streams))
}

/// Forget streams registered by `register_streams` (at the end of their run).
#[pyfunction]
fn unregister_streams(tokens: Vec<String>) {
    crate::io::unregister_streams(&tokens);
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(register_streams, m)?)?;
    m.add_function(wrap_pyfunction!(unregister_streams, m)?)?;
    Ok(())
}
