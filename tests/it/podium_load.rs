//! The Podium fixture loaded end to end: exact counts, resolved references, sequences,
//! idempotent re-runs, convergence, dry-run and failure atomicity.

use crate::harness::{Db, cell, run, sql, tcp_port, write};

fn counts(db: &Db) -> Vec<(String, String)> {
    [
        "users",
        "events",
        "event_attendees",
        "projects",
        "project_collaborators",
        "referrals",
        "votes",
    ]
    .iter()
    .map(|t| (t.to_string(), db.one(&format!("SELECT count(*) FROM {t}"))))
    .collect()
}

fn expected_counts() -> Vec<(String, String)> {
    [
        ("users", "14"),
        ("events", "4"),
        ("event_attendees", "16"),
        ("projects", "9"),
        ("project_collaborators", "10"),
        ("referrals", "5"),
        ("votes", "24"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

#[test]
fn loads_exact_counts_and_values() {
    let db = Db::new("exact_counts");
    let rejects = db.dir.join("rejects.csv");
    let report = db.dir.join("report.json");
    let r = db.cutover(
        "load",
        &[
            "--rejects",
            rejects.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    r.ok();
    assert!(r.stdout.contains("committed."), "{}", r.all());
    assert_eq!(counts(&db), expected_counts());

    // Ids are kept, gaps and all, and the legacy id is kept beside them.
    assert_eq!(
        db.one("SELECT string_agg(id::text, ',' ORDER BY id) FROM users"),
        "1,2,3,5,8,9,11,12,14,17,18,19,21,24"
    );
    assert_eq!(
        db.one("SELECT count(*) FROM users WHERE airtable_id = id::text"),
        "14"
    );
    // Messy values, per fixtures/podium/EXPECTED.md.
    assert_eq!(
        db.one("SELECT email FROM users WHERE id = 5"),
        "alice.smith@example.com"
    );
    assert_eq!(
        db.one("SELECT created_at AT TIME ZONE 'UTC' FROM users WHERE id = 3"),
        "2024-03-01 10:00:00"
    );
    assert_eq!(
        db.one("SELECT hours_spent::text FROM projects WHERE id = 3"),
        "4.3"
    );
    assert_eq!(
        db.one("SELECT count(*) FROM projects WHERE status = 'submitted'"),
        "5"
    );
    assert_eq!(
        db.one("SELECT jsonb_typeof(tags) FROM projects WHERE id = 1"),
        "array"
    );
    assert_eq!(
        db.one("SELECT created_at AT TIME ZONE 'UTC' FROM events WHERE id = 2"),
        "2024-09-22 10:13:20.123"
    );
    assert_eq!(
        db.one("SELECT max_votes_per_user FROM events WHERE id = 2"),
        "3"
    );
    // NULL and '' stay distinct.
    assert_eq!(
        db.one("SELECT count(*) FROM users WHERE phone IS NULL"),
        "5"
    );
    assert_eq!(db.one("SELECT count(*) FROM users WHERE phone = ''"), "2");

    // Every reference resolved or reported: one referrer set to NULL, one vote skipped.
    assert_eq!(
        db.one("SELECT count(*) FROM referrals WHERE referrer_id IS NULL"),
        "1"
    );
    assert_eq!(
        db.one("SELECT count(*) FROM votes WHERE airtable_id = '17'"),
        "0"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let table = |name: &str| {
        json["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(table("referrals")["nulled"], 1);
    assert_eq!(table("votes")["skipped"], 1);
    assert_eq!(table("votes")["read"], 25);
    assert_eq!(table("votes")["target"], 24);
    let csv = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        csv.contains("votes,17,project_id,5,\"skipped: references `projects` legacy id 5"),
        "{csv}"
    );
}

#[test]
fn application_can_insert_into_every_table_afterwards() {
    let db = Db::new("insert_after");
    db.cutover("load", &[]).ok();
    // No id given: each must come from a sequence or identity that was moved past the load.
    db.sql("INSERT INTO users (email) VALUES ('new@example.com')");
    assert_eq!(db.one("SELECT max(id) FROM users"), "25");
    db.sql("INSERT INTO events (name, slug, owner_id) VALUES ('New', 'new', 1)");
    assert_eq!(db.one("SELECT max(id) FROM events"), "8");
    db.sql("INSERT INTO projects (name, owner_id, event_id) VALUES ('P', 1, 1)");
    assert_eq!(db.one("SELECT max(id) FROM projects"), "14");
    db.sql("INSERT INTO referrals (user_id, event_id) VALUES (1, 1)");
    assert_eq!(db.one("SELECT max(id) FROM referrals"), "7");
    db.sql("INSERT INTO votes (voter_id, project_id, event_id) VALUES (25, 14, 1)");
    assert_eq!(db.one("SELECT max(id) FROM votes"), "31");
    db.sql("INSERT INTO event_attendees VALUES (8, 25)");
    db.sql("INSERT INTO project_collaborators VALUES (14, 25)");
}

#[test]
fn empty_table_sequence_is_reset_too() {
    let db = Db::new("empty_seq");
    db.edit_sqlite("DELETE FROM votes;");
    // Advance the sequence as an earlier attempt would have.
    db.sql("SELECT setval(pg_get_serial_sequence('votes', 'id'), 500)");
    db.cutover("load", &[]).ok();
    db.sql("INSERT INTO votes (voter_id, project_id, event_id) VALUES (1, 1, 1)");
    assert_eq!(db.one("SELECT max(id) FROM votes"), "1");
}

#[test]
fn second_load_changes_nothing() {
    let db = Db::new("second_load");
    db.cutover("load", &[]).ok();
    let before = db.dump();
    let stats = db.tuple_stats();
    let r = db.cutover("load", &["--prune"]);
    r.ok();
    assert_eq!(db.dump(), before);
    let after = db.tuple_stats();
    assert_eq!(
        after, stats,
        "a no-change re-run wrote tuples (ins, upd, del): {stats:?} -> {after:?}"
    );
    let users: Vec<Option<String>> = ["read", "inserted", "updated", "unchanged", "deleted"]
        .iter()
        .map(|c| cell(&r.stdout, "users", c))
        .collect();
    let expected: Vec<Option<String>> = ["14", "0", "0", "14", "0"]
        .iter()
        .map(|n| Some(n.to_string()))
        .collect();
    assert_eq!(users, expected, "{}", r.stdout);
}

#[test]
fn replace_twice_gives_the_same_target() {
    let db = Db::new("replace_twice");
    db.cutover("load", &["--mode", "replace"]).ok();
    let first = db.dump();
    db.cutover("load", &["--mode", "replace"]).ok();
    assert_eq!(db.dump(), first);
    assert_eq!(counts(&db), expected_counts());
}

#[test]
fn changed_source_converges() {
    let db = Db::new("converges");
    db.cutover("load", &[]).ok();
    // An app row created after cutover (no legacy id) must survive everything below.
    db.sql("INSERT INTO users (email, display_name) VALUES ('app-made@example.com', 'App')");
    db.edit_sqlite(
        "INSERT INTO people (id, email, name, is_admin, created) VALUES (30, 'zed@example.com', 'Zed', 0, 1700000000);
         UPDATE people SET name = 'Bob Renamed' WHERE id = 2;
         DELETE FROM votes WHERE id = 30;
         DELETE FROM event_people WHERE event = 1 AND person = 2;
         INSERT INTO project_people VALUES (1, 30);",
    );
    let r = db.cutover("load", &["--prune"]);
    r.ok();
    assert_eq!(
        db.one("SELECT display_name FROM users WHERE id = 2"),
        "Bob Renamed"
    );
    assert_eq!(db.one("SELECT count(*) FROM users WHERE id = 30"), "1");
    assert_eq!(db.one("SELECT count(*) FROM votes WHERE id = 30"), "0");
    assert_eq!(
        db.one("SELECT count(*) FROM event_attendees WHERE event_id = 1 AND user_id = 2"),
        "0"
    );
    assert_eq!(
        db.one("SELECT count(*) FROM project_collaborators WHERE project_id = 1 AND user_id = 30"),
        "1"
    );
    assert_eq!(db.one("SELECT count(*) FROM users WHERE email = 'app-made@example.com' AND airtable_id IS NULL"), "1");

    // The result equals a fresh load of the changed source (the app row aside).
    db.sql("DELETE FROM users WHERE airtable_id IS NULL");
    let fresh = Db::new("converges_fresh");
    std::fs::copy(db.sqlite(), fresh.sqlite()).unwrap();
    fresh.cutover("load", &[]).ok();
    let strip_seqs = |d: String| {
        d.lines()
            .filter(|l| !l.starts_with("seq "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip_seqs(db.dump()), strip_seqs(fresh.dump()));
    // And verify agrees.
    db.cutover("verify", &[]).ok();
}

#[test]
fn dry_run_leaves_the_target_unchanged() {
    let db = Db::new("dry_run");
    let empty = db.dump();
    let r = db.cutover("load", &["--dry-run"]);
    r.ok();
    assert!(r.stdout.contains("rolled back"), "{}", r.all());
    // The dry run reports the same figures a real load would.
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("votes") && l.contains(" 24")),
        "{}",
        r.stdout
    );
    assert_eq!(db.dump(), empty);

    db.cutover("load", &[]).ok();
    db.edit_sqlite(
        "UPDATE people SET name = 'Changed' WHERE id = 1; DELETE FROM votes WHERE id = 1;",
    );
    let loaded = db.dump();
    db.cutover("load", &["--dry-run", "--prune", "--mode", "merge"])
        .ok();
    assert_eq!(db.dump(), loaded);
    db.cutover("load", &["--dry-run", "--mode", "replace"]).ok();
    assert_eq!(db.dump(), loaded);
}

#[test]
fn rejects_over_the_limit_commit_nothing() {
    let db = Db::new("rejects");
    db.edit_sqlite("UPDATE people SET created = 'not a date' WHERE id = 8; UPDATE projects SET state = 'X' WHERE id = 2;");
    let before = db.dump();
    let rejects = db.dir.join("rejects.csv");
    let r = db.cutover("load", &["--rejects", rejects.to_str().unwrap()]);
    r.fails(1);
    assert!(
        r.stderr.contains("more than --max-rejects 0"),
        "{}",
        r.all()
    );
    assert_eq!(
        db.dump(),
        before,
        "a failed load must leave the target unchanged"
    );
    let csv = std::fs::read_to_string(&rejects).unwrap();
    assert!(csv.contains("users,8,created_at,"), "{csv}");
    assert!(csv.contains("projects,2,status,"), "{csv}");

    // Within the limit the rest loads; the rejected rows (and what depends on them) are
    // left out and listed.
    let r = db.cutover(
        "load",
        &[
            "--max-rejects",
            "14",
            "--rejects",
            rejects.to_str().unwrap(),
        ],
    );
    let csv = std::fs::read_to_string(&rejects).unwrap();
    // User 8 and projects 2 and 3 are rejected, so the rows pointing at them are rejected
    // too as `parent_rejected`, whatever their policy (votes skip a missing project, but a
    // rejected one counts): 14 rejects in all.
    r.ok();
    assert!(r.stdout.contains("committed."), "{}", r.all());
    assert_eq!(db.one("SELECT count(*) FROM users"), "13");
    assert_eq!(db.one("SELECT count(*) FROM projects"), "7");
    assert_eq!(db.one("SELECT count(*) FROM votes"), "16");
    assert!(
        csv.contains("projects,3,owner_id,8,parent rejected: `users` legacy id 8 was rejected"),
        "{csv}"
    );
    assert!(
        csv.contains("event_attendees,event_id=1 user_id=8,user_id,8,"),
        "{csv}"
    );
    assert!(
        csv.contains("votes,") && csv.contains(",parent_rejected,"),
        "{csv}"
    );
    assert_eq!(
        csv.lines().filter(|l| !l.contains("skipped:")).count(),
        1 + 14,
        "{csv}"
    );
}

#[test]
fn constraint_violation_is_reported_and_nothing_committed() {
    let db = Db::new("constraint");
    // Two people whose emails are equal once trimmed and lowercased: the unique index on
    // lower(email) refuses the second.
    db.edit_sqlite("UPDATE people SET email = 'ADMIN@podium.dev ' WHERE id = 2;");
    let before = db.dump();
    let r = db.cutover("load", &[]);
    r.fails(1);
    assert!(r.stderr.contains("users"), "{}", r.all());
    assert!(
        r.stderr.contains("admin@podium.dev"),
        "PostgreSQL's DETAIL names the key: {}",
        r.all()
    );
    assert_eq!(db.dump(), before);
}

#[test]
fn percent_encoded_password_works_and_is_never_printed() {
    let db = Db::new("password");
    let password = "k+le,U2kG1Gb0cp_";
    db.sql(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'appuser') THEN CREATE ROLE appuser LOGIN PASSWORD '{password}'; END IF; END $$;
         GRANT ALL ON ALL TABLES IN SCHEMA public TO appuser;
         GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO appuser;
         GRANT ALL ON DATABASE \"{}\" TO appuser;",
        db.name
    ));
    let url = format!(
        "postgresql+psycopg2://appuser:k%2Ble%2CU2kG1Gb0cp_@127.0.0.1:{}/{}?sslmode=disable",
        tcp_port(),
        db.name
    );
    let r = db.cutover_at(&url, "load", &[]);
    r.ok();
    assert_eq!(db.one("SELECT count(*) FROM votes"), "24");
    // appuser does not own the tables, so it cannot set constraints aside: same load, slower.
    // The reason is wrapped to the terminal's width: read it as one line.
    let words = r.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("not possible") && words.contains("must be owner"),
        "{}",
        r.all()
    );
    for secret in [password, "k%2Ble%2CU2kG1Gb0cp_"] {
        assert!(!r.all().contains(secret), "password printed: {}", r.all());
    }
    // A wrong password: a clear message, exit 3, no password in it.
    let bad = url.replace("k%2Ble", "wrong");
    let r = db.cutover_at(&bad, "load", &[]);
    r.fails(3);
    assert!(
        r.stderr.contains("password authentication failed"),
        "{}",
        r.all()
    );
    assert!(!r.all().contains("wrongU2kG1Gb0cp_"), "{}", r.all());
    // Through DATABASE_URL too.
    let mapping = crate::harness::repo().join("mappings/podium-sqlite.toml");
    let source = format!("sqlite:{}", db.sqlite().display());
    let r = crate::harness::run_env(
        &[
            "verify",
            "-m",
            mapping.to_str().unwrap(),
            "--source",
            &source,
        ],
        &[("DATABASE_URL", &url)],
    );
    r.ok();
    assert!(!r.all().contains(password));
}

#[test]
fn verify_catches_differences() {
    let db = Db::new("verify");
    db.cutover("load", &[]).ok();
    db.cutover("verify", &[]).ok();
    db.sql("UPDATE users SET display_name = 'tampered' WHERE id = 1; DELETE FROM votes WHERE id = 2; INSERT INTO events (airtable_id, name, slug, owner_id) VALUES ('999', 'x', 'x', 1);");
    let r = db.cutover("verify", &[]);
    r.fails(1);
    let out = r.all();
    assert!(out.contains("users: 1 differ"), "{out}");
    assert!(out.contains("votes: 0 differ, 1 missing"), "{out}");
    assert!(
        out.contains("events: 0 differ, 0 missing, 1 extra"),
        "{out}"
    );
    // verify changed nothing.
    assert_eq!(
        db.one("SELECT display_name FROM users WHERE id = 1"),
        "tampered"
    );
}

#[test]
fn scratch_target_runs_the_demo() {
    let repo = crate::harness::repo();
    let dir = std::env::temp_dir().join(format!("cutover-scratch-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("podium.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&std::fs::read_to_string(repo.join("fixtures/podium/legacy.sql")).unwrap())
        .unwrap();
    drop(conn);
    let source = format!("sqlite:{}", db.display());
    let r = run(&[
        "load",
        "-m",
        "mappings/podium-sqlite.toml",
        "--source",
        &source,
        "--target",
        "scratch",
        "--schema",
        "fixtures/podium/schema.sql",
    ]);
    r.ok();
    assert!(r.stdout.contains("committed."), "{}", r.all());
    assert!(
        r.stdout.contains("verify: the target matches the source."),
        "{}",
        r.all()
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = write;
    let _ = sql;
}

#[test]
fn expected_md_assertions_hold() {
    // fixtures/podium/EXPECTED.md §6 holds SQL assertions that must all return true.
    let text = std::fs::read_to_string(crate::harness::repo().join("fixtures/podium/EXPECTED.md"))
        .unwrap();
    let section = &text[text.find("## 6.").expect("EXPECTED.md has §6")..];
    let start = section.find("```sql").unwrap() + "```sql".len();
    let end = start + section[start..].find("```").unwrap();
    let block = &section[start..end];
    let db = Db::new("expected_md");
    db.cutover("load", &[]).ok();
    let rows = db.sql(block);
    assert!(
        rows.len() >= 15,
        "expected many assertion rows, got {}",
        rows.len()
    );
    for (i, row) in rows.iter().enumerate() {
        for cell in row {
            assert_eq!(
                cell.as_deref(),
                Some("t"),
                "assertion row {i} of EXPECTED.md §6 is false: {row:?}"
            );
        }
    }
}

#[test]
fn check_constraint_violation_names_the_source_rows() {
    let db = Db::new("check_violation");
    db.sql("ALTER TABLE votes ADD CONSTRAINT votes_points_positive CHECK (points > 0)");
    db.edit_sqlite("UPDATE votes SET points = 0 WHERE id IN (3, 8);");
    let r = db.cutover("load", &[]);
    r.fails(1);
    assert!(r.stderr.contains("votes_points_positive"), "{}", r.all());
    assert!(
        r.stderr.contains("source rows with legacy ids 3, 8"),
        "{}",
        r.all()
    );
    assert_eq!(
        db.one("SELECT count(*) FROM users"),
        "0",
        "nothing committed"
    );
}

#[test]
fn load_verify_fails_a_load_that_lands_differently() {
    let db = Db::new("load_verify");
    // A trigger that silently changes a value on the way in: only a row-by-row comparison
    // inside the load's transaction can catch it before it is committed.
    db.sql(
        "CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.display_name := upper(NEW.display_name); RETURN NEW; END $$;
         CREATE TRIGGER shout BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION shout();",
    );
    let r = db.cutover("load", &["--verify"]);
    r.fails(1);
    assert!(
        r.stderr.contains(
            "--verify: after loading, the target does not match the source (users: 12 differ"
        ),
        "{}",
        r.all()
    );
    assert_eq!(
        db.one("SELECT count(*) FROM users"),
        "0",
        "nothing committed"
    );
    db.sql("DROP TRIGGER shout ON users");
    let r = db.cutover("load", &["--verify"]);
    r.ok();
    assert!(r.stdout.contains("committed."), "{}", r.all());
}

fn schema_definitions(db: &Db) -> String {
    let cons = db.one("SELECT string_agg(d, E'\\n' ORDER BY d) FROM (SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE connamespace = 'public'::regnamespace) x");
    let idx = db.one("SELECT string_agg(indexdef, E'\\n' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public'");
    format!("{cons}\n{idx}")
}

#[test]
fn bulk_load_puts_every_constraint_and_index_back_exactly() {
    let db = Db::new("bulk_defs");
    let before = schema_definitions(&db);
    assert!(
        before.contains("FOREIGN KEY") && before.contains("ix_votes_"),
        "{before}"
    );
    let r = db.cutover("load", &[]);
    r.ok();
    assert!(
        r.stdout
            .contains("13 foreign keys, 14 primary/unique keys and 14 indexes")
            && r.stdout
                .contains("set aside and rebuilt inside the transaction"),
        "{}",
        r.all()
    );
    assert_eq!(schema_definitions(&db), before);
    // The same after a replace, and a merge into non-empty tables sets nothing aside.
    db.cutover("load", &["--mode", "replace"]).ok();
    assert_eq!(schema_definitions(&db), before);
    let r = db.cutover("load", &[]);
    assert!(!r.stdout.contains("set aside"), "{}", r.all());
}

#[test]
fn a_broken_foreign_key_fails_the_bulk_load_and_commits_nothing() {
    let db = Db::new("bulk_fk");
    // A column the mapping fills as a plain value (not through `references`) that points
    // nowhere: only the re-added foreign key can catch it.
    let text = std::fs::read_to_string(crate::harness::repo().join("mappings/podium-sqlite.toml"))
        .unwrap()
        .replace(
            "owner_id = { field = \"owner\", references = \"users\" }\nstarts_at",
            "owner_id = \"owner\"\nstarts_at",
        );
    let mapping = write(&db.dir, "plain-owner.toml", &text);
    db.edit_sqlite("UPDATE events SET owner = 999 WHERE id = 4;");
    let before = db.dump();
    let defs = schema_definitions(&db);
    let source = format!("sqlite:{}", db.sqlite().display());
    let r = run(&[
        "load",
        "-m",
        mapping.to_str().unwrap(),
        "--source",
        &source,
        "--target",
        &db.url,
    ]);
    r.fails(1);
    assert!(
        r.stderr.contains("events_owner_id_fkey") && r.stderr.contains("(owner_id)=(999)"),
        "{}",
        r.all()
    );
    assert_eq!(db.dump(), before);
    assert_eq!(
        schema_definitions(&db),
        defs,
        "a failed load leaves every constraint in place"
    );
}
