//! `inspect` lists a source and drafts a mapping that, for a schema whose names match,
//! checks and loads without edits.

use crate::harness::{Db, run};

#[test]
fn drafted_mapping_loads_a_matching_schema() {
    let db = Db::bare("inspect_draft");
    db.sql(
        "CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL);
         CREATE TABLE books (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text, author_id integer NOT NULL REFERENCES authors(id));
         CREATE TABLE tags (id serial PRIMARY KEY, label text);
         CREATE TABLE book_tags (book_id integer NOT NULL REFERENCES books(id), tag_id integer NOT NULL REFERENCES tags(id), PRIMARY KEY (book_id, tag_id));",
    );
    let sqlite = db.dir.join("lib.sqlite");
    let conn = rusqlite::Connection::open(&sqlite).unwrap();
    conn.execute_batch(
        "CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT, author_id INTEGER REFERENCES authors(id));
         CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT);
         CREATE TABLE book_tags (book_id INTEGER REFERENCES books(id), tag_id INTEGER REFERENCES tags(id));
         INSERT INTO authors VALUES (3, 'Le Guin'), (7, 'Borges');
         INSERT INTO books VALUES (10, 'The Dispossessed', 3), (11, 'Ficciones', 7);
         INSERT INTO tags VALUES (1, 'sf'), (2, 'classic');
         INSERT INTO book_tags VALUES (10, 1), (10, 2), (11, 2);",
    )
    .unwrap();
    drop(conn);
    let source = format!("sqlite:{}", sqlite.display());
    let draft = db.dir.join("draft.toml");
    let r = run(&[
        "inspect",
        "--source",
        &source,
        "--emit-mapping",
        draft.to_str().unwrap(),
    ]);
    r.ok();
    assert!(
        r.stdout
            .contains("author_id                        INTEGER  -> authors"),
        "{}",
        r.stdout
    );
    let text = std::fs::read_to_string(&draft).unwrap();
    assert!(
        text.contains("[tables.book_tags]\nfrom = \"book_tags\"\njunction = true"),
        "{text}"
    );
    assert!(
        text.contains("author_id = { field = \"author_id\", references = \"authors\" }"),
        "{text}"
    );

    let m = draft.to_str().unwrap();
    run(&["check", "-m", m, "--target", &db.url]).ok();
    let r = run(&["load", "-m", m, "--target", &db.url]);
    r.ok();
    assert_eq!(db.one("SELECT string_agg(b.title || '/' || a.name, ',' ORDER BY b.id) FROM books b JOIN authors a ON a.id = b.author_id"), "The Dispossessed/Le Guin,Ficciones/Borges");
    assert_eq!(db.one("SELECT count(*) FROM book_tags"), "3");
    // The identity column's sequence was moved past the kept ids.
    db.sql("INSERT INTO books (title, author_id) VALUES ('New', 3)");
    assert_eq!(db.one("SELECT max(id) FROM books"), "12");
    // An existing file is never overwritten.
    let r = run(&[
        "inspect",
        "--source",
        &source,
        "--emit-mapping",
        draft.to_str().unwrap(),
    ]);
    r.fails(2);
    assert!(r.stderr.contains("already exists"), "{}", r.all());
}
