//! Application schemas as real projects write them, loaded as they are: the schema is never
//! changed (`pg_dump -s` is the same before and after), a second run writes nothing, `verify`
//! finds no difference, and the application's own INSERT works afterwards.

use crate::harness::{Db, Run, run, write};
use std::path::PathBuf;

/// One application: its schema in a fresh database, its legacy SQLite file, its mapping.
struct App {
    db: Db,
    mapping: PathBuf,
    source: String,
}

impl App {
    fn new(test: &str, schema: &str, legacy: &str, mapping: &str) -> App {
        let db = Db::bare(test);
        db.sql(schema);
        let sqlite = db.dir.join("legacy.sqlite");
        rusqlite::Connection::open(&sqlite)
            .unwrap()
            .execute_batch(legacy)
            .unwrap();
        let mapping = write(&db.dir, "app.toml", mapping);
        App {
            source: format!("sqlite:{}", sqlite.display()),
            db,
            mapping,
        }
    }

    fn cutover(&self, cmd: &str) -> Run {
        run(&[
            cmd,
            "-m",
            self.mapping.to_str().unwrap(),
            "--source",
            &self.source,
            "--target",
            &self.db.url,
        ])
    }

    /// The schema as `pg_dump -s` writes it.
    fn schema(&self) -> String {
        let pg_dump = cutover_testkit::find_bindir().unwrap().join("pg_dump");
        let out = std::process::Command::new(pg_dump)
            .args(["-s", "--no-owner", &self.db.url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Each dump carries a random `\restrict` key: not part of the schema.
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// check, load, a second load that writes nothing, verify — the schema untouched.
    fn loads_and_converges(&self) {
        let schema = self.schema();
        self.cutover("check").ok();
        self.cutover("load").ok();
        let stats = self.db.tuple_stats();
        self.cutover("load").ok();
        assert_eq!(self.db.tuple_stats(), stats, "a second run wrote rows");
        self.cutover("verify").ok();
        assert_eq!(self.schema(), schema, "the load changed the schema");
    }
}

#[test]
fn sequences_named_only_in_defaults_and_shared_ones_are_set_past_every_row() {
    // As dumped and older schemas have them: sequences that no column owns, one of them
    // shared by two mapped tables and a table the application alone writes.
    let app = App::new(
        "schemas_sequences",
        "CREATE SEQUENCE film_film_id_seq;
         CREATE TABLE film (film_id integer NOT NULL DEFAULT nextval('film_film_id_seq'::regclass) PRIMARY KEY,
                            title text NOT NULL, legacy_id text UNIQUE);
         CREATE SEQUENCE shared_id_seq;
         CREATE TABLE note (id bigint NOT NULL DEFAULT nextval('shared_id_seq') PRIMARY KEY, body text, legacy_id text UNIQUE);
         CREATE TABLE memo (id bigint NOT NULL DEFAULT nextval('shared_id_seq') PRIMARY KEY, body text, legacy_id text UNIQUE);
         CREATE TABLE audit (id bigint NOT NULL DEFAULT nextval('shared_id_seq') PRIMARY KEY, what text);
         INSERT INTO audit (id, what) VALUES (500, 'written by the application');",
        "CREATE TABLE film (id INTEGER PRIMARY KEY, title TEXT);
         INSERT INTO film VALUES (1, 'Academy Dinosaur'), (2, 'Ace Goldfinger'), (3, 'Adaptation Holes');
         CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT);
         INSERT INTO note VALUES (1, 'a'), (2, 'b');
         CREATE TABLE memo (id INTEGER PRIMARY KEY, body TEXT);
         INSERT INTO memo VALUES (3, 'c'), (4, 'd');",
        "[tables.film]\nkeep_id = true\nlegacy_column = \"legacy_id\"\n[tables.film.columns]\ntitle = \"title\"\n\n\
         [tables.note]\nkeep_id = true\nlegacy_column = \"legacy_id\"\n[tables.note.columns]\nbody = \"body\"\n\n\
         [tables.memo]\nkeep_id = true\nlegacy_column = \"legacy_id\"\n[tables.memo.columns]\nbody = \"body\"\n",
    );
    app.loads_and_converges();
    // The application's next INSERTs: past the loaded ids, and past the row of the table
    // cutover does not load that shares the sequence.
    assert_eq!(
        app.db
            .one("INSERT INTO film (title) VALUES ('new') RETURNING film_id"),
        "4"
    );
    assert_eq!(
        app.db
            .one("INSERT INTO note (body) VALUES ('new') RETURNING id"),
        "501"
    );
    assert_eq!(
        app.db
            .one("INSERT INTO memo (body) VALUES ('new') RETURNING id"),
        "502"
    );
    assert_eq!(
        app.db
            .one("INSERT INTO audit (what) VALUES ('new') RETURNING id"),
        "503"
    );
}

#[test]
fn a_partitioned_table_keeps_every_index_valid_and_its_keys_enforced() {
    let app = App::new(
        "schemas_partitions",
        "CREATE TABLE event (id bigint NOT NULL, happened date NOT NULL, what text,
                             legacy_id text NOT NULL,
                             PRIMARY KEY (id, happened), UNIQUE (legacy_id, happened))
             PARTITION BY RANGE (happened);
         CREATE TABLE event_2023 PARTITION OF event FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
         CREATE TABLE event_2024 PARTITION OF event FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE INDEX event_what ON event (what);",
        "CREATE TABLE event (id INTEGER PRIMARY KEY, happened TEXT, what TEXT);
         INSERT INTO event VALUES (1, '2023-05-01', 'a'), (2, '2024-02-03', 'b'), (3, '2024-07-08', 'c');",
        "[tables.event]\nkeep_id = false\nlegacy_column = \"legacy_id\"\n[tables.event.columns]\nid = \"id\"\nhappened = \"happened\"\nwhat = \"what\"\n",
    );
    app.loads_and_converges();
    assert_eq!(app.db.one("SELECT count(*) FROM event_2024"), "2");
    assert_eq!(
        app.db.one(
            "SELECT bool_and(i.indisvalid)::text || ' ' || count(*) FROM pg_index i
              WHERE i.indrelid IN ('event'::regclass, 'event_2023'::regclass, 'event_2024'::regclass)"
        ),
        // three indexes (primary key, unique, event_what) on the parent and on each partition
        "true 9"
    );
    let dup = crate::harness::try_sql(
        &app.db.url,
        "INSERT INTO event (id, happened, legacy_id) VALUES (2, '2024-02-03', 'x')",
    );
    assert!(dup.unwrap_err().contains("duplicate key"));
}

#[test]
fn a_reference_column_of_another_type_than_its_parent_key_loads_and_reloads() {
    // A varchar column holding integer ids, and an int column pointing at a bigint key.
    let app = App::new(
        "schemas_ref_types",
        "CREATE TABLE author (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text, legacy_id text UNIQUE);
         CREATE TABLE book (id serial PRIMARY KEY, title text, author_ref varchar(20), legacy_id text UNIQUE);
         CREATE TABLE review (id serial PRIMARY KEY, author_id integer REFERENCES author (id), legacy_id text UNIQUE);",
        "CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO author VALUES (1, 'Le Guin'), (2, 'Lem');
         CREATE TABLE book (id INTEGER PRIMARY KEY, title TEXT, author INTEGER);
         INSERT INTO book VALUES (10, 'The Dispossessed', 1), (11, 'Solaris', 2);
         CREATE TABLE review (id INTEGER PRIMARY KEY, author INTEGER);
         INSERT INTO review VALUES (20, 2);",
        "[tables.author]\nlegacy_column = \"legacy_id\"\n[tables.author.columns]\nname = \"name\"\n\n\
         [tables.book]\nlegacy_column = \"legacy_id\"\n[tables.book.columns]\ntitle = \"title\"\nauthor_ref = { field = \"author\", references = \"author\" }\n\n\
         [tables.review]\nlegacy_column = \"legacy_id\"\n[tables.review.columns]\nauthor_id = { field = \"author\", references = \"author\" }\n",
    );
    app.loads_and_converges();
    assert_eq!(
        app.db.one(
            "SELECT string_agg(b.title || '=' || a.name, ', ' ORDER BY b.id) FROM book b JOIN author a ON a.id::text = b.author_ref"
        ),
        "The Dispossessed=Le Guin, Solaris=Lem"
    );
}

#[test]
fn uuid_keys_the_application_generates_are_generated_and_links_follow() {
    // As SQLModel, Django or Rails write it: uuid primary keys with no server default (the
    // application's ORM calls uuid4()), referenced by uuid foreign keys.
    let app = App::new(
        "schemas_uuid",
        "CREATE TABLE team (id uuid NOT NULL PRIMARY KEY, name varchar NOT NULL, legacy_id varchar UNIQUE);
         CREATE TABLE hero (id uuid NOT NULL PRIMARY KEY, name varchar NOT NULL,
                            team_id uuid REFERENCES team (id), legacy_id varchar UNIQUE);",
        "CREATE TABLE teams (id TEXT PRIMARY KEY, name TEXT);
         INSERT INTO teams VALUES ('recTeamA', 'Preventers'), ('recTeamB', 'Z-Force');
         CREATE TABLE heroes (id TEXT PRIMARY KEY, name TEXT, team TEXT);
         INSERT INTO heroes VALUES ('recH1', 'Deadpond', 'recTeamB'), ('recH2', 'Rusty-Man', 'recTeamA'),
                                   ('recH3', 'Spider-Boy', NULL);",
        "[tables.team]\nfrom = \"teams\"\nlegacy_column = \"legacy_id\"\ngenerate_id = \"uuid5\"\n[tables.team.columns]\nname = \"name\"\n\n\
         [tables.hero]\nfrom = \"heroes\"\nlegacy_column = \"legacy_id\"\ngenerate_id = \"uuid4\"\n[tables.hero.columns]\nname = \"name\"\nteam_id = { field = \"team\", references = \"team\" }\n",
    );
    app.loads_and_converges();
    let links = "SELECT string_agg(h.name || '=' || coalesce(t.name, '-'), ', ' ORDER BY h.name)
                   FROM hero h LEFT JOIN team t ON t.id = h.team_id";
    assert_eq!(
        app.db.one(links),
        "Deadpond=Z-Force, Rusty-Man=Preventers, Spider-Boy=-"
    );
    // Name-based ids: what anyone computes from the table and the legacy id, and the same
    // after --mode replace; random ids are new, and the links still hold.
    let teams = "SELECT string_agg(legacy_id || '=' || id, ', ' ORDER BY legacy_id) FROM team";
    let before = app.db.one(teams);
    assert!(before.contains(&format!(
        "recTeamA={}",
        uuid_v5_of("cutover:public.team", "recTeamA")
    )));
    let heroes = app
        .db
        .one("SELECT string_agg(id::text, ',' ORDER BY legacy_id) FROM hero");
    run(&[
        "load",
        "-m",
        app.mapping.to_str().unwrap(),
        "--source",
        &app.source,
        "--target",
        &app.db.url,
        "--mode",
        "replace",
    ])
    .ok();
    assert_eq!(app.db.one(teams), before);
    assert_ne!(
        app.db
            .one("SELECT string_agg(id::text, ',' ORDER BY legacy_id) FROM hero"),
        heroes
    );
    assert_eq!(
        app.db.one(links),
        "Deadpond=Z-Force, Rusty-Man=Preventers, Spider-Boy=-"
    );
    // The application's own INSERT.
    app.db
        .sql("INSERT INTO team (id, name) VALUES (gen_random_uuid(), 'new')");
}

/// UUIDv5 of `name` in the namespace UUIDv5(URL namespace, `table_ns`), computed by another
/// implementation, Python's uuid module, as the README says a team can.
fn uuid_v5_of(table_ns: &str, name: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, uuid; print(uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, sys.argv[1]), sys.argv[2]))",
            table_ns,
            name,
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_deferred_constraint_trigger_on_an_empty_table_does_not_stop_the_load() {
    // A check the application runs at commit time (DEFERRABLE INITIALLY DEFERRED): its
    // pending events used to block rebuilding the constraints set aside for a bulk load.
    let app = App::new(
        "schemas_deferred_trigger",
        "CREATE TABLE account (id serial PRIMARY KEY, name text NOT NULL, legacy_id text UNIQUE);
         CREATE TABLE account_log (account_id integer, at timestamptz DEFAULT now());
         CREATE FUNCTION account_checked() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF NEW.name = '' THEN RAISE EXCEPTION 'an account needs a name'; END IF;
             INSERT INTO public.account_log (account_id) VALUES (NEW.id);
             RETURN NULL;
           END $$;
         CREATE CONSTRAINT TRIGGER account_checked AFTER INSERT OR UPDATE ON account
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION account_checked();",
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO accounts VALUES (1, 'Ada'), (2, 'Grace');",
        "[tables.account]\nfrom = \"accounts\"\nlegacy_column = \"legacy_id\"\n[tables.account.columns]\nname = \"name\"\n",
    );
    app.loads_and_converges();
    // The trigger ran for each loaded row, at the latest at commit.
    assert_eq!(app.db.one("SELECT count(*) FROM account_log"), "2");
}
