//! The delta refresh: a snapshot brought up to date at a cost proportional to what changed.
//!
//! `export --track-changes` creates a webhook on the base before it reads anything (no
//! `notificationUrl`: it is only polled; https://airtable.com/developers/web/api/webhooks-overview)
//! and keeps its id and cursor in the manifest. Airtable keeps the webhook's payloads — which
//! records of which table were created, changed or destroyed — for 7 days, and the webhook
//! itself expires 7 days after its creation or last refresh. `export --refresh DIR` reads the
//! payloads from the cursor on (50 a request), reads the current values of the records
//! created or changed (`filterByFormula=OR(RECORD_ID()="rec…", …)`, 50 ids a request), and
//! writes the snapshot again: every other record copied from the old snapshot, the changed
//! ones replaced, the destroyed ones left out, the created ones added where a full export
//! would put them (see `ranges`: by the character after `rec`, then in creation order). Then
//! it refreshes the webhook. The alternative, a `LAST_MODIFIED_TIME()` filter, needs a full
//! listing of every record id to find the deleted ones — as many requests as a full export.

use super::client::CallError;
use super::{AirtableSource, CREATED_TIME_FIELD, ID_FIELD, TableSchema, cell, ranges};
use crate::source::snapshot::attachments::{Keep, Store};
use crate::source::snapshot::reader::SnapshotSource;
use crate::source::snapshot::{AttachmentEntry, ChangeFeed};
use crate::source::{Record, Source, SourceTable, Wanted};
use crate::value::Value;
use serde_json::{Value as Json, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Records fetched per request when reading changed records by id.
const IDS_PER_REQUEST: usize = 50;

impl AirtableSource {
    /// Create the webhook that records every change to the base's records from now on.
    pub(crate) fn create_change_feed(&mut self) -> anyhow::Result<ChangeFeed> {
        let c = self.client.clone();
        let base = self.base.clone();
        let what = format!("Airtable base {base}, creating a webhook to track changes");
        let body = json!({"specification": {"options": {"filters": {"dataTypes": ["tableData"]}}}});
        let path = format!("/v0/bases/{base}/webhooks");
        let answer = self
            .block_on(async move { c.post(&path, &body, &what).await })?
            .map_err(fatal)?;
        let id = answer
            .get("id")
            .and_then(Json::as_str)
            .filter(|id| id.starts_with("ach"))
            .ok_or_else(|| {
                crate::error::unavailable(format!(
                    "Airtable base {}: creating a webhook did not answer a webhook id",
                    self.base
                ))
            })?;
        Ok(ChangeFeed {
            webhook: id.to_string(),
            cursor: 1,
        })
    }

    /// Every change since `feed`'s cursor: per table id, the records created or changed (in
    /// the order they first changed) and those destroyed; and the cursor after them.
    fn changes(&self, feed: &ChangeFeed) -> anyhow::Result<(HashMap<String, Changes>, u64)> {
        let mut out: HashMap<String, Changes> = HashMap::new();
        let mut cursor = feed.cursor;
        loop {
            let c = self.client.clone();
            let path = format!("/v0/bases/{}/webhooks/{}/payloads", self.base, feed.webhook);
            let what = format!(
                "Airtable base {}, webhook {}, payloads from cursor {cursor}",
                self.base, feed.webhook
            );
            let at = cursor.to_string();
            let body = self
                .block_on(async move {
                    c.get(&path, &[("cursor", at.as_str()), ("limit", "50")], &what)
                        .await
                })?
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{:#}; a webhook's payloads are kept 7 days and the webhook expires 7 \
                         days after its last refresh: if it is gone, export again with \
                         --track-changes",
                        fatal(e)
                    )
                })?;
            let payloads = body
                .get("payloads")
                .and_then(Json::as_array)
                .ok_or_else(|| anyhow::anyhow!("the webhook payloads answer has no `payloads`"))?;
            for p in payloads {
                let Some(tables) = p.get("changedTablesById").and_then(Json::as_object) else {
                    continue;
                };
                for (table, change) in tables {
                    let c = out.entry(table.clone()).or_default();
                    for key in ["createdRecordsById", "changedRecordsById"] {
                        for id in change
                            .get(key)
                            .and_then(Json::as_object)
                            .into_iter()
                            .flatten()
                        {
                            c.touch(id.0);
                        }
                    }
                    for id in change
                        .get("destroyedRecordIds")
                        .and_then(Json::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Json::as_str)
                    {
                        c.destroy(id);
                    }
                }
            }
            let next = body.get("cursor").and_then(Json::as_u64).unwrap_or(cursor);
            let more = body
                .get("mightHaveMore")
                .and_then(Json::as_bool)
                .unwrap_or(false);
            if !more || next <= cursor {
                cursor = next.max(cursor);
                break;
            }
            cursor = next;
        }
        Ok((out, cursor))
    }

    /// The current records of `ids` in `table` (those that still exist), all fields. The
    /// requests, 50 ids each, are sent at once: the pacer spaces them, and none waits for
    /// another's answer.
    fn records_by_id(
        &self,
        table: &TableSchema,
        ids: &[String],
    ) -> anyhow::Result<HashMap<String, Json>> {
        let path = format!("/v0/{}/{}", self.base, table.id);
        let asks: Vec<(String, String)> = ids
            .chunks(IDS_PER_REQUEST)
            .map(|batch| {
                let formula = format!(
                    "OR({})",
                    batch
                        .iter()
                        .map(|id| format!("RECORD_ID()=\"{}\"", id.replace('"', "")))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                let what = format!(
                    "Airtable base {}, table {:?}, reading {} changed records",
                    self.base,
                    table.name,
                    batch.len()
                );
                (formula, what)
            })
            .collect();
        let client = self.client.clone();
        let (base, name) = (self.base.clone(), table.name.clone());
        let fetched = self.block_on(async move {
            let mut set = tokio::task::JoinSet::new();
            for (formula, what) in asks {
                let (c, path) = (client.clone(), path.clone());
                set.spawn(async move {
                    let mut records: Vec<Json> = Vec::new();
                    let mut offset: Option<String> = None;
                    loop {
                        let mut q: Vec<(&str, &str)> = vec![
                            ("pageSize", "100"),
                            ("returnFieldsByFieldId", "true"),
                            ("filterByFormula", formula.as_str()),
                        ];
                        if let Some(o) = &offset {
                            q.push(("offset", o));
                        }
                        let mut body = c.get(&path, &q, &what).await.map_err(fatal)?;
                        if let Some(Json::Array(page)) = body.get_mut("records") {
                            records.append(page);
                        }
                        match body.get("offset").and_then(Json::as_str) {
                            Some(o) => offset = Some(o.to_string()),
                            None => return Ok::<_, anyhow::Error>(records),
                        }
                    }
                });
            }
            let mut all = Vec::new();
            while let Some(joined) = set.join_next().await {
                match joined {
                    Ok(Ok(records)) => all.extend(records),
                    Ok(Err(e)) => return Err(e),
                    Err(e) => {
                        return Err(anyhow::anyhow!(
                            "Airtable base {base}, table {name:?}: a read of changed records \
                             stopped unexpectedly ({e}); run the refresh again"
                        ));
                    }
                }
            }
            Ok(all)
        })??;
        let mut out = HashMap::new();
        for r in fetched {
            if let Some(id) = r.get("id").and_then(Json::as_str) {
                out.insert(id.to_string(), r);
            }
        }
        Ok(out)
    }

    /// Keep the webhook alive another 7 days.
    fn refresh_feed(&self, feed: &ChangeFeed) -> anyhow::Result<()> {
        let c = self.client.clone();
        let path = format!("/v0/bases/{}/webhooks/{}/refresh", self.base, feed.webhook);
        let what = format!(
            "Airtable base {}, refreshing webhook {}",
            self.base, feed.webhook
        );
        self.block_on(async move { c.post(&path, &json!({}), &what).await })?
            .map_err(fatal)?;
        Ok(())
    }
}

fn fatal(e: CallError) -> anyhow::Error {
    match e {
        CallError::Fatal(e) => e,
        CallError::IteratorExpired => anyhow::anyhow!("the API answered with an iterator error"),
    }
}

/// What changed in one table.
#[derive(Default)]
struct Changes {
    /// Created or changed, in the order first seen.
    touched: Vec<String>,
    touched_set: HashSet<String>,
    destroyed: HashSet<String>,
}

impl Changes {
    fn touch(&mut self, id: &str) {
        self.destroyed.remove(id);
        if self.touched_set.insert(id.to_string()) {
            self.touched.push(id.to_string());
        }
    }
    fn destroy(&mut self, id: &str) {
        self.touched_set.remove(id);
        self.touched.retain(|t| t != id);
        self.destroyed.insert(id.to_string());
    }
}

/// A snapshot and the changes since it, read as one source: what a full export would read now.
pub(crate) struct Refreshed {
    old: SnapshotSource,
    airtable: AirtableSource,
    feed: ChangeFeed,
    /// Per table name: the current records of those created or changed.
    changed: HashMap<String, HashMap<String, Json>>,
    /// Per table name: records to leave out (destroyed, or changed but gone since).
    gone: HashMap<String, HashSet<String>>,
    /// Per table name: the records created since, in the order a full export reads them.
    created: HashMap<String, Vec<String>>,
    counts: HashMap<String, u64>,
    /// Records replaced, added and left out, for the summary.
    pub(crate) summary: (u64, u64, u64),
}

impl Refreshed {
    /// The snapshot at `old` with the changes in its base since its cursor.
    pub(crate) fn new(old: SnapshotSource, airtable: AirtableSource) -> anyhow::Result<Refreshed> {
        let feed = old.manifest().airtable_changes.clone().ok_or_else(|| {
            crate::error::usage(
                "this snapshot does not track changes: export it with --track-changes, then \
                 --refresh brings it up to date",
            )
        })?;
        let (changes, cursor) = airtable.changes(&feed)?;
        let mut r = Refreshed {
            old,
            airtable,
            feed: ChangeFeed {
                webhook: feed.webhook.clone(),
                cursor,
            },
            changed: HashMap::new(),
            gone: HashMap::new(),
            created: HashMap::new(),
            counts: HashMap::new(),
            summary: (0, 0, 0),
        };
        let tables = r.old.tables()?;
        for t in &tables {
            let schema = r.airtable.table_schema(&t.name)?.clone();
            // The snapshot's fields must still be the table's: a field added, removed or
            // renamed since means another column list, which only a full export writes.
            let now: Vec<&str> = [ID_FIELD, CREATED_TIME_FIELD]
                .into_iter()
                .chain(schema.fields.iter().map(|f| f.name.as_str()))
                .collect();
            if now != t.fields.iter().map(String::as_str).collect::<Vec<_>>() {
                return Err(crate::error::usage(format!(
                    "Airtable table {:?}: its fields changed since the snapshot was taken; \
                     export it again (a full export) instead of refreshing",
                    t.name
                )));
            }
            let Some(c) = changes.get(&schema.id) else {
                r.counts.insert(t.name.clone(), r.old.count(&t.name)?);
                continue;
            };
            let records = r.airtable.records_by_id(&schema, &c.touched)?;
            let mut gone = c.destroyed.clone();
            gone.extend(
                c.touched
                    .iter()
                    .filter(|id| !records.contains_key(*id))
                    .cloned(),
            );
            // Which of the touched are new: not in the old snapshot.
            let mut seen = HashSet::new();
            let mut n = 0u64;
            r.old.scan(&t.name, &[ID_FIELD.to_string()], &mut |rec| {
                if let Value::Text(id) = rec.get(0) {
                    let id = String::from_utf8_lossy(id).into_owned();
                    if !gone.contains(&id) {
                        n += 1;
                    } else {
                        r.summary.2 += 1;
                    }
                    if records.contains_key(&id) {
                        r.summary.0 += 1;
                    }
                    seen.insert(id);
                }
                Ok(())
            })?;
            let mut created: Vec<String> = c
                .touched
                .iter()
                .filter(|id| records.contains_key(*id) && !seen.contains(*id))
                .cloned()
                .collect();
            // A full export reads by the character after `rec`, then in the API's order
            // (creation order).
            created.sort_by_key(|id| {
                (
                    ranges::class_of(id),
                    records[id]
                        .get("createdTime")
                        .and_then(Json::as_str)
                        .unwrap_or_default()
                        .to_string(),
                )
            });
            n += created.len() as u64;
            r.summary.1 += created.len() as u64;
            r.counts.insert(t.name.clone(), n);
            r.created.insert(t.name.clone(), created);
            r.gone.insert(t.name.clone(), gone);
            r.changed.insert(t.name.clone(), records);
        }
        Ok(r)
    }
}

/// An Airtable record as the Airtable source gives it (fields by id, an absent checkbox
/// false).
struct Fresh<'a> {
    json: &'a Json,
    getters: &'a [Getter],
    ordinal: u64,
}

enum Getter {
    Id,
    Created,
    Field { id: String, checkbox: bool },
}

impl Record for Fresh<'_> {
    fn ordinal(&self) -> u64 {
        self.ordinal
    }
    fn get(&self, i: usize) -> Value<'_> {
        fn text(v: Option<&Json>) -> Value<'_> {
            match v {
                Some(Json::String(s)) => Value::Text(s.as_bytes()),
                _ => Value::Null,
            }
        }
        match self.getters.get(i) {
            None => Value::Null,
            Some(Getter::Id) => text(self.json.get("id")),
            Some(Getter::Created) => text(self.json.get("createdTime")),
            Some(Getter::Field { id, checkbox }) => {
                match self.json.get("fields").and_then(|f| f.get(id.as_str())) {
                    None | Some(Json::Null) if *checkbox => Value::Bool(false),
                    v => cell(v),
                }
            }
        }
    }
}

/// An old snapshot row with its id column (last) hidden.
struct Old<'a> {
    inner: &'a dyn Record,
    ordinal: u64,
}

impl Record for Old<'_> {
    fn ordinal(&self) -> u64 {
        self.ordinal
    }
    fn get(&self, i: usize) -> Value<'_> {
        self.inner.get(i)
    }
}

impl Source for Refreshed {
    fn tables(&self) -> anyhow::Result<Vec<SourceTable>> {
        self.old.tables()
    }

    fn metadata(&self) -> Option<(&'static str, String)> {
        self.airtable.metadata()
    }

    fn count(&self, table: &str) -> anyhow::Result<u64> {
        match self.counts.get(table) {
            Some(n) => Ok(*n),
            None => self.old.count(table),
        }
    }

    fn prepare(&mut self, _wanted: &[Wanted]) -> anyhow::Result<()> {
        Ok(())
    }

    fn scan(
        &mut self,
        table: &str,
        fields: &[String],
        each: &mut dyn FnMut(&dyn Record) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let schema = self.airtable.table_schema(table)?.clone();
        let getters: Vec<Getter> = fields
            .iter()
            .map(|f| match f.as_str() {
                ID_FIELD => Getter::Id,
                CREATED_TIME_FIELD => Getter::Created,
                name => {
                    let fs = schema.field(name);
                    Getter::Field {
                        id: fs.map_or_else(|| name.to_string(), |f| f.id.clone()),
                        checkbox: fs.is_some_and(|f| f.field_type == "checkbox"),
                    }
                }
            })
            .collect();
        let empty_map = HashMap::new();
        let empty_set = HashSet::new();
        let changed = self.changed.get(table).unwrap_or(&empty_map);
        let gone = self.gone.get(table).unwrap_or(&empty_set);
        let created: &[String] = self.created.get(table).map_or(&[], Vec::as_slice);
        let mut with_id = fields.to_vec();
        with_id.push(ID_FIELD.to_string());
        let id_at = fields.len();
        let mut n = 0u64;
        let mut next_new = 0usize;
        // The created records of classes before `class`, emitted where a full export has them.
        let mut emit_new = |upto: usize,
                            n: &mut u64,
                            each: &mut dyn FnMut(&dyn Record) -> anyhow::Result<()>|
         -> anyhow::Result<()> {
            while let Some(id) = created.get(next_new) {
                if ranges::class_of(id) >= upto {
                    break;
                }
                *n += 1;
                each(&Fresh {
                    json: &changed[id],
                    getters: &getters,
                    ordinal: *n,
                })?;
                next_new += 1;
            }
            Ok(())
        };
        self.old.scan(table, &with_id, &mut |rec| {
            let id = match rec.get(id_at) {
                Value::Text(t) => String::from_utf8_lossy(t).into_owned(),
                _ => String::new(),
            };
            // New records of this class come after the old ones: emit those of earlier
            // classes only.
            emit_new(ranges::class_of(&id), &mut n, each)?;
            if gone.contains(&id) {
                return Ok(());
            }
            n += 1;
            match changed.get(&id) {
                Some(json) => each(&Fresh {
                    json,
                    getters: &getters,
                    ordinal: n,
                }),
                None => each(&Old {
                    inner: rec,
                    ordinal: n,
                }),
            }
        })?;
        emit_new(usize::MAX, &mut n, each)?;
        Ok(n)
    }

    fn attachments(
        &mut self,
        tables: &[String],
        store: &Arc<Store>,
        have: &Arc<HashMap<String, AttachmentEntry>>,
    ) -> anyhow::Result<Vec<AttachmentEntry>> {
        // The old snapshot's files, linked into the store (they are already checked).
        let mut kept: HashMap<String, AttachmentEntry> = HashMap::new();
        for e in &self.old.manifest().attachments {
            let from = self.old.dir().join(&e.file);
            store
                .adopt(&from, e)
                .map_err(|err| anyhow::anyhow!("attachment file {}: {err}", from.display()))?;
            kept.insert(e.id.clone(), e.clone());
        }
        let mut have: HashMap<String, AttachmentEntry> = (**have).clone();
        have.extend(kept.clone());
        let have = Arc::new(have);
        let mut out: Vec<AttachmentEntry> = kept.into_values().collect();
        for name in tables {
            let Some(records) = self.changed.get(name) else {
                continue;
            };
            let records: Vec<Json> = records.values().cloned().collect();
            out.extend(self.airtable.attachments_of(name, records, store, &have)?);
        }
        Ok(out)
    }

    fn keep_attachments(&mut self, table: &str, field: &str, keep: &Keep) -> anyhow::Result<()> {
        self.old.keep_attachments(table, field, keep)
    }

    fn change_feed(&self) -> Option<ChangeFeed> {
        Some(self.feed.clone())
    }

    fn finished(&mut self) {
        // The change feed lives on for the next refresh.
        if let Err(e) = self.airtable.refresh_feed(&self.feed) {
            eprintln!(
                "note: could not refresh webhook {} (it expires 7 days after its last \
                 refresh): {e:#}",
                self.feed.webhook
            );
        }
        self.airtable.finished();
    }
}
