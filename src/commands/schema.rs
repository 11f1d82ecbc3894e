//! The scratch database's schema: a file (`--schema`) or a live database's `pg_dump -s`
//! (`--schema-from`), made plain SQL and applied to the throwaway cluster.
//!
//! A dump names the real target's roles (`OWNER TO`, `GRANT`, policies), which a fresh
//! cluster lacks. They are created there, as roles without login or any attribute, rather
//! than the lines that name them being skipped: ownership, grants and policies then stand
//! as on the real target, whichever statement names a role, and cutover need not know
//! every statement that can. A dump has no rows either, so `--schema-from` copies the
//! `alembic_version` rows that a mapping's `expect_revision` is checked against.

use crate::connect::TargetUrl;
use crate::error::{describe_pg, unavailable, usage};
use crate::pg::sql::ident;
use anyhow::Context;
use cutover_scratch::{dump, script};
use std::path::PathBuf;

/// How many roles a schema may name that the cluster lacks (each costs one more attempt).
const MAX_ROLES: usize = 200;

/// Where the scratch database's schema comes from.
pub(crate) enum Schema {
    /// `--schema FILE.sql`.
    File(PathBuf),
    /// `--schema-from URL`: the URL as given, and parsed.
    Database(String, Box<TargetUrl>),
}

impl Schema {
    /// For messages: `--schema FILE` or `the schema of URL (pg_dump -s)`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Schema::File(p) => format!("--schema {}", p.display()),
            Schema::Database(_, url) => format!("the schema of {} (pg_dump -s)", url.redacted()),
        }
    }

    /// The schema's SQL, with what only psql understands taken out (or refused).
    pub(crate) async fn sql(&self) -> anyhow::Result<String> {
        let text = match self {
            Schema::File(p) => std::fs::read_to_string(p)
                .map_err(|e| usage(format!("cannot read --schema {}: {e}", p.display())))?,
            Schema::Database(raw, url) => {
                let raw = raw.clone();
                tokio::task::spawn_blocking(move || dump::schema_only(&raw))
                    .await
                    .context("running pg_dump")?
                    .map_err(|e| {
                        unavailable(format!(
                            "--schema-from {}: {e:#}\n  Check that the URL reaches the database; pg_dump must be as new as its server.",
                            url.redacted()
                        ))
                    })?
            }
        };
        script::plain_sql(&text).map_err(|e| usage(format!("{}: {e:#}", self.describe())))
    }
}

/// Creates the database `db` names and applies `sql` to it. A role the schema names that
/// the cluster lacks is created and the database made anew, so the schema is applied
/// whole, once, to a fresh database. Returns the roles created.
pub(crate) async fn apply(
    admin: &TargetUrl,
    db: &TargetUrl,
    sql: &str,
    what: &str,
) -> anyhow::Result<Vec<String>> {
    let name = ident(db.dbname().unwrap_or("cutover"));
    let admin = admin.connect().await?;
    let admin_sql = |q: String| {
        let admin = &admin;
        async move {
            admin.batch_execute(&q).await.map_err(|e| {
                unavailable(format!(
                    "preparing the scratch database ({q}): {}",
                    describe_pg(&e)
                ))
            })
        }
    };
    let mut created = Vec::new();
    loop {
        admin_sql(format!("CREATE DATABASE {name}")).await?;
        let client = db.connect_unpinned_for_schema_setup().await?;
        let applied = client.batch_execute(sql).await;
        drop(client);
        let Err(e) = applied else { return Ok(created) };
        let missing = missing_role(&e).filter(|r| !created.contains(r));
        let Some(role) = missing.filter(|_| created.len() < MAX_ROLES) else {
            return Err(usage(format!(
                "applying {what} to the scratch database failed: {}",
                describe_pg(&e)
            )));
        };
        admin_sql(format!("DROP DATABASE {name} WITH (FORCE)")).await?;
        admin_sql(format!("CREATE ROLE {} NOLOGIN", ident(&role))).await?;
        created.push(role);
    }
}

/// The role an error says does not exist (`role "x" does not exist`: 42704 where a role
/// is named, 22023 in `SET ROLE`). The scratch cluster's messages are in English.
fn missing_role(e: &tokio_postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    if !matches!(db.code().code(), "42704" | "22023") {
        return None;
    }
    let name = db
        .message()
        .strip_prefix("role \"")?
        .strip_suffix("\" does not exist")?;
    Some(name.to_string())
}

/// Copies the `alembic_version` rows (the table `alembic_version` resolves to on `from`)
/// into the same table on `to`; returns the revisions copied. Nothing when `from` has no
/// such table.
pub(crate) async fn copy_revisions(
    from: &TargetUrl,
    to: &TargetUrl,
) -> anyhow::Result<Vec<String>> {
    let real = from.connect().await?;
    let read = |e: tokio_postgres::Error| {
        unavailable(format!(
            "reading alembic_version from {}: {}",
            from.redacted(),
            describe_pg(&e)
        ))
    };
    let table: Option<String> = crate::pg::catalog::alembic_table(&real).await;
    let Some(table) = table else {
        return Ok(Vec::new());
    };
    let rows: String = real
        .query_one(
            &format!("SELECT coalesce(json_agg(t), '[]')::text FROM {table} t"),
            &[],
        )
        .await
        .map_err(read)?
        .get(0);
    drop(real);
    let scratch = to.connect().await?;
    scratch
        .execute(
            &format!(
                "INSERT INTO {table} SELECT * FROM json_populate_recordset(NULL::{table}, $1::text::json)"
            ),
            &[&rows],
        )
        .await
        .map_err(|e| {
            unavailable(format!(
                "copying the alembic_version rows into the scratch database: {}",
                describe_pg(&e)
            ))
        })?;
    let parsed: Vec<serde_json::Value> = serde_json::from_str(&rows).unwrap_or_default();
    Ok(parsed
        .iter()
        .filter_map(|r| r.get("version_num")?.as_str().map(str::to_string))
        .collect())
}
