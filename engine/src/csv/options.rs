//! The options of a csv-to-parquet run, as the Python spec sends them (JSON, unknown keys rejected).

use crate::csv::types::ColType;
use crate::error::{Error, OnError, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

/// How the outputs are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One Parquet file per input; `outputs[i]` is the path for `inputs[i]`.
    #[default]
    PerFile,
    /// Every input into the one file `dst`.
    Merged,
    /// A Hive-style dataset under the folder `dst`: `col=value/part-<id>.parquet`.
    Partitioned,
}

/// What to do with a malformed row (ragged, broken quote, invalid UTF-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Malformed {
    /// Drop the row and report it (the default).
    #[default]
    Skip,
    /// Stop converting this input at the first malformed row.
    Fail,
    /// Keep the row: missing or unreadable fields become null, extra fields are dropped; reported.
    NullFill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    #[default]
    #[serde(alias = "utf-8", alias = "utf8-bom", alias = "utf-8-sig")]
    Utf8,
    #[serde(alias = "latin-1", alias = "iso-8859-1", alias = "cp1252")]
    Latin1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    #[default]
    Zstd,
    Snappy,
    Lz4,
    None,
}

fn default_true() -> bool {
    true
}
fn default_quote() -> Option<String> {
    Some("\"".into())
}
fn default_nulls() -> Vec<String> {
    vec![String::new()]
}
fn default_infer_rows() -> usize {
    10_000
}
fn default_row_group() -> usize {
    1 << 20
}
fn default_block() -> usize {
    16 << 20
}
fn default_page() -> usize {
    8 << 20
}
fn default_sample() -> usize {
    1 << 20
}

/// Every option of a run. See `aerofs_kernel/pipelines/csv_to_parquet.py` for the user-facing schema.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    #[serde(default)]
    pub layout: Layout,
    /// Per-file layout: the output path of each input, in the order of the inputs.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Merged layout: the output file; partitioned layout: the output folder.
    #[serde(default)]
    pub dst: Option<String>,
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// One byte, or null to detect it from the data.
    #[serde(default)]
    pub delimiter: Option<String>,
    #[serde(default = "default_quote")]
    pub quote: Option<String>,
    #[serde(default)]
    pub escape: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default = "default_true")]
    pub header: bool,
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default = "default_nulls")]
    pub null_values: Vec<String>,
    /// Column name -> type, overriding inference.
    #[serde(default)]
    pub columns: BTreeMap<String, ColType>,
    /// Infer fixed-point columns (one scale, e.g. prices) as exact decimals (the default); false:
    /// float64. A job's tasks agree on the scales through `base_types`.
    #[serde(default = "default_true")]
    pub decimals: bool,
    /// Column types a job's planner unified over ALL the job's inputs (`[name, type]` pairs, in
    /// column order), given to each task so that a task sampling only its own files starts from the
    /// types an interactive run over every input would have. Unlike `columns` (overrides, whose
    /// non-parsing values become null) they are a starting point: the task's own samples are joined
    /// into them and a later value that does not fit widens the column as usual. The sample drift is
    /// then the planner's to report (the task's run reports only its late widenings). Ignored where
    /// no unification happens (`unify=false` with the per-file layout).
    #[serde(default)]
    pub base_types: Vec<(String, ColType)>,
    #[serde(default = "default_infer_rows")]
    pub infer_rows: usize,
    #[serde(default = "default_sample")]
    pub sample_bytes: usize,
    #[serde(default = "default_true")]
    pub unify: bool,
    #[serde(default)]
    pub malformed: Malformed,
    #[serde(default)]
    pub on_error: OnError,
    #[serde(default)]
    pub compression: Codec,
    #[serde(default)]
    pub compression_level: Option<i32>,
    #[serde(default = "default_row_group")]
    pub row_group_size: usize,
    #[serde(default = "default_block")]
    pub block_size: usize,
    /// Target size of a Parquet data page in bytes (larger pages compress better).
    #[serde(default = "default_page")]
    pub page_size: usize,
    #[serde(default = "default_true")]
    pub dictionary: bool,
    #[serde(default = "default_true")]
    pub statistics: bool,
    #[serde(default)]
    pub threads: usize,
    /// Preview only: rows of sample returned.
    #[serde(default)]
    pub preview_rows: Option<usize>,
}

impl Options {
    pub fn from_json(json: &str) -> Result<Self> {
        let o: Options = serde_json::from_str(json)
            .map_err(|e| Error::options(format!("csv-to-parquet: {e}")))?;
        o.check()?;
        Ok(o)
    }

    fn check(&self) -> Result<()> {
        for (name, v) in [
            ("delimiter", &self.delimiter),
            ("quote", &self.quote),
            ("escape", &self.escape),
            ("comment", &self.comment),
        ] {
            if let Some(s) = v {
                if s.len() != 1
                    || s.as_bytes()[0] == 0
                    || s.as_bytes()[0] == b'\n'
                    || s.as_bytes()[0] == b'\r'
                {
                    return Err(Error::options(format!(
                        "csv-to-parquet: {name} must be one ASCII character other than NUL, CR and LF, not {s:?}"
                    )));
                }
            }
        }
        if self.delimiter.is_some() && self.delimiter == self.quote {
            return Err(Error::options(
                "csv-to-parquet: delimiter and quote must differ",
            ));
        }
        if self.row_group_size == 0 || self.block_size < 1024 {
            return Err(Error::options(
                "csv-to-parquet: row_group_size must be > 0 and block_size >= 1024",
            ));
        }
        if self.layout == Layout::Partitioned && self.partition_by.is_empty() {
            return Err(Error::options(
                "csv-to-parquet: layout 'partitioned' needs partition_by",
            ));
        }
        if self.layout != Layout::PerFile && self.dst.is_none() {
            return Err(Error::options(
                "csv-to-parquet: layouts 'merged' and 'partitioned' need dst",
            ));
        }
        Ok(())
    }

    pub fn byte(v: &Option<String>) -> Option<u8> {
        v.as_ref().map(|s| s.as_bytes()[0])
    }
}
