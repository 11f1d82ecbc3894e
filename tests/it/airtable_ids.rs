//! Mappings that name Airtable tables and fields by their ids (`tbl…`, `fld…`), which a
//! rename in the base does not change: the Podium base, served by the fake API, loaded into
//! the Podium schema by a mapping written with ids, while fields are renamed between runs and
//! in the middle of one. A mapping by name is told which field it was and how to name it by id.

use crate::harness::{Db, Run, repo, run_env, write};
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig};
use serde_json::Value as Json;
use std::path::Path;

const BASE: &str = "appPodium00000001";
const TOKEN: &str = "patFAKEtoken.0123456789abcdef0123456789abcdef";

fn meta() -> Json {
    let text = std::fs::read_to_string(repo().join("fixtures/podium-airtable/meta.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn fake() -> FakeAirtable {
    let config =
        FakeConfig::from_dir(&repo().join("fixtures/podium-airtable"), BASE, TOKEN).unwrap();
    FakeAirtable::start(config).unwrap().1
}

/// The id of table `table`, or of its field `field`.
fn id_of(meta: &Json, table: &str, field: Option<&str>) -> String {
    let t = meta["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == table)
        .unwrap_or_else(|| panic!("no table {table}"));
    match field {
        None => t["id"].as_str().unwrap().to_string(),
        Some(f) => t["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == f)
            .unwrap_or_else(|| panic!("no field {table}.{f}"))["id"]
            .as_str()
            .unwrap()
            .to_string(),
    }
}

/// mappings/podium.toml with every source table and field named by its id instead, each
/// name kept as a comment (as `inspect` drafts it).
fn podium_by_ids() -> String {
    let meta = meta();
    let text = std::fs::read_to_string(repo().join("mappings/podium.toml")).unwrap();
    let mut table: Option<String> = None;
    let mut out = String::new();
    for line in text.lines() {
        let mut line = line.to_string();
        if let Some(name) = line
            .strip_prefix("from = \"")
            .and_then(|r| r.strip_suffix('"'))
        {
            let name = name.to_string();
            line = format!("from = \"{}\"   # {name}", id_of(&meta, &name, None));
            table = Some(name);
        } else if let Some(t) = &table
            && !line.starts_with('[')
            && !line.starts_with('#')
        {
            let fields = meta["tables"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == t.as_str())
                .unwrap()["fields"]
                .as_array()
                .unwrap()
                .clone();
            for f in fields {
                let name = f["name"].as_str().unwrap();
                let quoted = format!("= \"{name}\"");
                if line.contains(&quoted) {
                    line = line.replace(&quoted, &format!("= \"{}\"", f["id"].as_str().unwrap()));
                }
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `cutover CMD -m MAPPING --target DB` against the fake, with `pace_dir` holding the
/// pacing files and the names cutover saw (shared by the runs of one test).
fn cutover(server: &FakeAirtable, mapping: &Path, db: &Db, cmd: &str, pace_dir: &Path) -> Run {
    let url = server.url();
    run_env(
        &[
            cmd,
            "-m",
            mapping.to_str().unwrap(),
            "--target",
            db.url.as_str(),
        ],
        &[
            ("AIRTABLE_API_URL", url.as_str()),
            ("AIRTABLE_TOKEN", TOKEN),
            ("XDG_RUNTIME_DIR", pace_dir.to_str().unwrap()),
        ],
    )
}

/// Rename a field of the fake's base when it receives its `at`-th request.
fn rename_at(server: &FakeAirtable, at: u64, table: &str, field: &str, to: &str) {
    let id = id_of(&meta(), table, Some(field));
    server.configure(|c| {
        c.faults.rename_field_at = Some((at, table.into(), id, to.into()));
    });
}

#[test]
fn a_mapping_by_ids_loads_what_the_mapping_by_names_loads_through_renames() {
    let server = fake();
    let names = repo().join("mappings/podium.toml");
    let by_names = Db::new("airtable_ids_by_names");
    cutover(&server, &names, &by_names, "load", &by_names.dir).ok();
    let expected = by_names.dump();
    assert!(expected.contains("airtable_id"), "{expected}");

    let db = Db::new("airtable_ids_by_ids");
    let mapping = write(&db.dir, "podium-ids.toml", &podium_by_ids());
    let text = std::fs::read_to_string(&mapping).unwrap();
    assert!(!text.contains("= \"Email\""), "{text}");
    assert!(
        text.contains(&id_of(&meta(), "Users", Some("Email"))),
        "{text}"
    );
    // `check` sees the same fields read and left unread, by ids as by names.
    let unread = |r: &Run| -> Vec<String> {
        r.all()
            .lines()
            .filter(|l| l.contains("not mapped"))
            .map(str::to_string)
            .collect()
    };
    let by_name = cutover(&server, &names, &by_names, "check", &by_names.dir);
    let by_id = cutover(&server, &mapping, &db, "check", &db.dir);
    by_id.ok();
    assert!(!unread(&by_name).is_empty(), "{}", by_name.all());
    assert_eq!(unread(&by_id), unread(&by_name), "{}", by_id.all());

    // Renamed while the load runs: after the metadata was read, before the records are.
    let at = server.stats().requests + 2;
    rename_at(&server, at, "Users", "Email", "E-mail address");
    let r = cutover(&server, &mapping, &db, "load", &db.dir);
    r.ok();
    assert_eq!(db.dump(), expected, "{}", r.all());

    // Renamed between runs: the same mapping re-runs and changes nothing.
    let at = server.stats().requests + 1;
    rename_at(&server, at, "Projects", "Name", "Title");
    let r = cutover(&server, &mapping, &db, "load", &db.dir);
    r.ok();
    assert_eq!(db.dump(), expected, "{}", r.all());
    cutover(&server, &mapping, &db, "verify", &db.dir).ok();

    // Snapshotted, then loaded from the snapshot by the same mapping: its metadata gives the
    // snapshot's tables and fields their ids.
    let out = db.dir.join("snap");
    let url = server.url();
    run_env(
        &[
            "export",
            "-m",
            mapping.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[
            ("AIRTABLE_API_URL", url.as_str()),
            ("AIRTABLE_TOKEN", TOKEN),
            ("XDG_RUNTIME_DIR", db.dir.to_str().unwrap()),
        ],
    )
    .ok();
    let again = Db::new("airtable_ids_snapshot");
    let source = format!("snapshot:{}", out.display());
    run_env(
        &[
            "load",
            "-m",
            mapping.to_str().unwrap(),
            "--source",
            &source,
            "--target",
            again.url.as_str(),
        ],
        &[],
    )
    .ok();
    assert_eq!(again.dump(), expected);
}

#[test]
fn a_mapping_by_name_is_told_the_renamed_fields_id_and_new_name() {
    let server = fake();
    let names = repo().join("mappings/podium.toml");
    let db = Db::new("airtable_ids_renamed");
    cutover(&server, &names, &db, "load", &db.dir).ok();
    let email = id_of(&meta(), "Users", Some("Email"));
    let users = id_of(&meta(), "Users", None);
    let at = server.stats().requests + 1;
    rename_at(&server, at, "Users", "Email", "E-mail address");
    let r = cutover(&server, &names, &db, "check", &db.dir);
    r.fails(2);
    let all = r.all();
    let line = std::fs::read_to_string(&names)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("email = { field = \"Email\""))
        .unwrap()
        + 1;
    assert!(
        all.contains(&format!("podium.toml:{line}:")),
        "line {line}:\n{all}"
    );
    assert!(
        all.contains(&format!("renamed `E-mail address` (id {email})")),
        "{all}"
    );
    assert!(
        all.contains(&format!("field = \"{email}\"  # E-mail address")),
        "{all}"
    );
    // Without a memory of the old name (another machine), the usual message, no guess.
    let elsewhere = db.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let r = cutover(&server, &names, &db, "check", &elsewhere);
    r.fails(2);
    assert!(r.all().contains("has no field `Email`"), "{}", r.all());
    assert!(!r.all().contains("renamed"), "{}", r.all());
    // And the table named by an id it does not have.
    let bad = write(
        &db.dir,
        "bad.toml",
        &std::fs::read_to_string(&names)
            .unwrap()
            .replace("from = \"Users\"", "from = \"tblNOPE0000000000\"")
            .replace(
                "email = { field = \"Email\"",
                "email = { field = \"fldNOPE0000000000\"",
            ),
    );
    let r = cutover(&server, &bad, &db, "check", &db.dir);
    r.fails(2);
    let all = r.all();
    assert!(
        all.contains("no table with the id `tblNOPE0000000000`"),
        "{all}"
    );
    assert!(all.contains(&format!("{users} Users")), "{all}");
}

#[test]
fn an_unknown_field_id_names_the_file_line_and_the_tables_fields() {
    let server = fake();
    let db = Db::new("airtable_ids_unknown");
    let text = podium_by_ids();
    let email = id_of(&meta(), "Users", Some("Email"));
    let bad = text.replace(&email, "fldNOPE0000000000");
    let mapping = write(&db.dir, "podium-ids.toml", &bad);
    let r = cutover(&server, &mapping, &db, "check", &db.dir);
    r.fails(2);
    let all = r.all();
    let line = bad
        .lines()
        .position(|l| l.contains("fldNOPE0000000000"))
        .unwrap()
        + 1;
    assert!(
        all.contains(&format!("podium-ids.toml:{line}:")),
        "line {line}:\n{all}"
    );
    assert!(
        all.contains("has no field with the id `fldNOPE0000000000`"),
        "{all}"
    );
    let first = id_of(&meta(), "Users", Some("First Name"));
    assert!(all.contains(&format!("{first} First Name")), "{all}");
    assert_eq!(db.one("SELECT count(*) FROM users"), "0");
}
