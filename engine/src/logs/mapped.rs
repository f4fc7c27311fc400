//! Blocks of an uncompressed local file, each its own read-only map of the file.
//!
//! Reading a block into a buffer copies it out of the page cache (a tenth of the run's CPU on a
//! warm 1 GB log); a map lets the parser read the page cache itself. Each block maps only its own
//! bytes (plus the page below and up to its last newline), populated up front on the reading
//! thread, and unmaps when the block is dropped: the file's pages count in the process's RSS only
//! while their block is in flight, never the whole file.

use crate::error::{Error, Result};
use memmap2::{Mmap, MmapOptions};
use std::fs::File;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A file modified less than this long ago is read through buffers, not mapped (see [`settled`]).
const SETTLED: Duration = Duration::from_secs(60);

/// Whether `path` has not been written to for [`SETTLED`], so mapping it is safe enough.
///
/// A mapped file truncated in place by another process (`logrotate` with `copytruncate` on the live
/// `access.log`) turns the next touch of a page past its new end into SIGBUS, which ends the process:
/// in a notebook, the kernel. The log being written right now is where that happens, so it is read
/// by copying (a buffered read only stops early); a rotated or copied log, untouched for a minute,
/// is mapped. An unreadable time (or one in the future) counts as live.
pub fn settled(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age >= SETTLED)
}

/// Map offsets are rounded down to this (a multiple of every page size in use).
const ALIGN: u64 = 1 << 16;
/// How far past a block's nominal end its map first reaches to find the end of its last line.
const SLACK: u64 = 64 << 10;

/// Block after block of lines of one file, or of the lines starting in a byte range of it.
pub struct Mapped {
    file: File,
    len: u64,
    /// Where the next block starts.
    pos: u64,
    /// Lines starting at or after this offset are not ours.
    end: u64,
    /// The range does not start at 0: its first line starts after the first newline at or after
    /// byte `pos - 1`.
    skip_first: bool,
    block: u64,
}

/// One block: `map[skip..skip + len]` is the bytes at `offset..offset + len` of the file.
pub struct MappedBlock {
    pub map: Mmap,
    pub skip: usize,
    pub offset: u64,
    pub len: usize,
}

impl Mapped {
    pub fn open(path: &Path, range: Option<[u64; 2]>, block: usize) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(Error::input(path, None, None, "is a directory"));
        }
        let [pos, end] = range.unwrap_or([0, u64::MAX]);
        Ok(Mapped {
            file,
            len: meta.len(),
            pos,
            end,
            skip_first: pos > 0,
            block: block.max(1) as u64,
        })
    }

    /// Map `[from, to)` of the file: the map and where `from` is in it.
    fn map(&self, path: &Path, from: u64, to: u64) -> Result<(Mmap, usize)> {
        let base = from - from % ALIGN;
        // SAFETY: the map is read-only; a file truncated by another process while mapped is the
        // documented hazard of every mmap reader (ripgrep, polars), made unlikely
        // here by mapping only files that have not been written to for a minute (`settled`).
        let map = unsafe {
            MmapOptions::new()
                .offset(base)
                .len((to - base) as usize)
                .populate()
                .map(&self.file)
        }
        .map_err(|e| Error::io(path, e))?;
        Ok((map, (from - base) as usize))
    }

    /// A map from `from` through the first newline at or after `at` (or the end of the file), and
    /// the offset just past that newline. A long line grows the map until it ends.
    fn through_newline(&self, path: &Path, from: u64, at: u64) -> Result<(Mmap, usize, u64)> {
        let mut to = (at + 1 + SLACK).min(self.len);
        loop {
            let (map, skip) = self.map(path, from, to)?;
            let look = skip + (at - from) as usize;
            if let Some(i) = memchr::memchr(b'\n', &map[look..]) {
                let stop = from + (look + i + 1 - skip) as u64;
                return Ok((map, skip, stop));
            }
            if to == self.len {
                return Ok((map, skip, self.len));
            }
            to = (to + (to - from)).min(self.len);
        }
    }

    /// The next block of whole lines (about `block` bytes), or None at the end.
    pub fn next_block(&mut self, path: &Path) -> Result<Option<MappedBlock>> {
        if self.skip_first {
            self.skip_first = false;
            let at = self.pos - 1;
            if at >= self.len {
                self.pos = self.len;
                return Ok(None);
            }
            self.pos = self.through_newline(path, at, at)?.2;
        }
        let stop_at = self.end.min(self.len);
        if self.pos >= stop_at {
            return Ok(None);
        }
        // The block ends with the line holding byte `at`: the range's last line when the range
        // ends first.
        let at = (self.pos + self.block).min(stop_at) - 1;
        let (map, skip, stop) = self.through_newline(path, self.pos, at)?;
        let b = MappedBlock {
            map,
            skip,
            offset: self.pos,
            len: (stop - self.pos) as usize,
        };
        self.pos = stop;
        Ok(Some(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block's (offset, bytes) over `range`, checked to be whole lines back to back.
    fn blocks(path: &Path, range: Option<[u64; 2]>, block: usize) -> Vec<(u64, Vec<u8>)> {
        let mut m = Mapped::open(path, range, block).unwrap();
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        while let Some(b) = m.next_block(path).unwrap() {
            if let Some((o, d)) = out.last() {
                assert_eq!(o + d.len() as u64, b.offset);
            }
            out.push((b.offset, b.map[b.skip..b.skip + b.len].to_vec()));
        }
        out
    }

    #[test]
    fn ranges_cover_every_line_once_with_long_lines_and_no_final_newline() {
        // Lines longer than SLACK (the map grows) and a last line without a newline.
        let mut text = Vec::new();
        for i in 0..300usize {
            let n = if i % 97 == 3 { 200_000 } else { i % 50 };
            text.extend(std::iter::repeat(b'a' + (i % 26) as u8).take(n));
            text.push(b'\n');
        }
        text.extend_from_slice(b"last");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, &text).unwrap();
        let len = text.len() as u64;
        for block in [1, 7, 100, 70_000, 1 << 22] {
            let whole: Vec<u8> = blocks(&path, None, block)
                .into_iter()
                .flat_map(|b| b.1)
                .collect();
            assert_eq!(whole, text, "block {block}");
            for cuts in [vec![1], vec![3, 4, 5, 200_010], vec![len / 3, len - 2]] {
                let mut bounds = vec![0];
                bounds.extend(cuts);
                bounds.push(len);
                let mut all = Vec::new();
                for w in bounds.windows(2) {
                    let got = blocks(&path, Some([w[0], w[1]]), block);
                    for (offset, bytes) in &got {
                        // Each block starts a line and ends one (or the file).
                        assert!(*offset == 0 || text[*offset as usize - 1] == b'\n');
                        let end = *offset as usize + bytes.len();
                        assert!(end == text.len() || text[end - 1] == b'\n');
                    }
                    all.extend(got.into_iter().flat_map(|b| b.1));
                }
                assert_eq!(all, text, "block {block}");
            }
        }
        // A file just written is live; one untouched for two minutes is settled.
        assert!(!settled(&path));
        let f = File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(120))
            .unwrap();
        assert!(settled(&path));
        assert!(!settled(&dir.path().join("missing.log")));
        // An empty file, and a range past the end.
        let empty = dir.path().join("e.log");
        std::fs::write(&empty, b"").unwrap();
        assert!(blocks(&empty, None, 10).is_empty());
        assert!(blocks(&path, Some([len + 5, len + 10]), 10).is_empty());
    }
}
