//! Finishing a load, once every table is merged: set the references written last
//! (`cycles`), rebuild the constraints set aside for the bulk load, prune, reset sequences,
//! check that every row that should be loaded is, compare every row with `--verify`, hold
//! the rejects to `--max-rejects`, and enable the triggers the mapping disabled.

use super::phase::Clock;
use super::{BulkLoad, Loading, Phase, bulk, merge, sequences, unique};
use crate::error::data;
use crate::hooks;

impl Loading<'_> {
    /// Run the checks over the whole load. Returns why the data does not check out (the
    /// first reason found), if it does not: then nothing is committed.
    pub(super) async fn finish(&mut self) -> anyhow::Result<Option<anyhow::Error>> {
        let observer = self.observer;
        // Rows collide on unique keys whose policy is `error`: every one is named.
        if let Some(why) = self.set_aside.refused() {
            return Ok(Some(unique::refusal(&why)));
        }
        // References to rows written later (self-references, cycles), now that all are.
        self.set_deferred().await?;
        // Constraints back before anything is deleted, so ON DELETE actions apply to pruning.
        if !self.set_aside.is_empty() {
            let clock = Clock::start(observer, Phase::Rebuild, None);
            bulk::restore(&self.tx, &self.set_aside).await?;
            clock.stop(None, &mut self.report.phases);
            let mut rebuilt = self.set_aside.items();
            for c in &mut rebuilt {
                if let Some(t) = self.plan.tables.iter().find(|t| t.qualified == c.table) {
                    c.table = t.name.clone();
                }
            }
            self.report.bulk_load = Some(BulkLoad {
                rebuilt,
                not_possible: None,
            });
        }
        if self.opts.prune {
            let clock = Clock::start(observer, Phase::Prune, None);
            for (index, staging) in self.staging.iter().enumerate().rev() {
                self.report.tables[index].deleted +=
                    merge::prune(&self.tx, self.plan, staging).await?;
            }
            clock.stop(None, &mut self.report.phases);
        }
        hooks::reached("sequences").await;
        let tables: Vec<&str> = self
            .plan
            .tables
            .iter()
            .map(|t| t.qualified.as_str())
            .collect();
        let clock = Clock::start(observer, Phase::Sequences, None);
        self.report.sequences_reset = sequences::reset(&self.tx, &tables).await?;
        // Named as the mapping names the table, not as SQL quotes it.
        for s in &mut self.report.sequences_reset {
            if let Some(t) = self.plan.tables.iter().find(|t| t.qualified == s.table) {
                s.table = t.name.clone();
            }
        }
        clock.stop(None, &mut self.report.phases);

        let clock = Clock::start(observer, Phase::Counts, None);
        let mut failure = self.count_check().await?;
        clock.stop(None, &mut self.report.phases);
        if self.opts.verify {
            let clock = Clock::start(observer, Phase::Verify, None);
            let bad = self.verify().await?;
            clock.stop(None, &mut self.report.phases);
            failure = failure.or(bad);
        }
        if self.report.rejects_total > self.opts.max_rejects && failure.is_none() {
            failure = Some(data(format!(
                "{} rows were rejected, more than --max-rejects {}; nothing was committed. Fix the source or the mapping (see the rejects), or raise --max-rejects.",
                self.report.rejects_total, self.opts.max_rejects
            )));
        }
        // The triggers the mapping turned off, back as they were before anything commits.
        if failure.is_none() {
            super::triggers::enable(&self.tx, self.plan).await?;
        }
        Ok(failure)
    }

    /// Every staged row that was not rejected or skipped is in the target.
    async fn count_check(&mut self) -> anyhow::Result<Option<anyhow::Error>> {
        let mut failure = None;
        for (index, staging) in self.staging.iter().enumerate() {
            let expected = merge::expected(&self.tx, staging).await?;
            // A junction found as the last load left it holds what it held then: every link.
            let found = if self.settled[index] {
                expected
            } else {
                merge::loaded(&self.tx, staging, self.empty[index]).await?
            };
            self.report.tables[index].target = found;
            if expected != found && failure.is_none() {
                failure = Some(data(format!(
                    "row count mismatch in `{}`: {expected} source rows should be loaded (read minus rejected and skipped) but {found} target rows carry their legacy ids",
                    staging.table().name
                )));
            }
        }
        Ok(failure)
    }

    /// `--verify`: compare every row of every table with the source, after loading.
    async fn verify(&mut self) -> anyhow::Result<Option<anyhow::Error>> {
        let mut bad = Vec::new();
        for (index, staging) in self.staging.iter().enumerate() {
            let d = super::diff::diff(
                &self.tx,
                self.plan,
                staging,
                self.opts.examples,
                self.opts.prune,
            )
            .await?;
            if !d.is_clean() {
                bad.push(format!(
                    "{}: {} differ, {} missing, {} extra",
                    staging.table().name,
                    d.differ,
                    d.missing,
                    d.extra
                ));
            }
            self.report.tables[index].verify = Some(d);
        }
        Ok((!bad.is_empty()).then(|| {
            data(format!(
                "--verify: after loading, the target does not match the source ({}); nothing was committed",
                bad.join("; ")
            ))
        }))
    }
}
