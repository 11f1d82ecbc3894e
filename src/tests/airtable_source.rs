//! The Airtable source against the in-process fake API: the recorded Podium base extracts
//! with exact counts and values, pagination and concurrent tables stay under 5 requests in
//! every rolling second, each injected fault is survived with the same records, and what
//! cannot be survived fails at once with a message that names base and table and never the
//! token. No PostgreSQL needed; nothing here skips.

use crate::source::airtable::{AirtableOptions, AirtableSource, Token};
use crate::source::{Record, Source, SourceSpec, Wanted};
use crate::value::Value;
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig, synthetic};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const BASE: &str = "appPodiumFixture1";
const TOKEN: &str = "patTESTSECRET0001.0123456789abcdef";

/// Options for a source against the fake at `url`: its short lock and quick retries.
pub(super) fn opts(url: &str) -> AirtableOptions {
    AirtableOptions {
        api_url: Some(url.to_string()),
        rate_limit_wait: Duration::from_millis(1100),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        request_timeout: Duration::from_secs(10),
        // The pacing files of this test process's fakes, apart from any other run's (a fake's
        // port may be one an earlier run used, locked for 30 s).
        pace_dir: Some(
            std::env::temp_dir().join(format!("cutover-pace-test-{}", std::process::id())),
        ),
        ..AirtableOptions::default()
    }
}

fn podium() -> FakeConfig {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/podium-airtable");
    let mut c = FakeConfig::from_dir(&dir, BASE, TOKEN).expect("the Podium Airtable fixture");
    c.lock = Duration::from_secs(1);
    c
}

fn small(tables: &[(&str, usize)]) -> FakeConfig {
    let mut c = FakeConfig::new(BASE, TOKEN);
    c.lock = Duration::from_secs(1);
    for (name, n) in tables {
        let (meta, records) = synthetic(name, *n);
        c = c.with_table(meta, records);
    }
    c
}

fn render(v: Value<'_>) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => format!("bool:{b}"),
        Value::Int(i) => format!("int:{i}"),
        Value::Float(f) => format!("float:{f}"),
        Value::Text(t) => String::from_utf8_lossy(t).into_owned(),
        Value::Blob(_) => "blob".into(),
        Value::Json(j) => format!("json:{j}"),
    }
}

fn wanted(table: &str, fields: &[&str]) -> Wanted {
    Wanted {
        table: table.into(),
        fields: fields.iter().map(|s| s.to_string()).collect(),
    }
}

/// Every record of `table` with `fields`, rendered.
fn rows(src: &mut AirtableSource, table: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let fields: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    let n = src
        .scan(table, &fields, &mut |r: &dyn Record| {
            out.push((0..fields.len()).map(|i| render(r.get(i))).collect());
            Ok(())
        })
        .unwrap();
    assert_eq!(n as usize, out.len());
    out
}

fn by_id<'a>(rows: &'a [Vec<String>], id: &str) -> &'a Vec<String> {
    rows.iter()
        .find(|r| r[0] == id)
        .unwrap_or_else(|| panic!("{id}"))
}

/// Extract one synthetic table of `n` records and return its ids (checked unique).
fn extract_ids(src: &mut AirtableSource, table: &str, n: usize) -> Vec<String> {
    src.prepare(&[wanted(table, &["@id", "Name", "Number"])])
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(src.count(table).unwrap(), n as u64);
    let ids: Vec<String> = rows(src, table, &["@id", "Number"])
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), n, "duplicate records");
    ids
}

/// The ids of a synthetic table in the order a source keeps them: by the character after
/// `rec`, ties in the API's order (see `source/airtable/ranges.rs`).
pub(super) fn expected_ids(table: &str, n: usize) -> Vec<String> {
    let mut ids: Vec<String> = synthetic(table, n)
        .1
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort_by_key(|id| crate::source::airtable::ranges::class_of(id));
    ids
}

fn assert_clean(e: &anyhow::Error) -> String {
    let text = format!("{e:#} {e:?}");
    assert!(!text.contains(TOKEN), "the token leaked: {text}");
    assert!(!text.contains("TESTSECRET"), "the token leaked: {text}");
    text
}

#[test]
fn source_spec_parses_airtable_bases() {
    assert_eq!(
        SourceSpec::parse("airtable:appAbCdEfGh123456").unwrap(),
        SourceSpec::Airtable {
            base: "appAbCdEfGh123456".into()
        }
    );
    assert_eq!(
        SourceSpec::parse("airtable:appAbCdEfGh123456")
            .unwrap()
            .to_string(),
        "airtable:appAbCdEfGh123456"
    );
    for bad in ["airtable:", "airtable:tblAbCdEfGh123456", "airtable:app123"] {
        let e = SourceSpec::parse(bad).unwrap_err().to_string();
        assert!(e.contains("app") && e.contains("14"), "{bad}: {e}");
    }
}

#[test]
fn token_from_file_and_never_printed() {
    let dir = std::env::temp_dir().join(format!("cutover-token-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let t = Token::from_env_or_file(Some(&file)).unwrap();
    assert_eq!(format!("{t} {t:?}"), "*** ***");
    let missing = Token::from_env_or_file(Some(&dir.join("nope"))).unwrap_err();
    assert!(missing.to_string().contains("token file"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn podium_base_extracts_exactly() {
    let (url, fake) = FakeAirtable::start(podium()).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    let tables = src.tables().unwrap();
    let users = tables.iter().find(|t| t.name == "Users").unwrap();
    assert_eq!(&users.fields[..2], ["@id", "@createdTime"]);
    assert!(users.fields.iter().any(|f| f == "Events Attending"));
    let link = src
        .schema()
        .table("Projects")
        .unwrap()
        .field("Event")
        .unwrap()
        .link
        .clone()
        .unwrap();
    assert!(link.prefers_single_record_link);
    assert_eq!(
        link.linked_table_id,
        src.schema().table("Events").unwrap().id
    );
    assert!(src.meta_json().contains("inverseLinkFieldId"));

    let user_fields = [
        "@id",
        "@createdTime",
        "ID",
        "Email",
        "Display Name",
        "Phone",
        "Is Admin",
        "Events Attending",
        "Avatar",
    ];
    let event_fields = [
        "@id",
        "ID",
        "Name",
        "Attendees",
        "Owner",
        "Max Votes Per User",
    ];
    let project_fields = [
        "@id",
        "ID",
        "Hours Spent",
        "Tags",
        "Points Per Hour",
        "Event",
    ];
    let vote_fields = ["@id", "ID", "Voter", "Project", "Points"];
    let referral_fields = ["@id", "ID", "Referrer", "User"];
    src.prepare(&[
        wanted("Users", &user_fields),
        wanted("Events", &event_fields),
        wanted("Projects", &project_fields),
        wanted("Votes", &vote_fields),
        wanted("Referrals", &referral_fields),
    ])
    .unwrap_or_else(|e| panic!("{e:#}"));
    for (t, n) in [
        ("Users", 14),
        ("Events", 4),
        ("Projects", 9),
        ("Votes", 26),
        ("Referrals", 5),
    ] {
        assert_eq!(src.count(t).unwrap(), n, "{t}");
    }

    let users = rows(&mut src, "Users", &user_fields);
    let ada = by_id(&users, "rec7FApbENtQQV6cA");
    assert_eq!(ada[1], "2024-01-05T09:00:00.000Z");
    assert_eq!(ada[2], "int:1");
    assert_eq!(ada[3], "admin@podium.dev");
    assert_eq!(ada[6], "bool:true");
    assert_eq!(ada[7], r#"json:["rec37psWUYoENOEcC"]"#);
    assert!(ada[8].starts_with("json:[{") && ada[8].contains("\"filename\":\"ada.png\""));
    let bob = by_id(&users, "recoGJ5P2s8aZBmpr");
    assert_eq!(bob[5], "NULL", "omitted field → NULL");
    assert_eq!(bob[6], "bool:false", "absent checkbox → false");
    assert_eq!(bob[8], "NULL");
    let heidi = by_id(&users, "recLd1dC7Z9tjY1Lv");
    assert_eq!(heidi[4], "Heidi\tKlum");

    let events = rows(&mut src, "Events", &event_fields);
    let e1 = by_id(&events, "recEom3gq5iNxgpH8");
    assert_eq!(
        e1[3],
        r#"json:["recoGJ5P2s8aZBmpr","recFxPKBZbyfkTACv","recbLR040YB6eode3","recvepeHl4nLS8s8G","recDEO37772hGsGTu","rechPBJRCjvnZ5AKZ"]"#
    );
    assert_eq!(e1[4], r#"json:["rec7FApbENtQQV6cA"]"#);
    assert_eq!(by_id(&events, "rec1fRSyYDk46wAhz")[5], "NULL");
    let attendees: usize = events.iter().map(|r| r[3].matches("rec").count()).sum();
    assert_eq!(attendees, 16);

    let projects = rows(&mut src, "Projects", &project_fields);
    let p3 = by_id(&projects, "reciW27uPWBPAnnJm");
    assert_eq!(p3[2], "float:4.25");
    assert_eq!(p3[3], r#"json:["python","scheduling"]"#);
    assert_eq!(
        by_id(&projects, "recKdpUC7Nj0RO0Ja")[4],
        r##"json:{"error":"#ERROR!"}"##
    );
    assert_eq!(
        by_id(&projects, "recILz5HWf8pFxEur")[4],
        r#"json:{"specialValue":"NaN"}"#
    );
    assert_eq!(by_id(&projects, "rec9uOxflBOEioeg3")[3], "NULL");

    let votes = rows(&mut src, "Votes", &vote_fields);
    let blank = by_id(&votes, "recimFBSo9WrxMxej");
    assert_eq!(blank[1..], ["NULL", "NULL", "NULL", "NULL"]);
    assert_eq!(
        by_id(&votes, "recPCJ0Zmtw16DAXs")[3],
        r#"json:["rechMKP0rKNSOYrQm"]"#,
        "the dangling link comes through as it is"
    );
    let referrals = rows(&mut src, "Referrals", &referral_fields);
    assert_eq!(
        by_id(&referrals, "recoKvMCi4wHhQc6s")[2],
        r#"json:["recnMqtNn2v65YFoO"]"#
    );

    let seen = fake.stats();
    assert_eq!(seen.rate_limited, 0);
    assert!(seen.max_per_second <= 5, "{seen:?}");
    let stats = src.stats();
    assert_eq!(stats.records, 58);
    assert_eq!(
        stats.requests, 6,
        "metadata + one page per table: {stats:?}"
    );
    assert_eq!(stats.rate_limited + stats.retries, 0);
}

#[test]
fn concurrent_tables_page_at_the_limit_without_tripping_it() {
    let tables = [("Alpha", 250), ("Beta", 230), ("Gamma", 120)];
    let (url, fake) = FakeAirtable::start(small(&tables)).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    let started = Instant::now();
    let w: Vec<Wanted> = tables
        .iter()
        .map(|(t, _)| wanted(t, &["Name", "Done", "Score"]))
        .collect();
    src.prepare(&w).unwrap_or_else(|e| panic!("{e:#}"));
    for (t, n) in tables {
        assert_eq!(src.count(t).unwrap(), n as u64);
        let got = rows(&mut src, t, &["@id", "Done", "Score", "Tags"]);
        let ids: Vec<String> = got.iter().map(|r| r[0].clone()).collect();
        assert_eq!(ids, expected_ids(t, n), "{t}: every record once, in order");
        let (r0, r1) = {
            let all = synthetic(t, 2).1;
            let id = |i: usize| all[i]["id"].as_str().unwrap().to_string();
            (by_id(&got, &id(0)).clone(), by_id(&got, &id(1)).clone())
        };
        assert_eq!(r1[1], "bool:false", "absent checkbox");
        assert_eq!(r0[1], "bool:true");
        assert_eq!(r1[2], "float:1.25");
        // Tags was not asked for in prepare: scan fetches the table again with it.
        assert_eq!(r0[3], "NULL");
        assert_eq!(r1[3], r#"json:["a","b"]"#);
    }
    let seen = fake.stats();
    assert_eq!(seen.rate_limited, 0, "{seen:?}");
    assert!(seen.max_per_second <= 5, "{seen:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_rate_limit_lock_is_waited_out() {
    let mut config = small(&[("Alpha", 250)]);
    config.faults.force_429_at = Some(3);
    let (url, fake) = FakeAirtable::start(config).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    let ids = extract_ids(&mut src, "Alpha", 250);
    assert_eq!(ids, expected_ids("Alpha", 250));
    assert!(fake.stats().rate_limited >= 1);
    assert!(src.stats().rate_limited >= 1 && src.stats().retries >= 1);
}

#[test]
fn retry_after_wins_over_the_configured_wait() {
    let mut config = small(&[("Alpha", 150)]);
    config.faults.force_429_at = Some(2);
    config.faults.retry_after = Some(1);
    let (url, _fake) = FakeAirtable::start(config).unwrap();
    let mut o = opts(&url);
    o.rate_limit_wait = Duration::from_secs(30);
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), o).unwrap();
    let started = Instant::now();
    extract_ids(&mut src, "Alpha", 150);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_burst_of_503s_is_retried() {
    let mut config = small(&[("Alpha", 250)]);
    config.faults.burst_503 = Some((3, 3));
    let (url, fake) = FakeAirtable::start(config).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    assert_eq!(
        extract_ids(&mut src, "Alpha", 250),
        expected_ids("Alpha", 250)
    );
    assert_eq!(fake.stats().faults, 3);
    assert_eq!(src.stats().retries, 3);
}

#[test]
fn an_expired_iterator_restarts_the_table_without_duplicates() {
    let mut config = small(&[("Alpha", 350)]);
    config.faults.expire_iterator = Some(("Alpha".into(), 3));
    let (url, _fake) = FakeAirtable::start(config).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    assert_eq!(
        extract_ids(&mut src, "Alpha", 350),
        expected_ids("Alpha", 350)
    );
    assert_eq!(src.stats().restarts, 1);
}

#[test]
fn a_malformed_page_is_fetched_again() {
    let mut config = small(&[("Alpha", 250)]);
    config.faults.malformed_at = Some(3);
    let (url, _fake) = FakeAirtable::start(config).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    assert_eq!(
        extract_ids(&mut src, "Alpha", 250),
        expected_ids("Alpha", 250)
    );
    assert_eq!(src.stats().retries, 1);
}

#[test]
fn a_dropped_connection_is_retried() {
    let mut config = small(&[("Alpha", 250)]);
    config.faults.drop_at = Some(3);
    let (url, _fake) = FakeAirtable::start(config).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    assert_eq!(
        extract_ids(&mut src, "Alpha", 250),
        expected_ids("Alpha", 250)
    );
    assert_eq!(src.stats().retries, 1);
}

#[test]
fn a_bad_token_fails_at_once() {
    let (url, fake) = FakeAirtable::start(small(&[("Alpha", 10)])).unwrap();
    let wrong = "patWRONGTOKEN0000.feedface";
    let started = Instant::now();
    let e = AirtableSource::open(BASE, Token::new(wrong), opts(&url))
        .err()
        .expect("a wrong token must fail");
    let text = assert_clean(&e);
    assert!(
        !text.contains(wrong) && !text.contains("WRONGTOKEN"),
        "{text}"
    );
    assert!(text.contains(BASE) && text.contains("401"), "{text}");
    assert!(text.contains("token"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(fake.stats().requests, 1);
}

#[test]
fn unknown_tables_and_fields_fail_with_their_names() {
    let mut config = small(&[("Alpha", 10), ("Beta", 10)]);
    config.faults.unknown_fields = vec!["Score".into()];
    let (url, fake) = FakeAirtable::start(config).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();

    // Caught from the metadata, before any request.
    let e = src.prepare(&[wanted("Alpah", &["Name"])]).unwrap_err();
    let text = assert_clean(&e);
    assert!(
        text.contains("Alpah") && text.contains("Alpha, Beta"),
        "{text}"
    );
    let e = src.prepare(&[wanted("Alpha", &["Nmae"])]).unwrap_err();
    assert!(assert_clean(&e).contains("Nmae"));

    // The server's own 422 UNKNOWN_FIELD_NAME.
    let e = src.prepare(&[wanted("Alpha", &["Score"])]).unwrap_err();
    let text = assert_clean(&e);
    assert!(
        text.contains("UNKNOWN_FIELD_NAME")
            && text.contains("\"Alpha\"")
            && text.contains(BASE)
            && text.contains("field"),
        "{text}"
    );

    // The server's 403 for a table that went away after the metadata was read.
    fake.configure(|c| c.tables.retain(|t| t["name"] != "Beta"));
    let e = src.prepare(&[wanted("Beta", &["Name"])]).unwrap_err();
    let text = assert_clean(&e);
    assert!(
        text.contains("403") && text.contains("\"Beta\"") && text.contains("scope"),
        "{text}"
    );
    assert_eq!(fake.stats().rate_limited, 0);
}

#[test]
fn the_billing_limit_fails_at_once() {
    let (url, fake) = FakeAirtable::start(small(&[("Alpha", 10)])).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    fake.configure(|c| c.faults.billing_limit = true);
    let started = Instant::now();
    let e = src.prepare(&[wanted("Alpha", &["Name"])]).unwrap_err();
    let text = assert_clean(&e);
    assert!(
        text.contains("PUBLIC_API_BILLING_LIMIT_EXCEEDED") && text.contains("\"Alpha\""),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(src.stats().retries, 0);
}

#[test]
fn persistent_5xx_give_up_after_bounded_tries() {
    let mut config = small(&[("Alpha", 10)]);
    config.faults.fail_fraction = 1.0;
    let (url, _fake) = FakeAirtable::start(config).unwrap();
    let mut o = opts(&url);
    o.max_tries = 3;
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), o).unwrap();
    let e = src.prepare(&[wanted("Alpha", &["Name"])]).unwrap_err();
    let text = assert_clean(&e);
    assert!(text.contains("503") && text.contains("page 1"), "{text}");
    assert_eq!(src.stats().retries, 2);
}

#[test]
fn a_table_can_be_read_while_the_others_are_still_fetched() {
    // 1 page for Small, 15 for Big: at 5 requests a second Big takes about 3 s more.
    let (url, fake) = FakeAirtable::start(small(&[("Big", 1500), ("Small", 50)])).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    src.start(&[wanted("Big", &["Name"]), wanted("Small", &["Name"])])
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        src.ready(&["Big", "Small"]).unwrap(),
        1,
        "Small is done first"
    );
    let got = rows(&mut src, "Small", &["@id", "Name"]);
    let ids: Vec<String> = got.iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids, expected_ids("Small", 50));
    // Read while Big was being fetched: its last page had not been asked for yet.
    let asked = fake.stats().requests;
    assert!(asked < 17, "meta + 1 + 15 pages; {asked} already asked for");
    assert_eq!(src.ready(&["Big"]).unwrap(), 0);
    let ids: Vec<String> = rows(&mut src, "Big", &["@id"])
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(ids, expected_ids("Big", 1500));
    assert_eq!(fake.stats().requests, 17, "every page once");
}

#[test]
fn a_failed_table_fails_ready_once_every_table_has_ended() {
    let mut config = small(&[("Big", 800), ("Small", 50)]);
    config.faults.fatal_at_page = Some(("Big".into(), 3));
    let (url, fake) = FakeAirtable::start(config).unwrap();
    let mut src = AirtableSource::open(BASE, Token::new(TOKEN), opts(&url)).unwrap();
    src.start(&[wanted("Big", &["Name"]), wanted("Small", &["Name"])])
        .unwrap_or_else(|e| panic!("{e:#}"));
    // Small may be told (and read) before Big fails; after that, only the failure is.
    let e = match src.ready(&["Big", "Small"]) {
        Ok(1) => {
            assert_eq!(rows(&mut src, "Small", &["@id"]).len(), 50);
            src.ready(&["Big"]).unwrap_err()
        }
        Ok(i) => panic!("table {i} was told ready; Big never completes"),
        Err(e) => e,
    };
    let text = assert_clean(&e);
    assert!(
        text.contains("AUTHENTICATION_REQUIRED") && text.contains("\"Big\""),
        "{text}"
    );
    // The failure ended the batch: a scan of Big fetches it again (the fault was once),
    // every record.
    let before = fake.stats().requests;
    assert_eq!(rows(&mut src, "Big", &["@id"]).len(), 800);
    assert!(fake.stats().requests > before);
}
