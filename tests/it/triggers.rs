//! Triggers on the tables cutover fills, as application schemas have them (Sakila's
//! `last_updated` and `film_fulltext_trigger`, an audit trigger writing into a table of its
//! own): `check` lists each and what the load does with it; kept ones fire on the load's
//! writes; the mapping may say which columns a trigger sets (so a NOT NULL `tsvector` the
//! trigger fills needs no mapping, and a re-run converges although a trigger rewrites a
//! mapped column) or disable a trigger for the load, which leaves the schema as it was.

use crate::app::App;
use crate::harness::{cell, run, tcp_port};

const FILMS: &str = "
    CREATE TABLE film (film_id serial PRIMARY KEY, title text NOT NULL,
                       last_update timestamptz NOT NULL DEFAULT now(),
                       fulltext tsvector NOT NULL, legacy_id text UNIQUE);
    CREATE FUNCTION last_updated() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN NEW.last_update = CURRENT_TIMESTAMP; RETURN NEW; END $$;
    CREATE TRIGGER last_updated BEFORE UPDATE ON film FOR EACH ROW EXECUTE FUNCTION last_updated();
    CREATE TRIGGER film_fulltext_trigger BEFORE INSERT OR UPDATE ON film FOR EACH ROW
      EXECUTE FUNCTION tsvector_update_trigger(fulltext, 'pg_catalog.english', title);
    CREATE TABLE film_audit (film_id integer, op text, at timestamptz DEFAULT now());
    CREATE FUNCTION film_audited() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO public.film_audit (film_id, op) VALUES (NEW.film_id, TG_OP); RETURN NULL; END $$;
    CREATE TRIGGER film_audit AFTER INSERT OR UPDATE ON film FOR EACH ROW EXECUTE FUNCTION film_audited();";

const FILMS_LEGACY: &str = "
    CREATE TABLE films (id INTEGER PRIMARY KEY, title TEXT, updated TEXT);
    INSERT INTO films VALUES (1, 'Academy Dinosaur', '2006-02-15 05:03:42+00'),
                             (2, 'Ace Goldfinger', '2006-02-15 05:03:42+00'),
                             (3, 'Adaptation Holes', '2007-01-01 00:00:00+00');";

fn mapping(table_keys: &str) -> String {
    format!(
        "[tables.film]\nfrom = \"films\"\nlegacy_column = \"legacy_id\"\n{table_keys}\n\
         [tables.film.columns]\ntitle = \"title\"\nlast_update = \"updated\"\n"
    )
}

#[test]
fn a_trigger_filling_a_not_null_tsvector_and_one_rewriting_a_mapped_column_converge() {
    let app = App::new(
        "triggers_sakila",
        FILMS,
        FILMS_LEGACY,
        &mapping("set_by_triggers = [\"fulltext\", \"last_update\"]"),
    );
    // check lists every trigger and what the load does with it.
    let check = app.cutover("check");
    check.ok();
    let words = check
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        words.contains("trigger film_audit on film (AFTER INSERT OR UPDATE, each row): kept: fires on the load's inserts, updates"),
        "{}",
        check.stdout
    );
    assert!(
        words.contains("trigger last_updated on film (BEFORE UPDATE, each row): kept: fires on the load's updates; sets fulltext, last_update (set_by_triggers: written on insert only, never compared)"),
        "{}",
        check.stdout
    );
    assert!(
        words.contains("trigger film_fulltext_trigger on film (BEFORE INSERT OR UPDATE, each row)"),
        "{}",
        check.stdout
    );
    // The audit table is counted too: a second run writes no audit rows either.
    app.loads_and_converges();
    assert_eq!(
        app.db.one(
            "SELECT string_agg(legacy_id || ' ' || last_update::text, ', ' ORDER BY legacy_id) FROM film WHERE fulltext @@ to_tsquery('english', 'dinosaur | goldfinger')"
        ),
        "1 2006-02-15 05:03:42+00, 2 2006-02-15 05:03:42+00"
    );
    assert_eq!(
        app.db.one("SELECT string_agg(op, ',') FROM film_audit"),
        "INSERT,INSERT,INSERT"
    );

    // A title changes: the row is updated, and the triggers set last_update to now and the
    // tsvector to the new title. The next run finds nothing to do although last_update no
    // longer equals the source's, and verify agrees.
    app.edit_source("UPDATE films SET title = 'Academy Triceratops' WHERE id = 1;");
    let changed = app.run_with("load", &[]);
    changed.ok();
    assert_eq!(
        cell(&changed.stdout, "film", "updated").as_deref(),
        Some("1")
    );
    assert_eq!(
        app.db.one(
            "SELECT (last_update > now() - interval '1 hour')::text || ' ' || (fulltext @@ to_tsquery('english', 'triceratops'))::text FROM film WHERE legacy_id = '1'"
        ),
        "true true"
    );
    let stats = app.db.tuple_stats();
    let again = app.run_with("load", &[]);
    again.ok();
    assert!(again.stdout.contains("nothing to do"), "{}", again.stdout);
    assert_eq!(app.db.tuple_stats(), stats, "a re-run wrote rows");
    app.cutover("verify").ok();
    // The application's own INSERT: the trigger fills the tsvector.
    app.db.sql("INSERT INTO film (title) VALUES ('New Film')");
}

#[test]
fn a_column_a_trigger_fills_must_be_named_and_a_rewritten_one_never_verifies() {
    // Without set_by_triggers, check cannot know the trigger fills the NOT NULL tsvector.
    let app = App::new("triggers_unnamed", FILMS, FILMS_LEGACY, &mapping(""));
    let check = app.cutover("check");
    check.fails(2);
    assert!(
        check.stderr.contains(
            "target column `film.fulltext` is NOT NULL with no default, and nothing in the mapping fills it"
        ),
        "{}",
        check.stderr
    );
    // Naming only the tsvector: check warns that a BEFORE UPDATE trigger may rewrite what
    // the load writes — and indeed, after a change, last_update no longer equals the source.
    // The record of what the load wrote keeps a re-run from rewriting the row (the source did
    // not change since), but verify reports the difference for ever.
    std::fs::write(&app.mapping, mapping("set_by_triggers = [\"fulltext\"]")).unwrap();
    let check = app.cutover("check");
    check.ok();
    assert!(check.stdout.contains("sets fulltext"), "{}", check.stdout);
    app.run_with("load", &[]).ok();
    app.edit_source("UPDATE films SET title = 'Academy Triceratops' WHERE id = 1;");
    app.run_with("load", &[]).ok();
    let again = app.run_with("load", &[]);
    again.ok();
    assert_eq!(cell(&again.stdout, "film", "updated").as_deref(), Some("0"));
    app.cutover("verify").fails(1);
}

#[test]
fn triggers_the_mapping_disables_do_not_fire_and_the_schema_is_unchanged() {
    let app = App::new(
        "triggers_disabled",
        FILMS,
        FILMS_LEGACY,
        &mapping(
            "set_by_triggers = [\"fulltext\", \"last_update\"]\ndisable_triggers = [\"film_audit\"]",
        ),
    );
    let check = app.cutover("check");
    check.ok();
    let words = check
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        words.contains("trigger film_audit on film (AFTER INSERT OR UPDATE, each row): disabled by the mapping for the load, enabled again before it commits"),
        "{}",
        check.stdout
    );
    let json = app.run_with("check", &["--format", "json"]);
    json.ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let audit = v["plan"]["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "film_audit")
        .unwrap();
    assert_eq!(audit["timing"], "AFTER");
    assert!(
        audit["during_load"]
            .as_str()
            .unwrap()
            .starts_with("disabled")
    );
    // loads_and_converges compares pg_dump -s before and after: the trigger is back.
    app.loads_and_converges();
    assert_eq!(app.db.one("SELECT count(*) FROM film_audit"), "0");
    assert_eq!(
        app.db
            .one("SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'film_audit'"),
        "O"
    );
    // The application's writes are audited again.
    app.db.sql("INSERT INTO film (title) VALUES ('New Film')");
    assert_eq!(app.db.one("SELECT count(*) FROM film_audit"), "1");

    // A misspelt trigger name is a mapping problem, with the right name.
    std::fs::write(
        &app.mapping,
        mapping("set_by_triggers = [\"fulltext\", \"last_update\"]\ndisable_triggers = [\"film_audits\"]"),
    )
    .unwrap();
    let bad = app.cutover("check");
    bad.fails(2);
    assert!(
        bad.stderr
            .contains("table `film` has no trigger `film_audits` (did you mean `film_audit`?)"),
        "{}",
        bad.stderr
    );
}

#[test]
fn disabling_a_trigger_needs_the_tables_owner_and_says_so() {
    let app = App::new(
        "triggers_owner",
        FILMS,
        FILMS_LEGACY,
        &mapping("set_by_triggers = [\"fulltext\", \"last_update\"]\ntriggers = \"disable\""),
    );
    app.db.sql(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'trig_loader') THEN CREATE ROLE trig_loader LOGIN PASSWORD 'pw'; END IF; END $$;
         GRANT ALL ON ALL TABLES IN SCHEMA public TO trig_loader;
         GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO trig_loader;
         GRANT ALL ON DATABASE \"{}\" TO trig_loader;",
        app.db.name
    ));
    let url = format!(
        "postgresql://trig_loader:pw@127.0.0.1:{}/{}?sslmode=disable",
        tcp_port(),
        app.db.name
    );
    // `triggers = "disable"` and `set_by_triggers` contradict each other.
    let check = app.cutover("check");
    check.fails(2);
    assert!(
        check
            .stderr
            .contains("`triggers = \"disable\"` turns off the triggers"),
        "{}",
        check.stderr
    );
    std::fs::write(
        &app.mapping,
        mapping("set_by_triggers = [\"fulltext\", \"last_update\"]\ndisable_triggers = [\"film_audit\"]"),
    )
    .unwrap();
    let r = run(&[
        "load",
        "-m",
        app.mapping.to_str().unwrap(),
        "--source",
        &app.source,
        "--target",
        &url,
    ]);
    r.fails(2);
    let words = r.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("the mapping disables trigger `film_audit` on `film` for the load, which only the table's owner may do")
            && words.contains("must be owner of table film")
            && words.contains("Run the load as the table's owner, or keep the trigger"),
        "{}",
        r.stderr
    );
    assert_eq!(app.db.one("SELECT count(*) FROM film"), "0");
}
