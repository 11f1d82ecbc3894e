//! What cutover writes never destroys what the user has: `export --force` replaces only a
//! previous snapshot (never a directory holding the source database, the mapping or anything
//! else), and snapshots are private to their owner.

use crate::harness::{Db, repo, run, write};
use std::os::unix::fs::PermissionsExt;

#[test]
fn export_force_never_deletes_the_source_or_other_files() {
    let db = Db::new("files_force");
    // The team's working directory: the source database, its mapping, their notes.
    let work = db.dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let source = work.join("app.sqlite");
    std::fs::copy(db.sqlite(), &source).unwrap();
    let mapping = std::fs::read_to_string(repo().join("mappings/podium-sqlite.toml")).unwrap();
    let mapping = write(&work, "podium.toml", &mapping);
    write(&work, "notes.txt", "keep me");
    let export = |out: &std::path::Path| {
        run(&[
            "export",
            "-m",
            mapping.to_str().unwrap(),
            "--source",
            &format!("sqlite:{}", source.display()),
            "--out",
            out.to_str().unwrap(),
            "--force",
        ])
    };
    let r = export(&work);
    r.fails(2);
    assert!(r.stderr.contains("holds the source"), "{}", r.all());
    for f in ["app.sqlite", "podium.toml", "notes.txt"] {
        assert!(work.join(f).is_file(), "{f} must survive: {}", r.all());
    }
    // A directory of plain files that is not a snapshot is refused too.
    let other = db.dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    write(&other, "report.pdf", "x");
    let r = export(&other);
    r.fails(2);
    assert!(r.stderr.contains("has no manifest.json"), "{}", r.all());
    assert!(other.join("report.pdf").is_file());

    // A new snapshot is private: the directory 0700, its files 0600.
    let snap = db.dir.join("snap");
    export(&snap).ok();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&snap), 0o700);
    for e in std::fs::read_dir(&snap).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
}

#[test]
fn reports_rejects_and_drafts_never_follow_a_planted_link() {
    let db = Db::new("files_links");
    let victim = write(&db.dir, "victim", "precious");
    for flag in ["--report", "--rejects"] {
        let link = db.dir.join(format!("planted{flag}"));
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let r = db.cutover("load", &[flag, link.to_str().unwrap()]);
        // Refused before anything is loaded.
        r.fails(2);
        assert!(r.stderr.contains("symbolic link"), "{}", r.all());
        assert_eq!(db.one("SELECT count(*) FROM users"), "0");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }
    // Written for real: private to the owner.
    let report = db.dir.join("report.json");
    let rejects = db.dir.join("rejects.csv");
    db.cutover(
        "load",
        &[
            "--report",
            report.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
        ],
    )
    .ok();
    for p in [&report, &rejects] {
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    // inspect --emit-mapping onto a link: refused, the link's target untouched.
    let link = db.dir.join("draft.toml");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let r = run(&[
        "inspect",
        "--source",
        &format!("sqlite:{}", db.sqlite().display()),
        "--emit-mapping",
        link.to_str().unwrap(),
    ]);
    r.fails(2);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}
