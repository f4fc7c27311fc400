//! The `word-count` pipeline: a (word, count) table of text files.
//!
//! Default rules are the classic word-count benchmark's (`tr -s '[:space:]' '\n' | tr A-Z a-z |
//! sort | uniq -c`): split on ASCII whitespace, lowercase ASCII letters, keep punctuation. With
//! `unicode`, words are runs of letters/digits, lowercased with Unicode rules. Files are split into
//! chunks at whitespace; each rayon worker folds chunks into its own hash map and the maps are merged
//! at the end, so memory grows with distinct words only. Plain local files are memory-mapped;
//! anything else (compressed, remote) is streamed in blocks ([`stream`]), never held whole. An input that is not valid UTF-8 is
//! reported in `errors` (with the offset of the first bad byte) and not counted.

pub mod count;
mod stream;
pub mod tokenize;

#[cfg(feature = "python")]
pub(crate) mod python;

use crate::error::{Error, OnError, Problem, Result};
use crate::io::{map_input, AtomicFile};
use crate::parallel::{default_threads, with_pool};
use crate::progress::Progress;
use arrow::array::{ArrayRef, RecordBatch, StringBuilder, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use count::{count_into, merge, new_counts, Counts};
use rayon::prelude::*;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn default_chunk() -> usize {
    8 << 20
}

/// Smallest automatic chunk: below this, scheduling costs more than balancing saves.
const MIN_CHUNK: usize = 256 << 10;

/// Options (JSON from Python; unknown keys are an error).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Unicode words (letters/digits) with Unicode lowercasing instead of the classic rules.
    pub unicode: bool,
    /// Words to drop (compared after lowercasing).
    pub stop_words: Vec<String>,
    /// Drop words shorter than this many characters.
    pub min_length: usize,
    /// Keep only the N most frequent words (None: all).
    pub top: Option<usize>,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
    /// Bytes per parallel chunk (tests force tiny chunks).
    #[serde(default = "default_chunk")]
    pub chunk_size: usize,
    /// Where to write the table: .parquet (default) or .csv.
    pub output: Option<String>,
    /// For each input, an optional byte range [start, end) of it to count (a task's slice of a big
    /// file): words that start inside the range are counted.
    pub byte_ranges: Option<Vec<Option<[u64; 2]>>>,
    pub on_error: OnError,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            unicode: false,
            stop_words: Vec::new(),
            min_length: 0,
            top: None,
            threads: 0,
            chunk_size: default_chunk(),
            output: None,
            byte_ranges: None,
            on_error: OnError::Skip,
        }
    }
}

/// What a run produced.
pub struct WordCount {
    pub summary: serde_json::Value,
    pub outputs: Vec<String>,
    pub errors: Vec<Problem>,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

struct FileTotal {
    path: String,
    words: u64,
    bytes: u64,
}

/// Count the words of `inputs`.
pub fn run(inputs: &[String], opts: &Options, progress: &Progress) -> Result<WordCount> {
    if let Some(r) = &opts.byte_ranges {
        if r.len() != inputs.len() {
            return Err(Error::options(
                "word-count: byte_ranges must have one entry per input",
            ));
        }
    }
    let chunk = opts.chunk_size.max(1);
    let sizes: u64 = inputs
        .iter()
        .map(|p| crate::io::file_size(Path::new(p)).unwrap_or(0))
        .sum();
    progress.set_totals(inputs.len() as u64, sizes);
    let threads = if opts.threads == 0 {
        default_threads()
    } else {
        opts.threads
    };
    let problems: Mutex<Vec<Problem>> = Mutex::new(Vec::new());
    let totals: Mutex<Vec<FileTotal>> = Mutex::new(Vec::new());
    // One table per worker thread (indexed by rayon's thread index, so each lock is uncontended);
    // they are merged once at the end. Memory grows with distinct words only.
    let tables: Vec<Mutex<Counts>> = (0..threads.max(1))
        .map(|_| Mutex::new(new_counts()))
        .collect();

    with_pool(threads, || {
        inputs.par_iter().enumerate().try_for_each(|(i, path)| {
            let range = opts.byte_ranges.as_ref().and_then(|r| r[i]);
            match count_file(
                Path::new(path),
                range,
                opts.unicode,
                chunk,
                progress,
                &tables,
            ) {
                Ok((words, bytes)) => {
                    totals.lock().unwrap().push(FileTotal {
                        path: path.clone(),
                        words,
                        bytes,
                    });
                }
                Err(e) if e.is_cancelled() => return Err(e),
                Err(e) => {
                    if opts.on_error == OnError::Fail {
                        return Err(e);
                    }
                    progress.add_error();
                    problems
                        .lock()
                        .unwrap()
                        .push(e.with_path(path).to_problem());
                }
            }
            progress.input_done();
            Ok(())
        })
    })?;
    progress.check()?;
    let counts = tables
        .into_iter()
        .map(|t| t.into_inner().unwrap())
        .reduce(merge)
        .unwrap_or_default();

    let total_words: u64 = counts.iter().map(|(_, v)| v).sum();
    let distinct_all = counts.len();
    let mut rows = select(counts, opts);
    // The final order is serial work after the parallel count: sort on every worker (the order is
    // total, so an unstable sort is deterministic).
    with_pool(threads, || {
        rows.par_sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(())
    })?;
    if let Some(n) = opts.top {
        rows.truncate(n);
    }
    let (schema, batch) = to_batch(&rows)?;
    let mut outputs = Vec::new();
    if let Some(out) = &opts.output {
        let dest = PathBuf::from(out);
        let written = if out.to_ascii_lowercase().ends_with(".csv") {
            write_csv(&dest, &rows)?
        } else {
            write_parquet(&dest, &schema, &batch)?
        };
        outputs.push(written.display().to_string());
    }
    let mut totals = totals.into_inner().unwrap();
    totals.sort_by(|a, b| a.path.cmp(&b.path));
    let errors = problems.into_inner().unwrap();
    let summary = serde_json::json!({
        "files": totals.len(),
        "total_words": total_words,
        "distinct_words": distinct_all,
        "rows": rows.len(),
        "bytes": totals.iter().map(|t| t.bytes).sum::<u64>(),
        "errors": errors.len(),
        "per_file": totals.iter().map(|t| (t.path.clone(), serde_json::json!(t.words))).collect::<serde_json::Map<_, _>>(),
    });
    Ok(WordCount {
        summary,
        outputs,
        errors,
        schema,
        batches: vec![batch],
    })
}

/// Apply stop words and min length; rows as (word, count).
fn select(counts: Counts, opts: &Options) -> Vec<(String, u64)> {
    let stop: hashbrown::HashSet<String> = opts
        .stop_words
        .iter()
        .map(|w| {
            if opts.unicode {
                w.to_lowercase()
            } else {
                w.to_ascii_lowercase()
            }
        })
        .collect();
    counts
        .into_iter_words()
        .filter_map(|(k, v)| {
            // Inputs are validated UTF-8 and chunks cut at ASCII whitespace, so keys are UTF-8.
            let w = String::from_utf8(k)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            if (opts.min_length > 0 && w.chars().count() < opts.min_length) || stop.contains(&w) {
                None
            } else {
                Some((w, v))
            }
        })
        .collect()
}

/// Count one file (or a byte range of it) into the per-thread `tables`: (words, bytes).
fn count_file(
    path: &Path,
    range: Option<[u64; 2]>,
    unicode: bool,
    chunk: usize,
    progress: &Progress,
    tables: &[Mutex<Counts>],
) -> Result<(u64, u64)> {
    progress.check()?;
    progress.set_current(&path.display().to_string());
    if !crate::io::can_map(path) {
        if range.is_some() {
            return Err(Error::options(
                "word-count: byte ranges need a plain local file (not compressed or remote)",
            ));
        }
        return stream::count_stream(path, unicode, chunk, progress, tables);
    }
    let data = map_input(path)?;
    let (start, end) = match range {
        Some([s, e]) => {
            let s = tokenize::boundary(&data, s as usize);
            let e = tokenize::boundary(&data, e as usize);
            (s, e.max(s))
        }
        None => (0, data.len()),
    };
    // Chunks small enough to balance two busy cores (and to stay in L2), each cut just after ASCII
    // whitespace.
    let chunk = chunk.min(((end - start) / 64).max(MIN_CHUNK));
    let mut cuts = vec![start];
    let mut pos = start;
    while pos < end {
        let next = tokenize::boundary(&data, (pos + chunk).min(end))
            .min(end)
            .max(pos + 1);
        cuts.push(next);
        pos = next;
    }
    let chunks: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
    // Validate first (in parallel, far faster than counting), so a bad file contributes nothing.
    if let Some(bad) = chunks
        .par_iter()
        .filter_map(|&(s, e)| {
            std::str::from_utf8(&data[s..e])
                .err()
                .map(|err| s + err.valid_up_to())
        })
        .min()
    {
        let line = memchr::memchr_iter(b'\n', &data[..bad]).count() as u64 + 1;
        return Err(Error::input(
            path,
            Some(line),
            Some(bad as u64),
            "not valid UTF-8",
        ));
    }
    let words = chunks
        .par_iter()
        .map(|&(s, e)| {
            progress.check()?;
            let slot = rayon::current_thread_index().unwrap_or(0) % tables.len();
            let w = count_into(&mut tables[slot].lock().unwrap(), &data[s..e], unicode);
            progress.add_bytes((e - s) as u64);
            Ok::<_, Error>(w)
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))?;
    progress.add_rows(words);
    Ok((words, (end - start) as u64))
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("word", DataType::Utf8, false),
        Field::new("count", DataType::UInt64, false),
    ]))
}

fn to_batch(rows: &[(String, u64)]) -> Result<(SchemaRef, RecordBatch)> {
    let schema = schema();
    let mut words = StringBuilder::with_capacity(rows.len(), rows.iter().map(|r| r.0.len()).sum());
    for (w, _) in rows {
        words.append_value(w);
    }
    let counts = UInt64Array::from_iter_values(rows.iter().map(|r| r.1));
    let cols: Vec<ArrayRef> = vec![Arc::new(words.finish()), Arc::new(counts)];
    Ok((schema.clone(), RecordBatch::try_new(schema, cols)?))
}

fn write_parquet(dest: &Path, schema: &SchemaRef, batch: &RecordBatch) -> Result<PathBuf> {
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

fn write_csv(dest: &Path, rows: &[(String, u64)]) -> Result<PathBuf> {
    use std::io::Write;
    let mut file = AtomicFile::create(dest)?;
    let io = |e| Error::io(dest, e);
    writeln!(file, "word,count").map_err(io)?;
    for (w, c) in rows {
        if w.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
            writeln!(file, "\"{}\",{c}", w.replace('"', "\"\"")).map_err(io)?;
        } else {
            writeln!(file, "{w},{c}").map_err(io)?;
        }
    }
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn reference(text: &str) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for w in text.split_ascii_whitespace() {
            *m.entry(w.to_ascii_lowercase()).or_insert(0) += 1;
        }
        m
    }

    fn run_on(text: &str, chunk: usize, ranges: Option<Vec<[u64; 2]>>) -> BTreeMap<String, u64> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, text).unwrap();
        let path = p.display().to_string();
        let parts: Vec<Option<[u64; 2]>> = match ranges {
            Some(r) => r.into_iter().map(Some).collect(),
            None => vec![None],
        };
        let inputs = vec![path; parts.len()];
        let opts = Options {
            chunk_size: chunk,
            byte_ranges: Some(parts),
            ..Default::default()
        };
        // The table has one row per distinct word, so it reads straight into a map.
        table(&run(&inputs, &opts, &Progress::new()).unwrap())
    }

    proptest::proptest! {
        #[test]
        fn equals_reference_at_any_chunk_size(words in proptest::collection::vec("[a-zA-Zé,.]{1,6}", 0..60),
                                              seps in proptest::collection::vec("[ \n\t]{1,3}", 60),
                                              chunk in 1usize..40, cut in 0u64..400) {
            let mut text = String::new();
            for (w, s) in words.iter().zip(&seps) { text.push_str(w); text.push_str(s); }
            let len = text.len() as u64;
            let cut = cut.min(len);
            proptest::prop_assert_eq!(run_on(&text, chunk, None), reference(&text));
            proptest::prop_assert_eq!(run_on(&text, chunk, Some(vec![[0, cut], [cut, len]])), reference(&text));
        }
    }

    #[test]
    fn invalid_utf8_is_an_error_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.txt");
        let good = dir.path().join("good.txt");
        std::fs::write(&bad, b"ok\nfine \xff\xfe here").unwrap();
        std::fs::write(&good, b"a b a").unwrap();
        let inputs = vec![bad.display().to_string(), good.display().to_string()];
        let r = run(&inputs, &Options::default(), &Progress::new()).unwrap();
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].line, Some(2));
        assert_eq!(r.errors[0].offset, Some(8));
        assert_eq!(r.summary["total_words"], 3);
        assert_eq!(r.summary["distinct_words"], 2);
    }

    fn gz(path: &Path, data: &[u8]) {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(path).unwrap(),
            flate2::Compression::fast(),
        );
        e.write_all(data).unwrap();
        e.finish().unwrap();
    }

    fn table(r: &WordCount) -> BTreeMap<String, u64> {
        let b = &r.batches[0];
        let w = b
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        let c = b.column(1).as_any().downcast_ref::<UInt64Array>().unwrap();
        (0..b.num_rows())
            .map(|i| (w.value(i).to_string(), c.value(i)))
            .collect()
    }

    #[test]
    fn compressed_input_is_streamed_in_blocks_and_counts_like_the_plain_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..20_000 {
            // Multi-byte words of every length, so block cuts fall next to (never inside) them.
            text.push_str(["Éclair", "naïve", "日本語", "the", "The"][i % 5]);
            text.push_str(&"é".repeat(i % 7));
            text.push_str(if i % 11 == 0 { "\n" } else { " " });
        }
        let plain = dir.path().join("a.txt");
        let packed = dir.path().join("a.txt.gz");
        std::fs::write(&plain, &text).unwrap();
        gz(&packed, text.as_bytes());
        for (unicode, chunk) in [(false, 1000), (false, 7), (true, 4096)] {
            let opts = Options {
                unicode,
                chunk_size: chunk,
                ..Default::default()
            };
            let a = run(&[plain.display().to_string()], &opts, &Progress::new()).unwrap();
            let b = run(&[packed.display().to_string()], &opts, &Progress::new()).unwrap();
            assert!(b.errors.is_empty());
            assert_eq!(table(&a), table(&b));
            assert_eq!(a.summary["total_words"], b.summary["total_words"]);
            assert_eq!(a.summary["bytes"], b.summary["bytes"]);
        }
        assert_eq!(
            table(
                &run(
                    &[packed.display().to_string()],
                    &Options::default(),
                    &Progress::new()
                )
                .unwrap()
            ),
            reference(&text)
        );
    }

    #[test]
    fn invalid_utf8_deep_in_a_compressed_input_names_file_and_line_and_loses_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = b"word other\n".repeat(5000);
        let at = data.len() - 7; // in the last line, block 20-something at chunk 2000
        data.insert(at, 0xff);
        let bad = dir.path().join("bad.txt.gz");
        let good = dir.path().join("good.txt.gz");
        gz(&bad, &data);
        gz(&good, b"a b a");
        let opts = Options {
            chunk_size: 2000,
            ..Default::default()
        };
        let inputs = vec![bad.display().to_string(), good.display().to_string()];
        let r = run(&inputs, &opts, &Progress::new()).unwrap();
        assert_eq!(r.errors.len(), 1);
        assert!(r.errors[0].path.ends_with("bad.txt.gz"));
        assert_eq!(r.errors[0].line, Some(5000));
        assert_eq!(r.errors[0].offset, Some(at as u64));
        // The bad file contributes nothing, not even its valid blocks.
        assert_eq!(r.summary["total_words"], 3);
        assert_eq!(r.summary["files"], 1);
    }

    #[test]
    fn byte_ranges_of_a_compressed_input_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt.gz");
        gz(&p, b"a b");
        let opts = Options {
            byte_ranges: Some(vec![Some([0, 1])]),
            ..Default::default()
        };
        let r = run(&[p.display().to_string()], &opts, &Progress::new()).unwrap();
        assert_eq!(r.errors.len(), 1);
        assert!(
            r.errors[0].message.contains("byte ranges"),
            "{}",
            r.errors[0].message
        );
    }

    #[test]
    fn stop_words_min_length_top_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        std::fs::write(&p, "The a the b b c c c zz zz zz").unwrap();
        let opts = Options {
            stop_words: vec!["THE".into()],
            min_length: 1,
            top: Some(2),
            ..Default::default()
        };
        let r = run(&[p.display().to_string()], &opts, &Progress::new()).unwrap();
        let b = &r.batches[0];
        let w = b
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!((w.value(0), w.value(1)), ("c", "zz"));
    }
}
