//! Builds the SQLite fixtures cutover's demo, tests and benchmarks read, so that nothing but
//! cargo is needed (no `sqlite3` command-line tool).
//!
//! `cutover-fixture sql FILE.sql OUT.sqlite` runs a readable SQL text source into a fresh
//! SQLite database.

use std::path::Path;
use std::process::exit;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["sql", sql, out] => from_sql(Path::new(sql), Path::new(out)),
        _ => {
            eprintln!("usage: cutover-fixture sql FILE.sql OUT.sqlite");
            exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        exit(1);
    }
}

fn from_sql(sql: &Path, out: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
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
