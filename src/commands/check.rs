//! `cutover check`: the mapping against the source, and with a target against its catalog;
//! the load plan (`plan_view`), and every source value converted to see what would be
//! rejected. Writes nothing to the target; as text, or as JSON (`--format json`, `--report`).

use super::outcome::{Outcome, Output};
use super::pipeline::{Converted, convert_only};
use super::plan_view::PlanView;
use super::prepare::{open_source, source_spec};
use super::progress::{Display, Notes, Work};
use super::record::{Record, source_ref};
use super::target::{Released, Target};
use crate::cli::{CheckArgs, Format};
use crate::error::{data, usage};
use crate::mapping::{self, Mapping};
use crate::pg::catalog;
use crate::plan;
use crate::report::json::{CheckFindings, Findings, Run};
use crate::report::{self, group_rejects, render_groups, summary};
use crate::source::SourceTable;
use std::path::PathBuf;
use std::sync::Arc;

/// What a check found.
pub(crate) struct Checked {
    found: Found,
    /// The JSON document, when it goes to stdout (`--format json` or `--report -`); then it
    /// is all stdout carries.
    json: Option<String>,
    /// `--format json`: the text is not shown at all.
    json_only: bool,
}

enum Found {
    /// No target given: the mapping checked against the source alone.
    SourceOnly { mapping: PathBuf, source: String },
    /// The plan against the target, and what converting the source found.
    Planned(Planned),
}

pub(crate) struct Planned {
    source: String,
    /// The target's URL, without its password.
    target: String,
    /// The plan, described.
    plan: String,
    /// What converting every value found, or why it stopped.
    converted: anyhow::Result<Converted>,
    /// Rows that may be rejected and the check still pass (`--max-rejects`).
    max_rejects: u64,
    /// Where every would-be reject was written (`--rejects`).
    rejects_file: Option<PathBuf>,
    released: Released,
}

/// The `check` command.
pub(crate) async fn command(a: CheckArgs) -> anyhow::Result<Outcome> {
    let record = match (a.format, a.report.report.as_deref()) {
        (Format::Json, None) => Record::Stdout,
        (Format::Json, Some(p)) if p != std::path::Path::new("-") => {
            return Err(usage(
                "--format json prints the report on stdout: give --report FILE or --format json, not both",
            ));
        }
        (_, report) => Record::new(report)?,
    };
    let mut run = Run::start("check", Some(&a.common.mapping));
    match check(&a, &mut run, &record).await {
        Ok(outcome) => Ok(outcome),
        Err(e) => record.failed(&run, e),
    }
}

async fn check(a: &CheckArgs, run: &mut Run, record: &Record) -> anyhow::Result<Outcome> {
    let c = &a.common;
    let json_only = a.format == Format::Json;
    let notes = Notes::for_run(c.quiet || json_only);
    let m = mapping::load(&c.mapping)?;
    let spec = source_spec(&m, c.source.as_deref())?;
    run.source = Some(source_ref(&spec));
    let open = super::prepare::open_options(c.from.open_options(), &m, &spec)?;
    let (mut source, tables) = open_source(spec.clone(), open).await?;
    super::prepare::keep_attachments(&m, source.as_mut())?;
    let Some(target) = Target::open(c, notes).await? else {
        check_source_only(&m, &tables)?;
        let json = record.write(
            run,
            &Findings {
                outcome: "passed",
                load: None,
                plan: None,
                rejects: &[],
                rejects_total: 0,
                check: None,
                error: None,
            },
        )?;
        return Ok(Outcome::Check(Checked {
            found: Found::SourceOnly {
                mapping: m.file.clone(),
                source: spec.to_string(),
            },
            json,
            json_only,
        }));
    };
    run.target = Some(target.url.redacted());
    let client = target.url.connect().await?;
    let cat = catalog::read(&client, &m.schema).await?;
    let plan = plan::bind(&m, &cat, &tables).map_err(|p| usage(p.to_string()))?;
    if let Some(rev) = &m.expect_revision {
        let ok = catalog::alembic_revision_of(&client, &m.schema)
            .await
            .is_some_and(|revs| revs.split(',').any(|r| r == rev));
        if !ok {
            return Err(usage(format!(
                "the target is not at Alembic revision {rev} (expect_revision in the mapping): run `alembic upgrade head` or update the mapping"
            )));
        }
    }
    run.alembic_revision = catalog::alembic_revision_of(&client, &m.schema).await;
    let names: Vec<String> = plan.tables.iter().map(|t| t.name.clone()).collect();
    let touched = catalog::touched(&client, &m.schema, &names).await?;
    let redacted = target.url.redacted();
    notes.note(format_args!("check: {spec} -> {redacted}"));
    let display = Arc::new(Display::new(notes, Work::Read, names));
    // Every would-be reject is kept for the --rejects file; otherwise the first per table.
    let keep = if a.rejects.is_some() {
        usize::MAX
    } else {
        1000
    };
    let converted = convert_only(source, &plan, keep, &display).await;
    if let (Some(path), Ok(c)) = (&a.rejects, &converted) {
        report::write_rejects(path, &c.examples, &[], false)?;
    }
    let view = PlanView::new(
        &plan,
        &cat,
        &tables,
        touched,
        converted.as_ref().ok().map(|c| c.read.as_slice()),
    );
    let plan_json = view.json();
    let (outcome, rejected, examples, error) = match &converted {
        Ok(c) if c.rejected > a.max_rejects => (
            "rejects",
            c.rejected,
            c.examples.as_slice(),
            Some(rejected_error(c.rejected, a.max_rejects)),
        ),
        Ok(c) => ("passed", c.rejected, c.examples.as_slice(), None),
        Err(_) => ("failed", 0, &[][..], None),
    };
    let json = record.write(
        run,
        &Findings {
            outcome,
            load: None,
            plan: Some(&plan_json),
            rejects: examples,
            rejects_total: rejected,
            check: converted.as_ref().ok().map(|c| CheckFindings {
                converted: &c.tables,
                rejects_total: c.rejected,
                max_rejects: a.max_rejects,
            }),
            error: error.as_ref().or(converted.as_ref().err()),
        },
    )?;
    let described = view.render(&plan);
    // A conversion that failed ends the run there: the target is dropped, not released.
    let released = if converted.is_ok() {
        drop(client);
        target.release(c.keep_scratch, notes)
    } else {
        Released::Quietly
    };
    Ok(Outcome::Check(Checked {
        found: Found::Planned(Planned {
            source: spec.to_string(),
            target: redacted,
            plan: described,
            converted,
            max_rejects: a.max_rejects,
            rejects_file: a.rejects.clone(),
            released,
        }),
        json,
        json_only,
    }))
}

/// The error a check ends with when more values would be rejected than `--max-rejects`
/// allows (exit 1).
fn rejected_error(n: u64, max: u64) -> anyhow::Error {
    if max == 0 {
        data(format!("{n} rows would be rejected"))
    } else {
        data(format!(
            "{n} rows would be rejected, more than --max-rejects {max}"
        ))
    }
}

/// How many reasons to show per table.
const KINDS_PER_TABLE: usize = 5;

/// The would-be rejects table by table, so that every table's problems show in one run: a
/// line per table with its count, then its first few kinds of reject.
fn render_rejects(c: &Converted, rejects_file: Option<&std::path::Path>) -> String {
    let tables: Vec<String> = c
        .tables
        .iter()
        .filter(|t| t.rejected > 0)
        .map(|t| format!("{} {}", t.table, crate::report::text::thousands(t.rejected)))
        .collect();
    let mut s = crate::report::text::wrap(
        &format!(
            "{} source rows cannot be converted to the target's types ({}), by table and reason{}:",
            crate::report::text::thousands(c.rejected),
            tables.join(", "),
            match rejects_file {
                Some(p) => format!("; every one is in {}", p.display()),
                None => String::new(),
            }
        ),
        2,
        summary::WIDTH,
    );
    for t in c.tables.iter().filter(|t| t.rejected > 0) {
        let rows: Vec<_> = c
            .examples
            .iter()
            .filter(|r| r.table == t.table)
            .cloned()
            .collect();
        let plural = if t.rejected == 1 { "row" } else { "rows" };
        s.push_str(&format!(
            "{} ({}): {} {plural}\n",
            t.table,
            t.source,
            crate::report::text::thousands(t.rejected)
        ));
        s.push_str(&render_groups(&group_rejects(&rows), KINDS_PER_TABLE));
    }
    s
}

/// What a load would change on the mapping's say, and a warning per column that would store
/// whole JSON objects as text, with the `path` that would pick one field.
fn render_adjusted(c: &Converted) -> String {
    let mut s = summary::adjusted(
        c.tables
            .iter()
            .map(|t| (t.table.as_str(), t.adjusted.as_slice())),
    );
    for t in &c.tables {
        for a in t.adjusted.iter().filter(|a| a.whole_objects > 0) {
            s.push_str(&crate::report::text::wrap(
                &format!(
                    "warning: `{}.{}` would store {} whole JSON objects as their text, e.g. {}",
                    t.table,
                    a.column,
                    crate::report::text::thousands(a.whole_objects),
                    a.example.as_deref().unwrap_or("?")
                ),
                2,
                summary::WIDTH,
            ));
        }
    }
    s
}

/// Without a target: every table and field the mapping reads exists in the source.
fn check_source_only(m: &Mapping, tables: &[SourceTable]) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for t in &m.tables {
        match crate::plan::source::table(tables, &t.from) {
            None => problems.push(mapping::Problem {
                line: t.line,
                key: format!("tables.{}.from", t.name),
                message: crate::plan::source::missing_table(tables, &t.from),
            }),
            Some(s) => {
                for c in &t.columns {
                    if let mapping::Input::Field(f) = &c.input
                        && s.field(f).is_none()
                    {
                        problems.push(mapping::Problem {
                            line: c.line,
                            key: format!("tables.{}.columns.{}.field", t.name, c.name),
                            message: crate::plan::source::missing_field(s, f),
                        });
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(usage(
            mapping::Problems {
                file: m.file.clone(),
                list: problems,
            }
            .to_string(),
        ))
    }
}

impl Checked {
    pub(crate) fn show(self, out: &mut Output) {
        match (self.json, self.json_only) {
            // Only the JSON on stdout; the errors still on stderr, and the exit code theirs.
            (Some(json), true) => {
                out.text(json);
                if let Found::Planned(p) = self.found {
                    p.errors(out);
                }
            }
            (json, _) => {
                out.aside(json.is_some());
                self.found.show(out);
                if let Some(json) = json {
                    out.aside(false);
                    out.text(json);
                }
            }
        }
    }
}

impl Found {
    fn show(self, out: &mut Output) {
        match self {
            Found::SourceOnly { mapping, source } => {
                out.line(format!(
                    "mapping {} and source {} are consistent.",
                    mapping.display(),
                    source
                ));
                out.line(
                    "no target given (--target or DATABASE_URL): target tables, columns and types were not checked.",
                );
            }
            Found::Planned(p) => p.show(out),
        }
    }
}

impl Planned {
    /// The plan, then the verdict on the values: any that would be rejected is the data not
    /// checking out (exit 1).
    fn show(self, out: &mut Output) {
        out.line(format!("load plan ({} -> {}):", self.source, self.target));
        out.text(self.plan);
        let converted = match self.converted {
            Ok(c) => c,
            Err(e) => return out.error(e),
        };
        let stop = self.released.failed();
        self.released.show(out);
        if stop {
            return;
        }
        out.text(render_adjusted(&converted));
        if converted.rejected > 0 {
            out.text(render_rejects(&converted, self.rejects_file.as_deref()));
        }
        if converted.rejected > self.max_rejects {
            out.error(rejected_error(converted.rejected, self.max_rejects));
        } else if converted.rejected > 0 {
            out.line(format!(
                "check passed: {} rows would be rejected, within --max-rejects {}; every other value converts.",
                crate::report::text::thousands(converted.rejected),
                self.max_rejects
            ));
        } else {
            out.line("check passed: every mapped value converts to its target column.");
        }
    }

    /// The errors alone, for `--format json`: the same exit code as the text would give.
    fn errors(self, out: &mut Output) {
        match self.converted {
            Err(e) => out.error(e),
            Ok(_) if self.released.failed() => self.released.show(out),
            Ok(c) if c.rejected > self.max_rejects => {
                out.error(rejected_error(c.rejected, self.max_rejects))
            }
            Ok(_) => self.released.show(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::outcome::transcript;

    fn planned(rejected: u64, released: Released) -> String {
        let mut out = Output::default();
        Checked {
            found: Found::Planned(Planned {
                source: "sqlite:x".into(),
                target: "postgresql://t".into(),
                plan: "  1. users <- people\n".into(),
                converted: Ok(Converted {
                    read: vec![2],
                    rejected,
                    examples: Vec::new(),
                    tables: Vec::new(),
                }),
                max_rejects: 0,
                rejects_file: None,
                released,
            }),
            json: None,
            json_only: false,
        }
        .show(&mut out);
        transcript(&out.into_parts())
    }

    #[test]
    fn rejects_are_the_data_not_checking_out() {
        let t = planned(2, Released::Quietly);
        assert!(t.starts_with("load plan (sqlite:x -> postgresql://t):\n  1. users <- people\n"));
        assert!(t.ends_with("error: 2 rows would be rejected\n"), "{t}");
        let t = planned(0, Released::Kept("postgresql://k".into()));
        assert!(
            t.ends_with("scratch cluster kept running: postgresql://k\ncheck passed: every mapped value converts to its target column.\n"),
            "{t}"
        );
    }

    #[test]
    fn every_table_shows_its_count_and_its_first_kinds() {
        use crate::convert::reject::{Code, RejectRow};
        use crate::report::json::TableConverted;
        let reject = |table: &str, column: String| RejectRow {
            table: table.into(),
            source: format!("old_{table}"),
            legacy_id: "7".into(),
            column,
            value: "'x'".into(),
            code: Code::Convert,
            reason: "bad".into(),
            ordinal: 1,
            row: None,
        };
        // The first table has more kinds than are shown; the second still shows.
        let mut examples: Vec<RejectRow> =
            (0..7).map(|i| reject("users", format!("c{i}"))).collect();
        examples.push(reject("votes", "when".into()));
        let table = |name: &str, rejected| TableConverted {
            table: name.into(),
            source: format!("old_{name}"),
            read: 10,
            rejected,
            adjusted: Vec::new(),
        };
        let c = Converted {
            read: vec![10, 10],
            rejected: 8,
            examples,
            tables: vec![table("users", 7), table("votes", 1)],
        };
        let s = render_rejects(&c, Some(std::path::Path::new("r.csv")));
        let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.starts_with("8 source rows cannot be converted to the target's types (users 7, votes 1), by table and reason; every one is in r.csv:"), "{s}");
        assert!(
            s.contains("users (old_users): 7 rows\n  1 × users.c0, convert (legacy id 7)"),
            "{s}"
        );
        assert!(s.contains("users.c4") && !s.contains("users.c5"), "{s}");
        assert!(s.contains("  … and 2 more kinds"), "{s}");
        assert!(
            s.contains("votes (old_votes): 1 row\n  1 × votes.when, convert"),
            "{s}"
        );
    }

    #[test]
    fn a_cluster_that_would_not_stop_ends_the_check() {
        let t = planned(2, Released::Failed(anyhow::anyhow!("stuck")));
        assert!(t.ends_with("error: stuck\n"), "{t}");
        assert!(!t.contains("would be rejected"), "{t}");
    }
}
