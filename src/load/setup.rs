//! Setting a load up: the transaction at the right isolation, the advisory lock that keeps
//! two loads apart, the sequences' state (to put back if the load does not commit), the
//! Alembic revision check, emptying the tables for `--mode replace`, and setting aside the
//! constraints of the tables that are empty at the start so they are bulk loaded.

use super::{Loading, Mode, Options, Report, bulk, sequences};
use crate::error::{describe_pg, unavailable, usage};
use crate::plan::staging::Staging;
use crate::plan::{Plan, TableKind};
use tokio_postgres::{Client, IsolationLevel, Transaction};

/// An arbitrary constant: the advisory lock that keeps two loads from interleaving.
const LOCK_KEY: i64 = 0x0063_7574_6f76_6572; // "cutover"

impl<'a> Loading<'a> {
    /// Start the load's transaction and make it ready for the first table. Once the lock is
    /// held, the sequences' state is in `saved`.
    pub(super) async fn begin(
        client: &'a mut Client,
        plan: &'a Plan,
        opts: &'a Options,
        saved: &mut Option<Vec<sequences::SequenceState>>,
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
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&LOCK_KEY])
            .await
            .map_err(|e| unavailable(format!("taking the load lock: {}", describe_pg(&e))))?
            .get(0);
        if !locked {
            return Err(unavailable(
                "another `cutover load` is running against this database (it holds cutover's advisory lock); wait for it to finish, then run again",
            ));
        }
        let tables: Vec<&str> = plan.tables.iter().map(|t| t.qualified.as_str()).collect();
        *saved = Some(sequences::snapshot(&tx, &tables).await?);
        check_revision(&tx, opts.expect_revision.as_deref()).await?;

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
            set_aside: bulk::SetAside::default(),
            report: Report {
                mode: match opts.mode {
                    Mode::Merge => "merge",
                    Mode::Replace => "replace",
                    Mode::Verify => "verify",
                }
                .into(),
                dry_run: opts.dry_run,
                max_rejects: opts.max_rejects,
                ..Report::default()
            },
            rejects: Vec::new(),
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
                self.report.rebuilt = Some(format!(
                    "not possible ({e:#}); loaded with constraints in place"
                ));
            }
        }
        Ok(())
    }
}

/// The target's Alembic revision is the one the mapping expects, when it expects one.
async fn check_revision(tx: &Transaction<'_>, expect: Option<&str>) -> anyhow::Result<()> {
    let Some(expect) = expect else { return Ok(()) };
    let rows = tx.query("SELECT version_num::text FROM alembic_version", &[]).await.map_err(|e| {
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
