//! The load plan: the mapping bound to the real source fields and the target catalog, in
//! foreign-key order.
//!
//! Binding is where a mapping meets reality: every target table and column must exist,
//! NOT NULL columns must be filled, types come from the catalog (never from the mapping),
//! and every source table and field must exist. All problems are collected and reported
//! together, each with the mapping's line. The order is a topological sort of the mapping's
//! references plus the catalog's foreign keys between mapped tables, ties broken by file
//! order, so users → events → … is derived, never hard-coded.

use crate::convert::GenerateId;
use crate::convert::{ColumnPlan, Rules};
use crate::mapping::suggest;
use crate::mapping::{
    Const, Identity, Input, Mapping, OnMissing, Problem, Problems, Shape, TableMap,
};
use crate::pg::PgType;
use crate::pg::catalog::{Catalog, ColumnInfo, TableInfo};
use crate::pg::sql::qualified;
use crate::source::SourceTable;

pub(crate) mod keys;
pub(crate) mod staging;

use crate::graph::order;

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Tables in load order.
    pub(crate) tables: Vec<TablePlan>,
}

#[derive(Debug, Clone)]
pub(crate) struct TablePlan {
    pub(crate) name: String,
    /// The source table.
    pub(crate) from: String,
    /// `"schema"."table"`.
    pub(crate) qualified: String,
    pub(crate) kind: TableKind,
    /// Source fields read, in order; `StageColumn::input` indexes into this.
    pub(crate) fields: Vec<String>,
    /// The staging table's columns (after the row ordinal and the drop flag; see
    /// [`staging::Staging`]).
    pub(crate) stage: Vec<StageColumn>,
    /// Insert with OVERRIDING SYSTEM VALUE (an explicit id into GENERATED ALWAYS).
    pub(crate) overriding: bool,
    /// No id is drawn from a sequence (ids kept, or a junction): insert order is free.
    pub(crate) ids_from_source: bool,
    /// When source rows collide on a unique key of the target.
    pub(crate) on_duplicate: keys::DuplicatePolicy,
}

#[derive(Debug, Clone)]
pub(crate) enum TableKind {
    /// Rows are matched on `stage[0]` (the legacy id) = target column `match_column`.
    Entity { match_column: String },
    /// Rows are matched on all reference columns; `owner` indexes `stage`.
    Junction { owner: usize },
}

#[derive(Debug, Clone)]
pub(crate) enum StageInput {
    Field(usize),
    Const(Const),
    /// A UUID generated per row; a name-based one from the legacy id in field `field`, in
    /// this table's `namespace`.
    Generated {
        id: GenerateId,
        field: usize,
        namespace: uuid::Uuid,
    },
}

/// The namespace of a table's name-based ids: a UUIDv5 of `cutover:SCHEMA.TABLE` in the URL
/// namespace of RFC 9562, so anyone can recompute an id (`uuid5(uuid5(NAMESPACE_URL,
/// "cutover:public.users"), legacy_id)` in Python's uuid module, for example).
pub(crate) fn id_namespace(schema: &str, table: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("cutover:{schema}.{table}").as_bytes(),
    )
}

#[derive(Debug, Clone)]
pub(crate) struct StageColumn {
    /// Target column this feeds.
    pub(crate) target: String,
    pub(crate) input: StageInput,
    /// Type, nullability and rules the value is converted with.
    pub(crate) plan: ColumnPlan,
    /// SQL type of the staging column (`format_type`).
    pub(crate) sql_type: String,
    /// Compare as text when merging (json has no equality operator).
    pub(crate) compare_as_text: bool,
    /// Part of the identity: never updated once inserted.
    pub(crate) key: bool,
    pub(crate) reference: Option<RefPlan>,
    /// Arrays, formula errors, exploding (see `mapping::Shape`).
    pub(crate) shape: Shape,
}

#[derive(Debug, Clone)]
pub(crate) struct RefPlan {
    pub(crate) table: String,
    pub(crate) qualified: String,
    /// The parent's column holding the legacy id (what the source value matches).
    pub(crate) match_column: String,
    /// The parent's primary key (what the target column receives).
    pub(crate) pk: String,
    /// Index of the parent in `Plan::tables`.
    pub(crate) parent: usize,
    pub(crate) on_missing: OnMissing,
    /// The target column is NOT NULL (so "null" cannot apply).
    pub(crate) not_null: bool,
    /// The referencing column's type when it differs from the parent key's (a varchar column
    /// holding integer ids): the resolved id is cast to it, so comparing and writing it needs
    /// no cross-type operator.
    pub(crate) cast_to: Option<String>,
}

impl TablePlan {
    pub(crate) fn is_junction(&self) -> bool {
        matches!(self.kind, TableKind::Junction { .. })
    }
}

/// Bind a mapping to the target catalog and the source's tables.
pub(crate) fn bind(
    m: &Mapping,
    catalog: &Catalog,
    source: &[SourceTable],
) -> Result<Plan, Problems> {
    let mut problems = Vec::new();
    let mut tables: Vec<(usize, TablePlan)> = Vec::new();

    // Order first: mapping references plus catalog FKs between mapped tables.
    let index = |name: &str| m.tables.iter().position(|t| t.name == name);
    let mut edges = Vec::new();
    for (i, t) in m.tables.iter().enumerate() {
        for c in &t.columns {
            if let Some(j) = c.reference.as_ref().and_then(|r| index(&r.table))
                && j != i
            {
                edges.push((i, j));
            }
        }
        if let Some(info) = catalog.table(&t.name) {
            for fk in &info.foreign_keys {
                if let Some(j) = index(&fk.ref_table)
                    && j != i
                    && !edges.contains(&(i, j))
                {
                    edges.push((i, j));
                }
            }
        }
    }
    let order = match order(m.tables.len(), &edges) {
        Ok(o) => o,
        Err(cycle) => {
            let path: Vec<&str> = cycle.iter().map(|&i| m.tables[i].name.as_str()).collect();
            problems.push(Problem {
                line: m.tables[cycle[0]].line,
                key: format!("tables.{}", m.tables[cycle[0]].name),
                message: format!(
                    "the mapping's references and the target's foreign keys form a cycle: {}; no load order can satisfy it",
                    path.join(" -> ")
                ),
            });
            (0..m.tables.len()).collect()
        }
    };
    let position = |name: &str| order.iter().position(|&i| m.tables[i].name == name);

    for (pos, &i) in order.iter().enumerate() {
        let t = &m.tables[i];
        let info = match catalog.table(&t.name) {
            Some(info) => info,
            None => {
                problems.push(Problem {
                    line: t.line,
                    key: format!("tables.{}", t.name),
                    message: format!(
                        "table `{}.{}` does not exist in the target{}",
                        m.schema,
                        t.name,
                        suggest::hint(&t.name, catalog.names())
                    ),
                });
                continue;
            }
        };
        let src = source.iter().find(|s| s.name == t.from);
        if src.is_none() {
            problems.push(Problem {
                line: t.line,
                key: format!("tables.{}.from", t.name),
                message: format!(
                    "source table `{}` does not exist{}",
                    t.from,
                    suggest::hint(&t.from, source.iter().map(|s| s.name.as_str()))
                ),
            });
        }
        if let Some(tp) = bind_table(m, t, info, src, catalog, &position, pos, &mut problems) {
            tables.push((pos, tp));
        }
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(Problems {
            file: m.file.clone(),
            list: problems,
        });
    }
    tables.sort_by_key(|(p, _)| *p);
    Ok(Plan {
        tables: tables.into_iter().map(|(_, t)| t).collect(),
    })
}

#[allow(clippy::too_many_arguments)]
fn bind_table(
    m: &Mapping,
    t: &TableMap,
    info: &TableInfo,
    src: Option<&SourceTable>,
    catalog: &Catalog,
    position: &dyn Fn(&str) -> Option<usize>,
    pos: usize,
    problems: &mut Vec<Problem>,
) -> Option<TablePlan> {
    let key = |rest: &str| format!("tables.{}.{rest}", t.name);
    let mut fields: Vec<String> = Vec::new();
    let mut field = |name: &str, line: usize, k: String, problems: &mut Vec<Problem>| -> usize {
        if let Some(s) = src
            && !s.fields.iter().any(|f| f == name)
        {
            problems.push(Problem {
                line,
                key: k,
                message: format!(
                    "source table `{}` has no field `{name}`{}",
                    s.name,
                    suggest::hint(name, s.fields.iter().map(String::as_str))
                ),
            });
        }
        match fields.iter().position(|f| f == name) {
            Some(i) => i,
            None => {
                fields.push(name.to_string());
                fields.len() - 1
            }
        }
    };
    let column =
        |name: &str, line: usize, k: String, problems: &mut Vec<Problem>| -> Option<&ColumnInfo> {
            let c = info.column(name);
            if c.is_none() {
                problems.push(Problem {
                    line,
                    key: k,
                    message: format!(
                        "column `{name}` does not exist in target table `{}`{}",
                        t.name,
                        suggest::hint(name, info.columns.iter().map(|c| c.name.as_str()))
                    ),
                });
            }
            c
        };

    let mut stage = Vec::new();
    let mut overriding = false;
    let mut filled: Vec<String> = Vec::new();
    let kind = match &t.identity {
        Identity::Legacy {
            field: lf,
            column: lc,
            keep_id,
            generate,
        } => {
            let fi = field(lf, t.line, key("legacy_id"), problems);
            // A generated key: a single-column uuid primary key (the mapping made sure a
            // legacy column keeps the legacy id).
            let generated = generate.and_then(|id| match info.primary_key.as_slice() {
                [pk] => match info.column(pk) {
                    Some(c) if c.ty == PgType::Uuid => Some((id, c)),
                    other => {
                        problems.push(Problem { line: t.line, key: key("generate_id"), message: format!("`generate_id` fills a uuid primary key, but `{}`'s primary key `{pk}` is {}", t.name, other.map(|c| c.sql_type.as_str()).unwrap_or("?")) });
                        None
                    }
                },
                _ => {
                    problems.push(Problem { line: t.line, key: key("generate_id"), message: format!("`generate_id` needs a single-column primary key, and `{}` has {}", t.name, if info.primary_key.is_empty() { "none".to_string() } else { info.primary_key.join(", ") }) });
                    None
                }
            });
            let pk = if *keep_id {
                match info.primary_key.as_slice() {
                    [pk] => info.column(pk).filter(|c| matches!(c.ty, PgType::Int2 | PgType::Int4 | PgType::Int8)).or_else(|| {
                        problems.push(Problem { line: t.line, key: key("keep_id"), message: format!("`keep_id` needs an integer primary key, but `{}`'s is `{pk}` of type {}", t.name, info.column(pk).map(|c| c.sql_type.as_str()).unwrap_or("?")) });
                        None
                    }),
                    _ => {
                        problems.push(Problem { line: t.line, key: key("keep_id"), message: format!("`keep_id` needs a single-column primary key, and `{}` has {}", t.name, if info.primary_key.is_empty() { "none".to_string() } else { info.primary_key.join(", ") }) });
                        None
                    }
                }
            } else {
                None
            };
            let legacy = match lc {
                Some(lc) => column(lc, t.line, key("legacy_column"), problems),
                None => pk,
            };
            let legacy = legacy?;
            if matches!(
                legacy.ty,
                PgType::Other { .. } | PgType::Json | PgType::Jsonb | PgType::Array { .. }
            ) {
                problems.push(Problem { line: t.line, key: key("legacy_column"), message: format!("`{}` is of type {}, which cannot hold a legacy id: use a text or integer column", legacy.name, legacy.sql_type) });
            }
            // The legacy id fills the legacy column and, with keep_id too, the primary key.
            let id_rules = Rules {
                trim: true,
                required: true,
                ..Rules::default()
            };
            let mut ids = vec![legacy];
            if let (Some(pk), Some(_)) = (pk, lc) {
                ids.push(pk);
            }
            for col in ids {
                stage.push(stage_column(
                    col,
                    StageInput::Field(fi),
                    id_rules.clone(),
                    true,
                ));
                filled.push(col.name.clone());
            }
            // Part of the identity, so never updated: a re-run keeps the ids rows have.
            if let Some((id, pk)) = generated {
                let input = StageInput::Generated {
                    id,
                    field: fi,
                    namespace: id_namespace(&m.schema, &t.name),
                };
                stage.push(stage_column(pk, input, Rules::default(), true));
                filled.push(pk.name.clone());
            }
            if let Some(pk) = pk {
                overriding = pk.identity == 'a';
            }
            TableKind::Entity {
                match_column: legacy.name.clone(),
            }
        }
        Identity::Junction { .. } => TableKind::Junction { owner: 0 },
    };

    for c in &t.columns {
        let k = key(&format!("columns.{}", c.name));
        let Some(ci) = column(&c.name, c.line, k.clone(), problems) else {
            continue;
        };
        if ci.generated {
            problems.push(Problem { line: c.line, key: k.clone(), message: format!("`{}` is a generated column: PostgreSQL computes it, remove it from the mapping", c.name) });
            continue;
        }
        if let PgType::Other { name } = &ci.ty {
            problems.push(Problem {
                line: c.line,
                key: k.clone(),
                message: format!("cutover cannot write columns of type {name} yet"),
            });
        }
        if c.rules.epoch.is_some()
            && !matches!(
                ci.ty,
                PgType::Date | PgType::Timestamp | PgType::Timestamptz
            )
        {
            problems.push(Problem {
                line: c.line,
                key: format!("{k}.epoch"),
                message: format!(
                    "`epoch` only applies to date and timestamp columns; `{}` is {}",
                    c.name, ci.sql_type
                ),
            });
        }
        if ci.identity == 'a' {
            overriding = true;
        }
        let input = match &c.input {
            Input::Field(f) => StageInput::Field(field(f, c.line, format!("{k}.field"), problems)),
            Input::Const(v) => StageInput::Const(v.clone()),
        };
        filled.push(c.name.clone());
        let sc = match &c.reference {
            None => StageColumn {
                shape: c.shape,
                ..stage_column(ci, input, c.rules.clone(), false)
            },
            Some(r) => {
                let Some(parent_map) = m.table(&r.table) else {
                    continue;
                };
                let Some(parent) = catalog.table(&r.table) else {
                    continue;
                };
                let Some(parent_pos) = position(&r.table) else {
                    continue;
                };
                let (match_col, pk) = match &parent_map.identity {
                    Identity::Legacy {
                        column: Some(lc), ..
                    } => (
                        parent.column(lc),
                        parent.primary_key.first().and_then(|p| parent.column(p)),
                    ),
                    Identity::Legacy { column: None, .. } => {
                        let pk = parent.primary_key.first().and_then(|p| parent.column(p));
                        (pk, pk)
                    }
                    Identity::Junction { .. } => (None, None),
                };
                let (Some(match_col), Some(pk), 1) = (match_col, pk, parent.primary_key.len())
                else {
                    problems.push(Problem {
                        line: c.line,
                        key: format!("{k}.references"),
                        message: format!(
                            "`{}` has no single-column primary key to point at",
                            r.table
                        ),
                    });
                    continue;
                };
                let int = |t: &PgType| matches!(t, PgType::Int2 | PgType::Int4 | PgType::Int8);
                if int(&pk.ty) != int(&ci.ty) && !matches!(ci.ty, PgType::Text { .. }) {
                    problems.push(Problem {
                        line: c.line,
                        key: k.clone(),
                        message: format!(
                            "`{}` is {}, but `{}.{}` it points at is {}",
                            c.name, ci.sql_type, r.table, pk.name, pk.sql_type
                        ),
                    });
                }
                if r.on_missing == OnMissing::Null && ci.not_null {
                    problems.push(Problem { line: c.line, key: format!("{k}.on_missing"), message: format!("`on_missing = \"null\"` cannot apply: `{}` is NOT NULL; use \"skip\" or \"error\"", c.name) });
                }
                // The staging column holds the parent's legacy id, typed like its match column.
                let mut plan = ColumnPlan {
                    ty: match_col.ty.clone(),
                    not_null: ci.not_null,
                    rules: c.rules.clone(),
                };
                plan.rules.trim = true;
                StageColumn {
                    target: c.name.clone(),
                    input,
                    sql_type: match_col.sql_type.clone(),
                    compare_as_text: false,
                    key: t.is_junction(),
                    shape: c.shape,
                    plan,
                    reference: Some(RefPlan {
                        table: r.table.clone(),
                        qualified: qualified(&m.schema, &r.table),
                        match_column: match_col.name.clone(),
                        pk: pk.name.clone(),
                        parent: parent_pos,
                        on_missing: r.on_missing,
                        not_null: ci.not_null,
                        cast_to: (pk.sql_type != ci.sql_type).then(|| ci.sql_type.clone()),
                    }),
                }
            }
        };
        stage.push(sc);
    }

    for ci in &info.columns {
        if ci.not_null
            && !ci.has_default
            && ci.identity == '\0'
            && !ci.generated
            && !filled.contains(&ci.name)
        {
            problems.push(Problem {
                line: t.line,
                key: key("columns"),
                message: format!("target column `{}.{}` is NOT NULL with no default, and nothing in the mapping fills it", t.name, ci.name),
            });
        }
    }

    let kind = match (kind, &t.identity) {
        (TableKind::Junction { .. }, Identity::Junction { owner }) => TableKind::Junction {
            owner: stage.iter().position(|s| &s.target == owner).unwrap_or(0),
        },
        (k, _) => k,
    };
    let _ = pos;
    let on_duplicate = keys::bind(t, info, problems);
    Some(TablePlan {
        name: t.name.clone(),
        from: t.from.clone(),
        qualified: qualified(&m.schema, &t.name),
        kind,
        fields,
        stage,
        overriding,
        ids_from_source: match &t.identity {
            Identity::Legacy { keep_id, .. } => *keep_id,
            Identity::Junction { .. } => true,
        },
        on_duplicate,
    })
}

fn stage_column(ci: &ColumnInfo, input: StageInput, rules: Rules, key: bool) -> StageColumn {
    StageColumn {
        target: ci.name.clone(),
        input,
        plan: ColumnPlan {
            ty: ci.ty.clone(),
            not_null: ci.not_null || key,
            rules,
        },
        sql_type: ci.sql_type.clone(),
        compare_as_text: matches!(ci.ty, PgType::Json)
            || matches!(&ci.ty, PgType::Array { elem, .. } if **elem == PgType::Json),
        key,
        reference: None,
        shape: Shape::default(),
    }
}
