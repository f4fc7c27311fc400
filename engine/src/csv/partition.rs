//! The partitioned layout: a block's rows split by the partition columns (on the worker that
//! parsed it), and per-partition batches held until there are enough for a row group, which a
//! worker then encodes. Only appending the encoded row group is left to the driver thread.

use crate::error::Result;
use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::DataType;
use std::collections::{BTreeMap, HashMap};

/// Rows held per partition before they are encoded as one row group (unless the row-group row
/// count comes first).
const PART_BYTES: usize = 32 << 20;
/// Rows held across all partitions: past it the largest partition is encoded early, so memory
/// stays bounded however many partitions the data has.
const ALL_PARTS_BYTES: usize = 128 << 20;

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

/// Rows waiting to be encoded, per partition directory.
#[derive(Default)]
pub struct Pending {
    parts: BTreeMap<String, Held>,
    bytes: usize,
}

#[derive(Default)]
struct Held {
    batches: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
}

impl Pending {
    /// Hold `batch` for `dir`; returns the partitions that now have a row group's worth (or that
    /// must go early to keep memory bounded), in a fixed order.
    pub fn add(
        &mut self,
        dir: String,
        batch: RecordBatch,
        row_group_rows: usize,
    ) -> Vec<(String, Vec<RecordBatch>)> {
        let size = batch.get_array_memory_size();
        let held = self.parts.entry(dir.clone()).or_default();
        held.rows += batch.num_rows();
        held.bytes += size;
        held.batches.push(batch);
        self.bytes += size;
        let mut out = Vec::new();
        if held.rows >= row_group_rows || held.bytes >= PART_BYTES {
            out.push(self.take(&dir));
        }
        while self.bytes > ALL_PARTS_BYTES {
            let Some(largest) = self
                .parts
                .iter()
                .max_by_key(|(_, h)| h.bytes)
                .map(|(d, _)| d.clone())
            else {
                break;
            };
            out.push(self.take(&largest));
        }
        out
    }

    /// Every partition still held (at the end of the run).
    pub fn drain(&mut self) -> Vec<(String, Vec<RecordBatch>)> {
        self.bytes = 0;
        std::mem::take(&mut self.parts)
            .into_iter()
            .map(|(d, h)| (d, h.batches))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    fn take(&mut self, dir: &str) -> (String, Vec<RecordBatch>) {
        let held = self.parts.remove(dir).unwrap_or_default();
        self.bytes -= held.bytes;
        (dir.to_string(), held.batches)
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
        let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
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
    fn pending_releases_full_partitions_and_everything_at_the_end() {
        let mut p = Pending::default();
        let b = batch(&[Some("a"), Some("a")], &[1, 2]);
        assert!(p.add("k=a".into(), b.clone(), 3).is_empty());
        assert!(p.add("k=b".into(), b.clone(), 3).is_empty());
        let ready = p.add("k=a".into(), b.clone(), 3);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].0, "k=a");
        assert_eq!(ready[0].1.len(), 2, "both held batches of k=a");
        let rest = p.drain();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, "k=b");
        assert!(p.is_empty());
    }
}
