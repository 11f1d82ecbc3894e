//! The load, inside one transaction: for each table in plan order stage it, resolve it and
//! merge it; then prune, reset sequences, check counts (and with `--verify` compare every
//! row) — then commit, or roll back for a dry run or on any failure.
//!
//! The phases are methods of [`Loading`], the transaction and what the load has found so
//! far, each in the file named after it: `setup`, `table`, `finish` and `commit`. An
//! interrupt once COMMIT is on its way is answered by `in_flight`.
//!
//! Each phase is timed and told to an [`Observer`] as it starts and ends (`phase`), so that
//! progress is shown through all of them and the report says where the time went.
//!
//! Verification runs the same stages without writing: it compares the target with the
//! resolved staging rows in a REPEATABLE READ transaction (one consistent snapshot), then
//! rolls back.

mod bulk;
mod commit;
mod cycles;
mod diagnose;
pub(crate) mod diff;
mod finish;
mod fresh;
mod in_flight;
mod merge;
mod outcome;
mod phase;
pub(crate) mod record;
mod refused;
mod resolve;
mod sequences;
mod setup;
mod stage;
mod table;
mod triggers;
mod unique;

pub(crate) use in_flight::{interrupted, remember_target};
pub(crate) use outcome::{
    BulkLoad, Conflict, Conflicts, Constraint, Outcome, Report, SequenceReset, TableReport,
};
pub(crate) use phase::{Durations, Observer, Phase, seconds};

use crate::convert::reject::RejectRow;
use crate::error::{data, describe_pg, unavailable};
use crate::extract::Msg;
use crate::plan::fingerprint::KnownTx;
use crate::plan::staging::Staging;
use crate::plan::{Plan, TablePlan};
use tokio::sync::mpsc;
use tokio_postgres::{Client, Transaction};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Merge,
    Replace,
    /// Compare only: write nothing to the target tables.
    Verify,
}

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) mode: Mode,
    pub(crate) prune: bool,
    pub(crate) dry_run: bool,
    pub(crate) max_rejects: u64,
    pub(crate) expect_revision: Option<String>,
    /// After loading, compare every row with the source inside the transaction.
    pub(crate) verify: bool,
    /// How many differences to show per table.
    pub(crate) examples: usize,
    /// Where the record of what each load wrote is kept (None: no record is read or written,
    /// as for a throwaway target).
    pub(crate) record: Option<RecordAt>,
    /// The columns, as `(table, column)`, whose conflicts the source wins
    /// (`on_conflict = "overwrite"`); everywhere else the application's value is kept.
    pub(crate) overwrite: Vec<(String, String)>,
}

/// Where a load's record is kept: the mapping, `--state`, the schema, and the target (its
/// URL without the password).
#[derive(Debug, Clone)]
pub(crate) struct RecordAt {
    pub(crate) mapping: std::path::PathBuf,
    pub(crate) state: Option<std::path::PathBuf>,
    pub(crate) schema: String,
    pub(crate) target: String,
}

impl Options {
    /// Whether the source's value wins a conflict in `table`.`column`.
    pub(crate) fn overwrites(&self, table: &str, column: &str) -> bool {
        self.overwrite
            .iter()
            .any(|(t, c)| t == table && c == column)
    }

    /// The `(table, column)` pairs of `mapping` that say `on_conflict = "overwrite"`, on
    /// the column or on its table.
    pub(crate) fn overwrite_from(mapping: &crate::mapping::Mapping) -> Vec<(String, String)> {
        use crate::mapping::OnConflict;
        let mut out = Vec::new();
        for t in &mapping.tables {
            for c in &t.columns {
                if c.on_conflict.unwrap_or(t.on_conflict) == OnConflict::Overwrite {
                    out.push((t.name.clone(), c.name.clone()));
                }
            }
        }
        out
    }
}

/// Run the whole load on `client`, consuming the convert stage's output from `rx` (and
/// sending it, through `known`, the fingerprints of the rows the last load wrote) and
/// telling `observer` of each phase.
pub(crate) async fn run(
    client: &mut Client,
    plan: &Plan,
    rx: &mut mpsc::Receiver<Msg>,
    known: KnownTx,
    opts: &Options,
    observer: &dyn Observer,
) -> anyhow::Result<Outcome> {
    // Sequences are not transactional: their state is saved once this run holds the load
    // lock (so no other cutover load moves them meanwhile) and put back if it then does not
    // commit. A run that never got the lock never touches them.
    let mut saved = None;
    let result = load(client, plan, rx, known, opts, observer, &mut saved).await;
    let restore = |saved: Option<Vec<sequences::SequenceState>>| async move {
        match saved {
            Some(s) => sequences::restore(client, &s).await,
            None => Ok(()),
        }
    };
    match result {
        Ok(mut outcome) => {
            if !outcome.report.committed {
                restore(saved).await?;
            }
            Ok(outcome.take())
        }
        Err(e) => {
            let _ = restore(saved).await;
            Err(e)
        }
    }
}

/// A load in progress: its transaction, and what the phases so far have found.
struct Loading<'a> {
    tx: Transaction<'a>,
    plan: &'a Plan,
    opts: &'a Options,
    /// Each table's staging table, in plan order.
    staging: Vec<Staging<'a>>,
    /// Per table: empty when the load started, so bulk loaded.
    empty: Vec<bool>,
    /// Per junction that left no link out: its staged links summed up, for the record.
    digests: Vec<Option<(u64, u64)>>,
    /// Per table: found as the last load left it, so neither resolved nor written.
    settled: Vec<bool>,
    /// The constraints set aside for the bulk load, to rebuild before anything is deleted.
    set_aside: bulk::SetAside,
    report: Report,
    rejects: Vec<RejectRow>,
    /// Told of each phase as it starts and ends.
    observer: &'a dyn Observer,
    /// The previous load's record, uploaded (per table: what cutover last wrote).
    base: record::Uploaded,
}

impl Loading<'_> {
    /// Compare only: nothing is written to the target tables.
    fn verify_only(&self) -> bool {
        self.opts.mode == Mode::Verify
    }
}

/// The load's phases, in order: set up the transaction, each table in plan order, the checks
/// over the whole load (not when only verifying), then commit or roll back.
async fn load(
    client: &mut Client,
    plan: &Plan,
    rx: &mut mpsc::Receiver<Msg>,
    known: KnownTx,
    opts: &Options,
    observer: &dyn Observer,
    saved: &mut Option<Vec<sequences::SequenceState>>,
) -> anyhow::Result<Outcome> {
    let mut setup = Durations::default();
    let clock = phase::Clock::start(observer, Phase::Setup, None);
    let mut load = Loading::begin(client, plan, opts, saved, observer).await?;
    let record = match &opts.record {
        Some(at) => Some((at, record::locate(&load.tx, at).await?)),
        None => None,
    };
    if let (Some((_, path)), Mode::Merge) = (&record, opts.mode) {
        // Rows found unchanged are not compared: not for `--verify`, which compares every
        // row, and not in a table empty at the start, where nothing is unchanged.
        let skip_same: Vec<bool> = load
            .empty
            .iter()
            .map(|&empty| !empty && !opts.verify)
            .collect();
        let (base, note) = record::upload(&load.tx, plan, path, &skip_same, &known).await?;
        load.base = base;
        // Into tables that are all empty there is nothing to merge, so nothing to say.
        if load.empty.iter().any(|e| !e) {
            load.report.notes.extend(note);
        }
    }
    // The convert stage waits for no more fingerprints.
    drop(known);
    if opts.mode == Mode::Merge && load.empty.iter().any(|e| !e) {
        // A re-run compares and writes the few rows that changed against tables that hold
        // all of them: looking those up by their keys' indexes beats reading every target
        // row, which the default page costs (made for spinning disks) prefer. PostgreSQL
        // docs, "Planner Cost Constants": lower random_page_cost for fast storage.
        load.tx
            .batch_execute("SET LOCAL random_page_cost = 1.1")
            .await
            .map_err(|e| unavailable(format!("setting up the re-run: {}", describe_pg(&e))))?;
    }
    clock.stop(None, &mut setup);
    load.report.phases = setup;
    for index in 0..plan.tables.len() {
        load.table(index, rx).await?;
    }
    let failure = if load.verify_only() {
        None
    } else {
        load.finish().await?
    };
    // The same decision `end` takes, to name the phase before it runs.
    let ending = if failure.is_none() && !opts.dry_run && !load.verify_only() {
        Phase::Commit
    } else {
        Phase::Rollback
    };
    // What this load wrote, recorded before COMMIT and put in place only after it.
    let pending = match (&record, ending) {
        (Some((at, path)), Phase::Commit) => {
            let unchanged: Vec<bool> = load
                .report
                .tables
                .iter()
                .map(|t| t.record_unchanged)
                .collect();
            Some(
                record::save(
                    &load.tx,
                    &load.staging,
                    &load.base,
                    (&load.empty, &unchanged, &load.digests),
                    path,
                    &at.target,
                )
                .await?,
            )
        }
        _ => None,
    };
    let mut phases = std::mem::take(&mut load.report.phases);
    let clock = phase::Clock::start(observer, ending, None);
    let mut outcome = load.end(failure).await?;
    clock.stop(None, &mut phases);
    outcome.report.phases = phases;
    if let Some(pending) = pending
        && outcome.report.committed
        && let Err(e) = pending.keep()
    {
        outcome.report.notes.push(format!(
            "the load committed, but its record could not be saved ({e}): the next re-run will keep every value that differs from the source and report it as a conflict"
        ));
    }
    Ok(outcome)
}

/// A database error in a table's load, with PostgreSQL's DETAIL. Constraint violations are
/// the data not checking out (exit 1); anything else is a failed load (exit 3).
pub(crate) fn table_error(
    e: &tokio_postgres::Error,
    table: &TablePlan,
    doing: &str,
) -> anyhow::Error {
    let msg = format!("table `{}`, {doing}: {}", table.name, describe_pg(e));
    match e.as_db_error().map(|d| d.code().code().to_string()) {
        Some(code) if code.starts_with("23") => data(format!(
            "{msg}\n  Nothing was committed; fix these rows in the source, or the mapping, and run again."
        )),
        _ => unavailable(msg),
    }
}
