//! The partitioned layout: a block's rows split by the partition columns (on the worker that
//! parsed it), per-partition batches held until there are enough to feed a worker, which writes
//! them into the partition's open row group. Only appending closed row groups is left to the
//! driver thread.

use crate::error::Result;
use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::DataType;
use parquet::arrow::arrow_writer::ArrowColumnWriter;
use std::collections::{BTreeMap, HashMap};

/// Split `batch` by the values of the `by` columns: for each Hive directory
/// (`a=1/b=x`, in order of first appearance) the rows of that partition, without the `by` columns.
pub fn split(batch: &RecordBatch, by: &[String]) -> Result<Vec<(String, RecordBatch)>> {
    let keys: Vec<usize> = by
        .iter()
        .map(|p| batch.schema().index_of(p))
        .collect::<std::result::Result<_, _>>()?;
    let strs: Vec<ArrayRef> = keys
        .iter()
        .map(|&k| arrow::compute::cast(batch.column(k), &DataType::Utf8))
        .collect::<std::result::Result<_, _>>()?;
    let strs: Vec<&StringArray> = strs
        .iter()
        .map(|a| a.as_any().downcast_ref().expect("cast to utf8"))
        .collect();
    let mut order: Vec<(String, Vec<u32>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut key = String::new();
    for r in 0..batch.num_rows() {
        key.clear();
        for (i, s) in strs.iter().enumerate() {
            if i > 0 {
                key.push('/');
            }
            key.push_str(&by[i]);
            key.push('=');
            if s.is_null(r) {
                key.push_str("__HIVE_DEFAULT_PARTITION__");
            } else {
                hive_escape(s.value(r), &mut key);
            }
        }
        match index.get(key.as_str()) {
            Some(&i) => order[i].1.push(r as u32),
            None => {
                index.insert(key.clone(), order.len());
                order.push((key.clone(), vec![r as u32]));
            }
        }
    }
    let keep: Vec<usize> = (0..batch.num_columns())
        .filter(|c| !keys.contains(c))
        .collect();
    let projected = batch.project(&keep)?;
    order
        .into_iter()
        .map(|(dir, rows)| {
            let part = if rows.len() == projected.num_rows() {
                projected.clone()
            } else {
                arrow::compute::take_record_batch(&projected, &UInt32Array::from(rows))?
            };
            Ok((dir, part))
        })
        .collect()
}

/// Percent-encode the characters Hive escapes in partition directory names.
pub fn hive_escape(v: &str, out: &mut String) {
    for ch in v.chars() {
        if ch.is_control() || "\"#%'*/:=?\\{[]^".contains(ch) {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(ch);
        }
    }
}

/// A partition's rows between the parsing workers and its output: batches held until there are
/// enough to feed the encoder, and the open row group's column writers (out on a worker while
/// `busy`). Row groups stay large (up to `row_group_size` rows, or [`GROUP_BYTES`] encoded) however
/// the rows of a partition are spread over the blocks, which keeps the output as small as one
/// writer per partition would make it.
#[derive(Default)]
pub struct Part {
    held: Vec<RecordBatch>,
    held_rows: usize,
    held_bytes: usize,
    pub writers: Option<Vec<ArrowColumnWriter>>,
    pub busy: bool,
    /// Rows in the open row group, and its writers' memory when they last came back.
    pub group_rows: usize,
    pub group_bytes: usize,
}

/// Held batches of a partition are handed to a worker once they reach this size.
const FEED_BYTES: usize = 8 << 20;
/// Held batches across all partitions: past it the largest are handed over early.
const ALL_HELD_BYTES: usize = 64 << 20;
/// A row group is closed once this much is encoded in it.
pub const GROUP_BYTES: usize = 64 << 20;
/// Open row groups across all partitions: past it the largest is closed early, so memory stays
/// bounded however many partitions the data has.
const ALL_OPEN_BYTES: usize = 256 << 20;

/// Work for a worker: write `batches` into the partition's open row group (its writers, or new
/// ones), and close it if `close`.
pub struct Feed {
    pub dir: String,
    pub batches: Vec<RecordBatch>,
    pub close: bool,
}

/// The first `n` rows of `held` (slicing a batch that straddles the cut), removed from it.
fn take_rows(held: &mut Vec<RecordBatch>, n: usize) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut left = n;
    while left > 0 && !held.is_empty() {
        let b = &held[0];
        if b.num_rows() <= left {
            left -= b.num_rows();
            out.push(held.remove(0));
        } else {
            out.push(b.slice(0, left));
            held[0] = b.slice(left, b.num_rows() - left);
            left = 0;
        }
    }
    out
}

/// Every partition of the run, by Hive directory.
#[derive(Default)]
pub struct Partitions {
    parts: BTreeMap<String, Part>,
    held_bytes: usize,
}

impl Partitions {
    /// Hold the rows of one partition from a block.
    pub fn hold(&mut self, dir: String, batch: RecordBatch) {
        let size = batch.get_array_memory_size();
        let p = self.parts.entry(dir).or_default();
        p.held_rows += batch.num_rows();
        p.held_bytes += size;
        p.held.push(batch);
        self.held_bytes += size;
    }

    pub fn get_mut(&mut self, dir: &str) -> Option<&mut Part> {
        self.parts.get_mut(dir)
    }

    /// The feeds to hand to workers now (partitions out on a worker wait for it to come back).
    /// `finishing`: every block is in, so everything held is fed and every row group closed.
    pub fn feeds(&mut self, row_group_rows: usize, finishing: bool) -> Vec<Feed> {
        let mut out = Vec::new();
        let open: usize = self.parts.values().map(|p| p.group_bytes).sum();
        let over_held = self.held_bytes > ALL_HELD_BYTES;
        let largest_open = (open > ALL_OPEN_BYTES)
            .then(|| {
                self.parts
                    .iter()
                    .filter(|(_, p)| !p.busy)
                    .max_by_key(|(_, p)| p.group_bytes)
                    .map(|(d, _)| d.clone())
            })
            .flatten();
        let largest_held = over_held
            .then(|| {
                self.parts
                    .iter()
                    .filter(|(_, p)| !p.busy)
                    .max_by_key(|(_, p)| p.held_bytes)
                    .map(|(d, _)| d.clone())
            })
            .flatten();
        for (dir, p) in self.parts.iter_mut() {
            if p.busy {
                continue;
            }
            let full = p.group_rows + p.held_rows >= row_group_rows;
            let forced = largest_open.as_deref() == Some(dir.as_str());
            let close = finishing || full || forced;
            let feed = p.held_bytes >= FEED_BYTES
                || largest_held.as_deref() == Some(dir.as_str())
                || (close && (p.held_rows > 0 || p.writers.is_some()));
            if !feed {
                continue;
            }
            // A full row group takes only the rows it has room for; the rest stay held.
            let room = row_group_rows.saturating_sub(p.group_rows).max(1);
            let batches = if p.held_rows > room {
                take_rows(&mut p.held, room)
            } else {
                std::mem::take(&mut p.held)
            };
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            let bytes = if p.held.is_empty() {
                p.held_bytes
            } else {
                p.held_bytes * rows / p.held_rows
            };
            self.held_bytes -= bytes;
            p.held_rows -= rows;
            p.held_bytes -= bytes;
            p.busy = true;
            out.push(Feed {
                dir: dir.clone(),
                batches,
                close,
            });
        }
        out
    }

    /// Whether anything is still held, open or out on a worker.
    pub fn is_idle(&self) -> bool {
        self.parts
            .values()
            .all(|p| !p.busy && p.held.is_empty() && p.writers.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch(keys: &[Option<&str>], vals: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(Int64Array::from(vals.to_vec())),
            ],
        )
        .unwrap()
    }

    fn ints(b: &RecordBatch) -> Vec<i64> {
        let a = b.column_by_name("v").unwrap();
        let a = a.as_any().downcast_ref::<Int64Array>().unwrap();
        a.values().to_vec()
    }

    #[test]
    fn split_groups_rows_in_order_and_escapes_names() {
        let b = batch(&[Some("a/b"), None, Some("x"), Some("a/b")], &[1, 2, 3, 4]);
        let parts = split(&b, &["k".to_string()]).unwrap();
        let dirs: Vec<&str> = parts.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(dirs, ["k=a%2Fb", "k=__HIVE_DEFAULT_PARTITION__", "k=x"]);
        assert_eq!(ints(&parts[0].1), [1, 4]);
        assert_eq!(
            parts[0].1.num_columns(),
            1,
            "the key column is in the path only"
        );
        assert_eq!(ints(&parts[2].1), [3]);
    }

    #[test]
    fn a_full_row_group_takes_only_the_rows_it_has_room_for() {
        let mut p = Partitions::default();
        p.hold("k=a".into(), batch(&[Some("a"); 3], &[1, 2, 3]));
        p.hold("k=a".into(), batch(&[Some("a"); 3], &[4, 5, 6]));
        let f = p.feeds(4, false);
        assert_eq!(f.len(), 1);
        assert!(f[0].close);
        let fed: Vec<i64> = f[0].batches.iter().flat_map(ints).collect();
        assert_eq!(fed, [1, 2, 3, 4]);
        p.get_mut("k=a").unwrap().busy = false;
        let f = p.feeds(4, true);
        let fed: Vec<i64> = f[0].batches.iter().flat_map(ints).collect();
        assert_eq!(fed, [5, 6]);
    }

    #[test]
    fn feeds_wait_for_enough_rows_and_everything_goes_at_the_end() {
        let mut p = Partitions::default();
        let b = batch(&[Some("a"), Some("a")], &[1, 2]);
        p.hold("k=a".into(), b.clone());
        p.hold("k=b".into(), b.clone());
        assert!(
            p.feeds(3, false).is_empty(),
            "too little held to feed anyone"
        );
        p.hold("k=a".into(), b.clone());
        let f = p.feeds(3, false);
        assert_eq!(f.len(), 1);
        // Room for 3 of the 4 rows: the second batch is cut, its last row stays held.
        assert_eq!((f[0].dir.as_str(), f[0].close), ("k=a", true));
        let fed: Vec<i64> = f[0].batches.iter().flat_map(ints).collect();
        assert_eq!(fed, [1, 2, 1]);
        assert!(!p.is_idle());
        // k=a is out on a worker: more rows for it wait, even at the end.
        p.hold("k=a".into(), b.clone());
        let f = p.feeds(3, true);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].dir.as_str(), f[0].close), ("k=b", true));
        let a = p.get_mut("k=a").unwrap();
        a.busy = false;
        let f = p.feeds(3, true);
        assert_eq!(
            (f.len(), f[0].dir.as_str(), f[0].batches.len()),
            (1, "k=a", 2)
        );
        p.get_mut("k=a").unwrap().busy = false;
        p.get_mut("k=b").unwrap().busy = false;
        assert!(p.is_idle());
    }
}
