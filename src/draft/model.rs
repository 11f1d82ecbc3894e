//! A draft mapping before it is written: the tables and columns it proposes, why it chose
//! each (the comment written beside it), and what it could not pair (the TODOs). Drafting
//! fills it in, `write` turns it into TOML, `validate` marks what the target refuses, and
//! `inspect --format json` prints it as it is.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Draft {
    /// Comment lines at the top, after the standard ones.
    pub(crate) notes: Vec<String>,
    /// The target's Alembic revision when the draft was made, pinned as `expect_revision`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) revision: Option<String>,
    pub(crate) tables: Vec<DraftTable>,
    /// What could not be paired, for the list at the end of the file.
    pub(crate) todos: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DraftTable {
    /// The target table.
    pub(crate) name: String,
    /// The source table.
    pub(crate) from: String,
    /// The source's id of the table (Airtable `tbl…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) from_id: Option<String>,
    /// Why these two were paired, and how rows are identified: comment lines above the
    /// table.
    pub(crate) notes: Vec<String>,
    pub(crate) identity: Identity,
    pub(crate) columns: Vec<DraftColumn>,
    /// Problems only a person can settle, written on the table's header line (where `check`
    /// reports a table's problems).
    pub(crate) todo: Vec<String>,
    /// The whole table is written as comments, for this reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) disabled: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Identity {
    Entity {
        legacy_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        legacy_column: Option<String>,
        keep_id: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        generate_id: Option<String>,
    },
    Junction {
        #[serde(skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DraftColumn {
    /// The target column.
    pub(crate) name: String,
    /// The source field; None for a constant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) field: Option<String>,
    /// The source's id of that field (Airtable `fld…`): the draft names the field by it, so
    /// a rename in the base does not break the mapping, with the name as a comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) field_id: Option<String>,
    /// A constant instead of a field (a proposed policy for a NOT NULL column).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<toml::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) references: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) explode: bool,
    /// Why: the source field's type, how it was paired.
    pub(crate) comment: String,
    /// Written as a comment, with this TODO, for a person to settle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) todo: Option<String>,
}

impl DraftColumn {
    pub(crate) fn field(name: &str, field: &str, comment: String) -> DraftColumn {
        DraftColumn {
            name: name.to_string(),
            field: Some(field.to_string()),
            field_id: None,
            value: None,
            references: None,
            explode: false,
            comment,
            todo: None,
        }
    }
}

impl DraftTable {
    pub(crate) fn new(name: &str, from: &str, identity: Identity) -> DraftTable {
        DraftTable {
            name: name.to_string(),
            from: from.to_string(),
            from_id: None,
            notes: Vec::new(),
            identity,
            columns: Vec::new(),
            todo: Vec::new(),
            disabled: None,
        }
    }

    pub(crate) fn is_junction(&self) -> bool {
        matches!(self.identity, Identity::Junction { .. })
    }
}
