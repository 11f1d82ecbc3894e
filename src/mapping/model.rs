//! What a mapping says, once read: the tables, how each target row is tied to its source
//! row, and how each target column is fed. Plain data with a few look-ups; reading it from
//! TOML is `parse`, the rules across tables are `check`.

use crate::convert::Rules;
pub(crate) use crate::convert::{GenerateId, Many, OnError};
use crate::source::{Selection, SourceSpec};
use std::path::PathBuf;

/// A parsed, self-consistent mapping.
#[derive(Debug, Clone)]
pub(crate) struct Mapping {
    pub(crate) file: PathBuf,
    pub(crate) source: Option<SourceSpec>,
    /// Target schema (`public` unless the mapping says otherwise).
    pub(crate) schema: String,
    /// The `alembic_version` the target must be at, if the mapping pins one.
    pub(crate) expect_revision: Option<String>,
    /// Tables in file order (the tie-break of the load order).
    pub(crate) tables: Vec<TableMap>,
}

#[derive(Debug, Clone)]
pub(crate) struct TableMap {
    /// Target table name.
    pub(crate) name: String,
    /// Source table name.
    pub(crate) from: String,
    pub(crate) line: usize,
    /// Which of the source table's records to read (Airtable's `view` and `filter`).
    pub(crate) selection: Selection,
    /// The line of the first of `view`/`filter` (the table's line without them).
    pub(crate) selection_line: usize,
    pub(crate) identity: Identity,
    pub(crate) columns: Vec<ColumnMap>,
    /// Values the application changed since cutover wrote them, which the source changed too.
    pub(crate) on_conflict: OnConflict,
    /// What becomes of the table's triggers during the load.
    pub(crate) triggers: Triggers,
    /// What to do when source rows collide on a unique key of the target (`on_duplicate`).
    pub(crate) on_duplicate: OnDuplicate,
    /// The same, per key: the unique constraint's or index's name (`[….on_duplicate_key]`).
    pub(crate) on_duplicate_key: Vec<KeyPolicy>,
}

/// The table's triggers during a load: kept (they fire on the load's writes) unless the
/// mapping disables them, all or by name; and the columns they set.
#[derive(Debug, Clone, Default)]
pub(crate) struct Triggers {
    /// `triggers = "disable"`: none of the table's triggers fires on the load's writes.
    pub(crate) disable_all: bool,
    /// `disable_triggers = [...]`: these do not.
    pub(crate) disable: Vec<String>,
    /// `set_by_triggers = [...]`: columns the table's triggers set. The mapping need not
    /// fill them; a mapped one is written when a row is inserted and never compared or
    /// updated afterwards.
    pub(crate) set_by: Vec<String>,
}

/// When rows collide on a unique key of the target: fail naming them all, or keep the first
/// or the last in source order and reject the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum OnDuplicate {
    #[default]
    Error,
    KeepFirst,
    KeepLast,
}

impl OnDuplicate {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OnDuplicate::Error => "error",
            OnDuplicate::KeepFirst => "keep_first",
            OnDuplicate::KeepLast => "keep_last",
        }
    }
}

/// One key's own `on_duplicate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyPolicy {
    /// The unique constraint's or unique index's name.
    pub(crate) name: String,
    pub(crate) policy: OnDuplicate,
    pub(crate) line: usize,
}

/// How a target row is tied to its source row.
#[derive(Debug, Clone)]
pub(crate) enum Identity {
    /// An entity: the source field `field` holds the legacy id; it is stored in target column
    /// `column` and/or kept as the target's primary key (`keep_id`), or the primary key is a
    /// UUID cutover generates (`generate_id`).
    Legacy {
        field: String,
        column: Option<String>,
        keep_id: bool,
        generate: Option<GenerateId>,
        /// Strip surrounding white space from the legacy id (`trim_legacy_id`); otherwise
        /// it is stored and matched exactly as the source holds it.
        trim: bool,
    },
    /// A junction (many-to-many) table: rows are identified by their reference columns, and
    /// `owner` (a reference column) says whose links the source fully describes.
    Junction { owner: String },
}

#[derive(Debug, Clone)]
pub(crate) struct ColumnMap {
    /// Target column name.
    pub(crate) name: String,
    pub(crate) line: usize,
    pub(crate) input: Input,
    pub(crate) rules: Rules,
    pub(crate) reference: Option<Reference>,
    pub(crate) shape: Shape,
    /// This column's own conflict policy, when it differs from its table's.
    pub(crate) on_conflict: Option<OnConflict>,
    /// An attachment field kept as the files' snapshot paths, bytes or URLs
    /// (`attachments = { store = … }`).
    pub(crate) attachments: Option<crate::source::snapshot::attachments::Keep>,
}

/// How a source field feeds a junction: one row per element of a link field's array. (The
/// per-value policies for structured values, `path`, `many` and `on_error`, are `Rules`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Shape {
    /// One row per element of this column's array (a junction fed from a link field).
    pub(crate) explode: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Input {
    Field(String),
    Const(Const),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Const {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Debug, Clone)]
pub(crate) struct Reference {
    /// The mapped target table whose legacy id the source value holds.
    pub(crate) table: String,
    pub(crate) on_missing: OnMissing,
}

/// What a re-run does with a value the application changed since cutover wrote it, when the
/// source changed it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum OnConflict {
    /// Keep the application's value (and report the conflict).
    #[default]
    Keep,
    /// Write the source's value over it (and report the conflict).
    Overwrite,
}

/// What to do when a reference does not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnMissing {
    Error,
    Null,
    Skip,
}

impl TableMap {
    pub(crate) fn is_junction(&self) -> bool {
        matches!(self.identity, Identity::Junction { .. })
    }
    #[cfg(test)]
    pub(crate) fn column(&self, name: &str) -> Option<&ColumnMap> {
        self.columns.iter().find(|c| c.name == name)
    }
}

impl Mapping {
    pub(crate) fn table(&self, name: &str) -> Option<&TableMap> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Per source table a `view` or `filter` selects records of, that selection: what the
    /// source is opened with.
    pub(crate) fn selections(&self) -> Vec<(String, Selection)> {
        let mut out: Vec<(String, Selection)> = Vec::new();
        for t in self.tables.iter().filter(|t| !t.selection.is_all()) {
            if !out.iter().any(|(from, _)| *from == t.from) {
                out.push((t.from.clone(), t.selection.clone()));
            }
        }
        out
    }

    /// A `view` or `filter` on a source other than Airtable's (or a snapshot exported from
    /// it, which holds the records its export selected) is a problem at its line.
    pub(crate) fn selection_problems(&self, source: &SourceSpec) -> Vec<super::Problem> {
        if !matches!(source, SourceSpec::Sqlite(_)) {
            return Vec::new();
        }
        self.tables
            .iter()
            .filter(|t| !t.selection.is_all())
            .map(|t| super::Problem {
                line: t.selection_line,
                key: format!(
                    "tables.{}.{}",
                    t.name,
                    if t.selection.view.is_some() { "view" } else { "filter" }
                ),
                message: format!(
                    "`view` and `filter` choose the records Airtable lists, and the source is {source}: remove them, or read the records with a SQLite view (a `from` that names it)"
                ),
            })
            .collect()
    }
}
