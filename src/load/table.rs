//! One table of the load, in plan order: stage its rows, resolve them, then merge them into
//! the target — or, when only verifying, compare them with it. A table that was empty at the
//! start and whose ids are not drawn from a sequence is written by `fresh`, which judges
//! references only when some do not resolve.

use super::phase::{Clock, Durations};
use super::{Loading, Phase, TableReport, diff, fresh, merge, resolve, stage};
use crate::error::{describe_pg, unavailable};
use crate::extract::Msg;
use tokio::sync::mpsc;

impl Loading<'_> {
    /// Load the `index`-th table of the plan from the convert stage's output in `rx`.
    pub(super) async fn table(
        &mut self,
        index: usize,
        rx: &mut mpsc::Receiver<Msg>,
    ) -> anyhow::Result<()> {
        let verify_only = self.verify_only();
        let staging = &self.staging[index];
        let table = staging.table();
        let tx = &self.tx;
        let observer = self.observer;
        let mut seconds = Durations::default();
        let clock = Clock::start(observer, Phase::Copy, Some(index));
        let ex = stage::copy(tx, staging, rx).await?;
        clock.stop(Some(ex.read), &mut seconds);
        let mut t = TableReport {
            table: table.name.clone(),
            source: table.from.clone(),
            read: ex.read,
            rejected: ex.rejected,
            skipped: ex.skipped,
            ..TableReport::default()
        };
        self.rejects.extend(ex.rejects);
        let empty = self.empty[index];
        let fresh = !verify_only && empty && fresh::applies(table);
        let clock = Clock::start(observer, Phase::Resolve, Some(index));
        if fresh {
            resolve::duplicates(tx, staging, ex.distinct, &mut t, &mut self.rejects).await?;
        } else {
            resolve::resolve(tx, staging, ex.distinct, &mut t, &mut self.rejects).await?;
        }
        clock.stop(None, &mut seconds);
        crate::hooks::reached(&format!("merge:{}", table.name)).await;
        if verify_only {
            let clock = Clock::start(observer, Phase::Compare, Some(index));
            t.verify = Some(diff::diff(tx, self.plan, staging, self.opts.examples, true).await?);
            clock.stop(None, &mut seconds);
        } else {
            let clock = Clock::start(observer, Phase::Write, Some(index));
            let staged = if fresh {
                let staged = merge::staged(tx, staging).await?;
                fresh::write(tx, staging, staged, &mut t, &mut self.rejects).await?;
                None
            } else {
                merge::write(tx, self.plan, staging, empty, &mut t).await?;
                Some(merge::staged(tx, staging).await?)
            };
            if empty {
                // Fresh statistics, so the joins of the tables that reference it plan well.
                tx.batch_execute(&format!("ANALYZE {}", table.qualified))
                    .await
                    .map_err(|e| {
                        unavailable(format!("analyzing `{}`: {}", table.name, describe_pg(&e)))
                    })?;
            }
            // A table empty at the start has no unchanged rows.
            t.unchanged = staged.map_or(0, |n| n.saturating_sub(t.inserted + t.updated));
            clock.stop(None, &mut seconds);
        }
        t.seconds = seconds;
        self.report.rejects_total += t.rejected;
        self.report.tables.push(t);
        Ok(())
    }
}
