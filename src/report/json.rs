//! The JSON report (`--report FILE`, or `-` for stdout): a record of a run worth keeping
//! beside the cutover's other evidence — which cutover, when and how long, from which source
//! into which target (its password redacted) with which mapping (path and SHA-256) at which
//! Alembic revision, what every table and phase did, the sequences and constraints touched,
//! the rejects by reason, and the error when the run failed. README, "The JSON report",
//! documents its shape.

use super::{Group, group_rejects};
use crate::convert::reject::RejectRow;
use crate::load::{Report, seconds};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The format's name and version: a reader checks them before anything else.
const FORMAT: &str = "cutover-report";
const FORMAT_VERSION: u32 = 1;

/// Where a source is, as the report names it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SourceRef {
    pub(crate) kind: String,
    pub(crate) location: String,
}

/// The mapping file a run used.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MappingRef {
    pub(crate) path: PathBuf,
    /// SHA-256 of the file, lowercase hex; absent when it could not be read.
    pub(crate) sha256: Option<String>,
}

/// What a run is known to be working with, filled in as it learns it.
#[derive(Debug)]
pub(crate) struct Run {
    command: &'static str,
    started_at: chrono::DateTime<chrono::Utc>,
    started: Instant,
    pub(crate) source: Option<SourceRef>,
    /// The target URL, redacted.
    pub(crate) target: Option<String>,
    pub(crate) mapping: Option<MappingRef>,
    pub(crate) alembic_revision: Option<String>,
}

/// A run's error, for the report.
#[derive(Debug, Serialize)]
struct ErrorRef {
    /// `data` (exit 1), `usage` (exit 2) or `unavailable` (exit 3).
    kind: &'static str,
    message: String,
}

/// The rejects, summarised.
#[derive(Debug, Serialize)]
struct Rejects {
    /// Rows rejected or skipped, counted exactly.
    total: u64,
    /// Of those, the ones kept in detail and grouped here.
    detailed: usize,
    by_reason: Vec<Group>,
}

/// The document, as written.
#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    format_version: u32,
    command: &'static str,
    cutover_version: &'static str,
    started_at: String,
    finished_at: String,
    seconds: f64,
    /// What became of the run, in a word (see README).
    outcome: &'a str,
    exit_code: i32,
    source: &'a Option<SourceRef>,
    target: &'a Option<String>,
    mapping: &'a Option<MappingRef>,
    alembic_revision: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'a serde_json::Value>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    load: Option<&'a Report>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    check: Option<&'a CheckFindings<'a>>,
    rejects: Rejects,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorRef>,
}

/// One table as `check` converted it: rows read, rows that would be rejected, and the
/// values the mapping's policies would change.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TableConverted {
    pub(crate) table: String,
    pub(crate) source: String,
    pub(crate) read: u64,
    pub(crate) rejected: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) adjusted: Vec<crate::convert::ColumnAdjusted>,
}

/// What `check` found converting every value.
#[derive(Debug, Serialize)]
pub(crate) struct CheckFindings<'a> {
    pub(crate) converted: &'a [TableConverted],
    /// Rows that would be rejected, held to `--max-rejects`.
    pub(crate) rejects_total: u64,
    pub(crate) max_rejects: u64,
}

/// What one run reports: its outcome, and what it found.
pub(crate) struct Findings<'a> {
    pub(crate) outcome: &'a str,
    pub(crate) load: Option<&'a Report>,
    /// `check`: the plan, as its own JSON.
    pub(crate) plan: Option<&'a serde_json::Value>,
    pub(crate) rejects: &'a [RejectRow],
    /// Rejected and skipped rows, counted exactly (the details may be fewer).
    pub(crate) rejects_total: u64,
    /// `check`: per table, what converting found.
    pub(crate) check: Option<CheckFindings<'a>>,
    pub(crate) error: Option<&'a anyhow::Error>,
}

impl Run {
    /// A run of `command` starting now, with `mapping` (hashed as it is now).
    pub(crate) fn start(command: &'static str, mapping: Option<&Path>) -> Run {
        Run {
            command,
            started_at: chrono::Utc::now(),
            started: Instant::now(),
            source: None,
            target: None,
            mapping: mapping.map(|p| MappingRef {
                path: std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()),
                sha256: std::fs::read(p).ok().map(|bytes| {
                    Sha256::digest(&bytes)
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect()
                }),
            }),
            alembic_revision: None,
        }
    }

    /// The report as JSON text, ending with a newline.
    pub(crate) fn document(&self, f: &Findings<'_>) -> anyhow::Result<String> {
        let groups = group_rejects(f.rejects);
        let doc = Document {
            format: FORMAT,
            format_version: FORMAT_VERSION,
            command: self.command,
            cutover_version: env!("CARGO_PKG_VERSION"),
            started_at: self
                .started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            seconds: seconds(self.started.elapsed()),
            outcome: f.outcome,
            exit_code: f.error.map(crate::error::exit_code).unwrap_or(0),
            source: &self.source,
            target: &self.target,
            mapping: &self.mapping,
            alembic_revision: &self.alembic_revision,
            plan: f.plan,
            load: f.load,
            check: f.check.as_ref(),
            rejects: Rejects {
                total: f.rejects_total,
                detailed: f.rejects.len(),
                by_reason: groups,
            },
            error: f.error.map(|e| ErrorRef {
                kind: match crate::error::exit_code(e) {
                    1 => "data",
                    2 => "usage",
                    _ => "unavailable",
                },
                message: format!("{e:#}"),
            }),
        };
        let mut text = serde_json::to_string_pretty(&doc)?;
        text.push('\n');
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::reject::Code;
    use crate::load::TableReport;

    #[test]
    fn a_report_names_its_run_and_its_error() {
        let dir = std::env::temp_dir().join(format!("cutover-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mapping = dir.join("m.toml");
        std::fs::write(&mapping, "abc").unwrap();
        let mut run = Run::start("load", Some(&mapping));
        run.target = Some("postgresql://u:***@h/db".into());
        let report = Report {
            mode: "merge".into(),
            tables: vec![TableReport {
                table: "users".into(),
                read: 2,
                ..Default::default()
            }],
            ..Default::default()
        };
        let rejects = [RejectRow {
            table: "users".into(),
            source: "people".into(),
            legacy_id: "2".into(),
            column: "email".into(),
            value: "NULL".into(),
            code: Code::Convert,
            reason: "required".into(),
            ordinal: 2,
            row: None,
        }];
        let err = crate::error::data("too many rejects");
        let text = run
            .document(&Findings {
                outcome: "failed",
                load: Some(&report),
                plan: None,
                rejects: &rejects,
                rejects_total: 1,
                check: None,
                error: Some(&err),
            })
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["format"], "cutover-report");
        assert_eq!(v["command"], "load");
        assert_eq!(
            v["mapping"]["sha256"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(v["target"], "postgresql://u:***@h/db");
        assert_eq!(v["tables"][0]["table"], "users");
        assert_eq!(v["mode"], "merge");
        assert_eq!(v["rejects"]["by_reason"][0]["code"], "convert");
        assert_eq!(v["error"]["kind"], "data");
        assert_eq!(v["exit_code"], 1);
        assert!(v["plan"].is_null());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
