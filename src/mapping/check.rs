//! The rules across a mapping's tables, checked once every table is read: a reference names
//! a mapped table with a legacy id (not a junction, not itself), and the references form no
//! cycle, so some load order satisfies them all.

use super::{Mapping, Problem, suggest};

/// Checks across tables: references name mapped entity tables, and they form no cycle.
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
                Some(p) if p.name == t.name => problems.push(Problem {
                    line: c.line,
                    key,
                    message: "a table referencing itself is not supported by this version of cutover".to_string(),
                }),
                Some(_) => {}
            }
        }
    }
    let edges: Vec<(usize, usize, usize)> = m
        .tables
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.columns.iter().filter_map(move |c| {
                let r = c.reference.as_ref()?;
                let j = m.tables.iter().position(|p| p.name == r.table)?;
                (j != i).then_some((i, j, c.line))
            })
        })
        .collect();
    if let Some(cycle) =
        crate::graph::find_cycle(m.tables.len(), edges.iter().map(|&(a, b, _)| (a, b)))
    {
        let path: Vec<&str> = cycle.iter().map(|&i| m.tables[i].name.as_str()).collect();
        let line = edges
            .iter()
            .find(|e| e.0 == cycle[0])
            .map(|e| e.2)
            .unwrap_or(1);
        problems.push(Problem {
            line,
            key: "references".to_string(),
            message: format!(
                "the references form a cycle: {}; no load order can satisfy it",
                path.join(" -> ")
            ),
        });
    }
}
