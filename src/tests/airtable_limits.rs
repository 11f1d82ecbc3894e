//! The Airtable source against a server that misbehaves without end: an offset that never
//! advances, a body that never ends. Each fails clearly and soon, with base and table named,
//! instead of paging forever or buffering without bound. And the spool that holds the
//! records is private: a directory only the user can enter, files only the user can read,
//! never written through a symbolic link planted where a spool file goes. The rate limit
//! holds however the network bunches arrivals and however many sources share the base.

use super::airtable_source::opts;
use crate::source::Wanted;
use crate::source::airtable::{AirtableSource, Token};
use crate::source::{Record, Source};
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig, Latency, synthetic};
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
    // Every class file the table's records may go to (see `ranges`).
    let first = dir.join(format!("0-{table_id}.jsonl"));
    let planted: Vec<_> = (0..crate::source::airtable::ranges::CLASSES)
        .map(|c| crate::source::airtable::ranges::class_path(&first, c))
        .collect();
    for p in &planted {
        std::os::unix::fs::symlink(&victim, p).unwrap();
    }
    let e = src
        .prepare(&wanted())
        .expect_err("a planted link must be refused");
    let text = format!("{e:#}");
    assert!(
        planted
            .iter()
            .any(|p| text.contains(&p.display().to_string())),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    std::fs::remove_dir_all(&victim_dir).ok();

    // Without them, the records are spooled into files only this user can read.
    for p in &planted {
        std::fs::remove_file(p).unwrap();
    }
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

/// A base of one synthetic table per name, its lock short.
fn tables(names: &[(&str, usize)]) -> FakeConfig {
    let mut c = FakeConfig::new(BASE, TOKEN);
    c.lock = Duration::from_secs(1);
    for (name, n) in names {
        let (meta, records) = synthetic(name, *n);
        c = c.with_table(meta, records);
    }
    c
}

fn extract(src: &mut AirtableSource, table: &str) -> anyhow::Result<u64> {
    src.prepare(&[Wanted {
        table: table.into(),
        fields: vec!["@id".into(), "Name".into()],
    }])?;
    src.count(table)
}

#[test]
fn arrival_jitter_of_100_ms_trips_no_lock_and_keeps_the_pace() {
    let mut config = tables(&[("Alpha", 2500)]);
    // Requests sent evenly arrive 0–100 ms late, each by its own draw: bunched.
    config.network = Latency::Uniform(Duration::ZERO, Duration::from_millis(100));
    let (url, fake) = FakeAirtable::start(config).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    let started = Instant::now();
    assert_eq!(extract(&mut src, "Alpha").unwrap(), 2500);
    let took = started.elapsed().as_secs_f64();
    let seen = fake.stats();
    assert_eq!(seen.locks, 0, "{seen:?}");
    assert!(seen.max_per_second <= 5, "{seen:?}");
    // 26 requests: near 5 per (1 s + the mean jitter), not spaced for the worst case.
    let rate = seen.requests as f64 / took;
    assert!(rate > 4.0, "{rate:.2} requests/s over {took:.1} s");
}

#[test]
fn two_sources_on_one_base_share_its_limit() {
    let config = tables(&[("Alpha", 1200), ("Beta", 1200)]);
    let (url, fake) = FakeAirtable::start(config).unwrap();
    // Two sources, two clients, as two cutover processes would be: they meet in the
    // pacing file of the base.
    let run = |table: &'static str| {
        let url = url.clone();
        std::thread::spawn(move || {
            let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url))?;
            extract(&mut src, table)
        })
    };
    let started = Instant::now();
    let (a, b) = (run("Alpha"), run("Beta"));
    assert_eq!(a.join().unwrap().unwrap_or_else(|e| panic!("{e:#}")), 1200);
    assert_eq!(b.join().unwrap().unwrap_or_else(|e| panic!("{e:#}")), 1200);
    let took = started.elapsed().as_secs_f64();
    let seen = fake.stats();
    assert_eq!(seen.locks, 0, "{seen:?}");
    assert!(seen.max_per_second <= 5, "{seen:?}");
    // 26 requests shared out at the base's 5 per second, not 5 each: the first five leave
    // at once, the others 5 per second.
    assert!(took > 21.0 / 5.0 - 0.3, "{took:.1} s");
    assert!(took < 26.0 / 4.0 + 1.0, "{took:.1} s");
}

#[test]
fn a_429_from_another_client_slows_every_process_on_the_base() {
    let mut config = tables(&[("Alpha", 1500)]);
    // Someone else trips the limit at the 4th request: the base is locked for 1 s.
    config.faults.force_429_at = Some(4);
    let (url, fake) = FakeAirtable::start(config).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    assert_eq!(extract(&mut src, "Alpha").unwrap(), 1500);
    let seen = fake.stats();
    // One lock, waited out by every request in flight, without tripping it again.
    assert_eq!(seen.locks, 1, "{seen:?}");
    assert!(seen.rate_limited <= 3, "{seen:?}");
    assert!(src.stats().rate_limited >= 1);
}

#[test]
fn html_error_pages_from_a_proxy_are_retried() {
    let mut config = tables(&[("Alpha", 250)]);
    config.faults.html_5xx = Some((3, vec![500, 502, 504]));
    let (url, fake) = FakeAirtable::start(config).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    assert_eq!(extract(&mut src, "Alpha").unwrap(), 250);
    assert_eq!(fake.stats().faults, 3);
    assert_eq!(src.stats().retries, 3);
}

/// Every record id of `table` in the order the source reads them.
fn read_ids(src: &mut AirtableSource, table: &str) -> Vec<String> {
    let mut ids = Vec::new();
    src.scan(table, &["@id".to_string()], &mut |r: &dyn Record| {
        if let crate::value::Value::Text(t) = r.get(0) {
            ids.push(String::from_utf8_lossy(t).into_owned());
        }
        Ok(())
    })
    .unwrap();
    ids
}

#[test]
fn a_large_table_at_high_latency_is_listed_in_ranges_in_the_same_order() {
    // At once: one listing, one request at a time.
    let (url, quick) = FakeAirtable::start(tables(&[("Alpha", 2000)])).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    assert_eq!(extract(&mut src, "Alpha").unwrap(), 2000);
    assert_eq!(quick.stats().filtered, 0, "no need to split");
    let one_piece = read_ids(&mut src, "Alpha");

    // At 500 ms per answer, 20 pages one after the other take 10 s; in ranges at once the
    // base's 5 requests per second are reached.
    let mut config = tables(&[("Alpha", 2000)]);
    config.latency = Latency::Fixed(Duration::from_millis(500));
    let (url, slow) = FakeAirtable::start(config).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    let started = Instant::now();
    assert_eq!(extract(&mut src, "Alpha").unwrap(), 2000);
    let took = started.elapsed();
    let seen = slow.stats();
    assert!(seen.filtered >= 2, "{seen:?}");
    assert_eq!(seen.locks, 0, "{seen:?}");
    assert!(took < Duration::from_secs(8), "{took:?} {seen:?}");
    // The same records in the same order: by the character after `rec`, ties as listed.
    let in_ranges = read_ids(&mut src, "Alpha");
    assert_eq!(in_ranges, one_piece);
    assert_eq!(
        in_ranges,
        super::airtable_source::expected_ids("Alpha", 2000)
    );
}

#[test]
fn a_field_renamed_while_the_table_is_listed_does_not_break_the_run() {
    let (meta, _) = synthetic("Alpha", 0);
    let name_id = meta["fields"][0]["id"].as_str().unwrap().to_string();
    let mut config = tables(&[("Alpha", 450)]);
    // Request 1 reads the metadata, 2 the first page; before the third, Name is renamed.
    config.faults.rename_field_at = Some((3, "Alpha".into(), name_id, "Full name".into()));
    let (url, fake) = FakeAirtable::start(config).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    assert_eq!(
        extract(&mut src, "Alpha").unwrap_or_else(|e| panic!("{e:#}")),
        450
    );
    let mut names = 0;
    src.scan("Alpha", &["Name".to_string()], &mut |r: &dyn Record| {
        if matches!(r.get(0), crate::value::Value::Text(t) if t.starts_with(b"Alpha ")) {
            names += 1;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        names, 450,
        "every record's Name, before and after the rename"
    );
    assert!(fake.stats().by_field_id >= 5, "{:?}", fake.stats());
}
