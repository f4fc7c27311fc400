//! The PyO3 module `aerofs_kernel._engine`: exceptions, the `Progress` token, and each pipeline's
//! entry points (registered from the binding beside each pipeline, `src/<pipeline>/python.rs`).

mod errors;
mod progress;
mod run;
mod streams;

// Used by the pipeline bindings (`src/<pipeline>/python.rs`).
#[allow(unused_imports)]
pub(crate) use errors::to_pyerr;
pub(crate) use progress::PyProgress;
#[allow(unused_imports)]
pub(crate) use run::{run_blocking, tables_to_py};

use pyo3::prelude::*;

#[pymodule]
#[pyo3(name = "_engine")]
fn engine_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<PyProgress>()?;
    streams::register(m)?;
    crate::csv::python::register(m)?;
    crate::words::python::register(m)?;
    crate::logs::python::register(m)?;
    crate::exif::python::register(m)?;
    Ok(())
}
