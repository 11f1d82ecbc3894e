//! `cutover export` to a place it cannot finish writing leaves nothing that looks like a
//! complete snapshot.

use crate::harness::{Db, run};
use std::path::Path;
use std::process::Command;

fn export(db: &Db, out: &Path) -> crate::harness::Run {
    run(&[
        "export",
        "-m",
        "mappings/podium-sqlite.toml",
        "--source",
        &format!("sqlite:{}", db.sqlite().display()),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ])
}

fn manifests(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "manifest.json") {
                found.push(p.display().to_string());
            }
        }
    }
    found
}

#[test]
fn impossible_out_fails_and_leaves_no_snapshot() {
    let db = Db::new("f_export_impossible");
    // A path through a regular file cannot be created, even by root.
    let file = db.dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let r = export(&db, &file.join("snap"));
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("a-file"),
        "the error names the place: {}",
        r.all()
    );
    assert!(manifests(&db.dir).is_empty(), "{:?}", manifests(&db.dir));
}

/// Unmounts the tiny file system even if the test fails.
struct Mount(std::path::PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_during_export_leaves_no_snapshot() {
    let db = Db::new("f_export_full");
    // Make the snapshot bigger than the file system: a 10 MB value.
    db.edit_sqlite("UPDATE people SET name = printf('%.10000000c', 'x') WHERE id = 1;");
    let fs = db.dir.join("tiny");
    std::fs::create_dir_all(&fs).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&fs)
        .status()
        .expect("mount (the fault tests run as root, as CI does)");
    assert!(
        status.success(),
        "mount -t tmpfs failed: the fault tests need root"
    );
    let _m = Mount(fs.clone());
    let out = fs.join("snap");
    let r = export(&db, &out);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stderr.contains("No space left on device"), "{}", r.all());
    assert!(manifests(&fs).is_empty(), "{:?}", manifests(&fs));
    assert!(!out.exists(), "a partial snapshot was left at --out");
    // Nothing half-written is left behind either.
    let left: Vec<_> = std::fs::read_dir(&fs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
