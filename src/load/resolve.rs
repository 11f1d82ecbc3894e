//! Resolving one staged table before it is written: values PostgreSQL refuses for their
//! columns are rejected (`refused`), duplicate legacy ids are rejected (for links: skipped)
//! and each reference's `on_missing` policy is applied, by marking staged
//! rows dropped. The rows left are the resolved rows [`Staging`] describes.

use super::TableReport;
use super::table_error;
use crate::convert::reject::{Code, RejectRow};
use crate::mapping::OnMissing;
use crate::plan::RefPlan;
use crate::plan::staging::Staging;
use tokio_postgres::Transaction;

/// Reject duplicates and unresolved references: the rows left are the resolved rows.
pub(crate) async fn resolve(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<()> {
    let table = staging.table();

    // 0. Values PostgreSQL refuses for their columns are rejects, like values that do not
    // convert: before duplicates, so that a refused row is not the one a duplicate loses to.
    super::refused::refuse(tx, staging, t, rejects).await?;

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
