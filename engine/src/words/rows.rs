//! From per-thread counts to the ordered (word, count) Arrow table, all on the run's rayon pool.
//!
//! The count itself is parallel, so any serial step after it caps the speed-up of a second core:
//! the other tables are merged into the largest in parallel ([`merge_into_largest`]), its rows are
//! built in parallel (filtered by stop words and minimum length), cut to the top N, ordered with
//! integer compares ([`Row`]) by a parallel sort, and the Arrow string column is filled in parallel
//! slices.

use super::count::{merge_into_largest, row_order, Counts, Row};
use super::Options;
use crate::error::{Error, Result};
use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::SchemaRef;
use rayon::prelude::*;
use std::sync::Arc;

/// Rows per slice of the string column filled by one task.
const PIECE: usize = 4096;

/// The ordered table and the totals before selection.
pub(super) struct Ordered {
    pub batch: RecordBatch,
    pub total_words: u64,
    pub distinct: usize,
}

/// Merge, select and order `tables` into the result batch, on the current rayon pool.
pub(super) fn finish(tables: Vec<Counts>, opts: &Options, schema: SchemaRef) -> Result<Ordered> {
    let mut merged = merge_into_largest(tables);
    let total_words = merged.total();
    let distinct = merged.len();
    let stop: hashbrown::HashSet<Vec<u8>> = opts
        .stop_words
        .iter()
        .map(|w| {
            if opts.unicode {
                w.to_lowercase().into_bytes()
            } else {
                w.to_ascii_lowercase().into_bytes()
            }
        })
        .collect();
    let keep = |w: &[u8]| {
        // Words are valid UTF-8: characters are the bytes that are not continuation bytes.
        (opts.min_length == 0 || w.iter().filter(|&&b| b & 0xc0 != 0x80).count() >= opts.min_length)
            && (stop.is_empty() || !stop.contains(w))
    };
    let mut longs = Vec::new();
    let long_rows = merged.take_long_rows(&keep, &mut longs);
    let longs = longs;
    let mut rows = merged.short_rows(&keep, long_rows.len());
    rows.extend(long_rows);
    drop(merged); // before the Arrow buffers are allocated
    let cmp = |a: &Row, b: &Row| row_order(a, b, &longs);
    if let Some(k) = opts.top {
        if k < rows.len() {
            if k > 0 {
                rows.select_nth_unstable_by(k - 1, cmp);
            }
            rows.truncate(k);
        }
    }
    rows.par_sort_unstable_by(cmp);
    let batch = to_batch(&rows, &longs, schema)?;
    Ok(Ordered {
        batch,
        total_words,
        distinct,
    })
}

/// The (word, count) batch of `rows`: offsets are a prefix sum (one cheap serial pass), then slices
/// of the value buffer are filled by separate tasks.
fn to_batch(rows: &[Row], longs: &[Box<[u8]>], schema: SchemaRef) -> Result<RecordBatch> {
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    let mut end = 0usize;
    offsets.push(0i32);
    for r in rows {
        end += r.len();
        offsets.push(i32::try_from(end).map_err(|_| {
            Error::internal("word-count: the words take more than 2 GiB (an Arrow string column)")
        })?);
    }
    let mut values = vec![0u8; end];
    let mut pieces = Vec::with_capacity(rows.len() / PIECE + 1);
    let mut rest = values.as_mut_slice();
    for (i, chunk) in rows.chunks(PIECE).enumerate() {
        let start = i * PIECE;
        let bytes = (offsets[start + chunk.len()] - offsets[start]) as usize;
        let (piece, tail) = std::mem::take(&mut rest).split_at_mut(bytes);
        pieces.push((chunk, piece));
        rest = tail;
    }
    pieces.into_par_iter().for_each(|(chunk, out)| {
        let mut buf = [0u8; 16];
        let mut at = 0;
        for r in chunk {
            let w = r.word(longs, &mut buf);
            out[at..at + w.len()].copy_from_slice(w);
            at += w.len();
        }
    });
    let counts: Vec<u64> = rows.par_iter().map(|r| r.count).collect();
    // Validates UTF-8 (inputs were validated and cut at ASCII whitespace, so this never fails; if
    // it did, the run reports an error instead of handing Python a bad string column).
    let words = StringArray::try_new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(values),
        None,
    )?;
    let cols: Vec<ArrayRef> = vec![Arc::new(words), Arc::new(UInt64Array::from(counts))];
    Ok(RecordBatch::try_new(schema, cols)?)
}
