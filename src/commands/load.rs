//! `cutover load`: the source into the target in one transaction, and the `--rejects` and
//! `--report` files written. A load into a scratch cluster is verified before the cluster
//! goes away, since nothing could look at it afterwards.

use super::outcome::{Outcome, Output};
use super::pipeline::load_with;
use super::prepare::prepare;
use super::progress::Notes;
use super::target::{Released, Target};
use super::verify::{self, Verified};
use crate::cli::{LoadArgs, ModeArg};
use crate::convert::reject::RejectRow;
use crate::error::usage;
use crate::files;
use crate::load::{Mode, Options, Report};
use crate::report;

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
}

/// The `load` command.
pub(crate) async fn command(a: LoadArgs) -> anyhow::Result<Outcome> {
    let c = &a.common;
    // A --rejects or --report path that cannot be written is found before anything is
    // loaded, not after the commit.
    for p in [&a.rejects, &a.report].into_iter().flatten() {
        files::check(p, files::Existing::Replace)
            .map_err(|e| usage(format!("cannot write {e}")))?;
    }
    let notes = Notes::on_terminal(c.quiet);
    let target = Target::required(c, notes).await?;
    let mut p = prepare(c, &target).await?;
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
    let outcome = load_with(p.source, &p.plan, &mut p.client, &opts, keep, notes).await?;
    let mut loaded = Loaded {
        report: outcome.report,
        rejects: outcome.rejects,
        failure: None,
        verified: None,
        released: Released::Quietly,
    };
    if let Err(e) = write_files(&loaded, &a) {
        // The run ends here; the target is dropped, not released.
        loaded.failure = Some(e);
        return Ok(Outcome::Load(loaded));
    }
    loaded.failure = outcome.failure;
    // A scratch load is verified before the cluster goes away.
    if loaded.failure.is_none() && target.is_scratch() && !a.dry_run {
        let checked = match prepare(c, &target).await {
            Ok(mut again) => {
                verify::compare(
                    again.source,
                    &again.plan,
                    &mut again.client,
                    &p.mapping,
                    Notes::none(),
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
            return Ok(Outcome::Load(loaded));
        }
    }
    drop(p.client);
    loaded.released = target.release(c.keep_scratch, notes);
    Ok(Outcome::Load(loaded))
}

/// `--rejects` and `--report`, written whether or not the load committed.
fn write_files(l: &Loaded, a: &LoadArgs) -> anyhow::Result<()> {
    if let Some(p) = &a.rejects {
        report::write_rejects(p, &l.rejects)?;
    }
    if let Some(p) = &a.report {
        report::write_json(&l.report, p)?;
    }
    Ok(())
}

impl Loaded {
    /// The summary, then whether it committed (or why not), then the scratch verify and
    /// what became of the cluster.
    pub(crate) fn show(self, out: &mut Output) {
        out.text(report::render_load(&self.report, &self.rejects));
        match self.failure {
            Some(e) => out.error(e),
            None if self.report.committed => out.line("committed."),
            None => out.line("dry run: rolled back, the target is unchanged."),
        }
        match self.verified {
            Some(Ok(v)) => v.show(out),
            Some(Err(e)) => out.error(e),
            None => {}
        }
        self.released.show(out);
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
            t.ends_with("\ndry run: rolled back, the target is unchanged.\n"),
            "{t}"
        );
    }
}
