//! Writing a table that was empty when the load started (every table on cutover day, and
//! each one after `--mode replace`'s truncate), optimistically.
//!
//! Its keys, indexes and foreign keys are set aside (`bulk`) and it has nothing to match or
//! update, so its rows are written once: one INSERT … SELECT takes every staged row whose
//! references all resolve. Only when fewer rows went in than are staged are the references
//! judged (`resolve::references`), over the rows held back alone, and the rows kept with a
//! reference set to NULL (`on_missing = "null"`) written after the others. The common case —
//! every reference resolves — so pays no separate pass looking for dangling references.
//!
//! The joins that resolve references hash the parents' legacy ids; `work_mem` is raised for
//! the rest of the transaction so that a parent of a few hundred thousand rows hashes in one
//! batch rather than spilling to disk (PostgreSQL docs, "Resource Consumption").
//!
//! Writing the held-back rows last changes the order rows go in, so this is only for tables
//! whose ids do not come from a sequence (ids kept from the source, links); the others are
//! resolved first and written in source order by `merge`, so that re-loads give the same ids.

use super::resolve::{self, DANGLING_IN_MEMORY};
use super::{TableReport, diagnose, table_error};
use crate::convert::reject::RejectRow;
use crate::pg::sql::ident;
use crate::plan::TablePlan;
use crate::plan::staging::Staging;
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

/// `work_mem` for the joins of a fresh table's write.
const WORK_MEM: &str = "64MB";

/// Whether `table`, empty when the load started, is written here rather than by `merge`.
/// Not a table with values PostgreSQL may refuse (text input, domains), which `resolve`
/// tries first, nor one with references set once every table is written (`cycles`).
pub(crate) fn applies(table: &TablePlan) -> bool {
    table.ids_from_source
        && table.stage.iter().all(|c| {
            c.coercion.as_ref().is_none_or(|k| !k.refusable)
                && c.reference.as_ref().is_none_or(|r| !r.deferred)
        })
}

/// Insert the `staged` rows (staged and not dropped) of a table that was empty at the start,
/// judging references only for rows that did not resolve. Runs under a savepoint so that a
/// constraint violation can be traced back to the source rows behind it.
pub(crate) async fn write(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    staged: u64,
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<()> {
    let table = staging.table();
    tx.batch_execute(&format!(
        "SET LOCAL work_mem = '{WORK_MEM}'; SAVEPOINT cutover_fresh"
    ))
    .await
    .map_err(|e| table_error(&e, table, "starting the insert"))?;
    let mut inserted = insert(tx, staging, &staging.resolved_complete(), &[]).await?;
    if inserted < staged
        && let Some(dangling) = staging.dangling(DANGLING_IN_MEMORY + 1)
    {
        let rows = tx
            .query(&dangling, &[])
            .await
            .map_err(|e| table_error(&e, table, "resolving references"))?;
        match resolve::references(tx, staging, &rows, t, rejects).await? {
            Some(kept) if kept.is_empty() => {}
            Some(kept) => {
                inserted += insert(tx, staging, &staging.resolved_among(), &[&kept]).await?;
            }
            None => {
                inserted += insert(tx, staging, &staging.resolved_incomplete(), &[]).await?;
            }
        }
    }
    tx.batch_execute("RELEASE SAVEPOINT cutover_fresh")
        .await
        .map_err(|e| table_error(&e, table, "finishing the insert"))?;
    t.inserted = inserted;
    Ok(())
}

/// INSERT the resolved rows `select` gives (with `params`) into the target. A constraint
/// violation rolls back to the savepoint and names the source rows behind it.
async fn insert(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    select: &str,
    params: &[&(dyn ToSql + Sync)],
) -> anyhow::Result<u64> {
    let table = staging.table();
    let cols: Vec<String> = table.stage.iter().map(|c| ident(&c.target)).collect();
    let vals: Vec<String> = (0..table.stage.len()).map(Staging::resolved_col).collect();
    let sql = format!(
        "INSERT INTO {tt} ({cols}){over} SELECT {vals} FROM ({select}) r",
        tt = table.qualified,
        cols = cols.join(", "),
        over = if table.overriding {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        },
        vals = vals.join(", "),
    );
    match tx.execute(&sql, params).await {
        Ok(n) => Ok(n),
        Err(e) => {
            let mut doing = "inserting new rows".to_string();
            if let Some(db) = e.as_db_error()
                && db.code().code().starts_with("23")
                && tx
                    .batch_execute("ROLLBACK TO SAVEPOINT cutover_fresh")
                    .await
                    .is_ok()
                && let Some(ids) = diagnose::offenders(tx, staging, db).await
            {
                doing.push_str(&format!(" (source rows with legacy ids {ids})"));
            }
            Err(table_error(&e, table, &doing))
        }
    }
}
