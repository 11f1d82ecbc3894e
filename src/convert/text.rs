//! Text-like columns: text, varchar(n)/char(n) and enum labels. Text must be valid UTF-8
//! without NUL; numbers and booleans go in as their text form (`text_form`, which the value
//! map and messages use too), JSON values as their serialisation.
use std::io::Write as _;

use bytes::BytesMut;

use super::{Adjusted, Reject, Work, describe};
use crate::value::Value;

/// Text form of a scalar: integers in decimal, floats shortest round-trip
/// (PostgreSQL spellings for NaN/Infinity), booleans true/false.
pub(crate) fn text_form(v: Value<'_>, buf: &mut Vec<u8>) {
    match v {
        Value::Int(n) => {
            let _ = write!(buf, "{n}");
        }
        Value::Float(f) => float_text(f, buf),
        Value::Bool(b) => buf.extend_from_slice(if b { b"true" } else { b"false" }),
        _ => {}
    }
}

pub(crate) fn float_text(f: f64, buf: &mut Vec<u8>) {
    if f.is_nan() {
        buf.extend_from_slice(b"NaN");
    } else if f.is_infinite() {
        buf.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else if f == 0.0 || (1e-4..1e16).contains(&f.abs()) {
        let _ = write!(buf, "{f}");
    } else {
        let _ = write!(buf, "{f:e}");
    }
}

/// Check `t` is storable PostgreSQL text (valid UTF-8, no NUL).
fn check_text(t: &[u8]) -> Result<&str, Reject> {
    let s = std::str::from_utf8(t).map_err(|e| {
        Reject::new(format!(
            "invalid UTF-8 at byte {}: fix the source's encoding, or load it into a bytea column",
            e.valid_up_to()
        ))
    })?;
    if let Some(p) = t.iter().position(|b| *b == 0) {
        return Err(Reject::new(format!(
            "contains a NUL character, which PostgreSQL text cannot hold (at byte {p}): strip it in the source"
        )));
    }
    Ok(s)
}

/// Write checked text, enforcing varchar(n)/char(n): like PostgreSQL, excess
/// characters that are all spaces are cut off silently; with `truncate`, any excess is cut
/// off at a character boundary (counted in `adjusted`), else the value is a reject.
fn put_text(
    t: &[u8],
    max_chars: Option<usize>,
    truncate: bool,
    adjusted: &mut Adjusted,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    let s = check_text(t)?;
    if let Some(max) = max_chars
        && s.len() > max
    {
        // The byte offset of the first character past `max`, if there is one.
        if let Some((cut, _)) = s.char_indices().nth(max) {
            let (head, tail) = s.split_at(cut);
            if !tail.bytes().all(|b| b == b' ') {
                if !truncate {
                    let count = s.chars().count();
                    return Err(Reject::new(format!(
                        "{count} characters, column holds at most {max}: shorten the value, widen the column, or set truncate = true in the mapping"
                    )));
                }
                adjusted.truncated = true;
            }
            out.extend_from_slice(head.as_bytes());
            return Ok(());
        }
    }
    out.extend_from_slice(t);
    Ok(())
}

pub(crate) fn write_text(
    v: Value<'_>,
    max_chars: Option<usize>,
    truncate: bool,
    work: &mut Work,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    let a = &mut work.adjusted;
    match v {
        Value::Text(t) | Value::Blob(t) => put_text(t, max_chars, truncate, a, out),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
            work.buf.clear();
            text_form(v, &mut work.buf);
            put_text(&work.buf, max_chars, truncate, &mut work.adjusted, out)
        }
        Value::Json(serde_json::Value::String(s)) => {
            put_text(s.as_bytes(), max_chars, truncate, a, out)
        }
        Value::Json(j) => {
            work.buf.clear();
            work.adjusted.whole_object |= j.is_object()
                || j.as_array()
                    .is_some_and(|a| a.iter().any(serde_json::Value::is_object));
            serde_json::to_writer(&mut work.buf, j)
                .map_err(|e| Reject::new(format!("cannot serialise JSON value: {e}")))?;
            put_text(&work.buf, max_chars, truncate, &mut work.adjusted, out)
        }
        Value::Null => Err(Reject::new("NULL reached a text conversion")),
    }
}

/// An enum column: the value, after the mapping's rules, must be one of the type's labels.
pub(crate) fn write_enum(
    v: Value<'_>,
    labels: &[String],
    out: &mut BytesMut,
) -> Result<(), Reject> {
    match v {
        Value::Text(t) if labels.iter().any(|l| l.as_bytes() == t) => out.extend_from_slice(t),
        _ => {
            let mut list = labels
                .iter()
                .take(12)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if labels.len() > 12 {
                list.push_str(", …");
            }
            return Err(Reject::new(format!(
                "{} is not one of {list}: add it to `map`",
                describe(v)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{col, col_r, enc, err, ok, t, text};
    use crate::convert::{JsonMode, Rules, describe};
    use crate::pg::PgType;

    #[test]
    fn text_values() {
        assert_eq!(ok(t("héllo"), text()), "héllo".as_bytes());
        assert_eq!(ok(Value::Int(i64::MIN), text()), b"-9223372036854775808");
        assert_eq!(ok(Value::Float(0.1), text()), b"0.1");
        assert_eq!(ok(Value::Float(100.0), text()), b"100");
        assert_eq!(ok(Value::Float(1e20), text()), b"1e20");
        assert_eq!(ok(Value::Float(f64::NEG_INFINITY), text()), b"-Infinity");
        assert_eq!(ok(Value::Bool(false), text()), b"false");
        assert_eq!(ok(Value::Blob(b"abc"), text()), b"abc");
        let js = serde_json::json!("a\"b");
        assert_eq!(ok(Value::Json(&js), text()), b"a\"b");
        let jo = serde_json::json!({"a": [1, 2]});
        assert_eq!(ok(Value::Json(&jo), text()), br#"{"a":[1,2]}"#);
        assert_eq!(
            err(Value::Text(b"ab\xc3"), text()),
            "invalid UTF-8 at byte 2: fix the source's encoding, or load it into a bytea column"
        );
        assert!(err(Value::Blob(b"\xff"), text()).starts_with("invalid UTF-8 at byte 0"));
        assert!(
            err(Value::Text(b"a\0b"), text())
                .starts_with("contains a NUL character, which PostgreSQL text cannot hold")
        );
        let v5 = PgType::Text { max_chars: Some(5) };
        assert_eq!(ok(t("ééééé"), v5.clone()), "ééééé".as_bytes());
        assert_eq!(ok(t("abc     "), v5.clone()), b"abc  ");
        assert!(err(t("abcdef"), v5.clone()).starts_with("6 characters, column holds at most 5"));
        assert!(err(t("ééééé é"), v5.clone()).starts_with("7 characters"));
        assert!(err(Value::Int(123456), v5).starts_with("6 characters"));
    }

    #[test]
    fn truncate_cuts_whole_characters() {
        let cut = |s: &str, n: usize| {
            let c = col_r(
                PgType::Text { max_chars: Some(n) },
                Rules {
                    truncate: true,
                    ..Rules::default()
                },
            );
            let mut cv = crate::convert::Converter::new();
            let f = crate::convert::testing::enc_with(&mut cv, t(s), &c).unwrap();
            (
                String::from_utf8(f[4..].to_vec()).unwrap(),
                cv.adjusted().truncated,
            )
        };
        // 2-, 3- and 4-byte characters: never split.
        assert_eq!(cut("ééééé", 3), ("ééé".to_string(), true));
        assert_eq!(cut("a€b€c", 2), ("a€".to_string(), true));
        assert_eq!(cut("😀😀😀", 1), ("😀".to_string(), true));
        // Fits: untouched, not counted; trailing spaces are cut as PostgreSQL does, uncounted.
        assert_eq!(cut("abc", 3), ("abc".to_string(), false));
        assert_eq!(cut("é", 3), ("é".to_string(), false));
        assert_eq!(cut("ab   ", 2), ("ab".to_string(), false));
        // Without truncate, a reject that names the way out.
        let e = err(t("ééééé"), PgType::Text { max_chars: Some(3) });
        assert!(e.contains("set truncate = true"), "{e}");
    }

    #[test]
    fn ten_megabyte_text() {
        let big = "x".repeat(10 * 1024 * 1024);
        let f = enc(t(&big), &col(text())).unwrap();
        assert_eq!(f.len(), 4 + big.len());
        assert_eq!(&f[..4], &(big.len() as i32).to_be_bytes());
        let mut bad = big.clone().into_bytes();
        bad.push(0);
        assert!(err(Value::Text(&bad), text()).contains("NUL"));
        let d = describe(t(&big));
        assert!(d.chars().count() <= 84 && d.ends_with("…'"), "{d}");
        let r = err(t(&big), PgType::Int4);
        assert!(r.len() < 200, "reason stays short: {r}");
        assert!(
            err(
                t(&big),
                PgType::Text {
                    max_chars: Some(10)
                }
            )
            .starts_with("10485760 characters")
        );
        // jsonb as a JSON string
        let c = col_r(
            PgType::Jsonb,
            Rules {
                json: JsonMode::String,
                ..Rules::default()
            },
        );
        assert_eq!(enc(t(&big), &c).unwrap().len(), 4 + 1 + big.len() + 2);
    }
}
