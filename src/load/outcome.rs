//! What a load did: counts per table, the sequences it reset and the constraints it rebuilt,
//! and the rejects kept in detail. `report` prints and writes these.

use crate::convert::reject::RejectRow;
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct TableReport {
    pub table: String,
    pub source: String,
    /// Rows read from the source.
    pub read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    /// Rows not loaded because a value did not convert, a reference did not resolve under
    /// the error policy, or the legacy id was a duplicate.
    pub rejected: u64,
    /// Rows left out on purpose (`on_missing = "skip"`), or duplicate junction links.
    pub skipped: u64,
    /// References that did not resolve and were set to NULL (`on_missing = "null"`).
    pub nulled: u64,
    /// Target rows carrying this run's legacy ids (or links) after the load.
    pub target: u64,
    /// The row-by-row comparison, for `verify` and `load --verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<super::diff::TableDiff>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub mode: String,
    pub dry_run: bool,
    pub committed: bool,
    pub tables: Vec<TableReport>,
    pub sequences_reset: Vec<String>,
    /// Foreign keys and indexes set aside for a bulk load and rebuilt before commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuilt: Option<String>,
    pub rejects_total: u64,
    pub max_rejects: u64,
}

/// The result of a load: the report (committed or not) and every reject kept in detail.
pub(crate) struct Outcome {
    pub report: Report,
    pub rejects: Vec<RejectRow>,
    /// Why nothing was committed, when the data did not check out.
    pub failure: Option<anyhow::Error>,
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
