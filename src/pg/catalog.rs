//! What the target schema really is, read from the PostgreSQL catalog: tables, column types,
//! nullability, defaults, identity and generated columns, primary and foreign keys.
//! Column types always come from here, never from the mapping: every type a column uses is
//! read with its domains' base types and its arrays' element types, which `types.rs` turns
//! into what the converter writes and how it is staged.
//!
//! Catalog tables and functions are schema-qualified (`pg_catalog.`), as PostgreSQL's docs
//! advise for code that may run with an untrusted search_path ("Schemas", "Usage Patterns");
//! the operators rely on the session's search_path, which `connect` pins to
//! `pg_catalog, pg_temp`.

use super::types::{Coercion, PgType, TypeRow, Types};
use anyhow::Context;
use tokio_postgres::{Client, GenericClient};

#[derive(Debug, Clone)]
pub struct Catalog {
    tables: Vec<TableInfo>,
}

#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    pub primary_key: Vec<String>,
    pub foreign_keys: Vec<ForeignKey>,
    /// The names of its unique indexes (a primary key's or unique constraint's index is
    /// named as the constraint).
    pub unique_keys: Vec<String>,
    /// The table's own triggers (not those PostgreSQL makes for foreign keys).
    pub triggers: Vec<Trigger>,
}

#[derive(Debug, Clone)]
pub struct Trigger {
    pub name: String,
    /// `pg_trigger.tgenabled`: 'O' (fires), 'A' (always), 'R' (replica only), 'D' (disabled).
    pub enabled: char,
}

#[derive(Debug, Clone)]
pub struct ColumnInfo {
    pub name: String,
    pub ty: PgType,
    /// `format_type()`: the column's own type, with its modifier.
    pub sql_type: String,
    /// How values are staged when not as the column's own type (text input, domains).
    pub coercion: Option<Coercion>,
    /// Compared as text when merging and verifying (see `ColumnType::compare_as_text`).
    pub compare_as_text: bool,
    pub not_null: bool,
    pub has_default: bool,
    /// 'a' GENERATED ALWAYS AS IDENTITY, 'd' BY DEFAULT, '\0' none.
    pub identity: char,
    /// GENERATED ALWAYS AS (expr) STORED.
    pub generated: bool,
}

#[derive(Debug, Clone)]
pub struct ForeignKey {
    pub ref_table: String,
    /// The constraint's name, schema-qualified and quoted (for `SET CONSTRAINTS`).
    pub name: String,
    /// The referencing columns, in key order.
    pub columns: Vec<String>,
    /// DEFERRABLE: its check can wait until the end of the transaction.
    pub deferrable: bool,
}

impl Catalog {
    pub fn table(&self, name: &str) -> Option<&TableInfo> {
        self.tables.iter().find(|t| t.name == name)
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tables.iter().map(|t| t.name.as_str())
    }
}

impl ColumnInfo {
    /// What a staging column holding this column's values is declared as.
    pub fn staged_type(&self) -> &str {
        self.coercion
            .as_ref()
            .map_or(self.sql_type.as_str(), |c| c.staged.as_str())
    }
}

impl TableInfo {
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Read the catalog of one schema.
pub async fn read(client: &Client, schema: &str) -> anyhow::Result<Catalog> {
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .await
        .context("reading the target catalog")?;
    if exists.is_none() {
        return Err(crate::error::usage(format!(
            "schema `{schema}` does not exist in the target database: apply the application's migrations first (e.g. `alembic upgrade head`)"
        )));
    }
    let rows = client
        .query(
            "SELECT c.relname, a.attname, a.attnotnull, a.atthasdef, a.attidentity::text, a.attgenerated::text,
                    pg_catalog.format_type(a.atttypid, a.atttypmod), a.atttypid, a.atttypmod
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
              ORDER BY c.relname, a.attnum",
            &[&schema],
        )
        .await
        .context("reading the target catalog")?;
    let types = read_types(client, schema).await?;

    let mut tables: Vec<TableInfo> = Vec::new();
    for r in rows {
        let table: String = r.get(0);
        let identity: String = r.get(4);
        let generated: String = r.get(5);
        let sql_type: String = r.get(6);
        let column = types.column(r.get(7), r.get(8), &sql_type);
        let col = ColumnInfo {
            name: r.get(1),
            not_null: r.get(2),
            has_default: r.get(3),
            identity: identity.chars().next().unwrap_or('\0'),
            generated: !generated.is_empty(),
            sql_type,
            ty: column.ty,
            coercion: column.coercion,
            compare_as_text: column.compare_as_text,
        };
        match tables.last_mut() {
            Some(t) if t.name == table => t.columns.push(col),
            _ => tables.push(TableInfo {
                name: table,
                columns: vec![col],
                primary_key: vec![],
                foreign_keys: vec![],
                triggers: vec![],
                unique_keys: vec![],
            }),
        }
    }

    let cons = client
        .query(
            "SELECT c.relname, k.contype::text,
                    ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY u(n, o)
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o),
                    fc.relname, k.condeferrable,
                    pg_catalog.format('%I.%I', n.nspname, k.conname)
               FROM pg_catalog.pg_constraint k
               JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_catalog.pg_class fc ON fc.oid = k.confrelid
               LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
              WHERE n.nspname = $1 AND k.contype IN ('p', 'f') AND (k.contype = 'p' OR fn.nspname = $1)",
            &[&schema],
        )
        .await
        .context("reading primary and foreign keys")?;
    for r in cons {
        let table: String = r.get(0);
        let kind: String = r.get(1);
        let cols: Vec<String> = r.get(2);
        let Some(t) = tables.iter_mut().find(|t| t.name == table) else {
            continue;
        };
        if kind == "p" {
            t.primary_key = cols;
        } else if let Some(ref_table) = r.get::<_, Option<String>>(3) {
            t.foreign_keys.push(ForeignKey {
                ref_table,
                name: r.get(5),
                columns: cols,
                deferrable: r.get(4),
            });
        }
    }
    let triggers = client
        .query(
            "SELECT c.relname, t.tgname::text, t.tgenabled::text
               FROM pg_catalog.pg_trigger t
               JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND NOT t.tgisinternal
              ORDER BY c.relname, t.tgname",
            &[&schema],
        )
        .await
        .context("reading triggers")?;
    for r in triggers {
        let table: String = r.get(0);
        let enabled: String = r.get(2);
        if let Some(t) = tables.iter_mut().find(|t| t.name == table) {
            t.triggers.push(Trigger {
                name: r.get(1),
                enabled: enabled.chars().next().unwrap_or('O'),
            });
        }
    }
    let unique = client
        .query(
            "SELECT c.relname, ic.relname::text
               FROM pg_catalog.pg_index i
               JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
              WHERE n.nspname = $1 AND i.indisunique
              ORDER BY 1, 2",
            &[&schema],
        )
        .await
        .context("reading unique keys")?;
    for r in unique {
        let table: String = r.get(0);
        if let Some(t) = tables.iter_mut().find(|t| t.name == table) {
            t.unique_keys.push(r.get(1));
        }
    }
    Ok(Catalog { tables })
}

/// The types the schema's columns use, with every domain's base type and every array's
/// element type, and the enums' labels.
async fn read_types(client: &Client, schema: &str) -> anyhow::Result<Types> {
    let rows = client
        .query(
            "WITH RECURSIVE used(oid) AS (
                 SELECT a.atttypid
                   FROM pg_catalog.pg_class c
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
                 UNION
                 SELECT CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.typelem END
                   FROM used u JOIN pg_catalog.pg_type t ON t.oid = u.oid
                  WHERE t.typtype = 'd' OR (t.typcategory = 'A' AND t.typelem <> 0)
             )
             SELECT t.oid, t.typname::text, tn.nspname = 'pg_catalog', t.typtype::text,
                    CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE 0 END, t.typbasetype, t.typtypmod,
                    t.typnotnull OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.contypid = t.oid),
                    pg_catalog.format_type(t.oid, -1),
                    CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END,
                    CASE WHEN t.typtype = 'd' AND bt.typarray <> 0 THEN pg_catalog.format_type(bt.typarray, t.typtypmod) END,
                    ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
               FROM used u
               JOIN pg_catalog.pg_type t ON t.oid = u.oid
               JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
               LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype",
            &[&schema],
        )
        .await
        .context("reading the column types of the target")?;
    let mut types = Types::default();
    for r in rows {
        let kind: String = r.get(3);
        let row = TypeRow {
            oid: r.get(0),
            name: r.get(1),
            builtin: r.get(2),
            kind: kind.chars().next().unwrap_or('b'),
            elem: r.get(4),
            base: r.get(5),
            base_mod: r.get(6),
            constrained: r.get(7),
            sql: r.get(8),
            base_sql: r.get(9),
            base_array_sql: r.get(10),
            labels: r.get(11),
        };
        types.rows.insert(row.oid, row);
    }
    Ok(types)
}

/// The `alembic_version` table as Alembic finds it, schema-qualified: the first schema of
/// the session's default search_path that holds a table of that name. The default is what
/// RESET would restore (the role's, the database's or the server's setting), since
/// `connect` pins the live search_path to `pg_catalog, pg_temp`. Only an ordinary table
/// counts: a view of that name could run another role's code.
pub(crate) async fn alembic_table(client: &impl GenericClient) -> Option<String> {
    let row = client
        .query_one(
            "SELECT reset_val, current_user::text FROM pg_catalog.pg_settings WHERE name = 'search_path'",
            &[],
        )
        .await
        .ok()?;
    let (path, user): (String, String) = (row.get(0), row.get(1));
    for schema in search_path_schemas(&path, &user) {
        let found = client
            .query_opt(
                "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
                   FROM pg_catalog.pg_class c
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relname = 'alembic_version' AND c.relkind IN ('r', 'p')",
                &[&schema],
            )
            .await
            .ok()?;
        if let Some(r) = found {
            return Some(r.get(0));
        }
    }
    None
}

/// The schema names of a search_path setting, `$user` replaced, unquoted names folded to
/// lower case as PostgreSQL does.
fn search_path_schemas(path: &str, user: &str) -> Vec<String> {
    let mut out = Vec::new();
    for item in path.split(',') {
        let item = item.trim();
        let name = match item.strip_prefix('"').and_then(|i| i.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => item.to_lowercase(),
        };
        let name = if name == "$user" {
            user.to_string()
        } else {
            name
        };
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

/// The `alembic_version` table of the application whose tables are in `schema`: that
/// schema's own when it has one (an application in a schema of its own keeps its version
/// table there, or says so with Alembic's `version_table_schema`), else the one Alembic
/// finds on the search path ([`alembic_table`]).
pub(crate) async fn alembic_table_of(client: &impl GenericClient, schema: &str) -> Option<String> {
    let own = client
        .query_opt(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relname = 'alembic_version' AND c.relkind IN ('r', 'p')",
            &[&schema],
        )
        .await
        .ok()?;
    match own {
        Some(r) => Some(r.get(0)),
        None => alembic_table(client).await,
    }
}

/// The Alembic revision of the application whose tables are in `schema` (the table
/// [`alembic_table_of`] finds): its revisions joined with `,`, or None without the table.
pub(crate) async fn alembic_revision_of(
    client: &impl GenericClient,
    schema: &str,
) -> Option<String> {
    let table = alembic_table_of(client, schema).await?;
    revision_in(client, &table).await
}

/// The target's Alembic revision (the table [`alembic_table`] finds): its revisions joined
/// with `,` (one per branch head), or None without the table.
#[cfg(test)]
pub(crate) async fn alembic_revision(client: &impl GenericClient) -> Option<String> {
    let table = alembic_table(client).await?;
    revision_in(client, &table).await
}

/// The revisions in the `alembic_version` table `table` (qualified), joined with `,`.
async fn revision_in(client: &impl GenericClient, table: &str) -> Option<String> {
    client
        .query_one(
            &format!(
                "SELECT pg_catalog.string_agg(version_num::text, ',' ORDER BY version_num) FROM {table}"
            ),
            &[],
        )
        .await
        .ok()?
        .get(0)
}

/// What a load touches beyond the rows of its tables: the sequences it resets, the keys,
/// indexes and foreign keys it may set aside and rebuild, and the triggers that fire on its
/// writes.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Touched {
    pub(crate) sequences: Vec<SequenceInfo>,
    pub(crate) constraints: Vec<ConstraintInfo>,
    pub(crate) triggers: Vec<TriggerInfo>,
    /// The mapped tables with row level security enabled.
    pub(crate) row_security: Vec<RowSecurityInfo>,
}

/// A mapped table with row level security enabled, and whether its policies bind the role
/// that reads the catalog (the load's role): they do unless it is a superuser, has
/// BYPASSRLS, or owns the table without FORCE ROW LEVEL SECURITY (PostgreSQL docs, "Row
/// Security Policies").
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct RowSecurityInfo {
    pub(crate) table: String,
    pub(crate) policies: i64,
    /// FORCE ROW LEVEL SECURITY: the policies bind the owner too.
    pub(crate) forced: bool,
    /// The policies apply to the load's reads and writes.
    pub(crate) applies: bool,
    /// The load's role.
    pub(crate) role: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct SequenceInfo {
    pub(crate) table: String,
    pub(crate) column: String,
    pub(crate) sequence: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ConstraintInfo {
    pub(crate) table: String,
    pub(crate) name: String,
    /// `primary_key`, `unique`, `foreign_key`, `check`, `exclusion` or `index` (an index
    /// that backs no constraint).
    pub(crate) kind: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct TriggerInfo {
    pub(crate) table: String,
    pub(crate) name: String,
    /// `pg_get_triggerdef`: when it fires and what it runs.
    pub(crate) definition: String,
    pub(crate) enabled: bool,
    /// `BEFORE`, `AFTER` or `INSTEAD OF`.
    pub(crate) timing: String,
    /// Which writes fire it: `INSERT`, `UPDATE`, `DELETE`, `TRUNCATE`.
    pub(crate) events: Vec<String>,
    /// FOR EACH ROW (else FOR EACH STATEMENT).
    pub(crate) for_each_row: bool,
    /// A constraint trigger that is DEFERRABLE INITIALLY DEFERRED: it runs at commit.
    pub(crate) initially_deferred: bool,
    /// What the load does with it (filled in by whoever knows the plan).
    pub(crate) during_load: String,
}

/// What a load of `tables` (in `schema`) touches, read from the catalog; nothing is
/// changed.
pub(crate) async fn touched(
    client: &Client,
    schema: &str,
    tables: &[String],
) -> anyhow::Result<Touched> {
    let sequences = client
        .query(
            "SELECT c.relname::text, a.attname::text, pg_catalog.pg_get_serial_sequence(pg_catalog.format('%I.%I', n.nspname, c.relname), a.attname)
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE n.nspname = $1 AND c.relname::text = ANY ($2::text[])
                AND pg_catalog.pg_get_serial_sequence(pg_catalog.format('%I.%I', n.nspname, c.relname), a.attname) IS NOT NULL
              ORDER BY pg_catalog.array_position($2::text[], c.relname::text), a.attnum",
            &[&schema, &tables],
        )
        .await
        .context("reading the sequences of the mapped tables")?
        .iter()
        .map(|r| SequenceInfo {
            table: r.get(0),
            column: r.get(1),
            sequence: r.get(2),
        })
        .collect();
    let constraints = client
        .query(
            "SELECT c.relname::text, x.name, x.kind
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               JOIN LATERAL (
                    SELECT k.conname::text AS name,
                           CASE k.contype WHEN 'p' THEN 'primary_key' WHEN 'u' THEN 'unique'
                                          WHEN 'f' THEN 'foreign_key' WHEN 'c' THEN 'check'
                                          WHEN 'x' THEN 'exclusion' ELSE k.contype::text END AS kind,
                           k.contype::text AS sort
                      FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid
                    UNION ALL
                    SELECT ic.relname::text, 'index', 'i'
                      FROM pg_catalog.pg_index i
                      JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                     WHERE i.indrelid = c.oid
                       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype <> 'f')
               ) x ON true
              WHERE n.nspname = $1 AND c.relname::text = ANY ($2::text[])
              ORDER BY pg_catalog.array_position($2::text[], c.relname::text), x.sort, x.name",
            &[&schema, &tables],
        )
        .await
        .context("reading the constraints of the mapped tables")?
        .iter()
        .map(|r| ConstraintInfo {
            table: r.get(0),
            name: r.get(1),
            kind: r.get(2),
        })
        .collect();
    let triggers = client
        .query(
            "SELECT c.relname::text, t.tgname::text, pg_catalog.pg_get_triggerdef(t.oid),
                    t.tgenabled IN ('O', 'A'), t.tgtype::pg_catalog.int4, t.tginitdeferred
               FROM pg_catalog.pg_trigger t
               JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relname::text = ANY ($2::text[]) AND NOT t.tgisinternal
              ORDER BY pg_catalog.array_position($2::text[], c.relname::text), t.tgname",
            &[&schema, &tables],
        )
        .await
        .context("reading the triggers of the mapped tables")?
        .iter()
        .map(|r| {
            // pg_trigger.tgtype's bits (src/include/catalog/pg_trigger.h).
            let ty: i32 = r.get(4);
            let events = [
                (4, "INSERT"),
                (16, "UPDATE"),
                (8, "DELETE"),
                (32, "TRUNCATE"),
            ]
            .iter()
            .filter(|(bit, _)| ty & bit != 0)
            .map(|(_, e)| e.to_string())
            .collect();
            TriggerInfo {
                table: r.get(0),
                name: r.get(1),
                definition: r.get(2),
                enabled: r.get(3),
                timing: if ty & 2 != 0 {
                    "BEFORE"
                } else if ty & 64 != 0 {
                    "INSTEAD OF"
                } else {
                    "AFTER"
                }
                .to_string(),
                events,
                for_each_row: ty & 1 != 0,
                initially_deferred: r.get(5),
                during_load: String::new(),
            }
        })
        .collect();
    let row_security = client
        .query(
            "SELECT c.relname::text,
                    (SELECT pg_catalog.count(*) FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid),
                    c.relforcerowsecurity,
                    NOT (r.rolsuper OR r.rolbypassrls
                         OR (NOT c.relforcerowsecurity AND pg_catalog.pg_has_role(r.oid, c.relowner, 'USAGE'))),
                    r.rolname::text
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_catalog.pg_roles r ON r.rolname = current_user
              WHERE n.nspname = $1 AND c.relname::text = ANY ($2::text[]) AND c.relrowsecurity
              ORDER BY pg_catalog.array_position($2::text[], c.relname::text)",
            &[&schema, &tables],
        )
        .await
        .context("reading the row level security of the mapped tables")?
        .iter()
        .map(|r| RowSecurityInfo {
            table: r.get(0),
            policies: r.get(1),
            forced: r.get(2),
            applies: r.get(3),
            role: r.get(4),
        })
        .collect();
    Ok(Touched {
        sequences,
        constraints,
        triggers,
        row_security,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn search_path_schemas() {
        assert_eq!(
            super::search_path_schemas("\"$user\", public, \"My \"\"Schema\"\"\", App", "loader"),
            ["loader", "public", "My \"Schema\"", "app"]
        );
        assert!(super::search_path_schemas("", "u").is_empty());
    }
}
