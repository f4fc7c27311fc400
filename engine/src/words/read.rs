//! Counting a plain local file (or a byte range of it) by positional reads into one reusable buffer
//! per worker thread, instead of memory-mapping it.
//!
//! Why not a map: at two threads a mapped 44 MB file cost a serial 1.6 ms unmap at the end and page
//! faults (taken under the process's memory-map lock, shared by both threads) while the first pass
//! touched it; a `pread` into a buffer that each thread reuses costs one copy out of the page cache,
//! and the buffer stays warm in that core's cache for the validation and the count that follow.
//! A file truncated while it is read is also no SIGBUS: its reads just come back short.
//!
//! The range is cut into nominal chunks `[a, b)`; a chunk's words are those that start in it, i.e.
//! its bytes run from [`boundary`](super::tokenize::boundary)`(a)` to `boundary(b)` of the whole
//! file (just after ASCII whitespace), so each chunk reads byte `a - 1` to find its start and reads
//! on past `b` to the end of the word straddling it. ASCII bytes never occur inside a multi-byte
//! character, so every chunk is whole characters and is validated on its own.
//!
//! A file with bad UTF-8 anywhere contributes nothing. A file of one chunk is validated, then
//! counted straight into the run's tables; a file of several is counted into tables of its own,
//! handed to the run's (swapped in when the run's is empty, as for a single big file) only when all
//! its chunks were valid. Every chunk is validated even after a bad one is found, so the error
//! names the file's first bad byte.

use super::count::{count_into, new_counts, Counts};
use super::tokenize::is_space;
use crate::error::{Error, Result};
use crate::progress::Share;
use rayon::prelude::*;
use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Bytes per chunk of a file of several: the read buffer then stays in L2 beside the hot part of
/// the tables (interleaved on the 44 MB bench file under SCHED_FIFO: 128 KiB and 64 KiB chunks 52.8
/// and 52.7 ms at 2 threads, 256 KiB 54.0, 1/64 of the file, 687 KiB, 55.6).
const CHUNK: u64 = 128 << 10;

/// A file smaller than this is one chunk (counted by one thread, straight into the run's tables):
/// a folder of small files keeps both cores busy with whole files, and tables of a file's own would
/// cost more than they balance.
const ONE_CHUNK_BELOW: u64 = 1 << 20;

/// Bytes read at a time past a chunk's nominal end, looking for the end of its last word.
const TAIL_READ: usize = 256;

thread_local! {
    /// This worker thread's read buffer, reused by every chunk it counts in a run.
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Count the words of `path` (or those starting in its byte `range`) into the per-thread `tables`:
/// (words, bytes counted).
pub(super) fn count_file(
    path: &Path,
    range: Option<[u64; 2]>,
    unicode: bool,
    chunk: usize,
    share: &Share,
    tables: &[Mutex<Counts>],
) -> Result<(u64, u64)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::input(path, None, None, "is a directory"));
    }
    let len = meta.len();
    let (start, end) = match range {
        Some([s, e]) => (s.min(len), e.min(len).max(s.min(len))),
        None => (0, len),
    };
    let span = end - start;
    let auto = if range.is_none() && len < ONE_CHUNK_BELOW {
        span
    } else {
        CHUNK
    };
    let step = (chunk as u64).min(auto).max(1);
    let cuts: Vec<(u64, u64)> = (0..span.div_ceil(step))
        .map(|i| (start + i * step, (start + (i + 1) * step).min(end)))
        .collect();
    // One chunk: validated before it is counted, so the run's tables are safe to count into.
    let local: Vec<Mutex<Counts>> = if cuts.len() > 1 {
        (0..tables.len())
            .map(|_| Mutex::new(new_counts()))
            .collect()
    } else {
        Vec::new()
    };
    let into = if local.is_empty() { tables } else { &local };
    let first_bad = AtomicU64::new(u64::MAX);
    let (words, bytes) = cuts
        .par_iter()
        .map(|&(a, b)| {
            share.check()?;
            let counted = BUF.with(|buf| -> Result<(u64, u64)> {
                let buf = &mut *buf.borrow_mut();
                let (off, lo, hi) =
                    read_chunk(&file, a, b, len, buf).map_err(|e| Error::io(path, e))?;
                let text = &buf[lo..hi];
                if let Err(e) = std::str::from_utf8(text) {
                    first_bad.fetch_min(off + (lo + e.valid_up_to()) as u64, Relaxed);
                    return Ok((0, 0));
                }
                if first_bad.load(Relaxed) != u64::MAX {
                    return Ok((0, 0)); // the file is left out: only validate the rest
                }
                let slot = rayon::current_thread_index().unwrap_or(0) % into.len();
                let w = count_into(&mut into[slot].lock().unwrap(), text, unicode);
                Ok((w, text.len() as u64))
            })?;
            share.add(b - a);
            Ok::<_, Error>(counted)
        })
        .try_reduce(|| (0, 0), |x, y| Ok((x.0 + y.0, x.1 + y.1)))?;
    let bad = first_bad.into_inner();
    if bad != u64::MAX {
        let line = crate::io::newlines_before(path, bad)? + 1;
        return Err(Error::input(path, Some(line), Some(bad), "not valid UTF-8"));
    }
    for (t, l) in tables.iter().zip(local) {
        t.lock().unwrap().absorb(l.into_inner().unwrap());
    }
    share.progress().add_rows(words);
    Ok((words, bytes))
}

/// Read the chunk whose nominal bytes are `[a, b)` of a file of `len` bytes into `buf`: returns
/// `(off, lo, hi)`, where `buf[lo..hi]` is the chunk's text, from `boundary(a)` to `boundary(b)`,
/// and `buf[0]` is the file's byte `off`. The chunk is empty (`lo == hi`) when no word starts in it.
fn read_chunk(
    file: &File,
    a: u64,
    b: u64,
    len: u64,
    buf: &mut Vec<u8>,
) -> std::io::Result<(u64, usize, usize)> {
    let off = a.saturating_sub(1);
    let mut n = read_at(file, buf, 0, off, (b - off) as usize)?;
    let lo = if a == 0 {
        0
    } else {
        match buf[..n].iter().position(|&x| is_space(x)) {
            Some(i) => i + 1,
            // No whitespace from a - 1 to b: the word there began before `a` and is the previous
            // chunk's, and no word starts in this one.
            None => return Ok((off, 0, 0)),
        }
    };
    // The end: `b` if the byte before it is whitespace (or at the file's end), else just after the
    // first whitespace byte from `b` on (the word crossing `b` is this chunk's).
    let mut hi = n;
    if n > lo && off + n as u64 == b && b < len && !is_space(buf[n - 1]) {
        loop {
            let k = read_at(file, buf, n, off + n as u64, TAIL_READ)?;
            if k == 0 {
                hi = n;
                break;
            }
            if let Some(i) = buf[n..n + k].iter().position(|&x| is_space(x)) {
                hi = n + i + 1;
                break;
            }
            n += k;
        }
    }
    Ok((off, lo, hi))
}

/// Read up to `want` bytes at file offset `at` into `buf[into..]` (grown if needed, never shrunk,
/// so a reused buffer is not zeroed again): the bytes read, fewer only at the file's end.
fn read_at(
    file: &File,
    buf: &mut Vec<u8>,
    into: usize,
    at: u64,
    want: usize,
) -> std::io::Result<usize> {
    if buf.len() < into + want {
        buf.resize(into + want, 0);
    }
    let mut got = 0;
    while got < want {
        match file.read_at(&mut buf[into + got..into + want], at + got as u64) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::super::tokenize::boundary;
    use super::*;
    use crate::progress::Progress;

    #[test]
    fn a_file_of_many_chunks_with_bad_bytes_adds_nothing_and_names_its_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.txt");
        let mut text = b"alpha beta\ngamma delta\n".repeat(40); // 23 bytes, 2 lines
        text[23 * 15 + 2] = 0xff; // line 31
        text[23 * 5 + 13] = 0xc3; // line 12: a lead byte with no continuation
        std::fs::write(&p, &text).unwrap();
        let progress = Progress::new();
        let share = Share::new(&progress, text.len() as u64);
        let tables = vec![Mutex::new(new_counts()), Mutex::new(new_counts())];
        count_into(&mut tables[0].lock().unwrap(), b"kept", false);
        for chunk in [5, 24, 100, 1 << 20] {
            let e = count_file(&p, None, false, chunk, &share, &tables).unwrap_err();
            assert_eq!(
                (e.line, e.offset),
                (Some(12), Some(23 * 5 + 13)),
                "chunk {chunk}"
            );
            let got: Vec<_> = tables.iter().map(|t| t.lock().unwrap().to_map()).collect();
            assert_eq!(
                got[0].len() + got[1].len(),
                1,
                "chunk {chunk}: only the run's word"
            );
        }
    }

    #[test]
    fn a_chunk_is_read_from_boundary_to_boundary() {
        let text = b"ab cd\nefghij k  lmnopqrstuvwxyz end";
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        std::fs::write(&p, text).unwrap();
        let f = File::open(&p).unwrap();
        let len = text.len() as u64;
        let mut buf = Vec::new();
        for a in 0..len {
            for b in a + 1..=len {
                let (off, lo, hi) = read_chunk(&f, a, b, len, &mut buf).unwrap();
                let (s, e) = (boundary(text, a as usize), boundary(text, b as usize));
                let want: &[u8] = if s < e { &text[s..e] } else { b"" };
                assert_eq!(&buf[lo..hi], want, "[{a}, {b})");
                if lo < hi {
                    assert_eq!(off as usize + lo, s);
                }
            }
        }
    }
}
