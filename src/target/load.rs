//! The load, inside one transaction: stage each table with binary COPY, resolve legacy ids
//! to target ids, merge (or replace), prune, reset sequences, check counts — then commit,
//! or roll back for a dry run or on any failure.
//!
//! Every table goes through a temporary staging table (`cutover_stage_N`, dropped at commit)
//! so that the merge is set-based SQL: references resolve with a join on the parent's legacy
//! column (no id map held in memory), unchanged rows are recognised with `IS DISTINCT FROM`
//! and never rewritten, and rows the application created after cutover (legacy id NULL) are
//! never touched.

use super::diagnose;
use super::sequences;
use super::sql::ident;
use crate::error::{data, describe_pg, unavailable};
use crate::extract::{Extracted, Msg};
use crate::mapping::OnMissing;
use crate::plan::{Plan, TableKind, TablePlan};
use crate::report::{RejectRow, Report, TableReport};
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_postgres::{Client, Transaction};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Merge,
    Replace,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub prune: bool,
    pub dry_run: bool,
    pub max_rejects: u64,
    pub expect_revision: Option<String>,
}

/// The result of a load: the report (committed or not) and every reject kept in detail.
pub struct Outcome {
    pub report: Report,
    pub rejects: Vec<RejectRow>,
    /// Why nothing was committed, when the data did not check out.
    pub failure: Option<anyhow::Error>,
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
    let tables: Vec<&str> = plan.tables.iter().map(|t| t.qualified.as_str()).collect();
    let saved = sequences::snapshot(client, &tables).await?;
    let result = load(client, plan, rx, opts).await;
    match result {
        Ok((mut outcome, tx_done)) => {
            if tx_done {
                outcome.report.committed = true;
            } else {
                // Rolled back: sequences are not transactional, put them back as they were.
                sequences::restore(client, &saved).await?;
            }
            Ok(outcome)
        }
        Err(e) => {
            // The transaction was dropped (rolled back); undo any sequence advance.
            let _ = sequences::restore(client, &saved).await;
            Err(e)
        }
    }
}

async fn load(
    client: &mut Client,
    plan: &Plan,
    rx: &mut mpsc::Receiver<Msg>,
    opts: &Options,
) -> anyhow::Result<(Outcome, bool)> {
    let tx = client
        .transaction()
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
    check_revision(&tx, opts.expect_revision.as_deref()).await?;

    if opts.mode == Mode::Replace {
        let list: Vec<&str> = plan.tables.iter().map(|t| t.qualified.as_str()).collect();
        tx.batch_execute(&format!("TRUNCATE {} RESTART IDENTITY", list.join(", ")))
            .await
            .map_err(|e| {
                unavailable(format!(
                    "--mode replace could not empty the mapped tables: {}\n  Tables outside the mapping reference them; map those tables too, or use --mode merge.",
                    describe_pg(&e)
                ))
            })?;
    }

    let mut report = Report {
        mode: match opts.mode {
            Mode::Merge => "merge".into(),
            Mode::Replace => "replace".into(),
        },
        dry_run: opts.dry_run,
        max_rejects: opts.max_rejects,
        ..Report::default()
    };
    let mut rejects: Vec<RejectRow> = Vec::new();

    for (index, table) in plan.tables.iter().enumerate() {
        let ex = stage(&tx, index, table, rx).await?;
        let mut t = TableReport {
            table: table.name.clone(),
            source: table.from.clone(),
            read: ex.read,
            rejected: ex.rejected,
            ..TableReport::default()
        };
        rejects.extend(ex.rejects);
        merge(&tx, plan, index, table, &mut t, &mut rejects).await?;
        report.rejects_total += t.rejected;
        report.tables.push(t);
    }

    if opts.prune {
        for (index, table) in plan.tables.iter().enumerate().rev() {
            if let TableKind::Entity { match_column } = &table.kind {
                let n = tx
                    .execute(
                        &format!(
                            "DELETE FROM {t} t WHERE t.{m} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {s} s WHERE s.c0 = t.{m})",
                            t = table.qualified,
                            m = ident(match_column),
                            s = table.stage_table(index)
                        ),
                        &[],
                    )
                    .await
                    .map_err(|e| pg_error(&e, table, "pruning rows no longer in the source"))?;
                report.tables[index].deleted += n;
            }
        }
    }

    report.sequences_reset = sequences::reset(
        &tx,
        &plan
            .tables
            .iter()
            .map(|t| t.qualified.as_str())
            .collect::<Vec<_>>(),
    )
    .await?;

    // Count check: every staged row that was not rejected or skipped is in the target.
    let mut failure = None;
    for (index, table) in plan.tables.iter().enumerate() {
        let (expected, found) = count_check(&tx, index, table).await?;
        report.tables[index].target = found;
        if expected != found && failure.is_none() {
            failure = Some(data(format!(
                "row count mismatch in `{}`: {expected} source rows should be loaded (read minus rejected and skipped) but {found} target rows carry their legacy ids",
                table.name
            )));
        }
    }
    if report.rejects_total > opts.max_rejects && failure.is_none() {
        failure = Some(data(format!(
            "{} rows were rejected, more than --max-rejects {}; nothing was committed. Fix the source or the mapping (see the rejects), or raise --max-rejects.",
            report.rejects_total, opts.max_rejects
        )));
    }

    let commit = failure.is_none() && !opts.dry_run;
    if commit {
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
    Ok((
        Outcome {
            report,
            rejects,
            failure,
        },
        commit,
    ))
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

/// Create the staging table and COPY the table's rows into it.
async fn stage(
    tx: &Transaction<'_>,
    index: usize,
    table: &TablePlan,
    rx: &mut mpsc::Receiver<Msg>,
) -> anyhow::Result<Extracted> {
    let stage = table.stage_table(index);
    let cols: Vec<String> = table
        .stage
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} {}", TablePlan::stage_col(i), c.sql_type))
        .collect();
    let mut ddl =
        format!("CREATE TEMP TABLE {stage} (row_ bigint NOT NULL, drop_ boolean NOT NULL");
    for c in &cols {
        ddl.push_str(", ");
        ddl.push_str(c);
    }
    ddl.push_str(") ON COMMIT DROP");
    tx.batch_execute(&ddl)
        .await
        .map_err(|e| pg_error(&e, table, "creating its staging table"))?;

    let sink = tx
        .copy_in::<_, bytes::Bytes>(&format!("COPY {stage} FROM STDIN (FORMAT binary)"))
        .await
        .map_err(|e| pg_error(&e, table, "starting COPY"))?;
    let mut sink = std::pin::pin!(sink);
    loop {
        match rx.recv().await {
            Some(Msg::Chunk(bytes)) => {
                if let Err(e) = sink.send(bytes).await {
                    return Err(pg_error(&e, table, "COPY"));
                }
            }
            Some(Msg::End(ex)) => {
                sink.as_mut()
                    .finish()
                    .await
                    .map_err(|e| pg_error(&e, table, "COPY"))?;
                tx.batch_execute(&format!("CREATE INDEX ON {stage} (c0); ANALYZE {stage}"))
                    .await
                    .map_err(|e| pg_error(&e, table, "indexing its staging table"))?;
                return Ok(ex);
            }
            // The convert stage stopped; its own error is reported by the caller.
            None => {
                return Err(anyhow::anyhow!(
                    "reading the source stopped while loading `{}`",
                    table.name
                ));
            }
        }
    }
}

/// Bring the target table in line with its staging table.
async fn merge(
    tx: &Transaction<'_>,
    plan: &Plan,
    index: usize,
    table: &TablePlan,
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<()> {
    let s = table.stage_table(index);
    // How a row is named in messages: its legacy id, or for a link the legacy ids it joins.
    let legacy_text = if table.is_junction() {
        let parts: Vec<String> = table
            .stage
            .iter()
            .enumerate()
            .filter(|(_, c)| c.reference.is_some())
            .map(|(i, c)| {
                format!(
                    "{} || '=' || coalesce(s.c{i}::text, 'NULL')",
                    super::sql::literal(&c.target)
                )
            })
            .collect();
        parts.join(" || ' ' || ")
    } else {
        "s.c0::text".to_string()
    };

    // 1. Duplicate identities in the source: keep the first, reject (or, for links, skip) the rest.
    let partition: Vec<String> = table
        .stage
        .iter()
        .enumerate()
        .filter(|(_, c)| c.key)
        .map(|(i, _)| format!("c{i}"))
        .collect();
    let dups = tx
        .query(
            &format!(
                "WITH d AS (SELECT row_, row_number() OVER (PARTITION BY {p} ORDER BY row_) AS n FROM {s} WHERE NOT drop_)
                 UPDATE {s} s SET drop_ = true FROM d WHERE s.row_ = d.row_ AND d.n > 1 RETURNING {legacy_text}",
                p = partition.join(", ")
            ),
            &[],
        )
        .await
        .map_err(|e| pg_error(&e, table, "finding duplicate legacy ids"))?;
    if table.is_junction() {
        t.skipped += dups.len() as u64;
    } else {
        t.rejected += dups.len() as u64;
        for r in dups {
            let id: String = r.get(0);
            rejects.push(RejectRow {
                table: table.name.clone(),
                value: id.clone(),
                legacy_id: id,
                column: table.stage[0].target.clone(),
                reason: "duplicate legacy id: an earlier source row has the same id".into(),
            });
        }
    }

    // 2. References that do not resolve, per policy.
    for (i, c) in table.stage.iter().enumerate() {
        let Some(r) = &c.reference else { continue };
        let unresolved = format!(
            "NOT s.drop_ AND s.c{i} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {p} p WHERE p.{m} = s.c{i})",
            p = r.qualified,
            m = ident(&r.match_column)
        );
        match r.on_missing {
            OnMissing::Null => {
                let n: i64 = tx
                    .query_one(
                        &format!("SELECT count(*) FROM {s} s WHERE {unresolved}"),
                        &[],
                    )
                    .await
                    .map_err(|e| pg_error(&e, table, "resolving references"))?
                    .get(0);
                t.nulled += n as u64;
            }
            OnMissing::Error | OnMissing::Skip => {
                let rows = tx
                    .query(&format!("UPDATE {s} s SET drop_ = true WHERE {unresolved} RETURNING {legacy_text}, s.c{i}::text"), &[])
                    .await
                    .map_err(|e| pg_error(&e, table, "resolving references"))?;
                let skip = r.on_missing == OnMissing::Skip;
                if skip {
                    t.skipped += rows.len() as u64;
                } else {
                    t.rejected += rows.len() as u64;
                }
                for row in rows {
                    let value: String = row.get(1);
                    rejects.push(RejectRow {
                        table: table.name.clone(),
                        legacy_id: row.get(0),
                        column: c.target.clone(),
                        reason: format!(
                            "{}references `{}` legacy id {value}, which is not in the target{}",
                            if skip { "skipped: " } else { "" },
                            r.table,
                            if skip { "" } else { " (set on_missing = \"null\" or \"skip\" in the mapping to load the rest)" }
                        ),
                        value,
                    });
                }
            }
        }
    }

    // 3. The resolved rows: references joined to their parents' primary keys.
    let mut select = vec!["s.row_".to_string()];
    let mut joins = String::new();
    for (i, c) in table.stage.iter().enumerate() {
        match &c.reference {
            Some(r) => {
                select.push(format!("p{i}.{} AS r{i}", ident(&r.pk)));
                joins.push_str(&format!(
                    " LEFT JOIN {} p{i} ON p{i}.{} = s.c{i}",
                    r.qualified,
                    ident(&r.match_column)
                ));
            }
            None => select.push(format!("s.c{i} AS r{i}")),
        }
    }
    let resolved = format!(
        "SELECT {} FROM {s} s{joins} WHERE NOT s.drop_",
        select.join(", ")
    );
    let key_cols: Vec<usize> = table
        .stage
        .iter()
        .enumerate()
        .filter(|(_, c)| c.key)
        .map(|(i, _)| i)
        .collect();
    let matches = |alias: &str| -> String {
        key_cols
            .iter()
            .map(|&i| {
                let target = match &table.kind {
                    TableKind::Entity { match_column } if i == 0 => match_column.clone(),
                    _ => table.stage[i].target.clone(),
                };
                format!("{alias}.{} = r.r{i}", ident(&target))
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let key_match = if let TableKind::Entity { match_column } = &table.kind {
        format!("t.{} = r.r0", ident(match_column))
    } else {
        matches("t")
    };

    // 4. Update rows whose values changed; unchanged rows are not rewritten.
    let value_cols: Vec<usize> = (0..table.stage.len())
        .filter(|i| !key_cols.contains(i))
        .collect();
    let update = (!value_cols.is_empty()).then(|| {
        let names: Vec<String> = value_cols
            .iter()
            .map(|&i| ident(&table.stage[i].target))
            .collect();
        let new: Vec<String> = value_cols.iter().map(|&i| format!("r.r{i}")).collect();
        let cmp = |alias: &str| -> Vec<String> {
            value_cols
                .iter()
                .map(|&i| {
                    let col = if alias == "t" {
                        format!("t.{}", ident(&table.stage[i].target))
                    } else {
                        format!("r.r{i}")
                    };
                    if table.stage[i].compare_as_text {
                        format!("{col}::text")
                    } else {
                        col
                    }
                })
                .collect()
        };
        format!(
            "UPDATE {tt} t SET ({names}) = ROW({new}) FROM ({resolved}) r WHERE {key_match} AND ({old_cmp}) IS DISTINCT FROM ({new_cmp})",
            tt = table.qualified,
            names = names.join(", "),
            new = new.join(", "),
            old_cmp = cmp("t").join(", "),
            new_cmp = cmp("r").join(", "),
        )
    });

    // 5. Insert rows not yet in the target, in source order.
    let targets: Vec<String> = table.stage.iter().map(|c| ident(&c.target)).collect();
    let values: Vec<String> = (0..table.stage.len()).map(|i| format!("r.r{i}")).collect();
    let insert = format!(
        "INSERT INTO {tt} ({cols}){over} SELECT {vals} FROM ({resolved}) r WHERE NOT EXISTS (SELECT 1 FROM {tt} t WHERE {key_match}) ORDER BY r.row_",
        tt = table.qualified,
        cols = targets.join(", "),
        over = if table.overriding {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        },
        vals = values.join(", "),
    );

    // 6. Junctions: the source describes all links of its owners; remove the others.
    let mut unlink = None;
    if let TableKind::Junction { owner } = table.kind
        && let Some(r) = &table.stage[owner].reference
        && let TableKind::Entity { match_column } = &plan.tables[r.parent].kind
    {
        let parent = &plan.tables[r.parent];
        unlink = Some(format!(
            "DELETE FROM {tt} t WHERE t.{own} IN (SELECT p.{pk} FROM {pq} p JOIN {ps} ps ON ps.c0 = p.{pm} WHERE NOT ps.drop_)
               AND NOT EXISTS (SELECT 1 FROM ({resolved}) r WHERE {m})",
            tt = table.qualified,
            own = ident(&table.stage[owner].target),
            pk = ident(&r.pk),
            pq = parent.qualified,
            ps = parent.stage_table(r.parent),
            pm = ident(match_column),
            m = matches("t"),
        ));
    }

    // The writes run under a savepoint so that a constraint violation can be traced back
    // to the source rows that caused it before the error is returned.
    tx.batch_execute("SAVEPOINT cutover_merge")
        .await
        .map_err(|e| pg_error(&e, table, "starting the merge"))?;
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
                    ids = diagnose::offenders(tx, table, &resolved, db).await;
                }
                let doing = match ids {
                    Some(ids) => format!("{doing} (source rows with legacy ids {ids})"),
                    None => doing.to_string(),
                };
                return Err(pg_error(&e, table, &doing));
            }
        }
    }
    [t.updated, t.inserted, t.deleted] = counts;
    tx.batch_execute("RELEASE SAVEPOINT cutover_merge")
        .await
        .map_err(|e| pg_error(&e, table, "finishing the merge"))?;

    let staged: i64 = tx
        .query_one(&format!("SELECT count(*) FROM {s} WHERE NOT drop_"), &[])
        .await
        .map_err(|e| pg_error(&e, table, "counting"))?
        .get(0);
    t.unchanged = (staged as u64).saturating_sub(t.inserted + t.updated);
    Ok(())
}

/// (rows that should be in the target, rows that are).
async fn count_check(
    tx: &Transaction<'_>,
    index: usize,
    table: &TablePlan,
) -> anyhow::Result<(u64, u64)> {
    let s = table.stage_table(index);
    let sql = match &table.kind {
        TableKind::Entity { match_column } => format!(
            "SELECT (SELECT count(*) FROM {s} WHERE NOT drop_),
                    (SELECT count(*) FROM {t} t WHERE EXISTS (SELECT 1 FROM {s} s WHERE NOT s.drop_ AND s.c0 = t.{m}))",
            t = table.qualified,
            m = ident(match_column)
        ),
        TableKind::Junction { .. } => {
            let mut joins = String::new();
            let mut conds = Vec::new();
            for (i, c) in table.stage.iter().enumerate() {
                if let Some(r) = &c.reference {
                    joins.push_str(&format!(" JOIN {} p{i} ON p{i}.{} = s.c{i}", r.qualified, ident(&r.match_column)));
                    conds.push(format!("t.{} = p{i}.{}", ident(&c.target), ident(&r.pk)));
                }
            }
            format!(
                "SELECT (SELECT count(*) FROM {s} WHERE NOT drop_),
                        (SELECT count(*) FROM {s} s{joins} WHERE NOT s.drop_ AND EXISTS (SELECT 1 FROM {t} t WHERE {c}))",
                t = table.qualified,
                c = conds.join(" AND ")
            )
        }
    };
    let row = tx
        .query_one(&sql, &[])
        .await
        .map_err(|e| pg_error(&e, table, "checking row counts"))?;
    Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
}

/// A database error with the table it happened in and PostgreSQL's DETAIL.
fn pg_error(e: &tokio_postgres::Error, table: &TablePlan, doing: &str) -> anyhow::Error {
    let msg = format!("table `{}`, {doing}: {}", table.name, describe_pg(e));
    match e.as_db_error().map(|d| d.code().code().to_string()) {
        Some(code) if code.starts_with("23") => data(format!(
            "{msg}\n  Nothing was committed; fix these rows in the source, or the mapping, and run again."
        )),
        _ => unavailable(msg),
    }
}
