//! What a run did, per table: printed as a table for people, written as JSON for machines
//! (`--report`), and the rejects as CSV (`--rejects`).

use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// One rejected (or skipped) source row.
#[derive(Debug, Clone, Serialize)]
pub struct RejectRow {
    pub table: String,
    pub legacy_id: String,
    pub column: String,
    pub value: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TableReport {
    pub table: String,
    pub source: String,
    /// Rows read from the source.
    pub read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    /// Rows not loaded because a value did not convert, a reference did not resolve under
    /// the error policy, or the legacy id was a duplicate.
    pub rejected: u64,
    /// Rows left out on purpose (`on_missing = "skip"`), or duplicate junction links.
    pub skipped: u64,
    /// References that did not resolve and were set to NULL (`on_missing = "null"`).
    pub nulled: u64,
    /// Target rows carrying this run's legacy ids (or links) after the load.
    pub target: u64,
    /// The row-by-row comparison, for `verify` and `load --verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<crate::target::diff::TableDiff>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub mode: String,
    pub dry_run: bool,
    pub committed: bool,
    pub tables: Vec<TableReport>,
    pub sequences_reset: Vec<String>,
    /// Foreign keys and indexes set aside for a bulk load and rebuilt before commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuilt: Option<String>,
    pub rejects_total: u64,
    pub max_rejects: u64,
}

impl Report {
    /// The summary table.
    pub fn render(&self) -> String {
        let headers = [
            "table",
            "read",
            "inserted",
            "updated",
            "unchanged",
            "deleted",
            "rejected",
            "skipped",
            "nulled",
            "target",
        ];
        let rows: Vec<[String; 10]> = self
            .tables
            .iter()
            .map(|t| {
                [
                    t.table.clone(),
                    t.read.to_string(),
                    t.inserted.to_string(),
                    t.updated.to_string(),
                    t.unchanged.to_string(),
                    t.deleted.to_string(),
                    t.rejected.to_string(),
                    t.skipped.to_string(),
                    t.nulled.to_string(),
                    t.target.to_string(),
                ]
            })
            .collect();
        let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut s = String::new();
        let line = |cells: &[&str], s: &mut String| {
            for (i, c) in cells.iter().enumerate() {
                if i == 0 {
                    s.push_str(&format!("{:<w$}", c, w = widths[0]));
                } else {
                    s.push_str(&format!("  {:>w$}", c, w = widths[i]));
                }
            }
            s.push('\n');
        };
        line(&headers, &mut s);
        for r in &rows {
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            line(&cells, &mut s);
        }
        s
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        write_atomically(path, text.as_bytes())
    }
}

/// Write the rejects as CSV: table, legacy_id, column, value, reason.
pub fn write_rejects(path: &Path, rows: &[RejectRow]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["table", "legacy_id", "column", "value", "reason"])?;
    for r in rows {
        w.write_record([&r.table, &r.legacy_id, &r.column, &r.value, &r.reason])?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    write_atomically(path, &bytes)
}

/// Write to a temporary file beside `path`, then rename, so a reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(crate::error::unavailable(format!(
            "cannot write {}: {e}",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_aligned_rows() {
        let r = Report {
            tables: vec![TableReport {
                table: "users".into(),
                read: 14,
                inserted: 14,
                target: 14,
                ..Default::default()
            }],
            ..Default::default()
        };
        let s = r.render();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("table"));
        assert!(lines[1].starts_with("users"));
        assert_eq!(lines[0].len(), lines[1].len());
        assert!(lines[1].ends_with("14"));
    }

    #[test]
    fn rejects_csv_quotes_properly() {
        let dir = std::env::temp_dir().join(format!("cutover-rej-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.csv");
        write_rejects(
            &p,
            &[RejectRow {
                table: "t".into(),
                legacy_id: "1".into(),
                column: "c".into(),
                value: "a,\"b\"\nc".into(),
                reason: "bad".into(),
            }],
        )
        .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "table,legacy_id,column,value,reason\nt,1,c,\"a,\"\"b\"\"\nc\",bad\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
