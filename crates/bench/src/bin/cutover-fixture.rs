//! Builds the SQLite fixtures cutover's demo, tests and benchmarks read, so that nothing but
//! cargo is needed (no `sqlite3` command-line tool).
//!
//! `cutover-fixture sql FILE.sql OUT.sqlite` runs a readable SQL text source into a fresh
//! SQLite database.
//!
//! `cutover-fixture podium --scale S [--seed N] OUT.sqlite` generates a Podium-shaped legacy
//! database of any size for the benchmark: exactly the schema of `fixtures/podium/legacy.sql`,
//! the same kinds of mess (ids with gaps, text/ISO/epoch timestamps in one column, 0/1, 't'/'f'
//! and 'true'/'false' booleans, mixed-case emails with spaces, JSON tags, hours as REAL,
//! INTEGER or TEXT), every invariant the target schema enforces, and a small fixed number of
//! dangling references (referrers → NULL, vote projects → skip) so the reference policies run.
//! Deterministic: the same scale and seed give the same file, byte for byte in content.

use anyhow::{Context, Result, bail};
use rusqlite::params;
use std::collections::HashSet;
use std::path::Path;
use std::process::exit;
use std::time::Instant;

const USAGE: &str = "usage: cutover-fixture sql FILE.sql OUT.sqlite\n       cutover-fixture podium --scale S [--seed N] OUT.sqlite";

/// Dangling references kept at every scale (capped by the table's size).
const DANGLING_REFERRERS: usize = 10;
const DANGLING_VOTES: usize = 10;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("sql") if args.len() == 3 => from_sql(Path::new(&args[1]), Path::new(&args[2])),
        Some("podium") => parse_podium(&args[1..])
            .and_then(|(scale, seed, out)| podium(scale, seed, Path::new(&out))),
        _ => {
            eprintln!("{USAGE}");
            exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        exit(1);
    }
}

fn from_sql(sql: &Path, out: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(sql).with_context(|| format!("reading {}", sql.display()))?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = out.with_extension("sqlite.tmp");
    let _ = std::fs::remove_file(&tmp);
    let conn = rusqlite::Connection::open(&tmp)?;
    conn.execute_batch(&text)
        .with_context(|| format!("running {}", sql.display()))?;
    drop(conn);
    std::fs::rename(&tmp, out)?;
    println!("built {} from {}", out.display(), sql.display());
    Ok(())
}

fn parse_podium(args: &[String]) -> Result<(f64, u64, String)> {
    let (mut scale, mut seed, mut out) = (None, 1u64, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--scale" => {
                let v = it.next().context("--scale needs a value")?;
                let s: f64 = v
                    .parse()
                    .with_context(|| format!("--scale {v}: not a number"))?;
                if !(s.is_finite() && s > 0.0 && s <= 100.0) {
                    bail!("--scale {v}: must be > 0 and <= 100");
                }
                scale = Some(s);
            }
            "--seed" => {
                let v = it.next().context("--seed needs a value")?;
                seed = v
                    .parse()
                    .with_context(|| format!("--seed {v}: not an unsigned integer"))?;
            }
            s if s.starts_with('-') => bail!("unknown option {s}\n{USAGE}"),
            s => {
                if out.replace(s.to_string()).is_some() {
                    bail!("more than one output file\n{USAGE}");
                }
            }
        }
    }
    Ok((
        scale.context(format!("--scale is required\n{USAGE}"))?,
        seed,
        out.context(format!("the output file is required\n{USAGE}"))?,
    ))
}

/// splitmix64: small, fast, good enough, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// `n` ids starting at 1 with about one gap in ten.
fn ids_with_gaps(rng: &mut Rng, n: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    let mut id = 0i64;
    while ids.len() < n {
        id += 1;
        if rng.chance(10) {
            id += 1 + rng.below(3) as i64;
        }
        ids.push(id);
    }
    ids
}

fn scaled(base: f64, scale: f64) -> usize {
    ((base * scale).round() as usize).max(1)
}

/// 2023-01-01 .. 2025-12-31 in epoch seconds.
fn epoch(rng: &mut Rng) -> i64 {
    1_672_531_200 + rng.below(3 * 365 * 86_400) as i64
}

fn text_ts(secs: i64, iso: bool) -> String {
    let t = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    if iso {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

const FIRST: &[&str] = &[
    "Ada", "Bob", "Carol", "José", "Zoë", "Dave", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy",
    "太郎", "Mallory", "Ngozi", "Olav", "Priya", "Quinn",
];
const LAST: &[&str] = &[
    "Admin",
    "O'Brien",
    "Jones",
    "Müller",
    "Smith",
    "Hopper",
    "Klum",
    "Petrov",
    "Ünal",
    "田中",
    "García",
    "Nakamura",
    "Okafor",
    "Lindqvist",
];
const WORDS: &[&str] = &[
    "fast",
    "tiny",
    "rust",
    "python",
    "board",
    "tracker",
    "notes",
    "map",
    "🚀",
    "日本語",
    "café",
    "\"quoted\"",
    "it's",
    "a, b",
    "tab\there",
    "line\nbreak",
    "C:\\path",
    "graph",
    "vote",
    "demo",
    "hack",
    "ship",
    "cloud",
    "local",
    "first",
];
const TAGS: &[&str] = &[
    "rust",
    "cli",
    "python",
    "web",
    "ml",
    "emoji",
    "日本語",
    "maps",
    "games",
    "hardware",
];

fn sentence(rng: &mut Rng, words: usize) -> String {
    let mut s = String::with_capacity(words * 7);
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS));
    }
    s
}

fn podium(scale: f64, seed: u64, out: &Path) -> Result<()> {
    let started = Instant::now();
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = out.with_extension("sqlite.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut conn =
        rusqlite::Connection::open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA page_size = 8192;",
    )?;
    // Exactly the legacy schema, taken from legacy.sql's CREATE TABLE statements.
    conn.execute_batch(legacy_schema())?;
    let mut rng = Rng(seed ^ 0x005E_ED0F_C0DE);
    let tx = conn.transaction()?;
    let mut counts = Vec::new();

    // people ----------------------------------------------------------------
    let people = ids_with_gaps(&mut rng, scaled(100_000.0, scale));
    {
        let mut st = tx.prepare(
            "INSERT INTO people (id, email, name, first, last, phone, is_admin, verified, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for &id in &people {
            let first = rng.pick(FIRST);
            let last = rng.pick(LAST);
            let local = format!("{}.{}{id}", ascii(first), ascii(last));
            // Unique after trim + lowercase: the id is in every address.
            let email = match rng.below(6) {
                0 => format!("  {local}@Example.COM "),
                1 => format!("{}@example.com", local.to_uppercase()),
                2 => format!("{local}@example.com "),
                3 => format!(" {local}@Example.org"),
                _ => format!("{}@example.com", local.to_lowercase()),
            };
            let name = if rng.chance(2) {
                String::new()
            } else {
                format!("{first} {last}")
            };
            let (f, l): (Option<&str>, Option<&str>) = match rng.below(10) {
                0 => (None, None),
                1 => (Some(first), None),
                _ => (Some(first), Some(last)),
            };
            let phone = match rng.below(5) {
                0 => None,
                1 => Some(String::new()),
                _ => Some(format!("+1-555-{:04}", rng.below(10_000))),
            };
            let is_admin = i64::from(rng.chance(1));
            let verified = match rng.below(3) {
                0 => None,
                1 => Some("t"),
                _ => Some("f"),
            };
            let secs = epoch(&mut rng);
            let created: rusqlite::types::Value = match rng.below(3) {
                0 => secs.into(),
                1 => text_ts(secs, true).into(),
                _ => text_ts(secs, false).into(),
            };
            st.execute(params![
                id, email, name, f, l, phone, is_admin, verified, created
            ])?;
        }
    }
    counts.push(("people", people.len()));

    // events ----------------------------------------------------------------
    let events = ids_with_gaps(&mut rng, scaled(1_000.0, scale));
    {
        let mut st = tx.prepare(
            "INSERT INTO events (id, title, slug, about, owner, starts, votable, leaderboard, max_votes, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for &id in &events {
            let title = format!("{} Jam #{id}", sentence(&mut rng, 2));
            let about = match rng.below(4) {
                0 => None,
                1 => Some(String::new()),
                _ => Some(sentence(&mut rng, 12)),
            };
            // Naive America/New_York wall time between 09:00 and 22:59: never in a DST gap
            // or fold (those happen at 01:00-02:59).
            let day = epoch(&mut rng) / 86_400 * 86_400;
            let starts = if rng.chance(10) {
                None
            } else {
                let t = chrono::DateTime::from_timestamp(day, 0).unwrap_or_default();
                Some(format!(
                    "{} {:02}:{:02}",
                    t.format("%Y-%m-%d"),
                    9 + rng.below(14),
                    rng.below(4) * 15
                ))
            };
            let votable = if rng.chance(70) { "true" } else { "false" };
            let max_votes: Option<i64> = if rng.chance(20) {
                None
            } else {
                Some(1 + rng.below(5) as i64)
            };
            let created_ms = epoch(&mut rng) * 1000 + rng.below(1000) as i64;
            st.execute(params![
                id,
                title,
                format!("event-{id}"),
                about,
                rng.pick(&people),
                starts,
                votable,
                i64::from(rng.chance(50)),
                max_votes,
                created_ms
            ])?;
        }
    }
    counts.push(("events", events.len()));

    // event_people: ~22 distinct attendees per event --------------------------
    let mut n = 0;
    {
        let mut st = tx.prepare("INSERT INTO event_people (event, person) VALUES (?1, ?2)")?;
        for &e in &events {
            let want = (12 + rng.below(21) as usize).min(people.len());
            let mut seen = HashSet::with_capacity(want);
            while seen.len() < want {
                let p = rng.pick(&people);
                if seen.insert(p) {
                    st.execute(params![e, p])?;
                    n += 1;
                }
            }
        }
    }
    counts.push(("event_people", n));

    // projects ----------------------------------------------------------------
    let projects = ids_with_gaps(&mut rng, scaled(200_000.0, scale));
    let mut project_event = Vec::with_capacity(projects.len());
    {
        let mut st = tx.prepare(
            "INSERT INTO projects (id, title, description, repo, demo, image, hours, state, tags, owner, event, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for &id in &projects {
            let title = format!("{} {id}", sentence(&mut rng, 3));
            let description = match rng.below(6) {
                0 => None,
                1 => Some(String::new()),
                _ => {
                    let words = 14 + rng.below(24) as usize;
                    Some(sentence(&mut rng, words))
                }
            };
            let repo = (!rng.chance(20)).then(|| format!("https://github.com/example/p{id}"));
            let demo = rng.chance(40).then(|| format!("https://p{id}.example.com"));
            let image = rng
                .chance(30)
                .then(|| format!("https://img.example.com/p{id}.png"));
            let hours: rusqlite::types::Value = match rng.below(5) {
                0 => rusqlite::types::Value::Null,
                1 => (rng.below(200) as i64).into(),
                2 => format!("{}.{}", rng.below(200), rng.below(10)).into(),
                _ => (rng.below(8000) as f64 / 4.0).into(), // x.25 and x.75 round away
            };
            let state = rng.pick(&["D", "S", "S", "S", "A"]);
            let tags = match rng.below(5) {
                0 => None,
                1 => Some("[]".to_string()),
                2 => Some(format!(
                    "[ \"{}\" , \"{}\" ]",
                    rng.pick(TAGS),
                    rng.pick(TAGS)
                )),
                _ => Some(format!("[\"{}\"]", rng.pick(TAGS))),
            };
            let event = rng.pick(&events);
            project_event.push(event);
            let created = text_ts(epoch(&mut rng), rng.chance(30));
            st.execute(params![
                id,
                title,
                description,
                repo,
                demo,
                image,
                hours,
                state,
                tags,
                rng.pick(&people),
                event,
                created
            ])?;
        }
    }
    counts.push(("projects", projects.len()));

    // project_people: 0-3 distinct collaborators per project, 1.45 on average ---
    let mut n = 0;
    {
        let mut st = tx.prepare("INSERT INTO project_people (project, person) VALUES (?1, ?2)")?;
        for &p in &projects {
            let want = match rng.below(20) {
                0..=3 => 0,
                4..=9 => 1,
                10..=16 => 2,
                _ => 3,
            }
            .min(people.len());
            let mut seen = [0i64; 3];
            let mut k = 0;
            while k < want {
                let person = rng.pick(&people);
                if !seen[..k].contains(&person) {
                    seen[k] = person;
                    k += 1;
                    st.execute(params![p, person])?;
                    n += 1;
                }
            }
        }
    }
    counts.push(("project_people", n));

    // referrals (a fixed few with a referrer that does not exist) ---------------
    let referrals = ids_with_gaps(&mut rng, scaled(25_000.0, scale));
    let max_person = *people.last().unwrap_or(&0);
    {
        let mut st = tx.prepare(
            "INSERT INTO referrals (id, referrer, referred, event, created) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let step = (referrals.len() / DANGLING_REFERRERS).max(1);
        let mut dangling = 0;
        for (i, &id) in referrals.iter().enumerate() {
            let referrer = if i % step == step / 2 && dangling < DANGLING_REFERRERS {
                dangling += 1;
                max_person + 1000 + dangling as i64
            } else {
                rng.pick(&people)
            };
            let created = text_ts(epoch(&mut rng), rng.chance(30));
            st.execute(params![
                id,
                referrer,
                rng.pick(&people),
                rng.pick(&events),
                created
            ])?;
        }
    }
    counts.push(("referrals", referrals.len()));

    // votes: (voter, project) unique, event = the project's event; a fixed few
    // whose project does not exist ------------------------------------------------
    let want = scaled(1_000_000.0, scale).min(people.len() * projects.len());
    let votes = ids_with_gaps(&mut rng, want);
    let max_project = *projects.last().unwrap_or(&0);
    {
        let mut st = tx.prepare(
            "INSERT INTO votes (id, voter, project, event, points, cast_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut pairs: HashSet<(i64, i64)> = HashSet::with_capacity(votes.len());
        let step = (votes.len() / DANGLING_VOTES).max(1);
        let mut dangling = 0;
        for (i, &id) in votes.iter().enumerate() {
            let voter = rng.pick(&people);
            let (project, event) = if i % step == step / 2 && dangling < DANGLING_VOTES {
                dangling += 1;
                (max_project + 1000 + dangling as i64, rng.pick(&events))
            } else {
                loop {
                    let k = rng.below(projects.len() as u64) as usize;
                    if pairs.insert((voter, projects[k])) {
                        break (projects[k], project_event[k]);
                    }
                }
            };
            let points: Option<i64> = if rng.chance(10) {
                None
            } else {
                Some(1 + rng.below(3) as i64)
            };
            st.execute(params![id, voter, project, event, points, epoch(&mut rng)])?;
        }
    }
    counts.push(("votes", votes.len()));

    tx.commit()?;
    drop(conn);
    std::fs::rename(&tmp, out)
        .with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
    let total: usize = counts.iter().map(|c| c.1).sum();
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    let list: Vec<String> = counts.iter().map(|(t, n)| format!("{t} {n}")).collect();
    println!(
        "built {} (scale {scale}, seed {seed}): {total} rows ({}), {:.1} MB in {:.1} s",
        out.display(),
        list.join(", "),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The ASCII letters of a name, for an email address ("José" → "Jos").
fn ascii(s: &str) -> String {
    let a: String = s.chars().filter(char::is_ascii_alphabetic).collect();
    if a.is_empty() { "x".into() } else { a }
}

/// The CREATE TABLE statements of fixtures/podium/legacy.sql (from its first CREATE TABLE to
/// its first INSERT), so the generated database has exactly the fixture's legacy schema.
fn legacy_schema() -> &'static str {
    const LEGACY: &str = include_str!("../../../../fixtures/podium/legacy.sql");
    let start = LEGACY.find("CREATE TABLE").unwrap_or(0);
    let end = LEGACY
        .find("INSERT INTO")
        .unwrap_or(LEGACY.len())
        .max(start);
    &LEGACY[start..end]
}
