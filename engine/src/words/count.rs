//! Word counts of byte slices: a hash table specialised for short words, and merging tables.
//!
//! Almost every word of real text is at most 16 bytes, so such a word is kept inline as two
//! zero-padded little-endian `u64`s (no allocation, no pointer to follow, a compare is two integer
//! compares) in a `hashbrown::HashTable` keyed by a folded-multiply hash of those two words. Words
//! of up to 8 bytes (95% of the Bible's words, 80% of its distinct ones) have a table of their own
//! with 16-byte entries: the Bible's two tables then take 1.4 MiB instead of one of 3.1 MiB, so a
//! worker's table stays in its core's 2 MiB L2 beside its read buffer. Longer words go to an
//! ordinary map of boxed slices. The hash is fixed (no per-process seed) so tables
//! built by different threads merge without rehashing keys from bytes.

use super::tokenize;
use hashbrown::{HashMap, HashTable};
use rayon::prelude::*;
use std::cmp::Ordering;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Longest word kept inline.
const SHORT: usize = 16;
const C0: u64 = 0x243f_6a88_85a3_08d3;
const C1: u64 = 0x1319_8a2e_0370_7344;

/// The length packed in an entry's `meta` (`len << 56 | count`).
#[inline]
fn meta_len(meta: u64) -> usize {
    (meta >> 56) as usize
}

/// The count packed in an entry's `meta` (`len << 56 | count`).
#[inline]
fn meta_count(meta: u64) -> u64 {
    meta & ((1 << 56) - 1)
}

/// A word of up to 8 bytes.
struct Short8 {
    k0: u64,
    /// `len << 56 | count`.
    meta: AtomicU64,
}

impl Clone for Short8 {
    fn clone(&self) -> Self {
        Short8 {
            k0: self.k0,
            meta: AtomicU64::new(self.m()),
        }
    }
}

impl Short8 {
    #[inline(always)]
    fn m(&self) -> u64 {
        self.meta.load(Relaxed)
    }
    #[inline]
    fn len(&self) -> usize {
        meta_len(self.m())
    }
    #[inline]
    fn count(&self) -> u64 {
        meta_count(self.m())
    }
    fn wide(&self) -> Short {
        Short {
            k0: self.k0,
            k1: 0,
            meta: AtomicU64::new(self.m()),
        }
    }
}

/// A word of 9 to 16 bytes (or, widened from a [`Short8`], any word of up to 16).
struct Short {
    k0: u64,
    k1: u64,
    /// `len << 56 | count`.
    meta: AtomicU64,
}

impl Clone for Short {
    fn clone(&self) -> Self {
        Short {
            k0: self.k0,
            k1: self.k1,
            meta: AtomicU64::new(self.m()),
        }
    }
}

impl Short {
    #[inline(always)]
    fn m(&self) -> u64 {
        self.meta.load(Relaxed)
    }
    #[inline]
    fn len(&self) -> usize {
        meta_len(self.m())
    }
    #[inline]
    fn count(&self) -> u64 {
        meta_count(self.m())
    }
    fn bytes(&self) -> Vec<u8> {
        let mut b = [0u8; SHORT];
        b[..8].copy_from_slice(&self.k0.to_le_bytes());
        b[8..].copy_from_slice(&self.k1.to_le_bytes());
        b[..self.len()].to_vec()
    }
}

#[inline(always)]
fn hash(k0: u64, k1: u64, len: usize) -> u64 {
    // foldhash/ahash's folded multiply: the high and low halves of a 128-bit product, xored.
    let p = ((k0 ^ C0) as u128).wrapping_mul((k1 ^ C1 ^ ((len as u64) << 56)) as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// ASCII `A-Z` to `a-z` in all 8 bytes at once (other bytes, UTF-8 included, unchanged): std's
/// `make_ascii_lowercase` trick on a word.
#[inline(always)]
fn lower8(x: u64) -> u64 {
    const HI: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low7 = x & !HI;
    let ge_a = low7.wrapping_add(ONES * (0x80 - b'A' as u64));
    let gt_z = low7.wrapping_add(ONES * (0x7f - b'Z' as u64));
    let upper = ge_a & !gt_z & !x & HI;
    x | (upper >> 2)
}

/// The low `n` bytes of a little-endian word (`n` in 0..=8).
#[inline(always)]
fn keep(n: usize) -> u64 {
    if n >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * n)) - 1
    }
}

#[inline(always)]
fn load(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"))
}

/// Word counts. Keys are byte strings as the tokeniser produced them (lowercased).
#[derive(Clone)]
pub struct Counts {
    short8: HashTable<Short8>,
    short: HashTable<Short>,
    long: HashMap<Box<[u8]>, u64, ahash::RandomState>,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            short8: HashTable::with_capacity(1 << 12),
            short: HashTable::with_capacity(1 << 10),
            long: HashMap::default(),
        }
    }
}

impl std::fmt::Debug for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl PartialEq for Counts {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(&k) == v)
    }
}

pub fn new_counts() -> Counts {
    Counts::default()
}

impl Counts {
    /// Distinct words.
    pub fn len(&self) -> usize {
        self.short8.len() + self.short.len() + self.long.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The count of `word` (0 when absent).
    pub fn get(&self, word: &[u8]) -> u64 {
        if word.len() <= 8 {
            let (k0, _) = pad(word);
            let h = hash(k0, 0, word.len());
            self.short8
                .find(h, |e| e.k0 == k0 && e.len() == word.len())
                .map_or(0, Short8::count)
        } else if word.len() <= SHORT {
            let (k0, k1) = pad(word);
            let h = hash(k0, k1, word.len());
            self.short
                .find(h, |e| e.k0 == k0 && e.k1 == k1 && e.len() == word.len())
                .map_or(0, Short::count)
        } else {
            self.long.get(word).copied().unwrap_or(0)
        }
    }

    /// Every (word, count).
    pub fn iter(&self) -> impl Iterator<Item = (Vec<u8>, u64)> + '_ {
        self.short8
            .iter()
            .map(|e| e.wide())
            .chain(self.short.iter().cloned())
            .map(|e| (e.bytes(), e.count()))
            .chain(self.long.iter().map(|(k, v)| (k.to_vec(), *v)))
    }

    /// Every (word, count), consuming the table.
    pub fn into_iter_words(self) -> impl Iterator<Item = (Vec<u8>, u64)> {
        self.short8
            .into_iter()
            .map(|e| e.wide())
            .chain(self.short)
            .map(|e| (e.bytes(), e.count()))
            .chain(self.long.into_iter().map(|(k, v)| (k.into_vec(), v)))
    }

    /// Count a word of up to 16 bytes (`k1` is 0 for one of up to 8).
    #[inline(always)]
    fn add_short(&mut self, k0: u64, k1: u64, len: usize, n: u64) {
        if len <= 8 {
            self.add8(k0, len, n)
        } else {
            self.add16(k0, k1, len, n)
        }
    }

    #[inline(always)]
    fn add8(&mut self, k0: u64, len: usize, n: u64) {
        let h = hash(k0, 0, len);
        match self.short8.find_mut(h, |e| e.k0 == k0 && e.len() == len) {
            Some(e) => *e.meta.get_mut() += n,
            None => {
                self.short8.insert_unique(
                    h,
                    Short8 {
                        k0,
                        meta: AtomicU64::new(((len as u64) << 56) | n),
                    },
                    |e| hash(e.k0, 0, e.len()),
                );
            }
        }
    }

    #[inline(always)]
    fn add16(&mut self, k0: u64, k1: u64, len: usize, n: u64) {
        let h = hash(k0, k1, len);
        match self
            .short
            .find_mut(h, |e| e.k0 == k0 && e.k1 == k1 && e.len() == len)
        {
            Some(e) => *e.meta.get_mut() += n,
            None => {
                self.short.insert_unique(
                    h,
                    Short {
                        k0,
                        k1,
                        meta: AtomicU64::new(((len as u64) << 56) | n),
                    },
                    |e| hash(e.k0, e.k1, e.len()),
                );
            }
        }
    }

    fn add_long(&mut self, word: &[u8], n: u64) {
        if let Some(c) = self.long.get_mut(word) {
            *c += n;
        } else {
            self.long.insert(word.into(), n);
        }
    }

    /// Count `word` (already in its final, lowercased form) `n` times.
    #[inline]
    pub fn add(&mut self, word: &[u8], n: u64) {
        if word.len() <= SHORT {
            let (k0, k1) = pad(word);
            self.add_short(k0, k1, word.len(), n);
        } else {
            self.add_long(word, n);
        }
    }

    /// Count the word `data[s..e]` under the classic rules (ASCII lowercase).
    #[inline(always)]
    fn add_classic(&mut self, data: &[u8], s: usize, e: usize, scratch: &mut Vec<u8>) {
        let len = e - s;
        if len <= SHORT {
            let (k0, k1) = if s + SHORT <= data.len() {
                if len > 8 {
                    (load(data, s), load(data, s + 8) & keep(len - 8))
                } else {
                    (load(data, s) & keep(len), 0)
                }
            } else {
                pad(&data[s..e])
            };
            if len <= 8 {
                self.add8(lower8(k0), len, 1);
            } else {
                self.add16(lower8(k0), lower8(k1), len, 1);
            }
        } else {
            scratch.clear();
            scratch.extend(data[s..e].iter().map(u8::to_ascii_lowercase));
            let w = std::mem::take(scratch);
            self.add_long(&w, 1);
            *scratch = w;
        }
    }

    /// Add every count of `other`.
    pub fn merge_from(&mut self, other: Counts) {
        self.short8
            .reserve(other.short8.len(), |e| hash(e.k0, 0, e.len()));
        self.short
            .reserve(other.short.len(), |e| hash(e.k0, e.k1, e.len()));
        for e in other.short8 {
            self.add8(e.k0, e.len(), e.count());
        }
        for e in other.short {
            self.add16(e.k0, e.k1, e.len(), e.count());
        }
        for (k, v) in other.long {
            *self.long.entry(k).or_insert(0) += v;
        }
    }

    /// Add every count of `other`, keeping whichever table is larger, so a table handed to an
    /// empty one is moved, not rebuilt.
    pub fn absorb(&mut self, mut other: Counts) {
        if other.len() > self.len() {
            std::mem::swap(self, &mut other);
        }
        self.merge_from(other);
    }

    /// As a plain map (tests, fuzzing).
    pub fn to_map(&self) -> std::collections::HashMap<Vec<u8>, u64> {
        self.iter().collect()
    }
}

#[inline(always)]
fn pad(word: &[u8]) -> (u64, u64) {
    let mut b = [0u8; SHORT];
    b[..word.len()].copy_from_slice(word);
    (
        u64::from_le_bytes(b[..8].try_into().expect("8")),
        u64::from_le_bytes(b[8..].try_into().expect("8")),
    )
}

/// Add the words of `data` to `counts`; returns how many words. `data` must be valid UTF-8 in
/// Unicode mode (a bad slice is counted lossily rather than panicking).
pub fn count_into(counts: &mut Counts, data: &[u8], unicode: bool) -> u64 {
    let mut total = 0u64;
    if unicode {
        let mut add = |tok: &[u8]| {
            total += 1;
            counts.add(tok, 1);
        };
        match std::str::from_utf8(data) {
            Ok(s) => tokenize::unicode(s, &mut add),
            Err(_) => tokenize::unicode(&String::from_utf8_lossy(data), &mut add),
        }
    } else {
        let mut scratch = Vec::new();
        tokenize::classic_spans(data, |s, e| {
            total += 1;
            counts.add_classic(data, s, e, &mut scratch);
        });
    }
    total
}

/// Merge `b` into `a` (the larger table is kept).
pub fn merge(mut a: Counts, mut b: Counts) -> Counts {
    if a.len() < b.len() {
        std::mem::swap(&mut a, &mut b);
    }
    a.merge_from(b);
    a
}

/// Merge per-thread tables into the largest one, on the current rayon pool. Each other table's
/// words are looked up in it in parallel and those found are added in place. The words of one
/// table are distinct, so no two tasks add to one entry and a plain load and store will do (no
/// locked add); the counts are atomics only because a lookup also reads the `len` packed beside
/// another word's count while a task may be adding to it. Words it lacks (few when every thread saw
/// most of the text) are then added serially. Nothing is rebuilt or scattered first: on the 44 MB
/// bench file at two threads this merge takes 0.2-0.3 ms where building hash partitions from both
/// tables took 1.5-2.0 ms (stage timers, SCHED_FIFO).
pub fn merge_into_largest(tables: Vec<Counts>) -> Counts {
    let mut tables: Vec<Counts> = tables.into_iter().filter(|t| !t.is_empty()).collect();
    let Some(big) = (0..tables.len()).max_by_key(|&i| tables[i].len()) else {
        return Counts::default();
    };
    let mut out = tables.swap_remove(big);
    for t in tables {
        let new8: Vec<Short8> = t
            .short8
            .par_iter()
            .filter(|e| {
                let (k0, len) = (e.k0, e.len());
                match out
                    .short8
                    .find(hash(k0, 0, len), |o| o.k0 == k0 && o.len() == len)
                {
                    Some(o) => {
                        o.meta.store(o.m() + e.count(), Relaxed);
                        false
                    }
                    None => true,
                }
            })
            .cloned()
            .collect();
        let new16: Vec<Short> = t
            .short
            .par_iter()
            .filter(|e| {
                let (k0, k1, len) = (e.k0, e.k1, e.len());
                match out.short.find(hash(k0, k1, len), |o| {
                    o.k0 == k0 && o.k1 == k1 && o.len() == len
                }) {
                    Some(o) => {
                        o.meta.store(o.m() + e.count(), Relaxed);
                        false
                    }
                    None => true,
                }
            })
            .cloned()
            .collect();
        for e in new8 {
            out.add8(e.k0, e.len(), e.count());
        }
        for e in new16 {
            out.add16(e.k0, e.k1, e.len(), e.count());
        }
        for (k, v) in t.long {
            *out.long.entry(k).or_insert(0) += v;
        }
    }
    out
}

/// Marks a [`Row`] whose word fits its head.
const NOT_LONG: u32 = u32::MAX;

/// One (word, count) of a merged table, ordered with integer compares only: `head` is the word's
/// first 16 bytes, zero-padded, as a big-endian integer, which orders like the bytes themselves.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub count: u64,
    head: u128,
    len: u32,
    /// Index of the whole word in the run's long words, or [`NOT_LONG`].
    long: u32,
}

impl Row {
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The word's bytes (`buf` holds a short word's).
    pub fn word<'a>(&self, longs: &'a [Box<[u8]>], buf: &'a mut [u8; SHORT]) -> &'a [u8] {
        if self.long == NOT_LONG {
            *buf = self.head.to_be_bytes();
            &buf[..self.len as usize]
        } else {
            &longs[self.long as usize]
        }
    }
}

/// Count descending, then word ascending (bytewise). A total order, so unstable sorts are
/// deterministic.
pub fn row_order(a: &Row, b: &Row, longs: &[Box<[u8]>]) -> Ordering {
    b.count
        .cmp(&a.count)
        .then(a.head.cmp(&b.head))
        .then_with(|| {
            if a.long != NOT_LONG && b.long != NOT_LONG {
                longs[a.long as usize].cmp(&longs[b.long as usize])
            } else {
                // Equal zero-padded heads and at least one word of at most 16 bytes: the shorter
                // word is a prefix of the other.
                a.len.cmp(&b.len)
            }
        })
}

impl Counts {
    /// Total of all counts (in parallel on the current rayon pool).
    pub fn total(&self) -> u64 {
        self.short8.par_iter().map(Short8::count).sum::<u64>()
            + self.short.par_iter().map(Short::count).sum::<u64>()
            + self.long.values().sum::<u64>()
    }

    /// The rows of the short words that `keep` accepts, built in parallel, in a vector with room
    /// for `more` rows after them (the long words'), so no copy follows.
    pub fn short_rows(&self, keep: &(impl Fn(&[u8]) -> bool + Sync), more: usize) -> Vec<Row> {
        let mut rows = Vec::with_capacity(self.short8.len() + self.short.len() + more);
        rows.par_extend(
            self.short8
                .par_iter()
                .filter_map(|e| short_row(&e.wide(), keep)),
        );
        rows.par_extend(self.short.par_iter().filter_map(|e| short_row(e, keep)));
        rows
    }

    /// Move the long words that `keep` accepts into `longs`, with a row each.
    pub fn take_long_rows(
        &mut self,
        keep: &impl Fn(&[u8]) -> bool,
        longs: &mut Vec<Box<[u8]>>,
    ) -> Vec<Row> {
        let mut rows = Vec::new();
        for (k, v) in self.long.drain() {
            if !keep(&k[..]) {
                continue;
            }
            let mut head = [0u8; SHORT];
            head.copy_from_slice(&k[..SHORT]);
            rows.push(Row {
                count: v,
                head: u128::from_be_bytes(head),
                len: k.len().min(u32::MAX as usize) as u32,
                long: longs.len() as u32,
            });
            longs.push(k);
        }
        rows
    }
}

fn short_row(e: &Short, keep: &impl Fn(&[u8]) -> bool) -> Option<Row> {
    let mut buf = [0u8; SHORT];
    buf[..8].copy_from_slice(&e.k0.to_le_bytes());
    buf[8..].copy_from_slice(&e.k1.to_le_bytes());
    keep(&buf[..e.len()]).then(|| Row {
        count: e.count(),
        head: u128::from_be_bytes(buf),
        len: e.len() as u32,
        long: NOT_LONG,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower8_only_touches_ascii_capitals() {
        let all: Vec<u8> = (0..=255u8).collect();
        for c in all.chunks(8) {
            let x = u64::from_le_bytes(c.try_into().unwrap());
            let want: Vec<u8> = c.iter().map(u8::to_ascii_lowercase).collect();
            assert_eq!(lower8(x).to_le_bytes().to_vec(), want);
        }
    }

    #[test]
    fn short_long_nul_and_edge_words() {
        let text =
            b"a A\0 a\0 abcdefghABCDEFGH abcdefghabcdefgh abcdefghabcdefghi ABCDEFGHABCDEFGHI x";
        let mut c = new_counts();
        assert_eq!(count_into(&mut c, text, false), 8);
        assert_eq!(c.get(b"a"), 1);
        assert_eq!(c.get(b"a\0"), 2);
        assert_eq!(c.get(b"abcdefghabcdefgh"), 2);
        assert_eq!(c.get(b"abcdefghabcdefghi"), 2);
        assert_eq!(c.get(b"x"), 1);
        assert_eq!(c.len(), 5);
        let mut d = new_counts();
        count_into(&mut d, b"x y", false);
        let m = merge(c, d);
        assert_eq!((m.get(b"x"), m.get(b"y"), m.len()), (2, 1, 6));
    }
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    #[test]
    fn parallel_merge_equals_serial_merge_and_rows_order_like_bytes() {
        let text: Vec<u8> = (0..5000u32)
            .map(|i| format!("w{} ", i % 997))
            .chain(["a\0 a a\0\0 abcdefghabcdefgh ".into()])
            .chain(["abcdefghabcdefgh\0 abcdefghabcdefghz abcdefghabcdefghy ".into()])
            .collect::<String>()
            .into_bytes();
        let mut tables = Vec::new();
        for piece in text
            .split_inclusive(|&b| b == b' ')
            .collect::<Vec<_>>()
            .chunks(700)
        {
            let mut c = new_counts();
            count_into(&mut c, &piece.concat(), false);
            tables.push(c);
        }
        let serial = tables.clone().into_iter().reduce(merge).unwrap();
        for n in [1, 2, 3, tables.len()] {
            let m = merge_into_largest(tables[..n].to_vec());
            let want = tables[..n].iter().cloned().reduce(merge).unwrap();
            assert_eq!(m.to_map(), want.to_map(), "{n} tables");
            assert_eq!(m.total(), want.total(), "{n} tables");
        }
        let mut merged = merge_into_largest(tables);
        assert_eq!(merged.to_map(), serial.to_map());
        let mut longs = Vec::new();
        let keep = |_: &[u8]| true;
        let long_rows = merged.take_long_rows(&keep, &mut longs);
        let mut rows = merged.short_rows(&keep, long_rows.len());
        rows.extend(long_rows);
        rows.sort_unstable_by(|a, b| row_order(a, b, &longs));
        let mut buf = [0u8; SHORT];
        let got: Vec<(Vec<u8>, u64)> = rows
            .iter()
            .map(|r| (r.word(&longs, &mut buf).to_vec(), r.count))
            .collect();
        let mut want: Vec<(Vec<u8>, u64)> = serial.iter().collect();
        want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        assert_eq!(got, want);
    }
}
