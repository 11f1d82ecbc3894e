//! `cutover-bench` (run by `make bench`): the measuring instrument. It answers "is
//! cutover the fastest way to do this job, with flat memory?" on one throwaway cluster, with a
//! fresh database and the full Podium schema per contender:
//!
//! 1. `cutover load --mode replace` of the generated Podium data (wall time, rows/s, peak RSS);
//! 2. a second `cutover load` (merge) with no source change: wall time and rows written;
//! 3. a third, after 1 % of the rows of each entity table changed in the source;
//! 4. pgloader (when installed) into the same schema, and the ratio cutover/pgloader;
//! 5. DuckDB (its Python package) doing the same load as one INSERT … SELECT per table;
//! 6. the floor: `psql \copy` of the typed rows in binary format into bare tables, then
//!    keys and indexes, then FKs;
//! 7. cutover's peak RSS at a small scale (0.1) against the full one;
//! 8. the load at a large scale (10, 16M rows; skipped with `--quick`): time and peak RSS;
//! 9. Airtable extraction against the fake API.
//!
//! It prints a table, the ratios against the targets, and the statements PostgreSQL
//! logged as slow during cutover's runs (`log_min_duration_statement`), and writes it all as
//! JSON with the machine it ran on. Peak RSS is `ru_maxrss` from `wait4` on the child.

mod bench;

use bench::results::{Load, Merge, Rerun, Results, machine, render, targets};

use anyhow::{Context, Result, bail};
use bench::{Measured, Pg, duckdb, floor, measure, pgloader};
use clap::Parser;
use cutover_testkit::Scratch;
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
    /// Only the Airtable extraction scenarios (no PostgreSQL): baseline, arrival jitter, two
    /// processes on one base, one big table at high latency.
    #[arg(long)]
    only_airtable: bool,
    /// Records in the base of the delta refresh scenario (run with --only-airtable).
    #[arg(long, default_value_t = 100_000)]
    refresh_records: usize,
    /// With --only-airtable: the delta refresh scenario alone.
    #[arg(long, requires = "only_airtable")]
    only_refresh: bool,
    /// With --only-airtable: only the extraction scenarios whose name contains this (e.g.
    /// "jitter"); the delta refresh is skipped.
    #[arg(long, requires = "only_airtable")]
    scenario: Option<String>,
    /// Kill a contender that takes longer than this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Do not run DuckDB.
    #[arg(long)]
    skip_duckdb: bool,
    /// The large scale whose load time and peak RSS are compared with the full one.
    #[arg(long, default_value_t = 10.0)]
    big_scale: f64,
    /// Skip the large scale (a run of about 3 minutes instead of 10).
    #[arg(long)]
    quick: bool,
}

/// The Airtable scenarios alone, one line each (and `airtable.json` beside the results).
fn only_airtable(cutover: &Path, dir: &Path, args: &Args) -> Result<()> {
    use bench::airtable::{Scenario, measure_scenario};
    let mut all = Vec::new();
    let timeout = Duration::from_secs(args.timeout);
    if args.scenario.is_none() {
        eprintln!("Airtable: delta refresh ...");
        let r = bench::delta::measure_refresh(cutover, dir, args.refresh_records, timeout)?;
        println!("{}", r.line());
        std::fs::write(
            dir.join("airtable-refresh.json"),
            serde_json::to_vec_pretty(&r)?,
        )?;
        if args.only_refresh {
            return Ok(());
        }
    }
    let chosen = |s: &Scenario| {
        args.scenario
            .as_deref()
            .is_none_or(|want| s.name().contains(want))
    };
    for s in Scenario::ALL.into_iter().filter(chosen) {
        let records = match s {
            Scenario::BigTable => 30_000,
            Scenario::TwoProcesses => args.airtable_records / 2,
            _ => args.airtable_records,
        };
        eprintln!("Airtable: {} ...", s.name());
        let x = measure_scenario(cutover, dir, s, records, Duration::from_secs(args.timeout))?;
        println!("{}", x.line());
        all.push(x);
    }
    let out = dir.join("airtable.json");
    std::fs::write(&out, serde_json::to_vec_pretty(&all)?)?;
    eprintln!("written: {}", out.display());
    Ok(())
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
    for (name, s) in [
        ("--scale", args.scale),
        ("--rss-base", args.rss_base),
        ("--big-scale", args.big_scale),
    ] {
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
    if args.only_airtable {
        return only_airtable(&find("cutover")?, &dir, args);
    }
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
    // The records of earlier runs name their clusters, gone since.
    let _ = std::fs::remove_dir_all(env.dir.join("state"));
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
        "[1/9] cutover load --mode replace (scale {}) ...",
        args.scale
    );
    let db = fresh_db(&pg, &scratch, &env.root, "bench_cutover")?;
    let from = bench::log_len(&log);
    let (cutover, _) = cutover_load(&pg, &env, &source, &db, "replace", "cutover-load")?;
    let slow_load = bench::slow_statements(&log, from);

    // 2. the no-change merge re-run, on the same database.
    eprintln!("[2/9] cutover load (merge, no source change) ...");
    let from = bench::log_len(&log);
    let merge = if cutover.ok {
        let (m, report) = cutover_load(&pg, &env, &source, &db, "merge", "cutover-merge")?;
        Some(merge_figures(&m, report.as_deref()))
    } else {
        None
    };
    let slow_merge = bench::slow_statements(&log, from);

    // 3. the merge after 1 % of the source rows changed.
    eprintln!("[3/9] cutover load (merge, 1 % of the source rows changed) ...");
    let from = bench::log_len(&log);
    let changed = if cutover.ok {
        let (changed_source, rows) = changed_copy(&source)?;
        let (m, report) = cutover_load(
            &pg,
            &env,
            &changed_source,
            &db,
            "merge",
            "cutover-merge-1pct",
        )?;
        Some(Rerun {
            merge: merge_figures(&m, report.as_deref()),
            changed_source_rows: rows,
        })
    } else {
        None
    };
    let slow_changed = bench::slow_statements(&log, from);

    // 4. pgloader.
    eprintln!("[4/9] pgloader ...");
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

    // 5. DuckDB.
    eprintln!("[5/9] DuckDB {} ...", duckdb::VERSION);
    let (duckdb, duckdb_status) = if args.skip_duckdb {
        (None, "skipped (--skip-duckdb)".to_string())
    } else {
        match run_duckdb(&pg, &env, &scratch, &source) {
            Ok(load) => {
                let status = load.error.clone().unwrap_or_else(|| "ok".into());
                (Some(load), status)
            }
            Err(e) => (None, format!("failed: {e:#}")),
        }
    };

    // 6. the floor, from the typed rows of cutover's database.
    eprintln!("[6/9] the COPY floor ...");
    let (floor, floor_status) = if cutover.ok {
        match run_floor(&pg, &env, &scratch, &psql, &db) {
            Ok(f) => (Some(f), "ok".to_string()),
            Err(e) => (None, format!("failed: {e:#}")),
        }
    } else {
        (
            None,
            "not run: cutover's load failed, so there are no rows to export".into(),
        )
    };
    drop_db(&pg, &scratch, "bench_cutover");

    // 7. cutover's peak RSS at the small scale.
    eprintln!(
        "[7/9] cutover load at scale {} (peak RSS) ...",
        args.rss_base
    );
    let rss_base = if (args.rss_base - args.scale).abs() < 1e-9 {
        Some(cutover.clone())
    } else {
        let small = generate(&env, args.rss_base, args.seed)?;
        let db = fresh_db(&pg, &scratch, &env.root, "bench_cutover_small")?;
        let load = cutover_load(&pg, &env, &small, &db, "replace", "cutover-load-small")?.0;
        drop_db(&pg, &scratch, "bench_cutover_small");
        Some(load)
    };

    // 8. the large scale.
    let (big, big_floor) = if args.quick {
        eprintln!("[8/9] scale {}: skipped (--quick)", args.big_scale);
        (None, None)
    } else {
        eprintln!("[8/9] cutover load at scale {} ...", args.big_scale);
        let large = generate(&env, args.big_scale, args.seed)?;
        let db = fresh_db(&pg, &scratch, &env.root, "bench_cutover_big")?;
        let load = cutover_load(&pg, &env, &large, &db, "replace", "cutover-load-big")?.0;
        // The floor at this scale too, so that the time ratio between the scales can be
        // read beside PostgreSQL's own.
        let floor = if load.ok {
            eprintln!("[8/9] the COPY floor at scale {} ...", args.big_scale);
            match run_floor(&pg, &env, &scratch, &psql, &db) {
                Ok(f) => Some(f),
                Err(e) => {
                    eprintln!("the floor at scale {}: {e:#}", args.big_scale);
                    None
                }
            }
        } else {
            None
        };
        drop_db(&pg, &scratch, "bench_cutover_big");
        drop_db(&pg, &scratch, "bench_floor");
        (Some(load), floor)
    };

    // 6. Airtable extraction against the fake API with realistic latency.
    let airtable = if args.airtable_records == 0 {
        None
    } else {
        eprintln!(
            "[9/9] Airtable extraction, {} records, 100-300 ms per request ...",
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
        changed,
        pgloader,
        pgloader_status,
        duckdb,
        duckdb_status,
        floor,
        floor_status,
        rss_base_scale: args.rss_base,
        rss_base,
        big_scale: args.big_scale,
        big,
        big_floor,
        airtable_extraction,
        airtable,
        targets: Vec::new(),
        slow_statements_load: slow_load,
        slow_statements_merge: slow_merge,
        slow_statements_changed: slow_changed,
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

/// Drop a database whose figures are taken, so a large scale does not fill the disk.
fn drop_db(pg: &Pg, scratch: &Scratch, name: &str) {
    let _ = pg.sql(
        &scratch.url("postgres"),
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

/// The source with 1 % of the rows of each entity table changed (a value the mapping
/// writes), written beside it; and how many rows changed.
fn changed_copy(source: &Path) -> Result<(PathBuf, u64)> {
    let out = source.with_extension("changed-1pct.sqlite");
    let tmp = out.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    std::fs::copy(source, &tmp)
        .with_context(|| format!("copying {} to {}", source.display(), tmp.display()))?;
    let conn =
        rusqlite::Connection::open(&tmp).with_context(|| format!("opening {}", tmp.display()))?;
    let mut rows = 0u64;
    for sql in [
        "UPDATE people SET name = coalesce(name, '') || ' (renamed)' WHERE id % 100 = 0",
        "UPDATE events SET title = title || ' (renamed)' WHERE id % 100 = 0",
        "UPDATE projects SET title = title || ' v2' WHERE id % 100 = 0",
        "UPDATE referrals SET created = '2020-01-01 00:00:00' WHERE id % 100 = 0",
        "UPDATE votes SET points = coalesce(points, 1) % 5 + 1 WHERE id % 100 = 0",
    ] {
        rows += conn
            .execute(sql, [])
            .with_context(|| format!("changing the source: {sql}"))? as u64;
    }
    drop(conn);
    std::fs::rename(&tmp, &out)?;
    Ok((out, rows))
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
        .arg("--state")
        .arg(env.dir.join("state"))
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

fn run_duckdb(pg: &Pg, env: &Env, scratch: &Scratch, source: &Path) -> Result<Load> {
    let python = duckdb::python(&env.dir, &env.logs)?;
    let db = fresh_db(pg, scratch, &env.root, "bench_duckdb")?;
    let cmd = duckdb::command(
        &python,
        &env.root.join("bench/duckdb-podium.py"),
        source,
        &db,
    );
    let m = measure(cmd, "duckdb", &env.logs, env.timeout)?;
    let load = figures(pg, &db, &m, "duckdb");
    drop_db(pg, scratch, "bench_duckdb");
    Ok(load)
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
