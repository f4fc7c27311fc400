//! Exact decimals: reading `[-+]digits.digits` values as scaled integers, and the rules that decide
//! when a column is a decimal and of which precision.
//!
//! A column is inferred as `decimal(p, s)` when every sampled value is an integer or a plain
//! fixed-point number (digits on both sides of the point, no exponent) and all those with a point
//! have the same number of fractional digits `s` (prices written as `19.99`, `-3.10`, `20`). Values
//! with varying fractional digits (`0.5`, `0.25`: what a float printed in its shortest form looks
//! like) or an exponent keep the column float64. The precision leaves headroom for values after the
//! sample: 18 (stored as a Parquet INT64) when the sample needs at most 16 digits, else 38.
//!
//! A value is read exactly or not at all: fewer fractional digits than the scale are padded
//! (`20` is `20.00`), more are accepted only when they are zeros (`19.990`), and a value with more
//! digits than the precision does not fit. Nothing is ever rounded.

use crate::csv::types::ColType;

/// Largest precision of an Arrow Decimal128 (and of what we infer).
pub const MAX_PRECISION: u8 = 38;

/// Precision of an inferred decimal whose sampled values need at most this many digits: two digits
/// of headroom (values up to 100 times the largest sampled) within a Parquet INT64.
const INT64_PRECISION: u8 = 18;
const HEADROOM: u8 = 2;

/// 10^0 ..= 10^38.
const POW10: [u128; 39] = {
    let mut t = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// A plain decimal number as written: `±m / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    pub neg: bool,
    /// The digits without the point (leading zeros dropped): below 10^38.
    pub m: u128,
    /// Significant digits before the point (leading zeros left out): `0.5` has none, `007.5` one.
    pub int_digits: u8,
    /// Digits after the point, trailing zeros included.
    pub scale: u8,
    /// Whether there are digits on both sides of a point (`1.5`; not `15`, `.5` or `1.`).
    pub point_between_digits: bool,
}

/// `[-+]digits[.digits]`, `[-+].digits` or `[-+]digits.` with at most 38 significant digits (leading
/// zeros do not count) and at most 38 digits after the point. No exponent, no spaces, no `_`.
#[inline]
pub fn scan(v: &[u8]) -> Option<Fixed> {
    let (neg, rest) = crate::csv::types::split_sign(v)?;
    let mut m: u128 = 0;
    let mut significant = 0u32;
    let mut int_chars = 0u32;
    let mut int_digits = 0u32;
    let mut frac: Option<u32> = None;
    for &b in rest {
        let d = b.wrapping_sub(b'0');
        if d <= 9 {
            match frac.as_mut() {
                Some(f) => *f += 1,
                None => {
                    int_chars += 1;
                    if m != 0 || d != 0 {
                        int_digits += 1;
                    }
                }
            }
            if m != 0 || d != 0 {
                significant += 1;
                if significant > MAX_PRECISION as u32 {
                    return None;
                }
            }
            m = m * 10 + d as u128;
        } else if b == b'.' && frac.is_none() {
            frac = Some(0);
        } else {
            return None;
        }
    }
    let scale = frac.unwrap_or(0);
    if int_chars + scale == 0 || scale > MAX_PRECISION as u32 {
        return None;
    }
    Some(Fixed {
        neg,
        m,
        int_digits: int_digits as u8,
        scale: scale as u8,
        point_between_digits: int_chars > 0 && scale > 0,
    })
}

/// `v` as the unscaled integer of a `decimal(precision, scale)`, or None when it is not a plain
/// decimal number or does not fit exactly.
#[inline]
pub fn parse(v: &[u8], precision: u8, scale: u8) -> Option<i128> {
    let f = scan(v)?;
    let m = if f.scale > scale {
        // Extra fractional digits fit only when they are zeros.
        let k = POW10[(f.scale - scale) as usize];
        if f.m % k != 0 {
            return None;
        }
        f.m / k
    } else {
        let up = (scale - f.scale) as usize;
        if f.m == 0 {
            0
        } else if up > precision as usize || f.m >= POW10[precision as usize - up] {
            return None;
        } else {
            f.m * POW10[up]
        }
    };
    if m >= POW10[precision as usize] {
        return None;
    }
    Some(if f.neg { -(m as i128) } else { m as i128 })
}

/// The type one value suggests: `decimal(significant digits, scale)` for a fixed-point number
/// with digits on both sides of the point that a Decimal128 holds; None otherwise.
pub fn classify(v: &[u8]) -> Option<ColType> {
    let f = scan(v)?;
    if !f.point_between_digits {
        return None;
    }
    ColType::decimal(f.int_digits + f.scale, f.scale)
}

/// The narrowest standard precision (18: a Parquet INT64; 38) holding `digits`, or None past 38.
fn standard(digits: u8) -> Option<u8> {
    match digits {
        0..=18 => Some(INT64_PRECISION),
        19..=38 => Some(MAX_PRECISION),
        _ => None,
    }
}

/// The type that holds every value of two decimal types exactly: the larger scale and the larger
/// integer part, at a standard precision; float64 past 38 digits.
pub fn join(a: (u8, u8), b: (u8, u8)) -> ColType {
    let scale = a.1.max(b.1);
    let int_digits = (a.0 - a.1).max(b.0 - b.1);
    match standard(int_digits + scale) {
        Some(p) => ColType::Decimal(p, scale),
        None => ColType::Float64,
    }
}

/// Integers join a decimal column: the decimal's scale at a standard precision. Every value is
/// still checked when the column is converted; an integer too large for it widens the column again.
pub fn join_int(d: (u8, u8)) -> ColType {
    match standard(d.0) {
        Some(p) => ColType::Decimal(p, d.1),
        None => ColType::Float64,
    }
}

/// The type of a decimal column widened for a value `v` that did not fit it: its exact shape joined
/// in (an integer or decimal with more digits, a larger scale), or what `v` is otherwise.
pub fn widened(d: (u8, u8), v: &[u8]) -> Option<ColType> {
    let f = scan(v)?;
    let digits = f.int_digits as u32 + f.scale as u32;
    if digits > MAX_PRECISION as u32 {
        return Some(ColType::Float64);
    }
    Some(join(d, (digits as u8, f.scale)))
}

/// What the values of a column sampled so far make of it, with the decimal rules above.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sampled {
    ty: ColType,
    /// Most significant digits of an integer seen (they must fit the integer part of a decimal).
    int_digits: u8,
}

impl Sampled {
    /// Add one value's type (`classify`d; `v` is the value, for the digits of an integer).
    #[inline]
    pub fn add(&mut self, t: ColType, v: &[u8]) {
        use ColType::*;
        if t == Int64 {
            if let Some(f) = scan(v) {
                self.int_digits = self.int_digits.max(f.int_digits);
            }
        }
        self.ty = match (self.ty, t) {
            (Decimal(p1, s1), Decimal(p2, s2)) if s1 == s2 => Decimal(p1.max(p2), s1),
            // A different number of fractional digits: the column is not fixed-point.
            (Decimal(..), Decimal(..)) => Float64,
            (Int64, d @ Decimal(..)) | (d @ Decimal(..), Int64) => d,
            (a, b) => a.join(b),
        };
    }

    pub fn is_string(&self) -> bool {
        self.ty == ColType::String
    }

    /// The column's type: a decimal gets its precision with headroom for values after the sample.
    pub fn finish(&self) -> ColType {
        match self.ty {
            ColType::Decimal(p, s) => {
                let digits = (p - s).max(self.int_digits) as u32 + s as u32;
                if digits + HEADROOM as u32 <= INT64_PRECISION as u32 {
                    ColType::Decimal(INT64_PRECISION, s)
                } else if digits <= MAX_PRECISION as u32 {
                    ColType::Decimal(MAX_PRECISION, s)
                } else {
                    ColType::Float64
                }
            }
            t => t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv::types::classify as classify_value;
    use ColType::*;

    fn infer(values: &[&str]) -> ColType {
        let mut s = Sampled::default();
        for v in values {
            s.add(classify_value(v.as_bytes(), true), v.as_bytes());
        }
        s.finish()
    }

    #[test]
    fn parse_reads_exact_scaled_integers() {
        let cases: &[(&str, u8, u8, Option<i128>)] = &[
            ("19.99", 18, 2, Some(1999)),
            ("-0.50", 18, 2, Some(-50)),
            ("+1.00", 18, 2, Some(100)),
            ("-0.00", 18, 2, Some(0)),
            ("20", 18, 2, Some(2000)),
            ("19.9", 18, 2, Some(1990)),
            ("007.50", 18, 2, Some(750)),
            ("19.990", 18, 2, Some(1999)),
            ("19.991", 18, 2, None),
            (".5", 18, 2, Some(50)),
            ("-.5", 18, 2, Some(-50)),
            ("1.", 18, 2, Some(100)),
            ("9999999999999999.99", 18, 2, Some(999999999999999999)),
            ("10000000000000000.00", 18, 2, None),
            ("99999999.99", 10, 2, Some(9999999999)),
            ("100000000", 10, 2, None),
            ("0", 1, 0, Some(0)),
            ("0.000", 2, 2, Some(0)),
            ("1e5", 18, 2, None),
            ("1,5", 18, 2, None),
            ("", 18, 2, None),
            (".", 18, 2, None),
            ("-", 18, 2, None),
            ("1.2.3", 18, 2, None),
            (" 1.5", 18, 2, None),
            ("nan", 18, 2, None),
            ("--1", 18, 2, None),
        ];
        for &(v, p, s, want) in cases {
            assert_eq!(parse(v.as_bytes(), p, s), want, "{v} as decimal({p},{s})");
        }
        // 38 digits: the largest and smallest values of a decimal(38, 2).
        let max = "999999999999999999999999999999999999.99";
        assert_eq!(parse(max.as_bytes(), 38, 2), Some(10i128.pow(38) - 1));
        assert_eq!(
            parse(format!("-{max}").as_bytes(), 38, 2),
            Some(1 - 10i128.pow(38))
        );
        // 39 significant digits fit nothing; leading zeros do not count.
        assert_eq!(parse(format!("9{max}").as_bytes(), 38, 2), None);
        assert_eq!(
            parse(format!("0000{max}").as_bytes(), 38, 2),
            Some(10i128.pow(38) - 1)
        );
        assert_eq!(
            parse(b"0.00000000000000000000000000000000000001", 38, 38),
            Some(1)
        );
    }

    #[test]
    fn classify_wants_digits_on_both_sides_of_the_point() {
        assert_eq!(classify(b"19.99"), Some(Decimal(4, 2)));
        assert_eq!(classify(b"-0.50"), Some(Decimal(2, 2)));
        assert_eq!(classify(b"+1.00"), Some(Decimal(3, 2)));
        assert_eq!(classify(b"000123.4"), Some(Decimal(4, 1)));
        assert_eq!(classify(b".5"), None);
        assert_eq!(classify(b"1."), None);
        assert_eq!(classify(b"15"), None);
        assert_eq!(classify(b"1.5e3"), None);
        // 38 digits are a decimal, 39 are not.
        let d38 = format!("{}.{}", "9".repeat(36), "99");
        assert_eq!(classify(d38.as_bytes()), Some(Decimal(38, 2)));
        assert_eq!(classify(format!("1{d38}").as_bytes()), None);
        assert_eq!(classify_value(format!("1{d38}").as_bytes(), true), Float64);
    }

    #[test]
    fn inference_rules() {
        // A fixed scale: a decimal with headroom.
        assert_eq!(infer(&["19.99", "-3.10", "0.00"]), Decimal(18, 2));
        // Integers mixed in fit the scale (20 is 20.00); their digits count.
        assert_eq!(infer(&["20", "19.99", "5"]), Decimal(18, 2));
        assert_eq!(infer(&["19.99", "12345678901234567"]), Decimal(38, 2));
        // Varying fractional digits or an exponent: float64, as before.
        assert_eq!(infer(&["19.99", "1.5"]), Float64);
        assert_eq!(
            infer(&["0.5871771441091886", "-0.12258700862606953"]),
            Float64
        );
        assert_eq!(infer(&["19.99", "2e3"]), Float64);
        assert_eq!(infer(&["2e3", "19.99"]), Float64);
        assert_eq!(infer(&["19.99", "1.5", "2.25"]), Float64);
        // Only a point without digits on one side: float64.
        assert_eq!(infer(&["19.99", ".50"]), Float64);
        assert_eq!(infer(&["1.", "2."]), Float64);
        // Integers alone stay int64; other values make it a string.
        assert_eq!(infer(&["1", "2"]), Int64);
        assert_eq!(infer(&["19.99", "n/a"]), String);
        // Headroom: 16 digits fit 18, 17 need 38; 38 digits are still a decimal.
        assert_eq!(infer(&["99999999999999.99"]), Decimal(18, 2));
        assert_eq!(infer(&["999999999999999.99"]), Decimal(38, 2));
        let d38 = format!("{}.{}", "9".repeat(36), "99");
        assert_eq!(infer(&[&d38]), Decimal(38, 2));
        // Decimal inference off: float64 as before.
        let mut s = Sampled::default();
        s.add(classify_value(b"19.99", false), b"19.99");
        assert_eq!(s.finish(), Float64);
    }

    #[test]
    fn joins_hold_both_types_exactly() {
        assert_eq!(Decimal(18, 2).join(Decimal(18, 2)), Decimal(18, 2));
        assert_eq!(Decimal(10, 2).join(Decimal(12, 3)), Decimal(18, 3));
        // 16 integer digits and 3 fractional: 19 digits.
        assert_eq!(Decimal(18, 2).join(Decimal(18, 3)), Decimal(38, 3));
        assert_eq!(Decimal(38, 2).join(Decimal(38, 3)), Float64);
        assert_eq!(Decimal(18, 2).join(Int64), Decimal(18, 2));
        assert_eq!(Int64.join(Decimal(4, 2)), Decimal(18, 2));
        assert_eq!(Decimal(18, 2).join(Float64), Float64);
        assert_eq!(Float64.join(Decimal(38, 2)), Float64);
        assert_eq!(Decimal(18, 2).join(Date), String);
        assert_eq!(Null.join(Decimal(18, 2)), Decimal(18, 2));
    }

    #[test]
    fn widening_a_decimal_for_a_value_after_the_sample() {
        let w = |v: &str| crate::csv::types::widened(Decimal(18, 2), v.as_bytes(), true);
        assert_eq!(w("1.234"), Decimal(38, 3));
        assert_eq!(w("12345678901234567"), Decimal(38, 2));
        assert_eq!(w("12345678901234567890.5"), Decimal(38, 2));
        assert_eq!(w(&"9".repeat(39)), Float64);
        assert_eq!(w("1e3"), Float64);
        assert_eq!(w("n/a"), String);
        let w38 = |v: &str| crate::csv::types::widened(Decimal(38, 2), v.as_bytes(), true);
        assert_eq!(w38("1.234"), Float64);
        // An int64 column meeting a decimal: a decimal when inferring them, float64 when not.
        assert_eq!(
            crate::csv::types::widened(Int64, b"2.50", true),
            Decimal(18, 2)
        );
        assert_eq!(crate::csv::types::widened(Int64, b"2.50", false), Float64);
    }
}
