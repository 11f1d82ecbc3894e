//! Every column type an application schema uses loads with the schema as it is: the types
//! cutover has no binary encoder for go through PostgreSQL's own text input, domains keep
//! their CHECK constraints, and a value PostgreSQL refuses is a reject naming the table, the
//! legacy id, the column and PostgreSQL's message — never an abort about a staging table.

use crate::app::App;

/// A schema as a project writes it: extensions, domains with CHECKs (over an encoded type,
/// over citext, over a range, over bit(n)), an enum in another schema, and a column of each
/// type loaded through text input, arrays of some.
const SCHEMA: &str = "
    CREATE EXTENSION citext;
    CREATE EXTENSION hstore;
    CREATE SCHEMA ref;
    CREATE TYPE ref.mood AS ENUM ('calm', 'busy');
    CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
    CREATE DOMAIN email AS citext CHECK (VALUE ~ '^[^@]+@[^@]+$');
    CREATE DOMAIN opening AS tstzrange CHECK (NOT isempty(VALUE));
    CREATE DOMAIN code3 AS bit(3) NOT NULL;
    CREATE TABLE host (
        id serial PRIMARY KEY,
        legacy_id text UNIQUE,
        name citext NOT NULL,
        contact email,
        addr inet, net cidr, mac macaddr,
        uptime interval, rounded interval(0),
        price money,
        flags bit(8), bits varbit(16), code code3,
        doc xml, search tsvector, attrs hstore,
        ports int4range, windows int4multirange, open opening,
        spot point, area box, edge lseg, shape polygon, ring circle,
        mood ref.mood, moods ref.mood[],
        hits posint, hit_list posint[],
        addrs inet[], tags citext[], spans int4range[],
        body jsonb, raw json
    );";

const COLUMNS: &[&str] = &[
    "name", "contact", "addr", "net", "mac", "uptime", "rounded", "price", "flags", "bits", "code",
    "doc", "search", "attrs", "ports", "windows", "open", "spot", "area", "edge", "shape", "ring",
    "mood", "moods", "hits", "hit_list", "addrs", "tags", "spans", "body", "raw",
];

/// The legacy table: one text field per column.
fn legacy(rows: &[[&str; 31]]) -> String {
    let mut sql = format!(
        "CREATE TABLE host (id INTEGER PRIMARY KEY, {});",
        COLUMNS
            .iter()
            .map(|c| format!("\"{c}\" TEXT"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (i, row) in rows.iter().enumerate() {
        let values: Vec<String> = row
            .iter()
            .map(|v| format!("'{}'", v.replace('\'', "''")))
            .collect();
        sql.push_str(&format!(
            "INSERT INTO host VALUES ({}, {});",
            i + 1,
            values.join(", ")
        ));
    }
    sql
}

fn mapping() -> String {
    let mut m =
        String::from("[tables.host]\nlegacy_column = \"legacy_id\"\n[tables.host.columns]\n");
    for c in COLUMNS {
        match *c {
            // citext is text: '' is a value (which the domain's CHECK refuses) unless asked.
            "contact" => m.push_str("contact = { field = \"contact\", empty_as_null = true }\n"),
            _ => m.push_str(&format!("{c} = \"{c}\"\n")),
        }
    }
    m
}

const GOOD: [&str; 31] = [
    "Web-1",
    "Ops@Example.com",
    "10.0.0.1",
    "10.0.0.0/8",
    "08:00:2b:01:02:03",
    "1 day 02:03:04.5",
    "1.6 seconds",
    "12.34",
    "10100000",
    "101",
    "110",
    "<host><os>linux</os></host>",
    "the quick brown fox",
    "rack=>7, row=>\"B 2\"",
    "[1,10)",
    "{[1,3), [5,8)}",
    "[2024-01-01 09:00+00,2024-01-01 17:00+00)",
    "(1.5,2)",
    "((0,0),(2,1))",
    "[(0,0),(1,1)]",
    "((0,0),(1,0),(0,1))",
    "<(0,0),2>",
    "busy",
    "[\"calm\", \"busy\"]",
    "3",
    "[1, 2]",
    "[\"10.0.0.1\", \"::1\"]",
    "[\"Red\", \"blue\"]",
    "[\"[1,2)\", \"empty\"]",
    "{\"a\": [1, \"\\u00e9\"]}",
    "{\"b\": \"\\ud800 is fine in json\"}",
];

/// Another row: NULLs where the schema allows them, and other spellings.
const SPARSE: [&str; 31] = [
    "db-1",
    "",
    "::ffff:1.2.3.4",
    "",
    "",
    "",
    "",
    "-0.5",
    "",
    "",
    "011",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "calm",
    "[]",
    "",
    "",
    "",
    "",
    "",
    "[]",
    "1",
];

fn host_app(test: &str, rows: &[[&str; 31]]) -> App {
    App::new(test, SCHEMA, &legacy(rows), &mapping())
}

#[test]
fn every_type_loads_through_text_input_and_reloads_to_nothing() {
    let app = host_app("types_every", &[GOOD, SPARSE]);
    app.loads_and_converges();
    let row = |col: &str, id: &str| {
        app.db.one(&format!(
            "SELECT coalesce({col}::text, 'NULL') FROM host WHERE legacy_id = '{id}'"
        ))
    };
    // PostgreSQL's own input parsed each value: its canonical output shows it.
    for (col, want) in [
        ("contact", "Ops@Example.com"),
        // (inet's cast to text keeps the netmask, its output does not)
        ("addr", "10.0.0.1/32"),
        ("net", "10.0.0.0/8"),
        ("uptime", "1 day 02:03:04.5"),
        // interval(0): rounded as an INSERT rounds it
        ("rounded", "00:00:02"),
        ("price", "$12.34"),
        ("flags", "10100000"),
        ("code", "110"),
        ("search", "'brown' 'fox' 'quick' 'the'"),
        ("attrs", "\"row\"=>\"B 2\", \"rack\"=>\"7\""),
        ("windows", "{[1,3),[5,8)}"),
        ("area", "(2,1),(0,0)"),
        ("moods", "{calm,busy}"),
        ("hit_list", "{1,2}"),
        ("addrs", "{10.0.0.1,::1}"),
        ("tags", "{Red,blue}"),
        ("spans", "{\"[1,2)\",empty}"),
        ("body", "{\"a\": [1, \"é\"]}"),
    ] {
        assert_eq!(row(col, "1"), want, "{col}");
    }
    assert_eq!(row("addr", "2"), "::ffff:1.2.3.4/128");
    assert_eq!(row("price", "2"), "-$0.50");
    assert_eq!(row("contact", "2"), "NULL");
    // The types are the columns' own, usable as the application uses them.
    assert_eq!(
        app.db.one(
            "SELECT (addr << net)::text || ' ' || (attrs -> 'rack') || ' ' || (search @@ 'fox'::tsquery)::text
                    || ' ' || (4 <@ ports)::text || ' ' || (contact = 'ops@example.COM')::text || ' ' || mood::text
               FROM host WHERE legacy_id = '1'"
        ),
        "true 7 true true true busy"
    );
    // The application's INSERT works afterwards, its domains and id sequence intact.
    assert_eq!(
        app.db.one(
            "INSERT INTO host (name, addr, code, hits) VALUES ('new', '192.168.0.1', B'001', 9) RETURNING id"
        ),
        "3"
    );
    let bad = crate::harness::try_sql(
        &app.db.url,
        "INSERT INTO host (name, code, hits) VALUES ('x', B'001', 0)",
    );
    assert!(bad.unwrap_err().contains("posint_check"));
}

#[test]
fn a_changed_value_of_a_text_input_type_is_updated_and_then_converges() {
    let app = host_app("types_changed", &[GOOD, SPARSE]);
    app.run_with("load", &[]).ok();
    // A case-only change in citext, a box of the same area elsewhere (box = box compares
    // areas), an interval spelt otherwise: each is a change to write.
    app.db.edit_sqlite(
        "UPDATE host SET name = 'WEB-1', area = '((5,5),(7,6))', uptime = '26:03:04.5' WHERE id = 1;
         UPDATE host SET addr = '10.1.1.1' WHERE id = 2;",
    );
    let r = app.run_with("load", &[]);
    r.ok();
    assert_eq!(
        app.db.one("SELECT name || ' ' || area::text || ' ' || uptime::text FROM host WHERE legacy_id = '1'"),
        "WEB-1 (7,6),(5,5) 26:03:04.5"
    );
    assert_eq!(
        app.db
            .one("SELECT host(addr) FROM host WHERE legacy_id = '2'"),
        "10.1.1.1"
    );
    assert_eq!(
        crate::harness::cell(&r.stdout, "host", "updated").as_deref(),
        Some("2"),
        "{}",
        r.stdout
    );
    let stats = app.db.tuple_stats();
    app.run_with("load", &[]).ok();
    assert_eq!(app.db.tuple_stats(), stats, "a third run wrote rows");
    app.run_with("verify", &[]).ok();
}

/// No word of `text` is a staging table or one of its columns (`c1`).
fn names_no_staging(text: &str) {
    assert!(!text.contains("cutover_stage"), "{text}");
    for word in text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
        let staged = word.len() > 1
            && word.starts_with('c')
            && word[1..].bytes().all(|b| b.is_ascii_digit());
        assert!(!staged, "names a staging column `{word}`: {text}");
    }
}

#[test]
fn values_postgresql_refuses_are_rejects_naming_the_row_column_and_message() {
    let mut bad_check = GOOD;
    bad_check[24] = "-1"; // hits: posint's CHECK
    let mut bad_inet = GOOD;
    bad_inet[2] = "10.0.0.300"; // addr
    let mut bad_json = GOOD;
    bad_json[29] = "{\"a\": \"\\ud800\"}"; // body jsonb: a lone surrogate
    let mut bad_bits = GOOD;
    bad_bits[8] = "101"; // flags bit(8): three bits, which an INSERT refuses
    let mut bad_elem = GOOD;
    bad_elem[25] = "[1, 0]"; // hit_list posint[]: an element fails the CHECK
    let app = host_app(
        "types_refused",
        &[
            GOOD, bad_check, bad_inet, bad_json, bad_bits, bad_elem, SPARSE,
        ],
    );
    let schema = app.schema();
    let rejects = app.db.dir.join("rejects.csv");

    // Without --max-rejects: the load fails cleanly, naming the rows, and commits nothing.
    let r = app.run_with("load", &["--rejects", rejects.to_str().unwrap()]);
    r.fails(1);
    let all = r.all();
    // The summary wraps its lines: compare with the white space folded.
    let flat = all.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("5 rows were rejected"), "{all}");
    assert!(
        flat.contains("host.addr, refused (legacy id 3) PostgreSQL refuses this value for inet: invalid input syntax for type inet: \"10.0.0.300\""),
        "{all}"
    );
    names_no_staging(&all);
    assert_eq!(app.db.one("SELECT count(*) FROM host"), "0");

    let csv = std::fs::read_to_string(&rejects).unwrap();
    names_no_staging(&csv);
    let mut found: Vec<(String, String, String, String)> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[1].to_string(),
                r[2].to_string(),
                r[5].to_string(),
                r[4].to_string(),
            )
        })
        .collect();
    found.sort();
    let want = [
        (
            "2",
            "hits",
            "refused",
            "value for domain public.posint violates check constraint \"posint_check\"",
        ),
        (
            "3",
            "addr",
            "refused",
            "invalid input syntax for type inet: \"10.0.0.300\"",
        ),
        (
            "4",
            "body",
            "convert",
            "\\ud800, half of a UTF-16 surrogate pair",
        ),
        (
            "5",
            "flags",
            "refused",
            "bit string length 3 does not match type bit(8)",
        ),
        (
            "6",
            "hit_list",
            "refused",
            "value for domain public.posint violates check constraint \"posint_check\"",
        ),
    ];
    assert_eq!(found.len(), want.len(), "{csv}");
    for ((id, col, code, reason), (wid, wcol, wcode, wreason)) in found.iter().zip(want) {
        assert_eq!(
            (id.as_str(), col.as_str(), code.as_str()),
            (wid, wcol, wcode),
            "{csv}"
        );
        assert!(reason.contains(wreason), "{id}: {reason}");
    }
    assert!(
        csv.starts_with("table,") && csv.contains("\nhost,2,hits,"),
        "{csv}"
    );

    // Within --max-rejects: the rest loads, and a second run converges.
    app.run_with("load", &["--max-rejects", "5"]).ok();
    assert_eq!(
        app.db
            .one("SELECT string_agg(legacy_id, ',' ORDER BY legacy_id) FROM host"),
        "1,7"
    );
    let stats = app.db.tuple_stats();
    app.run_with("load", &["--max-rejects", "5"]).ok();
    assert_eq!(app.db.tuple_stats(), stats, "a second run wrote rows");
    let v = app.run_with("verify", &[]);
    v.ok();
    assert_eq!(app.schema(), schema, "the load changed the schema");
}

#[test]
fn a_legacy_id_column_of_a_checked_domain_rejects_bad_ids_and_references_still_resolve() {
    // Legacy ids in a domain with a CHECK, referenced by another table: a bad id is a
    // reject of its own row, and the reference to it is a reject naming that parent.
    let app = App::new(
        "types_legacy_domain",
        "CREATE DOMAIN airtable_id AS text CHECK (VALUE LIKE 'rec%');
         CREATE TABLE team (id serial PRIMARY KEY, airtable_id airtable_id UNIQUE, name text);
         CREATE TABLE member (id serial PRIMARY KEY, airtable_id airtable_id UNIQUE,
                              team_id integer REFERENCES team (id));",
        "CREATE TABLE team (id TEXT PRIMARY KEY, name TEXT);
         INSERT INTO team VALUES ('recA', 'a'), ('bad1', 'b');
         CREATE TABLE member (id TEXT PRIMARY KEY, team TEXT);
         INSERT INTO member VALUES ('recM1', 'recA'), ('recM2', 'bad1'), ('recM3', 'nope');",
        "[tables.team]\nlegacy_column = \"airtable_id\"\n[tables.team.columns]\nname = \"name\"\n\n\
         [tables.member]\nlegacy_column = \"airtable_id\"\n[tables.member.columns]\nteam_id = { field = \"team\", references = \"team\" }\n",
    );
    let rejects = app.db.dir.join("rejects.csv");
    app.run_with(
        "load",
        &["--max-rejects", "3", "--rejects", rejects.to_str().unwrap()],
    )
    .ok();
    let csv = std::fs::read_to_string(&rejects).unwrap();
    let rows: Vec<String> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| {
            let r = r.unwrap();
            format!("{} {} {} {}", &r[0], &r[1], &r[2], &r[5])
        })
        .collect();
    assert_eq!(
        rows,
        [
            "team bad1 airtable_id refused",
            "member recM2 team_id parent_rejected",
            "member recM3 team_id dangling_reference"
        ],
        "{csv}"
    );
    assert!(
        csv.contains("violates check constraint \"\"airtable_id_check\"\""),
        "{csv}"
    );
    assert_eq!(
        app.db.one("SELECT string_agg(m.airtable_id || '>' || t.airtable_id, ',') FROM member m JOIN team t ON t.id = m.team_id"),
        "recM1>recA"
    );
    let stats = app.db.tuple_stats();
    app.run_with("load", &["--max-rejects", "3"]).ok();
    assert_eq!(app.db.tuple_stats(), stats, "a second run wrote rows");
}

#[test]
fn more_refused_rows_than_are_kept_in_detail_are_all_rejected_and_counted() {
    // 10,500 of 12,000 rows refused: more than the 10,000 held in detail, so the rest are
    // found set-based; every one is counted and none reaches the target.
    let app = App::new(
        "types_many_refused",
        "CREATE TABLE device (id serial PRIMARY KEY, legacy_id text UNIQUE, addr inet);",
        "CREATE TABLE device (id INTEGER PRIMARY KEY, addr TEXT);
         INSERT INTO device WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12000)
             SELECT i, CASE WHEN i % 8 = 0 THEN '10.0.0.' || (i % 256) ELSE 'host-' || i END FROM n;",
        "[tables.device]\nlegacy_column = \"legacy_id\"\n[tables.device.columns]\naddr = \"addr\"\n",
    );
    let rejects = app.db.dir.join("rejects.csv");
    let r = app.run_with(
        "load",
        &[
            "--max-rejects",
            "10500",
            "--rejects",
            rejects.to_str().unwrap(),
        ],
    );
    r.ok();
    assert_eq!(
        crate::harness::cell(&r.stdout, "device", "rejected").as_deref(),
        Some("10,500"),
        "{}",
        r.stdout
    );
    assert_eq!(app.db.one("SELECT count(*) FROM device"), "1500");
    let csv = std::fs::read_to_string(&rejects).unwrap();
    let kept = csv::Reader::from_reader(csv.as_bytes()).records().count();
    assert_eq!(kept, 10_000, "the first rejects in detail");
    assert!(csv.contains("\ndevice,1,addr,'host-1',"), "in source order");
    app.run_with("load", &["--max-rejects", "10499"]).fails(1);
}
