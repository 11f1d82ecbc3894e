//! A draft checked as `check` would check it, before anyone sees it: the text is parsed as a
//! mapping and, with a target, bound to its catalog and the source's tables. A problem at a
//! column's line turns that column into a commented TODO carrying the problem; one at a
//! table's line (where `check` reports a table's problems) becomes a TODO on that line, and
//! a table the mapping cannot even read is written as comments. So whatever `check` still
//! reports points at a TODO line of the draft.

use super::model::Draft;
use super::write::{Line, Written, write};
use crate::mapping;
use crate::pg::catalog::Catalog;
use crate::plan;
use crate::source::{SourceSpec, SourceTable};
use std::path::Path;

/// Write `draft`, settling what the mapping reader and, with `target`, the binder refuse.
pub(crate) fn settle(
    draft: &mut Draft,
    spec: &SourceSpec,
    schema: &str,
    path: &Path,
    target: Option<(&Catalog, &[SourceTable])>,
) -> Written {
    // Each round comments out at least one more line or table, so this ends; the bound is
    // only a guard.
    for _ in 0..64 {
        let written = write(draft, spec, schema);
        let (problems, unreadable) = match mapping::parse(path, &written.text) {
            Err(p) => (p.list, true),
            Ok(m) => match target {
                Some((cat, source)) => match plan::bind(&m, cat, source) {
                    Ok(_) => (Vec::new(), false),
                    Err(p) => (p.list, false),
                },
                None => (Vec::new(), false),
            },
        };
        let mut changed = false;
        for p in &problems {
            let message = if p.key.is_empty() {
                p.message.clone()
            } else {
                format!("{}: {}", p.key, p.message)
            };
            match written.lines.get(p.line.saturating_sub(1)) {
                Some(&Line::Column(t, c)) => {
                    let col = &mut draft.tables[t].columns[c];
                    if col.todo.is_none() {
                        col.todo = Some(message);
                        changed = true;
                    }
                }
                Some(&Line::Table(t)) => {
                    let table = &mut draft.tables[t];
                    if unreadable {
                        if table.disabled.is_none() {
                            table.disabled = Some(message);
                            changed = true;
                        }
                    } else if !table.todo.contains(&message) {
                        table.todo.push(message);
                        changed = true;
                    }
                }
                _ => {
                    if !draft.todos.contains(&message) {
                        draft.todos.push(message);
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            return written;
        }
    }
    write(draft, spec, schema)
}
