//! One-dimensional array columns: a JSON array, or text split on the mapping's `split`
//! separator, written in array_send format (header, then one framed field per element).
//! Each element goes through the rules pipeline and its element type's encoder, so the
//! value map applies per element.
use bytes::{BufMut, BytesMut};

use super::field::write_field;
use super::prepare::prepare;
use super::shape::{formula_reject, is_formula_error};
use super::{OnError, Reject, Rules, Scratch, Work, describe};
use crate::pg::PgType;
use crate::value::Value;

/// Split `t` on `sep` (non-empty).
fn split_on<'t>(t: &'t [u8], sep: &'t [u8]) -> impl Iterator<Item = &'t [u8]> + 't {
    let mut rest = Some(t);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(sep.len()).position(|w| w == sep) {
            Some(p) => {
                rest = r.get(p + sep.len()..);
                r.get(..p)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// A JSON array element as a source value.
fn json_elem(j: &serde_json::Value) -> Value<'_> {
    match j {
        serde_json::Value::Null => Value::Null,
        _ => Value::Json(j),
    }
}

pub(crate) fn write_array(
    v: Value<'_>,
    et: &PgType,
    elem_oid: u32,
    rules: &Rules,
    sc: &mut Scratch,
    work: &mut Work,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    if matches!(et, PgType::Array { .. }) {
        return Err(Reject::new(
            "multi-dimensional arrays are not supported: cutover writes one-dimensional arrays only",
        ));
    }
    let parsed: serde_json::Value;
    let split_sep = rules.split.as_deref().filter(|s| !s.is_empty());
    let items: Result<&[serde_json::Value], &[u8]> = match v {
        Value::Json(serde_json::Value::Array(a)) => Ok(a),
        Value::Text(t) => match split_sep {
            Some(_) => Err(t),
            None => {
                parsed = serde_json::from_slice(t).map_err(|e| {
                    Reject::new(format!(
                        "{} is not a JSON array ({e}): set `split` in the mapping to split text on a separator",
                        describe(v)
                    ))
                })?;
                match &parsed {
                    serde_json::Value::Array(a) => Ok(a),
                    _ => {
                        return Err(Reject::new(format!(
                            "{} is not a JSON array: set `split` in the mapping to split text on a separator",
                            describe(v)
                        )));
                    }
                }
            }
        },
        _ => {
            return Err(Reject::new(format!(
                "{} cannot go into an array column: give a JSON array, or text with `split` set",
                describe(v)
            )));
        }
    };
    let header = out.len();
    out.put_i32(1); // ndim
    out.put_i32(0); // has nulls (patched below)
    out.put_u32(elem_oid);
    out.put_i32(0); // length (patched below)
    out.put_i32(1); // lower bound
    let mut count: usize = 0;
    let mut has_null = false;
    let mut put = |ev: Value<'_>, sc: &mut Scratch, work: &mut Work, out: &mut BytesMut| {
        count += 1;
        // A formula error among a lookup's values follows `on_error`.
        if let Value::Json(j) = ev
            && is_formula_error(j)
        {
            if rules.on_error == OnError::Reject {
                return Err(formula_reject(j, &format!("element {count}: ")));
            }
            work.adjusted.error_nulled = true;
            has_null = true;
            out.put_i32(-1);
            return Ok(());
        }
        match prepare(ev, rules, et, true, sc) {
            Value::Null => {
                has_null = true;
                out.put_i32(-1);
                Ok(())
            }
            pv => write_field(pv, et, rules, &mut Scratch::default(), work, out)
                .map_err(|r| Reject::new(format!("element {count}: {}", r.reason))),
        }
    };
    match items {
        Ok(a) => {
            for j in a {
                put(json_elem(j), sc, work, out)?;
            }
        }
        Err(t) => {
            let sep = split_sep.unwrap_or_default().as_bytes();
            for piece in split_on(t, sep) {
                put(Value::Text(piece), sc, work, out)?;
            }
        }
    }
    if count == 0 {
        out.truncate(header);
        out.put_i32(0);
        out.put_i32(0);
        out.put_u32(elem_oid);
        return Ok(());
    }
    let Ok(n) = i32::try_from(count) else {
        return Err(Reject::new("array has too many elements"));
    };
    if let Some(slot) = out.get_mut(header + 4..header + 8) {
        slot.copy_from_slice(&i32::from(has_null).to_be_bytes());
    }
    if let Some(slot) = out.get_mut(header + 12..header + 16) {
        slot.copy_from_slice(&n.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{NULL_FIELD, arr, col, col_r, enc, err, ok, t, text};

    /// Expected binary array of int4 elements (None = NULL).
    fn int4_array(items: &[Option<i32>]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&1i32.to_be_bytes());
        v.extend_from_slice(&i32::from(items.iter().any(Option::is_none)).to_be_bytes());
        v.extend_from_slice(&23u32.to_be_bytes());
        v.extend_from_slice(&(items.len() as i32).to_be_bytes());
        v.extend_from_slice(&1i32.to_be_bytes());
        for it in items {
            match it {
                Some(n) => {
                    v.extend_from_slice(&4i32.to_be_bytes());
                    v.extend_from_slice(&n.to_be_bytes());
                }
                None => v.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        v
    }

    #[test]
    fn arrays() {
        let ty = arr(PgType::Int4, 23);
        let j = serde_json::json!([1, null, "3"]);
        assert_eq!(
            ok(Value::Json(&j), ty.clone()),
            int4_array(&[Some(1), None, Some(3)])
        );
        assert_eq!(ok(t("[4, 5]"), ty.clone()), int4_array(&[Some(4), Some(5)]));
        // empty array: ndim 0
        assert_eq!(
            ok(t("[]"), ty.clone()),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 23]
        );
        // '' is NULL for array columns
        assert_eq!(enc(t(""), &col(ty.clone())).unwrap(), NULL_FIELD);
        let split = Rules {
            split: Some(",".into()),
            trim: true,
            ..Rules::default()
        };
        let c = col_r(ty.clone(), split.clone());
        assert_eq!(
            enc(t("1, 2,,3"), &c).unwrap()[4..],
            int4_array(&[Some(1), Some(2), None, Some(3)])
        );
        let e = enc(t("1, x"), &c).unwrap_err();
        assert_eq!(e.reason, "element 2: 'x' is not an integer");
        assert!(err(t("1,2"), ty.clone()).contains("set `split`"));
        assert!(err(t("{\"a\":1}"), ty.clone()).contains("is not a JSON array"));
        assert!(err(Value::Int(1), ty.clone()).contains("array column"));
        // multi-character separator, text elements, map applied per element
        let tx = arr(text(), 25);
        let mut r = Rules {
            split: Some(" | ".into()),
            lowercase: true,
            map: Some([("b".to_string(), "bee".to_string())].into_iter().collect()),
            ..Rules::default()
        };
        let f = enc(t("A | B | "), &col_r(tx.clone(), r.clone())).unwrap();
        let mut want = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 3, 0, 0, 0, 1];
        want.extend_from_slice(&[0, 0, 0, 1, b'a', 0, 0, 0, 3, b'b', b'e', b'e', 0, 0, 0, 0]);
        assert_eq!(f[4..], want);
        r.empty_as_null = true;
        let f = enc(t("A | B | "), &col_r(tx.clone(), r)).unwrap();
        assert_eq!(&f[8..12], &[0, 0, 0, 1], "has_null set");
        // nested values into text[] become JSON text; into int[] they are rejected
        let j = serde_json::json!([[1], {"a": 2}, true, 1.5]);
        assert!(ok(Value::Json(&j), tx).ends_with(
            b"\x00\x00\x00\x03[1]\x00\x00\x00\x07{\"a\":2}\x00\x00\x00\x04true\x00\x00\x00\x031.5"
        ));
        assert!(err(Value::Json(&j), ty.clone()).starts_with("element 1: a list [1]"));
        // jsonb[] elements carry the version byte
        let jb = arr(PgType::Jsonb, 3802);
        let j = serde_json::json!([{"a": 1}, "s"]);
        assert!(
            ok(Value::Json(&j), jb)
                .ends_with(b"\x00\x00\x00\x08\x01{\"a\":1}\x00\x00\x00\x04\x01\"s\"")
        );
        assert!(err(t("[[1]]"), arr(arr(PgType::Int4, 23), 1007)).contains("one-dimensional"));
        // many elements
        let many: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        let f = enc(t(&many.join(",")), &c).unwrap();
        assert_eq!(f.len(), 4 + 20 + 10_000 * 8);
    }
}
