//! Where records come from. A source lists its tables and fields and streams one table's
//! records, each a legacy id plus field values borrowed from the source's own row buffer
//! (so reading allocates nothing per row).

pub(crate) mod airtable;
pub(crate) mod snapshot;
pub(crate) mod sqlite;

use crate::value::Value;
use std::fmt;
use std::path::PathBuf;

/// Where to read, from `--source` or the mapping's `[source]` section.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    Sqlite(PathBuf),
    /// A directory written by `cutover export`.
    Snapshot(PathBuf),
    /// `airtable:appXXXXXXXXXXXXXX`; the token comes from `AIRTABLE_TOKEN` or `--token-file`.
    Airtable {
        base: String,
    },
}

impl SourceSpec {
    /// Parse `sqlite:PATH`, `snapshot:DIR` or `airtable:BASE_ID`.
    pub fn parse(s: &str) -> anyhow::Result<SourceSpec> {
        match s.split_once(':') {
            Some(("sqlite", path)) if !path.is_empty() => {
                Ok(SourceSpec::Sqlite(PathBuf::from(path)))
            }
            Some(("snapshot", dir)) if !dir.is_empty() => {
                Ok(SourceSpec::Snapshot(PathBuf::from(dir)))
            }
            Some(("airtable", base)) if airtable::is_base_id(base) => Ok(SourceSpec::Airtable {
                base: base.to_string(),
            }),
            Some(("airtable", base)) => Err(crate::error::usage(format!(
                "`{base}` is not an Airtable base id: use airtable:BASE_ID, where BASE_ID is `app` \
                 followed by 14 letters or digits (the part of the base's URL that starts with app)"
            ))),
            _ => Err(crate::error::usage(format!(
                "`{s}` is not a source: use sqlite:PATH (for example sqlite:legacy.db), \
                 airtable:BASE_ID or snapshot:DIR"
            ))),
        }
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            SourceSpec::Snapshot(p) => write!(f, "snapshot:{}", p.display()),
            SourceSpec::Airtable { base } => write!(f, "airtable:{base}"),
        }
    }
}

/// A source table and its fields.
#[derive(Debug, Clone, Default)]
pub struct SourceTable {
    pub name: String,
    pub fields: Vec<String>,
    /// The source's own id for the table (Airtable `tbl…`), which survives a rename: a
    /// mapping may name the table by it.
    pub id: Option<String>,
    /// Per field of `fields`, its own id (Airtable `fld…`), which a mapping may name it by;
    /// empty for a source without ids.
    pub field_ids: Vec<Option<String>>,
    /// Names the table had when the source was last read, and no longer has.
    pub former_names: Vec<String>,
    /// Renamed fields: (a name the field had when the source was last read, index into
    /// `fields`).
    pub former_fields: Vec<(String, usize)>,
}

impl SourceTable {
    /// Is this the table a mapping names `name_or_id`?
    pub fn is(&self, name_or_id: &str) -> bool {
        self.name == name_or_id || self.id.as_deref() == Some(name_or_id)
    }

    /// The index of the field a mapping names `name_or_id` (its name, or its own id).
    pub fn field(&self, name_or_id: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f == name_or_id)
            .or_else(|| {
                self.field_ids
                    .iter()
                    .position(|id| id.as_deref() == Some(name_or_id))
            })
    }
}

/// Which of an Airtable table's records to read (the mapping's `view` and `filter`): those
/// a view shows (by name or `viw…` id) and a formula (`filterByFormula`) is true for, both
/// applied as the list-records API applies them
/// (https://airtable.com/developers/web/api/list-records). None: every record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub view: Option<String>,
    pub filter: Option<String>,
}

impl Selection {
    pub fn is_all(&self) -> bool {
        self.view.is_none() && self.filter.is_none()
    }
}

/// A source table as `inspect` shows it and `--emit-mapping` drafts a mapping from it.
#[derive(Debug, Clone, Default)]
pub struct TableShape {
    pub name: String,
    /// The field holding each record's id (SQLite: the integer primary key; Airtable: `@id`).
    pub id_field: Option<String>,
    /// The id is an integer that can be kept as the target's primary key.
    pub integer_id: bool,
    pub fields: Vec<FieldShape>,
    /// The source's own id for the table (Airtable `tbl…`), which survives a rename.
    pub id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct FieldShape {
    pub name: String,
    /// The declared type (SQLite) or field type (Airtable), as the source names it.
    pub kind: String,
    /// A link or foreign key to another table.
    pub link: Option<LinkShape>,
    /// The source's own id for the field (Airtable `fld…`), which survives a rename.
    pub id: Option<String>,
    /// The source computes the value (an Airtable formula, rollup, lookup …): it can be read,
    /// but it is derived from other fields.
    pub computed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct LinkShape {
    pub table: String,
    /// Holds several linked records (an Airtable multi-link: a junction).
    pub many: bool,
    /// The field on the other side that mirrors this link (Airtable inverse links).
    pub inverse: Option<String>,
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
    /// The source's own description of its schema, to keep beside a snapshot:
    /// (file name, text). Airtable: the metadata API's response. Default: none.
    fn metadata(&self) -> Option<(&'static str, String)> {
        None
    }
    /// Tables, field types and links, for `inspect`. Default: names only.
    fn describe(&self) -> anyhow::Result<Vec<TableShape>> {
        Ok(self
            .tables()?
            .into_iter()
            .map(|t| TableShape {
                name: t.name,
                fields: t
                    .fields
                    .into_iter()
                    .map(|name| FieldShape {
                        name,
                        ..FieldShape::default()
                    })
                    .collect(),
                ..TableShape::default()
            })
            .collect())
    }
    /// Called once (or [`Source::start`] is) before the first `count`/`scan` with everything
    /// that will be read, so a source can fetch it up front (Airtable extracts all tables
    /// concurrently). Default: nothing to do.
    fn prepare(&mut self, wanted: &[Wanted]) -> anyhow::Result<()> {
        let _ = wanted;
        Ok(())
    }
    /// `prepare` without waiting for it: a source that fetches in the background (Airtable)
    /// starts fetching and returns, and [`Source::ready`] then says which table can be read
    /// first, so reading one table overlaps fetching the others. Default: `prepare`.
    fn start(&mut self, wanted: &[Wanted]) -> anyhow::Result<()> {
        self.prepare(wanted)
    }
    /// Of `tables` (named to `start`), the index of one that can be read now, waiting until
    /// one can if none can yet. An error fetching any table started is returned here once
    /// every table started has finished. Default: the first.
    fn ready(&mut self, tables: &[&str]) -> anyhow::Result<usize> {
        let _ = tables;
        Ok(0)
    }
    /// Files the records refer to that a snapshot must keep (Airtable attachments, whose
    /// URLs expire): those of `tables`, each fetched into `store` unless `have` already holds
    /// it. Called after `prepare`. Default: none.
    fn attachments(
        &mut self,
        tables: &[String],
        store: &std::sync::Arc<snapshot::attachments::Store>,
        have: &std::sync::Arc<std::collections::HashMap<String, snapshot::AttachmentEntry>>,
    ) -> anyhow::Result<Vec<snapshot::AttachmentEntry>> {
        let _ = (tables, store, have);
        Ok(Vec::new())
    }
    /// Give field `field` of `table` as the mapping's `attachments` asks (the kept files'
    /// paths, bytes or URLs) instead of as the source holds it. Only a snapshot keeps files.
    fn keep_attachments(
        &mut self,
        table: &str,
        field: &str,
        keep: &snapshot::attachments::Keep,
    ) -> anyhow::Result<()> {
        let _ = keep;
        Err(crate::error::usage(format!(
            "table `{table}`, field `{field}`: `attachments` reads the files kept in a \
             snapshot, and this source is not one: write one with `cutover export` and load \
             with --source snapshot:DIR"
        )))
    }
    /// Airtable: start recording changes to the base (a webhook), before anything is read,
    /// so that the snapshot written can later be refreshed. Default: not possible.
    fn track_changes(&mut self) -> anyhow::Result<()> {
        Err(crate::error::usage(
            "--track-changes needs an Airtable source: only Airtable reports its changes",
        ))
    }
    /// The change feed a snapshot of this source keeps (see `track_changes`).
    fn change_feed(&self) -> Option<snapshot::ChangeFeed> {
        None
    }
    /// The run that read this source succeeded: what a source kept so that a failed run's
    /// re-run could resume (Airtable's fetched pages) can go. Default: nothing kept.
    fn finished(&mut self) {}
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

/// How to open a source, beyond where it is: Airtable's token file and request rate.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Read the Airtable token from this file instead of `AIRTABLE_TOKEN`.
    pub token_file: Option<PathBuf>,
    /// Airtable requests per second for the base (default 5, the API's limit).
    pub airtable_rps: Option<f64>,
    /// Per source table (a name or an id, as the mapping names it): which records to read.
    pub selections: Vec<(String, Selection)>,
}

/// Open a source for reading. For SQLite this also starts the read transaction that every
/// later read happens in, so the extract is one consistent snapshot.
pub fn open(spec: &SourceSpec, opts: &OpenOptions) -> anyhow::Result<Box<dyn Source>> {
    match spec {
        SourceSpec::Sqlite(path) => Ok(Box::new(sqlite::SqliteSource::open(path)?)),
        SourceSpec::Snapshot(dir) => Ok(Box::new(
            crate::source::snapshot::reader::SnapshotSource::open(dir)?,
        )),
        SourceSpec::Airtable { base } => Ok(Box::new(open_airtable(base, opts)?)),
    }
}

/// Open an Airtable base as [`open`] does.
pub fn open_airtable(base: &str, opts: &OpenOptions) -> anyhow::Result<airtable::AirtableSource> {
    let mut options = airtable::AirtableOptions::default();
    if let Some(rps) = opts.airtable_rps {
        options.requests_per_second = rps;
    }
    options.selections = opts.selections.clone();
    let token = airtable::Token::from_env_or_file(opts.token_file.as_deref())?;
    airtable::AirtableSource::open(base, token, options)
}
