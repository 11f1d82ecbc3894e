//! Sequences behind loaded tables: `serial`, `bigserial`, identity columns, and sequences only
//! named in a column default. After a load each is set past the largest id so
//! the application's next INSERT succeeds — an empty table's too (pgloader misses identity
//! columns and empty tables). The reset itself is an `ALTER SEQUENCE … RESTART`, which rolls
//! back with the load's transaction; `setval` (the fallback for a role that does not own the
//! sequence) does not, so the state is also saved first and put back when a load is rolled
//! back (dry run or failure).

use super::SequenceReset;
use crate::error::{describe_pg, unavailable};
use crate::pg::sql::ident;
use tokio_postgres::{Client, GenericClient};

/// A sequence's state before the load.
#[derive(Debug, Clone)]
pub(crate) struct SequenceState {
    /// Qualified, quoted sequence name as `pg_get_serial_sequence` returns it.
    pub(crate) name: String,
    pub(crate) last_value: i64,
    pub(crate) is_called: bool,
}

/// Every (column, sequence) of a table: sequences owned by a column (`serial`, identity:
/// `pg_get_serial_sequence`) and sequences only named in a column's default
/// (`DEFAULT nextval('seq')` without `OWNED BY`, as dumped and older schemas have; the
/// default depends on the sequence in `pg_depend`). The name comes back schema-qualified and
/// quoted, the oid to tell sequences apart.
const FIND: &str = "
    SELECT x.col, pg_catalog.format('%I.%I', n.nspname, c.relname), c.oid
      FROM (SELECT a.attname::text AS col,
                   pg_catalog.pg_get_serial_sequence($1, a.attname)::pg_catalog.regclass::pg_catalog.oid AS seq
              FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = $1::pg_catalog.text::pg_catalog.regclass AND a.attnum > 0
               AND NOT a.attisdropped
               AND pg_catalog.pg_get_serial_sequence($1, a.attname) IS NOT NULL
            UNION
            SELECT a.attname::text, dep.refobjid
              FROM pg_catalog.pg_attrdef d
              JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
              JOIN pg_catalog.pg_depend dep
                ON dep.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND dep.objid = d.oid
               AND dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
             WHERE d.adrelid = $1::pg_catalog.text::pg_catalog.regclass) x
      JOIN pg_catalog.pg_class c ON c.oid = x.seq AND c.relkind = 'S'
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     ORDER BY 1, 2";

/// Every column in the database that draws from sequence `$1`, as (table, column): a
/// sequence shared by several tables must be set past all of them, mapped or not.
const USERS: &str = "
    SELECT DISTINCT x.tbl::pg_catalog.regclass::pg_catalog.text, a.attname::text
      FROM (SELECT d.adrelid AS tbl, d.adnum AS col
              FROM pg_catalog.pg_depend dep
              JOIN pg_catalog.pg_attrdef d ON d.oid = dep.objid
             WHERE dep.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass
               AND dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
               AND dep.refobjid = $1
            UNION
            SELECT dep.refobjid, dep.refobjsubid
              FROM pg_catalog.pg_depend dep
             WHERE dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
               AND dep.objid = $1 AND dep.deptype IN ('a', 'i') AND dep.refobjsubid > 0) x
      JOIN pg_catalog.pg_attribute a ON a.attrelid = x.tbl AND a.attnum = x.col
     ORDER BY 1, 2";

/// A sequence and the columns of the loaded tables that draw from it.
struct Found {
    name: String,
    oid: u32,
    columns: Vec<(String, String)>,
}

/// The sequences behind `tables`, each once however many columns share it.
async fn find(client: &impl GenericClient, tables: &[&str]) -> anyhow::Result<Vec<Found>> {
    let mut out: Vec<Found> = Vec::new();
    for t in tables {
        let rows = client.query(FIND, &[t]).await.map_err(|e| {
            unavailable(format!("finding the sequences of {t}: {}", describe_pg(&e)))
        })?;
        for r in rows {
            let (col, name, oid): (String, String, u32) = (r.get(0), r.get(1), r.get(2));
            match out.iter_mut().find(|f| f.oid == oid) {
                Some(f) => f.columns.push((t.to_string(), col)),
                None => out.push(Found {
                    name,
                    oid,
                    columns: vec![(t.to_string(), col)],
                }),
            }
        }
    }
    Ok(out)
}

pub(crate) async fn snapshot(
    client: &impl GenericClient,
    tables: &[&str],
) -> anyhow::Result<Vec<SequenceState>> {
    let mut out = Vec::new();
    for f in find(client, tables).await? {
        // The name comes from the catalog already quoted.
        let seq = f.name;
        let row = client
            .query_one(&format!("SELECT last_value, is_called FROM {seq}"), &[])
            .await
            .map_err(|e| unavailable(format!("reading sequence {seq}: {}", describe_pg(&e))))?;
        out.push(SequenceState {
            name: seq,
            last_value: row.get(0),
            is_called: row.get(1),
        });
    }
    Ok(out)
}

pub(crate) async fn restore(client: &Client, saved: &[SequenceState]) -> anyhow::Result<()> {
    for s in saved {
        client
            .execute(
                "SELECT pg_catalog.setval($1::pg_catalog.text::pg_catalog.regclass, $2, $3)",
                &[&s.name, &s.last_value, &s.is_called],
            )
            .await
            .map_err(|e| {
                unavailable(format!(
                    "restoring sequence {}: {}",
                    s.name,
                    describe_pg(&e)
                ))
            })?;
    }
    Ok(())
}

/// Set every sequence of `tables` so its next value is past the largest value of every
/// column that draws from it — in any table, loaded or not — or the sequence's start when
/// they are all empty. Returns what it set, one entry per loaded column.
pub(crate) async fn reset(
    client: &impl GenericClient,
    tables: &[&str],
) -> anyhow::Result<Vec<SequenceReset>> {
    let mut done = Vec::new();
    for f in find(client, tables).await? {
        let seq = &f.name;
        let fail = |e: tokio_postgres::Error| {
            unavailable(format!("resetting sequence {seq}: {}", describe_pg(&e)))
        };
        let users = client.query(USERS, &[&f.oid]).await.map_err(fail)?;
        let mut maxima: Vec<String> = users
            .iter()
            .map(|r| {
                // Both names come from the catalog, already quoted.
                let (t, c): (String, String) = (r.get(0), r.get(1));
                format!(
                    "(SELECT pg_catalog.max({})::pg_catalog.int8 FROM {t})",
                    ident(&c)
                )
            })
            .collect();
        if maxima.is_empty() {
            maxima.push("NULL".to_string());
        }
        let sql = format!(
            "SELECT GREATEST(COALESCE(GREATEST({}), 0) + 1,
                             (SELECT seqstart FROM pg_catalog.pg_sequence WHERE seqrelid = $1::pg_catalog.text::pg_catalog.regclass))",
            maxima.join(", ")
        );
        let next: i64 = client.query_one(&sql, &[seq]).await.map_err(fail)?.get(0);
        // ALTER SEQUENCE … RESTART is transactional, so a load that is killed or rolled
        // back before COMMIT leaves the sequence as it was. setval is not: on its own it
        // would leave the sequence moved — backwards, below rows that still exist, when
        // --prune had deleted the largest ids. ALTER needs the sequence's owner; a role
        // that may only UPDATE it falls back to setval (the caller restores it on a
        // rollback it sees, but not after a crash).
        client
            .batch_execute("SAVEPOINT cutover_sequence")
            .await
            .map_err(fail)?;
        // `seq` comes from the catalog already quoted; `next` is an integer.
        match client
            .batch_execute(&format!("ALTER SEQUENCE {seq} RESTART WITH {next}"))
            .await
        {
            Ok(()) => client
                .batch_execute("RELEASE SAVEPOINT cutover_sequence")
                .await
                .map_err(fail)?,
            Err(e)
                if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) =>
            {
                client
                    .batch_execute("ROLLBACK TO SAVEPOINT cutover_sequence; RELEASE SAVEPOINT cutover_sequence")
                    .await
                    .map_err(fail)?;
                client
                    .execute(
                        "SELECT pg_catalog.setval($1::pg_catalog.text::pg_catalog.regclass, $2, false)",
                        &[seq, &next],
                    )
                    .await
                    .map_err(fail)?;
            }
            Err(e) => return Err(fail(e)),
        }
        for (t, col) in &f.columns {
            done.push(SequenceReset {
                table: t.clone(),
                column: col.clone(),
                sequence: seq.clone(),
                next,
            });
        }
    }
    Ok(done)
}
