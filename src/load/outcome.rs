//! What a load did: counts and phase durations per table, the whole load's phases, the
//! sequences it reset and the constraints it rebuilt (as data, for the JSON report), and the
//! rejects kept in detail. `report` prints and writes these.

use super::phase::Durations;
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
    /// Of the unchanged rows, those the convert stage found exactly as the last load wrote
    /// them (by their fingerprint in the record), so neither resolved, compared nor written.
    pub(crate) unchanged_in_source: u64,
    pub(crate) deleted: u64,
    /// Rows not loaded because a value did not convert, a reference did not resolve under
    /// the error policy, or the legacy id was a duplicate.
    pub(crate) rejected: u64,
    /// Rows left out on purpose (`on_missing = "skip"`), or duplicate junction links.
    pub(crate) skipped: u64,
    /// References that did not resolve and were set to NULL (`on_missing = "null"`).
    pub(crate) nulled: u64,
    /// Per column, the loaded values the mapping's policies changed: cut to fit
    /// (`truncate`), or held in error in the source and stored as NULL (`on_error`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) adjusted: Vec<crate::convert::ColumnAdjusted>,
    /// Values the application changed since cutover last wrote them that the source changed
    /// too (each one kept or overwritten, as `on_conflict` says).
    pub(crate) conflicts: u64,
    /// Target rows carrying this run's legacy ids (or links) after the load.
    pub(crate) target: u64,
    /// Seconds per phase of this table: copy, resolve, write (or compare).
    pub(crate) seconds: Durations,
    /// This run leaves the table's record as the last load wrote it (nothing written, no
    /// value newly equal on both sides), so it is carried over as it is.
    #[serde(skip)]
    pub(crate) record_unchanged: bool,
    /// The row-by-row comparison, for `verify` and `load --verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) verify: Option<super::diff::TableDiff>,
}

/// A sequence set past its column's largest value.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct SequenceReset {
    /// The qualified table, as quoted in SQL.
    pub(crate) table: String,
    pub(crate) column: String,
    /// The qualified sequence, as `pg_get_serial_sequence` names it.
    pub(crate) sequence: String,
    /// The value the application's next INSERT gets.
    pub(crate) next: i64,
}

/// A constraint or index set aside for the bulk load and rebuilt.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Constraint {
    pub(crate) table: String,
    pub(crate) name: String,
    /// `foreign_key`, `key` (primary or unique) or `index`.
    pub(crate) kind: &'static str,
}

/// The bulk load of the tables empty at the start.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct BulkLoad {
    /// Set aside and rebuilt inside the transaction, in rebuild order.
    pub(crate) rebuilt: Vec<Constraint>,
    /// Why the constraints could not be set aside; then they stayed in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) not_possible: Option<String>,
}

impl BulkLoad {
    /// How many of `kind` were rebuilt.
    pub(crate) fn count(&self, kind: &str) -> usize {
        self.rebuilt.iter().filter(|c| c.kind == kind).count()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Report {
    pub(crate) mode: String,
    pub(crate) dry_run: bool,
    pub(crate) prune: bool,
    pub(crate) committed: bool,
    pub(crate) tables: Vec<TableReport>,
    /// Seconds per whole-load phase: setup, rebuild, prune, sequences, counts, verify,
    /// commit or rollback.
    pub(crate) phases: Durations,
    pub(crate) sequences_reset: Vec<SequenceReset>,
    /// Constraints set aside for a bulk load and rebuilt before commit; absent when no
    /// table was empty at the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bulk_load: Option<BulkLoad>,
    pub(crate) rejects_total: u64,
    pub(crate) max_rejects: u64,
    /// Values both the application and the source changed since the last load.
    #[serde(skip_serializing_if = "Conflicts::is_empty")]
    pub(crate) conflicts: Conflicts,
    /// What a reader of the summary should know about how the run went (no record of an
    /// earlier load, links left as they were).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) notes: Vec<String>,
}

/// Values the application changed since cutover last wrote them which the source changed
/// too: how many, how each was resolved, and the first ones in detail.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Conflicts {
    pub(crate) total: u64,
    /// The application's value kept (`on_conflict = "keep"`, the default).
    pub(crate) kept: u64,
    /// The source's value written over it (`on_conflict = "overwrite"`).
    pub(crate) overwritten: u64,
    /// The first ones, in load order.
    pub(crate) examples: Vec<Conflict>,
}

impl Conflicts {
    pub(crate) fn is_empty(&self) -> bool {
        self.total == 0
    }
}

/// One value both sides changed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Conflict {
    pub(crate) table: String,
    /// The source table the value comes from.
    pub(crate) source_table: String,
    pub(crate) legacy_id: String,
    pub(crate) column: String,
    /// The value the application wrote (the target's, before this run), as text.
    pub(crate) application: Option<String>,
    /// The source's value, as text.
    pub(crate) source: Option<String>,
    /// `kept` or `overwritten`.
    pub(crate) resolution: &'static str,
}

impl Report {
    /// Rows a load inserted, updated and deleted, over every table.
    pub(crate) fn changed(&self) -> (u64, u64, u64) {
        self.tables.iter().fold((0, 0, 0), |(i, u, d), t| {
            (i + t.inserted, u + t.updated, d + t.deleted)
        })
    }
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
