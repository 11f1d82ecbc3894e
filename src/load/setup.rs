//! Setting a load up: the transaction at the right isolation, the advisory lock that keeps
//! two loads apart, the sequences' state (to put back if the load does not commit), the
//! Alembic revision check, emptying the tables for `--mode replace`, turning off the triggers
//! the mapping disables, and setting aside the constraints of the tables that are empty at
//! the start so they are bulk loaded.

use super::{
    BulkLoad, Loading, Mode, Observer, Options, Report, bulk, cycles, sequences, triggers,
};
use crate::error::{describe_pg, unavailable, usage};
use crate::plan::staging::Staging;
use crate::plan::{Plan, TableKind};
use tokio_postgres::{Client, IsolationLevel, Transaction};

/// cutover's advisory lock is the pair (this, the database name hashed): one per database,
/// and findable in `pg_locks` (classid, objid) to name whoever holds it.
const LOCK_CLASS: i32 = 0x6375_7476; // "cutv"

/// How long a statement waits for a lock when the session sets no `lock_timeout` (0 =
/// forever): long enough for an application's short transactions to finish, short enough
/// that a load never stalls a live application's queue behind it for long.
const DEFAULT_LOCK_TIMEOUT: &str = "10s";

impl<'a> Loading<'a> {
    /// Start the load's transaction and make it ready for the first table. Once the lock is
    /// held, the sequences' state is in `saved`.
    pub(super) async fn begin(
        client: &'a mut Client,
        plan: &'a Plan,
        opts: &'a Options,
        saved: &mut Option<Vec<sequences::SequenceState>>,
        observer: &'a dyn Observer,
    ) -> anyhow::Result<Loading<'a>> {
        let verify_only = opts.mode == Mode::Verify;
        // Verification compares against one consistent snapshot.
        let isolation = if verify_only {
            IsolationLevel::RepeatableRead
        } else {
            IsolationLevel::ReadCommitted
        };
        let tx = client
            .build_transaction()
            .isolation_level(isolation)
            .start()
            .await
            .map_err(|e| unavailable(format!("cannot start a transaction: {}", describe_pg(&e))))?;
        let locked: bool = tx
            .query_one(
                "SELECT pg_catalog.pg_try_advisory_xact_lock($1, pg_catalog.hashtext(pg_catalog.current_database()))",
                &[&LOCK_CLASS],
            )
            .await
            .map_err(|e| unavailable(format!("taking the load lock: {}", describe_pg(&e))))?
            .get(0);
        if !locked {
            return Err(unavailable(advisory_holder(&tx).await));
        }
        if !verify_only {
            lock_tables(&tx, plan, opts.mode).await?;
            triggers::disable(&tx, plan).await?;
            cycles::defer_constraints(&tx, plan).await?;
        }
        let tables: Vec<&str> = plan.tables.iter().map(|t| t.qualified.as_str()).collect();
        *saved = Some(sequences::snapshot(&tx, &tables).await?);
        check_revision(&tx, opts.expect_revision.as_deref(), &plan.schema).await?;

        if opts.mode == Mode::Replace {
            tx.batch_execute(&format!("TRUNCATE {} RESTART IDENTITY", tables.join(", "))).await.map_err(|e| {
                unavailable(format!(
                    "--mode replace could not empty the mapped tables: {}\n  Tables outside the mapping reference them; map those tables too, or use --mode merge.",
                    describe_pg(&e)
                ))
            })?;
        }

        let mut load = Loading {
            tx,
            plan,
            opts,
            staging: Staging::all(plan),
            empty: vec![false; plan.tables.len()],
            digests: vec![None; plan.tables.len()],
            settled: vec![false; plan.tables.len()],
            set_aside: bulk::SetAside::default(),
            base: Default::default(),
            report: Report {
                mode: match opts.mode {
                    Mode::Merge => "merge",
                    Mode::Replace => "replace",
                    Mode::Verify => "verify",
                }
                .into(),
                dry_run: opts.dry_run,
                prune: opts.prune,
                max_rejects: opts.max_rejects,
                ..Report::default()
            },
            rejects: Vec::new(),
            observer,
        };
        if !verify_only {
            load.set_aside_constraints().await?;
        }
        Ok(load)
    }

    /// Tables empty at the start (all of them on cutover day, and after --mode replace) are
    /// bulk loaded: their foreign keys and secondary indexes are set aside and rebuilt once.
    async fn set_aside_constraints(&mut self) -> anyhow::Result<()> {
        let tx = &self.tx;
        for (i, t) in self.plan.tables.iter().enumerate() {
            self.empty[i] = tx
                .query_one(
                    &format!("SELECT NOT EXISTS (SELECT 1 FROM {})", t.qualified),
                    &[],
                )
                .await
                .map_err(|e| unavailable(format!("reading `{}`: {}", t.name, describe_pg(&e))))?
                .get(0);
        }
        let fresh: Vec<bulk::Fresh> = self
            .plan
            .tables
            .iter()
            .zip(&self.empty)
            .filter(|(_, e)| **e)
            .map(|(t, _)| bulk::Fresh {
                table: t.qualified.as_str(),
                match_column: match &t.kind {
                    TableKind::Entity { match_column } => Some(match_column.as_str()),
                    TableKind::Junction { .. } => None,
                },
            })
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        tx.batch_execute("SET LOCAL maintenance_work_mem = '256MB'; SAVEPOINT cutover_bulk")
            .await
            .map_err(|e| unavailable(format!("preparing the bulk load: {}", describe_pg(&e))))?;
        // Only the tables' owner may drop their constraints; anyone else loads with the
        // constraints in place (slower, same result).
        match bulk::set_aside(tx, &fresh).await {
            Ok(set) => self.set_aside = set,
            Err(e) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT cutover_bulk")
                    .await
                    .map_err(|e| {
                        unavailable(format!(
                            "after the bulk load setup failed: {}",
                            describe_pg(&e)
                        ))
                    })?;
                self.report.bulk_load = Some(BulkLoad {
                    rebuilt: Vec::new(),
                    not_possible: Some(format!("{e:#}")),
                });
            }
        }
        Ok(())
    }
}

/// Who holds cutover's advisory lock, as a sentence that says what to do about it.
async fn advisory_holder(tx: &Transaction<'_>) -> String {
    let holder = tx
        .query_opt(
            "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
                    coalesce(a.client_addr::text, 'local'),
                    coalesce(pg_catalog.to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '')
               FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
                AND l.classid = $1::pg_catalog.int4::pg_catalog.oid
                AND l.objid = pg_catalog.hashtext(pg_catalog.current_database())::pg_catalog.oid
              LIMIT 1",
            &[&LOCK_CLASS],
        )
        .await
        .ok()
        .flatten();
    let Some(r) = holder else {
        return "another session holds cutover's load lock on this database (it was released before it could be named); run again".to_string();
    };
    let (pid, app, user, from, since): (i32, String, String, String, String) =
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    let who =
        format!("pid {pid}, application_name '{app}', user '{user}', from {from}, since {since}");
    if app == crate::connect::url::DEFAULT_APPLICATION_NAME {
        format!(
            "another `cutover load` is running against this database ({who}); wait for it to finish, then run again"
        )
    } else {
        format!(
            "a session that is not cutover holds cutover's load lock on this database ({who}), so no load can start; ask its owner, or end it with SELECT pg_terminate_backend({pid})"
        )
    }
}

/// Lock every mapped table up front, parents first, so the load never waits for a lock in
/// the middle (where it could deadlock with an application taking rows in another order).
/// SHARE ROW EXCLUSIVE lets the application read but not write the tables until the load
/// commits; tables that are truncated or bulk loaded (their constraints set aside) need
/// ACCESS EXCLUSIVE. Every wait is bounded by `lock_timeout`.
async fn lock_tables(tx: &Transaction<'_>, plan: &Plan, mode: Mode) -> anyhow::Result<()> {
    let timeout: String = tx
        .query_one("SELECT pg_catalog.current_setting('lock_timeout')", &[])
        .await
        .map_err(|e| unavailable(format!("reading lock_timeout: {}", describe_pg(&e))))?
        .get(0);
    let timeout = if timeout == "0" {
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = '{DEFAULT_LOCK_TIMEOUT}'"
        ))
        .await
        .map_err(|e| unavailable(format!("setting lock_timeout: {}", describe_pg(&e))))?;
        DEFAULT_LOCK_TIMEOUT.to_string()
    } else {
        timeout
    };
    for t in &plan.tables {
        let exclusive = mode == Mode::Replace
            || tx
                .query_one(
                    &format!("SELECT NOT EXISTS (SELECT 1 FROM {})", t.qualified),
                    &[],
                )
                .await
                .map_err(|e| unavailable(format!("reading `{}`: {}", t.name, describe_pg(&e))))?
                .get::<_, bool>(0);
        let lock_mode = if exclusive {
            "ACCESS EXCLUSIVE"
        } else {
            "SHARE ROW EXCLUSIVE"
        };
        tx.batch_execute("SAVEPOINT cutover_lock")
            .await
            .map_err(|e| unavailable(format!("locking `{}`: {}", t.name, describe_pg(&e))))?;
        if let Err(e) = tx
            .batch_execute(&format!("LOCK TABLE {} IN {lock_mode} MODE", t.qualified))
            .await
        {
            let _ = tx.batch_execute("ROLLBACK TO SAVEPOINT cutover_lock").await;
            let holders = lock_holders(tx, &t.qualified).await;
            return Err(unavailable(format!(
                "table `{}` is in use: {} (lock_timeout {timeout}){holders}. Nothing was loaded; run again when the application's transactions on it have finished (or stop the application), or set a longer lock_timeout for the load's role or database",
                t.name,
                describe_pg(&e)
            )));
        }
    }
    Ok(())
}

/// The other sessions holding a lock on `table`, for the message when it cannot be locked.
async fn lock_holders(tx: &Transaction<'_>, table: &str) -> String {
    let rows = tx
        .query(
            "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
                    pg_catalog.string_agg(l.mode, ', ' ORDER BY l.mode)
               FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
              WHERE l.relation = $1::pg_catalog.text::pg_catalog.regclass AND l.granted
                AND l.pid <> pg_catalog.pg_backend_pid()
              GROUP BY 1, 2, 3 ORDER BY 1 LIMIT 5",
            &[&table],
        )
        .await
        .unwrap_or_default();
    if rows.is_empty() {
        return String::new();
    }
    let list: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "pid {} ('{}', user '{}', {})",
                r.get::<_, i32>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3)
            )
        })
        .collect();
    format!("; held by {}", list.join(", "))
}

/// The target's Alembic revision is the one the mapping expects, when it expects one: the
/// revision of the mapping's target schema, not of whichever `alembic_version` the search
/// path finds first.
async fn check_revision(
    tx: &Transaction<'_>,
    expect: Option<&str>,
    schema: &str,
) -> anyhow::Result<()> {
    let Some(expect) = expect else { return Ok(()) };
    let table = crate::pg::catalog::alembic_table_of(tx, schema)
        .await
        .unwrap_or_else(|| "alembic_version".to_string());
    let rows = tx.query(&format!("SELECT version_num::text FROM {table}"), &[]).await.map_err(|e| {
        usage(format!(
            "the mapping expects Alembic revision {expect}, but the target has no readable alembic_version table: {}",
            describe_pg(&e)
        ))
    })?;
    let found: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    if found.iter().any(|v| v == expect) {
        return Ok(());
    }
    if found.is_empty() {
        return Err(usage(format!(
            "the mapping expects Alembic revision {expect}, but the target's alembic_version table is empty: run `alembic upgrade head` on the target; for --target scratch with a schema-only dump (which has no rows), use --schema-from URL, which copies them, or append the real target's row to the --schema file (`INSERT INTO alembic_version VALUES ('<its revision>');`)"
        )));
    }
    Err(usage(format!(
        "the target schema is at Alembic revision {}, but the mapping expects {expect}: run `alembic upgrade head` on the target, or update `expect_revision` after checking the mapping against the new schema",
        if found.is_empty() {
            "(none)".to_string()
        } else {
            found.join(", ")
        }
    )))
}
