//! Bringing one target table in line with its staging table, in set-based SQL.
//!
//! Given the resolved rows (`resolve.rs`), [`write`] updates rows whose values changed
//! (unchanged rows are not rewritten), inserts new ones in source order and, for a junction,
//! removes links its owners no longer have.

use super::TableReport;
use super::diagnose;
use super::table_error;
use crate::pg::sql::ident;
use crate::plan::Plan;
use crate::plan::staging::{RESOLVED_ORDER, Staging};
use tokio_postgres::Transaction;

/// Update changed rows, insert new ones, and remove stale links. Runs under a savepoint so
/// that a constraint violation can be traced back to the source rows behind it. A table that
/// was `empty` when the load started has nothing to update or match: every row is inserted.
pub(crate) async fn write(
    tx: &Transaction<'_>,
    plan: &Plan,
    staging: &Staging<'_>,
    empty: bool,
    t: &mut TableReport,
) -> anyhow::Result<()> {
    let table = staging.table();
    let sel = staging.resolved();
    let key = staging.key_match();
    let value_cols = staging.value_cols();
    let update = (!value_cols.is_empty() && !empty).then(|| {
        let names: Vec<String> = value_cols
            .iter()
            .map(|&i| ident(&table.stage[i].target))
            .collect();
        let new: Vec<String> = value_cols
            .iter()
            .map(|&i| Staging::resolved_col(i))
            .collect();
        format!(
            "UPDATE {tt} t SET ({names}) = ROW({new}) FROM ({sel}) r WHERE {key} AND {differs}",
            tt = table.qualified,
            names = names.join(", "),
            new = new.join(", "),
            differs = staging.differs(),
        )
    });
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
        staging
            .stale_links(plan)
            .map(|stale| format!("DELETE FROM {} t WHERE {stale}", table.qualified))
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
    tx.batch_execute("RELEASE SAVEPOINT cutover_merge")
        .await
        .map_err(|e| table_error(&e, table, "finishing the merge"))?;
    Ok(())
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

/// Delete entity rows whose legacy id is no longer in the source (never rows whose legacy
/// id is NULL, which the application created).
pub(crate) async fn prune(tx: &Transaction<'_>, staging: &Staging<'_>) -> anyhow::Result<u64> {
    let Some(gone) = staging.gone() else {
        return Ok(0);
    };
    let table = staging.table();
    tx.execute(
        &format!("DELETE FROM {} t WHERE {gone}", table.qualified),
        &[],
    )
    .await
    .map_err(|e| table_error(&e, table, "pruning rows no longer in the source"))
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
            "SELECT count(*) FROM ({sel}) r WHERE EXISTS (SELECT 1 FROM {t} t WHERE {key})",
            sel = staging.resolved(),
            t = table.qualified,
            key = staging.key_match()
        )
    };
    let n: i64 = tx
        .query_one(&sql, &[])
        .await
        .map_err(|e| table_error(&e, table, "checking row counts"))?
        .get(0);
    Ok(n as u64)
}
