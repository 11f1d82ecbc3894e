//! Comparing a target table with what the source maps to, by content: every mapped column,
//! after conversion and reference resolution. Read-only set-based queries that return counts
//! and the first few examples, so tables of millions of rows are compared in bounded memory.

use super::table_error;
use crate::pg::sql::{ident, literal};
use crate::plan::staging::{RESOLVED_ORDER, Staging};
use crate::plan::{Plan, TableKind};
use serde::Serialize;
use tokio_postgres::Transaction;

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct TableDiff {
    /// Source rows present in the target with every mapped column equal.
    pub(crate) equal: u64,
    /// Source rows present in the target with some column different.
    pub(crate) differ: u64,
    /// Source rows absent from the target.
    pub(crate) missing: u64,
    /// Target rows whose legacy id (or link) is not in the source.
    pub(crate) extra: u64,
    /// The first differences, as `legacy id: column: target … ≠ source …`.
    pub(crate) examples: Vec<String>,
}

impl TableDiff {
    pub(crate) fn is_clean(&self) -> bool {
        self.differ + self.missing + self.extra == 0
    }
}

/// Compare a table with its resolved staging rows; `extra` is only looked for when asked.
pub(crate) async fn diff(
    tx: &Transaction<'_>,
    plan: &Plan,
    staging: &Staging<'_>,
    limit: usize,
    with_extra: bool,
) -> anyhow::Result<TableDiff> {
    let table = staging.table();
    let mut d = TableDiff::default();
    let count = |sql: String| async move {
        let n: i64 = tx
            .query_one(&sql, &[])
            .await
            .map_err(|e| table_error(&e, table, "comparing with the source"))?
            .get(0);
        Ok::<u64, anyhow::Error>(n as u64)
    };
    let sel = staging.resolved();
    let tt = &table.qualified;
    let key = staging.key_match();
    let matched = count(format!(
        "SELECT count(*) FROM {tt} t JOIN ({sel}) r ON {key}"
    ))
    .await?;
    if !staging.value_cols().is_empty() {
        let differs = staging.differs();
        d.differ = count(format!(
            "SELECT count(*) FROM {tt} t JOIN ({sel}) r ON {key} WHERE {differs}"
        ))
        .await?;
        if d.differ > 0 {
            // Name each differing column with both values.
            let cols: Vec<String> = staging
                .value_cols()
                .iter()
                .map(|&i| {
                    let c = &table.stage[i];
                    let (old, new) = staging.compared_col(i);
                    format!(
                        "CASE WHEN {old} IS DISTINCT FROM {new} THEN {name} || ': target ' || coalesce(quote_literal(t.{col}::text), 'NULL') || ' ≠ source ' || coalesce(quote_literal({value}::text), 'NULL') END",
                        name = literal(&c.target),
                        col = ident(&c.target),
                        value = Staging::resolved_col(i),
                    )
                })
                .collect();
            let rows = tx
                .query(
                    &format!(
                        "SELECT {label} || ': ' || array_to_string(ARRAY[{cols}], '; ') FROM {tt} t JOIN ({sel}) r ON {key} WHERE {differs} ORDER BY {RESOLVED_ORDER} LIMIT {limit}",
                        label = staging.label(),
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
                    "SELECT {} {missing} ORDER BY {RESOLVED_ORDER} LIMIT {limit}",
                    staging.label()
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
        // Links to rows the application created are the application's: never extra.
        let gone = staging.gone().or_else(|| staging.unlinkable(plan));
        if let Some(gone) = gone {
            d.extra = count(format!("SELECT count(*) FROM {tt} t WHERE {gone}")).await?;
            if d.extra > 0 {
                let label = match &table.kind {
                    TableKind::Entity { match_column } => {
                        format!("t.{}::text", ident(match_column))
                    }
                    TableKind::Junction { .. } => "t::text".to_string(),
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
