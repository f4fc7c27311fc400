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
    /// Call `each(row, value)`; a quoted empty value is `Some(b"")`, a null token `None`.
    #[inline(always)]
    fn for_each(&mut self, mut each: impl FnMut(usize, Option<&[u8]>) -> bool) -> Option<usize> {
        for r in 0..self.f.rows {
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

/// Parse a typed column; `parse` returns None for a value that does not fit.
fn typed<T: Copy + Default>(
    vals: &mut Values,
    parse: impl Fn(&[u8]) -> Option<T>,
    forced: bool,
    problems: &mut Vec<CellProblem>,
) -> Result<(Vec<T>, NullBufferBuilder), usize> {
    let n = vals.f.rows;
    let mut out = Vec::with_capacity(n);
    let mut nb = NullBufferBuilder::new(n);
    let mut bad: Vec<usize> = Vec::new();
    let failed = vals.for_each(|r, v| match v {
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
    Ok((out, nb))
}

fn strings(vals: &mut Values, latin1: bool) -> ArrayRef {
    let n = vals.f.rows;
    let mut offsets: Vec<i32> = Vec::with_capacity(n + 1);
    offsets.push(0);
    // The exact size (an upper bound for quoted values): a long text column would otherwise
    // grow its buffer by doubling, copying megabytes per block. `SHORT` more: room for the last
    // value's fixed-size copy.
    let total: usize = (0..n)
        .map(|r| vals.f.get(r, vals.c).map_or(0, |(s, e, _)| e - s))
        .sum();
    let mut bytes: Vec<u8> = Vec::with_capacity(total + SHORT);
    let mut nb = NullBufferBuilder::new(n);
    if latin1 {
        vals.for_each(|_, v| {
            match v {
                None => nb.append_null(),
                Some(v) => {
                    push_latin1(v, &mut bytes);
                    nb.append_non_null();
                }
            }
            offsets.push(bytes.len() as i32);
            true
        });
    } else {
        // Quoted values are unquoted straight into the column's buffer (one copy, not two).
        let (f, c, data, d) = (vals.f, vals.c, vals.data, vals.d);
        for r in 0..n {
            match f.get(r, c) {
                Some((s, e, false)) if !vals.nulls.is_null(&data[s..e]) => {
                    append_value(&mut bytes, data, s, e);
                    nb.append_non_null();
                }
                Some((s, e, true)) => {
                    unquote_append(&data[s..e], d.quote, d.escape, &mut bytes);
                    nb.append_non_null();
                }
                _ => nb.append_null(),
            }
            offsets.push(bytes.len() as i32);
        }
    }
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    // SAFETY: the block was checked to be UTF-8 (rows that were not were dropped or their fields
    // nulled), fields are cut at ASCII bytes and unquoting removes ASCII bytes only; Latin-1 is
    // transcoded. So every value is valid UTF-8 and the offsets are monotonic.
    Arc::new(unsafe { StringArray::new_unchecked(offsets, bytes.into(), nb.finish()) })
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

fn all_null(ty: ColType, n: usize) -> ArrayRef {
    arrow::array::new_null_array(&ty.arrow(), n)
}

/// Build one output column. Err: the row whose value did not fit an inferred type.
fn build_col(
    data: &[u8],
    f: &Fields,
    plan: &Plan,
    oc: &OutCol,
    problems: &mut Vec<CellProblem>,
) -> Result<ArrayRef, usize> {
    let Some(src) = oc.src else {
        return Ok(all_null(oc.ty, f.rows));
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
    let arr: ArrayRef = match oc.ty {
        ColType::Null | ColType::String => strings(&mut vals, plan.dialect.latin1),
        ColType::Int64 => {
            let (v, mut nb) = typed(&mut vals, parse_i64, forced, problems)?;
            Arc::new(Int64Array::new(v.into(), nb.finish()))
        }
        ColType::Float64 => {
            let (v, mut nb) = typed(&mut vals, parse_f64, forced, problems)?;
            Arc::new(Float64Array::new(v.into(), nb.finish()))
        }
        ColType::Decimal(p, s) => {
            let parse = |v: &[u8]| decimal::parse(v, p, s);
            let (v, mut nb) = typed(&mut vals, parse, forced, problems)?;
            let a = Decimal128Array::new(v.into(), nb.finish())
                .with_precision_and_scale(p, s as i8)
                .expect("ColType::decimal checked the precision and scale");
            Arc::new(a)
        }
        ColType::Date => {
            let (v, mut nb) = typed(&mut vals, parse_date, forced, problems)?;
            Arc::new(Date32Array::new(v.into(), nb.finish()))
        }
        ColType::Timestamp | ColType::TimestampTz => {
            let want_tz = oc.ty == ColType::TimestampTz;
            let p = |v: &[u8]| {
                parse_timestamp(v)
                    .filter(|&(_, tz)| tz == want_tz || forced)
                    .map(|(t, _)| t)
            };
            let (v, mut nb) = typed(&mut vals, p, forced, problems)?;
            let a = TimestampMicrosecondArray::new(v.into(), nb.finish());
            Arc::new(if want_tz { a.with_timezone("UTC") } else { a })
        }
        ColType::Bool => {
            let (v, mut nb) = typed(&mut vals, parse_bool, forced, problems)?;
            let mut bb = BooleanBufferBuilder::new(v.len());
            for x in v {
                bb.append(x);
            }
            Arc::new(BooleanArray::new(bb.finish(), nb.finish()))
        }
    };
    for p in &mut problems[before..] {
        p.message = format!(
            "column {:?}: value is not a valid {}; stored as null",
            oc.name,
            oc.ty.name()
        );
    }
    Ok(arr)
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
    let mut problems = Vec::new();
    let mut cols = Vec::with_capacity(plan.cols.len());
    for (i, oc) in plan.cols.iter().enumerate() {
        match build_col(data, f, plan, oc, &mut problems) {
            Ok(a) => cols.push(a),
            Err(r) => {
                let v = value_at(data, f, &plan.dialect, r, oc.src.unwrap_or(0));
                return Err(Widen {
                    col: i,
                    to: widened(oc.ty, &v, plan.decimals),
                });
            }
        }
    }
    let opts = RecordBatchOptions::new().with_row_count(Some(f.rows));
    let batch = RecordBatch::try_new_with_options(plan.schema.clone(), cols, &opts)
        .expect("columns match the plan's schema");
    Ok((batch, problems))
}
