//! Bulk loading into empty tables: set aside foreign keys and secondary indexes while the
//! rows go in, then put them back exactly as they were — all inside the load's transaction.
//!
//! A row-by-row FK trigger check and index maintenance per row dominate a load into a
//! constrained schema (REFERENCE.md §3: 37.9 s with constraints in place, 2.6 s bare plus
//! 3.5 s to build indexes and FKs afterwards). PostgreSQL DDL is transactional, so dropping
//! and re-creating them inside the load's own transaction keeps the load all-or-nothing: a
//! failure or a crash rolls the drops back too, and nothing can be left without its
//! constraints. Definitions come from `pg_get_constraintdef` / `pg_get_indexdef`, so they
//! come back identical (names, ON DELETE actions, DEFERRABLE, partial and expression
//! indexes). Unique indexes and PK/unique constraints stay: they identify rows (the merge
//! and the reference joins use them) and report duplicates as they happen.

use super::sql::ident;
use crate::error::{describe_pg, unavailable};
use tokio_postgres::Transaction;

/// What was set aside, to be put back by [`restore`].
#[derive(Debug, Default)]
pub struct SetAside {
    /// (table, constraint name, definition).
    foreign_keys: Vec<(String, String, String)>,
    /// (qualified index name, CREATE INDEX statement).
    indexes: Vec<(String, String)>,
}

impl SetAside {
    pub fn is_empty(&self) -> bool {
        self.foreign_keys.is_empty() && self.indexes.is_empty()
    }
    /// "N foreign keys and M indexes", for the report.
    pub fn describe(&self) -> String {
        format!(
            "{} foreign keys and {} indexes",
            self.foreign_keys.len(),
            self.indexes.len()
        )
    }
}

/// Drop the outgoing foreign keys and the non-unique indexes of `tables` (qualified names).
pub async fn set_aside(tx: &Transaction<'_>, tables: &[&str]) -> anyhow::Result<SetAside> {
    let mut out = SetAside::default();
    if tables.is_empty() {
        return Ok(out);
    }
    let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    let fks = tx
        .query(
            "SELECT c.conrelid::regclass::text, c.conname::text, pg_get_constraintdef(c.oid)
               FROM pg_constraint c
              WHERE c.contype = 'f' AND c.conrelid = ANY (SELECT unnest($1::text[])::regclass)
              ORDER BY c.conrelid::regclass::text, c.conname",
            &[&names],
        )
        .await
        .map_err(|e| unavailable(format!("reading foreign keys: {}", describe_pg(&e))))?;
    for r in fks {
        out.foreign_keys.push((r.get(0), r.get(1), r.get(2)));
    }
    // Indexes that back no constraint (a PK, a unique constraint, or the unique index an FK
    // elsewhere points at) and enforce nothing.
    let idx = tx
        .query(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
               FROM pg_index i
              WHERE i.indrelid = ANY (SELECT unnest($1::text[])::regclass)
                AND NOT i.indisunique AND NOT i.indisexclusion
                AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
              ORDER BY 1",
            &[&names],
        )
        .await
        .map_err(|e| unavailable(format!("reading indexes: {}", describe_pg(&e))))?;
    for r in idx {
        out.indexes.push((r.get(0), r.get(1)));
    }
    for (table, name, _) in &out.foreign_keys {
        tx.batch_execute(&format!(
            "ALTER TABLE {table} DROP CONSTRAINT {}",
            ident(name)
        ))
        .await
        .map_err(|e| {
            unavailable(format!(
                "setting aside foreign key {name} of {table}: {}",
                describe_pg(&e)
            ))
        })?;
    }
    for (name, _) in &out.indexes {
        tx.batch_execute(&format!("DROP INDEX {name}"))
            .await
            .map_err(|e| unavailable(format!("setting aside index {name}: {}", describe_pg(&e))))?;
    }
    Ok(out)
}

/// Re-create the indexes, then re-add the foreign keys (each validated in one pass over the
/// table). A row that breaks a foreign key fails the load here, with PostgreSQL's DETAIL.
pub async fn restore(tx: &Transaction<'_>, set: &SetAside) -> anyhow::Result<()> {
    for (name, def) in &set.indexes {
        tx.batch_execute(def)
            .await
            .map_err(|e| unavailable(format!("re-creating index {name}: {}", describe_pg(&e))))?;
    }
    for (table, name, def) in &set.foreign_keys {
        tx.batch_execute(&format!("ALTER TABLE {table} ADD CONSTRAINT {} {def}", ident(name))).await.map_err(|e| {
            let msg = format!("re-adding foreign key {name} of {table}: {}", describe_pg(&e));
            match e.as_db_error().map(|d| d.code().code().starts_with("23")) {
                Some(true) => crate::error::data(format!(
                    "{msg}\n  Nothing was committed: a loaded row points at a row that does not exist; map that column with `references` so it is resolved and reported."
                )),
                _ => unavailable(msg),
            }
        })?;
    }
    Ok(())
}
