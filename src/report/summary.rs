//! A load's summary as people read it, sized for an 80-column terminal: a row per table and a
//! totals row, counts with thousands separators, the time per table and in all; the columns
//! that are zero everywhere (deleted, rejected, skipped) only when they are not; then the
//! references set to NULL, where the rest of the time went, the bulk load, and the rejects
//! grouped by reason.

use super::text::{clock, thousands, wrap};
use super::{group_rejects, render_groups};
use crate::convert::ColumnAdjusted;
use crate::convert::reject::RejectRow;
use crate::load::{Phase, Report, TableReport};
use std::time::Duration;

/// The width the summary is laid out for.
pub(crate) const WIDTH: usize = 80;

/// A numeric column of the summary.
struct Column {
    header: &'static str,
    value: fn(&TableReport) -> u64,
    /// Shown even when zero in every row.
    always: bool,
}

const COLUMNS: &[Column] = &[
    Column {
        header: "read",
        value: |t| t.read,
        always: true,
    },
    Column {
        header: "inserted",
        value: |t| t.inserted,
        always: true,
    },
    Column {
        header: "updated",
        value: |t| t.updated,
        always: true,
    },
    Column {
        header: "unchanged",
        value: |t| t.unchanged,
        always: true,
    },
    Column {
        header: "deleted",
        value: |t| t.deleted,
        always: false,
    },
    Column {
        header: "rejected",
        value: |t| t.rejected,
        always: false,
    },
    Column {
        header: "skipped",
        value: |t| t.skipped,
        always: false,
    },
    Column {
        header: "conflicts",
        value: |t| t.conflicts,
        always: false,
    },
];

/// The table: a header, a row per table, a totals row.
pub(crate) fn table(report: &Report) -> String {
    let shown: Vec<&Column> = COLUMNS
        .iter()
        .filter(|c| {
            c.always
                || (c.header == "deleted" && report.prune)
                || report.tables.iter().any(|t| (c.value)(t) > 0)
        })
        .collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["table".to_string()];
    header.extend(shown.iter().map(|c| c.header.to_string()));
    header.push("time".into());
    rows.push(header);
    for t in &report.tables {
        let mut row = vec![t.table.clone()];
        row.extend(shown.iter().map(|c| thousands((c.value)(t))));
        row.push(clock(t.seconds.total()));
        rows.push(row);
    }
    let mut total = vec!["total".to_string()];
    total.extend(
        shown
            .iter()
            .map(|c| thousands(report.tables.iter().map(|t| (c.value)(t)).sum())),
    );
    total.push(clock(load_time(report)));
    rows.push(total);
    layout(&rows)
}

/// The whole load: its tables' phases and the phases over all of them.
fn load_time(report: &Report) -> Duration {
    report.phases.total()
        + report
            .tables
            .iter()
            .map(|t| t.seconds.total())
            .sum::<Duration>()
}

/// Columns aligned (the first left, the rest right), two spaces apart — one when two would
/// not fit in [`WIDTH`] — with a rule above the last row (the totals).
pub(crate) fn layout(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map(Vec::len).unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map(|c| c.chars().count()).unwrap_or(0))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let content: usize = widths.iter().sum();
    let gap = if content + 2 * columns.saturating_sub(1) <= WIDTH {
        2
    } else {
        1
    };
    let line_width = content + gap * columns.saturating_sub(1);
    let mut s = String::new();
    for (n, row) in rows.iter().enumerate() {
        if n + 1 == rows.len() && rows.len() > 2 {
            s.push_str(&"-".repeat(line_width));
            s.push('\n');
        }
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let w = widths[i];
            if i == 0 {
                line.push_str(&format!("{cell:<w$}"));
            } else {
                line.push_str(&" ".repeat(gap));
                line.push_str(&format!("{cell:>w$}"));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

/// The values the mapping's policies changed, per table and column: cut to fit
/// (`truncate = true`), held in error in the source and stored as NULL (`on_error`), and
/// whole JSON objects stored as text. `check` says the same of what a load would do.
pub(crate) fn adjusted<'a>(
    tables: impl Iterator<Item = (&'a str, &'a [ColumnAdjusted])> + Clone,
) -> String {
    let mut s = String::new();
    let mut line = |head: &str, count: fn(&ColumnAdjusted) -> u64| {
        let list: Vec<String> = tables
            .clone()
            .flat_map(|(t, cols)| cols.iter().map(move |a| (t, a)))
            .filter(|(_, a)| count(a) > 0)
            .map(|(t, a)| format!("{t}.{} {}", a.column, thousands(count(a))))
            .collect();
        if !list.is_empty() {
            s.push_str(&items(head, &list));
        }
    };
    line("values truncated to fit (truncate = true): ", |a| {
        a.truncated
    });
    line(
        "errors in the source stored as NULL (on_error = \"null\"): ",
        |a| a.errors_nulled,
    );
    line(
        "whole JSON objects stored as text (a `path` picks one field): ",
        |a| a.whole_objects,
    );
    s
}

/// The whole of a load's summary: the table, where the time went outside the tables, the
/// bulk load, the sequences reset, the rejects by reason, and the differences `--verify`
/// found.
pub(crate) fn load(report: &Report, rejects: &[RejectRow]) -> String {
    let mut s = String::new();
    if report.dry_run {
        s.push_str("dry run: what a load would do (rolled back at the end)\n");
    }
    s.push_str(&table(report));
    let nulled: Vec<String> = report
        .tables
        .iter()
        .filter(|t| t.nulled > 0)
        .map(|t| format!("{} {}", t.table, thousands(t.nulled)))
        .collect();
    if !nulled.is_empty() {
        s.push_str(&items(
            "references set to NULL (on_missing = \"null\"): ",
            &nulled,
        ));
    }
    s.push_str(&adjusted(
        report
            .tables
            .iter()
            .map(|t| (t.table.as_str(), t.adjusted.as_slice())),
    ));
    let phases: Vec<String> = report
        .phases
        .iter()
        .map(|(p, d)| format!("{} {}", p.name(), clock(d)))
        .collect();
    if !phases.is_empty() {
        s.push_str(&items("phases: ", &phases));
    }
    if let Some(bulk) = &report.bulk_load {
        match &bulk.not_possible {
            Some(why) => s.push_str(&wrap(
                &format!("bulk load not possible ({why}); loaded with constraints in place"),
                2,
                WIDTH,
            )),
            None => {
                s.push_str(&format!(
                    "bulk load: {} foreign keys, {} primary/unique keys and {} indexes\n",
                    bulk.count("foreign_key"),
                    bulk.count("key"),
                    bulk.count("index")
                ));
                let took = report
                    .phases
                    .get(Phase::Rebuild)
                    .map(|d| format!(" ({})", clock(d)))
                    .unwrap_or_default();
                s.push_str(&format!(
                    "  set aside and rebuilt inside the transaction{took}\n"
                ));
            }
        }
    }
    if !report.sequences_reset.is_empty() {
        s.push_str(&format!(
            "sequences reset: {}\n",
            report.sequences_reset.len()
        ));
    }
    if !rejects.is_empty() {
        let total: u64 = report.tables.iter().map(|t| t.rejected + t.skipped).sum();
        s.push_str(&format!(
            "rejected or skipped: {} {}, by reason:\n",
            thousands(total),
            if total == 1 { "row" } else { "rows" }
        ));
        s.push_str(&render_groups(&group_rejects(rejects), 10));
    }
    let c = &report.conflicts;
    if c.total > 0 {
        s.push_str(&wrap(
            &format!(
                "conflicts: {} {} changed by the application and by the source since the last load ({} kept, {} overwritten):",
                thousands(c.total),
                if c.total == 1 { "value" } else { "values" },
                thousands(c.kept),
                thousands(c.overwritten),
            ),
            2,
            WIDTH,
        ));
        for x in c.examples.iter().take(10) {
            s.push_str(&wrap(
                &format!(
                    "  {}.{} (legacy id {}): application {}, source {} ({})",
                    x.table,
                    x.column,
                    x.legacy_id,
                    super::short(x.application.as_deref()),
                    super::short(x.source.as_deref()),
                    x.resolution
                ),
                6,
                WIDTH,
            ));
        }
        if c.kept > 0 {
            s.push_str(&wrap(
                "  to take the source's value, set on_conflict = \"overwrite\" on the column or the table",
                4,
                WIDTH,
            ));
        }
    }
    for note in &report.notes {
        s.push_str(&wrap(&format!("note: {note}"), 2, WIDTH));
    }
    s.push_str(&super::render_differences(report));
    s
}

/// `head` and then the items, comma-separated, in lines of at most [`WIDTH`], an item never
/// split across two.
pub(crate) fn items(head: &str, items: &[String]) -> String {
    let mut s = String::new();
    let mut line = head.to_string();
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() {
            format!("{item},")
        } else {
            item.clone()
        };
        let fresh = i == 0 || line.trim().is_empty();
        if !fresh && line.chars().count() + 1 + piece.chars().count() > WIDTH {
            s.push_str(&line);
            s.push('\n');
            line = "  ".to_string();
        } else if i > 0 {
            line.push(' ');
        }
        line.push_str(&piece);
    }
    s.push_str(&line);
    s.push('\n');
    s
}

/// The verdict of a load that went through: what it did, in a line.
pub(crate) fn verdict(report: &Report) -> String {
    let (inserted, updated, deleted) = report.changed();
    if !report.committed {
        return format!(
            "dry run: would insert {}, update {} and delete {} rows; rolled back, the target is unchanged.",
            thousands(inserted),
            thousands(updated),
            thousands(deleted)
        );
    }
    if inserted + updated + deleted == 0 {
        return "nothing to do: the target already holds the source (no rows inserted, updated or deleted)."
            .into();
    }
    "committed.".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{BulkLoad, Constraint, Durations};

    fn report(rows: &[(&str, u64)]) -> Report {
        Report {
            committed: true,
            tables: rows
                .iter()
                .map(|(name, n)| {
                    let mut seconds = Durations::default();
                    seconds.add(Phase::Copy, Duration::from_millis(1500));
                    TableReport {
                        table: name.to_string(),
                        read: *n,
                        inserted: *n,
                        target: *n,
                        seconds,
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_million_rows_fit_in_80_columns() {
        let r = report(&[
            ("users", 100_000),
            ("project_collaborators", 290_000),
            ("votes", 1_000_000),
        ]);
        let s = table(&r);
        for line in s.lines() {
            assert!(
                line.chars().count() <= WIDTH,
                "{} columns: {line}",
                line.len()
            );
        }
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["table", "read", "inserted", "updated", "unchanged", "time"]
        );
        assert!(lines[3].starts_with("votes"), "{s}");
        assert!(lines[3].contains("1,000,000"), "{s}");
        assert!(lines[4].starts_with("----"), "{s}");
        assert!(
            lines[5].starts_with("total") && lines[5].contains("1,390,000"),
            "{s}"
        );
        assert!(lines[5].ends_with("4.5s"), "{s}");
    }

    #[test]
    fn columns_that_are_zero_everywhere_stay_out_unless_asked_for() {
        let mut r = report(&[("users", 3)]);
        assert!(!table(&r).contains("rejected"));
        r.tables[0].rejected = 1;
        r.prune = true;
        let s = table(&r);
        assert!(s.contains("deleted") && s.contains("rejected"), "{s}");
        assert!(!s.contains("skipped"), "{s}");
    }

    #[test]
    fn items_are_never_split() {
        let phases: Vec<String> = (0..12).map(|i| format!("phase{i} 0.012s")).collect();
        let s = items("phases: ", &phases);
        assert!(s.lines().all(|l| l.chars().count() <= WIDTH), "{s}");
        assert!(s.lines().skip(1).all(|l| l.starts_with("  phase")), "{s}");
        assert!(s.ends_with("phase11 0.012s\n"), "{s}");
    }

    #[test]
    fn verdicts() {
        let mut r = report(&[("users", 3)]);
        assert_eq!(verdict(&r), "committed.");
        r.tables[0].inserted = 0;
        assert!(verdict(&r).starts_with("nothing to do"), "{}", verdict(&r));
        r.committed = false;
        r.dry_run = true;
        r.tables[0].updated = 1200;
        assert!(
            verdict(&r).starts_with("dry run: would insert 0, update 1,200 and delete 0 rows"),
            "{}",
            verdict(&r)
        );
    }

    #[test]
    fn the_bulk_load_is_counted_by_kind() {
        let mut r = report(&[("users", 3)]);
        r.bulk_load = Some(BulkLoad {
            rebuilt: vec![
                Constraint {
                    table: "users".into(),
                    name: "users_pkey".into(),
                    kind: "key",
                },
                Constraint {
                    table: "users".into(),
                    name: "ix_users_email".into(),
                    kind: "index",
                },
            ],
            not_possible: None,
        });
        let s = load(&r, &[]);
        assert!(
            s.contains("bulk load: 0 foreign keys, 1 primary/unique keys and 1 indexes\n  set aside and rebuilt inside the transaction"),
            "{s}"
        );
    }
}
