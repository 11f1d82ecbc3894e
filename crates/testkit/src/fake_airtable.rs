//! An in-process fake of the Airtable API, for tests, the demo and the benchmark: the
//! metadata endpoint and list records as GET and as POST `…/listRecords` (pageSize, opaque
//! `itr…/rec…` offsets, `fields[]` by name or id, `returnFieldsByFieldId`, `view`,
//! `filterByFormula` for the formulas in `formula`, maxRecords, empty values omitted), as
//! documented at https://airtable.com/developers/web/api/list-records; bearer-token checks;
//! the per-base limit of 5 requests in any rolling second, counted when a request *arrives*
//! (after the network delay and its jitter), with the base then locked (30 s by default), as
//! https://airtable.com/developers/web/api/rate-limits says; Airtable's error shapes; and
//! fault injection (503s, 500/502/504 with HTML bodies, expired iterators, a malformed body,
//! a dropped connection, latency, the billing limit, an offset that never advances, a body
//! that never ends, a field renamed mid-run, a 401 at a given page, offsets that expire after
//! a while). Attachments are served at download URLs of their own (no token, outside the rate
//! limit) that expire as Airtable's do (403 after `attachment_ttl`), a fresh one in every
//! listing. The webhooks API (create, list payloads from a cursor, refresh) reports the
//! records created, changed and deleted through [`FakeAirtable::change_record`],
//! [`FakeAirtable::create_record`] and [`FakeAirtable::delete_record`], as
//! https://airtable.com/developers/web/api/webhooks-overview describes.
//!
//! It is hand-rolled HTTP/1.1 on tokio (`wire`): a few hundred lines, no new dependency,
//! and full control over the byte stream, which a "drop the connection mid-body" fault
//! needs. It runs on its own thread and runtime so a test can be plain synchronous code.

mod formula;
mod wire;

pub use formula::Formula;

use serde_json::{Value as Json, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use wire::{Reply, serve};

/// Added latency before each answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    None,
    Fixed(Duration),
    /// Uniform in [low, high].
    Uniform(Duration, Duration),
}

/// Faults to inject. Request numbers count every request the server receives, from 1.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Fraction (0..1) of list requests answered 503 at random.
    pub fail_fraction: f64,
    /// Answer this many 503s in a row to list requests, starting at request number `.0`.
    pub burst_503: Option<(u64, u32)>,
    /// Expire the iterator (422 LIST_RECORDS_ITERATOR_NOT_AVAILABLE) once, when this table
    /// (name) asks for this page (2 = the first request with an offset).
    pub expire_iterator: Option<(String, u32)>,
    /// Answer request number N with a 200 whose body is not valid JSON (once).
    pub malformed_at: Option<u64>,
    /// Answer request number N with headers and half the body, then close (once).
    pub drop_at: Option<u64>,
    /// Lock the base at request number N as if another client had tripped the limit.
    pub force_429_at: Option<u64>,
    /// Answer every request with 429 PUBLIC_API_BILLING_LIMIT_EXCEEDED.
    pub billing_limit: bool,
    /// Field names the records endpoint answers with 422 UNKNOWN_FIELD_NAME (as after a
    /// rename between reading the metadata and the records).
    pub unknown_fields: Vec<String>,
    /// From request number `.0` on, answer list requests with these statuses in turn
    /// (500, 502, 504…), each with an HTML page as a proxy in front of the API sends.
    pub html_5xx: Option<(u64, Vec<u16>)>,
    /// At request number `.0`, rename field `.2` (a `fld…` id) of table `.1` (name) to `.3`,
    /// in the metadata and in every record, as a user editing the base would.
    pub rename_field_at: Option<(u64, String, String, String)>,
    /// Send `Retry-After: N` (seconds) with rate-limit 429s.
    pub retry_after: Option<u32>,
    /// For this table (name), answer the next `.1` requests that carry an offset with the
    /// same page and that same offset again, as a server whose iterator is stuck would
    /// (a client that follows it pages forever); then move on.
    pub repeat_offset: Option<(String, u32)>,
    /// Answer request number `.0` with a 200 whose body has no Content-Length and does not
    /// end (a records array that never closes) until `.1` bytes are sent or the client
    /// hangs up; then close.
    pub huge_body_at: Option<(u64, u64)>,
    /// Once, when this table (name) asks for this page (1 = the first), answer 401
    /// AUTHENTICATION_REQUIRED, as when the token is revoked mid-run: nothing retries that.
    pub fatal_at_page: Option<(String, u32)>,
    /// Offsets older than this answer 422 LIST_RECORDS_ITERATOR_NOT_AVAILABLE, as Airtable's
    /// do after a while (https://airtable.com/developers/web/api/list-records).
    pub iterator_ttl: Option<Duration>,
    /// Attachment ids whose download answers 404 (a file gone from the attachment host).
    pub missing_downloads: Vec<String>,
}

/// What the fake serves.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub base: String,
    pub token: String,
    /// Tables in metadata-API shape (`{"id","name","primaryFieldId","fields",…}`).
    pub tables: Vec<Json>,
    /// Records per table id, each `{"id","createdTime","fields"}`.
    pub records: HashMap<String, Vec<Json>>,
    /// Requests per rolling second before the base locks (`None`: no limit).
    pub rate_limit: Option<u32>,
    /// How long the base stays locked after the limit is exceeded.
    pub lock: Duration,
    /// The way to the server: a request is counted when it arrives, after this. Arrival
    /// jitter is a `Latency::Uniform` here (0–100 ms: requests sent evenly arrive bunched).
    pub network: Latency,
    /// From arrival to the answer: the server's work and the way back.
    pub latency: Latency,
    /// Views per table id: a view is a name, an id and the formula its filter amounts to
    /// (`"TRUE()"` for all records).
    pub views: HashMap<String, Vec<FakeView>>,
    pub faults: Faults,
    /// Attachment files by attachment id (`att…`). Records that hold these ids in an
    /// attachment field are served with a fresh download URL for each, as Airtable does; the
    /// URL answers the bytes, without a token, until it expires.
    pub attachments: HashMap<String, Vec<u8>>,
    /// How long a download URL works (Airtable: a couple of hours,
    /// https://support.airtable.com/docs/airtable-attachment-url-behavior); after that it
    /// answers 403.
    pub attachment_ttl: Duration,
}

/// A view of a table, as far as listing records goes: which records it shows.
#[derive(Debug, Clone)]
pub struct FakeView {
    pub id: String,
    pub name: String,
    pub formula: String,
}

impl FakeConfig {
    /// An empty base.
    pub fn new(base: &str, token: &str) -> FakeConfig {
        FakeConfig {
            base: base.to_string(),
            token: token.to_string(),
            tables: Vec::new(),
            records: HashMap::new(),
            rate_limit: Some(5),
            lock: Duration::from_secs(30),
            network: Latency::None,
            latency: Latency::None,
            views: HashMap::new(),
            faults: Faults::default(),
            attachments: HashMap::new(),
            attachment_ttl: Duration::from_secs(2 * 3600),
        }
    }

    /// A recorded base: `meta.json` (the metadata response) and `{Table name}.json` (an
    /// array of records) per table. Each attachment in the records is served as
    /// [`file_bytes`] of its `size`.
    pub fn from_dir(dir: &Path, base: &str, token: &str) -> anyhow::Result<FakeConfig> {
        let read = |p: &Path| -> anyhow::Result<Json> {
            let text = std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
        };
        let meta = read(&dir.join("meta.json"))?;
        let mut config = FakeConfig::new(base, token);
        let tables = meta
            .get("tables")
            .and_then(Json::as_array)
            .ok_or_else(|| anyhow::anyhow!("{}: no tables", dir.display()))?;
        for t in tables {
            let name = t.get("name").and_then(Json::as_str).unwrap_or_default();
            let records = read(&dir.join(format!("{name}.json")))?;
            let records = records
                .as_array()
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("{name}.json is not an array of records"))?;
            for r in &records {
                for v in r
                    .get("fields")
                    .and_then(Json::as_object)
                    .into_iter()
                    .flat_map(|f| f.values())
                {
                    for a in v.as_array().into_iter().flatten() {
                        if let Some(id) = a.get("id").and_then(Json::as_str)
                            && id.starts_with("att")
                            && a.get("url").is_some()
                        {
                            let size = a.get("size").and_then(Json::as_u64).unwrap_or(1024);
                            config
                                .attachments
                                .insert(id.to_string(), file_bytes(id, size as usize));
                        }
                    }
                }
            }
            config = config.with_table(t.clone(), records);
        }
        Ok(config)
    }

    /// Add a view of table `table_id` showing the records `formula` matches; it is listed in
    /// the table's metadata too.
    pub fn with_view(mut self, table_id: &str, name: &str, formula: &str) -> FakeConfig {
        let id = fake_id("viw", &format!("{table_id}/{name}"), 0);
        if let Some(t) = self
            .tables
            .iter_mut()
            .find(|t| t.get("id").and_then(Json::as_str) == Some(table_id))
        {
            let views = t
                .as_object_mut()
                .map(|o| o.entry("views").or_insert_with(|| json!([])));
            if let Some(Json::Array(v)) = views {
                v.push(json!({"id": id, "name": name, "type": "grid"}));
            }
        }
        self.views
            .entry(table_id.to_string())
            .or_default()
            .push(FakeView {
                id,
                name: name.to_string(),
                formula: formula.to_string(),
            });
        self
    }

    /// Add a table (metadata JSON) and its records.
    pub fn with_table(mut self, meta: Json, records: Vec<Json>) -> FakeConfig {
        let id = meta
            .get("id")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        self.tables.push(meta);
        self.records.insert(id, records);
        self
    }
}

/// A generated table of `n` records named `table`: fields Name (text), Number (integer),
/// Score (fraction), Done (checkbox, absent on odd rows), Tags (multiple select, absent
/// every third row), When (dateTime). Ids are deterministic.
pub fn synthetic(table: &str, n: usize) -> (Json, Vec<Json>) {
    let tid = fake_id("tbl", table, 0);
    let f = |name: &str| {
        fake_id(
            "fld",
            table,
            name.len() as u64 * 7919 + name.as_bytes()[0] as u64,
        )
    };
    let meta = json!({
        "id": tid, "name": table, "primaryFieldId": f("Name"),
        "fields": [
            {"id": f("Name"), "name": "Name", "type": "singleLineText"},
            {"id": f("Number"), "name": "Number", "type": "number", "options": {"precision": 0}},
            {"id": f("Score"), "name": "Score", "type": "number", "options": {"precision": 2}},
            {"id": f("Done"), "name": "Done", "type": "checkbox", "options": {"icon": "check", "color": "greenBright"}},
            {"id": f("Tags"), "name": "Tags", "type": "multipleSelects", "options": {"choices": [{"name": "a"}, {"name": "b"}]}},
            {"id": f("When"), "name": "When", "type": "dateTime", "options": {"timeZone": "utc"}}
        ],
        "views": [{"id": fake_id("viw", table, 1), "name": "Grid view", "type": "grid"}]
    });
    let records = (0..n)
        .map(|i| {
            let mut fields = serde_json::Map::new();
            fields.insert("Name".into(), json!(format!("{table} {i}")));
            fields.insert("Number".into(), json!(i));
            fields.insert("Score".into(), json!(i as f64 + 0.25));
            if i % 2 == 0 {
                fields.insert("Done".into(), json!(true));
            }
            if i % 3 != 0 {
                fields.insert("Tags".into(), json!(["a", "b"]));
            }
            fields.insert(
                "When".into(),
                json!(format!(
                    "2024-05-01T10:{:02}:{:02}.000Z",
                    (i / 60) % 60,
                    i % 60
                )),
            );
            json!({
                "id": fake_id("rec", table, i as u64),
                "createdTime": "2024-05-01T10:00:00.000Z",
                "fields": fields,
            })
        })
        .collect();
    (meta, records)
}

/// The bytes the fake serves for a recorded attachment: `size` bytes derived from its id
/// (the recording keeps the records, not the files).
pub fn file_bytes(id: &str, size: usize) -> Vec<u8> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..size)
        .map(|_| {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            (h >> 24) as u8
        })
        .collect()
}

/// A 17-character Airtable-style id (`prefix` + 14 letters/digits) derived from a seed.
pub fn fake_id(prefix: &str, seed: &str, n: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes().chain(n.to_le_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = String::with_capacity(17);
    out.push_str(prefix);
    for _ in 0..14 {
        h ^= h >> 29;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 32;
        out.push(ALPHABET[(h % ALPHABET.len() as u64) as usize] as char);
    }
    out
}

/// What the fake saw.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FakeStats {
    pub requests: u64,
    /// 429 RATE_LIMIT_REACHED answers (billing-limit 429s are not counted).
    pub rate_limited: u64,
    /// The most requests that arrived within any rolling second.
    pub max_per_second: u32,
    /// List-records requests answered 200 (and webhook payload pages).
    pub pages: u64,
    /// Requests answered with an injected fault (503, 422 expiry, malformed, dropped).
    pub faults: u64,
    /// Times the base was locked for exceeding the rate limit (each lock answers many 429s).
    pub locks: u64,
    /// List requests sent as POST `…/listRecords`.
    pub posts: u64,
    /// List requests that asked for `returnFieldsByFieldId`.
    pub by_field_id: u64,
    /// List requests with a `filterByFormula`.
    pub filtered: u64,
    /// Bytes of the endless body sent so far (`Faults::huge_body_at`).
    pub huge_body_sent: u64,
    /// The endless body ended: the client hung up, or all of it was sent.
    pub huge_body_ended: bool,
    /// Attachment downloads answered with the file.
    pub downloads: u64,
    /// Attachment downloads refused because their URL had expired.
    pub expired_downloads: u64,
    /// Attachment downloads that carried an Authorization header (the token has no
    /// business there).
    pub downloads_with_token: u64,
    /// The most attachment downloads being answered at one moment.
    pub max_downloads_at_once: u32,
    /// The most API requests being answered at one moment (arrived, answer not yet sent).
    pub max_requests_at_once: u32,
}

/// A listing under way, as an offset names it.
struct Listing {
    table_id: String,
    /// Index into `selection` of the next page's first record.
    next: usize,
    /// When it was handed out.
    at: Instant,
    /// The positions (in the table's records) the listing's view and formula selected, and
    /// the `generation` they were selected in. Later pages reuse them rather than filter the
    /// whole table again, so that the fake's own work per page does not grow with the table
    /// (it would add a delay that varies with the load, which the real service does not
    /// show and which would hide what a test measures).
    selection: std::sync::Arc<Vec<usize>>,
    generation: u64,
    /// The view and formula the selection is for.
    filters: (Option<String>, Option<String>),
}

struct State {
    config: FakeConfig,
    stats: FakeStats,
    window: VecDeque<Instant>,
    locked_until: Option<Instant>,
    /// Live iterators by id.
    iterators: HashMap<String, Listing>,
    /// Bumped by every change to the records or the configuration: a listing's selection
    /// is reused only while this has not moved.
    generation: u64,
    fatal_done: bool,
    next_iterator: u64,
    burst_left: u32,
    html_left: VecDeque<u16>,
    expired_done: bool,
    repeats_done: u32,
    rng: u64,
    /// Webhooks by id, each with every payload it collected (cursor n is payloads[n - 1]).
    webhooks: Vec<(String, Vec<Json>)>,
    transaction: u64,
    /// When the server started: download URLs carry their issue time relative to it.
    started: Instant,
    /// `http://127.0.0.1:PORT`, for the download URLs it hands out.
    url: String,
}

/// A running fake server; stops when dropped.
pub struct FakeAirtable {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    at_once: Arc<wire::AtOnce>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeAirtable {
    /// Start serving on 127.0.0.1 (a free port). Returns the API root URL
    /// (`http://127.0.0.1:PORT`) and the handle.
    pub fn start(config: FakeConfig) -> std::io::Result<(String, FakeAirtable)> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            config,
            stats: FakeStats::default(),
            window: VecDeque::new(),
            locked_until: None,
            iterators: HashMap::new(),
            generation: 0,
            next_iterator: 1,
            burst_left: 0,
            html_left: VecDeque::new(),
            expired_done: false,
            fatal_done: false,
            repeats_done: 0,
            rng: 0x2545_F491_4F6C_DD1D,
            webhooks: Vec::new(),
            transaction: 1,
            started: Instant::now(),
            url: format!("http://{addr}"),
        }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let at_once = Arc::new(wire::AtOnce::default());
        let counts = at_once.clone();
        // Several threads, so that one request's work (a formula over a large table) does
        // not hold up reading and counting the others, as it would not at the service.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("fake-airtable")
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("fake-airtable".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(_) => return,
                    };
                    let accept = async {
                        loop {
                            if let Ok((stream, _)) = listener.accept().await {
                                let (st, counts) = (st.clone(), counts.clone());
                                tokio::spawn(async move {
                                    let _ = serve(stream, st, counts).await;
                                });
                            }
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = rx => {}
                    }
                });
            })?;
        let url = format!("http://{addr}");
        Ok((
            url,
            FakeAirtable {
                addr,
                state,
                at_once,
                shutdown: Some(tx),
                thread: Some(thread),
            },
        ))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> FakeStats {
        let mut stats = self.lock().stats;
        (stats.max_requests_at_once, stats.max_downloads_at_once) = self.at_once.peaks();
        stats
    }

    /// When the latest request arrived (was counted against the rate limit), if one has in
    /// the last two seconds.
    pub fn last_arrival(&self) -> Option<Instant> {
        self.lock().window.back().copied()
    }

    /// Start the `max_…_at_once` stats afresh, to see what one later command does.
    pub fn reset_peaks(&self) {
        self.at_once.reset_peaks();
    }

    /// Change fields of record `rec` of table `table_id` (`null` clears one), as a user
    /// editing the base would; every webhook gets the change as a payload.
    pub fn change_record(&self, table_id: &str, rec: &str, fields: Json) {
        let mut st = self.lock();
        st.generation += 1;
        let mut ids = HashMap::new();
        if let Some(r) = st
            .config
            .records
            .get_mut(table_id)
            .and_then(|rs| rs.iter_mut().find(|r| r["id"] == rec))
            && let (Some(f), Some(new)) = (r["fields"].as_object_mut(), fields.as_object())
        {
            for (k, v) in new {
                if v.is_null() {
                    f.remove(k);
                } else {
                    f.insert(k.clone(), v.clone());
                }
                ids.insert(k.clone(), v.clone());
            }
        }
        let by_id = field_ids(&st.config, table_id, &ids);
        let change =
            json!({"changedRecordsById": {rec: {"current": {"cellValuesByFieldId": by_id}}}});
        push_payload(&mut st, table_id, change);
    }

    /// Add a record (`{"id","createdTime","fields"}`) to table `table_id`.
    pub fn create_record(&self, table_id: &str, record: Json) {
        let mut st = self.lock();
        st.generation += 1;
        let id = record["id"].as_str().unwrap_or_default().to_string();
        let fields: HashMap<String, Json> = record["fields"]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let by_id = field_ids(&st.config, table_id, &fields);
        let change = json!({"createdRecordsById": {id: {
            "createdTime": record["createdTime"], "cellValuesByFieldId": by_id}}});
        st.config
            .records
            .entry(table_id.to_string())
            .or_default()
            .push(record);
        push_payload(&mut st, table_id, change);
    }

    /// Delete record `rec` of table `table_id`.
    pub fn delete_record(&self, table_id: &str, rec: &str) {
        let mut st = self.lock();
        st.generation += 1;
        if let Some(rs) = st.config.records.get_mut(table_id) {
            rs.retain(|r| r["id"] != rec);
        }
        push_payload(&mut st, table_id, json!({"destroyedRecordIds": [rec]}));
    }

    /// Change the configuration (faults, lock, latency…) while running.
    pub fn configure(&self, f: impl FnOnce(&mut FakeConfig)) {
        let mut st = self.lock();
        st.generation += 1;
        f(&mut st.config);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeAirtable {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn next_random(s: &mut u64) -> f64 {
    let mut x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn err(status: u16, kind: &str, message: &str) -> Reply {
    Reply::Json(
        status,
        json!({"error": {"type": kind, "message": message}}),
        None,
    )
}

/// Answer a request that arrived at `now`. Arrivals are counted at that moment even when
/// another request's work held the state until later: the service counts a request as it
/// arrives, whatever else it is busy with.
fn handle(
    st: &mut State,
    now: Instant,
    method: &str,
    target: &str,
    auth: Option<&str>,
    body: &[u8],
) -> Reply {
    st.stats.requests += 1;
    let n = st.stats.requests;
    // Every arrival counts in the rolling window, answered or not: kept in order of arrival
    // (a request handled late arrived before the ones already counted), for two seconds.
    let at = st.window.partition_point(|t| *t <= now);
    st.window.insert(at, now);
    while st
        .window
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(2))
    {
        st.window.pop_front();
    }
    // The arrivals in the second up to this one, this one included.
    let in_window = st
        .window
        .iter()
        .filter(|t| **t <= now && now.duration_since(**t) < Duration::from_secs(1))
        .count() as u32;
    st.stats.max_per_second = st.stats.max_per_second.max(in_window);

    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    // Attachment downloads are another host's (airtableusercontent.com): no token, no
    // base rate limit.
    if let Some(rest) = path.strip_prefix("/dl/") {
        st.stats.requests -= 1;
        st.window.remove(at);
        return download(st, rest, auth.is_some());
    }
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    if method != "GET" && method != "POST" {
        return Reply::Json(404, json!({"error": "NOT_FOUND"}), None);
    }
    let expected = format!("Bearer {}", st.config.token);
    if auth != Some(expected.as_str()) {
        return err(401, "AUTHENTICATION_REQUIRED", "Authentication required");
    }
    if st.config.faults.billing_limit {
        return Reply::Json(
            429,
            json!({"errors": [{"error": "PUBLIC_API_BILLING_LIMIT_EXCEEDED", "message": "You have exceeded the monthly API call limit for this workspace."}]}),
            None,
        );
    }
    // The per-base rate limit and its lock.
    let rate_limited = |st: &mut State| {
        st.stats.rate_limited += 1;
        Reply::Json(
            429,
            json!({"errors": [{"error": "RATE_LIMIT_REACHED", "message": "Rate limit exceeded. Please try again later"}]}),
            st.config.faults.retry_after,
        )
    };
    if st.locked_until.is_some_and(|t| t > now) {
        return rate_limited(st);
    }
    if st.config.faults.force_429_at == Some(n)
        || st.config.rate_limit.is_some_and(|limit| in_window > limit)
    {
        st.locked_until = Some(now + st.config.lock);
        st.stats.locks += 1;
        return rate_limited(st);
    }
    if let Some((at, ref table, ref field, ref to)) = st.config.faults.rename_field_at
        && at == n
    {
        let (table, field, to) = (table.clone(), field.clone(), to.clone());
        rename_field(&mut st.config, &table, &field, &to);
        st.generation += 1;
    }

    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method, seg.as_slice()) {
        ("GET", ["v0", "meta", "bases", base, "tables"]) => {
            if *base != st.config.base {
                return err(
                    403,
                    "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
                    "Invalid permissions, or the requested model was not found.",
                );
            }
            Reply::Json(200, json!({"tables": st.config.tables}), None)
        }
        (_, ["v0", "bases", base, "webhooks", rest @ ..]) => {
            if *base != st.config.base {
                return err(
                    403,
                    "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
                    "Invalid permissions, or the requested model was not found.",
                );
            }
            let rest: Vec<&str> = rest.to_vec();
            webhooks(st, method, &rest, query)
        }
        ("GET", ["v0", base, table]) | ("POST", ["v0", base, table, "listRecords"]) => {
            if *base != st.config.base {
                return err(
                    403,
                    "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
                    "Invalid permissions, or the requested model was not found.",
                );
            }
            let params = if method == "POST" {
                st.stats.posts += 1;
                match serde_json::from_slice::<Json>(body) {
                    Ok(j) => Params::from_body(&j),
                    Err(e) => Err(format!("the request body is not JSON: {e}")),
                }
            } else {
                Params::from_query(query)
            };
            match params {
                Ok(p) => list(st, n, table, p),
                Err(why) => err(422, "INVALID_REQUEST_UNKNOWN", &why),
            }
        }
        _ => Reply::Json(404, json!({"error": "NOT_FOUND"}), None),
    }
}

/// The list-records parameters, from a GET query or a POST body.
#[derive(Debug, Default)]
struct Params {
    page_size: Option<usize>,
    offset: Option<String>,
    fields: Vec<String>,
    max_records: Option<usize>,
    view: Option<String>,
    formula: Option<String>,
    by_field_id: bool,
}

impl Params {
    fn from_query(query: &str) -> Result<Params, String> {
        let mut p = Params::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (percent_decode(k), percent_decode(v));
            match k.as_str() {
                "pageSize" => {
                    p.page_size = Some(v.parse::<usize>().map_err(|_| "Invalid pageSize")?)
                }
                "offset" => p.offset = Some(v),
                "fields[]" | "fields" => p.fields.push(v),
                "maxRecords" => p.max_records = v.parse::<usize>().ok(),
                "view" => p.view = Some(v),
                "filterByFormula" => p.formula = Some(v),
                "returnFieldsByFieldId" => p.by_field_id = v == "true" || v == "1",
                _ => {}
            }
        }
        Ok(p)
    }

    fn from_body(j: &Json) -> Result<Params, String> {
        let obj = j.as_object().ok_or("the request body is not an object")?;
        let text = |k: &str| -> Result<Option<String>, String> {
            match obj.get(k) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("{k} must be a string")),
            }
        };
        let number = |k: &str| -> Result<Option<usize>, String> {
            match obj.get(k) {
                None | Some(Json::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(|n| Some(n as usize))
                    .ok_or(format!("Invalid {k}")),
            }
        };
        let fields = match obj.get("fields") {
            None => Vec::new(),
            Some(Json::Array(a)) => a
                .iter()
                .map(|f| {
                    f.as_str()
                        .map(str::to_string)
                        .ok_or("fields must be strings")
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("fields must be an array".into()),
        };
        Ok(Params {
            page_size: number("pageSize")?,
            offset: text("offset")?,
            fields,
            max_records: number("maxRecords")?,
            view: text("view")?,
            formula: text("filterByFormula")?,
            by_field_id: obj
                .get("returnFieldsByFieldId")
                .and_then(Json::as_bool)
                .unwrap_or(false),
        })
    }
}

/// Rename field `field_id` of the table named `table` to `to`, in its metadata and records.
fn rename_field(config: &mut FakeConfig, table: &str, field_id: &str, to: &str) {
    let Some(meta) = config
        .tables
        .iter_mut()
        .find(|t| t.get("name").and_then(Json::as_str) == Some(table))
    else {
        return;
    };
    let table_id = meta["id"].as_str().unwrap_or_default().to_string();
    let mut from = None;
    if let Some(fields) = meta.get_mut("fields").and_then(Json::as_array_mut) {
        for f in fields {
            if f.get("id").and_then(Json::as_str) == Some(field_id) {
                from = f.get("name").and_then(Json::as_str).map(str::to_string);
                f["name"] = json!(to);
            }
        }
    }
    let Some(from) = from else { return };
    for r in config.records.get_mut(&table_id).into_iter().flatten() {
        if let Some(obj) = r.get_mut("fields").and_then(Json::as_object_mut)
            && let Some(v) = obj.remove(&from)
        {
            obj.insert(to.to_string(), v);
        }
    }
}

/// Field values by field id, as webhook payloads give them.
fn field_ids(config: &FakeConfig, table_id: &str, fields: &HashMap<String, Json>) -> Json {
    let meta = config.tables.iter().find(|t| t["id"] == table_id);
    let mut out = serde_json::Map::new();
    for (name, v) in fields {
        let id = meta
            .and_then(|m| m["fields"].as_array())
            .and_then(|fs| fs.iter().find(|f| f["name"] == name.as_str()))
            .and_then(|f| f["id"].as_str())
            .unwrap_or(name);
        out.insert(id.to_string(), v.clone());
    }
    Json::Object(out)
}

/// One payload (one transaction touching `table_id`) for every webhook, in the documented
/// shape (https://airtable.com/developers/web/api/model/webhooks-payload).
fn push_payload(st: &mut State, table_id: &str, change: Json) {
    st.transaction += 1;
    let payload = json!({
        "timestamp": "2024-05-01T10:00:00.000Z",
        "baseTransactionNumber": st.transaction,
        "actionMetadata": {"source": "client", "sourceMetadata": {}},
        "payloadFormat": "v0",
        "changedTablesById": {table_id: change},
    });
    for (_, payloads) in &mut st.webhooks {
        payloads.push(payload.clone());
    }
}

/// The webhooks API (https://airtable.com/developers/web/api/webhooks-overview): create a
/// webhook (no notificationUrl: polled), list its payloads from a cursor (at most 50 a
/// page), refresh it.
fn webhooks(st: &mut State, method: &str, rest: &[&str], query: &str) -> Reply {
    match (method, rest) {
        ("POST", []) => {
            let id = fake_id("ach", &st.config.base, st.webhooks.len() as u64);
            st.webhooks.push((id.clone(), Vec::new()));
            Reply::Json(
                200,
                json!({"id": id, "macSecretBase64": "c2VjcmV0", "expirationTime": "2024-05-08T10:00:00.000Z"}),
                None,
            )
        }
        ("POST", [id, "refresh"]) if st.webhooks.iter().any(|(w, _)| w == id) => Reply::Json(
            200,
            json!({"expirationTime": "2024-05-08T10:00:00.000Z"}),
            None,
        ),
        ("GET", [id, "payloads"]) => {
            let Some((_, payloads)) = st.webhooks.iter().find(|(w, _)| w == id) else {
                return err(404, "NOT_FOUND", "Could not find webhook");
            };
            let mut cursor = 1usize;
            let mut limit = 50usize;
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                match k {
                    "cursor" => cursor = v.parse().unwrap_or(1),
                    "limit" => limit = v.parse().unwrap_or(50).clamp(1, 50),
                    _ => {}
                }
            }
            let start = cursor.max(1) - 1;
            let page: Vec<Json> = payloads.iter().skip(start).take(limit).cloned().collect();
            let next = start + page.len() + 1;
            st.stats.pages += 1;
            Reply::Json(
                200,
                json!({"payloads": page, "cursor": next, "mightHaveMore": next <= payloads.len()}),
                None,
            )
        }
        _ => err(404, "NOT_FOUND", "Could not find webhook"),
    }
}

/// `/dl/{issued ms}/{att id}/{file name}`: the file while the URL is fresh, else 403.
fn download(st: &mut State, rest: &str, with_token: bool) -> Reply {
    if with_token {
        st.stats.downloads_with_token += 1;
    }
    let mut parts = rest.splitn(3, '/');
    let issued: Option<u64> = parts.next().and_then(|t| t.parse().ok());
    let id = parts.next().unwrap_or_default();
    let gone = st.config.faults.missing_downloads.iter().any(|m| m == id);
    let (Some(issued), Some(bytes), false) = (issued, st.config.attachments.get(id), gone) else {
        return Reply::Html(404, "<Error><Code>NoSuchKey</Code></Error>".to_string());
    };
    let age = (st.started.elapsed().as_millis() as u64).saturating_sub(issued);
    if age > st.config.attachment_ttl.as_millis() as u64 {
        st.stats.expired_downloads += 1;
        return Reply::Html(
            403,
            "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
                .to_string(),
        );
    }
    st.stats.downloads += 1;
    Reply::Raw(200, bytes.clone())
}

/// A cell value as served: attachments the fake holds get a fresh download URL.
fn with_fresh_urls(st: &State, v: &Json) -> Json {
    let Some(items) = v.as_array() else {
        return v.clone();
    };
    let now = st.started.elapsed().as_millis();
    Json::Array(
        items
            .iter()
            .map(|a| {
                let mut a = a.clone();
                let id = a.get("id").and_then(Json::as_str).map(str::to_string);
                if let Some(id) = id
                    && st.config.attachments.contains_key(&id)
                {
                    let name = a
                        .get("filename")
                        .and_then(Json::as_str)
                        .unwrap_or("file")
                        .replace(['/', '?', '#', '%', ' '], "_");
                    a["url"] = json!(format!("{}/dl/{now}/{id}/{name}", st.url));
                }
                a
            })
            .collect(),
    )
}

fn list(st: &mut State, n: u64, table: &str, params: Params) -> Reply {
    let Some(meta) = st
        .config
        .tables
        .iter()
        .find(|t| {
            t.get("id").and_then(Json::as_str) == Some(table)
                || t.get("name").and_then(Json::as_str) == Some(table)
        })
        .cloned()
    else {
        return err(
            403,
            "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
            "Invalid permissions, or the requested model was not found. Check that both your user and your token have the required permissions, and that the model names and/or ids are correct.",
        );
    };
    let table_id = meta
        .get("id")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let table_name = meta
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let page_size = match params.page_size {
        None => 100,
        Some(p) if (1..=100).contains(&p) => p,
        Some(_) => return err(422, "INVALID_REQUEST_UNKNOWN", "Invalid pageSize"),
    };
    let Params {
        offset,
        fields,
        max_records,
        view,
        formula,
        by_field_id,
        ..
    } = params;
    if by_field_id {
        st.stats.by_field_id += 1;
    }
    // The view's filter and the formula, both applied (as the API does).
    let mut filters = Vec::new();
    if let Some(v) = &view {
        let found = st
            .config
            .views
            .get(&table_id)
            .and_then(|vs| vs.iter().find(|x| x.id == *v || x.name == *v));
        match found.map(|x| Formula::parse(&x.formula)) {
            Some(Ok(f)) => filters.push(f),
            Some(Err(e)) => return err(422, "INVALID_FILTER_BY_FORMULA", &e),
            None => {
                return err(
                    422,
                    "VIEW_NAME_NOT_FOUND",
                    &format!("Could not find view {v:?} in table {table_name:?}"),
                );
            }
        }
    }
    if let Some(text) = &formula {
        st.stats.filtered += 1;
        match Formula::parse(text) {
            Ok(f) => filters.push(f),
            Err(e) => {
                return err(
                    422,
                    "INVALID_FILTER_BY_FORMULA",
                    &format!("The formula for filtering records is invalid: {e}"),
                );
            }
        }
    }
    // Field names (or ids) must exist.
    let known: Vec<(String, String)> = meta
        .get("fields")
        .and_then(Json::as_array)
        .map(|fs| {
            fs.iter()
                .map(|f| {
                    (
                        f.get("id")
                            .and_then(Json::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        f.get("name")
                            .and_then(Json::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let id_of = |name: &str| {
        known
            .iter()
            .find(|(_, n)| n == name)
            .map_or_else(|| name.to_string(), |(id, _)| id.clone())
    };
    let mut wanted_names = Vec::new();
    for f in &fields {
        match known.iter().find(|(id, name)| id == f || name == f) {
            Some((_, name)) if !st.config.faults.unknown_fields.contains(name) => {
                wanted_names.push(name.clone())
            }
            _ => {
                return err(
                    422,
                    "UNKNOWN_FIELD_NAME",
                    &format!("Unknown field name: \"{f}\""),
                );
            }
        }
    }
    let filter_text = (view.clone(), formula.clone());
    let mut reused = None;
    let start = match &offset {
        None => 0,
        Some(o) => {
            let itr = o.split('/').next().unwrap_or_default();
            let ttl = st.config.faults.iterator_ttl;
            match st.iterators.get(itr) {
                Some(l) if l.table_id == table_id && ttl.is_some_and(|d| l.at.elapsed() > d) => {
                    st.stats.faults += 1;
                    return err(
                        422,
                        "LIST_RECORDS_ITERATOR_NOT_AVAILABLE",
                        "The iterator is not available. Restart the listing from the first page.",
                    );
                }
                Some(l) if l.table_id == table_id => {
                    if l.generation == st.generation && l.filters == filter_text {
                        reused = Some(l.selection.clone());
                    }
                    l.next
                }
                _ => {
                    return err(
                        422,
                        "INVALID_OFFSET_VALUE",
                        &format!("The value of offset {o:?} is invalid"),
                    );
                }
            }
        }
    };
    let page_number = (start / page_size) as u32 + 1;
    // Injected faults.
    let faults = st.config.faults.clone();
    if let Some((ref t, k)) = faults.expire_iterator
        && !st.expired_done
        && offset.is_some()
        && *t == table_name
        && page_number == k
    {
        st.expired_done = true;
        st.stats.faults += 1;
        if let Some(o) = &offset {
            st.iterators.remove(o.split('/').next().unwrap_or_default());
        }
        return err(
            422,
            "LIST_RECORDS_ITERATOR_NOT_AVAILABLE",
            "The iterator is not available. Restart the listing from the first page.",
        );
    }
    if let Some((ref t, k)) = faults.fatal_at_page
        && !st.fatal_done
        && *t == table_name
        && page_number == k
    {
        st.fatal_done = true;
        st.stats.faults += 1;
        return err(401, "AUTHENTICATION_REQUIRED", "Authentication required");
    }
    if let Some((at, count)) = faults.burst_503
        && n == at
    {
        st.burst_left = count;
    }
    if let Some((at, ref statuses)) = faults.html_5xx
        && n == at
    {
        st.html_left = statuses.iter().copied().collect();
    }
    if let Some(status) = st.html_left.pop_front() {
        st.stats.faults += 1;
        return Reply::Html(
            status,
            format!(
                "<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>{status}</h1></center>\r\n</body>\r\n</html>\r\n"
            ),
        );
    }
    if st.burst_left > 0 {
        st.burst_left -= 1;
        st.stats.faults += 1;
        return Reply::Json(503, json!({"error": "SERVICE_UNAVAILABLE"}), None);
    }
    if faults.fail_fraction > 0.0 && next_random(&mut st.rng) < faults.fail_fraction {
        st.stats.faults += 1;
        return Reply::Json(503, json!({"error": "SERVICE_UNAVAILABLE"}), None);
    }
    if faults.malformed_at == Some(n) {
        st.stats.faults += 1;
        return Reply::Raw(200, b"{\"records\":[{\"id\":\"rec".to_vec());
    }
    if let Some((at, max)) = faults.huge_body_at
        && at == n
    {
        st.stats.faults += 1;
        return Reply::Endless(max);
    }

    let every = st
        .config
        .records
        .get(&table_id)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let selection = match reused {
        Some(s) => s,
        None => {
            let mut selected = Vec::with_capacity(every.len());
            for (i, r) in every.iter().enumerate() {
                let mut keep = true;
                for f in &filters {
                    match f.matches(r) {
                        Ok(m) => keep &= m,
                        Err(e) => {
                            return err(
                                422,
                                "INVALID_FILTER_BY_FORMULA",
                                &format!("The formula for filtering records is invalid: {e}"),
                            );
                        }
                    }
                }
                if keep {
                    selected.push(i);
                }
            }
            std::sync::Arc::new(selected)
        }
    };
    let record = |k: usize| selection.get(k).and_then(|&i| every.get(i));
    let limit = max_records.unwrap_or(usize::MAX).min(selection.len());
    let end = (start + page_size).min(limit);
    let next_id = record(end)
        .and_then(|r| r.get("id"))
        .and_then(Json::as_str)
        .unwrap_or("rec")
        .to_string();
    let mut records = Vec::with_capacity(end.saturating_sub(start));
    for r in (start..end).filter_map(record) {
        let mut out = serde_json::Map::new();
        for key in ["id", "createdTime"] {
            if let Some(v) = r.get(key) {
                out.insert(key.to_string(), v.clone());
            }
        }
        let mut f = serde_json::Map::new();
        if let Some(obj) = r.get("fields").and_then(Json::as_object) {
            for (k, v) in obj {
                let empty = matches!(v, Json::Null | Json::Bool(false))
                    || v.as_str() == Some("")
                    || v.as_array().is_some_and(Vec::is_empty);
                if empty || (!wanted_names.is_empty() && !wanted_names.contains(k)) {
                    continue;
                }
                let key = if by_field_id { id_of(k) } else { k.clone() };
                f.insert(key, with_fresh_urls(st, v));
            }
        }
        out.insert("fields".to_string(), Json::Object(f));
        records.push(Json::Object(out));
    }
    let mut body = json!({ "records": records });
    if let Some((ref t, times)) = faults.repeat_offset
        && *t == table_name
        && st.repeats_done < times
        && let Some(o) = &offset
    {
        st.repeats_done += 1;
        st.stats.faults += 1;
        body["offset"] = json!(o);
    } else if end < limit {
        let itr = format!("itr{:014}", st.next_iterator);
        st.next_iterator += 1;
        let listing = Listing {
            table_id: table_id.clone(),
            next: end,
            at: Instant::now(),
            selection: selection.clone(),
            generation: st.generation,
            filters: filter_text,
        };
        st.iterators.insert(itr.clone(), listing);
        body["offset"] = json!(format!("{itr}/{next_id}"));
    }
    st.stats.pages += 1;
    if faults.drop_at == Some(n) {
        st.stats.faults += 1;
        st.stats.pages -= 1;
        return Reply::Drop(serde_json::to_vec(&body).unwrap_or_default());
    }
    Reply::Json(200, body, None)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(percent_decode("fields%5B%5D"), "fields[]");
        assert_eq!(percent_decode("Display+Name%C3%A9"), "Display Nameé");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn ids_look_like_airtable_ids() {
        let id = fake_id("rec", "Users", 3);
        assert_eq!(id.len(), 17);
        assert!(id[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(id, fake_id("rec", "Users", 4));
    }

    /// One GET on a kept-alive connection; the answer's status, once its body is read.
    fn get(stream: &mut std::net::TcpStream, token: &str, target: &str) -> u16 {
        use std::io::{BufRead, BufReader, Read, Write};
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nhost: fake\r\nauthorization: Bearer {token}\r\n\r\n"
        )
        .unwrap();
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut length = 0;
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        r.read_exact(&mut body).unwrap();
        status
    }

    #[test]
    fn a_request_arriving_while_another_is_worked_on_is_counted_when_it_arrives() {
        let (base, token) = ("appSlowWorkBase01", "patSLOW.token");
        let mut config = FakeConfig::new(base, token);
        // Each answer leaves 100 ms after its work: the first request's answer is sent while
        // the slow one's work holds the state.
        config.latency = Latency::Fixed(Duration::from_millis(100));
        let (meta, rows) = synthetic("Big", 30_000);
        let table = meta["id"].as_str().unwrap().to_string();
        let (_, fake) = FakeAirtable::start(config.with_table(meta, rows)).unwrap();
        let connect = || std::net::TcpStream::connect(fake.addr()).unwrap();
        let (mut a, mut b) = (connect(), connect());
        // A formula over every record: the slow request's work.
        let ids: Vec<String> = (0..50)
            .map(|i| format!("RECORD_ID()=%22{}%22", fake_id("rec", "none", i)))
            .collect();
        let slow = format!(
            "/v0/{base}/{table}?pageSize=1&filterByFormula=OR({})",
            ids.join(",")
        );
        let meta = format!("/v0/meta/bases/{base}/tables");
        let started = Instant::now();
        std::thread::scope(|s| {
            // Sent while the first request's answer waits out its 100 ms.
            let slow = s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                assert_eq!(get(&mut a, token, &slow), 200);
                Instant::now()
            });
            assert_eq!(get(&mut b, token, &meta), 200);
            // The next request on the same connection, sent while the slow one is worked on.
            let sent = Instant::now();
            assert_eq!(get(&mut b, token, &meta), 200);
            let slow_done = slow.join().unwrap();
            let arrived = fake.last_arrival().unwrap();
            assert!(
                slow_done.duration_since(sent) > Duration::from_millis(250),
                "the slow request's work ended {:?} after the next one was sent: too soon to \
                 show anything, make its table larger",
                slow_done.duration_since(sent)
            );
            assert!(
                arrived.saturating_duration_since(sent) < Duration::from_millis(50),
                "sent {:?} after the start, counted {:?} later",
                sent - started,
                arrived.saturating_duration_since(sent)
            );
        });
    }
}
