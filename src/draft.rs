//! `cutover inspect`: what a source holds — tables, fields, their types and links — and a
//! starter mapping drafted from it (`--emit-mapping`) for a person to review and edit.
//!
//! The draft takes the lowest-risk choices: every field mapped under a snake_case name,
//! links as references that fail on a missing record (`on_missing` left at "error"),
//! integer ids kept, many-to-many links as junction tables fed from one side only (Airtable
//! has the link on both sides; loading both would load every pair twice).

use crate::source::{SourceSpec, TableShape};
use std::collections::HashSet;
use std::fmt::Write;

/// The listing `inspect` prints.
pub fn render(shapes: &[TableShape]) -> String {
    let mut s = String::new();
    for t in shapes {
        let _ = writeln!(
            s,
            "{}{}",
            t.name,
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
            let _ = writeln!(s, "  {:<32} {}{link}", f.name, f.kind);
        }
    }
    s
}

/// A lowercase identifier: `Project Collaborators` -> `project_collaborators`.
pub fn snake(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for ch in name.chars() {
        if ch.is_alphanumeric() {
            if ch.is_uppercase() && prev_lower {
                out.push('_');
            }
            out.extend(ch.to_lowercase());
            prev_lower = ch.is_lowercase() || ch.is_numeric();
        } else {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            prev_lower = false;
        }
    }
    let out = out.trim_end_matches('_').to_string();
    if out.is_empty() {
        "field".to_string()
    } else {
        out
    }
}

/// The column a link field becomes: `Owner` -> `owner_id`, `author_id` stays.
fn id_column(field: &str) -> String {
    let s = snake(field);
    if s.ends_with("_id") {
        s
    } else {
        format!("{s}_id")
    }
}

/// A TOML key, quoted when it has to be.
fn key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        toml_string(name)
    }
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", escaped(s))
}

/// Text from the source inside a TOML comment: escaped as in a string, so a newline in a
/// declared type or a name cannot end the comment and start a mapping line of its own.
fn comment(s: &str) -> String {
    escaped(s)
}

/// TOML basic-string escapes: quotes, backslashes and every control character.
fn escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Draft a mapping for `shapes` read from `spec`.
pub fn draft_mapping(spec: &SourceSpec, shapes: &[TableShape]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Starter mapping drafted by `cutover inspect` from {}.",
        comment(&spec.to_string())
    );
    let _ = writeln!(
        s,
        "# Review every line: target table and column names are guesses (snake_case of the"
    );
    let _ = writeln!(
        s,
        "# source names); run `cutover check -m THIS --target URL` to compare it with the schema."
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "[source]");
    match spec {
        SourceSpec::Sqlite(p) => {
            let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            let _ = writeln!(
                s,
                "kind = \"sqlite\"\npath = {}",
                toml_string(&p.to_string_lossy())
            );
        }
        SourceSpec::Airtable { base } => {
            let _ = writeln!(
                s,
                "kind = \"airtable\"\nbase = {}   # the token comes from AIRTABLE_TOKEN or --token-file",
                toml_string(base)
            );
        }
        SourceSpec::Snapshot(p) => {
            let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            let _ = writeln!(
                s,
                "kind = \"snapshot\"\ndir = {}",
                toml_string(&p.to_string_lossy())
            );
        }
    }
    let _ = writeln!(
        s,
        "\n[target]\nschema = \"public\"\n# expect_revision = \"…\"   # the Alembic revision this mapping was written for\n"
    );

    let target_of = |name: &str| snake(name);
    let is_junction = |t: &TableShape| {
        let links = t.fields.iter().filter(|f| f.link.is_some()).count();
        let others = t
            .fields
            .iter()
            .filter(|f| f.link.is_none() && Some(&f.name) != t.id_field.as_ref())
            .count();
        // A table with an id of its own is an entity, whatever its fields.
        t.id_field.is_none() && links >= 2 && others == 0
    };
    // Many-links already drafted, as (table, field), so the inverse side is left out.
    let mut done: HashSet<(String, String)> = HashSet::new();
    let mut junctions = String::new();

    for t in shapes {
        let name = target_of(&t.name);
        if is_junction(t) {
            let _ = writeln!(
                s,
                "[tables.{}]\nfrom = {}\njunction = true",
                key(&name),
                toml_string(&t.name)
            );
            let _ = writeln!(s, "[tables.{}.columns]", key(&name));
            for f in &t.fields {
                if let Some(l) = &f.link {
                    let _ = writeln!(
                        s,
                        "{} = {{ field = {}, references = {} }}",
                        key(&id_column(&f.name)),
                        toml_string(&f.name),
                        toml_string(&target_of(&l.table))
                    );
                }
            }
            let _ = writeln!(s);
            continue;
        }
        let _ = writeln!(
            s,
            "[tables.{}]\nfrom = {}",
            key(&name),
            toml_string(&t.name)
        );
        match (&t.id_field, t.integer_id) {
            (Some(id), true) => {
                let _ = writeln!(s, "legacy_id = {}\nkeep_id = true", toml_string(id));
                let _ = writeln!(
                    s,
                    "# legacy_column = \"legacy_id\"   # recommended: also keep the id in a column, so re-runs leave rows the application creates alone"
                );
            }
            (Some(id), false) => {
                let _ = writeln!(
                    s,
                    "legacy_id = {}\nlegacy_column = \"airtable_id\"   # the target column that keeps the legacy id",
                    toml_string(id)
                );
            }
            (None, _) => {
                let _ = writeln!(
                    s,
                    "# No single id field found: say which field identifies a record.\nlegacy_id = \"id\"\nlegacy_column = \"legacy_id\""
                );
            }
        }
        let _ = writeln!(s, "[tables.{}.columns]", key(&name));
        for f in &t.fields {
            if Some(&f.name) == t.id_field.as_ref() {
                continue;
            }
            let kind = if f.kind.is_empty() {
                String::new()
            } else {
                format!("   # {}", comment(&f.kind))
            };
            match &f.link {
                None => {
                    let _ = writeln!(
                        s,
                        "{} = {}{kind}",
                        key(&snake(&f.name)),
                        toml_string(&f.name)
                    );
                }
                Some(l) if !l.many => {
                    let _ = writeln!(
                        s,
                        "{} = {{ field = {}, references = {} }}{kind}",
                        key(&format!("{}_id", snake(&f.name).trim_end_matches("_id"))),
                        toml_string(&f.name),
                        toml_string(&target_of(&l.table))
                    );
                }
                Some(l) => {
                    if let Some(inv) = &l.inverse
                        && done.contains(&(l.table.clone(), inv.clone()))
                    {
                        let _ = writeln!(
                            s,
                            "# {} -> {}: the same links as {}.{} (drafted there as a junction)",
                            toml_string(&f.name),
                            comment(&l.table),
                            comment(&l.table),
                            comment(inv)
                        );
                        continue;
                    }
                    done.insert((t.name.clone(), f.name.clone()));
                    let _ = writeln!(
                        s,
                        "# {} -> {} (many): see the junction [tables.{}_{}] below",
                        toml_string(&f.name),
                        comment(&l.table),
                        name,
                        snake(&f.name)
                    );
                    let jname = format!("{}_{}", name, snake(&f.name));
                    let own = format!("{}_id", snake(&t.name));
                    let other = format!("{}_id", snake(&l.table));
                    let other = if other == own {
                        format!("linked_{other}")
                    } else {
                        other
                    };
                    let _ = writeln!(
                        junctions,
                        "[tables.{}]\nfrom = {}\njunction = true\nowner = {}",
                        key(&jname),
                        toml_string(&t.name),
                        toml_string(&own)
                    );
                    let _ = writeln!(junctions, "[tables.{}.columns]", key(&jname));
                    let _ = writeln!(
                        junctions,
                        "{} = {{ field = {}, references = {} }}",
                        key(&own),
                        toml_string(t.id_field.as_deref().unwrap_or("@id")),
                        toml_string(&name)
                    );
                    let _ = writeln!(
                        junctions,
                        "{} = {{ field = {}, references = {}, explode = true }}\n",
                        key(&other),
                        toml_string(&f.name),
                        toml_string(&target_of(&l.table))
                    );
                }
            }
        }
        let _ = writeln!(s);
    }
    s.push_str(&junctions);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{FieldShape, LinkShape};

    #[test]
    fn snake_case_names() {
        assert_eq!(snake("Project Collaborators"), "project_collaborators");
        assert_eq!(snake("createdAt"), "created_at");
        assert_eq!(snake("Events Attending (2024)"), "events_attending_2024");
        assert_eq!(snake("!!"), "field");
    }

    #[test]
    fn drafts_a_mapping_that_parses() {
        let shapes = vec![
            TableShape {
                name: "Users".into(),
                id_field: Some("@id".into()),
                integer_id: false,
                fields: vec![
                    FieldShape {
                        name: "Email".into(),
                        kind: "email".into(),
                        link: None,
                    },
                    FieldShape {
                        name: "Events".into(),
                        kind: "multipleRecordLinks".into(),
                        link: Some(LinkShape {
                            table: "Events".into(),
                            many: true,
                            inverse: Some("Attendees".into()),
                        }),
                    },
                ],
            },
            TableShape {
                name: "Events".into(),
                id_field: Some("@id".into()),
                integer_id: false,
                fields: vec![
                    FieldShape {
                        name: "Owner".into(),
                        kind: "multipleRecordLinks".into(),
                        link: Some(LinkShape {
                            table: "Users".into(),
                            many: false,
                            inverse: None,
                        }),
                    },
                    FieldShape {
                        name: "Attendees".into(),
                        kind: "multipleRecordLinks".into(),
                        link: Some(LinkShape {
                            table: "Users".into(),
                            many: true,
                            inverse: Some("Events".into()),
                        }),
                    },
                ],
            },
        ];
        let text = draft_mapping(&SourceSpec::Sqlite("/x.db".into()), &shapes);
        let m = crate::mapping::parse(std::path::Path::new("draft.toml"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        // One junction only, for the two sides of the same link.
        let junctions: Vec<&str> = m
            .tables
            .iter()
            .filter(|t| t.is_junction())
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(junctions, vec!["users_events"], "{text}");
        let ev = m.table("events").unwrap();
        assert!(ev.column("owner_id").unwrap().reference.is_some(), "{text}");
        assert!(text.contains("the same links as Users.Events"), "{text}");
    }

    #[test]
    fn source_text_cannot_inject_mapping_lines() {
        // A declared type, a table name and a link target, each with a newline that would end
        // a comment and start a line of its own.
        let evil = "TEXT\nstatus = { value = \"pwned\" }";
        let shapes = vec![TableShape {
            name: "notes\n[tables.x]".into(),
            id_field: Some("id".into()),
            integer_id: true,
            fields: vec![
                FieldShape {
                    name: "body".into(),
                    kind: evil.into(),
                    link: None,
                },
                FieldShape {
                    name: "tags".into(),
                    kind: "multipleRecordLinks".into(),
                    link: Some(LinkShape {
                        table: "Tags\nkeep_id = false".into(),
                        many: true,
                        inverse: None,
                    }),
                },
            ],
        }];
        let text = draft_mapping(&SourceSpec::Sqlite("/x\ny = 1.db".into()), &shapes);
        let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let tables = doc["tables"].as_table().unwrap();
        assert!(!tables.contains_key("x"), "{text}");
        for (_, t) in tables {
            let cols = t.get("columns").and_then(|c| c.as_table());
            assert!(cols.is_none_or(|c| !c.contains_key("status")), "{text}");
        }
        assert!(!doc.contains_key("y"), "{text}");
        // Every source text line is a comment or TOML the draft meant to write.
        assert!(text.contains("# TEXT\\nstatus"), "{text}");
    }
}
