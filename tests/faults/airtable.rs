//! A misbehaving Airtable API (the in-process fake) during a real `cutover load` of the
//! Podium base: each fault is survived, the run says so, and the target is exactly what a
//! clean run gives.

use crate::harness::{Db, Run, run_env};
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig, Faults, fake_id};
use serde_json::json;
use std::sync::OnceLock;
use std::time::Duration;

const BASE: &str = "appPodium00000001";
const TOKEN: &str = "patFAKEtoken.0123456789abcdef0123456789abcdef";

/// The recorded Podium base plus 120 extra users, so `Users` spans two pages and has an
/// iterator that can expire.
fn base() -> FakeConfig {
    let mut c = FakeConfig::from_dir(
        &crate::harness::repo().join("fixtures/podium-airtable"),
        BASE,
        TOKEN,
    )
    .unwrap();
    let users = c.tables.iter().find(|t| t["name"] == "Users").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let recs = c.records.get_mut(&users).unwrap();
    let template = recs[recs.len() - 1].clone();
    for i in 0..120u64 {
        let mut r = template.clone();
        r["id"] = json!(fake_id("rec", "faults-extra-user", i));
        r["fields"] = json!({
            "Email": format!("extra{i}@example.com"),
            "Display Name": format!("Extra {i}"),
        });
        recs.push(r);
    }
    c.lock = Duration::from_secs(1);
    c
}

/// One load through a fresh fake server (a fresh rate-limit window) with `faults`.
fn load(db: &Db, faults: Faults) -> (Run, cutover_testkit::fake_airtable::FakeStats) {
    let mut c = base();
    c.faults = faults;
    let (url, server) = FakeAirtable::start(c).unwrap();
    let r = run_env(
        &[
            "load",
            "-m",
            "mappings/podium.toml",
            "--target",
            db.url.as_str(),
        ],
        &[
            ("AIRTABLE_API_URL", url.as_str()),
            ("AIRTABLE_TOKEN", TOKEN),
            // This run's pacing files, apart from other runs' (see source/airtable/shared.rs).
            ("XDG_RUNTIME_DIR", db.dir.to_str().unwrap()),
        ],
    );
    (r, server.stats())
}

fn clean() -> &'static str {
    static CLEAN: OnceLock<String> = OnceLock::new();
    CLEAN.get_or_init(|| {
        let db = Db::new("f_airtable_clean");
        let (r, stats) = load(&db, Faults::default());
        r.ok();
        assert_eq!(stats.faults, 0);
        assert_eq!(db.one("SELECT count(*) FROM users"), "134");
        crate::state(&db)
    })
}

fn survives(name: &str, faults: Faults, expect_in_note: &str) {
    let db = Db::new(name);
    let (r, stats) = load(&db, faults);
    r.ok();
    assert!(
        stats.faults + stats.rate_limited > 0,
        "no fault was injected: {stats:?}"
    );
    assert!(
        r.stderr.contains("note: Airtable base appPodium00000001:")
            && r.stderr.contains("every record was read")
            && r.stderr.contains(expect_in_note),
        "the run should report what it survived:\n{}",
        r.all()
    );
    assert!(!r.all().contains(TOKEN));
    assert_eq!(
        crate::state(&db),
        clean(),
        "{name}: the target differs from a clean run"
    );
}

#[test]
fn five_percent_503() {
    survives(
        "f_at_503",
        Faults {
            fail_fraction: 0.05,
            // The fake's random stream is fixed; a burst makes sure 503s happen at all.
            burst_503: Some((3, 2)),
            ..Faults::default()
        },
        "retried",
    );
}

#[test]
fn a_429_storm() {
    survives(
        "f_at_429",
        Faults {
            force_429_at: Some(2),
            retry_after: Some(1),
            ..Faults::default()
        },
        // The first 429 pauses every request to the base: only those already on their way
        // (at most one second's worth, five) meet the lock.
        "rate-limited (429)",
    );
    let db = Db::new("f_at_429_count");
    let (r, _) = load(
        &db,
        Faults {
            force_429_at: Some(2),
            retry_after: Some(1),
            ..Faults::default()
        },
    );
    r.ok();
    let limited: u32 = r
        .stderr
        .split(" rate-limited (429)")
        .next()
        .and_then(|before| before.rsplit(", ").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count of 429s:\n{}", r.all()));
    assert!((1..=5).contains(&limited), "{limited} × 429:\n{}", r.all());
}

#[test]
fn an_expired_iterator() {
    survives(
        "f_at_iterator",
        Faults {
            expire_iterator: Some(("Users".into(), 2)),
            ..Faults::default()
        },
        "1 tables restarted",
    );
}

#[test]
fn a_connection_dropped_mid_body() {
    survives(
        "f_at_drop",
        Faults {
            drop_at: Some(3),
            ..Faults::default()
        },
        "retried",
    );
}

#[test]
fn a_page_that_is_not_json() {
    survives(
        "f_at_malformed",
        Faults {
            malformed_at: Some(4),
            ..Faults::default()
        },
        "retried",
    );
}
