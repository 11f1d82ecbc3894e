//! `cutover verify`: compare the target with what the source maps to, row by row and column
//! by column, in one consistent snapshot of the target; nothing is written. Also the last
//! step of a load into a scratch cluster, before the cluster goes away.

use super::outcome::{Outcome, Output};
use super::pipeline::load_with;
use super::prepare::prepare_run;
use super::progress::{Display, Notes, Work};
use super::record::Record;
use crate::cli::VerifyArgs;
use crate::convert::reject::RejectRow;
use crate::error::data;
use crate::load::{Mode, Options, Report};
use crate::mapping::Mapping;
use crate::plan::Plan;
use crate::report::json::{Findings, Run};
use crate::report::summary::layout;
use crate::report::text::thousands;
use crate::report::{self, group_rejects, render_groups};
use crate::source::Source;
use std::sync::Arc;

/// The comparison: per table, how many source rows the target holds equal, different,
/// missing or extra, and the rows left out of it.
pub(crate) struct Verified {
    report: Report,
    rejects: Vec<RejectRow>,
    /// How many differences and kinds of left-out rows to list.
    show: usize,
    /// The JSON report, when it goes to stdout (`--report -`).
    json: Option<String>,
}

/// The `verify` command.
pub(crate) async fn command(v: VerifyArgs) -> anyhow::Result<Outcome> {
    let record = Record::new(v.report.report.as_deref())?;
    let mut run = Run::start("verify", Some(&v.common.mapping));
    match verify(&v, &mut run, &record).await {
        Ok(outcome) => Ok(outcome),
        Err(e) => record.failed(&run, e),
    }
}

async fn verify(v: &VerifyArgs, run: &mut Run, record: &Record) -> anyhow::Result<Outcome> {
    let c = &v.common;
    let notes = Notes::for_run(c.quiet);
    let (target, mut p) = prepare_run(c, notes, run).await?;
    notes.note(format_args!(
        "verify: {} -> {}",
        p.spec,
        target.url.redacted()
    ));
    let names = p.plan.tables.iter().map(|t| t.name.clone()).collect();
    let display = Arc::new(Display::new(notes, Work::Compare, names));
    let mut verified = compare(
        p.source,
        &p.plan,
        &mut p.client,
        &p.mapping,
        &display,
        v.show,
    )
    .await?;
    let differs = verified.differences();
    let error = (!differs.is_empty()).then(|| differs_error(&differs));
    verified.json = record.write(
        run,
        &Findings {
            outcome: if differs.is_empty() {
                "matches"
            } else {
                "differs"
            },
            load: Some(&verified.report),
            check: None,
            plan: None,
            rejects: &verified.rejects,
            rejects_total: verified
                .report
                .tables
                .iter()
                .map(|t| t.rejected + t.skipped)
                .sum(),
            error: error.as_ref(),
        },
    )?;
    drop(p.client);
    let released = target.release(c.keep_scratch, notes);
    Ok(Outcome::Verify { verified, released })
}

/// The error a comparison that found differences ends with (exit 1).
fn differs_error(differs: &[String]) -> anyhow::Error {
    data(format!(
        "the target does not match the source: {}",
        differs.join("; ")
    ))
}

/// Compare the target with the source through the load in verify mode, which writes nothing.
pub(crate) async fn compare(
    source: Box<dyn Source>,
    plan: &Plan,
    client: &mut tokio_postgres::Client,
    m: &Mapping,
    display: &Arc<Display>,
    show: usize,
) -> anyhow::Result<Verified> {
    let opts = Options {
        mode: Mode::Verify,
        prune: false,
        dry_run: true,
        max_rejects: u64::MAX,
        expect_revision: m.expect_revision.clone(),
        verify: false,
        examples: show,
        record: None,
        overwrite: Vec::new(),
    };
    // Left-out rows are kept beyond `show`, so that they are counted by reason.
    let keep = show.saturating_add(1000);
    let (outcome, mut source) = load_with(source, plan, client, &opts, keep, display).await?;
    if outcome.failure.is_none() {
        source.finished();
    }
    Ok(Verified {
        report: outcome.report,
        rejects: outcome.rejects,
        show,
        json: None,
    })
}

impl Verified {
    /// The table, the differences, the rows left out, and the verdict: any difference is
    /// the data not checking out (exit 1).
    pub(crate) fn show(self, out: &mut Output) {
        out.aside(self.json.is_some());
        let figures = |t: &crate::load::TableReport| {
            let d = t.verify.clone().unwrap_or_default();
            [
                t.read,
                d.equal,
                d.differ,
                d.missing,
                d.extra,
                t.rejected + t.skipped,
            ]
        };
        let mut rows = vec![
            [
                "table", "source", "equal", "differ", "missing", "extra", "left out",
            ]
            .map(String::from)
            .to_vec(),
        ];
        let mut total = [0u64; 6];
        for t in &self.report.tables {
            let f = figures(t);
            for (sum, n) in total.iter_mut().zip(f) {
                *sum += n;
            }
            let mut row = vec![t.table.clone()];
            row.extend(f.iter().map(|n| thousands(*n)));
            rows.push(row);
        }
        let mut last = vec!["total".to_string()];
        last.extend(total.iter().map(|n| thousands(*n)));
        rows.push(last);
        out.text(layout(&rows));
        out.text(report::render_differences(&self.report));
        if !self.rejects.is_empty() {
            out.line("left out of the comparison (rejected or skipped), by reason:");
            out.text(render_groups(&group_rejects(&self.rejects), self.show));
        }
        let bad = self.differences();
        if bad.is_empty() {
            out.line("verify: the target matches the source.");
        } else {
            out.error(differs_error(&bad));
        }
        if let Some(json) = self.json {
            out.aside(false);
            out.text(json);
        }
    }

    /// The tables that differ, a phrase each.
    fn differences(&self) -> Vec<String> {
        self.report
            .tables
            .iter()
            .filter_map(|t| {
                let d = t.verify.as_ref()?;
                (!d.is_clean()).then(|| {
                    format!(
                        "{}: {} differ, {} missing, {} extra",
                        t.table, d.differ, d.missing, d.extra
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::outcome::{Part, transcript};
    use crate::error::Kind;
    use crate::load::TableReport;

    #[test]
    fn a_difference_is_a_data_error() {
        let mut users = TableReport {
            table: "users".into(),
            read: 3,
            verify: Some(Default::default()),
            ..Default::default()
        };
        if let Some(d) = users.verify.as_mut() {
            d.equal = 2;
            d.missing = 1;
            d.examples.push("missing in target: 7".into());
        }
        let verified = Verified {
            report: Report {
                tables: vec![users],
                ..Default::default()
            },
            rejects: Vec::new(),
            show: 10,
            json: None,
        };
        let mut out = Output::default();
        verified.show(&mut out);
        let parts = out.into_parts();
        let t = transcript(&parts);
        assert!(t.contains("\n  users: missing in target: 7\n"), "{t}");
        assert!(
            t.ends_with(
                "error: the target does not match the source: users: 0 differ, 1 missing, 0 extra\n"
            ),
            "{t}"
        );
        let Some(Part::Error(e)) = parts.last() else {
            panic!("no error: {t}");
        };
        let fail = e.downcast_ref::<crate::error::Fail>().expect("a Fail");
        assert_eq!(fail.kind, Kind::Data);
    }
}
