//! Summary figures, the sessions table and its Parquet file.

use super::sessionize::Cluster;
use crate::error::Result;
use crate::io::AtomicFile;
use ahash::RandomState;
use arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringBuilder, TimestampSecondArray,
    UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use hashbrown::HashMap;
use rayon::prelude::*;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
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

/// The text of the ids sessions refer to, converted once (not once per session).
pub struct Names<'a> {
    /// Per (ip, user agent) pair.
    pub ips: Vec<Cow<'a, str>>,
    pub user_agents: Vec<Cow<'a, str>>,
    pub bots: Vec<bool>,
    /// Per page id.
    pub pages: Vec<Cow<'a, str>>,
}

/// Session-level figures of the finished sessions `s` (`pair` is the pair id). Integer sums,
/// so the parallel passes give the same figures in any split.
pub fn session_summary(s: &[Cluster], names: &Names) -> serde_json::Value {
    let n = s.len();
    let mut d: Vec<i64> = s.par_iter().map(|x| x.end - x.start).collect();
    d.par_sort_unstable();
    let median = if n == 0 {
        0.0
    } else if n % 2 == 1 {
        d[n / 2] as f64
    } else {
        (d[n / 2 - 1] + d[n / 2]) as f64 / 2.0
    };
    // (bot sessions, bounces, pages) in one pass.
    let (bots, bounces, pages) = s
        .par_iter()
        .map(|x| {
            (
                u64::from(names.bots[x.pair as usize]),
                u64::from(x.pages <= 1),
                x.pages,
            )
        })
        .reduce(|| (0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
    let div = |a: f64| if n == 0 { 0.0 } else { a / n as f64 };
    serde_json::json!({
        "sessions": n,
        "bot_sessions": bots,
        "bounce_rate": div(bounces as f64),
        "mean_duration_s": div(d.par_iter().sum::<i64>() as f64),
        "median_duration_s": median,
        "pages_per_session": div(pages as f64),
    })
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

/// `s` cut into batches of [`BATCH_ROWS`] (the last one shorter), in order. Each cut is copied out
/// of the tail and the list shrunk (its pages given back), so the pieces never cost much more than
/// the list did.
pub fn cut(mut s: Vec<Cluster>) -> Vec<Vec<Cluster>> {
    let mut out = Vec::with_capacity(s.len().div_ceil(BATCH_ROWS));
    while !s.is_empty() {
        let at = (s.len() - 1) / BATCH_ROWS * BATCH_ROWS;
        out.push(s.split_off(at));
        s.shrink_to_fit();
    }
    out.reverse();
    out
}

/// The sessions table of the sorted sessions `chunks` (from [`cut`]: the split depends only on the
/// number of sessions), one batch per chunk, built in parallel; each chunk is freed once its batch
/// is built, so the table grows while the sessions shrink.
pub fn sessions_batches(
    chunks: Vec<Vec<Cluster>>,
    names: &Names,
) -> (SchemaRef, Result<Vec<RecordBatch>>) {
    let schema = schema();
    let batches = chunks
        .into_par_iter()
        .enumerate()
        .map(|(k, chunk)| sessions_batch(&chunk, (k * BATCH_ROWS) as u64, names, &schema))
        .collect();
    (schema, batches)
}

/// The rows of sessions `s`, whose ids start at `first_id`.
fn sessions_batch(
    s: &[Cluster],
    first_id: u64,
    names: &Names,
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    // Sized first: a builder grown by doubling copies and page-faults the column again and again.
    fn txt<'b>(v: impl Iterator<Item = Option<&'b str>> + Clone) -> ArrayRef {
        let bytes = v.clone().map(|x| x.map_or(0, str::len)).sum();
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
    let page = |e: Option<(i64, u32)>| e.map(|e| &*names.pages[e.1 as usize]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(
            first_id..first_id + s.len() as u64,
        )),
        txt(s.iter().map(|x| Some(&*names.ips[x.pair as usize]))),
        txt(s.iter().map(|x| Some(&*names.user_agents[x.pair as usize]))),
        t(&|x| x.start),
        t(&|x| x.end),
        Arc::new(Int64Array::from_iter_values(
            s.iter().map(|x| x.end - x.start),
        )),
        u(&|x| x.requests),
        u(&|x| x.pages),
        u(&|x| x.bytes),
        txt(s.iter().map(|x| page(x.entry()))),
        txt(s.iter().map(|x| page(x.exit()))),
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

pub fn write_parquet(dest: &Path, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<PathBuf> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    let mut file = AtomicFile::create(dest)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut w = ArrowWriter::try_new(&mut file, schema.clone(), Some(props))?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_order_in_batch_sized_pieces() {
        for n in [0, 1, BATCH_ROWS - 1, BATCH_ROWS, 2 * BATCH_ROWS + 5] {
            let s: Vec<Cluster> = (0..n as i64).map(|i| Cluster::new(i, 0, 0)).collect();
            let chunks = cut(s);
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
