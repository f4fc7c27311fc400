//! `preview`: the schema, a few rows and an estimate of the output for a whole folder, from a small
//! sample of each input (read in parallel), without writing anything.

use crate::csv::build::{build_batch, Plan};
use crate::csv::convert::{plan_for, sample_all, Keep};
use crate::csv::infer::{unify, Drift, FileInfo};
use crate::csv::options::{Layout, Options};
use crate::csv::tokenize::Fields;
use crate::csv::types::ColType;
use crate::csv::writer::writer_props;
use crate::error::{Problem, Result};
use crate::io::Compression;
use crate::progress::Progress;
use arrow::array::RecordBatch;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Throughput assumed per thread for the time estimate (measured on the reference 2-core machine).
const MB_PER_SEC_PER_THREAD: f64 = 120.0;
/// Assumed decompression ratio of `.gz`/`.zst` inputs when the sample cannot tell.
const COMPRESSED_RATIO: f64 = 4.0;

#[derive(Debug, Serialize)]
pub struct PreviewSummary {
    pub files: u64,
    pub bytes_in: u64,
    pub estimated_rows: u64,
    pub estimated_bytes_out: u64,
    pub estimated_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct PreviewFile {
    pub path: String,
    pub columns: usize,
    pub estimated_rows: u64,
    pub dialect: crate::csv::dialect::Dialect,
}

#[derive(Debug, Serialize)]
pub struct PreviewResult {
    pub summary: PreviewSummary,
    pub outputs: Vec<String>,
    pub errors: Vec<Problem>,
    pub schema: Vec<crate::csv::convert::ColumnOut>,
    pub drift: Vec<Drift>,
    pub files: Vec<PreviewFile>,
}

fn sample_rows(info: &FileInfo, plan: &Plan, limit: usize) -> Option<RecordBatch> {
    let data = &info.sample[info.sample_data.0..info.sample_data.1];
    let mut f = Fields::new(plan.ncols, plan.dialect.fill);
    plan.dialect.tokenize(data, &mut f);
    if std::str::from_utf8(data).is_err() && !plan.dialect.latin1 {
        return None;
    }
    let n = f.rows.min(limit);
    f.rows = n;
    f.starts.truncate(n * plan.ncols);
    f.ends.truncate(n * plan.ncols);
    build_batch(data, &f, plan).ok().map(|(b, _)| b)
}

fn estimated_rows(info: &FileInfo) -> u64 {
    if info.row_bytes <= 0.0 {
        return 0;
    }
    let raw = match Compression::of(Path::new(&info.path)) {
        Compression::None => info.size as f64,
        _ if info.sample_is_all => info.sample.len() as f64,
        _ => info.size as f64 * COMPRESSED_RATIO,
    };
    ((raw - info.data_start as f64).max(0.0) / info.row_bytes).round() as u64
}

/// Parquet bytes per row, from encoding the sample rows with the run's settings.
fn bytes_per_row(batch: &RecordBatch, opts: &Options) -> Result<f64> {
    if batch.num_rows() == 0 {
        return Ok(0.0);
    }
    let props = writer_props(opts)?;
    let mut w =
        parquet::arrow::ArrowWriter::try_new(Vec::new(), batch.schema(), Some((*props).clone()))?;
    w.write(batch)?;
    let bytes = w.into_inner()?;
    Ok(bytes.len() as f64 / batch.num_rows() as f64)
}

/// Preview `inputs`: returns the result and the sample rows (first readable input, unified schema).
pub fn preview(
    inputs: &[PathBuf],
    opts: &Options,
    progress: &Progress,
) -> Result<(PreviewResult, Option<RecordBatch>)> {
    let sample_bytes = opts.sample_bytes.min(256 * 1024);
    let threads = crate::parallel::threads_or_default(opts.threads);
    progress.set_totals(inputs.len() as u64, 0);
    let (infos, errors) = crate::parallel::with_pool(threads, || {
        sample_all(inputs, opts, sample_bytes, Keep::Samples)
    })?;
    progress.check()?;
    let ok: Vec<&FileInfo> = infos.iter().flatten().map(|i| i.as_ref()).collect();
    let (unified, drift) = unify(&ok, &opts.columns, &opts.base_types);
    let rows_wanted = opts.preview_rows.unwrap_or(20);
    let (sample, encoded) = match ok.first() {
        Some(info) => {
            let plan = plan_for(info, &unified, Layout::Merged, opts);
            let big = sample_rows(info, &plan, opts.infer_rows);
            let per_row = match &big {
                Some(b) => bytes_per_row(b, opts)?,
                None => 0.0,
            };
            (
                big.map(|b| b.slice(0, b.num_rows().min(rows_wanted))),
                per_row,
            )
        }
        None => (None, 0.0),
    };
    let files: Vec<PreviewFile> = ok
        .iter()
        .map(|i| PreviewFile {
            path: i.path.clone(),
            columns: i.names.len(),
            estimated_rows: estimated_rows(i),
            dialect: i.dialect,
        })
        .collect();
    let rows: u64 = files.iter().map(|f| f.estimated_rows).sum();
    let bytes_in: u64 = ok.iter().map(|i| i.size).sum();
    let raw: f64 = ok
        .iter()
        .map(|i| {
            if Compression::of(Path::new(&i.path)) == Compression::None {
                i.size as f64
            } else {
                i.size as f64 * COMPRESSED_RATIO
            }
        })
        .sum();
    for _ in &ok {
        progress.input_done();
    }
    let summary = PreviewSummary {
        files: ok.len() as u64,
        bytes_in,
        estimated_rows: rows,
        estimated_bytes_out: (encoded * rows as f64) as u64,
        estimated_seconds: raw / 1e6 / (MB_PER_SEC_PER_THREAD * threads as f64),
    };
    let schema = unified
        .iter()
        .map(|(n, t)| crate::csv::convert::ColumnOut {
            name: n.clone(),
            ty: if *t == ColType::Null {
                "string".into()
            } else {
                t.name()
            },
        })
        .collect();
    Ok((
        PreviewResult {
            summary,
            outputs: Vec::new(),
            errors,
            schema,
            drift,
            files,
        },
        sample,
    ))
}

/// The unified schema of `inputs` exactly as a run over them would start with it (the same
/// sampling, `sample_bytes` and unification as [`crate::csv::run`]), and its drift: what a job's
/// planner hands every task as `base_types`, so that tasks over parts of the inputs agree.
#[derive(Debug, Serialize)]
pub struct SchemaResult {
    pub summary: SchemaSummary,
    pub outputs: Vec<String>,
    pub errors: Vec<Problem>,
    /// `[name, type]` pairs in column order; `null` for a column no sample had a value in (a run
    /// keeps it open: its first value decides).
    pub types: Vec<(String, String)>,
    pub drift: Vec<Drift>,
}

#[derive(Debug, Serialize)]
pub struct SchemaSummary {
    pub files: u64,
}

/// Sample and unify `inputs` (see [`SchemaResult`]); reads `sample_bytes` of each, writes nothing.
pub fn schema(inputs: &[PathBuf], opts: &Options, progress: &Progress) -> Result<SchemaResult> {
    let threads = crate::parallel::threads_or_default(opts.threads);
    progress.set_totals(inputs.len() as u64, 0);
    let (infos, errors) = crate::parallel::with_pool(threads, || {
        sample_all(inputs, opts, opts.sample_bytes, Keep::Nothing)
    })?;
    progress.check()?;
    let ok: Vec<&FileInfo> = infos.iter().flatten().map(|i| i.as_ref()).collect();
    let (unified, drift) = unify(&ok, &opts.columns, &opts.base_types);
    Ok(SchemaResult {
        summary: SchemaSummary {
            files: ok.len() as u64,
        },
        outputs: Vec::new(),
        errors,
        types: unified.iter().map(|(n, t)| (n.clone(), t.name())).collect(),
        drift,
    })
}
