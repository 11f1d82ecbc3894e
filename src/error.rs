//! Errors that decide the exit code.
//!
//! Everything is an `anyhow::Error` with context; an error that cutover raises on purpose
//! carries a [`Fail`] at its root saying which of the documented exit codes it means.
//! Anything else (I/O, the network, PostgreSQL) is exit 3 — except constraint violations,
//! which are the data not checking out (exit 1).

use std::fmt;

/// The documented exit codes (README, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// 1: the data did not check out (count mismatch, rejects over the limit, verify mismatch).
    Data = 1,
    /// 2: bad usage, mapping or schema.
    Usage = 2,
    /// 3: could not reach or read a source/target, or the load failed.
    Unavailable = 3,
}

/// An error raised on purpose, with its exit code.
#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) kind: Kind,
    pub(crate) message: String,
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fail {}

pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    Fail {
        kind: Kind::Usage,
        message: message.into(),
    }
    .into()
}

pub(crate) fn data(message: impl Into<String>) -> anyhow::Error {
    Fail {
        kind: Kind::Data,
        message: message.into(),
    }
    .into()
}

pub(crate) fn unavailable(message: impl Into<String>) -> anyhow::Error {
    Fail {
        kind: Kind::Unavailable,
        message: message.into(),
    }
    .into()
}

/// Ctrl-C or SIGTERM before COMMIT was sent: nothing was committed.
pub(crate) fn interrupted(by: &str) -> anyhow::Error {
    unavailable(format!(
        "interrupted ({by}): the load was stopped before it committed and PostgreSQL rolled it back; the target is unchanged. Run the same command again when ready."
    ))
}

/// Ctrl-C or SIGTERM once COMMIT was sent: `what` says when, and what became of it.
pub(crate) fn interrupted_in_commit(by: &str, what: &str) -> anyhow::Error {
    unavailable(format!("interrupted ({by}) {what}"))
}

/// The exit code an error stands for.
pub(crate) fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(fail) = cause.downcast_ref::<Fail>() {
            return fail.kind as i32;
        }
        if let Some(db) = cause
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(|e| e.as_db_error())
        {
            // Class 23: integrity constraint violation — the data did not check out.
            if db.code().code().starts_with("23") {
                return Kind::Data as i32;
            }
        }
    }
    Kind::Unavailable as i32
}

/// PostgreSQL's own words for a database error: message, DETAIL and HINT, which a bare
/// "db error" hides.
pub(crate) fn describe_pg(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str("\n  DETAIL: ");
                s.push_str(d);
            }
            if let Some(h) = db.hint() {
                s.push_str("\n  HINT: ");
                s.push_str(h);
            }
            if let Some(w) = db.where_() {
                s.push_str("\n  WHERE: ");
                s.push_str(w);
            }
            s
        }
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn kind_survives_context_layers() {
        let e: anyhow::Result<()> = Err(usage("bad key"));
        let e = e.context("reading mapping").context("check").unwrap_err();
        assert_eq!(exit_code(&e), 2);
        let e = anyhow::anyhow!("io").context("x");
        assert_eq!(exit_code(&e), 3);
        let e: anyhow::Result<()> = Err(data("count mismatch"));
        assert_eq!(exit_code(&e.context("verify").unwrap_err()), 1);
    }
}
