//! A compact TIFF/IFD walker: the structure inside every EXIF block and every TIFF-based file.
//!
//! It follows IFD0 → IFD1 (the thumbnail IFD) and the ExifIFD, GPS and Interop sub-IFDs, and turns
//! each entry into an owned [`Value`]. Maker notes are kept as an opaque length (never parsed).
//! Every offset is checked against the source; a bad entry is skipped (as exiftool does, with a
//! warning), a bad header or IFD0 is an error. Loops (an IFD pointing back at itself) are cut.

use super::source::{PResult, ParseError, Source};

/// Which IFD an entry came from (exiftool's group 1 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ifd {
    Ifd0,
    Ifd1,
    Exif,
    Gps,
    Interop,
}

/// One entry's value, decoded but not yet formatted.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Ascii(Vec<u8>),
    Undefined(Vec<u8>),
    Unsigned(Vec<u64>),
    Signed(Vec<i64>),
    Rational(Vec<(u32, u32)>),
    SRational(Vec<(i32, i32)>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    /// A value too large to be worth reading (its byte length); shown as binary data.
    Binary(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub ifd: Ifd,
    pub tag: u16,
    pub value: Value,
}

/// The decoded TIFF structure.
#[derive(Debug, Clone, Default)]
pub struct Tiff {
    pub big_endian: bool,
    pub entries: Vec<Entry>,
    /// Problems that did not stop the parse (bad sub-IFD pointer, bad value offset).
    pub warnings: Vec<String>,
}

impl Tiff {
    pub fn get(&self, ifd: Ifd, tag: u16) -> Option<&Value> {
        self.entries
            .iter()
            .find(|e| e.ifd == ifd && e.tag == tag)
            .map(|e| &e.value)
    }
}

/// Values longer than this are not read (exiftool prints "(Binary data N bytes ...)" for them).
const MAX_VALUE: u64 = 1 << 20;
/// An IFD with more entries than this is corrupt (real files have a few hundred at most).
const MAX_ENTRIES: u16 = 4096;
const MAX_IFDS: usize = 16;

pub const TAG_EXIF_IFD: u16 = 0x8769;
pub const TAG_GPS_IFD: u16 = 0x8825;
pub const TAG_INTEROP_IFD: u16 = 0xa005;
pub const TAG_MAKER_NOTE: u16 = 0x927c;

struct Walker<'s, S: Source> {
    src: &'s mut S,
    start: u64,
    end: u64,
    be: bool,
    visited: Vec<u64>,
    out: Tiff,
}

impl<S: Source> Walker<'_, S> {
    fn u16(&self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.be {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }
    fn u32(&self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    /// Read `len` bytes at TIFF offset `off` (relative to the header), checked against the block.
    fn bytes(&mut self, off: u64, len: u64) -> PResult<Vec<u8>> {
        let abs = self
            .start
            .checked_add(off)
            .ok_or_else(|| ParseError::new("offset overflow"))?;
        match abs.checked_add(len) {
            Some(e) if e <= self.end => {}
            _ => {
                return Err(ParseError::at(
                    self.src.file_base() + abs,
                    format!("offset {off} + {len} bytes runs past the end of the EXIF block"),
                ))
            }
        }
        Ok(self.src.read(abs, len as usize)?.to_vec())
    }

    fn ifd(&mut self, which: Ifd, off: u64) -> PResult<u64> {
        if self.visited.contains(&off) || self.visited.len() >= MAX_IFDS {
            return Err(ParseError::at(
                self.src.file_base() + self.start + off,
                "IFD loop",
            ));
        }
        self.visited.push(off);
        let head = self.bytes(off, 2)?;
        let n = self.u16(&head);
        if n > MAX_ENTRIES {
            return Err(ParseError::at(
                self.src.file_base() + self.start + off,
                format!("IFD claims {n} entries"),
            ));
        }
        let table = self.bytes(off + 2, u64::from(n) * 12)?;
        // The next-IFD pointer may be missing in truncated-but-readable blocks: treat as the end.
        let next = self
            .bytes(off + 2 + u64::from(n) * 12, 4)
            .map(|b| u64::from(self.u32(&b)))
            .unwrap_or(0);
        let mut subs = Vec::new();
        for raw in table.chunks_exact(12) {
            let tag = self.u16(&raw[0..2]);
            let typ = self.u16(&raw[2..4]);
            let count = u64::from(self.u32(&raw[4..8]));
            let size = match type_size(typ) {
                Some(s) => s,
                None => continue, // unknown type: skip, as exiftool does
            };
            let total = count.saturating_mul(size);
            if matches!(tag, TAG_EXIF_IFD | TAG_GPS_IFD | TAG_INTEROP_IFD)
                && count >= 1
                && (typ == 4 || typ == 13)
            {
                let sub = match (tag, which) {
                    (TAG_EXIF_IFD, Ifd::Ifd0) => Some(Ifd::Exif),
                    (TAG_GPS_IFD, Ifd::Ifd0) => Some(Ifd::Gps),
                    (TAG_INTEROP_IFD, Ifd::Exif) => Some(Ifd::Interop),
                    _ => None,
                };
                if let Some(sub) = sub {
                    subs.push((sub, u64::from(self.u32(&raw[8..12]))));
                }
                continue;
            }
            let value = if total > MAX_VALUE || tag == TAG_MAKER_NOTE && which == Ifd::Exif {
                Value::Binary(total)
            } else if total <= 4 {
                decode(typ, count, &raw[8..8 + total as usize], self.be)
            } else {
                let voff = u64::from(self.u32(&raw[8..12]));
                match self.bytes(voff, total) {
                    Ok(b) => decode(typ, count, &b, self.be),
                    Err(e) => {
                        self.out
                            .warnings
                            .push(format!("tag 0x{tag:04x}: {}", e.message));
                        continue;
                    }
                }
            };
            self.out.entries.push(Entry {
                ifd: which,
                tag,
                value,
            });
        }
        for (sub, off) in subs {
            if let Err(e) = self.ifd(sub, off) {
                self.out
                    .warnings
                    .push(format!("{sub:?} IFD: {}", e.message));
            }
        }
        Ok(next)
    }
}

/// Byte size of one value of a TIFF field type (None: not a TIFF type).
pub fn type_size(typ: u16) -> Option<u64> {
    Some(match typ {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 | 16 | 17 | 18 => 8,
        _ => return None,
    })
}

fn decode(typ: u16, count: u64, b: &[u8], be: bool) -> Value {
    let n = count as usize;
    let u16x = |c: &[u8]| {
        if be {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_le_bytes([c[0], c[1]])
        }
    };
    let u32x = |c: &[u8]| {
        let a = [c[0], c[1], c[2], c[3]];
        if be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let u64x = |c: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&c[..8]);
        if be {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        }
    };
    match typ {
        1 => Value::Unsigned(b[..n].iter().map(|&x| u64::from(x)).collect()),
        2 => Value::Ascii(b[..n].to_vec()),
        3 => Value::Unsigned(
            b.chunks_exact(2)
                .take(n)
                .map(|c| u64::from(u16x(c)))
                .collect(),
        ),
        4 | 13 => Value::Unsigned(
            b.chunks_exact(4)
                .take(n)
                .map(|c| u64::from(u32x(c)))
                .collect(),
        ),
        16 | 18 => Value::Unsigned(b.chunks_exact(8).take(n).map(u64x).collect()),
        5 => Value::Rational(
            b.chunks_exact(8)
                .take(n)
                .map(|c| (u32x(&c[..4]), u32x(&c[4..])))
                .collect(),
        ),
        6 => Value::Signed(b[..n].iter().map(|&x| i64::from(x as i8)).collect()),
        7 => Value::Undefined(b[..n].to_vec()),
        8 => Value::Signed(
            b.chunks_exact(2)
                .take(n)
                .map(|c| i64::from(u16x(c) as i16))
                .collect(),
        ),
        9 => Value::Signed(
            b.chunks_exact(4)
                .take(n)
                .map(|c| i64::from(u32x(c) as i32))
                .collect(),
        ),
        17 => Value::Signed(b.chunks_exact(8).take(n).map(|c| u64x(c) as i64).collect()),
        10 => Value::SRational(
            b.chunks_exact(8)
                .take(n)
                .map(|c| (u32x(&c[..4]) as i32, u32x(&c[4..]) as i32))
                .collect(),
        ),
        11 => Value::Float(
            b.chunks_exact(4)
                .take(n)
                .map(|c| f32::from_bits(u32x(c)))
                .collect(),
        ),
        12 => Value::Double(
            b.chunks_exact(8)
                .take(n)
                .map(|c| f64::from_bits(u64x(c)))
                .collect(),
        ),
        _ => Value::Binary(b.len() as u64),
    }
}

/// Walk the TIFF structure whose header sits at `start` in `src` and ends at `end` (exclusive).
pub fn parse<S: Source>(src: &mut S, start: u64, end: u64) -> PResult<Tiff> {
    let end = end.min(src.len());
    if end < start.saturating_add(8) {
        return Err(ParseError::at(
            src.file_base() + start,
            "EXIF block shorter than a TIFF header",
        ));
    }
    let head = src.read(start, 8)?.to_vec();
    let be = match &head[0..2] {
        b"MM" => true,
        b"II" => false,
        _ => {
            return Err(ParseError::at(
                src.file_base() + start,
                "not a TIFF header (byte order mark missing)",
            ))
        }
    };
    let mut w = Walker {
        src,
        start,
        end,
        be,
        visited: Vec::new(),
        out: Tiff {
            big_endian: be,
            ..Tiff::default()
        },
    };
    // 42 is TIFF; ORF (0x4f52 / 0x5352) and RW2 (0x55) use their own magic on the same structure.
    let magic = w.u16(&head[2..4]);
    if !matches!(magic, 42 | 0x4f52 | 0x5352 | 0x55) {
        return Err(ParseError::at(
            w.src.file_base() + start + 2,
            format!("bad TIFF magic number {magic}"),
        ));
    }
    let ifd0 = u64::from(w.u32(&head[4..8]));
    let next = w.ifd(Ifd::Ifd0, ifd0)?;
    if next != 0 {
        if let Err(e) = w.ifd(Ifd::Ifd1, next) {
            w.out.warnings.push(format!("IFD1: {}", e.message));
        }
    }
    Ok(w.out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::exif::source::MemSource;

    /// A tiny TIFF writer for tests (little or big endian), entries given as (tag, type, count, bytes).
    pub(crate) fn build(
        be: bool,
        ifd0: &[(u16, u16, u32, Vec<u8>)],
        exif: &[(u16, u16, u32, Vec<u8>)],
    ) -> Vec<u8> {
        let p16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let p32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut out = Vec::new();
        out.extend_from_slice(if be { b"MM" } else { b"II" });
        out.extend_from_slice(&p16(42));
        out.extend_from_slice(&p32(8));
        let mut ifd0 = ifd0.to_vec();
        if !exif.is_empty() {
            ifd0.push((TAG_EXIF_IFD, 4, 1, vec![0; 4]));
        }
        let ifd0_len = 2 + 12 * ifd0.len() + 4;
        let exif_at = 8 + ifd0_len;
        let exif_len = if exif.is_empty() {
            0
        } else {
            2 + 12 * exif.len() + 4
        };
        let mut data_at = (exif_at + exif_len) as u32;
        let mut data = Vec::new();
        let mut write_ifd = |out: &mut Vec<u8>, entries: &[(u16, u16, u32, Vec<u8>)]| {
            out.extend_from_slice(&p16(entries.len() as u16));
            for (tag, typ, count, bytes) in entries {
                out.extend_from_slice(&p16(*tag));
                out.extend_from_slice(&p16(*typ));
                out.extend_from_slice(&p32(*count));
                if *tag == TAG_EXIF_IFD {
                    out.extend_from_slice(&p32(exif_at as u32));
                } else if bytes.len() <= 4 {
                    let mut b = bytes.clone();
                    b.resize(4, 0);
                    out.extend_from_slice(&b);
                } else {
                    out.extend_from_slice(&p32(data_at));
                    data.extend_from_slice(bytes);
                    data_at += bytes.len() as u32;
                }
            }
            out.extend_from_slice(&p32(0));
        };
        write_ifd(&mut out, &ifd0);
        if !exif.is_empty() {
            write_ifd(&mut out, exif);
        }
        out.extend_from_slice(&data);
        out
    }

    fn parse_bytes(b: &[u8]) -> PResult<Tiff> {
        let mut s = MemSource { data: b, base: 0 };
        parse(&mut s, 0, b.len() as u64)
    }

    #[test]
    fn reads_ascii_short_rational_srational_in_both_byte_orders() {
        for be in [false, true] {
            let r = |n: u32, d: u32| {
                if be {
                    [n.to_be_bytes(), d.to_be_bytes()].concat()
                } else {
                    [n.to_le_bytes(), d.to_le_bytes()].concat()
                }
            };
            let s = |v: u16| {
                if be {
                    v.to_be_bytes().to_vec()
                } else {
                    v.to_le_bytes().to_vec()
                }
            };
            let b = build(
                be,
                &[(0x010f, 2, 6, b"Canon\0".to_vec()), (0x0112, 3, 1, s(6))],
                &[
                    (0x829a, 5, 1, r(1, 125)),
                    (0x9204, 10, 1, r((-2i32) as u32, 3)),
                    (0x9000, 7, 4, b"0232".to_vec()),
                ],
            );
            let t = parse_bytes(&b).unwrap();
            assert_eq!(t.big_endian, be);
            assert_eq!(
                t.get(Ifd::Ifd0, 0x010f),
                Some(&Value::Ascii(b"Canon\0".to_vec()))
            );
            assert_eq!(t.get(Ifd::Ifd0, 0x0112), Some(&Value::Unsigned(vec![6])));
            assert_eq!(
                t.get(Ifd::Exif, 0x829a),
                Some(&Value::Rational(vec![(1, 125)]))
            );
            assert_eq!(
                t.get(Ifd::Exif, 0x9204),
                Some(&Value::SRational(vec![(-2, 3)]))
            );
            assert_eq!(
                t.get(Ifd::Exif, 0x9000),
                Some(&Value::Undefined(b"0232".to_vec()))
            );
        }
    }

    #[test]
    fn bad_value_offset_is_skipped_not_fatal() {
        let mut b = build(
            false,
            &[(0x010f, 2, 20, vec![b'x'; 20]), (0x0112, 3, 1, vec![1, 0])],
            &[],
        );
        // point Make's value far outside the block
        b[8 + 2 + 8..8 + 2 + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        let t = parse_bytes(&b).unwrap();
        assert!(t.get(Ifd::Ifd0, 0x010f).is_none());
        assert_eq!(t.get(Ifd::Ifd0, 0x0112), Some(&Value::Unsigned(vec![1])));
        assert_eq!(t.warnings.len(), 1);
    }

    #[test]
    fn bad_headers_and_truncation_are_errors() {
        assert!(parse_bytes(b"").is_err());
        assert!(parse_bytes(b"XX*\0\x08\0\0\0").is_err());
        assert!(parse_bytes(b"II\x2b\0\x08\0\0\0").is_err());
        // IFD0 offset past the end
        assert!(parse_bytes(b"II*\0\xff\0\0\0").is_err());
        let b = build(false, &[(0x010f, 2, 6, b"Canon\0".to_vec())], &[]);
        for cut in 0..b.len() {
            let _ = parse_bytes(&b[..cut]); // never panics
        }
    }

    #[test]
    fn ifd_loop_is_cut() {
        let mut b = build(false, &[(0x0112, 3, 1, vec![1, 0])], &[]);
        let n = b.len();
        b[n - 4..].copy_from_slice(&8u32.to_le_bytes()); // IFD1 = IFD0
        let t = parse_bytes(&b).unwrap();
        assert_eq!(t.entries.len(), 1);
        assert!(t.warnings.iter().any(|w| w.contains("loop")));
    }
}
