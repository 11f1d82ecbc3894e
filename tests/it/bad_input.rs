//! Bad input beyond cli_errors.rs: each is refused with a clear message and nothing written,
//! or (big values) loads exactly.

use crate::harness::{Db, run};

#[test]
fn truncated_sqlite_file_is_exit_3_with_the_file_named() {
    let db = Db::new("bad_truncated");
    let len = std::fs::metadata(db.sqlite()).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(db.sqlite())
        .unwrap();
    f.set_len(len / 2).unwrap();
    let before = db.dump();
    let r = db.cutover("load", &[]);
    r.fails(3);
    assert!(r.stderr.contains("legacy.sqlite"), "{}", r.all());
    assert!(!r.stderr.contains("panicked"), "{}", r.all());
    assert_eq!(db.dump(), before);
}

#[test]
fn connection_failures_each_say_what_is_wrong() {
    let db = Db::new("bad_conn");
    let source = format!("sqlite:{}", db.sqlite().display());
    let go = |url: &str| {
        run(&[
            "check",
            "-m",
            "mappings/podium-sqlite.toml",
            "--source",
            &source,
            "--target",
            url,
        ])
    };
    let missing = go(&db
        .url
        .replacen(&format!("/{}?", db.name), "/no_such_db?", 1));
    missing.fails(3);
    assert!(
        missing.stderr.contains("\"no_such_db\" does not exist"),
        "{}",
        missing.all()
    );
    let host = go("postgresql://u:pw@no-such-host.invalid/x");
    host.fails(3);
    assert!(
        host.stderr.contains("no-such-host.invalid"),
        "{}",
        host.all()
    );
    assert_ne!(host.stderr, missing.stderr);
}

#[test]
fn huge_and_awkward_values_load_or_are_rejected_by_name() {
    let db = Db::new("bad_values");
    // A 10 MB text value loads, byte for byte.
    db.edit_sqlite("UPDATE projects SET description = printf('%.10000000c', 'x') WHERE id = 1;");
    db.cutover("load", &[]).ok();
    assert_eq!(
        db.one("SELECT length(description) FROM projects WHERE id = 1"),
        "10000000"
    );
    // A NUL in text and an integer too big for the column: rejected, row and column named.
    db.edit_sqlite(
        "UPDATE people SET name = 'a' || char(0) || 'b' WHERE id = 2;
         UPDATE events SET max_votes = 99999999999999 WHERE id = 1;",
    );
    let before = db.dump();
    let rejects = db.dir.join("rejects.csv");
    let r = db.cutover("load", &["--rejects", rejects.to_str().unwrap()]);
    r.fails(1);
    let csv = std::fs::read_to_string(&rejects).unwrap();
    assert!(csv.contains("users,2,display_name,"), "{csv}");
    assert!(csv.contains("events,1,max_votes_per_user,"), "{csv}");
    assert_eq!(db.dump(), before);
}

#[test]
fn invalid_utf8_text_is_a_reject_naming_the_row() {
    let db = Db::new("bad_utf8");
    // Bob's name with a byte that is not UTF-8 (SQLite stores whatever it is given).
    db.edit_sqlite("UPDATE people SET name = CAST(X'426F62FF' AS TEXT) WHERE id = 2;");
    let before = db.dump();
    let rejects = db.dir.join("rejects.csv");
    let r = db.cutover("load", &["--rejects", rejects.to_str().unwrap()]);
    r.fails(1);
    let csv = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        csv.contains("users,2,display_name,") && csv.contains("invalid UTF-8"),
        "{csv}"
    );
    assert_eq!(db.dump(), before, "nothing committed");
}

#[test]
fn a_locked_sqlite_database_is_waited_for_then_read() {
    let db = Db::new("locked_sqlite");
    // Another process holds a write lock for a moment, as the old application might.
    let path = db.sqlite();
    let locker = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE; UPDATE people SET name = name WHERE id = 1;")
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        conn.execute_batch("COMMIT").unwrap();
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    let r = db.cutover("load", &[]);
    locker.join().unwrap();
    r.ok();
    assert_eq!(db.one("SELECT count(*) FROM votes"), "24");
}
