//! The run: sample every input, unify the schemas, then stream record-aligned blocks through a
//! rayon pool (tokenize, build Arrow arrays, encode the Parquet row group) and append the row groups
//! in input order. One thread reads the next wave of blocks while the others parse the current one,
//! so memory stays bounded by a few blocks whatever the input size.
//!
//! When a value does not fit a column's inferred type (the sample missed it), the column is widened
//! and that input (or, for one merged output, every input) is converted again: output types are
//! always right, and the redo is reported as drift.

use crate::csv::build::{build_batch, OutCol, Plan};
use crate::csv::infer::{infer_file, unify, Drift, FileInfo, Head};
use crate::csv::options::{Layout, Malformed, Options};
use crate::csv::partition::{self, Feed, Partitions};
use crate::csv::split::{count_byte, recycle, Block, BlockReader, BufPool};
use crate::csv::tokenize::{BadKind, BadRow, Fields};
use crate::csv::types::ColType;
use crate::csv::writer::{encode, write_into, writer_props, ParquetSink};
use crate::error::{Error, OnError, Problem, Result};
use crate::progress::Progress;
use arrow::array::RecordBatch;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowColumnWriter};
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

/// Problems reported per input at most (the rest are counted).
const MAX_PROBLEMS_PER_FILE: usize = 100;

#[derive(Debug, Serialize, Default)]
pub struct Summary {
    pub files: u64,
    pub rows: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub malformed_rows: u64,
    pub failed_files: u64,
    pub redone_inputs: u64,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct ColumnOut {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

#[derive(Debug, Serialize)]
pub struct FileOut {
    pub path: String,
    pub rows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// What a run returns (serialised as the result JSON).
#[derive(Debug, Serialize)]
pub struct RunResult {
    pub summary: Summary,
    pub outputs: Vec<String>,
    pub errors: Vec<Problem>,
    pub schema: Vec<ColumnOut>,
    pub drift: Vec<Drift>,
    pub files: Vec<FileOut>,
}

struct FileState {
    info: Arc<FileInfo>,
    plan: Arc<Plan>,
    gen: u32,
    failed: bool,
    done: bool,
    line: u64,
    rows: u64,
    problems: usize,
    output: Option<String>,
    /// The sample's tokenized rows, until the input's first reading starts from them.
    head: Option<Head>,
}

struct Item {
    file: usize,
    gen: u32,
    block: std::result::Result<Block, Error>,
    plan: Arc<Plan>,
    writers: Option<Vec<ArrowColumnWriter>>,
}

enum Outcome {
    Ok {
        rows: u64,
        chunks: Option<Vec<ArrowColumnChunk>>,
        /// Partitioned layout: the block's rows per partition directory.
        parts: Vec<(String, RecordBatch)>,
        problems: Vec<(u64, String)>,
        bad_rows: u64,
        newlines: u64,
        bytes: u64,
    },
    Widen {
        col: usize,
        to: ColType,
    },
    Fail(Error),
    /// A malformed row under `malformed="fail"`; its line is relative to the block.
    Malformed(Error),
    /// Partitioned layout: rows written into a partition's row group (for the sinks of
    /// generation `gen`): its writers back if the row group stays open, its chunks if closed.
    Encoded {
        dir: String,
        writers: Option<Vec<ArrowColumnWriter>>,
        chunks: Option<Vec<ArrowColumnChunk>>,
        rows: u64,
        memory: usize,
        gen: u32,
    },
}

/// A reader of `st`'s blocks from its data rows on; with its `head`, the reading goes on after
/// the head's bytes (an uncompressed input is opened there: a remote object's head is not fetched
/// again) and the first block starts with the head, already tokenized. A head longer than a
/// block is not used (the first block would hold more rows than a row group may).
fn open_blocks(
    st: &FileState,
    head: Option<Head>,
    block_size: usize,
    pool: &BufPool,
) -> Result<BlockReader> {
    let path = Path::new(&st.info.path);
    let head = head.filter(|h| h.data.len() <= block_size);
    let start = st.info.data_start + head.as_ref().map_or(0, |h| h.data.len() as u64);
    let reader = if crate::io::Compression::of(path) == crate::io::Compression::None {
        let src = crate::io::open_at(path, start)?;
        BlockReader::at(src, start, st.info.dialect, block_size, &st.info.path)
    } else {
        let src = crate::io::open_input(path)?;
        BlockReader::new(src, start, st.info.dialect, block_size, &st.info.path)?
    };
    let reader = reader.with_pool(pool.clone()).with_size_hint(st.info.size);
    Ok(match head {
        Some(h) => reader.with_head(h),
        None => reader,
    })
}

/// Partitioned layout: rows for a worker to write into a partition's open row group.
struct EncodeJob {
    feed: Feed,
    writers: std::result::Result<Vec<ArrowColumnWriter>, Error>,
    gen: u32,
}

/// Marks a result that belongs to no input (a partition's row group).
const NO_FILE: usize = usize::MAX;

/// Convert `inputs` per `opts`.
pub fn run(inputs: &[PathBuf], opts: &Options, progress: &Progress) -> Result<RunResult> {
    let start = Instant::now();
    let _keep = crate::csv::memory::KeepFreedMemory::start();
    if opts.layout == Layout::PerFile && opts.outputs.len() != inputs.len() {
        return Err(Error::options(format!(
            "csv-to-parquet: layout 'per_file' needs one output path per input ({} inputs, {} outputs)",
            inputs.len(),
            opts.outputs.len()
        )));
    }
    let sizes: u64 = inputs
        .iter()
        .map(|p| crate::io::file_size(p).unwrap_or(0))
        .sum();
    progress.set_totals(inputs.len() as u64, sizes);
    let threads = crate::parallel::threads_or_default(opts.threads);
    // A pool per run (no pool outlives a call, so a forked child never inherits a dead one). The
    // driver (reading blocks, appending row groups, committing outputs) stays on this thread and
    // the pool's threads only parse and encode, so neither waits on the other.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("aerofs-{i}"))
        .build()
        .map_err(|e| Error::internal(format!("cannot start worker threads: {e}")))?;
    let driver = pool.install(|| Driver::new(inputs, opts, progress, threads))?;
    let mut result = driver.run(&pool)?;
    result.summary.seconds = start.elapsed().as_secs_f64();
    Ok(result)
}

/// Each input's sample (None for an input that could not be read) and the problems met.
pub type Sampled = (Vec<Option<Arc<FileInfo>>>, Vec<Problem>);

/// What sampling keeps of each input besides its dialect, names and types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Nothing: with many inputs, the samples would hold `sample_bytes` each for the whole run.
    Nothing,
    /// The raw samples (previews show their rows).
    Samples,
    /// The tokenized data rows of remote inputs' samples ([`Head`]), up to this many bytes over
    /// all inputs: a conversion starts such an input from its head instead of fetching it again.
    Heads(usize),
}

/// Bytes of heads a conversion keeps (about 1.5 MB per input with the default 1 MiB sample, so
/// about 85 inputs): every input's would be hundreds of MB for a big folder, held until its turn.
///
/// Only remote inputs (streams) keep one: there a head saves fetching the sample again. A local
/// input re-reads and re-tokenizes its sample: keeping the heads of the benchmark folder's 200
/// files (200 x 5 MB) saved no measurable CPU (5.91/5.97/6.17 s against 5.77/5.96/5.94 s,
/// interleaved, load 3-4) for 417 MB peak RSS instead of 130 MB.
pub const HEAD_BUDGET: usize = 128 << 20;

/// Sample every input in parallel; failures become problems (or the error under on_error=fail).
pub fn sample_all(
    inputs: &[PathBuf],
    opts: &Options,
    sample_bytes: usize,
    keep: Keep,
) -> Result<Sampled> {
    let budget = match keep {
        Keep::Heads(b) => Some(AtomicUsize::new(b)),
        _ => None,
    };
    let infos: Vec<Result<FileInfo>> = inputs
        .par_iter()
        .map(|p| {
            let budget = budget.as_ref().filter(|_| crate::io::is_stream(p));
            infer_file(p, opts, sample_bytes, budget).map(|mut i| {
                if keep != Keep::Samples {
                    i.sample = Vec::new();
                }
                i
            })
        })
        .collect();
    let mut out = Vec::with_capacity(infos.len());
    let mut problems = Vec::new();
    for (r, p) in infos.into_iter().zip(inputs) {
        match r {
            Ok(i) if i.names.is_empty() => {
                let e = Error::input(p, None, None, "the input is empty (no header, no rows)");
                if opts.on_error == OnError::Fail {
                    return Err(e);
                }
                problems.push(e.to_problem());
                out.push(None);
            }
            Ok(i) => out.push(Some(Arc::new(i))),
            Err(e) => {
                if opts.on_error == OnError::Fail {
                    return Err(e.with_path(p));
                }
                problems.push(e.with_path(p).to_problem());
                out.push(None);
            }
        }
    }
    Ok((out, problems))
}

/// The plan of one file given the (unified) columns.
pub fn plan_for(
    info: &FileInfo,
    unified: &[(String, ColType)],
    layout: Layout,
    opts: &Options,
) -> Plan {
    let by_name: HashMap<&str, ColType> = unified.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let cols: Vec<OutCol> = if layout == Layout::PerFile {
        info.names
            .iter()
            .enumerate()
            .map(|(i, n)| OutCol {
                name: n.clone(),
                src: Some(i),
                ty: by_name.get(n.as_str()).copied().unwrap_or(info.types[i]),
                forced: opts.columns.contains_key(n),
                dictionary: info.repetitive[i],
            })
            .collect()
    } else {
        unified
            .iter()
            .map(|(n, t)| OutCol {
                name: n.clone(),
                src: info.names.iter().position(|x| x == n),
                ty: *t,
                forced: opts.columns.contains_key(n),
                dictionary: info
                    .names
                    .iter()
                    .position(|x| x == n)
                    .map(|i| info.repetitive[i])
                    .unwrap_or(true),
            })
            .collect()
    };
    Plan::new(
        info.path.clone(),
        info.dialect,
        info.names.len(),
        cols,
        &opts.null_values,
        opts.decimals,
    )
}

enum Sinks {
    PerFile(HashMap<usize, ParquetSink>),
    Merged(Option<Box<ParquetSink>>),
    Partitioned(BTreeMap<String, ParquetSink>),
}

struct Driver<'a> {
    opts: &'a Options,
    progress: &'a Progress,
    threads: usize,
    props: Arc<WriterProperties>,
    files: Vec<FileState>,
    unified: Vec<(String, ColType)>,
    drift: Vec<Drift>,
    errors: Vec<Problem>,
    queue: VecDeque<usize>,
    reader: Option<(usize, u32, BlockReader)>,
    sinks: Sinks,
    summary: Summary,
    outputs: Vec<String>,
    part_id: String,
    pool: BufPool,
    /// Partitioned layout: every partition's held rows and open row group, and the feeds ready
    /// for a worker; `finishing` once every block is in (every row group is then closed).
    parts: Partitions,
    encodes: VecDeque<Feed>,
    finishing: bool,
    /// Bumped when the partitioned output starts again (a widening): older row groups are dropped.
    sinks_gen: u32,
}

impl<'a> Driver<'a> {
    fn new(
        inputs: &[PathBuf],
        opts: &'a Options,
        progress: &'a Progress,
        threads: usize,
    ) -> Result<Self> {
        let (mut infos, errors) =
            sample_all(inputs, opts, opts.sample_bytes, Keep::Heads(HEAD_BUDGET))?;
        // Each head moves to its input's state, which hands it to the input's reader once.
        let mut heads: Vec<Option<Head>> = infos
            .iter_mut()
            .map(|i| {
                i.as_mut()
                    .and_then(Arc::get_mut)
                    .and_then(|i| i.head.take())
            })
            .collect();
        let ok: Vec<&FileInfo> = infos.iter().flatten().map(|i| i.as_ref()).collect();
        let (unified, mut drift) = if opts.unify || opts.layout != Layout::PerFile {
            unify(&ok, &opts.columns, &opts.base_types)
        } else {
            (Vec::new(), Vec::new())
        };
        if !opts.base_types.is_empty() {
            // A job's task: how the samples of ALL the job's inputs disagreed is the planner's
            // report (one entry per column, naming every file); this run's view of a few of
            // them would repeat it in pieces. Its late widenings are still its own to report.
            drift.clear();
        }
        let mut files = Vec::new();
        let mut queue = VecDeque::new();
        for (i, info) in infos.iter().enumerate() {
            let Some(info) = info else { continue };
            let plan = Arc::new(plan_for(info, &unified, opts.layout, opts));
            queue.push_back(files.len());
            files.push(FileState {
                info: info.clone(),
                plan,
                gen: 0,
                failed: false,
                done: false,
                line: info.header_lines,
                rows: 0,
                problems: 0,
                output: (opts.layout == Layout::PerFile).then(|| opts.outputs[i].clone()),
                head: heads[i].take(),
            });
        }
        for p in &errors {
            let _ = p;
            progress.add_error();
            progress.input_done();
        }
        let sinks = match opts.layout {
            Layout::PerFile => Sinks::PerFile(HashMap::new()),
            Layout::Merged => Sinks::Merged(None),
            Layout::Partitioned => Sinks::Partitioned(BTreeMap::new()),
        };
        let part_id = part_id(inputs);
        let summary = Summary {
            failed_files: errors.len() as u64,
            ..Default::default()
        };
        Ok(Driver {
            opts,
            progress,
            threads,
            props: writer_props(opts)?,
            files,
            unified,
            drift,
            errors,
            queue,
            reader: None,
            sinks,
            summary,
            outputs: Vec::new(),
            part_id,
            pool: BufPool::default(),
            parts: Partitions::default(),
            encodes: VecDeque::new(),
            finishing: false,
            sinks_gen: 0,
        })
    }

    fn block_size(&self, f: &FileState) -> usize {
        let by_rows = (f.info.row_bytes * self.opts.row_group_size as f64) as usize;
        let bs = if by_rows > 0 {
            self.opts.block_size.min(by_rows)
        } else {
            self.opts.block_size
        };
        bs.max(64 * 1024)
    }

    fn run(mut self, pool: &rayon::ThreadPool) -> Result<RunResult> {
        if let Layout::Partitioned = self.opts.layout {
            for p in &self.opts.partition_by {
                if !self.unified.iter().any(|(n, _)| n == p) {
                    return Err(Error::options(format!(
                        "csv-to-parquet: partition column {p:?} is not in the inputs"
                    )));
                }
            }
        }
        // A stream of blocks, not waves: this thread reads the next block and hands it to the pool
        // while earlier blocks are parsed, and applies the results strictly in reading order (row
        // groups, line numbers). At most `window` blocks are read but not yet applied (one per
        // thread, two read ahead), so memory stays bounded by a few blocks whatever the number or
        // size of the inputs.
        let window = self.threads + 2;
        let (tx, rx) = std::sync::mpsc::channel::<(u64, usize, u32, bool, Outcome)>();
        let opts = self.opts;
        let progress = self.progress;
        pool.in_place_scope_fifo(|scope| -> Result<()> {
            let mut next_seq = 0u64;
            let mut next_apply = 0u64;
            let mut ready: BTreeMap<u64, (usize, u32, bool, Outcome)> = BTreeMap::new();
            let mut exhausted = false;
            loop {
                self.progress.check()?;
                while next_seq - next_apply < window as u64 {
                    // Row groups of partitions first: they hold memory that blocks would add to.
                    if let Some(job) = self.next_encode() {
                        let seq = next_seq;
                        next_seq += 1;
                        let tx = tx.clone();
                        scope.spawn_fifo(move |_| {
                            let gen = job.gen;
                            let out =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    encode_part(job)
                                }))
                                .unwrap_or_else(|_| {
                                    Outcome::Fail(Error::internal(
                                        "a worker panicked on a row group",
                                    ))
                                });
                            let _ = tx.send((seq, NO_FILE, gen, false, out));
                        });
                        continue;
                    }
                    if exhausted {
                        break;
                    }
                    let Some(mut it) = self.next_item() else {
                        exhausted = true;
                        break;
                    };
                    self.attach_writer(&mut it);
                    let (seq, last) = (next_seq, last_of(&it));
                    next_seq += 1;
                    let tx = tx.clone();
                    let bufs = self.pool.clone();
                    scope.spawn_fifo(move |_| {
                        let (file, gen) = (it.file, it.gen);
                        // A panic becomes this input's error instead of a driver waiting forever.
                        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            process(it, opts, progress, &bufs)
                        }))
                        .unwrap_or_else(|_| {
                            Outcome::Fail(Error::internal("a worker panicked on this block"))
                        });
                        let _ = tx.send((seq, file, gen, last, out));
                    });
                }
                if next_seq == next_apply {
                    if exhausted {
                        if self.parts.is_idle() {
                            return Ok(());
                        }
                        // Every block is in: the partitions' last rows go out and every open
                        // row group is closed.
                        self.finishing = true;
                        self.schedule_feeds();
                    }
                    continue;
                }
                let (seq, file, gen, last, out) = rx
                    .recv()
                    .map_err(|_| Error::internal("the worker threads stopped"))?;
                ready.insert(seq, (file, gen, last, out));
                while let Ok((seq, file, gen, last, out)) = rx.try_recv() {
                    ready.insert(seq, (file, gen, last, out));
                }
                while let Some((file, gen, last, out)) = ready.remove(&next_apply) {
                    next_apply += 1;
                    self.apply(file, gen, last, out)?;
                }
                // A widening or a failure may have queued inputs again (from their start).
                exhausted = false;
            }
        })?;
        self.progress.check()?;
        self.finish()
    }

    /// The next block to parse (opening the next input when the current one is done).
    fn next_item(&mut self) -> Option<Item> {
        loop {
            if self.reader.is_none() {
                let f = self.queue.pop_front()?;
                if self.files[f].failed {
                    continue;
                }
                let head = self.files[f].head.take();
                let st = &self.files[f];
                let bs = self.block_size(st);
                let opened = open_blocks(st, head, bs, &self.pool);
                match opened {
                    Ok(r) => self.reader = Some((f, st.gen, r)),
                    Err(e) => {
                        return Some(Item {
                            file: f,
                            gen: st.gen,
                            block: Err(e),
                            plan: st.plan.clone(),
                            writers: None,
                        })
                    }
                }
            }
            let (f, gen, r) = self.reader.as_mut().expect("reader open");
            let (f, gen) = (*f, *gen);
            let plan = self.files[f].plan.clone();
            let block = match r.next_block() {
                Ok(Some(b)) => {
                    if b.last {
                        self.reader = None;
                    }
                    Ok(b)
                }
                Ok(None) => {
                    self.reader = None;
                    Ok(Block {
                        data: Vec::new(),
                        offset: 0,
                        last: true,
                        head: None,
                    })
                }
                Err(e) => {
                    self.reader = None;
                    Err(e)
                }
            };
            return Some(Item {
                file: f,
                gen,
                block,
                plan,
                writers: None,
            });
        }
    }

    /// Give a block the column writers of its row group (the output is created at its first block).
    fn attach_writer(&mut self, it: &mut Item) {
        if it.block.is_err() {
            return;
        }
        let st = &self.files[it.file];
        let got = match &mut self.sinks {
            Sinks::PerFile(m) => match m.entry(it.file) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut().column_writers(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let dest = st.output.clone().unwrap_or_default();
                    let props = plan_props(&self.props, &st.plan, self.opts);
                    match ParquetSink::create(&dest, &st.plan.schema, &props) {
                        Ok(s) => v.insert(s).column_writers(),
                        Err(e) => {
                            it.block = Err(e.with_path(&dest));
                            return;
                        }
                    }
                }
            },
            Sinks::Merged(s) => {
                if s.is_none() {
                    let dest = self.opts.dst.clone().unwrap_or_default();
                    let schema = st.plan.schema.clone();
                    match ParquetSink::create(
                        &dest,
                        &schema,
                        &plan_props(&self.props, &st.plan, self.opts),
                    ) {
                        Ok(x) => *s = Some(Box::new(x)),
                        Err(e) => {
                            it.block = Err(e.with_path(&dest));
                            return;
                        }
                    }
                }
                s.as_mut().expect("sink just made").column_writers()
            }
            Sinks::Partitioned(_) => return,
        };
        match got {
            Ok(w) => it.writers = Some(w),
            Err(e) => it.block = Err(e),
        }
    }

    fn apply(&mut self, file: usize, gen: u32, last: bool, outcome: Outcome) -> Result<()> {
        if file == NO_FILE {
            return self.append_part(outcome);
        }
        if self.files[file].failed || self.files[file].gen != gen {
            return Ok(());
        }
        match outcome {
            Outcome::Ok {
                rows,
                chunks,
                parts,
                problems,
                bad_rows,
                newlines,
                bytes,
            } => {
                let st = &mut self.files[file];
                let line0 = st.line;
                st.line += newlines;
                st.rows += rows;
                self.summary.malformed_rows += bad_rows;
                for (line, msg) in problems {
                    if st.problems < MAX_PROBLEMS_PER_FILE {
                        let e = Error::input(&st.info.path, Some(line0 + line + 1), None, msg);
                        self.errors.push(e.to_problem());
                    }
                    st.problems += 1;
                }
                self.progress.add_rows(rows);
                self.progress.add_bytes(bytes);
                if let Some(chunks) = chunks {
                    let sink = match &mut self.sinks {
                        Sinks::PerFile(m) => m.get_mut(&file),
                        Sinks::Merged(s) => s.as_deref_mut(),
                        Sinks::Partitioned(_) => None,
                    };
                    if let Some(sink) = sink {
                        sink.append(chunks, rows)?;
                    }
                }
                if !parts.is_empty() {
                    for (dir, part) in parts {
                        self.parts.hold(dir, part);
                    }
                    self.schedule_feeds();
                }
                if last {
                    self.file_done(file)?;
                }
                Ok(())
            }
            Outcome::Widen { col, to } => self.widen(file, col, to),
            Outcome::Fail(e) => self.fail(file, e),
            Outcome::Malformed(mut e) => {
                let base = self.files[file].line;
                e.line = e.line.map(|l| base + l + 1);
                self.fail(file, e)
            }
            Outcome::Encoded { .. } => Err(Error::internal("a row group without its partition")),
        }
    }

    fn schedule_feeds(&mut self) {
        let feeds = self.parts.feeds(self.opts.row_group_size, self.finishing);
        self.encodes.extend(feeds);
    }

    /// The next feed for a worker, with its partition's open row group (a new one, and the
    /// partition's output, when none is open).
    fn next_encode(&mut self) -> Option<EncodeJob> {
        let feed = self.encodes.pop_front()?;
        let open = self.parts.get_mut(&feed.dir).and_then(|p| p.writers.take());
        let writers = match open {
            Some(w) => Ok(w),
            None => {
                let Sinks::Partitioned(sinks) = &mut self.sinks else {
                    return None;
                };
                let Some(schema) = feed.batches.first().map(|b| b.schema()) else {
                    // Nothing to write and no row group open: nothing to do.
                    if let Some(p) = self.parts.get_mut(&feed.dir) {
                        p.busy = false;
                    }
                    return None;
                };
                match sinks.entry(feed.dir.clone()) {
                    std::collections::btree_map::Entry::Occupied(o) => {
                        o.into_mut().column_writers()
                    }
                    std::collections::btree_map::Entry::Vacant(v) => {
                        let dest = Path::new(self.opts.dst.as_deref().unwrap_or_default())
                            .join(&feed.dir)
                            .join(format!("part-{}.parquet", self.part_id));
                        let dest = dest.display().to_string();
                        ParquetSink::create(&dest, &schema, &self.props)
                            .map_err(|e| e.with_path(&dest))
                            .and_then(|s| v.insert(s).column_writers())
                    }
                }
            }
        };
        Some(EncodeJob {
            feed,
            writers,
            gen: self.sinks_gen,
        })
    }

    /// A feed came back: keep its open row group, or append the closed one to the output (in the
    /// order the feeds were handed out), and hand out what the partitions have now.
    fn append_part(&mut self, outcome: Outcome) -> Result<()> {
        match outcome {
            Outcome::Encoded {
                dir,
                writers,
                chunks,
                rows,
                memory,
                gen,
            } => {
                if gen != self.sinks_gen {
                    return Ok(());
                }
                let Some(part) = self.parts.get_mut(&dir) else {
                    return Err(Error::internal("a row group of an unknown partition"));
                };
                part.busy = false;
                part.group_rows += rows as usize;
                part.group_bytes = memory;
                part.writers = writers;
                if let Some(chunks) = chunks {
                    let group_rows = std::mem::take(&mut part.group_rows) as u64;
                    part.group_bytes = 0;
                    if let Sinks::Partitioned(sinks) = &mut self.sinks {
                        if let Some(sink) = sinks.get_mut(&dir) {
                            sink.append(chunks, group_rows)?;
                        }
                    }
                }
                self.schedule_feeds();
                Ok(())
            }
            // The output of a partition cannot be written: the run cannot go on without it.
            Outcome::Fail(e) => Err(e),
            _ => Err(Error::internal(
                "a partition row group came back as a block",
            )),
        }
    }

    fn file_done(&mut self, file: usize) -> Result<()> {
        let st = &mut self.files[file];
        st.done = true;
        if st.problems > MAX_PROBLEMS_PER_FILE {
            let msg = format!(
                "{} more malformed rows not listed",
                st.problems - MAX_PROBLEMS_PER_FILE
            );
            self.errors
                .push(Error::input(&st.info.path, None, None, msg).to_problem());
        }
        self.progress.input_done();
        self.summary.bytes_in += st.info.size;
        if let Sinks::PerFile(m) = &mut self.sinks {
            if let Some(sink) = m.remove(&file) {
                let (path, size) = sink.commit()?;
                self.summary.bytes_out += size;
                self.outputs.push(path.display().to_string());
            }
        }
        Ok(())
    }

    fn widen(&mut self, file: usize, col: usize, to: ColType) -> Result<()> {
        let st = &self.files[file];
        let from = st.plan.cols[col].ty;
        let name = st.plan.cols[col].name.clone();
        if to == from {
            return self.fail(
                file,
                Error::internal(format!(
                    "column {name:?} could not be widened from {}",
                    from.name()
                )),
            );
        }
        self.summary.redone_inputs += 1;
        let mut types = BTreeMap::new();
        types.insert(from.name(), vec!["(sample of every input)".to_string()]);
        types.insert(to.name(), vec![st.info.path.clone()]);
        self.drift.push(Drift {
            column: name.clone(),
            types,
            missing_in: Vec::new(),
            resolved: to.name(),
            how: "a value after the sample did not fit; widened and converted again".into(),
        });
        if self.opts.layout == Layout::PerFile {
            let mut plan = plan_for(&st.info, &self.unified, Layout::PerFile, self.opts);
            for (c, old) in plan.cols.iter_mut().zip(&st.plan.cols) {
                c.ty = old.ty;
            }
            plan.cols[col].ty = to;
            let plan = Plan::new(
                plan.path,
                plan.dialect,
                plan.ncols,
                plan.cols,
                &self.opts.null_values,
                self.opts.decimals,
            );
            let st = &mut self.files[file];
            st.plan = Arc::new(plan);
            self.restart_file(file);
            return Ok(());
        }
        for u in self.unified.iter_mut() {
            if u.0 == name {
                u.1 = to;
            }
        }
        self.restart_all();
        Ok(())
    }

    fn restart_file(&mut self, file: usize) {
        let st = &mut self.files[file];
        st.gen += 1;
        st.line = st.info.header_lines;
        st.rows = 0;
        st.problems = 0;
        if let Sinks::PerFile(m) = &mut self.sinks {
            m.remove(&file);
        }
        if matches!(self.reader, Some((f, _, _)) if f == file) {
            self.reader = None;
        }
        self.queue.push_front(file);
    }

    /// Merged and partitioned outputs: drop everything written and start again with the new schema.
    fn restart_all(&mut self) {
        self.sinks = match self.opts.layout {
            Layout::Merged => Sinks::Merged(None),
            _ => Sinks::Partitioned(BTreeMap::new()),
        };
        self.reader = None;
        self.queue.clear();
        self.parts = Partitions::default();
        self.encodes.clear();
        self.finishing = false;
        self.sinks_gen += 1;
        let errors_before: usize = self.errors.iter().filter(|p| p.line.is_none()).count();
        let _ = errors_before;
        self.errors.retain(|p| p.line.is_none());
        self.summary.malformed_rows = 0;
        self.summary.bytes_in = 0;
        for i in 0..self.files.len() {
            let plan = Arc::new(plan_for(
                &self.files[i].info,
                &self.unified,
                self.opts.layout,
                self.opts,
            ));
            let st = &mut self.files[i];
            st.gen += 1;
            st.plan = plan;
            st.line = st.info.header_lines;
            st.rows = 0;
            st.problems = 0;
            st.done = false;
            if !st.failed {
                self.queue.push_back(i);
            }
        }
    }

    fn fail(&mut self, file: usize, e: Error) -> Result<()> {
        if e.is_cancelled() || self.opts.on_error == OnError::Fail {
            return Err(e);
        }
        let st = &mut self.files[file];
        let e = e.with_path(&st.info.path);
        self.errors.push(e.to_problem());
        self.progress.add_error();
        self.progress.input_done();
        self.summary.failed_files += 1;
        st.failed = true;
        if matches!(self.reader, Some((f, _, _)) if f == file) {
            self.reader = None;
        }
        match self.opts.layout {
            Layout::PerFile => {
                if let Sinks::PerFile(m) = &mut self.sinks {
                    m.remove(&file);
                }
            }
            // Rows of the failed input may already be in the shared output: redo without it.
            _ => {
                if st.rows > 0 || st.done {
                    self.restart_all();
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<RunResult> {
        match std::mem::replace(&mut self.sinks, Sinks::Merged(None)) {
            Sinks::Merged(Some(sink)) => {
                let (path, size) = sink.commit()?;
                self.summary.bytes_out += size;
                self.outputs.push(path.display().to_string());
            }
            Sinks::Merged(None)
                if self.opts.layout == Layout::Merged
                    && !self.files.is_empty()
                    && self.files.iter().any(|f| !f.failed) => {}
            Sinks::Partitioned(m) => {
                for (_, s) in m {
                    let (path, size) = s.commit()?;
                    self.summary.bytes_out += size;
                    self.outputs.push(path.display().to_string());
                }
            }
            _ => {}
        }
        let ok: Vec<&FileState> = self.files.iter().filter(|f| !f.failed).collect();
        self.summary.files = ok.len() as u64;
        self.summary.rows = ok.iter().map(|f| f.rows).sum();
        let schema = match self.files.iter().find(|f| !f.failed) {
            Some(f) if self.opts.layout == Layout::PerFile => f
                .plan
                .cols
                .iter()
                .map(|c| ColumnOut {
                    name: c.name.clone(),
                    ty: c.ty.name(),
                })
                .collect(),
            _ => self
                .unified
                .iter()
                .map(|(n, t)| ColumnOut {
                    name: n.clone(),
                    ty: t.name(),
                })
                .collect(),
        };
        let files = self
            .files
            .iter()
            .filter(|f| !f.failed)
            .map(|f| FileOut {
                path: f.info.path.clone(),
                rows: f.rows,
                output: f.output.clone(),
            })
            .collect();
        Ok(RunResult {
            summary: self.summary,
            outputs: self.outputs,
            errors: self.errors,
            schema,
            drift: self.drift,
            files,
        })
    }
}

/// The run's properties per column: dictionary encoding only where it pays (repetitive string
/// columns), and delta encoding for integers, dates and timestamps (sequential ids shrink to
/// nothing, timestamps and bounded ints to their significant bits; every reader knows it).
pub fn plan_props(
    base: &Arc<WriterProperties>,
    plan: &Plan,
    opts: &Options,
) -> Arc<WriterProperties> {
    let mut b = (**base).clone().into_builder();
    for c in &plan.cols {
        let path = parquet::schema::types::ColumnPath::from(c.name.as_str());
        let on = opts.dictionary && c.dictionary && matches!(c.ty, ColType::String | ColType::Null);
        b = b.set_column_dictionary_enabled(path.clone(), on);
        // A decimal of precision 18 or less is a Parquet INT64, encoded like the integers.
        let int64_decimal = matches!(c.ty, ColType::Decimal(p, _) if p <= 18);
        if int64_decimal
            || matches!(
                c.ty,
                ColType::Int64 | ColType::Date | ColType::Timestamp | ColType::TimestampTz
            )
        {
            b = b.set_column_encoding(path, parquet::basic::Encoding::DELTA_BINARY_PACKED);
        }
    }
    Arc::new(b.build())
}

fn last_of(it: &Item) -> bool {
    it.block.as_ref().map(|b| b.last).unwrap_or(true)
}

fn bad_message(b: &BadRow, ncols: usize) -> String {
    match b.kind {
        BadKind::Ragged { found } => format!("malformed row: {found} fields, expected {ncols}"),
        BadKind::UnterminatedQuote => "malformed row: unterminated quote".into(),
        BadKind::InvalidUtf8 { col } => {
            format!("malformed row: invalid UTF-8 in field {}", col + 1)
        }
    }
}

/// Rows with invalid UTF-8 (only looked for when the block has non-ASCII bytes and is, as a
/// whole, not valid UTF-8).
fn check_utf8(data: &[u8], f: &mut Fields) {
    if !f.non_ascii || std::str::from_utf8(data).is_ok() {
        return;
    }
    let mut drop = Vec::new();
    for r in 0..f.rows {
        for c in 0..f.ncols {
            let Some((s, e, _)) = f.get(r, c) else {
                continue;
            };
            if std::str::from_utf8(&data[s..e]).is_err() {
                f.bad.push(BadRow {
                    offset: f.row_offset(r) as u32,
                    kind: BadKind::InvalidUtf8 { col: c },
                });
                if f.fill {
                    f.starts[r * f.ncols + c] = crate::csv::tokenize::MISSING;
                } else {
                    drop.push(r);
                    break;
                }
            }
        }
    }
    f.drop_rows(&drop);
}

/// Lines (0-based, within `data`) of the given byte offsets, in order.
fn lines_of(data: &[u8], mut offsets: Vec<(usize, String)>) -> Vec<(u64, String)> {
    offsets.sort_by_key(|o| o.0);
    let mut out = Vec::with_capacity(offsets.len());
    let (mut pos, mut line) = (0usize, 0u64);
    for (off, msg) in offsets {
        let off = off.min(data.len());
        line += count_byte(&data[pos..off.max(pos)], b'\n') as u64;
        pos = off.max(pos);
        out.push((line, msg));
    }
    out
}

/// Parse and encode one block (on a worker thread).
fn process(it: Item, opts: &Options, progress: &Progress, pool: &BufPool) -> Outcome {
    if let Err(e) = progress.check() {
        return Outcome::Fail(e);
    }
    let block = match it.block {
        Ok(b) => b,
        Err(e) => return Outcome::Fail(e),
    };
    let plan = &it.plan;
    let data = &block.data[..];
    // Each worker thread keeps its field arrays from block to block (no fresh pages per block).
    thread_local! {
        static FIELDS: std::cell::RefCell<Fields> = std::cell::RefCell::new(Fields::default());
    }
    let out = FIELDS.with(|cell| {
        let mut f = cell.borrow_mut();
        f.reset(plan.ncols, plan.dialect.fill);
        process_fields(data, &mut f, &block, plan, it.writers, opts)
    });
    recycle(pool, block.data);
    out
}

fn process_fields(
    data: &[u8],
    f: &mut Fields,
    block: &Block,
    plan: &Plan,
    writers: Option<Vec<ArrowColumnWriter>>,
    opts: &Options,
) -> Outcome {
    match &block.head {
        Some((len, head)) => f.after_head(head, *len, data, |b, f| plan.dialect.tokenize(b, f)),
        None => plan.dialect.tokenize(data, f),
    }
    if !plan.dialect.latin1 {
        check_utf8(data, f);
    }
    let bad_rows = f.bad.len() as u64;
    let mut notes: Vec<(usize, String)> = f
        .bad
        .iter()
        .take(MAX_PROBLEMS_PER_FILE)
        .map(|b| (b.offset as usize, bad_message(b, plan.ncols)))
        .collect();
    if opts.malformed == Malformed::Fail && !notes.is_empty() {
        let (line, msg) = lines_of(data, notes.drain(..1).collect()).remove(0);
        let off = block.offset + f.bad[0].offset as u64;
        // The block's first line is known only to the driver: the line here is within the block.
        return Outcome::Malformed(Error::input(&plan.path, Some(line), Some(off), msg));
    }
    let (batch, cells) = match build_batch(data, f, plan) {
        Ok(x) => x,
        Err(w) => {
            return Outcome::Widen {
                col: w.col,
                to: w.to,
            }
        }
    };
    notes.extend(
        cells
            .into_iter()
            .take(MAX_PROBLEMS_PER_FILE)
            .map(|c| (c.offset, c.message)),
    );
    let rows = batch.num_rows() as u64;
    let problems = lines_of(data, notes);
    let newlines = f.newlines as u64;
    let (chunks, parts) = match writers {
        Some(w) if rows > 0 => match encode(&batch, w) {
            Ok(c) => (Some(c), Vec::new()),
            Err(e) => return Outcome::Fail(e),
        },
        Some(_) => (None, Vec::new()),
        None if rows > 0 && opts.layout == Layout::Partitioned => {
            match partition::split(&batch, &opts.partition_by) {
                Ok(p) => (None, p),
                Err(e) => return Outcome::Fail(e),
            }
        }
        None => (None, Vec::new()),
    };
    Outcome::Ok {
        rows,
        chunks,
        parts,
        problems,
        bad_rows,
        newlines,
        bytes: data.len() as u64,
    }
}

/// Write a feed into its partition's row group and close it if asked or full (on a worker).
fn encode_part(job: EncodeJob) -> Outcome {
    let mut writers = match job.writers {
        Ok(w) => w,
        Err(e) => return Outcome::Fail(e),
    };
    let mut rows = 0u64;
    for b in &job.feed.batches {
        if let Err(e) = write_into(b, &mut writers) {
            return Outcome::Fail(e);
        }
        rows += b.num_rows() as u64;
    }
    drop(job.feed.batches);
    // Closed at 64 MiB of encoded data (what `ArrowWriter` calls its in-progress size), like one
    // writer per partition would; the memory held is counted apart, for the run's bound.
    let encoded: usize = writers.iter().map(|w| w.get_estimated_total_bytes()).sum();
    let memory: usize = writers.iter().map(|w| w.memory_size()).sum();
    if !job.feed.close && encoded < partition::GROUP_BYTES {
        return Outcome::Encoded {
            dir: job.feed.dir,
            writers: Some(writers),
            chunks: None,
            rows,
            memory,
            gen: job.gen,
        };
    }
    let chunks: std::result::Result<Vec<_>, _> = writers.into_iter().map(|w| w.close()).collect();
    match chunks {
        Ok(chunks) => Outcome::Encoded {
            dir: job.feed.dir,
            writers: None,
            chunks: Some(chunks),
            rows,
            memory: 0,
            gen: job.gen,
        },
        Err(e) => Outcome::Fail(e.into()),
    }
}

/// The `<id>` of a partitioned run's `part-<id>.parquet` files: a hash of its inputs' lasting names,
/// so a retried task (or one the merge redoes) writes over its own earlier part files instead of
/// beside them, remote inputs too (their stream tokens change with every run).
fn part_id(inputs: &[PathBuf]) -> String {
    use std::hash::{Hash, Hasher};
    let lasting: Vec<PathBuf> = inputs.iter().map(|p| crate::io::lasting_name(p)).collect();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    lasting.hash(&mut h);
    format!("{:016x}", h.finish())
}
