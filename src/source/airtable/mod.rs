//! The Airtable source: a base's tables read through the REST API.
//!
//! `open` reads the metadata API (tables, fields, types, links). `prepare` then extracts every
//! wanted table at once, one tokio task per table, all sharing the base's rate limiter (or
//! `start` does and returns, and `ready` says which table is done first, so a snapshot writes
//! it while the rest are fetched), and
//! spools the records to JSON-lines files in a private temporary directory (`spool`), so
//! memory stays bounded however large the base and `scan` can stream a table as often as a
//! load needs it. When answers are slow, a table is listed in disjoint ranges of record ids
//! at once (`ranges`, which also says the order a table's records are seen in). A listing
//! that would never end (an offset given twice) is refused.
//! Each table also has two pseudo-fields: `@id` (the `rec…` id) and `@createdTime`.
//!
//! The source is used from a blocking thread; it owns a small tokio runtime and waits on it
//! with a plain channel, so it works whether or not the caller is inside another runtime.

mod allowance;
mod attachments;
pub(crate) mod client;
pub(crate) mod delta;
mod journal;
pub(crate) mod meta;
mod names;
mod pace;
pub(crate) mod ranges;
mod shared;
mod spool;

pub use client::{AirtableOptions, Stats, Token};
pub use meta::{BaseSchema, TableSchema};

use super::{Record, Selection, Source, SourceTable, Wanted};
use crate::value::Value;
use client::{CallError, Client};
use serde_json::Value as Json;
use spool::Spool;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The record id pseudo-field.
pub const ID_FIELD: &str = "@id";
/// The record creation time pseudo-field (`2024-05-01T10:00:00.000Z`, UTC).
pub const CREATED_TIME_FIELD: &str = "@createdTime";

/// Is `s` a base id: `app` and 14 letters or digits?
pub fn is_base_id(s: &str) -> bool {
    s.len() == 17 && s.starts_with("app") && s[3..].bytes().all(|b| b.is_ascii_alphanumeric())
}

pub struct AirtableSource {
    base: String,
    schema: BaseSchema,
    meta_json: String,
    client: Arc<Client>,
    runtime: Option<tokio::runtime::Runtime>,
    spool: Spool,
    /// Pages fetched, kept for a re-run until a run succeeds (`None`: another run holds it).
    journal: Option<Arc<journal::Journal>>,
    /// Per table name: what was extracted.
    tables: HashMap<String, Extracted>,
    /// The webhook recording changes for the snapshot being written (`track_changes`).
    feed: Option<crate::source::snapshot::ChangeFeed>,
    stats: Stats,
    /// Names tables and fields had when this base was last read, and no longer have.
    former: names::Former,
    /// Per table as the mapping names it: which records to read.
    selections: Vec<(String, Selection)>,
    /// Tables being extracted in the background (`start`).
    batch: Option<Batch>,
}

/// What one table's extraction returned: its record count and spool files in reading order.
type TableResult = anyhow::Result<(u64, Vec<PathBuf>)>;

/// Tables being extracted at once, each task saying when it ends.
struct Batch {
    /// (the job's place in `jobs`, what its task returned)
    finished: std::sync::mpsc::Receiver<(usize, TableResult)>,
    /// Per job: the table's name, the `fld…` ids extracted, whether it has ended.
    jobs: Vec<(String, Vec<String>, bool)>,
    /// The first job (in `jobs` order) that failed, and how.
    failed: Option<(usize, anyhow::Error)>,
    /// Say at the end which faults were survived.
    note: bool,
    start: std::time::Instant,
    /// The client's request count when the batch started.
    before: u64,
}

struct Extracted {
    /// The table's spool files, in the order its records are read (see `ranges`).
    files: Vec<PathBuf>,
    /// The `fld…` ids extracted.
    fields: Vec<String>,
    count: u64,
}

impl AirtableSource {
    /// Connect to `base` and read its metadata.
    pub fn open(
        base: &str,
        token: Token,
        mut options: AirtableOptions,
    ) -> anyhow::Result<AirtableSource> {
        if !is_base_id(base) {
            return Err(crate::error::usage(format!(
                "`{base}` is not an Airtable base id (app followed by 14 letters or digits, as in \
                 the base's URL https://airtable.com/appXXXXXXXXXXXXXX/…)"
            )));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cutover-airtable")
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start the Airtable I/O runtime: {e}"))?;
        let memo_dir = options.pace_dir.clone().or_else(shared::default_dir);
        let selections = std::mem::take(&mut options.selections);
        let client = {
            let _guard = runtime.enter();
            Arc::new(Client::new(base, token, options)?)
        };
        let spool = Spool::new()?;
        let mut source = AirtableSource {
            base: base.to_string(),
            schema: BaseSchema { tables: Vec::new() },
            meta_json: String::new(),
            client,
            runtime: Some(runtime),
            spool,
            journal: None,
            tables: HashMap::new(),
            feed: None,
            stats: Stats::default(),
            former: names::Former::default(),
            selections,
            batch: None,
        };
        let c = source.client.clone();
        let what = format!(
            "Airtable base {base} at {}, reading its tables (metadata API)",
            c.api()
        );
        let path = format!("/v0/meta/bases/{base}/tables");
        let json = source
            .block_on(async move { c.get(&path, &[], &what).await })?
            .map_err(|e| match e {
                CallError::Fatal(e) => e,
                CallError::IteratorExpired => anyhow::anyhow!(
                    "Airtable base {base}: the metadata API answered with an iterator error"
                ),
            })?;
        source.schema = BaseSchema::parse(&json, &format!("Airtable base {base}"))?;
        source.meta_json = serde_json::to_string_pretty(&json).unwrap_or_default();
        source.journal = journal::open_or_note(source.client.api(), base, &source.meta_json);
        if let Some(dir) = memo_dir {
            let path = dir.join(names::file_name(base, source.client.api()));
            source.former = names::remember(&path, &source.schema);
        }
        Ok(source)
    }

    /// Tables, fields, types and links from the metadata API.
    #[cfg(test)]
    pub fn schema(&self) -> &BaseSchema {
        &self.schema
    }

    /// The private directory the records are spooled to.
    #[cfg(test)]
    pub(crate) fn spool_dir(&self) -> &Path {
        &self.spool.dir
    }

    /// The metadata response as received (pretty-printed JSON).
    pub fn meta_json(&self) -> &str {
        &self.meta_json
    }

    /// Requests, 429s, retries and the achieved rate so far.
    pub fn stats(&self) -> Stats {
        let c = &self.client.counters;
        Stats {
            requests: c.requests.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            restarts: c.restarts.load(Ordering::Relaxed),
            pages: c.pages.load(Ordering::Relaxed),
            ..self.stats
        }
    }

    /// Run a future on the source's runtime and wait for it (from any thread).
    fn block_on<F, T>(&self, fut: F) -> anyhow::Result<T>
    where
        F: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the Airtable runtime is gone"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| anyhow::anyhow!("the Airtable extraction task stopped unexpectedly"))
    }

    fn table_schema(&self, name: &str) -> anyhow::Result<&TableSchema> {
        self.schema.table(name).ok_or_else(|| {
            let names: Vec<&str> = self.schema.tables.iter().map(|t| t.name.as_str()).collect();
            crate::error::usage(format!(
                "Airtable base {}: no table named {name:?} (tables: {})",
                self.base,
                names.join(", ")
            ))
        })
    }

    /// Which records of `t` to read: the selection the mapping gives it, by its name or
    /// its id (the same if given both ways).
    fn selection(&self, t: &TableSchema) -> anyhow::Result<Selection> {
        let mut found: Option<&Selection> = None;
        for (key, s) in &self.selections {
            if *key != t.name && *key != t.id {
                continue;
            }
            match found {
                Some(f) if f != s => {
                    return Err(crate::error::usage(format!(
                        "Airtable base {}, table {:?}: the mapping reads it with two different \
                         `view`/`filter` selections (by its name and by its id {}); give every \
                         table mapped from it the same ones",
                        self.base, t.name, t.id
                    )));
                }
                _ => found = Some(s),
            }
        }
        Ok(found.cloned().unwrap_or_default())
    }

    /// Extract `wanted` concurrently into the spool, and wait for it (with `note`, saying
    /// at the end which faults were survived).
    fn extract(&mut self, wanted: &[Wanted], note: bool) -> anyhow::Result<()> {
        self.start_extract(wanted, note)?;
        while self.batch.is_some() {
            self.settle_one()?;
        }
        Ok(())
    }

    /// Start extracting `wanted` into the spool in the background, one task per table (a
    /// batch already running finishes first); `settle_one` collects each as it ends, and
    /// with `note`, says at the end which faults were survived.
    fn start_extract(&mut self, wanted: &[Wanted], note: bool) -> anyhow::Result<()> {
        while self.batch.is_some() {
            self.settle_one()?;
        }
        // One job per table, with the union of the fields asked for.
        let mut jobs: Vec<(TableSchema, Vec<String>)> = Vec::new();
        for w in wanted {
            let t = self.table_schema(&w.table)?.clone();
            self.selection(&t)?;
            for f in &w.fields {
                if f != ID_FIELD && f != CREATED_TIME_FIELD && t.field(f).is_none() {
                    let names: Vec<&str> = t.fields.iter().map(|f| f.name.as_str()).collect();
                    return Err(crate::error::usage(format!(
                        "Airtable base {}, table {:?}: no field named {f:?} (fields: {}, plus \
                         {ID_FIELD} and {CREATED_TIME_FIELD})",
                        self.base,
                        t.name,
                        names.join(", ")
                    )));
                }
            }
            let fields: Vec<String> = w
                .fields
                .iter()
                .filter(|f| *f != ID_FIELD && *f != CREATED_TIME_FIELD)
                .filter_map(|f| t.field(f).map(|x| x.id.clone()))
                .collect();
            match jobs.iter_mut().find(|(j, _)| j.id == t.id) {
                Some((_, have)) => {
                    for f in fields {
                        if !have.contains(&f) {
                            have.push(f);
                        }
                    }
                }
                None => {
                    if !self.tables.contains_key(&t.name) {
                        jobs.push((t, fields));
                    }
                }
            }
        }
        if jobs.is_empty() {
            return Ok(());
        }
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the Airtable runtime is gone"))?;
        let tables = jobs.len();
        let max_restarts = self.client.max_restarts();
        let (done, finished) = std::sync::mpsc::channel();
        let mut batch = Batch {
            finished,
            jobs: Vec::with_capacity(tables),
            failed: None,
            note,
            start: std::time::Instant::now(),
            before: self.client.counters.requests.load(Ordering::Relaxed),
        };
        for (k, (t, fields)) in jobs.into_iter().enumerate() {
            let file = self.spool.next_file(&t.id);
            let selection = self.selection(&t)?;
            batch.jobs.push((t.name.clone(), fields.clone(), false));
            let client = self.client.clone();
            let journal = self.journal.clone();
            let done = done.clone();
            runtime.spawn(async move {
                let r = extract_table(
                    client,
                    t,
                    fields,
                    file,
                    selection,
                    tables,
                    max_restarts,
                    journal,
                )
                .await;
                let _ = done.send((k, r));
            });
        }
        self.batch = Some(batch);
        Ok(())
    }

    /// Wait for the next table of the running batch to be extracted and record it. Once the
    /// last one ends, the batch is over: its first failure (in the order the tables were
    /// asked for) is returned then.
    fn settle_one(&mut self) -> anyhow::Result<()> {
        let Some(b) = self.batch.as_mut() else {
            return Ok(());
        };
        match b.finished.recv() {
            Ok((k, r)) => {
                let (name, fields, ended) = &mut b.jobs[k];
                *ended = true;
                match r {
                    Ok((count, files)) => {
                        self.stats.records += count;
                        self.tables.insert(
                            name.clone(),
                            Extracted {
                                files,
                                fields: std::mem::take(fields),
                                count,
                            },
                        );
                    }
                    Err(e) => {
                        if b.failed.as_ref().is_none_or(|(j, _)| k < *j) {
                            b.failed = Some((k, e));
                        }
                    }
                }
            }
            Err(_) => {
                // Every task is gone without saying so: one panicked.
                let lost: Vec<&str> = b
                    .jobs
                    .iter()
                    .filter(|j| !j.2)
                    .map(|j| j.0.as_str())
                    .collect();
                let e = anyhow::anyhow!(
                    "Airtable base {}: extracting {lost:?} stopped unexpectedly; run again \
                     (the pages fetched are kept and not fetched again)",
                    self.base
                );
                b.failed.get_or_insert((0, e));
                for j in &mut b.jobs {
                    j.2 = true;
                }
            }
        }
        if b.jobs.iter().any(|j| !j.2) {
            return Ok(());
        }
        let Some(b) = self.batch.take() else {
            return Ok(());
        };
        self.stats.extract_seconds += b.start.elapsed().as_secs_f64();
        self.stats.extract_requests +=
            self.client.counters.requests.load(Ordering::Relaxed) - b.before;
        if let Some((_, e)) = b.failed {
            return Err(e);
        }
        if b.note {
            // Faults that were survived are still worth knowing about: say so, once.
            let s = self.stats();
            if s.retries > 0 || s.rate_limited > 0 || s.restarts > 0 {
                eprintln!(
                    "note: Airtable base {}: {} requests, {} retried (5xx, timeouts, dropped or invalid responses, 429s), {} rate-limited (429), {} tables restarted after an expired iterator; every record was read",
                    self.base, s.requests, s.retries, s.rate_limited, s.restarts
                );
            }
        }
        Ok(())
    }

    /// Is table `name` (as the schema names it) still being extracted?
    fn extracting(&self, name: &str) -> bool {
        self.batch
            .as_ref()
            .is_some_and(|b| b.jobs.iter().any(|(n, _, ended)| n == name && !ended))
    }

    /// The extracted table, extracting it now if `prepare` did not ask for it (or for all
    /// of these fields).
    fn ensure(&mut self, table: &str, fields: &[String]) -> anyhow::Result<&Extracted> {
        let name = self.table_schema(table)?.name.clone();
        while self.extracting(&name) {
            self.settle_one()?;
        }
        let schema = self.table_schema(table)?;
        // Extracted fields are kept by id; the mapping may name them by name or by id.
        let ids: Vec<&str> = fields
            .iter()
            .filter(|f| *f != ID_FIELD && *f != CREATED_TIME_FIELD)
            .map(|f| schema.field(f).map_or(f.as_str(), |x| x.id.as_str()))
            .collect();
        let missing = match self.tables.get(&name) {
            None => true,
            Some(x) => ids.iter().any(|f| !x.fields.iter().any(|have| have == f)),
        };
        if missing {
            let mut all: Vec<String> = fields.to_vec();
            if let Some(x) = self.tables.remove(&name) {
                for f in &x.files {
                    let _ = std::fs::remove_file(f);
                }
                self.stats.records -= x.count;
                all.extend(x.fields);
            }
            self.extract(
                &[Wanted {
                    table: name.clone(),
                    fields: all,
                }],
                false,
            )?;
        }
        self.tables
            .get(&name)
            .ok_or_else(|| anyhow::anyhow!("Airtable table {name:?} was not extracted"))
    }
}

impl AirtableSource {
    /// The attachments of `records` (of `table`, fields by id), fetched into `store` unless
    /// `have` holds them (`delta`: the records changed since a snapshot).
    pub(crate) fn attachments_of(
        &mut self,
        table: &str,
        records: Vec<Json>,
        store: &Arc<crate::source::snapshot::attachments::Store>,
        have: &Arc<HashMap<String, crate::source::snapshot::AttachmentEntry>>,
    ) -> anyhow::Result<Vec<crate::source::snapshot::AttachmentEntry>> {
        let t = self.table_schema(table)?.clone();
        let fields: Vec<(String, String)> = t
            .fields
            .iter()
            .filter(|f| f.field_type == "multipleAttachments")
            .map(|f| (f.id.clone(), f.name.clone()))
            .collect();
        if fields.is_empty() || records.is_empty() {
            return Ok(Vec::new());
        }
        let job = attachments::Job {
            client: self.client.clone(),
            table_id: t.id.clone(),
            table_name: t.name.clone(),
            fields,
            files: Vec::new(),
            store: store.clone(),
            have: have.clone(),
        };
        self.block_on(attachments::fetch(job, Some(records)))?
    }
}

impl Drop for AirtableSource {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Page through one table into its spool files (named after `file`), in as many ranges at
/// once as the round trip needs; returns the record count and the files in reading order.
#[allow(clippy::too_many_arguments)]
async fn extract_table(
    client: Arc<Client>,
    table: TableSchema,
    fields: Vec<String>,
    file: PathBuf,
    selection: Selection,
    tables: usize,
    max_restarts: u32,
    journal: Option<Arc<journal::Journal>>,
) -> TableResult {
    // A table resumed from the journal is split as it was then.
    let tj = journal::for_table(
        journal.as_deref(),
        &client,
        &table,
        &fields,
        &selection,
        client.parallelism(tables),
    )?;
    let split = ranges::split(tj.as_ref().map_or(client.parallelism(tables), |t| t.ranges));
    let of = split.len();
    let mut set = tokio::task::JoinSet::new();
    for (i, range) in split.into_iter().enumerate() {
        let (client, table, fields, file, selection) = (
            client.clone(),
            table.clone(),
            fields.clone(),
            file.clone(),
            selection.clone(),
        );
        let rj = tj.as_ref().map(|t| t.range(i)).transpose()?;
        set.spawn(async move {
            let label = (of > 1).then(|| format!("range {} of {of}", i + 1));
            let to = Listing {
                file: &file,
                range,
                label,
                selection: &selection,
            };
            page_range(&client, &table, &fields, to, max_restarts, rj).await
        });
    }
    let mut count = 0;
    let mut classes = Vec::new();
    while let Some(joined) = set.join_next().await {
        let result = joined
            .map_err(|e| anyhow::anyhow!("an extraction task failed: {e}"))
            .and_then(|r| r);
        match result {
            Ok((n, c)) => {
                count += n;
                classes.extend(c);
            }
            Err(e) => {
                // The other ranges stop too; their files go with the spool.
                set.abort_all();
                return Err(e);
            }
        }
    }
    classes.sort_unstable();
    let files = classes
        .into_iter()
        .map(|c| ranges::class_path(&file, c))
        .collect();
    Ok((count, files))
}

/// One listing of a table: its range of record ids, the records the mapping selects, and
/// the spool files it writes.
struct Listing<'a> {
    file: &'a Path,
    range: ranges::Range,
    label: Option<String>,
    selection: &'a Selection,
}

/// Page through one range of a table (the whole table when it has no formula) into its
/// class files, resuming from its journal; returns the record count and the classes written.
#[allow(clippy::too_many_arguments)]
async fn page_range(
    client: &Client,
    table: &TableSchema,
    fields: &[String],
    to: Listing<'_>,
    max_restarts: u32,
    journal: Option<journal::RangeJournal>,
) -> anyhow::Result<(u64, Vec<usize>)> {
    let Listing {
        file,
        range,
        label,
        selection,
    } = to;
    let path = format!("/v0/{}/{}", client.base, table.id);
    // Fields are asked for and answered by their ids (`returnFieldsByFieldId`), which a
    // rename in the base while this runs does not change; names are for people.
    let field_ids: Vec<&str> = fields
        .iter()
        .map(|f| table.field(f).map_or(f.as_str(), |x| x.id.as_str()))
        .collect();
    // Ask only for the wanted fields, unless that would make the URL too long (Airtable's
    // limit is 16,000 characters): then ask for all of them.
    let encoded: usize = field_ids.iter().map(|f| f.len() * 3 + 12).sum();
    let ask_fields = encoded < 12_000;
    // The mapping's `filter` and this range's, both sent on every page; the view too.
    let formula = ranges::combine(selection.filter.as_deref(), range.formula.as_deref());
    let view = selection.view.clone();
    let mut restarts = 0u32;
    let mut out = ranges::ClassFiles::new(file, range.classes.clone());
    'table: loop {
        if restarts > 0 {
            // The records of the expired listing: this pass writes them again.
            out.reset();
            if let Some(j) = &journal {
                j.clear();
            }
        }
        let mut count = 0u64;
        let mut offset: Option<String> = None;
        // Every offset this listing was given: Airtable's offsets move forward, so one seen
        // again would page through the same records forever.
        let mut seen: HashSet<String> = HashSet::new();
        let mut empty_pages = 0u32;
        let mut page = 0u64;
        // The pages a run before this one fetched, written again from the journal.
        let mut resumed_at = None;
        if let Some(j) = &journal {
            let r = journal::replay(j, &mut out)?;
            if r.pages > 0 {
                count = r.records;
                page = r.pages;
                seen.extend(r.offsets);
                match r.next {
                    None => return Ok((count, out.finish()?)),
                    Some(next) => {
                        resumed_at = Some(page + 1);
                        offset = Some(next);
                    }
                }
            }
        }
        loop {
            page += 1;
            let what = match &label {
                Some(l) => format!(
                    "Airtable base {}, table {:?}, {l}, page {page}",
                    client.base, table.name
                ),
                None => format!(
                    "Airtable base {}, table {:?}, page {page}",
                    client.base, table.name
                ),
            };
            let mut query: Vec<(&str, &str)> =
                vec![("pageSize", "100"), ("returnFieldsByFieldId", "true")];
            if let Some(o) = &offset {
                query.push(("offset", o));
            }
            if let Some(v) = &view {
                query.push(("view", v));
            }
            if let Some(f) = &formula {
                query.push(("filterByFormula", f));
            }
            if ask_fields {
                for f in &field_ids {
                    query.push(("fields[]", f));
                }
            }
            let body = match client.get_page(&path, &query, &what, page).await {
                Ok(b) => b,
                Err(CallError::IteratorExpired) => {
                    restarts += 1;
                    client.counters.restarts.fetch_add(1, Ordering::Relaxed);
                    if restarts > max_restarts {
                        return Err(crate::error::unavailable(format!(
                            "{what}: the list iterator expired {restarts} times \
                             (LIST_RECORDS_ITERATOR_NOT_AVAILABLE); giving up"
                        )));
                    }
                    continue 'table;
                }
                Err(CallError::Fatal(e)) => {
                    if resumed_at == Some(page)
                        && format!("{e:#}").contains("INVALID_OFFSET_VALUE")
                        && let Some(j) = &journal
                    {
                        // The kept offset was refused as unknown (not as expired): the next
                        // run starts this listing afresh.
                        j.clear();
                    }
                    return Err(e);
                }
            };
            client.counters.pages.fetch_add(1, Ordering::Relaxed);
            let (records, next) = validate_page(&body).map_err(|why| {
                crate::error::unavailable(format!(
                    "{what}: the response is not a list of records as documented: {why}"
                ))
            })?;
            let mut kept = Vec::new();
            for r in records {
                let id = r.get("id").and_then(Json::as_str).unwrap_or_default();
                let line = serde_json::to_vec(r)
                    .map_err(|e| anyhow::anyhow!("{what}: cannot spool record {id}: {e}"))?;
                out.write(ranges::class_of(id), &line).map_err(|e| {
                    crate::error::unavailable(format!(
                        "{what}: record {id}: {e:#} (its filter was {})",
                        formula.as_deref().unwrap_or("none")
                    ))
                })?;
                if journal.is_some() {
                    kept.extend_from_slice(&line);
                    kept.push(b'\n');
                }
                count += 1;
            }
            if let Some(j) = &journal {
                j.save(page, &kept, records.len() as u64, next.as_deref())
                    .map_err(|e| anyhow::anyhow!("{what}: {e:#}"))?;
            }
            let Some(next) = next else { break };
            empty_pages = if records.is_empty() {
                empty_pages + 1
            } else {
                0
            };
            if !seen.insert(next.clone()) {
                return Err(crate::error::unavailable(format!(
                    "{what}: the API gave the offset {next:?} again, which it already gave for \
                     an earlier page; following it would read the same records forever. \
                     Run again later; if it persists, check AIRTABLE_API_URL (is it the \
                     Airtable API?)"
                )));
            }
            if empty_pages >= MAX_EMPTY_PAGES {
                return Err(crate::error::unavailable(format!(
                    "{what}: {empty_pages} pages in a row held no records yet promised more \
                     (an offset); giving up rather than paging forever"
                )));
            }
            offset = Some(next);
        }
        let classes = out.finish()?;
        return Ok((count, classes));
    }
}

/// Pages in a row with no records but an offset before a listing is given up: Airtable
/// sends an offset only when more records follow.
const MAX_EMPTY_PAGES: u32 = 50;

/// Check a list-records page: `records` is an array of `{id: "rec…", createdTime: string,
/// fields: object}`, `offset` is a string when present.
fn validate_page(body: &Json) -> Result<(&Vec<Json>, Option<String>), String> {
    let obj = body.as_object().ok_or("the body is not a JSON object")?;
    let records = obj
        .get("records")
        .and_then(Json::as_array)
        .ok_or("no `records` array")?;
    for (i, r) in records.iter().enumerate() {
        let id = r.get("id").and_then(Json::as_str);
        match id {
            Some(id) if id.starts_with("rec") && !id.is_empty() => {}
            _ => return Err(format!("record #{} has no `rec…` id", i + 1)),
        }
        if !r.get("fields").is_some_and(Json::is_object) {
            return Err(format!(
                "record {} has no `fields` object",
                id.unwrap_or("?")
            ));
        }
        if !r.get("createdTime").is_none_or(Json::is_string) {
            return Err(format!(
                "record {}: `createdTime` is not a string",
                id.unwrap_or("?")
            ));
        }
    }
    let offset = match obj.get("offset") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => return Err("`offset` is not a non-empty string".to_string()),
    };
    Ok((records, offset))
}

impl Source for AirtableSource {
    fn tables(&self) -> anyhow::Result<Vec<SourceTable>> {
        Ok(self
            .schema
            .tables
            .iter()
            .map(|t| {
                let fields: Vec<String> = [ID_FIELD.to_string(), CREATED_TIME_FIELD.to_string()]
                    .into_iter()
                    .chain(t.fields.iter().map(|f| f.name.clone()))
                    .collect();
                let field_ids = [None, None]
                    .into_iter()
                    .chain(t.fields.iter().map(|f| Some(f.id.clone())))
                    .collect();
                let former_fields = self
                    .former
                    .fields
                    .get(&t.id)
                    .into_iter()
                    .flatten()
                    .filter_map(|(old, id)| {
                        let i = t.fields.iter().position(|f| f.id == *id)?;
                        Some((old.clone(), i + 2))
                    })
                    .collect();
                SourceTable {
                    name: t.name.clone(),
                    fields,
                    id: Some(t.id.clone()),
                    field_ids,
                    former_names: self.former.tables.get(&t.id).cloned().unwrap_or_default(),
                    former_fields,
                }
            })
            .collect())
    }

    fn describe(&self) -> anyhow::Result<Vec<super::TableShape>> {
        let schema = &self.schema;
        Ok(schema
            .tables
            .iter()
            .map(|t| {
                let pseudo = super::FieldShape {
                    name: CREATED_TIME_FIELD.to_string(),
                    kind: "createdTime".to_string(),
                    computed: true,
                    ..super::FieldShape::default()
                };
                let fields = std::iter::once(pseudo)
                    .chain(t.fields.iter().map(|f| super::FieldShape {
                        name: f.name.clone(),
                        kind: f.field_type.clone(),
                        id: Some(f.id.clone()),
                        computed: meta::is_computed(&f.field_type),
                        link: f.link.as_ref().and_then(|l| {
                            let other = schema.table_by_id(&l.linked_table_id)?;
                            Some(super::LinkShape {
                                table: other.name.clone(),
                                many: !l.prefers_single_record_link,
                                inverse: l
                                    .inverse_link_field_id
                                    .as_deref()
                                    .and_then(|id| other.field(id))
                                    .map(|f| f.name.clone()),
                            })
                        }),
                    }))
                    .collect();
                super::TableShape {
                    name: t.name.clone(),
                    id_field: Some(ID_FIELD.to_string()),
                    integer_id: false,
                    fields,
                    id: Some(t.id.clone()),
                }
            })
            .collect())
    }

    fn metadata(&self) -> Option<(&'static str, String)> {
        Some(("airtable-meta.json", self.meta_json().to_string()))
    }

    fn prepare(&mut self, wanted: &[Wanted]) -> anyhow::Result<()> {
        self.extract(wanted, true)
    }

    fn start(&mut self, wanted: &[Wanted]) -> anyhow::Result<()> {
        self.start_extract(wanted, true)
    }

    fn ready(&mut self, tables: &[&str]) -> anyhow::Result<usize> {
        loop {
            let failed = self.batch.as_ref().is_some_and(|b| b.failed.is_some());
            if !failed {
                for (i, t) in tables.iter().enumerate() {
                    // A name the base lacks is `scan`'s to report.
                    let done = self
                        .table_schema(t)
                        .map_or(true, |s| !self.extracting(&s.name));
                    if done {
                        return Ok(i);
                    }
                }
            }
            if self.batch.is_none() {
                return Ok(0);
            }
            self.settle_one()?;
        }
    }

    fn attachments(
        &mut self,
        tables: &[String],
        store: &Arc<crate::source::snapshot::attachments::Store>,
        have: &Arc<HashMap<String, crate::source::snapshot::AttachmentEntry>>,
    ) -> anyhow::Result<Vec<crate::source::snapshot::AttachmentEntry>> {
        let mut out = Vec::new();
        for name in tables {
            let t = self.table_schema(name)?.clone();
            let fields: Vec<(String, String)> = t
                .fields
                .iter()
                .filter(|f| f.field_type == "multipleAttachments")
                .map(|f| (f.id.clone(), f.name.clone()))
                .collect();
            if fields.is_empty() {
                continue;
            }
            let names: Vec<String> = fields.iter().map(|(_, n)| n.clone()).collect();
            let files = self.ensure(name, &names)?.files.clone();
            let job = attachments::Job {
                client: self.client.clone(),
                table_id: t.id.clone(),
                table_name: t.name.clone(),
                fields,
                files,
                store: store.clone(),
                have: have.clone(),
            };
            out.extend(self.block_on(attachments::fetch(job, None))??);
        }
        Ok(out)
    }

    fn track_changes(&mut self) -> anyhow::Result<()> {
        self.feed = Some(self.create_change_feed()?);
        Ok(())
    }

    fn change_feed(&self) -> Option<crate::source::snapshot::ChangeFeed> {
        self.feed.clone()
    }

    fn finished(&mut self) {
        if let Some(j) = self.journal.take() {
            j.remove();
        }
    }

    fn count(&self, table: &str) -> anyhow::Result<u64> {
        let name = &self.table_schema(table)?.name;
        match self.tables.get(name) {
            Some(x) => Ok(x.count),
            None => Err(anyhow::anyhow!(
                "Airtable base {}, table {name:?}: count before the table was extracted \
                 (prepare was not told about it)",
                self.base
            )),
        }
    }

    fn scan(
        &mut self,
        table: &str,
        fields: &[String],
        each: &mut dyn FnMut(&dyn Record) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let base = self.base.clone();
        let schema = self.table_schema(table)?.clone();
        let getters: Vec<Getter> = fields
            .iter()
            .map(|f| match f.as_str() {
                ID_FIELD => Getter::Id,
                CREATED_TIME_FIELD => Getter::Created,
                name => {
                    // Spooled records hold fields by id (`returnFieldsByFieldId`).
                    let fs = schema.field(name);
                    Getter::Field {
                        name: fs.map(|f| f.id.clone()).unwrap_or_else(|| name.to_string()),
                        checkbox: fs.is_some_and(|f| f.field_type == "checkbox"),
                    }
                }
            })
            .collect();
        let x = self.ensure(table, fields)?;
        let files = x.files.clone();
        let mut n = 0u64;
        for path in files {
            let reader = BufReader::new(spool::open(&path)?);
            for line in reader.lines() {
                let line = line.map_err(|e| {
                    anyhow::anyhow!("cannot read the spool file {}: {e}", path.display())
                })?;
                n += 1;
                let json: Json = serde_json::from_str(&line).map_err(|e| {
                    anyhow::anyhow!(
                        "Airtable base {base}, table {:?}: spooled record {n} is unreadable: {e}",
                        schema.name
                    )
                })?;
                let rec = AirtableRecord {
                    ordinal: n,
                    json: &json,
                    getters: &getters,
                };
                each(&rec)?;
            }
        }
        Ok(n)
    }
}

enum Getter {
    Id,
    Created,
    Field { name: String, checkbox: bool },
}

struct AirtableRecord<'a> {
    ordinal: u64,
    json: &'a Json,
    getters: &'a [Getter],
}

impl Record for AirtableRecord<'_> {
    fn ordinal(&self) -> u64 {
        self.ordinal
    }

    fn get(&self, i: usize) -> Value<'_> {
        match self.getters.get(i) {
            None => Value::Null,
            Some(Getter::Id) => text(self.json.get("id")),
            Some(Getter::Created) => text(self.json.get("createdTime")),
            Some(Getter::Field { name, checkbox }) => {
                match self.json.get("fields").and_then(|f| f.get(name.as_str())) {
                    None | Some(Json::Null) if *checkbox => Value::Bool(false),
                    v => cell(v),
                }
            }
        }
    }
}

fn text(v: Option<&Json>) -> Value<'_> {
    match v {
        Some(Json::String(s)) => Value::Text(s.as_bytes()),
        _ => Value::Null,
    }
}

/// One cell as a [`Value`]: strings are text, numbers are integers when integral, arrays and
/// objects (links, selects, attachments, lookups, formula errors) stay JSON.
pub fn cell(v: Option<&Json>) -> Value<'_> {
    match v {
        None | Some(Json::Null) => Value::Null,
        Some(Json::Bool(b)) => Value::Bool(*b),
        Some(Json::String(s)) => Value::Text(s.as_bytes()),
        Some(Json::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && (-9.0e15..=9.0e15).contains(&f) {
                    Value::Int(f as i64)
                } else {
                    Value::Float(f)
                }
            }
        }
        Some(j @ (Json::Array(_) | Json::Object(_))) => Value::Json(j),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_ids() {
        assert!(is_base_id("appAbCdEfGh123456"));
        assert!(!is_base_id("appAbCdEfGh12345"));
        assert!(!is_base_id("tblAbCdEfGh123456"));
        assert!(!is_base_id("appAbCdEfGh12345é"));
    }

    #[test]
    fn cells() {
        let j: Json = serde_json::from_str(
            r##"{"s":"x","i":3,"f":2.5,"g":4.0,"b":true,"a":["recA"],"e":{"error":"#ERROR!"}}"##,
        )
        .unwrap();
        assert!(matches!(cell(j.get("s")), Value::Text(b"x")));
        assert!(matches!(cell(j.get("i")), Value::Int(3)));
        assert!(matches!(cell(j.get("f")), Value::Float(f) if f == 2.5));
        assert!(matches!(cell(j.get("g")), Value::Int(4)));
        assert!(matches!(cell(j.get("b")), Value::Bool(true)));
        assert!(matches!(cell(j.get("a")), Value::Json(_)));
        assert!(matches!(cell(j.get("e")), Value::Json(_)));
        assert!(matches!(cell(j.get("missing")), Value::Null));
    }

    #[test]
    fn page_shapes() {
        let ok: Json = serde_json::from_str(
            r#"{"records":[{"id":"recA","createdTime":"t","fields":{}}],"offset":"itr/rec"}"#,
        )
        .unwrap();
        assert_eq!(validate_page(&ok).unwrap().1.as_deref(), Some("itr/rec"));
        for bad in [
            r#"[]"#,
            r#"{"records":{}}"#,
            r#"{"records":[{"id":"x","fields":{}}]}"#,
            r#"{"records":[{"id":"recA","fields":[]}]}"#,
            r#"{"records":[],"offset":5}"#,
        ] {
            let j: Json = serde_json::from_str(bad).unwrap();
            assert!(validate_page(&j).is_err(), "{bad}");
        }
    }
}
