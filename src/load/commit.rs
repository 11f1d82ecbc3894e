//! Ending a load: COMMIT when the data checked out and this is neither a dry run nor only a
//! verification, ROLLBACK otherwise. The outcome says which.
//!
//! Before COMMIT the transaction's id is noted (`in_flight`), so that when COMMIT's answer
//! is lost — the run interrupted, or the connection broken while it was on its way — what
//! the target holds is looked up rather than guessed: a COMMIT the server received goes
//! through whether or not its answer arrives.

use super::in_flight::{self, Fate};
use super::{Loading, Outcome};
use crate::error::{describe_pg, unavailable};
use crate::hooks;
use tokio_postgres::error::Severity;

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
            let xid: i64 = tx
                .query_one("SELECT txid_current()", &[])
                .await
                .map_err(|e| {
                    unavailable(format!(
                        "before COMMIT, reading the transaction's id failed, nothing was loaded: {}",
                        describe_pg(&e)
                    ))
                })?
                .get(0);
            hooks::reached("commit").await;
            in_flight::sending(xid);
            match tx.commit().await {
                Ok(()) => in_flight::answered(true),
                // An ERROR is COMMIT's own answer: the transaction was rolled back. A FATAL
                // ends the session and may come in place of the answer to a COMMIT that
                // went through, as may a broken connection: look it up.
                Err(e)
                    if e.as_db_error()
                        .is_some_and(|d| d.parsed_severity() == Some(Severity::Error)) =>
                {
                    in_flight::answered(false);
                    return Err(unavailable(format!(
                        "COMMIT failed, nothing was loaded: {}",
                        describe_pg(&e)
                    )));
                }
                Err(e) => lost_answer(xid, &e).await?,
            }
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

/// The session ended while COMMIT was on its way (a broken connection, a FATAL error): the
/// answer is lost, not necessarily the commit. Ok when the transaction committed after all.
async fn lost_answer(xid: i64, e: &tokio_postgres::Error) -> anyhow::Result<()> {
    let fate = match in_flight::target_url() {
        Some(url) => in_flight::fate(&url, xid).await,
        None => Fate::Unknown("the target is not known here".into()),
    };
    let lost = format!("the connection was lost during COMMIT ({})", describe_pg(e));
    match fate {
        Fate::Committed => {
            in_flight::answered(true);
            Ok(())
        }
        Fate::RolledBack => {
            in_flight::answered(false);
            Err(unavailable(format!(
                "{lost}; PostgreSQL rolled transaction {xid} back: nothing was loaded. Run the same command again when the target is reachable."
            )))
        }
        Fate::Running => Err(unavailable(format!(
            "{lost}, and transaction {xid} was still committing when cutover stopped waiting; PostgreSQL finishes it on its own. Later, check with `SELECT txid_status({xid})` on the target ('committed' or 'aborted'), or run `cutover verify`."
        ))),
        Fate::Unknown(why) => Err(unavailable(format!(
            "{lost}; whether transaction {xid} committed is unknown ({why}): check with `SELECT txid_status({xid})` on the target ('committed' or 'aborted'), or run `cutover verify`."
        ))),
    }
}
