//! Counting words of one byte slice into a hash map, and merging maps.

use super::tokenize;
use hashbrown::HashMap;

pub type Counts = HashMap<Vec<u8>, u64, ahash::RandomState>;

pub fn new_counts() -> Counts {
    HashMap::with_hasher(ahash::RandomState::new())
}

/// Add the words of `data` to `counts`. `data` must be valid UTF-8 in Unicode mode.
pub fn count_into(counts: &mut Counts, data: &[u8], unicode: bool) -> u64 {
    let mut total = 0u64;
    let mut add = |tok: &[u8]| {
        total += 1;
        if let Some(c) = counts.get_mut(tok) {
            *c += 1;
        } else {
            counts.insert(tok.to_vec(), 1);
        }
    };
    if unicode {
        // Callers validate first; a bad slice is counted lossily rather than panicking.
        match std::str::from_utf8(data) {
            Ok(s) => tokenize::unicode(s, &mut add),
            Err(_) => tokenize::unicode(&String::from_utf8_lossy(data), &mut add),
        }
    } else {
        tokenize::classic(data, &mut add);
    }
    total
}

/// Merge `b` into `a` (the larger map is kept).
pub fn merge(mut a: Counts, mut b: Counts) -> Counts {
    if a.len() < b.len() {
        std::mem::swap(&mut a, &mut b);
    }
    for (k, v) in b {
        *a.entry(k).or_insert(0) += v;
    }
    a
}
