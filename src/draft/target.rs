//! Drafting against the target: the source's tables and fields paired with the target's
//! tables and columns by name (see `names`), references taken from the target's foreign
//! keys, junctions from its keys, the id strategy from its primary key's type, the legacy
//! column from a column meant for it, and a proposal for every NOT NULL column nothing
//! fills. Whatever cannot be paired is left for a person, with the closest candidates.

use super::model::{Draft, DraftColumn, DraftTable, Identity};
use super::names::{self, closest, score, shared_prefixes, table_prefixes};
use crate::pg::PgType;
use crate::pg::catalog::{Catalog, ColumnInfo, TableInfo};
use crate::source::{FieldShape, TableShape};
use std::collections::HashSet;

/// Columns that keep a legacy id, most specific first.
const LEGACY_COLUMNS: [&str; 10] = [
    "legacy_id",
    "source_id",
    "old_id",
    "external_id",
    "import_id",
    "original_id",
    "sqlite_id",
    "legacy_key",
    "migrated_id",
    "airtable_id",
];
const AIRTABLE_LEGACY_COLUMNS: [&str; 4] = [
    "airtable_id",
    "airtable_record_id",
    "record_id",
    "airtable_key",
];

/// Target columns an Airtable record's creation time fills.
const CREATED_COLUMNS: [&str; 6] = [
    "created_at",
    "created_time",
    "created_on",
    "created",
    "date_created",
    "inserted_at",
];

/// The single-column foreign keys of a table: (column, referenced table).
fn fks(t: &TableInfo) -> Vec<(&str, &str)> {
    t.foreign_keys
        .iter()
        .filter_map(|fk| match fk.columns.as_slice() {
            [c] => Some((c.as_str(), fk.ref_table.as_str())),
            _ => None,
        })
        .collect()
}

/// A junction's reference columns, when the table is one: its primary key is made of two or
/// more foreign key columns (extra columns of its own allowed), or it has no primary key and
/// two or more NOT NULL foreign keys.
fn junction_keys(t: &TableInfo) -> Option<Vec<(&str, &str)>> {
    let fks = fks(t);
    let refs = |c: &str| fks.iter().find(|(f, _)| *f == c).copied();
    if t.primary_key.len() >= 2 {
        let keys: Option<Vec<(&str, &str)>> = t.primary_key.iter().map(|c| refs(c)).collect();
        return keys.filter(|k| k.len() >= 2);
    }
    if t.primary_key.is_empty() {
        let keys: Vec<(&str, &str)> = fks
            .iter()
            .filter(|(c, _)| t.column(c).is_some_and(|c| c.not_null))
            .copied()
            .collect();
        return (keys.len() >= 2).then_some(keys);
    }
    None
}

fn is_int(t: &PgType) -> bool {
    matches!(t, PgType::Int2 | PgType::Int4 | PgType::Int8)
}

/// Filled without the mapping: a default, an identity, a generated column.
fn fills_itself(c: &ColumnInfo) -> bool {
    c.has_default || c.identity != '\0' || c.generated
}

/// A constant a NOT NULL column could take when the source has nothing for it.
fn placeholder(c: &ColumnInfo) -> Option<toml::Value> {
    use toml::Value as V;
    Some(match &c.ty {
        PgType::Bool => V::Boolean(false),
        PgType::Int2 | PgType::Int4 | PgType::Int8 => V::Integer(0),
        PgType::Float4 | PgType::Float8 | PgType::Numeric { .. } => V::Integer(0),
        PgType::Text { .. } => V::String(String::new()),
        PgType::Enum { labels } => V::String(labels.first()?.clone()),
        PgType::Date => V::String("1970-01-01".into()),
        PgType::Timestamp | PgType::Timestamptz => V::String("1970-01-01 00:00:00".into()),
        PgType::Json | PgType::Jsonb => V::String("{}".into()),
        PgType::Array { .. } => V::String("[]".into()),
        _ => return None,
    })
}

/// What a source field is, for the comment beside the column it feeds.
fn describe_field(f: &FieldShape) -> String {
    // The field's id is not repeated here: the draft names the field by it.
    let mut s = if f.kind.is_empty() && f.id.is_none() && f.link.is_none() {
        "no declared type".to_string()
    } else {
        f.kind.clone()
    };
    if let Some(l) = &f.link {
        s.push_str(&format!(
            "{}link to {}{}",
            if s.is_empty() { "" } else { ", " },
            l.table,
            if l.many { " (many)" } else { "" }
        ));
    }
    s
}

/// Airtable fields that never feed a column: lookups are arrays of other tables' values,
/// buttons hold no data.
fn never_paired(f: &FieldShape) -> bool {
    matches!(
        f.kind.as_str(),
        "multipleLookupValues" | "lookup" | "button"
    )
}

struct Ctx<'a> {
    shapes: &'a [TableShape],
    targets: Vec<&'a TableInfo>,
    /// (source table index, target table index) of every table paired.
    pairs: Vec<(usize, usize)>,
    /// Link fields already drafted, as (source table, field), with where.
    used: Vec<((String, String), String)>,
}

impl<'a> Ctx<'a> {
    fn target_of(&self, source_table: &str) -> Option<&'a TableInfo> {
        let si = self
            .shapes
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(source_table))?;
        self.pairs
            .iter()
            .find(|(s, _)| *s == si)
            .map(|(_, t)| self.targets[*t])
    }
    fn is_used(&self, table: &str, field: &str) -> bool {
        self.used.iter().any(|((t, f), _)| t == table && f == field)
    }
    /// `field` of `table` is drafted (`at` says where), and so is the other side of its
    /// relation.
    fn mark(&mut self, table: &str, field: &FieldShape, at: String) {
        self.used
            .push(((table.to_string(), field.name.clone()), at.clone()));
        if let Some(l) = &field.link
            && let Some(inv) = &l.inverse
        {
            self.used.push(((l.table.clone(), inv.clone()), at));
        }
    }
}

/// Draft a mapping of `shapes` onto the target `cat`.
pub(crate) fn draft(shapes: &[TableShape], cat: &Catalog, airtable: bool) -> Draft {
    let targets: Vec<&TableInfo> = cat
        .names()
        .filter(|n| *n != "alembic_version")
        .filter_map(|n| cat.table(n))
        .collect();
    let mut cx = Ctx {
        shapes,
        targets,
        pairs: Vec::new(),
        used: Vec::new(),
    };
    pair_tables(&mut cx);
    // The draft lists tables in the source's order.
    cx.pairs.sort();

    let mut tables: Vec<DraftTable> = Vec::new();
    let mut todos: Vec<String> = Vec::new();
    // Entities first, so junctions know which tables they can reference.
    let entity_pairs: Vec<(usize, usize)> = cx
        .pairs
        .iter()
        .copied()
        .filter(|&(_, t)| junction_keys(cx.targets[t]).is_none())
        .collect();
    let drafted: HashSet<String> = entity_pairs
        .iter()
        .map(|&(_, t)| cx.targets[t].name.clone())
        .collect();
    for &(si, ti) in &entity_pairs {
        tables.push(entity(&mut cx, si, ti, &drafted, airtable, &mut todos));
    }
    // Entities whose rows cannot be identified are written as comments: nothing can
    // reference them.
    let live: HashSet<String> = tables
        .iter()
        .filter(|t| t.disabled.is_none())
        .map(|t| t.name.clone())
        .collect();
    for t in &mut tables {
        for c in &mut t.columns {
            if let Some(r) = &c.references
                && !live.contains(r)
                && c.todo.is_none()
            {
                c.todo = Some(format!(
                    "references `{r}`, which this draft could not map (see its TODO)"
                ));
            }
        }
    }
    let junction_pairs: Vec<(usize, usize)> = cx
        .pairs
        .iter()
        .copied()
        .filter(|&(_, t)| junction_keys(cx.targets[t]).is_some())
        .collect();
    for &(si, ti) in &junction_pairs {
        tables.push(junction_table(&mut cx, si, ti, &live, &mut todos));
    }
    // Junctions no source table pairs with by name: fed from a link field (Airtable).
    let paired_targets: HashSet<usize> = cx.pairs.iter().map(|&(_, t)| t).collect();
    for ti in 0..cx.targets.len() {
        if paired_targets.contains(&ti) {
            continue;
        }
        if let Some(t) = link_junction(&mut cx, ti, &live) {
            tables.push(t);
        }
    }
    let drafted_targets: HashSet<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    // What is left: links nobody drafted, fields and tables without a partner.
    for (si, s) in shapes.iter().enumerate() {
        let paired =
            cx.pairs.iter().any(|&(p, _)| p == si) || tables.iter().any(|t| t.from == s.name);
        if !paired {
            let cands = closest(
                &s.name,
                cx.targets
                    .iter()
                    .map(|t| t.name.as_str())
                    .filter(|n| !drafted_targets.contains(n)),
            );
            todos.push(format!(
                "source table `{}` ({} fields): no target table pairs with it{}",
                s.name,
                s.fields.len(),
                candidates(&cands)
            ));
        }
    }
    for t in &cx.targets {
        if !drafted_targets.contains(t.name.as_str()) {
            let cands = closest(
                &t.name,
                shapes
                    .iter()
                    .map(|s| s.name.as_str())
                    .filter(|n| !tables.iter().any(|d| d.from == *n)),
            );
            todos.push(format!(
                "target table `{}`: no source table pairs with it{}",
                t.name,
                candidates(&cands)
            ));
        }
    }
    // Links of a drafted entity that fed nothing here: drafted elsewhere (a note), or a TODO.
    for t in tables.iter_mut().filter(|t| !t.is_junction()) {
        let Some(s) = shapes.iter().find(|s| s.name == t.from) else {
            continue;
        };
        for f in s.fields.iter().filter(|f| f.link.is_some()) {
            if t.columns
                .iter()
                .any(|c| c.field.as_deref() == Some(f.name.as_str()))
            {
                continue;
            }
            match cx.used.iter().find(|((tt, ff), _)| *tt == s.name && *ff == f.name) {
                Some((_, at)) => t.notes.push(format!("`{}`: {at}", f.name)),
                None => todos.push(format!(
                    "source link `{}`.`{}` ({}): no foreign key of `{}` and no junction pairs with it",
                    s.name,
                    f.name,
                    describe_field(f),
                    t.name
                )),
            }
        }
    }
    let notes = vec![
        "Paired with the target's tables and columns by name (case, underscores, plurals, an"
            .into(),
        "`Id`/`_id` ending and shared prefixes aside); references come from its foreign keys,"
            .into(),
        "junctions from its keys, ids from its primary keys. Every guess says why beside it;"
            .into(),
        "check it: `cutover check -m THIS --target URL`. What could not be paired is a TODO."
            .into(),
    ];
    Draft {
        revision: None,
        notes,
        tables,
        todos,
    }
}

fn candidates(c: &[&str]) -> String {
    if c.is_empty() {
        String::new()
    } else {
        format!(
            "; closest: {}",
            c.iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Pair tables by name, then source tables made of links with target junctions whose
/// references are the tables those links point at.
fn pair_tables(cx: &mut Ctx) {
    let sp = shared_prefixes(cx.shapes.iter().map(|s| s.name.as_str()));
    let tp = shared_prefixes(cx.targets.iter().map(|t| t.name.as_str()));
    let mut scored: Vec<(u8, usize, usize)> = Vec::new();
    for (si, s) in cx.shapes.iter().enumerate() {
        for (ti, t) in cx.targets.iter().enumerate() {
            let sc = score(&s.name, &sp, &t.name, &tp);
            if sc > 0 {
                scored.push((sc, si, ti));
            }
        }
    }
    scored.sort_by_key(|&(sc, si, ti)| (std::cmp::Reverse(sc), si, ti));
    for (_, si, ti) in scored {
        if cx.pairs.iter().all(|&(s, t)| s != si && t != ti) {
            cx.pairs.push((si, ti));
        }
    }
    // A link table under another name: the same two referenced tables.
    for (si, s) in cx.shapes.iter().enumerate() {
        if cx.pairs.iter().any(|&(p, _)| p == si) || s.id_field.is_some() {
            continue;
        }
        let mut linked: Vec<String> = s
            .fields
            .iter()
            .filter_map(|f| f.link.as_ref())
            .filter_map(|l| cx.target_of(&l.table).map(|t| t.name.clone()))
            .collect();
        linked.sort();
        if linked.len() < 2 {
            continue;
        }
        for (ti, t) in cx.targets.iter().enumerate() {
            if cx.pairs.iter().any(|&(_, p)| p == ti) {
                continue;
            }
            if let Some(keys) = junction_keys(t) {
                let mut refs: Vec<String> = keys.iter().map(|(_, r)| r.to_string()).collect();
                refs.sort();
                if refs == linked {
                    cx.pairs.push((si, ti));
                    break;
                }
            }
        }
    }
}

/// One pairing of a target column with a source field.
struct Pairing {
    column: usize,
    field: usize,
    score: u8,
    /// Paired only because the field's name begins the column's (`starts`, `starts_at`).
    guess: bool,
    by_key: bool,
}

/// Pair `columns` of `t` with the unused fields of `s`, best first.
fn pair_columns(
    cx: &Ctx,
    s: &TableShape,
    t: &TableInfo,
    columns: &[usize],
    skip_field: &dyn Fn(&FieldShape) -> bool,
) -> Vec<Pairing> {
    let sp = table_prefixes(&s.name);
    let tp = table_prefixes(&t.name);
    let t_fks = fks(t);
    let mut all: Vec<Pairing> = Vec::new();
    for &ci in columns {
        let c = &t.columns[ci];
        let fk = t_fks
            .iter()
            .find(|(col, _)| *col == c.name)
            .map(|(_, r)| *r);
        for (fi, f) in s.fields.iter().enumerate() {
            if skip_field(f) || never_paired(f) || cx.is_used(&s.name, &f.name) {
                continue;
            }
            let link_to = f
                .link
                .as_ref()
                .and_then(|l| cx.target_of(&l.table))
                .map(|t| t.name.as_str());
            // A link to one table never feeds a foreign key to another.
            if let (Some(fk), Some(l)) = (fk, link_to)
                && fk != l
            {
                continue;
            }
            // A many-link feeds a junction, unless it is the one link to this foreign key's
            // table (Airtable links are arrays even when they hold one record).
            if f.link.as_ref().is_some_and(|l| l.many) && fk.is_none() {
                continue;
            }
            // Name scores count double, so a weaker guess fits below them.
            let mut sc = score(&f.name, &sp, &c.name, &tp) * 2;
            if f.name == "@createdTime" && CREATED_COLUMNS.contains(&c.name.as_str()) {
                sc = sc.max(2);
            }
            let guess = sc == 0 && names::begins(&f.name, &c.name);
            if guess {
                sc = 1;
            }
            let by_key = fk.is_some() && link_to == fk;
            if sc == 0 && !by_key {
                continue;
            }
            all.push(Pairing {
                column: ci,
                field: fi,
                score: sc + if by_key { 6 } else { 0 },
                guess,
                by_key: by_key && sc == 0,
            });
        }
    }
    all.sort_by_key(|p| (std::cmp::Reverse(p.score), p.column, p.field));
    let mut out: Vec<Pairing> = Vec::new();
    for p in all {
        if out
            .iter()
            .all(|o| o.column != p.column && o.field != p.field)
        {
            out.push(p);
        }
    }
    // A foreign key paired by its key alone needs the link to be the only candidate.
    out.retain(|p| {
        !p.by_key || {
            let f = &s.fields[p.field];
            let to = f.link.as_ref().map(|l| l.table.as_str());
            s.fields
                .iter()
                .filter(|g| g.link.as_ref().map(|l| l.table.as_str()) == to)
                .filter(|g| !cx.is_used(&s.name, &g.name))
                .count()
                == 1
        }
    });
    out.sort_by_key(|p| p.column);
    out
}

fn entity(
    cx: &mut Ctx,
    si: usize,
    ti: usize,
    drafted: &HashSet<String>,
    airtable: bool,
    todos: &mut Vec<String>,
) -> DraftTable {
    let shapes = cx.shapes;
    let s = &shapes[si];
    let t = cx.targets[ti];
    let pk: Option<&ColumnInfo> = match t.primary_key.as_slice() {
        [pk] => t.column(pk),
        _ => None,
    };
    let t_fks = fks(t);
    let is_fk = |c: &str| t_fks.iter().any(|(f, _)| *f == c);
    let legacy_names: Vec<&str> = if airtable {
        AIRTABLE_LEGACY_COLUMNS
            .iter()
            .chain(LEGACY_COLUMNS.iter())
            .copied()
            .collect()
    } else {
        LEGACY_COLUMNS.to_vec()
    };
    let legacy_col: Option<&ColumnInfo> = legacy_names.iter().find_map(|n| {
        t.columns.iter().find(|c| {
            names::snake(&c.name) == *n
                && Some(c.name.as_str()) != pk.map(|p| p.name.as_str())
                && !is_fk(&c.name)
                && !c.generated
                && (matches!(c.ty, PgType::Text { .. }) || (is_int(&c.ty) && s.integer_id))
        })
    });
    let mut notes: Vec<String> = Vec::new();
    let same = score(&s.name, &[], &t.name, &[]) >= 2;
    if !same {
        notes.push(format!("`{}` paired with `{}` by name", s.name, t.name));
    }
    let mut disabled = None;
    let mut keep_id = false;
    let mut generate_id = None;
    let legacy_id = s.id_field.clone().unwrap_or_else(|| "id".to_string());
    match (&s.id_field, pk) {
        (None, _) => {
            disabled = Some(format!(
                "source table `{}` has no single primary key to identify its rows by, and `{}` is no junction: say which field identifies a record (legacy_id)",
                s.name, t.name
            ));
        }
        (Some(id), Some(pk)) if s.integer_id && is_int(&pk.ty) => {
            keep_id = true;
            let seq = match pk.identity {
                'a' => {
                    ", an identity column (GENERATED ALWAYS: written with OVERRIDING SYSTEM VALUE)"
                }
                'd' => ", an identity column",
                _ if pk.has_default => ", which has a default (a sequence)",
                _ => "",
            };
            notes.push(format!(
                "ids kept: the source's integer `{id}` becomes `{}.{}`{seq}; the sequence is reset past the largest id",
                t.name, pk.name
            ));
        }
        (Some(_), Some(pk)) if pk.ty == PgType::Uuid && !pk.has_default => {
            generate_id = Some("uuid5".to_string());
            notes.push(format!(
                "`{}.{}` is a uuid the application generates: cutover derives it from the legacy id (uuid5, the same on every run; uuid4 for random ones)",
                t.name, pk.name
            ));
        }
        (Some(id), Some(pk)) if fills_itself(pk) => {
            notes.push(format!(
                "`{}.{}` comes from the target ({}); the source's `{id}` is kept as the legacy id",
                t.name,
                pk.name,
                if pk.identity != '\0' {
                    "identity"
                } else {
                    "its default"
                }
            ));
        }
        (Some(id), _) => {
            notes.push(format!(
                "the source's `{id}` is the legacy id{}",
                if s.integer_id {
                    ""
                } else {
                    " (not an integer: it cannot become the primary key)"
                }
            ));
        }
    }
    let legacy_column = legacy_col.map(|c| c.name.clone());
    if let Some(lc) = &legacy_column {
        notes.push(format!(
            "`{}.{lc}` keeps the legacy id: rows are matched on it, and rows the application creates (legacy id NULL) are left alone",
            t.name
        ));
    } else if !keep_id && disabled.is_none() {
        disabled = Some(format!(
            "`{}` has no column to keep the legacy id in (one of {}), and its primary key cannot take the source's id: add such a column, or say which one keeps it (legacy_column)",
            t.name,
            legacy_names[..3].join(", ")
        ));
    }
    let mut dt = DraftTable::new(
        &t.name,
        &s.name,
        Identity::Entity {
            legacy_id: legacy_id.clone(),
            legacy_column: legacy_column.clone(),
            keep_id,
            generate_id,
        },
    );
    dt.from_id = s.id.clone();
    dt.notes = notes;
    dt.disabled = disabled;

    // Columns the identity does not fill.
    let filled_by_id = |c: &ColumnInfo| {
        Some(&c.name) == legacy_column.as_ref()
            || (pk.is_some_and(|p| p.name == c.name)
                && (keep_id || dt_generates(&dt) || fills_itself(c)))
    };
    let columns: Vec<usize> = t
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !filled_by_id(c) && !c.generated && c.identity == '\0')
        .map(|(i, _)| i)
        .collect();
    // The id field may feed a column of its own too (a text key kept as `code` as well).
    let pairs = pair_columns(cx, s, t, &columns, &|_| false);
    let mut filled: HashSet<usize> = HashSet::new();
    let mut fed: HashSet<usize> = HashSet::new();
    for p in &pairs {
        let c = &t.columns[p.column];
        let f = &s.fields[p.field];
        let mut why = describe_field(f);
        let mut col = DraftColumn::field(&c.name, &f.name, String::new());
        if let Some((_, r)) = t_fks.iter().find(|(col, _)| *col == c.name) {
            col.references = Some(r.to_string());
            if !drafted.contains(*r) {
                col.todo = Some(format!(
                    "a foreign key to `{r}`, which this draft does not map"
                ));
            } else if p.by_key {
                why.push_str(&format!("; paired by its foreign key to {r}"));
            }
            if f.link.as_ref().is_some_and(|l| l.many) {
                why.push_str("; an array: more than one record is a reject (many = \"first\" takes the first)");
            }
        }
        if f.computed {
            why.push_str("; the value as the source computed it");
        }
        if p.guess {
            why.push_str(&format!("; a guess: `{}` begins `{}`", f.name, c.name));
        }
        col.comment = why;
        filled.insert(p.column);
        fed.insert(p.field);
        dt.columns.push(col);
    }
    // A link drafted here is one side of its relation: the other side is left out.
    for p in &pairs {
        let f = &s.fields[p.field];
        if f.link.is_some() {
            let at = format!(
                "the other side of `{}`.`{}`, drafted as {}.{}",
                s.name, f.name, dt.name, t.columns[p.column].name
            );
            cx.mark(&s.name, f, at);
        }
    }
    // NOT NULL columns nothing fills: a proposal each.
    let field_names: Vec<&str> = s
        .fields
        .iter()
        .enumerate()
        .filter(|(i, f)| !fed.contains(i) && Some(&f.name) != s.id_field.as_ref())
        .map(|(_, f)| f.name.as_str())
        .collect();
    for &ci in &columns {
        if filled.contains(&ci) {
            continue;
        }
        let c = &t.columns[ci];
        let cands = closest(&c.name, field_names.iter().copied());
        if c.not_null && !fills_itself(c) {
            let fk = t_fks
                .iter()
                .find(|(col, _)| *col == c.name)
                .map(|(_, r)| *r);
            let mut col = DraftColumn::field(
                &c.name,
                cands.first().copied().unwrap_or("?"),
                String::new(),
            );
            let todo = match fk {
                Some(r) => {
                    col.references = Some(r.to_string());
                    format!(
                        "`{}` is NOT NULL, a foreign key to `{r}`, and no source field pairs with it: name the field that holds `{r}`'s legacy id{}",
                        c.name,
                        candidates(&cands)
                    )
                }
                None => {
                    if let Some(v) = placeholder(c) {
                        col.field = None;
                        col.value = Some(v);
                    }
                    format!(
                        "`{}` ({}) is NOT NULL with no default and no source field pairs with it: map a field, or keep a constant{}",
                        c.name,
                        c.sql_type,
                        candidates(&cands)
                    )
                }
            };
            col.todo = Some(todo);
            dt.columns.push(col);
        } else {
            todos.push(format!(
                "`{}.{}` ({}): no source field pairs with it; a new row gets {}{}",
                t.name,
                c.name,
                c.sql_type,
                if c.has_default { "its default" } else { "NULL" },
                candidates(&cands)
            ));
        }
    }
    // Source fields nothing reads.
    let mut computed: Vec<String> = Vec::new();
    let open_cols: Vec<&str> = columns
        .iter()
        .filter(|i| !filled.contains(i))
        .map(|&i| t.columns[i].name.as_str())
        .collect();
    for (fi, f) in s.fields.iter().enumerate() {
        // Links are settled once every junction is drafted.
        if fed.contains(&fi) || Some(&f.name) == s.id_field.as_ref() || f.link.is_some() {
            continue;
        }
        if f.name.starts_with('@') {
            continue;
        }
        if f.computed || never_paired(f) {
            computed.push(match &f.id {
                Some(id) => format!("`{}` ({}, {id})", f.name, describe_field(f)),
                None => format!("`{}` ({})", f.name, describe_field(f)),
            });
            continue;
        }
        todos.push(format!(
            "source field `{}`.`{}` ({}): no column of `{}` pairs with it{}",
            s.name,
            f.name,
            describe_field(f),
            t.name,
            candidates(&closest(&f.name, open_cols.iter().copied()))
        ));
    }
    if !computed.is_empty() {
        dt.notes.push(format!(
            "left out, computed by the source: {}",
            computed.join(", ")
        ));
    }
    dt
}

fn dt_generates(t: &DraftTable) -> bool {
    matches!(
        t.identity,
        Identity::Entity {
            generate_id: Some(_),
            ..
        }
    )
}

/// A source table of links paired with a target junction.
fn junction_table(
    cx: &mut Ctx,
    si: usize,
    ti: usize,
    live: &HashSet<String>,
    todos: &mut Vec<String>,
) -> DraftTable {
    let shapes = cx.shapes;
    let s = &shapes[si];
    let t = cx.targets[ti];
    let keys = junction_keys(t).unwrap_or_default();
    let columns: Vec<usize> = t
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.generated && c.identity == '\0')
        .map(|(i, _)| i)
        .collect();
    let pairs = pair_columns(cx, s, t, &columns, &|_| false);
    let owner = keys.first().map(|(c, _)| c.to_string());
    let mut dt = DraftTable::new(&t.name, &s.name, Identity::Junction { owner });
    dt.from_id = s.id.clone();
    let extra = t.columns.len() - keys.len();
    dt.notes.push(format!(
        "a junction: `{}`'s key is its references ({}){}; the source lists all links of each `{}`",
        t.name,
        keys.iter()
            .map(|(c, r)| format!("{c} -> {r}"))
            .collect::<Vec<_>>()
            .join(", "),
        if extra > 0 {
            format!(", plus {extra} column(s) of its own")
        } else {
            String::new()
        },
        keys.first().map(|(_, r)| *r).unwrap_or("?")
    ));
    let t_fks = fks(t);
    let mut filled = HashSet::new();
    for (fi, f) in s.fields.iter().enumerate() {
        if !pairs.iter().any(|p| p.field == fi) {
            todos.push(format!(
                "source field `{}`.`{}` ({}): no column of the junction `{}` pairs with it",
                s.name,
                f.name,
                describe_field(f),
                t.name
            ));
        }
    }
    for p in &pairs {
        let c = &t.columns[p.column];
        let f = &s.fields[p.field];
        let mut col = DraftColumn::field(&c.name, &f.name, describe_field(f));
        if let Some((_, r)) = t_fks.iter().find(|(col, _)| *col == c.name) {
            col.references = Some(r.to_string());
            if !live.contains(*r) {
                col.todo = Some(format!(
                    "a foreign key to `{r}`, which this draft does not map"
                ));
            }
        }
        filled.insert(p.column);
        dt.columns.push(col);
    }
    for &ci in &columns {
        let c = &t.columns[ci];
        if filled.contains(&ci) {
            continue;
        }
        if c.not_null && !fills_itself(c) {
            let names: Vec<&str> = s.fields.iter().map(|f| f.name.as_str()).collect();
            let cands = closest(&c.name, names.iter().copied());
            let mut col = DraftColumn::field(
                &c.name,
                cands.first().copied().unwrap_or("?"),
                String::new(),
            );
            if let Some((_, r)) = t_fks.iter().find(|(col, _)| *col == c.name) {
                col.references = Some(r.to_string());
            } else if let Some(v) = placeholder(c) {
                col.field = None;
                col.value = Some(v);
            }
            col.todo = Some(format!(
                "`{}` ({}) is NOT NULL with no default and no source field pairs with it{}",
                c.name,
                c.sql_type,
                candidates(&cands)
            ));
            dt.columns.push(col);
        } else {
            todos.push(format!(
                "`{}.{}` ({}): no source field pairs with it; a new row gets {}",
                t.name,
                c.name,
                c.sql_type,
                if c.has_default { "its default" } else { "NULL" }
            ));
        }
    }
    dt
}

/// A target junction fed from a many-link field of one of the tables it references
/// (Airtable keeps a many-to-many relation as a link field on both sides; one is drafted).
fn link_junction(cx: &mut Ctx, ti: usize, live: &HashSet<String>) -> Option<DraftTable> {
    let t = cx.targets[ti];
    let keys = junction_keys(t)?;
    let [(c1, r1), (c2, r2), ..] = keys.as_slice() else {
        return None;
    };
    // Either side may hold the link: the first key's table first.
    for ((own_col, own), (other_col, other)) in [((c1, r1), (c2, r2)), ((c2, r2), (c1, r1))] {
        if !live.contains(*own) || !live.contains(*other) {
            continue;
        }
        let Some(si) = cx
            .pairs
            .iter()
            .find(|&&(_, p)| cx.targets[p].name == **own)
            .map(|&(s, _)| s)
        else {
            continue;
        };
        let shapes = cx.shapes;
        let s = &shapes[si];
        let Some(id) = s.id_field.clone() else {
            continue;
        };
        let tp = table_prefixes(&t.name);
        let mut links: Vec<&FieldShape> = s
            .fields
            .iter()
            .filter(|f| {
                f.link.as_ref().is_some_and(|l| {
                    l.many && cx.target_of(&l.table).is_some_and(|x| x.name == **other)
                }) && !cx.is_used(&s.name, &f.name)
            })
            .collect();
        // Several links to the same table: the one named most like the junction or its column.
        links.sort_by_key(|f| {
            std::cmp::Reverse(score(&f.name, &[], &t.name, &tp).max(score(
                &f.name,
                &[],
                other_col,
                &[],
            )))
        });
        let Some(f) = links.first().copied().cloned() else {
            continue;
        };
        let mut dt = DraftTable::new(
            &t.name,
            &s.name,
            Identity::Junction {
                owner: Some(own_col.to_string()),
            },
        );
        dt.from_id = s.id.clone();
        dt.notes.push(format!(
            "a junction fed from the link `{}`.`{}` (one row per linked record); its other side{} is left out, so no pair is loaded twice",
            s.name,
            f.name,
            f.link
                .as_ref()
                .and_then(|l| l.inverse.as_ref())
                .map(|i| format!(" (`{}`.`{i}`)", f.link.as_ref().map(|l| l.table.as_str()).unwrap_or("")))
                .unwrap_or_default()
        ));
        dt.columns.push(DraftColumn {
            references: Some(own.to_string()),
            ..DraftColumn::field(own_col, &id, "the record's own id".into())
        });
        dt.columns.push(DraftColumn {
            references: Some(other.to_string()),
            explode: true,
            ..DraftColumn::field(other_col, &f.name, describe_field(&f))
        });
        for c in &t.columns {
            if c.name == **own_col || c.name == **other_col || !c.not_null || fills_itself(c) {
                continue;
            }
            let mut col = DraftColumn::field(&c.name, "?", String::new());
            if let Some(v) = placeholder(c) {
                col.field = None;
                col.value = Some(v);
            }
            col.todo = Some(format!(
                "`{}` ({}) is NOT NULL with no default; a link field carries nothing but the linked records",
                c.name, c.sql_type
            ));
            dt.columns.push(col);
        }
        let sname = s.name.clone();
        cx.mark(&sname, &f, format!("feeds the junction {}", t.name));
        return Some(dt);
    }
    None
}
