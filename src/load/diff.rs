//! Comparing a target table with what the source maps to, by content: every mapped column,
//! after conversion and reference resolution. Read-only set-based queries that return counts
//! and the first few examples, so tables of millions of rows are compared in bounded memory.

use super::merge::{self, Resolved};
use super::table_error;
use crate::pg::sql::ident;
use crate::plan::{Plan, TablePlan};
use serde::Serialize;
use tokio_postgres::Transaction;

#[derive(Debug, Clone, Default, Serialize)]
pub struct TableDiff {
    /// Source rows present in the target with every mapped column equal.
    pub equal: u64,
    /// Source rows present in the target with some column different.
    pub differ: u64,
    /// Source rows absent from the target.
    pub missing: u64,
    /// Target rows whose legacy id (or link) is not in the source.
    pub extra: u64,
    /// The first differences, as `legacy id: column: target … ≠ source …`.
    pub examples: Vec<String>,
}

impl TableDiff {
    pub fn is_clean(&self) -> bool {
        self.differ + self.missing + self.extra == 0
    }
}

/// Compare `table` with its resolved staging rows; `extra` is only looked for when asked.
pub async fn diff(
    tx: &Transaction<'_>,
    plan: &Plan,
    index: usize,
    table: &TablePlan,
    res: &Resolved,
    limit: usize,
    with_extra: bool,
) -> anyhow::Result<TableDiff> {
    let mut d = TableDiff::default();
    let count = |sql: String| async move {
        let n: i64 = tx
            .query_one(&sql, &[])
            .await
            .map_err(|e| table_error(&e, table, "comparing with the source"))?
            .get(0);
        Ok::<u64, anyhow::Error>(n as u64)
    };
    let sel = &res.select;
    let tt = &table.qualified;
    let key = &res.key_match;
    let matched = count(format!(
        "SELECT count(*) FROM {tt} t JOIN ({sel}) r ON {key}"
    ))
    .await?;
    if !res.value_cols.is_empty() {
        let differs = res.differs(table);
        d.differ = count(format!(
            "SELECT count(*) FROM {tt} t JOIN ({sel}) r ON {key} WHERE {differs}"
        ))
        .await?;
        if d.differ > 0 {
            // Name each differing column with both values.
            let cols: Vec<String> = res
                .value_cols
                .iter()
                .map(|&i| {
                    let c = &table.stage[i];
                    let (old, new) = if c.compare_as_text {
                        (format!("t.{}::text", ident(&c.target)), format!("r.r{i}::text"))
                    } else {
                        (format!("t.{}", ident(&c.target)), format!("r.r{i}"))
                    };
                    format!(
                        "CASE WHEN {old} IS DISTINCT FROM {new} THEN {name} || ': target ' || coalesce(quote_literal(t.{col}::text), 'NULL') || ' ≠ source ' || coalesce(quote_literal(r.r{i}::text), 'NULL') END",
                        name = crate::pg::sql::literal(&c.target),
                        col = ident(&c.target),
                    )
                })
                .collect();
            let rows = tx
                .query(
                    &format!(
                        "SELECT {label} || ': ' || array_to_string(ARRAY[{cols}], '; ') FROM {tt} t JOIN ({sel}) r ON {key} WHERE {differs} ORDER BY r.row_ LIMIT {limit}",
                        label = res.label,
                        cols = cols.join(", ")
                    ),
                    &[],
                )
                .await
                .map_err(|e| table_error(&e, table, "comparing with the source"))?;
            d.examples.extend(
                rows.iter()
                    .map(|r| format!("differs {}", r.get::<_, String>(0))),
            );
        }
    }
    d.equal = matched.saturating_sub(d.differ);
    let missing = format!("FROM ({sel}) r WHERE NOT EXISTS (SELECT 1 FROM {tt} t WHERE {key})");
    d.missing = count(format!("SELECT count(*) {missing}")).await?;
    if d.missing > 0 {
        let rows = tx
            .query(
                &format!(
                    "SELECT {} {missing} ORDER BY r.row_ LIMIT {limit}",
                    res.label
                ),
                &[],
            )
            .await
            .map_err(|e| table_error(&e, table, "comparing with the source"))?;
        d.examples.extend(
            rows.iter()
                .map(|r| format!("missing in target: {}", r.get::<_, String>(0))),
        );
    }
    if with_extra {
        let gone = merge::gone(index, table).or_else(|| res.stale_links(plan, table));
        if let Some(gone) = gone {
            d.extra = count(format!("SELECT count(*) FROM {tt} t WHERE {gone}")).await?;
            if d.extra > 0 {
                let label = match &table.kind {
                    crate::plan::TableKind::Entity { match_column } => {
                        format!("t.{}::text", ident(match_column))
                    }
                    crate::plan::TableKind::Junction { .. } => "t::text".to_string(),
                };
                let rows = tx
                    .query(
                        &format!("SELECT {label} FROM {tt} t WHERE {gone} LIMIT {limit}"),
                        &[],
                    )
                    .await
                    .map_err(|e| table_error(&e, table, "comparing with the source"))?;
                d.examples.extend(rows.iter().map(|r| {
                    format!(
                        "extra in target (not in the source): {}",
                        r.get::<_, String>(0)
                    )
                }));
            }
        }
    }
    Ok(d)
}
