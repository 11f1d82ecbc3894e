//! Bringing one target table in line with its staging table, in set-based SQL.
//!
//! [`resolve`] rejects duplicate legacy ids and applies each reference's `on_missing` policy,
//! then describes the resolved rows: the staged values with every reference joined to its
//! parent's primary key through the parent's legacy column (no id map held in memory).
//! [`write`] updates rows whose values changed (unchanged rows are not rewritten), inserts
//! new ones in source order and, for a junction, removes links its owners no longer have.

use super::TableReport;
use super::diagnose;
use super::table_error;
use crate::convert::reject::RejectRow;
use crate::mapping::OnMissing;
use crate::pg::sql::{ident, literal};
use crate::plan::{Plan, RefPlan, TableKind, TablePlan};
use tokio_postgres::Transaction;

/// The resolved rows of one table as SQL, and how they line up with target rows.
pub struct Resolved {
    /// `SELECT s.row_, … AS r0, … AS rN FROM stage s LEFT JOIN parents … WHERE NOT s.drop_`.
    pub select: String,
    /// Matches target row `t` with resolved row `r` on the identity.
    pub key_match: String,
    /// Stage columns that are values (not identity), updated when they change.
    pub value_cols: Vec<usize>,
    /// How a resolved row `r` is named in messages.
    pub label: String,
}

impl Resolved {
    /// The value columns of target row `t` and of resolved row `r`, as comparable lists.
    pub fn compared(&self, table: &TablePlan) -> (String, String) {
        let side = |target: bool| -> String {
            self.value_cols
                .iter()
                .map(|&i| {
                    let col = if target {
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
                .collect::<Vec<_>>()
                .join(", ")
        };
        (side(true), side(false))
    }

    /// `t` and `r` differ in a value column.
    pub fn differs(&self, table: &TablePlan) -> String {
        let (old, new) = self.compared(table);
        format!("({old}) IS DISTINCT FROM ({new})")
    }

    /// Target rows of a junction that belong to an owner in the source but are not in it.
    pub fn stale_links(&self, plan: &Plan, table: &TablePlan) -> Option<String> {
        let TableKind::Junction { owner } = table.kind else {
            return None;
        };
        let r = table.stage[owner].reference.as_ref()?;
        let parent = &plan.tables[r.parent];
        let TableKind::Entity { match_column } = &parent.kind else {
            return None;
        };
        let same: Vec<String> = table
            .stage
            .iter()
            .enumerate()
            .filter(|(_, c)| c.key)
            .map(|(i, c)| format!("t.{} = r.r{i}", ident(&c.target)))
            .collect();
        Some(format!(
            "t.{own} IN (SELECT p.{pk} FROM {pq} p JOIN {ps} ps ON ps.c0 = p.{pm} WHERE NOT ps.drop_)
               AND NOT EXISTS (SELECT 1 FROM ({sel}) r WHERE {same})",
            own = ident(&table.stage[owner].target),
            pk = ident(&r.pk),
            pq = parent.qualified,
            ps = parent.stage_table(r.parent),
            pm = ident(match_column),
            sel = self.select,
            same = same.join(" AND "),
        ))
    }
}

/// How a staged row `s` is named in messages: its legacy id, or for a link the ids it joins.
fn staged_label(table: &TablePlan, alias: &str, col: &str) -> String {
    if table.is_junction() {
        table
            .stage
            .iter()
            .enumerate()
            .filter(|(_, c)| c.reference.is_some())
            .map(|(i, c)| {
                format!(
                    "{} || '=' || coalesce({alias}.{col}{i}::text, 'NULL')",
                    literal(&c.target)
                )
            })
            .collect::<Vec<_>>()
            .join(" || ' ' || ")
    } else {
        format!("{alias}.{col}0::text")
    }
}

/// Reject duplicates and unresolved references, then describe the resolved rows.
pub async fn resolve(
    tx: &Transaction<'_>,
    index: usize,
    table: &TablePlan,
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<Resolved> {
    let s = table.stage_table(index);
    let legacy_text = staged_label(table, "s", "c");

    // 1. Duplicate identities: keep the first, reject (for links: skip) the rest. One cheap
    // aggregate first: duplicates are rare, and marking them needs a sort.
    let partition: Vec<String> = table
        .stage
        .iter()
        .enumerate()
        .filter(|(_, c)| c.key)
        .map(|(i, _)| format!("c{i}"))
        .collect();
    let partition = partition.join(", ");
    let any: bool = tx
        .query_one(
            &format!("SELECT EXISTS (SELECT 1 FROM {s} WHERE NOT drop_ GROUP BY {partition} HAVING count(*) > 1)"),
            &[],
        )
        .await
        .map_err(|e| table_error(&e, table, "finding duplicate legacy ids"))?
        .get(0);
    let dups = if any {
        // Rows are told apart by ctid: the rows exploded from one record share its row_.
        tx.query(
            &format!(
                "WITH d AS (SELECT ctid AS id, row_number() OVER (PARTITION BY {partition} ORDER BY row_) AS n FROM {s} WHERE NOT drop_)
                 UPDATE {s} s SET drop_ = true FROM d WHERE s.ctid = d.id AND d.n > 1 RETURNING {legacy_text}"
            ),
            &[],
        )
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
                value: id.clone(),
                legacy_id: id,
                column: table.stage[0].target.clone(),
                reason: "duplicate legacy id: an earlier source row has the same id".into(),
            });
        }
    }

    // 2. References that do not resolve, per policy: one pass joining every parent finds the
    // rows with any dangling reference (usually none); each is then judged column by column
    // in stage order, as the mapping's policies say.
    let refs: Vec<(usize, &RefPlan)> = table
        .stage
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.reference.as_ref().map(|r| (i, r)))
        .collect();
    if !refs.is_empty() {
        let mut joins = String::new();
        let mut flags = Vec::new();
        let mut values = Vec::new();
        for (i, r) in &refs {
            let m = ident(&r.match_column);
            joins.push_str(&format!(
                " LEFT JOIN {} p{i} ON p{i}.{m} = s.c{i}",
                r.qualified
            ));
            flags.push(format!("(s.c{i} IS NOT NULL AND p{i}.{m} IS NULL)"));
            values.push(format!("s.c{i}::text"));
        }
        let rows = tx
            .query(
                &format!(
                    "SELECT s.ctid::text, {legacy_text}, {flags}, {values} FROM {s} s{joins} WHERE NOT s.drop_ AND ({any}) LIMIT {}",
                    DANGLING_IN_MEMORY + 1,
                    flags = flags.join(", "),
                    values = values.join(", "),
                    any = flags.join(" OR "),
                ),
                &[],
            )
            .await
            .map_err(|e| table_error(&e, table, "resolving references"))?;
        if rows.len() > DANGLING_IN_MEMORY {
            dangling_set_based(tx, table, &s, &legacy_text, t, rejects).await?;
            return finish_resolve(table, &s);
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
                    legacy_id: row.get(1),
                    column: table.stage[*i].target.clone(),
                    reason: dangling_reason(r, &value),
                    value,
                });
                dropped.push(row.get(0));
                break;
            }
        }
        if !dropped.is_empty() {
            tx.execute(
                &format!("UPDATE {s} SET drop_ = true WHERE ctid = ANY ($1::text[]::tid[])"),
                &[&dropped],
            )
            .await
            .map_err(|e| table_error(&e, table, "resolving references"))?;
        }
    }

    finish_resolve(table, &s)
}

/// Many dangling references: mark them with one UPDATE per reference column, in stage order,
/// keeping only the first rejects in detail.
async fn dangling_set_based(
    tx: &Transaction<'_>,
    table: &TablePlan,
    s: &str,
    legacy_text: &str,
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<()> {
    for (i, c) in table.stage.iter().enumerate() {
        let Some(r) = &c.reference else { continue };
        let unresolved = format!(
            "NOT s.drop_ AND s.c{i} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {p} p WHERE p.{m} = s.c{i})",
            p = r.qualified,
            m = ident(&r.match_column)
        );
        let counted = |e| table_error(&e, table, "resolving references");
        if r.on_missing == OnMissing::Null {
            let n: i64 = tx
                .query_one(
                    &format!("SELECT count(*) FROM {s} s WHERE {unresolved}"),
                    &[],
                )
                .await
                .map_err(counted)?
                .get(0);
            t.nulled += n as u64;
            continue;
        }
        let skip = r.on_missing == OnMissing::Skip;
        let examples = tx
            .query(
                &format!(
                    "SELECT {legacy_text}, s.c{i}::text FROM {s} s WHERE {unresolved} LIMIT 1000"
                ),
                &[],
            )
            .await
            .map_err(counted)?;
        for row in examples {
            let value: String = row.get(1);
            rejects.push(RejectRow {
                table: table.name.clone(),
                legacy_id: row.get(0),
                column: c.target.clone(),
                reason: dangling_reason(r, &value),
                value,
            });
        }
        let n = tx
            .execute(
                &format!("UPDATE {s} s SET drop_ = true WHERE {unresolved}"),
                &[],
            )
            .await
            .map_err(counted)?;
        if skip {
            t.skipped += n;
        } else {
            t.rejected += n;
        }
    }
    Ok(())
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

/// 3. The resolved rows: references joined to their parents' primary keys.
fn finish_resolve(table: &TablePlan, s: &str) -> anyhow::Result<Resolved> {
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
    let key_cols: Vec<usize> = table
        .stage
        .iter()
        .enumerate()
        .filter(|(_, c)| c.key)
        .map(|(i, _)| i)
        .collect();
    let key_match = match &table.kind {
        TableKind::Entity { match_column } => format!("t.{} = r.r0", ident(match_column)),
        TableKind::Junction { .. } => key_cols
            .iter()
            .map(|&i| format!("t.{} = r.r{i}", ident(&table.stage[i].target)))
            .collect::<Vec<_>>()
            .join(" AND "),
    };
    Ok(Resolved {
        select: format!(
            "SELECT {} FROM {s} s{joins} WHERE NOT s.drop_",
            select.join(", ")
        ),
        key_match,
        value_cols: (0..table.stage.len())
            .filter(|i| !key_cols.contains(i))
            .collect(),
        label: staged_label(table, "r", "r"),
    })
}

/// Update changed rows, insert new ones, and remove stale links. Runs under a savepoint so
/// that a constraint violation can be traced back to the source rows behind it. A table that
/// was `empty` when the load started has nothing to update or match: every row is inserted.
pub async fn write(
    tx: &Transaction<'_>,
    plan: &Plan,
    table: &TablePlan,
    res: &Resolved,
    empty: bool,
    t: &mut TableReport,
) -> anyhow::Result<()> {
    let update = (!res.value_cols.is_empty() && !empty).then(|| {
        let names: Vec<String> = res
            .value_cols
            .iter()
            .map(|&i| ident(&table.stage[i].target))
            .collect();
        let new: Vec<String> = res.value_cols.iter().map(|&i| format!("r.r{i}")).collect();
        format!(
            "UPDATE {tt} t SET ({names}) = ROW({new}) FROM ({sel}) r WHERE {key} AND {differs}",
            tt = table.qualified,
            names = names.join(", "),
            new = new.join(", "),
            sel = res.select,
            key = res.key_match,
            differs = res.differs(table),
        )
    });
    let targets: Vec<String> = table.stage.iter().map(|c| ident(&c.target)).collect();
    let values: Vec<String> = (0..table.stage.len()).map(|i| format!("r.r{i}")).collect();
    let new_only = if empty {
        String::new()
    } else {
        format!(
            " WHERE NOT EXISTS (SELECT 1 FROM {} t WHERE {})",
            table.qualified, res.key_match
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
        sel = res.select,
        // Ids drawn from a sequence follow source order, so re-loads give the same ids.
        order = if table.ids_from_source {
            ""
        } else {
            " ORDER BY r.row_"
        },
    );
    let unlink = if empty {
        None
    } else {
        res.stale_links(plan, table)
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
                    ids = diagnose::offenders(tx, table, res, db).await;
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
pub async fn staged(tx: &Transaction<'_>, index: usize, table: &TablePlan) -> anyhow::Result<u64> {
    let n: i64 = tx
        .query_one(
            &format!(
                "SELECT count(*) FROM {} WHERE NOT drop_",
                table.stage_table(index)
            ),
            &[],
        )
        .await
        .map_err(|e| table_error(&e, table, "counting staged rows"))?
        .get(0);
    Ok(n as u64)
}

/// Entity rows whose legacy id is no longer in the source: the condition on target row `t`.
pub fn gone(index: usize, table: &TablePlan) -> Option<String> {
    let TableKind::Entity { match_column } = &table.kind else {
        return None;
    };
    Some(format!(
        "t.{m} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {s} s WHERE s.c0 = t.{m})",
        m = ident(match_column),
        s = table.stage_table(index)
    ))
}

/// Delete entity rows whose legacy id is no longer in the source (never rows whose legacy
/// id is NULL, which the application created).
pub async fn prune(tx: &Transaction<'_>, index: usize, table: &TablePlan) -> anyhow::Result<u64> {
    let Some(gone) = gone(index, table) else {
        return Ok(0);
    };
    tx.execute(
        &format!("DELETE FROM {} t WHERE {gone}", table.qualified),
        &[],
    )
    .await
    .map_err(|e| table_error(&e, table, "pruning rows no longer in the source"))
}

/// Target rows carrying this run's legacy ids (or links). A table that was empty holds
/// nothing else.
pub async fn loaded(
    tx: &Transaction<'_>,
    table: &TablePlan,
    res: &Resolved,
    empty: bool,
) -> anyhow::Result<u64> {
    let sql = if empty {
        format!("SELECT count(*) FROM {}", table.qualified)
    } else {
        format!(
            "SELECT count(*) FROM ({sel}) r WHERE EXISTS (SELECT 1 FROM {t} t WHERE {key})",
            sel = res.select,
            t = table.qualified,
            key = res.key_match
        )
    };
    let n: i64 = tx
        .query_one(&sql, &[])
        .await
        .map_err(|e| table_error(&e, table, "checking row counts"))?
        .get(0);
    Ok(n as u64)
}
