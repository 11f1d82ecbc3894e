//! Where a run's JSON report goes (`--report FILE`, or `-` for stdout) and what a run that
//! fails leaves there: a report naming the error, so the record of a failed cutover is as
//! complete as that of one that went through.

use super::outcome::Outcome;
use crate::error::usage;
use crate::files;
use crate::report::json::{Findings, Run, SourceRef};
use crate::source::SourceSpec;
use std::path::{Path, PathBuf};

/// Where `--report` goes.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    Nowhere,
    File(PathBuf),
    Stdout,
}

impl Record {
    /// From `--report`, checked before anything is read or loaded: a path that cannot be
    /// written is found now, not after the commit.
    pub(crate) fn new(report: Option<&Path>) -> anyhow::Result<Record> {
        match report {
            None => Ok(Record::Nowhere),
            Some(p) if p == Path::new("-") => Ok(Record::Stdout),
            Some(p) => {
                files::check(p, files::Existing::Replace)
                    .map_err(|e| usage(format!("cannot write {e}")))?;
                Ok(Record::File(p.to_path_buf()))
            }
        }
    }

    /// Write the report: to its file, or as text for stdout (returned).
    pub(crate) fn write(&self, run: &Run, f: &Findings<'_>) -> anyhow::Result<Option<String>> {
        match self {
            Record::Nowhere => Ok(None),
            Record::File(p) => {
                crate::report::write_atomically(p, run.document(f)?.as_bytes())?;
                Ok(None)
            }
            Record::Stdout => Ok(Some(run.document(f)?)),
        }
    }

    /// A run that failed with `error`: its report says so, and the error is the outcome.
    pub(crate) fn failed(&self, run: &Run, error: anyhow::Error) -> anyhow::Result<Outcome> {
        let findings = Findings {
            outcome: "failed",
            load: None,
            plan: None,
            rejects: &[],
            rejects_total: 0,
            check: None,
            error: Some(&error),
        };
        match self.write(run, &findings) {
            Ok(Some(json)) => Ok(Outcome::Failed { json, error }),
            Ok(None) => Err(error),
            // The run's error keeps its exit code; the report's failure is said before it.
            Err(e) => Err(error.context(format!(
                "the run failed, and its --report could not be written either ({e:#})"
            ))),
        }
    }
}

/// The source as the report names it: its kind and location (a path made absolute, or a
/// base id; never a token).
pub(crate) fn source_ref(spec: &SourceSpec) -> SourceRef {
    let info = crate::source::snapshot::writer::source_info(spec);
    SourceRef {
        kind: info.kind,
        location: info.location,
    }
}
