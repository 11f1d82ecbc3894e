//! Booleans, integers (smallint, integer, bigint) and floats (real, double precision):
//! from source booleans, integers, floats and their text spellings, with range checks
//! that name the column type.
use super::reject::{type_name, wrong_type};
use super::{Reject, describe};
use crate::pg::PgType;
use crate::value::Value;

pub(crate) fn to_bool(v: Value<'_>) -> Result<bool, Reject> {
    match v {
        Value::Bool(b) => Ok(b),
        Value::Int(0) => Ok(false),
        Value::Int(1) => Ok(true),
        Value::Text(t) => {
            let s = t.trim_ascii();
            const TRUE: [&[u8]; 6] = [b"t", b"true", b"yes", b"y", b"1", b"on"];
            const FALSE: [&[u8]; 6] = [b"f", b"false", b"no", b"n", b"0", b"off"];
            if TRUE.iter().any(|w| s.eq_ignore_ascii_case(w)) {
                Ok(true)
            } else if FALSE.iter().any(|w| s.eq_ignore_ascii_case(w)) {
                Ok(false)
            } else {
                Err(Reject::new(format!(
                    "{} is not a boolean (expected true/false, t/f, yes/no, y/n, on/off or 1/0): map it with `map`",
                    describe(v)
                )))
            }
        }
        Value::Int(_) => Err(Reject::new(format!(
            "integer {} is not a boolean (expected 0 or 1): map it with `map`",
            describe(v)
        ))),
        _ => Err(wrong_type(v, &PgType::Bool)),
    }
}

enum IntError {
    Syntax,
    Fraction,
    Overflow,
}

/// Integer text: surrounding spaces, optional sign, digits, optionally a
/// point followed by zeros only ("12.0").
fn parse_int(t: &[u8]) -> Result<i64, IntError> {
    let s = t.trim_ascii();
    let (neg, rest) = match s.first() {
        Some(b'-') => (true, s.get(1..).unwrap_or_default()),
        Some(b'+') => (false, s.get(1..).unwrap_or_default()),
        _ => (false, s),
    };
    let (int_part, frac_part) = match rest.iter().position(|b| *b == b'.') {
        Some(p) => (
            rest.get(..p).unwrap_or_default(),
            rest.get(p + 1..).unwrap_or_default(),
        ),
        None => (rest, &b""[..]),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(IntError::Syntax);
    }
    if !int_part.iter().all(u8::is_ascii_digit) || !frac_part.iter().all(u8::is_ascii_digit) {
        return Err(IntError::Syntax);
    }
    if frac_part.iter().any(|b| *b != b'0') {
        return Err(IntError::Fraction);
    }
    // Accumulate negatively so i64::MIN parses.
    let mut acc: i64 = 0;
    for b in int_part {
        acc = acc
            .checked_mul(10)
            .and_then(|a| a.checked_sub(i64::from(b - b'0')))
            .ok_or(IntError::Overflow)?;
    }
    if neg {
        Ok(acc)
    } else {
        acc.checked_neg().ok_or(IntError::Overflow)
    }
}

pub(crate) fn to_int(v: Value<'_>, ty: &PgType, min: i64, max: i64) -> Result<i64, Reject> {
    let name = type_name(ty);
    let range = || {
        Reject::new(format!(
            "{} is out of range for {name} ({min} to {max})",
            describe(v)
        ))
    };
    let n = match v {
        Value::Int(n) => n,
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(Reject::new(format!(
                    "{} cannot go into an integer column",
                    describe(v)
                )));
            }
            if f.fract() != 0.0 {
                return Err(Reject::new(format!(
                    "fraction in integer column: {} is not a whole number",
                    describe(v)
                )));
            }
            if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
                return Err(range());
            }
            f as i64
        }
        Value::Text(t) => match parse_int(t) {
            Ok(n) => n,
            Err(IntError::Syntax) => {
                return Err(Reject::new(format!("{} is not an integer", describe(v))));
            }
            Err(IntError::Fraction) => {
                return Err(Reject::new(format!(
                    "fraction in integer column: {} is not a whole number",
                    describe(v)
                )));
            }
            Err(IntError::Overflow) => return Err(range()),
        },
        Value::Bool(_) => {
            return Err(Reject::new(format!(
                "boolean {} in an integer column: map it with `map` (e.g. true = \"1\")",
                describe(v)
            )));
        }
        Value::Json(j) if j.is_number() => return Err(range()),
        _ => return Err(wrong_type(v, ty)),
    };
    if n < min || n > max {
        return Err(range());
    }
    Ok(n)
}

fn float_syntax(v: Value<'_>) -> Reject {
    Reject::new(format!("{} is not a number", describe(v)))
}

fn float_range(v: Value<'_>, ty: &PgType) -> Reject {
    Reject::new(format!(
        "{} is out of range for {}",
        describe(v),
        type_name(ty)
    ))
}

/// Text spelling of an infinity (so an overflowing literal can be told apart).
fn says_infinity(s: &str) -> bool {
    s.bytes().any(|b| b == b'i' || b == b'I')
}

pub(crate) fn to_f64(v: Value<'_>, ty: &PgType) -> Result<f64, Reject> {
    match v {
        Value::Int(n) => Ok(n as f64),
        Value::Float(f) => Ok(f),
        Value::Text(t) => {
            let s = std::str::from_utf8(t.trim_ascii()).map_err(|_| float_syntax(v))?;
            let f: f64 = s.parse().map_err(|_| float_syntax(v))?;
            if f.is_infinite() && !says_infinity(s) {
                return Err(float_range(v, ty));
            }
            Ok(f)
        }
        Value::Json(j) => j.as_f64().ok_or_else(|| wrong_type(v, ty)),
        _ => Err(wrong_type(v, ty)),
    }
}

pub(crate) fn to_f32(v: Value<'_>, ty: &PgType) -> Result<f32, Reject> {
    match v {
        Value::Text(t) => {
            let s = std::str::from_utf8(t.trim_ascii()).map_err(|_| float_syntax(v))?;
            let f: f32 = s.parse().map_err(|_| float_syntax(v))?;
            if f.is_infinite() && !says_infinity(s) {
                return Err(float_range(v, ty));
            }
            Ok(f)
        }
        _ => {
            let f = to_f64(v, ty)?;
            let g = f as f32;
            if f.is_finite() && g.is_infinite() {
                return Err(float_range(v, ty));
            }
            Ok(g)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{err, ok, t};

    #[test]
    fn booleans() {
        for s in ["t", "TRUE", " yes ", "Y", "1", "on", "On"] {
            assert_eq!(ok(t(s), PgType::Bool), [1], "{s}");
        }
        for s in ["f", "False", "no", "n", "0", "OFF"] {
            assert_eq!(ok(t(s), PgType::Bool), [0], "{s}");
        }
        assert_eq!(ok(Value::Bool(true), PgType::Bool), [1]);
        assert_eq!(ok(Value::Int(0), PgType::Bool), [0]);
        assert!(err(Value::Int(2), PgType::Bool).contains("expected 0 or 1"));
        assert!(err(t("maybe"), PgType::Bool).contains("is not a boolean"));
        err(Value::Float(1.0), PgType::Bool);
        err(Value::Blob(b"\x01"), PgType::Bool);
    }

    #[test]
    fn integers() {
        assert_eq!(ok(Value::Int(-2), PgType::Int2), (-2i16).to_be_bytes());
        assert_eq!(ok(Value::Int(70000), PgType::Int4), 70000i32.to_be_bytes());
        assert_eq!(
            ok(Value::Int(i64::MIN), PgType::Int8),
            i64::MIN.to_be_bytes()
        );
        assert_eq!(
            ok(Value::Int(i64::MAX), PgType::Int8),
            i64::MAX.to_be_bytes()
        );
        assert_eq!(ok(t(" +12 "), PgType::Int4), 12i32.to_be_bytes());
        assert_eq!(ok(t("-12.000"), PgType::Int4), (-12i32).to_be_bytes());
        assert_eq!(ok(t("12."), PgType::Int4), 12i32.to_be_bytes());
        assert_eq!(ok(t("007"), PgType::Int2), 7i16.to_be_bytes());
        assert_eq!(
            ok(t("-9223372036854775808"), PgType::Int8),
            i64::MIN.to_be_bytes()
        );
        assert_eq!(
            ok(t("9223372036854775807"), PgType::Int8),
            i64::MAX.to_be_bytes()
        );
        assert_eq!(ok(Value::Float(3.0), PgType::Int2), 3i16.to_be_bytes());
        assert_eq!(ok(Value::Float(-0.0), PgType::Int4), 0i32.to_be_bytes());
        assert_eq!(err(t("12abc"), PgType::Int4), "'12abc' is not an integer");
        assert!(err(t("12.5"), PgType::Int4).starts_with("fraction in integer column"));
        assert!(err(Value::Float(12.5), PgType::Int8).starts_with("fraction in integer column"));
        assert_eq!(
            err(t("99999"), PgType::Int2),
            "'99999' is out of range for smallint (-32768 to 32767)"
        );
        assert!(err(Value::Int(i64::from(i32::MAX) + 1), PgType::Int4).contains("out of range"));
        assert!(err(Value::Int(i64::MIN), PgType::Int4).contains("out of range"));
        assert!(err(t("9223372036854775808"), PgType::Int8).contains("out of range"));
        assert!(err(t("-9223372036854775809"), PgType::Int8).contains("out of range"));
        assert!(err(t("99999999999999999999999999999"), PgType::Int8).contains("out of range"));
        assert!(err(Value::Float(9.3e18), PgType::Int8).contains("out of range"));
        assert!(err(Value::Float(f64::NAN), PgType::Int8).contains("NaN"));
        assert!(err(Value::Float(f64::INFINITY), PgType::Int8).contains("Infinity"));
        assert!(err(Value::Bool(true), PgType::Int4).contains("map"));
        for bad in ["", " ", "+", "-", ".", "1e3", "1 2", "--1", "0x1", "١"] {
            // '' and ' ' become NULL through the pipeline, so call the parser path directly
            assert!(to_int(t(bad), &PgType::Int4, 0, 10).is_err(), "{bad:?}");
        }
        let big = serde_json::json!(u64::MAX);
        assert!(err(Value::Json(&big), PgType::Int8).contains("out of range"));
        let j = serde_json::json!(5);
        assert_eq!(ok(Value::Json(&j), PgType::Int2), 5i16.to_be_bytes());
    }

    #[test]
    fn floats() {
        assert_eq!(ok(Value::Float(1.5), PgType::Float8), 1.5f64.to_be_bytes());
        assert_eq!(ok(Value::Int(3), PgType::Float4), 3f32.to_be_bytes());
        assert_eq!(ok(t(" 2.5e3 "), PgType::Float8), 2500f64.to_be_bytes());
        assert_eq!(ok(t("0.1"), PgType::Float4), 0.1f32.to_be_bytes());
        assert_eq!(
            ok(t("Infinity"), PgType::Float8),
            f64::INFINITY.to_be_bytes()
        );
        assert_eq!(
            ok(t("-inf"), PgType::Float4),
            f32::NEG_INFINITY.to_be_bytes()
        );
        let nan = ok(t("NaN"), PgType::Float8);
        assert!(f64::from_be_bytes(nan.try_into().unwrap()).is_nan());
        assert!(err(t("1e400"), PgType::Float8).contains("out of range"));
        assert!(err(t("1e39"), PgType::Float4).contains("out of range"));
        assert!(err(Value::Float(1e39), PgType::Float4).contains("out of range"));
        assert!(err(t("abc"), PgType::Float8).contains("is not a number"));
        assert!(err(Value::Text(b"1\xff"), PgType::Float8).contains("is not a number"));
        err(Value::Bool(false), PgType::Float8);
    }
}
