//! PostgreSQL `numeric` in binary send format, built from decimal text,
//! integers or floats without going through `f64` (so no precision is lost),
//! with PostgreSQL's typmod rules: round half away from zero to the column's
//! scale, then reject values whose integer digits exceed precision - scale.
//!
//! Wire format (numeric_send): i16 ndigits, i16 weight, u16 sign, u16 dscale,
//! then ndigits base-10000 digits, most significant first, no leading or
//! trailing zero groups; value = sum(digit[i] * 10000^(weight - i)).
//!
//! `write_numeric` takes a source value there and words the rejects for values that do not
//! fit the column.
use bytes::{BufMut, BytesMut};
use std::io::Write as _;

use super::reject::{type_name, wrong_type};
use super::{Reject, Work, describe};
use crate::pg::PgType;
use crate::value::Value;

const SIGN_POS: u16 = 0x0000;
const SIGN_NEG: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
const SIGN_PINF: u16 = 0xD000;
const SIGN_NINF: u16 = 0xF000;
/// PostgreSQL: at most 131072 digits before the decimal point.
const MAX_INT_DIGITS: i64 = 131_072;
/// PostgreSQL: at most 16383 digits after the decimal point (NUMERIC_DSCALE_MAX).
const MAX_DSCALE: i64 = 16_383;
/// Exponents are clamped to this so arithmetic on them cannot overflow.
const EXP_CLAMP: i64 = 1_000_000_000;

/// A parsed decimal. The significant digits (0..=9 each, first one non-zero,
/// last one non-zero, empty for zero) live in a caller-owned buffer so that
/// parsing allocates nothing once the buffer has grown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decimal {
    NaN,
    Inf {
        neg: bool,
    },
    /// value = 0.d1d2d3... * 10^pt; `dscale` = digits after the point as written.
    Finite {
        neg: bool,
        pt: i64,
        dscale: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumericError {
    /// Too many integer digits for numeric(p, s).
    Overflow,
    /// Infinity into a numeric with a precision or scale.
    Infinite,
    /// Beyond what any PostgreSQL numeric can hold.
    OutOfRange,
}

/// Parse decimal text as PostgreSQL's numeric_in does: surrounding spaces,
/// optional sign, digits with an optional point, optional exponent, or
/// NaN / Infinity / inf spellings (case-insensitive). None if not a number.
fn parse(text: &[u8], digits: &mut Vec<u8>) -> Option<Decimal> {
    let s = text.trim_ascii();
    digits.clear();
    if s.eq_ignore_ascii_case(b"nan") {
        return Some(Decimal::NaN);
    }
    for w in [&b"infinity"[..], b"+infinity", b"inf", b"+inf"] {
        if s.eq_ignore_ascii_case(w) {
            return Some(Decimal::Inf { neg: false });
        }
    }
    for w in [&b"-infinity"[..], b"-inf"] {
        if s.eq_ignore_ascii_case(w) {
            return Some(Decimal::Inf { neg: true });
        }
    }
    let (neg, rest) = match s.first() {
        Some(b'-') => (true, s.get(1..).unwrap_or_default()),
        Some(b'+') => (false, s.get(1..).unwrap_or_default()),
        _ => (false, s),
    };
    let mut int_count: i64 = 0;
    let mut frac_count: i64 = 0;
    let mut seen_point = false;
    let mut i = 0;
    while let Some(&c) = rest.get(i) {
        match c {
            b'0'..=b'9' => {
                digits.push(c - b'0');
                if seen_point {
                    frac_count += 1;
                } else {
                    int_count += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if digits.is_empty() {
        return None;
    }
    let mut exp: i64 = 0;
    if let Some(b'e' | b'E') = rest.get(i) {
        i += 1;
        let eneg = match rest.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let mut any = false;
        while let Some(&c) = rest.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            any = true;
            exp = (exp * 10 + i64::from(c - b'0')).min(EXP_CLAMP);
            i += 1;
        }
        if !any {
            return None;
        }
        if eneg {
            exp = -exp;
        }
    }
    if i != rest.len() {
        return None;
    }
    let dscale = frac_count.saturating_sub(exp).max(0);
    match digits.iter().position(|&d| d != 0) {
        None => {
            digits.clear();
            Some(Decimal::Finite {
                neg: false,
                pt: 0,
                dscale,
            })
        }
        Some(lead) => {
            digits.drain(..lead);
            while digits.last() == Some(&0) {
                digits.pop();
            }
            let lead = i64::try_from(lead).unwrap_or(i64::MAX);
            Some(Decimal::Finite {
                neg,
                pt: int_count.saturating_add(exp).saturating_sub(lead),
                dscale,
            })
        }
    }
}

/// An integer, exactly.
fn from_i64(n: i64, digits: &mut Vec<u8>) -> Decimal {
    digits.clear();
    let mut u = n.unsigned_abs();
    while u > 0 {
        digits.push((u % 10) as u8);
        u /= 10;
    }
    digits.reverse();
    let pt = digits.len() as i64;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    Decimal::Finite {
        neg: n < 0 && pt > 0,
        pt,
        dscale: 0,
    }
}

/// A float via its shortest round-trip decimal form (what Rust's `Display`
/// prints), so 0.1 becomes exactly 0.1. NaN and infinities map to numeric's.
fn from_f64(f: f64, buf: &mut Vec<u8>, digits: &mut Vec<u8>) -> Decimal {
    if f.is_nan() {
        digits.clear();
        return Decimal::NaN;
    }
    if f.is_infinite() {
        digits.clear();
        return Decimal::Inf { neg: f < 0.0 };
    }
    buf.clear();
    // Writing into a Vec cannot fail.
    let _ = write!(buf, "{f}");
    parse(buf, digits).unwrap_or_else(|| {
        digits.clear();
        Decimal::NaN
    })
}

/// Apply numeric(precision, scale) and write the value in binary send format
/// (without the field length). `scale` None with `precision` Some means scale 0,
/// as in PostgreSQL; both None is unconstrained numeric.
fn encode(
    d: Decimal,
    digits: &mut Vec<u8>,
    precision: Option<u32>,
    scale: Option<u32>,
    out: &mut BytesMut,
) -> Result<(), NumericError> {
    let constrained = precision.is_some() || scale.is_some();
    let (neg, mut pt, dscale) = match d {
        Decimal::NaN => {
            put_header(out, 0, 0, SIGN_NAN, 0);
            return Ok(());
        }
        Decimal::Inf { neg } => {
            if constrained {
                return Err(NumericError::Infinite);
            }
            put_header(out, 0, 0, if neg { SIGN_NINF } else { SIGN_PINF }, 0);
            return Ok(());
        }
        Decimal::Finite { neg, pt, dscale } => (neg, pt, dscale),
    };
    let target_scale = scale.map(i64::from).or(precision.map(|_| 0));
    let dscale = match target_scale {
        Some(s) => {
            round(digits, &mut pt, s);
            s
        }
        None => dscale,
    };
    if dscale > MAX_DSCALE {
        return Err(NumericError::OutOfRange);
    }
    if digits.is_empty() {
        put_header(out, 0, 0, SIGN_POS, dscale as u16);
        return Ok(());
    }
    if let Some(p) = precision {
        let max_int_digits = i64::from(p) - target_scale.unwrap_or(0);
        if pt > max_int_digits {
            return Err(NumericError::Overflow);
        }
    }
    if pt > MAX_INT_DIGITS {
        return Err(NumericError::OutOfRange);
    }
    let len = digits.len() as i64;
    let weight = (pt - 1).div_euclid(4);
    let last_group = (pt - len).div_euclid(4);
    let ndigits = weight - last_group + 1;
    let (Ok(ndigits16), Ok(weight16)) = (i16::try_from(ndigits), i16::try_from(weight)) else {
        return Err(NumericError::OutOfRange);
    };
    put_header(
        out,
        ndigits16,
        weight16,
        if neg { SIGN_NEG } else { SIGN_POS },
        dscale as u16,
    );
    const POW10: [u16; 4] = [1, 10, 100, 1000];
    let mut cur: u16 = 0;
    let mut group: i64 = 0;
    for (i, &dig) in digits.iter().enumerate() {
        let e = pt - 1 - i as i64;
        let gi = weight - e.div_euclid(4);
        while group < gi {
            out.put_u16(cur);
            cur = 0;
            group += 1;
        }
        cur += u16::from(dig) * POW10[e.rem_euclid(4) as usize];
    }
    out.put_u16(cur);
    Ok(())
}

fn put_header(out: &mut BytesMut, ndigits: i16, weight: i16, sign: u16, dscale: u16) {
    out.put_i16(ndigits);
    out.put_i16(weight);
    out.put_u16(sign);
    out.put_u16(dscale);
}

/// Round to `scale` digits after the point, half away from zero (PostgreSQL's
/// round_var). Leaves `digits` normalised (no leading/trailing zeros).
fn round(digits: &mut Vec<u8>, pt: &mut i64, scale: i64) {
    let keep = pt.saturating_add(scale);
    if keep < 0 {
        digits.clear();
        return;
    }
    let Ok(keep) = usize::try_from(keep) else {
        return;
    };
    let Some(&next) = digits.get(keep) else {
        return;
    };
    digits.truncate(keep);
    if next >= 5 {
        let mut carry = true;
        for d in digits.iter_mut().rev() {
            if *d == 9 {
                *d = 0;
            } else {
                *d += 1;
                carry = false;
                break;
            }
        }
        if carry {
            digits.insert(0, 1);
            *pt += 1;
        }
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
}

/// A numeric column: integers and floats exactly, decimal text and JSON numbers as written.
pub(crate) fn write_numeric(
    v: Value<'_>,
    ty: &PgType,
    precision: Option<u32>,
    scale: Option<u32>,
    work: &mut Work,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    let not_a_number = || Reject::new(format!("{} is not a number", describe(v)));
    let d = match v {
        Value::Int(n) => from_i64(n, &mut work.digits),
        Value::Float(f) => from_f64(f, &mut work.buf, &mut work.digits),
        Value::Text(t) => parse(t, &mut work.digits).ok_or_else(not_a_number)?,
        Value::Json(serde_json::Value::Number(n)) => {
            work.buf.clear();
            let _ = write!(work.buf, "{n}");
            parse(&work.buf, &mut work.digits).ok_or_else(not_a_number)?
        }
        Value::Bool(_) => {
            return Err(Reject::new(format!(
                "boolean {} in a numeric column: map it with `map` (e.g. true = \"1\")",
                describe(v)
            )));
        }
        _ => return Err(wrong_type(v, ty)),
    };
    encode(d, &mut work.digits, precision, scale, out).map_err(|e| match e {
        NumericError::Overflow => Reject::new(format!(
            "numeric field overflow: {} does not fit {}",
            describe(v),
            type_name(ty)
        )),
        NumericError::Infinite => Reject::new(format!(
            "numeric field overflow: {} is infinite and does not fit {}",
            describe(v),
            type_name(ty)
        )),
        NumericError::OutOfRange => Reject::new(format!(
            "{} is out of range for PostgreSQL numeric (at most 131072 digits before and 16383 after the point)",
            describe(v)
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{err, num, ok, t};

    fn enc_text(s: &str, p: Option<u32>, sc: Option<u32>) -> Result<Vec<u8>, NumericError> {
        let mut digits = Vec::new();
        let d = parse(s.as_bytes(), &mut digits).expect("parses");
        let mut out = BytesMut::new();
        encode(d, &mut digits, p, sc, &mut out)?;
        Ok(out.to_vec())
    }

    /// Build expected bytes from header fields and base-10000 digits.
    fn wire(weight: i16, sign: u16, dscale: u16, groups: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(groups.len() as i16).to_be_bytes());
        v.extend_from_slice(&weight.to_be_bytes());
        v.extend_from_slice(&sign.to_be_bytes());
        v.extend_from_slice(&dscale.to_be_bytes());
        for g in groups {
            v.extend_from_slice(&g.to_be_bytes());
        }
        v
    }

    #[test]
    fn known_encodings() {
        let cases: &[(&str, Vec<u8>)] = &[
            ("0", wire(0, 0, 0, &[])),
            ("1", wire(0, 0, 0, &[1])),
            ("-1", wire(0, SIGN_NEG, 0, &[1])),
            ("10000", wire(1, 0, 0, &[1])),
            ("0.0001", wire(-1, 0, 4, &[1])),
            ("123.45", wire(0, 0, 2, &[123, 4500])),
            ("1e20", wire(5, 0, 0, &[1])),
            ("-0", wire(0, 0, 0, &[])),
            ("0.000", wire(0, 0, 3, &[])),
            ("12345678.9", wire(1, 0, 1, &[1234, 5678, 9000])),
            ("100000000", wire(2, 0, 0, &[1])),
            ("1.50", wire(0, 0, 2, &[1, 5000])),
            ("1.5e3", wire(0, 0, 0, &[1500])),
            ("  +.5  ", wire(-1, 0, 1, &[5000])),
            ("5.", wire(0, 0, 0, &[5])),
            ("0.00001", wire(-2, 0, 5, &[1000])),
            ("10000.0001", wire(1, 0, 4, &[1, 0, 1])),
            ("1E-3", wire(-1, 0, 3, &[10])),
            ("NaN", wire(0, SIGN_NAN, 0, &[])),
            ("infinity", wire(0, SIGN_PINF, 0, &[])),
            ("-Inf", wire(0, SIGN_NINF, 0, &[])),
        ];
        for (s, want) in cases {
            assert_eq!(&enc_text(s, None, None).unwrap(), want, "{s}");
        }
    }

    #[test]
    fn rounding_and_overflow() {
        // 0.5 with scale 0 -> 1 (half away from zero)
        assert_eq!(
            enc_text("0.5", Some(10), Some(0)).unwrap(),
            wire(0, 0, 0, &[1])
        );
        assert_eq!(
            enc_text("-0.5", Some(10), Some(0)).unwrap(),
            wire(0, SIGN_NEG, 0, &[1])
        );
        assert_eq!(
            enc_text("0.4", Some(10), Some(0)).unwrap(),
            wire(0, 0, 0, &[])
        );
        assert_eq!(
            enc_text("2.345", Some(5), Some(2)).unwrap(),
            wire(0, 0, 2, &[2, 3500])
        );
        assert_eq!(
            enc_text("9.999", Some(5), Some(2)).unwrap(),
            wire(0, 0, 2, &[10])
        );
        assert_eq!(
            enc_text("999.9", Some(4), Some(1)).unwrap(),
            wire(0, 0, 1, &[999, 9000])
        );
        assert_eq!(
            enc_text("999.95", Some(4), Some(1)),
            Err(NumericError::Overflow)
        );
        assert_eq!(
            enc_text("12345.6", Some(4), Some(1)),
            Err(NumericError::Overflow)
        );
        assert_eq!(
            enc_text("0.00001", Some(4), Some(1)).unwrap(),
            wire(0, 0, 1, &[])
        );
        // numeric(3,5): values below 0.001 in magnitude only
        assert_eq!(
            enc_text("0.00099", Some(3), Some(5)).unwrap(),
            wire(-1, 0, 5, &[9, 9000])
        );
        assert_eq!(
            enc_text("0.001", Some(3), Some(5)).unwrap(),
            wire(-1, 0, 5, &[10])
        );
        assert_eq!(
            enc_text("0.01", Some(3), Some(5)),
            Err(NumericError::Overflow)
        );
        // numeric(p) means scale 0
        assert_eq!(
            enc_text("12.5", Some(3), None).unwrap(),
            wire(0, 0, 0, &[13])
        );
        assert_eq!(
            enc_text("NaN", Some(3), Some(1)).unwrap(),
            wire(0, SIGN_NAN, 0, &[])
        );
        assert_eq!(
            enc_text("inf", Some(3), Some(1)),
            Err(NumericError::Infinite)
        );
        assert_eq!(
            enc_text("1e200000", None, None),
            Err(NumericError::OutOfRange)
        );
        assert_eq!(
            enc_text("1e-20000", None, None),
            Err(NumericError::OutOfRange)
        );
        assert_eq!(
            enc_text("1e99999999999999999999", None, None),
            Err(NumericError::OutOfRange)
        );
        assert_eq!(
            enc_text("1e-99999999999999999999", Some(5), Some(2)).unwrap(),
            wire(0, 0, 2, &[])
        );
        assert!(enc_text("1e131071", None, None).is_ok());
    }

    #[test]
    fn from_int_and_float() {
        let mut digits = Vec::new();
        let mut buf = Vec::new();
        let run = |d: Decimal, digits: &mut Vec<u8>| {
            let mut out = BytesMut::new();
            encode(d, digits, None, None, &mut out).unwrap();
            out.to_vec()
        };
        let d = from_i64(0, &mut digits);
        assert_eq!(run(d, &mut digits), wire(0, 0, 0, &[]));
        let d = from_i64(i64::MIN, &mut digits);
        assert_eq!(
            run(d, &mut digits),
            wire(4, SIGN_NEG, 0, &[922, 3372, 368, 5477, 5808])
        );
        let d = from_i64(i64::MAX, &mut digits);
        assert_eq!(
            run(d, &mut digits),
            wire(4, 0, 0, &[922, 3372, 368, 5477, 5807])
        );
        let d = from_i64(120000, &mut digits);
        assert_eq!(run(d, &mut digits), wire(1, 0, 0, &[12]));
        let d = from_f64(0.1, &mut buf, &mut digits);
        assert_eq!(run(d, &mut digits), wire(-1, 0, 1, &[1000]));
        let d = from_f64(1e20, &mut buf, &mut digits);
        assert_eq!(run(d, &mut digits), wire(5, 0, 0, &[1]));
        let d = from_f64(-2.5, &mut buf, &mut digits);
        assert_eq!(run(d, &mut digits), wire(0, SIGN_NEG, 1, &[2, 5000]));
        let d = from_f64(f64::NAN, &mut buf, &mut digits);
        assert_eq!(run(d, &mut digits), wire(0, SIGN_NAN, 0, &[]));
        let d = from_f64(f64::MAX, &mut buf, &mut digits);
        assert!(matches!(d, Decimal::Finite { pt: 309, .. }));
        let d = from_f64(f64::MIN_POSITIVE / 4.0, &mut buf, &mut digits);
        assert!(matches!(d, Decimal::Finite { .. }));
    }

    #[test]
    fn rejects_garbage() {
        let mut digits = Vec::new();
        for s in [
            "", " ", ".", "-", "+", "1e", "1e+", "1.2.3", "12abc", "--1", "1 2", "0x10", "e5",
            "nana",
        ] {
            assert_eq!(parse(s.as_bytes(), &mut digits), None, "{s:?}");
        }
    }

    #[test]
    fn huge_digit_strings() {
        let mut s = "9".repeat(200_000);
        assert_eq!(enc_text(&s, None, None), Err(NumericError::OutOfRange));
        assert_eq!(enc_text(&s, Some(10), Some(2)), Err(NumericError::Overflow));
        s.insert(0, '.');
        // 0.999... rounded to 2 places -> 1.00
        assert_eq!(
            enc_text(&s, Some(10), Some(2)).unwrap(),
            wire(0, 0, 2, &[1])
        );
        let z = format!("{}1", "0".repeat(1_000_000));
        assert_eq!(enc_text(&z, None, None).unwrap(), wire(0, 0, 0, &[1]));
    }

    #[test]
    fn numerics_through_converter() {
        // 123.45 = ndigits 2, weight 0, sign 0, dscale 2, [123, 4500]
        assert_eq!(
            ok(t("123.45"), num(None, None)),
            [0, 2, 0, 0, 0, 0, 0, 2, 0, 123, 0x11, 0x94]
        );
        assert_eq!(
            ok(Value::Int(-1), num(None, None)),
            [0, 1, 0, 0, 0x40, 0, 0, 0, 0, 1]
        );
        assert_eq!(
            ok(Value::Float(0.5), num(Some(5), Some(0))),
            [0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(
            ok(Value::Float(f64::NAN), num(None, None)),
            [0, 0, 0, 0, 0xC0, 0, 0, 0]
        );
        assert_eq!(
            err(t("12345.6"), num(Some(4), Some(1))),
            "numeric field overflow: '12345.6' does not fit numeric(4,1)"
        );
        assert!(err(Value::Int(i64::MAX), num(Some(18), Some(0))).contains("overflow"));
        assert!(err(t("1,5"), num(None, None)).contains("is not a number"));
        assert!(err(Value::Bool(true), num(None, None)).contains("map"));
        assert!(err(t("inf"), num(Some(5), None)).contains("infinite"));
        assert!(err(t("1e999999"), num(None, None)).contains("out of range"));
        let big = serde_json::json!(u64::MAX);
        assert_eq!(
            ok(Value::Json(&big), num(None, None)),
            [
                0, 5, 0, 4, 0, 0, 0, 0, 0x07, 0x34, 0x1a, 0x58, 0x02, 0xe1, 0x03, 0xbb, 0x06, 0x4f
            ]
        );
    }
}
