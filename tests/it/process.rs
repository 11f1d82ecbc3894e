//! cutover as one process among others: a reader that goes away (`cutover load … | head`)
//! neither crashes it nor loses its report.

use crate::harness::{Db, repo};
use std::process::{Command, Stdio};

#[test]
fn a_closed_stdout_is_no_crash_and_the_files_are_written() {
    let db = Db::new("proc_pipe");
    let report = db.dir.join("report.json");
    let rejects = db.dir.join("rejects.csv");
    let source = format!("sqlite:{}", db.sqlite().display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args([
            "load",
            "-m",
            repo().join("mappings/podium-sqlite.toml").to_str().unwrap(),
            "--source",
            &source,
            "--target",
            &db.url,
            "--report",
            report.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
        ])
        .env_remove("DATABASE_URL")
        .env("CUTOVER_STATE", crate::harness::STATE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader is gone before cutover prints anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(report.is_file() && rejects.is_file());
    assert_eq!(db.one("SELECT count(*) FROM votes"), "24");
}
