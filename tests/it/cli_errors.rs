//! Bad input gets a clear error naming where, the documented exit code, and nothing written.

use crate::harness::{Db, repo, run, write};

#[test]
fn broken_mapping_is_exit_2_with_file_and_line() {
    let db = Db::new("broken_mapping");
    let text = std::fs::read_to_string(repo().join("mappings/podium-sqlite.toml"))
        .unwrap()
        .replace(
            "email = { field = \"email\",",
            "email = { feild = \"email\",",
        )
        .replace(
            "references = \"projects\", on_missing",
            "references = \"project\", on_missing",
        );
    let m = write(&db.dir, "bad.toml", &text);
    let source = format!("sqlite:{}", db.sqlite().display());
    let before = db.dump();
    let r = run(&[
        "load",
        "-m",
        m.to_str().unwrap(),
        "--source",
        &source,
        "--target",
        &db.url,
    ]);
    r.fails(2);
    let err = &r.stderr;
    assert!(
        err.contains(
            "bad.toml:28: tables.users.columns.email.feild: unknown key (did you mean `field`?)"
        ),
        "{err}"
    );
    assert!(
        err.contains("`project` is not a mapped table (did you mean `projects`?)"),
        "{err}"
    );
    assert_eq!(db.dump(), before);
}

#[test]
fn check_reports_target_drift_before_writing() {
    let db = Db::new("drift");
    db.sql("ALTER TABLE users RENAME COLUMN phone TO phone_number; ALTER TABLE events ADD COLUMN venue text NOT NULL;");
    let r = db.cutover("check", &[]);
    r.fails(2);
    let err = &r.stderr;
    assert!(
        err.contains(
            "tables.users.columns.phone: column `phone` does not exist in target table `users`"
        ),
        "{err}"
    );
    assert!(err.contains("target column `events.venue` is NOT NULL with no default, and nothing in the mapping fills it"), "{err}");
    // load refuses just the same, before writing anything.
    db.cutover("load", &[]).fails(2);
    assert_eq!(db.one("SELECT count(*) FROM users"), "0");
}

#[test]
fn check_finds_values_the_target_cannot_hold() {
    let db = Db::new("check_values");
    db.edit_sqlite("UPDATE events SET slug = printf('%.200c', 'x') WHERE id = 1; UPDATE people SET is_admin = 'maybe' WHERE id = 2;");
    let r = db.cutover("check", &[]);
    r.fails(1);
    assert!(
        r.stdout.contains("1 × events.slug, convert (legacy id 1)"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout
            .contains("1 × users.is_admin, convert (legacy id 2)"),
        "{}",
        r.all()
    );
    db.cutover("check", &[]).fails(1);
    let ok = Db::new("check_ok");
    let r = ok.cutover("check", &[]);
    r.ok();
    assert!(r.stdout.contains("1. users <- people"), "{}", r.all());
    assert!(r.stdout.contains("7. votes <- votes"), "{}", r.all());
}

#[test]
fn expect_revision_mismatch_is_exit_2() {
    let db = Db::new("revision");
    db.sql("UPDATE alembic_version SET version_num = 'ffff0000'");
    let r = db.cutover("load", &[]);
    r.fails(2);
    assert!(
        r.stderr
            .contains("Alembic revision ffff0000, but the mapping expects a1b2c3d4e5f6"),
        "{}",
        r.all()
    );
    assert_eq!(db.one("SELECT count(*) FROM users"), "0");
}

#[test]
fn unreachable_target_is_exit_3() {
    let db = Db::new("unreachable");
    let source = format!("sqlite:{}", db.sqlite().display());
    let r = run(&[
        "load",
        "-m",
        "mappings/podium-sqlite.toml",
        "--source",
        &source,
        "--target",
        "postgresql://u:secretpw@127.0.0.1:1/x",
    ]);
    r.fails(3);
    assert!(!r.all().contains("secretpw"), "{}", r.all());
    assert!(r.stderr.to_lowercase().contains("refused"), "{}", r.all());
}

#[test]
fn bad_sources_are_exit_3_with_the_file_named() {
    let db = Db::new("bad_source");
    let junk = write(
        &db.dir,
        "junk.sqlite",
        "this is not a database, just text that is long enough to have a header",
    );
    let r = run(&[
        "load",
        "-m",
        "mappings/podium-sqlite.toml",
        "--source",
        &format!("sqlite:{}", junk.display()),
        "--target",
        &db.url,
    ]);
    r.fails(3);
    assert!(r.stderr.contains("junk.sqlite"), "{}", r.all());
    assert!(r.stderr.contains("not a SQLite database"), "{}", r.all());
    let r = run(&[
        "load",
        "-m",
        "mappings/podium-sqlite.toml",
        "--source",
        "sqlite:/nonexistent/x.db",
        "--target",
        &db.url,
    ]);
    r.fails(3);
    assert!(
        r.stderr.contains("/nonexistent/x.db does not exist"),
        "{}",
        r.all()
    );
    // A missing source table: named, with the closest real one.
    db.edit_sqlite("ALTER TABLE votes RENAME TO vote;");
    let r = db.cutover("load", &[]);
    r.fails(2);
    assert!(
        r.stderr
            .contains("source table `votes` does not exist (did you mean `vote`?)"),
        "{}",
        r.all()
    );
}

#[test]
fn usage_errors_are_exit_2() {
    let r = run(&["load", "-m", "mappings/podium-sqlite.toml"]);
    r.fails(2);
    assert!(r.stderr.contains("no target database"), "{}", r.all());
    let r = run(&[
        "load",
        "-m",
        "mappings/podium-sqlite.toml",
        "--target",
        "scratch",
    ]);
    r.fails(2);
    assert!(
        r.stderr.contains("--target scratch needs --schema"),
        "{}",
        r.all()
    );
    let r = run(&["load", "-m", "mappings/nope.toml", "--target", "scratch"]);
    r.fails(2);
    let r = run(&[
        "load",
        "-m",
        "mappings/podium-sqlite.toml",
        "--source",
        "ftp:x",
        "--target",
        "postgresql://localhost/x",
    ]);
    r.fails(2);
    assert!(r.stderr.contains("not a source"), "{}", r.all());
}
