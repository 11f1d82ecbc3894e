//! The load engine: the fresh-load path (tables empty at the start are written once, their
//! references judged only when some do not resolve), rows colliding on unique keys of the
//! target settled by the mapping's `on_duplicate` policies, and rows whose parent this same
//! run rejected.

use crate::app::App;
use crate::harness::{Db, write};

const SCHEMA: &str = "
    CREATE TABLE users (id integer PRIMARY KEY, legacy_id text UNIQUE, email text NOT NULL);
    CREATE UNIQUE INDEX users_email_lower ON users (lower(email));
    CREATE TABLE votes (id integer PRIMARY KEY, legacy_id text UNIQUE,
                        voter_id integer NOT NULL REFERENCES users, project integer NOT NULL,
                        CONSTRAINT votes_voter_project_key UNIQUE (voter_id, project));";

/// Users 1 and 3 share an email once lowercased; votes 10 and 12 the same (voter, project).
const LEGACY: &str = "
    CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT);
    INSERT INTO people VALUES (1, 'Ann@x.org'), (2, 'bob@x.org'), (3, 'ann@X.org'), (4, 'cy@x.org');
    CREATE TABLE ballots (id INTEGER PRIMARY KEY, voter INTEGER, project INTEGER);
    INSERT INTO ballots VALUES (10, 2, 7), (11, 2, 8), (12, 2, 7), (13, 4, 7);";

fn mapping(users_extra: &str, votes_extra: &str) -> String {
    format!(
        "[tables.users]\nfrom = \"people\"\nkeep_id = true\nlegacy_column = \"legacy_id\"\n{users_extra}\n\
         [tables.users.columns]\nemail = \"email\"\n\n\
         [tables.votes]\nfrom = \"ballots\"\nkeep_id = true\nlegacy_column = \"legacy_id\"\n{votes_extra}\n\
         [tables.votes.columns]\nvoter_id = {{ field = \"voter\", references = \"users\" }}\nproject = \"project\"\n"
    )
}

#[test]
fn every_colliding_unique_key_of_every_table_is_named_in_one_run() {
    let app = App::new("engine_dup_error", SCHEMA, LEGACY, &mapping("", ""));
    let schema = app.schema();
    let r = app.run_with("load", &[]);
    r.fails(1);
    let err = &r.stderr;
    // The expression key and the composite key, each with the legacy ids behind it.
    assert!(
        err.contains("users_email_lower (lower(email))=(ann@x.org): legacy ids 1, 3"),
        "{}",
        r.all()
    );
    assert!(
        err.contains("votes_voter_project_key (voter_id, project)=(2,7): legacy ids 10, 12"),
        "{}",
        r.all()
    );
    assert!(
        err.contains("on_duplicate = \"keep_first\"")
            && err.contains("[tables.users.on_duplicate_key]"),
        "the hint names the mapping keys: {}",
        r.all()
    );
    // Nothing committed, every constraint back as it was.
    assert_eq!(app.db.one("SELECT count(*) FROM users"), "0");
    assert_eq!(app.db.one("SELECT count(*) FROM votes"), "0");
    assert_eq!(app.schema(), schema);
}

#[test]
fn keep_first_and_keep_last_reject_the_others_and_count_them() {
    // keep_first for users (the table's policy); keep_last for the votes' composite key.
    let app = App::new(
        "engine_dup_keep",
        SCHEMA,
        LEGACY,
        &mapping(
            "on_duplicate = \"keep_first\"",
            "[tables.votes.on_duplicate_key]\n\"votes_voter_project_key\" = \"keep_last\"",
        ),
    );
    let schema = app.schema();
    // Two rejects: over --max-rejects 0, nothing is committed.
    app.run_with("load", &[]).fails(1);
    assert_eq!(app.db.one("SELECT count(*) FROM users"), "0");

    let rejects = app.db.dir.join("rejects.csv");
    let report = app.db.dir.join("report.json");
    let r = app.run_with(
        "load",
        &[
            "--max-rejects",
            "2",
            "--rejects",
            rejects.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    r.ok();
    assert_eq!(
        app.db
            .one("SELECT string_agg(legacy_id, ',' ORDER BY id) FROM users"),
        "1,2,4"
    );
    assert_eq!(
        app.db
            .one("SELECT string_agg(legacy_id, ',' ORDER BY id) FROM votes"),
        "11,12,13"
    );
    let csv = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        csv.contains("users,3,users_email_lower,(ann@x.org),")
            && csv.contains("legacy id 1, earlier in the source, is kept"),
        "{csv}"
    );
    assert!(
        csv.contains("votes,10,votes_voter_project_key,\"(2,7)\",")
            && csv.contains("legacy id 12, later in the source, is kept"),
        "{csv}"
    );
    assert_eq!(csv.matches(",duplicate_key,").count(), 2, "{csv}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let rejected: Vec<u64> = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["rejected"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, [1, 1], "{v}");
    assert!(r.stdout.contains("duplicate_key"), "{}", r.all());
    assert_eq!(app.schema(), schema, "every key and index is back");
    // A re-run converges on the same rows.
    app.run_with("load", &["--max-rejects", "2"]).ok();
    assert_eq!(app.db.one("SELECT count(*) FROM votes"), "3");
    app.run_with("verify", &[]).ok();
}

#[test]
fn a_new_source_row_colliding_with_a_target_row_is_settled_in_merge_mode() {
    let clean = "
        CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT);
        INSERT INTO people VALUES (1, 'ann@x.org'), (2, 'bob@x.org');
        CREATE TABLE ballots (id INTEGER PRIMARY KEY, voter INTEGER, project INTEGER);";
    let app = App::new("engine_dup_merge", SCHEMA, clean, &mapping("", ""));
    app.run_with("load", &[]).ok();
    // The source gains a person whose email collides with one the target already has.
    let conn = rusqlite::Connection::open(app.source.trim_start_matches("sqlite:")).unwrap();
    conn.execute_batch("INSERT INTO people VALUES (5, 'BOB@x.org');")
        .unwrap();
    let r = app.run_with("load", &[]);
    r.fails(1);
    assert!(
        r.stderr
            .contains("users_email_lower (lower(email))=(bob@x.org): legacy ids 2, 5"),
        "{}",
        r.all()
    );
    // keep_last cannot replace a row the load does not replace: the new row is rejected.
    write(
        &app.db.dir,
        "app.toml",
        &mapping("on_duplicate = \"keep_last\"", ""),
    );
    let rejects = app.db.dir.join("rejects.csv");
    app.run_with(
        "load",
        &["--max-rejects", "1", "--rejects", rejects.to_str().unwrap()],
    )
    .ok();
    assert_eq!(
        app.db
            .one("SELECT string_agg(legacy_id, ',' ORDER BY id) FROM users"),
        "1,2"
    );
    let csv = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        csv.contains("users,5,users_email_lower,(bob@x.org),")
            && csv.contains("the target already has a row with this key (legacy id 2)"),
        "{csv}"
    );
}

#[test]
fn duplicate_policies_are_checked_against_the_target() {
    let app = App::new(
        "engine_dup_check",
        SCHEMA,
        LEGACY,
        &mapping("on_duplicate = \"keep_some\"", ""),
    );
    let r = app.run_with("check", &[]);
    r.fails(2);
    assert!(
        r.stderr.contains("app.toml:5: tables.users.on_duplicate:")
            && r.stderr
                .contains("`keep_some` is not one of error, keep_first, keep_last"),
        "{}",
        r.all()
    );
    // A key the target does not have: found against the catalog, with its line.
    write(
        &app.db.dir,
        "app.toml",
        &mapping(
            "",
            "[tables.votes.on_duplicate_key]\n\"votes_voter_key\" = \"keep_last\"",
        ),
    );
    let r = app.run_with("check", &[]);
    r.fails(2);
    assert!(
        r.stderr
            .contains("app.toml:14: tables.votes.on_duplicate_key.votes_voter_key:")
            && r.stderr
                .contains("is not a unique key or unique index of `votes`")
            && r.stderr.contains("votes_voter_project_key"),
        "{}",
        r.all()
    );
}

#[test]
fn rows_whose_parent_was_rejected_are_rejected_as_such_and_counted() {
    // Person 2's email is missing (required below): rejected. Ballots 11 and 12 point at
    // person 2, ballot 13 at person 9 who is not in the source. Under on_missing = "skip"
    // the missing parent is a skip; the rejected parent is a counted reject.
    let legacy = "
        CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT);
        INSERT INTO people VALUES (1, 'ann@x.org'), (2, NULL), (3, 'cy@x.org');
        CREATE TABLE ballots (id INTEGER PRIMARY KEY, voter INTEGER, project INTEGER);
        INSERT INTO ballots VALUES (10, 1, 7), (11, 2, 7), (12, 2, 8), (13, 9, 7);";
    let m = mapping("", "")
        .replace(
            "email = \"email\"",
            "email = { field = \"email\", required = true }",
        )
        .replace(
            "references = \"users\" }",
            "references = \"users\", on_missing = \"skip\" }",
        );
    let app = App::new("engine_parent_rejected", SCHEMA, legacy, &m);
    let rejects = app.db.dir.join("rejects.csv");
    // 1 user + 2 votes rejected: over --max-rejects 2.
    let r = app.run_with("load", &["--max-rejects", "2"]);
    r.fails(1);
    assert!(r.stderr.contains("3 rows were rejected"), "{}", r.all());
    let report = app.db.dir.join("report.json");
    app.run_with(
        "load",
        &[
            "--max-rejects",
            "3",
            "--rejects",
            rejects.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    )
    .ok();
    let csv = std::fs::read_to_string(&rejects).unwrap();
    for id in ["11", "12"] {
        assert!(
            csv.contains(&format!(
                "votes,{id},voter_id,2,parent rejected: `users` legacy id 2 was rejected in this run"
            )),
            "{csv}"
        );
    }
    assert_eq!(csv.matches(",parent_rejected,").count(), 2, "{csv}");
    assert!(
        csv.contains("votes,13,voter_id,9,\"skipped: references `users` legacy id 9"),
        "{csv}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let votes = &v["tables"][1];
    assert_eq!(
        (votes["rejected"].as_u64(), votes["skipped"].as_u64()),
        (Some(2), Some(1)),
        "{v}"
    );
    assert_eq!(
        app.db.one("SELECT string_agg(legacy_id, ',') FROM votes"),
        "10"
    );
}

#[test]
fn a_failed_rebuild_after_the_fresh_load_rolls_everything_back() {
    // voter_id is mapped as a plain value, not a reference: vote 11's voter 9 is caught only
    // when the set-aside foreign key is rebuilt at the end.
    let m = mapping("", "").replace(
        "voter_id = { field = \"voter\", references = \"users\" }",
        "voter_id = \"voter\"",
    );
    let legacy = "
        CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT);
        INSERT INTO people VALUES (1, 'ann@x.org');
        CREATE TABLE ballots (id INTEGER PRIMARY KEY, voter INTEGER, project INTEGER);
        INSERT INTO ballots VALUES (10, 1, 7), (11, 9, 7);";
    let app = App::new("engine_rebuild_fails", SCHEMA, legacy, &m);
    let schema = app.schema();
    let r = app.run_with("load", &[]);
    r.fails(1);
    assert!(
        r.stderr.contains("votes_voter_id_fkey") && r.stderr.contains("Nothing was committed"),
        "{}",
        r.all()
    );
    assert_eq!(app.db.one("SELECT count(*) FROM users"), "0");
    assert_eq!(app.db.one("SELECT count(*) FROM votes"), "0");
    assert_eq!(app.schema(), schema, "every constraint is back");
}

#[test]
fn a_fresh_load_and_a_replace_give_the_same_target() {
    // The fixture has references that do not resolve under each policy: referrals' referrer
    // (null) and a vote's project (skip), so the fresh path judges the rows it held back.
    let db = Db::new("engine_fresh_replace");
    let report = db.dir.join("fresh.json");
    db.cutover("load", &["--report", report.to_str().unwrap()])
        .ok();
    let fresh = db.dump();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let r = db.cutover("load", &["--mode", "replace", "--verify"]);
    r.ok();
    assert_eq!(db.dump(), fresh);
    db.cutover("verify", &[]).ok();
    let counts = |v: &serde_json::Value| -> Vec<(String, u64, u64, u64, u64)> {
        v["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["table"].as_str().unwrap().to_string(),
                    t["inserted"].as_u64().unwrap(),
                    t["skipped"].as_u64().unwrap(),
                    t["nulled"].as_u64().unwrap(),
                    t["target"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let first = counts(&v);
    assert!(
        first.contains(&("referrals".to_string(), 5, 0, 1, 5)),
        "{first:?}"
    );
    assert!(
        first.contains(&("votes".to_string(), 24, 1, 0, 24)),
        "{first:?}"
    );
    let again = db.dir.join("replace.json");
    db.cutover(
        "load",
        &["--mode", "replace", "--report", again.to_str().unwrap()],
    )
    .ok();
    let v2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    assert_eq!(counts(&v2), first);
}

/// A legacy id repeated in the source, loaded into an empty table whose legacy column is
/// UNIQUE (the key is put back right after the write, and only its failure sends the load
/// looking for the repeats) and into one where nothing guards it (searched up front): either
/// way the first row stays, the repeat is a `duplicate_legacy_id` reject, and the rest loads.
/// The legacy column is numeric, whose equal values the convert stage cannot tell apart by
/// their bytes, so it leaves the search to PostgreSQL.
#[test]
fn a_repeated_legacy_id_into_an_empty_table_keeps_the_first_row_whether_or_not_a_key_guards_it() {
    let legacy = "
        CREATE TABLE people (id INTEGER, email TEXT);
        INSERT INTO people VALUES (1, 'ann@x.org'), (2, 'bob@x.org'), (1, 'ann2@x.org'), (3, 'cy@x.org');";
    let mapping = "[tables.users]\nfrom = \"people\"\nlegacy_id = \"id\"\nlegacy_column = \"legacy_id\"\n\
                   [tables.users.columns]\nemail = \"email\"\n";
    for (name, unique) in [("dup_guarded", "UNIQUE"), ("dup_unguarded", "")] {
        let schema = format!(
            "CREATE TABLE users (id bigserial PRIMARY KEY, legacy_id numeric {unique}, email text NOT NULL);"
        );
        let app = App::new(name, &schema, legacy, mapping);
        let rejects = app.db.dir.join("rejects.csv");
        let run = app.run_with(
            "load",
            &["--max-rejects", "1", "--rejects", rejects.to_str().unwrap()],
        );
        run.ok();
        assert_eq!(
            app.db.one(
                "SELECT string_agg(legacy_id || ' ' || email, ', ' ORDER BY legacy_id) FROM users"
            ),
            "1 ann@x.org, 2 bob@x.org, 3 cy@x.org",
            "{name}"
        );
        let csv = std::fs::read_to_string(&rejects).unwrap();
        assert_eq!(
            csv.matches(",duplicate_legacy_id,").count(),
            1,
            "{name}: {csv}"
        );
        // A UNIQUE key is put back whole.
        if !unique.is_empty() {
            assert_eq!(
                app.db.one(
                    "SELECT count(*) FROM pg_constraint WHERE conrelid = 'users'::regclass AND contype = 'u'"
                ),
                "1"
            );
        }
    }
}
