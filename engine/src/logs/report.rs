//! Summary figures, the sessions table and its Parquet file.

use super::parse::Hit;
use super::sessionize::Session;
use crate::error::Result;
use crate::io::AtomicFile;
use ahash::RandomState;
use arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringBuilder, TimestampSecondArray,
    UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use hashbrown::{HashMap, HashSet};
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

fn top(counts: HashMap<&[u8], u64, RandomState>, n: usize) -> serde_json::Value {
    let mut v: Vec<(&[u8], u64)> = counts.into_iter().collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.truncate(n);
    v.into_iter()
        .map(|(k, c)| serde_json::json!({"value": String::from_utf8_lossy(k), "hits": c}))
        .collect()
}

/// Request-level figures (order of `hits` does not matter).
pub fn summarise(hits: &[Hit], n: usize) -> serde_json::Value {
    let mut visitors: HashSet<(&[u8], &[u8], i32), RandomState> = HashSet::default();
    let mut pages: HashMap<&[u8], u64, RandomState> = HashMap::default();
    let mut refs: HashMap<&[u8], u64, RandomState> = HashMap::default();
    let mut uas: HashMap<&[u8], u64, RandomState> = HashMap::default();
    let mut status: std::collections::BTreeMap<u16, u64> = Default::default();
    let mut hours = [0u64; 24];
    let mut days: std::collections::BTreeMap<i32, u64> = Default::default();
    let mut bytes = 0u64;
    for h in hits {
        // GoAccess's default: 4xx responses do not make a visitor (its --4xx-to-unique-count is off).
        if !(400..500).contains(&h.status) {
            visitors.insert((h.ip, h.user_agent, h.local_day));
        }
        *pages.entry(h.path).or_insert(0) += 1;
        if !h.referrer.is_empty() && h.referrer != b"-" {
            *refs.entry(h.referrer).or_insert(0) += 1;
        }
        *uas.entry(h.user_agent).or_insert(0) += 1;
        *status.entry(h.status).or_insert(0) += 1;
        hours[h.local_hour as usize % 24] += 1;
        *days.entry(h.local_day).or_insert(0) += 1;
        bytes += h.bytes;
    }
    serde_json::json!({
        "requests": hits.len(),
        "bytes": bytes,
        "unique_visitors": visitors.len(),
        "top_pages": top(pages, n),
        "top_referrers": top(refs, n),
        "top_user_agents": top(uas, n),
        "status_codes": status.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
        "hits_per_hour": hours.to_vec(),
        "hits_per_day": days.iter().map(|(k, v)| (civil(*k as i64), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
    })
}

/// Session-level figures.
pub fn session_summary(s: &[Session]) -> serde_json::Value {
    let n = s.len();
    let mut d: Vec<i64> = s.iter().map(|x| x.end - x.start).collect();
    d.sort_unstable();
    let median = if n == 0 {
        0.0
    } else if n % 2 == 1 {
        d[n / 2] as f64
    } else {
        (d[n / 2 - 1] + d[n / 2]) as f64 / 2.0
    };
    let div = |a: f64| if n == 0 { 0.0 } else { a / n as f64 };
    serde_json::json!({
        "sessions": n,
        "bot_sessions": s.iter().filter(|x| x.bot).count(),
        "bounce_rate": div(s.iter().filter(|x| x.pages <= 1).count() as f64),
        "mean_duration_s": div(d.iter().sum::<i64>() as f64),
        "median_duration_s": median,
        "pages_per_session": div(s.iter().map(|x| x.pages).sum::<u64>() as f64),
    })
}

pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Second, Some("UTC".into()));
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
    ]))
}

pub fn sessions_batch(s: &[Session]) -> Result<(SchemaRef, RecordBatch)> {
    fn txt<'b>(v: impl Iterator<Item = Option<&'b [u8]>>) -> ArrayRef {
        let mut b = StringBuilder::new();
        for x in v {
            b.append_option(x.map(String::from_utf8_lossy));
        }
        Arc::new(b.finish())
    }
    let u = |f: &dyn Fn(&Session) -> u64| {
        Arc::new(UInt64Array::from_iter_values(s.iter().map(f))) as ArrayRef
    };
    let t = |f: &dyn Fn(&Session) -> i64| {
        Arc::new(TimestampSecondArray::from_iter_values(s.iter().map(f)).with_timezone("UTC"))
            as ArrayRef
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(0..s.len() as u64)),
        txt(s.iter().map(|x| Some(x.ip))),
        txt(s.iter().map(|x| Some(x.user_agent))),
        t(&|x| x.start),
        t(&|x| x.end),
        Arc::new(Int64Array::from_iter_values(
            s.iter().map(|x| x.end - x.start),
        )),
        u(&|x| x.requests),
        u(&|x| x.pages),
        u(&|x| x.bytes),
        txt(s.iter().map(|x| x.entry_page)),
        txt(s.iter().map(|x| x.exit_page)),
        u(&|x| x.status[1]),
        u(&|x| x.status[2]),
        u(&|x| x.status[3]),
        u(&|x| x.status[4]),
        Arc::new(BooleanArray::from(
            s.iter().map(|x| x.bot).collect::<Vec<_>>(),
        )),
    ];
    let schema = schema();
    Ok((schema.clone(), RecordBatch::try_new(schema, cols)?))
}

pub fn write_parquet(dest: &Path, schema: &SchemaRef, batch: &RecordBatch) -> Result<PathBuf> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    let mut file = AtomicFile::create(dest)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut w = ArrowWriter::try_new(&mut file, schema.clone(), Some(props))?;
    w.write(batch)?;
    w.close()?;
    file.commit()
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_round_trips() {
        assert_eq!(super::civil(0), "1970-01-01");
        assert_eq!(
            super::civil(super::super::parse::days_from_civil(2024, 2, 29)),
            "2024-02-29"
        );
    }
}
