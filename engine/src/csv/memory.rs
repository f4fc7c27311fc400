//! Keeping the allocator's freed memory for the length of a run.
//!
//! Every block allocates the same large buffers again (Arrow arrays, the Parquet writer's page
//! buffers of up to `page_size`, zstd's output). With glibc's defaults those buffers are mmapped or
//! trimmed back to the kernel when freed, and the next block faults every page in afresh: on the
//! 1 GB benchmark file that was ~330,000 page faults, TLB shootdowns between the threads, and
//! 1-4 s of system time against 6-7 s of user time. Raising the mmap and trim thresholds while a
//! conversion runs lets the next block reuse the warm pages (77,000 faults, 0.5 s of system time);
//! when the last concurrent run ends the thresholds go back to glibc's own ceiling and the free
//! memory is handed back with `malloc_trim`, so an idle kernel does not keep the run's peak.
//!
//! Other allocators (musl, macOS) have no such knobs; there the guard does nothing.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs in progress in this process (the thresholds are process-wide).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// glibc's largest dynamic mmap threshold on 64-bit (`DEFAULT_MMAP_THRESHOLD_MAX`): buffers up to
/// this size come from the heap instead of fresh mappings.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 32 << 20;
/// While a run is active, free memory at the top of a heap is kept up to this much.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_DURING_RUN: i32 = 1 << 30;
/// After the run: what glibc's dynamic rule converges to (twice the mmap threshold).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_AFTER_RUN: i32 = 2 * MMAP_THRESHOLD;

/// Holds the run's allocator settings; dropping the last one hands free memory back.
pub struct KeepFreedMemory(());

impl KeepFreedMemory {
    pub fn start() -> Self {
        if ACTIVE.fetch_add(1, Ordering::SeqCst) == 0 {
            set(TrimPhase::During);
        }
        KeepFreedMemory(())
    }
}

impl Drop for KeepFreedMemory {
    fn drop(&mut self) {
        if ACTIVE.fetch_sub(1, Ordering::SeqCst) == 1 {
            set(TrimPhase::After);
        }
    }
}

enum TrimPhase {
    During,
    After,
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set(phase: TrimPhase) {
    // SAFETY: mallopt and malloc_trim take glibc's arena locks; they are safe to call from any
    // thread at any time, and only change when memory is returned to the kernel.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        match phase {
            TrimPhase::During => {
                libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_DURING_RUN);
            }
            TrimPhase::After => {
                libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_AFTER_RUN);
                libc::malloc_trim(0);
            }
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set(_phase: TrimPhase) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Overlapping guards (two runs at once), and allocation of buffers above and below the
    /// thresholds keeps working while they are held and after they are dropped. (The counter
    /// itself is not asserted: other tests run conversions on other threads at the same time.)
    #[test]
    fn guards_overlap_and_allocation_still_works() {
        let a = KeepFreedMemory::start();
        let b = KeepFreedMemory::start();
        let big = vec![7u8; 48 << 20];
        assert_eq!(big[big.len() - 1], 7);
        drop(big);
        drop(a);
        let mid = vec![3u8; 8 << 20];
        assert_eq!(mid[4 << 20], 3);
        drop(b);
        let again = vec![1u8; 8 << 20];
        assert_eq!(again.iter().map(|&x| x as usize).sum::<usize>(), 8 << 20);
    }
}
