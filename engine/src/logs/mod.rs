//! The `log-sessions` pipeline: Apache/Nginx access logs (Common or Combined, auto-detected per line;
//! .gz/.zst too) into visitor sessions and a traffic summary.
//!
//! Files are memory-mapped and cut into chunks at newlines; rayon workers parse chunks with a
//! hand-written parser ([`parse`]) into hits that borrow the input. Hits of all inputs are then sorted
//! by (IP, user agent, time) — stable, so equal times keep file/line order — and sessionised
//! ([`sessionize`]): a key's hits are taken in time order whatever their order in the files (rotated
//! files in any order, out-of-order lines), and a gap longer than `timeout_minutes` starts a new
//! session. Because sessions are cut after the global sort, chunk and file boundaries never split a
//! session. Lines that do not parse are counted and sampled (file, line, text), never fatal.
//! Memory: one small record per request (about 150 bytes) plus the mapped files.

pub mod parse;
pub mod report;
pub mod sessionize;

#[cfg(feature = "python")]
pub(crate) mod python;

use crate::error::{Error, OnError, Problem, Result};
use crate::io::map_input;
use crate::parallel::{default_threads, with_pool};
use crate::progress::Progress;
use parse::Hit;
use rayon::prelude::*;
use serde::Deserialize;
use std::path::Path;

fn default_timeout() -> f64 {
    30.0
}
fn default_chunk() -> usize {
    8 << 20
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
    /// `auto`, `combined` or `common` (both are recognised by the same parser).
    #[serde(default = "default_format")]
    pub log_format: String,
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
    /// Folder to write sessions.parquet and summary.json into.
    #[serde(default)]
    pub output_dir: Option<String>,
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
}

struct Chunk<'a> {
    file: usize,
    hits: Vec<Hit<'a>>,
    lines: u64,
    unparsed: u64,
    /// (line number inside the chunk, 1-based; text)
    samples: Vec<(u64, String)>,
}

fn parse_chunk<'a>(file: usize, data: &'a [u8], keep: usize) -> Chunk<'a> {
    let mut c = Chunk {
        file,
        hits: Vec::with_capacity(data.len() / 200 + 1),
        lines: 0,
        unparsed: 0,
        samples: Vec::new(),
    };
    let mut start = 0;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
        let line = &data[start..end];
        c.lines += 1;
        if !line.iter().all(u8::is_ascii_whitespace) {
            match parse::parse_line(line) {
                Some(h) => c.hits.push(h),
                None => {
                    c.unparsed += 1;
                    if c.samples.len() < keep {
                        c.samples.push((
                            c.lines,
                            String::from_utf8_lossy(&line[..line.len().min(500)]).into_owned(),
                        ));
                    }
                }
            }
        }
        start = end + 1;
    }
    c
}

/// Parse, sessionise and summarise `inputs`.
pub fn run(inputs: &[String], opts: &Options, progress: &Progress) -> Result<LogSessions> {
    let by_ua = match opts.session_key.as_str() {
        "ip_ua" => true,
        "ip" => false,
        k => {
            return Err(Error::options(format!(
                "log-sessions: session_key must be ip_ua or ip, not {k:?}"
            )))
        }
    };
    if !matches!(opts.log_format.as_str(), "auto" | "combined" | "common") {
        return Err(Error::options(format!(
            "log-sessions: log_format {:?} is not supported (auto, combined, common)",
            opts.log_format
        )));
    }
    let timeout = (opts.timeout_minutes * 60.0).round() as i64;
    let assets: Vec<Vec<u8>> = opts
        .asset_extensions
        .iter()
        .map(|e| e.trim_start_matches('.').to_ascii_lowercase().into_bytes())
        .collect();
    let sizes: u64 = inputs
        .iter()
        .map(|p| crate::io::file_size(Path::new(p)).unwrap_or(0))
        .sum();
    progress.set_totals(inputs.len() as u64, sizes);
    let mut errors = Vec::new();
    let mut maps = Vec::new();
    for p in inputs {
        match map_input(Path::new(p)) {
            Ok(m) => maps.push((p.clone(), m)),
            Err(e) if opts.on_error == OnError::Fail => return Err(e),
            Err(e) => {
                progress.add_error();
                errors.push(e.with_path(p).to_problem());
            }
        }
    }
    let mut pieces: Vec<(usize, usize, usize)> = Vec::new();
    for (fi, (_, m)) in maps.iter().enumerate() {
        let mut s = 0;
        while s < m.len() {
            let want = (s + opts.chunk_size.max(1)).min(m.len());
            let e = if want >= m.len() {
                m.len()
            } else {
                memchr::memchr(b'\n', &m[want..]).map_or(m.len(), |i| want + i + 1)
            };
            pieces.push((fi, s, e));
            s = e;
        }
    }
    let threads = if opts.threads == 0 {
        default_threads()
    } else {
        opts.threads
    };
    let keep = opts.unparsed_samples;
    let result = with_pool(threads, || {
        let chunks: Vec<Chunk> = pieces
            .par_iter()
            .map(|&(fi, s, e)| {
                progress.check()?;
                let c = parse_chunk(fi, &maps[fi].1[s..e], keep);
                progress.add_bytes((e - s) as u64);
                progress.add_rows(c.hits.len() as u64);
                Ok(c)
            })
            .collect::<Result<_>>()?;
        progress.check()?;
        let mut samples = Vec::new();
        let (mut unparsed, mut lines) = (0u64, 0u64);
        let mut line_base = vec![0u64; maps.len()];
        let mut hits: Vec<Hit> = Vec::with_capacity(chunks.iter().map(|c| c.hits.len()).sum());
        for c in chunks {
            for (l, text) in c.samples {
                if samples.len() < keep {
                    samples.push(serde_json::json!({"file": maps[c.file].0, "line": line_base[c.file] + l, "text": text}));
                }
            }
            line_base[c.file] += c.lines;
            unparsed += c.unparsed;
            lines += c.lines;
            hits.extend(c.hits);
        }
        let summary_parts = report::summarise(&hits, opts.top);
        progress.check()?;
        if by_ua {
            hits.par_sort_by(|a, b| (a.ip, a.user_agent, a.ts).cmp(&(b.ip, b.user_agent, b.ts)));
        } else {
            hits.par_sort_by(|a, b| (a.ip, a.ts).cmp(&(b.ip, b.ts)));
        }
        progress.check()?;
        let sessions = sessionize::sessions(&hits, by_ua, timeout, &assets);
        let mut summary = report::session_summary(&sessions);
        let obj = summary.as_object_mut().expect("object");
        for (k, v) in summary_parts.as_object().expect("object") {
            obj.insert(k.clone(), v.clone());
        }
        obj.insert("unparsed_lines".into(), unparsed.into());
        obj.insert("lines".into(), lines.into());
        obj.insert("unparsed_samples".into(), samples.into());
        obj.insert("files".into(), maps.len().into());
        let (schema, batch) = report::sessions_batch(&sessions)?;
        Ok((summary, schema, batch))
    })?;
    let (summary, schema, batch) = result;
    let mut outputs = Vec::new();
    if let Some(dir) = &opts.output_dir {
        let dir = Path::new(dir);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        outputs.push(
            report::write_parquet(&dir.join("sessions.parquet"), &schema, &batch)?
                .display()
                .to_string(),
        );
        let json =
            serde_json::to_vec_pretty(&summary).map_err(|e| Error::internal(e.to_string()))?;
        outputs.push(
            crate::io::write_atomic(&dir.join("summary.json"), &json)?
                .display()
                .to_string(),
        );
    }
    Ok(LogSessions {
        summary,
        outputs,
        errors,
        schema,
        batches: vec![batch],
    })
}
