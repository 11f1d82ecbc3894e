//! Values PostgreSQL itself refuses, found before the target is written: a column staged as
//! text for PostgreSQL's input function (inet, interval, hstore, …) or as a domain's base
//! type can hold a staged value that writing the column would refuse — invalid input, a
//! domain's CHECK or NOT NULL, a modifier the value does not fit (`bit(8)`). One such value
//! would otherwise abort the whole load with an error about a staging table; instead its row
//! becomes a reject naming the table, legacy id, column and PostgreSQL's message, and is
//! dropped from staging.
//!
//! Optimistically, one statement first tries every staged value of those columns the way
//! writing the target will (the same cast, then assignment to the column's own type) into a
//! scratch table under a savepoint that is always rolled back. Only when that fails are the
//! values tried row by row, each in a PL/pgSQL exception block (a subtransaction, which is
//! why it is not the first attempt): functions in `pg_temp`, private to the session and
//! dropped before this returns. PostgreSQL 15 has no `pg_input_is_valid` (it came in 16,
//! <https://www.postgresql.org/docs/16/functions-info.html#FUNCTIONS-INFO-VALIDITY>), and it
//! would not check a domain's constraints or a modifier on assignment anyway.

use super::TableReport;
use super::table_error;
use crate::convert::describe;
use crate::convert::reject::{Code, RejectRow};
use crate::pg::sql::literal;
use crate::pg::types::Coercion;
use crate::plan::staging::Staging;
use crate::value::Value;
use tokio_postgres::Transaction;

/// Reject and drop the staged rows with a value PostgreSQL refuses for its column.
pub(crate) async fn refuse(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<()> {
    let cols = refusable(staging);
    if cols.is_empty() || all_accepted(tx, staging, &cols).await? {
        return Ok(());
    }
    let table = staging.table();
    let failed = |e| table_error(&e, table, "checking values against their column types");
    for &(i, k) in &cols {
        tx.batch_execute(&check_function(i, k))
            .await
            .map_err(failed)?;
    }
    let found = row_by_row(tx, staging, &cols, t, rejects).await;
    let mut dropped = Ok(());
    for &(i, k) in &cols {
        let drop = format!("DROP FUNCTION {}({})", function(i), k.staged);
        if let Err(e) = tx.batch_execute(&drop).await {
            dropped = Err(failed(e));
            break;
        }
    }
    found.and(dropped)
}

/// The stage columns whose staged values writing the column can refuse.
fn refusable<'a>(staging: &Staging<'a>) -> Vec<(usize, &'a Coercion)> {
    staging
        .table()
        .stage
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.coercion.as_ref().filter(|k| k.refusable).map(|k| (i, k)))
        .collect()
}

/// The staged value of column `i` as writing the target takes it: cast from text for
/// PostgreSQL's input function, or the base type a domain is assigned from.
fn written(i: usize, k: &Coercion) -> String {
    match &k.cast {
        Some(ty) => format!("s.c{i}::{ty}"),
        None => format!("s.c{i}"),
    }
}

/// Whether every staged value of `cols` goes into its column: one INSERT into a scratch
/// table with the columns' own types, always rolled back.
async fn all_accepted(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    cols: &[(usize, &Coercion)],
) -> anyhow::Result<bool> {
    let table = staging.table();
    let failed = |e| table_error(&e, table, "checking values against their column types");
    let defs: Vec<String> = cols
        .iter()
        .map(|&(i, k)| format!("c{i} {}", k.column))
        .collect();
    let values: Vec<String> = cols.iter().map(|&(i, k)| written(i, k)).collect();
    let trial = format!(
        "CREATE TEMP TABLE cutover_refused ({defs}) ON COMMIT DROP;
         INSERT INTO cutover_refused SELECT {values} FROM {stage} s WHERE NOT s.drop_",
        defs = defs.join(", "),
        values = values.join(", "),
        stage = staging.name(),
    );
    tx.batch_execute("SAVEPOINT cutover_refused")
        .await
        .map_err(failed)?;
    let accepted = tx.batch_execute(&trial).await.is_ok();
    tx.batch_execute("ROLLBACK TO SAVEPOINT cutover_refused; RELEASE SAVEPOINT cutover_refused")
        .await
        .map_err(failed)?;
    Ok(accepted)
}

/// The check function of stage column `i`.
fn function(i: usize) -> String {
    format!("pg_temp.cutover_refused_{i}")
}

/// A function that assigns a staged value to a variable of the column's type, as writing the
/// target does, and returns PostgreSQL's message if that fails (NULL if it does not). The
/// variable is declared in an inner block: an error in a block's declarations is not caught
/// by that block's own handler.
fn check_function(i: usize, k: &Coercion) -> String {
    let value = match &k.cast {
        Some(ty) => format!("v::{ty}"),
        None => "v".to_string(),
    };
    let body = format!(
        "DECLARE d text;
         BEGIN
           DECLARE x {column} := {value}; BEGIN NULL; END;
           RETURN NULL;
         EXCEPTION WHEN OTHERS THEN
           GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
           RETURN SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')' || CASE WHEN d <> '' THEN ': ' || d ELSE '' END;
         END",
        column = k.column,
    );
    // Type names come from the catalog (`format_type`); the body is quoted as a literal.
    format!(
        "CREATE FUNCTION {}(v {}) RETURNS text LANGUAGE plpgsql AS {}",
        function(i),
        k.staged,
        literal(&body)
    )
}

/// Try the values of `cols` row by row; reject the rows with a refused value (for each row,
/// the first such column in stage order) and drop them.
async fn row_by_row(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    cols: &[(usize, &Coercion)],
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<()> {
    let table = staging.table();
    let failed = |e| table_error(&e, table, "checking values against their column types");
    let tries: Vec<String> = cols
        .iter()
        .map(|&(i, _)| format!("({i}, s.c{i}::text, {}(s.c{i}))", function(i)))
        .collect();
    let sql = format!(
        "SELECT s.ctid::text, {label}, s.row_, e.i, e.v, e.m
           FROM {stage} s,
                LATERAL (SELECT x.i, x.v, x.m FROM (VALUES {tries}) x(i, v, m)
                          WHERE x.m IS NOT NULL ORDER BY x.i LIMIT 1) e
          WHERE NOT s.drop_
          ORDER BY s.row_
          LIMIT {limit}",
        label = staging.staged_label(),
        stage = staging.name(),
        tries = tries.join(", "),
        limit = IN_MEMORY + 1,
    );
    let rows = tx.query(&sql, &[]).await.map_err(failed)?;
    let many = rows.len() > IN_MEMORY;
    let mut ctids = Vec::with_capacity(rows.len().min(IN_MEMORY));
    for r in rows.iter().take(IN_MEMORY) {
        let i = usize::try_from(r.get::<_, i32>(3)).unwrap_or_default();
        let Some(c) = table.stage.get(i) else {
            continue;
        };
        let column_type = c.coercion.as_ref().map_or("", |k| k.column.as_str());
        let value: Option<String> = r.get(4);
        let message: String = r.get(5);
        rejects.push(RejectRow {
            table: table.name.clone(),
            source: table.from.clone(),
            legacy_id: r.get::<_, Option<String>>(1).unwrap_or_default(),
            column: c.target.clone(),
            value: value.as_deref().map_or("NULL".into(), |v| describe(Value::Text(v.as_bytes()))),
            code: Code::Refused,
            reason: format!(
                "PostgreSQL refuses this value for {column_type}: {message}; fix it in the source, or map it (`map`, `default`) in the mapping"
            ),
            ordinal: u64::try_from(r.get::<_, i64>(2)).unwrap_or_default(),
            row: None,
        });
        ctids.push(r.get::<_, String>(0));
    }
    let n = if many {
        // Too many to hold: every row with a refused value, set-based (the first are above).
        let any: Vec<String> = cols
            .iter()
            .map(|&(i, _)| format!("{}(s.c{i}) IS NOT NULL", function(i)))
            .collect();
        let drop = format!(
            "UPDATE {} s SET drop_ = true, skip_ = false WHERE NOT s.drop_ AND ({})",
            staging.name(),
            any.join(" OR ")
        );
        tx.execute(&drop, &[]).await.map_err(failed)?
    } else if ctids.is_empty() {
        0
    } else {
        // Rejected, not skipped: rows referencing them are `parent_rejected`.
        tx.execute(&staging.drop_rows(), &[&ctids, &false])
            .await
            .map_err(failed)?
    };
    t.rejected += n;
    Ok(())
}

/// More refused rows than this are dropped set-based, the first this many kept in detail.
const IN_MEMORY: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_function_sql() {
        let k = Coercion {
            staged: "text".into(),
            column: "bit(8)".into(),
            cast: Some("\"bit\"".into()),
            refusable: true,
        };
        let f = check_function(3, &k);
        assert!(
            f.starts_with("CREATE FUNCTION pg_temp.cutover_refused_3(v text) RETURNS text LANGUAGE plpgsql AS 'DECLARE d text;"),
            "{f}"
        );
        assert!(
            f.contains("DECLARE x bit(8) := v::\"bit\"; BEGIN NULL; END;"),
            "{f}"
        );
        assert!(
            f.contains("RETURN SQLERRM || '' (SQLSTATE ''"),
            "quoted: {f}"
        );
        assert_eq!(written(3, &k), "s.c3::\"bit\"");
        let domain = Coercion {
            cast: None,
            staged: "integer".into(),
            column: "public.posint".into(),
            ..k
        };
        assert_eq!(written(1, &domain), "s.c1");
        assert!(check_function(1, &domain).contains("DECLARE x public.posint := v;"));
    }
}
