//! Sequences behind loaded tables: `serial`, `bigserial` and identity columns alike
//! (`pg_get_serial_sequence` finds them all). After a load each is set past the largest id so
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

const FIND: &str = "SELECT a.attname::text, pg_get_serial_sequence($1, a.attname)
                      FROM pg_attribute a
                     WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
                       AND pg_get_serial_sequence($1, a.attname) IS NOT NULL
                     ORDER BY a.attnum";

/// (column, sequence) pairs of a table.
async fn find(client: &impl GenericClient, table: &str) -> anyhow::Result<Vec<(String, String)>> {
    let rows = client.query(FIND, &[&table]).await.map_err(|e| {
        unavailable(format!(
            "finding the sequences of {table}: {}",
            describe_pg(&e)
        ))
    })?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub(crate) async fn snapshot(
    client: &impl GenericClient,
    tables: &[&str],
) -> anyhow::Result<Vec<SequenceState>> {
    let mut out = Vec::new();
    for t in tables {
        for (_, seq) in find(client, t).await? {
            // `seq` comes from the catalog already quoted.
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
    }
    Ok(out)
}

pub(crate) async fn restore(client: &Client, saved: &[SequenceState]) -> anyhow::Result<()> {
    for s in saved {
        client
            .execute(
                "SELECT setval($1::text::regclass, $2, $3)",
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

/// Set every sequence of `tables` so its next value is past the column's largest value
/// (or the sequence's start when the table is empty). Returns what it set, sequence by
/// sequence.
pub(crate) async fn reset(
    client: &impl GenericClient,
    tables: &[&str],
) -> anyhow::Result<Vec<SequenceReset>> {
    let mut done = Vec::new();
    for t in tables {
        for (col, seq) in find(client, t).await? {
            let fail = |e: tokio_postgres::Error| {
                unavailable(format!(
                    "resetting sequence {seq} of {t}.{col}: {}",
                    describe_pg(&e)
                ))
            };
            let sql = format!(
                "SELECT GREATEST(COALESCE((SELECT max({c}) FROM {t}), 0) + 1,
                                 (SELECT seqstart FROM pg_sequence WHERE seqrelid = $1::text::regclass))",
                c = ident(&col)
            );
            let next: i64 = client.query_one(&sql, &[&seq]).await.map_err(fail)?.get(0);
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
                    if e.code()
                        == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) =>
                {
                    client
                        .batch_execute("ROLLBACK TO SAVEPOINT cutover_sequence; RELEASE SAVEPOINT cutover_sequence")
                        .await
                        .map_err(fail)?;
                    client
                        .execute(
                            "SELECT setval($1::text::regclass, $2, false)",
                            &[&seq, &next],
                        )
                        .await
                        .map_err(fail)?;
                }
                Err(e) => return Err(fail(e)),
            }
            done.push(SequenceReset {
                table: t.to_string(),
                column: col,
                sequence: seq,
                next,
            });
        }
    }
    Ok(done)
}
