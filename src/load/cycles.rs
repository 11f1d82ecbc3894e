//! References set once every table is written: a reference to a row of its own table
//! (`employee.reports_to`), and the reference that breaks a cycle of references between
//! tables (`store.manager_staff_id` while `staff.store_id` is NOT NULL), which the plan
//! marks deferred. Such a reference is written with whatever parent row the target already
//! holds when its table is merged — NULL for a parent written later — and set here from the
//! staged rows, after the last table and before the constraints set aside are rebuilt, in
//! the load's one transaction.
//!
//! Only values that differ are written, so a re-run that changes nothing writes nothing. A
//! value whose parent is not in the target even now follows `on_missing`: `null` leaves it
//! NULL (counted as nulled); `error` leaves it NULL too — the row is already written — and
//! counts the row as rejected, so the load stops unless `--max-rejects` allows it.
//!
//! A cycle may instead be closed by a DEFERRABLE foreign key filled without `references`
//! (ids kept): that constraint is deferred for the load (`SET CONSTRAINTS … DEFERRED`) and
//! checked here, once every table is written (PostgreSQL docs, SET CONSTRAINTS).

use super::{Loading, table_error};
use crate::convert::reject::{Code, RejectRow};
use crate::error::{data, describe_pg, unavailable};
use crate::mapping::OnMissing;
use crate::pg::sql::ident;
use crate::plan::{Plan, TableKind};
use tokio_postgres::Transaction;

/// The first dangling values kept in detail per reference.
const EXAMPLES: usize = 1000;

/// Defer the foreign keys that close a cycle until every table is written.
pub(super) async fn defer_constraints(tx: &Transaction<'_>, plan: &Plan) -> anyhow::Result<()> {
    if plan.deferred_constraints.is_empty() {
        return Ok(());
    }
    tx.batch_execute(&format!(
        "SET CONSTRAINTS {} DEFERRED",
        plan.deferred_constraints.join(", ")
    ))
    .await
    .map_err(|e| unavailable(format!("deferring foreign keys: {}", describe_pg(&e))))
}

impl Loading<'_> {
    /// Set every deferred reference of every table from its staged rows.
    pub(super) async fn set_deferred(&mut self) -> anyhow::Result<()> {
        for (index, staging) in self.staging.iter().enumerate() {
            let table = staging.table();
            let TableKind::Entity { match_column } = &table.kind else {
                continue;
            };
            for (i, c) in table.stage.iter().enumerate() {
                let Some(r) = c.reference.as_ref().filter(|r| r.deferred) else {
                    continue;
                };
                let (s, pq, pm) = (staging.name(), &r.qualified, ident(&r.match_column));
                let dangling = format!(
                    "FROM {s} s WHERE NOT s.drop_ AND s.c{i} IS NOT NULL
                       AND NOT EXISTS (SELECT 1 FROM {pq} p WHERE p.{pm} = s.c{i})"
                );
                let failed = |e| table_error(&e, table, "setting the references written last");
                let n: i64 = self
                    .tx
                    .query_one(&format!("SELECT count(*) {dangling}"), &[])
                    .await
                    .map_err(failed)?
                    .get(0);
                let n = n as u64;
                let report = &mut self.report.tables[index];
                if n > 0 && r.on_missing == OnMissing::Null {
                    report.nulled += n;
                } else if n > 0 {
                    report.rejected += n;
                    self.report.rejects_total += n;
                    let rows = self
                        .tx
                        .query(
                            &format!(
                                "SELECT s.c0::text, s.c{i}::text, s.row_ {dangling} ORDER BY s.row_ LIMIT {EXAMPLES}"
                            ),
                            &[],
                        )
                        .await
                        .map_err(failed)?;
                    for row in rows {
                        let value: String = row.get(1);
                        self.rejects.push(RejectRow {
                            table: table.name.clone(),
                            source: table.from.clone(),
                            legacy_id: row.get(0),
                            column: c.target.clone(),
                            code: Code::DanglingReference,
                            reason: format!(
                                "references `{}` legacy id {value}, which is not in the target; the row is loaded with `{}` NULL (set on_missing = \"null\" to accept that)",
                                r.table, c.target
                            ),
                            value,
                            ordinal: u64::try_from(row.get::<_, i64>(2)).unwrap_or_default(),
                            row: None,
                        });
                    }
                }
                let value = match &r.cast_to {
                    // A type name from the catalog (`format_type`), never user text.
                    Some(ty) => format!("p.{}::{ty}", ident(&r.pk)),
                    None => format!("p.{}", ident(&r.pk)),
                };
                let col = ident(&c.target);
                self.tx
                    .execute(
                        &format!(
                            "UPDATE {tt} t SET {col} = x.v
                               FROM (SELECT s.c0 AS k, {value} AS v FROM {s} s
                                       LEFT JOIN {pq} p ON p.{pm} = s.c{i} WHERE NOT s.drop_) x
                              WHERE t.{m} = x.k AND t.{col} IS DISTINCT FROM x.v",
                            tt = table.qualified,
                            m = ident(match_column),
                        ),
                        &[],
                    )
                    .await
                    .map_err(failed)?;
            }
        }
        self.check_deferred_constraints().await
    }

    /// Check the deferred foreign keys now that every table is written — those still in
    /// place: a bulk load set the others aside and rebuilds them, checked, next.
    async fn check_deferred_constraints(&self) -> anyhow::Result<()> {
        let names = &self.plan.deferred_constraints;
        if names.is_empty() {
            return Ok(());
        }
        let present: Vec<String> = self
            .tx
            .query(
                "SELECT pg_catalog.format('%I.%I', n.nspname, c.conname)
                   FROM pg_catalog.pg_constraint c
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
                  WHERE pg_catalog.format('%I.%I', n.nspname, c.conname) = ANY ($1::pg_catalog.text[])",
                &[names],
            )
            .await
            .map_err(|e| unavailable(format!("reading deferred foreign keys: {}", describe_pg(&e))))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if present.is_empty() {
            return Ok(());
        }
        self.tx
            .batch_execute(&format!("SET CONSTRAINTS {} IMMEDIATE", present.join(", ")))
            .await
            .map_err(|e| {
                data(format!(
                    "checking the foreign keys that close a cycle, once every table is written: {}\n  Nothing was committed; fix these rows in the source.",
                    describe_pg(&e)
                ))
            })
    }
}
