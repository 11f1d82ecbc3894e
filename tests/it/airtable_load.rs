//! The Podium cutover from Airtable end to end: the recorded Airtable base, served by the
//! in-process fake API, loaded into the Podium schema with mappings/podium.toml.

use crate::harness::{Db, Run, repo, run_env};
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig};

const BASE: &str = "appPodium00000001";
const TOKEN: &str = "patFAKEtoken.0123456789abcdef0123456789abcdef";

fn fake() -> FakeAirtable {
    let config =
        FakeConfig::from_dir(&repo().join("fixtures/podium-airtable"), BASE, TOKEN).unwrap();
    FakeAirtable::start(config).unwrap().1
}

fn cutover(server: &FakeAirtable, db: &Db, cmd: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        cmd,
        "-m",
        "mappings/podium.toml",
        "--target",
        db.url.as_str(),
    ];
    args.extend_from_slice(extra);
    let url = server.url();
    run_env(
        &args,
        &[
            ("AIRTABLE_API_URL", url.as_str()),
            ("AIRTABLE_TOKEN", TOKEN),
            // This run's pacing files, apart from other runs' (see source/airtable/shared.rs).
            ("XDG_RUNTIME_DIR", db.dir.to_str().unwrap()),
        ],
    )
}

#[test]
fn podium_base_loads_with_links_resolved_or_reported() {
    let server = fake();
    let db = Db::new("airtable_podium");
    let report = db.dir.join("report.json");
    let rejects = db.dir.join("rejects.csv");
    let r = cutover(
        &server,
        &db,
        "load",
        &[
            "--report",
            report.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
        ],
    );
    r.ok();
    for (t, n) in [
        ("users", 14),
        ("events", 4),
        ("event_attendees", 16),
        ("projects", 9),
        ("project_collaborators", 10),
        ("referrals", 5),
        ("votes", 24),
    ] {
        assert_eq!(
            db.one(&format!("SELECT count(*) FROM {t}")),
            n.to_string(),
            "{t}\n{}",
            r.all()
        );
    }
    // Every row keeps its record id.
    assert_eq!(
        db.one(
            "SELECT count(*) FROM users WHERE airtable_id LIKE 'rec%' AND length(airtable_id) = 17"
        ),
        "14"
    );
    // Values as the API gives them: omitted empty text is NULL or the mapping's default,
    // an absent checkbox is false, a multiple select is a jsonb array, the fold instant kept.
    assert_eq!(
        db.one("SELECT email FROM users WHERE airtable_id = 'recnMqtNn2v65YFoO'"),
        "NULL",
        "the dangling referrer is not a user"
    );
    assert_eq!(db.one("SELECT count(*) FROM users WHERE is_admin"), "2");
    assert_eq!(
        db.one("SELECT tags::text FROM projects WHERE airtable_id = 'recAHr4UNRiJrdlLa'"),
        "[\"rust\", \"cli\"]"
    );
    assert_eq!(
        db.one("SELECT count(*) FROM projects WHERE status = 'submitted'"),
        "5"
    );
    // Links: the dangling referrer became NULL, the vote for a deleted project and the blank
    // vote were skipped; all reported.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let table = |name: &str| {
        json["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(table("referrals")["nulled"], 1);
    assert_eq!(table("votes")["read"], 26);
    assert_eq!(table("votes")["skipped"], 2);
    let csv = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        csv.contains("votes,recPCJ0Zmtw16DAXs,project_id,rechMKP0rKNSOYrQm"),
        "{csv}"
    );
    assert!(csv.contains("votes,recimFBSo9WrxMxej,project_id,"), "{csv}");
    // Junctions come from one side only: no pair twice (the PK would refuse it anyway).
    assert_eq!(
        db.one("SELECT count(*) FROM (SELECT DISTINCT event_id, user_id FROM event_attendees) x"),
        "16"
    );
    // The token is never printed.
    assert!(!r.all().contains(TOKEN), "{}", r.all());
    assert!(!std::fs::read_to_string(&report).unwrap().contains(TOKEN));

    // Re-running changes nothing, and verify agrees. Separate processes do not share a rate
    // limiter (Airtable's limit spans every client of the base), so let a second pass first.
    let before = db.dump();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    cutover(&server, &db, "load", &["--prune"]).ok();
    assert_eq!(db.dump(), before);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let v = cutover(&server, &db, "verify", &[]);
    v.ok();
    assert!(!v.all().contains(TOKEN));
    // The rate limit was never tripped.
    let stats = server.stats();
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert!(stats.max_per_second <= 5, "{stats:?}");
}

#[test]
fn inspect_drafts_an_airtable_mapping_from_metadata() {
    let server = fake();
    let db = Db::bare("airtable_inspect");
    let draft = db.dir.join("draft.toml");
    let url = server.url();
    let r = run_env(
        &[
            "inspect",
            "--source",
            &format!("airtable:{BASE}"),
            "--emit-mapping",
            draft.to_str().unwrap(),
        ],
        &[
            ("AIRTABLE_API_URL", url.as_str()),
            ("AIRTABLE_TOKEN", TOKEN),
        ],
    );
    r.ok();
    assert!(r.stdout.contains("Attendees                        multipleRecordLinks  -> Users (many), inverse of Events Attending"), "{}", r.stdout);
    let text = std::fs::read_to_string(&draft).unwrap();
    // The draft is a valid mapping for this base.
    run_env(
        &["check", "-m", draft.to_str().unwrap()],
        &[
            ("AIRTABLE_API_URL", url.as_str()),
            ("AIRTABLE_TOKEN", TOKEN),
        ],
    )
    .ok();
    let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // Each many-to-many link is drafted once, from one side.
    let junctions: Vec<&str> = doc["tables"]
        .as_table()
        .unwrap()
        .iter()
        .filter(|(_, t)| t.get("junction").and_then(toml::Value::as_bool) == Some(true))
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        junctions.contains(&"users_events_attending"),
        "{junctions:?}"
    );
    assert!(!junctions.contains(&"events_attendees"), "{junctions:?}");
    // Its columns name one record each, as a schema does.
    let attending = doc["tables"]["users_events_attending"]["columns"]
        .as_table()
        .unwrap();
    assert_eq!(
        attending.keys().collect::<Vec<_>>(),
        ["user_id", "event_id"],
        "{text}"
    );
    assert_eq!(
        doc["tables"]["users_events_attending"]["owner"].as_str(),
        Some("user_id"),
        "{text}"
    );
    assert!(!r.all().contains(TOKEN));
}

#[test]
fn bad_token_fails_fast_and_clearly() {
    let server = fake();
    let db = Db::new("airtable_bad_token");
    let url = server.url();
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
            ("AIRTABLE_TOKEN", "patWRONGtoken.secretsecret"),
        ],
    );
    r.fails(3);
    assert!(r.stderr.contains(BASE), "{}", r.all());
    assert!(!r.all().contains("secretsecret"), "{}", r.all());
    assert_eq!(db.one("SELECT count(*) FROM users"), "0");
}

#[test]
fn a_link_listed_twice_loads_once_and_its_siblings_stay() {
    // Events.Attendees of one event lists the same user twice: the exploded rows share the
    // record's position, so only the duplicate may be dropped, not its siblings.
    let mut config =
        FakeConfig::from_dir(&repo().join("fixtures/podium-airtable"), BASE, TOKEN).unwrap();
    let table_id = config
        .tables
        .iter()
        .find(|t| t["name"] == "Events")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let events = config.records.get_mut(&table_id).unwrap();
    let event = events
        .iter_mut()
        .find(|e| {
            e["fields"]["Attendees"]
                .as_array()
                .is_some_and(|a| a.len() >= 3)
        })
        .unwrap();
    let id = event["id"].as_str().unwrap().to_string();
    let attendees = event["fields"]["Attendees"].as_array_mut().unwrap();
    let n = attendees.len();
    let first = attendees[0].clone();
    attendees.push(first);
    let server = FakeAirtable::start(config).unwrap().1;
    let db = Db::new("airtable_dup_link");
    let r = cutover(&server, &db, "load", &[]);
    r.ok();
    assert_eq!(db.one(&format!("SELECT count(*) FROM event_attendees a JOIN events e ON e.id = a.event_id WHERE e.airtable_id = '{id}'")), n.to_string(), "{}", r.all());
    assert_eq!(db.one("SELECT count(*) FROM event_attendees"), "16");
    assert_eq!(
        crate::harness::cell(&r.stdout, "event_attendees", "skipped").as_deref(),
        Some("1"),
        "one duplicate link skipped:\n{}",
        r.stdout
    );
}

#[test]
fn airtable_snapshot_loads_exactly_like_the_base_itself() {
    let server = fake();
    // Straight from the API.
    let direct = Db::new("airtable_direct");
    cutover(&server, &direct, "load", &[]).ok();
    // Exported once, then loaded from the snapshot: no API involved any more.
    let db = Db::new("airtable_snapshot");
    let out = db.dir.join("snap");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let url = server.url();
    let r = run_env(
        &[
            "export",
            "-m",
            "mappings/podium.toml",
            "--out",
            out.to_str().unwrap(),
        ],
        &[
            ("AIRTABLE_API_URL", url.as_str()),
            ("AIRTABLE_TOKEN", TOKEN),
        ],
    );
    r.ok();
    // The base's metadata is kept beside the tables, listed with its checksum.
    let meta = std::fs::read_to_string(out.join("airtable-meta.json")).unwrap();
    assert!(meta.contains("multipleRecordLinks"), "{meta}");
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"airtable-meta.json\""), "{manifest}");
    for f in std::fs::read_dir(&out).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap_or_default();
        assert!(!text.contains(TOKEN), "the token is in the snapshot");
    }
    let source = format!("snapshot:{}", out.display());
    run_env(
        &[
            "load",
            "-m",
            "mappings/podium.toml",
            "--source",
            &source,
            "--target",
            db.url.as_str(),
        ],
        &[],
    )
    .ok();
    assert_eq!(db.dump(), direct.dump());
    run_env(
        &[
            "verify",
            "-m",
            "mappings/podium.toml",
            "--source",
            &source,
            "--target",
            direct.url.as_str(),
        ],
        &[],
    )
    .ok();
    // A changed metadata file is refused, named.
    std::fs::write(
        out.join("airtable-meta.json"),
        meta.replace("Users", "Userz"),
    )
    .unwrap();
    let r = run_env(
        &["check", "-m", "mappings/podium.toml", "--source", &source],
        &[],
    );
    r.fails(3);
    assert!(
        r.stderr.contains("airtable-meta.json") && r.stderr.contains("SHA-256"),
        "{}",
        r.all()
    );
}
