//! SQLite files that are not a whole, committed database: a copy taken with `cp` in the
//! middle of a write transaction (with and without its hot journal) and a file with a
//! damaged page. Each is refused before anything is read (exit 3, the file named, the way to
//! make a good copy said) and the target stays as it was.

use crate::harness::{Db, Run};
use std::path::{Path, PathBuf};

/// 50,000 committed rows in a table the mapping does not read, so that the file is large
/// and a long transaction over it spills.
const AUDIT: &str = "CREATE TABLE audit(id INTEGER PRIMARY KEY, v TEXT);
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 50000)
    INSERT INTO audit SELECT i, 'committed ' || i FROM c;";

fn journal(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-journal");
    PathBuf::from(p)
}

/// Copy a database the way a careless backup does: `cp` while the application is in the
/// middle of a long write transaction in rollback-journal mode. A small page cache makes
/// SQLite write changed pages into the main file before COMMIT (a "cache spill"), with the
/// originals kept in the journal, so the copy holds uncommitted pages. The transaction then
/// rolls back: none of it was ever committed.
fn torn_copy(db: &Db, with_journal: bool) {
    let live = db.build_sqlite("live.sqlite", &[AUDIT]);
    let conn = rusqlite::Connection::open(&live).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = DELETE;
         PRAGMA cache_size = 20;
         BEGIN;
         UPDATE people SET name = 'UNCOMMITTED ' || name;
         UPDATE audit SET v = 'uncommitted ' || id || printf('%.40c', 'x');
         INSERT INTO audit(v) SELECT 'new' FROM audit LIMIT 5000;",
    )
    .unwrap();
    assert!(journal(&live).exists(), "the transaction has a journal");
    std::fs::copy(&live, db.sqlite()).unwrap();
    let _ = std::fs::remove_file(journal(&db.sqlite()));
    if with_journal {
        std::fs::copy(journal(&live), journal(&db.sqlite())).unwrap();
    }
    conn.execute_batch("ROLLBACK").unwrap();
}

/// Refused: exit 3, the file named, how to copy a live database said, nothing loaded.
#[track_caller]
fn refused(db: &Db, r: &Run, before: &str, why: &str) {
    r.fails(3);
    assert!(
        r.stderr.contains("legacy.sqlite"),
        "names the file: {}",
        r.all()
    );
    assert!(r.stderr.contains(why), "says {why:?}: {}", r.all());
    assert!(
        r.stderr.contains(".backup") && r.stderr.contains("VACUUM INTO"),
        "says how to copy a live database: {}",
        r.all()
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.all());
    assert_eq!(db.dump(), before, "nothing was loaded");
}

#[test]
fn a_copy_taken_mid_transaction_without_its_journal_is_refused() {
    let db = Db::new("torn_no_journal");
    let before = db.dump();
    torn_copy(&db, false);
    let r = db.cutover("load", &[]);
    refused(&db, &r, &before, "quick_check");
    let r = db.cutover("check", &[]);
    refused(&db, &r, &before, "quick_check");
}

#[test]
fn a_copy_taken_mid_transaction_with_its_hot_journal_is_refused() {
    let db = Db::new("torn_hot_journal");
    let before = db.dump();
    torn_copy(&db, true);
    let r = db.cutover("load", &[]);
    refused(&db, &r, &before, "legacy.sqlite-journal");
    assert!(r.stderr.contains("hot journal"), "{}", r.all());
    // Refusing changed nothing: the journal is still there, unplayed.
    assert!(journal(&db.sqlite()).exists());
}

#[test]
fn a_file_with_a_damaged_page_is_refused_even_where_no_mapped_table_lives() {
    let db = Db::new("damaged_page");
    db.build_sqlite("legacy.sqlite", &[AUDIT]);
    let before = db.dump();
    // Zero one page in the middle of the file, as a bad sector or a botched copy does; it
    // belongs to `audit`, which the mapping never reads.
    let page = 4096u64;
    let len = std::fs::metadata(db.sqlite()).unwrap().len();
    let at = (len / page / 2) * page;
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(db.sqlite())
            .unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&vec![0u8; page as usize]).unwrap();
    }
    let r = db.cutover("load", &[]);
    refused(&db, &r, &before, "quick_check");
}
