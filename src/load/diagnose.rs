//! Which source rows caused a constraint violation.
//!
//! PostgreSQL's DETAIL names the key (`Key (lower(email))=(a@b.c) already exists`) but not
//! the source rows behind it. After the merge's savepoint is rolled back, the staged rows are
//! exposed as a view with the target's column names, and the violated constraint's own
//! definition (read from the catalog) is evaluated over them to find the legacy ids. Best
//! effort: when the definition cannot be evaluated over the staged columns, None.

use crate::pg::sql::ident;
use crate::plan::staging::Staging;
use crate::plan::{TableKind, TablePlan};
use tokio_postgres::Transaction;
use tokio_postgres::error::DbError;

const VIEW: &str = "cutover_diag";
const SHOWN: usize = 5;

/// The legacy ids (at most a few) of the staged rows that break the constraint `db` names.
pub(crate) async fn offenders(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    db: &DbError,
) -> Option<String> {
    let table = staging.table();
    // The staged rows, as the target would have them, named as merge names them.
    let view = format!(
        "CREATE OR REPLACE TEMP VIEW {VIEW} AS SELECT {label} AS cutover_label_, {cols} FROM ({select}) r",
        cols = staging.as_target(),
        label = staging.label(),
        select = staging.resolved()
    );
    tx.batch_execute(&view).await.ok()?;

    let predicate = match db.code().code() {
        "23502" => Some(format!("{} IS NULL", ident(db.column()?))),
        "23505" => unique_predicate(tx, table, db.constraint()?).await,
        "23503" => foreign_key_predicate(tx, table, db.constraint()?).await,
        "23514" => check_predicate(tx, table, db.constraint()?).await,
        _ => None,
    }?;
    let sql = format!(
        "SELECT cutover_label_ FROM {VIEW} d WHERE {predicate} ORDER BY 1 LIMIT {}",
        SHOWN + 1
    );
    let rows = tx.query(&sql, &[]).await.ok()?;
    let _ = tx
        .batch_execute(&format!("DROP VIEW IF EXISTS {VIEW}"))
        .await;
    let mut ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get::<_, Option<String>>(0))
        .collect();
    if ids.is_empty() {
        return None;
    }
    let more = ids.len() > SHOWN;
    ids.truncate(SHOWN);
    Some(format!(
        "{}{}",
        ids.join(", "),
        if more { ", …" } else { "" }
    ))
}

/// Rows whose key collides with another staged row or with a target row that is not being
/// replaced by one.
async fn unique_predicate(
    tx: &Transaction<'_>,
    table: &TablePlan,
    constraint: &str,
) -> Option<String> {
    let rows = tx
        .query(
            "SELECT pg_get_indexdef(i.indexrelid, k, true)
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid, generate_series(1, i.indnkeyatts) k
              WHERE c.relname = $1 AND i.indrelid = $2::text::regclass ORDER BY k",
            &[&constraint, &table.qualified],
        )
        .await
        .ok()?;
    let exprs: Vec<String> = rows
        .iter()
        .map(|r| format!("({})", r.get::<_, String>(0)))
        .collect();
    if exprs.is_empty() {
        return None;
    }
    let key = exprs.join(", ");
    let names = (1..=exprs.len())
        .map(|i| format!("k{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    // Target rows that stay as they are (not replaced by a staged row) take part too.
    let same_row: Vec<String> = match &table.kind {
        TableKind::Entity { match_column } => {
            vec![format!("v.{m} = t.{m}", m = ident(match_column))]
        }
        TableKind::Junction { .. } => table
            .stage
            .iter()
            .filter(|c| c.key)
            .map(|c| format!("v.{m} = t.{m}", m = ident(&c.target)))
            .collect(),
    };
    Some(format!(
        "({key}) IN (SELECT {names} FROM (SELECT {key} FROM {VIEW} UNION ALL SELECT {key} FROM {t} t WHERE NOT EXISTS (SELECT 1 FROM {VIEW} v WHERE {same})) x({names}) GROUP BY {names} HAVING count(*) > 1)",
        t = table.qualified,
        same = same_row.join(" AND "),
    ))
}

/// Rows whose reference columns point at nothing in the referenced table.
async fn foreign_key_predicate(
    tx: &Transaction<'_>,
    table: &TablePlan,
    constraint: &str,
) -> Option<String> {
    let row = tx
        .query_opt(
            "SELECT ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, o) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o),
                    ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, o) JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.o),
                    k.confrelid::regclass::text
               FROM pg_constraint k WHERE k.conname = $1 AND k.conrelid = $2::text::regclass",
            &[&constraint, &table.qualified],
        )
        .await
        .ok()??;
    let (cols, refcols, reftable): (Vec<String>, Vec<String>, String) =
        (row.get(0), row.get(1), row.get(2));
    let not_null: Vec<String> = cols
        .iter()
        .map(|c| format!("d.{} IS NOT NULL", ident(c)))
        .collect();
    let eq: Vec<String> = cols
        .iter()
        .zip(&refcols)
        .map(|(c, r)| format!("p.{} = d.{}", ident(r), ident(c)))
        .collect();
    Some(format!(
        "{} AND NOT EXISTS (SELECT 1 FROM {reftable} p WHERE {})",
        not_null.join(" AND "),
        eq.join(" AND ")
    ))
}

/// Rows for which the CHECK expression is false.
async fn check_predicate(
    tx: &Transaction<'_>,
    table: &TablePlan,
    constraint: &str,
) -> Option<String> {
    let row = tx
        .query_opt(
            "SELECT pg_get_constraintdef(k.oid, true) FROM pg_constraint k WHERE k.conname = $1 AND k.conrelid = $2::text::regclass AND k.contype = 'c'",
            &[&constraint, &table.qualified],
        )
        .await
        .ok()??;
    let def: String = row.get(0);
    let expr = def.strip_prefix("CHECK ")?.trim_end_matches(" NOT VALID");
    Some(format!("NOT {expr}"))
}
