//! `cutover inspect`: what a source holds — tables, fields, their types and links — and a
//! starter mapping drafted from it (`--emit-mapping`) for a person to review.
//!
//! With a target (`--target`), the draft pairs the source with the schema that will receive
//! it (`target`); without one it guesses target names from the source (`alone`). Either way
//! the draft is a model (`model`) written as TOML (`write`), then checked as `check` would
//! check it (`validate`), so what still needs a person is marked TODO where `check` points.
//!
//! | file | what |
//! |---|---|
//! | `names.rs` | names compared modulo case, underscores, plurals, `Id`, prefixes |
//! | `target.rs` | drafting against the target's catalog |
//! | `alone.rs` | drafting from the source alone |
//! | `model.rs` | the draft before it is written |
//! | `write.rs` | the TOML text, everything from the source escaped |
//! | `validate.rs` | the draft parsed and bound; problems become TODOs |

mod alone;
mod model;
mod names;
mod target;
mod validate;
mod write;

use crate::pg::catalog::Catalog;
use crate::source::{SourceSpec, SourceTable, TableShape};
use std::fmt::Write;
use std::path::Path;

pub(crate) use model::Draft;

/// The listing `inspect` prints.
pub fn render(shapes: &[TableShape]) -> String {
    let mut s = String::new();
    for t in shapes {
        let _ = writeln!(
            s,
            "{}{}{}",
            t.name,
            t.id.as_deref()
                .map(|i| format!("  [{i}]"))
                .unwrap_or_default(),
            t.id_field
                .as_deref()
                .map(|f| format!("  (id: {f})"))
                .unwrap_or_default()
        );
        for f in &t.fields {
            let link = match &f.link {
                Some(l) => format!(
                    "  -> {}{}{}",
                    l.table,
                    if l.many { " (many)" } else { "" },
                    l.inverse
                        .as_deref()
                        .map(|i| format!(", inverse of {i}"))
                        .unwrap_or_default()
                ),
                None => String::new(),
            };
            let id =
                f.id.as_deref()
                    .map(|i| format!("  [{i}]"))
                    .unwrap_or_default();
            let _ = writeln!(s, "  {:<32} {}{link}{id}", f.name, f.kind);
        }
    }
    s
}

/// A drafted mapping: what it proposes, and its text.
pub(crate) struct Drafted {
    pub(crate) draft: Draft,
    pub(crate) text: String,
}

impl Drafted {
    /// One line on what the draft holds and what it leaves to a person.
    pub(crate) fn summary(&self) -> String {
        let d = &self.draft;
        let live: Vec<_> = d.tables.iter().filter(|t| t.disabled.is_none()).collect();
        let junctions = live.iter().filter(|t| t.is_junction()).count();
        let todos = self.text.matches("TODO:").count();
        format!(
            "draft: {} tables ({junctions} junctions), {} TODO{} to settle",
            live.len(),
            todos,
            if todos == 1 { "" } else { "s" }
        )
    }
}

/// Draft a mapping of `shapes` read from `spec`, against the target's catalog when one is
/// given (`source` lists the source's tables as a load reads them). `path` is where the
/// draft will be written: relative paths in it are resolved from there, as `check` will.
/// `revision` is the target's Alembic revision, if it has one.
pub(crate) fn draft_mapping(
    spec: &SourceSpec,
    shapes: &[TableShape],
    target: Option<(&Catalog, &[SourceTable])>,
    revision: Option<String>,
    path: &Path,
) -> Drafted {
    let airtable = matches!(spec, SourceSpec::Airtable { .. });
    let mut draft = match target {
        Some((cat, _)) => target::draft(shapes, cat, airtable),
        None => alone::draft(shapes, airtable),
    };
    draft.revision = revision;
    name_by_ids(&mut draft, shapes);
    let written = validate::settle(&mut draft, spec, "public", path, target);
    Drafted {
        draft,
        text: written.text,
    }
}

/// Give each drafted column the source's id of its field, when the source has ids
/// (Airtable's `fld…`): the draft is written naming fields by id, which a rename in the base
/// does not change, with their names beside them as comments.
fn name_by_ids(draft: &mut Draft, shapes: &[TableShape]) {
    for t in &mut draft.tables {
        let Some(s) = shapes.iter().find(|s| s.name == t.from) else {
            continue;
        };
        for c in &mut t.columns {
            c.field_id = c
                .field
                .as_ref()
                .and_then(|f| s.fields.iter().find(|x| &x.name == f))
                .and_then(|x| x.id.clone());
        }
    }
}

/// What `inspect --format json` prints: the source's shape and, when drafted, the draft.
pub(crate) fn json(
    spec: &SourceSpec,
    shapes: &[TableShape],
    drafted: Option<&Drafted>,
) -> serde_json::Value {
    let tables: Vec<serde_json::Value> = shapes
        .iter()
        .map(|t| {
            serde_json::json!({
                "name": t.name,
                "id": t.id,
                "id_field": t.id_field,
                "integer_id": t.integer_id,
                "fields": t.fields.iter().map(|f| serde_json::json!({
                    "name": f.name,
                    "id": f.id,
                    "type": f.kind,
                    "computed": f.computed,
                    "link": f.link.as_ref().map(|l| serde_json::json!({
                        "table": l.table,
                        "many": l.many,
                        "inverse": l.inverse,
                    })),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "format": "cutover-inspect",
        "format_version": 1,
        "cutover_version": env!("CARGO_PKG_VERSION"),
        "source": spec.to_string(),
        "tables": tables,
        "draft": drafted.map(|d| serde_json::to_value(&d.draft).unwrap_or_default()),
    })
}

#[cfg(test)]
mod tests;
