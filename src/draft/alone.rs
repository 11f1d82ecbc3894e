//! Drafting from the source alone, when no target is given: every table and field under a
//! snake_case name, integer ids kept, links as references (`on_missing` left at "error"),
//! tables made of links as junctions, an Airtable relation drafted from one side only, and
//! fields the source computes left as comments. The names are guesses a `check` against
//! the target will confirm or correct.

use super::model::{Draft, DraftColumn, DraftTable, Identity};
use super::names::{singular, snake};
use crate::source::TableShape;
use std::collections::HashSet;

/// The column a link field becomes: `Owner` -> `owner_id`, `author_id` stays.
fn id_column(field: &str) -> String {
    let s = snake(field);
    if s == "id" || s.ends_with("_id") {
        s
    } else {
        format!("{s}_id")
    }
}

/// The column of a junction that points at a record of `table`: `Users` -> `user_id`,
/// `Categories` -> `category_id`, as a schema names it.
fn record_column(table: &str) -> String {
    let mut w = snake(table)
        .split('_')
        .map(str::to_string)
        .collect::<Vec<_>>();
    if let Some(last) = w.last_mut() {
        *last = singular(last);
    }
    id_column(&w.join("_"))
}

/// A table of links and nothing with an id of its own: a junction.
fn is_junction(t: &TableShape) -> bool {
    t.id_field.is_none() && t.fields.iter().filter(|f| f.link.is_some()).count() >= 2
}

pub(crate) fn draft(shapes: &[TableShape], airtable: bool) -> Draft {
    let target_of = |name: &str| {
        shapes
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .map(|s| snake(&s.name))
            .unwrap_or_else(|| snake(name))
    };
    // Many-links already drafted, as (table, field), so the inverse side is left out.
    let mut done: HashSet<(String, String)> = HashSet::new();
    let mut tables = Vec::new();
    let mut junctions = Vec::new();
    for s in shapes {
        let name = target_of(&s.name);
        if is_junction(s) {
            let mut t = DraftTable::new(&name, &s.name, Identity::Junction { owner: None });
            t.notes
                .push("a junction: no id of its own, and two or more links".to_string());
            for f in &s.fields {
                let mut c = DraftColumn::field(
                    &if f.link.is_some() {
                        id_column(&f.name)
                    } else {
                        snake(&f.name)
                    },
                    &f.name,
                    f.kind.clone(),
                );
                c.references = f.link.as_ref().map(|l| target_of(&l.table));
                t.columns.push(c);
            }
            tables.push(t);
            continue;
        }
        let identity = match (&s.id_field, s.integer_id) {
            (Some(id), true) => Identity::Entity {
                legacy_id: id.clone(),
                legacy_column: None,
                keep_id: true,
                generate_id: None,
            },
            (Some(id), false) => Identity::Entity {
                legacy_id: id.clone(),
                legacy_column: Some(if airtable { "airtable_id" } else { "legacy_id" }.into()),
                keep_id: false,
                generate_id: None,
            },
            (None, _) => Identity::Entity {
                legacy_id: "id".into(),
                legacy_column: Some("legacy_id".into()),
                keep_id: false,
                generate_id: None,
            },
        };
        let mut t = DraftTable::new(&name, &s.name, identity);
        t.from_id = s.id.clone();
        match (&s.id_field, s.integer_id) {
            (Some(_), true) => t.notes.push("integer ids kept; to keep them in a column as well (so re-runs leave the rows the application creates alone), add legacy_column".into()),
            (Some(_), false) => t.notes.push("the id is not an integer: kept as the legacy id in the column legacy_column names".into()),
            (None, _) => t.todo.push("no single id field found: say which field identifies a record (legacy_id)".into()),
        }
        let mut computed = Vec::new();
        for f in &s.fields {
            if Some(&f.name) == s.id_field.as_ref() {
                continue;
            }
            // The field's id is not repeated here: the draft names the field by it.
            let why = f.kind.clone();
            match &f.link {
                _ if f.computed && f.name != "@createdTime" => {
                    computed.push(match &f.id {
                        Some(id) => format!("`{}` ({why}, {id})", f.name),
                        None => format!("`{}` ({why})", f.name),
                    });
                }
                None => t
                    .columns
                    .push(DraftColumn::field(&snake(&f.name), &f.name, why)),
                Some(l) => {
                    let inverse = l.inverse.as_ref().and_then(|inv| {
                        shapes
                            .iter()
                            .find(|o| o.name == l.table)?
                            .fields
                            .iter()
                            .find(|g| &g.name == inv)
                    });
                    if !l.many {
                        let mut c = DraftColumn::field(&id_column(&f.name), &f.name, why);
                        c.references = Some(target_of(&l.table));
                        t.columns.push(c);
                        continue;
                    }
                    // The many side of a one-to-many relation: drafted from the single side.
                    if let Some(inv) = inverse
                        && inv.link.as_ref().is_some_and(|il| !il.many)
                    {
                        t.notes.push(format!(
                            "`{}`: the other side of `{}`.`{}`, drafted there",
                            f.name, l.table, inv.name
                        ));
                        continue;
                    }
                    if let Some(inv) = &l.inverse
                        && done.contains(&(l.table.clone(), inv.clone()))
                    {
                        t.notes.push(format!(
                            "`{}`: the same links as `{}`.`{inv}` (drafted there as a junction)",
                            f.name, l.table
                        ));
                        continue;
                    }
                    done.insert((s.name.clone(), f.name.clone()));
                    let jname = format!("{name}_{}", snake(&f.name));
                    t.notes
                        .push(format!("`{}`: see the junction {jname} below", f.name));
                    let own = record_column(&s.name);
                    let other = record_column(&l.table);
                    let other = if other == own {
                        format!("linked_{other}")
                    } else {
                        other
                    };
                    let mut j = DraftTable::new(
                        &jname,
                        &s.name,
                        Identity::Junction {
                            owner: Some(own.clone()),
                        },
                    );
                    j.from_id = s.id.clone();
                    let mut a = DraftColumn::field(
                        &own,
                        s.id_field.as_deref().unwrap_or("@id"),
                        "the record's own id".into(),
                    );
                    a.references = Some(name.clone());
                    let mut b = DraftColumn::field(&other, &f.name, why);
                    b.references = Some(target_of(&l.table));
                    b.explode = true;
                    j.columns = vec![a, b];
                    junctions.push(j);
                }
            }
        }
        if !computed.is_empty() {
            t.notes.push(format!(
                "left out, computed by the source: {}",
                computed.join(", ")
            ));
        }
        tables.push(t);
    }
    tables.extend(junctions);
    Draft {
        revision: None,
        notes: vec![
            "Review every line: without --target, table and column names are guesses (snake_case"
                .into(),
            "of the source names). `cutover inspect --target URL` pairs them with the real schema;"
                .into(),
            "`cutover check -m THIS --target URL` compares this draft with it.".into(),
        ],
        tables,
        todos: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_junction_column_names_one_record() {
        assert_eq!(record_column("Users"), "user_id");
        assert_eq!(record_column("Event Categories"), "event_category_id");
        assert_eq!(record_column("Status"), "status_id");
        assert_eq!(record_column("person_id"), "person_id");
    }
}
