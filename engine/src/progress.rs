//! Progress counters and the cancellation token of one run.
//!
//! The hot loops only do relaxed atomic adds and one relaxed load (the cancel check) per batch of
//! work, so reading progress from Python (widgets, the CLI bar, workers) costs the run nothing.

use crate::error::{Error, Result};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Progress {
    inputs_total: AtomicU64,
    inputs_done: AtomicU64,
    bytes_total: AtomicU64,
    bytes_done: AtomicU64,
    rows: AtomicU64,
    errors: AtomicU64,
    cancelled: AtomicBool,
    current: Mutex<String>,
}

/// One input's share of the run's byte progress (word-count and log-sessions): what it adds never
/// passes its size, and [`Share::finish`] tops it up to exactly that, so progress ends at 100%
/// whatever a compressed input decompressed to or a bad input left uncounted.
pub struct Share<'a> {
    progress: &'a Progress,
    size: u64,
    added: AtomicU64,
}

impl<'a> Share<'a> {
    pub fn new(progress: &'a Progress, size: u64) -> Self {
        Share {
            progress,
            size,
            added: AtomicU64::new(0),
        }
    }
    pub fn add(&self, n: u64) {
        let before = self.added.fetch_add(n, Relaxed);
        self.progress
            .add_bytes(n.min(self.size.saturating_sub(before)));
    }
    pub fn finish(&self) {
        self.add(self.size.saturating_sub(self.added.load(Relaxed)));
    }
    /// The run's cancel check ([`Progress::check`]).
    pub fn check(&self) -> Result<()> {
        self.progress.check()
    }
    /// The run's progress this share adds to.
    pub fn progress(&self) -> &'a Progress {
        self.progress
    }
    /// The input's size on disk (its share of the run's bytes).
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Bytes added so far, before the cap at the share's size.
    pub fn added(&self) -> u64 {
        self.added.load(Relaxed)
    }
}

/// A point-in-time copy of the counters, as Python sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub inputs_total: u64,
    pub inputs_done: u64,
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub rows: u64,
    pub errors: u64,
    pub current: String,
    pub cancelled: bool,
}

impl Progress {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declare the size of the run before it starts (inputs and their total size in bytes).
    pub fn set_totals(&self, inputs: u64, bytes: u64) {
        self.inputs_total.store(inputs, Relaxed);
        self.bytes_total.store(bytes, Relaxed);
    }
    pub fn add_bytes(&self, n: u64) {
        self.bytes_done.fetch_add(n, Relaxed);
    }
    pub fn add_rows(&self, n: u64) {
        self.rows.fetch_add(n, Relaxed);
    }
    pub fn add_error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }
    pub fn input_done(&self) {
        self.inputs_done.fetch_add(1, Relaxed);
    }
    /// Name the input being worked on (shown by widgets); called once per input, not in hot loops.
    pub fn set_current(&self, name: &str) {
        if let Ok(mut c) = self.current.lock() {
            c.clear();
            c.push_str(name);
        }
    }

    /// Ask the run to stop. Hot loops notice at their next [`Progress::check`].
    pub fn cancel(&self) {
        self.cancelled.store(true, Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Relaxed)
    }
    /// `Err(Cancelled)` once the run was cancelled: call it once per chunk / row batch / file.
    #[inline]
    pub fn check(&self) -> Result<()> {
        if self.cancelled.load(Relaxed) {
            Err(Error::cancelled())
        } else {
            Ok(())
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let (total, done) = (
            self.bytes_total.load(Relaxed),
            self.bytes_done.load(Relaxed),
        );
        Snapshot {
            inputs_total: self.inputs_total.load(Relaxed),
            inputs_done: self.inputs_done.load(Relaxed),
            bytes_total: total,
            // Totals are on-disk sizes; a pipeline that counts the decompressed bytes of a .gz/.zst
            // input against them would show more than 100%. A known total is never exceeded.
            bytes_done: if total > 0 { done.min(total) } else { done },
            rows: self.rows.load(Relaxed),
            errors: self.errors.load(Relaxed),
            current: self.current.lock().map(|c| c.clone()).unwrap_or_default(),
            cancelled: self.cancelled.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_cancel() {
        let p = Progress::new();
        p.set_totals(2, 100);
        p.add_bytes(40);
        p.add_rows(3);
        p.input_done();
        p.set_current("a.csv");
        assert!(p.check().is_ok());
        p.cancel();
        assert!(p.check().unwrap_err().is_cancelled());
        let s = p.snapshot();
        assert_eq!(
            (s.inputs_done, s.bytes_done, s.rows, s.current.as_str()),
            (1, 40, 3, "a.csv")
        );
        assert!(s.cancelled);
    }

    #[test]
    fn bytes_done_never_exceeds_a_known_total() {
        let p = Progress::new();
        p.add_bytes(500);
        assert_eq!(p.snapshot().bytes_done, 500); // no total declared: nothing to cap against
        p.set_totals(1, 100);
        assert_eq!(p.snapshot().bytes_done, 100);
    }
}
