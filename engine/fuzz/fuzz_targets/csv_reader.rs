//! The CSV reader on arbitrary bytes:
//! 1. the 64-byte bitmask tokenizer agrees exactly with the byte-at-a-time reference;
//! 2. cutting the input into record-aligned blocks (any block size) and tokenizing each block gives
//!    the same rows as tokenizing the whole input at once;
//! 3. building Arrow arrays from the fields never panics, whatever the column types.
#![no_main]

use aerofs_engine::csv::build::{build_batch, OutCol, Plan};
use aerofs_engine::csv::dialect::Dialect;
use aerofs_engine::csv::split::BlockReader;
use aerofs_engine::csv::tokenize::{tokenize_fast, tokenize_scalar, unquote, Fields};
use aerofs_engine::csv::types::ColType;
use aerofs_engine::csv::Options;
use libfuzzer_sys::fuzz_target;

const DELIMS: [u8; 4] = [b',', b'\t', b';', b'|'];
const TYPES: [ColType; 10] = [
    ColType::String,
    ColType::Int64,
    ColType::Float64,
    ColType::Bool,
    ColType::Date,
    ColType::Timestamp,
    ColType::TimestampTz,
    ColType::Decimal(18, 2), // Parquet INT64
    ColType::Decimal(38, 4), // FIXED_LEN_BYTE_ARRAY
    ColType::Decimal(5, 0),
];

fn rows(buf: &[u8], f: &Fields, d: &Dialect) -> Vec<Vec<Option<Vec<u8>>>> {
    let mut tmp = Vec::new();
    (0..f.rows)
        .map(|r| {
            (0..f.ncols)
                .map(|c| {
                    f.get(r, c).map(|(s, e, q)| {
                        if q {
                            unquote(&buf[s..e], d.quote, d.escape, &mut tmp);
                            tmp.clone()
                        } else {
                            buf[s..e].to_vec()
                        }
                    })
                })
                .collect()
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (ctl, buf) = data.split_at(3);
    let delim = DELIMS[(ctl[0] & 3) as usize];
    let ncols = 1 + (ctl[0] >> 2 & 7) as usize;
    let fill = ctl[0] & 0x80 != 0;
    let quote = if ctl[1] & 1 == 0 { Some(b'"') } else { None };

    let mut fast = Fields::new(ncols, fill);
    tokenize_fast(buf, delim, quote, &mut fast);
    let mut slow = Fields::new(ncols, fill);
    tokenize_scalar(buf, delim, quote, None, None, &mut slow);
    assert_eq!(fast, slow, "fast and scalar tokenizers disagree");

    let opts = Options::from_json(&format!(
        r#"{{"delimiter": "{}", "quote": {}, "malformed": "{}"}}"#,
        (delim as char).escape_default(),
        if quote.is_some() { "\"\\\"\"" } else { "null" },
        if fill { "null_fill" } else { "skip" }
    ))
    .expect("options");
    let d = Dialect::for_sample(&opts, buf, "fuzz.csv");
    let whole = rows(buf, &fast, &d);

    // Blocks: only comparable when the input has no unterminated quote (then the reader's last block
    // holds the rest of the input, and both agree on dropping it).
    let block_size = 1024 + (ctl[2] as usize) * 7;
    let mut reader = BlockReader::new(
        Box::new(std::io::Cursor::new(buf.to_vec())),
        0,
        d,
        block_size,
        "fuzz.csv",
    )
    .expect("reader");
    let mut pieces = Vec::new();
    let mut total = 0usize;
    while let Some(b) = reader.next_block().expect("in-memory read") {
        assert_eq!(b.offset as usize, total);
        total += b.data.len();
        let mut f = Fields::new(ncols, fill);
        tokenize_fast(&b.data, delim, quote, &mut f);
        pieces.extend(rows(&b.data, &f, &d));
    }
    assert_eq!(total, buf.len(), "blocks cover the input exactly");
    assert_eq!(
        pieces, whole,
        "block-wise tokenizing differs from whole-input tokenizing"
    );

    let cols: Vec<OutCol> = (0..ncols)
        .map(|c| OutCol {
            name: format!("c{c}"),
            src: Some(c),
            ty: TYPES[(ctl[2] as usize + c) % TYPES.len()],
            forced: ctl[1] & 2 != 0,
            dictionary: true,
        })
        .collect();
    if std::str::from_utf8(buf).is_ok() {
        let decimals = ctl[1] & 4 != 0; // an int column meeting "2.50" widens to a decimal
        let plan = Plan::new(
            "fuzz.csv".into(),
            d,
            ncols,
            cols,
            &[String::new()],
            decimals,
        );
        let _ = build_batch(buf, &fast, &plan);
    }
});
