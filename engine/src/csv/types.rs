//! Column types: what a value can be read as, how types widen, and the value parsers.
//!
//! Parsers work on bytes and allocate nothing. The lattice: `Null` is below everything;
//! `Int64 -> Decimal -> Float64` (see [`crate::csv::decimal`] for the decimal rules);
//! `Date -> Timestamp`; anything else that disagrees becomes `String`.

use crate::csv::decimal;
use arrow::datatypes::{DataType, TimeUnit};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ColType {
    #[default]
    Null,
    Bool,
    Int64,
    Float64,
    /// An exact fixed-point number: precision (digits in all, 1..=38) and scale (digits after the
    /// point, 0..=precision). Made by [`ColType::decimal`], which checks those bounds.
    Decimal(u8, u8),
    Date,
    Timestamp,
    TimestampTz,
    String,
}

impl ColType {
    /// `decimal(precision, scale)` when a Decimal128 can be it.
    pub fn decimal(precision: u8, scale: u8) -> Option<ColType> {
        ((1..=decimal::MAX_PRECISION).contains(&precision) && scale <= precision)
            .then_some(ColType::Decimal(precision, scale))
    }

    /// The narrowest type that holds values of both `self` and `other`.
    pub fn join(self, other: ColType) -> ColType {
        use ColType::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Null, x) | (x, Null) => x,
            (Int64, Float64) | (Float64, Int64) => Float64,
            (Decimal(p1, s1), Decimal(p2, s2)) => decimal::join((p1, s1), (p2, s2)),
            (Int64, Decimal(p, s)) | (Decimal(p, s), Int64) => decimal::join_int((p, s)),
            (Decimal(..), Float64) | (Float64, Decimal(..)) => Float64,
            (Date, Timestamp) | (Timestamp, Date) => Timestamp,
            _ => String,
        }
    }

    /// The Arrow type a column of this type is written as (an all-null column is a string column).
    pub fn arrow(self) -> DataType {
        match self {
            ColType::Null | ColType::String => DataType::Utf8,
            ColType::Bool => DataType::Boolean,
            ColType::Int64 => DataType::Int64,
            ColType::Float64 => DataType::Float64,
            ColType::Decimal(p, s) => DataType::Decimal128(p, s as i8),
            ColType::Date => DataType::Date32,
            ColType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColType::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }

    /// The name reports and overrides use (`decimal(18,2)` for a decimal).
    pub fn name(self) -> std::string::String {
        self.to_string()
    }
}

impl fmt::Display for ColType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ColType::Null => "null",
            ColType::Bool => "bool",
            ColType::Int64 => "int64",
            ColType::Float64 => "float64",
            ColType::Decimal(p, s) => return write!(f, "decimal({p},{s})"),
            ColType::Date => "date",
            ColType::Timestamp => "timestamp",
            ColType::TimestampTz => "timestamp_tz",
            ColType::String => "string",
        };
        f.write_str(s)
    }
}

impl std::str::FromStr for ColType {
    type Err = std::string::String;

    /// A type name as an override gives it: the names above and a few common aliases, any case;
    /// `decimal(p,s)` (or `numeric(p,s)`; `decimal(p)` is scale 0).
    fn from_str(s: &str) -> Result<ColType, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        Ok(match t.as_str() {
            "null" => ColType::Null,
            "bool" | "boolean" => ColType::Bool,
            "int64" | "int" | "integer" | "bigint" => ColType::Int64,
            "float64" | "float" | "double" => ColType::Float64,
            "date" => ColType::Date,
            "timestamp" | "datetime" => ColType::Timestamp,
            "timestamp_tz" => ColType::TimestampTz,
            "string" | "utf8" | "str" | "text" | "varchar" => ColType::String,
            _ => {
                return decimal_type(&t).ok_or_else(|| {
                    format!(
                        "unknown column type {s:?}: expected string, int64, float64, bool, date, \
                         timestamp, timestamp_tz or decimal(precision,scale) with precision 1-38 \
                         and scale 0-precision"
                    )
                })
            }
        })
    }
}

/// `decimal(p,s)`, `decimal(p)`, `numeric(...)`; spaces allowed inside the parentheses.
fn decimal_type(t: &str) -> Option<ColType> {
    let args = t
        .strip_prefix("decimal")
        .or_else(|| t.strip_prefix("numeric"))?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')?;
    let mut parts = args.split(',').map(|x| x.trim().parse::<u8>());
    let p = parts.next()?.ok()?;
    let s = match parts.next() {
        Some(s) => s.ok()?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    ColType::decimal(p, s)
}

impl<'de> Deserialize<'de> for ColType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::string::String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for ColType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The narrowest type `v` (a non-null, unquoted value) parses as; with `decimals`, a fixed-point
/// number is `decimal(its digits, its scale)` (the column's precision is settled after the sample).
pub fn classify(v: &[u8], decimals: bool) -> ColType {
    let Some(&b0) = v.first() else {
        return ColType::Null;
    };
    if b0.is_ascii_digit() || b0 == b'-' || b0 == b'+' || b0 == b'.' {
        if parse_i64(v).is_some() {
            return ColType::Int64;
        }
        if decimals {
            if let Some(d) = decimal::classify(v) {
                return d;
            }
        }
        if parse_f64(v).is_some() {
            return ColType::Float64;
        }
        if parse_date(v).is_some() {
            return ColType::Date;
        }
        if let Some((_, tz)) = parse_timestamp(v) {
            return if tz {
                ColType::TimestampTz
            } else {
                ColType::Timestamp
            };
        }
        return ColType::String;
    }
    if parse_bool(v).is_some() {
        return ColType::Bool;
    }
    ColType::String
}

/// The type a column of inferred type `ty` widens to for a value `v` that did not fit it (the
/// sample missed it): the two joined, a decimal with the value's own digits and scale.
pub fn widened(ty: ColType, v: &[u8], decimals: bool) -> ColType {
    if let ColType::Decimal(p, s) = ty {
        if let Some(t) = decimal::widened((p, s), v) {
            return t;
        }
    }
    ty.join(classify(v, decimals))
}

/// A number's sign and the bytes after it (a leading `-` or `+`, or none); None for an empty value.
#[inline]
pub fn split_sign(v: &[u8]) -> Option<(bool, &[u8])> {
    Some(match v.first()? {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    })
}

#[inline]
pub fn parse_i64(v: &[u8]) -> Option<i64> {
    let (neg, digits) = split_sign(v)?;
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + d as u64;
    }
    if neg {
        if n > i64::MAX as u64 + 1 {
            None
        } else {
            Some((n as i64).wrapping_neg())
        }
    } else if n > i64::MAX as u64 {
        None
    } else {
        Some(n as i64)
    }
}

/// Decimal floats (`1.5`, `-.5`, `3e-7`, `12`); also `nan`/`inf` spellings once a column is float.
#[inline]
pub fn parse_f64(v: &[u8]) -> Option<f64> {
    let plain = match fast_decimal(v) {
        Decimal::Exact(x) => return Some(x),
        Decimal::Plain => true,
        Decimal::Other => false,
    };
    if !plain && !float_syntax(v) {
        return special_float(v);
    }
    // SAFETY: both checks admit ASCII bytes only, so `v` is UTF-8. The standard parser is exact.
    unsafe { std::str::from_utf8_unchecked(v) }.parse().ok()
}

/// What [`fast_decimal`] made of a value.
#[derive(Debug, PartialEq)]
enum Decimal {
    /// Read exactly on the fast path.
    Exact(f64),
    /// `[-+]digits[.digits]` with too many digits for the fast path: valid, for the full parser.
    Plain,
    /// Anything else (exponent, `nan`, not a number): the full syntax check decides.
    Other,
}

/// Exact powers of ten as f64 (all of 10^0..=10^22 are representable).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `[-+]digits[.digits]` whose digits, leading zeros left out, are an integer below 2^53 and with
/// at most 22 after the point, read exactly: that integer divided by an exact power of ten is one
/// correctly rounded IEEE operation (Clinger's fast path), so the result equals the standard
/// parser's. Values past those bounds (the random doubles of a typical export have 16-19 digits,
/// about half of them above 2^53) are still recognised as plain decimals, so the full parser gets
/// them without a second syntax pass.
#[inline]
fn fast_decimal(v: &[u8]) -> Decimal {
    let (neg, digits) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        Some(_) => (false, v),
        None => return Decimal::Other,
    };
    if digits.is_empty() {
        return Decimal::Other;
    }
    let mut m: u64 = 0;
    let mut frac: Option<usize> = None;
    let mut n = 0usize;
    // Digits from the first non-zero one: leading zeros (`0.5871...`) do not count, so a random
    // double in [-1, 1] printed with 16 digits still takes the fast path when below 2^53.
    let mut significant = 0usize;
    for (i, &b) in digits.iter().enumerate() {
        let d = b.wrapping_sub(b'0');
        if d <= 9 {
            // Wrapping: past 19 significant digits `m` is garbage, but then they rule the fast
            // path out.
            m = m.wrapping_mul(10).wrapping_add(d as u64);
            n += 1;
            significant += (d != 0 || significant > 0) as usize;
        } else if b == b'.' && frac.is_none() {
            frac = Some(i + 1);
        } else {
            return Decimal::Other;
        }
    }
    if n == 0 {
        return Decimal::Other;
    }
    let scale = frac.map(|f| digits.len() - f).unwrap_or(0);
    if significant > 19 || m >= 1 << 53 || scale >= POW10.len() {
        return Decimal::Plain;
    }
    let x = m as f64 / POW10[scale];
    Decimal::Exact(if neg { -x } else { x })
}

fn float_syntax(v: &[u8]) -> bool {
    let mut i = 0;
    if matches!(v.first(), Some(b'-' | b'+')) {
        i = 1;
    }
    let int_start = i;
    while i < v.len() && v[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < v.len() && v[i] == b'.' {
        i += 1;
        let f = i;
        while i < v.len() && v[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - f;
    }
    if digits == 0 {
        return false;
    }
    if i < v.len() && (v[i] == b'e' || v[i] == b'E') {
        i += 1;
        if matches!(v.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let e = i;
        while i < v.len() && v[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return false;
        }
    }
    i == v.len()
}

fn special_float(v: &[u8]) -> Option<f64> {
    let (neg, rest) = split_sign(v)?;
    let x = if rest.eq_ignore_ascii_case(b"nan") {
        f64::NAN
    } else if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        f64::INFINITY
    } else {
        return None;
    };
    Some(if neg { -x } else { x })
}

#[inline]
pub fn parse_bool(v: &[u8]) -> Option<bool> {
    if v.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else if v.eq_ignore_ascii_case(b"false") {
        Some(false)
    } else {
        None
    }
}

#[inline]
fn num(v: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    for &b in v {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + d as u32;
    }
    Some(n)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// `YYYY-MM-DD` as days since the epoch.
#[inline]
pub fn parse_date(v: &[u8]) -> Option<i32> {
    if v.len() != 10 || v[4] != b'-' || v[7] != b'-' {
        return None;
    }
    let y = num(&v[0..4])? as i64;
    let m = num(&v[5..7])?;
    let d = num(&v[8..10])?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d) as i32)
}

/// `YYYY-MM-DD[( |T)HH:MM[:SS[.f{1,9}]]][Z|±HH[:MM]]` as microseconds since the epoch (UTC when a
/// zone is given), and whether a zone was given. A bare date is midnight.
pub fn parse_timestamp(v: &[u8]) -> Option<(i64, bool)> {
    if v.len() < 10 {
        return None;
    }
    let days = parse_date(&v[..10])? as i64;
    let mut micros = days * 86_400_000_000;
    let mut i = 10;
    if i == v.len() {
        return Some((micros, false));
    }
    if v[i] != b' ' && v[i] != b'T' {
        return None;
    }
    i += 1;
    if v.len() < i + 5 || v[i + 2] != b':' {
        return None;
    }
    let h = num(&v[i..i + 2])?;
    let mi = num(&v[i + 3..i + 5])?;
    i += 5;
    let mut s = 0;
    if v.get(i) == Some(&b':') {
        s = num(v.get(i + 1..i + 3)?)?;
        i += 3;
    }
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    micros += (h as i64 * 3600 + mi as i64 * 60 + s as i64) * 1_000_000;
    if v.get(i) == Some(&b'.') {
        i += 1;
        let f0 = i;
        while i < v.len() && v[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &v[f0..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        let mut frac = num(&digits[..digits.len().min(6)])? as i64;
        for _ in digits.len()..6 {
            frac *= 10;
        }
        micros += frac;
    }
    if i == v.len() {
        return Some((micros, false));
    }
    let rest = &v[i..];
    if rest == b"Z" || rest == b"z" {
        return Some((micros, true));
    }
    let sign = match rest[0] {
        b'+' => 1i64,
        b'-' => -1,
        _ => return None,
    };
    let z = &rest[1..];
    let (zh, zm) = match z.len() {
        2 => (num(z)?, 0),
        4 => (num(&z[..2])?, num(&z[2..])?),
        5 if z[2] == b':' => (num(&z[..2])?, num(&z[3..])?),
        _ => return None,
    };
    if zh > 23 || zm > 59 {
        return None;
    }
    Some((
        micros - sign * (zh as i64 * 3600 + zm as i64 * 60) * 1_000_000,
        true,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_(v: &[u8]) -> ColType {
        classify(v, true)
    }

    #[test]
    fn classify_values() {
        assert_eq!(classify_(b"42"), ColType::Int64);
        assert_eq!(classify_(b"-9223372036854775808"), ColType::Int64);
        assert_eq!(classify_(b"9223372036854775808"), ColType::Float64);
        assert_eq!(classify_(b"1.5e-3"), ColType::Float64);
        assert_eq!(classify_(b"."), ColType::String);
        assert_eq!(classify_(b"True"), ColType::Bool);
        assert_eq!(classify_(b"2024-02-29"), ColType::Date);
        assert_eq!(classify_(b"2023-02-29"), ColType::String);
        assert_eq!(classify_(b"2024-01-02 03:04:05.25"), ColType::Timestamp);
        assert_eq!(
            classify_(b"2024-01-02T03:04:05+02:00"),
            ColType::TimestampTz
        );
        assert_eq!(classify_(b"12 apples"), ColType::String);
        assert_eq!(classify_(b"1.50"), ColType::Decimal(3, 2));
        assert_eq!(classify(b"1.50", false), ColType::Float64);
    }

    #[test]
    fn fast_decimals_equal_the_standard_parser() {
        for v in [
            "0",
            "-0",
            "1825.65",
            "-0.9914280950724559",
            "0.5871771441091886",
            "+3.",
            ".5",
            "-.25",
            "9007199254740991",
            "9007199254740993",
            "0.1",
            "123456789.123456",
            "99999999999999999",
            "1.7976931348623157",
            "0.000000000000001",
        ] {
            let want: f64 = v.parse().unwrap();
            let got = parse_f64(v.as_bytes()).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{v}");
        }
        for v in [".", "-", "1.2.3", "1e5x", "--1", "", "nan", "1e5"] {
            assert_eq!(fast_decimal(v.as_bytes()), Decimal::Other, "{v}");
        }
        // Leading zeros do not count against the fast path; 22 digits after the point are the most.
        for v in [
            "0.5871771441091886",
            "-0.0000000000000001234",
            "0.0000000000000000000001",
            "000000000000000000000000012.5",
        ] {
            let want: f64 = v.parse().unwrap();
            assert_eq!(fast_decimal(v.as_bytes()), Decimal::Exact(want), "{v}");
        }
        assert_eq!(
            fast_decimal(b"0.00000000000000000000000"),
            Decimal::Plain,
            "23 digits after the point"
        );
        // Too long for the fast path but plain: the full parser reads them, exactly.
        for v in [
            "-0.12258700862606953",
            "12345678901234567890123",
            "0.000000000000000000000000001",
            "99999999999999999999.5",
        ] {
            assert_eq!(fast_decimal(v.as_bytes()), Decimal::Plain, "{v}");
            let want: f64 = v.parse().unwrap();
            assert_eq!(
                parse_f64(v.as_bytes()).unwrap().to_bits(),
                want.to_bits(),
                "{v}"
            );
        }
        for v in ["1e5", "-2.5E-3", "nan", "-inf"] {
            assert!(parse_f64(v.as_bytes()).is_some(), "{v}");
        }
        for v in ["1e", "e5", "1.2.3", "0x10", "1_000"] {
            assert_eq!(parse_f64(v.as_bytes()), None, "{v}");
        }
    }

    /// Many plain decimals of every shape (leading zeros, 1-21 digits, the point anywhere, either
    /// side of 2^53): the fast path and the full parser give the same bits.
    #[test]
    fn parse_f64_equals_the_standard_parser_on_generated_decimals() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _ in 0..200_000 {
            let mut v = String::new();
            if next(3) == 0 {
                v.push('-');
            }
            for _ in 0..next(4) {
                v.push('0');
            }
            let digits = 1 + next(21) as usize;
            let point = next(digits as u64 + 1) as usize;
            for i in 0..digits {
                if i == point && i > 0 {
                    v.push('.');
                }
                v.push((b'0' + next(10) as u8) as char);
            }
            let want: f64 = v.parse().unwrap();
            assert_eq!(
                parse_f64(v.as_bytes()).unwrap().to_bits(),
                want.to_bits(),
                "{v}"
            );
        }
    }

    #[test]
    fn type_names_parse() {
        for (s, t) in [
            ("int64", ColType::Int64),
            ("INTEGER", ColType::Int64),
            ("double", ColType::Float64),
            ("timestamp_tz", ColType::TimestampTz),
            ("varchar", ColType::String),
            ("decimal(10,2)", ColType::Decimal(10, 2)),
            ("DECIMAL( 38 , 0 )", ColType::Decimal(38, 0)),
            ("numeric(5)", ColType::Decimal(5, 0)),
            ("decimal(3,3)", ColType::Decimal(3, 3)),
        ] {
            assert_eq!(s.parse::<ColType>(), Ok(t), "{s}");
            assert_eq!(t.name().parse::<ColType>(), Ok(t), "{t}");
        }
        for s in [
            "decimal",
            "decimal()",
            "decimal(0,0)",
            "decimal(39,2)",
            "decimal(5,6)",
            "decimal(10,-1)",
            "decimal(10,2,1)",
            "decimal(10.2)",
            "decimal10,2)",
            "money",
        ] {
            let e = s.parse::<ColType>().unwrap_err();
            assert!(e.contains("decimal(precision,scale)"), "{s}: {e}");
        }
        assert_eq!(ColType::Decimal(18, 2).name(), "decimal(18,2)");
        assert_eq!(ColType::Decimal(18, 2).arrow(), DataType::Decimal128(18, 2));
    }

    #[test]
    fn join_widens() {
        assert_eq!(ColType::Int64.join(ColType::Float64), ColType::Float64);
        assert_eq!(ColType::Null.join(ColType::Date), ColType::Date);
        assert_eq!(ColType::Date.join(ColType::Timestamp), ColType::Timestamp);
        assert_eq!(ColType::Bool.join(ColType::Int64), ColType::String);
    }

    #[test]
    fn timestamps_match_chrono() {
        use chrono::{NaiveDate, TimeZone, Utc};
        let t = parse_timestamp(b"1969-12-31T23:59:59.999999").unwrap().0;
        assert_eq!(t, -1);
        let (t, tz) = parse_timestamp(b"2024-03-10 12:30:00-0130").unwrap();
        assert!(tz);
        let want = Utc
            .with_ymd_and_hms(2024, 3, 10, 14, 0, 0)
            .unwrap()
            .timestamp_micros();
        assert_eq!(t, want);
        let d = parse_date(b"1900-03-01").unwrap() as i64;
        let want = NaiveDate::from_ymd_opt(1900, 3, 1)
            .unwrap()
            .signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap());
        assert_eq!(d, want.num_days());
    }
}
