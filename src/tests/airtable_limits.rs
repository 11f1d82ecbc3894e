//! The Airtable source against a server that misbehaves without end: an offset that never
//! advances, a body that never ends. Each fails clearly and soon, with base and table named,
//! instead of paging forever or buffering without bound. And the spool that holds the
//! records is private: a directory only the user can enter, files only the user can read,
//! never written through a symbolic link planted where a spool file goes.

use super::airtable_source::opts;
use crate::source::Wanted;
use crate::source::airtable::{AirtableSource, Token};
use crate::source::{Record, Source};
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig, synthetic};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

const BASE: &str = "appLimitsFixture1";
const TOKEN: &str = "patLIMITSECRET001.0123456789abcdef";

fn alpha(n: usize) -> FakeConfig {
    let (meta, records) = synthetic("Alpha", n);
    let mut c = FakeConfig::new(BASE, TOKEN).with_table(meta, records);
    c.lock = Duration::from_secs(1);
    c
}

fn wanted() -> Vec<Wanted> {
    vec![Wanted {
        table: "Alpha".into(),
        fields: vec!["@id".into(), "Name".into()],
    }]
}

#[test]
fn an_offset_that_never_advances_fails_instead_of_paging_forever() {
    let mut config = alpha(250);
    // Stuck for 20 pages, then moving on: a client that follows it ends (with 2,000
    // duplicated records) rather than hanging this test.
    config.faults.repeat_offset = Some(("Alpha".into(), 20));
    let (url, fake) = FakeAirtable::start(config).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    let started = Instant::now();
    let e = match src.prepare(&wanted()) {
        Ok(()) => panic!(
            "extracted {} records from a 250-record table",
            src.count("Alpha").unwrap()
        ),
        Err(e) => e,
    };
    let text = format!("{e:#}");
    assert_eq!(crate::error::exit_code(&e), 3, "{text}");
    assert!(
        text.contains(BASE) && text.contains("\"Alpha\"") && text.contains("offset"),
        "{text}"
    );
    assert!(!text.contains("LIMITSECRET"), "{text}");
    assert!(fake.stats().requests <= 4, "{:?}", fake.stats());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_body_that_never_ends_is_cut_off_at_the_bound() {
    let mut config = alpha(250);
    // Request 1 is the metadata; the first page never ends (up to 256 MiB here, so that a
    // client that buffers it all still finishes).
    config.faults.huge_body_at = Some((2, 256 << 20));
    let (url, fake) = FakeAirtable::start(config).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    let e = src
        .prepare(&wanted())
        .expect_err("an endless page must fail");
    let text = format!("{e:#}");
    assert_eq!(crate::error::exit_code(&e), 3, "{text}");
    assert!(
        text.contains("\"Alpha\"") && text.contains("page 1") && text.contains("MiB"),
        "{text}"
    );
    // The client hung up at the bound instead of reading on.
    let waited = Instant::now();
    while !fake.stats().huge_body_ended && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = fake.stats();
    assert!(seen.huge_body_ended, "the client never hung up: {seen:?}");
    assert!(seen.huge_body_sent < 128 << 20, "{seen:?}");
    assert_eq!(src.stats().retries, 0, "a body too large is not retried");
}

#[test]
fn the_spool_is_private_and_never_written_through_a_link() {
    let (url, _fake) = FakeAirtable::start(alpha(150)).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    let dir = src.spool_dir().to_path_buf();
    let meta = std::fs::symlink_metadata(&dir).unwrap();
    assert!(meta.is_dir());
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o700,
        "{}",
        dir.display()
    );

    // Another user's link where the first table's records would go, pointing at a file of
    // theirs: it must not be followed.
    let victim_dir = std::env::temp_dir().join(format!("cutover-victim-{}", std::process::id()));
    std::fs::create_dir_all(&victim_dir).unwrap();
    let victim = victim_dir.join("victim.txt");
    std::fs::write(&victim, "untouched").unwrap();
    let table_id = synthetic("Alpha", 0).0["id"].as_str().unwrap().to_string();
    let planted = dir.join(format!("0-{table_id}.jsonl"));
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let e = src
        .prepare(&wanted())
        .expect_err("a planted link must be refused");
    let text = format!("{e:#}");
    assert!(text.contains(&planted.display().to_string()), "{text}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    std::fs::remove_dir_all(&victim_dir).ok();

    // Without it, the records are spooled into files only this user can read.
    std::fs::remove_file(&planted).unwrap();
    src.prepare(&wanted()).unwrap_or_else(|e| panic!("{e:#}"));
    let mut n = 0;
    src.scan("Alpha", &["@id".to_string()], &mut |_: &dyn Record| {
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 150);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let meta = std::fs::symlink_metadata(entry.unwrap().path()).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        files += 1;
    }
    assert!(files >= 1);
    drop(src);
    assert!(!dir.exists(), "the spool is removed with the source");
}
