//! The load plan as `check` shows it: what a load will do before it does it. Per table in
//! load order: where it reads from, how rows are matched, its references and the source's
//! row count; the source fields and target columns the mapping leaves out (as warnings);
//! and what the load touches besides rows — the sequences it resets, the keys, indexes and
//! foreign keys it sets aside and rebuilds when a table is empty, the triggers its writes
//! fire. As text for people, and as JSON for tools (`check --format json`, `--report`).

use crate::pg::catalog::{Catalog, Touched, TriggerInfo};
use crate::plan::{Plan, TableKind};
use crate::report::summary::{WIDTH, items};
use crate::report::text::{thousands, wrap};
use crate::source::SourceTable;
use serde::Serialize;

/// The plan, described.
#[derive(Debug, Serialize)]
pub(crate) struct PlanView {
    tables: Vec<TableView>,
    #[serde(flatten)]
    touched: Touched,
    /// Source fields and target columns the mapping leaves out, a sentence each.
    warnings: Vec<String>,
    /// DEFERRABLE foreign keys checked once every table is written: they close a cycle.
    deferred_constraints: Vec<String>,
}

#[derive(Debug, Serialize)]
struct TableView {
    table: String,
    source: String,
    /// `entity` (matched on `match_column`) or `junction`.
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    match_column: Option<String>,
    /// Source rows, once the check has read them.
    rows: Option<u64>,
    references: Vec<Reference>,
    unmapped_source_fields: Vec<String>,
    unmapped_target_columns: Vec<Unmapped>,
}

#[derive(Debug, Serialize)]
struct Reference {
    column: String,
    table: String,
    /// `error`, `null` or `skip`: what becomes of a row whose reference does not resolve.
    on_missing: String,
    /// Written NULL and set once every table is written: it points at its own table or
    /// closes a cycle of references.
    deferred: bool,
}

#[derive(Debug, Serialize)]
struct Unmapped {
    column: String,
    /// What the column gets: `default` or `null`.
    gets: &'static str,
}

impl PlanView {
    /// The plan, with the row counts read so far (per table in plan order, if read).
    pub(crate) fn new(
        plan: &Plan,
        cat: &Catalog,
        source: &[SourceTable],
        mut touched: Touched,
        rows: Option<&[u64]>,
    ) -> PlanView {
        for tr in &mut touched.triggers {
            tr.during_load = during_load(plan, tr);
        }
        let mut warnings = Vec::new();
        let mut warned_sources: Vec<&str> = Vec::new();
        let mut tables = Vec::new();
        for (i, t) in plan.tables.iter().enumerate() {
            // A source field is unmapped when no table of the plan reads it.
            let unmapped_source_fields: Vec<String> = source
                .iter()
                .find(|s| s.name == t.from)
                .map(|s| {
                    // A plan reads a field by its name or by its id.
                    let read_by_any = |i: usize| {
                        plan.tables
                            .iter()
                            .filter(|p| p.from == t.from)
                            .any(|p| p.fields.iter().any(|f| s.field(f) == Some(i)))
                    };
                    s.fields
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !read_by_any(*i))
                        .map(|(_, f)| f.clone())
                        .collect()
                })
                .unwrap_or_default();
            if !unmapped_source_fields.is_empty() && !warned_sources.contains(&t.from.as_str()) {
                warned_sources.push(&t.from);
                warnings.push(format!(
                    "source table `{}`: {} not mapped: {}",
                    t.from,
                    if unmapped_source_fields.len() == 1 {
                        "1 field is"
                    } else {
                        "these fields are"
                    },
                    unmapped_source_fields.join(", ")
                ));
            }
            let sequenced = |c: &str| {
                touched
                    .sequences
                    .iter()
                    .any(|s| s.table == t.name && s.column == c)
            };
            let unmapped_target_columns: Vec<Unmapped> = cat
                .table(&t.name)
                .map(|info| {
                    info.columns
                        .iter()
                        .filter(|c| !c.generated && !sequenced(&c.name))
                        .filter(|c| !t.set_by_triggers.contains(&c.name))
                        .filter(|c| !t.stage.iter().any(|s| s.target == c.name))
                        .map(|c| Unmapped {
                            column: c.name.clone(),
                            gets: if c.has_default { "default" } else { "null" },
                        })
                        .collect()
                })
                .unwrap_or_default();
            for u in &unmapped_target_columns {
                warnings.push(format!(
                    "target column `{}.{}` is not mapped: a new row gets {}",
                    t.name,
                    u.column,
                    if u.gets == "default" {
                        "its default"
                    } else {
                        "NULL"
                    }
                ));
            }
            let (kind, match_column) = match &t.kind {
                TableKind::Entity { match_column } => ("entity", Some(match_column.clone())),
                TableKind::Junction { .. } => ("junction", None),
            };
            tables.push(TableView {
                table: t.name.clone(),
                source: t.from.clone(),
                kind,
                match_column,
                rows: rows.and_then(|r| r.get(i)).copied(),
                references: t
                    .stage
                    .iter()
                    .filter_map(|c| {
                        let r = c.reference.as_ref()?;
                        Some(Reference {
                            column: c.target.clone(),
                            table: r.table.clone(),
                            on_missing: format!("{:?}", r.on_missing).to_lowercase(),
                            deferred: r.deferred,
                        })
                    })
                    .collect(),
                unmapped_source_fields,
                unmapped_target_columns,
            });
        }
        for rs in touched.row_security.iter().filter(|rs| rs.applies) {
            warnings.push(format!(
                "row level security on `{}` binds the load's role `{}`: rows its policies hide are not matched (a re-run inserts them again, a duplicate key) and the counts disagree; load as the table's owner or a role with BYPASSRLS",
                rs.table, rs.role
            ));
        }
        PlanView {
            tables,
            touched,
            warnings,
            deferred_constraints: plan.deferred_constraints.clone(),
        }
    }

    /// The plan as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The plan as text: the tables in load order, what else the load touches, warnings.
    pub(crate) fn render(&self, plan: &Plan) -> String {
        let mut s = String::new();
        for (i, (t, p)) in self.tables.iter().zip(&plan.tables).enumerate() {
            let how = match (&t.match_column, &p.kind) {
                (Some(m), _) => format!("matched on {m}"),
                (None, TableKind::Junction { owner }) => format!(
                    "junction, links owned by {}",
                    p.stage
                        .get(*owner)
                        .map(|c| c.target.as_str())
                        .unwrap_or("?")
                ),
                (None, _) => String::new(),
            };
            let rows = t
                .rows
                .map(|n| format!(", {} rows", thousands(n)))
                .unwrap_or_default();
            let head = format!("  {}. {} <- {} ({how}){rows}", i + 1, t.table, t.source);
            if head.chars().count() <= WIDTH {
                s.push_str(&head);
                s.push('\n');
            } else {
                s.push_str(&format!("  {}. {} <- {}{rows}\n", i + 1, t.table, t.source));
                s.push_str(&wrap(&format!("       ({how})"), 8, WIDTH));
            }
            for r in &t.references {
                let line = format!(
                    "       {} -> {} (on_missing = \"{}\"){}",
                    r.column,
                    r.table,
                    r.on_missing,
                    if !r.deferred {
                        ""
                    } else if r.table == t.table {
                        "; set once the table is written: it points at rows of its own table"
                    } else {
                        "; set once every table is written: it closes a cycle of references"
                    }
                );
                s.push_str(&wrap(&line, 9, WIDTH));
            }
        }
        if !self.deferred_constraints.is_empty() {
            s.push_str(&wrap(
                &format!(
                    "foreign keys checked once every table is written (they close a cycle): {}",
                    self.deferred_constraints.join(", ")
                ),
                2,
                WIDTH,
            ));
        }
        let seqs: Vec<String> = self
            .touched
            .sequences
            .iter()
            .map(|q| format!("{}.{}", q.table, q.column))
            .collect();
        if !seqs.is_empty() {
            s.push_str(&wrap(
                &format!(
                    "sequences reset after the load ({}): {}",
                    seqs.len(),
                    seqs.join(", ")
                ),
                2,
                WIDTH,
            ));
        }
        let cons = &self.touched.constraints;
        if !cons.is_empty() {
            let kinds = [
                ("primary_key", "primary keys"),
                ("unique", "unique keys"),
                ("index", "indexes"),
                ("foreign_key", "foreign keys"),
                ("check", "checks"),
                ("exclusion", "exclusion constraints"),
            ];
            let counts: Vec<String> = kinds
                .iter()
                .filter_map(|(k, words)| {
                    let n = cons.iter().filter(|c| c.kind == *k).count();
                    (n > 0).then(|| format!("{n} {words}"))
                })
                .collect();
            s.push_str(&items("constraints on the mapped tables: ", &counts));
            s.push_str(&wrap(
                "  (those of a table that is empty at the start are set aside and rebuilt inside the transaction)",
                3,
                WIDTH,
            ));
        }
        for tr in &self.touched.triggers {
            s.push_str(&wrap(
                &format!(
                    "trigger {} on {} ({} {}, {}): {}",
                    tr.name,
                    tr.table,
                    tr.timing,
                    tr.events.join(" OR "),
                    if tr.for_each_row {
                        "each row"
                    } else {
                        "each statement"
                    },
                    tr.during_load
                ),
                4,
                WIDTH,
            ));
        }
        for rs in &self.touched.row_security {
            let how = if rs.applies {
                format!(
                    "its policies apply to the load's role `{}`: the load sees, matches and writes only the rows they allow",
                    rs.role
                )
            } else if rs.forced {
                format!("the load's role `{}` bypasses its policies", rs.role)
            } else {
                format!(
                    "the load's role `{}` owns the table or bypasses row security, so its policies do not apply to the load; they still apply to the application's roles",
                    rs.role
                )
            };
            s.push_str(&wrap(
                &format!(
                    "row level security on {} ({} {}{}): {how}",
                    rs.table,
                    rs.policies,
                    if rs.policies == 1 {
                        "policy"
                    } else {
                        "policies"
                    },
                    if rs.forced { ", forced" } else { "" },
                ),
                4,
                WIDTH,
            ));
        }
        if !self.warnings.is_empty() {
            s.push_str(&format!("warnings ({}):\n", self.warnings.len()));
            for w in &self.warnings {
                s.push_str(&wrap(&format!("  {w}"), 4, WIDTH));
            }
        }
        s
    }
}

/// What a load does with a trigger of a mapped table, in words: whether it fires, on which
/// of the load's writes, and what to know about it.
fn during_load(plan: &Plan, tr: &TriggerInfo) -> String {
    let Some(t) = plan.tables.iter().find(|t| t.name == tr.table) else {
        return String::new();
    };
    if t.disable_triggers.iter().any(|(n, _)| *n == tr.name) {
        return "disabled by the mapping for the load, enabled again before it commits".into();
    }
    if !tr.enabled {
        return "does not fire: it is disabled in the schema".into();
    }
    let writes: Vec<&str> = tr
        .events
        .iter()
        .map(|e| match e.as_str() {
            "INSERT" => "inserts",
            "UPDATE" => "updates",
            "DELETE" => "deletes (--prune, links gone from the source)",
            _ => "TRUNCATE (--mode replace)",
        })
        .collect();
    let mut s = format!("kept: fires on the load's {}", writes.join(", "));
    if tr.initially_deferred {
        s.push_str(
            "; deferred: runs at commit (on a bulk load, before the constraints are rebuilt)",
        );
    }
    let rewrites = tr.timing == "BEFORE"
        && tr.for_each_row
        && tr.events.iter().any(|e| e == "INSERT" || e == "UPDATE");
    if rewrites && !t.set_by_triggers.is_empty() {
        s.push_str(&format!(
            "; sets {} (set_by_triggers: written on insert only, never compared)",
            t.set_by_triggers.join(", ")
        ));
    } else if rewrites {
        s.push_str(
            "; it may change the values the load writes: name a mapped column it sets in `set_by_triggers`, or a re-run rewrites the row every time",
        );
    }
    s
}
