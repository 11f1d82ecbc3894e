//! `cutover load`: the source into the target in one transaction, and the `--rejects` and
//! `--report` files written — the report also when the run fails. A load into a scratch
//! cluster is verified before the cluster goes away, since nothing could look at it
//! afterwards.

use super::outcome::{Outcome, Output};
use super::pipeline::load_with;
use super::prepare::{prepare, prepare_run};
use super::progress::{Display, Notes, Work};
use super::record::Record;
use super::target::Released;
use super::verify::{self, Verified};
use crate::cli::{LoadArgs, ModeArg};
use crate::convert::reject::RejectRow;
use crate::error::usage;
use crate::files;
use crate::load::{Mode, Options, RecordAt, Report};
use crate::report::json::{Findings, Run};
use crate::report::{self, summary};
use std::sync::Arc;

/// What a load did.
pub(crate) struct Loaded {
    report: Report,
    rejects: Vec<RejectRow>,
    /// What went wrong once the report was in hand: the data did not check out (nothing
    /// was committed), or a `--rejects`/`--report` file could not be written.
    failure: Option<anyhow::Error>,
    /// The scratch cluster's verify, or why it could not run.
    verified: Option<anyhow::Result<Verified>>,
    released: Released,
    /// The JSON report, when it goes to stdout (`--report -`).
    json: Option<String>,
}

/// The `load` command.
pub(crate) async fn command(a: LoadArgs) -> anyhow::Result<Outcome> {
    // A --rejects or --report path that cannot be written is found before anything is
    // loaded, not after the commit.
    let record = Record::new(a.report.report.as_deref())?;
    if let Some(p) = &a.rejects {
        files::check(p, files::Existing::Replace)
            .map_err(|e| usage(format!("cannot write {e}")))?;
    }
    let mut run = Run::start("load", Some(&a.common.mapping));
    match load(&a, &mut run, &record).await {
        Ok(outcome) => Ok(outcome),
        Err(e) => record.failed(&run, e),
    }
}

async fn load(a: &LoadArgs, run: &mut Run, record: &Record) -> anyhow::Result<Outcome> {
    let c = &a.common;
    let notes = Notes::for_run(c.quiet);
    let (target, mut p) = prepare_run(c, notes, run).await?;
    let opts = Options {
        mode: match a.mode {
            ModeArg::Merge => Mode::Merge,
            ModeArg::Replace => Mode::Replace,
        },
        prune: a.prune,
        dry_run: a.dry_run,
        max_rejects: a.max_rejects,
        expect_revision: p.mapping.expect_revision.clone(),
        verify: a.verify,
        examples: 10,
        // A throwaway cluster goes away with the run: nothing to record.
        record: (!target.is_scratch()).then(|| RecordAt {
            mapping: p.mapping.file.clone(),
            state: a.state.clone(),
            schema: p.mapping.schema.clone(),
            target: target.url.redacted(),
        }),
        overwrite: Options::overwrite_from(&p.mapping),
    };
    notes.note(format_args!(
        "load: {} -> {}{}",
        p.spec,
        target.url.redacted(),
        if a.dry_run {
            " (dry run: will roll back)"
        } else {
            ""
        }
    ));
    let keep = usize::try_from(a.max_rejects)
        .unwrap_or(usize::MAX)
        .saturating_add(1000);
    let names = p.plan.tables.iter().map(|t| t.name.clone()).collect();
    let display = Arc::new(Display::new(notes, Work::Load { verify: a.verify }, names));
    let (outcome, mut source) =
        load_with(p.source, &p.plan, &mut p.client, &opts, keep, &display).await?;
    if outcome.failure.is_none() {
        // Nothing fetched needs keeping for a re-run.
        source.finished();
    }
    let rejects = if a.rejects_with_rows && !outcome.rejects.is_empty() {
        super::rows::fill(source, &p.plan, outcome.rejects).await?
    } else {
        outcome.rejects
    };
    let mut loaded = Loaded {
        report: outcome.report,
        rejects,
        failure: outcome.failure,
        verified: None,
        released: Released::Quietly,
        json: None,
    };
    match write_files(&loaded, a, run, record) {
        Ok(json) => loaded.json = json,
        Err(e) => {
            // The run ends here; the target is dropped, not released.
            loaded.failure = Some(e);
            return Ok(Outcome::Load(Box::new(loaded)));
        }
    }
    // A scratch load is verified before the cluster goes away.
    if loaded.failure.is_none() && target.is_scratch() && !a.dry_run {
        let checked = match prepare(c, &target).await {
            Ok(mut again) => {
                let names = again.plan.tables.iter().map(|t| t.name.clone()).collect();
                let quiet = Arc::new(Display::new(Notes::none(), Work::Compare, names));
                verify::compare(
                    again.source,
                    &again.plan,
                    &mut again.client,
                    &p.mapping,
                    &quiet,
                    10,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let stop = checked.is_err();
        loaded.verified = Some(checked);
        if stop {
            // As with a failed load before it, the target is dropped, not released.
            return Ok(Outcome::Load(Box::new(loaded)));
        }
    }
    drop(p.client);
    loaded.released = target.release(c.keep_scratch, notes);
    Ok(Outcome::Load(Box::new(loaded)))
}

/// What became of the load, in a word, for the report.
fn outcome_word(l: &Loaded) -> &'static str {
    let (inserted, updated, deleted) = l.report.changed();
    match (&l.failure, l.report.committed) {
        (Some(_), _) => "failed",
        (None, false) => "rolled_back",
        (None, true) if inserted + updated + deleted == 0 => "nothing_to_do",
        (None, true) => "committed",
    }
}

/// `--rejects` and `--report`, written whether or not the load committed. The report, when
/// it goes to stdout, is returned.
fn write_files(
    l: &Loaded,
    a: &LoadArgs,
    run: &Run,
    record: &Record,
) -> anyhow::Result<Option<String>> {
    if let Some(p) = &a.rejects {
        report::write_rejects(
            p,
            &l.rejects,
            &l.report.conflicts.examples,
            a.rejects_with_rows,
        )?;
    }
    record.write(
        run,
        &Findings {
            outcome: outcome_word(l),
            load: Some(&l.report),
            plan: None,
            rejects: &l.rejects,
            rejects_total: l.report.tables.iter().map(|t| t.rejected + t.skipped).sum(),
            check: None,
            error: l.failure.as_ref(),
        },
    )
}

impl Loaded {
    /// The summary, then whether it committed (or why not), then the scratch verify and
    /// what became of the cluster; the JSON report last, alone on stdout.
    pub(crate) fn show(self, out: &mut Output) {
        out.aside(self.json.is_some());
        out.text(summary::load(&self.report, &self.rejects));
        match self.failure {
            Some(e) => out.error(e),
            None => out.line(summary::verdict(&self.report)),
        }
        match self.verified {
            Some(Ok(v)) => v.show(out),
            Some(Err(e)) => out.error(e),
            None => {}
        }
        self.released.show(out);
        if let Some(json) = self.json {
            out.aside(false);
            out.text(json);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::outcome::{Part, transcript};
    use crate::load::TableReport;

    fn loaded(committed: bool, failure: Option<anyhow::Error>, released: Released) -> Loaded {
        Loaded {
            report: Report {
                committed,
                tables: vec![TableReport {
                    table: "users".into(),
                    read: 2,
                    inserted: 2,
                    target: 2,
                    ..Default::default()
                }],
                ..Default::default()
            },
            rejects: Vec::new(),
            failure,
            verified: None,
            released,
            json: None,
        }
    }

    fn shown(l: Loaded) -> Vec<Part> {
        let mut out = Output::default();
        l.show(&mut out);
        out.into_parts()
    }

    #[test]
    fn a_failure_replaces_the_verdict_and_the_kept_cluster_comes_last() {
        let parts = shown(loaded(
            false,
            Some(anyhow::anyhow!("too many rejects")),
            Released::Kept("postgresql://k".into()),
        ));
        let t = transcript(&parts);
        assert!(!t.contains("committed."), "{t}");
        assert!(!t.contains("dry run"), "{t}");
        assert!(
            t.ends_with("error: too many rejects\nscratch cluster kept running: postgresql://k\n"),
            "{t}"
        );
    }

    #[test]
    fn committed_or_rolled_back() {
        let t = transcript(&shown(loaded(true, None, Released::Quietly)));
        assert!(t.starts_with("table"), "{t}");
        assert!(t.ends_with("\ncommitted.\n"), "{t}");
        let t = transcript(&shown(loaded(false, None, Released::Quietly)));
        assert!(
            t.ends_with(
                "\ndry run: would insert 2, update 0 and delete 0 rows; rolled back, the target is unchanged.\n"
            ),
            "{t}"
        );
    }

    #[test]
    fn with_the_report_on_stdout_the_summary_goes_to_stderr() {
        let mut l = loaded(true, None, Released::Quietly);
        l.json = Some("{}\n".into());
        let parts = shown(l);
        assert!(matches!(&parts[0], Part::Aside(s) if s.starts_with("table")));
        assert!(matches!(parts.last(), Some(Part::Text(s)) if s == "{}\n"));
        assert_eq!(
            parts.iter().filter(|p| matches!(p, Part::Text(_))).count(),
            1
        );
    }
}
