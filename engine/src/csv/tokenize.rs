//! Cutting a block of CSV bytes into fields.
//!
//! Two tokenizers with the same semantics:
//! * [`tokenize_fast`] looks at 64 bytes at a time: bitmasks of delimiters, newlines and quotes
//!   (SSE2 compares), a prefix-XOR of the quote mask gives the in-quote bytes, and the structural
//!   characters outside quotes are walked with `trailing_zeros` (the simdjson/simdcsv technique).
//! * [`tokenize_scalar`] is a byte-at-a-time state machine, used when the dialect has an escape
//!   character or comment lines (which the quote-parity trick cannot express), and as the reference
//!   the fuzz target compares the fast one against.
//!
//! Semantics: a quote character toggles the in-quote state wherever it appears (`""` inside quotes is
//! a literal quote); delimiters and `\n` outside quotes end a field; a `\r` just before a record's
//! `\n` is dropped; blank lines are skipped. A field that contains a quote (or escape) character is
//! flagged [`QUOTED`] and must go through [`unquote`].

use memchr::memchr;

/// Flag bit on a field's end offset: the field holds quote/escape characters.
pub const QUOTED: u32 = 1 << 31;
/// A field's start when the field is missing from a null-filled ragged row.
pub const MISSING: u32 = u32::MAX;

/// Why a row was malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadKind {
    Ragged { found: usize },
    UnterminatedQuote,
    InvalidUtf8 { col: usize },
}

/// A malformed row: its byte offset in the block and what was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadRow {
    pub offset: u32,
    pub kind: BadKind,
}

/// The fields of a block, row-major: field `c` of row `r` is at `r * ncols + c`.
///
/// With `ncols == 0` (free mode, for sniffing and headers) rows keep any number of fields and
/// `row_ends` records where each row's fields end.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fields {
    pub starts: Vec<u32>,
    pub ends: Vec<u32>,
    pub ncols: usize,
    pub rows: usize,
    /// Free mode: index into `starts` after each row, and the byte offset after each row.
    pub row_ends: Vec<(usize, usize)>,
    pub bad: Vec<BadRow>,
    /// Null-fill ragged rows instead of dropping them.
    pub fill: bool,
    /// Newline bytes in the tokenized buffers (quoted ones included): line numbers come from this
    /// count, which the bitmask pass gets for one popcount per 64 bytes instead of another scan.
    pub newlines: usize,
    /// Whether any byte of the tokenized buffers is >= 0x80. A pure-ASCII block is valid UTF-8
    /// and needs no validation pass (again from the bitmask pass: one more movemask per 16 bytes).
    pub non_ascii: bool,
    row0: usize,
}

impl Fields {
    pub fn new(ncols: usize, fill: bool) -> Self {
        Fields {
            ncols,
            fill,
            ..Default::default()
        }
    }

    /// Empty, for reuse with another block (keeps the allocations).
    pub fn reset(&mut self, ncols: usize, fill: bool) {
        self.starts.clear();
        self.ends.clear();
        self.row_ends.clear();
        self.bad.clear();
        self.rows = 0;
        self.row0 = 0;
        self.newlines = 0;
        self.non_ascii = false;
        self.ncols = ncols;
        self.fill = fill;
    }

    /// Byte range and quoted flag of field `c` of row `r`; `None` for a missing field.
    #[inline]
    pub fn get(&self, r: usize, c: usize) -> Option<(usize, usize, bool)> {
        let i = r * self.ncols + c;
        let s = self.starts[i];
        if s == MISSING {
            return None;
        }
        let e = self.ends[i];
        Some((s as usize, (e & !QUOTED) as usize, e & QUOTED != 0))
    }

    /// Byte offset where row `r` starts.
    pub fn row_offset(&self, r: usize) -> usize {
        self.starts[r * self.ncols] as usize
    }

    #[inline(always)]
    fn push(&mut self, start: usize, end: usize, quoted: bool) {
        self.starts.push(start as u32);
        self.ends.push(end as u32 | if quoted { QUOTED } else { 0 });
    }

    /// Close the row whose fields start at `self.row0`; `next` is the byte offset after it.
    #[inline]
    fn end_row(&mut self, next: usize) {
        let n = self.starts.len() - self.row0;
        if n == 1 && self.starts[self.row0] == self.ends[self.row0] {
            // a blank line
            self.starts.truncate(self.row0);
            self.ends.truncate(self.row0);
        } else if self.ncols == 0 {
            self.row_ends.push((self.starts.len(), next));
            self.rows += 1;
        } else if n == self.ncols {
            self.rows += 1;
        } else {
            let offset = self.starts[self.row0];
            self.bad.push(BadRow {
                offset,
                kind: BadKind::Ragged { found: n },
            });
            if self.fill {
                self.starts.resize(self.row0 + self.ncols, MISSING);
                self.ends.resize(self.row0 + self.ncols, 0);
                self.rows += 1;
            } else {
                self.starts.truncate(self.row0);
                self.ends.truncate(self.row0);
            }
        }
        self.row0 = self.starts.len();
    }

    /// Drop an unterminated last record (its fields were pushed from `row_start`).
    fn unterminated(&mut self, row_start: usize) {
        self.starts.truncate(self.row0);
        self.ends.truncate(self.row0);
        self.bad.push(BadRow {
            offset: row_start as u32,
            kind: BadKind::UnterminatedQuote,
        });
    }

    /// The fields of `buf` (into this empty `Fields`) when its first `len` bytes, whole records,
    /// were already tokenized as `head`: the head's fields, then the rest of `buf` cut by
    /// `tokenize` and moved by `len`. The same fields as tokenizing all of `buf`, since a record
    /// boundary resets every state of the tokenizers; the head costs a copy instead of a pass.
    pub fn after_head(
        &mut self,
        head: &Fields,
        len: usize,
        buf: &[u8],
        tokenize: impl FnOnce(&[u8], &mut Fields),
    ) {
        debug_assert!(self.starts.is_empty() && self.rows == 0 && head.ncols == self.ncols);
        self.starts.extend_from_slice(&head.starts);
        self.ends.extend_from_slice(&head.ends);
        self.bad.extend_from_slice(&head.bad);
        self.row_ends.extend_from_slice(&head.row_ends);
        self.rows = head.rows;
        self.newlines = head.newlines;
        self.non_ascii = head.non_ascii;
        let (f0, b0, r0) = (self.starts.len(), self.bad.len(), self.row_ends.len());
        tokenize(&buf[len..], self);
        let shift = len as u32;
        for (s, e) in self.starts[f0..].iter_mut().zip(&mut self.ends[f0..]) {
            if *s != MISSING {
                *s += shift;
                // Below the QUOTED bit: a block is at most 1 GiB.
                *e += shift;
            }
        }
        for b in &mut self.bad[b0..] {
            b.offset += shift;
        }
        for r in &mut self.row_ends[r0..] {
            r.1 += len;
        }
    }

    /// Remove the rows whose index is in `drop` (sorted), e.g. rows with invalid UTF-8.
    pub fn drop_rows(&mut self, drop: &[usize]) {
        let n = self.ncols;
        let mut w = 0;
        let mut d = drop.iter().peekable();
        for r in 0..self.rows {
            if d.peek() == Some(&&r) {
                d.next();
                continue;
            }
            if w != r {
                self.starts.copy_within(r * n..(r + 1) * n, w * n);
                self.ends.copy_within(r * n..(r + 1) * n, w * n);
            }
            w += 1;
        }
        self.rows = w;
        self.starts.truncate(w * n);
        self.ends.truncate(w * n);
    }
}

#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// Bitmasks of `a`, `b` and `c` in 64 bytes, and whether any byte has its high bit set.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn masks(chunk: &[u8; 64], a: u8, b: u8, c: u8) -> (u64, u64, u64, bool) {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of the x86_64 baseline; loads are unaligned loads inside `chunk`.
    unsafe {
        let (va, vb, vc) = (
            _mm_set1_epi8(a as i8),
            _mm_set1_epi8(b as i8),
            _mm_set1_epi8(c as i8),
        );
        let (mut ma, mut mb, mut mc) = (0u64, 0u64, 0u64);
        let mut high = _mm_setzero_si128();
        for i in 0..4 {
            let v = _mm_loadu_si128(chunk.as_ptr().add(i * 16) as *const __m128i);
            high = _mm_or_si128(high, v);
            ma |= (_mm_movemask_epi8(_mm_cmpeq_epi8(v, va)) as u32 as u64) << (i * 16);
            mb |= (_mm_movemask_epi8(_mm_cmpeq_epi8(v, vb)) as u32 as u64) << (i * 16);
            mc |= (_mm_movemask_epi8(_mm_cmpeq_epi8(v, vc)) as u32 as u64) << (i * 16);
        }
        (ma, mb, mc, _mm_movemask_epi8(high) != 0)
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn masks(chunk: &[u8; 64], a: u8, b: u8, c: u8) -> (u64, u64, u64, bool) {
    let (mut ma, mut mb, mut mc) = (0u64, 0u64, 0u64);
    for (i, &x) in chunk.iter().enumerate() {
        ma |= ((x == a) as u64) << i;
        mb |= ((x == b) as u64) << i;
        mc |= ((x == c) as u64) << i;
    }
    (ma, mb, mc, !chunk.is_ascii())
}

/// Tokenize `buf` (whole records; the last one may lack its newline) into `out`.
/// `quote` None disables quoting. No escape character, no comment lines.
pub fn tokenize_fast(buf: &[u8], delim: u8, quote: Option<u8>, out: &mut Fields) {
    let len = buf.len();
    let (qbyte, qon) = match quote {
        Some(q) => (q, u64::MAX),
        None => (delim, 0),
    };
    out.row0 = out.starts.len();
    let mut field_start = 0usize;
    let mut inq_carry = 0u64;
    let mut last_quote: isize = -1;
    let mut base = 0usize;
    let mut pad = [0u8; 64];
    let (mut newlines, mut high) = (0usize, false);
    while base < len {
        let chunk: &[u8; 64] = if base + 64 <= len {
            buf[base..base + 64].try_into().expect("64 bytes")
        } else {
            pad[..len - base].copy_from_slice(&buf[base..]);
            &pad
        };
        let (d, n, q, h) = masks(chunk, delim, b'\n', qbyte);
        newlines += n.count_ones() as usize;
        high |= h;
        let q = q & qon;
        let inq = prefix_xor(q) ^ inq_carry;
        inq_carry = ((inq as i64) >> 63) as u64;
        let mut s = (d | n) & !inq;
        while s != 0 {
            let bit = s.trailing_zeros();
            let pos = base + bit as usize;
            let below = q & ((1u64 << bit) - 1);
            let lq = if below != 0 {
                (base + 63 - below.leading_zeros() as usize) as isize
            } else {
                last_quote
            };
            let quoted = lq >= field_start as isize;
            if (n >> bit) & 1 == 1 {
                let end = if pos > field_start && buf[pos - 1] == b'\r' {
                    pos - 1
                } else {
                    pos
                };
                out.push(field_start, end, quoted);
                out.end_row(pos + 1);
            } else {
                out.push(field_start, pos, quoted);
            }
            field_start = pos + 1;
            s &= s - 1;
        }
        if q != 0 {
            last_quote = (base + 63 - q.leading_zeros() as usize) as isize;
        }
        base += 64;
    }
    out.newlines += newlines;
    out.non_ascii |= high;
    let row_start = if out.starts.len() > out.row0 {
        out.starts[out.row0] as usize
    } else {
        field_start
    };
    if inq_carry != 0 {
        out.unterminated(row_start);
    } else if field_start < len || out.starts.len() > out.row0 {
        let end = if len > field_start && buf[len - 1] == b'\r' {
            len - 1
        } else {
            len
        };
        out.push(field_start, end, last_quote >= field_start as isize);
        out.end_row(len);
    }
}

/// The byte-at-a-time tokenizer: any dialect (escape character, comment lines).
pub fn tokenize_scalar(
    buf: &[u8],
    delim: u8,
    quote: Option<u8>,
    escape: Option<u8>,
    comment: Option<u8>,
    out: &mut Fields,
) {
    let len = buf.len();
    let escape = if escape == quote { None } else { escape };
    out.row0 = out.starts.len();
    out.newlines += crate::csv::split::count_byte(buf, b'\n');
    out.non_ascii |= !buf.is_ascii();
    let mut i = 0usize;
    let mut field_start = 0usize;
    let mut inq = false;
    let mut quoted = false;
    let mut row_start = true;
    while i < len {
        let b = buf[i];
        if row_start && comment == Some(b) {
            match memchr(b'\n', &buf[i..]) {
                Some(p) => i += p + 1,
                None => i = len,
            }
            field_start = i;
            continue;
        }
        row_start = false;
        if escape == Some(b) {
            quoted = true;
            i += 2;
            continue;
        }
        if quote == Some(b) {
            inq = !inq;
            quoted = true;
        } else if !inq {
            if b == delim {
                out.push(field_start, i, quoted);
                quoted = false;
                field_start = i + 1;
            } else if b == b'\n' {
                let end = if i > field_start && buf[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                out.push(field_start, end, quoted);
                out.end_row(i + 1);
                quoted = false;
                field_start = i + 1;
                row_start = true;
            }
        }
        i += 1;
    }
    let row_begin = if out.starts.len() > out.row0 {
        out.starts[out.row0] as usize
    } else {
        field_start
    };
    if inq {
        out.unterminated(row_begin);
    } else if field_start < len || out.starts.len() > out.row0 {
        let end = if len > field_start && buf[len - 1] == b'\r' {
            len - 1
        } else {
            len
        };
        out.push(field_start, end.max(field_start), quoted);
        out.end_row(len);
    }
}

/// The value of a quoted field: quotes removed, `""` inside quotes and escaped bytes kept literally.
pub fn unquote(field: &[u8], quote: Option<u8>, escape: Option<u8>, out: &mut Vec<u8>) {
    out.clear();
    unquote_append(field, quote, escape, out);
}

/// [`unquote`] appending to `out` (a string column's value buffer: no copy through a scratch).
pub fn unquote_append(field: &[u8], quote: Option<u8>, escape: Option<u8>, out: &mut Vec<u8>) {
    let escape = if escape == quote { None } else { escape };
    let mut inq = false;
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        if escape == Some(b) && i + 1 < field.len() {
            out.push(field[i + 1]);
            i += 2;
            continue;
        }
        if quote == Some(b) {
            if inq && field.get(i + 1) == Some(&b) {
                out.push(b);
                i += 2;
                continue;
            }
            inq = !inq;
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(buf: &[u8], ncols: usize) -> Fields {
        let mut a = Fields::new(ncols, false);
        tokenize_fast(buf, b',', Some(b'"'), &mut a);
        let mut b = Fields::new(ncols, false);
        tokenize_scalar(buf, b',', Some(b'"'), None, None, &mut b);
        assert_eq!(
            a,
            b,
            "fast and scalar disagree on {:?}",
            String::from_utf8_lossy(buf)
        );
        a
    }

    fn values(buf: &[u8], f: &Fields) -> Vec<Vec<String>> {
        let mut tmp = Vec::new();
        (0..f.rows)
            .map(|r| {
                (0..f.ncols)
                    .map(|c| match f.get(r, c) {
                        None => "<null>".to_string(),
                        Some((s, e, q)) => {
                            if q {
                                unquote(&buf[s..e], Some(b'"'), None, &mut tmp);
                                String::from_utf8(tmp.clone()).unwrap()
                            } else {
                                String::from_utf8(buf[s..e].to_vec()).unwrap()
                            }
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn quoted_newlines_delimiters_and_crlf() {
        let buf = b"a,\"b,\nc\",d\r\n1,\"say \"\"hi\"\"\",\r\n\n\"x\",y,z";
        let f = both(buf, 3);
        assert_eq!(
            values(buf, &f),
            vec![
                vec!["a", "b,\nc", "d"],
                vec!["1", "say \"hi\"", ""],
                vec!["x", "y", "z"]
            ]
        );
    }

    #[test]
    fn long_fields_cross_64_byte_chunks() {
        let long = "x".repeat(150);
        let buf = format!("\"{long}\n{long}\",{long}\n1,2\n");
        let f = both(buf.as_bytes(), 2);
        assert_eq!(f.rows, 2);
        assert_eq!(values(buf.as_bytes(), &f)[0][0], format!("{long}\n{long}"));
    }

    #[test]
    fn ragged_rows_are_reported_and_dropped_or_filled() {
        let buf = b"1,2,3\n4,5\n6,7,8,9\n10,11,12\n";
        let f = both(buf, 3);
        assert_eq!(f.rows, 2);
        assert_eq!(f.bad.len(), 2);
        assert_eq!(
            f.bad[0],
            BadRow {
                offset: 6,
                kind: BadKind::Ragged { found: 2 }
            }
        );
        let mut g = Fields::new(3, true);
        tokenize_fast(buf, b',', Some(b'"'), &mut g);
        assert_eq!(g.rows, 4);
        assert_eq!(values(buf, &g)[1], vec!["4", "5", "<null>"]);
        assert_eq!(values(buf, &g)[2], vec!["6", "7", "8"]);
    }

    #[test]
    fn unterminated_quote_drops_the_last_record() {
        let buf = b"1,2\n3,\"4\n5,6\n";
        let f = both(buf, 2);
        assert_eq!(f.rows, 1);
        assert_eq!(
            f.bad,
            vec![BadRow {
                offset: 4,
                kind: BadKind::UnterminatedQuote
            }]
        );
    }

    /// Newlines (quoted ones too) and non-ASCII bytes are seen in every position of a 64-byte
    /// chunk, including the padded tail, by both tokenizers alike.
    #[test]
    fn newlines_and_non_ascii_are_counted() {
        let mut buf = b"a,\"x\ny\"\n".repeat(40);
        let f = both(&buf, 2);
        assert_eq!(f.newlines, 80);
        assert!(!f.non_ascii);
        for at in [0, 5, 63, 64, 127, buf.len() - 1] {
            let mut b = buf.clone();
            b[at] = 0xC3;
            let mut fast = Fields::new(2, false);
            tokenize_fast(&b, b',', Some(b'"'), &mut fast);
            assert!(fast.non_ascii, "high byte at {at}");
            let mut slow = Fields::new(2, false);
            tokenize_scalar(&b, b',', Some(b'"'), None, None, &mut slow);
            assert!(slow.non_ascii, "high byte at {at}");
        }
        buf.truncate(buf.len() - 1);
        assert_eq!(both(&buf, 2).newlines, 79);
        let mut f = both(&buf, 2);
        f.reset(2, false);
        assert_eq!((f.newlines, f.non_ascii), (0, false));
    }

    /// A head tokenized apart (cut at any record end) and the rest after it give the fields of
    /// the whole buffer: blank lines, CRLF, quoted newlines, ragged rows (dropped or filled), an
    /// unterminated quote at the end, comment lines and escapes.
    #[test]
    fn fields_after_a_head_are_those_of_the_whole() {
        let buf: &[u8] =
            b"1,\"a\nb\",x\r\n\n2,3\n4,5,6,7\n# note, \"q\n8,\"c\\\"d\",y\n9,,\n10,\"open\n11,1,2";
        let cuts: Vec<usize> = (0..=buf.len())
            .filter(|&n| n == 0 || buf[n - 1] == b'\n')
            .collect();
        type Tok = fn(&[u8], &mut Fields);
        let fast: Tok = |b, f| tokenize_fast(b, b',', Some(b'"'), f);
        let scalar: Tok = |b, f| tokenize_scalar(b, b',', Some(b'"'), Some(b'\\'), Some(b'#'), f);
        for (name, tok) in [("fast", fast), ("scalar", scalar)] {
            for fill in [false, true] {
                let mut whole = Fields::new(3, fill);
                tok(buf, &mut whole);
                for &n in &cuts {
                    // A cut inside the quoted newline is no record end: skip it.
                    let mut head = Fields::new(3, fill);
                    tok(&buf[..n], &mut head);
                    if head
                        .bad
                        .iter()
                        .any(|b| b.kind == BadKind::UnterminatedQuote)
                    {
                        continue;
                    }
                    let mut got = Fields::new(3, fill);
                    got.after_head(&head, n, buf, tok);
                    let what = format!("{name} fill={fill} cut at {n}");
                    assert_eq!(got.starts, whole.starts, "{what}");
                    assert_eq!(got.ends, whole.ends, "{what}");
                    assert_eq!(got.bad, whole.bad, "{what}");
                    assert_eq!(got.rows, whole.rows, "{what}");
                    assert_eq!(got.newlines, whole.newlines, "{what}");
                }
            }
        }
    }

    #[test]
    fn escape_and_comments_in_the_scalar_tokenizer() {
        let buf = b"# a comment, with \"quote\n1,a\\,b\n#another\n2,\"c\\\"d\"\n";
        let mut f = Fields::new(2, false);
        tokenize_scalar(buf, b',', Some(b'"'), Some(b'\\'), Some(b'#'), &mut f);
        assert_eq!(f.rows, 2);
        let mut tmp = Vec::new();
        let (s, e, q) = f.get(0, 1).unwrap();
        assert!(q);
        unquote(&buf[s..e], Some(b'"'), Some(b'\\'), &mut tmp);
        assert_eq!(tmp, b"a,b");
        let (s, e, _) = f.get(1, 1).unwrap();
        unquote(&buf[s..e], Some(b'"'), Some(b'\\'), &mut tmp);
        assert_eq!(tmp, b"c\"d");
    }
}
