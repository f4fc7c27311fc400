//! Rayon pools, one per run.
//!
//! RQ forks a work horse for every job. A global rayon pool started before `fork()` has no threads in
//! the child and deadlocks the first parallel call there. Building a fresh pool per run (a cheap
//! operation next to a coarse-grained call) means no pool ever outlives a call, so forks are safe.

use crate::error::{Error, Result};

/// Run `f` inside a new rayon pool of `threads` threads (0 = one per core).
pub fn with_pool<T: Send>(threads: usize, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("aerofs-{i}"))
        .build()
        .map_err(|e| Error::internal(format!("cannot start worker threads: {e}")))?;
    pool.install(f)
}

/// How many threads a run uses by default.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A run's `threads` option: 0 means one per core ([`default_threads`]).
pub fn threads_or_default(threads: usize) -> usize {
    if threads == 0 {
        default_threads()
    } else {
        threads
    }
}
