//! What a run did: the summary for people (`summary`), the JSON report for machines
//! (`json`, `--report`), the rejects grouped by reason, and the rejects as CSV
//! (`--rejects`).

pub(crate) mod json;
pub(crate) mod summary;
pub(crate) mod text;

use crate::convert::reject::{Code, RejectRow};
use crate::files;
use crate::load::{Conflict, Report};
use serde::Serialize;
use std::path::Path;
use text::{thousands, wrap};

/// Rejects of one kind: the same table, column and code.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Group {
    pub(crate) table: String,
    pub(crate) column: String,
    pub(crate) code: Code,
    pub(crate) count: u64,
    /// The first reject's reason; `same_reason` says whether every one gave it.
    pub(crate) reason: String,
    pub(crate) same_reason: bool,
    /// The first few legacy ids.
    pub(crate) legacy_ids: Vec<String>,
}

/// How many legacy ids a group keeps as examples.
const IDS: usize = 5;

/// The rejects grouped by table, column and code, in the order first seen.
pub(crate) fn group_rejects(rejects: &[RejectRow]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for r in rejects {
        match groups
            .iter_mut()
            .find(|g| g.table == r.table && g.column == r.column && g.code == r.code)
        {
            Some(g) => {
                g.count += 1;
                g.same_reason &= g.reason == r.reason;
                if g.legacy_ids.len() < IDS {
                    g.legacy_ids.push(r.legacy_id.clone());
                }
            }
            None => groups.push(Group {
                table: r.table.clone(),
                column: r.column.clone(),
                code: r.code,
                count: 1,
                reason: r.reason.clone(),
                same_reason: true,
                legacy_ids: vec![r.legacy_id.clone()],
            }),
        }
    }
    groups
}

/// The first `n` groups, each a count, where, the code and legacy ids, then its reason.
pub(crate) fn render_groups(groups: &[Group], n: usize) -> String {
    let mut s = String::new();
    for g in groups.iter().take(n) {
        let more = if g.count as usize > g.legacy_ids.len() {
            ", …"
        } else {
            ""
        };
        let ids = if g.legacy_ids.len() == 1 {
            "legacy id"
        } else {
            "legacy ids"
        };
        s.push_str(&wrap(
            &format!(
                "  {} × {}.{}, {} ({ids} {}{more})",
                thousands(g.count),
                g.table,
                g.column,
                g.code.as_str(),
                g.legacy_ids.join(", ")
            ),
            6,
            summary::WIDTH,
        ));
        let reason = if g.same_reason {
            g.reason.clone()
        } else {
            format!("e.g. {}", g.reason)
        };
        s.push_str(&wrap(&format!("      {reason}"), 6, summary::WIDTH));
    }
    if groups.len() > n {
        s.push_str(&format!(
            "  … and {} more kinds (every row is in the --rejects file)\n",
            groups.len() - n
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

/// Write the rejects as CSV: table, legacy_id, column, value, reason, code, source_table,
/// then with `with_rows` the source row as JSON. The first five are the columns of earlier
/// versions, so a script that reads them by position keeps working.
pub(crate) fn write_rejects(
    path: &Path,
    rows: &[RejectRow],
    conflicts: &[Conflict],
    with_rows: bool,
) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "table",
        "legacy_id",
        "column",
        "value",
        "reason",
        "code",
        "source_table",
    ];
    if with_rows {
        header.push("source_row");
    }
    w.write_record(&header)?;
    for r in rows {
        let mut record = vec![
            r.table.as_str(),
            &r.legacy_id,
            &r.column,
            &r.value,
            &r.reason,
            r.code.as_str(),
            &r.source,
        ];
        if with_rows {
            record.push(r.row.as_deref().unwrap_or(""));
        }
        w.write_record(&record)?;
    }
    // Then the values both the application and the source changed (see `conflict_reason`).
    for c in conflicts {
        let value = short(c.application.as_deref());
        let reason = conflict_reason(c);
        let code = match c.resolution {
            "overwritten" => "conflict_overwritten",
            _ => "conflict_kept",
        };
        let mut record = vec![
            c.table.as_str(),
            &c.legacy_id,
            &c.column,
            &value,
            &reason,
            code,
            &c.source_table,
        ];
        if with_rows {
            record.push("");
        }
        w.write_record(&record)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    write_atomically(path, &bytes)
}

/// A value as text for a message: quoted, about 80 characters at most, or NULL.
pub(crate) fn short(v: Option<&str>) -> String {
    match v {
        None => "NULL".into(),
        Some(v) if v.chars().count() > 80 => {
            format!("'{}…'", v.chars().take(79).collect::<String>())
        }
        Some(v) => format!("'{v}'"),
    }
}

/// Why a conflict is one, both values, and what was done about it.
pub(crate) fn conflict_reason(c: &Conflict) -> String {
    let what = match c.resolution {
        "overwritten" => "the source's value was written over it (on_conflict = \"overwrite\")",
        _ => {
            "the application's value was kept (set on_conflict = \"overwrite\" on the column or table to take the source's)"
        }
    };
    format!(
        "the application changed this value since the last load and the source changed it too: application {}, source {}; {what}",
        short(c.application.as_deref()),
        short(c.source.as_deref())
    )
}

/// Written privately and atomically, never through a link planted at `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    files::write(path, bytes, files::Existing::Replace)
        .map_err(|e| crate::error::unavailable(format!("cannot write {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(table: &str, id: &str, code: Code, reason: &str) -> RejectRow {
        RejectRow {
            table: table.into(),
            source: format!("old_{table}"),
            legacy_id: id.into(),
            column: "c".into(),
            value: "a,\"b\"\nc".into(),
            code,
            reason: reason.into(),
            ordinal: 1,
            row: Some("{\"id\":1}".into()),
        }
    }

    #[test]
    fn rejects_csv_quotes_properly_and_keeps_the_old_columns_first() {
        let dir = std::env::temp_dir().join(format!("cutover-rej-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.csv");
        let rows = [reject("t", "1", Code::Convert, "bad")];
        write_rejects(&p, &rows, &[], false).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "table,legacy_id,column,value,reason,code,source_table\nt,1,c,\"a,\"\"b\"\"\nc\",bad,convert,old_t\n"
        );
        write_rejects(&p, &rows, &[], true).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.ends_with(
                ",source_row\nt,1,c,\"a,\"\"b\"\"\nc\",bad,convert,old_t,\"{\"\"id\"\":1}\"\n"
            ),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn identical_kinds_are_grouped_with_a_count() {
        let rows: Vec<RejectRow> = (1..=12)
            .map(|i| reject("votes", &i.to_string(), Code::SkippedReference, "gone"))
            .chain([reject("users", "8", Code::Convert, "not a date")])
            .chain([reject("votes", "13", Code::SkippedReference, "other")])
            .collect();
        let groups = group_rejects(&rows);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].count, 13);
        assert!(!groups[0].same_reason);
        assert_eq!(groups[0].legacy_ids, ["1", "2", "3", "4", "5"]);
        let s = render_groups(&groups, 10);
        assert!(
            s.starts_with(
                "  13 × votes.c, skipped_reference (legacy ids 1, 2, 3, 4, 5, …)\n      e.g. gone\n"
            ),
            "{s}"
        );
        assert!(
            s.ends_with("  1 × users.c, convert (legacy id 8)\n      not a date\n"),
            "{s}"
        );
        assert!(
            render_groups(&groups, 1)
                .ends_with("… and 1 more kinds (every row is in the --rejects file)\n")
        );
    }
}
