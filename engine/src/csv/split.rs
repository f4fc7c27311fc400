//! Reading an input as blocks that start and end on record boundaries.
//!
//! Each block is parsed on its own thread, so a block must never start inside a quoted field.
//! The reader is sequential and cheap: it reads `block_size` bytes and cuts after the last newline
//! that lies outside quotes. Without an escape character or comment lines, "outside quotes" is
//! decided by quote parity: the block starts outside quotes, so a newline at `p` is outside quotes
//! exactly when the number of quote bytes before `p` is even (one vectorised count per block plus a
//! short backward walk). This is exact for every input, including quoted newlines, unlike
//! splitting at an arbitrary newline and guessing (Polars checks that the next few lines have the
//! expected field count, which quoted text that itself looks like CSV fools; DuckDB's parallel
//! scanner guesses the state at a chunk start and re-scans when a guess fails, and older versions
//! refused quoted newlines in parallel mode). With an escape character or comments, the exact state
//! machine finds the cut instead.

use crate::csv::dialect::Dialect;
use crate::csv::infer::Head;
use crate::csv::tokenize::Fields;
use crate::error::{Error, Result};
use memchr::memrchr;
use std::io::Read;

/// Count of `b` in `buf`. Byte-wide counters (64 lanes, emptied every 255 rounds) let the
/// compiler compare and add a whole vector of bytes per instruction; summing into `usize` lanes,
/// as a plain `filter().count()` does, is several times slower on the block reader's hot path.
#[inline]
pub fn count_byte(buf: &[u8], b: u8) -> usize {
    let mut total = 0usize;
    for part in buf.chunks(255 * 64) {
        let mut lanes = [0u8; 64];
        let mut it = part.chunks_exact(64);
        for c in &mut it {
            for (l, &x) in lanes.iter_mut().zip(c) {
                *l += (x == b) as u8;
            }
        }
        total += lanes.iter().map(|&l| l as usize).sum::<usize>();
        total += it.remainder().iter().filter(|&&x| x == b).count();
    }
    total
}

/// The offset just after the last complete record of `buf` (which starts outside quotes).
pub fn last_record_end(buf: &[u8], d: &Dialect) -> Option<usize> {
    if d.simple_no_comment() {
        let Some(q) = d.quote else {
            return memrchr(b'\n', buf).map(|p| p + 1);
        };
        let total = count_byte(buf, q) & 1;
        let mut after = 0usize;
        let mut end = buf.len();
        while let Some(p) = memrchr(b'\n', &buf[..end]) {
            after ^= count_byte(&buf[p + 1..end], q) & 1;
            if total ^ after == 0 {
                return Some(p + 1);
            }
            end = p;
        }
        return None;
    }
    scan_state(buf, d)
}

/// The exact state machine (escape characters, comment lines): the end of the last record.
fn scan_state(buf: &[u8], d: &Dialect) -> Option<usize> {
    let escape = if d.escape == d.quote { None } else { d.escape };
    let (mut inq, mut row_start, mut last) = (false, true, None);
    let mut i = 0;
    while i < buf.len() {
        let b = buf[i];
        if row_start && d.comment == Some(b) {
            match memchr::memchr(b'\n', &buf[i..]) {
                Some(p) => {
                    i += p + 1;
                    last = Some(i);
                    continue;
                }
                None => break,
            }
        }
        row_start = false;
        if escape == Some(b) {
            i += 2;
            continue;
        }
        if d.quote == Some(b) {
            inq = !inq;
        } else if b == b'\n' && !inq {
            last = Some(i + 1);
            row_start = true;
        }
        i += 1;
    }
    last
}

/// One block of an input: whole records, and where it starts in the (decompressed) input.
pub struct Block {
    pub data: Vec<u8>,
    pub offset: u64,
    pub last: bool,
    /// The first block of a reader given a head: the head's length and fields (the fields of
    /// `data[..len]`, whole records), so that only the rest of the block is tokenized.
    pub head: Option<(usize, Fields)>,
}

/// Spent block buffers, handed back by the workers so the reader refills warm memory instead of
/// faulting in fresh pages for every block.
pub type BufPool = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// Return a spent buffer to the pool (a few are kept).
pub fn recycle(pool: &BufPool, mut buf: Vec<u8>) {
    buf.clear();
    if let Ok(mut p) = pool.lock() {
        if p.len() < 4 {
            p.push(buf);
        }
    }
}

/// Reads an input as record-aligned blocks.
pub struct BlockReader {
    pool: Option<BufPool>,
    src: Box<dyn Read + Send>,
    dialect: Dialect,
    carry: Vec<u8>,
    eof: bool,
    block_size: usize,
    max_record: usize,
    offset: u64,
    path: String,
    /// Bytes left to read, when known (uncompressed inputs): a small input then gets a buffer of
    /// its own size, not a whole block's.
    remaining: Option<u64>,
    /// The fields of a head at the start of `carry`, until the first block takes them.
    head: Option<(usize, Fields)>,
}

impl BlockReader {
    /// Start reading `src` after `skip` bytes (BOM, header).
    pub fn new(
        mut src: Box<dyn Read + Send>,
        skip: u64,
        dialect: Dialect,
        block_size: usize,
        path: &str,
    ) -> Result<Self> {
        let skipped = std::io::copy(&mut (&mut src).take(skip), &mut std::io::sink())
            .map_err(|e| Error::io(path, e))?;
        let mut r = Self::at(src, skip, dialect, block_size, path);
        r.eof = skipped < skip;
        Ok(r)
    }

    /// Read `src`, which already stands at byte `offset` of the input (opened there).
    pub fn at(
        src: Box<dyn Read + Send>,
        offset: u64,
        dialect: Dialect,
        block_size: usize,
        path: &str,
    ) -> Self {
        BlockReader {
            pool: None,
            src,
            dialect,
            carry: Vec::new(),
            eof: false,
            block_size,
            max_record: (block_size * 64).clamp(64 << 20, 1 << 30),
            offset,
            path: path.to_string(),
            remaining: None,
            head: None,
        }
    }

    /// Start with `head`: the input's bytes just before where `src` stands (whole records), with
    /// their fields. Call after [`Self::with_size_hint`], which counts the bytes left in `src`.
    pub fn with_head(mut self, head: Head) -> Self {
        let len = head.data.len();
        self.offset -= len as u64;
        self.carry.clear();
        self.carry.extend_from_slice(&head.data);
        self.head = Some((len, head.fields));
        self
    }

    /// Take spare buffers from `pool`.
    pub fn with_pool(mut self, pool: BufPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Declare the size of the input on disk; ignored for compressed inputs.
    pub fn with_size_hint(mut self, size: u64) -> Self {
        if crate::io::Compression::of(std::path::Path::new(&self.path))
            == crate::io::Compression::None
        {
            self.remaining = Some(size.saturating_sub(self.offset));
        }
        if self.carry.capacity() == 0 {
            self.carry = self.fresh();
        }
        self
    }

    fn fresh(&self) -> Vec<u8> {
        let reused = self
            .pool
            .as_ref()
            .and_then(|p| p.lock().ok().and_then(|mut v| v.pop()));
        reused.unwrap_or_else(|| Vec::with_capacity(self.block_size))
    }

    fn fill(&mut self, target: usize) -> Result<()> {
        // One byte more than a known remainder, so that the end of the input is seen at once.
        let mut want = target.saturating_sub(self.carry.len());
        if let Some(rem) = self.remaining {
            want = want.min(rem as usize + 1);
        }
        if want == 0 || self.eof {
            return Ok(());
        }
        // Room for what is asked (a small input: its own size, not a whole block's), filled by
        // `read_to_end` straight into the spare capacity: a plain file is read without zeroing the
        // region first (zeroing 16 MiB per block was 1.5% of a run's CPU), and large reads bypass
        // the `BufReader`'s buffer. It stops at `want` bytes or at the end of the input.
        let start = self.carry.len();
        self.carry.reserve(want);
        (&mut self.src)
            .take(want as u64)
            .read_to_end(&mut self.carry)
            .map_err(|e| Error::io(&self.path, e))?;
        let n = self.carry.len() - start;
        if n < want {
            self.eof = true;
        }
        // An input that grew past its size read as unknown from here on.
        self.remaining = self.remaining.and_then(|r| r.checked_sub(n as u64));
        Ok(())
    }

    /// The next block, or None at the end of the input.
    pub fn next_block(&mut self) -> Result<Option<Block>> {
        let mut target = self.block_size.max(self.carry.len() + 1);
        loop {
            self.fill(target)?;
            if self.carry.is_empty() {
                return Ok(None);
            }
            if self.eof {
                let data = std::mem::take(&mut self.carry);
                let offset = self.offset;
                self.offset += data.len() as u64;
                return Ok(Some(Block {
                    data,
                    offset,
                    last: true,
                    head: self.head.take(),
                }));
            }
            if let Some(cut) = last_record_end(&self.carry, &self.dialect) {
                let mut next = self.fresh();
                next.extend_from_slice(&self.carry[cut..]);
                let mut data = std::mem::replace(&mut self.carry, next);
                data.truncate(cut);
                let offset = self.offset;
                self.offset += cut as u64;
                // The head ends a record, so the cut is never inside it; were it, the block would
                // simply be tokenized whole.
                let head = self.head.take().filter(|h| h.0 <= cut);
                return Ok(Some(Block {
                    data,
                    offset,
                    last: false,
                    head,
                }));
            }
            if target >= self.max_record {
                let msg = format!(
                    "a record is longer than {} MiB (an unterminated quote?)",
                    self.max_record >> 20
                );
                return Err(Error::input(&self.path, None, Some(self.offset), msg));
            }
            target *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv::options::Options;

    fn dialect() -> Dialect {
        Dialect::for_sample(
            &Options::from_json(r#"{"delimiter": ","}"#).unwrap(),
            b"",
            "x",
        )
    }

    #[test]
    fn cut_skips_quoted_newlines() {
        let d = dialect();
        assert_eq!(last_record_end(b"a,b\n\"x\ny\",z", &d), Some(4));
        assert_eq!(last_record_end(b"a,\"b\nc\"\nd", &d), Some(8));
        assert_eq!(last_record_end(b"\"a\nb\nc", &d), None);
    }

    #[test]
    fn count_byte_counts_across_lane_and_round_limits() {
        let mut buf = vec![b'x'; 255 * 64 * 3 + 77];
        for i in (0..buf.len()).step_by(3) {
            buf[i] = b'"';
        }
        for len in [0, 1, 63, 64, 65, 255 * 64, 255 * 64 + 1, buf.len()] {
            let want = buf[..len].iter().filter(|&&x| x == b'"').count();
            assert_eq!(count_byte(&buf[..len], b'"'), want, "len {len}");
        }
        let all = vec![b'"'; 255 * 64 * 2];
        assert_eq!(count_byte(&all, b'"'), all.len());
    }

    /// The size hint only sizes the reads: right, too small (the input grew) or too large, the
    /// blocks hold the same records.
    #[test]
    fn size_hint_never_changes_the_blocks() {
        let d = dialect();
        let text: String = (0..500).map(|i| format!("{i},\"q,\n{i}\"\n")).collect();
        for hint in [None, Some(text.len() as u64), Some(10), Some(1 << 30)] {
            for bs in [1024, 1 << 20] {
                let mut r = BlockReader::new(
                    Box::new(std::io::Cursor::new(text.clone().into_bytes())),
                    0,
                    d,
                    bs,
                    "t.csv",
                )
                .unwrap();
                if let Some(h) = hint {
                    r = r.with_size_hint(h);
                }
                let mut all = Vec::new();
                let mut blocks = 0;
                while let Some(b) = r.next_block().unwrap() {
                    assert_eq!(b.offset as usize, all.len());
                    all.extend_from_slice(&b.data);
                    blocks += 1;
                    if b.last {
                        break;
                    }
                }
                assert_eq!(all, text.as_bytes(), "hint {hint:?} block {bs}");
                if bs == 1 << 20 && hint == Some(text.len() as u64) {
                    assert_eq!(blocks, 1, "a small input with its exact size is one block");
                }
            }
        }
    }

    #[test]
    fn blocks_hold_whole_records_whatever_the_block_size() {
        let d = dialect();
        let text: String = (0..300)
            .map(|i| format!("{i},\"multi\nline, {i}\"\n"))
            .collect();
        for bs in [1024, 1500, 4096] {
            let mut r = BlockReader::new(
                Box::new(std::io::Cursor::new(text.clone().into_bytes())),
                0,
                d,
                bs,
                "t",
            )
            .unwrap();
            let mut all = Vec::new();
            while let Some(b) = r.next_block().unwrap() {
                assert!(
                    b.last || (b.data.ends_with(b"\"\n") && count_byte(&b.data, b'"') % 2 == 0)
                );
                assert_eq!(b.offset as usize, all.len());
                all.extend_from_slice(&b.data);
            }
            assert_eq!(all, text.as_bytes());
        }
    }
}
