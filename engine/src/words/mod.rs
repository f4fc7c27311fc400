//! The `word-count` pipeline: a (word, count) table of text files.
//!
//! Default rules are the classic word-count benchmark's (`tr -s '[:space:]' '\n' | tr A-Z a-z |
//! sort | uniq -c`): split on ASCII whitespace, lowercase ASCII letters, keep punctuation. With
//! `unicode`, words are runs of letters/digits, lowercased with Unicode rules. Files are split into
//! chunks at whitespace; each rayon worker folds chunks into its own hash map, and the other maps
//! are merged into the largest in parallel, filtered, ordered and turned into Arrow on the same pool
//! ([`rows`]), so memory grows with distinct words only and no serial step after the count caps a
//! second core's speed-up.
//! Plain local files are read by chunks with `pread` into a reusable buffer per thread ([`read`]);
//! anything else (compressed, remote) is streamed in blocks ([`stream`]), never held whole. A byte
//! range (a job's task) is cut the same way out of a local file and out of a stream: the words that
//! start in it. Byte progress counts on-disk bytes (the
//! compressed bytes of a .gz/.zst), one share per input. An input that is not valid UTF-8 is
//! reported in `errors` (with the offset of the first bad byte) and not counted.

pub mod count;
mod read;
mod rows;
mod stream;
pub mod tokenize;

#[cfg(feature = "python")]
pub(crate) mod python;

use crate::error::{Error, OnError, Problem, Result};
use crate::io::AtomicFile;
use crate::parallel::{threads_or_default, with_pool};
use crate::progress::{Progress, Share};
use arrow::array::{Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use count::{new_counts, Counts};
use rayon::prelude::*;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn default_chunk() -> usize {
    8 << 20
}

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
    // Each input's share of the byte progress: its on-disk size, or its range's length.
    let shares: Vec<Share> = inputs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let size = crate::io::file_size(Path::new(p)).unwrap_or(0);
            let size = match opts.byte_ranges.as_ref().and_then(|r| r[i]) {
                Some([s, e]) => e.min(size).saturating_sub(s.min(size)),
                None => size,
            };
            Share::new(progress, size)
        })
        .collect();
    progress.set_totals(
        inputs.len() as u64,
        shares.iter().map(|s| s.size()).sum::<u64>(),
    );
    let threads = threads_or_default(opts.threads);
    let problems: Mutex<Vec<Problem>> = Mutex::new(Vec::new());
    let totals: Mutex<Vec<FileTotal>> = Mutex::new(Vec::new());
    // One table per worker thread (indexed by rayon's thread index, so each lock is uncontended);
    // they are merged once at the end. Memory grows with distinct words only.
    let tables: Vec<Mutex<Counts>> = (0..threads.max(1))
        .map(|_| Mutex::new(new_counts()))
        .collect();

    let schema = schema();
    // One pool for the count and everything after it: the tail runs on the same threads.
    let ordered = with_pool(threads, || {
        inputs.par_iter().enumerate().try_for_each(|(i, path)| {
            let range = opts.byte_ranges.as_ref().and_then(|r| r[i]);
            let counted = count_file(
                Path::new(path),
                range,
                opts.unicode,
                chunk,
                &shares[i],
                &tables,
            );
            // A finished input, counted or skipped, is all of its share: the run ends at 100%.
            shares[i].finish();
            match counted {
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
        })?;
        progress.check()?;
        let tables: Vec<Counts> = tables
            .into_iter()
            .map(|t| t.into_inner().unwrap())
            .collect();
        rows::finish(tables, opts, schema.clone())
    })?;
    let batch = ordered.batch;
    let mut outputs = Vec::new();
    if let Some(out) = &opts.output {
        let dest = PathBuf::from(out);
        let written = if out.to_ascii_lowercase().ends_with(".csv") {
            write_csv(&dest, &batch)?
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
        "total_words": ordered.total_words,
        "distinct_words": ordered.distinct,
        "rows": batch.num_rows(),
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

/// Count one file (or a byte range of it) into the per-thread `tables`: (words, bytes).
fn count_file(
    path: &Path,
    range: Option<[u64; 2]>,
    unicode: bool,
    chunk: usize,
    share: &Share,
    tables: &[Mutex<Counts>],
) -> Result<(u64, u64)> {
    let progress = share.progress();
    progress.check()?;
    progress.set_current(&path.display().to_string());
    if !crate::io::can_map(path) {
        if range.is_some() && crate::io::Compression::of(path) != crate::io::Compression::None {
            return Err(Error::options(
                "word-count: byte ranges need an uncompressed input",
            ));
        }
        return stream::count_stream(path, range, unicode, chunk, share, tables);
    }
    read::count_file(path, range, unicode, chunk, share, tables)
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("word", DataType::Utf8, false),
        Field::new("count", DataType::UInt64, false),
    ]))
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

fn write_csv(dest: &Path, batch: &RecordBatch) -> Result<PathBuf> {
    use std::io::Write;
    let mut file = AtomicFile::create(dest)?;
    let io = |e| Error::io(dest, e);
    writeln!(file, "word,count").map_err(io)?;
    let words = batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::internal("word-count: the word column is not a string column"))?;
    let counts = batch
        .column(1)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .ok_or_else(|| Error::internal("word-count: the count column is not a u64 column"))?;
    for (w, c) in words.iter().zip(counts.iter()) {
        let (w, c) = (w.unwrap_or_default(), c.unwrap_or_default());
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

    /// A text as the engine sees a remote object: a registered stream, read only from where it is
    /// opened (so a range never reads the object's head unless a line number needs it).
    struct MemStream(Vec<u8>);

    impl crate::io::Stream for MemStream {
        fn url(&self) -> &str {
            "mem://text"
        }
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn open(&self, offset: u64) -> std::io::Result<Box<dyn std::io::Read + Send>> {
            // Small reads, as a remote reader's chunks fall anywhere.
            struct Trickle(std::io::Cursor<Vec<u8>>);
            impl std::io::Read for Trickle {
                fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                    let n = buf.len().min(5);
                    self.0.read(&mut buf[..n])
                }
            }
            let rest = self.0[(offset as usize).min(self.0.len())..].to_vec();
            Ok(Box::new(Trickle(std::io::Cursor::new(rest))))
        }
        fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
            let rest = &self.0[(offset as usize).min(self.0.len())..];
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            Ok(n)
        }
    }

    /// What a run over ranges gave: its table, (total words, bytes), errors' (line, offset).
    type RangesRun = (
        BTreeMap<String, u64>,
        serde_json::Value,
        Vec<(Option<u64>, Option<u64>)>,
    );

    /// The same ranges of the same bytes, as a mapped file and as a stream.
    fn ranges_both_ways(text: &[u8], cuts: &[u64], chunk: usize) -> [RangesRun; 2] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, text).unwrap();
        let tokens = crate::io::register_streams(vec![(
            "a.txt".into(),
            Arc::new(MemStream(text.to_vec())) as Arc<dyn crate::io::Stream>,
        )]);
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().map(|&c| c.min(text.len() as u64)));
        bounds.push(text.len() as u64);
        bounds.sort();
        let ranges: Vec<Option<[u64; 2]>> = bounds.windows(2).map(|w| Some([w[0], w[1]])).collect();
        let out = [p.display().to_string(), tokens[0].clone()].map(|path| {
            let opts = Options {
                chunk_size: chunk,
                byte_ranges: Some(ranges.clone()),
                ..Default::default()
            };
            let r = run(&vec![path; ranges.len()], &opts, &Progress::new()).unwrap();
            let mut errs: Vec<_> = r.errors.iter().map(|e| (e.line, e.offset)).collect();
            errs.sort();
            let s = &r.summary;
            (
                table(&r),
                serde_json::json!([s["total_words"], s["bytes"]]),
                errs,
            )
        });
        crate::io::unregister_streams(&tokens);
        out
    }

    proptest::proptest! {
        #[test]
        fn a_streamed_range_is_cut_where_a_mapped_one_is(
            words in proptest::collection::vec("[a-zé日,]{1,5}", 0..40),
            seps in proptest::collection::vec("[ \n\t]{1,2}", 40),
            cuts in proptest::collection::vec(0u64..200, 0..4),
            chunk in 1usize..30) {
            let mut text = String::new();
            for (w, s) in words.iter().zip(&seps) { text.push_str(w); text.push_str(s); }
            let [mapped, streamed] = ranges_both_ways(text.as_bytes(), &cuts, chunk);
            proptest::prop_assert_eq!(&mapped.0, &reference(&text));
            proptest::prop_assert_eq!(mapped, streamed);
        }
    }

    #[test]
    fn a_bad_byte_in_a_streamed_range_is_located_in_the_whole_input() {
        let mut text = b"one two\nthree fourfive\nsix seven\n".repeat(20);
        text[300] = 0xff; // 3 bytes into line 28 (33 bytes per 3 lines)
        for cuts in [
            vec![150],
            vec![150, 299],
            vec![150, 301],
            vec![100, 200, 300],
        ] {
            let [mapped, streamed] = ranges_both_ways(&text, &cuts, 7);
            assert_eq!(mapped.2, vec![(Some(28), Some(300))], "cuts {cuts:?}");
            assert_eq!(mapped, streamed, "cuts {cuts:?}");
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
    fn progress_of_a_compressed_input_counts_its_on_disk_bytes_and_ends_at_its_total() {
        let dir = tempfile::tempdir().unwrap();
        let text = "lorem ipsum dolor sit amet\n".repeat(200_000);
        let packed = dir.path().join("a.txt.gz");
        gz(&packed, text.as_bytes());
        let on_disk = std::fs::metadata(&packed).unwrap().len();
        // No cap on the share: what the stream itself counts is the compressed size, not the
        // 5.4 MB it decompresses to.
        let progress = Progress::new();
        let share = Share::new(&progress, u64::MAX);
        let tables = vec![Mutex::new(new_counts())];
        let counted =
            stream::count_stream(&packed, None, false, 64 << 10, &share, &tables).unwrap();
        assert_eq!(counted, (1_000_000, text.len() as u64));
        assert_eq!(share.added(), on_disk);
        // A run over it and a bad input (skipped, never counted) ends at exactly its total.
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, b"ok \xff").unwrap();
        let progress = Progress::new();
        let inputs = [packed.display().to_string(), bad.display().to_string()];
        let opts = Options {
            chunk_size: 64 << 10,
            ..Default::default()
        };
        let r = run(&inputs, &opts, &progress).unwrap();
        assert_eq!(r.errors.len(), 1);
        let s = progress.snapshot();
        let total = on_disk + 4; // and the bad file's 4 bytes
        assert_eq!((s.bytes_total, s.bytes_done), (total, total));
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
