//! What a load did, per table: rendered as text for people, written as JSON for machines
//! (`--report`), and the rejects as CSV (`--rejects`).

use crate::convert::reject::RejectRow;
use crate::files;
use crate::load::Report;
use std::path::Path;

/// The summary table.
pub(crate) fn render(report: &Report) -> String {
    {
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
        let rows: Vec<[String; 10]> = report
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
}

/// The whole of a load's summary: the table, the keys set aside and the sequences reset,
/// the first rejects, and any differences `--verify` found.
pub(crate) fn render_load(report: &Report, rejects: &[RejectRow]) -> String {
    let mut s = render(report);
    if let Some(rebuilt) = &report.rebuilt {
        s.push_str(&format!("bulk load into empty tables: {rebuilt}\n"));
    }
    if !report.sequences_reset.is_empty() {
        s.push_str(&format!(
            "sequences reset: {}\n",
            report.sequences_reset.len()
        ));
    }
    if !rejects.is_empty() {
        s.push_str(&format!(
            "rejected or skipped rows (first {}):\n",
            rejects.len().min(10)
        ));
        s.push_str(&render_rejects(rejects, 10));
    }
    s.push_str(&render_differences(report));
    s
}

/// The first `n` rejects, a line each.
pub(crate) fn render_rejects(rejects: &[RejectRow], n: usize) -> String {
    let mut s = String::new();
    for x in rejects.iter().take(n) {
        s.push_str(&format!(
            "  {} {} {} = {}: {}\n",
            x.table, x.legacy_id, x.column, x.value, x.reason
        ));
    }
    s
}

/// The differences a comparison kept as examples, a line each, table by table.
pub(crate) fn render_differences(report: &Report) -> String {
    let mut s = String::new();
    for t in &report.tables {
        for e in t.verify.iter().flat_map(|d| &d.examples) {
            s.push_str(&format!("  {}: {e}\n", t.table));
        }
    }
    s
}

/// Write the report as JSON (`--report`).
pub(crate) fn write_json(report: &Report, path: &Path) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    write_atomically(path, text.as_bytes())
}

/// Write the rejects as CSV: table, legacy_id, column, value, reason.
pub(crate) fn write_rejects(path: &Path, rows: &[RejectRow]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["table", "legacy_id", "column", "value", "reason"])?;
    for r in rows {
        w.write_record([&r.table, &r.legacy_id, &r.column, &r.value, &r.reason])?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    write_atomically(path, &bytes)
}

/// Written privately and atomically, never through a link planted at `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    files::write(path, bytes, files::Existing::Replace)
        .map_err(|e| crate::error::unavailable(format!("cannot write {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::TableReport;

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
        let s = render(&r);
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
