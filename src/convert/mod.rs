//! The value converter: turns one source value into one binary-COPY field for
//! one target column. It shapes structured values (`path`, `on_error`, `many`), applies the
//! mapping's rules (trim, lowercase, value map, empty-as-NULL, default, required) and then
//! the target type's rules,
//! and when a value cannot go in it says why in a sentence (a `Reject`) so the
//! row can be set aside instead of failing the whole load. It runs for every
//! value of a backfill, so the common paths allocate nothing: scratch buffers
//! live in the `Converter` and are reused.
//!
//! Where things are: `rules` is the vocabulary (`Rules`, `ColumnPlan`); `shape` makes a
//! structured value fit its column; `prepare` applies the rules to a value; `field` frames a value as one COPY field; `write_value` below picks
//! the type's encoder: `scalar` (boolean, integers, floats), `numeric`, `text` (text,
//! varchar, enum, and the text of every type PostgreSQL's own input parses, `PgType::Input`),
//! `bytea` (bytea, uuid), `json`, `time` (date, time, timestamps) and `array`; `reject`
//! holds the `Reject` and the wording shared by all of them.
mod array;
mod bytea;
mod field;
mod generated;
mod json;
mod numeric;
mod prepare;
pub(crate) mod reject;
mod rules;
mod scalar;
mod shape;
mod text;
mod time;

#[cfg(test)]
mod testing;

use bytes::{BufMut, BytesMut};

pub(crate) use generated::generated_id;
pub(crate) use reject::{Reject, describe};
pub(crate) use rules::{ColumnPlan, Epoch, GenerateId, JsonMode, Many, OnError, Rules, Step};
pub(crate) use shape::{json_scalar, whole_object_hint};

use crate::pg::PgType;
use crate::value::Value;
use prepare::encode_column;

/// Buffers for the rules pipeline (one set per nesting level).
#[derive(Default)]
struct Scratch {
    /// Lowercased text.
    lower: Vec<u8>,
    /// Text form of an Int/Float/Bool for a map lookup.
    key: Vec<u8>,
}

/// Buffers for typed conversion.
#[derive(Default)]
struct Work {
    /// Text forms, JSON serialisations.
    buf: Vec<u8>,
    /// Decimal digits for numeric.
    digits: Vec<u8>,
    /// What the mapping's policies changed in the value being encoded.
    adjusted: Adjusted,
}

/// What the converter changed in a value because the mapping said so, for the counts in the
/// summary and the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Adjusted {
    /// Cut to fit (`truncate = true`): text to varchar(n), a date-time to its date.
    pub(crate) truncated: bool,
    /// A value the source holds in error made NULL (`on_error = "null"`).
    pub(crate) error_nulled: bool,
    /// A whole JSON object (or a list of them) went into a text column as its JSON text:
    /// probably meant to be one of its fields (`path`). Not a change, but worth a warning.
    pub(crate) whole_object: bool,
}

/// How many values of one column the mapping's policies changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct ColumnAdjusted {
    pub(crate) column: String,
    /// Values cut to fit (`truncate = true`).
    pub(crate) truncated: u64,
    /// Values the source holds in error stored as NULL (`on_error = "null"`).
    pub(crate) errors_nulled: u64,
    /// Whole JSON objects stored into a text column as their JSON text (no `path`).
    pub(crate) whole_objects: u64,
    /// The first such object, and how a `path` would pick one of its fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) example: Option<String>,
}

impl ColumnAdjusted {
    pub(crate) fn add(&mut self, a: Adjusted) {
        self.truncated += u64::from(a.truncated);
        self.errors_nulled += u64::from(a.error_nulled);
        self.whole_objects += u64::from(a.whole_object);
    }

    /// Whether any value of the column was changed or is worth a word.
    pub(crate) fn any(&self) -> bool {
        self.truncated + self.errors_nulled + self.whole_objects > 0
    }
}

/// Encodes values into binary-COPY fields. Holds scratch buffers, so keep
/// one per worker and reuse it for every value.
#[derive(Default)]
pub struct Converter {
    top: Scratch,
    elem: Scratch,
    work: Work,
    owned: shape::Owned,
}

impl Converter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append one binary-COPY field for `value` to `out`: i32 big-endian byte
    /// length then the value in the type's binary send format, or i32 -1 for
    /// NULL. On Err, `out` is left exactly as it was on entry.
    pub fn encode(
        &mut self,
        value: Value<'_>,
        col: &ColumnPlan,
        out: &mut BytesMut,
    ) -> Result<(), Reject> {
        let start = out.len();
        self.work.adjusted = Adjusted::default();
        let result = encode_column(
            value,
            col,
            &mut self.top,
            &mut self.elem,
            &mut self.work,
            &mut self.owned,
            out,
        );
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// What the mapping's policies changed in the value last encoded.
    pub(crate) fn adjusted(&self) -> Adjusted {
        self.work.adjusted
    }
}

/// The column type's encoder for a prepared, non-NULL value: appends the value in the
/// type's binary send format (`field` writes the length in front of it).
fn write_value(
    v: Value<'_>,
    ty: &PgType,
    rules: &Rules,
    elem: &mut Scratch,
    work: &mut Work,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    match ty {
        PgType::Bool => out.put_u8(u8::from(scalar::to_bool(v)?)),
        PgType::Int2 => {
            out.put_i16(scalar::to_int(v, ty, i16::MIN.into(), i16::MAX.into())? as i16)
        }
        PgType::Int4 => {
            out.put_i32(scalar::to_int(v, ty, i32::MIN.into(), i32::MAX.into())? as i32)
        }
        PgType::Int8 => out.put_i64(scalar::to_int(v, ty, i64::MIN, i64::MAX)?),
        PgType::Float4 => out.put_f32(scalar::to_f32(v, ty)?),
        PgType::Float8 => out.put_f64(scalar::to_f64(v, ty)?),
        PgType::Numeric { precision, scale } => {
            numeric::write_numeric(v, ty, *precision, *scale, work, out)?
        }
        PgType::Text { max_chars } => text::write_text(v, *max_chars, rules.truncate, work, out)?,
        PgType::Bytea => bytea::write_bytea(v, ty, out)?,
        PgType::Uuid => out.extend_from_slice(&bytea::to_uuid(v, ty)?),
        PgType::Date => out.put_i32(time::to_date(v, rules, &mut work.adjusted)?),
        PgType::Time => out.put_i64(time::to_time(v)?),
        PgType::Timestamp => out.put_i64(time::to_timestamp(v, rules, false)?),
        PgType::Timestamptz => out.put_i64(time::to_timestamp(v, rules, true)?),
        PgType::Json => json::write_json(v, rules, false, work, out)?,
        PgType::Jsonb => {
            out.put_u8(1);
            json::write_json(v, rules, true, work, out)?;
        }
        PgType::Enum { labels } => text::write_enum(v, labels, out)?,
        PgType::Array { elem: et, elem_oid } => {
            array::write_array(v, et, *elem_oid, rules, elem, work, out)?
        }
        // Staged as text: PostgreSQL's own input function parses it where the target is
        // written, and a value it refuses makes its row a reject then.
        PgType::Input { .. } => text::write_text(v, None, false, work, out)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{
        NULL_FIELD, arr, col, col_r, enc, enc_with, err, num, ok, t, text,
    };

    #[test]
    fn text_input_types() {
        let inet = || PgType::Input {
            name: "inet".into(),
        };
        // The text as it is, for PostgreSQL to parse; numbers and booleans as their text.
        assert_eq!(ok(t("10.0.0.1/8"), inet()), b"10.0.0.1/8");
        assert_eq!(ok(Value::Int(42), inet()), b"42");
        assert_eq!(ok(Value::Bool(true), inet()), b"true");
        let j = serde_json::json!({"a": 1});
        assert_eq!(ok(Value::Json(&j), inet()), br#"{"a":1}"#);
        // What PostgreSQL text cannot hold is rejected here, naming why.
        assert!(err(t("a\0b"), inet()).contains("NUL"));
        assert!(err(Value::Text(b"\xff"), inet()).contains("invalid UTF-8"));
        // '' and NULL are NULL, as for every type that is not text.
        assert_eq!(enc(t(""), &col(inet())).unwrap(), NULL_FIELD);
        assert_eq!(enc(Value::Null, &col(inet())).unwrap(), NULL_FIELD);
        // An array of them is text[]: one text element per item.
        let f = ok(t(r#"["10.0.0.1", null]"#), arr(inet(), 25));
        assert_eq!(&f[8..12], &25u32.to_be_bytes());
        assert!(f.ends_with(b"\x00\x00\x00\x0810.0.0.1\xff\xff\xff\xff"));
    }

    /// Tiny deterministic generator (Knuth's MMIX LCG).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    fn all_types() -> Vec<PgType> {
        vec![
            PgType::Bool,
            PgType::Int2,
            PgType::Int4,
            PgType::Int8,
            PgType::Float4,
            PgType::Float8,
            num(None, None),
            num(Some(6), Some(2)),
            num(Some(3), Some(5)),
            num(Some(1000), Some(1000)),
            text(),
            PgType::Text { max_chars: Some(3) },
            PgType::Bytea,
            PgType::Uuid,
            PgType::Date,
            PgType::Time,
            PgType::Timestamp,
            PgType::Timestamptz,
            PgType::Json,
            PgType::Jsonb,
            PgType::Enum {
                labels: vec!["a".into(), "1".into()],
            },
            arr(PgType::Int4, 23),
            arr(text(), 25),
            arr(PgType::Timestamptz, 1184),
            arr(num(Some(4), Some(1)), 1700),
            PgType::Input { name: "x".into() },
            arr(PgType::Input { name: "x".into() }, 25),
        ]
    }

    fn rule_sets() -> Vec<Rules> {
        vec![
            Rules::default(),
            Rules {
                trim: true,
                lowercase: true,
                empty_as_null: true,
                map: Some(
                    [
                        ("1".to_string(), "".to_string()),
                        ("ab".into(), "AB".into()),
                    ]
                    .into_iter()
                    .collect(),
                ),
                epoch: Some(Epoch::Seconds),
                timezone: chrono_tz::America::New_York,
                json: JsonMode::String,
                split: Some(",".into()),
                ..Rules::default()
            },
            Rules {
                epoch: Some(Epoch::Millis),
                timezone: chrono_tz::Australia::Lord_Howe,
                split: Some("".into()),
                default: Some("1".into()),
                ..Rules::default()
            },
        ]
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Lcg(0x5eed);
        let mut cv = Converter::new();
        // alphabet biased towards characters that matter to the parsers
        let alphabet: &[u8] = b"0123456789-+.:eETZ ,[]{}\"\\uNnaIiftyx\x00\xff\xc3\xa9\n";
        let cols: Vec<ColumnPlan> = all_types()
            .into_iter()
            .flat_map(|ty| rule_sets().into_iter().map(move |r| col_r(ty.clone(), r)))
            .collect();
        let mut buf = Vec::new();
        let mut accepted = 0usize;
        for i in 0..40_000 {
            buf.clear();
            let len = (rng.next() % 40) as usize;
            for _ in 0..len {
                let r = rng.next();
                if i % 3 == 0 {
                    buf.push(r as u8);
                } else {
                    buf.push(alphabet[(r as usize) % alphabet.len()]);
                }
            }
            let c = &cols[(rng.next() as usize) % cols.len()];
            if enc_with(&mut cv, Value::Text(&buf), c).is_ok() {
                accepted += 1;
            }
        }
        assert!(
            accepted > 1000,
            "some random values are accepted: {accepted}"
        );
        // extreme scalars into every column
        let json = serde_json::json!([i64::MIN, u64::MAX, 1e308, "x", null, [], {}]);
        let specials = [
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Float(f64::MAX),
            Value::Float(f64::MIN_POSITIVE),
            Value::Float(f64::NAN),
            Value::Float(f64::NEG_INFINITY),
            Value::Float(-0.0),
            Value::Bool(true),
            Value::Blob(b"\x00\xff"),
            Value::Blob(&[7; 16]),
            Value::Json(&json),
            Value::Null,
        ];
        for c in &cols {
            for v in specials {
                let _ = enc_with(&mut cv, v, c);
            }
            if let serde_json::Value::Array(items) = &json {
                for j in items {
                    let _ = enc_with(&mut cv, Value::Json(j), c);
                }
            }
        }
    }
}
