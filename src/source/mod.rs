//! Where records come from. A source lists its tables and fields and streams one table's
//! records, each a legacy id plus field values borrowed from the source's own row buffer
//! (so reading allocates nothing per row).

pub mod airtable;
pub mod sqlite;

use crate::value::Value;
use std::fmt;
use std::path::PathBuf;

/// Where to read, from `--source` or the mapping's `[source]` section.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    Sqlite(PathBuf),
    /// `airtable:appXXXXXXXXXXXXXX`; the token comes from `AIRTABLE_TOKEN`.
    Airtable {
        base: String,
    },
}

impl SourceSpec {
    /// Parse `sqlite:PATH` or `airtable:BASE_ID`.
    pub fn parse(s: &str) -> anyhow::Result<SourceSpec> {
        match s.split_once(':') {
            Some(("sqlite", path)) if !path.is_empty() => {
                Ok(SourceSpec::Sqlite(PathBuf::from(path)))
            }
            Some(("airtable", base)) if airtable::is_base_id(base) => Ok(SourceSpec::Airtable {
                base: base.to_string(),
            }),
            Some(("airtable", base)) => Err(crate::error::usage(format!(
                "`{base}` is not an Airtable base id: use airtable:BASE_ID, where BASE_ID is `app` \
                 followed by 14 letters or digits (the part of the base's URL that starts with app)"
            ))),
            Some(("snapshot", _)) => Err(crate::error::usage(format!(
                "`{s}`: this version of cutover reads SQLite and Airtable sources only \
                 (sqlite:PATH, airtable:BASE_ID)"
            ))),
            _ => Err(crate::error::usage(format!(
                "`{s}` is not a source: use sqlite:PATH (for example sqlite:legacy.db) or \
                 airtable:BASE_ID"
            ))),
        }
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            SourceSpec::Airtable { base } => write!(f, "airtable:{base}"),
        }
    }
}

/// A source table and its fields.
#[derive(Debug, Clone)]
pub struct SourceTable {
    pub name: String,
    pub fields: Vec<String>,
}

/// One source record while it is being read.
pub trait Record {
    /// 1-based position in the table, for messages when the legacy id is missing.
    fn ordinal(&self) -> u64;
    /// Field `i` of the fields asked for in [`Source::scan`].
    fn get(&self, i: usize) -> Value<'_>;
}

/// What a load will read: each table with the fields it needs.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub table: String,
    pub fields: Vec<String>,
}

pub trait Source: Send {
    fn tables(&self) -> anyhow::Result<Vec<SourceTable>>;
    /// Called once before the first `count`/`scan` with everything that will be read, so a
    /// source can fetch it up front (Airtable extracts all tables concurrently). Default:
    /// nothing to do.
    fn prepare(&mut self, wanted: &[Wanted]) -> anyhow::Result<()> {
        let _ = wanted;
        Ok(())
    }
    fn count(&self, table: &str) -> anyhow::Result<u64>;
    /// Call `each` for every record of `table`, with `fields` in that order. Returns the
    /// number of records read.
    fn scan(
        &mut self,
        table: &str,
        fields: &[String],
        each: &mut dyn FnMut(&dyn Record) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64>;
}

/// Open a source for reading. For SQLite this also starts the read transaction that every
/// later read happens in, so the extract is one consistent snapshot.
pub fn open(spec: &SourceSpec) -> anyhow::Result<Box<dyn Source>> {
    match spec {
        SourceSpec::Sqlite(path) => Ok(Box::new(sqlite::SqliteSource::open(path)?)),
        SourceSpec::Airtable { base } => Ok(Box::new(airtable::AirtableSource::open(
            base,
            airtable::Token::from_env_or_file(None)?,
            airtable::AirtableOptions::default(),
        )?)),
    }
}
