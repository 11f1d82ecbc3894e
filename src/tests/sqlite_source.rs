//! The SQLite source against write-ahead logs copied beside a database: a whole log and one
//! cut in the middle of its last frame read as SQLite reads them, while a log with a
//! damaged header or a damaged frame before committed ones (which SQLite would silently
//! ignore, dropping committed transactions) is refused with the log named and the advice.

use crate::source::Source;
use crate::source::sqlite::SqliteSource;
use std::path::{Path, PathBuf};

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cutover-sqlite-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

const PAGE: usize = 4096;
const FRAME: usize = 24 + PAGE;

/// A WAL-mode database with five committed transactions of 1,000 rows each, all still in
/// the log (no checkpoint), copied with its log to `copy.db` / `copy.db-wal` as `cp` would
/// while the application has it open. Returns the copy and the log's bytes.
fn wal_copy(d: &Path) -> (PathBuf, Vec<u8>) {
    let live = d.join("live.db");
    let conn = rusqlite::Connection::open(&live).unwrap();
    conn.execute_batch(
        "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .unwrap();
    for k in 0..5 {
        conn.execute_batch(&format!(
            "BEGIN; WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000)
             INSERT INTO t(v) SELECT 'batch {k} row ' || i FROM c; COMMIT;"
        ))
        .unwrap();
    }
    let copy = d.join("copy.db");
    std::fs::copy(&live, &copy).unwrap();
    let wal = std::fs::read(with_suffix(&live, "-wal")).unwrap();
    assert!(
        wal.len() > 32 + 10 * FRAME,
        "the log holds the transactions"
    );
    drop(conn);
    (copy, wal)
}

fn rows(path: &Path) -> anyhow::Result<u64> {
    SqliteSource::open(path)?.count("t")
}

#[test]
fn a_whole_log_and_one_cut_mid_frame_read_their_committed_transactions() {
    let d = dir("wal_ok");
    let (copy, wal) = wal_copy(&d);
    std::fs::write(with_suffix(&copy, "-wal"), &wal).unwrap();
    assert_eq!(rows(&copy).unwrap(), 5000);

    // Cut in the middle of the last frame, as a copy taken during an append is: the last
    // transaction is incomplete in the copy, the ones before it are whole.
    let d = dir("wal_cut");
    let (copy, wal) = wal_copy(&d);
    std::fs::write(with_suffix(&copy, "-wal"), &wal[..wal.len() - FRAME / 2]).unwrap();
    assert_eq!(rows(&copy).unwrap(), 4000);
    std::fs::remove_dir_all(&d).ok();
}

#[track_caller]
fn refused(copy: &Path, why: &str) {
    let e = match rows(copy) {
        Ok(n) => panic!("read {n} rows from a damaged log"),
        Err(e) => format!("{e:#}"),
    };
    assert_eq!(
        crate::error::exit_code(&rows(copy).unwrap_err()),
        3,
        "exit 3: {e}"
    );
    assert!(e.contains("copy.db-wal"), "names the log: {e}");
    assert!(e.contains(why), "says {why:?}: {e}");
    assert!(
        e.contains(".backup") && e.contains("VACUUM INTO"),
        "says how to copy a live database: {e}"
    );
}

#[test]
fn a_log_with_a_damaged_header_is_refused() {
    let d = dir("wal_header");
    let (copy, mut wal) = wal_copy(&d);
    wal[3] ^= 0xff;
    std::fs::write(with_suffix(&copy, "-wal"), &wal).unwrap();
    refused(&copy, "header");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_log_with_a_damaged_frame_before_committed_ones_is_refused() {
    let d = dir("wal_frame");
    let (copy, mut wal) = wal_copy(&d);
    // One byte of the third frame's page: its checksum no longer matches, and every
    // transaction after it would be dropped without a word.
    wal[32 + 2 * FRAME + 24 + 100] ^= 0xff;
    std::fs::write(with_suffix(&copy, "-wal"), &wal).unwrap();
    refused(&copy, "frame 3");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_log_that_is_not_a_file_is_refused_without_waiting_on_it() {
    let d = dir("wal_fifo");
    let (copy, _) = wal_copy(&d);
    let status = std::process::Command::new("mkfifo")
        .arg(with_suffix(&copy, "-wal"))
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    refused(&copy, "not a regular file");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    std::fs::remove_dir_all(&d).ok();
}
