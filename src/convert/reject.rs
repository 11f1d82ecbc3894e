//! Why a value or a row cannot be loaded, in words: the `Reject` a conversion returns, the
//! shared wording for a value of the wrong kind (`wrong_type`, `type_name`), the short
//! printable form of a value that every message quotes (`describe`), and the rejected source
//! row as it is reported (`RejectRow`).
use serde::Serialize;

use super::text::float_text;
use crate::pg::PgType;
use crate::value::Value;

/// Why a value cannot be written: a sentence saying what is wrong and,
/// where there is one, what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Reject {
    pub reason: String,
    /// The kind of reject it makes its row.
    pub code: Code,
    /// The source holds this value in error (a formula error, text that is not JSON):
    /// `on_error = "null"` makes it NULL instead.
    pub in_error: bool,
}

impl Reject {
    pub fn new(reason: impl Into<String>) -> Self {
        Reject {
            reason: reason.into(),
            code: Code::Convert,
            in_error: false,
        }
    }

    /// A reject of another kind than `convert`.
    pub(crate) fn with_code(code: Code, reason: impl Into<String>) -> Self {
        Reject {
            code,
            ..Reject::new(reason)
        }
    }

    /// A value the source holds in error, which `on_error` decides about.
    pub(crate) fn in_error(mut self) -> Self {
        self.in_error = true;
        self
    }
}

/// One rejected (or skipped) source row.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RejectRow {
    /// The target table.
    pub table: String,
    /// The source table it was read from.
    pub source: String,
    pub legacy_id: String,
    pub column: String,
    pub value: String,
    /// What kind of reject it is, for tools: see [`Code`].
    pub code: Code,
    pub reason: String,
    /// The row's 1-based position in its source table (what the source scan numbers it).
    pub ordinal: u64,
    /// The source row itself, as JSON, when asked for (`--rejects-with-rows`).
    pub row: Option<String>,
}

/// The kind of a reject, a stable identifier a tool can group and filter on; the reason
/// says the rest in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Code {
    /// A value does not convert to its column's type (or a rule such as `required` or a
    /// value `map` refuses it).
    Convert,
    /// Several values (an Airtable link or list) where the column holds one.
    ManyValues,
    /// The source holds a formula error (Airtable).
    FormulaError,
    /// A NOT NULL reference with `on_missing = "skip"` is empty: skipped.
    EmptyReference,
    /// A reference to a legacy id that is not in the target (`on_missing = "error"`).
    DanglingReference,
    /// The same, with `on_missing = "skip"`: skipped.
    SkippedReference,
    /// An earlier source row has the same legacy id.
    DuplicateLegacyId,
    /// PostgreSQL refuses a value for its column: its type's text input, a domain's CHECK or
    /// NOT NULL, or the column's modifier (`bit(8)`).
    Refused,
    /// A reference to a parent row that this same run rejected.
    ParentRejected,
    /// Collides with another row on a unique key of the target (`on_duplicate = "keep_…"`).
    DuplicateKey,
}

impl Code {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Code::Convert => "convert",
            Code::ManyValues => "many_values",
            Code::FormulaError => "formula_error",
            Code::EmptyReference => "empty_reference",
            Code::DanglingReference => "dangling_reference",
            Code::SkippedReference => "skipped_reference",
            Code::DuplicateLegacyId => "duplicate_legacy_id",
            Code::Refused => "refused",
            Code::ParentRejected => "parent_rejected",
            Code::DuplicateKey => "duplicate_key",
        }
    }
}

/// A readable name of a column type for messages.
pub(crate) fn type_name(ty: &PgType) -> String {
    match ty {
        PgType::Bool => "boolean".into(),
        PgType::Int2 => "smallint".into(),
        PgType::Int4 => "integer".into(),
        PgType::Int8 => "bigint".into(),
        PgType::Float4 => "real".into(),
        PgType::Float8 => "double precision".into(),
        PgType::Numeric {
            precision: Some(p),
            scale,
        } => format!("numeric({p},{})", scale.unwrap_or(0)),
        PgType::Numeric { .. } => "numeric".into(),
        PgType::Text { max_chars: Some(n) } => format!("varchar({n})"),
        PgType::Text { max_chars: None } => "text".into(),
        PgType::Bytea => "bytea".into(),
        PgType::Uuid => "uuid".into(),
        PgType::Date => "date".into(),
        PgType::Time => "time".into(),
        PgType::Timestamp => "timestamp".into(),
        PgType::Timestamptz => "timestamptz".into(),
        PgType::Json => "json".into(),
        PgType::Jsonb => "jsonb".into(),
        PgType::Enum { .. } => "enum".into(),
        PgType::Array { elem, .. } => format!("{}[]", type_name(elem)),
        PgType::Input { name } => name.clone(),
    }
}

pub(crate) fn wrong_type(v: Value<'_>, ty: &PgType) -> Reject {
    let what = match v {
        Value::Blob(b) => format!("binary data ({} bytes)", b.len()),
        Value::Json(j) if j.is_array() => format!("a list {}", describe(v)),
        Value::Json(j) if j.is_object() => format!("an object {}", describe(v)),
        _ => describe(v),
    };
    Reject::new(format!("{what} cannot go into a {} column", type_name(ty)))
}

/// An `io::Write` that keeps only the first `limit` bytes, then fails.
struct Capped {
    buf: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.limit.saturating_sub(self.buf.len());
        if room == 0 {
            return Err(std::io::Error::other("full"));
        }
        let n = room.min(data.len());
        self.buf
            .extend_from_slice(data.get(..n).unwrap_or_default());
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const DESCRIBE_CHARS: usize = 80;

/// Up to 80 characters of `t` (lossy UTF-8, control characters escaped),
/// with an ellipsis if cut.
fn short_text(t: &[u8], quote: bool) -> String {
    let head = t.get(..DESCRIBE_CHARS * 4).unwrap_or(t);
    let s = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(DESCRIBE_CHARS + 8);
    if quote {
        out.push('\'');
    }
    let mut cut = head.len() < t.len();
    for (n, c) in s.chars().enumerate() {
        if n == DESCRIBE_CHARS {
            cut = true;
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if cut {
        out.push('…');
    }
    if quote {
        out.push('\'');
    }
    out
}

/// Short printable form of a value for error messages and reject files
/// (at most about 80 characters, with an ellipsis when cut).
pub fn describe(value: Value<'_>) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(n) => n.to_string(),
        Value::Float(f) => {
            let mut buf = Vec::new();
            float_text(f, &mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        }
        Value::Text(t) => short_text(t, true),
        Value::Blob(b) => {
            let mut s = format!("<{} bytes: ", b.len());
            for byte in b.iter().take(16) {
                s.push_str(&format!("{byte:02x}"));
            }
            if b.len() > 16 {
                s.push('…');
            }
            s.push('>');
            s
        }
        Value::Json(serde_json::Value::String(s)) => short_text(s.as_bytes(), true),
        Value::Json(j) => {
            let mut w = Capped {
                buf: Vec::new(),
                limit: DESCRIBE_CHARS * 4 + 1,
            };
            let _ = serde_json::to_writer(&mut w, j);
            short_text(&w.buf, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::t;

    #[test]
    fn describe_values() {
        assert_eq!(describe(Value::Null), "NULL");
        assert_eq!(describe(Value::Int(-3)), "-3");
        assert_eq!(describe(Value::Float(2.5)), "2.5");
        assert_eq!(describe(Value::Bool(true)), "true");
        assert_eq!(describe(t("a\nb")), "'a\\nb'");
        assert_eq!(describe(Value::Text(b"a\xffb")), "'a\u{fffd}b'");
        let long = "é".repeat(200);
        let d = describe(t(&long));
        assert_eq!(d.chars().count(), 83);
        assert!(d.ends_with("…'"));
        assert_eq!(describe(t(&"x".repeat(80))).chars().count(), 82);
        assert_eq!(describe(Value::Blob(&[1, 2, 255])), "<3 bytes: 0102ff>");
        assert!(describe(Value::Blob(&[0; 100])).ends_with("…>"));
        let j = serde_json::json!({"a": "x".repeat(1000)});
        let d = describe(Value::Json(&j));
        assert!(
            d.starts_with("{\"a\":\"xxx") && d.ends_with('…') && d.chars().count() == 81,
            "{d}"
        );
    }
}
