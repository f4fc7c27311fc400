//! Counting an input that cannot be memory-mapped (compressed, or a streamed remote object): it is
//! read through [`crate::io::open_input`] in blocks of about `chunk` bytes, each cut just after its
//! last ASCII whitespace byte, the tail carried into the next block. ASCII bytes never occur inside
//! a multi-byte UTF-8 character, so every block is whole words and whole characters, and is
//! validated on its own. One batch of blocks is counted in parallel while the next is read, so
//! memory holds two batches (a few blocks) plus the tables, whatever the size of the input.
//!
//! A file whose UTF-8 is bad anywhere contributes nothing: it is counted into tables of its own,
//! merged into the run's tables only when the whole file was read and valid.
//!
//! A byte range `[start, end)` of a stream (a job's task over part of a big remote text) is read by
//! [`RangeRead`] from byte `start - 1` on and cut exactly where the mapped path cuts a range of a
//! local file ([`super::tokenize::boundary`]): from the first boundary at or after `start` to the
//! first at or after `end`, so the word straddling `end` belongs to this range and the next one
//! starts after it. Error locations are the stream's: offsets from its byte 0, lines counting its
//! newlines before the range (fetched only for the error, see [`crate::io::newlines_before`]).

use super::count::{count_into, new_counts, Counts};
use super::tokenize::is_space;
use crate::error::{Error, Result};
use crate::progress::Share;
use rayon::prelude::*;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Cuts a stream into blocks of whole words.
pub(super) struct Blocks {
    reader: Box<dyn Read + Send>,
    /// Bytes read but not yet handed out (the tail after the last block's cut).
    carry: Vec<u8>,
    chunk: usize,
    eof: bool,
}

impl Blocks {
    pub(super) fn new(reader: Box<dyn Read + Send>, chunk: usize) -> Self {
        Blocks {
            reader,
            carry: Vec::new(),
            chunk: chunk.max(1),
            eof: false,
        }
    }

    /// Read until `buf` holds `want` bytes or the input ends.
    fn fill(&mut self, buf: &mut Vec<u8>, want: usize, path: &Path) -> Result<()> {
        while buf.len() < want && !self.eof {
            let have = buf.len();
            buf.resize(want, 0);
            match self.reader.read(&mut buf[have..]) {
                Ok(0) => {
                    buf.truncate(have);
                    self.eof = true;
                }
                Ok(k) => buf.truncate(have + k),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(have),
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        Ok(())
    }

    /// The next block (about `chunk` bytes, ending just after ASCII whitespace, or the input's
    /// last bytes), or None at the end. A word longer than `chunk` makes its block longer.
    pub(super) fn next_block(&mut self, path: &Path) -> Result<Option<Vec<u8>>> {
        let mut buf = std::mem::take(&mut self.carry);
        let mut want = self.chunk.max(buf.len() + 1);
        let mut searched = 0;
        loop {
            self.fill(&mut buf, want, path)?;
            if self.eof {
                return Ok((!buf.is_empty()).then_some(buf));
            }
            // Only the bytes read since the last look can hold a new cut.
            if let Some(i) = buf[searched..].iter().rposition(|&b| is_space(b)) {
                self.carry = buf[searched + i + 1..].to_vec();
                buf.truncate(searched + i + 1);
                return Ok(Some(buf));
            }
            searched = buf.len();
            want = buf.len() * 2;
        }
    }
}

/// The bytes of a range of an uncompressed input as [`super::tokenize::boundary`] cuts it out of
/// the whole: opened at `start - 1`, it skips to just after the first ASCII whitespace byte there
/// or later, then yields bytes up to `end` and on through the first whitespace byte at or after
/// `end - 1` (the word crossing `end`), or to the input's end.
pub(super) struct RangeRead {
    inner: Box<dyn Read + Send>,
    /// Offset of the next byte `inner` gives.
    pos: u64,
    end: u64,
    /// Whether the range's first byte was found (always at 0).
    started: bool,
    /// Whether the last byte given (or skipped into the start) is whitespace.
    last_space: bool,
    done: bool,
    /// Bytes taken from `inner` (progress), and the offset where the range's bytes begin.
    raw: Arc<AtomicU64>,
    start: Arc<AtomicU64>,
}

impl RangeRead {
    pub(super) fn open(path: &Path, start: u64, end: u64) -> Result<Self> {
        let from = start.saturating_sub(1);
        Ok(RangeRead {
            inner: crate::io::open_at(path, from)?,
            pos: from,
            end,
            started: start == 0,
            last_space: true,
            done: false,
            raw: Arc::new(AtomicU64::new(0)),
            start: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How many of `data` (the next bytes, at `pos`) are the range's; sets `done` at its end.
    fn take(&mut self, data: &[u8]) -> usize {
        let mut k = if self.pos < self.end {
            ((self.end - self.pos) as usize).min(data.len())
        } else {
            0
        };
        if k > 0 {
            self.last_space = is_space(data[k - 1]);
        }
        if self.pos + k as u64 >= self.end {
            if self.last_space {
                self.done = true;
            } else if let Some(i) = data[k..].iter().position(|&b| is_space(b)) {
                k += i + 1;
                self.done = true;
            } else {
                k = data.len();
            }
        }
        self.pos += k as u64;
        k
    }
}

impl Read for RangeRead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while !self.done && !out.is_empty() {
            let n = self.inner.read(out)?;
            self.raw.fetch_add(n as u64, Relaxed);
            if n == 0 {
                self.done = true;
                break;
            }
            let mut from = 0;
            if !self.started {
                match out[..n].iter().position(|&b| is_space(b)) {
                    None => {
                        self.pos += n as u64;
                        continue;
                    }
                    Some(i) => {
                        self.started = true;
                        self.pos += (i + 1) as u64;
                        self.start.store(self.pos, Relaxed);
                        from = i + 1;
                    }
                }
            }
            let k = self.take(&out[from..n]);
            if k > 0 {
                out.copy_within(from..from + k, 0);
                return Ok(k);
            }
        }
        Ok(0)
    }
}

/// Count a streamed input (or the byte `range` of an uncompressed one) into `tables` (one per
/// worker thread): (words, decompressed bytes). Progress counts the input's raw (on-disk) bytes,
/// the unit of its share, as its blocks are counted: decompressed bytes would pass 100%.
pub(super) fn count_stream(
    path: &Path,
    range: Option<[u64; 2]>,
    unicode: bool,
    chunk: usize,
    share: &Share,
    tables: &[Mutex<Counts>],
) -> Result<(u64, u64)> {
    let (reader, raw, range_start): (Box<dyn Read + Send>, _, _) = match range {
        None => {
            let (r, raw) = crate::io::open_input_counted(path)?;
            (r, raw, None)
        }
        Some([s, e]) => {
            let r = RangeRead::open(path, s, e)?;
            let (raw, start) = (r.raw.clone(), r.start.clone());
            (Box::new(r), raw, Some(start))
        }
    };
    let mut blocks = Blocks::new(reader, chunk);
    let local: Vec<Mutex<Counts>> = (0..tables.len().max(1))
        .map(|_| Mutex::new(new_counts()))
        .collect();
    let batch = local.len() * 2;
    let mut raw_seen = 0u64;
    // Each block with the raw bytes read since the block before it.
    let mut read_batch = |b: &mut Blocks| -> Result<Vec<(Vec<u8>, u64)>> {
        let mut v = Vec::with_capacity(batch);
        while v.len() < batch {
            match b.next_block(path)? {
                Some(x) => {
                    let now = raw.load(Relaxed);
                    v.push((x, now.saturating_sub(raw_seen)));
                    raw_seen = now;
                }
                None => break,
            }
        }
        Ok(v)
    };
    let (mut words, mut bytes, mut lines) = (0u64, 0u64, 0u64);
    let mut next = read_batch(&mut blocks)?;
    while !next.is_empty() {
        share.check()?;
        let cur = next;
        let (more, counted) = rayon::join(
            || read_batch(&mut blocks),
            || {
                cur.par_iter()
                    .map(|(data, raw_bytes)| {
                        if let Err(e) = std::str::from_utf8(data) {
                            let bad = e.valid_up_to();
                            let nl = memchr::memchr_iter(b'\n', &data[..bad]).count() as u64;
                            return Err((bad, nl));
                        }
                        let slot = rayon::current_thread_index().unwrap_or(0) % local.len();
                        let w = count_into(&mut local[slot].lock().unwrap(), data, unicode);
                        share.add(*raw_bytes);
                        Ok((w, memchr::memchr_iter(b'\n', data).count() as u64))
                    })
                    .collect::<Vec<_>>()
            },
        );
        for ((data, _), r) in cur.iter().zip(counted) {
            match r {
                Ok((w, nl)) => {
                    words += w;
                    lines += nl;
                    bytes += data.len() as u64;
                }
                Err((bad, nl)) => {
                    // A range's blocks begin at its start: locate the byte in the whole input.
                    let (at, before) = match &range_start {
                        None => (0, 0),
                        Some(st) => {
                            let at = st.load(Relaxed);
                            (at, crate::io::newlines_before(path, at)?)
                        }
                    };
                    return Err(Error::input(
                        path,
                        Some(before + lines + nl + 1),
                        Some(at + bytes + bad as u64),
                        "not valid UTF-8",
                    ));
                }
            }
        }
        next = more?;
    }
    for (t, l) in tables.iter().zip(local) {
        t.lock().unwrap().absorb(l.into_inner().unwrap());
    }
    share.progress().add_rows(words);
    Ok((words, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(text: &[u8], chunk: usize, read_size: usize) -> Vec<Vec<u8>> {
        // A reader that hands out at most `read_size` bytes per call, as a decompressor does.
        struct Trickle(std::io::Cursor<Vec<u8>>, usize);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.1);
                self.0.read(&mut buf[..n])
            }
        }
        let mut b = Blocks::new(
            Box::new(Trickle(std::io::Cursor::new(text.to_vec()), read_size)),
            chunk,
        );
        let mut out = Vec::new();
        while let Some(x) = b.next_block(Path::new("t")).unwrap() {
            out.push(x);
        }
        out
    }

    #[test]
    fn blocks_end_after_whitespace_and_keep_characters_whole() {
        let text = "aé ééé\nxyzé  longerwordthanthechunk é\tq".as_bytes();
        for chunk in 1..12 {
            for read_size in [1, 2, 3, 7, 100] {
                let blocks = cut(text, chunk, read_size);
                assert_eq!(blocks.concat(), text, "chunk {chunk} read {read_size}");
                for b in &blocks[..blocks.len() - 1] {
                    assert!(is_space(*b.last().unwrap()));
                    assert!(std::str::from_utf8(b).is_ok());
                }
            }
        }
    }
}
