//! What a load did: counts per table, the sequences it reset and the constraints it rebuilt,
//! and the rejects kept in detail. `report` prints and writes these.

use crate::convert::reject::RejectRow;
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct TableReport {
    pub(crate) table: String,
    pub(crate) source: String,
    /// Rows read from the source.
    pub(crate) read: u64,
    pub(crate) inserted: u64,
    pub(crate) updated: u64,
    pub(crate) unchanged: u64,
    pub(crate) deleted: u64,
    /// Rows not loaded because a value did not convert, a reference did not resolve under
    /// the error policy, or the legacy id was a duplicate.
    pub(crate) rejected: u64,
    /// Rows left out on purpose (`on_missing = "skip"`), or duplicate junction links.
    pub(crate) skipped: u64,
    /// References that did not resolve and were set to NULL (`on_missing = "null"`).
    pub(crate) nulled: u64,
    /// Target rows carrying this run's legacy ids (or links) after the load.
    pub(crate) target: u64,
    /// The row-by-row comparison, for `verify` and `load --verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) verify: Option<super::diff::TableDiff>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Report {
    pub(crate) mode: String,
    pub(crate) dry_run: bool,
    pub(crate) committed: bool,
    pub(crate) tables: Vec<TableReport>,
    pub(crate) sequences_reset: Vec<String>,
    /// Foreign keys and indexes set aside for a bulk load and rebuilt before commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rebuilt: Option<String>,
    pub(crate) rejects_total: u64,
    pub(crate) max_rejects: u64,
}

/// The result of a load: the report (committed or not) and every reject kept in detail.
pub(crate) struct Outcome {
    pub(crate) report: Report,
    pub(crate) rejects: Vec<RejectRow>,
    /// Why nothing was committed, when the data did not check out.
    pub(crate) failure: Option<anyhow::Error>,
}

impl Outcome {
    pub(crate) fn take(&mut self) -> Outcome {
        Outcome {
            report: std::mem::take(&mut self.report),
            rejects: std::mem::take(&mut self.rejects),
            failure: self.failure.take(),
        }
    }
}
