//! The rules across a mapping's tables, checked once every table is read: a reference names
//! a mapped table with a legacy id (not a junction). Cycles and references to a table's own
//! rows are judged when the mapping is bound to the target (`plan`), which knows the
//! columns that can be written NULL and set afterwards.

use super::{Mapping, Problem, suggest};

/// The tables read from one source table read the same records: the source lists a table
/// once, so a `view` or `filter` must be the same on every table mapped from it.
pub(super) fn selections(m: &Mapping, problems: &mut Vec<Problem>) {
    for (i, t) in m.tables.iter().enumerate() {
        let Some(first) = m.tables[..i].iter().find(|o| o.from == t.from) else {
            continue;
        };
        if first.selection != t.selection {
            let say = |s: &crate::source::Selection| match (&s.view, &s.filter) {
                (None, None) => "every record".to_string(),
                (Some(v), None) => format!("view = {v:?}"),
                (None, Some(f)) => format!("filter = {f:?}"),
                (Some(v), Some(f)) => format!("view = {v:?}, filter = {f:?}"),
            };
            problems.push(Problem {
                line: t.selection_line,
                key: format!("tables.{}", t.name),
                message: format!(
                    "`{}` reads source table `{}` with {}, but `{}` (line {}) reads it with {}: cutover lists a source table once, so give every table mapped from it the same `view` and `filter`",
                    t.name,
                    t.from,
                    say(&t.selection),
                    first.name,
                    first.selection_line,
                    say(&first.selection)
                ),
            });
        }
    }
}

/// Checks across tables: references name mapped entity tables.
pub(super) fn references(m: &Mapping, problems: &mut Vec<Problem>) {
    let names: Vec<&str> = m.tables.iter().map(|t| t.name.as_str()).collect();
    for t in &m.tables {
        for c in &t.columns {
            let Some(r) = &c.reference else { continue };
            let key = format!("tables.{}.columns.{}.references", t.name, c.name);
            match m.table(&r.table) {
                None => problems.push(Problem {
                    line: c.line,
                    key,
                    message: format!("`{}` is not a mapped table{}", r.table, suggest::hint(&r.table, names.iter().copied())),
                }),
                Some(p) if p.is_junction() => problems.push(Problem {
                    line: c.line,
                    key,
                    message: format!("`{}` is a junction table; a reference must point at a table with a legacy id", r.table),
                }),
                Some(_) => {}
            }
        }
    }
}
