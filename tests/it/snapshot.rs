//! Snapshots end to end: `cutover export` of the Podium SQLite fixture and of a table of
//! tricky values, loading from `--source snapshot:DIR` (the target must equal a direct
//! load), and the refusals: a tampered, truncated or missing file, a non-empty `--out`
//! without `--force`, an unwritable `--out`.

use crate::harness::{Db, Run, repo, run, write};
use cutover_testkit::TRICKY_TEXTS as TRICKY;
use std::path::{Path, PathBuf};

fn podium_mapping() -> PathBuf {
    repo().join("mappings/podium-sqlite.toml")
}

/// `cutover export` with the Podium mapping from `sqlite`, into `out`.
fn export(sqlite: &Path, out: &Path, extra: &[&str]) -> Run {
    let source = format!("sqlite:{}", sqlite.display());
    let mapping = podium_mapping();
    let mut args = vec![
        "export",
        "-m",
        mapping.to_str().unwrap(),
        "--source",
        &source,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// `cutover CMD` with the Podium mapping, reading the snapshot `dir`.
fn from_snapshot(cmd: &str, dir: &Path, target: Option<&str>) -> Run {
    let source = format!("snapshot:{}", dir.display());
    let mapping = podium_mapping();
    let mut args = vec![cmd, "-m", mapping.to_str().unwrap(), "--source", &source];
    if let Some(t) = target {
        args.extend_from_slice(&["--target", t]);
    }
    run(&args)
}

/// The Podium fixture with tricky texts in a mapped text column and mixed types in a
/// mapped numeric one.
fn tricky_podium(db: &Db) {
    let conn = rusqlite::Connection::open(db.sqlite()).unwrap();
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM projects ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (i, id) in ids.iter().enumerate() {
        // Several texts per project so every one of them lands in the target.
        let text: String = TRICKY
            .iter()
            .skip(i)
            .step_by(ids.len())
            .copied()
            .collect::<Vec<_>>()
            .join("|");
        conn.execute(
            "UPDATE projects SET description = ?1 WHERE id = ?2",
            rusqlite::params![text, id],
        )
        .unwrap();
    }
    // The same column holding 12, 12.0, '12' and NULL, and a NULL and '' demo link.
    conn.execute_batch(&format!(
        "UPDATE projects SET hours = 12 WHERE id = {};
         UPDATE projects SET hours = 12.0 WHERE id = {};
         UPDATE projects SET hours = '12' WHERE id = {};
         UPDATE projects SET hours = NULL, demo = NULL WHERE id = {};
         UPDATE projects SET hours = 0.30000000000000004, demo = '' WHERE id = {};",
        ids[0], ids[1], ids[2], ids[3], ids[4]
    ))
    .unwrap();
}

#[test]
fn podium_loaded_from_a_snapshot_equals_a_direct_load() {
    let direct = Db::new("snap_direct");
    tricky_podium(&direct);
    direct.cutover("load", &[]).ok();

    let snap = direct.dir.join("snap");
    let r = export(&direct.sqlite(), &snap, &[]);
    r.ok();
    assert!(r.stdout.contains("snapshot written"), "{}", r.all());

    // The manifest names the source and each table's columns, rows and checksum, and the
    // files are spreadsheet CSV.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(snap.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["format"], "cutover-snapshot");
    assert_eq!(manifest["format_version"], 1);
    assert_eq!(manifest["cutover_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["source"]["kind"], "sqlite");
    assert!(
        manifest["source"]["location"]
            .as_str()
            .unwrap()
            .ends_with("legacy.sqlite")
    );
    let at = manifest["extracted_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(at).is_ok() && at.ends_with('Z'),
        "{at}"
    );
    let tables = manifest["tables"].as_array().unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "people",
            "events",
            "event_people",
            "projects",
            "project_people",
            "referrals",
            "votes"
        ]
    );
    let people = &tables[0];
    assert_eq!(people["file"], "people.csv");
    assert_eq!(people["rows"], 14);
    assert_eq!(people["sha256"].as_str().unwrap().len(), 64);
    // Every field, mapped or not, in the source's order.
    let cols: Vec<&str> = people["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        [
            "id", "email", "name", "first", "last", "phone", "is_admin", "verified", "created"
        ]
    );
    let csv = std::fs::read_to_string(snap.join("people.csv")).unwrap();
    assert!(
        csv.starts_with("id,email,name,first,last,phone,is_admin,verified,created\r\n"),
        "{csv}"
    );
    assert!(
        csv.contains(
            "\r\n1,admin@podium.dev,Ada Admin,Ada,Admin,+1-555-0100,1,t,2024-01-05 09:00:00\r\n"
        ),
        "{csv}"
    );
    assert!(csv.contains("\"Bob O'Brien\"") || csv.contains(",Bob O'Brien,"));
    // No temporary directory is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(&direct.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("cutover-tmp") || n.contains("cutover-old"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // check, load and verify all read the snapshot; the target equals the direct load.
    let loaded = Db::new("snap_loaded");
    from_snapshot("check", &snap, None).ok();
    from_snapshot("check", &snap, Some(&loaded.url)).ok();
    let r = from_snapshot("load", &snap, Some(&loaded.url));
    r.ok();
    assert!(r.stdout.contains("committed."), "{}", r.all());
    assert_eq!(loaded.dump(), direct.dump());
    from_snapshot("verify", &snap, Some(&loaded.url)).ok();
    // And the direct load verifies against the snapshot too: same records.
    from_snapshot("verify", &snap, Some(&direct.url)).ok();
    // Every tricky text landed in the target exactly.
    let all = loaded.one("SELECT string_agg(description, '|' ORDER BY id) FROM projects");
    for t in TRICKY.iter().filter(|t| !t.is_empty()) {
        assert!(all.contains(t), "{t:?} missing from {all:?}");
    }
    let nth = |n: usize| format!("(SELECT id FROM projects ORDER BY id OFFSET {n} LIMIT 1)");
    assert_eq!(
        loaded.one(&format!(
            "SELECT demo_url IS NULL FROM projects WHERE id = {}",
            nth(3)
        )),
        "t"
    );
    assert_eq!(
        loaded.one(&format!(
            "SELECT demo_url = '' FROM projects WHERE id = {}",
            nth(4)
        )),
        "t"
    );

    // A snapshot of a snapshot is the same snapshot (apart from where and when).
    let again = direct.dir.join("again");
    let source = format!("snapshot:{}", snap.display());
    run(&[
        "export",
        "-m",
        podium_mapping().to_str().unwrap(),
        "--source",
        &source,
        "--out",
        again.to_str().unwrap(),
        "--quiet",
    ])
    .ok();
    for t in &names {
        let f = format!("{t}.csv");
        assert_eq!(
            std::fs::read(snap.join(&f)).unwrap(),
            std::fs::read(again.join(&f)).unwrap(),
            "{f}"
        );
    }
}

/// Export the Podium fixture of `db` into `name` and return its directory.
fn podium_snapshot(db: &Db, name: &str) -> PathBuf {
    let out = db.dir.join(name);
    export(&db.sqlite(), &out, &["--quiet"]).ok();
    out
}

#[test]
fn damaged_snapshots_are_refused_with_the_file_named() {
    let db = Db::new("snap_damaged");
    let good = podium_snapshot(&db, "good");
    from_snapshot("check", &good, None).ok();
    let before = db.dump();

    // Tampered: one value changed, same length.
    let tampered = podium_snapshot(&db, "tampered");
    let f = tampered.join("people.csv");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text.replacen("Ada Admin", "Ada Adnim", 1)).unwrap();
    let r = from_snapshot("load", &tampered, Some(&db.url));
    r.fails(3);
    assert!(r.stderr.contains("people.csv"), "{}", r.all());
    assert!(r.stderr.contains("SHA-256"), "{}", r.all());
    assert!(
        r.stderr.contains("cutover export"),
        "says what to do: {}",
        r.all()
    );

    // Truncated: the last half of a file gone.
    let truncated = podium_snapshot(&db, "truncated");
    let f = truncated.join("votes.csv");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let r = from_snapshot("check", &truncated, None);
    r.fails(3);
    assert!(r.stderr.contains("votes.csv"), "{}", r.all());

    // Missing.
    let missing = podium_snapshot(&db, "missing");
    std::fs::remove_file(missing.join("projects.csv")).unwrap();
    let r = from_snapshot("verify", &missing, Some(&db.url));
    r.fails(3);
    assert!(r.stderr.contains("projects.csv"), "{}", r.all());
    assert!(r.stderr.contains("missing"), "{}", r.all());

    // A row count the file disagrees with (the manifest edited, the file intact).
    let counted = podium_snapshot(&db, "counted");
    let m = counted.join("manifest.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    json["tables"][6]["rows"] = 26.into();
    std::fs::write(&m, serde_json::to_string(&json).unwrap()).unwrap();
    let r = from_snapshot("check", &counted, None);
    r.fails(3);
    assert!(
        r.stderr.contains("votes.csv") && r.stderr.contains("25 data rows"),
        "{}",
        r.all()
    );

    // A newer format, and no manifest at all.
    json["tables"][6]["rows"] = 25.into();
    json["format_version"] = 99.into();
    std::fs::write(&m, serde_json::to_string(&json).unwrap()).unwrap();
    let r = from_snapshot("check", &counted, None);
    r.fails(3);
    assert!(r.stderr.contains("newer cutover"), "{}", r.all());
    std::fs::remove_file(&m).unwrap();
    let r = from_snapshot("check", &counted, None);
    r.fails(3);
    assert!(
        r.stderr.contains("not a cutover snapshot") && r.stderr.contains("manifest.json"),
        "{}",
        r.all()
    );

    // A manifest pointing outside the snapshot is refused, not followed.
    let escape = podium_snapshot(&db, "escape");
    let m = escape.join("manifest.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    json["tables"][0]["file"] = "../good/people.csv".into();
    std::fs::write(&m, serde_json::to_string(&json).unwrap()).unwrap();
    from_snapshot("check", &escape, None).fails(3);

    assert_eq!(
        db.dump(),
        before,
        "nothing was loaded from a damaged snapshot"
    );
}

#[test]
fn out_must_be_new_or_empty_unless_forced() {
    let db = Db::new("snap_out");
    let out = db.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    // An empty directory is fine.
    export(&db.sqlite(), &out, &["--quiet"]).ok();
    assert!(out.join("manifest.json").is_file());

    // Now it is not empty: refused, and left as it was.
    write(&out, "notes.txt", "mine");
    let r = export(&db.sqlite(), &out, &[]);
    r.fails(2);
    assert!(
        r.stderr.contains("not empty") && r.stderr.contains("--force"),
        "{}",
        r.all()
    );
    assert!(out.join("notes.txt").is_file());

    // --force replaces a previous snapshot, but not one with something else beside it.
    let r = export(&db.sqlite(), &out, &["--force"]);
    r.fails(2);
    assert!(
        r.stderr
            .contains("only replaces a previous cutover snapshot")
            && r.stderr.contains("notes.txt"),
        "{}",
        r.all()
    );
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    std::fs::remove_file(out.join("notes.txt")).unwrap();
    let before = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    export(&db.sqlite(), &out, &["--force", "--quiet"]).ok();
    let after = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert_ne!(
        before, after,
        "a new snapshot (a new extraction time) is in place"
    );
    from_snapshot("check", &out, None).ok();

    // --force will not wipe a directory that holds directories (a home, a project).
    let home = db.dir.join("home");
    std::fs::create_dir_all(home.join("projects")).unwrap();
    let r = export(&db.sqlite(), &home, &["--force"]);
    r.fails(2);
    assert!(home.join("projects").is_dir());

    // A file is not a directory.
    let file = write(&db.dir, "file.txt", "x");
    export(&db.sqlite(), &file, &[]).fails(2);
}

#[test]
fn unwritable_out_fails_cleanly() {
    let db = Db::new("snap_unwritable");
    // The parent of --out is a regular file: nothing can be created there (this holds as
    // root too, where permission bits would not stop a write).
    let blocker = write(&db.dir, "blocker", "x");
    let out = blocker.join("snap");
    let r = export(&db.sqlite(), &out, &[]);
    r.fails(3);
    assert!(r.stderr.contains("blocker"), "{}", r.all());
    assert!(!out.join("manifest.json").exists());

    // A failure midway (a source error after some tables are written) is covered at the
    // library level in src/snapshot/export.rs.
    let names: Vec<String> = std::fs::read_dir(&db.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains("cutover-tmp")),
        "{names:?}"
    );
}
