//! What the target schema really is, read from the PostgreSQL catalog: tables, column types,
//! nullability, defaults, identity and generated columns, primary and foreign keys.
//! Column types always come from here, never from the mapping.
//!
//! Catalog tables and functions are schema-qualified (`pg_catalog.`), as PostgreSQL's docs
//! advise for code that may run with an untrusted search_path ("Schemas", "Usage Patterns");
//! the operators rely on the session's search_path, which `connect` pins to
//! `pg_catalog, pg_temp`.

use super::types::PgType;
use anyhow::Context;
use std::collections::HashMap;
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
}

#[derive(Debug, Clone)]
pub struct ColumnInfo {
    pub name: String,
    pub ty: PgType,
    /// `format_type()`: what a staging column is declared as.
    pub sql_type: String,
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
}

impl Catalog {
    pub fn table(&self, name: &str) -> Option<&TableInfo> {
        self.tables.iter().find(|t| t.name == name)
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tables.iter().map(|t| t.name.as_str())
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
                    pg_catalog.format_type(a.atttypid, a.atttypmod),
                    bt.typname, bt.typtype::text, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
                    bt.oid, et.typname, et.typtype::text, bt.typelem, et.oid,
                    CASE WHEN bt.typtype = 'e' THEN bt.oid WHEN et.typtype = 'e' THEN et.oid END
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
               JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
               LEFT JOIN pg_catalog.pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
              WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
              ORDER BY c.relname, a.attnum",
            &[&schema],
        )
        .await
        .context("reading the target catalog")?;
    let enums = client
        .query(
            "SELECT enumtypid, enumlabel FROM pg_catalog.pg_enum ORDER BY enumtypid, enumsortorder",
            &[],
        )
        .await
        .context("reading enum labels")?;
    let mut labels: HashMap<u32, Vec<String>> = HashMap::new();
    for r in enums {
        labels.entry(r.get::<_, u32>(0)).or_default().push(r.get(1));
    }

    let mut tables: Vec<TableInfo> = Vec::new();
    for r in rows {
        let table: String = r.get(0);
        let identity: String = r.get(4);
        let generated: String = r.get(5);
        let typname: String = r.get(7);
        let typtype: String = r.get(8);
        let typmod: i32 = r.get(9);
        let elem_name: Option<String> = r.get(11);
        let elem_type: Option<String> = r.get(12);
        let elem_oid: Option<u32> = r.get(14);
        let enum_oid: Option<u32> = r.get(15);
        let enum_labels = enum_oid
            .and_then(|o| labels.get(&o))
            .cloned()
            .unwrap_or_default();
        let ty = match (elem_name, elem_type, elem_oid) {
            (Some(en), Some(et), Some(eo)) => PgType::Array {
                elem: Box::new(pg_type(&en, &et, -1, enum_labels)),
                elem_oid: eo,
            },
            _ => pg_type(&typname, &typtype, typmod, enum_labels),
        };
        let col = ColumnInfo {
            name: r.get(1),
            not_null: r.get(2),
            has_default: r.get(3),
            identity: identity.chars().next().unwrap_or('\0'),
            generated: !generated.is_empty(),
            sql_type: r.get(6),
            ty,
        };
        match tables.last_mut() {
            Some(t) if t.name == table => t.columns.push(col),
            _ => tables.push(TableInfo {
                name: table,
                columns: vec![col],
                primary_key: vec![],
                foreign_keys: vec![],
                unique_keys: vec![],
            }),
        }
    }

    let cons = client
        .query(
            "SELECT c.relname, k.contype::text,
                    ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY u(n, o)
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o),
                    fc.relname
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
            t.foreign_keys.push(ForeignKey { ref_table });
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

/// The catalog's type name and modifier as a [`PgType`].
fn pg_type(typname: &str, typtype: &str, typmod: i32, labels: Vec<String>) -> PgType {
    if typtype == "e" {
        return PgType::Enum { labels };
    }
    let chars = (typmod >= 4).then(|| (typmod - 4) as usize);
    match typname {
        "bool" => PgType::Bool,
        "int2" => PgType::Int2,
        "int4" => PgType::Int4,
        "int8" => PgType::Int8,
        "float4" => PgType::Float4,
        "float8" => PgType::Float8,
        "numeric" => {
            if typmod >= 4 {
                let m = (typmod - 4) as u32;
                PgType::Numeric {
                    precision: Some((m >> 16) & 0xffff),
                    scale: Some(m & 0xffff),
                }
            } else {
                PgType::Numeric {
                    precision: None,
                    scale: None,
                }
            }
        }
        "text" | "citext" | "name" => PgType::Text { max_chars: None },
        "varchar" | "bpchar" => PgType::Text { max_chars: chars },
        "bytea" => PgType::Bytea,
        "uuid" => PgType::Uuid,
        "date" => PgType::Date,
        "time" => PgType::Time,
        "timestamp" => PgType::Timestamp,
        "timestamptz" => PgType::Timestamptz,
        "json" => PgType::Json,
        "jsonb" => PgType::Jsonb,
        other => PgType::Other {
            name: other.to_string(),
        },
    }
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

/// The target's Alembic revision (the table [`alembic_table`] finds): its revisions joined
/// with `,` (one per branch head), or None without the table.
pub(crate) async fn alembic_revision(client: &impl GenericClient) -> Option<String> {
    let table = alembic_table(client).await?;
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
            "SELECT c.relname::text, t.tgname::text, pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled <> 'D'
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
        .map(|r| TriggerInfo {
            table: r.get(0),
            name: r.get(1),
            definition: r.get(2),
            enabled: r.get(3),
        })
        .collect();
    Ok(Touched {
        sequences,
        constraints,
        triggers,
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
