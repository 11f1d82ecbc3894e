//! The mapping's rules applied to one source value before its column type sees it: the
//! structured value shaped (`shape`: path, on_error, many), JSON scalars to plain values,
//! trim, lowercase, the value map, empty-as-NULL; then, for a value that is NULL after that
//! (or that the source holds in error, with `on_error = "null"`), the column's `default`,
//! `required` and NOT NULL.
//! Borrows from the source, the rules or the converter's `Scratch`, so it allocates only
//! when a scratch buffer must grow.
use std::collections::HashMap;

use bytes::{BufMut, BytesMut};

use super::field::write_field;
use super::shape::{Owned, shape};
use super::text::text_form;
use super::{ColumnPlan, OnError, Reject, Rules, Scratch, Work, describe};
use crate::pg::PgType;
use crate::value::Value;

/// One column's value through the rules and into `out` as a field: the prepared value; if
/// that is NULL, the mapping's `default` (converted like source text); else NULL, unless
/// the column is `required` or NOT NULL.
pub(crate) fn encode_column(
    value: Value<'_>,
    col: &ColumnPlan,
    top: &mut Scratch,
    elem: &mut Scratch,
    work: &mut Work,
    owned: &mut Owned,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    let rules = &col.rules;
    let ty = &col.ty;
    let start = out.len();
    let shaped = match shape(value, rules, ty, owned, &mut work.adjusted) {
        Ok(v) => v,
        Err(r) if r.in_error && rules.on_error == OnError::Null => {
            work.adjusted.error_nulled = true;
            Value::Null
        }
        Err(r) => return Err(r),
    };
    // For arrays the value map applies to each element, not to the whole text.
    let use_map = !matches!(ty, PgType::Array { .. });
    let v = prepare(shaped, rules, ty, use_map, top);
    if !matches!(v, Value::Null) {
        match write_field(v, ty, rules, elem, work, out) {
            // Text that is not JSON going into json: the source holds it in error, and
            // `on_error = "null"` stores NULL (or the default) instead.
            Err(r) if r.in_error && rules.on_error == OnError::Null => {
                out.truncate(start);
                work.adjusted.error_nulled = true;
            }
            done => return done,
        }
    }
    if let Some(d) = &rules.default {
        let dv = Value::Text(d.as_bytes());
        return write_field(dv, ty, rules, elem, work, out).map_err(|r| {
            Reject::new(format!(
                "the mapping's default {} does not fit: {}",
                describe(dv),
                r.reason
            ))
        });
    }
    if rules.required {
        return Err(Reject::new(
            "required value is empty: fix the source or set `default` in the mapping",
        ));
    }
    if col.not_null {
        return Err(Reject::new(
            "column is NOT NULL and the value is empty: set `default` in the mapping or fix the source",
        ));
    }
    out.put_i32(-1);
    Ok(())
}

fn is_text_target(ty: &PgType) -> bool {
    matches!(ty, PgType::Text { .. } | PgType::Json | PgType::Jsonb)
}

fn is_json_target(ty: &PgType) -> bool {
    matches!(ty, PgType::Json | PgType::Jsonb)
}

/// The rules pipeline: JSON scalars to plain values (except into json
/// columns), trim, lowercase, map, empty -> NULL. Borrows from the source,
/// the rules, or `sc`; allocates only when a scratch buffer must grow.
pub(crate) fn prepare<'s>(
    value: Value<'s>,
    rules: &'s Rules,
    ty: &PgType,
    use_map: bool,
    sc: &'s mut Scratch,
) -> Value<'s> {
    let value = match value {
        Value::Json(j) if !is_json_target(ty) => match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::String(s) => Value::Text(s.as_bytes()),
            serde_json::Value::Number(n) => match (n.as_i64(), n.is_f64(), n.as_f64()) {
                (Some(i), _, _) => Value::Int(i),
                (None, true, Some(f)) => Value::Float(f),
                // u64 above i64::MAX: keep it exact; numeric/text handle it.
                _ => value,
            },
            _ => value,
        },
        v => v,
    };
    let map = if use_map { rules.map.as_ref() } else { None };
    let t: &'s [u8] = match value {
        Value::Text(t) => t,
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
            let Some(map) = map else {
                return value;
            };
            sc.key.clear();
            text_form(value, &mut sc.key);
            if rules.lowercase {
                sc.key.make_ascii_lowercase();
            }
            return match lookup(map, &sc.key) {
                Some(m) => empty_to_null(m, rules, ty),
                None => value,
            };
        }
        other => return other,
    };
    let t = if rules.trim { trim_text(t) } else { t };
    let t: &'s [u8] = if rules.lowercase && needs_lowercase(t) {
        lowercase_into(t, &mut sc.lower);
        let sc: &'s Scratch = sc;
        &sc.lower
    } else {
        t
    };
    let t = match map.and_then(|m| lookup(m, t)) {
        Some(m) => m,
        None => t,
    };
    empty_to_null(t, rules, ty)
}

fn empty_to_null<'s>(t: &'s [u8], rules: &Rules, ty: &PgType) -> Value<'s> {
    if t.is_empty() && (rules.empty_as_null || !is_text_target(ty)) {
        Value::Null
    } else {
        Value::Text(t)
    }
}

fn lookup<'m>(map: &'m HashMap<String, String>, key: &[u8]) -> Option<&'m [u8]> {
    let k = std::str::from_utf8(key).ok()?;
    map.get(k).map(|s| s.as_bytes())
}

/// Trim ASCII whitespace, and Unicode whitespace when the ends are non-ASCII.
pub(crate) fn trim_text(t: &[u8]) -> &[u8] {
    let t = t.trim_ascii();
    let non_ascii_end =
        t.first().is_some_and(|b| *b >= 0x80) || t.last().is_some_and(|b| *b >= 0x80);
    if non_ascii_end && let Ok(s) = std::str::from_utf8(t) {
        return s.trim().as_bytes();
    }
    t
}

fn needs_lowercase(t: &[u8]) -> bool {
    t.iter().any(|b| b.is_ascii_uppercase() || *b >= 0x80)
}

/// Unicode lowercase for valid UTF-8, ASCII lowercase otherwise.
fn lowercase_into(t: &[u8], buf: &mut Vec<u8>) {
    buf.clear();
    match std::str::from_utf8(t) {
        Ok(s) => {
            let mut tmp = [0u8; 4];
            for c in s.chars() {
                if c.is_ascii() {
                    buf.push(c.to_ascii_lowercase() as u8);
                } else {
                    for l in c.to_lowercase() {
                        buf.extend_from_slice(l.encode_utf8(&mut tmp).as_bytes());
                    }
                }
            }
        }
        Err(_) => {
            buf.extend_from_slice(t);
            buf.make_ascii_lowercase();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::Converter;
    use crate::convert::testing::{NULL_FIELD, col, col_r, enc, enc_with, ok, t, text};

    #[test]
    fn nulls_defaults_required() {
        assert_eq!(enc(Value::Null, &col(PgType::Int4)).unwrap(), NULL_FIELD);
        // '' into a non-text column is NULL; into text it is ''
        assert_eq!(enc(t(""), &col(PgType::Int4)).unwrap(), NULL_FIELD);
        assert_eq!(enc(t(""), &col(text())).unwrap(), [0, 0, 0, 0]);
        let r = Rules {
            empty_as_null: true,
            ..Rules::default()
        };
        assert_eq!(enc(t(""), &col_r(text(), r.clone())).unwrap(), NULL_FIELD);
        assert_eq!(enc(t(""), &col_r(PgType::Jsonb, r)).unwrap(), NULL_FIELD);
        // trimmed to empty
        let r = Rules {
            trim: true,
            ..Rules::default()
        };
        assert_eq!(enc(t("   "), &col_r(PgType::Date, r)).unwrap(), NULL_FIELD);

        let mut c = col(PgType::Int4);
        c.not_null = true;
        let e = enc(Value::Null, &c).unwrap_err();
        assert!(
            e.reason
                .starts_with("column is NOT NULL and the value is empty"),
            "{}",
            e.reason
        );
        assert!(enc(t(""), &c).is_err());
        c.rules.required = true;
        assert!(
            enc(t(""), &c)
                .unwrap_err()
                .reason
                .starts_with("required value is empty")
        );
        c.rules.default = Some("42".into());
        assert_eq!(enc(Value::Null, &c).unwrap(), [0, 0, 0, 4, 0, 0, 0, 42]);
        assert_eq!(enc(t(""), &c).unwrap(), [0, 0, 0, 4, 0, 0, 0, 42]);
        c.rules.default = Some("nope".into());
        let e = enc(Value::Null, &c).unwrap_err();
        assert!(e.reason.contains("default 'nope'"), "{}", e.reason);
        assert!(e.reason.contains("is not an integer"), "{}", e.reason);
        // JSON null is NULL too
        let jn = serde_json::Value::Null;
        assert_eq!(
            enc(Value::Json(&jn), &col(PgType::Int4)).unwrap(),
            NULL_FIELD
        );
    }

    #[test]
    fn trim_lowercase_map() {
        let map: HashMap<String, String> = [
            ("active", "on"),
            ("0", "draft"),
            ("1", "submitted"),
            ("true", "archived"),
            ("n/a", ""),
            ("ÉTÉ", "x"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let rules = Rules {
            trim: true,
            lowercase: true,
            map: Some(map),
            ..Rules::default()
        };
        let labels = ["draft", "submitted", "archived"]
            .map(String::from)
            .to_vec();
        let e = col_r(PgType::Enum { labels }, rules.clone());
        assert_eq!(enc(Value::Int(0), &e).unwrap()[4..], *b"draft");
        assert_eq!(enc(Value::Int(1), &e).unwrap()[4..], *b"submitted");
        assert_eq!(enc(Value::Bool(true), &e).unwrap()[4..], *b"archived");
        assert_eq!(enc(t("  Draft \n"), &e).unwrap()[4..], *b"draft");
        assert_eq!(enc(t("N/A"), &e).unwrap(), NULL_FIELD);
        let r = enc(t("Deleted"), &e).unwrap_err();
        assert_eq!(
            r.reason,
            "'deleted' is not one of draft, submitted, archived: add it to `map`"
        );
        // unicode trim + lowercase
        let tc = col_r(text(), rules.clone());
        assert_eq!(
            enc(t("\u{a0}ÀB\u{3000}"), &tc).unwrap()[4..],
            *"àb".as_bytes()
        );
        // map keys are after lowercase, so "ÉTÉ" can never match; "été" is the key form
        assert_eq!(enc(t("ÉTÉ"), &tc).unwrap()[4..], *"été".as_bytes());
        // map into bool
        let b = col_r(PgType::Bool, rules.clone());
        assert_eq!(enc(t(" ACTIVE "), &b).unwrap()[4..], [1]);
        // invalid UTF-8 lowercases ASCII only, no panic
        assert!(
            enc(Value::Text(b"AB\xff"), &tc)
                .unwrap_err()
                .reason
                .contains("invalid UTF-8 at byte 2")
        );
        // without trim, spaces stay
        assert_eq!(ok(t(" a "), text()), b" a ");
        // reuse of one converter across many values keeps results independent
        let mut cv = Converter::new();
        for _ in 0..3 {
            assert_eq!(enc_with(&mut cv, t("X"), &tc).unwrap()[4..], *b"x");
            assert_eq!(enc_with(&mut cv, t("y"), &tc).unwrap()[4..], *b"y");
            assert_eq!(enc_with(&mut cv, Value::Int(7), &tc).unwrap()[4..], *b"7");
        }
    }
}
