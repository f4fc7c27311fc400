//! Building Arrow arrays straight from a block's fields: no `String` per value, no per-value
//! allocation; one tight loop per column and type.

use crate::csv::decimal;
use crate::csv::dialect::Dialect;
use crate::csv::infer::NullTokens;
use crate::csv::tokenize::Fields;
use crate::csv::tokenize::{unquote, unquote_append};
use crate::csv::types::{
    parse_bool, parse_date, parse_f64, parse_i64, parse_timestamp, widened, ColType,
};
use arrow::array::builder::{BooleanBufferBuilder, NullBufferBuilder};
use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch,
    RecordBatchOptions, StringArray, TimestampMicrosecondArray,
};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{Field, Schema, SchemaRef};
use std::ops::Range;
use std::sync::Arc;

/// One output column: which source column feeds it (None: absent from this file, all null), its
/// type, and whether the type was forced by the user (a value that does not fit becomes null and is
/// reported) or inferred (a value that does not fit widens the type and the input is redone).
#[derive(Debug, Clone)]
pub struct OutCol {
    pub name: String,
    pub src: Option<usize>,
    pub ty: ColType,
    pub forced: bool,
    /// Dictionary-encode this column (its sample values repeat).
    pub dictionary: bool,
}

/// How to turn one file's blocks into record batches.
#[derive(Debug)]
pub struct Plan {
    pub path: String,
    pub dialect: Dialect,
    pub ncols: usize,
    pub cols: Vec<OutCol>,
    pub schema: SchemaRef,
    pub nulls: NullTokens,
    /// Whether decimals are inferred: an int64 column meeting `2.50` widens to a decimal, not a float.
    pub decimals: bool,
}

impl Plan {
    pub fn new(
        path: String,
        dialect: Dialect,
        ncols: usize,
        cols: Vec<OutCol>,
        null_values: &[String],
        decimals: bool,
    ) -> Plan {
        let fields: Vec<Field> = cols
            .iter()
            .map(|c| Field::new(&c.name, c.ty.arrow(), true))
            .collect();
        Plan {
            path,
            dialect,
            ncols,
            cols,
            schema: Arc::new(Schema::new(fields)),
            nulls: NullTokens::new(null_values),
            decimals,
        }
    }
}

/// A value of an inferred column did not fit: the column must widen to `to` and the input be redone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Widen {
    pub col: usize,
    pub to: ColType,
}

/// A value of a forced column that did not parse (it became null): where and why.
#[derive(Debug, Clone)]
pub struct CellProblem {
    pub offset: usize,
    pub message: String,
}

/// The values of one source column, row by row: `None` for null.
struct Values<'a> {
    data: &'a [u8],
    f: &'a Fields,
    c: usize,
    d: &'a Dialect,
    nulls: &'a NullTokens,
    scratch: Vec<u8>,
}

impl<'a> Values<'a> {
    /// Call `each(row, value)` for the rows of `rows`; a quoted empty value is `Some(b"")`, a
    /// null token `None`.
    #[inline(always)]
    fn for_each(
        &mut self,
        rows: Range<usize>,
        mut each: impl FnMut(usize, Option<&[u8]>) -> bool,
    ) -> Option<usize> {
        for r in rows {
            let v = match self.f.get(r, self.c) {
                None => None,
                Some((s, e, false)) => {
                    let raw = &self.data[s..e];
                    if self.nulls.is_null(raw) {
                        None
                    } else {
                        Some(raw)
                    }
                }
                Some((s, e, true)) => {
                    unquote(
                        &self.data[s..e],
                        self.d.quote,
                        self.d.escape,
                        &mut self.scratch,
                    );
                    Some(&self.scratch[..])
                }
            };
            if !each(r, v) {
                return Some(r);
            }
        }
        None
    }
}

/// Rows per slice: a block's columns are built slice by slice, every column of one slice before
/// the next, so the slice's bytes and field offsets (a few hundred KiB) stay in the core's cache
/// while each column reads them. Built column by column over a whole 16 MiB block, every column
/// read the block again from memory: 20% of the build time on the benchmark file.
const SLICE_ROWS: usize = 4096;

/// One output column being built, slice by slice.
enum Acc {
    Absent,
    Str {
        offsets: Vec<i32>,
        bytes: Vec<u8>,
        nb: NullBufferBuilder,
    },
    I64(Vec<i64>, NullBufferBuilder),
    F64(Vec<f64>, NullBufferBuilder),
    /// With the decimal's precision and scale.
    Dec(Vec<i128>, NullBufferBuilder, u8, u8),
    Date(Vec<i32>, NullBufferBuilder),
    Ts(Vec<i64>, NullBufferBuilder),
    Bool(Vec<bool>, NullBufferBuilder),
}

impl Acc {
    /// Room for `n` rows; `text` is the column's total field bytes (string columns).
    fn new(oc: &OutCol, n: usize, text: usize) -> Acc {
        let nb = || NullBufferBuilder::new(n);
        if oc.src.is_none() {
            return Acc::Absent;
        }
        match oc.ty {
            ColType::Null | ColType::String => {
                let mut offsets = Vec::with_capacity(n + 1);
                offsets.push(0);
                Acc::Str {
                    offsets,
                    // The exact size (an upper bound for quoted values): a long text column
                    // would otherwise grow its buffer by doubling, copying megabytes per block.
                    // `SHORT` more: room for the last value's fixed-size copy.
                    bytes: Vec::with_capacity(text + SHORT),
                    nb: nb(),
                }
            }
            ColType::Int64 => Acc::I64(Vec::with_capacity(n), nb()),
            ColType::Float64 => Acc::F64(Vec::with_capacity(n), nb()),
            ColType::Decimal(p, s) => Acc::Dec(Vec::with_capacity(n), nb(), p, s),
            ColType::Date => Acc::Date(Vec::with_capacity(n), nb()),
            ColType::Timestamp | ColType::TimestampTz => Acc::Ts(Vec::with_capacity(n), nb()),
            ColType::Bool => Acc::Bool(Vec::with_capacity(n), nb()),
        }
    }
}

/// Parse the rows `rows` of a typed column into `out`; `parse` returns None for a value that does
/// not fit. Err: the row of a value that did not fit an inferred type.
fn typed<T: Copy + Default>(
    vals: &mut Values,
    rows: Range<usize>,
    parse: impl Fn(&[u8]) -> Option<T>,
    forced: bool,
    out: &mut Vec<T>,
    nb: &mut NullBufferBuilder,
    problems: &mut Vec<CellProblem>,
) -> Result<(), usize> {
    let mut bad: Vec<usize> = Vec::new();
    let failed = vals.for_each(rows, |r, v| match v {
        None | Some(b"") => {
            out.push(T::default());
            nb.append_null();
            true
        }
        Some(v) => match parse(v) {
            Some(x) => {
                out.push(x);
                nb.append_non_null();
                true
            }
            None if forced => {
                bad.push(r);
                out.push(T::default());
                nb.append_null();
                true
            }
            None => false,
        },
    });
    if let Some(r) = failed {
        return Err(r);
    }
    for r in bad {
        problems.push(CellProblem {
            offset: vals.f.row_offset(r),
            message: String::new(),
        });
    }
    Ok(())
}

fn strings(
    vals: &mut Values,
    rows: Range<usize>,
    latin1: bool,
    offsets: &mut Vec<i32>,
    bytes: &mut Vec<u8>,
    nb: &mut NullBufferBuilder,
) {
    if latin1 {
        vals.for_each(rows, |_, v| {
            match v {
                None => nb.append_null(),
                Some(v) => {
                    push_latin1(v, bytes);
                    nb.append_non_null();
                }
            }
            offsets.push(bytes.len() as i32);
            true
        });
    } else {
        // Quoted values are unquoted straight into the column's buffer (one copy, not two).
        let (f, c, data, d) = (vals.f, vals.c, vals.data, vals.d);
        for r in rows {
            match f.get(r, c) {
                Some((s, e, false)) if !vals.nulls.is_null(&data[s..e]) => {
                    append_value(bytes, data, s, e);
                    nb.append_non_null();
                }
                Some((s, e, true)) => {
                    unquote_append(&data[s..e], d.quote, d.escape, bytes);
                    nb.append_non_null();
                }
                _ => nb.append_null(),
            }
            offsets.push(bytes.len() as i32);
        }
    }
}

/// Values of up to this many bytes are copied as one fixed-size move (see [`append_value`]).
const SHORT: usize = 32;

/// Append `data[s..e]` to `out`. A short value (most names, codes, categories) is copied as one
/// unaligned 32-byte load and store, past its end into the spare capacity, instead of a call to
/// `memcpy` per value (that call was 5% of a run's CPU on the benchmark file); the bytes copied past
/// the end are overwritten by the next value or lie beyond the vector's length.
#[inline(always)]
fn append_value(out: &mut Vec<u8>, data: &[u8], s: usize, e: usize) {
    let n = e - s;
    if n <= SHORT && s + SHORT <= data.len() && out.capacity() - out.len() >= SHORT {
        // SAFETY: `s + SHORT <= data.len()` bounds the read; the spare capacity bounds the write;
        // the first `n` bytes written are `data[s..e]`, so the new length covers initialised bytes.
        unsafe {
            let src = data.as_ptr().add(s) as *const [u8; SHORT];
            let dst = out.as_mut_ptr().add(out.len()) as *mut [u8; SHORT];
            std::ptr::write_unaligned(dst, std::ptr::read_unaligned(src));
            out.set_len(out.len() + n);
        }
    } else {
        out.extend_from_slice(&data[s..e]);
    }
}

fn push_latin1(v: &[u8], out: &mut Vec<u8>) {
    if v.is_ascii() {
        out.extend_from_slice(v);
        return;
    }
    for &b in v {
        if b < 0x80 {
            out.push(b);
        } else {
            out.push(0xC0 | (b >> 6));
            out.push(0x80 | (b & 0x3F));
        }
    }
}

/// Build the rows `rows` of one output column into `acc`. Err: the row whose value did not fit
/// an inferred type.
fn build_rows(
    data: &[u8],
    f: &Fields,
    plan: &Plan,
    oc: &OutCol,
    rows: Range<usize>,
    acc: &mut Acc,
    problems: &mut Vec<CellProblem>,
) -> Result<(), usize> {
    let Some(src) = oc.src else {
        return Ok(());
    };
    let mut vals = Values {
        data,
        f,
        c: src,
        d: &plan.dialect,
        nulls: &plan.nulls,
        scratch: Vec::new(),
    };
    let forced = oc.forced;
    let before = problems.len();
    match acc {
        Acc::Absent => {}
        Acc::Str { offsets, bytes, nb } => {
            strings(&mut vals, rows, plan.dialect.latin1, offsets, bytes, nb)
        }
        Acc::I64(v, nb) => typed(&mut vals, rows, parse_i64, forced, v, nb, problems)?,
        Acc::F64(v, nb) => typed(&mut vals, rows, parse_f64, forced, v, nb, problems)?,
        Acc::Dec(v, nb, p, s) => {
            let (p, s) = (*p, *s);
            let parse = |v: &[u8]| decimal::parse(v, p, s);
            typed(&mut vals, rows, parse, forced, v, nb, problems)?
        }
        Acc::Date(v, nb) => typed(&mut vals, rows, parse_date, forced, v, nb, problems)?,
        Acc::Ts(v, nb) => {
            let want_tz = oc.ty == ColType::TimestampTz;
            let p = |v: &[u8]| {
                parse_timestamp(v)
                    .filter(|&(_, tz)| tz == want_tz || forced)
                    .map(|(t, _)| t)
            };
            typed(&mut vals, rows, p, forced, v, nb, problems)?
        }
        Acc::Bool(v, nb) => typed(&mut vals, rows, parse_bool, forced, v, nb, problems)?,
    }
    for p in &mut problems[before..] {
        p.message = format!(
            "column {:?}: value is not a valid {}; stored as null",
            oc.name,
            oc.ty.name()
        );
    }
    Ok(())
}

/// The Arrow array of a built column.
fn finish(acc: Acc, ty: ColType, n: usize) -> ArrayRef {
    match acc {
        Acc::Absent => arrow::array::new_null_array(&ty.arrow(), n),
        Acc::Str {
            offsets,
            bytes,
            mut nb,
        } => {
            let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
            // SAFETY: the block was checked to be UTF-8 (rows that were not were dropped or their
            // fields nulled), fields are cut at ASCII bytes and unquoting removes ASCII bytes
            // only; Latin-1 is transcoded. So every value is valid UTF-8 and the offsets are
            // monotonic.
            Arc::new(unsafe { StringArray::new_unchecked(offsets, bytes.into(), nb.finish()) })
        }
        Acc::I64(v, mut nb) => Arc::new(Int64Array::new(v.into(), nb.finish())),
        Acc::F64(v, mut nb) => Arc::new(Float64Array::new(v.into(), nb.finish())),
        Acc::Dec(v, mut nb, p, s) => {
            let a = Decimal128Array::new(v.into(), nb.finish())
                .with_precision_and_scale(p, s as i8)
                .expect("ColType::decimal checked the precision and scale");
            Arc::new(a)
        }
        Acc::Date(v, mut nb) => Arc::new(Date32Array::new(v.into(), nb.finish())),
        Acc::Ts(v, mut nb) => {
            let a = TimestampMicrosecondArray::new(v.into(), nb.finish());
            Arc::new(if ty == ColType::TimestampTz {
                a.with_timezone("UTC")
            } else {
                a
            })
        }
        Acc::Bool(v, mut nb) => {
            let mut bb = BooleanBufferBuilder::new(v.len());
            for x in v {
                bb.append(x);
            }
            Arc::new(BooleanArray::new(bb.finish(), nb.finish()))
        }
    }
}

/// The value at row `r` of source column `c`, unquoted (for error messages and widening).
fn value_at(data: &[u8], f: &Fields, d: &Dialect, r: usize, c: usize) -> Vec<u8> {
    match f.get(r, c) {
        None => Vec::new(),
        Some((s, e, false)) => data[s..e].to_vec(),
        Some((s, e, true)) => {
            let mut v = Vec::new();
            unquote(&data[s..e], d.quote, d.escape, &mut v);
            v
        }
    }
}

/// Build the record batch of a tokenized block.
pub fn build_batch(
    data: &[u8],
    f: &Fields,
    plan: &Plan,
) -> Result<(RecordBatch, Vec<CellProblem>), Widen> {
    let n = f.rows;
    // Each string column's field bytes, in one pass over the fields in row order.
    let mut text = vec![0usize; f.ncols];
    let text_cols: Vec<usize> = plan
        .cols
        .iter()
        .filter(|oc| matches!(oc.ty, ColType::Null | ColType::String))
        .filter_map(|oc| oc.src)
        .collect();
    if !text_cols.is_empty() {
        for r in 0..n {
            for &c in &text_cols {
                text[c] += f.get(r, c).map_or(0, |(s, e, _)| e - s);
            }
        }
    }
    let mut accs: Vec<Acc> = plan
        .cols
        .iter()
        .map(|oc| Acc::new(oc, n, oc.src.map_or(0, |c| text[c])))
        .collect();
    let mut problems = Vec::new();
    let mut r0 = 0;
    while r0 < n {
        let rows = r0..(r0 + SLICE_ROWS).min(n);
        for (i, (oc, acc)) in plan.cols.iter().zip(accs.iter_mut()).enumerate() {
            if let Err(r) = build_rows(data, f, plan, oc, rows.clone(), acc, &mut problems) {
                let v = value_at(data, f, &plan.dialect, r, oc.src.unwrap_or(0));
                return Err(Widen {
                    col: i,
                    to: widened(oc.ty, &v, plan.decimals),
                });
            }
        }
        r0 = rows.end;
    }
    // Problems in row order within each column are now interleaved by slice: by offset, as before.
    problems.sort_by_key(|p| p.offset);
    let cols: Vec<ArrayRef> = accs
        .into_iter()
        .zip(&plan.cols)
        .map(|(acc, oc)| finish(acc, oc.ty, n))
        .collect();
    let opts = RecordBatchOptions::new().with_row_count(Some(n));
    let batch = RecordBatch::try_new_with_options(plan.schema.clone(), cols, &opts)
        .expect("columns match the plan's schema");
    Ok((batch, problems))
}
