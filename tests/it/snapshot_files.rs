//! Snapshots built to hang or exhaust the reader. It reads only regular files inside the
//! snapshot directory: a file replaced by a symbolic link (to a good copy elsewhere, or to
//! /dev/zero, which never ends) or by a FIFO (whose open blocks until someone writes) is
//! refused at once, with its name. And a cell made to blow up its decoder (JSON nested a
//! hundred thousand deep, with the manifest's hash updated to match) is refused by row and
//! column.

use crate::harness::{Db, Run, repo, run};
use std::path::Path;
use std::time::{Duration, Instant};

fn export(sqlite: &Path, out: &Path) {
    let source = format!("sqlite:{}", sqlite.display());
    let mapping = repo().join("mappings/podium-sqlite.toml");
    run(&[
        "export",
        "-m",
        mapping.to_str().unwrap(),
        "--source",
        &source,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ])
    .ok();
}

fn check(dir: &Path) -> Run {
    let source = format!("snapshot:{}", dir.display());
    let mapping = repo().join("mappings/podium-sqlite.toml");
    run(&[
        "check",
        "-m",
        mapping.to_str().unwrap(),
        "--source",
        &source,
    ])
}

/// Refused quickly, exit 3, the file and what it is named.
#[track_caller]
fn refused(dir: &Path, file: &str, what: &str) {
    let start = Instant::now();
    let r = check(dir);
    r.fails(3);
    assert!(r.stderr.contains(file), "names {file}: {}", r.all());
    assert!(r.stderr.contains(what), "says {what:?}: {}", r.all());
    assert!(
        r.stderr.contains("regular file"),
        "says what is read: {}",
        r.all()
    );
    assert!(start.elapsed() < Duration::from_secs(20), "refused at once");
}

#[test]
fn only_regular_files_inside_the_snapshot_are_read() {
    let db = Db::new("snap_files");
    let good = db.dir.join("good");
    export(&db.sqlite(), &good);
    check(&good).ok();

    // A link to the very same bytes outside the snapshot: the hash matches, yet the snapshot
    // no longer holds its own data.
    let linked = db.dir.join("linked");
    export(&db.sqlite(), &linked);
    std::fs::remove_file(linked.join("people.csv")).unwrap();
    std::os::unix::fs::symlink(good.join("people.csv"), linked.join("people.csv")).unwrap();
    refused(&linked, "people.csv", "symbolic link");

    // A FIFO: opening one for reading blocks until a writer comes. A writer comes after a
    // while (so a reader that blocks ends instead of hanging the test), then goes.
    let fifo = db.dir.join("fifo");
    export(&db.sqlite(), &fifo);
    let pipe = fifo.join("votes.csv");
    std::fs::remove_file(&pipe).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .unwrap();
    assert!(status.success());
    let writer = {
        let pipe = pipe.clone();
        std::thread::spawn(move || {
            use std::os::unix::fs::OpenOptionsExt;
            std::thread::sleep(Duration::from_secs(2));
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&pipe);
        })
    };
    refused(&fifo, "votes.csv", "FIFO");
    writer.join().unwrap();

    // A link to a device that never ends, for a table file and for the manifest itself.
    let zero = db.dir.join("zero");
    export(&db.sqlite(), &zero);
    std::fs::remove_file(zero.join("events.csv")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", zero.join("events.csv")).unwrap();
    refused(&zero, "events.csv", "symbolic link");
    let manifest = zero.join("manifest.json");
    std::fs::rename(&manifest, zero.join("saved.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &manifest).unwrap();
    refused(&zero, "manifest.json", "symbolic link");
}

#[test]
fn a_cell_nested_beyond_reason_is_refused_by_row_and_column() {
    use sha2::{Digest, Sha256};
    let db = Db::new("snap_deep_cell");
    let snap = db.dir.join("deep");
    export(&db.sqlite(), &snap);
    let file = snap.join("projects.csv");
    let text = std::fs::read_to_string(&file).unwrap();
    let deep = format!("\\j:{}", "[".repeat(100_000));
    let text = text.replacen(r#""[""rust"",""cli""]""#, &deep, 1);
    assert!(text.contains(&deep));
    std::fs::write(&file, &text).unwrap();
    let m = snap.join("manifest.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    let sha: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for t in json["tables"].as_array_mut().unwrap() {
        if t["file"] == "projects.csv" {
            t["sha256"] = sha.clone().into();
        }
    }
    std::fs::write(&m, serde_json::to_string(&json).unwrap()).unwrap();
    let r = check(&snap);
    r.fails(3);
    assert!(
        r.stderr.contains("projects.csv")
            && r.stderr.contains("data row 1, column `tags`")
            && r.stderr.contains("recursion limit"),
        "{}",
        r.all()
    );
    assert!(!r.stderr.contains("overflow"), "{}", r.all());
}
