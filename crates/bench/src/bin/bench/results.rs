//! What one benchmark run measured, the targets it is judged against, and the table it
//! prints: kept apart from the running of the contenders, which is `cutover-bench.rs`.

use super::{Pg, Statement, floor};
use serde::Serialize;
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub cpu: String,
    pub postgres: String,
    pub pgloader: Option<String>,
    pub cutover_commit: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub ok: bool,
    pub error: Option<String>,
    pub wall_s: f64,
    pub rows: u64,
    pub rows_per_s: f64,
    pub peak_rss_mb: f64,
    pub counts: Vec<(String, u64)>,
    /// Tables whose id sequence was not moved past max(id).
    pub stale_sequences: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Merge {
    pub ok: bool,
    pub error: Option<String>,
    pub wall_s: f64,
    pub peak_rss_mb: f64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
}

/// A merge re-run after `changed_source_rows` source rows changed.
#[derive(Debug, Clone, Serialize)]
pub struct Rerun {
    pub merge: Merge,
    pub changed_source_rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub what: String,
    pub target: String,
    pub measured: String,
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub machine: Machine,
    pub scale: f64,
    pub seed: u64,
    pub source_rows: u64,
    pub source_mb: f64,
    pub cutover: Option<Load>,
    pub merge: Option<Merge>,
    pub changed: Option<Rerun>,
    pub pgloader: Option<Load>,
    pub pgloader_status: String,
    pub duckdb: Option<Load>,
    pub duckdb_status: String,
    pub floor: Option<floor::Floor>,
    pub floor_status: String,
    pub rss_base_scale: f64,
    pub rss_base: Option<Load>,
    pub big_scale: f64,
    pub big: Option<Load>,
    /// The floor at the large scale, from the rows cutover loaded there: how PostgreSQL's own
    /// work grows with the data, beside how cutover's does.
    pub big_floor: Option<floor::Floor>,
    pub airtable_extraction: String,
    pub airtable: Option<super::airtable::Extraction>,
    pub targets: Vec<Target>,
    pub slow_statements_load: Vec<Statement>,
    pub slow_statements_merge: Vec<Statement>,
    pub slow_statements_changed: Vec<Statement>,
    pub notes: Vec<String>,
    pub bench_wall_s: f64,
}

pub fn machine(pg: &Pg, admin: &str, root: &Path, pgloader: Option<&Path>) -> Machine {
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
        pgloader: pgloader.and_then(|p| super::version_of(p, &["--version"])),
        cutover_commit: commit,
    }
}

pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

pub fn targets(r: &Results) -> Vec<Target> {
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
    let vs = |other: Option<&Load>| match (c, other.filter(|o| o.ok)) {
        (Some(c), Some(o)) => Some((ratio(c.wall_s, o.wall_s), c.wall_s, o.wall_s)),
        _ => None,
    };
    match vs(r.pgloader.as_ref()) {
        Some((x, a, b)) => add(
            "cutover / pgloader wall time",
            "<= 0.5",
            format!("{x:.2} ({a:.1} s / {b:.1} s)"),
            Some(x <= 0.5),
        ),
        None => add(
            "cutover / pgloader wall time",
            "<= 0.5",
            format!("n/a ({})", r.pgloader_status),
            None,
        ),
    }
    match vs(r.duckdb.as_ref()) {
        Some((x, a, b)) => add(
            "cutover / DuckDB wall time",
            "< 1",
            format!("{x:.2} ({a:.1} s / {b:.1} s)"),
            Some(x < 1.0),
        ),
        None => add(
            "cutover / DuckDB wall time",
            "< 1",
            format!("n/a ({})", r.duckdb_status),
            None,
        ),
    }
    match (c, r.floor.as_ref()) {
        (Some(c), Some(f)) => {
            let x = ratio(c.wall_s, f.total_s);
            add(
                "cutover / floor wall time",
                "<= 1.25",
                format!("{x:.2} ({:.1} s / {:.1} s)", c.wall_s, f.total_s),
                Some(x <= 1.25),
            );
        }
        _ => add("cutover / floor wall time", "<= 1.25", "n/a".into(), None),
    }
    let loads = [
        (r.rss_base_scale, r.rss_base.as_ref()),
        (r.scale, c),
        (r.big_scale, r.big.as_ref()),
    ];
    let peak = loads
        .iter()
        .filter_map(|(_, l)| l.filter(|l| l.ok))
        .map(|l| l.peak_rss_mb)
        .fold(0.0, f64::max);
    add(
        "cutover peak RSS, every scale",
        "<= 64 MB",
        format!("{peak:.0} MB"),
        (peak > 0.0).then_some(peak <= 64.0),
    );
    let largest = loads
        .iter()
        .rev()
        .find_map(|(s, l)| l.filter(|l| l.ok).map(|l| (*s, l)));
    match (largest, r.rss_base.as_ref().filter(|b| b.ok)) {
        (Some((s, l)), Some(b)) if s > r.rss_base_scale => {
            let x = ratio(l.peak_rss_mb, b.peak_rss_mb);
            add(
                &format!("RSS scale {s} / scale {}", r.rss_base_scale),
                "<= 1.25 (flat)",
                format!("{x:.2} ({:.0} / {:.0} MB)", l.peak_rss_mb, b.peak_rss_mb),
                Some(x <= 1.25),
            );
        }
        _ => add("RSS ratio", "<= 1.25 (flat)", "n/a".into(), None),
    }
    match (c, r.big.as_ref().filter(|b| b.ok)) {
        (Some(c), Some(b)) => {
            let x = ratio(b.wall_s, c.wall_s);
            let wanted = format!("<= {:.0}", 1.1 * r.big_scale / r.scale);
            add(
                &format!("wall scale {} / scale {}", r.big_scale, r.scale),
                &wanted,
                format!("{x:.2} ({:.1} s / {:.1} s)", b.wall_s, c.wall_s),
                Some(x <= 1.1 * r.big_scale / r.scale),
            );
        }
        _ => add(
            &format!("wall scale {} / scale {}", r.big_scale, r.scale),
            "<= 11",
            "n/a (skipped or failed)".into(),
            None,
        ),
    }
    if let (Some(f), Some(b)) = (&r.floor, &r.big_floor) {
        let x = ratio(b.total_s, f.total_s);
        add(
            &format!(
                "floor scale {} / scale {} (reference)",
                r.big_scale, r.scale
            ),
            "",
            format!("{x:.2} ({:.1} s / {:.1} s)", b.total_s, f.total_s),
            None,
        );
    }
    match (c, r.merge.as_ref().filter(|m| m.ok)) {
        (Some(c), Some(m)) => {
            let x = ratio(m.wall_s, c.wall_s);
            add(
                "no-change re-run / first load wall time",
                "<= 0.3",
                format!("{x:.2} ({:.1} s / {:.1} s)", m.wall_s, c.wall_s),
                Some(x <= 0.3),
            );
            add(
                "no-change re-run rows written",
                "0",
                (m.updated + m.inserted + m.deleted).to_string(),
                Some(m.updated == 0 && m.inserted == 0 && m.deleted == 0),
            );
        }
        _ => add("no-change re-run", "<= 0.3, 0 written", "n/a".into(), None),
    }
    match (c, r.changed.as_ref().filter(|m| m.merge.ok)) {
        (Some(c), Some(ch)) => {
            let m = &ch.merge;
            let x = ratio(m.wall_s, c.wall_s);
            add(
                "1 %-changed re-run / first load wall time",
                "<= 0.4",
                format!("{x:.2} ({:.1} s / {:.1} s)", m.wall_s, c.wall_s),
                Some(x <= 0.4),
            );
            // A few changed rows are ones the mapping skips (votes for a missing project).
            let n = ch.changed_source_rows;
            add(
                "1 %-changed re-run rows written",
                &format!("{n} changed, only those"),
                format!(
                    "updated {} inserted {} deleted {}",
                    m.updated, m.inserted, m.deleted
                ),
                Some(
                    m.updated <= n
                        && m.updated as f64 >= 0.99 * n as f64
                        && m.inserted == 0
                        && m.deleted == 0,
                ),
            );
        }
        _ => add("1 %-changed re-run", "<= 0.4", "n/a".into(), None),
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

pub fn render(r: &Results) -> String {
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
    match &r.duckdb {
        Some(d) => {
            line(&mut s, "3. DuckDB (INSERT … SELECT per table)", d);
            if let Some(c) = &r.cutover {
                for (t, n) in &d.counts {
                    let cn = c.counts.iter().find(|x| &x.0 == t).map_or(0, |x| x.1);
                    if *n != cn {
                        s.push_str(&format!(
                            "   DuckDB loaded {n} rows into {t}, cutover {cn}\n"
                        ));
                    }
                }
            }
        }
        None => s.push_str(&format!("{:<44} {}\n", "3. DuckDB", r.duckdb_status)),
    }
    match &r.floor {
        Some(f) => {
            let rows = r.cutover.as_ref().map_or(0, |c| c.rows);
            for (what, secs) in [
                ("4. floor: binary \\copy into bare tables", f.copy_s),
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
        None => s.push_str(&format!("{:<44} {}\n", "4. floor", r.floor_status)),
    }
    let rerun = |s: &mut String, what: &str, mg: Option<&Merge>| {
        match mg {
        Some(mg) => s.push_str(&format!(
            "{:<44} {:>9.2} {:>11} {:>11} {:>9.1}  inserted {} updated {} unchanged {} deleted {} {}\n",
            what,
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
        None => s.push_str(&format!("{what:<44} not run\n")),
    }
    };
    rerun(
        &mut s,
        "5. cutover re-run (merge, no change)",
        r.merge.as_ref(),
    );
    rerun(
        &mut s,
        "6. cutover re-run (merge, 1 % changed)",
        r.changed.as_ref().map(|c| &c.merge),
    );
    if let Some(b) = &r.rss_base {
        line(
            &mut s,
            &format!("7. cutover load at scale {}", r.rss_base_scale),
            b,
        );
    }
    match &r.big {
        Some(b) => {
            line(
                &mut s,
                &format!("8. cutover load at scale {}", r.big_scale),
                b,
            );
            if let Some(f) = &r.big_floor {
                s.push_str(&format!(
                    "{:<44} {:>9.2}  copy {:.2} + keys {:.2} + FKs {:.2}\n",
                    format!("   floor at scale {}", r.big_scale),
                    f.total_s,
                    f.copy_s,
                    f.indexes_s,
                    f.fks_s
                ));
            }
        }
        None => s.push_str(&format!(
            "{:<44} skipped (--quick)\n",
            format!("8. cutover load at scale {}", r.big_scale)
        )),
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
        ("the no-change re-run", &r.slow_statements_merge),
        ("the 1 %-changed re-run", &r.slow_statements_changed),
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
