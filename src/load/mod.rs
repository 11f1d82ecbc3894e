//! The load, inside one transaction: for each table in plan order stage it, resolve it and
//! merge it; then prune, reset sequences, check counts (and with `--verify` compare every
//! row) — then commit, or roll back for a dry run or on any failure.
//!
//! Verification runs the same stages without writing: it compares the target with the
//! resolved staging rows in a REPEATABLE READ transaction (one consistent snapshot), then
//! rolls back.

mod bulk;
mod diagnose;
pub(crate) mod diff;
mod merge;
mod outcome;
mod sequences;
mod stage;

pub(crate) use outcome::{Outcome, Report, TableReport};

use crate::convert::reject::RejectRow;
use crate::error::{data, describe_pg, unavailable};
use crate::extract::Msg;
use crate::plan::staging::Staging;
use crate::plan::{Plan, TableKind, TablePlan};
use diff::TableDiff;
use tokio::sync::mpsc;
use tokio_postgres::{Client, IsolationLevel, Transaction};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Merge,
    Replace,
    /// Compare only: write nothing to the target tables.
    Verify,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub prune: bool,
    pub dry_run: bool,
    pub max_rejects: u64,
    pub expect_revision: Option<String>,
    /// After loading, compare every row with the source inside the transaction.
    pub verify: bool,
    /// How many differences to show per table.
    pub examples: usize,
}

/// An arbitrary constant: the advisory lock that keeps two loads from interleaving.
const LOCK_KEY: i64 = 0x0063_7574_6f76_6572; // "cutover"

/// Run the whole load on `client`, consuming the convert stage's output from `rx`.
pub async fn run(
    client: &mut Client,
    plan: &Plan,
    rx: &mut mpsc::Receiver<Msg>,
    opts: &Options,
) -> anyhow::Result<Outcome> {
    // Sequences are not transactional: their state is saved once this run holds the load
    // lock (so no other cutover load moves them meanwhile) and put back if it then does not
    // commit. A run that never got the lock never touches them.
    let mut saved = None;
    let result = load(client, plan, rx, opts, &mut saved).await;
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

async fn load(
    client: &mut Client,
    plan: &Plan,
    rx: &mut mpsc::Receiver<Msg>,
    opts: &Options,
    saved: &mut Option<Vec<sequences::SequenceState>>,
) -> anyhow::Result<Outcome> {
    let verify_only = opts.mode == Mode::Verify;
    let isolation = if verify_only {
        IsolationLevel::RepeatableRead
    } else {
        IsolationLevel::ReadCommitted
    };
    let tx = client
        .build_transaction()
        .isolation_level(isolation)
        .start()
        .await
        .map_err(|e| unavailable(format!("cannot start a transaction: {}", describe_pg(&e))))?;
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(|e| unavailable(format!("taking the load lock: {}", describe_pg(&e))))?
        .get(0);
    if !locked {
        return Err(unavailable(
            "another `cutover load` is running against this database (it holds cutover's advisory lock); wait for it to finish, then run again",
        ));
    }
    let tables: Vec<&str> = plan.tables.iter().map(|t| t.qualified.as_str()).collect();
    *saved = Some(sequences::snapshot(&tx, &tables).await?);
    check_revision(&tx, opts.expect_revision.as_deref()).await?;

    if opts.mode == Mode::Replace {
        let list: Vec<&str> = plan.tables.iter().map(|t| t.qualified.as_str()).collect();
        tx.batch_execute(&format!("TRUNCATE {} RESTART IDENTITY", list.join(", "))).await.map_err(|e| {
            unavailable(format!(
                "--mode replace could not empty the mapped tables: {}\n  Tables outside the mapping reference them; map those tables too, or use --mode merge.",
                describe_pg(&e)
            ))
        })?;
    }

    let mut report = Report {
        mode: match opts.mode {
            Mode::Merge => "merge",
            Mode::Replace => "replace",
            Mode::Verify => "verify",
        }
        .into(),
        dry_run: opts.dry_run,
        max_rejects: opts.max_rejects,
        ..Report::default()
    };
    let mut rejects: Vec<RejectRow> = Vec::new();
    let staging = Staging::all(plan);

    // Tables empty at the start (all of them on cutover day, and after --mode replace) are
    // bulk loaded: their foreign keys and secondary indexes are set aside and rebuilt once.
    let mut empty = vec![false; plan.tables.len()];
    let mut set_aside = bulk::SetAside::default();
    if !verify_only {
        for (i, t) in plan.tables.iter().enumerate() {
            empty[i] = tx
                .query_one(
                    &format!("SELECT NOT EXISTS (SELECT 1 FROM {})", t.qualified),
                    &[],
                )
                .await
                .map_err(|e| unavailable(format!("reading `{}`: {}", t.name, describe_pg(&e))))?
                .get(0);
        }
        let fresh: Vec<bulk::Fresh> = plan
            .tables
            .iter()
            .zip(&empty)
            .filter(|(_, e)| **e)
            .map(|(t, _)| bulk::Fresh {
                table: t.qualified.as_str(),
                match_column: match &t.kind {
                    TableKind::Entity { match_column } => Some(match_column.as_str()),
                    TableKind::Junction { .. } => None,
                },
            })
            .collect();
        if !fresh.is_empty() {
            tx.batch_execute("SET LOCAL maintenance_work_mem = '256MB'; SAVEPOINT cutover_bulk")
                .await
                .map_err(|e| {
                    unavailable(format!("preparing the bulk load: {}", describe_pg(&e)))
                })?;
            // Only the tables' owner may drop their constraints; anyone else loads with the
            // constraints in place (slower, same result).
            match bulk::set_aside(&tx, &fresh).await {
                Ok(set) => set_aside = set,
                Err(e) => {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT cutover_bulk")
                        .await
                        .map_err(|e| {
                            unavailable(format!(
                                "after the bulk load setup failed: {}",
                                describe_pg(&e)
                            ))
                        })?;
                    report.rebuilt = Some(format!(
                        "not possible ({e:#}); loaded with constraints in place"
                    ));
                }
            }
        }
    }

    for (index, table) in plan.tables.iter().enumerate() {
        let ex = stage::copy(&tx, &staging[index], rx).await?;
        let mut t = TableReport {
            table: table.name.clone(),
            source: table.from.clone(),
            read: ex.read,
            rejected: ex.rejected,
            skipped: ex.skipped,
            ..TableReport::default()
        };
        rejects.extend(ex.rejects);
        merge::resolve(&tx, &staging[index], &mut t, &mut rejects).await?;
        crate::hooks::reached(&format!("merge:{}", table.name)).await;
        if verify_only {
            t.verify = Some(diff::diff(&tx, plan, &staging[index], opts.examples, true).await?);
        } else {
            merge::write(&tx, plan, &staging[index], empty[index], &mut t).await?;
            if empty[index] {
                // Fresh statistics, so the joins of the tables that reference it plan well.
                tx.batch_execute(&format!("ANALYZE {}", table.qualified))
                    .await
                    .map_err(|e| {
                        unavailable(format!("analyzing `{}`: {}", table.name, describe_pg(&e)))
                    })?;
            }
            t.unchanged = merge::staged(&tx, &staging[index])
                .await?
                .saturating_sub(t.inserted + t.updated);
        }
        report.rejects_total += t.rejected;
        report.tables.push(t);
    }

    let mut failure = None;
    if !verify_only {
        // Constraints back before anything is deleted, so ON DELETE actions apply to pruning.
        if !set_aside.is_empty() {
            bulk::restore(&tx, &set_aside).await?;
            report.rebuilt = Some(format!(
                "{} set aside and rebuilt inside the transaction",
                set_aside.describe()
            ));
        }
        if opts.prune {
            for index in (0..plan.tables.len()).rev() {
                report.tables[index].deleted += merge::prune(&tx, &staging[index]).await?;
            }
        }
        crate::hooks::reached("sequences").await;
        report.sequences_reset = sequences::reset(&tx, &tables).await?;

        // Count check: every staged row that was not rejected or skipped is in the target.
        for (index, table) in plan.tables.iter().enumerate() {
            let expected = merge::staged(&tx, &staging[index]).await?;
            let found = merge::loaded(&tx, &staging[index], empty[index]).await?;
            report.tables[index].target = found;
            if expected != found && failure.is_none() {
                failure = Some(data(format!(
                    "row count mismatch in `{}`: {expected} source rows should be loaded (read minus rejected and skipped) but {found} target rows carry their legacy ids",
                    table.name
                )));
            }
        }
        if opts.verify {
            let mut bad = Vec::new();
            for (index, table) in plan.tables.iter().enumerate() {
                let d: TableDiff =
                    diff::diff(&tx, plan, &staging[index], opts.examples, opts.prune).await?;
                if !d.is_clean() {
                    bad.push(format!(
                        "{}: {} differ, {} missing, {} extra",
                        table.name, d.differ, d.missing, d.extra
                    ));
                }
                report.tables[index].verify = Some(d);
            }
            if !bad.is_empty() && failure.is_none() {
                failure = Some(data(format!(
                    "--verify: after loading, the target does not match the source ({}); nothing was committed",
                    bad.join("; ")
                )));
            }
        }
        if report.rejects_total > opts.max_rejects && failure.is_none() {
            failure = Some(data(format!(
                "{} rows were rejected, more than --max-rejects {}; nothing was committed. Fix the source or the mapping (see the rejects), or raise --max-rejects.",
                report.rejects_total, opts.max_rejects
            )));
        }
    }

    let commit = failure.is_none() && !opts.dry_run && !verify_only;
    if commit {
        crate::hooks::reached("commit").await;
        tx.commit().await.map_err(|e| {
            unavailable(format!(
                "COMMIT failed, nothing was loaded: {}",
                describe_pg(&e)
            ))
        })?;
    } else {
        tx.rollback()
            .await
            .map_err(|e| unavailable(format!("ROLLBACK failed: {}", describe_pg(&e))))?;
    }
    report.committed = commit;
    Ok(Outcome {
        report,
        rejects,
        failure,
    })
}

async fn check_revision(tx: &Transaction<'_>, expect: Option<&str>) -> anyhow::Result<()> {
    let Some(expect) = expect else { return Ok(()) };
    let rows = tx.query("SELECT version_num::text FROM alembic_version", &[]).await.map_err(|e| {
        crate::error::usage(format!(
            "the mapping expects Alembic revision {expect}, but the target has no readable alembic_version table: {}",
            describe_pg(&e)
        ))
    })?;
    let found: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    if found.iter().any(|v| v == expect) {
        return Ok(());
    }
    Err(crate::error::usage(format!(
        "the target schema is at Alembic revision {}, but the mapping expects {expect}: run `alembic upgrade head` on the target, or update `expect_revision` after checking the mapping against the new schema",
        if found.is_empty() {
            "(none)".to_string()
        } else {
            found.join(", ")
        }
    )))
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
