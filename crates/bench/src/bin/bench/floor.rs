//! The floor: what loading this data costs PostgreSQL itself, with no conversion at all.
//! The typed rows in COPY's binary format (exported, untimed, from the database cutover
//! loaded — the format cutover itself sends) are `psql \copy`'d into bare tables (the schema with every index and constraint dropped), then the primary keys,
//! unique constraints and indexes are built, then the foreign keys are added (validated in
//! bulk). Each phase is one `psql` run, timed; the phases add up to the floor.

use super::{Pg, TABLES, measure};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    pub copy_s: f64,
    pub indexes_s: f64,
    pub fks_s: f64,
    pub total_s: f64,
}

/// `COPY t TO` in binary format for every table of `url` into `dir` (not timed).
pub fn export(psql: &Path, url: &str, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut script = String::new();
    for t in TABLES {
        let file = dir.join(format!("{t}.copy"));
        script.push_str(&format!(
            "\\copy {t} TO '{}' (FORMAT binary)\n",
            file.display()
        ));
    }
    run_psql(psql, url, &script, dir, "floor-export").map(|_| ())
}

/// Drop every FK, primary key, unique constraint and index of the tables in `url`,
/// returning the statements that re-create them: (keys and indexes, foreign keys).
pub fn strip(pg: &Pg, url: &str) -> Result<(Vec<String>, Vec<String>)> {
    let list = TABLES
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let cons = pg.sql(
        url,
        &format!(
            "SELECT c.contype, c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
             FROM pg_constraint c WHERE c.conrelid::regclass::text IN ({list})
             AND c.contype IN ('p', 'u', 'f') ORDER BY (c.contype = 'f') DESC, c.conname"
        ),
    )?;
    let idx = pg.sql(
        url,
        &format!(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
             FROM pg_index i WHERE i.indrelid::regclass::text IN ({list})
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
             ORDER BY 1"
        ),
    )?;
    let cell = |r: &Vec<Option<String>>, i: usize| r[i].clone().unwrap_or_default();
    let (mut keys, mut fks, mut drops) = (Vec::new(), Vec::new(), Vec::new());
    // Foreign keys come first, so the keys they depend on can be dropped after them.
    for r in &cons {
        let (kind, table, name, def) = (cell(r, 0), cell(r, 1), cell(r, 2), cell(r, 3));
        drops.push(format!("ALTER TABLE {table} DROP CONSTRAINT \"{name}\";"));
        let add = format!("ALTER TABLE {table} ADD CONSTRAINT \"{name}\" {def};");
        if kind == "f" {
            fks.push(add)
        } else {
            keys.push(add)
        }
    }
    for r in &idx {
        drops.push(format!("DROP INDEX {};", cell(r, 0)));
        keys.push(format!("{};", cell(r, 1)));
    }
    if fks.is_empty() || keys.is_empty() {
        bail!("found no constraints or indexes to strip: is the schema applied?");
    }
    pg.sql(url, &drops.join("\n"))?;
    Ok((keys, fks))
}

/// The three timed phases into the bare tables of `url`.
pub fn run(
    psql: &Path,
    url: &str,
    rows_dir: &Path,
    keys: &[String],
    fks: &[String],
    log_dir: &Path,
) -> Result<Floor> {
    let mut copy = String::new();
    for t in TABLES {
        let file = rows_dir.join(format!("{t}.copy"));
        copy.push_str(&format!(
            "\\copy {t} FROM '{}' (FORMAT binary)\n",
            file.display()
        ));
    }
    let copy_s = run_psql(psql, url, &copy, log_dir, "floor-copy")?;
    let indexes_s = run_psql(psql, url, &keys.join("\n"), log_dir, "floor-indexes")?;
    let fks_s = run_psql(psql, url, &fks.join("\n"), log_dir, "floor-fks")?;
    Ok(Floor {
        copy_s,
        indexes_s,
        fks_s,
        total_s: copy_s + indexes_s + fks_s,
    })
}

/// `psql -f SCRIPT` with ON_ERROR_STOP; the wall time.
fn run_psql(psql: &Path, url: &str, script: &str, dir: &Path, name: &str) -> Result<f64> {
    let file: PathBuf = dir.join(format!("{name}.sql"));
    std::fs::write(&file, script).with_context(|| format!("writing {}", file.display()))?;
    let mut cmd = Command::new(psql);
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f"])
        .arg(&file);
    let m = measure(cmd, name, dir, Duration::from_secs(600))?;
    if !m.ok() {
        bail!("{name}: psql failed (exit {}):\n{}", m.exit_code, m.tail());
    }
    Ok(m.wall_s)
}
