//! Any bytes as an access-log line, for the built-in parser and for custom log formats: `None` or a
//! hit whose fields are slices of the line, never a panic. Custom formats come two ways: a few fixed
//! GoAccess/nginx formats on the whole input, and (when the input has a newline) its first line as
//! the format string itself, which must compile or be refused, never panic, and parse the rest.
//! The input's lines parsed with one time cache (as a block is) give what each gives alone.
#![no_main]

use aerofs_engine::logs::format::Format;
use aerofs_engine::logs::parse::{parse_line, parse_line_with, Hit, TimeCache};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static FORMATS: LazyLock<Vec<Format>> = LazyLock::new(|| {
    [
        r#"%h %^[%d:%t %^] "%r" %s %b "%R" "%u""#,
        r#"%h %^[%x] "%m %U %H" %s %b"#,
        r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#,
        "$time_iso8601 $remote_addr $request_method $request_uri $status $body_bytes_sent",
    ]
    .iter()
    .map(|f| Format::compile(f).expect("fixed formats compile"))
    .collect()
});

fn check(h: &Hit, line: &[u8]) {
    assert!(h.ip.len() + h.path.len() + h.user_agent.len() <= line.len());
    assert!((0..1000).contains(&h.status));
    assert!((0..24).contains(&h.local_hour));
}

fuzz_target!(|data: &[u8]| {
    if let Some(h) = parse_line(data) {
        check(&h, data);
    }
    for f in FORMATS.iter() {
        if let Some(h) = f.parse(data) {
            check(&h, data);
        }
    }
    let mut cache = TimeCache::default();
    for line in data.split(|&b| b == b'\n') {
        assert_eq!(parse_line_with(line, &mut cache), parse_line(line));
    }
    if let Some(nl) = data.iter().position(|&b| b == b'\n') {
        let spec = String::from_utf8_lossy(&data[..nl]);
        if let Ok(f) = Format::compile(&spec) {
            let line = &data[nl + 1..];
            if let Some(h) = f.parse(line) {
                check(&h, line);
            }
        }
    }
});
