//! The rules vocabulary: what the mapping file says about each target column (trim,
//! lowercase, value map, defaults, epoch, time zone, JSON mode, split) and the column it
//! applies to. The mapping builds these; the converter reads them for every value.
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
