//! The rules across a mapping's tables, checked once every table is read: a reference names
//! a mapped table with a legacy id (not a junction). Cycles and references to a table's own
//! rows are judged when the mapping is bound to the target (`plan`), which knows the
//! columns that can be written NULL and set afterwards.

use super::{Mapping, Problem, suggest};

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
