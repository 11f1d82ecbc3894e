//! HTTP to the Airtable API for one base: the bearer token, the pacing every request to the
//! base and the token goes through (`pace`, shared with other cutover processes by `shared`),
//! and the retry rules of Airtable's API documentation (wait out a 429, back off on 5xx
//! and broken connections, fail at once on what waiting cannot fix). A response body is
//! read as a stream and given up at a bound (`max_response_bytes`): a page holds at most 100
//! records, so a body far larger is a server gone wrong, not data to hold in memory.
//!
//! Why pacing by arrivals rather than a 5-per-second bucket: a bucket lets 5 go at once and
//! 5 more a moment later, which a rolling one-second window sees as 10, and a 429 locks the
//! base for 30 s; and requests sent evenly still arrive bunched when the network delays some
//! more than others (see `pace`).

use super::allowance::Allowance;
use super::pace::{self, Limit};
use super::shared::{self, Shared};
use serde_json::Value as Json;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// An Airtable personal access token. It is only ever sent in the `Authorization` header:
/// `Debug` and `Display` print `***`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// A token from a string (tests; the CLI uses [`Token::from_env_or_file`]).
    pub fn new(secret: impl Into<String>) -> Token {
        Token(secret.into().trim().to_string())
    }

    /// The token from `token_file` when given, else from `AIRTABLE_TOKEN`. Never from argv.
    pub fn from_env_or_file(token_file: Option<&Path>) -> anyhow::Result<Token> {
        let token = match token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    crate::error::usage(format!(
                        "cannot read the Airtable token file {}: {e}",
                        path.display()
                    ))
                })?;
                Token::new(text)
            }
            None => match std::env::var("AIRTABLE_TOKEN") {
                Ok(t) => Token::new(t),
                Err(_) => {
                    return Err(crate::error::usage(
                        "no Airtable token: set AIRTABLE_TOKEN or pass --token-file FILE \
                         (a personal access token with the scopes data.records:read and \
                         schema.bases:read)",
                    ));
                }
            },
        };
        if token.0.is_empty() {
            return Err(crate::error::usage("the Airtable token is empty"));
        }
        if token.0.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(crate::error::usage(
                "the Airtable token contains whitespace or control characters",
            ));
        }
        Ok(token)
    }

    pub(crate) fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to talk to the API. `Default` is what production wants.
#[derive(Debug, Clone)]
pub struct AirtableOptions {
    /// API root; `None` reads `AIRTABLE_API_URL`, else `https://api.airtable.com`.
    pub api_url: Option<String>,
    /// Requests per second to the base (Airtable allows 5).
    pub requests_per_second: f64,
    /// How much later than it was sent a request may reach the server (network jitter): a
    /// request's slot in the server's one-second window is held this much longer until its
    /// answer shows it arrived sooner.
    pub arrival_jitter: Duration,
    /// Requests per second per token, across bases (Airtable allows 50).
    pub token_requests_per_second: f64,
    /// Where the pacing files shared by cutover processes live; `None`: the default
    /// (`$XDG_RUNTIME_DIR/cutover`, else the user's cache directory).
    pub pace_dir: Option<PathBuf>,
    /// How long to wait after a 429 when the server sends no `Retry-After` (Airtable locks the
    /// base for 30 s).
    pub rate_limit_wait: Duration,
    /// Attempts per request for each kind of transient failure (429s and 5xx/network errors
    /// are counted separately).
    pub max_tries: u32,
    /// First backoff step for 5xx and network errors (doubles each try, full jitter).
    pub backoff_base: Duration,
    /// Largest backoff step.
    pub backoff_max: Duration,
    /// Whole request (connect to last body byte).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Times one table may be restarted after its iterator expired.
    pub max_restarts: u32,
    /// Per table (name or `tbl…` id): which records to list (the mapping's `view` and
    /// `filter`).
    pub selections: Vec<(String, crate::source::Selection)>,
    /// The most one response body may be. A page is at most 100 records (Airtable's
    /// `pageSize` limit), a few hundred kilobytes in practice, and a base's metadata a few
    /// megabytes.
    pub max_response_bytes: u64,
}

impl Default for AirtableOptions {
    fn default() -> Self {
        AirtableOptions {
            api_url: None,
            requests_per_second: 5.0,
            arrival_jitter: Duration::from_millis(100),
            token_requests_per_second: 50.0,
            pace_dir: None,
            rate_limit_wait: Duration::from_secs(30),
            max_tries: 6,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(20),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            max_restarts: 3,
            selections: Vec::new(),
            max_response_bytes: 64 << 20,
        }
    }
}

impl AirtableOptions {
    pub fn resolved_api_url(&self) -> String {
        let url = self
            .api_url
            .clone()
            .or_else(|| std::env::var("AIRTABLE_API_URL").ok())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "https://api.airtable.com".to_string());
        url.trim().trim_end_matches('/').to_string()
    }
}

/// Counters for one source (all its requests).
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub retries: AtomicU64,
    pub restarts: AtomicU64,
    pub pages: AtomicU64,
}

/// A snapshot of [`Counters`] plus the time spent extracting.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// HTTP requests sent (including the metadata request and every retry).
    pub requests: u64,
    /// 429 RATE_LIMIT_REACHED answers seen.
    pub rate_limited: u64,
    /// Requests repeated after a 429, a 5xx or a network/body error.
    pub retries: u64,
    /// Tables restarted from the first page after an expired iterator.
    pub restarts: u64,
    /// Record pages received.
    pub pages: u64,
    /// Records extracted.
    pub records: u64,
    /// Wall time of `prepare` (all tables, concurrently).
    pub extract_seconds: f64,
    /// Requests made during `prepare`.
    pub extract_requests: u64,
}

/// Why a call failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// 422 LIST_RECORDS_ITERATOR_NOT_AVAILABLE: restart the table.
    IteratorExpired,
    /// Anything else, already worded for the user.
    Fatal(anyhow::Error),
}

/// What one request came to.
enum Sent {
    /// Status, Retry-After and the parsed body.
    Answer(u16, Option<Duration>, Result<Json, String>),
    /// A transport error, worded and token-free: worth retrying.
    Broken(String),
    /// The body grew past `max_response_bytes`: reading stopped, and retrying will not help.
    TooLarge,
}

/// A request whose slot opens within this many seconds leaves now (less than the pacer's
/// guard, so it never leaves before the slot does).
const SOON: f64 = 0.0002;
/// The runtime's timer wakes a task up to a millisecond late (it counts whole milliseconds,
/// https://docs.rs/tokio/latest/tokio/time/fn.sleep.html); a thread's sleep (nanosleep(2))
/// is late by tens of microseconds. So a wait ends on the runtime's timer this long before
/// the slot opens, and the rest is slept on a blocking thread.
const FINE: f64 = 0.002;
/// The longest a waiting request goes without looking at the ledgers again (seconds):
/// another process's answers free slots too.
const RECHECK: f64 = 0.02;

/// A request's place in the pacing: its tickets in the base's and the token's ledgers.
struct Turn {
    base: u64,
    token: u64,
    sent: f64,
}

/// HTTP for one base.
pub(crate) struct Client {
    http: reqwest::Client,
    api: String,
    pub(crate) base: String,
    token: Token,
    /// The base's ledger and its limit (5 requests per second).
    base_pace: Shared,
    base_limit: Limit,
    /// The token's ledger, shared by every base it reads (50 requests per second).
    token_pace: Shared,
    token_limit: Limit,
    /// How late a request may arrive, from the round trips seen.
    allowance: Mutex<Allowance>,
    /// Woken whenever an answer comes back (a waiting request may go sooner) and whenever a
    /// waiting request leaves its place (the next in line may take the slot).
    answered: tokio::sync::Notify,
    /// The requests of this process waiting for a slot: (priority, arrival in line). An open
    /// slot goes to the smallest.
    waiting: Mutex<Vec<(u64, u64)>>,
    next_in_line: std::sync::atomic::AtomicU64,
    opts: AirtableOptions,
    pub(crate) counters: Counters,
    rng: Mutex<u64>,
}

impl Client {
    pub(crate) fn new(base: &str, token: Token, opts: AirtableOptions) -> anyhow::Result<Client> {
        let rps = if opts.requests_per_second.is_finite() && opts.requests_per_second > 0.0 {
            opts.requests_per_second
        } else {
            return Err(crate::error::usage(format!(
                "Airtable requests per second must be a positive number, not {}",
                opts.requests_per_second
            )));
        };
        let token_rps = opts.token_requests_per_second;
        if !(token_rps.is_finite() && token_rps > 0.0) {
            return Err(crate::error::usage(
                "Airtable requests per second per token must be a positive number",
            ));
        }
        let jitter = opts.arrival_jitter.as_secs_f64();
        let base_limit = Limit {
            per_second: rps.ceil().max(1.0) as u32,
            max_rate: rps,
            jitter,
        };
        let token_limit = Limit {
            per_second: token_rps.ceil().max(1.0) as u32,
            max_rate: token_rps,
            jitter,
        };
        let (base_pace, token_pace) = match opts.pace_dir.clone().or_else(shared::default_dir) {
            Some(dir) => match (
                Shared::open(&dir, &shared::base_name(base, &opts.resolved_api_url())),
                Shared::open(
                    &dir,
                    &shared::token_name(token.secret(), &opts.resolved_api_url()),
                ),
            ) {
                (Ok(b), Ok(t)) => (b, t),
                (Err(e), _) | (_, Err(e)) if crate::error::exit_code(&e) == 2 => return Err(e),
                // No place to share the pacing (a read-only home): pace this process alone.
                _ => (Shared::memory(), Shared::memory()),
            },
            None => (Shared::memory(), Shared::memory()),
        };
        let tls = tls_config()?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(opts.request_timeout)
            .connect_timeout(opts.connect_timeout)
            .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
        Ok(Client {
            http,
            api: opts.resolved_api_url(),
            base: base.to_string(),
            token,
            base_pace,
            base_limit,
            token_pace,
            token_limit,
            allowance: Mutex::new(Allowance::default()),
            answered: tokio::sync::Notify::new(),
            waiting: Mutex::new(Vec::new()),
            next_in_line: std::sync::atomic::AtomicU64::new(0),
            opts,
            counters: Counters::default(),
            rng: Mutex::new(seed),
        })
    }

    pub(crate) fn api(&self) -> &str {
        &self.api
    }

    pub(crate) fn max_restarts(&self) -> u32 {
        self.opts.max_restarts
    }

    /// How many requests to each of `tables` tables listed at once should be in flight to
    /// keep the base's rate: the rate times the fastest round trip of an answered request
    /// (`allowance`), with room for slower ones, shared among the tables (1 when they are
    /// enough, or before any answer; at most 8). A range more than needed costs a request
    /// of its own (its last page is a partial one).
    pub(crate) fn parallelism(&self, tables: usize) -> usize {
        match lock(&self.allowance).fastest() {
            Some(fastest) => super::ranges::per_table(self.base_limit.max_rate, fastest, tables),
            None => 1,
        }
    }

    /// GET `{api}{path}` with `query`, retried per the rules; `what` names the request for
    /// messages ("base appX, table Users, page 3"). Returns the parsed JSON body of a 200.
    pub(crate) async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<Json, CallError> {
        self.request(path, query, None, what, 0).await
    }

    /// [`Client::get`] for page `page` of a listing. Among this process's requests waiting for
    /// a slot, the one of the lowest page goes first (other requests before any page): the
    /// listings of a base advance together instead of one finishing long after the others,
    /// paging alone, one request at a time, while the slots it cannot use go idle.
    pub(crate) async fn get_page(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
        page: u64,
    ) -> Result<Json, CallError> {
        self.request(path, query, None, what, page).await
    }

    /// POST `body` (JSON) to `{api}{path}`, paced and retried as [`Client::get`] (the
    /// webhooks API, `delta`).
    pub(crate) async fn post(
        &self,
        path: &str,
        body: &Json,
        what: &str,
    ) -> Result<Json, CallError> {
        self.request(path, &[], Some(body), what, 0).await
    }

    async fn request(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Json>,
        what: &str,
        priority: u64,
    ) -> Result<Json, CallError> {
        let url = format!("{}{}", self.api, path);
        let mut rate_tries = 0u32;
        let mut fail_tries = 0u32;
        loop {
            let turn = self.wait_turn(priority).await.map_err(CallError::Fatal)?;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let (sent, back) = self.once(&url, query, body).await;
            self.settle(&turn, matches!(sent, Sent::Answer(200, _, _)), back)
                .map_err(CallError::Fatal)?;
            let transient: String = match sent {
                Sent::TooLarge => {
                    return Err(fatal(format!(
                        "{what}: the response is larger than {} MiB, far more than a page of \
                         100 records or a base's metadata takes; stopped reading it. Is \
                         AIRTABLE_API_URL the Airtable API?",
                        self.opts.max_response_bytes >> 20
                    )));
                }
                Sent::Broken(e) => e,
                Sent::Answer(200, _, Ok(json)) => return Ok(json),
                Sent::Answer(200, _, Err(e)) => format!("the response is not valid JSON ({e})"),
                Sent::Answer(status, retry_after, body) => {
                    let body = body.unwrap_or(Json::Null);
                    let kind = error_type(&body);
                    match status {
                        429 if kind.as_deref() == Some("PUBLIC_API_BILLING_LIMIT_EXCEEDED") => {
                            return Err(fatal(format!(
                                "{what}: Airtable's monthly API call limit for this workspace \
                                 is used up (429 PUBLIC_API_BILLING_LIMIT_EXCEEDED); waiting \
                                 does not help: upgrade the plan or wait for the next billing \
                                 month"
                            )));
                        }
                        429 => {
                            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                            rate_tries += 1;
                            if rate_tries >= self.opts.max_tries {
                                return Err(fatal(format!(
                                    "{what}: still rate limited (429) after {rate_tries} tries; \
                                     is another client using this base?"
                                )));
                            }
                            let wait = retry_after.unwrap_or(self.opts.rate_limit_wait);
                            self.rate_limited(&turn, wait).map_err(CallError::Fatal)?;
                            self.counters.retries.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        500 | 502 | 503 | 504 => format!("HTTP {status}"),
                        422 if kind.as_deref() == Some("LIST_RECORDS_ITERATOR_NOT_AVAILABLE") => {
                            return Err(CallError::IteratorExpired);
                        }
                        _ => return Err(fatal(describe_failure(what, status, &body))),
                    }
                }
            };
            fail_tries += 1;
            if fail_tries >= self.opts.max_tries {
                return Err(fatal(format!(
                    "{what}: {transient}, and still after {fail_tries} tries"
                )));
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            let step = self
                .opts
                .backoff_base
                .saturating_mul(1u32 << (fail_tries - 1).min(16))
                .min(self.opts.backoff_max);
            tokio::time::sleep(step.mul_f64(self.random())).await;
        }
    }

    /// One request, its body read up to the bound; and when its answer began to come back
    /// (its status line: the request had arrived by then, before its body was sent and
    /// read), or when it failed without one.
    async fn once(&self, url: &str, query: &[(&str, &str)], body: Option<&Json>) -> (Sent, f64) {
        let req = match body {
            None => self.http.get(url),
            Some(b) => self.http.post(url).json(b),
        };
        let mut resp = match req
            .bearer_auth(self.token.secret())
            .query(query)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return (Sent::Broken(transport(e)), pace::now()),
        };
        let back = pace::now();
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 3600.0)
            .map(Duration::from_secs_f64);
        let max = self.opts.max_response_bytes;
        let declared = resp.content_length().unwrap_or(0);
        if declared > max {
            return (Sent::TooLarge, back);
        }
        // Dropping `resp` early closes the connection: the rest is never read.
        let mut bytes = Vec::with_capacity(declared as usize);
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if (bytes.len() + chunk.len()) as u64 > max {
                        return (Sent::TooLarge, back);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return (Sent::Broken(transport(e)), back),
            }
        }
        let body = serde_json::from_slice::<Json>(&bytes).map_err(|e| e.to_string());
        (Sent::Answer(status, retry_after, body), back)
    }

    /// Wait until this request may leave, then book it in the base's and the token's
    /// ledgers (token first, then base: one order for every process, so none waits on
    /// another in a circle). Nothing is booked ahead: a slot held by a request in flight
    /// frees early when its answer comes back, so the wait is checked again whenever an
    /// answer of this process comes back, and at least every `RECHECK` for other processes'.
    /// An open slot is left to a request of this process ahead in line (`priority`).
    async fn wait_turn(&self, priority: u64) -> anyhow::Result<Turn> {
        let (bl, tl) = (&self.base_limit, &self.token_limit);
        let place = InLine::new(self, priority);
        loop {
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let now = pace::now();
            let allowance = lock(&self.allowance).get(bl.jitter);
            let turn = self.token_pace.with(|token| {
                self.base_pace.with(|base| {
                    let mut t = base.earliest(bl, now, now);
                    loop {
                        let t2 = base.earliest(bl, now, token.earliest(tl, now, t));
                        if t2 <= t {
                            break;
                        }
                        t = t2;
                    }
                    if t > now + SOON {
                        return Err(t);
                    }
                    if !place.first() {
                        // Open, but another request is ahead: it takes the slot, and leaving
                        // its place wakes this one to look again.
                        return Err(now + RECHECK);
                    }
                    Ok(Turn {
                        base: base.book(now, now, allowance),
                        token: token.book(now, now, allowance),
                        sent: now,
                    })
                })
            })??;
            match turn {
                Ok(turn) => return Ok(turn),
                Err(t) => {
                    let ahead = t - now;
                    if ahead <= FINE {
                        // The last stretch on a thread's clock, not the runtime's.
                        let wait = Duration::from_secs_f64(ahead.max(0.0));
                        tokio::task::spawn_blocking(move || std::thread::sleep(wait))
                            .await
                            .map_err(|e| anyhow::anyhow!("a pacing wait failed: {e}"))?;
                        continue;
                    }
                    let wait = if ahead > 1.5 {
                        // Far off (the base is locked): no answer can bring it much nearer.
                        ahead - 1.0
                    } else {
                        (ahead - FINE).min(RECHECK)
                    };
                    let wait = Duration::from_secs_f64(wait.max(0.0));
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = &mut answered => {}
                    }
                }
            }
        }
    }

    /// An answer came back at `done`: the request had arrived by then, and, once answered,
    /// by how much its round trip was longer than the fastest one (`allowance`).
    fn settle(&self, turn: &Turn, answered: bool, done: f64) -> anyhow::Result<()> {
        let by = if answered {
            let mut a = lock(&self.allowance);
            a.observe(done - turn.sent);
            a.arrived_by(turn.sent, done)
        } else {
            done.max(turn.sent)
        };
        self.token_pace.with(|l| l.arrived(turn.token, by))?;
        let limit = &self.base_limit;
        self.base_pace.with(|l| {
            l.arrived(turn.base, by);
            if answered {
                l.answered(limit);
            }
        })?;
        self.answered.notify_waiters();
        Ok(())
    }

    /// A 429: everyone pacing this base waits `wait`, and the rate comes down.
    fn rate_limited(&self, turn: &Turn, wait: Duration) -> anyhow::Result<()> {
        let until = pace::now() + wait.as_secs_f64();
        let limit = &self.base_limit;
        lock(&self.allowance).widen(limit.jitter, turn.sent, until);
        self.base_pace
            .with(|l| l.rate_limited(limit, until, turn.sent))
    }

    /// Uniform in [0, 1) (xorshift: jitter needs no better).
    fn random(&self) -> f64 {
        let mut g = lock(&self.rng);
        let mut x = *g;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *g = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A request's place among this process's requests waiting for a slot, for as long as it
/// waits (dropped when it leaves, or when its task is cancelled).
struct InLine<'a> {
    client: &'a Client,
    key: (u64, u64),
}

impl<'a> InLine<'a> {
    fn new(client: &'a Client, priority: u64) -> InLine<'a> {
        let key = (
            priority,
            client.next_in_line.fetch_add(1, Ordering::Relaxed),
        );
        lock(&client.waiting).push(key);
        InLine { client, key }
    }

    /// Whether no waiting request is ahead of this one.
    fn first(&self) -> bool {
        lock(&self.client.waiting).iter().all(|k| *k >= self.key)
    }
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        lock(&self.client.waiting).retain(|k| *k != self.key);
        self.client.answered.notify_waiters();
    }
}

/// A mutex's guard, even after a panic while it was held (the data are counters and
/// ledgers, whole at every step).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn fatal(message: String) -> CallError {
    CallError::Fatal(crate::error::unavailable(message))
}

/// A transport error in words, without the URL's query (which holds nothing secret, but is
/// long) and never with headers.
fn transport(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the response"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut msg = format!("{kind}: {e}");
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

/// The error type from any of Airtable's shapes: `{"error":"NOT_FOUND"}`,
/// `{"error":{"type":…,"message":…}}`, `{"errors":[{"error":…,"message":…}]}`.
pub(crate) fn error_type(body: &Json) -> Option<String> {
    match body.get("error") {
        Some(Json::String(s)) => return Some(s.clone()),
        Some(obj @ Json::Object(_)) => {
            if let Some(t) = obj.get("type").and_then(Json::as_str) {
                return Some(t.to_string());
            }
        }
        _ => {}
    }
    let first = body.get("errors")?.as_array()?.first()?;
    first
        .get("error")
        .or_else(|| first.get("type"))
        .and_then(Json::as_str)
        .map(str::to_string)
}

fn error_message(body: &Json) -> Option<String> {
    body.get("error")
        .and_then(|e| e.get("message"))
        .or_else(|| {
            body.get("errors")
                .and_then(|e| e.get(0))
                .and_then(|e| e.get("message"))
        })
        .and_then(Json::as_str)
        .map(|s| s.chars().take(300).collect())
}

/// A failure that retrying cannot fix, with its likely cause.
fn describe_failure(what: &str, status: u16, body: &Json) -> String {
    let kind = error_type(body).unwrap_or_else(|| "no error type".to_string());
    let hint = match (status, kind.as_str()) {
        (401, _) => {
            "the token is missing, malformed, expired or revoked: create a personal access \
             token at https://airtable.com/create/tokens and set AIRTABLE_TOKEN"
        }
        (403, _) => {
            "the table does not exist (check its spelling), or the token lacks access to this \
             base or the scopes data.records:read and schema.bases:read"
        }
        (404, _) => "the base id is wrong, or the base was deleted or moved",
        (422, "UNKNOWN_FIELD_NAME") => {
            "a mapped field does not exist in this table (check its spelling and that it was \
             not renamed)"
        }
        (422, "VIEW_NAME_NOT_FOUND") => {
            "the mapping's `view` names no view of this table (a view's name, or its viw… id \
             from the view's URL)"
        }
        (422, "INVALID_FILTER_BY_FORMULA") => {
            "the mapping's `filter` is not a formula Airtable accepts (see \
             https://support.airtable.com/docs/formula-field-reference)"
        }
        (422, "INVALID_OFFSET_VALUE") => {
            "the server rejected the page offset it gave out; run again"
        }
        (422, _) => "the server rejected the request's parameters",
        _ => "unexpected answer",
    };
    let message = error_message(body)
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    format!("{what}: HTTP {status} {kind}{message}: {hint}")
}

/// rustls with the ring provider (the one the PostgreSQL side uses) and the Mozilla roots.
pub(super) fn tls_config() -> anyhow::Result<rustls::ClientConfig> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shapes() {
        let t = |s: &str| error_type(&serde_json::from_str(s).unwrap());
        assert_eq!(t(r#"{"error":"NOT_FOUND"}"#).as_deref(), Some("NOT_FOUND"));
        assert_eq!(
            t(r#"{"error":{"type":"AUTHENTICATION_REQUIRED","message":"x"}}"#).as_deref(),
            Some("AUTHENTICATION_REQUIRED")
        );
        assert_eq!(
            t(r#"{"errors":[{"error":"RATE_LIMIT_REACHED","message":"x"}]}"#).as_deref(),
            Some("RATE_LIMIT_REACHED")
        );
        assert_eq!(t(r#"{"errors":"x"}"#), None);
        assert_eq!(t(r#"[1]"#), None);
    }

    #[test]
    fn an_open_slot_goes_to_the_waiting_request_of_the_lowest_page() {
        let dir = std::env::temp_dir().join(format!("cutover-inline-{}", std::process::id()));
        let opts = AirtableOptions {
            pace_dir: Some(dir.clone()),
            ..AirtableOptions::default()
        };
        let c = Client::new("appINLINE", Token::new("patINLINE.1"), opts).unwrap();
        let late = InLine::new(&c, 40);
        assert!(late.first(), "alone in line");
        let behind = InLine::new(&c, 3);
        let same = InLine::new(&c, 3);
        assert!(!late.first() && behind.first() && !same.first());
        // The one ahead took its slot: the next in line is the other of the same page,
        // which came later than it but before the page-40 one.
        drop(behind);
        assert!(same.first() && !late.first());
        drop(same);
        assert!(late.first());
        drop(late);
        assert!(lock(&c.waiting).is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn token_is_never_printed() {
        let t = Token::new("patSECRET.123");
        assert_eq!(format!("{t} {t:?}"), "*** ***");
        let opts = AirtableOptions::default();
        assert!(!format!("{opts:?}").contains("SECRET"));
    }
}
