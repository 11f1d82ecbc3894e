//! Structured source values (Airtable's objects and lists, or JSON text when a `path` asks
//! for a part of it) made fit for their column before the rules see them: `path` picks a
//! sub-field (a collaborator's `email`, an attachment's `0.url`), a formula error follows
//! `on_error`, and a list where the column holds one value follows `many`. Only a `path`
//! over JSON text, or a key over a whole list into a list column, builds a value; everything
//! else borrows from the source.
use super::reject::Code;
use super::{Adjusted, Many, OnError, Reject, Rules, Step, describe};
use crate::pg::PgType;
use crate::value::Value;
use serde_json::Value as Json;

/// Values the shaping had to build, kept for reuse from one value to the next.
#[derive(Default)]
pub(crate) struct Owned {
    /// JSON text parsed for a `path`.
    parsed: Json,
    /// A key picked from every element of a list, for a list or json column.
    picked: Json,
}

/// A formula, rollup or lookup error as Airtable returns it: an object with just `error`
/// (`#ERROR!`, `#DIV/0!`) or `specialValue` (`NaN`, `Infinity`).
pub(crate) fn is_formula_error(j: &Json) -> bool {
    j.as_object().is_some_and(|o| {
        o.len() == 1 && (o.contains_key("error") || o.contains_key("specialValue"))
    })
}

/// What `on_error` makes of a formula error: NULL (counted), or a reject.
pub(crate) fn formula_error<'a>(
    j: &Json,
    rules: &Rules,
    adjusted: &mut Adjusted,
) -> Result<Value<'a>, Reject> {
    match rules.on_error {
        OnError::Null => {
            adjusted.error_nulled = true;
            Ok(Value::Null)
        }
        OnError::Reject => Err(formula_reject(j, "")),
    }
}

/// The reject for a formula error (`at`: where in the value, e.g. "element 2: ").
pub(crate) fn formula_reject(j: &Json, at: &str) -> Reject {
    Reject::with_code(
        Code::FormulaError,
        format!(
            "{at}the source holds a formula error {}: fix it in the source, or set on_error = \"null\" in the mapping",
            describe(Value::Json(j))
        ),
    )
}

fn holds_many(ty: &PgType) -> bool {
    matches!(ty, PgType::Json | PgType::Jsonb | PgType::Array { .. })
}

/// The value `path`, `on_error` and `many` make of `value` for a column of type `ty`.
pub(crate) fn shape<'a>(
    value: Value<'a>,
    rules: &Rules,
    ty: &PgType,
    owned: &'a mut Owned,
    adjusted: &mut Adjusted,
) -> Result<Value<'a>, Reject> {
    let Owned { parsed, picked } = owned;
    let mut j = match value {
        Value::Json(j) => j,
        Value::Text(t) if rules.path.is_some() => {
            *parsed = serde_json::from_slice(t).map_err(|e| {
                Reject::new(format!(
                    "`path` picks from a structured value, and {} is not JSON ({e}): fix the source or remove `path`",
                    describe(value)
                ))
                .in_error()
            })?;
            &*parsed
        }
        other => return Ok(other),
    };
    if is_formula_error(j) {
        return formula_error(j, rules, adjusted);
    }
    if let Some(path) = &rules.path {
        match walk(j, path, !holds_many(ty), rules.many)? {
            Walk::At(at) => j = at,
            Walk::Missing => return Ok(Value::Null),
            Walk::Each(items, from) => {
                let rest = path.get(from..).unwrap_or_default();
                let mut each = Vec::with_capacity(items.len());
                for item in items {
                    each.push(match walk(item, rest, true, rules.many)? {
                        Walk::At(x) => x.clone(),
                        Walk::Missing | Walk::Each(..) => Json::Null,
                    });
                }
                *picked = Json::Array(each);
                j = &*picked;
            }
        }
        if is_formula_error(j) {
            return formula_error(j, rules, adjusted);
        }
    }
    if let Json::Array(items) = j
        && !holds_many(ty)
    {
        let one = match (items.as_slice(), rules.many) {
            ([], _) => return Ok(Value::Null),
            ([one], _) | ([one, ..], Many::First) => one,
            (many, Many::Reject) => return Err(many_values(many.len())),
        };
        if is_formula_error(one) {
            return formula_error(one, rules, adjusted);
        }
        return Ok(json_scalar(one));
    }
    Ok(Value::Json(j))
}

fn many_values(n: usize) -> Reject {
    Reject::with_code(
        Code::ManyValues,
        format!(
            "{n} values where the column holds one: set many = \"first\" in the mapping to take the first, or a `path` starting with an index (\"0\")"
        ),
    )
}

/// Where a `path` led.
enum Walk<'j> {
    At(&'j Json),
    /// A key or index that is not there, or a null on the way: the value is NULL.
    Missing,
    /// A key over a list, into a column that holds many: the rest of the path (from the
    /// step at this index) applies to each element.
    Each(&'j [Json], usize),
}

fn walk<'j>(
    mut j: &'j Json,
    path: &[Step],
    one_value: bool,
    many: Many,
) -> Result<Walk<'j>, Reject> {
    let mut n = 0;
    while let Some(step) = path.get(n) {
        if is_formula_error(j) {
            return Ok(Walk::At(j));
        }
        match (step, j) {
            (_, Json::Null) => return Ok(Walk::Missing),
            (Step::Index(i), Json::Array(a)) => match a.get(*i) {
                Some(x) => j = x,
                None => return Ok(Walk::Missing),
            },
            (Step::Key(k), Json::Object(o)) => match o.get(k) {
                Some(x) => j = x,
                None => return Ok(Walk::Missing),
            },
            (Step::Key(_), Json::Array(a)) if !one_value => return Ok(Walk::Each(a, n)),
            // A key over a list into a one-value column: `many` picks the element, and the
            // same step applies to it.
            (Step::Key(_), Json::Array(a)) => match (a.as_slice(), many) {
                ([], _) => return Ok(Walk::Missing),
                ([x], _) | ([x, ..], Many::First) => {
                    j = x;
                    continue;
                }
                (all, Many::Reject) => return Err(many_values(all.len())),
            },
            (step, other) => {
                let (wants, step) = match step {
                    Step::Key(k) => ("an object", format!("`{k}`")),
                    Step::Index(i) => ("a list", i.to_string()),
                };
                return Err(Reject::new(format!(
                    "`path` step {step} needs {wants}, and the value there is {}: fix the mapping's `path`",
                    describe(Value::Json(other))
                )));
            }
        }
        n += 1;
    }
    Ok(Walk::At(j))
}

/// A whole object (or a list of objects) stored as text, as a warning quotes it: the value,
/// and the `path` that would take one of its fields instead.
pub(crate) fn whole_object_hint(v: Value<'_>) -> String {
    let (obj, prefix) = match v {
        Value::Json(Json::Object(o)) => (Some(o), ""),
        Value::Json(Json::Array(a)) => (a.iter().find_map(Json::as_object), "0."),
        _ => (None, ""),
    };
    let shown = describe(v);
    match obj {
        Some(o) => {
            let keys: Vec<&str> = o.keys().map(String::as_str).take(8).collect();
            let pick = ["email", "url", "value", "name", "filename"]
                .into_iter()
                .find(|k| o.contains_key(*k))
                .or(keys.first().copied())
                .unwrap_or("key");
            format!(
                "{shown}: add path = \"{prefix}{pick}\" to the column to store one field (its keys: {})",
                keys.join(", ")
            )
        }
        None => shown,
    }
}

/// A JSON value as a source value: scalars as themselves, the rest as JSON.
pub(crate) fn json_scalar(v: &Json) -> Value<'_> {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::String(s) => Value::Text(s.as_bytes()),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => n.as_f64().map(Value::Float).unwrap_or(Value::Json(v)),
        },
        other => Value::Json(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::Converter;
    use crate::convert::testing::{NULL_FIELD, arr, col_r, enc_with, text};
    use serde_json::json;

    fn path(p: &str) -> Option<Vec<Step>> {
        Some(
            p.split('.')
                .map(|s| match s.parse() {
                    Ok(i) => Step::Index(i),
                    Err(_) => Step::Key(s.to_string()),
                })
                .collect(),
        )
    }

    fn rules(p: &str) -> Rules {
        Rules {
            path: path(p),
            ..Rules::default()
        }
    }

    /// Encode and say what the converter changed: the payload (None for NULL), the flags.
    fn run(v: Value<'_>, ty: PgType, r: Rules) -> Result<(Option<Vec<u8>>, Adjusted), Reject> {
        let mut cv = Converter::new();
        let f = enc_with(&mut cv, v, &col_r(ty, r))?;
        let payload = (f != NULL_FIELD).then(|| f[4..].to_vec());
        Ok((payload, cv.adjusted()))
    }

    fn picked(v: &Json, p: &str) -> Option<String> {
        let (f, _) = run(Value::Json(v), text(), rules(p)).unwrap();
        f.map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn path_picks_a_sub_field() {
        let collaborator = json!({"id": "usr1", "email": "ada@example.com", "name": "Ada"});
        assert_eq!(
            picked(&collaborator, "email").as_deref(),
            Some("ada@example.com")
        );
        let ai = json!({"state": "generated", "value": "A summary", "isStale": false});
        assert_eq!(picked(&ai, "value").as_deref(), Some("A summary"));
        let files = json!([
            {"id": "att1", "url": "https://x/1.png", "filename": "1.png"},
            {"id": "att2", "url": "https://x/2.png", "filename": "2.png"}
        ]);
        assert_eq!(picked(&files, "0.url").as_deref(), Some("https://x/1.png"));
        assert_eq!(picked(&files, "1.filename").as_deref(), Some("2.png"));
        // Not there: NULL.
        assert_eq!(picked(&files, "5.url"), None);
        assert_eq!(picked(&collaborator, "phone"), None);
        // A key over a list into a one-value column: `many` decides.
        let one = json!([{"email": "a@b"}]);
        assert_eq!(picked(&one, "email").as_deref(), Some("a@b"));
        let e = run(Value::Json(&files), text(), rules("url")).unwrap_err();
        assert_eq!(e.code, Code::ManyValues);
        let first = Rules {
            many: Many::First,
            ..rules("url")
        };
        let (f, _) = run(Value::Json(&files), text(), first).unwrap();
        assert_eq!(f.unwrap(), b"https://x/1.png");
        // ... and into a list column, the key of every element.
        let (f, _) = run(Value::Json(&files), arr(text(), 25), rules("filename")).unwrap();
        let f = f.unwrap();
        assert!(f.windows(5).any(|w| w == b"1.png") && f.windows(5).any(|w| w == b"2.png"));
        // The wrong shape is the mapping's mistake, said as such.
        let s = json!("plain");
        let e = run(Value::Json(&s), text(), rules("email")).unwrap_err();
        assert!(
            e.reason.contains("`path` step `email` needs an object"),
            "{}",
            e.reason
        );
        // JSON text (a SQLite column holding JSON) is parsed for a path.
        let (f, _) = run(Value::Text(br#"{"email":"t@x"}"#), text(), rules("email")).unwrap();
        assert_eq!(f.unwrap(), b"t@x");
        let e = run(Value::Text(b"{nope"), text(), rules("email")).unwrap_err();
        assert!(e.reason.contains("is not JSON"), "{}", e.reason);
        // Other plain values pass untouched.
        let (f, _) = run(Value::Int(7), PgType::Int4, rules("email")).unwrap();
        assert_eq!(f.unwrap(), 7i32.to_be_bytes());
    }

    #[test]
    fn lists_into_one_value_columns_follow_many() {
        let text_of = |v: &Json, r: Rules| {
            run(Value::Json(v), text(), r).map(|(f, _)| f.map(|b| String::from_utf8(b).unwrap()))
        };
        let one = json!(["recAAAAAAAAAAAAAA"]);
        assert_eq!(
            text_of(&one, Rules::default()).unwrap().as_deref(),
            Some("recAAAAAAAAAAAAAA")
        );
        assert_eq!(text_of(&json!([]), Rules::default()).unwrap(), None);
        let two = json!(["recA", "recB"]);
        let e = text_of(&two, Rules::default()).unwrap_err();
        assert_eq!(e.code, Code::ManyValues);
        assert!(
            e.reason.starts_with("2 values where the column holds one"),
            "{}",
            e.reason
        );
        let first = Rules {
            many: Many::First,
            ..Rules::default()
        };
        assert_eq!(text_of(&two, first).unwrap().as_deref(), Some("recA"));
        // json and list columns take the list whole.
        let (f, _) = run(Value::Json(&two), PgType::Jsonb, Rules::default()).unwrap();
        assert_eq!(f.unwrap(), b"\x01[\"recA\",\"recB\"]");
        // Scalars become plain values.
        let v = json!([1, 2.5, true, "x", null, {"a": 1}]);
        let items = v.as_array().unwrap();
        assert!(matches!(json_scalar(&items[0]), Value::Int(1)));
        assert!(matches!(json_scalar(&items[1]), Value::Float(f) if f == 2.5));
        assert!(matches!(json_scalar(&items[2]), Value::Bool(true)));
        assert!(matches!(json_scalar(&items[3]), Value::Text(b"x")));
        assert!(matches!(json_scalar(&items[4]), Value::Null));
        assert!(matches!(json_scalar(&items[5]), Value::Json(_)));
    }

    #[test]
    fn a_whole_object_into_text_is_noticed_with_the_path_to_write() {
        let owner = json!({"id": "usr1", "email": "a@b", "name": "A"});
        let (_, a) = run(Value::Json(&owner), text(), Rules::default()).unwrap();
        assert!(a.whole_object);
        let hint = whole_object_hint(Value::Json(&owner));
        assert!(hint.contains("add path = \"email\""), "{hint}");
        assert!(
            hint.contains("its keys: email, id, name")
                || hint.contains("its keys: id, email, name"),
            "{hint}"
        );
        let files = json!([{"url": "u", "filename": "f"}]);
        assert!(whole_object_hint(Value::Json(&files)).contains("path = \"0.url\""));
        // Picking a field, or a list of plain values, is not noticed.
        let (_, a) = run(Value::Json(&owner), text(), rules("email")).unwrap();
        assert!(!a.whole_object);
        let (_, a) = run(Value::Json(&json!(["a"])), text(), Rules::default()).unwrap();
        assert!(!a.whole_object);
    }

    #[test]
    fn formula_errors_inside_lists_follow_on_error() {
        let null = |ty: PgType| {
            let r = Rules {
                on_error: OnError::Null,
                ..Rules::default()
            };
            (ty, r)
        };
        let lookup = json!([{"error": "#ERROR!"}]);
        let nan = json!({"specialValue": "NaN"});
        // Into a one-value column: a reject by default, NULL (counted) with on_error = "null".
        for v in [&lookup, &nan] {
            let e = run(Value::Json(v), PgType::Float8, Rules::default()).unwrap_err();
            assert_eq!(e.code, Code::FormulaError, "{}", e.reason);
            let (ty, r) = null(PgType::Float8);
            let (f, a) = run(Value::Json(v), ty, r).unwrap();
            assert_eq!((f, a.error_nulled), (None, true));
        }
        // Into jsonb: the error elements are refused, or written as null.
        let mixed = json!([1.5, {"error": "#DIV/0!"}, 3]);
        let e = run(Value::Json(&mixed), PgType::Jsonb, Rules::default()).unwrap_err();
        assert_eq!(e.code, Code::FormulaError);
        assert!(e.reason.starts_with("element 2: "), "{}", e.reason);
        let (ty, r) = null(PgType::Jsonb);
        let (f, a) = run(Value::Json(&mixed), ty, r).unwrap();
        assert_eq!(f.unwrap(), b"\x01[1.5,null,3]");
        assert!(a.error_nulled);
        // Into a list column: the same, per element.
        let e = run(
            Value::Json(&mixed),
            arr(PgType::Float8, 701),
            Rules::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, Code::FormulaError);
        let (ty, r) = null(arr(PgType::Float8, 701));
        let (f, a) = run(Value::Json(&mixed), ty, r).unwrap();
        assert!(a.error_nulled);
        let f = f.unwrap();
        assert_eq!(&f[4..8], &1i32.to_be_bytes(), "has nulls");
        // A path through an error: the error, per on_error.
        let files = json!([{"error": "#ERROR!"}]);
        let e = run(Value::Json(&files), text(), rules("0.url")).unwrap_err();
        assert_eq!(e.code, Code::FormulaError);
        // A list without errors is not counted.
        let fine = json!([1, 2]);
        let (ty, r) = null(PgType::Jsonb);
        let (_, a) = run(Value::Json(&fine), ty, r).unwrap();
        assert!(!a.error_nulled);
        // An ordinary object is not an error.
        assert!(!is_formula_error(&json!({"error": "x", "id": 1})));
    }

    #[test]
    fn invalid_json_text_follows_on_error() {
        let e = run(Value::Text(b"{oops"), PgType::Jsonb, Rules::default()).unwrap_err();
        assert!(e.reason.starts_with("not valid JSON"), "{}", e.reason);
        assert_eq!(e.code, Code::Convert);
        let null = Rules {
            on_error: OnError::Null,
            ..Rules::default()
        };
        let (f, a) = run(Value::Text(b"{oops"), PgType::Jsonb, null.clone()).unwrap();
        assert_eq!((f, a.error_nulled), (None, true));
        // ... and a default then applies.
        let with_default = Rules {
            default: Some("{}".into()),
            ..null.clone()
        };
        let (f, a) = run(Value::Text(b"{oops"), PgType::Json, with_default).unwrap();
        assert_eq!((f.unwrap(), a.error_nulled), (b"{}".to_vec(), true));
        // Valid JSON is not counted.
        let (f, a) = run(Value::Text(b"[1]"), PgType::Json, null).unwrap();
        assert_eq!((f.unwrap(), a.error_nulled), (b"[1]".to_vec(), false));
    }
}
