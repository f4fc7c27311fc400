//! The dialect of a file: delimiter (detected when not given), quote, escape, comment, header.

use crate::csv::options::{Encoding, Malformed, Options};
use crate::csv::tokenize::{tokenize_fast, tokenize_scalar, Fields};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dialect {
    #[serde(serialize_with = "as_char")]
    pub delimiter: u8,
    #[serde(serialize_with = "as_opt_char")]
    pub quote: Option<u8>,
    #[serde(serialize_with = "as_opt_char")]
    pub escape: Option<u8>,
    #[serde(serialize_with = "as_opt_char")]
    pub comment: Option<u8>,
    pub header: bool,
    #[serde(skip)]
    pub latin1: bool,
    #[serde(skip)]
    pub fill: bool,
}

fn as_char<S: serde::Serializer>(b: &u8, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&(*b as char).to_string())
}
fn as_opt_char<S: serde::Serializer>(b: &Option<u8>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => as_char(b, s),
        None => s.serialize_none(),
    }
}

const CANDIDATES: [u8; 4] = [b',', b'\t', b';', b'|'];

impl Dialect {
    /// The dialect for one file: options first, the delimiter sniffed from `sample` when not given.
    pub fn for_sample(opts: &Options, sample: &[u8], path: &str) -> Dialect {
        let mut d = Dialect {
            delimiter: Options::byte(&opts.delimiter).unwrap_or(b','),
            quote: Options::byte(&opts.quote),
            escape: Options::byte(&opts.escape),
            comment: Options::byte(&opts.comment),
            header: opts.header,
            latin1: opts.encoding == Encoding::Latin1,
            fill: opts.malformed == Malformed::NullFill,
        };
        if opts.delimiter.is_none() {
            let lower = path.to_ascii_lowercase();
            let hint = if lower.contains(".tsv") || lower.contains(".tab") {
                b'\t'
            } else {
                b','
            };
            d.delimiter = sniff_delimiter(&d, sample, hint);
        }
        d
    }

    /// Whether the fast (quote-parity) tokenizer and splitter apply.
    pub fn simple(&self) -> bool {
        self.escape.is_none() || self.escape == self.quote
    }

    pub fn simple_no_comment(&self) -> bool {
        self.simple() && self.comment.is_none()
    }

    /// Tokenize `buf` into `out` with the right tokenizer.
    pub fn tokenize(&self, buf: &[u8], out: &mut Fields) {
        if self.simple_no_comment() {
            tokenize_fast(buf, self.delimiter, self.quote, out);
        } else {
            tokenize_scalar(
                buf,
                self.delimiter,
                self.quote,
                self.escape,
                self.comment,
                out,
            );
        }
    }
}

/// The candidate delimiter whose first rows have the most consistent field count above one.
fn sniff_delimiter(base: &Dialect, sample: &[u8], hint: u8) -> u8 {
    let head = &sample[..sample.len().min(64 * 1024)];
    let head = match memchr::memrchr(b'\n', head) {
        Some(p) if head.len() < sample.len() => &head[..=p],
        _ => head,
    };
    let mut best = (hint, 0usize, 0usize);
    for &c in CANDIDATES.iter() {
        let mut f = Fields::new(0, false);
        let d = Dialect {
            delimiter: c,
            ..*base
        };
        if d.simple_no_comment() {
            tokenize_fast(head, c, d.quote, &mut f);
        } else {
            tokenize_scalar(head, c, d.quote, d.escape, d.comment, &mut f);
        }
        let mut counts: Vec<usize> = Vec::new();
        let mut prev = 0;
        for &(end, _) in f.row_ends.iter().take(50) {
            counts.push(end - prev);
            prev = end;
        }
        let Some(&first) = counts.first() else {
            continue;
        };
        if first < 2 {
            continue;
        }
        let agree = counts.iter().filter(|&&n| n == first).count();
        let score = (agree, first);
        if score > (best.1, best.2) || (score == (best.1, best.2) && c == hint) {
            best = (c, agree, first);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options::from_json("{}").unwrap()
    }

    #[test]
    fn sniffs_common_delimiters() {
        assert_eq!(
            Dialect::for_sample(&opts(), b"a;b;c\n1;2,5;3\n4;5;6\n", "x.csv").delimiter,
            b';'
        );
        assert_eq!(
            Dialect::for_sample(&opts(), b"a\tb\n1\t2\n", "x.txt").delimiter,
            b'\t'
        );
        assert_eq!(
            Dialect::for_sample(&opts(), b"a|b|c\n\"x|y\"|2|3\n", "x").delimiter,
            b'|'
        );
        assert_eq!(
            Dialect::for_sample(&opts(), b"a,b\n1,2\n", "x").delimiter,
            b','
        );
        // one column: the default stays
        assert_eq!(
            Dialect::for_sample(&opts(), b"a\n1\n", "x.csv").delimiter,
            b','
        );
    }
}
