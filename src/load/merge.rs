//! Bringing one target table in line with its staging table, in set-based SQL.
//!
//! Given the resolved rows (`resolve.rs`), [`write`] updates the values the source changed
//! since the last load (`record.rs`) — never silently over a value the application changed
//! meanwhile: that is a conflict, resolved by `on_conflict` and reported — inserts new rows
//! in source order and, for a junction, removes links its owners no longer have (never a
//! link to a row the application created, nor an owner's links when one of them was left
//! out). `prune` names the rows that keep a row from being pruned.

use super::diagnose;
use super::record::{Base, hash};
use super::table_error;
use super::{Conflict, Conflicts, Options, TableReport};
use crate::error::data;
use crate::pg::sql::{ident, literal};
use crate::plan::staging::{RESOLVED_ORDER, Staging};
use crate::plan::{Plan, TableKind};
use tokio_postgres::Transaction;
use tokio_postgres::error::SqlState;

/// Update changed rows, insert new ones, and remove stale links. Runs under a savepoint so
/// that a constraint violation can be traced back to the source rows behind it. A table that
/// was `empty` when the load started has nothing to update or match: every row is inserted.
///
/// A row's value column is written only when the source changed it since the last load
/// (`base`, the record) and the target differs from the source. When the target no longer
/// holds what cutover last wrote either, the application changed it: a conflict, kept or
/// overwritten as `opts` says, and reported in `conflicts`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write(
    tx: &Transaction<'_>,
    plan: &Plan,
    staging: &Staging<'_>,
    empty: bool,
    base: Option<&Base>,
    opts: &Options,
    t: &mut TableReport,
    found: (&mut Conflicts, &mut Vec<String>),
) -> anyhow::Result<()> {
    let (conflicts, notes) = found;
    let table = staging.table();
    let sel = staging.resolved();
    let key = staging.key_match();
    let value_cols = staging.value_cols();
    let update = if !value_cols.is_empty() && !empty {
        three_way(tx, staging, base, opts, t, conflicts).await?
    } else {
        None
    };
    let targets: Vec<String> = table.stage.iter().map(|c| ident(&c.target)).collect();
    let values: Vec<String> = (0..table.stage.len()).map(Staging::resolved_col).collect();
    let new_only = if empty {
        String::new()
    } else {
        format!(
            " WHERE NOT EXISTS (SELECT 1 FROM {} t WHERE {key})",
            table.qualified
        )
    };
    let insert = format!(
        "INSERT INTO {tt} ({cols}){over} SELECT {vals} FROM ({sel}) r{new_only}{order}",
        tt = table.qualified,
        cols = targets.join(", "),
        over = if table.overriding {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        },
        vals = values.join(", "),
        // Ids drawn from a sequence follow source order, so re-loads give the same ids.
        order = if table.ids_from_source {
            String::new()
        } else {
            format!(" ORDER BY {RESOLVED_ORDER}")
        },
    );
    let unlink = if empty {
        None
    } else {
        unlink(tx, plan, staging, t, notes).await?
    };

    tx.batch_execute("SAVEPOINT cutover_merge")
        .await
        .map_err(|e| table_error(&e, table, "starting the merge"))?;
    let steps = [
        (update.as_deref(), "updating changed rows"),
        (Some(insert.as_str()), "inserting new rows"),
        (unlink.as_deref(), "removing links no longer in the source"),
    ];
    let mut counts = [0u64; 3];
    for (n, (sql, doing)) in steps.iter().enumerate() {
        let Some(sql) = sql else { continue };
        match tx.execute(*sql, &[]).await {
            Ok(k) => counts[n] = k,
            Err(e) => {
                let mut ids = None;
                if let Some(db) = e.as_db_error()
                    && db.code().code().starts_with("23")
                    && tx
                        .batch_execute("ROLLBACK TO SAVEPOINT cutover_merge")
                        .await
                        .is_ok()
                {
                    ids = diagnose::offenders(tx, staging, db).await;
                }
                let doing = match ids {
                    Some(ids) => format!("{doing} (source rows with legacy ids {ids})"),
                    None => doing.to_string(),
                };
                return Err(table_error(&e, table, &doing));
            }
        }
    }
    [t.updated, t.inserted, t.deleted] = counts;
    t.record_unchanged &= t.inserted == 0;
    tx.batch_execute("RELEASE SAVEPOINT cutover_merge")
        .await
        .map_err(|e| table_error(&e, table, "finishing the merge"))?;
    Ok(())
}

/// How many conflicts are kept in detail over a whole run.
const CONFLICTS_IN_DETAIL: usize = 1000;

/// The three-way comparison of a table already holding rows: one read-only pass counts, per
/// value column, the values to write and the conflicts; the conflicts' first examples are
/// read; and the UPDATE that writes them is returned, or None when nothing is to be written.
async fn three_way(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    base: Option<&Base>,
    opts: &Options,
    t: &mut TableReport,
    conflicts: &mut Conflicts,
) -> anyhow::Result<Option<String>> {
    let table = staging.table();
    let from = match base {
        Some(b) => format!(
            "({sel}) r LEFT JOIN {b} b ON b.k = r.r0::text",
            sel = staging.resolved(),
            b = b.table
        ),
        None => format!("({}) r", staging.resolved()),
    };
    // Per value column: the source changed it since the record, the target differs from
    // the source, and the target is not what the record says cutover wrote (the
    // application changed it). Without a record, both sides count as changed.
    let mut writes = Vec::new();
    let mut clashes = Vec::new();
    // Values equal on both sides that the record does not have yet: the record changes.
    let mut rebases = Vec::new();
    for &i in staging.value_cols() {
        let c = &table.stage[i];
        let recorded = base
            .and_then(|b| b.hash_of(&c.target))
            .unwrap_or_else(|| "NULL::bigint".into());
        let (old, new) = staging.compared_col(i);
        let differs = format!("({old}) IS DISTINCT FROM ({new})");
        let source_changed = format!(
            "{} IS DISTINCT FROM {recorded}",
            hash(&Staging::resolved_col(i))
        );
        let app_changed = format!(
            "{} IS DISTINCT FROM {recorded}",
            hash(&format!("t.{}", ident(&c.target)))
        );
        let clash = format!("({differs} AND {source_changed} AND {app_changed})");
        let write = if opts.overwrites(&table.name, &c.target) {
            format!("({differs} AND {source_changed})")
        } else {
            format!("({differs} AND {source_changed} AND NOT {app_changed})")
        };
        writes.push(write);
        clashes.push(clash);
        rebases.push(format!("(NOT {differs} AND {source_changed})"));
    }
    let any_write = writes.join(" OR ");
    let tt = &table.qualified;
    let key = staging.key_match();
    let mut counts = vec![format!("count(*) FILTER (WHERE {any_write})")];
    counts.extend(
        clashes
            .iter()
            .map(|c| format!("count(*) FILTER (WHERE {c})")),
    );
    counts.push(format!("count(*) FILTER (WHERE {})", rebases.join(" OR ")));
    let row = tx
        .query_one(
            &format!(
                "SELECT {} FROM {tt} t JOIN {from} ON {key}",
                counts.join(", ")
            ),
            &[],
        )
        .await
        .map_err(|e| table_error(&e, table, "comparing with the source and the last load"))?;
    let to_write: i64 = row.get(0);
    let rebase: i64 = row.get(staging.value_cols().len() + 1);
    let names: Vec<&str> = staging
        .value_cols()
        .iter()
        .map(|&i| table.stage[i].target.as_str())
        .collect();
    t.record_unchanged = base.is_some_and(|b| b.is_of(&names)) && to_write == 0 && rebase == 0;
    for (n, &i) in staging.value_cols().iter().enumerate() {
        let k = row.get::<_, i64>(n + 1) as u64;
        if k == 0 {
            continue;
        }
        let c = &table.stage[i];
        let overwrite = opts.overwrites(&table.name, &c.target);
        t.conflicts += k;
        conflicts.total += k;
        if overwrite {
            conflicts.overwritten += k;
        } else {
            conflicts.kept += k;
        }
        let room = CONFLICTS_IN_DETAIL.saturating_sub(conflicts.examples.len());
        if room == 0 {
            continue;
        }
        let rows = tx
            .query(
                &format!(
                    "SELECT {label}, t.{col}::text, {new}::text FROM {tt} t JOIN {from} ON {key} WHERE {clash} ORDER BY {RESOLVED_ORDER} LIMIT {room}",
                    label = staging.label(),
                    col = ident(&c.target),
                    new = Staging::resolved_col(i),
                    clash = clashes[n],
                ),
                &[],
            )
            .await
            .map_err(|e| table_error(&e, table, "listing conflicts"))?;
        conflicts.examples.extend(rows.iter().map(|r| Conflict {
            table: table.name.clone(),
            source_table: table.from.clone(),
            legacy_id: r.get(0),
            column: c.target.clone(),
            application: r.get(1),
            source: r.get(2),
            resolution: if overwrite { "overwritten" } else { "kept" },
        }));
    }
    if to_write == 0 {
        return Ok(None);
    }
    let (names, values): (Vec<String>, Vec<String>) = staging
        .value_cols()
        .iter()
        .zip(&writes)
        .map(|(&i, w)| {
            let col = ident(&table.stage[i].target);
            (
                col.clone(),
                format!(
                    "CASE WHEN {w} THEN {new} ELSE t.{col} END",
                    new = Staging::resolved_col(i)
                ),
            )
        })
        .unzip();
    Ok(Some(format!(
        "UPDATE {tt} t SET ({names}) = ROW({values}) FROM {from} WHERE {key} AND ({any_write})",
        names = names.join(", "),
        values = values.join(", "),
    )))
}

/// The DELETE that brings a junction's links in line, or None. Links are only removed when
/// every source row of the table left out of this load (rejected or skipped) is still staged,
/// so that whose links it was is known; otherwise they are left as they are, and a note
/// says so.
async fn unlink(
    tx: &Transaction<'_>,
    plan: &Plan,
    staging: &Staging<'_>,
    t: &TableReport,
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<String>> {
    let table = staging.table();
    let Some(unlinkable) = staging.unlinkable(plan) else {
        return Ok(None);
    };
    let left_out = t.rejected + t.skipped;
    if left_out > 0 {
        let staged: i64 = tx
            .query_one(&staging.count_dropped(), &[])
            .await
            .map_err(|e| table_error(&e, table, "counting rows left out"))?
            .get(0);
        if (staged as u64) < left_out {
            notes.push(format!(
                "`{}`: no link was removed, since {} of its source rows were left out before their links could be told apart (see the rejects); fix them and run again to remove links the source no longer has",
                table.name, left_out
            ));
            return Ok(None);
        }
    }
    Ok(Some(format!(
        "DELETE FROM {} t WHERE {unlinkable}",
        table.qualified
    )))
}

/// Rows staged and not dropped (what should be in the target).
pub(crate) async fn staged(tx: &Transaction<'_>, staging: &Staging<'_>) -> anyhow::Result<u64> {
    let n: i64 = tx
        .query_one(&staging.count(), &[])
        .await
        .map_err(|e| table_error(&e, staging.table(), "counting staged rows"))?
        .get(0);
    Ok(n as u64)
}

/// Rows that should be in the target after the load: staged and not dropped, or found
/// unchanged since the last load.
pub(crate) async fn expected(tx: &Transaction<'_>, staging: &Staging<'_>) -> anyhow::Result<u64> {
    let n: i64 = tx
        .query_one(&staging.count_with_same(), &[])
        .await
        .map_err(|e| table_error(&e, staging.table(), "counting staged rows"))?
        .get(0);
    Ok(n as u64)
}

/// Delete entity rows whose legacy id is no longer in the source (never rows whose legacy
/// id is NULL, which the application created), and the links between legacy rows that hold
/// on to them. When rows that stay (the application's, or
/// in a table the mapping does not load) still reference rows to prune, the load stops and
/// names them, with the choices there are; nothing is pruned or committed.
pub(crate) async fn prune(
    tx: &Transaction<'_>,
    plan: &Plan,
    staging: &Staging<'_>,
) -> anyhow::Result<u64> {
    let Some(gone) = staging.gone().or_else(|| staging.gone_links(plan)) else {
        return Ok(0);
    };
    let table = staging.table();
    tx.batch_execute("SAVEPOINT cutover_prune")
        .await
        .map_err(|e| table_error(&e, table, "starting to prune"))?;
    match tx
        .execute(
            &format!("DELETE FROM {} t WHERE {gone}", table.qualified),
            &[],
        )
        .await
    {
        Ok(n) => {
            tx.batch_execute("RELEASE SAVEPOINT cutover_prune")
                .await
                .map_err(|e| table_error(&e, table, "pruning rows no longer in the source"))?;
            Ok(n)
        }
        Err(e) => {
            let blocked = e
                .as_db_error()
                .is_some_and(|d| d.code() == &SqlState::FOREIGN_KEY_VIOLATION);
            if blocked
                && tx
                    .batch_execute("ROLLBACK TO SAVEPOINT cutover_prune")
                    .await
                    .is_ok()
                && let Some(why) = blockers(tx, staging, &gone).await?
            {
                return Err(data(why));
            }
            Err(table_error(
                &e,
                table,
                "pruning rows no longer in the source",
            ))
        }
    }
}

/// How many referencing rows and rows to prune are named as examples.
const BLOCKING_EXAMPLES: usize = 5;

/// The rows that keep rows of `staging`'s table matching `gone` from being deleted: per
/// foreign key without an ON DELETE action, the referencing table, how many of its rows,
/// the first few by primary key, and the rows to prune they hold on to; then the choices.
async fn blockers(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    gone: &str,
) -> anyhow::Result<Option<String>> {
    let table = staging.table();
    let TableKind::Entity { match_column } = &table.kind else {
        return Ok(None);
    };
    let failed = |e: tokio_postgres::Error| {
        table_error(
            &e,
            table,
            "finding the rows that keep rows from being pruned",
        )
    };
    let cols = "SELECT array_agg(a.attname::text ORDER BY k.n) FROM unnest(COLS) WITH ORDINALITY k(att, n) JOIN pg_catalog.pg_attribute a ON a.attrelid = REL AND a.attnum = k.att";
    let fks = tx
        .query(
            &format!(
                "SELECT c.conname::text, c.conrelid::regclass::text, ({}), ({}),
                        coalesce((SELECT array_agg(a.attname::text ORDER BY k.n) FROM pg_catalog.pg_index i,
                                         unnest(i.indkey::int2[]) WITH ORDINALITY k(att, n)
                                         JOIN pg_catalog.pg_attribute a ON a.attnum = k.att
                                   WHERE i.indrelid = c.conrelid AND i.indisprimary AND a.attrelid = c.conrelid), '{{}}')
                   FROM pg_catalog.pg_constraint c
                  WHERE c.contype = 'f' AND c.confrelid = pg_catalog.to_regclass($1) AND c.confdeltype IN ('a', 'r')
                  ORDER BY 2, 1",
                cols.replace("COLS", "c.conkey").replace("REL", "c.conrelid"),
                cols.replace("COLS", "c.confkey").replace("REL", "c.confrelid"),
            ),
            &[&table.qualified],
        )
        .await
        .map_err(failed)?;
    let mut found = Vec::new();
    let mut held = Vec::new();
    for fk in &fks {
        let (name, from): (String, String) = (fk.get(0), fk.get(1));
        let (referencing, referenced, pk): (Vec<String>, Vec<String>, Vec<String>) =
            (fk.get(2), fk.get(3), fk.get(4));
        let list = |alias: &str, cols: &[String]| {
            cols.iter()
                .map(|c| format!("{alias}.{}", ident(c)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let holds = format!(
            "({}) IN (SELECT {} FROM {} t WHERE {gone})",
            list("c", &referencing),
            list("t", &referenced),
            table.qualified
        );
        let n: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {from} c WHERE {holds}"), &[])
            .await
            .map_err(failed)?
            .get(0);
        if n == 0 {
            continue;
        }
        let key = if pk.is_empty() { &referencing } else { &pk };
        let label = key
            .iter()
            .map(|c| {
                format!(
                    "{} || coalesce(c.{}::text, 'NULL')",
                    literal(&format!("{c}=")),
                    ident(c)
                )
            })
            .collect::<Vec<_>>()
            .join(" || ', ' || ");
        let rows = tx
            .query(
                &format!("SELECT {label} FROM {from} c WHERE {holds} LIMIT {BLOCKING_EXAMPLES}"),
                &[],
            )
            .await
            .map_err(failed)?;
        let examples: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        let ids = tx
            .query(
                &format!(
                    "SELECT t.{m}::text FROM {tt} t WHERE {gone} AND ({r}) IN (SELECT {c} FROM {from} c) ORDER BY 1 LIMIT {BLOCKING_EXAMPLES}",
                    m = ident(match_column),
                    tt = table.qualified,
                    r = list("t", &referenced),
                    c = list("c", &referencing),
                ),
                &[],
            )
            .await
            .map_err(failed)?;
        held.extend(ids.iter().map(|r| r.get::<_, String>(0)));
        found.push(format!(
            "{n} {rows} of `{from}` ({cols} -> {name}), e.g. {examples}",
            rows = if n == 1 { "row" } else { "rows" },
            cols = referencing.join(", "),
            examples = examples.join("; "),
        ));
    }
    if found.is_empty() {
        return Ok(None);
    }
    held.sort();
    held.dedup();
    Ok(Some(format!(
        "table `{}`: --prune cannot delete rows no longer in the source (legacy ids {}{}) that rows staying in the target still reference:\n  {}\n  Choices: keep those rows, by running without --prune (or putting them back in the source); or delete or re-point the referencing rows yourself first, then prune again. Nothing was pruned or committed.",
        table.name,
        held.join(", "),
        if held.len() >= BLOCKING_EXAMPLES {
            ", …"
        } else {
            ""
        },
        found.join("\n  "),
    )))
}

/// Target rows carrying this run's legacy ids (or links). A table that was empty holds
/// nothing else.
pub(crate) async fn loaded(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    empty: bool,
) -> anyhow::Result<u64> {
    let table = staging.table();
    let sql = if empty {
        format!("SELECT count(*) FROM {}", table.qualified)
    } else {
        format!(
            "SELECT (SELECT count(*) FROM ({sel}) r WHERE EXISTS (SELECT 1 FROM {t} t WHERE {key})){same}",
            sel = staging.resolved(),
            t = table.qualified,
            key = staging.key_match(),
            same = staging
                .same_count()
                .map(|q| format!(" + ({q})"))
                .unwrap_or_default(),
        )
    };
    let n: i64 = tx
        .query_one(&sql, &[])
        .await
        .map_err(|e| table_error(&e, table, "checking row counts"))?
        .get(0);
    Ok(n as u64)
}
