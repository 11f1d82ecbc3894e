//! What an interrupt means once COMMIT is on its way.
//!
//! Ctrl-C or SIGTERM drops the running command, and with it the load's connection: that is
//! how a load that has not committed is rolled back. But a COMMIT already sent is not
//! stopped that way. The connection hands it to the server, and the server carries it out
//! to the end without noticing that nobody waits for the answer (a backend looks for a
//! vanished client only with `client_connection_check_interval` set, PostgreSQL docs
//! "Connection Settings"); the commit is durable before the answer is sent. So the load
//! records here the transaction it is committing, and an interrupt that comes meanwhile
//! waits (bounded) for COMMIT's answer; failing that it looks the transaction up by its id
//! from a connection of its own (`txid_status`, PostgreSQL docs "System Information
//! Functions") and says what became of it.
//!
//! One run, one target, one load: the state is the process's.

use crate::connect::TargetUrl;
use crate::error::{interrupted as before_commit, interrupted_in_commit};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;
use tokio_postgres::error::SqlState;

/// How long an interrupt waits for COMMIT's answer. Deferred constraints and triggers run
/// at COMMIT and may take a while; a second interrupt stops the wait sooner.
const WAIT_FOR_ANSWER: Duration = Duration::from_secs(60);
/// How long a lookup waits for a transaction that is still committing.
const WAIT_FOR_END: Duration = Duration::from_secs(5);

static STATE: Mutex<State> = Mutex::new(State {
    target: None,
    commit: Commit::NotSent,
});

struct State {
    /// Where the run's load writes, to look a transaction up from a new connection.
    target: Option<TargetUrl>,
    commit: Commit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    NotSent,
    /// COMMIT has been sent for this transaction (its `txid_current()`), no answer yet.
    Sent(i64),
    Answered {
        committed: bool,
    },
}

/// What became of a transaction whose COMMIT's answer never arrived.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Fate {
    Committed,
    RolledBack,
    /// Still committing when the lookup stopped waiting.
    Running,
    /// The lookup itself failed: why.
    Unknown(String),
}

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The database this run loads, so a transaction can be looked up if COMMIT's answer is
/// lost. Set where the target is opened.
pub(crate) fn remember_target(url: &TargetUrl) {
    state().target = Some(url.clone());
}

/// The database set by [`remember_target`], if any.
pub(super) fn target_url() -> Option<TargetUrl> {
    state().target.clone()
}

/// COMMIT is about to be sent for transaction `xid`.
pub(super) fn sending(xid: i64) {
    state().commit = Commit::Sent(xid);
}

/// COMMIT's answer: committed, or rolled back.
pub(super) fn answered(committed: bool) {
    state().commit = Commit::Answered { committed };
}

fn commit_state() -> (Option<TargetUrl>, Commit) {
    let s = state();
    (s.target.clone(), s.commit)
}

/// A run interrupted by `by` (`Ctrl-C`, `SIGTERM`) while `command` was running. Before
/// COMMIT was sent: the rolled-back error, and the caller drops the command. After: the
/// command goes on for up to a minute (or until a second interrupt) so COMMIT's answer
/// arrives and the run ends as it would have; without an answer the transaction is looked
/// up. `note` tells the user that cutover is waiting.
pub(crate) async fn interrupted<T, F>(
    by: &str,
    mut command: Pin<&mut F>,
    note: impl Fn(&str),
) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<T>>,
{
    if commit_state().1 == Commit::NotSent {
        return Err(before_commit(by));
    }
    note(&format!(
        "{by}: COMMIT was already sent; waiting up to {} s for PostgreSQL's answer ({by} again to stop waiting)",
        WAIT_FOR_ANSWER.as_secs()
    ));
    tokio::select! {
        r = &mut command => return r,
        () = tokio::time::sleep(WAIT_FOR_ANSWER) => {}
        () = another_interrupt() => {}
    }
    let (target, commit) = commit_state();
    match commit {
        Commit::NotSent | Commit::Answered { committed: false } => Err(before_commit(by)),
        Commit::Answered { committed: true } => Err(interrupted_in_commit(
            by,
            "after the load committed: the target holds this run's load, but what was to follow (the summary, --report and --rejects, a scratch cluster's verify) did not run. Run `cutover verify` to compare the target with the source.",
        )),
        Commit::Sent(xid) => {
            let fate = match &target {
                Some(url) => fate(url, xid).await,
                None => Fate::Unknown("the target is not known here".into()),
            };
            Err(interrupted_in_commit(by, &describe(&fate, xid)))
        }
    }
}

/// The next Ctrl-C or SIGTERM.
async fn another_interrupt() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// What became of a transaction whose COMMIT was interrupted, and what to do.
pub(super) fn describe(fate: &Fate, xid: i64) -> String {
    let check = format!(
        "check with `SELECT txid_status({xid})` on the target ('committed' or 'aborted'), or run `cutover verify`"
    );
    match fate {
        Fate::Committed => format!(
            "while COMMIT was running; PostgreSQL committed it (transaction {xid}): the target holds this run's load, but the summary, --report and --rejects were not written. Run `cutover verify` to compare the target with the source."
        ),
        Fate::RolledBack => format!(
            "while COMMIT was running; PostgreSQL rolled it back (transaction {xid}): the target is unchanged. Run the same command again when ready."
        ),
        Fate::Running => format!(
            "while COMMIT was running, and it was still running when cutover stopped waiting; PostgreSQL finishes it on its own: the target may yet hold this run's load. Later, {check}."
        ),
        Fate::Unknown(why) => {
            format!("while COMMIT was running; whether it committed is unknown ({why}): {check}.")
        }
    }
}

/// Looks transaction `xid` up from a new connection to `url`, waiting a few seconds for
/// one that is still committing.
pub(super) async fn fate(url: &TargetUrl, xid: i64) -> Fate {
    let client = match url.connect().await {
        Ok(c) => c,
        Err(e) => return Fate::Unknown(format!("{e:#}")),
    };
    let deadline = tokio::time::Instant::now() + WAIT_FOR_END;
    loop {
        let status: Option<String> = match client.query_one("SELECT txid_status($1)", &[&xid]).await
        {
            Ok(row) => row.get(0),
            Err(e) => {
                let why = match e.as_db_error() {
                    Some(d) if d.code() == &SqlState::INVALID_PARAMETER_VALUE => {
                        "the transaction id is too old or not yet valid".to_string()
                    }
                    _ => crate::error::describe_pg(&e),
                };
                return Fate::Unknown(format!("looking up transaction {xid}: {why}"));
            }
        };
        match status.as_deref() {
            Some("committed") => return Fate::Committed,
            Some("aborted") => return Fate::RolledBack,
            Some("in progress") if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some("in progress") => return Fate::Running,
            other => {
                return Fate::Unknown(format!(
                    "txid_status({xid}) is {}",
                    other.unwrap_or("NULL: the transaction is too old to tell")
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fate_says_what_the_target_holds_and_what_to_do() {
        let c = describe(&Fate::Committed, 42);
        assert!(
            c.contains("committed it") && c.contains("cutover verify"),
            "{c}"
        );
        let r = describe(&Fate::RolledBack, 42);
        assert!(
            r.contains("rolled it back") && r.contains("unchanged"),
            "{r}"
        );
        let s = describe(&Fate::Running, 42);
        assert!(
            s.contains("still running") && s.contains("txid_status(42)"),
            "{s}"
        );
        let u = describe(&Fate::Unknown("connection refused".into()), 42);
        assert!(
            u.contains("unknown (connection refused)") && u.contains("cutover verify"),
            "{u}"
        );
    }
}
