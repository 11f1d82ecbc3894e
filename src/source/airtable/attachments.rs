//! Downloading a table's attachment files into a snapshot's store, while their URLs work.
//!
//! Airtable serves an attachment field as `[{id, url, filename, size, type, …}]`, the `url`
//! on another host (airtableusercontent.com) and valid for a couple of hours
//! (https://airtable.com/developers/web/api/field-model#multipleattachment). The files are
//! fetched without the API token (the URL is its own authorization; the token is never sent
//! to another host) and outside the base's rate limit, a few at once. When a URL has expired
//! (403 or 410), the record is read again through the API for a fresh one, once. An
//! attachment the store already holds (from an earlier, failed export) is not fetched again.

use super::client::{CallError, Client};
use crate::source::snapshot::AttachmentEntry;
use crate::source::snapshot::attachments::{Store, file_for};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What to fetch for one table.
pub(super) struct Job {
    pub(super) client: Arc<Client>,
    pub(super) table_id: String,
    pub(super) table_name: String,
    /// The attachment fields: (id, name).
    pub(super) fields: Vec<(String, String)>,
    /// The table's spool files.
    pub(super) files: Vec<PathBuf>,
    pub(super) store: Arc<Store>,
    pub(super) have: Arc<HashMap<String, AttachmentEntry>>,
}

/// The HTTP client for attachment hosts: no token, a read timeout rather than a total one
/// (files can be large).
fn http() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(super::client::tls_config()?)
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client for attachments: {e}"))
}

/// Attachment files downloaded at once, per table: enough that each file's round trip is
/// not waited out alone, few enough to be polite to the file host.
const AT_ONCE: usize = 4;

/// Every attachment of the table's records (from its spool files, or `records` when given),
/// fetched or found in the store, in the order the records hold them.
pub(super) async fn fetch(
    job: Job,
    records: Option<Vec<Json>>,
) -> anyhow::Result<Vec<AttachmentEntry>> {
    let mut f = Fetching {
        http: http()?,
        job: Arc::new(job),
        done: HashSet::new(),
        out: Vec::new(),
        running: tokio::task::JoinSet::new(),
    };
    if let Some(records) = records {
        for rec in &records {
            f.record(rec).await?;
        }
        return f.finish().await;
    }
    let job = f.job.clone();
    for path in &job.files {
        let file = super::spool::open(path)?;
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|e| {
                anyhow::anyhow!("cannot read the spool file {}: {e}", path.display())
            })?;
            let rec: Json = serde_json::from_str(&line)
                .map_err(|e| anyhow::anyhow!("a spooled record is unreadable: {e}"))?;
            f.record(&rec).await?;
        }
    }
    f.finish().await
}

/// One table's downloads: at most `AT_ONCE` running, each entry kept with its place.
struct Fetching {
    http: reqwest::Client,
    job: Arc<Job>,
    /// Attachment ids seen (one file per id, however many records hold it).
    done: HashSet<String>,
    out: Vec<(usize, AttachmentEntry)>,
    /// Dropped on an error, which cancels the downloads still running (a partial file is
    /// removed with its `Pending`).
    running: tokio::task::JoinSet<anyhow::Result<(usize, AttachmentEntry)>>,
}

impl Fetching {
    /// The attachments of one record: those the store holds at once, the others started.
    async fn record(&mut self, rec: &Json) -> anyhow::Result<()> {
        let job = self.job.clone();
        let rec_id = rec.get("id").and_then(Json::as_str).unwrap_or_default();
        for (fid, fname) in &job.fields {
            let Some(items) = rec
                .get("fields")
                .and_then(|f| f.get(fid.as_str()))
                .and_then(Json::as_array)
            else {
                continue;
            };
            for item in items {
                let Some(att) = item.get("id").and_then(Json::as_str) else {
                    continue;
                };
                if !self.done.insert(att.to_string()) {
                    continue;
                }
                let place = self.done.len();
                if let Some(e) = job.have.get(att) {
                    self.out.push((place, e.clone()));
                    continue;
                }
                while self.running.len() >= AT_ONCE {
                    self.take_one().await?;
                }
                let want = Want {
                    place,
                    rec: rec_id.to_string(),
                    fid: fid.clone(),
                    att: att.to_string(),
                    url: item
                        .get("url")
                        .and_then(Json::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    what: format!(
                        "Airtable base {}, table {:?}, record {rec_id}, field {fname:?}, attachment {att}",
                        job.client.base, job.table_name
                    ),
                };
                self.running
                    .spawn(one(job.clone(), self.http.clone(), want));
            }
        }
        Ok(())
    }

    async fn take_one(&mut self) -> anyhow::Result<()> {
        if let Some(joined) = self.running.join_next().await {
            let entry =
                joined.map_err(|e| anyhow::anyhow!("an attachment download failed: {e}"))??;
            self.out.push(entry);
        }
        Ok(())
    }

    async fn finish(mut self) -> anyhow::Result<Vec<AttachmentEntry>> {
        while !self.running.is_empty() {
            self.take_one().await?;
        }
        self.out.sort_by_key(|(place, _)| *place);
        Ok(self.out.into_iter().map(|(_, e)| e).collect())
    }
}

/// One attachment to download, and where it goes in the table's list.
struct Want {
    place: usize,
    rec: String,
    fid: String,
    att: String,
    url: String,
    /// Names it in messages.
    what: String,
}

/// Download one attachment (reading its record again for a fresh URL if it expired) and
/// note it in the store.
async fn one(
    job: Arc<Job>,
    http: reqwest::Client,
    w: Want,
) -> anyhow::Result<(usize, AttachmentEntry)> {
    let entry = match download(&http, &job.store, &w.att, &w.url).await {
        Ok(e) => e,
        Err(Failed::Expired) => {
            let fresh = fresh_url(&job, &w.rec, &w.fid, &w.att, &w.what).await?;
            match download(&http, &job.store, &w.att, &fresh).await {
                Ok(e) => e,
                Err(f) => return Err(f.into_error(&w.what)),
            }
        }
        Err(f) => return Err(f.into_error(&w.what)),
    };
    job.store
        .record(&entry)
        .map_err(|e| anyhow::anyhow!("{}: cannot note the downloaded file: {e}", w.what))?;
    Ok((w.place, entry))
}

enum Failed {
    /// 403 or 410: the URL is no longer valid.
    Expired,
    Other(String),
}

impl Failed {
    fn into_error(self, what: &str) -> anyhow::Error {
        match self {
            Failed::Expired => crate::error::unavailable(format!(
                "{what}: its download URL was refused even when fresh (403); run the export again"
            )),
            Failed::Other(why) => crate::error::unavailable(format!(
                "{what}: cannot download it: {why}; run the export again (files already \
                 downloaded are kept)"
            )),
        }
    }
}

/// Fetch `url` into the store, retrying a broken transfer a few times.
async fn download(
    http: &reqwest::Client,
    store: &Store,
    att: &str,
    url: &str,
) -> Result<AttachmentEntry, Failed> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(Failed::Other(format!(
            "its URL {url:?} is not an http(s) URL"
        )));
    }
    let mut last = String::new();
    for attempt in 0..4u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        let mut resp = match http.get(url).send().await {
            Ok(r) => r,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        match resp.status().as_u16() {
            200 => {}
            403 | 410 => return Err(Failed::Expired),
            s @ (429 | 500 | 502 | 503 | 504) => {
                last = format!("HTTP {s}");
                continue;
            }
            s => return Err(Failed::Other(format!("HTTP {s}"))),
        }
        let mut pending = match store.begin() {
            Ok(p) => p,
            Err(e) => return Err(Failed::Other(format!("cannot write the file: {e}"))),
        };
        let mut broken = None;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if let Err(e) = pending.write(&chunk) {
                        return Err(Failed::Other(format!("cannot write the file: {e}")));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    broken = Some(e.to_string());
                    break;
                }
            }
        }
        if let Some(b) = broken {
            // The partial file goes with `pending`; try again.
            last = b;
            continue;
        }
        return match pending.commit() {
            Ok((sha256, size)) => Ok(AttachmentEntry {
                id: att.to_string(),
                file: file_for(&sha256),
                sha256,
                size,
            }),
            Err(e) => Err(Failed::Other(format!("cannot write the file: {e}"))),
        };
    }
    Err(Failed::Other(format!("{last}, after 4 tries")))
}

/// A fresh download URL for attachment `att` of record `rec`: the record read again.
async fn fresh_url(
    job: &Job,
    rec: &str,
    fid: &str,
    att: &str,
    what: &str,
) -> anyhow::Result<String> {
    let path = format!("/v0/{}/{}", job.client.base, job.table_id);
    let formula = format!("RECORD_ID()='{}'", rec.replace('\'', ""));
    let query = [
        ("filterByFormula", formula.as_str()),
        ("returnFieldsByFieldId", "true"),
        ("fields[]", fid),
    ];
    let ask = format!("{what}: reading the record again for a fresh download URL");
    let body = job
        .client
        .get(&path, &query, &ask)
        .await
        .map_err(|e| match e {
            CallError::Fatal(e) => e,
            CallError::IteratorExpired => anyhow::anyhow!("{ask}: the iterator expired"),
        })?;
    body.get("records")
        .and_then(Json::as_array)
        .and_then(|rs| rs.first())
        .and_then(|r| r.get("fields"))
        .and_then(|f| f.get(fid))
        .and_then(Json::as_array)
        .and_then(|items| {
            items
                .iter()
                .find(|i| i.get("id").and_then(Json::as_str) == Some(att))
        })
        .and_then(|i| i.get("url"))
        .and_then(Json::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            crate::error::unavailable(format!(
                "{what}: its URL expired and the record no longer holds it (deleted or changed \
                 since it was read): run the export again"
            ))
        })
}
