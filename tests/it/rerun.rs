//! Re-runs after go-live: the application has been writing to the target since cutover's
//! first load. A re-run applies what the source changed, never silently undoes what the
//! application changed (a conflict, reported and resolved by `on_conflict`), never removes
//! a link because one link was mistyped or because it involves a row the application made,
//! and a `--prune` blocked by the application's rows names them and changes nothing.

use crate::app::App;
use crate::harness::cell;

/// The application schema both re-run suites load into.
pub(crate) const SCHEMA: &str = "
    CREATE TABLE users (id bigserial PRIMARY KEY, legacy_id text UNIQUE, email text NOT NULL, name text);
    CREATE TABLE events (id bigserial PRIMARY KEY, legacy_id text UNIQUE, title text,
                         owner_id bigint NOT NULL REFERENCES users (id));
    CREATE TABLE attendees (event_id bigint NOT NULL REFERENCES events (id),
                            user_id bigint NOT NULL REFERENCES users (id),
                            PRIMARY KEY (event_id, user_id));";

const LEGACY: &str = "
    CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT);
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
user_id = { field = "person", references = "users", on_missing = "skip" }
"#;

fn app(test: &str, mapping: &str) -> App {
    let app = App::new(test, SCHEMA, LEGACY, mapping);
    app.cutover("load").ok();
    app
}

#[test]
fn an_application_edit_survives_a_rerun_and_is_reported_as_a_conflict() {
    let app = app("rerun_conflict", MAPPING);
    // After go-live the application edits two migrated rows; the source changes one of the
    // same values, and another value of an unedited row.
    app.db.sql(
        "UPDATE users SET email = 'ann@new.example' WHERE legacy_id = '1';
         UPDATE users SET name = 'Robert' WHERE legacy_id = '2';",
    );
    app.edit_source(
        "UPDATE users SET email = 'ann@source.example' WHERE id = 1;
         UPDATE users SET name = 'Cyrus' WHERE id = 3;",
    );
    let dir = app.db.dir.clone();
    let report = dir.join("rerun.json");
    let rejects = dir.join("rejects.csv");
    let out = app.run_with(
        "load",
        &[
            "--report",
            report.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
        ],
    );
    out.ok();
    // The application's edits stand; the source's change to the unedited row is applied.
    assert_eq!(
        app.db
            .one("SELECT string_agg(legacy_id || ' ' || email || ' ' || name, ', ' ORDER BY legacy_id) FROM users"),
        "1 ann@new.example Ann, 2 bob@x.org Robert, 3 cy@x.org Cyrus"
    );
    assert_eq!(cell(&out.stdout, "users", "updated").as_deref(), Some("1"));
    assert_eq!(
        cell(&out.stdout, "users", "conflicts").as_deref(),
        Some("1")
    );
    let flat = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("users.email (legacy id 1): application 'ann@new.example', source 'ann@source.example' (kept)"),
        "{}",
        out.stdout
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["conflicts"]["total"], 1);
    assert_eq!(v["conflicts"]["kept"], 1);
    let c = &v["conflicts"]["examples"][0];
    assert_eq!(
        (
            &c["table"],
            &c["legacy_id"],
            &c["column"],
            &c["application"],
            &c["source"],
            &c["resolution"]
        ),
        (
            &"users".into(),
            &"1".into(),
            &"email".into(),
            &"ann@new.example".into(),
            &"ann@source.example".into(),
            &"kept".into()
        )
    );
    let csv = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("users,1,email,'ann@new.example',")
                && l.contains("source 'ann@source.example'")
                && l.ends_with(",conflict_kept,users")),
        "{csv}"
    );
    // The conflict stands until it is resolved: the next run reports it again and writes
    // nothing.
    let stats = app.db.tuple_stats();
    let again = app.run_with("load", &[]);
    again.ok();
    assert_eq!(
        app.db.tuple_stats(),
        stats,
        "a re-run with nothing new wrote rows"
    );
    assert_eq!(
        cell(&again.stdout, "users", "conflicts").as_deref(),
        Some("1")
    );
}

#[test]
fn on_conflict_overwrite_takes_the_source_value() {
    let app = app(
        "rerun_overwrite",
        &MAPPING.replace(
            "email = \"email\"",
            "email = { field = \"email\", on_conflict = \"overwrite\" }",
        ),
    );
    app.db
        .sql("UPDATE users SET email = 'ann@new.example', name = 'Annie' WHERE legacy_id = '1'");
    app.edit_source("UPDATE users SET email = 'ann@source.example', name = 'Anna' WHERE id = 1");
    let out = app.run_with("load", &[]);
    out.ok();
    // email overwrites, name (the table's default policy) keeps the application's value.
    assert_eq!(
        app.db
            .one("SELECT email || ' ' || name FROM users WHERE legacy_id = '1'"),
        "ann@source.example Annie"
    );
    assert_eq!(
        cell(&out.stdout, "users", "conflicts").as_deref(),
        Some("2")
    );
    assert!(out.stdout.contains("(overwritten)"), "{}", out.stdout);
    assert!(out.stdout.contains("(kept)"), "{}", out.stdout);
    // Resolved: the next run has nothing to say about email.
    let again = app.run_with("load", &[]);
    again.ok();
    assert_eq!(
        cell(&again.stdout, "users", "conflicts").as_deref(),
        Some("1")
    );
    assert!(!again.stdout.contains("users.email"), "{}", again.stdout);
}

#[test]
fn a_no_change_rerun_writes_nothing_and_counts_every_row_unchanged() {
    let app = app("rerun_no_change", MAPPING);
    // An application edit the source never touched is no conflict and is left alone.
    app.db
        .sql("UPDATE events SET title = 'Kick-off!' WHERE legacy_id = '10'");
    let stats = app.db.tuple_stats();
    let out = app.run_with("load", &[]);
    out.ok();
    assert_eq!(app.db.tuple_stats(), stats, "a no-change re-run wrote rows");
    for (table, n) in [("users", "3"), ("events", "2"), ("attendees", "3")] {
        assert_eq!(
            cell(&out.stdout, table, "unchanged").as_deref(),
            Some(n),
            "{table}"
        );
        assert_eq!(cell(&out.stdout, table, "updated").as_deref(), Some("0"));
        assert_eq!(cell(&out.stdout, table, "inserted").as_deref(), Some("0"));
    }
    assert!(!out.stdout.contains("conflicts"), "{}", out.stdout);
    assert!(out.stdout.contains("nothing to do"), "{}", out.stdout);
    assert_eq!(
        app.db
            .one("SELECT title FROM events WHERE legacy_id = '10'"),
        "Kick-off!"
    );
    // No table or other object was added to the target for it.
    let schema = app.schema();
    app.run_with("load", &[]).ok();
    assert_eq!(app.schema(), schema);
    // The record those runs carried over still tells the two sides apart: a source change
    // to another value of the edited row is applied, the application's title stays.
    app.edit_source("UPDATE events SET owner = 3 WHERE id = 10");
    let out = app.run_with("load", &[]);
    out.ok();
    assert_eq!(cell(&out.stdout, "events", "updated").as_deref(), Some("1"));
    assert_eq!(
        app.db.one(
            "SELECT e.title || ' ' || u.legacy_id FROM events e JOIN users u ON u.id = e.owner_id WHERE e.legacy_id = '10'"
        ),
        "Kick-off! 3"
    );
}

#[test]
fn without_a_record_differing_values_are_kept_and_it_says_so() {
    let app = app("rerun_no_record", MAPPING);
    app.db
        .sql("UPDATE users SET name = 'Robert' WHERE legacy_id = '2'");
    // The record is lost (or this target was loaded some other way).
    std::fs::remove_dir_all(app.db.dir.join("app.cutover-state")).unwrap();
    let out = app.run_with("load", &[]);
    out.ok();
    assert!(
        out.stdout
            .contains("note: no record of an earlier load into this target"),
        "{}",
        out.stdout
    );
    assert_eq!(
        app.db.one("SELECT name FROM users WHERE legacy_id = '2'"),
        "Robert"
    );
    assert_eq!(
        cell(&out.stdout, "users", "conflicts").as_deref(),
        Some("1")
    );
    // That run wrote a record again: now a source change to an unedited row applies.
    app.edit_source("UPDATE users SET name = 'Annabel' WHERE id = 1");
    app.run_with("load", &[]).ok();
    assert_eq!(
        app.db.one("SELECT name FROM users WHERE legacy_id = '1'"),
        "Annabel"
    );
}

#[test]
fn a_mistyped_link_never_removes_the_link_it_meant() {
    let app = app("rerun_link_typo", MAPPING);
    // Event 10's attendee 2 is mistyped as 22 (no such person): that row is skipped, and
    // the existing link (10, 2) stays; event 11's link to 3 is really gone and is removed.
    app.edit_source(
        "UPDATE attendees SET person = 22 WHERE event = 10 AND person = 2;
         DELETE FROM attendees WHERE event = 11;
         INSERT INTO attendees VALUES (11, 1);",
    );
    let out = app.run_with("load", &[]);
    out.ok();
    assert_eq!(
        app.db.one(
            "SELECT string_agg(e.legacy_id || '-' || u.legacy_id, ' ' ORDER BY e.legacy_id, u.legacy_id)
               FROM attendees a JOIN events e ON e.id = a.event_id JOIN users u ON u.id = a.user_id"
        ),
        "10-1 10-2 11-1"
    );
    assert_eq!(
        cell(&out.stdout, "attendees", "skipped").as_deref(),
        Some("1")
    );
}

#[test]
fn a_link_to_a_row_the_application_created_survives_a_rerun() {
    let app = app("rerun_app_link", MAPPING);
    // A user who signed up after cutover (no legacy id) attends legacy event 10.
    app.db.sql(
        "INSERT INTO users (email, name) VALUES ('new@x.org', 'New');
         INSERT INTO attendees SELECT e.id, u.id FROM events e, users u
          WHERE e.legacy_id = '10' AND u.email = 'new@x.org';",
    );
    app.run_with("load", &[]).ok();
    app.run_with("load", &["--prune"]).ok();
    assert_eq!(
        app.db.one(
            "SELECT count(*) FROM attendees a JOIN users u ON u.id = a.user_id WHERE u.email = 'new@x.org'"
        ),
        "1"
    );
    assert_eq!(app.db.one("SELECT count(*) FROM attendees"), "4");
    // Nor does verify count it as a link extra to the source.
    app.cutover("verify").ok();
}

#[test]
fn a_prune_blocked_by_the_applications_rows_names_them_and_changes_nothing() {
    let app = app("rerun_prune_blocked", MAPPING);
    // The application gave legacy user 3 an event of its own; then user 3 and their
    // attendance leave the source, as does event 11 (which nothing else holds on to).
    app.db.sql(
        "INSERT INTO events (title, owner_id) SELECT 'Launch', id FROM users WHERE legacy_id = '3'",
    );
    app.edit_source(
        "DELETE FROM attendees WHERE person = 3 OR event = 11;
         DELETE FROM events WHERE id = 11;
         DELETE FROM users WHERE id = 3;",
    );
    let dump = || {
        app.db.one(
            "SELECT (SELECT string_agg(to_jsonb(u)::text, ' ' ORDER BY id) FROM users u) || ' | ' ||
                    (SELECT string_agg(to_jsonb(e)::text, ' ' ORDER BY id) FROM events e) || ' | ' ||
                    (SELECT string_agg(to_jsonb(a)::text, ' ' ORDER BY 1) FROM attendees a)",
        )
    };
    let before = dump();
    let out = app.run_with("load", &["--prune"]);
    out.fails(1);
    let err = out.stderr.clone();
    assert!(
        err.contains("table `users`: --prune cannot delete"),
        "{err}"
    );
    assert!(err.contains("legacy ids 3"), "{err}");
    let launch = app.db.one("SELECT id FROM events WHERE title = 'Launch'");
    assert!(
        err.contains(&format!(
            "1 row of `public.events` (owner_id -> events_owner_id_fkey), e.g. id={launch}"
        )),
        "{err}"
    );
    assert!(err.contains("running without --prune"), "{err}");
    assert!(!err.contains("violates foreign key"), "{err}");
    // All or nothing: event 11, which could have been pruned, is still there.
    assert_eq!(dump(), before);
    assert_eq!(
        app.db
            .one("SELECT count(*) FROM events WHERE legacy_id = '11'"),
        "1"
    );
}
