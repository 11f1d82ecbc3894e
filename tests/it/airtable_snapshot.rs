//! Airtable extraction that survives a failed run: the pages a run fetched are kept (the
//! resume journal) and the next run fetches only the rest, with the same rows as a clean run.

use crate::harness::{Db, Run, run_env};
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig, Latency, synthetic};
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
fn a_killed_load_is_resumed() {
    let clean = clean_rows("killed_clean", false);
    let mut c = config();
    c.latency = cutover_testkit::fake_airtable::Latency::Fixed(Duration::from_millis(150));
    let (url, server) = FakeAirtable::start(c).unwrap();
    let db = db("killed_load");
    let m = mapping(&db.dir, false);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args([
            "load",
            "-m",
            m.to_str().unwrap(),
            "--target",
            db.url.as_str(),
        ])
        .env_remove("DATABASE_URL")
        .env("AIRTABLE_API_URL", &url)
        .env("AIRTABLE_TOKEN", TOKEN)
        .env("XDG_RUNTIME_DIR", &db.dir)
        .env("TMPDIR", &db.dir)
        .current_dir(crate::harness::repo())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.stats().pages < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // SIGKILL: nothing runs after it, no drop, no cleanup.
    child.kill().unwrap();
    child.wait().unwrap();
    let first = server.stats().pages;
    assert!(
        (4..9).contains(&first),
        "killed mid-extraction: {first} pages"
    );
    assert!(!kept_pages(&db.dir).is_empty());

    load(&server, &db, &m).ok();
    let second = server.stats().pages - first;
    // Only what the first run had not kept: at most the pages in flight at the kill (one
    // per table) are fetched twice.
    assert!(
        second <= 9 - first + 2 && second < 9,
        "first run {first} pages, second {second}"
    );
    assert_eq!(rows(&db), clean);
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

// ---------------------------------------------------------------------------------------
// Attachments kept in the snapshot.

const DOCS_SCHEMA: &str = "
CREATE TABLE docs (id bigserial PRIMARY KEY, airtable_id text UNIQUE NOT NULL, name text,
    photo bytea, paths jsonb, urls text[]);
";

/// Docs: Photo (one attachment per record) and Files (several); the bytes of each.
fn docs_config() -> (FakeConfig, Vec<(String, Vec<u8>)>) {
    let mut c = FakeConfig::new(BASE, TOKEN);
    c.rate_limit = None;
    let meta = serde_json::json!({
        "id": "tblDocs0000000001", "name": "Docs", "primaryFieldId": "fldName0000000001",
        "fields": [
            {"id": "fldName0000000001", "name": "Name", "type": "singleLineText"},
            {"id": "fldPhoto000000001", "name": "Photo", "type": "multipleAttachments",
             "options": {"isReversed": false}},
            {"id": "fldFiles000000001", "name": "Files", "type": "multipleAttachments",
             "options": {"isReversed": false}},
            {"id": "fldScans000000001", "name": "Scans", "type": "multipleAttachments",
             "options": {"isReversed": false}}
        ]
    });
    let files: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| {
            // Every byte value, NULs and invalid UTF-8 included.
            let bytes: Vec<u8> = (0..=255u8).cycle().skip(i * 7).take(300 + i * 50).collect();
            (format!("att{i}aaaaaaaaaaaaa"), bytes)
        })
        .collect();
    let att = |i: usize, name: &str| {
        serde_json::json!({
            "id": files[i].0, "url": "https://expired.example/x", "filename": name,
            "size": files[i].1.len(), "type": "application/octet-stream",
            "thumbnails": {"small": {"url": "https://expired.example/t", "width": 36, "height": 36}}
        })
    };
    let records = vec![
        serde_json::json!({"id": "recAdoc0000000001", "createdTime": "2024-05-01T10:00:00.000Z",
            "fields": {"Name": "one", "Photo": [att(0, "photo.png")], "Files": [att(1, "a.pdf"), att(2, "b.pdf")],
            "Scans": [att(4, "s.tif")]}}),
        serde_json::json!({"id": "recBdoc0000000002", "createdTime": "2024-05-01T10:00:00.000Z",
            "fields": {"Name": "two"}}),
        serde_json::json!({"id": "recCdoc0000000003", "createdTime": "2024-05-01T10:00:00.000Z",
            "fields": {"Name": "three", "Photo": [att(3, "p.jpg")]}}),
    ];
    c = c.with_table(meta, records);
    for (id, bytes) in &files {
        c.attachments.insert(id.clone(), bytes.clone());
    }
    (c, files)
}

fn docs_mapping(dir: &Path) -> PathBuf {
    let text = format!(
        "[source]\nkind = \"airtable\"\nbase = \"{BASE}\"\n\n\
         [tables.docs]\nfrom = \"Docs\"\nlegacy_id = \"@id\"\nlegacy_column = \"airtable_id\"\n\
         [tables.docs.columns]\nname = \"Name\"\n\
         photo = {{ field = \"Photo\", attachments = {{ store = \"bytes\" }} }}\n\
         paths = {{ field = \"Files\", attachments = {{ store = \"path\" }} }}\n\
         urls = {{ field = \"Scans\", attachments = {{ store = \"url\", url_prefix = \"https://cdn.example.com/\" }} }}\n"
    );
    let path = dir.join("docs.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn export(server: &FakeAirtable, db: &Db, mapping: &Path, out: &Path) -> Run {
    let url = server.url();
    run_env(
        &[
            "export",
            "--quiet",
            "-m",
            mapping.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[
            ("AIRTABLE_API_URL", url.as_str()),
            ("AIRTABLE_TOKEN", TOKEN),
            ("XDG_RUNTIME_DIR", db.dir.to_str().unwrap()),
            ("TMPDIR", db.dir.to_str().unwrap()),
        ],
    )
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn attachment_files_are_downloaded_a_few_at_once() {
    let (mut config, files) = docs_config();
    // Every answer, the files' included, takes 100 ms once its request arrived: files fetched
    // one after another would never be answered at the same moment.
    config.latency = Latency::Fixed(Duration::from_millis(100));
    let (_, server) = FakeAirtable::start(config).unwrap();
    let db = Db::bare("attachments_at_once");
    let m = docs_mapping(&db.dir);
    let snap = db.dir.join("snap");
    export(&server, &db, &m, &snap).ok();
    let s = server.stats();
    assert_eq!(s.downloads, 5, "{s:?}");
    assert!((2..=4).contains(&s.max_downloads_at_once), "{s:?}");
    // Each file listed in the manifest once, however the downloads interleaved.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(snap.join("manifest.json")).unwrap())
            .unwrap();
    let mut listed: Vec<&str> = manifest["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = files.iter().map(|(id, _)| id.as_str()).collect();
    expected.sort();
    listed.sort();
    assert_eq!(listed, expected, "{manifest}");
}

#[test]
fn attachments_are_kept_in_the_snapshot_and_load_byte_identical() {
    let (config, files) = docs_config();
    let (_, server) = FakeAirtable::start(config).unwrap();
    let db = Db::bare("attachments_kept");
    db.sql(DOCS_SCHEMA);
    let m = docs_mapping(&db.dir);
    let snap = db.dir.join("snap");
    let r = export(&server, &db, &m, &snap);
    r.ok();
    let s = server.stats();
    assert_eq!(s.downloads, 5, "{s:?}");
    assert_eq!(
        s.downloads_with_token, 0,
        "the token is never sent to the file host"
    );

    // Every file under its checksum's name, listed in the manifest with it.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(snap.join("manifest.json")).unwrap())
            .unwrap();
    let listed = manifest["attachments"].as_array().unwrap();
    assert_eq!(listed.len(), 5, "{manifest}");
    for (id, bytes) in &files {
        let sha = sha256_hex(bytes);
        let e = listed.iter().find(|e| e["id"] == id.as_str()).unwrap();
        assert_eq!(e["sha256"], sha.as_str());
        let file = format!("attachments/sha256/{}/{}", &sha[..2], &sha[2..]);
        assert_eq!(e["file"], file.as_str());
        assert_eq!(std::fs::read(snap.join(&file)).unwrap(), *bytes);
    }
    assert!(!db.dir.join(".snap.cutover-attachments").exists());

    let source = format!("snapshot:{}", snap.display());
    let url = server.url();
    let l = run_env(
        &[
            "load",
            "-m",
            m.to_str().unwrap(),
            "--source",
            &source,
            "--target",
            &db.url,
        ],
        &[
            ("AIRTABLE_API_URL", url.as_str()),
            ("TMPDIR", db.dir.to_str().unwrap()),
        ],
    );
    l.ok();
    assert_eq!(
        db.one("SELECT encode(photo, 'hex') FROM docs WHERE name = 'one'"),
        hex(&files[0].1)
    );
    assert_eq!(
        db.one("SELECT encode(photo, 'hex') FROM docs WHERE name = 'three'"),
        hex(&files[3].1)
    );
    assert_eq!(
        db.one("SELECT photo IS NULL FROM docs WHERE name = 'two'"),
        "t"
    );
    let path = |i: usize| {
        let sha = sha256_hex(&files[i].1);
        format!("attachments/sha256/{}/{}", &sha[..2], &sha[2..])
    };
    assert_eq!(
        db.one("SELECT paths::text FROM docs WHERE name = 'one'"),
        format!("[\"{}\", \"{}\"]", path(1), path(2))
    );
    assert_eq!(
        db.one("SELECT array_length(urls, 1) || ' ' || urls[1] FROM docs WHERE name = 'one'"),
        format!("1 https://cdn.example.com/{}", path(4))
    );

    // A file changed after export is caught before anything is loaded.
    std::fs::write(snap.join(path(3)), b"tampered").unwrap();
    let bad = run_env(
        &[
            "load",
            "-m",
            m.to_str().unwrap(),
            "--source",
            &source,
            "--target",
            &db.url,
        ],
        &[("TMPDIR", db.dir.to_str().unwrap())],
    );
    assert_ne!(bad.code, 0);
    assert!(
        bad.all().contains("does not match the manifest"),
        "{}",
        bad.all()
    );
}

#[test]
fn an_export_cut_short_fetches_only_the_files_it_lacks_even_after_their_urls_expired() {
    let (mut config, files) = docs_config();
    config.attachment_ttl = Duration::from_millis(1500);
    // The last file (record C, read last) is missing on the file host at first.
    config.faults.missing_downloads = vec![files[3].0.clone()];
    let (_, server) = FakeAirtable::start(config).unwrap();
    let db = Db::bare("attachments_resumed");
    db.sql(DOCS_SCHEMA);
    let m = docs_mapping(&db.dir);
    let snap = db.dir.join("snap");
    let r = export(&server, &db, &m, &snap);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.all().contains(&files[3].0), "{}", r.all());
    assert!(!snap.exists(), "no snapshot from a failed export");
    assert_eq!(server.stats().downloads, 4);
    let pages = server.stats().pages;

    // Later: the file is back, and every URL the first run saw has expired.
    server.configure(|c| c.faults.missing_downloads.clear());
    std::thread::sleep(Duration::from_millis(1700));
    export(&server, &db, &m, &snap).ok();
    let s = server.stats();
    assert_eq!(s.downloads, 5, "only the missing file fetched: {s:?}");
    assert_eq!(s.expired_downloads, 1, "its kept URL had expired: {s:?}");
    assert_eq!(
        s.pages,
        pages + 1,
        "the records came from the resume journal; one request for a fresh URL: {s:?}"
    );
    let sha = sha256_hex(&files[3].1);
    assert_eq!(
        std::fs::read(snap.join(format!("attachments/sha256/{}/{}", &sha[..2], &sha[2..])))
            .unwrap(),
        files[3].1
    );
}

#[test]
fn attachments_need_a_snapshot_and_a_sound_store() {
    let (config, _) = docs_config();
    let (_, server) = FakeAirtable::start(config).unwrap();
    let db = Db::bare("attachments_errors");
    db.sql(DOCS_SCHEMA);
    // Straight from Airtable: the files are not kept anywhere.
    let m = docs_mapping(&db.dir);
    let r = load(&server, &db, &m);
    r.fails(2);
    assert!(r.all().contains("snapshot"), "{}", r.all());
    // Bad combinations, each named with its key.
    for (cols, says) in [
        (
            "photo = { field = \"Photo\", attachments = { store = \"link\" } }",
            "store",
        ),
        (
            "urls = { field = \"Files\", attachments = { store = \"url\" } }",
            "needs `url_prefix`",
        ),
        (
            "paths = { field = \"Files\", attachments = { store = \"path\", url_prefix = \"https://x/\" } }",
            "only applies with store = \"url\"",
        ),
        (
            "urls = { field = \"Files\", attachments = { store = \"url\", url_prefix = \"cdn.example.com\" } }",
            "not an http(s) URL",
        ),
        (
            "photo = { field = \"Photo\", many = \"first\", attachments = { store = \"bytes\" } }",
            "one attachment per cell",
        ),
        (
            "paths = { field = \"Files\", path = \"0.url\", attachments = { store = \"path\" } }",
            "no `path`",
        ),
        (
            "paths = { field = \"Files\", attachments = { store = \"path\" } }\n\
             urls = { field = \"Files\", attachments = { store = \"url\", url_prefix = \"https://x/\" } }",
            "one way",
        ),
    ] {
        let text = format!(
            "[source]\nkind = \"airtable\"\nbase = \"{BASE}\"\n\n\
             [tables.docs]\nfrom = \"Docs\"\nlegacy_id = \"@id\"\nlegacy_column = \"airtable_id\"\n\
             [tables.docs.columns]\nname = \"Name\"\n{cols}\n"
        );
        let path = db.dir.join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let r = load(&server, &db, &path);
        r.fails(2);
        assert!(r.all().contains(says), "{cols}: {}", r.all());
        assert!(r.all().contains("attachments"), "{}", r.all());
    }
    // A snapshot written without its files cannot store them.
    let snap = db.dir.join("bare");
    export_with(
        &server,
        &db,
        &m,
        &["--no-attachments", "--out", snap.to_str().unwrap()],
    )
    .ok();
    assert_eq!(server.stats().downloads, 0);
    assert!(!snap.join("attachments").exists());
    let source = format!("snapshot:{}", snap.display());
    let r = run_env(
        &[
            "load",
            "-m",
            m.to_str().unwrap(),
            "--source",
            &source,
            "--target",
            &db.url,
        ],
        &[("TMPDIR", db.dir.to_str().unwrap())],
    );
    assert_ne!(r.code, 0);
    assert!(r.all().contains("is not in the snapshot"), "{}", r.all());
    assert_eq!(db.one("SELECT count(*) FROM docs"), "0");
}

// ---------------------------------------------------------------------------------------
// The delta refresh.

/// A snapshot of `mapping` whose changes are tracked (`--track-changes`), in `db.dir/snap`.
fn tracked_snapshot(server: &FakeAirtable, db: &Db, mapping: &Path) -> PathBuf {
    let snap = db.dir.join("snap");
    export_with(
        server,
        db,
        mapping,
        &["--track-changes", "--out", snap.to_str().unwrap()],
    )
    .ok();
    snap
}

fn export_with(server: &FakeAirtable, db: &Db, mapping: &Path, extra: &[&str]) -> Run {
    let url = server.url();
    let mut args = vec!["export", "--quiet", "-m", mapping.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_env(
        &args,
        &[
            ("AIRTABLE_API_URL", url.as_str()),
            ("AIRTABLE_TOKEN", TOKEN),
            ("XDG_RUNTIME_DIR", db.dir.to_str().unwrap()),
            ("TMPDIR", db.dir.to_str().unwrap()),
        ],
    )
}

fn load_snapshot(db: &Db, mapping: &Path, snap: &Path) -> String {
    let source = format!("snapshot:{}", snap.display());
    run_env(
        &[
            "load",
            "-m",
            mapping.to_str().unwrap(),
            "--source",
            &source,
            "--target",
            &db.url,
        ],
        &[("TMPDIR", db.dir.to_str().unwrap())],
    )
    .ok();
    rows(db)
}

#[test]
fn a_refreshed_snapshot_equals_a_full_export_and_costs_only_the_changes() {
    use cutover_testkit::fake_airtable::fake_id;
    let (_, server) = FakeAirtable::start(config()).unwrap();
    let db = db("refresh");
    let m = mapping(&db.dir, true);
    let snap = tracked_snapshot(&server, &db, &m);
    let full_pages = server.stats().pages;
    assert_eq!(full_pages, 9);

    // The base changes: three records edited (a field cleared too), two created, two deleted.
    let users = fake_id("tbl", "Users", 0);
    let votes = fake_id("tbl", "Votes", 0);
    server.change_record(
        &users,
        &fake_id("rec", "Users", 7),
        serde_json::json!({"Name": "Seven!"}),
    );
    server.change_record(
        &users,
        &fake_id("rec", "Users", 300),
        serde_json::json!({"Number": 30000, "Tags": null}),
    );
    server.change_record(
        &votes,
        &fake_id("rec", "Votes", 3),
        serde_json::json!({"Name": "vote three"}),
    );
    for (i, at) in [
        (900u64, "2024-06-01T10:00:00.000Z"),
        (901, "2024-06-01T11:00:00.000Z"),
    ] {
        server.create_record(
            &users,
            serde_json::json!({"id": fake_id("rec", "Users", i), "createdTime": at,
                "fields": {"Name": format!("new {i}"), "Number": i, "Done": true}}),
        );
    }
    server.delete_record(&users, &fake_id("rec", "Users", 12));
    server.delete_record(&votes, &fake_id("rec", "Votes", 349));
    // Edited, then deleted: gone.
    server.change_record(
        &votes,
        &fake_id("rec", "Votes", 40),
        serde_json::json!({"Name": "x"}),
    );
    server.delete_record(&votes, &fake_id("rec", "Votes", 40));

    let r = export_with(&server, &db, &m, &["--refresh", snap.to_str().unwrap()]);
    r.ok();
    let refresh_pages = server.stats().pages - full_pages;
    // One page of payloads, one request per table for the changed records.
    assert_eq!(refresh_pages, 3, "{:?}\n{}", server.stats(), r.all());
    assert!(
        r.all().contains("3 records changed, 2 added, 3 removed"),
        "{}",
        r.all()
    );

    // A full export of the base as it is now.
    let full = db.dir.join("full");
    export_with(&server, &db, &m, &["--out", full.to_str().unwrap()]).ok();
    for file in ["Users.csv", "Votes.csv"] {
        assert_eq!(
            std::fs::read_to_string(snap.join(file)).unwrap(),
            std::fs::read_to_string(full.join(file)).unwrap(),
            "{file}: the refreshed snapshot holds what a full export does, in its order"
        );
    }
    let refreshed = load_snapshot(&db, &m, &snap);
    let other = Db::bare("refresh_full");
    other.sql(SCHEMA);
    assert_eq!(refreshed, load_snapshot(&other, &m, &full));
    assert!(refreshed.contains("Seven!"));
    assert!(!refreshed.contains(&fake_id("rec", "Users", 12)));

    // Nothing changed since: a refresh reads one page of payloads and changes nothing.
    let before = std::fs::read_to_string(snap.join("Users.csv")).unwrap();
    let pages = server.stats().pages;
    export_with(&server, &db, &m, &["--refresh", snap.to_str().unwrap()]).ok();
    assert_eq!(server.stats().pages - pages, 1);
    assert_eq!(
        std::fs::read_to_string(snap.join("Users.csv")).unwrap(),
        before
    );
}

#[test]
fn many_changed_records_are_read_in_requests_sent_at_once() {
    use cutover_testkit::fake_airtable::fake_id;
    let mut config = config();
    // Each answer takes 300 ms: three reads one after another would take 0.9 s.
    config.latency = Latency::Fixed(std::time::Duration::from_millis(300));
    let (_, server) = FakeAirtable::start(config).unwrap();
    let db = db("refresh_many");
    let m = mapping(&db.dir, true);
    let snap = tracked_snapshot(&server, &db, &m);
    let users = fake_id("tbl", "Users", 0);
    // 120 records changed: three reads of at most 50 ids each.
    for i in 0..120u64 {
        server.change_record(
            &users,
            &fake_id("rec", "Users", i * 3),
            serde_json::json!({"Name": format!("changed {i}")}),
        );
    }
    let pages = server.stats().pages;
    server.reset_peaks();
    let r = export_with(&server, &db, &m, &["--refresh", snap.to_str().unwrap()]);
    r.ok();
    assert!(
        r.all().contains("120 records changed, 0 added, 0 removed"),
        "{}",
        r.all()
    );
    let seen = server.stats();
    // Three pages of payloads (one a change, 50 a page) and the three reads, which were
    // in flight together.
    assert_eq!(seen.pages - pages, 6, "{seen:?}");
    assert_eq!(seen.max_requests_at_once, 3, "{seen:?}");
    let full = db.dir.join("full");
    export_with(&server, &db, &m, &["--out", full.to_str().unwrap()]).ok();
    assert_eq!(
        std::fs::read_to_string(snap.join("Users.csv")).unwrap(),
        std::fs::read_to_string(full.join("Users.csv")).unwrap()
    );
}

#[test]
fn a_snapshot_without_a_change_feed_is_not_refreshed() {
    let (_, server) = FakeAirtable::start(config()).unwrap();
    let db = db("refresh_untracked");
    let m = mapping(&db.dir, true);
    let snap = db.dir.join("snap");
    export_with(&server, &db, &m, &["--out", snap.to_str().unwrap()]).ok();
    let before = std::fs::read_to_string(snap.join("manifest.json")).unwrap();
    let r = export_with(&server, &db, &m, &["--refresh", snap.to_str().unwrap()]);
    r.fails(2);
    assert!(r.all().contains("--track-changes"), "{}", r.all());
    assert_eq!(
        std::fs::read_to_string(snap.join("manifest.json")).unwrap(),
        before
    );
}

#[test]
fn a_refresh_downloads_only_the_new_attachments() {
    let (config, files) = docs_config();
    let (_, server) = FakeAirtable::start(config).unwrap();
    let db = Db::bare("refresh_attachments");
    db.sql(DOCS_SCHEMA);
    let m = docs_mapping(&db.dir);
    let snap = tracked_snapshot(&server, &db, &m);
    assert_eq!(server.stats().downloads, 5);

    // Record two gets a photo; record three is deleted.
    let new: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
    let new_id = "att9zzzzzzzzzzzzz".to_string();
    server.configure(|c| {
        c.attachments.insert(new_id.clone(), new.clone());
    });
    server.change_record(
        "tblDocs0000000001",
        "recBdoc0000000002",
        serde_json::json!({"Photo": [{"id": new_id, "url": "https://expired.example/y",
            "filename": "n.png", "size": new.len(), "type": "image/png"}]}),
    );
    server.delete_record("tblDocs0000000001", "recCdoc0000000003");
    export_with(&server, &db, &m, &["--refresh", snap.to_str().unwrap()]).ok();
    assert_eq!(
        server.stats().downloads,
        6,
        "only the new file: {:?}",
        server.stats()
    );

    let source = format!("snapshot:{}", snap.display());
    run_env(
        &[
            "load",
            "-m",
            m.to_str().unwrap(),
            "--source",
            &source,
            "--target",
            &db.url,
        ],
        &[("TMPDIR", db.dir.to_str().unwrap())],
    )
    .ok();
    assert_eq!(
        db.one("SELECT encode(photo, 'hex') FROM docs WHERE name = 'two'"),
        hex(&new)
    );
    assert_eq!(
        db.one("SELECT encode(photo, 'hex') FROM docs WHERE name = 'one'"),
        hex(&files[0].1)
    );
    assert_eq!(db.one("SELECT count(*) FROM docs"), "2");
}

// ---------------------------------------------------------------------------------------
// Every field type, through a snapshot.

const EVERYTHING_SCHEMA: &str = "
CREATE TABLE everything (id bigserial PRIMARY KEY, airtable_id text UNIQUE NOT NULL,
    name text, notes text, rich text, email text, site text, phone text, count bigint,
    ratio numeric, price numeric, stars int, took numeric, done boolean NOT NULL, kind text,
    tags text[], day date, at timestamptz, owner_email text, team jsonb, created_by text,
    modified_by text, created timestamptz, modified timestamptz, number int, code text,
    open_url text, summary text, synced text, others jsonb, other_names text[],
    other_links jsonb, total numeric, how_many int, label text, files jsonb, shot text);
";

const EVERYTHING_MAPPING: &str = r#"
[source]
kind = "airtable"
base = "appSnapshot000001"

[tables.everything]
from = "Everything"
legacy_id = "@id"
legacy_column = "airtable_id"
[tables.everything.columns]
name = "Name"
notes = "Notes"
rich = "Rich"
email = "Email"
site = "Site"
phone = "Phone"
count = "Count"
ratio = "Ratio"
price = "Price"
stars = "Stars"
took = "Took"
done = "Done"
kind = "Kind"
tags = "Tags"
day = "Day"
at = "At"
owner_email = { field = "Owner", path = "email" }
team = "Team"
created_by = { field = "Created By", path = "email" }
modified_by = { field = "Modified By", path = "name" }
created = "Created"
modified = "Modified"
number = "Number"
code = { field = "Code", path = "text" }
open_url = { field = "Open", path = "url" }
summary = { field = "Summary", path = "value" }
synced = "Synced From"
others = "Others"
other_names = "Other Names"
other_links = "Other Links"
total = { field = "Total", on_error = "null" }
how_many = "How Many"
label = { field = "Label", on_error = "null" }
files = "Files"
shot = { field = "Files", path = "0.thumbnails.large.url" }
"#;

fn everything_rows(db: &Db) -> String {
    // The attachment's download URL is a fresh one at every listing, as Airtable's.
    db.sql("SELECT (to_jsonb(t) #- '{files,0,url}')::text FROM everything t ORDER BY id")
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default() + "\n")
        .collect()
}

#[test]
fn every_field_type_loads_the_same_from_a_snapshot_as_from_the_base() {
    let mut config = FakeConfig::from_dir(
        &crate::harness::repo().join("fixtures/airtable-field-types"),
        BASE,
        TOKEN,
    )
    .unwrap();
    config.rate_limit = None;
    let (_, server) = FakeAirtable::start(config).unwrap();
    let direct = Db::bare("field_types_direct");
    direct.sql(EVERYTHING_SCHEMA);
    let m = direct.dir.join("everything.toml");
    std::fs::write(&m, EVERYTHING_MAPPING).unwrap();
    let r = load(&server, &direct, &m);
    r.ok();
    let from_base = everything_rows(&direct);

    let snap = direct.dir.join("snap");
    export_with(&server, &direct, &m, &["--out", snap.to_str().unwrap()]).ok();
    assert_eq!(server.stats().downloads, 1, "the attachment is kept");
    let via = Db::bare("field_types_snapshot");
    via.sql(EVERYTHING_SCHEMA);
    let source = format!("snapshot:{}", snap.display());
    run_env(
        &[
            "load",
            "-m",
            m.to_str().unwrap(),
            "--source",
            &source,
            "--target",
            &via.url,
        ],
        &[("TMPDIR", via.dir.to_str().unwrap())],
    )
    .ok();
    assert_eq!(everything_rows(&via), from_base);

    // The shapes as documented, read through: a fractional duration, collaborators, AI
    // text, barcode, button, lookups of text and of links, rollup and formula errors.
    let one = |q: &str| direct.one(q);
    let ada = "airtable_id = 'rec0Everything010'";
    assert_eq!(
        one(&format!("SELECT took FROM everything WHERE {ada}")),
        "5400.5"
    );
    assert_eq!(
        one(&format!(
            "SELECT owner_email || ' ' || created_by || ' ' || modified_by FROM everything WHERE {ada}"
        )),
        "ada@example.com ada@example.com Grace"
    );
    assert_eq!(
        one(&format!(
            "SELECT jsonb_array_length(team) FROM everything WHERE {ada}"
        )),
        "2"
    );
    assert_eq!(
        one(&format!(
            "SELECT summary || '|' || code || '|' || open_url FROM everything WHERE {ada}"
        )),
        "Ada wrote two lines.|0123456789012|https://ada.example.com/open"
    );
    assert_eq!(
        one(&format!(
            "SELECT array_to_string(other_names, ',') || ' ' || (other_links->>0) FROM everything WHERE {ada}"
        )),
        "first,second rec0Other00000020"
    );
    assert_eq!(
        one(&format!("SELECT shot FROM everything WHERE {ada}")),
        "https://v5.airtableusercontent.com/v3/u/29/29/1716800000000/l.png"
    );
    let blank = "airtable_id = 'recZEverything020'";
    assert_eq!(
        one(&format!(
            "SELECT (total IS NULL) || ' ' || (label IS NULL) || ' ' || (summary IS NULL) || ' ' || done || ' ' || took FROM everything WHERE {blank}"
        )),
        "true true true false 0.25"
    );
}
