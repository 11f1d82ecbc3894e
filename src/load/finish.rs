//! Finishing a load, once every table is merged: rebuild the constraints set aside for the
//! bulk load, prune, reset sequences, check that every row that should be loaded is, compare
//! every row with `--verify`, and hold the rejects to `--max-rejects`.

use super::{Loading, bulk, merge, sequences};
use crate::error::data;
use crate::hooks;

impl Loading<'_> {
    /// Run the checks over the whole load. Returns why the data does not check out (the
    /// first reason found), if it does not: then nothing is committed.
    pub(super) async fn finish(&mut self) -> anyhow::Result<Option<anyhow::Error>> {
        // Constraints back before anything is deleted, so ON DELETE actions apply to pruning.
        if !self.set_aside.is_empty() {
            bulk::restore(&self.tx, &self.set_aside).await?;
            self.report.rebuilt = Some(format!(
                "{} set aside and rebuilt inside the transaction",
                self.set_aside.describe()
            ));
        }
        if self.opts.prune {
            for (index, staging) in self.staging.iter().enumerate().rev() {
                self.report.tables[index].deleted += merge::prune(&self.tx, staging).await?;
            }
        }
        hooks::reached("sequences").await;
        let tables: Vec<&str> = self
            .plan
            .tables
            .iter()
            .map(|t| t.qualified.as_str())
            .collect();
        self.report.sequences_reset = sequences::reset(&self.tx, &tables).await?;

        let mut failure = self.count_check().await?;
        if self.opts.verify {
            let bad = self.verify().await?;
            failure = failure.or(bad);
        }
        if self.report.rejects_total > self.opts.max_rejects && failure.is_none() {
            failure = Some(data(format!(
                "{} rows were rejected, more than --max-rejects {}; nothing was committed. Fix the source or the mapping (see the rejects), or raise --max-rejects.",
                self.report.rejects_total, self.opts.max_rejects
            )));
        }
        Ok(failure)
    }

    /// Every staged row that was not rejected or skipped is in the target.
    async fn count_check(&mut self) -> anyhow::Result<Option<anyhow::Error>> {
        let mut failure = None;
        for (index, staging) in self.staging.iter().enumerate() {
            let expected = merge::staged(&self.tx, staging).await?;
            let found = merge::loaded(&self.tx, staging, self.empty[index]).await?;
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
