//! A rejected source row as it is reported: which table and record, which column, the value
//! as the source held it, and why it could not be loaded.

use serde::Serialize;

/// One rejected (or skipped) source row.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RejectRow {
    pub table: String,
    pub legacy_id: String,
    pub column: String,
    pub value: String,
    pub reason: String,
}
