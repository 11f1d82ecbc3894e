//! The records a mapping selects from an Airtable table, `view` and `filter`, end to end:
//! the fake API evaluates them as Airtable does, the load writes only the selected records,
//! and a link to a record the selection left out is what any unresolvable reference is — the
//! column's `on_missing` policy applies. On a SQLite source they are refused at their line.

use crate::harness::{Db, Run, run_env, write};
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig, fake_id};
use serde_json::json;
use std::path::Path;

const BASE: &str = "appSelectBase0001";
const TOKEN: &str = "patFAKEtoken.0123456789abcdef0123456789abcdef";

const SCHEMA: &str = "
    CREATE TABLE teams (id serial PRIMARY KEY, airtable_id text UNIQUE NOT NULL, name text NOT NULL);
    CREATE TABLE people (id serial PRIMARY KEY, airtable_id text UNIQUE NOT NULL,
                         name text NOT NULL, team_id integer REFERENCES teams(id));";

fn rec(table: &str, n: u64) -> String {
    fake_id("rec", table, n)
}

/// Teams Core (active), Old (not active), Ops (active); people Ann (Core), Bob (Old),
/// Cy (Ops), Dee (Old) and Zed (Core), whom the view "Staff" leaves out.
fn fake() -> FakeAirtable {
    let fld = |f: &str| fake_id("fld", f, 0);
    let teams = json!({"id": fake_id("tbl", "Teams", 0), "name": "Teams", "primaryFieldId": fld("Teams.Name"),
        "fields": [
            {"id": fld("Teams.Name"), "name": "Name", "type": "singleLineText"},
            {"id": fld("Teams.Active"), "name": "Active", "type": "checkbox", "options": {}}]});
    let people_id = fake_id("tbl", "People", 0);
    let people = json!({"id": people_id, "name": "People", "primaryFieldId": fld("People.Name"),
        "fields": [
            {"id": fld("People.Name"), "name": "Name", "type": "singleLineText"},
            {"id": fld("People.Team"), "name": "Team", "type": "multipleRecordLinks",
             "options": {"linkedTableId": fake_id("tbl", "Teams", 0), "prefersSingleRecordLink": true}}]});
    let r = |table: &str, n: u64, fields: serde_json::Value| json!({"id": rec(table, n), "createdTime": "2024-05-01T10:00:00.000Z", "fields": fields});
    let config = FakeConfig::new(BASE, TOKEN)
        .with_table(
            teams,
            vec![
                r("Teams", 1, json!({"Name": "Core", "Active": true})),
                r("Teams", 2, json!({"Name": "Old"})),
                r("Teams", 3, json!({"Name": "Ops", "Active": true})),
            ],
        )
        .with_table(
            people,
            [("Ann", 1), ("Bob", 2), ("Cy", 3), ("Dee", 2), ("Zed", 1)]
                .iter()
                .enumerate()
                .map(|(i, (name, team))| {
                    r(
                        "People",
                        i as u64 + 1,
                        json!({"Name": name, "Team": [rec("Teams", *team)]}),
                    )
                })
                .collect(),
        )
        .with_view(&people_id, "Staff", "{Name} != \"Zed\"");
    FakeAirtable::start(config).unwrap().1
}

fn mapping(on_missing: &str) -> String {
    format!(
        r#"[source]
kind = "airtable"
base = "{BASE}"

[tables.teams]
from = "Teams"
legacy_id = "@id"
legacy_column = "airtable_id"
filter = "{{Active}}"
[tables.teams.columns]
name = "Name"

[tables.people]
from = "People"
legacy_id = "@id"
legacy_column = "airtable_id"
view = "Staff"
[tables.people.columns]
name = "Name"
team_id = {{ field = "Team", references = "teams"{on_missing} }}
"#
    )
}

fn cutover(server: &FakeAirtable, db: &Db, mapping: &Path, cmd: &str, extra: &[&str]) -> Run {
    let mut args = vec![cmd, "-m", mapping.to_str().unwrap(), "--target", &db.url];
    args.extend_from_slice(extra);
    let url = server.url();
    run_env(
        &args,
        &[
            ("AIRTABLE_API_URL", url.as_str()),
            ("AIRTABLE_TOKEN", TOKEN),
            ("XDG_RUNTIME_DIR", db.dir.to_str().unwrap()),
        ],
    )
}

fn people(db: &Db) -> String {
    db.one(
        "SELECT string_agg(p.name || '/' || coalesce(t.name, '-'), ',' ORDER BY p.name)
         FROM people p LEFT JOIN teams t ON t.id = p.team_id",
    )
}

#[test]
fn only_the_selected_records_load_and_links_to_the_others_follow_on_missing() {
    let server = fake();
    let db = Db::bare("airtable_select_null");
    db.sql(SCHEMA);
    let m = write(&db.dir, "m.toml", &mapping(", on_missing = \"null\""));
    let r = cutover(&server, &db, &m, "load", &[]);
    r.ok();
    assert_eq!(
        db.one("SELECT string_agg(name, ',' ORDER BY name) FROM teams"),
        "Core,Ops"
    );
    // Zed is not in the view; Bob's and Dee's team is filtered out: their link is NULL.
    assert_eq!(people(&db), "Ann/Core,Bob/-,Cy/Ops,Dee/-", "{}", r.all());
    cutover(&server, &db, &m, "verify", &[]).ok();

    // A snapshot holds the records its export selected, and loads the same rows.
    let out = db.dir.join("snap");
    let url = server.url();
    run_env(
        &[
            "export",
            "-m",
            m.to_str().unwrap(),
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
    let again = Db::bare("airtable_select_snapshot");
    again.sql(SCHEMA);
    let source = format!("snapshot:{}", out.display());
    cutover(&server, &again, &m, "load", &["--source", &source]).ok();
    assert_eq!(people(&again), "Ann/Core,Bob/-,Cy/Ops,Dee/-");
}

#[test]
fn a_link_to_a_record_filtered_out_is_a_dangling_reference_by_default() {
    let server = fake();
    let db = Db::bare("airtable_select_error");
    db.sql(SCHEMA);
    let m = write(&db.dir, "m.toml", &mapping(""));
    let rejects = db.dir.join("rejects.csv");
    let r = cutover(
        &server,
        &db,
        &m,
        "load",
        &["--rejects", rejects.to_str().unwrap()],
    );
    r.fails(1);
    assert_eq!(db.one("SELECT count(*) FROM people"), "0");
    let csv = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(csv.matches("dangling_reference").count(), 2, "{csv}");
    for (who, team) in [(2, 2), (4, 2)] {
        assert!(csv.contains(&rec("People", who)), "{csv}");
        assert!(csv.contains(&rec("Teams", team)), "{csv}");
    }
    // Allowed, the others load.
    let r = cutover(&server, &db, &m, "load", &["--max-rejects", "2"]);
    r.ok();
    assert_eq!(people(&db), "Ann/Core,Cy/Ops", "{}", r.all());

    // And with `skip`, the rows are left out, counted, not rejected.
    let db = Db::bare("airtable_select_skip");
    db.sql(SCHEMA);
    let m = write(&db.dir, "m.toml", &mapping(", on_missing = \"skip\""));
    cutover(&server, &db, &m, "load", &[]).ok();
    assert_eq!(people(&db), "Ann/Core,Cy/Ops");
}

#[test]
fn view_and_filter_need_an_airtable_source_and_one_selection_per_source_table() {
    let server = fake();
    let db = Db::bare("airtable_select_refused");
    db.sql(SCHEMA);
    let m = write(&db.dir, "m.toml", &mapping(""));
    // The same mapping given a SQLite file instead: refused at the key's line.
    let sqlite = db.dir.join("x.sqlite");
    rusqlite::Connection::open(&sqlite)
        .unwrap()
        .execute_batch("CREATE TABLE Teams (id text, Name text);")
        .unwrap();
    let source = format!("sqlite:{}", sqlite.display());
    let r = cutover(&server, &db, &m, "check", &["--source", &source]);
    r.fails(2);
    assert!(
        r.all().contains("m.toml:9: tables.teams.filter"),
        "{}",
        r.all()
    );
    assert!(
        r.all().contains("m.toml:17: tables.people.view"),
        "{}",
        r.all()
    );

    // A junction read from People with another selection than `people`'s.
    let text = mapping("")
        + "\n[tables.team_links]\nfrom = \"People\"\njunction = true\n[tables.team_links.columns]\n\
           person_id = { field = \"@id\", references = \"people\" }\n\
           team_id = { field = \"Team\", references = \"teams\", explode = true }\n";
    let m = write(&db.dir, "two.toml", &text);
    let r = cutover(&server, &db, &m, "check", &[]);
    r.fails(2);
    assert!(
        r.all()
            .contains("`team_links` reads source table `People` with every record"),
        "{}",
        r.all()
    );
}
