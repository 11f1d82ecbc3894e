//! Drafts from hand-made source shapes: they parse as mappings, draft one side of each
//! relation, and cannot be made to say what the source's text says.

use super::*;
use crate::source::{FieldShape, LinkShape};

fn field(name: &str, kind: &str) -> FieldShape {
    FieldShape {
        name: name.into(),
        kind: kind.into(),
        ..FieldShape::default()
    }
}

fn link(name: &str, table: &str, many: bool, inverse: Option<&str>) -> FieldShape {
    FieldShape {
        link: Some(LinkShape {
            table: table.into(),
            many,
            inverse: inverse.map(str::to_string),
        }),
        ..field(name, "multipleRecordLinks")
    }
}

fn draft(spec: &SourceSpec, shapes: &[TableShape]) -> String {
    draft_mapping(spec, shapes, None, None, Path::new("/tmp/draft.toml")).text
}

#[test]
fn drafts_a_mapping_that_parses() {
    let shapes = vec![
        TableShape {
            name: "Users".into(),
            id_field: Some("@id".into()),
            fields: vec![
                field("Email", "email"),
                link("Events", "Events", true, Some("Attendees")),
                link("Events Owned", "Events", true, Some("Owner")),
                FieldShape {
                    computed: true,
                    ..field("Full Name", "formula")
                },
            ],
            ..TableShape::default()
        },
        TableShape {
            name: "Events".into(),
            id_field: Some("@id".into()),
            fields: vec![
                link("Owner", "Users", false, Some("Events Owned")),
                link("Attendees", "Users", true, Some("Events")),
            ],
            ..TableShape::default()
        },
    ];
    let text = draft(
        &SourceSpec::Airtable {
            base: "appAAAAAAAAAAAAAA".into(),
        },
        &shapes,
    );
    let m = crate::mapping::parse(Path::new("draft.toml"), &text)
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
    assert!(
        text.contains("the same links as `Users`.`Events`"),
        "{text}"
    );
    // The one-to-many relation is drafted once, from its single side.
    let users = m.table("users").unwrap();
    assert!(
        users.columns.iter().all(|c| !c.name.contains("owned")),
        "{text}"
    );
    assert!(
        text.contains("`Events Owned`: the other side of `Events`.`Owner`"),
        "{text}"
    );
    // The formula is left out, and said so; the legacy column is airtable_id.
    assert!(users.column("full_name").is_none(), "{text}");
    assert!(
        text.contains("left out, computed by the source: `Full Name` (formula)"),
        "{text}"
    );
    assert!(text.contains("legacy_column = \"airtable_id\""), "{text}");
}

#[test]
fn a_text_key_is_a_legacy_id_and_a_self_reference_is_settled() {
    let shapes = vec![TableShape {
        name: "Staff".into(),
        id_field: Some("code".into()),
        integer_id: false,
        fields: vec![
            field("code", "TEXT"),
            FieldShape {
                link: Some(LinkShape {
                    table: "Staff".into(),
                    ..LinkShape::default()
                }),
                ..field("reports_to", "TEXT")
            },
        ],
        ..TableShape::default()
    }];
    let text = draft(&SourceSpec::Sqlite("/x.db".into()), &shapes);
    let m = crate::mapping::parse(Path::new("draft.toml"), &text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let staff = m.table("staff").unwrap();
    assert!(
        matches!(&staff.identity, crate::mapping::Identity::Legacy { field, column: Some(c), keep_id: false, .. } if field == "code" && c == "legacy_id"),
        "{text}"
    );
    // A self-reference is drafted; where this version cannot load one, it is a TODO.
    assert!(
        text.contains("reports_to_id = { field = \"reports_to\", references = \"staff\" }"),
        "{text}"
    );
    if staff.column("reports_to_id").is_none() {
        assert!(
            text.contains("# TODO: tables.staff.columns.reports_to_id.references"),
            "{text}"
        );
    }
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
            field("body", evil),
            field("x\"\n[tables.y]\u{7}", "TEXT\r\n# a"),
            link("tags", "Tags\nkeep_id = false", true, None),
        ],
        ..TableShape::default()
    }];
    let text = draft(&SourceSpec::Sqlite("/x\ny = 1.db".into()), &shapes);
    let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let tables = doc["tables"].as_table().unwrap();
    assert!(
        !tables.contains_key("x") && !tables.contains_key("y"),
        "{text}"
    );
    for (_, t) in tables {
        let cols = t.get("columns").and_then(|c| c.as_table());
        assert!(cols.is_none_or(|c| !c.contains_key("status")), "{text}");
    }
    assert!(!doc.contains_key("y"), "{text}");
    // Every source text line is a comment or TOML the draft meant to write.
    assert!(text.contains("# TEXT\\nstatus"), "{text}");
    for line in text.lines() {
        let line = line.trim_start();
        assert!(
            line.is_empty()
                || line.starts_with('#')
                || line.starts_with('[')
                || line.contains(" = "),
            "{line:?} in\n{text}"
        );
    }
}
