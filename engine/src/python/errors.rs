//! The Python exception hierarchy and the mapping from engine errors to it.
//!
//! AerofsError
//! ├── InputError      (.path, .line, .offset: the file and place)
//! ├── SchemaError
//! ├── OptionsError    (also a ValueError)
//! ├── Cancelled
//! └── InternalError   (a caught panic or broken invariant: a bug to report)
//! I/O errors become FileNotFoundError / PermissionError / OSError with `.filename` set.

use crate::error::{Error, ErrorKind};
use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyOSError, PyPermissionError, PyValueError,
};
use pyo3::prelude::*;

pyo3::create_exception!(
    aerofs_kernel._engine,
    AerofsError,
    PyException,
    "Base class of every AeroFS engine error."
);
pyo3::create_exception!(
    aerofs_kernel._engine,
    InputError,
    AerofsError,
    "An input could not be read; `.path`, `.line` and `.offset` say where."
);
pyo3::create_exception!(
    aerofs_kernel._engine,
    SchemaError,
    AerofsError,
    "Column types that cannot be reconciled, or a schema override that does not fit."
);
pyo3::create_exception!(
    aerofs_kernel._engine,
    Cancelled,
    AerofsError,
    "The run was cancelled."
);
pyo3::create_exception!(
    aerofs_kernel._engine,
    InternalError,
    AerofsError,
    "A bug in the engine (a caught panic); the kernel is unaffected."
);

// OptionsError is both an AerofsError and a ValueError, so `except ValueError` keeps working.
fn options_error_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static CELL: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
    let ty = CELL.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        let builtins = py.import("builtins")?;
        let type_fn = builtins.getattr("type")?;
        let bases = (py.get_type::<AerofsError>(), py.get_type::<PyValueError>());
        let ns = pyo3::types::PyDict::new(py);
        ns.set_item("__module__", "aerofs_kernel._engine")?;
        ns.set_item("__doc__", "The options given to a pipeline are invalid.")?;
        Ok(type_fn.call1(("OptionsError", bases, ns))?.unbind())
    })?;
    Ok(ty.bind(py).clone())
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("AerofsError", py.get_type::<AerofsError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("SchemaError", py.get_type::<SchemaError>())?;
    m.add("Cancelled", py.get_type::<Cancelled>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    m.add("OptionsError", options_error_type(py)?)?;
    Ok(())
}

/// Turn an engine error into the matching Python exception, with its place as attributes.
pub(crate) fn to_pyerr(py: Python<'_>, e: &Error) -> PyErr {
    let text = e.to_string();
    let err = match e.kind {
        ErrorKind::NotFound => PyFileNotFoundError::new_err((2, e.message.clone(), e.path.clone())),
        ErrorKind::PermissionDenied => {
            PyPermissionError::new_err((13, e.message.clone(), e.path.clone()))
        }
        ErrorKind::Io => PyOSError::new_err((5, text.clone(), e.path.clone())),
        ErrorKind::Input => InputError::new_err(text),
        ErrorKind::Schema => SchemaError::new_err(text),
        ErrorKind::Cancelled => Cancelled::new_err(text),
        ErrorKind::Internal => InternalError::new_err(text),
        ErrorKind::Options => match options_error_type(py) {
            Ok(ty) => match ty.call1((text.clone(),)) {
                Ok(inst) => PyErr::from_value(inst),
                Err(err) => err,
            },
            Err(err) => err,
        },
    };
    let value = err.value(py);
    let _ = value.setattr("path", e.path.clone());
    let _ = value.setattr("line", e.line);
    let _ = value.setattr("offset", e.offset);
    err
}
