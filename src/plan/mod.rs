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
use crate::pg::types::Coercion;
use crate::source::SourceTable;

pub(crate) mod fingerprint;
pub(crate) mod keys;
pub(crate) mod source;
pub(crate) mod staging;

use crate::graph::{find_cycle, order};

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Tables in load order.
    pub(crate) tables: Vec<TablePlan>,
    /// The target schema (the mapping's `[target] schema`).
    pub(crate) schema: String,
    /// DEFERRABLE foreign keys (qualified names) checked at the end of the load rather than
    /// per statement: each closes a cycle of tables whose rows reference each other, and is
    /// filled without `references` (ids kept).
    pub(crate) deferred_constraints: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct TablePlan {
    pub(crate) name: String,
    /// The source table, by its name (the mapping may have named it by its id).
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
    /// Triggers the mapping turns off for the load (`ALTER TABLE … DISABLE TRIGGER`), each
    /// with its `tgenabled` state to restore before commit.
    pub(crate) disable_triggers: Vec<(String, char)>,
    /// Columns the table's triggers set (`set_by_triggers`): a mapped one is written when a
    /// row is inserted, never compared or updated afterwards, so a trigger rewriting it does
    /// not make every re-run rewrite the row.
    pub(crate) set_by_triggers: Vec<String>,
    /// Some row trigger of the table fires on the load's writes (and may rewrite what is
    /// written), so the target can differ from the staged rows it was written from.
    pub(crate) triggers_fire: bool,
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
    /// Staged as another type than the column's (text input, a domain's base type): how the
    /// staged value becomes the column's.
    pub(crate) coercion: Option<Coercion>,
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
    /// The reference closes a cycle (or points at its own table): the row is written with
    /// it NULL (or with whatever parent row is already in the target), and it is set from the
    /// staged rows once every table is loaded. Its dangling values are judged then.
    pub(crate) deferred: bool,
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

    // Order first: mapping references plus catalog FKs between mapped tables, with the
    // cycles among them broken where a reference can be set once every table is loaded.
    let deps = dependencies(m, catalog);
    let (order, deferred) = match load_order(m.tables.len(), &deps) {
        Ok(o) => o,
        Err(refused) => {
            for r in refused {
                let (i, message) = match r {
                    Refused::SelfNotNull(d) => (
                        d.from,
                        format!(
                            "`{}` is NOT NULL and references its own table: every row would need the row it references written first. Make the column nullable (cutover then writes it as NULL and sets it once the table is loaded), or leave it out of the mapping",
                            d.what.trim_end_matches(" (NOT NULL)")
                        ),
                    ),
                    Refused::Cycle(cycle) => (cycle[0], cycle_message(m, &deps, &cycle)),
                };
                problems.push(Problem {
                    line: m.tables[i].line,
                    key: format!("tables.{}", m.tables[i].name),
                    message,
                });
            }
            ((0..m.tables.len()).collect(), Vec::new())
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
        let src = source::table(source, &t.from);
        if src.is_none() {
            problems.push(Problem {
                line: t.line,
                key: format!("tables.{}.from", t.name),
                message: source::missing_table(source, &t.from),
            });
        }
        let later: Vec<&str> = deferred
            .iter()
            .filter_map(|l| match l {
                Lifted::Reference(table, c) if *table == i => Some(c.as_str()),
                _ => None,
            })
            .collect();
        let bound = bind_table(m, t, info, src, catalog, &position, &later, &mut problems);
        if let Some(tp) = bound {
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
    let deferred_constraints = deferred
        .iter()
        .filter_map(|l| match l {
            Lifted::Constraint(c) => Some(c.clone()),
            Lifted::Reference(..) => None,
        })
        .collect();
    Ok(Plan {
        tables: tables.into_iter().map(|(_, t)| t).collect(),
        schema: m.schema.clone(),
        deferred_constraints,
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
    deferred: &[&str],
    problems: &mut Vec<Problem>,
) -> Option<TablePlan> {
    let key = |rest: &str| format!("tables.{}.{rest}", t.name);
    let mut fields: Vec<String> = Vec::new();
    let mut field = |name: &str, line: usize, k: String, problems: &mut Vec<Problem>| -> usize {
        // A field the mapping names by its id is read by the name the source gave it when
        // it was opened (the Airtable source keeps asking for it by id), so a snapshot
        // written by name reads it too.
        let name = match src {
            Some(s) => match s.field(name) {
                Some(i) => s.fields[i].as_str(),
                None => {
                    problems.push(Problem {
                        line,
                        key: k,
                        message: source::missing_field(s, name),
                    });
                    name
                }
            },
            None => name,
        };
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
            trim: trim_id,
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
                PgType::Input { .. } | PgType::Json | PgType::Jsonb | PgType::Array { .. }
            ) {
                problems.push(Problem { line: t.line, key: key("legacy_column"), message: format!("`{}` is of type {}, which cannot hold a legacy id: use a text or integer column", legacy.name, legacy.sql_type) });
            }
            // The legacy id fills the legacy column and, with keep_id too, the primary key,
            // as the source holds it unless the mapping says `trim_legacy_id`.
            let id_rules = Rules {
                trim: *trim_id,
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
        if c.rules.truncate && !truncates(&ci.ty) {
            problems.push(Problem {
                line: c.line,
                key: format!("{k}.truncate"),
                message: format!(
                    "`truncate` only applies to varchar(n), char(n) and date columns; `{}` is {}",
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
                let later = deferred.contains(&c.name.as_str());
                if later && r.on_missing == OnMissing::Skip {
                    problems.push(Problem { line: c.line, key: format!("{k}.on_missing"), message: format!("`on_missing = \"skip\"` cannot apply to `{}`: it closes a cycle of references, so cutover sets it once every table is loaded, when its row is already written; use \"null\" or \"error\"", c.name) });
                }
                if r.on_missing == OnMissing::Null && ci.not_null {
                    problems.push(Problem { line: c.line, key: format!("{k}.on_missing"), message: format!("`on_missing = \"null\"` cannot apply: `{}` is NOT NULL; use \"skip\" or \"error\"", c.name) });
                }
                // The staging column holds the parent's legacy id, typed like its match column.
                // It is matched as the source holds it, unless the column says `trim`.
                let plan = ColumnPlan {
                    ty: match_col.ty.clone(),
                    not_null: ci.not_null,
                    rules: c.rules.clone(),
                };
                StageColumn {
                    target: c.name.clone(),
                    input,
                    sql_type: match_col.staged_type().to_string(),
                    compare_as_text: false,
                    coercion: None,
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
                        deferred: later,
                    }),
                }
            }
        };
        stage.push(sc);
    }

    let set_by = &t.triggers.set_by;
    for name in set_by {
        if info.column(name).is_none() {
            problems.push(Problem {
                line: t.line,
                key: key("set_by_triggers"),
                message: format!(
                    "column `{name}` does not exist in target table `{}`{}",
                    t.name,
                    suggest::hint(name, info.columns.iter().map(|c| c.name.as_str()))
                ),
            });
        }
    }
    if t.triggers.disable_all && !set_by.is_empty() {
        problems.push(Problem { line: t.line, key: key("set_by_triggers"), message: format!("`triggers = \"disable\"` turns off the triggers that `set_by_triggers` says fill {}: keep the triggers, or fill the columns in the mapping", set_by.join(", ")) });
    }
    for name in &t.triggers.disable {
        if !info.triggers.iter().any(|tr| &tr.name == name) {
            problems.push(Problem {
                line: t.line,
                key: key("disable_triggers"),
                message: format!(
                    "table `{}` has no trigger `{name}`{}",
                    t.name,
                    suggest::hint(name, info.triggers.iter().map(|tr| tr.name.as_str()))
                ),
            });
        }
    }
    let disable_triggers: Vec<(String, char)> = info
        .triggers
        .iter()
        .filter(|tr| tr.enabled != 'D')
        .filter(|tr| t.triggers.disable_all || t.triggers.disable.contains(&tr.name))
        .map(|tr| (tr.name.clone(), tr.enabled))
        .collect();
    // 'R' fires only under session_replication_role = replica, which the load never sets.
    let triggers_fire = info.triggers.iter().any(|tr| {
        !matches!(tr.enabled, 'D' | 'R') && !disable_triggers.iter().any(|(n, _)| *n == tr.name)
    });

    for ci in &info.columns {
        if ci.not_null
            && !ci.has_default
            && ci.identity == '\0'
            && !ci.generated
            && !filled.contains(&ci.name)
            && !set_by.contains(&ci.name)
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
    let on_duplicate = keys::bind(t, info, problems);
    Some(TablePlan {
        name: t.name.clone(),
        // The table as the source names it now, also when the mapping gave its id.
        from: src.map_or_else(|| t.from.clone(), |s| s.name.clone()),
        qualified: qualified(&m.schema, &t.name),
        kind,
        fields,
        stage,
        overriding,
        ids_from_source: match &t.identity {
            Identity::Legacy { keep_id, .. } => *keep_id,
            Identity::Junction { .. } => true,
        },
        disable_triggers,
        set_by_triggers: set_by.clone(),
        triggers_fire,
        on_duplicate,
    })
}

/// A column type `truncate` can cut a value to fit (as can a list of them).
fn truncates(ty: &PgType) -> bool {
    match ty {
        PgType::Text { max_chars } => max_chars.is_some(),
        PgType::Date => true,
        PgType::Array { elem, .. } => truncates(elem),
        _ => false,
    }
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
        sql_type: ci.staged_type().to_string(),
        compare_as_text: ci.compare_as_text,
        coercion: ci.coercion.clone(),
        key,
        reference: None,
        shape: Shape::default(),
    }
}

/// Why table `from` is written after table `to` (an index into the mapping's tables).
#[derive(Debug)]
struct Dependency {
    from: usize,
    to: usize,
    /// `table.column`, for messages.
    what: String,
    /// A reference through a nullable column, the column: it can be written NULL and set
    /// once every table is loaded.
    defer: Option<String>,
    /// The order can be reversed: by deferring, or because nothing is written to the
    /// foreign key's columns (they get NULL or their default).
    liftable: bool,
    /// A DEFERRABLE foreign key filled without `references`: lifted by checking it at the
    /// end of the load (`SET CONSTRAINTS … DEFERRED`).
    constraint: Option<String>,
}

/// Every reason one mapped table must be written after another: the mapping's references,
/// and the target's foreign keys between mapped tables that no reference already covers.
fn dependencies(m: &Mapping, catalog: &Catalog) -> Vec<Dependency> {
    let index = |name: &str| m.tables.iter().position(|t| t.name == name);
    let mut deps = Vec::new();
    for (i, t) in m.tables.iter().enumerate() {
        let info = catalog.table(&t.name);
        for c in &t.columns {
            let Some(j) = c.reference.as_ref().and_then(|r| index(&r.table)) else {
                continue;
            };
            let not_null = info
                .and_then(|info| info.column(&c.name))
                .is_some_and(|ci| ci.not_null);
            let liftable = !t.is_junction() && !not_null;
            deps.push(Dependency {
                from: i,
                to: j,
                what: format!(
                    "{}.{}{}",
                    t.name,
                    c.name,
                    if not_null { " (NOT NULL)" } else { "" }
                ),
                defer: liftable.then(|| c.name.clone()),
                liftable,
                constraint: None,
            });
        }
        let Some(info) = info else { continue };
        for fk in &info.foreign_keys {
            let Some(j) = index(&fk.ref_table) else {
                continue;
            };
            let referenced = |col: &String| {
                t.columns.iter().any(|c| {
                    &c.name == col
                        && c.reference
                            .as_ref()
                            .is_some_and(|r| r.table == fk.ref_table)
                })
            };
            if !fk.columns.is_empty() && fk.columns.iter().all(referenced) {
                continue;
            }
            let written = |col: &String| {
                t.columns.iter().any(|c| &c.name == col)
                    || matches!(&t.identity, Identity::Legacy { column: Some(lc), .. } if lc == col)
                    || (matches!(
                        &t.identity,
                        Identity::Legacy { keep_id: true, .. }
                            | Identity::Legacy {
                                generate: Some(_),
                                ..
                            }
                    ) && info.primary_key.contains(col))
            };
            let written = fk.columns.iter().any(written);
            // A foreign key to its own table is checked at the end of each statement, so one
            // INSERT may hold rows that reference each other; but the merge updates rows
            // before it inserts new ones, so a DEFERRABLE one is checked at the end of the
            // load, and an updated row may point at a new one.
            if j == i && !(written && fk.deferrable) {
                continue;
            }
            deps.push(Dependency {
                from: i,
                to: j,
                what: format!(
                    "{}.{} (a foreign key filled without `references`{})",
                    t.name,
                    fk.columns.join(", "),
                    if fk.deferrable { ", DEFERRABLE" } else { "" }
                ),
                defer: None,
                liftable: !written || fk.deferrable,
                constraint: (written && fk.deferrable).then(|| fk.name.clone()),
            });
        }
    }
    deps
}

/// Why no load order exists.
enum Refused<'a> {
    /// A NOT NULL reference to its own table.
    SelfNotNull(&'a Dependency),
    /// A cycle (a closed path of table indexes) none of whose steps can be lifted.
    Cycle(Vec<usize>),
}

/// How a step of a cycle is lifted.
enum Lifted {
    /// This reference (table index, column) is written NULL and set once every table is.
    Reference(usize, String),
    /// This DEFERRABLE foreign key is checked at the end of the load.
    Constraint(String),
}

/// The load order (table indexes), and what is lifted to allow it: every reference to its
/// own table, and in each cycle the step out of the table earliest in the file that can be.
fn load_order(
    n: usize,
    deps: &[Dependency],
) -> Result<(Vec<usize>, Vec<Lifted>), Vec<Refused<'_>>> {
    let mut refused = Vec::new();
    let mut deferred = Vec::new();
    for d in deps.iter().filter(|d| d.from == d.to) {
        match (&d.defer, &d.constraint) {
            (Some(c), _) => deferred.push(Lifted::Reference(d.from, c.clone())),
            (None, Some(c)) => deferred.push(Lifted::Constraint(c.clone())),
            (None, None) => refused.push(Refused::SelfNotNull(d)),
        }
    }
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for d in deps.iter().filter(|d| d.from != d.to) {
        if !edges.contains(&(d.from, d.to)) {
            edges.push((d.from, d.to));
        }
    }
    let liftable = |e: &(usize, usize)| {
        deps.iter()
            .filter(|d| (d.from, d.to) == *e)
            .all(|d| d.liftable)
    };
    while let Some(cycle) = find_cycle(n, edges.iter().copied()) {
        let steps: Vec<(usize, usize)> = cycle.windows(2).map(|w| (w[0], w[1])).collect();
        let Some(lift) = steps.iter().filter(|e| liftable(e)).min().copied() else {
            refused.push(Refused::Cycle(cycle));
            break;
        };
        edges.retain(|e| *e != lift);
        for d in deps.iter().filter(|d| (d.from, d.to) == lift) {
            if let Some(c) = &d.defer {
                deferred.push(Lifted::Reference(d.from, c.clone()));
            }
            if let Some(c) = &d.constraint {
                deferred.push(Lifted::Constraint(c.clone()));
            }
        }
    }
    if !refused.is_empty() {
        return Err(refused);
    }
    let order = order(n, &edges).map_err(|c| vec![Refused::Cycle(c)])?;
    Ok((order, deferred))
}

/// A cycle that cannot be loaded, each step with the columns behind it, and what to do.
fn cycle_message(m: &Mapping, deps: &[Dependency], cycle: &[usize]) -> String {
    let steps: Vec<String> = cycle
        .windows(2)
        .map(|w| {
            let why: Vec<&str> = deps
                .iter()
                .filter(|d| (d.from, d.to) == (w[0], w[1]))
                .map(|d| d.what.as_str())
                .collect();
            format!(
                "{} -> {} ({})",
                m.tables[w[0]].name,
                m.tables[w[1]].name,
                why.join(", ")
            )
        })
        .collect();
    format!(
        "the references form a cycle no load order can satisfy: {}; every row would need the row it references written first. Make one of these columns nullable (cutover then writes it as NULL and sets it once the tables are loaded), map it with `references`, make a foreign key filled without `references` DEFERRABLE (cutover then checks it at the end of the load), or leave it out of the mapping",
        steps.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(from: usize, to: usize, what: &str, nullable: bool) -> Dependency {
        Dependency {
            from,
            to,
            what: what.into(),
            defer: nullable.then(|| what.rsplit('.').next().unwrap_or(what).to_string()),
            liftable: nullable,
            constraint: None,
        }
    }

    fn lifted(l: &[Lifted]) -> Vec<String> {
        l.iter()
            .map(|l| match l {
                Lifted::Reference(t, c) => format!("{t}.{c}"),
                Lifted::Constraint(c) => c.clone(),
            })
            .collect()
    }

    #[test]
    fn a_cycle_is_broken_at_its_nullable_step_whatever_the_file_order() {
        // 0 staff (store_id NOT NULL -> 1), 1 store (manager_staff_id nullable -> 0).
        let deps = [
            dep(0, 1, "staff.store_id", false),
            dep(1, 0, "store.manager_staff_id", true),
        ];
        let Ok((order, l)) = load_order(2, &deps) else {
            panic!("refused")
        };
        assert_eq!(order, vec![1, 0]);
        assert_eq!(lifted(&l), ["1.manager_staff_id"]);
        // Both nullable: the step out of the table first in the file is lifted.
        let deps = [dep(0, 1, "a.b_id", true), dep(1, 0, "b.a_id", true)];
        let Ok((order, l)) = load_order(2, &deps) else {
            panic!("refused")
        };
        assert_eq!(
            (order, lifted(&l)),
            (vec![0, 1], vec!["0.b_id".to_string()])
        );
    }

    #[test]
    fn self_references_are_lifted_and_every_cycle_of_a_graph_is_broken() {
        // 0 employee -> itself; 1 -> 2 -> 3 -> 1, only 3 -> 1 nullable; 2 also -> 0.
        let deps = [
            dep(0, 0, "employee.reports_to", true),
            dep(1, 2, "a.b_id", false),
            dep(2, 3, "b.c_id", false),
            dep(3, 1, "c.a_id", true),
            dep(2, 0, "b.employee_id", false),
        ];
        let Ok((order, l)) = load_order(4, &deps) else {
            panic!("refused")
        };
        assert_eq!(lifted(&l), ["0.reports_to", "3.a_id"]);
        // Every table after what it still depends on.
        let at = |t: usize| order.iter().position(|&x| x == t).unwrap();
        assert!(at(2) > at(0) && at(2) > at(3) && at(1) > at(2));
    }

    #[test]
    fn a_cycle_of_not_null_steps_and_a_not_null_self_reference_are_refused() {
        let deps = [dep(0, 1, "a.b_id", false), dep(1, 0, "b.a_id", false)];
        match load_order(2, &deps) {
            Err(r) => assert!(matches!(r.as_slice(), [Refused::Cycle(c)] if c.len() == 3)),
            Ok(_) => panic!("a cycle of NOT NULL references was accepted"),
        }
        let deps = [dep(0, 0, "t.parent_id", false)];
        assert!(matches!(
            load_order(1, &deps).err().as_deref(),
            Some([Refused::SelfNotNull(_)])
        ));
        // A DEFERRABLE foreign key filled as it is lifts its step by deferring.
        let deps = [
            dep(0, 1, "a.b_id", false),
            Dependency {
                constraint: Some("public.b_a_fkey".into()),
                liftable: true,
                ..dep(1, 0, "b.a_id", false)
            },
        ];
        let Ok((order, l)) = load_order(2, &deps) else {
            panic!("refused")
        };
        assert_eq!(
            (order, lifted(&l)),
            (vec![1, 0], vec!["public.b_a_fkey".to_string()])
        );
    }
}
