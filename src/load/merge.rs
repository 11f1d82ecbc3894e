//! Bringing one target table in line with its staging table, in set-based SQL.
//!
//! [`resolve`] rejects duplicate legacy ids and applies each reference's `on_missing` policy
//! by marking staged rows dropped; the rows left are the resolved rows [`Staging`] describes.
//! [`write`] updates rows whose values changed (unchanged rows are not rewritten), inserts
//! new ones in source order and, for a junction, removes links its owners no longer have.

use super::TableReport;
use super::diagnose;
use super::table_error;
use crate::convert::reject::{Code, RejectRow};
use crate::mapping::OnMissing;
use crate::pg::sql::ident;
use crate::plan::staging::{RESOLVED_ORDER, Staging};
use crate::plan::{Plan, RefPlan};
use tokio_postgres::Transaction;

/// Reject duplicates and unresolved references: the rows left are the resolved rows.
pub(crate) async fn resolve(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<()> {
    let table = staging.table();

    // 1. Duplicate identities: keep the first, reject (for links: skip) the rest. One cheap
    // aggregate first: duplicates are rare, and marking them needs a sort.
    let any: bool = tx
        .query_one(&staging.any_duplicates(), &[])
        .await
        .map_err(|e| table_error(&e, table, "finding duplicate legacy ids"))?
        .get(0);
    let dups = if any {
        tx.query(&staging.drop_duplicates(), &[])
            .await
            .map_err(|e| table_error(&e, table, "finding duplicate legacy ids"))?
    } else {
        Vec::new()
    };
    if table.is_junction() {
        t.skipped += dups.len() as u64;
    } else {
        t.rejected += dups.len() as u64;
        for r in dups {
            let id: String = r.get(0);
            rejects.push(RejectRow {
                table: table.name.clone(),
                source: table.from.clone(),
                value: id.clone(),
                legacy_id: id,
                column: table.stage[0].target.clone(),
                code: Code::DuplicateLegacyId,
                reason: "duplicate legacy id: an earlier source row has the same id".into(),
                ordinal: ordinal(r.get(1)),
                row: None,
            });
        }
    }

    // 2. References that do not resolve, per policy: one pass joining every parent finds the
    // rows with any dangling reference (usually none); each is then judged column by column
    // in stage order, as the mapping's policies say.
    let Some(dangling) = staging.dangling(DANGLING_IN_MEMORY + 1) else {
        return Ok(());
    };
    let refs: Vec<(usize, &RefPlan)> = table
        .stage
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.reference.as_ref().map(|r| (i, r)))
        .collect();
    let rows = tx
        .query(&dangling, &[])
        .await
        .map_err(|e| table_error(&e, table, "resolving references"))?;
    if rows.len() > DANGLING_IN_MEMORY {
        return dangling_set_based(tx, staging, t, rejects).await;
    }
    let n = refs.len();
    let mut dropped: Vec<String> = Vec::new();
    for row in &rows {
        for (k, (i, r)) in refs.iter().enumerate() {
            if !row.get::<_, bool>(2 + k) {
                continue;
            }
            let value: String = row.get::<_, Option<String>>(2 + n + k).unwrap_or_default();
            match r.on_missing {
                OnMissing::Null => {
                    t.nulled += 1;
                    continue;
                }
                OnMissing::Skip => t.skipped += 1,
                OnMissing::Error => t.rejected += 1,
            }
            rejects.push(RejectRow {
                table: table.name.clone(),
                source: table.from.clone(),
                legacy_id: row.get(1),
                column: table.stage[*i].target.clone(),
                code: dangling_code(r),
                reason: dangling_reason(r, &value),
                value,
                ordinal: ordinal(row.get(2 + 2 * n)),
                row: None,
            });
            dropped.push(row.get(0));
            break;
        }
    }
    if !dropped.is_empty() {
        tx.execute(&staging.drop_rows(), &[&dropped])
            .await
            .map_err(|e| table_error(&e, table, "resolving references"))?;
    }
    Ok(())
}

/// Many dangling references: mark them with one UPDATE per reference column, in stage order,
/// keeping only the first rejects in detail.
async fn dangling_set_based(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<()> {
    let table = staging.table();
    for (i, c) in table.stage.iter().enumerate() {
        let Some(r) = &c.reference else { continue };
        let (Some(count), Some(examples), Some(drop)) = (
            staging.count_unresolved(i),
            staging.unresolved_examples(i, 1000),
            staging.drop_unresolved(i),
        ) else {
            continue;
        };
        let counted = |e| table_error(&e, table, "resolving references");
        if r.on_missing == OnMissing::Null {
            let n: i64 = tx.query_one(&count, &[]).await.map_err(counted)?.get(0);
            t.nulled += n as u64;
            continue;
        }
        let skip = r.on_missing == OnMissing::Skip;
        let examples = tx.query(&examples, &[]).await.map_err(counted)?;
        for row in examples {
            let value: String = row.get(1);
            rejects.push(RejectRow {
                table: table.name.clone(),
                source: table.from.clone(),
                legacy_id: row.get(0),
                column: c.target.clone(),
                code: dangling_code(r),
                reason: dangling_reason(r, &value),
                value,
                ordinal: ordinal(row.get(2)),
                row: None,
            });
        }
        let n = tx.execute(&drop, &[]).await.map_err(counted)?;
        if skip {
            t.skipped += n;
        } else {
            t.rejected += n;
        }
    }
    Ok(())
}

/// A staged row's source position (`row_`, a bigint).
fn ordinal(row: i64) -> u64 {
    u64::try_from(row).unwrap_or_default()
}

/// The kind of reject a dangling reference is, by its policy.
fn dangling_code(r: &RefPlan) -> Code {
    match r.on_missing {
        OnMissing::Skip => Code::SkippedReference,
        _ => Code::DanglingReference,
    }
}

/// Why a row with a dangling reference was left out, and what to do about it.
fn dangling_reason(r: &RefPlan, value: &str) -> String {
    match r.on_missing {
        OnMissing::Skip => format!(
            "skipped: references `{}` legacy id {value}, which is not in the target",
            r.table
        ),
        _ => format!(
            "references `{}` legacy id {value}, which is not in the target (set on_missing = \"null\" or \"skip\" in the mapping to load the rest)",
            r.table
        ),
    }
}

/// More dangling rows than this are marked set-based, one reference column at a time,
/// rather than judged row by row in memory.
const DANGLING_IN_MEMORY: usize = 100_000;

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
