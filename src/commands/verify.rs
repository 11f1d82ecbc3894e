//! `cutover verify`: compare the target with what the source maps to, row by row and column
//! by column, in one consistent snapshot of the target; nothing is written. Also the last
//! step of a load into a scratch cluster, before the cluster goes away.

use super::outcome::{Outcome, Output};
use super::pipeline::load_with;
use super::prepare::prepare;
use super::progress::Notes;
use super::target::Target;
use crate::cli::VerifyArgs;
use crate::convert::reject::RejectRow;
use crate::error::data;
use crate::load::{Mode, Options, Report};
use crate::mapping::Mapping;
use crate::plan::Plan;
use crate::report;
use crate::source::Source;

/// The comparison: per table, how many source rows the target holds equal, different,
/// missing or extra, and the rows left out of it.
pub(crate) struct Verified {
    report: Report,
    rejects: Vec<RejectRow>,
    /// How many differences and left-out rows to list.
    show: usize,
}

/// The `verify` command.
pub(crate) async fn command(v: VerifyArgs) -> anyhow::Result<Outcome> {
    let c = &v.common;
    let notes = Notes::on_terminal(c.quiet);
    let target = Target::required(c, notes).await?;
    let mut p = prepare(c, &target).await?;
    let verified = compare(p.source, &p.plan, &mut p.client, &p.mapping, notes, v.show).await?;
    drop(p.client);
    let released = target.release(c.keep_scratch, notes);
    Ok(Outcome::Verify { verified, released })
}

/// Compare the target with the source through the load in verify mode, which writes nothing.
pub(crate) async fn compare(
    source: Box<dyn Source>,
    plan: &Plan,
    client: &mut tokio_postgres::Client,
    m: &Mapping,
    notes: Notes,
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
    };
    let outcome = load_with(source, plan, client, &opts, show, notes).await?;
    Ok(Verified {
        report: outcome.report,
        rejects: outcome.rejects,
        show,
    })
}

impl Verified {
    /// The table, the differences, the rows left out, and the verdict: any difference is
    /// the data not checking out (exit 1).
    pub(crate) fn show(self, out: &mut Output) {
        out.line(format!(
            "verify: {:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "table", "source", "equal", "differ", "missing", "extra", "left out"
        ));
        let mut bad = Vec::new();
        for t in &self.report.tables {
            let d = t.verify.clone().unwrap_or_default();
            out.line(format!(
                "verify: {:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                t.table,
                t.read,
                d.equal,
                d.differ,
                d.missing,
                d.extra,
                t.rejected + t.skipped
            ));
            if !d.is_clean() {
                bad.push(format!(
                    "{}: {} differ, {} missing, {} extra",
                    t.table, d.differ, d.missing, d.extra
                ));
            }
        }
        out.text(report::render_differences(&self.report));
        if !self.rejects.is_empty() {
            out.line(format!(
                "left out of the comparison (rejected or skipped), first {}:",
                self.rejects.len().min(self.show)
            ));
            out.text(report::render_rejects(&self.rejects, self.show));
        }
        if bad.is_empty() {
            out.line("verify: the target matches the source.");
        } else {
            out.error(data(format!(
                "the target does not match the source: {}",
                bad.join("; ")
            )));
        }
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
