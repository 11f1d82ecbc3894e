//! The cell encoding of a snapshot CSV file: how one source [`Value`] becomes the text of one
//! CSV cell and comes back as the very same variant.
//!
//! Plain CSV cannot tell NULL from '' nor 12 from 12.0 from '12', yet SQLite columns mix all
//! of them and the converter treats each differently. So every column has a *type* in the
//! manifest (the variant most of its non-NULL values have) and a cell is either
//!
//! - empty: NULL, whatever the column's type;
//! - plain: a value of the column's type in its natural text form (`42`, `0.1`, `true`,
//!   `hello`, hex for a blob, JSON text for JSON) — what a spreadsheet shows;
//! - tagged: `\` + a tag letter + `:` + payload, for a value of another variant than the
//!   column's, and for the two texts a plain cell cannot carry in a text column: the empty
//!   string and text starting with a backslash.
//!
//! A plain cell never starts with a backslash, so the first byte alone says which form a
//! cell is in. README.md, "Snapshots", documents this for people.

use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// A column's type in the manifest: the variant its plain cells hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// No non-NULL value seen: every cell is empty (or tagged).
    Null,
    Text,
    Integer,
    Real,
    Boolean,
    Blob,
    Json,
}

impl ColumnType {
    /// The type whose plain cells hold `v`.
    pub fn of(v: &Value<'_>) -> ColumnType {
        match v {
            Value::Null => ColumnType::Null,
            Value::Bool(_) => ColumnType::Boolean,
            Value::Int(_) => ColumnType::Integer,
            Value::Float(_) => ColumnType::Real,
            Value::Text(_) => ColumnType::Text,
            Value::Blob(_) => ColumnType::Blob,
            Value::Json(_) => ColumnType::Json,
        }
    }
}

/// A decoded cell, borrowing plain text from the CSV record it came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(&'a [u8]),
    /// Text that was not valid UTF-8, decoded from hex.
    TextBytes(Vec<u8>),
    Blob(Vec<u8>),
    Json(serde_json::Value),
}

impl Cell<'_> {
    pub fn value(&self) -> Value<'_> {
        match self {
            Cell::Null => Value::Null,
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Int(i) => Value::Int(*i),
            Cell::Float(f) => Value::Float(*f),
            Cell::Text(t) => Value::Text(t),
            Cell::TextBytes(t) => Value::Text(t),
            Cell::Blob(b) => Value::Blob(b),
            Cell::Json(j) => Value::Json(j),
        }
    }
}

/// Write the cell for `v` in a column of type `col` into `out` (cleared first). The result
/// is always valid UTF-8.
pub fn encode(v: &Value<'_>, col: ColumnType, out: &mut String) {
    out.clear();
    let own = ColumnType::of(v) == col;
    match v {
        Value::Null => {}
        Value::Bool(b) => {
            if !own {
                out.push_str("\\b:");
            }
            out.push_str(if *b { "true" } else { "false" });
        }
        Value::Int(i) => {
            if !own {
                out.push_str("\\i:");
            }
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            if !own {
                out.push_str("\\r:");
            }
            // Debug is Rust's shortest representation that parses back to the same bits
            // (and always shows a `.` or exponent: 12.0, 1e300, NaN, inf).
            let _ = write!(out, "{f:?}");
        }
        Value::Text(t) => match std::str::from_utf8(t) {
            Ok(s) if own && !s.is_empty() && !s.starts_with('\\') => out.push_str(s),
            Ok(s) => {
                out.push_str("\\s:");
                out.push_str(s);
            }
            Err(_) => {
                out.push_str("\\h:");
                hex(t, out);
            }
        },
        Value::Blob(b) => {
            if !own || b.is_empty() {
                out.push_str("\\x:");
            }
            hex(b, out);
        }
        Value::Json(j) => {
            if !own {
                out.push_str("\\j:");
            }
            // Serializing a serde_json::Value cannot fail.
            let _ = write!(out, "{j}");
        }
    }
}

fn hex(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

fn unhex(s: &[u8]) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    let digit = |c: u8| -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("`{}` is not a hex digit", c.escape_ascii())),
        }
    };
    s.chunks_exact(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Read one cell of a column of type `col`. The error says what is wrong with the cell.
pub fn decode(cell: &[u8], col: ColumnType) -> Result<Cell<'_>, String> {
    if cell.is_empty() {
        return Ok(Cell::Null);
    }
    if cell[0] == b'\\' {
        let (tag, payload) = match cell {
            [_, tag, b':', rest @ ..] => (*tag, rest),
            _ => {
                return Err(
                    "starts with `\\` but is not a tagged cell (`\\s:`, `\\i:` …)".to_string(),
                );
            }
        };
        let ty = match tag {
            b's' => return Ok(Cell::Text(payload)),
            b'h' => return unhex(payload).map(Cell::TextBytes),
            b'x' => return unhex(payload).map(Cell::Blob),
            b'i' => ColumnType::Integer,
            b'r' => ColumnType::Real,
            b'b' => ColumnType::Boolean,
            b'j' => ColumnType::Json,
            other => {
                return Err(format!("unknown tag `\\{}:`", other.escape_ascii()));
            }
        };
        return plain(payload, ty);
    }
    plain(cell, col)
}

fn plain(cell: &[u8], col: ColumnType) -> Result<Cell<'_>, String> {
    let text = || std::str::from_utf8(cell).map_err(|_| format!("{col:?} cell is not valid UTF-8"));
    match col {
        ColumnType::Text => Ok(Cell::Text(cell)),
        ColumnType::Null => Err("a value in a column of NULLs must be tagged".into()),
        ColumnType::Integer => text()?
            .parse()
            .map(Cell::Int)
            .map_err(|_| format!("`{}` is not an integer", cell.escape_ascii())),
        ColumnType::Real => text()?
            .parse()
            .map(Cell::Float)
            .map_err(|_| format!("`{}` is not a real number", cell.escape_ascii())),
        ColumnType::Boolean => match cell {
            b"true" => Ok(Cell::Bool(true)),
            b"false" => Ok(Cell::Bool(false)),
            _ => Err(format!(
                "`{}` is not a boolean (true or false)",
                cell.escape_ascii()
            )),
        },
        ColumnType::Blob => unhex(cell).map(Cell::Blob),
        ColumnType::Json => serde_json::from_slice(cell)
            .map(Cell::Json)
            .map_err(|e| format!("not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(v: Value<'_>, col: ColumnType) -> String {
        let mut s = String::new();
        encode(&v, col, &mut s);
        let back = decode(s.as_bytes(), col).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        let same = match (v, back.value()) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Text(a), Value::Text(b)) => a == b,
            (Value::Blob(a), Value::Blob(b)) => a == b,
            (Value::Json(a), Value::Json(b)) => a == b,
            _ => false,
        };
        assert!(same, "{v:?} in a {col:?} column became {s:?} -> {back:?}");
        s
    }

    #[test]
    fn every_variant_round_trips_in_every_column_type() {
        let json = serde_json::json!({"a": [1, 2.5, "x", null, true], "b": {"c": "é"}});
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(0),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Float(12.0),
            Value::Float(0.1 + 0.2),
            Value::Float(-0.0),
            Value::Float(1e300),
            Value::Float(5e-324),
            Value::Float(f64::INFINITY),
            Value::Text(b""),
            Value::Text(b"12"),
            Value::Text(b"\\N"),
            Value::Text(b"\\s:x"),
            Value::Text(b" a, \"b\"\r\n\tc "),
            Value::Text(b"\xff\xfe bad"),
            Value::Text("é 🎉".as_bytes()),
            Value::Blob(b""),
            Value::Blob(b"\x00\x01\xff"),
            Value::Json(&json),
            Value::Json(&serde_json::Value::Null),
        ];
        for col in [
            ColumnType::Null,
            ColumnType::Text,
            ColumnType::Integer,
            ColumnType::Real,
            ColumnType::Boolean,
            ColumnType::Blob,
            ColumnType::Json,
        ] {
            for v in values {
                if col == ColumnType::Null && !matches!(v, Value::Null) {
                    // A column is typed by its non-NULL values, so a NULL-typed column
                    // never holds one; if it did, the value is tagged and still reads back.
                    let mut s = String::new();
                    encode(&v, col, &mut s);
                    assert!(s.starts_with('\\'), "{v:?} -> {s:?}");
                }
                round(v, col);
            }
        }
    }

    #[test]
    fn plain_where_the_type_matches_tagged_where_not() {
        assert_eq!(round(Value::Int(12), ColumnType::Integer), "12");
        assert_eq!(round(Value::Float(12.0), ColumnType::Integer), "\\r:12.0");
        assert_eq!(round(Value::Text(b"12"), ColumnType::Integer), "\\s:12");
        assert_eq!(round(Value::Text(b"12"), ColumnType::Text), "12");
        assert_eq!(round(Value::Text(b""), ColumnType::Text), "\\s:");
        assert_eq!(round(Value::Null, ColumnType::Text), "");
        assert_eq!(round(Value::Text(b"\\N"), ColumnType::Text), "\\s:\\N");
        assert_eq!(round(Value::Blob(b"\x01\xab"), ColumnType::Blob), "01ab");
        assert_eq!(round(Value::Bool(true), ColumnType::Boolean), "true");
        assert_eq!(round(Value::Float(0.1), ColumnType::Real), "0.1");
    }

    #[test]
    fn hostile_cells_cost_what_they_weigh() {
        // Nesting a million deep: refused at serde_json's recursion limit (128), never a
        // stack overflow, whether plain in a JSON column or tagged in another.
        let deep = "[".repeat(1_000_000);
        for (cell, col) in [
            (deep.clone(), ColumnType::Json),
            (format!("\\j:{deep}"), ColumnType::Text),
            (r#"{"a":"#.repeat(200_000), ColumnType::Json),
        ] {
            let e = decode(cell.as_bytes(), col).unwrap_err();
            assert!(e.contains("recursion limit"), "{e}");
        }
        // Nothing in a cell claims a size: what decodes is at most what was read (hex halves).
        let hex = "ab".repeat(1 << 20);
        match decode(hex.as_bytes(), ColumnType::Blob).unwrap() {
            Cell::Blob(b) => assert_eq!(b.len(), 1 << 20),
            other => panic!("{other:?}"),
        }
        let digits = "9".repeat(1 << 20);
        assert!(decode(digits.as_bytes(), ColumnType::Integer).is_err());
        assert!(matches!(
            decode(digits.as_bytes(), ColumnType::Real),
            Ok(Cell::Float(f)) if f.is_infinite()
        ));
    }

    #[test]
    fn bad_cells_are_errors_not_panics() {
        for (cell, col) in [
            (&b"\\"[..], ColumnType::Text),
            (b"\\q:1", ColumnType::Text),
            (b"\\i:x", ColumnType::Text),
            (b"\\x:abc", ColumnType::Text),
            (b"\\h:zz", ColumnType::Text),
            (b"1.5", ColumnType::Integer),
            (b"99999999999999999999", ColumnType::Integer),
            (b"yes", ColumnType::Boolean),
            (b"{", ColumnType::Json),
            (b"\xff", ColumnType::Real),
            (b"x", ColumnType::Null),
            (b"\\\xff:", ColumnType::Text),
        ] {
            assert!(decode(cell, col).is_err(), "{cell:?} in {col:?}");
        }
    }
}
