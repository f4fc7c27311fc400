//! Finished sessions on their way into the sessions table: a reorder buffer, the ids counted on, the
//! summary's session figures as running sums, and where the rows go (the table returned to Python,
//! or `sessions.parquet` written as the run goes).
//!
//! The table is in order of (start, ip, user agent, first line). Sessions finish in another order
//! (by end), so they wait in the buffer. With a Parquet file, rows are written as soon as no session
//! that sorts before them can still appear: those that start before the *watermark*, which the run
//! gives (the earliest start of any open session, and the earliest time a line still to come may
//! have). Only whole batches of [`report::BATCH_ROWS`] rows are written during the run and the rest
//! is cut the same way at the end, so the batches (and ids) depend only on the number of sessions:
//! the file equals the one written from the whole table at once. In memory (no file), nothing is
//! built before the end, as before: the table is the result.
//!
//! A line later than the run allowed for (see `DISORDER_S`) may belong before rows already written;
//! [`Finished::written_after`] is how the run finds out, and it then runs again holding every session
//! (nothing is written before the end): a written row is never wrong.

use super::report::{self, Names, BATCH_ROWS};
use super::sessionize::Cluster;
use crate::error::Result;
use crate::io::AtomicFile;
use ahash::RandomState;
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use hashbrown::HashMap;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowWriter};
use rayon::prelude::*;
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The table's order: start, then (ip, user agent) as text, then the first request's line.
/// Unique, so every sort (stable or not, in any split) gives the same order.
pub fn table_order(a: &Cluster, b: &Cluster, pairs: &[(Vec<u8>, Vec<u8>)]) -> Ordering {
    a.start
        .cmp(&b.start)
        .then_with(|| pairs[a.pair as usize].cmp(&pairs[b.pair as usize]))
        .then_with(|| a.first_seq.cmp(&b.first_seq))
}

/// The summary's session figures, kept as rows are built. Integer sums and a histogram of durations
/// (whole seconds: far fewer distinct values than sessions) give the same figures as a pass over
/// every session, in any split, without holding a duration per session.
#[derive(Default)]
pub struct Figures {
    n: u64,
    bots: u64,
    bounces: u64,
    pages: u64,
    duration_sum: i64,
    durations: HashMap<i64, u64, RandomState>,
}

impl Figures {
    fn add(&mut self, s: &[Cluster], names: &Names) {
        for x in s {
            self.n += 1;
            self.bots += u64::from(names.bots[x.pair as usize]);
            self.bounces += u64::from(x.pages <= 1);
            self.pages += x.pages;
            let d = x.end - x.start;
            self.duration_sum += d;
            *self.durations.entry(d).or_insert(0) += 1;
        }
    }

    fn merge(&mut self, o: Figures) {
        self.n += o.n;
        self.bots += o.bots;
        self.bounces += o.bounces;
        self.pages += o.pages;
        self.duration_sum += o.duration_sum;
        for (d, k) in o.durations {
            *self.durations.entry(d).or_insert(0) += k;
        }
    }

    /// The `i`-th smallest duration (0-based; `i < n`).
    fn nth(sorted: &[(i64, u64)], i: u64) -> i64 {
        let mut seen = 0;
        for &(d, k) in sorted {
            seen += k;
            if i < seen {
                return d;
            }
        }
        unreachable!("i < n")
    }

    pub fn to_json(&self) -> serde_json::Value {
        let n = self.n;
        let mut sorted: Vec<(i64, u64)> = self.durations.iter().map(|(&d, &k)| (d, k)).collect();
        sorted.sort_unstable();
        let median = if n == 0 {
            0.0
        } else if n % 2 == 1 {
            Self::nth(&sorted, n / 2) as f64
        } else {
            (Self::nth(&sorted, n / 2 - 1) + Self::nth(&sorted, n / 2)) as f64 / 2.0
        };
        let div = |a: f64| if n == 0 { 0.0 } else { a / n as f64 };
        serde_json::json!({
            "sessions": n,
            "bot_sessions": self.bots,
            "bounce_rate": div(self.bounces as f64),
            "mean_duration_s": div(self.duration_sum as f64),
            "median_duration_s": median,
            "pages_per_session": div(self.pages as f64),
        })
    }
}

/// The table's schema as stored in the file. Parquet has no timestamp in seconds (arrow-rs would
/// store plain integers, which readers take for numbers), so, as pyarrow does with the same table,
/// times are stored in milliseconds (`TIMESTAMP(MILLIS, UTC)`) and the embedded Arrow schema says
/// seconds: pyarrow reads back the table's own types, and every reader reads times.
fn file_schema() -> SchemaRef {
    let fields: Vec<Field> = report::schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Timestamp(TimeUnit::Second, tz) => f
                .as_ref()
                .clone()
                .with_data_type(DataType::Timestamp(TimeUnit::Millisecond, tz.clone())),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// `b` with its times in milliseconds ([`file_schema`]).
fn file_batch(b: &RecordBatch) -> Result<RecordBatch> {
    let schema = file_schema();
    let cols = b
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                arrow::compute::cast(c, f.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema, cols)?)
}

/// The rows of sorted sessions `s` (ids from `first_id`) and their figures.
fn build(
    s: &[Cluster],
    first_id: u64,
    names: &Names,
    schema: &SchemaRef,
) -> (Result<RecordBatch>, Figures) {
    let mut f = Figures::default();
    f.add(s, names);
    (report::sessions_batch(s, first_id, names, schema), f)
}

/// Where the rows go.
enum Sink {
    /// The table, returned to the caller.
    Memory(Vec<RecordBatch>),
    /// `sessions.parquet` under its temporary name until [`Finished::close`] commits it; dropped
    /// (a failed or cancelled run), nothing is left at the destination. (In a mutex only so that the
    /// run's state can be shared with the threads that build the other tables at the end.)
    Parquet(Box<Mutex<ArrowWriter<AtomicFile>>>),
}

/// The run's finished sessions: see the module doc.
pub struct Finished {
    /// Finished sessions not yet in the table.
    buf: Vec<Cluster>,
    /// `buf`'s length after the last flush.
    kept: usize,
    next_id: u64,
    /// The start of the last row written during the run (None: nothing written yet).
    last_start: Option<i64>,
    figures: Figures,
    sink: Sink,
    schema: SchemaRef,
    /// Rows per batch: [`BATCH_ROWS`] but in tests.
    rows: usize,
}

impl Default for Finished {
    fn default() -> Self {
        Self::in_memory(0)
    }
}

impl Finished {
    /// Rows kept in memory and returned. `rows`: rows per batch (0: [`BATCH_ROWS`]).
    pub fn in_memory(rows: usize) -> Self {
        Self::with(Sink::Memory(Vec::new()), rows)
    }

    /// Rows written to `dest` (a Parquet file) as the run goes, in row groups of `row_group_rows`
    /// (0: the writer's default).
    pub fn to_parquet(dest: &Path, rows: usize, row_group_rows: usize) -> Result<Self> {
        let file = AtomicFile::create(dest)?;
        let mut props = report::parquet_props(row_group_rows);
        // The table's own types (times in seconds) in the embedded Arrow schema: see `file_schema`.
        add_encoded_arrow_schema_to_metadata(&report::schema(), &mut props);
        let opts = ArrowWriterOptions::new()
            .with_properties(props)
            .with_skip_arrow_metadata(true);
        let w = ArrowWriter::try_new_with_options(file, file_schema(), opts)?;
        Ok(Self::with(Sink::Parquet(Box::new(Mutex::new(w))), rows))
    }

    fn with(sink: Sink, rows: usize) -> Self {
        Finished {
            buf: Vec::new(),
            kept: 0,
            next_id: 0,
            last_start: None,
            figures: Figures::default(),
            sink,
            schema: report::schema(),
            rows: if rows == 0 { BATCH_ROWS } else { rows },
        }
    }

    /// Whether rows are written during the run (the run then keeps the watermark).
    pub fn streams(&self) -> bool {
        matches!(self.sink, Sink::Parquet(_))
    }

    /// Whether a session starting at `start` (or any session it may join) would belong before a row
    /// already written.
    pub fn written_after(&self, start: i64) -> bool {
        self.last_start.is_some_and(|l| start <= l)
    }

    /// Whether any row has been written during the run.
    pub fn wrote(&self) -> bool {
        self.last_start.is_some()
    }

    pub fn push(&mut self, s: impl IntoIterator<Item = Cluster>) {
        self.buf.extend(s);
    }

    /// Take back the sessions not yet written (a late line may join them).
    pub fn take_unwritten(&mut self) -> Vec<Cluster> {
        self.kept = 0;
        std::mem::take(&mut self.buf)
    }

    /// With a Parquet sink, write the whole batches of sessions that start before `watermark` (no
    /// session still to come can sort before them). Done when the buffer has grown by a batch since
    /// the last flush (`watermark` is asked only then). The buffer is ordered through 16-byte keys
    /// (start, index), not by moving its 128-byte sessions: the rows written are copied out once in
    /// order and the rest is compacted. While a session open since long ago holds the watermark
    /// back, the buffer grows; it is then looked at when it has grown by a quarter, so the sorts
    /// cost a few passes over it in all, not one per batch.
    pub fn flush(&mut self, watermark: impl FnOnce() -> i64, names: &Names) -> Result<()> {
        if !self.streams() || self.buf.len() < self.kept + self.rows.max(self.kept / 4) {
            return Ok(());
        }
        self.kept = self.buf.len();
        let w = watermark();
        let rows = self.rows;
        let below = self.buf.iter().filter(|c| c.start < w).count();
        let ready = below / rows * rows;
        if ready == 0 {
            return Ok(());
        }
        let (buf, pairs) = (&self.buf, names.pairs);
        let mut keys: Vec<(i64, u32)> = buf
            .iter()
            .enumerate()
            .filter(|(_, c)| c.start < w)
            .map(|(i, c)| (c.start, i as u32))
            .collect();
        keys.par_sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| table_order(&buf[a.1 as usize], &buf[b.1 as usize], pairs))
        });
        keys.truncate(ready);
        let out: Vec<Cluster> = keys.iter().map(|k| buf[k.1 as usize].clone()).collect();
        let mut written = vec![false; buf.len()];
        for k in &keys {
            written[k.1 as usize] = true;
        }
        drop(keys);
        let mut at = 0;
        self.buf.retain(|_| {
            at += 1;
            !written[at - 1]
        });
        self.kept = self.buf.len();
        let (first, schema) = (self.next_id, &self.schema);
        let built: Vec<(Result<RecordBatch>, Figures)> = out
            .par_chunks(rows)
            .enumerate()
            .map(|(k, s)| build(s, first + (k * rows) as u64, names, schema))
            .collect();
        self.last_start = Some(out[ready - 1].start);
        self.next_id += ready as u64;
        self.take(built)
    }

    /// Add built batches to the figures and the sink, in order.
    fn take(&mut self, built: Vec<(Result<RecordBatch>, Figures)>) -> Result<()> {
        for (b, f) in built {
            let b = b?;
            self.figures.merge(f);
            match &mut self.sink {
                Sink::Memory(v) => v.push(b),
                Sink::Parquet(w) => w
                    .get_mut()
                    .unwrap_or_else(|p| p.into_inner())
                    .write(&file_batch(&b)?)?,
            }
        }
        Ok(())
    }

    /// The rest of the sessions (`open`: those still open at the end) into the table, in parallel
    /// batches cut where a whole table would be cut; the file committed. Returns the schema, the
    /// batches (none with a file), the session figures and the file written.
    pub fn close(
        mut self,
        open: Vec<Cluster>,
        names: &Names,
    ) -> Result<(SchemaRef, Vec<RecordBatch>, Figures, Option<PathBuf>)> {
        let mut rest = std::mem::take(&mut self.buf);
        rest.reserve_exact(open.len());
        rest.extend(open);
        // The table's order with each (ip, user agent) ranked by its text once, so this sort (of
        // every session, without a file) compares integers.
        let pairs = names.pairs;
        let mut by_text: Vec<u32> = (0..pairs.len() as u32).collect();
        by_text.par_sort_unstable_by(|&a, &b| pairs[a as usize].cmp(&pairs[b as usize]));
        let mut rank = vec![0u32; pairs.len()];
        for (r, &p) in by_text.iter().enumerate() {
            rank[p as usize] = r as u32;
        }
        drop(by_text);
        rest.par_sort_unstable_by_key(|c| (c.start, rank[c.pair as usize], c.first_seq));
        drop(rank);
        let (first, schema, rows) = (self.next_id, &self.schema, self.rows);
        // Each piece is freed once its batch is built: the list and the table are never both whole.
        let built: Vec<(Result<RecordBatch>, Figures)> = report::cut(rest, rows)
            .into_par_iter()
            .enumerate()
            .map(|(k, s)| build(&s, first + (k * rows) as u64, names, schema))
            .collect();
        self.take(built)?;
        let schema = self.schema.clone();
        match self.sink {
            Sink::Memory(v) => Ok((schema, v, self.figures, None)),
            Sink::Parquet(w) => {
                let file = w
                    .into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .into_inner()?;
                Ok((schema, Vec::new(), self.figures, Some(file.commit()?)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_from_a_duration_count_equal_a_pass_over_every_session() {
        let pairs = vec![(b"1.2.3.4".to_vec(), b"ua".to_vec()); 1];
        let names = Names {
            pairs: &pairs,
            bots: &[true],
            pages: &[],
        };
        let mut rnd = 5u64;
        for n in [0usize, 1, 2, 3, 10, 101, 1000] {
            let s: Vec<Cluster> = (0..n)
                .map(|_| {
                    rnd = rnd.wrapping_mul(6364136223846793005).wrapping_add(1);
                    let mut c = Cluster::new(100, 0, 0);
                    c.end = 100 + (rnd >> 50) as i64 % 40;
                    c.pages = (rnd >> 20) % 3;
                    c
                })
                .collect();
            // Added in two parts and merged, as parallel batches are.
            let mut f = Figures::default();
            let mut g = Figures::default();
            f.add(&s[..n / 3], &names);
            g.add(&s[n / 3..], &names);
            f.merge(g);
            let mut d: Vec<i64> = s.iter().map(|c| c.end - c.start).collect();
            d.sort_unstable();
            let median = match n {
                0 => 0.0,
                _ if n % 2 == 1 => d[n / 2] as f64,
                _ => (d[n / 2 - 1] + d[n / 2]) as f64 / 2.0,
            };
            let j = f.to_json();
            assert_eq!(j["median_duration_s"], median, "{n}");
            assert_eq!(j["sessions"], n);
            assert_eq!(j["bot_sessions"], n);
            let bounces = s.iter().filter(|c| c.pages <= 1).count();
            let want = if n == 0 {
                0.0
            } else {
                bounces as f64 / n as f64
            };
            assert_eq!(j["bounce_rate"], want);
        }
    }
}
