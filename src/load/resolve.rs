//! Resolving one staged table before it is written: values PostgreSQL refuses for their
//! columns are rejected (`refused`), duplicate legacy ids are rejected (for links: skipped)
//! and each reference's `on_missing` policy is applied, by marking staged rows dropped. The
//! rows left are the resolved rows [`Staging`] describes. A reference to a parent row that
//! this same run rejected is told apart from one to a legacy id the source does not have: it
//! is rejected as `parent_rejected`, whatever the policy, so it counts against
//! `--max-rejects` and points at the parent's own reject. (A parent row skipped on purpose is
//! missing as any other: the reference's policy applies.)

use super::TableReport;
use super::table_error;
use crate::convert::reject::{Code, RejectRow};
use crate::mapping::OnMissing;
use crate::plan::RefPlan;
use crate::plan::staging::Staging;
use tokio_postgres::Transaction;

/// Reject refused values, duplicates and unresolved references: the rows left are the
/// resolved rows.
/// `distinct`: the convert stage found no duplicate legacy ids, so none are searched for.
pub(crate) async fn resolve(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    distinct: bool,
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<()> {
    // Values PostgreSQL refuses for their columns are rejects, like values that do not
    // convert: before duplicates, so that a refused row is not the one a duplicate loses to.
    super::refused::refuse(tx, staging, t, rejects).await?;
    duplicates(tx, staging, distinct, t, rejects).await?;
    let Some(dangling) = staging.dangling(DANGLING_IN_MEMORY + 1) else {
        return Ok(());
    };
    let rows = tx
        .query(&dangling, &[])
        .await
        .map_err(|e| table_error(&e, staging.table(), "resolving references"))?;
    references(tx, staging, &rows, t, rejects).await?;
    Ok(())
}

/// Duplicate identities: keep the first, reject (for links: skip) the rest. When the convert
/// stage could not rule them out, one cheap aggregate first: duplicates are rare, and
/// marking them needs a sort.
pub(crate) async fn duplicates(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    distinct: bool,
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<()> {
    if distinct {
        return Ok(());
    }
    let table = staging.table();
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
    Ok(())
}

/// The staged rows with a reference that does not resolve, as [`Staging::dangling`] found
/// them (at most [`DANGLING_IN_MEMORY`] + 1), judged column by column in stage order as the
/// mapping's policies say; a reference to a parent row this run rejected is rejected
/// whatever the policy. The rows left out are marked dropped. Returns the ctids (as text) of
/// the rows kept with a reference set to NULL — or, when there were too many rows to judge
/// in memory, None: they were judged set-based, and the kept rows are the resolved rows that
/// are not complete.
pub(crate) async fn references(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    rows: &[tokio_postgres::Row],
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<Option<Vec<String>>> {
    let table = staging.table();
    if rows.len() > DANGLING_IN_MEMORY {
        dangling_set_based(tx, staging, t, rejects).await?;
        return Ok(None);
    }
    let refs: Vec<(usize, &RefPlan)> = table
        .stage
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.reference.as_ref().map(|r| (i, r)))
        .collect();
    let n = refs.len();
    let (mut rejected, mut skipped, mut kept) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        let mut drop = None;
        for (k, (i, r)) in refs.iter().enumerate() {
            if !row.get::<_, bool>(2 + k) {
                continue;
            }
            let value: String = row.get::<_, Option<String>>(2 + n + k).unwrap_or_default();
            let left_out = row.get::<_, Option<bool>>(2 + 2 * n + k).unwrap_or(false);
            let code = if left_out {
                t.rejected += 1;
                Code::ParentRejected
            } else {
                match r.on_missing {
                    OnMissing::Null => {
                        t.nulled += 1;
                        continue;
                    }
                    OnMissing::Skip => t.skipped += 1,
                    OnMissing::Error => t.rejected += 1,
                }
                dangling_code(r)
            };
            let skip = code == Code::SkippedReference;
            rejects.push(RejectRow {
                table: table.name.clone(),
                source: table.from.clone(),
                legacy_id: row.get(1),
                column: table.stage[*i].target.clone(),
                code,
                reason: if left_out {
                    parent_rejected_reason(r, &value)
                } else {
                    dangling_reason(r, &value)
                },
                value,
                ordinal: ordinal(row.get(2 + 3 * n)),
                row: None,
            });
            drop = Some(skip);
            break;
        }
        let ctid: String = row.get(0);
        match drop {
            Some(true) => skipped.push(ctid),
            Some(false) => rejected.push(ctid),
            None => kept.push(ctid),
        }
    }
    for (ctids, skip) in [(rejected, false), (skipped, true)] {
        if !ctids.is_empty() {
            tx.execute(&staging.drop_rows(), &[&ctids, &skip])
                .await
                .map_err(|e| table_error(&e, table, "resolving references"))?;
        }
    }
    Ok(Some(kept))
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
            staging.drop_unresolved(i, r.on_missing == OnMissing::Skip),
        ) else {
            continue;
        };
        let counted = |e| table_error(&e, table, "resolving references");
        // References to parent rows this run rejected: rejected, whatever the policy.
        if let (Some(examples), Some(drop)) = (
            staging.parent_rejected_examples(i, 1000),
            staging.drop_parent_rejected(i),
        ) {
            for row in tx.query(&examples, &[]).await.map_err(counted)? {
                let value: String = row.get(1);
                rejects.push(RejectRow {
                    table: table.name.clone(),
                    source: table.from.clone(),
                    legacy_id: row.get(0),
                    column: c.target.clone(),
                    code: Code::ParentRejected,
                    reason: parent_rejected_reason(r, &value),
                    value,
                    ordinal: ordinal(row.get(2)),
                    row: None,
                });
            }
            t.rejected += tx.execute(&drop, &[]).await.map_err(counted)?;
        }
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

/// Why a row whose parent this run rejected is rejected too.
fn parent_rejected_reason(r: &RefPlan, value: &str) -> String {
    format!(
        "parent rejected: `{}` legacy id {value} was rejected in this run (see its own reject); fix that row and run again",
        r.table
    )
}

/// More dangling rows than this are marked set-based, one reference column at a time,
/// rather than judged row by row in memory.
pub(crate) const DANGLING_IN_MEMORY: usize = 100_000;
