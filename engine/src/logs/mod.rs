//! The `log-sessions` pipeline: Apache/Nginx access logs (Common or Combined, auto-detected per line,
//! or a custom GoAccess/nginx-style `log_format`; .gz/.zst too) into visitor sessions and a traffic
//! summary.
//!
//! Streaming, bounded memory: each input is read (decompressed) in blocks of `chunk_size` bytes cut
//! at newlines (an uncompressed local file: one map of the file per block, [`mapped`], so nothing is
//! copied out of the page cache); a batch of blocks is parsed in parallel by rayon while the next
//! batch is read. A
//! block is reduced to small partial results with owned keys (counts per page/referrer/user agent,
//! the set of visitors, and per-key session clusters, see [`sessionize`]), which are merged into
//! the run's state in input order. A session that ended more than the timeout plus [`DISORDER_S`]
//! before the latest line of the input being read (and before the first line of any input still
//! to come) is finished: it leaves the per-key state for [`finished`], which holds it for the
//! sessions table, or, with `output_dir` (or `sessions_file`: a job's task), writes it to
//! sessions.parquet (that file) once no session that sorts before it can still come. Inputs are
//! read in the order of their first request's time. Memory holds the blocks in flight, the open
//! sessions, the finished ones (128 bytes each, about the size of the result; with a file only
//! those waiting for their turn in it) and one record per distinct key/value, never one per
//! request.
//!
//! Out-of-order lines: a session is a maximal run of one key's requests that are at most the
//! timeout apart *in time order*, whatever order the lines came in (rotated files in any order,
//! lines out of order within a file, tasks of one job): clusters are joined when their spans
//! overlap or lie within the timeout, so the result equals one pass over all lines sorted by
//! (key, time), ties kept in input order. A line up to [`DISORDER_S`] (an hour) earlier than the
//! latest line before it finds its sessions still open; an even later one that may join a
//! finished session puts every finished session back (the result stays exact) and nothing is
//! finished for the rest of the run (memory as if every session stayed open). Lines that do not
//! parse are counted and sampled (file, line, text), never fatal.
//!
//! `byte_ranges` makes an input a byte range `[start, end)` of an uncompressed file: the lines that
//! *start* inside it. The run returns, beside `sessions`, the exact partial state a job's merge
//! needs: `visitors` (ip, user agent, day) and `counts` (kind, value, hits).

mod finished;
pub mod format;
mod mapped;
pub mod parse;
pub mod report;
pub mod sessionize;

#[cfg(feature = "python")]
pub(crate) mod python;

use crate::error::{Error, OnError, Problem, Result};
use crate::parallel::{threads_or_default, with_pool};
use crate::progress::{Progress, Share};
use ahash::RandomState;
use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringBuilder, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use hashbrown::{HashMap, HashSet};
use parse::Hit;
use rayon::prelude::*;
use serde::Deserialize;
use sessionize::Cluster;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

fn default_timeout() -> f64 {
    30.0
}
fn default_chunk() -> usize {
    4 << 20
}
fn default_samples() -> usize {
    20
}
fn default_top() -> usize {
    10
}
fn default_assets() -> Vec<String> {
    [
        "css", "js", "png", "jpg", "jpeg", "gif", "ico", "svg", "webp", "woff", "woff2", "ttf",
        "eot", "map", "mp4", "webm",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Options (JSON from Python; unknown keys are an error).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `ip_ua` (default) or `ip`.
    #[serde(default = "default_key")]
    pub session_key: String,
    #[serde(default = "default_timeout")]
    pub timeout_minutes: f64,
    /// Extensions (no dot) of asset requests, which are not pages.
    #[serde(default = "default_assets")]
    pub asset_extensions: Vec<String>,
    /// `auto`, `combined` or `common` (all three: the built-in parser, which recognises both), or a
    /// custom format string ([`format`]).
    #[serde(default = "default_format")]
    pub log_format: String,
    /// For each input, an optional byte range [start, end) of it (a task's slice of a big file).
    #[serde(default)]
    pub byte_ranges: Option<Vec<Option<[u64; 2]>>>,
    #[serde(default)]
    pub threads: usize,
    #[serde(default = "default_chunk")]
    pub chunk_size: usize,
    /// How many unparsed lines to keep as samples.
    #[serde(default = "default_samples")]
    pub unparsed_samples: usize,
    /// Length of the top lists in the summary.
    #[serde(default = "default_top")]
    pub top: usize,
    /// Folder to write sessions.parquet (as the run goes) and summary.json into. The sessions table
    /// is then not returned (it is in the file).
    #[serde(default)]
    pub output_dir: Option<String>,
    /// The Parquet file to write the sessions table to as the run goes, as with `output_dir` but
    /// nothing else is written (a job's task: its table in the job's work folder, no summary.json).
    #[serde(default)]
    pub sessions_file: Option<String>,
    /// Rows per row group of the written file (0: the Parquet writer's default, 1Mi rows). A job's
    /// task files are read back a row group at a time, so they are written in small ones.
    #[serde(default)]
    pub row_group_rows: usize,
    /// Return the `visitors` table (distinct ip, user agent, day): a job's task does, for the merge's
    /// union. Off by default: it holds a string row per visitor and day (1.68M rows, ~145 MB at the
    /// peak of a 5 GB log), where a run needs only their count.
    #[serde(default)]
    pub visitors_table: bool,
    /// Rows per batch of the sessions table (0: `report::BATCH_ROWS`). Not an option: for tests,
    /// so that a small log writes rows during the run.
    #[serde(skip)]
    pub batch_rows: usize,
    #[serde(default)]
    pub on_error: OnError,
}

fn default_key() -> String {
    "ip_ua".into()
}
fn default_format() -> String {
    "auto".into()
}

impl Default for Options {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

pub struct LogSessions {
    pub summary: serde_json::Value,
    pub outputs: Vec<String>,
    pub errors: Vec<Problem>,
    pub schema: arrow::datatypes::SchemaRef,
    pub batches: Vec<arrow::array::RecordBatch>,
    /// Distinct visitors (ip, user_agent, day): the exact state a job's merge unions.
    pub visitors: RecordBatch,
    /// Hits per page, referrer and user agent (kind, value, hits), for an exact merge of top lists.
    pub counts: RecordBatch,
}

/// How lines are parsed.
enum Parser {
    BuiltIn,
    Custom(format::Format),
}

impl Parser {
    #[inline]
    fn parse<'a>(&self, line: &'a [u8], cache: &mut parse::TimeCache) -> Option<Hit<'a>> {
        match self {
            Parser::BuiltIn => parse::parse_line_with(line, cache),
            Parser::Custom(f) => f.parse_with(line, cache),
        }
    }
}

/// A block of whole lines of one input.
struct Block {
    input: usize,
    /// Offset of the block's first byte in the (decompressed) input.
    offset: u64,
    bytes: Bytes,
    len: usize,
}

/// Where a block's bytes are.
enum Bytes {
    /// A recycled buffer: only `[..len]` is the block.
    Buf(Vec<u8>),
    /// A map of an uncompressed local file ([`mapped`]): `[skip..skip + len]` is the block.
    Map(memmap2::Mmap, usize),
}

impl Block {
    fn data(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Buf(v) => &v[..self.len],
            Bytes::Map(m, skip) => &m[*skip..*skip + self.len],
        }
    }
}

/// What one block adds to the run (keys owned, so the block can be dropped).
#[derive(Default)]
struct Part {
    input: usize,
    lines: u64,
    unparsed: u64,
    /// (line number inside the block, 1-based; text)
    samples: Vec<(u64, String)>,
    requests: u64,
    bytes: u64,
    status: BTreeMap<u16, u64>,
    hours: [u64; 24],
    days: BTreeMap<i32, u64>,
    /// Distinct (ip, user agent) pairs of the block; the other fields refer to them by index.
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Hits per pair (user agent counts are summed from these).
    pair_hits: Vec<u64>,
    visitors: Vec<(u32, i32)>,
    /// Paths with their hits; clusters refer to them by index.
    pages: Vec<(Vec<u8>, u64)>,
    referrers: Vec<(Vec<u8>, u64)>,
    /// (pair index, cluster), sorted by session key then start. With `session_key = ip` the pair is
    /// any pair of that IP (its user agent is ignored).
    clusters: Vec<(u32, Cluster)>,
    /// The latest request time of the block (`i64::MIN` when it has none).
    max_ts: i64,
}

struct Ctx<'o> {
    parser: Parser,
    by_ua: bool,
    timeout: i64,
    assets: Vec<Vec<u8>>,
    keep: usize,
    opts: &'o Options,
}

fn owned(m: HashMap<&[u8], u64, RandomState>) -> Vec<(Vec<u8>, u64)> {
    m.into_iter().map(|(k, v)| (k.to_vec(), v)).collect()
}

/// One parsed request as the sessioniser needs it (the text fields are interned to ids).
struct Rec {
    ts: i64,
    seq: u64,
    bytes: u64,
    pid: u32,
    /// Page id, or `u32::MAX` for an asset.
    page: u32,
    status: u16,
}

/// A worker thread's arrays for [`process_block`], kept from block to block: fresh ones cost a
/// page fault per 4 KiB on every block (a tenth of the run's time). The pool's threads end with
/// the run, and their scratch with them.
#[derive(Default)]
struct Scratch {
    recs: Vec<Rec>,
    keys: Vec<u32>,
    order: Vec<u32>,
    bucket: Vec<u32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Parse and reduce one block in a single pass over its lines: each line's fields are interned at
/// once (no per-line record of borrowed fields is kept), and the block's requests are grouped by
/// session key with a counting sort, since keys are dense ids and lines mostly come in time order.
fn process_block(b: &Block, cx: &Ctx) -> Part {
    let data = b.data();
    let mut p = Part {
        input: b.input,
        max_ts: i64::MIN,
        ..Default::default()
    };
    let guess = data.len() / 128 + 16;
    // Intern (ip, user agent) so that sorting and the visitor set compare integers, not bytes.
    let mut pair_ids: HashMap<(&[u8], &[u8]), u32, RandomState> = HashMap::default();
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    // Per pair, the last day put in the visitor set: most repeats are caught without hashing.
    let mut pair_day: Vec<i32> = Vec::new();
    let mut pair_key: Vec<u32> = Vec::new();
    let mut ip_ids: HashMap<&[u8], u32, RandomState> = HashMap::default();
    let mut visitors: HashSet<(u32, i32), RandomState> = HashSet::default();
    let mut page_ids: HashMap<&[u8], u32, RandomState> = HashMap::default();
    let mut pages: Vec<(&[u8], u64)> = Vec::new();
    // Whether a page is an asset, decided once per distinct path.
    let mut page_asset: Vec<bool> = Vec::new();
    let mut refs: HashMap<&[u8], u64, RandomState> = HashMap::default();
    let mut status = [0u64; 1000];
    let mut days: Vec<(i32, u64)> = Vec::new();
    let mut scratch = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let Scratch {
        recs,
        keys,
        order,
        bucket,
    } = &mut scratch;
    recs.clear();
    keys.clear();
    recs.reserve(guess);
    keys.reserve(guess);
    let mut time_cache = parse::TimeCache::default();
    let mut start = 0;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
        let line = &data[start..end];
        let seq = ((b.input as u64) << 40) | (b.offset + start as u64);
        start = end + 1;
        p.lines += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Some(h) = cx.parser.parse(line, &mut time_cache) else {
            p.unparsed += 1;
            if p.samples.len() < cx.keep {
                p.samples.push((
                    p.lines,
                    String::from_utf8_lossy(&line[..line.len().min(500)]).into_owned(),
                ));
            }
            continue;
        };
        let next = pairs.len() as u32;
        let pid = *pair_ids.entry((h.ip, h.user_agent)).or_insert_with(|| {
            pairs.push((h.ip, h.user_agent));
            p.pair_hits.push(0);
            pair_day.push(i32::MIN);
            let key = if cx.by_ua {
                next
            } else {
                let n = ip_ids.len() as u32;
                *ip_ids.entry(h.ip).or_insert(n)
            };
            pair_key.push(key);
            next
        });
        let pi = pid as usize;
        p.pair_hits[pi] += 1;
        // GoAccess's default: 4xx responses do not make a visitor (its --4xx-to-unique-count is off).
        if !(400..500).contains(&h.status) && pair_day[pi] != h.local_day {
            pair_day[pi] = h.local_day;
            visitors.insert((pid, h.local_day));
        }
        let next = pages.len() as u32;
        let page = *page_ids.entry(h.path).or_insert_with(|| {
            pages.push((h.path, 0));
            page_asset.push(sessionize::is_asset(h.path, &cx.assets));
            next
        });
        pages[page as usize].1 += 1;
        let page = if page_asset[page as usize] {
            u32::MAX
        } else {
            page
        };
        if !h.referrer.is_empty() && h.referrer != b"-" {
            *refs.entry(h.referrer).or_insert(0) += 1;
        }
        match status.get_mut(h.status as usize) {
            Some(n) => *n += 1,
            None => *p.status.entry(h.status).or_insert(0) += 1,
        }
        p.hours[h.local_hour as usize % 24] += 1;
        match days.iter_mut().rev().find(|d| d.0 == h.local_day) {
            Some(d) => d.1 += 1,
            None => days.push((h.local_day, 1)),
        }
        p.bytes += h.bytes;
        p.max_ts = p.max_ts.max(h.ts);
        keys.push(pair_key[pi]);
        recs.push(Rec {
            ts: h.ts,
            seq,
            bytes: h.bytes,
            pid,
            page,
            status: h.status,
        });
    }
    p.requests = recs.len() as u64;
    for (code, &n) in status.iter().enumerate() {
        if n > 0 {
            *p.status.entry(code as u16).or_insert(0) += n;
        }
    }
    for (d, n) in days {
        *p.days.entry(d).or_insert(0) += n;
    }
    p.visitors = visitors.into_iter().collect();
    p.pages = pages.into_iter().map(|(k, v)| (k.to_vec(), v)).collect();
    p.referrers = owned(refs);
    // Sessionise the block: group by key (counting sort, stable: input order within a key), then
    // order each key's requests by time where they are not already (a stable sort keeps input
    // order among equal times, as `seq` requires).
    let nkeys = if cx.by_ua { pairs.len() } else { ip_ids.len() };
    // At least a cluster per key: sized once instead of grown (and copied) by doubling.
    p.clusters.reserve(nkeys);
    bucket.clear();
    bucket.resize(nkeys + 1, 0);
    for &k in keys.iter() {
        bucket[k as usize + 1] += 1;
    }
    for i in 1..bucket.len() {
        bucket[i] += bucket[i - 1];
    }
    order.clear();
    order.resize(recs.len(), 0);
    {
        let mut at = bucket.clone();
        for (i, &k) in keys.iter().enumerate() {
            order[at[k as usize] as usize] = i as u32;
            at[k as usize] += 1;
        }
    }
    for k in 0..nkeys {
        let run = &mut order[bucket[k] as usize..bucket[k + 1] as usize];
        if run.is_empty() {
            continue;
        }
        // Most keys' requests come in time order: one pass makes their clusters; a run found out
        // of order is sorted (stable: equal times keep input order, as `seq` requires) and redone.
        if !clusters_in_order(run, recs, cx.timeout, &mut p.clusters) {
            run.sort_by_key(|&i| recs[i as usize].ts);
            clusters_in_order(run, recs, cx.timeout, &mut p.clusters);
        }
    }
    p.pairs = pairs
        .into_iter()
        .map(|(a, b)| (a.to_vec(), b.to_vec()))
        .collect();
    SCRATCH.with(|s| *s.borrow_mut() = scratch);
    p
}

/// Append the clusters of one key's requests `run` (indices into `recs`, in input order) to `out`.
/// False, with nothing appended, when the run is not in time order.
fn clusters_in_order(
    run: &[u32],
    recs: &[Rec],
    timeout: i64,
    out: &mut Vec<(u32, Cluster)>,
) -> bool {
    let from = out.len();
    let mut cur: Option<Cluster> = None;
    let mut last = i64::MIN;
    for &i in run {
        let r = &recs[i as usize];
        if r.ts < last {
            out.truncate(from);
            return false;
        }
        last = r.ts;
        let joins = matches!(&cur, Some(c) if r.ts - c.end <= timeout);
        if !joins {
            if let Some(c) = cur.take() {
                out.push((c.pair, c));
            }
            cur = Some(Cluster::new(r.ts, r.seq, r.pid));
        }
        let c = cur.as_mut().expect("cluster");
        c.add(
            r.ts,
            r.seq,
            r.status,
            r.bytes,
            (r.page != u32::MAX).then_some(r.page),
        );
    }
    if let Some(c) = cur {
        out.push((c.pair, c));
    }
    true
}

/// How far (seconds) a line may lie before the latest line read so far and still find every
/// session it can join open: sessions that ended more than this plus the timeout before the latest
/// line are finished and leave the per-key state. A line later than that still gives the exact
/// result (see [`State::reopen_all`]), at the cost of holding every session from then on.
pub const DISORDER_S: i64 = 3600;

/// One session key's sessions still open, and what was finished.
struct Slot {
    /// The latest end of this key's finished sessions (`i64::MIN`: none).
    closed: i64,
    /// Open clusters, by start, pairwise more than the timeout apart.
    open: Vec<Cluster>,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            closed: i64::MIN,
            open: Vec::new(),
        }
    }
}

/// The run's state: everything but the requests themselves.
#[derive(Default)]
struct State {
    lines: u64,
    unparsed: u64,
    /// Per input: (line number, text) of its first unparsed lines.
    samples: Vec<Vec<(u64, String)>>,
    line_base: Vec<u64>,
    /// Requests per input (index as in `inputs`).
    input_requests: Vec<u64>,
    requests: u64,
    bytes: u64,
    status: BTreeMap<u16, u64>,
    hours: [u64; 24],
    days: BTreeMap<i32, u64>,
    /// Every (ip, user agent) seen, by id.
    pair_ids: HashMap<(Vec<u8>, Vec<u8>), u32, RandomState>,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    pair_hits: Vec<u64>,
    ip_ids: HashMap<Vec<u8>, u32, RandomState>,
    visitors: HashSet<(u32, i32), RandomState>,
    page_ids: HashMap<Vec<u8>, u32, RandomState>,
    /// Every path seen, by id, with its hits.
    pages: Vec<(Vec<u8>, u64)>,
    referrers: HashMap<Vec<u8>, u64, RandomState>,
    /// By session key id (pair id, or IP id; ids are dense).
    sessions: Vec<Slot>,
    /// Finished sessions, waiting for or written into the table.
    done: finished::Finished,
    /// Whether each pair's user agent is a bot's (by pair id), for rows built as the run goes.
    bots: Vec<bool>,
    /// (first open session's start, key) of keys with open sessions, stale entries popped lazily
    /// ([`State::first_open`]): the earliest start a session still open can have. Kept only when
    /// rows are written during the run.
    first_open: BinaryHeap<Reverse<(i64, u32)>>,
    /// The latest request time absorbed from the input being read.
    max_ts: i64,
    /// (end of a key's last open cluster when it was touched, key): the keys to look at when the
    /// frontier passes that end, earliest first.
    due: BinaryHeap<Reverse<(i64, u32)>>,
    /// A line came too late for a finished session: nothing is finished any more.
    hold_all: bool,
    /// A line came that belongs before rows already written: the run must be done again holding
    /// every session ([`run`]).
    redo: bool,
    /// Writing rows failed (the output, not an input): the run stops with it.
    write_error: Option<Error>,
    /// This is the second pass of a run ([`REDONE`]).
    hold_from_start: bool,
}

impl State {
    fn absorb(&mut self, p: Part, cx: &Ctx) {
        let kept = &mut self.samples[p.input];
        let base = self.line_base[p.input];
        for (l, text) in p.samples {
            if kept.len() < cx.keep {
                kept.push((base + l, text));
            }
        }
        self.line_base[p.input] += p.lines;
        self.input_requests[p.input] += p.requests;
        self.lines += p.lines;
        self.unparsed += p.unparsed;
        self.requests += p.requests;
        self.bytes += p.bytes;
        self.max_ts = self.max_ts.max(p.max_ts);
        for (k, v) in p.status {
            *self.status.entry(k).or_insert(0) += v;
        }
        for (a, b) in self.hours.iter_mut().zip(p.hours) {
            *a += b;
        }
        for (k, v) in p.days {
            *self.days.entry(k).or_insert(0) += v;
        }
        let ids: Vec<u32> = p
            .pairs
            .into_iter()
            .zip(p.pair_hits)
            .map(|(pair, n)| {
                let id = match self.pair_ids.get(&pair) {
                    Some(&id) => id,
                    None => {
                        let id = self.pairs.len() as u32;
                        self.bots.push(sessionize::is_bot(&pair.1));
                        self.pairs.push(pair.clone());
                        self.pair_hits.push(0);
                        self.pair_ids.insert(pair, id);
                        id
                    }
                };
                self.pair_hits[id as usize] += n;
                id
            })
            .collect();
        self.visitors.extend(
            p.visitors
                .into_iter()
                .map(|(pid, d)| (ids[pid as usize], d)),
        );
        let page_map: Vec<u32> = p
            .pages
            .into_iter()
            .map(|(k, v)| {
                let id = match self.page_ids.get(&k) {
                    Some(&id) => id,
                    None => {
                        let id = self.pages.len() as u32;
                        self.pages.push((k.clone(), 0));
                        self.page_ids.insert(k, id);
                        id
                    }
                };
                self.pages[id as usize].1 += v;
                id
            })
            .collect();
        for (k, v) in p.referrers {
            match self.referrers.get_mut(&k) {
                Some(c) => *c += v,
                None => {
                    self.referrers.insert(k, v);
                }
            }
        }
        // A part's clusters come in runs of one key, each sorted by start: a run is added to its
        // key's list at once (appended when lines come in time order, else merged in one sweep).
        let mut clusters = p.clusters.into_iter().peekable();
        // One key's clusters at a time, in one buffer for the whole part (not one per key).
        let mut run: Vec<Cluster> = Vec::new();
        while let Some((pid, _)) = clusters.peek() {
            let local = *pid;
            let gid = ids[local as usize];
            let key = if cx.by_ua {
                gid
            } else {
                let ip = &self.pairs[gid as usize].0;
                match self.ip_ids.get(ip) {
                    Some(&k) => k,
                    None => {
                        let k = self.ip_ids.len() as u32;
                        self.ip_ids.insert(ip.clone(), k);
                        k
                    }
                }
            };
            // With `session_key = ip`, one run holds the clusters of every pair of that IP.
            let same_key = |p: u32| {
                cx.by_ua && p == local
                    || !cx.by_ua
                        && self.pairs[ids[p as usize] as usize].0 == self.pairs[gid as usize].0
            };
            run.clear();
            while let Some((pid, mut c)) = clusters.next_if(|(p, _)| same_key(*p)) {
                c.pair = ids[pid as usize];
                if c.entry_page != sessionize::NO_PAGE {
                    c.entry_page = page_map[c.entry_page as usize];
                }
                if c.exit_page != sessionize::NO_PAGE {
                    c.exit_page = page_map[c.exit_page as usize];
                }
                run.push(c);
            }
            if self.sessions.len() <= key as usize {
                self.sessions.resize_with(key as usize + 1, Slot::default);
            }
            // A cluster that starts within the timeout of a finished session may join it.
            let earliest = run.iter().map(|c| c.start).min().unwrap_or(i64::MAX);
            let closed = self.sessions[key as usize].closed;
            // A session of this cluster would start no later than it: before a written row, the
            // file would be wrong.
            if self.done.written_after(earliest) {
                self.redo = true;
                return;
            }
            if closed != i64::MIN && earliest - closed <= cx.timeout {
                self.reopen_all(cx);
                if self.redo {
                    return;
                }
            }
            let slot = &mut self.sessions[key as usize];
            let first = slot.open.first().map(|c| c.start);
            sessionize::add_run(&mut slot.open, run.drain(..), cx.timeout);
            if !self.hold_all {
                let end = slot.open.last().map_or(i64::MIN, |c| c.end);
                self.due.push(Reverse((end, key)));
                let now = slot.open[0].start;
                if self.done.streams() && first != Some(now) {
                    self.first_open.push(Reverse((now, key)));
                }
            }
        }
    }

    /// Write what can be written of the finished sessions: those that start before every open
    /// session and before `frontier` (no line still to come is earlier, but for disorder).
    fn flush(&mut self, frontier: i64) -> Result<()> {
        let names = report::Names {
            pairs: &self.pairs,
            bots: &self.bots,
            pages: &self.pages,
        };
        let (done, sessions, heap) = (&mut self.done, &self.sessions, &mut self.first_open);
        done.flush(
            || {
                while let Some(&Reverse((start, key))) = heap.peek() {
                    if sessions[key as usize].open.first().map(|c| c.start) == Some(start) {
                        return start.min(frontier);
                    }
                    heap.pop();
                }
                frontier
            },
            &names,
        )
    }

    /// The session key of a pair.
    fn key_of(&self, pair: u32, cx: &Ctx) -> u32 {
        if cx.by_ua {
            pair
        } else {
            self.ip_ids[&self.pairs[pair as usize].0]
        }
    }

    /// Finish the sessions that no line at or after `frontier` can join: those that ended more
    /// than the timeout before it. Only keys whose last cluster ended that early are looked at.
    fn finish_before(&mut self, frontier: i64, cx: &Ctx) {
        if self.hold_all {
            return;
        }
        let Some(limit) = frontier.checked_sub(cx.timeout) else {
            return;
        };
        while let Some(&Reverse((end, key))) = self.due.peek() {
            if end >= limit {
                break;
            }
            self.due.pop();
            let slot = &mut self.sessions[key as usize];
            // Ends grow along the list (clusters are by start and do not overlap).
            let n = slot.open.partition_point(|c| c.end < limit);
            if n > 0 {
                slot.closed = slot.closed.max(slot.open[n - 1].end);
                self.done.push(slot.open.drain(..n));
                if slot.open.is_empty() {
                    slot.open = Vec::new();
                } else if self.done.streams() {
                    self.first_open.push(Reverse((slot.open[0].start, key)));
                }
            }
        }
    }

    /// A line came that may join a finished session: put every finished session back into its
    /// key's open list (so the join is exact) and keep everything open from now on.
    /// Rows already written cannot be put back: then the run is to be done again ([`State::redo`]).
    fn reopen_all(&mut self, cx: &Ctx) {
        if self.done.wrote() {
            self.redo = true;
            return;
        }
        self.hold_all = true;
        self.due = BinaryHeap::new();
        self.first_open = BinaryHeap::new();
        let mut done = self.done.take_unwritten();
        let keyed: Vec<u32> = done.iter().map(|c| self.key_of(c.pair, cx)).collect();
        let mut order: Vec<u32> = (0..done.len() as u32).collect();
        order.sort_unstable_by_key(|&i| (keyed[i as usize], done[i as usize].start));
        let mut taken: Vec<Option<Cluster>> = done.drain(..).map(Some).collect();
        let mut at = 0;
        while at < order.len() {
            let key = keyed[order[at] as usize];
            let mut end = at;
            while end < order.len() && keyed[order[end] as usize] == key {
                end += 1;
            }
            let run: Vec<Cluster> = order[at..end]
                .iter()
                .map(|&i| taken[i as usize].take().expect("each once"))
                .collect();
            let slot = &mut self.sessions[key as usize];
            slot.closed = i64::MIN;
            sessionize::add_run(&mut slot.open, run, cx.timeout);
            at = end;
        }
    }
}

/// Reads one input as blocks of whole lines, optionally only the lines starting in a byte range.
/// Buffers are recycled (no page faults on fresh memory per block) and never zeroed again.
struct BlockReader {
    input: usize,
    /// An uncompressed local file no one is writing to is mapped block by block instead (no copy
    /// out of the page cache; `mapped::settled` says why not a live one).
    mapped: Option<mapped::Mapped>,
    reader: Box<dyn Read + Send>,
    /// Compressed bytes read so far (a whole compressed input; None: the blocks are the bytes).
    raw: Option<Arc<AtomicU64>>,
    /// Offset in the input of `buf[0]`.
    buf_off: u64,
    buf: Vec<u8>,
    filled: usize,
    free: Vec<Vec<u8>>,
    /// Lines starting at or after this offset are not ours.
    end: u64,
    /// Drop bytes up to the first newline first (a range not starting at 0).
    skip_first: bool,
    eof: bool,
    block: usize,
}

impl BlockReader {
    fn open(input: usize, path: &Path, range: Option<[u64; 2]>, block: usize) -> Result<Self> {
        if crate::io::can_map(path) && mapped::settled(path) {
            return Ok(BlockReader {
                input,
                mapped: Some(mapped::Mapped::open(path, range, block)?),
                reader: Box::new(std::io::empty()),
                raw: None,
                buf_off: 0,
                buf: Vec::new(),
                filled: 0,
                free: Vec::new(),
                end: u64::MAX,
                skip_first: false,
                eof: false,
                block,
            });
        }
        let mut raw = None;
        let (reader, buf_off, end, skip_first): (Box<dyn Read + Send>, u64, u64, bool) = match range
        {
            None if crate::io::Compression::of(path) != crate::io::Compression::None => {
                let (r, n) = crate::io::open_input_counted(path)?;
                raw = Some(n);
                (r, 0, u64::MAX, false)
            }
            None => (crate::io::open_input(path)?, 0, u64::MAX, false),
            Some([s, e]) => {
                if crate::io::Compression::of(path) != crate::io::Compression::None {
                    return Err(Error::options(
                        "log-sessions: byte ranges need an uncompressed input",
                    ));
                }
                // Byte s-1 tells whether a line starts at s.
                let from = s.saturating_sub(1);
                (crate::io::open_at(path, from)?, from, e, s > 0)
            }
        };
        let block = block.max(1);
        Ok(BlockReader {
            input,
            mapped: None,
            reader,
            raw,
            buf_off,
            buf: vec![0; block + block / 4 + 64],
            filled: 0,
            free: Vec::new(),
            end,
            skip_first,
            eof: false,
            block,
        })
    }

    /// Read until the buffer is full (growing it when one line does not fit) or the input ends.
    fn fill(&mut self, path: &Path) -> Result<()> {
        if self.filled == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        while self.filled < self.buf.len() {
            match self.reader.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => self.filled += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        Ok(())
    }

    /// The first `n` filled bytes as a block; the rest moves to a recycled buffer.
    fn consume(&mut self, n: usize) -> Block {
        let size = self.buf.len();
        let mut next = self
            .free
            .pop()
            .filter(|b| b.len() == size)
            .unwrap_or_else(|| vec![0; size]);
        next[..self.filled - n].copy_from_slice(&self.buf[n..self.filled]);
        let data = std::mem::replace(&mut self.buf, next);
        self.filled -= n;
        let b = Block {
            input: self.input,
            offset: self.buf_off,
            bytes: Bytes::Buf(data),
            len: n,
        };
        self.buf_off += n as u64;
        b
    }

    fn drop_front(&mut self, n: usize) {
        self.buf.copy_within(n..self.filled, 0);
        self.filled -= n;
        self.buf_off += n as u64;
    }

    fn recycle(&mut self, blocks: Vec<Block>) {
        for b in blocks {
            if let Bytes::Buf(data) = b.bytes {
                if self.free.len() < 8 && data.len() == self.buf.len() {
                    self.free.push(data);
                }
            }
        }
    }

    /// The next block, or None at the end.
    fn next_block(&mut self, path: &Path) -> Result<Option<Block>> {
        if let Some(m) = &mut self.mapped {
            return Ok(m.next_block(path)?.map(|b| Block {
                input: self.input,
                offset: b.offset,
                bytes: Bytes::Map(b.map, b.skip),
                len: b.len,
            }));
        }
        loop {
            if self.filled == 0 && self.eof {
                return Ok(None);
            }
            if self.skip_first {
                match memchr::memchr(b'\n', &self.buf[..self.filled]) {
                    Some(i) => {
                        self.drop_front(i + 1);
                        self.skip_first = false;
                    }
                    None if self.eof => {
                        self.filled = 0;
                        return Ok(None);
                    }
                    None => {
                        let n = self.filled;
                        self.drop_front(n);
                        self.fill(path)?;
                        continue;
                    }
                }
            }
            if self.buf_off >= self.end {
                self.filled = 0;
                self.eof = true;
                return Ok(None);
            }
            // Range end: the line holding byte end-1 is the last one that is ours.
            if self.end != u64::MAX && self.buf_off + self.filled as u64 >= self.end {
                let from = (self.end - 1 - self.buf_off) as usize;
                match memchr::memchr(b'\n', &self.buf[from..self.filled]) {
                    Some(i) => {
                        let b = self.consume(from + i + 1);
                        self.filled = 0;
                        self.eof = true;
                        return Ok(Some(b));
                    }
                    None if self.eof => {
                        let n = self.filled;
                        return Ok(Some(self.consume(n)));
                    }
                    None => {
                        self.fill(path)?;
                        continue;
                    }
                }
            }
            if self.filled >= self.block || self.eof {
                if self.eof {
                    let n = self.filled;
                    return Ok(Some(self.consume(n)));
                }
                if let Some(i) = memchr::memrchr(b'\n', &self.buf[..self.filled]) {
                    return Ok(Some(self.consume(i + 1)));
                }
            }
            self.fill(path)?;
        }
    }
}

/// What the result says when the run was done twice.
const REDONE: &str = "a line came more than an hour (DISORDER_S) later than lines after it and \
    belongs with sessions already written to sessions.parquet: the run was done again holding \
    every session until the end (the inputs were read twice)";

/// Parse, sessionise and summarise `inputs`. With `output_dir`, sessions.parquet is written as the
/// run goes ([`finished`]); should a line come that belongs before rows already written, the run is
/// done again holding every session, and the summary's `notes` say so.
pub fn run(inputs: &[String], opts: &Options, progress: &Progress) -> Result<LogSessions> {
    if let Some(r) = run_once(inputs, opts, progress, false)? {
        return Ok(r);
    }
    Ok(run_once(inputs, opts, progress, true)?
        .expect("holding every session, nothing is written before the end"))
}

/// Where the sessions are written as the run goes: `output_dir`'s sessions.parquet, or
/// `sessions_file`; None: the table is returned.
fn sessions_path(opts: &Options) -> Result<Option<std::path::PathBuf>> {
    match (&opts.output_dir, &opts.sessions_file) {
        (Some(_), Some(_)) => Err(Error::options(
            "log-sessions: give output_dir or sessions_file, not both",
        )),
        (Some(dir), None) => Ok(Some(Path::new(dir).join("sessions.parquet"))),
        (None, Some(file)) => Ok(Some(file.into())),
        (None, None) => Ok(None),
    }
}

/// One pass over the inputs; None when a late line belongs before rows already written.
/// `hold`: finish nothing before the end (the second pass; its summary has `notes`).
fn run_once(
    inputs: &[String],
    opts: &Options,
    progress: &Progress,
    hold: bool,
) -> Result<Option<LogSessions>> {
    let by_ua = match opts.session_key.as_str() {
        "ip_ua" => true,
        "ip" => false,
        k => {
            return Err(Error::options(format!(
                "log-sessions: session_key must be ip_ua or ip, not {k:?}"
            )))
        }
    };
    let parser = match opts.log_format.to_ascii_lowercase().as_str() {
        "auto" | "combined" | "common" => Parser::BuiltIn,
        _ if opts.log_format.contains(['%', '$']) => {
            Parser::Custom(format::Format::compile(&opts.log_format)?)
        }
        _ => {
            return Err(Error::options(format!(
                "log-sessions: log_format {:?} is not auto, combined, common or a format string \
                 (%h ... GoAccess style or $remote_addr ... nginx style)",
                opts.log_format
            )))
        }
    };
    if let Some(r) = &opts.byte_ranges {
        if r.len() != inputs.len() {
            return Err(Error::options(
                "log-sessions: byte_ranges must have one entry per input",
            ));
        }
    }
    let cx = Ctx {
        parser,
        by_ua,
        timeout: (opts.timeout_minutes * 60.0).round() as i64,
        assets: opts
            .asset_extensions
            .iter()
            .map(|e| e.trim_start_matches('.').to_ascii_lowercase().into_bytes())
            .collect(),
        keep: opts.unparsed_samples,
        opts,
    };
    // Each input's share of the byte progress: its size, or its byte range's length.
    let shares: Vec<u64> = inputs
        .iter()
        .enumerate()
        .map(|(i, p)| match range_of(&cx, i) {
            Some([s, e]) => e.saturating_sub(s),
            None => crate::io::file_size(Path::new(p)).unwrap_or(0),
        })
        .collect();
    let sizes: u64 = shares.iter().sum();
    // A second pass reads everything again: the totals count both.
    let passes = if hold { 2 } else { 1 };
    progress.set_totals(inputs.len() as u64 * passes, sizes * passes);
    let threads = threads_or_default(opts.threads);
    let mut errors: Vec<(usize, Problem)> = Vec::new();
    let mut state = State {
        samples: vec![Vec::new(); inputs.len()],
        line_base: vec![0; inputs.len()],
        input_requests: vec![0; inputs.len()],
        max_ts: i64::MIN,
        hold_all: hold,
        hold_from_start: hold,
        done: match sessions_path(opts)? {
            Some(file) => {
                finished::Finished::to_parquet(&file, opts.batch_rows, opts.row_group_rows)?
            }
            None => finished::Finished::in_memory(opts.batch_rows),
        },
        ..Default::default()
    };
    // Inputs are read in the order of their first request's time (rotated files come newest
    // first from a glob), so that finished sessions can leave the state as the run goes.
    let firsts: Vec<Option<i64>> = if inputs.len() > 1 {
        inputs
            .iter()
            .enumerate()
            .map(|(i, p)| first_time(Path::new(p), range_of(&cx, i), &cx))
            .collect()
    } else {
        vec![None; inputs.len()]
    };
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by_key(|&i| (firsts[i], i));
    with_pool(threads, || {
        // Blocks in flight: one batch being parsed, one being read.
        let batch = threads.max(1) * 2;
        for (at, &i) in order.iter().enumerate() {
            if state.redo || state.write_error.is_some() {
                break;
            }
            let p = &inputs[i];
            progress.check()?;
            progress.set_current(p);
            let path = Path::new(p);
            let range = range_of(&cx, i);
            // No later input starts (much) before this.
            let cap = order[at + 1..]
                .iter()
                .filter_map(|&j| firsts[j])
                .min()
                .unwrap_or(i64::MAX);
            // Lines to come are of this input (not before its latest line so far, but for
            // disorder) and of later inputs.
            state.max_ts = i64::MIN;
            let share = Share::new(progress, shares[i]);
            let res = (|| -> Result<()> {
                let mut reader = BlockReader::open(i, path, range, cx.opts.chunk_size)?;
                // A compressed input counts what was read from disk, not what it decompressed to.
                let raw = reader.raw.clone();
                let mut raw_seen = 0;
                let read_batch = |r: &mut BlockReader| -> Result<Vec<Block>> {
                    let mut v = Vec::with_capacity(batch);
                    while v.len() < batch {
                        match r.next_block(path)? {
                            Some(b) => v.push(b),
                            None => break,
                        }
                    }
                    Ok(v)
                };
                let absorb = |state: &mut State, parts: Vec<Part>| {
                    for part in parts {
                        if state.redo {
                            return;
                        }
                        state.absorb(part, &cx);
                    }
                    if state.max_ts != i64::MIN && !state.redo {
                        let frontier = state.max_ts.min(cap).saturating_sub(DISORDER_S);
                        state.finish_before(frontier, &cx);
                        if let Err(e) = state.flush(frontier) {
                            state.write_error = Some(e);
                        }
                    }
                };
                let mut next = read_batch(&mut reader)?;
                // Three stages overlap: parsing this batch (all threads), and, on the side, merging
                // the previous batch's parts into the state and reading the next batch.
                let mut pending: Vec<Part> = Vec::new();
                while !next.is_empty() {
                    progress.check()?;
                    let blocks = next;
                    let done = std::mem::take(&mut pending);
                    let (more, parts) = rayon::join(
                        || {
                            absorb(&mut state, done);
                            read_batch(&mut reader)
                        },
                        || {
                            blocks
                                .par_iter()
                                .map(|b| {
                                    let p = process_block(b, &cx);
                                    if raw.is_none() {
                                        share.add(b.len as u64);
                                    }
                                    progress.add_rows(p.requests);
                                    p
                                })
                                .collect::<Vec<Part>>()
                        },
                    );
                    pending = parts;
                    next = more?;
                    if state.redo || state.write_error.is_some() {
                        return Ok(());
                    }
                    reader.recycle(blocks);
                    if let Some(n) = &raw {
                        let now = n.load(Relaxed);
                        share.add(now.saturating_sub(raw_seen));
                        raw_seen = now;
                    }
                }
                absorb(&mut state, pending);
                Ok(())
            })();
            match res {
                Ok(()) => {}
                Err(e) if e.is_cancelled() || cx.opts.on_error == OnError::Fail => return Err(e),
                Err(e) if e.kind == crate::error::ErrorKind::Options => return Err(e),
                Err(e) => {
                    progress.add_error();
                    errors.push((i, e.with_path(p).to_problem()));
                }
            }
            if let Some(e) = state.write_error.take() {
                return Err(e);
            }
            share.finish();
            progress.input_done();
        }
        progress.check()?;
        if state.redo {
            return Ok(None);
        }
        errors.sort_by_key(|e| e.0);
        // In the run's pool: the table is sorted and built in parallel, and no rayon call falls
        // through to the global pool (which a forked RQ work horse cannot use).
        finish(
            inputs,
            state,
            errors.into_iter().map(|e| e.1).collect(),
            &cx,
        )
        .map(Some)
    })
}

fn range_of(cx: &Ctx, i: usize) -> Option<[u64; 2]> {
    cx.opts.byte_ranges.as_ref().and_then(|r| r[i])
}

/// The time of the first request in the first 64 KiB of an input (or its byte range), if any.
fn first_time(path: &Path, range: Option<[u64; 2]>, cx: &Ctx) -> Option<i64> {
    let mut reader = BlockReader::open(0, path, range, 64 << 10).ok()?;
    let block = reader.next_block(path).ok()??;
    let mut cache = parse::TimeCache::default();
    block
        .data()
        .split(|&b| b == b'\n')
        .find_map(|l| cx.parser.parse(l, &mut cache).map(|h| h.ts))
}

fn finish(
    inputs: &[String],
    mut state: State,
    errors: Vec<Problem>,
    cx: &Ctx,
) -> Result<LogSessions> {
    let opts = cx.opts;
    let mut samples = Vec::new();
    'inputs: for (i, kept) in state.samples.iter().enumerate() {
        let mut base = None;
        for (line, text) in kept {
            if samples.len() >= cx.keep {
                break 'inputs;
            }
            let base = match base {
                Some(b) => b,
                None => {
                    // The range's first line starts just after the first newline at or after
                    // byte range_start - 1.
                    let range_start = range_of(cx, i).map_or(0, |r| r[0]);
                    let b = if range_start == 0 {
                        0
                    } else {
                        crate::io::newlines_before(Path::new(&inputs[i]), range_start - 1)? + 1
                    };
                    *base.insert(b)
                }
            };
            samples.push(serde_json::json!({"file": inputs[i], "line": base + line, "text": text}));
        }
    }
    let mut open: Vec<Cluster> =
        Vec::with_capacity(state.sessions.iter().map(|s| s.open.len()).sum());
    for slot in std::mem::take(&mut state.sessions) {
        open.extend(slot.open);
    }
    let failed: HashSet<String, RandomState> = errors.iter().map(|e| e.path.clone()).collect();
    let mut per_file = serde_json::Map::new();
    for (path, n) in inputs.iter().zip(&state.input_requests) {
        if !failed.contains(path) {
            let total = per_file.get(path).and_then(|v| v.as_u64()).unwrap_or(0) + n;
            per_file.insert(path.clone(), serde_json::json!(total));
        }
    }
    // The rest of the sessions into the table (all of them without a file), built in parallel
    // beside the visitors and counts tables.
    let done = std::mem::take(&mut state.done);
    let names = report::Names {
        pairs: &state.pairs,
        bots: &state.bots,
        pages: &state.pages,
    };
    let (closed, others) = rayon::join(
        || done.close(open, &names),
        || -> Result<_> {
            Ok((
                visitors_batch(&state, opts.visitors_table)?,
                counts_batch(&state)?,
            ))
        },
    );
    let ((schema, batches, figures, written), (visitors, counts)) = (closed?, others?);
    let mut summary = figures.to_json();
    let obj = summary.as_object_mut().expect("object");
    if state.hold_from_start {
        obj.insert("notes".into(), serde_json::json!([REDONE]));
    }
    let extra = serde_json::json!({
        "requests": state.requests,
        "bytes": state.bytes,
        "unique_visitors": state.visitors.len(),
        "top_pages": report::top(&pages_map(&state), opts.top),
        "top_referrers": report::top(&state.referrers, opts.top),
        "top_user_agents": report::top(&user_agents(&state), opts.top),
        "status_codes": state.status.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
        "hits_per_hour": state.hours.to_vec(),
        "hits_per_day": state.days.iter().map(|(k, v)| (report::civil(*k as i64), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
        "unparsed_lines": state.unparsed,
        "lines": state.lines,
        "unparsed_samples": samples,
        // Files, not inputs: byte ranges of one file (a job's tasks) are one file.
        "files": per_file.len(),
        "per_file": per_file,
    });
    for (k, v) in extra.as_object().expect("object") {
        obj.insert(k.clone(), v.clone());
    }
    let mut outputs = Vec::new();
    if let (Some(dir), Some(written)) = (&opts.output_dir, written) {
        outputs.push(written.display().to_string());
        let json =
            serde_json::to_vec_pretty(&summary).map_err(|e| Error::internal(e.to_string()))?;
        outputs.push(
            crate::io::write_atomic(&Path::new(dir).join("summary.json"), &json)?
                .display()
                .to_string(),
        );
    }
    Ok(LogSessions {
        summary,
        outputs,
        errors,
        schema,
        batches,
        visitors,
        counts,
    })
}

fn pages_map(s: &State) -> HashMap<Vec<u8>, u64, RandomState> {
    s.pages.iter().cloned().collect()
}

/// Hits per user agent, summed over (ip, user agent) pairs.
fn user_agents(s: &State) -> HashMap<Vec<u8>, u64, RandomState> {
    let mut m: HashMap<Vec<u8>, u64, RandomState> = HashMap::default();
    for ((_, ua), n) in s.pairs.iter().zip(&s.pair_hits) {
        match m.get_mut(ua) {
            Some(c) => *c += n,
            None => {
                m.insert(ua.clone(), *n);
            }
        }
    }
    m
}

fn text_col<'a>(v: impl Iterator<Item = &'a [u8]>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for x in v {
        b.append_value(String::from_utf8_lossy(x));
    }
    Arc::new(b.finish())
}

/// The distinct visitors (ip, user_agent, day as days since the epoch): a job merges tasks' sets.
/// Without `all` (`Options::visitors_table` off) none of them: the table's columns only.
fn visitors_batch(s: &State, all: bool) -> Result<RecordBatch> {
    let v: Vec<(&[u8], &[u8], i32)> = s
        .visitors
        .iter()
        .take(if all { usize::MAX } else { 0 }) // without `all`, no row is visited
        .map(|&(id, d)| {
            let (ip, ua) = &s.pairs[id as usize];
            (ip.as_slice(), ua.as_slice(), d)
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("ip", DataType::Utf8, false),
        Field::new("user_agent", DataType::Utf8, false),
        Field::new("day", DataType::Int32, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        text_col(v.iter().map(|x| x.0)),
        text_col(v.iter().map(|x| x.1)),
        Arc::new(Int32Array::from_iter_values(v.iter().map(|x| x.2))),
    ];
    Ok(RecordBatch::try_new(schema, cols)?)
}

/// Every page, referrer and user agent with its hits (`kind`: page, referrer, user_agent).
fn counts_batch(s: &State) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
        Field::new("hits", DataType::UInt64, false),
    ]));
    let uas = user_agents(s);
    let pages = pages_map(s);
    let all: Vec<(&str, &[u8], u64)> = [
        ("page", &pages),
        ("referrer", &s.referrers),
        ("user_agent", &uas),
    ]
    .into_iter()
    .flat_map(|(k, m)| m.iter().map(move |(v, c)| (k, v.as_slice(), *c)))
    .collect();
    let mut kind = StringBuilder::new();
    for x in &all {
        kind.append_value(x.0);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(kind.finish()),
        text_col(all.iter().map(|x| x.1)),
        Arc::new(UInt64Array::from_iter_values(all.iter().map(|x| x.2))),
    ];
    Ok(RecordBatch::try_new(schema, cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: usize) -> String {
        let mut s = String::new();
        for i in 0..n {
            let ip = i % 7;
            let t = i * 97 % 4000;
            let (m, sec) = (t / 60, t % 60);
            if i % 13 == 5 {
                s.push_str("not a log line\n");
                continue;
            }
            s.push_str(&format!(
                "10.0.0.{ip} - - [01/Jan/2024:10:{:02}:{sec:02} +0000] \"GET /p{} HTTP/1.1\" 200 {i} \"-\" \"ua{}\"\n",
                m % 60,
                i % 5,
                i % 3
            ));
        }
        s
    }

    fn summary(path: &str, ranges: Option<Vec<Option<[u64; 2]>>>, n: usize) -> serde_json::Value {
        let opts = Options {
            byte_ranges: ranges,
            chunk_size: 100,
            ..Default::default()
        };
        run(&vec![path.to_string(); n], &opts, &Progress::new())
            .unwrap()
            .summary
    }

    #[test]
    fn byte_ranges_cover_every_line_once_wherever_they_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let text = log(400);
        std::fs::write(&p, &text).unwrap();
        let path = p.display().to_string();
        // First as a live file (read through buffers), then settled (mapped block by block): both
        // reading paths give the whole file's figures, wherever the ranges cut.
        let whole = summary(&path, None, 1);
        for settled in [false, true] {
            if settled {
                let f = std::fs::File::options().write(true).open(&p).unwrap();
                let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
                f.set_modified(old).unwrap();
                assert_eq!(summary(&path, None, 1), whole);
            }
            assert_eq!(mapped::settled(&p), settled);
            check_ranges(&path, text.len() as u64, &whole);
        }
    }

    /// Byte ranges of `path` (of `len` bytes) at several cuts give `whole`'s figures.
    fn check_ranges(path: &str, len: u64, whole: &serde_json::Value) {
        for cuts in [
            vec![1],
            vec![len / 3, len / 2],
            vec![57, 58, 59, 200, len - 1],
        ] {
            let mut bounds = vec![0];
            bounds.extend(cuts);
            bounds.push(len);
            let ranges: Vec<Option<[u64; 2]>> =
                bounds.windows(2).map(|w| Some([w[0], w[1]])).collect();
            let n = ranges.len();
            let s = summary(path, Some(ranges), n);
            for k in [
                "requests",
                "bytes",
                "lines",
                "unparsed_lines",
                "unique_visitors",
            ] {
                assert_eq!(s[k], whole[k], "{k}");
            }
            assert_eq!(s["files"], 1);
            assert_eq!(s["per_file"][path], whole["requests"]);
            // The same lines are sampled, with their true line numbers.
            assert_eq!(s["unparsed_samples"], whole["unparsed_samples"]);
        }
    }

    #[test]
    fn progress_counts_on_disk_bytes_once() {
        // Byte ranges of one file add up to the file; a .gz input counts its compressed size.
        let dir = tempfile::tempdir().unwrap();
        let text = log(3000);
        let p = dir.path().join("a.log");
        std::fs::write(&p, &text).unwrap();
        let gz = dir.path().join("b.log.gz");
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut e, text.as_bytes()).unwrap();
        e.finish().unwrap();
        let len = text.len() as u64;
        let gz_len = std::fs::metadata(&gz).unwrap().len();
        assert!(gz_len * 4 < len);
        let path = p.display().to_string();
        let progress = Progress::new();
        let opts = Options {
            byte_ranges: Some(vec![Some([0, len / 3]), Some([len / 3, len]), None]),
            chunk_size: 1000,
            ..Default::default()
        };
        run(
            &[path.clone(), path, gz.display().to_string()],
            &opts,
            &progress,
        )
        .unwrap();
        let s = progress.snapshot();
        assert_eq!(s.bytes_total, len + gz_len);
        assert_eq!(s.bytes_done, len + gz_len);
    }

    #[test]
    fn custom_format_and_bad_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(
            &p,
            "2024-01-01T10:00:00Z 1.2.3.4 GET /a 200 10\n2024-01-01T10:05:00Z 1.2.3.4 GET /b.css 200 5\nbad\n",
        )
        .unwrap();
        let opts = Options {
            log_format:
                "$time_iso8601 $remote_addr $request_method $request_uri $status $body_bytes_sent"
                    .into(),
            ..Default::default()
        };
        let r = run(&[p.display().to_string()], &opts, &Progress::new()).unwrap();
        assert_eq!(r.summary["requests"], 2);
        assert_eq!(r.summary["sessions"], 1);
        assert_eq!(r.summary["pages_per_session"], 1.0);
        assert_eq!(r.summary["unparsed_lines"], 1);
        let bad = Options {
            log_format: "%s %b".into(),
            ..Default::default()
        };
        let e = run(&[p.display().to_string()], &bad, &Progress::new())
            .err()
            .unwrap();
        assert_eq!(e.kind, crate::error::ErrorKind::Options);
    }
    /// Run on `text` written to a file in `dir` (the same path each time: it is in the summary).
    fn run_on(dir: &tempfile::TempDir, text: &str, opts: Options) -> LogSessions {
        let p = dir.path().join("a.log");
        std::fs::write(&p, text).unwrap();
        run(&[p.display().to_string()], &opts, &Progress::new()).unwrap()
    }

    #[test]
    fn blocks_that_go_back_in_time_equal_one_block() {
        // The same lines twice, the second time in reverse: each small block of the second half
        // goes back in time and is merged into the middle of its keys' session lists.
        let mut text = log(600);
        for l in log(600).lines().rev() {
            text.push_str(l);
            text.push('\n');
        }
        let dir = tempfile::tempdir().unwrap();
        for key in ["ip_ua", "ip"] {
            let one = run_on(
                &dir,
                &text,
                Options {
                    session_key: key.into(),
                    timeout_minutes: 1.0,
                    ..Default::default()
                },
            );
            let small = run_on(
                &dir,
                &text,
                Options {
                    session_key: key.into(),
                    timeout_minutes: 1.0,
                    chunk_size: 300,
                    threads: 2,
                    ..Default::default()
                },
            );
            assert_eq!(small.summary, one.summary, "{key}");
            assert_eq!(small.batches, one.batches, "{key}");
            assert!(one.summary["sessions"].as_u64().unwrap() > 20, "{key}");
        }
    }

    /// Lines of 5 clients over `hours` hours from `from_s` (seconds after 2024-01-01 00:00),
    /// a request every `step` seconds, the client drawn by a fixed rule.
    fn long_log(from_s: u64, hours: u64, step: u64) -> String {
        let mut s = String::new();
        let mut t = from_s;
        let mut i = 0u64;
        while t < from_s + hours * 3600 {
            let (d, h, m, sec) = (1 + t / 86400, t / 3600 % 24, t / 60 % 60, t % 60);
            let ip = (i * 7 + i / 11) % 5;
            s.push_str(&format!(
                "10.0.0.{ip} - - [{d:02}/Jan/2024:{h:02}:{m:02}:{sec:02} +0000] \"GET /p{} HTTP/1.1\" 200 {i} \"-\" \"ua\"\n",
                i % 4
            ));
            // Gaps longer than the timeout now and then, so sessions end all along the log.
            t += if i % 50 == 49 { 3000 } else { step };
            i += 1;
        }
        s
    }

    #[test]
    fn finished_sessions_and_late_lines_equal_one_block() {
        // Sessions finish as the run goes (small blocks, days of log); then lines come that are
        // hours older than what was read (beyond DISORDER_S) and join finished sessions: the result
        // is still that of one block holding everything.
        let dir = tempfile::tempdir().unwrap();
        let base = long_log(0, 72, 40);
        let late = long_log(20 * 3600, 3, 45);
        let texts = [base.clone(), format!("{base}{late}"), {
            let (a, b) = base.split_at(base.len() / 2);
            let cut = a.rfind('\n').unwrap() + 1;
            format!("{}{late}{}{}", &a[..cut], &a[cut..], b)
        }];
        for text in texts {
            for key in ["ip_ua", "ip"] {
                let opts = |chunk: usize| Options {
                    session_key: key.into(),
                    chunk_size: chunk,
                    threads: 2,
                    ..Default::default()
                };
                let one = run_on(&dir, &text, opts(1 << 22));
                let small = run_on(&dir, &text, opts(2000));
                assert_eq!(small.summary, one.summary, "{key}");
                assert_eq!(small.batches, one.batches, "{key}");
                assert!(one.summary["sessions"].as_u64().unwrap() > 100, "{key}");
            }
        }
    }

    /// Run with `output_dir` (rows written as the run goes, `rows` a batch) and read the file back:
    /// (result, the file's columns, the folder's file names).
    fn run_to_file(
        dir: &tempfile::TempDir,
        text: &str,
        opts: Options,
    ) -> (LogSessions, Vec<ArrayRef>, Vec<String>) {
        let out = dir.path().join("out");
        let r = run_on(
            dir,
            text,
            Options {
                output_dir: Some(out.display().to_string()),
                ..opts
            },
        );
        let batches = read_parquet(&out.join("sessions.parquet"));
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        (r, columns(&batches), names)
    }

    fn read_parquet(path: &std::path::Path) -> Vec<RecordBatch> {
        let f = std::fs::File::open(path).unwrap();
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap())
            .collect()
    }

    /// The columns of `batches` as one batch of the table's types (the file stores times in
    /// milliseconds, and arrow-rs reads them so).
    fn columns(batches: &[RecordBatch]) -> Vec<ArrayRef> {
        let schema = report::schema();
        let cast: Vec<RecordBatch> = batches
            .iter()
            .map(|b| {
                let cols = b
                    .columns()
                    .iter()
                    .zip(schema.fields())
                    .map(|(c, f)| arrow::compute::cast(c, f.data_type()).unwrap())
                    .collect();
                RecordBatch::try_new(schema.clone(), cols).unwrap()
            })
            .collect();
        arrow::compute::concat_batches(&schema, &cast)
            .unwrap()
            .columns()
            .to_vec()
    }

    #[test]
    fn streamed_file_equals_the_table_and_late_lines_redo_the_run() {
        // Days of log in small blocks and batches of 7 rows: rows are written as the run goes.
        // Lines hours older than what was read (beyond DISORDER_S) that join or precede written
        // rows make the run start again holding every session: the file is still the table of the
        // exact in-memory run, and the summary (and summary.json) says what happened.
        let dir = tempfile::tempdir().unwrap();
        let base = long_log(0, 72, 40);
        let late = long_log(20 * 3600, 3, 45);
        let (a, b) = base.split_at(base.len() / 2);
        let cut = a.rfind('\n').unwrap() + 1;
        let texts = [
            (base.clone(), false),
            (format!("{base}{late}"), true),
            (format!("{}{late}{}{}", &a[..cut], &a[cut..], b), true),
        ];
        for (text, late) in texts {
            for key in ["ip_ua", "ip"] {
                let opts = |chunk: usize| Options {
                    session_key: key.into(),
                    chunk_size: chunk,
                    threads: 2,
                    batch_rows: 7,
                    ..Default::default()
                };
                let table = run_on(&dir, &text, opts(1 << 22));
                let (r, file, names) = run_to_file(&dir, &text, opts(2000));
                assert_eq!(file, columns(&table.batches), "{key}");
                assert!(r.batches.is_empty());
                assert_eq!(names, ["sessions.parquet", "summary.json"]);
                let mut summary = r.summary.clone();
                let notes = summary.as_object_mut().unwrap().remove("notes");
                assert_eq!(notes.is_some(), late, "{key}");
                assert_eq!(summary, table.summary, "{key}");
                let written: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(dir.path().join("out/summary.json")).unwrap(),
                )
                .unwrap();
                assert_eq!(written, r.summary);
                assert!(table.summary["sessions"].as_u64().unwrap() > 100, "{key}");
            }
        }
    }

    #[test]
    fn a_failed_run_leaves_nothing_at_the_destination() {
        // Rows are written from the first input on; the second is missing and the run stops
        // (on_error = fail): no sessions.parquet (the old one stays), no temporary file.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, long_log(0, 72, 40)).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("sessions.parquet"), "old").unwrap();
        let opts = Options {
            output_dir: Some(out.display().to_string()),
            on_error: OnError::Fail,
            chunk_size: 2000,
            batch_rows: 7,
            ..Default::default()
        };
        let inputs = [
            p.display().to_string(),
            dir.path().join("missing.log").display().to_string(),
        ];
        assert!(run(&inputs, &opts, &Progress::new()).is_err());
        let names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["sessions.parquet"]);
        assert_eq!(std::fs::read(out.join("sessions.parquet")).unwrap(), b"old");
        // Cancelled: the same.
        let progress = Progress::new();
        progress.cancel();
        assert!(run(&inputs[..1], &opts, &progress).is_err());
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    }

    #[test]
    fn rotated_files_in_any_order_equal_one_file() {
        // Three rotated files named newest first (as a glob lists them), and two servers' logs of
        // the same hours: read in time order, the result is that of one file with every line.
        let dir = tempfile::tempdir().unwrap();
        let parts = [
            long_log(48 * 3600, 24, 40),
            long_log(24 * 3600, 24, 40),
            long_log(0, 24, 40),
        ];
        let overlap = long_log(30 * 3600, 10, 33);
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        };
        let files: Vec<String> = parts
            .iter()
            .enumerate()
            .map(|(i, t)| write(&format!("access.log.{i}"), t))
            .chain([write("other.log", &overlap)])
            .collect();
        let opts = Options {
            chunk_size: 3000,
            threads: 2,
            ..Default::default()
        };
        let many = run(&files, &opts, &Progress::new()).unwrap();
        let all: String = [&parts[2], &parts[1], &parts[0], &overlap]
            .iter()
            .map(|s| s.as_str())
            .collect();
        let one = run(
            &[write("all.log", &all)],
            &Options {
                chunk_size: 1 << 22,
                ..Default::default()
            },
            &Progress::new(),
        )
        .unwrap();
        assert_eq!(many.batches, one.batches);
        // Written as the run goes (batches of 7 rows): the same rows, no second pass.
        let out = dir.path().join("out");
        let streamed = Options {
            output_dir: Some(out.display().to_string()),
            batch_rows: 7,
            ..opts.clone()
        };
        let r = run(&files, &streamed, &Progress::new()).unwrap();
        assert!(r.summary.get("notes").is_none());
        let file = read_parquet(&out.join("sessions.parquet"));
        assert_eq!(columns(&file), columns(&one.batches));
        for k in [
            "requests",
            "sessions",
            "unique_visitors",
            "bounce_rate",
            "median_duration_s",
        ] {
            assert_eq!(many.summary[k], one.summary[k], "{k}");
        }
    }

    #[test]
    fn sessions_file_writes_only_the_table_in_row_groups_with_spans() {
        // A job's task: the sessions to a file of its own (no summary.json beside it), in row
        // groups of row_group_rows, each with start/end statistics (the merge's spans).
        let dir = tempfile::tempdir().unwrap();
        let text = long_log(0, 72, 40);
        let one = run_on(&dir, &text, Options::default());
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let file = out.join("task-3-sessions.parquet");
        let opts = Options {
            sessions_file: Some(file.display().to_string()),
            row_group_rows: 16,
            batch_rows: 40,
            ..Default::default()
        };
        let r = run_on(&dir, &text, opts.clone());
        // Not an output of the run (the job's merge writes those).
        assert!(r.batches.is_empty() && r.outputs.is_empty());
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["task-3-sessions.parquet"]);
        assert_eq!(columns(&read_parquet(&file)), columns(&one.batches));
        let reader =
            parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&file).unwrap())
                .unwrap();
        let meta = parquet::file::reader::FileReader::metadata(&reader);
        let n = one.summary["sessions"].as_u64().unwrap() as usize;
        assert!(n > 100);
        assert_eq!(meta.num_row_groups(), n.div_ceil(16));
        for rg in meta.row_groups() {
            assert!(rg.num_rows() <= 16);
            for name in ["start", "end"] {
                let c = rg
                    .columns()
                    .iter()
                    .find(|c| c.column_path().string() == name)
                    .unwrap();
                let stats = c.statistics().expect("statistics");
                assert!(stats.min_bytes_opt().is_some() && stats.max_bytes_opt().is_some());
            }
        }
        // Both destinations: an options error.
        let both = Options {
            output_dir: Some(out.display().to_string()),
            ..opts
        };
        let inputs = [dir.path().join("a.log").display().to_string()];
        assert!(run(&inputs, &both, &Progress::new()).is_err());
    }

    #[test]
    fn zones_and_days_that_change_line_by_line() {
        // Lines of servers in different zones interleaved, across midnight: every line's local day
        // and hour and its UTC time are those of its own timestamp.
        let mut text = String::new();
        for i in 0..200 {
            let zone = ["+0100", "-0500", "+0000", "+0530"][i % 4];
            let (h, m) = if i < 100 { (23, i % 60) } else { (0, i % 60) };
            let day = if i < 100 { 31 } else { 1 };
            let mon = if i < 100 { "Dec/2023" } else { "Jan/2024" };
            text.push_str(&format!(
                "10.0.0.{} - - [{day:02}/{mon}:{h:02}:{m:02}:00 {zone}] \"GET /p HTTP/1.1\" 200 1 \"-\" \"ua\"\n",
                i % 3
            ));
        }
        let r = run_on(&tempfile::tempdir().unwrap(), &text, Options::default());
        let mut days: BTreeMap<String, u64> = BTreeMap::new();
        let mut hours = [0u64; 24];
        for l in text.lines() {
            let h = parse::parse_line(l.as_bytes()).unwrap();
            *days.entry(report::civil(h.local_day as i64)).or_default() += 1;
            hours[h.local_hour as usize] += 1;
        }
        assert_eq!(r.summary["hits_per_day"], serde_json::json!(days));
        assert_eq!(
            r.summary["hits_per_hour"],
            serde_json::json!(hours.to_vec())
        );
        assert_eq!(days.len(), 2);
        assert_eq!(r.summary["requests"], 200);
        // 23:00 at +0100 is 22:00 UTC.
        let first = parse::parse_line(text.lines().next().unwrap().as_bytes()).unwrap();
        assert_eq!(first.ts, 1704060000);
    }
}
