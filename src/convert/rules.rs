//! The rules vocabulary: what the mapping file says about each target column (a sub-field
//! `path`, formula errors, lists, trim, lowercase, value map, defaults, epoch, time zone,
//! JSON mode, split, truncation) and the column it applies to. The mapping builds these; the
//! converter reads them for every value.
use std::collections::HashMap;

use chrono_tz::Tz;

use crate::pg::PgType;

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

/// An array where the column holds one value (a single link, a lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Many {
    /// Several values where one is expected is a reject.
    #[default]
    Reject,
    /// Take the first.
    First,
}

/// A value the source holds in error: a formula, rollup or lookup error (`{"error":
/// "#ERROR!"}`, `{"specialValue": "NaN"}`), alone or among a list's elements, or text that
/// is not JSON going into a json/jsonb column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum OnError {
    /// The row is a reject.
    #[default]
    Reject,
    /// The value (or the list element) becomes NULL, counted.
    Null,
}

/// One step of a `path` into a structured value: an object's key or a list's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// Per-column conversion rules from the mapping file.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The sub-field of a structured value to take (`email`, `0.url`), before anything else.
    pub path: Option<Vec<Step>>,
    /// A list where the column holds one value.
    pub many: Many,
    /// A value the source holds in error.
    pub on_error: OnError,
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
    /// Cut what does not fit instead of rejecting it, counted: text longer than varchar(n)
    /// or char(n) (whole characters), a date-time's time of day going into a date column.
    pub truncate: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            path: None,
            many: Many::Reject,
            on_error: OnError::Reject,
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
            truncate: false,
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

/// A primary key the application would generate itself (its ORM calls `uuid4()`), which the
/// load must therefore fill: a random UUID, or one derived from the table and the legacy id
/// so that every run, `--mode replace` included, gives a record the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GenerateId {
    /// Random (RFC 9562 version 4): new ids on every fresh load.
    Uuid4,
    /// Name-based (RFC 9562 version 5): the same legacy id always gives the same id.
    Uuid5,
}
