//! The triggers a mapping turns off for the load (`triggers = "disable"`,
//! `disable_triggers = [...]`): disabled inside the load's transaction before anything is
//! written, and enabled again, each in the state it had (`ENABLE`, `ENABLE ALWAYS`,
//! `ENABLE REPLICA`), before the load commits — so a committed load leaves the schema as it
//! found it (`pg_dump -s` is unchanged), and a failed one rolls the change back with the
//! rest. Other sessions never see the triggers off: `ALTER TABLE … DISABLE TRIGGER` is
//! transactional and holds its lock until the end (PostgreSQL docs, ALTER TABLE). It needs
//! the table's ownership. Every other trigger fires on the load's writes as on the
//! application's.

use crate::error::{data, describe_pg, unavailable, usage};
use crate::pg::sql::ident;
use crate::plan::Plan;
use tokio_postgres::Transaction;

/// Disable the triggers the mapping turns off.
pub(super) async fn disable(tx: &Transaction<'_>, plan: &Plan) -> anyhow::Result<()> {
    for t in &plan.tables {
        for (name, _) in &t.disable_triggers {
            let sql = format!(
                "ALTER TABLE {} DISABLE TRIGGER {}",
                t.qualified,
                ident(name)
            );
            tx.batch_execute(&sql).await.map_err(|e| {
                let owner = e
                    .as_db_error()
                    .is_some_and(|d| d.code().code() == "42501");
                if owner {
                    usage(format!(
                        "the mapping disables trigger `{name}` on `{}` for the load, which only the table's owner may do: {}\n  Run the load as the table's owner, or keep the trigger (remove it from `disable_triggers`, or `triggers = \"keep\"`).",
                        t.name,
                        describe_pg(&e)
                    ))
                } else {
                    unavailable(format!(
                        "disabling trigger `{name}` on `{}`: {}",
                        t.name,
                        describe_pg(&e)
                    ))
                }
            })?;
        }
    }
    Ok(())
}

/// Enable them again as they were, once the load's writes are done. Deferred constraint
/// checks still pending are run first (PostgreSQL refuses an ALTER TABLE while the table has
/// pending trigger events); one that fails is the data not checking out.
pub(super) async fn enable(tx: &Transaction<'_>, plan: &Plan) -> anyhow::Result<()> {
    if plan.tables.iter().all(|t| t.disable_triggers.is_empty()) {
        return Ok(());
    }
    tx.batch_execute("SET CONSTRAINTS ALL IMMEDIATE")
        .await
        .map_err(|e| {
            data(format!(
                "checking the deferred constraints of the loaded rows: {}\n  Nothing was committed; the application's own check refused these rows.",
                describe_pg(&e)
            ))
        })?;
    for t in &plan.tables {
        for (name, state) in &t.disable_triggers {
            let how = match state {
                'A' => "ENABLE ALWAYS",
                'R' => "ENABLE REPLICA",
                _ => "ENABLE",
            };
            let sql = format!("ALTER TABLE {} {how} TRIGGER {}", t.qualified, ident(name));
            tx.batch_execute(&sql).await.map_err(|e| {
                unavailable(format!(
                    "enabling trigger `{name}` on `{}` again: {}; nothing was committed",
                    t.name,
                    describe_pg(&e)
                ))
            })?;
        }
    }
    Ok(())
}
