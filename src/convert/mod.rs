//! The value converter: turns one source value into one binary-COPY field for
//! one target column. It applies the mapping's rules (trim, lowercase, value
//! map, empty-as-NULL, default, required) and then the target type's rules,
//! and when a value cannot go in it says why in a sentence (a `Reject`) so the
//! row can be set aside instead of failing the whole load. It runs for every
//! value of a backfill, so the common paths allocate nothing: scratch buffers
//! live in the `Converter` and are reused.
pub(crate) mod numeric;
pub(crate) mod reject;
pub(crate) mod time;

use std::collections::HashMap;
use std::io::Write as _;

use bytes::{BufMut, BytesMut};
use chrono_tz::Tz;

use crate::pg::PgType;
use crate::value::Value;

/// How integers (and all-digit text) in date/time columns count time since 1970-01-01 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epoch {
    Seconds,
    Millis,
}

/// What text going into a json/jsonb column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonMode {
    /// The text holds JSON; it is validated and written as is.
    Parse,
    /// The text is a plain string; it becomes a JSON string.
    String,
}

/// Per-column conversion rules from the mapping file.
#[derive(Debug, Clone)]
pub struct Rules {
    pub trim: bool,
    pub lowercase: bool,
    /// Value map (e.g. for enums), keyed by the value's text form after
    /// trim/lowercase. For array columns it applies to each element.
    pub map: Option<HashMap<String, String>>,
    /// '' becomes NULL also for text targets (non-text targets always treat '' as NULL).
    pub empty_as_null: bool,
    /// Used when the value is NULL after the steps above; converted like source text.
    pub default: Option<String>,
    /// Still NULL after `default` -> reject.
    pub required: bool,
    /// Integers (and all-digit text) into date/timestamp(tz) are epoch times.
    pub epoch: Option<Epoch>,
    /// Zone of naive date-times (into timestamptz) and of timestamp/date results.
    pub timezone: Tz,
    pub json: JsonMode,
    /// Text into an array column is split on this (else it must be a JSON array).
    pub split: Option<String>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            trim: false,
            lowercase: false,
            map: None,
            empty_as_null: false,
            default: None,
            required: false,
            epoch: None,
            timezone: Tz::UTC,
            json: JsonMode::Parse,
            split: None,
        }
    }
}

/// One target column: its name, type, nullability and the mapping's rules.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    pub ty: PgType,
    pub not_null: bool,
    pub rules: Rules,
}

/// Why a value cannot be written: a sentence saying what is wrong and,
/// where there is one, what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Reject {
    pub reason: String,
}

impl Reject {
    pub fn new(reason: impl Into<String>) -> Self {
        Reject {
            reason: reason.into(),
        }
    }
}

/// PostgreSQL cannot hold a field larger than this (MaxAllocSize, 1 GB - 1).
const MAX_FIELD_BYTES: usize = 0x3fff_ffff;

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
}

/// Encodes values into binary-COPY fields. Holds scratch buffers, so keep
/// one per worker and reuse it for every value.
#[derive(Default)]
pub struct Converter {
    top: Scratch,
    elem: Scratch,
    work: Work,
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
        let result = encode_column(
            value,
            col,
            &mut self.top,
            &mut self.elem,
            &mut self.work,
            out,
        );
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

fn encode_column(
    value: Value<'_>,
    col: &ColumnPlan,
    top: &mut Scratch,
    elem: &mut Scratch,
    work: &mut Work,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    let rules = &col.rules;
    let ty = &col.ty;
    // For arrays the value map applies to each element, not to the whole text.
    let use_map = !matches!(ty, PgType::Array { .. });
    let v = prepare(value, rules, ty, use_map, top);
    if !matches!(v, Value::Null) {
        return write_field(v, ty, rules, elem, work, out);
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
fn prepare<'s>(
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
fn trim_text(t: &[u8]) -> &[u8] {
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

/// Text form of a scalar: integers in decimal, floats shortest round-trip
/// (PostgreSQL spellings for NaN/Infinity), booleans true/false.
fn text_form(v: Value<'_>, buf: &mut Vec<u8>) {
    match v {
        Value::Int(n) => {
            let _ = write!(buf, "{n}");
        }
        Value::Float(f) => float_text(f, buf),
        Value::Bool(b) => buf.extend_from_slice(if b { b"true" } else { b"false" }),
        _ => {}
    }
}

fn float_text(f: f64, buf: &mut Vec<u8>) {
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

/// Write length prefix + value; the caller truncates `out` on error.
fn write_field(
    v: Value<'_>,
    ty: &PgType,
    rules: &Rules,
    elem: &mut Scratch,
    work: &mut Work,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    let pos = out.len();
    out.put_i32(0);
    write_value(v, ty, rules, elem, work, out)?;
    let len = out.len() - pos - 4;
    if len > MAX_FIELD_BYTES {
        return Err(Reject::new(format!(
            "value is {len} bytes; PostgreSQL cannot store a field larger than 1 GB"
        )));
    }
    if let Some(slot) = out.get_mut(pos..pos + 4) {
        slot.copy_from_slice(&(len as i32).to_be_bytes());
    }
    Ok(())
}

/// A readable name of a column type for messages.
pub fn type_name(ty: &PgType) -> String {
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
        PgType::Other { name } => name.clone(),
    }
}

fn wrong_type(v: Value<'_>, ty: &PgType) -> Reject {
    let what = match v {
        Value::Blob(b) => format!("binary data ({} bytes)", b.len()),
        Value::Json(j) if j.is_array() => format!("a list {}", describe(v)),
        Value::Json(j) if j.is_object() => format!("an object {}", describe(v)),
        _ => describe(v),
    };
    Reject::new(format!("{what} cannot go into a {} column", type_name(ty)))
}

fn write_value(
    v: Value<'_>,
    ty: &PgType,
    rules: &Rules,
    elem: &mut Scratch,
    work: &mut Work,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    match ty {
        PgType::Bool => out.put_u8(u8::from(to_bool(v)?)),
        PgType::Int2 => out.put_i16(to_int(v, ty, i16::MIN.into(), i16::MAX.into())? as i16),
        PgType::Int4 => out.put_i32(to_int(v, ty, i32::MIN.into(), i32::MAX.into())? as i32),
        PgType::Int8 => out.put_i64(to_int(v, ty, i64::MIN, i64::MAX)?),
        PgType::Float4 => out.put_f32(to_f32(v, ty)?),
        PgType::Float8 => out.put_f64(to_f64(v, ty)?),
        PgType::Numeric { precision, scale } => {
            write_numeric(v, ty, *precision, *scale, work, out)?
        }
        PgType::Text { max_chars } => write_text(v, *max_chars, work, out)?,
        PgType::Bytea => match v {
            Value::Blob(b) | Value::Text(b) => out.extend_from_slice(b),
            _ => return Err(wrong_type(v, ty)),
        },
        PgType::Uuid => out.extend_from_slice(&to_uuid(v, ty)?),
        PgType::Date => out.put_i32(time::to_date(v, rules)?),
        PgType::Time => out.put_i64(time::to_time(v)?),
        PgType::Timestamp => out.put_i64(time::to_timestamp(v, rules, false)?),
        PgType::Timestamptz => out.put_i64(time::to_timestamp(v, rules, true)?),
        PgType::Json => write_json(v, rules, false, work, out)?,
        PgType::Jsonb => {
            out.put_u8(1);
            write_json(v, rules, true, work, out)?;
        }
        PgType::Enum { labels } => match v {
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
        },
        PgType::Array { elem: et, elem_oid } => {
            write_array(v, et, *elem_oid, rules, elem, work, out)?
        }
        PgType::Other { name } => {
            return Err(Reject::new(format!(
                "cutover cannot write columns of type {name} yet"
            )));
        }
    }
    Ok(())
}

fn to_bool(v: Value<'_>) -> Result<bool, Reject> {
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

fn to_int(v: Value<'_>, ty: &PgType, min: i64, max: i64) -> Result<i64, Reject> {
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

fn to_f64(v: Value<'_>, ty: &PgType) -> Result<f64, Reject> {
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

fn to_f32(v: Value<'_>, ty: &PgType) -> Result<f32, Reject> {
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

fn write_numeric(
    v: Value<'_>,
    ty: &PgType,
    precision: Option<u32>,
    scale: Option<u32>,
    work: &mut Work,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    let not_a_number = || Reject::new(format!("{} is not a number", describe(v)));
    let d = match v {
        Value::Int(n) => numeric::from_i64(n, &mut work.digits),
        Value::Float(f) => numeric::from_f64(f, &mut work.buf, &mut work.digits),
        Value::Text(t) => numeric::parse(t, &mut work.digits).ok_or_else(not_a_number)?,
        Value::Json(serde_json::Value::Number(n)) => {
            work.buf.clear();
            let _ = write!(work.buf, "{n}");
            numeric::parse(&work.buf, &mut work.digits).ok_or_else(not_a_number)?
        }
        Value::Bool(_) => {
            return Err(Reject::new(format!(
                "boolean {} in a numeric column: map it with `map` (e.g. true = \"1\")",
                describe(v)
            )));
        }
        _ => return Err(wrong_type(v, ty)),
    };
    numeric::encode(d, &mut work.digits, precision, scale, out).map_err(|e| match e {
        numeric::NumericError::Overflow => Reject::new(format!(
            "numeric field overflow: {} does not fit {}",
            describe(v),
            type_name(ty)
        )),
        numeric::NumericError::Infinite => Reject::new(format!(
            "numeric field overflow: {} is infinite and does not fit {}",
            describe(v),
            type_name(ty)
        )),
        numeric::NumericError::OutOfRange => Reject::new(format!(
            "{} is out of range for PostgreSQL numeric (at most 131072 digits before and 16383 after the point)",
            describe(v)
        )),
    })
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
/// characters that are all spaces are cut off silently.
fn put_text(t: &[u8], max_chars: Option<usize>, out: &mut BytesMut) -> Result<(), Reject> {
    let s = check_text(t)?;
    if let Some(max) = max_chars
        && s.len() > max
    {
        let count = s.chars().count();
        if count > max {
            let cut = s.char_indices().nth(max).map_or(s.len(), |(i, _)| i);
            match (s.get(..cut), s.get(cut..)) {
                (Some(head), Some(tail)) if tail.bytes().all(|b| b == b' ') => {
                    out.extend_from_slice(head.as_bytes());
                    return Ok(());
                }
                _ => {
                    return Err(Reject::new(format!(
                        "{count} characters, column holds at most {max}: shorten the value or widen the column"
                    )));
                }
            }
        }
    }
    out.extend_from_slice(t);
    Ok(())
}

fn write_text(
    v: Value<'_>,
    max_chars: Option<usize>,
    work: &mut Work,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    match v {
        Value::Text(t) | Value::Blob(t) => put_text(t, max_chars, out),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
            work.buf.clear();
            text_form(v, &mut work.buf);
            put_text(&work.buf, max_chars, out)
        }
        Value::Json(serde_json::Value::String(s)) => put_text(s.as_bytes(), max_chars, out),
        Value::Json(j) => {
            work.buf.clear();
            serde_json::to_writer(&mut work.buf, j)
                .map_err(|e| Reject::new(format!("cannot serialise JSON value: {e}")))?;
            put_text(&work.buf, max_chars, out)
        }
        Value::Null => Err(Reject::new("NULL reached a text conversion")),
    }
}

/// True if JSON text contains the escape \u0000, which jsonb rejects.
fn has_nul_escape(json: &[u8]) -> bool {
    let mut from = 0;
    while let Some(rest) = json.get(from..) {
        let Some(p) = rest
            .windows(6)
            .position(|w| w.eq_ignore_ascii_case(b"\\u0000"))
        else {
            return false;
        };
        let at = from + p;
        // The backslash starts an escape only if preceded by an even run of backslashes.
        let run = json
            .get(..at)
            .unwrap_or_default()
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count();
        if run % 2 == 0 {
            return true;
        }
        from = at + 1;
    }
    false
}

fn nul_in_jsonb() -> Reject {
    Reject::new(
        "contains a NUL character (\\u0000), which jsonb cannot hold: use a json column or strip it in the source",
    )
}

fn write_json(
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
                })?;
                serde_json::from_slice::<serde::de::IgnoredAny>(t).map_err(|e| {
                    Reject::new(format!(
                        "not valid JSON: {e} (set `json = \"string\"` to store text as a JSON string)"
                    ))
                })?;
                if jsonb && has_nul_escape(t) {
                    return Err(nul_in_jsonb());
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
            serde_json::to_writer(&mut work.buf, j)
                .map_err(|e| Reject::new(format!("cannot serialise JSON value: {e}")))?;
            if jsonb && has_nul_escape(&work.buf) {
                return Err(nul_in_jsonb());
            }
            out.extend_from_slice(&work.buf);
        }
        Value::Null => return Err(Reject::new("NULL reached a JSON conversion")),
    }
    Ok(())
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Standard (8-4-4-4-12), braced, or 32 hex digits without dashes.
fn parse_uuid(t: &[u8]) -> Option<[u8; 16]> {
    let t = t.trim_ascii();
    let t = match (t.first(), t.last()) {
        (Some(b'{'), Some(b'}')) => t.get(1..t.len() - 1)?,
        _ => t,
    };
    let dashed = match t.len() {
        36 => true,
        32 => false,
        _ => return None,
    };
    let mut out = [0u8; 16];
    let mut n = 0usize;
    for (i, &c) in t.iter().enumerate() {
        if dashed && matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let h = hex_val(c)?;
        let slot = out.get_mut(n / 2)?;
        *slot |= if n.is_multiple_of(2) { h << 4 } else { h };
        n += 1;
    }
    (n == 32).then_some(out)
}

fn to_uuid(v: Value<'_>, ty: &PgType) -> Result<[u8; 16], Reject> {
    match v {
        Value::Text(t) => parse_uuid(t).ok_or_else(|| {
            Reject::new(format!(
                "{} is not a UUID (expected 8-4-4-4-12 hex digits)",
                describe(v)
            ))
        }),
        Value::Blob(b) => <[u8; 16]>::try_from(b).map_err(|_| {
            Reject::new(format!(
                "binary data of {} bytes is not a UUID (needs exactly 16 bytes)",
                b.len()
            ))
        }),
        _ => Err(wrong_type(v, ty)),
    }
}

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

fn write_array(
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

    const PREFIX: &[u8] = b"\x00\x03xyz";

    fn col(ty: PgType) -> ColumnPlan {
        ColumnPlan {
            ty,
            not_null: false,
            rules: Rules::default(),
        }
    }

    fn col_r(ty: PgType, rules: Rules) -> ColumnPlan {
        ColumnPlan { rules, ..col(ty) }
    }

    /// Encode into a buffer that already holds bytes; on Err, check it is untouched.
    fn enc_with(cv: &mut Converter, v: Value<'_>, c: &ColumnPlan) -> Result<Vec<u8>, Reject> {
        let mut out = BytesMut::from(PREFIX);
        match cv.encode(v, c, &mut out) {
            Ok(()) => {
                assert_eq!(&out[..PREFIX.len()], PREFIX);
                let field = out[PREFIX.len()..].to_vec();
                // length prefix must match the payload
                let len = i32::from_be_bytes(field[..4].try_into().unwrap());
                if len >= 0 {
                    assert_eq!(len as usize, field.len() - 4, "length prefix");
                } else {
                    assert_eq!(len, -1);
                    assert_eq!(field.len(), 4);
                }
                Ok(field)
            }
            Err(r) => {
                assert_eq!(&out[..], PREFIX, "out changed on reject: {}", r.reason);
                assert!(!r.reason.is_empty());
                Err(r)
            }
        }
    }

    fn enc(v: Value<'_>, c: &ColumnPlan) -> Result<Vec<u8>, Reject> {
        enc_with(&mut Converter::new(), v, c)
    }

    /// Payload of a successful non-NULL field.
    fn ok(v: Value<'_>, ty: PgType) -> Vec<u8> {
        let f = enc(v, &col(ty)).unwrap_or_else(|r| panic!("{v:?}: {}", r.reason));
        f[4..].to_vec()
    }

    fn err(v: Value<'_>, ty: PgType) -> String {
        match enc(v, &col(ty)) {
            Ok(f) => panic!("{v:?} should be rejected, got {f:?}"),
            Err(r) => r.reason,
        }
    }

    fn t(s: &str) -> Value<'_> {
        Value::Text(s.as_bytes())
    }

    const NULL_FIELD: [u8; 4] = [0xff, 0xff, 0xff, 0xff];

    fn text() -> PgType {
        PgType::Text { max_chars: None }
    }

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

    fn num(p: Option<u32>, s: Option<u32>) -> PgType {
        PgType::Numeric {
            precision: p,
            scale: s,
        }
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

    #[test]
    fn bytea_and_uuid() {
        assert_eq!(ok(Value::Blob(b"\x00\xff"), PgType::Bytea), b"\x00\xff");
        assert_eq!(ok(Value::Text(b"a\xffb"), PgType::Bytea), b"a\xffb");
        err(Value::Int(1), PgType::Bytea);
        let want: Vec<u8> = (0..16).map(|i| (i * 17) as u8).collect();
        for s in [
            "00112233-4455-6677-8899-aabbccddeeff",
            "{00112233-4455-6677-8899-AABBCCDDEEFF}",
            "00112233445566778899aabbccddeeff",
            " 00112233-4455-6677-8899-aabbccddeeff ",
        ] {
            assert_eq!(ok(t(s), PgType::Uuid), want, "{s}");
        }
        assert_eq!(ok(Value::Blob(&want), PgType::Uuid), want);
        for s in [
            "00112233-4455-6677-8899-aabbccddeef",
            "00112233-4455-6677-8899-aabbccddeefg",
            "0011223344-55-6677-8899-aabbccddeeff",
            "{00112233445566778899aabbccddeeff",
            "{}",
            "{",
        ] {
            assert!(err(t(s), PgType::Uuid).contains("not a UUID"), "{s}");
        }
        err(Value::Blob(b"short"), PgType::Uuid);
    }

    #[test]
    fn dates_times_through_converter() {
        assert_eq!(ok(t("2000-01-02"), PgType::Date), 1i32.to_be_bytes());
        assert_eq!(
            ok(t("2000-01-01 00:00:01"), PgType::Timestamp),
            1_000_000i64.to_be_bytes()
        );
        assert_eq!(
            ok(t("2000-01-01T00:00:01Z"), PgType::Timestamptz),
            1_000_000i64.to_be_bytes()
        );
        assert_eq!(ok(t("00:00:01"), PgType::Time), 1_000_000i64.to_be_bytes());
        assert_eq!(
            ok(t("infinity"), PgType::Timestamptz),
            i64::MAX.to_be_bytes()
        );
        assert_eq!(ok(t("-infinity"), PgType::Date), i32::MIN.to_be_bytes());
        let r = err(Value::Int(1_700_000_000), PgType::Timestamptz);
        assert_eq!(
            r,
            "integer 1700000000 in a timestamptz column: set `epoch = \"seconds\"` or `\"milliseconds\"` in the mapping"
        );
        let c = col_r(
            PgType::Timestamptz,
            Rules {
                epoch: Some(Epoch::Millis),
                ..Rules::default()
            },
        );
        assert_eq!(
            enc(Value::Int(946_684_800_001), &c).unwrap()[4..],
            1000i64.to_be_bytes()
        );
        assert_eq!(
            enc(t("946684800001"), &c).unwrap()[4..],
            1000i64.to_be_bytes()
        );
        let c = col_r(
            PgType::Timestamptz,
            Rules {
                timezone: chrono_tz::Europe::Berlin,
                ..Rules::default()
            },
        );
        assert!(
            enc(t("2024-03-31 02:30"), &c)
                .unwrap_err()
                .reason
                .contains("Europe/Berlin")
        );
        assert_eq!(
            enc(t("2000-01-01 01:00"), &c).unwrap()[4..],
            0i64.to_be_bytes(),
            "Berlin is UTC+1 in winter"
        );
    }

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
        assert!(has_nul_escape(br#"\\\u0000"#));
        assert!(!has_nul_escape(br#"\\u0000"#));
        assert!(has_nul_escape(br#"\U0000"#));
    }

    fn arr(elem: PgType, oid: u32) -> PgType {
        PgType::Array {
            elem: Box::new(elem),
            elem_oid: oid,
        }
    }

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

    #[test]
    fn other_type() {
        assert_eq!(
            err(
                t("x"),
                PgType::Other {
                    name: "tsvector".into()
                }
            ),
            "cutover cannot write columns of type tsvector yet"
        );
        // NULL still works for such columns
        assert_eq!(
            enc(Value::Null, &col(PgType::Other { name: "x".into() })).unwrap(),
            NULL_FIELD
        );
    }

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
            PgType::Other { name: "x".into() },
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
