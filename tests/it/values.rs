//! Messy production data and the mapping's per-value policies: overlong text (`truncate`),
//! date-times into date columns, text that is not JSON and formula errors inside lists
//! (`on_error`), sub-fields (`path`), legacy ids compared as stored (`trim_legacy_id`), and
//! `check` showing every table's problems at once (`--rejects`, `--max-rejects`) — each
//! counted in the summary and the JSON report, and each reject named in the rejects file.

use crate::app::App;
use crate::harness::{cell, run_env, write};
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig};
use serde_json::{Value as Json, json};

/// Whether `out` says `s`, however its lines are wrapped.
fn has(out: &str, s: &str) -> bool {
    let flat = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    flat(out).contains(&flat(s))
}

fn read_json(p: &std::path::Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The rejects CSV as (table, legacy_id, column, code) rows.
fn rejects(p: &std::path::Path) -> Vec<(String, String, String, String)> {
    let mut r = csv::Reader::from_path(p).unwrap();
    let mut rows: Vec<_> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[0].to_string(),
                rec[1].to_string(),
                rec[2].to_string(),
                rec[5].to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn row(t: &str, id: &str, col: &str, code: &str) -> (String, String, String, String) {
    (t.into(), id.into(), col.into(), code.into())
}

/// The `adjusted` entry of `column` in a table of the report (`tables` or `converted`).
fn adjusted<'a>(tables: &'a Json, table: &str, column: &str) -> &'a Json {
    tables
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == table)
        .unwrap_or_else(|| panic!("no table {table} in {tables}"))["adjusted"]
        .as_array()
        .unwrap_or_else(|| panic!("no adjusted values in {table}: {tables}"))
        .iter()
        .find(|a| a["column"] == column)
        .unwrap_or_else(|| panic!("{table}.{column} not adjusted: {tables}"))
}

const SCHEMA: &str = "
    CREATE TABLE users (id bigserial PRIMARY KEY, legacy_id text UNIQUE NOT NULL,
                        handle varchar(6) NOT NULL, code char(3), joined date, born date,
                        prefs jsonb, scores float8[], email text, avatar text);
    CREATE TABLE posts (id bigserial PRIMARY KEY, legacy_id text UNIQUE NOT NULL,
                        author_id bigint REFERENCES users (id), title varchar(10), day date);";

const LEGACY: &str = r##"
    CREATE TABLE users (id TEXT PRIMARY KEY, handle TEXT, code TEXT, joined TEXT, born TEXT,
                        prefs TEXT, scores TEXT, owner TEXT, files TEXT);
    INSERT INTO users VALUES
      ('u1', 'ada', 'AB', '2020-01-01 10:30:00', '1990-05-01 00:00:00', '{"dark": true}',
       '[1, 2]', '{"id": "usr1", "email": "ada@example.com", "name": "Ada"}',
       '[{"id": "att1", "url": "https://x/a.png", "filename": "a.png"}]'),
      ('u2', 'Brünnhilde', 'XYZ', '2020-02-02', '1991-06-02', '{oops',
       '[1.5, {"error": "#ERROR!"}, 3]', '{"id": "usr2", "email": "bru@example.com"}', '[]'),
      ('u3', '😀😀😀😀😀😀😀😀', 'TOOLONG', '2020-03-03', NULL, '[]', '[]', NULL, NULL);
    CREATE TABLE posts (id TEXT PRIMARY KEY, author TEXT, title TEXT, day TEXT);
    INSERT INTO posts VALUES
      ('p1', 'u1', 'hello', '2021-01-01'),
      ('p2', 'u2', 'a title that is too long', '2021-01-02'),
      ('p3', 'u1', 'dated', '2021-01-03 17:45:00');"##;

const MAPPING: &str = r#"
[tables.users]
legacy_column = "legacy_id"
[tables.users.columns]
handle = { field = "handle", truncate = true }
code = "code"
joined = { field = "joined", truncate = true }
born = "born"
prefs = { field = "prefs", on_error = "null" }
scores = { field = "scores", on_error = "null" }
email = { field = "owner", path = "email" }
avatar = { field = "files", path = "0.filename" }

[tables.posts]
legacy_column = "legacy_id"
[tables.posts.columns]
author_id = { field = "author", references = "users" }
title = "title"
day = "day"
"#;

#[test]
fn check_shows_every_tables_rejects_and_writes_them_all() {
    let app = App::new("values_check", SCHEMA, LEGACY, MAPPING);
    let dir = &app.db.dir;
    let csv = dir.join("check-rejects.csv");
    let report = dir.join("check.json");
    let r = app.run_with(
        "check",
        &[
            "--rejects",
            csv.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    r.fails(1);
    // Both tables' problems in one run, each with its count.
    assert!(
        has(
            &r.stdout,
            "3 source rows cannot be converted to the target's types (users 1, posts 2), by table and reason"
        ),
        "{}",
        r.all()
    );
    assert!(has(&r.stdout, "users (users): 1 row"), "{}", r.stdout);
    assert!(has(&r.stdout, "posts (posts): 2 rows"), "{}", r.stdout);
    assert!(
        has(&r.stdout, "1 × users.code, convert (legacy id u3)"),
        "{}",
        r.stdout
    );
    assert!(
        has(&r.stdout, "1 × posts.title, convert (legacy id p2)"),
        "{}",
        r.stdout
    );
    assert!(
        has(&r.stdout, "1 × posts.day, convert (legacy id p3)"),
        "{}",
        r.stdout
    );
    assert!(has(&r.stdout, "has a time of day"), "{}", r.stdout);
    // What a load would change on the mapping's say.
    assert!(
        has(
            &r.stdout,
            "values truncated to fit (truncate = true): users.handle 1, users.joined 1"
        ),
        "{}",
        r.stdout
    );
    assert!(
        has(
            &r.stdout,
            "errors in the source stored as NULL (on_error = \"null\"): users.prefs 1, users.scores 1"
        ),
        "{}",
        r.stdout
    );
    assert!(
        has(&r.stderr, "error: 3 rows would be rejected"),
        "{}",
        r.all()
    );
    // Every would-be reject, in the format of load's --rejects.
    assert_eq!(
        rejects(&csv),
        [
            row("posts", "p2", "title", "convert"),
            row("posts", "p3", "day", "convert"),
            row("users", "u3", "code", "convert"),
        ]
    );
    let header = std::fs::read_to_string(&csv).unwrap();
    assert!(header.starts_with("table,legacy_id,column,value,reason,code,source_table\n"));
    let doc = read_json(&report);
    assert_eq!(doc["outcome"], "rejects");
    assert_eq!(doc["rejects_total"], 3);
    assert_eq!(doc["max_rejects"], 0);
    let converted = &doc["converted"];
    assert_eq!(adjusted(converted, "users", "handle")["truncated"], 1);
    assert_eq!(adjusted(converted, "users", "prefs")["errors_nulled"], 1);
    let posts = converted
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "posts")
        .unwrap();
    assert_eq!(
        (posts["read"].as_u64(), posts["rejected"].as_u64()),
        (Some(3), Some(2))
    );

    // Rejects that --max-rejects accepts do not fail the check.
    let r = app.run_with("check", &["--max-rejects", "3"]);
    r.ok();
    assert!(
        has(
            &r.stdout,
            "check passed: 3 rows would be rejected, within --max-rejects 3"
        ),
        "{}",
        r.stdout
    );
    app.run_with("check", &["--max-rejects", "2"]).fails(1);
}

#[test]
fn messy_values_load_by_the_mappings_policies_and_are_counted() {
    let app = App::new("values_load", SCHEMA, LEGACY, MAPPING);
    let dir = &app.db.dir;
    let csv = dir.join("rejects.csv");
    let report = dir.join("load.json");
    let r = app.run_with(
        "load",
        &[
            "--max-rejects",
            "3",
            "--rejects",
            csv.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    r.ok();
    assert_eq!(
        cell(&r.stdout, "users", "inserted").as_deref(),
        Some("2"),
        "{}",
        r.stdout
    );
    assert_eq!(
        cell(&r.stdout, "posts", "rejected").as_deref(),
        Some("2"),
        "{}",
        r.stdout
    );
    assert!(
        has(
            &r.stdout,
            "values truncated to fit (truncate = true): users.handle 1, users.joined 1"
        ),
        "{}",
        r.stdout
    );
    assert!(
        has(
            &r.stdout,
            "errors in the source stored as NULL (on_error = \"null\"): users.prefs 1, users.scores 1"
        ),
        "{}",
        r.stdout
    );
    // Truncated at a character boundary; the time of day dropped from the date; the date
    // whose time is midnight loads as it is.
    assert_eq!(
        app.db.sql(
            "SELECT handle, joined::text, born::text, prefs::text, scores::text, email, avatar
               FROM users ORDER BY legacy_id"
        ),
        [
            [
                Some("ada".to_string()),
                Some("2020-01-01".into()),
                Some("1990-05-01".into()),
                Some(r#"{"dark": true}"#.into()),
                Some("{1,2}".into()),
                Some("ada@example.com".into()),
                Some("a.png".into()),
            ],
            [
                Some("Brünnh".to_string()),
                Some("2020-02-02".into()),
                Some("1991-06-02".into()),
                None,
                Some("{1.5,NULL,3}".into()),
                Some("bru@example.com".into()),
                None,
            ],
        ]
    );
    let doc = read_json(&report);
    let tables = &doc["tables"];
    let handle = adjusted(tables, "users", "handle");
    assert_eq!(
        (
            handle["truncated"].as_u64(),
            handle["errors_nulled"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(adjusted(tables, "users", "joined")["truncated"], 1);
    assert_eq!(adjusted(tables, "users", "prefs")["errors_nulled"], 1);
    assert_eq!(adjusted(tables, "users", "scores")["errors_nulled"], 1);
    assert_eq!(doc["rejects_total"], 3);
    assert_eq!(
        rejects(&csv),
        [
            row("posts", "p2", "title", "convert"),
            row("posts", "p3", "day", "convert"),
            row("users", "u3", "code", "convert"),
        ]
    );
    // A re-run finds nothing to change: the policies give the same values every time.
    let r = app.run_with("load", &["--max-rejects", "3"]);
    r.ok();
    assert_eq!(
        cell(&r.stdout, "users", "unchanged").as_deref(),
        Some("2"),
        "{}",
        r.stdout
    );
    // And verify, converting the same way, finds every loaded row equal.
    app.run_with("verify", &[]).ok();
}

#[test]
fn legacy_ids_and_references_are_compared_as_stored_unless_the_mapping_trims() {
    let schema =
        "CREATE TABLE teams (id bigserial PRIMARY KEY, code text UNIQUE NOT NULL, name text);
                  CREATE TABLE players (id bigserial PRIMARY KEY, legacy_id text UNIQUE NOT NULL,
                                        team_id bigint REFERENCES teams (id));";
    // Natural keys typed by hand: a trailing space in one team's key, and in a reference.
    let legacy = "CREATE TABLE teams (code TEXT, name TEXT);
                  INSERT INTO teams VALUES ('RED ', 'Red'), ('BLUE', 'Blue');
                  CREATE TABLE players (id TEXT, team TEXT);
                  INSERT INTO players VALUES ('p1', 'RED'), ('p2', 'BLUE '), ('p3', 'BLUE');";
    let mapping = |trim: bool| {
        format!(
            "[tables.teams]\nlegacy_id = \"code\"\nlegacy_column = \"code\"\n{}\
             [tables.teams.columns]\nname = \"name\"\n\
             [tables.players]\nlegacy_column = \"legacy_id\"\n[tables.players.columns]\n\
             team_id = {{ field = \"team\", references = \"teams\"{} }}\n",
            if trim { "trim_legacy_id = true\n" } else { "" },
            if trim { ", trim = true" } else { "" },
        )
    };
    let app = App::new("values_trim", schema, legacy, &mapping(false));
    let csv = app.db.dir.join("rejects.csv");
    // As stored: 'RED ' is not 'RED', 'BLUE ' is not 'BLUE'.
    let r = app.run_with("load", &["--dry-run", "--rejects", csv.to_str().unwrap()]);
    r.fails(1);
    assert_eq!(
        rejects(&csv),
        [
            row("players", "p1", "team_id", "dangling_reference"),
            row("players", "p2", "team_id", "dangling_reference"),
        ],
        "{}",
        r.all()
    );
    // With the mapping's say-so, both sides are trimmed and every reference resolves.
    write(&app.db.dir, "app.toml", &mapping(true));
    app.run_with("load", &[]).ok();
    assert_eq!(
        app.db.sql(
            "SELECT p.legacy_id, t.code FROM players p JOIN teams t ON t.id = p.team_id ORDER BY 1"
        ),
        [
            [Some("p1".to_string()), Some("RED".to_string())],
            [Some("p2".into()), Some("BLUE".into())],
            [Some("p3".into()), Some("BLUE".into())],
        ]
    );
    app.loads_and_converges();
}

const BASE: &str = "appMessy000000001";
const TOKEN: &str = "patFAKEtoken.0123456789abcdef0123456789abcdef";

#[test]
fn airtable_objects_errors_and_lookups_follow_the_mapping() {
    // Airtable's own shapes: a collaborator, an AI text, attachments, a lookup with a
    // formula error among its values, and a formula error alone.
    let meta = json!({
        "id": "tblPeople00000001", "name": "People", "primaryFieldId": "fldName0000000001",
        "fields": [
            {"id": "fldName0000000001", "name": "Name", "type": "singleLineText"},
            {"id": "fldOwner000000001", "name": "Owner", "type": "singleCollaborator"},
            {"id": "fldSummary0000001", "name": "Summary", "type": "aiText"},
            {"id": "fldPhotos00000001", "name": "Photos", "type": "multipleAttachments"},
            {"id": "fldScores00000001", "name": "Scores", "type": "multipleLookupValues"},
            {"id": "fldRatio000000001", "name": "Ratio", "type": "formula"}
        ],
        "views": [{"id": "viwGrid0000000001", "name": "Grid view", "type": "grid"}]
    });
    let record = |n: u32, fields: Json| json!({"id": format!("recPeople0000000{n}"), "createdTime": "2024-05-01T10:00:00.000Z", "fields": fields});
    let records = vec![
        record(
            1,
            json!({
                "Name": "Ada",
                "Owner": {"id": "usrAda", "email": "ada@example.com", "name": "Ada"},
                "Summary": {"state": "generated", "value": "Writes the first program", "isStale": false},
                "Photos": [{"id": "att1", "url": "https://dl.airtable.com/a.png", "filename": "a.png"}],
                "Scores": [1, {"error": "#ERROR!"}, 3],
                "Ratio": {"specialValue": "NaN"}
            }),
        ),
        record(
            2,
            json!({
                "Name": "Grace",
                "Owner": {"id": "usrGrace", "email": "grace@example.com", "name": "Grace"},
                "Scores": [4],
                "Ratio": 0.5
            }),
        ),
    ];
    let config = FakeConfig::new(BASE, TOKEN).with_table(meta, records);
    let server = FakeAirtable::start(config).unwrap().1;
    let app = App::new(
        "values_airtable",
        "CREATE TABLE people (id bigserial PRIMARY KEY, airtable_id text UNIQUE NOT NULL,
                              name text, owner_email text, owner text, summary text,
                              photo_url text, scores float8[], score_list jsonb, ratio float8);",
        "SELECT 1;",
        &format!(
            r#"[source]
kind = "airtable"
base = "{BASE}"
[tables.people]
from = "People"
legacy_id = "@id"
legacy_column = "airtable_id"
[tables.people.columns]
name = "Name"
owner_email = {{ field = "Owner", path = "email" }}
owner = "Owner"
summary = {{ field = "Summary", path = "value" }}
photo_url = {{ field = "Photos", path = "0.url" }}
scores = {{ field = "Scores", on_error = "null" }}
score_list = {{ field = "Scores", on_error = "null" }}
ratio = {{ field = "Ratio", on_error = "null" }}
"#
        ),
    );
    let url = server.url();
    let env = [
        ("AIRTABLE_API_URL", url.as_str()),
        ("AIRTABLE_TOKEN", TOKEN),
    ];
    let at = |cmd: &str, extra: &[&str]| {
        let mut args = vec![
            cmd,
            "-m",
            app.mapping.to_str().unwrap(),
            "--target",
            &app.db.url,
        ];
        args.extend_from_slice(extra);
        run_env(&args, &env)
    };
    // check warns that a whole collaborator would be stored as text, and says what to write.
    let r = at("check", &[]);
    r.ok();
    assert!(
        has(
            &r.stdout,
            "warning: `people.owner` would store 2 whole JSON objects as their text"
        ),
        "{}",
        r.stdout
    );
    assert!(has(&r.stdout, "add path = \"email\""), "{}", r.stdout);
    let report = app.db.dir.join("load.json");
    let r = at("load", &["--report", report.to_str().unwrap()]);
    r.ok();
    assert!(
        has(
            &r.stdout,
            "errors in the source stored as NULL (on_error = \"null\"): people.scores 1, people.score_list 1, people.ratio 1"
        ),
        "{}",
        r.stdout
    );
    assert_eq!(
        app.db.sql(
            "SELECT owner_email, summary, photo_url, scores::text, score_list::text, ratio::text
               FROM people ORDER BY name"
        ),
        [
            [
                Some("ada@example.com".to_string()),
                Some("Writes the first program".into()),
                Some("https://dl.airtable.com/a.png".into()),
                Some("{1,NULL,3}".into()),
                Some("[1, null, 3]".into()),
                None,
            ],
            [
                Some("grace@example.com".to_string()),
                None,
                None,
                Some("{4}".into()),
                Some("[4]".into()),
                Some("0.5".into()),
            ],
        ]
    );
    let doc = read_json(&report);
    assert_eq!(
        adjusted(&doc["tables"], "people", "ratio")["errors_nulled"],
        1
    );
    assert_eq!(
        adjusted(&doc["tables"], "people", "owner")["whole_objects"],
        2
    );

    // Without on_error, the lookup's error is a reject, not stored as it is in jsonb.
    let strict = std::fs::read_to_string(&app.mapping).unwrap().replace(
        "score_list = { field = \"Scores\", on_error = \"null\" }",
        "score_list = \"Scores\"",
    );
    write(&app.db.dir, "app.toml", &strict);
    let csv = app.db.dir.join("rejects.csv");
    let r = at("check", &["--rejects", csv.to_str().unwrap()]);
    r.fails(1);
    assert_eq!(
        rejects(&csv),
        [row(
            "people",
            "recPeople00000001",
            "score_list",
            "formula_error"
        )]
    );
}

#[test]
fn truncate_on_a_column_it_cannot_cut_is_a_mapping_problem() {
    let app = App::new(
        "values_truncate_where",
        "CREATE TABLE t (id integer PRIMARY KEY, n integer, s varchar(3));",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT); INSERT INTO t VALUES (1, 2, 'abcd');",
        "[tables.t]\nkeep_id = true\n[tables.t.columns]\nn = { field = \"n\", truncate = true }\ns = { field = \"s\", truncate = true }\n",
    );
    let r = app.run_with("check", &[]);
    r.fails(2);
    assert!(
        has(
            &r.stderr,
            "tables.t.columns.n.truncate: `truncate` only applies to varchar(n), char(n) and date columns; `n` is integer"
        ),
        "{}",
        r.all()
    );
    assert!(!r.stderr.contains("columns.s.truncate"), "{}", r.all());
}
