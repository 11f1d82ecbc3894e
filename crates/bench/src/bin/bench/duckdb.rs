//! The DuckDB contender: the load as a DuckDB user writes it (`bench/duckdb-podium.py`: ATTACH
//! the legacy SQLite file and the target PostgreSQL database, one INSERT … SELECT per table
//! with the mapping's conversions, constraints in place). DuckDB and the packages carrying its
//! `sqlite` and `postgres` extensions come from the Python package registry into a virtual
//! environment under `target/bench/`, made once; the extensions load from those packages, so
//! the run itself needs no network.

use super::measure;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// One DuckDB release and the extension packages built for it (their versions must match).
pub const VERSION: &str = "1.4.4";
const PACKAGES: [&str; 4] = [
    "duckdb",
    "duckdb-extensions",
    "duckdb-extension-sqlite-scanner",
    "duckdb-extension-postgres-scanner",
];

/// The Python of a virtual environment under `dir` with DuckDB installed, made if missing.
pub fn python(dir: &Path, logs: &Path) -> Result<PathBuf> {
    let venv = dir.join(format!("duckdb-{VERSION}-venv"));
    let python = venv.join("bin/python");
    let ready = venv.join(".installed");
    if ready.is_file() {
        return Ok(python);
    }
    let python3 = super::which("python3").context("python3 not found")?;
    let mut cmd = Command::new(python3);
    cmd.args(["-m", "venv"]).arg(&venv);
    let m = measure(cmd, "duckdb-venv", logs, Duration::from_secs(120))?;
    if !m.ok() {
        bail!("python3 -m venv {}: {}", venv.display(), m.tail());
    }
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "pip", "install", "--quiet"])
        .args(PACKAGES.iter().map(|p| format!("{p}=={VERSION}")));
    let m = measure(cmd, "duckdb-pip", logs, Duration::from_secs(600))?;
    if !m.ok() {
        bail!(
            "installing DuckDB {VERSION} from the Python package registry: {}",
            m.tail()
        );
    }
    std::fs::write(&ready, VERSION)?;
    Ok(python)
}

/// The command that loads `source` into `url`.
pub fn command(python: &Path, script: &Path, source: &Path, url: &str) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(source).arg(url);
    cmd
}
