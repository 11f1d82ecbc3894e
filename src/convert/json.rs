//! json and jsonb columns: text is checked to be JSON (or, with `json = "string"`, made a
//! JSON string), scalars and JSON values are serialised. jsonb cannot hold the escape
//! \u0000 nor half of a UTF-16 surrogate pair (`\ud800` alone), so these are rejected
//! there; the jsonb version byte is written by `write_value` in `mod.rs`.
use std::io::Write as _;

use bytes::BytesMut;

use super::shape::{formula_reject, is_formula_error};
use super::{JsonMode, OnError, Reject, Rules, Work, describe};
use crate::value::Value;

/// A list whose formula-error elements are written as `null` (`on_error = "null"`).
struct WithoutErrors<'a>(&'a serde_json::Value);

impl serde::Serialize for WithoutErrors<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        match self.0 {
            serde_json::Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    if is_formula_error(item) {
                        seq.serialize_element(&serde_json::Value::Null)?;
                    } else {
                        seq.serialize_element(item)?;
                    }
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// An escape in JSON text that jsonb cannot hold.
#[derive(Debug, PartialEq)]
enum Unfit {
    /// `\u0000`.
    Nul,
    /// A UTF-16 surrogate not part of a pair, such as `\ud800` alone.
    LoneSurrogate(u16),
}

/// The four hex digits at `at`, as a UTF-16 code unit.
fn hex4(json: &[u8], at: usize) -> Option<u16> {
    let digits = std::str::from_utf8(json.get(at..at + 4)?).ok()?;
    u16::from_str_radix(digits, 16).ok()
}

/// The first escape in `json` (text already checked to be JSON, so a backslash is always
/// inside a string and starts an escape) that jsonb refuses: `\u0000`, or a surrogate that
/// is not a high one followed at once by a low one. PostgreSQL's json type takes both;
/// jsonb converts escapes to characters and cannot ("JSON Types",
/// <https://www.postgresql.org/docs/current/datatype-json.html>).
fn jsonb_unfit(json: &[u8]) -> Option<Unfit> {
    let mut i = 0;
    while let Some(p) = json.get(i..)?.iter().position(|b| *b == b'\\') {
        let at = i + p;
        if json.get(at + 1) != Some(&b'u') {
            i = at + 2;
            continue;
        }
        let Some(unit) = hex4(json, at + 2) else {
            i = at + 2;
            continue;
        };
        match unit {
            0 => return Some(Unfit::Nul),
            0xd800..=0xdbff => {
                let low = match json.get(at + 6..at + 8) {
                    Some(b"\\u") => hex4(json, at + 8),
                    _ => None,
                };
                match low {
                    Some(0xdc00..=0xdfff) => i = at + 12,
                    _ => return Some(Unfit::LoneSurrogate(unit)),
                }
            }
            0xdc00..=0xdfff => return Some(Unfit::LoneSurrogate(unit)),
            _ => i = at + 6,
        }
    }
    None
}

fn nul_in_jsonb() -> Reject {
    Reject::new(
        "contains a NUL character (\\u0000), which jsonb cannot hold: use a json column or strip it in the source",
    )
}

/// Refuse text jsonb cannot hold, saying why.
fn check_jsonb(json: &[u8]) -> Result<(), Reject> {
    match jsonb_unfit(json) {
        None => Ok(()),
        Some(Unfit::Nul) => Err(nul_in_jsonb()),
        Some(Unfit::LoneSurrogate(unit)) => Err(Reject::new(format!(
            "contains the escape \\u{unit:04x}, half of a UTF-16 surrogate pair without its other half, which jsonb cannot hold: fix the source, or use a json column"
        ))),
    }
}

pub(crate) fn write_json(
    v: Value<'_>,
    rules: &Rules,
    jsonb: bool,
    work: &mut Work,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    match v {
        Value::Text(t) | Value::Blob(t) => match rules.json {
            JsonMode::Parse => {
                // serde_json skips over strings it ignores without checking
                // their UTF-8, so check it first.
                std::str::from_utf8(t).map_err(|e| {
                    Reject::new(format!(
                        "not valid JSON: invalid UTF-8 at byte {}",
                        e.valid_up_to()
                    ))
                    .in_error()
                })?;
                serde_json::from_slice::<serde::de::IgnoredAny>(t).map_err(|e| {
                    Reject::new(format!(
                        "not valid JSON: {e} (set `json = \"string\"` to store text as a JSON string, or on_error = \"null\" to store NULL)"
                    ))
                    .in_error()
                })?;
                if jsonb {
                    check_jsonb(t)?;
                }
                out.extend_from_slice(t);
            }
            JsonMode::String => {
                let s = std::str::from_utf8(t).map_err(|e| {
                    Reject::new(format!(
                        "invalid UTF-8 at byte {}: JSON text must be UTF-8",
                        e.valid_up_to()
                    ))
                })?;
                if jsonb && s.contains('\0') {
                    return Err(nul_in_jsonb());
                }
                work.buf.clear();
                serde_json::to_writer(&mut work.buf, s)
                    .map_err(|e| Reject::new(format!("cannot serialise JSON string: {e}")))?;
                out.extend_from_slice(&work.buf);
            }
        },
        Value::Int(n) => {
            work.buf.clear();
            let _ = write!(work.buf, "{n}");
            out.extend_from_slice(&work.buf);
        }
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(Reject::new(format!(
                    "{} cannot be stored in JSON, which has no NaN or Infinity",
                    describe(v)
                )));
            }
            work.buf.clear();
            serde_json::to_writer(&mut work.buf, &f)
                .map_err(|e| Reject::new(format!("cannot serialise number: {e}")))?;
            out.extend_from_slice(&work.buf);
        }
        Value::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Value::Json(j) => {
            work.buf.clear();
            // Formula errors among a list's elements follow `on_error`.
            let errors = j
                .as_array()
                .map_or(0, |a| a.iter().filter(|e| is_formula_error(e)).count());
            let written = match (errors, rules.on_error) {
                (0, _) => serde_json::to_writer(&mut work.buf, j),
                (_, OnError::Null) => {
                    work.adjusted.error_nulled = true;
                    serde_json::to_writer(&mut work.buf, &WithoutErrors(j))
                }
                (_, OnError::Reject) => {
                    let (at, e) = j
                        .as_array()
                        .into_iter()
                        .flatten()
                        .enumerate()
                        .find(|(_, e)| is_formula_error(e))
                        .unwrap_or((0, j));
                    return Err(formula_reject(e, &format!("element {}: ", at + 1)));
                }
            };
            written.map_err(|e| Reject::new(format!("cannot serialise JSON value: {e}")))?;
            if jsonb {
                check_jsonb(&work.buf)?;
            }
            out.extend_from_slice(&work.buf);
        }
        Value::Null => return Err(Reject::new("NULL reached a JSON conversion")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{col_r, enc, err, ok, t};
    use crate::pg::PgType;

    #[test]
    fn json_and_jsonb() {
        assert_eq!(ok(t(r#"{"a": 1}"#), PgType::Json), br#"{"a": 1}"#);
        assert_eq!(ok(t(r#"[1,2]"#), PgType::Jsonb), b"\x01[1,2]");
        assert!(err(t("{bad"), PgType::Json).starts_with("not valid JSON: "));
        assert!(err(Value::Text(b"\"\xff\""), PgType::Json).starts_with("not valid JSON"));
        // trailing garbage
        assert!(err(t("1 2"), PgType::Jsonb).starts_with("not valid JSON"));
        // deep nesting is rejected, not a stack overflow
        let deep = "[".repeat(100_000);
        assert!(err(t(&deep), PgType::Jsonb).starts_with("not valid JSON"));
        // \u0000: fine for json, not for jsonb; an escaped backslash is not an escape
        assert_eq!(ok(t(r#""a\u0000""#), PgType::Json), br#""a\u0000""#);
        assert!(err(t(r#""a\u0000""#), PgType::Jsonb).contains("NUL"));
        assert_eq!(ok(t(r#""a\\u0000""#), PgType::Jsonb), b"\x01\"a\\\\u0000\"");
        let s = Rules {
            json: JsonMode::String,
            ..Rules::default()
        };
        assert_eq!(
            enc(t("he said \"hi\"\n"), &col_r(PgType::Json, s.clone())).unwrap()[4..],
            *br#""he said \"hi\"\n""#
        );
        assert!(enc(t("a\0"), &col_r(PgType::Jsonb, s.clone())).is_err());
        assert!(
            enc(Value::Text(b"\xff"), &col_r(PgType::Jsonb, s))
                .unwrap_err()
                .reason
                .contains("invalid UTF-8")
        );
        assert_eq!(ok(Value::Int(-5), PgType::Jsonb), b"\x01-5");
        assert_eq!(ok(Value::Float(0.25), PgType::Json), b"0.25");
        assert_eq!(ok(Value::Bool(true), PgType::Json), b"true");
        assert!(err(Value::Float(f64::NAN), PgType::Json).contains("no NaN"));
        let j = serde_json::json!({"k": ["v", null, 1.5]});
        assert_eq!(
            ok(Value::Json(&j), PgType::Jsonb),
            b"\x01{\"k\":[\"v\",null,1.5]}"
        );
        let js = serde_json::json!("str");
        assert_eq!(ok(Value::Json(&js), PgType::Json), b"\"str\"");
        let jn = serde_json::json!("a\u{0}");
        assert!(err(Value::Json(&jn), PgType::Jsonb).contains("NUL"));
        assert_eq!(jsonb_unfit(br#""\\\u0000""#), Some(Unfit::Nul));
        assert_eq!(jsonb_unfit(br#""\\u0000""#), None);
        assert_eq!(jsonb_unfit(br#""\u0000""#), Some(Unfit::Nul));
    }

    #[test]
    fn surrogates_in_jsonb() {
        // A pair is one character (U+1F600); either half alone is refused by jsonb, as
        // PostgreSQL's jsonb input refuses it, and taken by json.
        assert_eq!(
            ok(t(r#""\ud83d\ude00""#), PgType::Jsonb),
            b"\x01\"\\ud83d\\ude00\""
        );
        assert_eq!(ok(t(r#""\uD83D\uDE00""#), PgType::Jsonb).len(), 15);
        for lone in [
            r#""\ud800""#,
            r#"{"a": "x\ud800y"}"#,
            r#"["\udc00"]"#,
            r#""\ud800\ud800\udc00""#,
            r#""\ud800\n""#,
            r#""\ud800\u0041""#,
        ] {
            let e = err(t(lone), PgType::Jsonb);
            assert!(
                e.contains("surrogate") && e.contains("jsonb"),
                "{lone}: {e}"
            );
            assert_eq!(
                ok(t(lone), PgType::Json),
                lone.as_bytes(),
                "json takes {lone}"
            );
        }
        assert!(err(t(r#""\uDBFF""#), PgType::Jsonb).contains("\\udbff"));
        // An escaped backslash before `u` is no escape.
        assert_eq!(jsonb_unfit(br#""\\ud800""#), None);
        assert_eq!(
            jsonb_unfit(br#""a\"\\\ud800""#),
            Some(Unfit::LoneSurrogate(0xd800))
        );
        // Truncated or odd input never panics (the converter checks JSON first anyway).
        for odd in [&b"\\"[..], b"\\u", b"\\ud8", b"\\ud800\\", b"\\ud800\\u"] {
            let _ = jsonb_unfit(odd);
        }
    }
}
