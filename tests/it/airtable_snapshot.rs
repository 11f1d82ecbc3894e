//! Airtable extraction that survives a failed run: the pages a run fetched are kept (the
//! resume journal) and the next run fetches only the rest, with the same rows as a clean run.

use crate::harness::{Db, Run, run_env};
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig, synthetic};
use std::path::{Path, PathBuf};
use std::time::Duration;

const BASE: &str = "appSnapshot000001";
const TOKEN: &str = "patFAKEtoken.0123456789abcdef0123456789abcdef";

/// Users: 450 records (5 pages of 100), Votes: 350 (4 pages).
fn config() -> FakeConfig {
    let mut c = FakeConfig::new(BASE, TOKEN);
    c.rate_limit = None;
    let (meta, rows) = synthetic("Users", 450);
    c = c.with_table(meta, rows);
    let (meta, rows) = synthetic("Votes", 350);
    c.with_table(meta, rows)
}

const SCHEMA: &str = "
CREATE TABLE users (id bigserial PRIMARY KEY, airtable_id text UNIQUE NOT NULL, name text, number bigint);
CREATE TABLE votes (id bigserial PRIMARY KEY, airtable_id text UNIQUE NOT NULL, name text);
";

/// The mapping; `users_number` also maps Users' Number (another field set for Users).
fn mapping(dir: &Path, users_number: bool) -> PathBuf {
    let number = if users_number {
        "number = \"Number\"\n"
    } else {
        ""
    };
    let text = format!(
        "[source]\nkind = \"airtable\"\nbase = \"{BASE}\"\n\n\
         [tables.users]\nfrom = \"Users\"\nlegacy_id = \"@id\"\nlegacy_column = \"airtable_id\"\n\
         [tables.users.columns]\nname = \"Name\"\n{number}\n\
         [tables.votes]\nfrom = \"Votes\"\nlegacy_id = \"@id\"\nlegacy_column = \"airtable_id\"\n\
         [tables.votes.columns]\nname = \"Name\"\n"
    );
    let path = dir.join(format!("mapping-{users_number}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn db(test: &str) -> Db {
    let db = Db::bare(test);
    db.sql(SCHEMA);
    db
}

/// `cutover load` against the fake, with this test's directory as TMPDIR (where the spool
/// and the resume journal go).
fn load(server: &FakeAirtable, db: &Db, mapping: &Path) -> Run {
    let url = server.url();
    run_env(
        &[
            "load",
            "-m",
            mapping.to_str().unwrap(),
            "--target",
            db.url.as_str(),
        ],
        &[
            ("AIRTABLE_API_URL", url.as_str()),
            ("AIRTABLE_TOKEN", TOKEN),
            ("XDG_RUNTIME_DIR", db.dir.to_str().unwrap()),
            ("TMPDIR", db.dir.to_str().unwrap()),
        ],
    )
}

fn rows(db: &Db) -> String {
    let mut out = String::new();
    for t in ["users", "votes"] {
        for r in db.sql(&format!("SELECT to_jsonb(t)::text FROM {t} t ORDER BY id")) {
            out.push_str(r[0].as_deref().unwrap_or("NULL"));
            out.push('\n');
        }
    }
    out
}

/// What a load with no fault gives.
fn clean_rows(test: &str, users_number: bool) -> String {
    let (_, server) = FakeAirtable::start(config()).unwrap();
    let db = db(test);
    load(&server, &db, &mapping(&db.dir, users_number)).ok();
    assert_eq!(server.stats().pages, 9, "a clean run fetches 5 + 4 pages");
    rows(&db)
}

/// The page files of the resume journal under `tmp`.
fn kept_pages(tmp: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "page") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(tmp).unwrap().flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with("cutover-airtable-resume-")
        {
            walk(&e.path(), &mut out);
        }
    }
    out.sort();
    out
}

/// Fail Users at page 3 with a fatal 401: the run stops, Users' pages 1–2 and all of Votes
/// are kept.
fn failing_server() -> FakeAirtable {
    let mut c = config();
    c.faults.fatal_at_page = Some(("Users".to_string(), 3));
    FakeAirtable::start(c).unwrap().1
}

fn fail_first(server: &FakeAirtable, db: &Db, mapping: &Path) {
    let r = load(server, db, mapping);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("401"), "{}", r.all());
    assert_eq!(server.stats().pages, 2 + 4, "{:?}", server.stats());
    assert_eq!(kept_pages(&db.dir).len(), 6, "{:?}", kept_pages(&db.dir));
    assert_eq!(db.one("SELECT count(*) FROM users"), "0");
}

#[test]
fn a_failed_load_is_resumed_fetching_each_page_once() {
    let clean = clean_rows("resume_clean", false);
    let server = failing_server();
    let db = db("resume_each_page_once");
    let m = mapping(&db.dir, false);
    fail_first(&server, &db, &m);
    // Private: the journal's files are its owner's alone.
    for p in kept_pages(&db.dir) {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }

    load(&server, &db, &m).ok();
    assert_eq!(
        server.stats().pages,
        9,
        "every page fetched once over both runs: {:?}",
        server.stats()
    );
    assert_eq!(rows(&db), clean);
    assert!(
        kept_pages(&db.dir).is_empty(),
        "removed once the run succeeded"
    );
}

#[test]
fn a_torn_page_is_fetched_again() {
    let clean = clean_rows("torn_clean", false);
    let server = failing_server();
    let db = db("torn_page");
    let m = mapping(&db.dir, false);
    fail_first(&server, &db, &m);
    // Users' page 2 loses its tail (a disk that lost the end of a write).
    let users_page_2 = kept_pages(&db.dir)
        .into_iter()
        .find(|p| {
            p.ends_with("00000002.page") && std::fs::read_to_string(p).unwrap().contains("Users 1")
        })
        .expect("Users' page 2 kept");
    let bytes = std::fs::read(&users_page_2).unwrap();
    std::fs::write(&users_page_2, &bytes[..bytes.len() / 2]).unwrap();

    load(&server, &db, &m).ok();
    assert_eq!(
        server.stats().pages,
        6 + 4,
        "Users' pages 2 to 5 fetched: {:?}",
        server.stats()
    );
    assert_eq!(rows(&db), clean);
}

#[test]
fn an_expired_offset_restarts_the_table_cleanly() {
    let clean = clean_rows("expired_clean", false);
    let mut c = config();
    c.faults.fatal_at_page = Some(("Users".to_string(), 3));
    c.faults.iterator_ttl = Some(Duration::from_millis(1500));
    let (_, server) = FakeAirtable::start(c).unwrap();
    let db = db("expired_offset");
    let m = mapping(&db.dir, false);
    fail_first(&server, &db, &m);
    std::thread::sleep(Duration::from_millis(1600));

    let r = load(&server, &db, &m);
    r.ok();
    let s = server.stats();
    // The kept offset was refused: Users listed again from page 1 (5 pages), Votes kept.
    assert_eq!(s.pages, 6 + 5, "{s:?}\n{}", r.all());
    assert!(r.all().contains("1 tables restarted"), "{}", r.all());
    assert_eq!(rows(&db), clean, "no record twice, none missing");
}

#[test]
fn pages_fetched_for_other_fields_are_not_reused() {
    let clean = clean_rows("fields_clean", true);
    let server = failing_server();
    let db = db("other_fields");
    fail_first(&server, &db, &mapping(&db.dir, false));
    // Users now wants Number too: its kept pages hold no Number, so Users is listed again;
    // Votes asks for the same fields as before and is not.
    load(&server, &db, &mapping(&db.dir, true)).ok();
    assert_eq!(server.stats().pages, 6 + 5, "{:?}", server.stats());
    assert_eq!(rows(&db), clean);
}
