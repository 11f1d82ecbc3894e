//! Ending a load: COMMIT when the data checked out and this is neither a dry run nor only a
//! verification, ROLLBACK otherwise. The outcome says which.

use super::{Loading, Outcome};
use crate::error::{describe_pg, unavailable};
use crate::hooks;

impl Loading<'_> {
    /// Commit or roll back; `failure` is why the data did not check out, if it did not.
    pub(super) async fn end(self, failure: Option<anyhow::Error>) -> anyhow::Result<Outcome> {
        let commit = failure.is_none() && !self.opts.dry_run && !self.verify_only();
        let Loading {
            tx,
            mut report,
            rejects,
            ..
        } = self;
        if commit {
            hooks::reached("commit").await;
            tx.commit().await.map_err(|e| {
                unavailable(format!(
                    "COMMIT failed, nothing was loaded: {}",
                    describe_pg(&e)
                ))
            })?;
        } else {
            tx.rollback()
                .await
                .map_err(|e| unavailable(format!("ROLLBACK failed: {}", describe_pg(&e))))?;
        }
        report.committed = commit;
        Ok(Outcome {
            report,
            rejects,
            failure,
        })
    }
}
