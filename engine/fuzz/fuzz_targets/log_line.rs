//! Any bytes as an access-log line: `None` or a hit whose fields are slices of the line, never a panic.
#![no_main]

use aerofs_engine::logs::parse::parse_line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(h) = parse_line(data) {
        assert!(h.ip.len() + h.path.len() + h.user_agent.len() <= data.len());
        assert!((0..1000).contains(&h.status));
    }
});
