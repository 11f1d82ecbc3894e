//! Shared pieces of `cutover-bench`: running a child process and measuring it (wall time and
//! peak RSS from `wait4`), running SQL on the scratch cluster, and reading the server log's
//! slow-statement lines. The contenders live in `pgloader.rs` and `floor.rs`.

pub mod airtable;
pub mod delta;
pub mod duckdb;
pub mod floor;
pub mod pgloader;
pub mod results;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one child process run cost.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub wall_s: f64,
    /// `ru_maxrss` of the child as reported by `wait4` (the child alone, not its children).
    pub peak_rss_mb: f64,
    pub exit_code: i32,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Measured {
    pub fn ok(&self) -> bool {
        self.exit_code == 0 && !self.timed_out
    }

    /// The tail of what it printed, for an error message.
    pub fn tail(&self) -> String {
        let all = format!("{}\n{}", self.stdout.trim(), self.stderr.trim());
        let lines: Vec<&str> = all.trim().lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// Run `cmd` to completion (killed after `timeout`), stdout/stderr to files under `log_dir`
/// named `name.out` / `name.err`, and measure its wall time and peak RSS with `wait4`.
pub fn measure(
    mut cmd: Command,
    name: &str,
    log_dir: &Path,
    timeout: Duration,
) -> Result<Measured> {
    let out_path = log_dir.join(format!("{name}.out"));
    let err_path = log_dir.join(format!("{name}.err"));
    let out =
        File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?;
    let err =
        File::create(&err_path).with_context(|| format!("creating {}", err_path.display()))?;
    let program = cmd.get_program().to_string_lossy().into_owned();
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let pid = child.id() as libc::pid_t;
    // The child is reaped by wait4 below, never through `child`, which is only dropped.
    drop(child);
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let deadline = started + timeout;
    let mut timed_out = false;
    loop {
        // SAFETY: wait4 on our own unreaped child, with valid pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if r < 0 {
            bail!("waiting for {program}: {}", std::io::Error::last_os_error());
        }
        if Instant::now() > deadline && !timed_out {
            timed_out = true;
            // SAFETY: kill of our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let wall_s = started.elapsed().as_secs_f64();
    let exit_code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok(Measured {
        wall_s,
        // Linux reports ru_maxrss in KiB.
        peak_rss_mb: usage.ru_maxrss as f64 / 1024.0,
        exit_code,
        timed_out,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    })
}

/// The SQL helpers the benchmark needs.
pub struct Pg;

pub use cutover_testkit::pg::Rows;

impl Pg {
    pub fn new() -> Result<Pg> {
        Ok(Pg)
    }

    /// Run SQL (simple query protocol, so several statements are one implicit transaction)
    /// and return every row as text cells.
    pub fn sql(&self, url: &str, query: &str) -> Result<Rows> {
        cutover_testkit::pg::try_sql(url, query).map_err(|e| {
            let q: String = query.chars().take(120).collect();
            anyhow::anyhow!("running SQL: {q}: {e}")
        })
    }

    pub fn one(&self, url: &str, query: &str) -> Result<String> {
        Ok(self
            .sql(url, query)?
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .unwrap_or_default())
    }
}

/// The target tables of the Podium mapping, in load order.
pub const TABLES: [&str; 7] = [
    "users",
    "events",
    "event_attendees",
    "projects",
    "project_collaborators",
    "referrals",
    "votes",
];

/// Tables with an `id` column backed by a sequence or identity.
pub const ID_TABLES: [&str; 5] = ["users", "events", "projects", "referrals", "votes"];

/// Rows per target table.
pub fn counts(pg: &Pg, url: &str) -> Result<Vec<(String, u64)>> {
    let q: Vec<String> = TABLES
        .iter()
        .map(|t| format!("SELECT '{t}', count(*) FROM {t}"))
        .collect();
    pg.sql(url, &q.join(" UNION ALL "))?
        .into_iter()
        .map(|r| {
            let n = r[1].as_deref().unwrap_or("0").parse()?;
            Ok((r[0].clone().unwrap_or_default(), n))
        })
        .collect()
}

/// The tables whose sequence would hand out an id already taken (not reset past max(id)).
pub fn stale_sequences(pg: &Pg, url: &str) -> Result<Vec<String>> {
    let mut stale = Vec::new();
    for t in ID_TABLES {
        let seq = pg.one(url, &format!("SELECT pg_get_serial_sequence('{t}', 'id')"))?;
        if seq.is_empty() {
            continue;
        }
        let ok = pg.one(
            url,
            &format!(
                "SELECT (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {seq}) >= (SELECT coalesce(max(id), 0) FROM {t})"
            ),
        )?;
        if ok != "t" {
            stale.push(t.to_string());
        }
    }
    Ok(stale)
}

/// One slow statement from the server log.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    pub ms: f64,
    pub sql: String,
}

/// The `duration: N ms  statement|execute …: SQL` lines the server logged from byte `from` on
/// (`log_min_duration_statement`), longest first.
pub fn slow_statements(log: &Path, from: u64) -> Vec<Statement> {
    let bytes = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(bytes.get(from as usize..).unwrap_or_default());
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(i) = line.find("duration: ") else {
            continue;
        };
        let rest = &line[i + 10..];
        let Some((ms, rest)) = rest.split_once(" ms") else {
            continue;
        };
        let Ok(ms) = ms.trim().parse::<f64>() else {
            continue;
        };
        let sql = rest
            .split_once(": ")
            .map(|(_, s)| s)
            .unwrap_or(rest)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        out.push(Statement {
            ms,
            sql: sql.chars().take(160).collect(),
        });
    }
    out.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    out
}

pub fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// A program on PATH, if there.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// First line of `program ARGS`' output, or None.
pub fn version_of(program: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines().next().map(|l| l.trim().to_string())
}
