//! Per-file sampling (dialect, header, column types) and the unification of many files' schemas.

use crate::csv::decimal::Sampled;
use crate::csv::dialect::Dialect;
use crate::csv::options::Options;
use crate::csv::split::{count_byte, last_record_end};
use crate::csv::tokenize::{unquote, Fields};
use crate::csv::types::{classify, ColType};
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What the sample of one input says about it.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub path: String,
    pub size: u64,
    pub dialect: Dialect,
    pub names: Vec<String>,
    pub types: Vec<ColType>,
    /// Decompressed byte offset where the data rows start (after BOM and header).
    pub data_start: u64,
    /// Newlines before the data (header, comments): line numbers of data rows start after them.
    pub header_lines: u64,
    /// Average bytes per data row in the sample (0 when the sample had no row).
    pub row_bytes: f64,
    /// The sample itself (kept only for previews).
    pub sample: Vec<u8>,
    /// Where the data rows start in `sample`, and where its last complete record ends.
    pub sample_data: (usize, usize),
    pub sample_is_all: bool,
    /// Per column: whether its sample values repeat enough for dictionary encoding to pay.
    pub repetitive: Vec<bool>,
    /// The sample's data rows, already tokenized: the conversion starts from them (see [`Head`]).
    pub head: Option<Head>,
}

/// The data rows of an input's sample (from `data_start`, whole records) and their fields, as the
/// conversion's tokenizer would cut them. The conversion's first block starts with these bytes and
/// tokenizes only what follows, instead of reading and tokenizing the sample a second time (a
/// 1 MiB sample of a 5 MB input is a fifth of its tokenizing).
#[derive(Debug, Clone)]
pub struct Head {
    pub data: Vec<u8>,
    pub fields: Fields,
}

impl Head {
    /// The head of `data` tokenized as `fields`, if it is worth keeping and `budget` (bytes, shared
    /// by every input of a run) still has room for it. A sample with a malformed row is not kept:
    /// sampling tokenizes with `fill` on, which differs from the conversion's dialect there.
    fn keep(data: &[u8], mut fields: Fields, fill: bool, budget: &AtomicUsize) -> Option<Head> {
        if fields.rows == 0 || !fields.bad.is_empty() {
            return None;
        }
        let cost = data.len() + 8 * fields.starts.len();
        budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(cost)
            })
            .ok()?;
        fields.fill = fill;
        fields.starts.shrink_to_fit();
        fields.ends.shrink_to_fit();
        Some(Head {
            data: data.to_vec(),
            fields,
        })
    }
}

/// Read up to `limit` decompressed bytes of `path`, and whether that is all of it.
///
/// An uncompressed input is read with positional reads of just those bytes: for a remote object
/// one ranged request, where a sequential reader would start fetching ahead (megabytes the
/// conversion, which reads on after the sample, would fetch again).
pub fn read_sample(path: &Path, limit: usize) -> Result<(Vec<u8>, bool)> {
    if crate::io::Compression::of(path) == crate::io::Compression::None {
        let (src, len) = crate::io::open_random(path)?;
        let mut buf = vec![0u8; (limit as u64 + 1).min(len) as usize];
        let mut got = 0;
        while got < buf.len() {
            match src.read_at(&mut buf[got..], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        buf.truncate(got);
        let all = buf.len() <= limit;
        buf.truncate(limit);
        return Ok((buf, all));
    }
    let src = crate::io::open_input(path)?;
    let mut buf = Vec::with_capacity(limit.min(1 << 24));
    src.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    let all = buf.len() <= limit;
    buf.truncate(limit);
    Ok((buf, all))
}

/// Decode a header or string value to UTF-8 (Latin-1 maps byte for byte).
pub fn decode(bytes: &[u8], latin1: bool) -> String {
    if latin1 {
        bytes.iter().map(|&b| b as char).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

fn column_names(raw: Vec<String>) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    raw.into_iter()
        .enumerate()
        .map(|(i, n)| {
            let base = if n.trim().is_empty() {
                format!("column_{}", i + 1)
            } else {
                n
            };
            let k = seen.entry(base.clone()).or_insert(0);
            *k += 1;
            if *k == 1 {
                base
            } else {
                format!("{base}_{k}")
            }
        })
        .collect()
}

/// Sample one input: dialect, names, types; and its [`Head`] when `head_budget` has room for it.
pub fn infer_file(
    path: &Path,
    opts: &Options,
    sample_bytes: usize,
    head_budget: Option<&AtomicUsize>,
) -> Result<FileInfo> {
    let display = path.display().to_string();
    let size = crate::io::file_size(path)?;
    let (mut sample, all) = read_sample(path, sample_bytes)?;
    let bom = if sample.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    sample.drain(..bom);
    let dialect = Dialect::for_sample(opts, &sample, &display);
    let complete = if all {
        Some(sample.len())
    } else {
        last_record_end(&sample, &dialect)
    };
    // Without a record end in the sample (one record longer than it), its last row is cut short.
    let whole_records = complete.is_some();
    let complete = complete.unwrap_or(sample.len());
    let body = &sample[..complete];

    // The first record: header names (or just the column count).
    let first_end = first_record_end(body, &dialect);
    let mut head = Fields::new(0, false);
    dialect.tokenize(&body[..first_end], &mut head);
    let (hs, he) = (0, head.row_ends.first().map(|r| r.0).unwrap_or(0));
    let mut tmp = Vec::new();
    let raw_names: Vec<String> = (hs..he)
        .map(|i| {
            let (s, e) = (
                head.starts[i] as usize,
                (head.ends[i] & !crate::csv::tokenize::QUOTED) as usize,
            );
            if head.ends[i] & crate::csv::tokenize::QUOTED != 0 {
                unquote(&body[s..e], dialect.quote, dialect.escape, &mut tmp);
                decode(&tmp, dialect.latin1)
            } else {
                decode(&body[s..e], dialect.latin1)
            }
        })
        .collect();
    let ncols = raw_names.len();
    let (names, data_off) = if dialect.header {
        (column_names(raw_names), first_end)
    } else {
        ((1..=ncols).map(|i| format!("column_{i}")).collect(), 0)
    };
    let header_lines = count_byte(&body[..data_off], b'\n') as u64;

    let data = &body[data_off..];
    let mut fields = Fields::new(ncols.max(1), true);
    dialect.tokenize(data, &mut fields);
    let rows = fields.rows.min(opts.infer_rows);
    let nulls = NullTokens::new(&opts.null_values);
    let mut sampled = vec![Sampled::default(); ncols];
    for (c, t) in sampled.iter_mut().enumerate() {
        for r in 0..rows {
            if t.is_string() {
                break;
            }
            let Some((s, e, q)) = fields.get(r, c) else {
                continue;
            };
            let v = if q {
                unquote(&data[s..e], dialect.quote, dialect.escape, &mut tmp);
                if tmp.is_empty() {
                    continue;
                }
                &tmp[..]
            } else {
                if nulls.is_null(&data[s..e]) {
                    continue;
                }
                &data[s..e]
            };
            t.add(classify(v, opts.decimals), v);
        }
    }
    let mut types: Vec<ColType> = sampled.iter().map(Sampled::finish).collect();
    for (name, t) in names.iter().zip(types.iter_mut()) {
        if let Some(o) = opts.columns.get(name) {
            *t = *o;
        }
    }
    let repetitive = (0..ncols)
        .map(|c| is_repetitive(data, &fields, c, rows, &dialect))
        .collect();
    let used = if rows > 0 && rows < fields.rows {
        fields.row_offset(rows)
    } else {
        data.len()
    };
    let row_bytes = if rows > 0 {
        used as f64 / rows as f64
    } else {
        0.0
    };
    let sample_is_all = all;
    let head = head_budget
        .filter(|_| whole_records)
        .and_then(|b| Head::keep(data, fields, dialect.fill, b));
    Ok(FileInfo {
        path: display,
        size,
        dialect,
        names,
        types,
        data_start: (bom + data_off) as u64,
        header_lines,
        row_bytes,
        sample_data: (data_off, complete),
        sample,
        sample_is_all,
        repetitive,
        head,
    })
}

/// Whether at most a third of the sampled values of column `c` are distinct.
fn is_repetitive(data: &[u8], f: &Fields, c: usize, rows: usize, d: &Dialect) -> bool {
    let mut seen: hashbrown::HashSet<&[u8]> = hashbrown::HashSet::new();
    let mut n = 0usize;
    let _ = d;
    for r in 0..rows.min(4096) {
        if let Some((s, e, _)) = f.get(r, c) {
            seen.insert(&data[s..e]);
            n += 1;
        }
    }
    n == 0 || seen.len() * 3 <= n
}

/// Offset after the first record (after leading comment and blank lines).
fn first_record_end(body: &[u8], d: &Dialect) -> usize {
    let mut f = Fields::new(0, false);
    // Tokenize a growing prefix until one record is complete.
    let mut len = body.len().min(64 * 1024);
    loop {
        f.starts.clear();
        f.ends.clear();
        f.row_ends.clear();
        f.rows = 0;
        f.bad.clear();
        d.tokenize(&body[..len], &mut f);
        if let Some(&(_, end)) = f.row_ends.first() {
            if end < len || len == body.len() {
                return end;
            }
        }
        if len == body.len() {
            return body.len();
        }
        len = (len * 2).min(body.len());
    }
}

/// The configured null tokens, with a fast path for the default (only the empty field).
#[derive(Debug)]
pub struct NullTokens {
    tokens: Vec<Vec<u8>>,
    only_empty: bool,
}

impl NullTokens {
    pub fn new(tokens: &[String]) -> Self {
        let tokens: Vec<Vec<u8>> = tokens.iter().map(|t| t.as_bytes().to_vec()).collect();
        let only_empty = tokens.len() == 1 && tokens[0].is_empty();
        NullTokens { tokens, only_empty }
    }
    #[inline(always)]
    pub fn is_null(&self, raw: &[u8]) -> bool {
        if self.only_empty {
            raw.is_empty()
        } else {
            self.tokens.iter().any(|t| t == raw)
        }
    }
}

/// How one column's type was settled across files.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub column: String,
    /// Inferred type -> the files (first 20) that had it.
    pub types: BTreeMap<String, Vec<String>>,
    /// Files (first 20) that lack the column.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_in: Vec<String>,
    pub resolved: String,
    pub how: String,
}

/// The unified schema: column names in order of first appearance and their joined types.
///
/// `base` (a job's types unified over all its inputs, see `Options::base_types`) comes first: its
/// columns keep their order and their types are joined with the samples', so a task over some of
/// a job's files gets the columns and types of a run over all of them.
pub fn unify(
    infos: &[&FileInfo],
    overrides: &BTreeMap<String, ColType>,
    base: &[(String, ColType)],
) -> (Vec<(String, ColType)>, Vec<Drift>) {
    let mut order: Vec<String> = Vec::new();
    // name -> (joined type, files by inferred type, files having it)
    type Seen = (ColType, BTreeMap<ColType, Vec<String>>, usize);
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    for (n, t) in base {
        let e = seen.entry(n.clone()).or_insert_with(|| {
            order.push(n.clone());
            (ColType::Null, BTreeMap::new(), 0)
        });
        e.0 = e.0.join(*t);
    }
    for info in infos {
        for (n, &t) in info.names.iter().zip(&info.types) {
            let e = seen.entry(n.clone()).or_insert_with(|| {
                order.push(n.clone());
                (ColType::Null, BTreeMap::new(), 0)
            });
            e.0 = e.0.join(t);
            e.1.entry(t).or_default().push(info.path.clone());
            e.2 += 1;
        }
    }
    let mut drift = Vec::new();
    let cols = order
        .into_iter()
        .map(|n| {
            let (t, by_type, count) = &seen[&n];
            let t = overrides.get(&n).copied().unwrap_or(*t);
            let non_null: Vec<_> = by_type.keys().filter(|k| **k != ColType::Null).collect();
            if non_null.len() > 1 || *count < infos.len() {
                let missing: Vec<String> = infos
                    .iter()
                    .filter(|i| !i.names.contains(&n))
                    .take(20)
                    .map(|i| i.path.clone())
                    .collect();
                let how = if overrides.contains_key(&n) {
                    "override".to_string()
                } else if non_null.len() > 1 {
                    format!("widened to {}", t.name())
                } else {
                    "null where missing".to_string()
                };
                drift.push(Drift {
                    column: n.clone(),
                    types: by_type
                        .iter()
                        .map(|(k, v)| (k.name(), v.iter().take(20).cloned().collect()))
                        .collect(),
                    missing_in: missing,
                    resolved: t.name(),
                    how,
                });
            }
            (n, t)
        })
        .collect();
    (cols, drift)
}
