//! One table of the load, in plan order: stage its rows, resolve them, then merge them into
//! the target — or, when only verifying, compare them with it. A table that was empty at the
//! start and whose ids are not drawn from a sequence is written by `fresh`, which judges
//! references only when some do not resolve. On a re-run, the rows the convert stage found
//! exactly as the last load wrote them arrive as legacy ids alone (`plan/fingerprint.rs`),
//! and a junction the last load left as it is — the same links staged, the same links in
//! the target (`record.rs`) — is neither resolved nor written.

use super::bulk::SetAside;
use super::phase::{Clock, Durations};
use super::record::Base;
use super::{
    Conflicts, Loading, Options, Phase, TableReport, bulk, diff, fresh, merge, resolve, stage,
    table_error, unique,
};
use crate::convert::reject::RejectRow;
use crate::error::{data, describe_pg, unavailable};
use crate::extract::Msg;
use crate::plan::Plan;
use crate::plan::staging::Staging;
use tokio::sync::mpsc;
use tokio_postgres::Transaction;

impl Loading<'_> {
    /// Load the `index`-th table of the plan from the convert stage's output in `rx`.
    pub(super) async fn table(
        &mut self,
        index: usize,
        rx: &mut mpsc::Receiver<Msg>,
    ) -> anyhow::Result<()> {
        let verify_only = self.verify_only();
        let staging = &self.staging[index];
        let table = staging.table();
        let tx = &self.tx;
        let observer = self.observer;
        let mut seconds = Durations::default();
        let clock = Clock::start(observer, Phase::Copy, Some(index));
        let ex = stage::copy(tx, staging, rx).await?;
        clock.stop(Some(ex.read), &mut seconds);
        let mut t = TableReport {
            table: table.name.clone(),
            source: table.from.clone(),
            read: ex.read,
            rejected: ex.rejected,
            skipped: ex.skipped,
            unchanged_in_source: ex.same,
            adjusted: ex.adjusted,
            ..TableReport::default()
        };
        self.rejects.extend(ex.rejects);
        let empty = self.empty[index];
        // A junction staged as the last load staged it, holding the links that load left
        // there, is as that load left it: nothing to resolve, compare or write. Only when
        // no row it links was rejected, this run or that one (a rejected owner's links are
        // never removed), so both left nothing undone.
        let parents_whole = table.stage.iter().all(|c| {
            c.reference.as_ref().is_none_or(|r| {
                self.report
                    .tables
                    .get(r.parent)
                    .is_some_and(|p| p.rejected == 0)
            })
        });
        let digest = ex.digest.filter(|_| parents_whole);
        if !verify_only
            && !empty
            && !self.opts.verify
            && self
                .base
                .junction_unchanged(tx, table, index, digest)
                .await?
        {
            t.unchanged = digest.map_or(0, |(links, _)| links);
            t.unchanged_in_source = t.unchanged;
            self.settled[index] = true;
            self.digests[index] = digest;
            t.seconds = seconds;
            self.report.tables.push(t);
            return Ok(());
        }
        let fresh = !verify_only && empty && fresh::applies(table);
        let clock = Clock::start(observer, Phase::Resolve, Some(index));
        // Into an empty table whose legacy ids a unique key guards (put back right after the
        // write), duplicate legacy ids are searched for only if that key cannot be put back.
        let guarded = fresh
            && !ex.distinct
            && !ex.repeated
            && match &table.kind {
                crate::plan::TableKind::Entity { match_column } => self
                    .set_aside
                    .unique_of(&table.qualified)
                    .iter()
                    .any(|k| k.is_on(match_column)),
                crate::plan::TableKind::Junction { .. } => false,
            };
        if fresh {
            let distinct = ex.distinct || guarded;
            resolve::duplicates(tx, staging, distinct, &mut t, &mut self.rejects).await?;
        } else {
            resolve::resolve(tx, staging, ex.distinct, &mut t, &mut self.rejects).await?;
        }
        clock.stop(None, &mut seconds);
        crate::hooks::reached(&format!("merge:{}", table.name)).await;
        if verify_only {
            let clock = Clock::start(observer, Phase::Compare, Some(index));
            // The rows a load leaves out under `keep_first` / `keep_last` are left out here
            // too, so a load that settled them verifies clean.
            if table.on_duplicate.settles() {
                let keys = unique::present(tx, table).await?;
                unique::settle(tx, staging, &keys, &mut t, &mut self.rejects).await?;
            }
            t.verify = Some(diff::diff(tx, self.plan, staging, self.opts.examples, true).await?);
            clock.stop(None, &mut seconds);
        } else {
            let clock = Clock::start(observer, Phase::Write, Some(index));
            // The rows of the record are needed only when some source row is not exactly
            // what the last load wrote.
            let full = ex.read > ex.same + ex.rejected + ex.skipped;
            self.base
                .upload_if_needed(tx, table, index, full, ex.known)
                .await?;
            // Most rows unchanged: the few others are resolved once, not by every statement.
            if !empty
                && ex.same > 0
                && ex.same * 2 >= ex.read
                && let Some(sql) = staging.materialize_sql()
            {
                tx.batch_execute(&sql)
                    .await
                    .map_err(|e| table_error(&e, table, "keeping the resolved rows"))?;
                staging.materialized();
            }
            let staged = write_settled(
                tx,
                self.plan,
                staging,
                (empty, fresh, guarded),
                &mut self.set_aside,
                Merging {
                    base: self.base.base(index),
                    opts: self.opts,
                    conflicts: &mut self.report.conflicts,
                    notes: &mut self.report.notes,
                },
                &mut t,
                &mut self.rejects,
            )
            .await?;
            if empty {
                // Fresh statistics, so the joins of the tables that reference it plan well.
                tx.batch_execute(&format!("ANALYZE {}", table.qualified))
                    .await
                    .map_err(|e| {
                        unavailable(format!("analyzing `{}`: {}", table.name, describe_pg(&e)))
                    })?;
            }
            // A table empty at the start has no unchanged rows.
            t.unchanged = staged.map_or(0, |n| n.saturating_sub(t.inserted + t.updated))
                + t.unchanged_in_source;
            // A row staged in full that is now equal on both sides gets its fingerprint in
            // the record, so the record changes.
            if staged.is_some_and(|n| n > 0) {
                t.record_unchanged = false;
            }
            clock.stop(None, &mut seconds);
        }
        if t.rejected == 0 && t.skipped == 0 {
            self.digests[index] = digest;
        }
        t.seconds = seconds;
        self.report.rejects_total += t.rejected;
        self.report.tables.push(t);
        Ok(())
    }
}

/// Write one table (by `fresh` or `merge`), then put back its unique keys set aside for
/// the bulk load. When the write fails on the data, or a key cannot be put back, the write is
/// undone and every unique key of the table searched for colliding rows (`unique`): under
/// `on_duplicate = "error"` the load fails naming them all; otherwise the rows that lose are
/// rejected and the write runs again. When the search for duplicate legacy ids was left to
/// a unique key (`guarded`), it is made then too, first. Returns the rows staged and not
/// dropped, when `merge` wrote them.
#[allow(clippy::too_many_arguments)]
async fn write_settled(
    tx: &Transaction<'_>,
    plan: &Plan,
    staging: &Staging<'_>,
    (empty, fresh, guarded): (bool, bool, bool),
    set_aside: &mut SetAside,
    mut merging: Merging<'_>,
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<Option<u64>> {
    let table = staging.table();
    let savepoint = |sql: &'static str| async move {
        tx.batch_execute(sql)
            .await
            .map_err(|e| unavailable(format!("writing `{}`: {}", table.name, describe_pg(&e))))
    };
    let before = (
        t.clone(),
        rejects.len(),
        merging.conflicts.clone(),
        merging.notes.len(),
    );
    savepoint("SAVEPOINT cutover_unique").await?;
    // Whether the rows went in and only putting a key back failed (so they can stay in,
    // that key set aside, and the other tables still be loaded and searched).
    let (first, written) =
        match write_once(tx, plan, staging, empty, fresh, &mut merging, t, rejects).await {
            Ok(staged) => {
                let violated = bulk::rebuild_unique(tx, set_aside, &table.qualified).await?;
                if violated.is_empty() {
                    savepoint("RELEASE SAVEPOINT cutover_unique").await?;
                    return Ok(staged);
                }
                (violated_error(table, &violated), true)
            }
            Err(e) if crate::error::exit_code(&e) == 1 => (e, false),
            Err(e) => return Err(e),
        };
    savepoint("ROLLBACK TO SAVEPOINT cutover_unique").await?;
    set_aside.rolled_back(&table.qualified);
    // Rows are dropped below: the resolved rows kept aside would no longer be them.
    staging.forget_materialized();
    *t = before.0;
    rejects.truncate(before.1);
    *merging.conflicts = before.2;
    merging.notes.truncate(before.3);
    let repeated = if guarded {
        let before = t.rejected;
        super::resolve::duplicates(tx, staging, false, t, rejects).await?;
        t.rejected > before
    } else {
        false
    };
    let mut keys = set_aside.unique_of(&table.qualified);
    keys.extend(unique::present(tx, table).await?);
    let settled = unique::settle(tx, staging, &keys, t, rejects).await?;
    if !settled.rejected && settled.refused.is_none() && !repeated {
        return Err(first);
    }
    if let (Some(why), false) = (&settled.refused, written) {
        return Err(unique::refusal(why));
    }
    let staged = write_once(tx, plan, staging, empty, fresh, &mut merging, t, rejects).await?;
    let violated = bulk::rebuild_unique(tx, set_aside, &table.qualified).await?;
    match settled.refused {
        // The load fails once every table is loaded, naming every colliding key of each.
        Some(why) => set_aside.refuse(why),
        None if !violated.is_empty() => return Err(violated_error(table, &violated)),
        None => {}
    }
    savepoint("RELEASE SAVEPOINT cutover_unique").await?;
    Ok(staged)
}

/// What a merge weighs and finds beside the rows: the record of the last load, the options,
/// and where it puts the conflicts and notes it finds.
struct Merging<'a> {
    base: Option<&'a Base>,
    opts: &'a Options,
    conflicts: &'a mut Conflicts,
    notes: &'a mut Vec<String>,
}

/// Write one table once: by `fresh` (returning None) or by `merge` (returning the rows
/// staged and not dropped).
#[allow(clippy::too_many_arguments)]
async fn write_once(
    tx: &Transaction<'_>,
    plan: &Plan,
    staging: &Staging<'_>,
    empty: bool,
    fresh: bool,
    merging: &mut Merging<'_>,
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<Option<u64>> {
    if fresh {
        let staged = merge::staged(tx, staging).await?;
        fresh::write(tx, staging, staged, t, rejects).await?;
        Ok(None)
    } else {
        merge::write(
            tx,
            plan,
            staging,
            empty,
            merging.base,
            merging.opts,
            t,
            (&mut *merging.conflicts, &mut *merging.notes),
        )
        .await?;
        Ok(Some(merge::staged(tx, staging).await?))
    }
}

/// Unique keys that could not be put back, with PostgreSQL's words.
fn violated_error(table: &crate::plan::TablePlan, violated: &[(String, String)]) -> anyhow::Error {
    let list: Vec<String> = violated
        .iter()
        .map(|(name, why)| format!("  rebuilding {name}: {why}"))
        .collect();
    data(format!(
        "table `{}`: rows collide on unique keys of the target:\n{}\n  Nothing was committed; fix these rows in the source, or set on_duplicate in the mapping.",
        table.name,
        list.join("\n")
    ))
}
