//! Summary figures and the sessions table's rows.

use super::sessionize::Cluster;
use crate::error::Result;
use ahash::RandomState;
use arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringBuilder, TimestampSecondArray,
    UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use hashbrown::HashMap;
use std::borrow::Cow;
use std::sync::Arc;

/// 1970-01-01 + `z` days as `YYYY-MM-DD`.
pub fn civil(z: i64) -> String {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The `n` largest counts as `[{"value", "hits"}]` (ties by value).
pub fn top(counts: &HashMap<Vec<u8>, u64, RandomState>, n: usize) -> serde_json::Value {
    let mut v: Vec<(&[u8], u64)> = counts.iter().map(|(k, c)| (k.as_slice(), *c)).collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.truncate(n);
    v.into_iter()
        .map(|(k, c)| serde_json::json!({"value": String::from_utf8_lossy(k), "hits": c}))
        .collect()
}

/// The text of the ids sessions refer to, borrowed from the run's state (read as UTF-8 row by row:
/// the rows are built as the run goes, while new pairs and pages still come).
pub struct Names<'a> {
    /// (ip, user agent) per pair id.
    pub pairs: &'a [(Vec<u8>, Vec<u8>)],
    /// Whether the pair's user agent is a bot's, per pair id.
    pub bots: &'a [bool],
    /// (path, hits) per page id.
    pub pages: &'a [(Vec<u8>, u64)],
}

impl Names<'_> {
    fn ip(&self, pair: u32) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.pairs[pair as usize].0)
    }
    fn user_agent(&self, pair: u32) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.pairs[pair as usize].1)
    }
    fn page(&self, page: u32) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.pages[page as usize].0)
    }
}

fn ts_ty() -> DataType {
    DataType::Timestamp(TimeUnit::Second, Some("UTC".into()))
}

pub fn schema() -> SchemaRef {
    let ts = ts_ty();
    Arc::new(Schema::new(vec![
        Field::new("session_id", DataType::UInt64, false),
        Field::new("ip", DataType::Utf8, false),
        Field::new("user_agent", DataType::Utf8, false),
        Field::new("start", ts.clone(), false),
        Field::new("end", ts, false),
        Field::new("duration_s", DataType::Int64, false),
        Field::new("requests", DataType::UInt64, false),
        Field::new("pages", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("entry_page", DataType::Utf8, true),
        Field::new("exit_page", DataType::Utf8, true),
        Field::new("status_2xx", DataType::UInt64, false),
        Field::new("status_3xx", DataType::UInt64, false),
        Field::new("status_4xx", DataType::UInt64, false),
        Field::new("status_5xx", DataType::UInt64, false),
        Field::new("is_bot", DataType::Boolean, false),
        // When the entry and exit pages were requested: what an exact merge of tasks needs.
        Field::new("entry_time", ts_ty(), true),
        Field::new("exit_time", ts_ty(), true),
    ]))
}

/// Rows per record batch of the sessions table. Batches are built in parallel, and each column of a
/// batch is one pass over its clusters (32Ki x 128 bytes, 4 MB): small enough to stay in cache
/// from column to column, where one batch of millions of sessions read the whole list from memory
/// once per column.
pub const BATCH_ROWS: usize = 1 << 15;

/// `s` cut into batches of `rows` (the last one shorter), in order. Each cut is copied out of the
/// tail and the list shrunk (its pages given back), so the pieces never cost much more than the
/// list did.
pub fn cut(mut s: Vec<Cluster>, rows: usize) -> Vec<Vec<Cluster>> {
    let mut out = Vec::with_capacity(s.len().div_ceil(rows));
    while !s.is_empty() {
        let at = (s.len() - 1) / rows * rows;
        out.push(s.split_off(at));
        s.shrink_to_fit();
    }
    out.reverse();
    out
}

/// The rows of sessions `s`, whose ids start at `first_id`.
pub fn sessions_batch(
    s: &[Cluster],
    first_id: u64,
    names: &Names,
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    // Sized first: a builder grown by doubling copies and page-faults the column again and again.
    // `bytes`: the raw text's length (the same as the UTF-8 text's but for invalid bytes), so the
    // text is validated once, as it is appended.
    fn txt<S: AsRef<str>>(v: impl Iterator<Item = Option<S>>, bytes: usize) -> ArrayRef {
        let mut b = StringBuilder::with_capacity(v.size_hint().0, bytes);
        for x in v {
            b.append_option(x);
        }
        Arc::new(b.finish())
    }
    let u = |f: &dyn Fn(&Cluster) -> u64| {
        Arc::new(UInt64Array::from_iter_values(s.iter().map(f))) as ArrayRef
    };
    let opt_t = |f: &dyn Fn(&Cluster) -> Option<i64>| {
        Arc::new(TimestampSecondArray::from_iter(s.iter().map(f)).with_timezone("UTC")) as ArrayRef
    };
    let t = |f: &dyn Fn(&Cluster) -> i64| {
        Arc::new(TimestampSecondArray::from_iter_values(s.iter().map(f)).with_timezone("UTC"))
            as ArrayRef
    };
    let page = |e: Option<(i64, u32)>| e.map(|e| names.page(e.1));
    let x_entry = |x: &Cluster| x.entry();
    let x_exit = |x: &Cluster| x.exit();
    let page_bytes = |f: fn(&Cluster) -> Option<(i64, u32)>| -> usize {
        s.iter()
            .map(|x| f(x).map_or(0, |e| names.pages[e.1 as usize].0.len()))
            .sum()
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(
            first_id..first_id + s.len() as u64,
        )),
        txt(
            s.iter().map(|x| Some(names.ip(x.pair))),
            s.iter().map(|x| names.pairs[x.pair as usize].0.len()).sum(),
        ),
        txt(
            s.iter().map(|x| Some(names.user_agent(x.pair))),
            s.iter().map(|x| names.pairs[x.pair as usize].1.len()).sum(),
        ),
        t(&|x| x.start),
        t(&|x| x.end),
        Arc::new(Int64Array::from_iter_values(
            s.iter().map(|x| x.end - x.start),
        )),
        u(&|x| x.requests),
        u(&|x| x.pages),
        u(&|x| x.bytes),
        txt(s.iter().map(|x| page(x.entry())), page_bytes(x_entry)),
        txt(s.iter().map(|x| page(x.exit())), page_bytes(x_exit)),
        u(&|x| x.status[0]),
        u(&|x| x.status[1]),
        u(&|x| x.status[2]),
        u(&|x| x.status[3]),
        Arc::new(BooleanArray::from_iter(
            s.iter().map(|x| Some(names.bots[x.pair as usize])),
        )),
        opt_t(&|x| x.entry().map(|e| e.0)),
        opt_t(&|x| x.exit().map(|e| e.0)),
    ];
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

/// Columns of (nearly) one value per session, written without a dictionary (as the job's merge
/// writes them: `session_stream.PLAIN_COLUMNS`): a dictionary of them only costs the interning.
const PLAIN_COLUMNS: &[&str] = &[
    "session_id",
    "start",
    "end",
    "bytes",
    "entry_time",
    "exit_time",
];

/// How `sessions.parquet` is written (zstd), in row groups of `row_group_rows` (0: the writer's
/// default, 1Mi rows). Statistics (min/max per row group) are the writer's default: a job's merge
/// reads each task file's spans from them.
pub fn parquet_props(row_group_rows: usize) -> parquet::file::properties::WriterProperties {
    use parquet::basic::{Compression, ZstdLevel};
    let mut b = parquet::file::properties::WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()));
    for c in PLAIN_COLUMNS {
        b = b.set_column_dictionary_enabled(parquet::schema::types::ColumnPath::from(*c), false);
    }
    match row_group_rows {
        0 => b.build(),
        n => b.set_max_row_group_row_count(Some(n)).build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_order_in_batch_sized_pieces() {
        for n in [0, 1, BATCH_ROWS - 1, BATCH_ROWS, 2 * BATCH_ROWS + 5] {
            let s: Vec<Cluster> = (0..n as i64).map(|i| Cluster::new(i, 0, 0)).collect();
            let chunks = cut(s, BATCH_ROWS);
            assert_eq!(chunks.len(), n.div_ceil(BATCH_ROWS));
            assert!(chunks.iter().rev().skip(1).all(|c| c.len() == BATCH_ROWS));
            let starts: Vec<i64> = chunks.iter().flatten().map(|c| c.start).collect();
            assert_eq!(starts, (0..n as i64).collect::<Vec<_>>());
        }
    }

    #[test]
    fn civil_round_trips() {
        assert_eq!(super::civil(0), "1970-01-01");
        assert_eq!(
            super::civil(super::super::parse::days_from_civil(2024, 2, 29)),
            "2024-02-29"
        );
    }
}
