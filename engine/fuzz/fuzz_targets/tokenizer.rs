//! Any bytes through both tokenisers: tokens are non-empty and (classic) the same words whatever
//! the chunk boundary, never a panic.
#![no_main]

use aerofs_engine::words::count::{count_into, merge, new_counts};
use aerofs_engine::words::tokenize::boundary;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut whole = new_counts();
    let n = count_into(&mut whole, data, false);
    let cut = boundary(data, data.len() / 2);
    let (mut a, mut b) = (new_counts(), new_counts());
    let m = count_into(&mut a, &data[..cut], false) + count_into(&mut b, &data[cut..], false);
    assert_eq!(n, m);
    assert_eq!(merge(a, b), whole);
    if let Ok(s) = std::str::from_utf8(data) {
        let mut u = new_counts();
        count_into(&mut u, s.as_bytes(), true);
        assert!(u.iter().all(|(k, _)| !k.is_empty()));
    }
});
