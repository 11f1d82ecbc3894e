//! Re-runs send PostgreSQL only the rows the source changed: a row exactly as the last load
//! wrote it, still in the target, is recognised by its fingerprint in the record and neither
//! resolved, compared nor written — while everything a full comparison decides still holds:
//! a changed row is updated, a row the application deleted is written again, a link the
//! source dropped for an unchanged owner is removed, a repeated legacy id is a reject.

use crate::app::App;
use crate::harness::{Db, Run};
use crate::rerun::SCHEMA;

// No primary key on the legacy users: a record can be repeated, as exports often are.
const LEGACY: &str = "
    CREATE TABLE users (id INTEGER, email TEXT, name TEXT);
    INSERT INTO users VALUES (1, 'ann@x.org', 'Ann'), (2, 'bob@x.org', 'Bob'), (3, 'cy@x.org', 'Cy');
    CREATE TABLE events (id INTEGER PRIMARY KEY, title TEXT, owner INTEGER);
    INSERT INTO events VALUES (10, 'Kickoff', 1), (11, 'Demo', 2);
    CREATE TABLE attendees (event INTEGER, person INTEGER);
    INSERT INTO attendees VALUES (10, 1), (10, 2), (11, 3);";

const MAPPING: &str = r#"
[tables.users]
legacy_column = "legacy_id"
[tables.users.columns]
email = "email"
name = "name"

[tables.events]
legacy_column = "legacy_id"
[tables.events.columns]
title = "title"
owner_id = { field = "owner", references = "users" }

[tables.attendees]
junction = true
owner = "event_id"
[tables.attendees.columns]
event_id = { field = "event", references = "events" }
user_id = { field = "person", references = "users" }
"#;

/// `cutover load` with a JSON report; the run and the report's table entries by name.
fn load(app: &App) -> (Run, serde_json::Value) {
    load_with(app, &[])
}

fn load_with(app: &App, extra: &[&str]) -> (Run, serde_json::Value) {
    let report = app.db.dir.join("report.json");
    let _ = std::fs::remove_file(&report);
    let mut args = vec!["--report", report.to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = app.run_with("load", &args);
    run.ok();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let mut tables = serde_json::Map::new();
    for t in v["tables"].as_array().unwrap() {
        tables.insert(t["table"].as_str().unwrap().to_string(), t.clone());
    }
    (run, serde_json::Value::Object(tables))
}

fn count(t: &serde_json::Value, table: &str, what: &str) -> u64 {
    t[table][what]
        .as_u64()
        .unwrap_or_else(|| panic!("no {what} for {table} in {t}"))
}

fn rows(db: &Db, sql: &str) -> Vec<String> {
    db.sql(sql)
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(Option::unwrap_or_default)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn a_rerun_sends_only_the_rows_the_source_changed() {
    let app = App::new("unchanged_rows", SCHEMA, LEGACY, MAPPING);
    let (run, first) = load(&app);
    assert_eq!(count(&first, "users", "unchanged_in_source"), 0);
    // Into empty tables there is nothing to merge: no word of a missing record.
    assert!(!run.stdout.contains("no record"), "{}", run.stdout);

    // Nothing changed: every row is recognised, none is sent.
    let (_, again) = load(&app);
    assert_eq!(count(&again, "users", "unchanged_in_source"), 3);
    assert_eq!(count(&again, "events", "unchanged_in_source"), 2);
    assert_eq!(count(&again, "users", "unchanged"), 3);
    assert_eq!(count(&again, "users", "target"), 3, "exact counts");
    // The junction too, as a whole: its links and the target's are as the last load left them.
    assert_eq!(count(&again, "attendees", "unchanged_in_source"), 3);
    assert_eq!(count(&again, "attendees", "target"), 3);

    // One user renamed, one link dropped for an event that did not change.
    app.edit_source(
        "UPDATE users SET name = 'Bobby' WHERE id = 2;
         DELETE FROM attendees WHERE event = 10 AND person = 2;",
    );
    let (_, changed) = load(&app);
    assert_eq!(count(&changed, "users", "unchanged_in_source"), 2);
    assert_eq!(count(&changed, "users", "updated"), 1);
    assert_eq!(count(&changed, "events", "unchanged_in_source"), 2);
    assert_eq!(count(&changed, "attendees", "deleted"), 1);
    assert_eq!(count(&changed, "attendees", "unchanged_in_source"), 0);
    assert_eq!(
        rows(
            &app.db,
            "SELECT legacy_id, name FROM users ORDER BY legacy_id"
        ),
        ["1 Ann", "2 Bobby", "3 Cy"]
    );
    assert_eq!(
        rows(
            &app.db,
            "SELECT e.legacy_id, u.legacy_id FROM attendees a JOIN events e ON e.id = a.event_id JOIN users u ON u.id = a.user_id ORDER BY 1, 2"
        ),
        ["10 1", "11 3"]
    );
    // The changed row is recognised from then on.
    let (_, settled) = load(&app);
    assert_eq!(count(&settled, "users", "unchanged_in_source"), 3);

    // A repeated record beside an unchanged one is still a duplicate: the first one stays.
    app.edit_source("INSERT INTO users VALUES (2, 'bob2@x.org', 'Bob again');");
    let (_, dup) = load_with(&app, &["--max-rejects", "1"]);
    assert_eq!(count(&dup, "users", "rejected"), 1);
    assert_eq!(count(&dup, "users", "updated"), 0);
    assert_eq!(
        app.db.one("SELECT email FROM users WHERE legacy_id = '2'"),
        "bob@x.org"
    );
}

#[test]
fn a_row_the_application_deleted_is_written_again_though_the_source_kept_it() {
    let app = App::new("unchanged_deleted", SCHEMA, LEGACY, MAPPING);
    load(&app);
    app.db.sql(
        "DELETE FROM attendees WHERE event_id = (SELECT id FROM events WHERE legacy_id = '11');
         DELETE FROM events WHERE legacy_id = '11';",
    );
    let (_, again) = load(&app);
    assert_eq!(count(&again, "events", "unchanged_in_source"), 1);
    assert_eq!(count(&again, "events", "inserted"), 1);
    assert_eq!(count(&again, "attendees", "inserted"), 1);
    assert_eq!(
        rows(
            &app.db,
            "SELECT legacy_id, title FROM events ORDER BY legacy_id"
        ),
        ["10 Kickoff", "11 Demo"]
    );
}

#[test]
fn a_changed_mapping_compares_every_row_again() {
    let app = App::new("unchanged_mapping", SCHEMA, LEGACY, MAPPING);
    load(&app);
    // The same source, but the mapping no longer fills `name`: another shape of staged row,
    // so no fingerprint of the last load can match.
    std::fs::write(&app.mapping, MAPPING.replace("name = \"name\"\n", "")).unwrap();
    let (_, again) = load(&app);
    assert_eq!(count(&again, "users", "unchanged_in_source"), 0);
    assert_eq!(count(&again, "users", "unchanged"), 3);
    assert_eq!(count(&again, "events", "unchanged_in_source"), 2);
}

#[test]
fn a_link_added_in_the_target_makes_the_junction_compared_in_full() {
    let app = App::new("unchanged_links", SCHEMA, LEGACY, MAPPING);
    load(&app);
    let (_, again) = load(&app);
    assert_eq!(count(&again, "attendees", "unchanged_in_source"), 3);
    // A link between two legacy rows the source does not have: the junction is compared in
    // full, and the link removed, as the source has the say over links between its rows.
    app.db.sql(
        "INSERT INTO attendees SELECT e.id, u.id FROM events e, users u WHERE e.legacy_id = '10' AND u.legacy_id = '3'",
    );
    let (_, after) = load(&app);
    assert_eq!(count(&after, "attendees", "unchanged_in_source"), 0);
    assert_eq!(count(&after, "attendees", "deleted"), 1);
    assert_eq!(app.db.one("SELECT count(*) FROM attendees"), "3");
    let (_, settled) = load(&app);
    assert_eq!(count(&settled, "attendees", "unchanged_in_source"), 3);
    // A junction whose row a link points at was rejected this run is compared in full.
    app.edit_source("UPDATE users SET email = NULL WHERE id = 1;");
    let (_, rejected) = load_with(&app, &["--max-rejects", "1"]);
    assert_eq!(count(&rejected, "users", "rejected"), 1);
    assert_eq!(count(&rejected, "attendees", "unchanged_in_source"), 0);
}
