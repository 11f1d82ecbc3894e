//! `cutover check`: the mapping against the source, and with a target against its catalog;
//! the load plan, and every source value converted to see what would be rejected. Writes
//! nothing.

use super::outcome::{Outcome, Output};
use super::pipeline::{Converted, convert_only};
use super::prepare::{open_source, source_spec};
use super::progress::Notes;
use super::target::{Released, Target};
use crate::cli::Common;
use crate::error::{data, usage};
use crate::mapping::{self, Mapping};
use crate::pg::catalog;
use crate::plan;
use crate::report;
use crate::source::SourceTable;
use std::path::PathBuf;

/// What a check found.
pub(crate) enum Checked {
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
    released: Released,
}

/// The `check` command.
pub(crate) async fn command(c: Common) -> anyhow::Result<Outcome> {
    let notes = Notes::on_terminal(c.quiet);
    let m = mapping::load(&c.mapping)?;
    let spec = source_spec(&m, c.source.as_deref())?;
    let (source, tables) = open_source(spec.clone(), c.from.open_options()).await?;
    let Some(target) = Target::open(&c, notes).await? else {
        check_source_only(&m, &tables)?;
        return Ok(Outcome::Check(Checked::SourceOnly {
            mapping: m.file.clone(),
            source: spec.to_string(),
        }));
    };
    let client = target.url.connect().await?;
    let cat = catalog::read(&client, &m.schema).await?;
    let plan = plan::bind(&m, &cat, &tables).map_err(|p| usage(p.to_string()))?;
    if let Some(rev) = &m.expect_revision {
        let ok = client
            .query("SELECT version_num::text FROM alembic_version", &[])
            .await
            .map(|rows| rows.iter().any(|r| r.get::<_, String>(0) == *rev))
            .unwrap_or(false);
        if !ok {
            return Err(usage(format!(
                "the target is not at Alembic revision {rev} (expect_revision in the mapping): run `alembic upgrade head` or update the mapping"
            )));
        }
    }
    let described = plan.describe();
    let redacted = target.url.redacted();
    let converted = convert_only(source, &plan, 20, notes).await;
    // A conversion that failed ends the run there: the target is dropped, not released.
    let released = if converted.is_ok() {
        drop(client);
        target.release(c.keep_scratch, notes)
    } else {
        Released::Quietly
    };
    Ok(Outcome::Check(Checked::Planned(Planned {
        source: spec.to_string(),
        target: redacted,
        plan: described,
        converted,
        released,
    })))
}

/// Without a target: every table and field the mapping reads exists in the source.
fn check_source_only(m: &Mapping, tables: &[SourceTable]) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for t in &m.tables {
        match tables.iter().find(|s| s.name == t.from) {
            None => problems.push(mapping::Problem {
                line: t.line,
                key: format!("tables.{}.from", t.name),
                message: format!(
                    "source table `{}` does not exist{}",
                    t.from,
                    mapping::suggest::hint(&t.from, tables.iter().map(|s| s.name.as_str()))
                ),
            }),
            Some(s) => {
                for c in &t.columns {
                    if let mapping::Input::Field(f) = &c.input
                        && !s.fields.contains(f)
                    {
                        problems.push(mapping::Problem {
                            line: c.line,
                            key: format!("tables.{}.columns.{}.field", t.name, c.name),
                            message: format!(
                                "source table `{}` has no field `{f}`{}",
                                s.name,
                                mapping::suggest::hint(f, s.fields.iter().map(String::as_str))
                            ),
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
        match self {
            Checked::SourceOnly { mapping, source } => {
                out.line(format!(
                    "mapping {} and source {} are consistent.",
                    mapping.display(),
                    source
                ));
                out.line(
                    "no target given (--target or DATABASE_URL): target tables, columns and types were not checked.",
                );
            }
            Checked::Planned(p) => p.show(out),
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
        if converted.rejected > 0 {
            out.line(format!(
                "{} source rows cannot be converted to the target's types; for example:",
                converted.rejected
            ));
            out.text(report::render_rejects(&converted.examples, 20));
            out.error(data(format!(
                "{} rows would be rejected",
                converted.rejected
            )));
        } else {
            out.line("check passed: every mapped value converts to its target column.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::outcome::transcript;

    fn planned(rejected: u64, released: Released) -> String {
        let mut out = Output::default();
        Checked::Planned(Planned {
            source: "sqlite:x".into(),
            target: "postgresql://t".into(),
            plan: "  1. users <- people\n".into(),
            converted: Ok(Converted {
                rejected,
                examples: Vec::new(),
            }),
            released,
        })
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
    fn a_cluster_that_would_not_stop_ends_the_check() {
        let t = planned(2, Released::Failed(anyhow::anyhow!("stuck")));
        assert!(t.ends_with("error: stuck\n"), "{t}");
        assert!(!t.contains("would be rejected"), "{t}");
    }
}
