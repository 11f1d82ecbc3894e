//! Names that need quoting — spaces, double quotes, upper case, reserved words — load
//! correctly: nothing from a mapping or a source is spliced into SQL unquoted.

use crate::harness::{Db, run, write};

const SCHEMA: &str = r#"
CREATE TABLE "Users" ("Key" bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "legacy ""id""" text UNIQUE, "from" text NOT NULL);
CREATE TABLE "Order Items" (
    "ID" serial PRIMARY KEY,
    "Legacy" text UNIQUE,
    "select" text NOT NULL,
    "Weird; DROP TABLE x;--" integer,
    "user" bigint REFERENCES "Users"("Key")
);
"#;

const MAPPING: &str = r#"
[tables."Users"]
from = "people table"
legacy_id = "Id"
legacy_column = 'legacy "id"'
[tables."Users".columns]
"from" = "where"

[tables."Order Items"]
from = "order"
legacy_id = "Id"
legacy_column = "Legacy"
[tables."Order Items".columns]
"select" = "group"
"Weird; DROP TABLE x;--" = "it's"
"user" = { field = "Owner Ref", references = "Users" }
"#;

#[test]
fn quoted_names_load_and_reload() {
    let db = Db::bare("identifiers");
    db.sql(SCHEMA);
    let sqlite = db.dir.join("weird.sqlite");
    let conn = rusqlite::Connection::open(&sqlite).unwrap();
    conn.execute_batch(
        r#"CREATE TABLE "people table" ("Id" TEXT, "where" TEXT);
           INSERT INTO "people table" VALUES ('u1', 'Paris'), ('u''2', 'O"Hare');
           CREATE TABLE "order" ("Id" TEXT, "group" TEXT, "it's" INTEGER, "Owner Ref" TEXT);
           INSERT INTO "order" VALUES ('o1', 'a', 1, 'u1'), ('o2', 'b', 2, 'u''2');"#,
    )
    .unwrap();
    drop(conn);
    let mapping = write(&db.dir, "weird.toml", MAPPING);
    let source = format!("sqlite:{}", sqlite.display());
    let args = |cmd: &'static str| {
        vec![
            cmd,
            "-m",
            mapping.to_str().unwrap(),
            "--source",
            source.as_str(),
            "--target",
            db.url.as_str(),
        ]
    };
    run(&args("check")).ok();
    run(&args("load")).ok();
    assert_eq!(db.one(r#"SELECT string_agg("legacy ""id""" || '=' || "from", ',' ORDER BY "Key") FROM "Users""#), "u1=Paris,u'2=O\"Hare");
    assert_eq!(
        db.one(r#"SELECT string_agg(o."select" || o."Weird; DROP TABLE x;--" || u."legacy ""id""", ',' ORDER BY o."ID") FROM "Order Items" o JOIN "Users" u ON u."Key" = o."user""#),
        "a1u1,b2u'2"
    );
    let before = db.one(r#"SELECT string_agg(t::text, ';') FROM "Order Items" t"#);
    run(&args("load")).ok();
    assert_eq!(
        db.one(r#"SELECT string_agg(t::text, ';') FROM "Order Items" t"#),
        before
    );
    run(&args("verify")).ok();
}
