//! `cutover-bench` (run by `make bench`): the measuring instrument. It answers "is
//! cutover the fastest way to do this job, with flat memory?" on one throwaway cluster, with a
//! fresh database and the full Podium schema per contender:
//!
//! 1. `cutover load --mode replace` of the generated Podium data (wall time, rows/s, peak RSS);
//! 2. pgloader (when installed) into the same schema, and the ratio cutover/pgloader;
//! 3. the floor: `psql \copy` of pre-typed CSV into bare tables, then keys/indexes, then FKs;
//! 4. a second `cutover load` (merge) with no source change: wall time and rows updated;
//! 5. cutover's peak RSS at a small scale (0.1) against the full one.
//!
//! It prints a table, the ratios against the targets, and the statements PostgreSQL
//! logged as slow during cutover's runs (`log_min_duration_statement`), and writes it all as
//! JSON with the machine it ran on. Peak RSS is `ru_maxrss` from `wait4` on the child.

mod bench;

use anyhow::{Context, Result, bail};
use bench::{Measured, Pg, Statement, floor, measure, pgloader};
use clap::Parser;
use cutover_testkit::Scratch;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Bumped whenever the generator's output changes, so cached files are not reused.
const GENERATOR_VERSION: u32 = 1;
/// pgloader's figures need a superuser over TCP (disable triggers); a throwaway password.
const PGLOADER_ROLE: (&str, &str) = ("bench", "benchpass42");

#[derive(Parser, Debug)]
#[command(about = "Benchmark cutover against pgloader and the COPY floor on generated Podium data")]
struct Args {
    /// Data set size: 1 = 1.64M rows (100k users, 1M votes).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The small scale whose peak RSS the full scale is compared with.
    #[arg(long, default_value_t = 0.1)]
    rss_base: f64,
    /// Do not run pgloader even when it is installed.
    #[arg(long)]
    skip_pgloader: bool,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "target/bench/results.json")]
    out: PathBuf,
    /// Records in the synthetic Airtable base for the extraction figure (0: skip it).
    #[arg(long, default_value_t = 20_000)]
    airtable_records: usize,
    /// Kill a contender that takes longer than this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
struct Machine {
    cores: usize,
    memory_gib: f64,
    cpu: String,
    postgres: String,
    pgloader: Option<String>,
    cutover_commit: String,
}

#[derive(Debug, Clone, Serialize)]
struct Load {
    ok: bool,
    error: Option<String>,
    wall_s: f64,
    rows: u64,
    rows_per_s: f64,
    peak_rss_mb: f64,
    counts: Vec<(String, u64)>,
    /// Tables whose id sequence was not moved past max(id).
    stale_sequences: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Merge {
    ok: bool,
    error: Option<String>,
    wall_s: f64,
    peak_rss_mb: f64,
    inserted: u64,
    updated: u64,
    unchanged: u64,
    deleted: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Target {
    what: String,
    target: String,
    measured: String,
    met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
struct Results {
    machine: Machine,
    scale: f64,
    seed: u64,
    source_rows: u64,
    source_mb: f64,
    cutover: Option<Load>,
    merge: Option<Merge>,
    pgloader: Option<Load>,
    pgloader_status: String,
    floor: Option<floor::Floor>,
    floor_status: String,
    rss_base_scale: f64,
    rss_base: Option<Load>,
    airtable_extraction: String,
    airtable: Option<bench::airtable::Extraction>,
    targets: Vec<Target>,
    slow_statements_load: Vec<Statement>,
    slow_statements_merge: Vec<Statement>,
    notes: Vec<String>,
    bench_wall_s: f64,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("cutover-bench: error: {e:#}");
        std::process::exit(1);
    }
}

struct Env {
    root: PathBuf,
    dir: PathBuf,
    logs: PathBuf,
    cutover: PathBuf,
    fixture: PathBuf,
    timeout: Duration,
}

fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    for (name, s) in [("--scale", args.scale), ("--rss-base", args.rss_base)] {
        if !(s.is_finite() && s > 0.0 && s <= 100.0) {
            bail!("{name} {s}: must be > 0 and <= 100");
        }
    }
    // The repository root: this crate lives in crates/bench.
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let bindir = std::env::current_exe()
        .context("locating cutover-bench")?
        .parent()
        .map(Path::to_path_buf)
        .context("cutover-bench has no directory")?;
    let find = |name: &str| -> Result<PathBuf> {
        let p = bindir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            bail!(
                "{} not found: build it first (cargo build --release)",
                p.display()
            )
        }
    };
    let dir = root.join("target/bench");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let env = Env {
        cutover: find("cutover")?,
        fixture: find("cutover-fixture")?,
        root,
        dir,
        logs,
        timeout: Duration::from_secs(args.timeout),
    };
    let psql = bench::which("psql").context("psql not found: apt-get install postgresql-client")?;
    let pgloader_bin = if args.skip_pgloader {
        None
    } else {
        bench::which("pgloader")
    };
    let mut notes = Vec::new();

    let source = generate(&env, args.scale, args.seed)?;
    let source_mb = std::fs::metadata(&source)?.len() as f64 / 1e6;
    let source_rows = sqlite_rows(&source)?;

    eprintln!("starting a scratch PostgreSQL cluster ...");
    let scratch = Scratch::start(false).context("starting the scratch cluster")?;
    let admin = scratch.url("postgres");
    let pg = Pg::new()?;
    // Statements slower than this land in the server log, for the analysis below.
    pg.sql(
        &admin,
        "ALTER SYSTEM SET log_min_duration_statement = '100ms'",
    )?;
    pg.sql(&admin, "SELECT pg_reload_conf()")?;
    let log = scratch.log_path();
    let machine = machine(&pg, &admin, &env.root, pgloader_bin.as_deref());

    // 1. cutover, replace into an empty schema.
    eprintln!(
        "[1/6] cutover load --mode replace (scale {}) ...",
        args.scale
    );
    let db = fresh_db(&pg, &scratch, &env.root, "bench_cutover")?;
    let from = bench::log_len(&log);
    let (cutover, _) = cutover_load(&pg, &env, &source, &db, "replace", "cutover-load")?;
    let slow_load = bench::slow_statements(&log, from);

    // 4. the no-change merge re-run, on the same database.
    eprintln!("[2/6] cutover load (merge, no source change) ...");
    let from = bench::log_len(&log);
    let merge = if cutover.ok {
        let (m, report) = cutover_load(&pg, &env, &source, &db, "merge", "cutover-merge")?;
        Some(merge_figures(&m, report.as_deref()))
    } else {
        None
    };
    let slow_merge = bench::slow_statements(&log, from);

    // 2. pgloader.
    eprintln!("[3/6] pgloader ...");
    let (pgloader, pgloader_status) = match (&pgloader_bin, args.skip_pgloader) {
        (_, true) => (None, "skipped (--skip-pgloader)".to_string()),
        (None, false) => (
            None,
            "not installed (apt-get install pgloader): not measured".to_string(),
        ),
        (Some(bin), false) => match run_pgloader(&pg, &env, &scratch, bin, &source, args) {
            Ok((load, status)) => {
                notes.push(format!("pgloader: {}", pgloader::HANDICAP));
                (Some(load), status)
            }
            Err(e) => (None, format!("failed: {e:#}")),
        },
    };

    // 3. the floor, from CSV exported out of cutover's database.
    eprintln!("[4/6] the COPY floor ...");
    let (floor, floor_status) = if cutover.ok {
        match run_floor(&pg, &env, &scratch, &psql, &db) {
            Ok(f) => (Some(f), "ok".to_string()),
            Err(e) => (None, format!("failed: {e:#}")),
        }
    } else {
        (
            None,
            "not run: cutover's load failed, so there is no CSV to export".into(),
        )
    };

    // 5. cutover's peak RSS at the small scale.
    eprintln!(
        "[5/6] cutover load at scale {} (peak RSS) ...",
        args.rss_base
    );
    let rss_base = if (args.rss_base - args.scale).abs() < 1e-9 {
        Some(cutover.clone())
    } else {
        let small = generate(&env, args.rss_base, args.seed)?;
        let db = fresh_db(&pg, &scratch, &env.root, "bench_cutover_small")?;
        Some(cutover_load(&pg, &env, &small, &db, "replace", "cutover-load-small")?.0)
    };

    // 6. Airtable extraction against the fake API with realistic latency.
    let airtable = if args.airtable_records == 0 {
        None
    } else {
        eprintln!(
            "[6/6] Airtable extraction, {} records, 100-300 ms per request ...",
            args.airtable_records
        );
        match bench::airtable::measure_export(
            &env.cutover,
            &env.dir,
            args.airtable_records,
            env.timeout,
        ) {
            Ok(x) => Some(x),
            Err(e) => {
                notes.push(format!("Airtable extraction failed: {e:#}"));
                None
            }
        }
    };
    let airtable_extraction = match &airtable {
        Some(x) => format!(
            "{} records in {:.1} s: {:.0} records/s ({:.1}% of 500), {} requests, {} 429s, server max {}/s",
            x.records,
            x.wall_s,
            x.records_per_s,
            x.ceiling_share * 100.0,
            x.requests,
            x.rate_limited,
            x.server_max_per_second
        ),
        None => "not measured (--airtable-records 0, or it failed: see notes)".into(),
    };

    if let Err(e) = scratch.stop() {
        notes.push(format!("stopping the scratch cluster: {e:#}"));
    }
    notes.push("peak RSS: ru_maxrss of the child process, from wait4".into());
    notes.push(format!(
        "slow statements: PostgreSQL log_min_duration_statement = 100ms during cutover's runs; logs and outputs of every child in {}",
        env.logs.display()
    ));

    let mut results = Results {
        machine,
        scale: args.scale,
        seed: args.seed,
        source_rows,
        source_mb,
        cutover: Some(cutover),
        merge,
        pgloader,
        pgloader_status,
        floor,
        floor_status,
        rss_base_scale: args.rss_base,
        rss_base,
        airtable_extraction,
        airtable,
        targets: Vec::new(),
        slow_statements_load: slow_load,
        slow_statements_merge: slow_merge,
        notes,
        bench_wall_s: 0.0,
    };
    results.targets = targets(&results);
    results.bench_wall_s = started.elapsed().as_secs_f64();
    print!("{}", render(&results));
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("results: {}", args.out.display());
    Ok(())
}

/// The generated source for (scale, seed), cached in target/bench/.
fn generate(env: &Env, scale: f64, seed: u64) -> Result<PathBuf> {
    let path = env.dir.join(format!(
        "podium-s{scale}-seed{seed}-g{GENERATOR_VERSION}.sqlite"
    ));
    if path.is_file() {
        eprintln!("using cached {}", path.display());
        return Ok(path);
    }
    let mut cmd = Command::new(&env.fixture);
    cmd.args([
        "podium",
        "--scale",
        &scale.to_string(),
        "--seed",
        &seed.to_string(),
    ])
    .arg(&path);
    let m = measure(cmd, &format!("generate-s{scale}"), &env.logs, env.timeout)?;
    if !m.ok() {
        bail!("generating {}: {}", path.display(), m.tail());
    }
    eprint!("{}", m.stdout);
    Ok(path)
}

fn sqlite_rows(path: &Path) -> Result<u64> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", path.display()))?;
    let mut n = 0u64;
    for t in [
        "people",
        "events",
        "event_people",
        "projects",
        "project_people",
        "referrals",
        "votes",
    ] {
        let c: i64 = conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?;
        n += c as u64;
    }
    Ok(n)
}

/// A fresh database with the full Podium schema; its superuser socket URL.
fn fresh_db(pg: &Pg, scratch: &Scratch, root: &Path, name: &str) -> Result<String> {
    let admin = scratch.url("postgres");
    pg.sql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )?;
    pg.sql(&admin, &format!("CREATE DATABASE {name}"))?;
    let url = scratch.url(name);
    let schema_path = root.join("fixtures/podium/schema.sql");
    let schema = std::fs::read_to_string(&schema_path)
        .with_context(|| format!("reading {}", schema_path.display()))?;
    pg.sql(&url, &schema)
        .context("applying the Podium schema")?;
    Ok(url)
}

/// One `cutover load`; the figures and the path of its JSON report when it wrote one.
fn cutover_load(
    pg: &Pg,
    env: &Env,
    source: &Path,
    url: &str,
    mode: &str,
    name: &str,
) -> Result<(Load, Option<PathBuf>)> {
    let report = env.dir.join(format!("{name}.json"));
    let _ = std::fs::remove_file(&report);
    let mut cmd = Command::new(&env.cutover);
    cmd.arg("load")
        .arg("-m")
        .arg(env.root.join("mappings/podium-sqlite.toml"))
        .arg("--source")
        .arg(format!("sqlite:{}", source.display()))
        .args(["--target", url, "--mode", mode, "--quiet", "--report"])
        .arg(&report)
        .env_remove("DATABASE_URL")
        .current_dir(&env.root);
    let m = measure(cmd, name, &env.logs, env.timeout)?;
    let report = report.is_file().then_some(report);
    Ok((figures(pg, url, &m, "cutover"), report))
}

/// Wall time, RSS, row counts and sequence state after a load into `url`.
fn figures(pg: &Pg, url: &str, m: &Measured, what: &str) -> Load {
    let error = (!m.ok()).then(|| {
        if m.timed_out {
            format!("{what} killed after {:.0} s", m.wall_s)
        } else {
            format!("{what} exited with {}: {}", m.exit_code, m.tail())
        }
    });
    let counts = bench::counts(pg, url).unwrap_or_default();
    let rows: u64 = counts.iter().map(|c| c.1).sum();
    Load {
        ok: error.is_none(),
        error,
        wall_s: m.wall_s,
        rows,
        rows_per_s: rows as f64 / m.wall_s.max(1e-9),
        peak_rss_mb: m.peak_rss_mb,
        counts,
        stale_sequences: bench::stale_sequences(pg, url).unwrap_or_default(),
    }
}

fn merge_figures(load: &Load, report: Option<&Path>) -> Merge {
    let mut m = Merge {
        ok: load.ok,
        error: load.error.clone(),
        wall_s: load.wall_s,
        peak_rss_mb: load.peak_rss_mb,
        inserted: 0,
        updated: 0,
        unchanged: 0,
        deleted: 0,
    };
    let parsed = report
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    match parsed.as_ref().and_then(|v| v["tables"].as_array()) {
        Some(tables) => {
            let sum = |k: &str| tables.iter().map(|t| t[k].as_u64().unwrap_or(0)).sum();
            m.inserted = sum("inserted");
            m.updated = sum("updated");
            m.unchanged = sum("unchanged");
            m.deleted = sum("deleted");
        }
        None if m.ok => {
            m.ok = false;
            m.error = Some("cutover wrote no readable --report JSON".into());
        }
        None => {}
    }
    m
}

fn run_pgloader(
    pg: &Pg,
    env: &Env,
    scratch: &Scratch,
    bin: &Path,
    source: &Path,
    args: &Args,
) -> Result<(Load, String)> {
    let admin = scratch.url("postgres");
    let (role, password) = PGLOADER_ROLE;
    pg.sql(
        &admin,
        &format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} SUPERUSER LOGIN PASSWORD '{password}'; END IF; END $$"
        ),
    )?;
    let shaped = env.dir.join(format!(
        "podium-s{}-seed{}-g{GENERATOR_VERSION}-pgloader.sqlite",
        args.scale, args.seed
    ));
    pgloader::shape(source, &shaped)?;
    let db = fresh_db(pg, scratch, &env.root, "bench_pgloader")?;
    let template = env.root.join("bench/pgloader-podium.load");
    let load = pgloader::load_file(
        &template,
        &shaped,
        &scratch.tcp_url(role, password, "bench_pgloader"),
    )?;
    let load_path = env.logs.join("pgloader.load");
    std::fs::write(&load_path, load)?;
    let mut cmd = Command::new(bin);
    cmd.arg(&load_path).current_dir(&env.logs);
    let m = measure(cmd, "pgloader", &env.logs, env.timeout)?;
    let fig = figures(pg, &db, &m, "pgloader");
    let status = if fig.ok {
        "ok".to_string()
    } else {
        fig.error.clone().unwrap_or_default()
    };
    Ok((fig, status))
}

fn run_floor(
    pg: &Pg,
    env: &Env,
    scratch: &Scratch,
    psql: &Path,
    loaded: &str,
) -> Result<floor::Floor> {
    let csv = env.dir.join("floor-csv");
    floor::export(psql, loaded, &csv)?;
    let db = fresh_db(pg, scratch, &env.root, "bench_floor")?;
    let (keys, fks) = floor::strip(pg, &db)?;
    let f = floor::run(psql, &db, &csv, &keys, &fks, &env.logs)?;
    let _ = std::fs::remove_dir_all(&csv);
    Ok(f)
}

fn machine(pg: &Pg, admin: &str, root: &Path, pgloader: Option<&Path>) -> Machine {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let mut commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    if git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty()) {
        commit.push_str("+dirty");
    }
    Machine {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_gib: kib / 1024.0 / 1024.0,
        cpu,
        postgres: pg.one(admin, "SHOW server_version").unwrap_or_default(),
        pgloader: pgloader.and_then(|p| bench::version_of(p, &["--version"])),
        cutover_commit: commit,
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

fn targets(r: &Results) -> Vec<Target> {
    let mut t = Vec::new();
    let mut add = |what: &str, target: &str, measured: String, met: Option<bool>| {
        t.push(Target {
            what: what.into(),
            target: target.into(),
            measured,
            met,
        })
    };
    let c = r.cutover.as_ref().filter(|c| c.ok);
    match (c, r.pgloader.as_ref().filter(|p| p.ok)) {
        (Some(c), Some(p)) => {
            let x = ratio(c.wall_s, p.wall_s);
            add(
                "cutover / pgloader wall time",
                "<= 0.5",
                format!("{x:.2}"),
                Some(x <= 0.5),
            );
        }
        _ => add(
            "cutover / pgloader wall time",
            "<= 0.5",
            format!("n/a ({})", r.pgloader_status),
            None,
        ),
    }
    match (c, r.floor.as_ref()) {
        (Some(c), Some(f)) => {
            let x = ratio(c.wall_s, f.total_s);
            add(
                "cutover / floor wall time",
                "<= 1.5",
                format!("{x:.2}"),
                Some(x <= 1.5),
            );
        }
        _ => add("cutover / floor wall time", "<= 1.5", "n/a".into(), None),
    }
    match c {
        Some(c) => add(
            &format!("cutover peak RSS at scale {}", r.scale),
            "<= 150 MB",
            format!("{:.0} MB", c.peak_rss_mb),
            Some(c.peak_rss_mb <= 150.0),
        ),
        None => add("cutover peak RSS", "<= 150 MB", "n/a".into(), None),
    }
    match (c, r.rss_base.as_ref().filter(|b| b.ok)) {
        (Some(c), Some(b)) => {
            let x = ratio(c.peak_rss_mb, b.peak_rss_mb);
            add(
                &format!("RSS scale {} / scale {}", r.scale, r.rss_base_scale),
                "< 1.5",
                format!("{x:.2} ({:.0} / {:.0} MB)", c.peak_rss_mb, b.peak_rss_mb),
                Some(x < 1.5),
            );
        }
        _ => add("RSS ratio", "< 1.5", "n/a".into(), None),
    }
    match (c, r.merge.as_ref().filter(|m| m.ok)) {
        (Some(c), Some(m)) => {
            let x = ratio(m.wall_s, c.wall_s);
            add(
                "no-change merge / first load wall time",
                "<= 1.0",
                format!("{x:.2} ({:.1} s / {:.1} s)", m.wall_s, c.wall_s),
                Some(x <= 1.0),
            );
            add(
                "no-change merge rows updated",
                "0",
                m.updated.to_string(),
                Some(m.updated == 0 && m.inserted == 0 && m.deleted == 0),
            );
        }
        _ => add(
            "no-change merge",
            "<= first load, 0 updated",
            "n/a".into(),
            None,
        ),
    }
    match &r.airtable {
        Some(x) => add(
            "Airtable extraction",
            ">= 95% of 500 rec/s, 0 429s",
            format!("{:.1}%, {} 429s", x.ceiling_share * 100.0, x.rate_limited),
            Some(x.ceiling_share >= 0.95 && x.rate_limited == 0),
        ),
        None => add(
            "Airtable extraction",
            ">= 95% of 500 rec/s, 0 429s",
            "not measured".into(),
            None,
        ),
    }
    t
}

fn render(r: &Results) -> String {
    let mut s = String::new();
    let m = &r.machine;
    s.push_str(&format!(
        "\ncutover benchmark: scale {} (seed {}), {} source rows, {:.1} MB SQLite\nmachine: {} cores ({}), {:.1} GiB, PostgreSQL {}, pgloader {}, cutover {}\n\n",
        r.scale,
        r.seed,
        r.source_rows,
        r.source_mb,
        m.cores,
        m.cpu,
        m.memory_gib,
        m.postgres,
        m.pgloader.as_deref().unwrap_or("-"),
        m.cutover_commit
    ));
    s.push_str(&format!(
        "{:<44} {:>9} {:>11} {:>11} {:>9}  {}\n",
        "contender", "wall s", "rows", "rows/s", "RSS MB", "notes"
    ));
    let line = |s: &mut String, what: &str, l: &Load| {
        let mut note = l.error.clone().unwrap_or_default();
        if !l.stale_sequences.is_empty() {
            note.push_str(&format!(
                " sequences NOT reset: {}",
                l.stale_sequences.join(", ")
            ));
        }
        s.push_str(&format!(
            "{:<44} {:>9.2} {:>11} {:>11.0} {:>9.1}  {}\n",
            what,
            l.wall_s,
            l.rows,
            l.rows_per_s,
            l.peak_rss_mb,
            note.trim()
        ));
    };
    if let Some(c) = &r.cutover {
        line(&mut s, "1. cutover load --mode replace", c);
    }
    match &r.pgloader {
        Some(p) => {
            line(&mut s, "2. pgloader (shaped source, see notes)", p);
            if let Some(c) = &r.cutover {
                for (t, n) in &p.counts {
                    let cn = c.counts.iter().find(|x| &x.0 == t).map_or(0, |x| x.1);
                    if *n != cn {
                        s.push_str(&format!(
                            "   pgloader loaded {n} rows into {t}, cutover {cn}\n"
                        ));
                    }
                }
            }
        }
        None => s.push_str(&format!("{:<44} {}\n", "2. pgloader", r.pgloader_status)),
    }
    match &r.floor {
        Some(f) => {
            let rows = r.cutover.as_ref().map_or(0, |c| c.rows);
            for (what, secs) in [
                ("3. floor: \\copy CSV into bare tables", f.copy_s),
                ("   floor: keys, unique constraints, indexes", f.indexes_s),
                ("   floor: foreign keys", f.fks_s),
            ] {
                s.push_str(&format!("{what:<44} {secs:>9.2}\n"));
            }
            s.push_str(&format!(
                "{:<44} {:>9.2} {:>11} {:>11.0}\n",
                "   floor: total",
                f.total_s,
                rows,
                rows as f64 / f.total_s.max(1e-9)
            ));
        }
        None => s.push_str(&format!("{:<44} {}\n", "3. floor", r.floor_status)),
    }
    match &r.merge {
        Some(mg) => s.push_str(&format!(
            "{:<44} {:>9.2} {:>11} {:>11} {:>9.1}  inserted {} updated {} unchanged {} deleted {} {}\n",
            "4. cutover load (merge, no change)",
            mg.wall_s,
            "",
            "",
            mg.peak_rss_mb,
            mg.inserted,
            mg.updated,
            mg.unchanged,
            mg.deleted,
            mg.error.as_deref().unwrap_or("")
        )),
        None => s.push_str(&format!("{:<44} not run\n", "4. cutover merge")),
    }
    if let Some(b) = &r.rss_base {
        line(
            &mut s,
            &format!("5. cutover load at scale {}", r.rss_base_scale),
            b,
        );
    }
    s.push_str(&format!(
        "{:<44} {}\n",
        "Airtable extraction", r.airtable_extraction
    ));

    s.push_str(&format!(
        "\n{:<44} {:>28} {:>28}  met\n",
        "target", "wanted", "measured"
    ));
    for t in &r.targets {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        s.push_str(&format!(
            "{:<44} {:>28} {:>28}  {met}\n",
            t.what, t.target, t.measured
        ));
    }
    for (title, list) in [
        ("cutover load", &r.slow_statements_load),
        ("cutover merge", &r.slow_statements_merge),
    ] {
        let total: f64 = list.iter().map(|x| x.ms).sum();
        s.push_str(&format!(
            "\nslowest statements during {title} (PostgreSQL log, >= 100 ms; {} logged, {:.1} s in all):\n",
            list.len(),
            total.max(0.0) / 1000.0
        ));
        for st in list.iter().take(10) {
            s.push_str(&format!("  {:>9.0} ms  {}\n", st.ms, st.sql));
        }
    }
    s.push_str("\nnotes:\n");
    for n in &r.notes {
        s.push_str(&format!("- {n}\n"));
    }
    s.push_str(&format!("bench wall time: {:.0} s\n", r.bench_wall_s));
    s
}
