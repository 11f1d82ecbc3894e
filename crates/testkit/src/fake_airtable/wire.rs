//! The fake's wire: hand-rolled HTTP/1.1 on one TCP connection (keep-alive, Content-Length
//! bodies, GET and POST), and the byte-level replies the faults need: half a body then a
//! close, a close-delimited body that never ends, an HTML error page.
//!
//! Time on the wire is modelled in two parts, so that a test can see what the server sees:
//! the network delay before a request *arrives* (`FakeConfig::network`, where arrival jitter
//! lives: only after it is the request counted against the rate limit), and the time the
//! answer takes once it has arrived (`FakeConfig::latency`: the server's work and the way
//! back).

use super::{Latency, State, handle, next_random};
use serde_json::Value as Json;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What to send back.
pub(super) enum Reply {
    Json(u16, Json, Option<u32>),
    Raw(u16, Vec<u8>),
    /// Headers promising the whole body, half of it, then close.
    Drop(Vec<u8>),
    /// A close-delimited body of records that never closes, up to this many bytes.
    Endless(u64),
    /// An HTML page, as a load balancer or proxy in front of the API sends with a 5xx.
    Html(u16, String),
}

/// The state, locked without holding up this runtime thread. A request's work holds the lock
/// for long (a formula over a large table); a worker thread waiting for it would read no
/// request meanwhile, and the requests arriving on other connections would be counted late,
/// bunched, as if by the network. Waiting in `block_in_place` hands this thread's other tasks
/// to another worker (https://docs.rs/tokio/latest/tokio/task/fn.block_in_place.html).
fn with_state<R>(state: &Mutex<State>, f: impl FnOnce(&mut State) -> R) -> R {
    match state.try_lock() {
        Ok(mut st) => f(&mut st),
        Err(std::sync::TryLockError::Poisoned(p)) => f(&mut p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => {
            tokio::task::block_in_place(|| f(&mut state.lock().unwrap_or_else(|p| p.into_inner())))
        }
    }
}

/// The requests being answered now (API requests and attachment downloads apart), and the
/// most at one moment. Kept beside the state, not in it: a request's work holds the state's
/// lock for long, and a connection that waited for it to count an answer done would read
/// its next request late.
#[derive(Debug, Default)]
pub(super) struct AtOnce {
    requests: AtomicU32,
    downloads: AtomicU32,
    max_requests: AtomicU32,
    max_downloads: AtomicU32,
}

impl AtOnce {
    /// The most API requests and downloads answered at one moment.
    pub(super) fn peaks(&self) -> (u32, u32) {
        (
            self.max_requests.load(Ordering::Relaxed),
            self.max_downloads.load(Ordering::Relaxed),
        )
    }

    pub(super) fn reset_peaks(&self) {
        self.max_requests.store(0, Ordering::Relaxed);
        self.max_downloads.store(0, Ordering::Relaxed);
    }

    fn counters(&self, download: bool) -> (&AtomicU32, &AtomicU32) {
        if download {
            (&self.downloads, &self.max_downloads)
        } else {
            (&self.requests, &self.max_requests)
        }
    }
}

/// A request being answered, counted in `AtOnce` while it lasts.
struct InFlight {
    at_once: Arc<AtOnce>,
    download: bool,
}

impl InFlight {
    fn new(at_once: &Arc<AtOnce>, download: bool) -> InFlight {
        let (now, max) = at_once.counters(download);
        max.fetch_max(now.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
        InFlight {
            at_once: at_once.clone(),
            download,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.at_once
            .counters(self.download)
            .0
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Wait until `until`, to within tens of microseconds. The runtime's timer has millisecond
/// granularity and rounds a sleep up (https://docs.rs/tokio/latest/tokio/time/fn.sleep.html),
/// which made a drawn delay about 1.2 ms longer than drawn; so the last 2 ms are slept on a
/// blocking thread (nanosleep(2)).
async fn wait_until(until: Instant) {
    const FINE: Duration = Duration::from_millis(2);
    let ahead = until.saturating_duration_since(Instant::now());
    if ahead > FINE {
        tokio::time::sleep(ahead - FINE).await;
    }
    let rest = until.saturating_duration_since(Instant::now());
    if !rest.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

/// One draw of a latency.
fn draw(latency: Latency, rng: &mut u64) -> Duration {
    match latency {
        Latency::None => Duration::ZERO,
        Latency::Fixed(d) => d,
        Latency::Uniform(lo, hi) => {
            let r = next_random(rng);
            lo + hi.saturating_sub(lo).mul_f64(r)
        }
    }
}

pub(super) async fn serve(
    mut stream: TcpStream,
    state: Arc<Mutex<State>>,
    at_once: Arc<AtOnce>,
) -> std::io::Result<()> {
    // As web servers do (nginx's `tcp_nodelay on` by default): without it, a reply's last
    // short segment waits for the client's delayed ACK (40 ms on Linux, tcp(7)), and an
    // answer then comes back 40 ms after the request arrived for reasons of the fake alone.
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    loop {
        // Read one request head.
        let head_end = loop {
            if let Some(p) = find(&buf, b"\r\n\r\n") {
                break p;
            }
            if buf.len() > 64 * 1024 {
                return Ok(());
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut auth = None;
        let mut close = false;
        let mut content_length = 0usize;
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim();
                match k.as_str() {
                    "authorization" => auth = Some(v.to_string()),
                    "connection" => close = v.eq_ignore_ascii_case("close"),
                    "content-length" => content_length = v.parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        // The request body (POST listRecords sends its parameters as JSON), bounded.
        if content_length > 1 << 20 {
            return Ok(());
        }
        while buf.len() < content_length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body: Vec<u8> = buf.drain(..content_length.min(buf.len())).collect();

        // The way there: the request is counted when it arrives, after this (from when it
        // was received, however long the state was busy with another request meanwhile).
        let received = Instant::now();
        let arrives = with_state(&state, |st| received + draw(st.config.network, &mut st.rng));
        wait_until(arrives).await;
        // A request's work can be long (a formula over a large table): the tasks queued on
        // this thread move to another meanwhile, so the other requests are read and counted
        // on time (https://docs.rs/tokio/latest/tokio/task/fn.block_in_place.html).
        let (reply, delay) = tokio::task::block_in_place(|| {
            let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
            let reply = handle(&mut st, arrives, &method, &target, auth.as_deref(), &body);
            let latency = st.config.latency;
            let delay = draw(latency, &mut st.rng);
            (reply, delay)
        });
        // Counted from the answer's start to its last byte (or the connection's end).
        let _answering = InFlight::new(&at_once, target.starts_with("/dl/"));
        if !delay.is_zero() {
            wait_until(Instant::now() + delay).await;
        }
        match reply {
            Reply::Json(status, body, retry_after) => {
                let body = serde_json::to_vec(&body).unwrap_or_default();
                write(&mut stream, status, &body, retry_after, close).await?;
            }
            Reply::Raw(status, body) => write(&mut stream, status, &body, None, close).await?,
            Reply::Html(status, body) => {
                write_typed(
                    &mut stream,
                    status,
                    "text/html",
                    body.as_bytes(),
                    None,
                    close,
                )
                .await?
            }
            Reply::Drop(body) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(&body[..body.len() / 2]).await?;
                stream.flush().await?;
                return Ok(());
            }
            Reply::Endless(max) => {
                endless(&mut stream, max, &state).await;
                return Ok(());
            }
        }
        if close {
            return Ok(());
        }
    }
}

/// Send `{"records":[` and then records forever (no Content-Length, so only the end of the
/// connection would end the body) until `max` bytes or a failed write: the client hung up.
async fn endless(stream: &mut TcpStream, max: u64, state: &Arc<Mutex<State>>) {
    let record = format!(
        "{{\"id\":\"recAAAAAAAAAAAAAA\",\"createdTime\":\"2024-05-01T10:00:00.000Z\",\"fields\":{{\"Name\":\"{}\"}}}},",
        "x".repeat(400)
    );
    let chunk = record.repeat(64 * 1024 / record.len() + 1);
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"records\":[";
    let mut sent = 0u64;
    let mut ok = stream.write_all(head.as_bytes()).await.is_ok();
    while ok && sent < max {
        ok = stream.write_all(chunk.as_bytes()).await.is_ok();
        if ok {
            sent += chunk.len() as u64;
            with_state(state, |st| st.stats.huge_body_sent = sent);
        }
    }
    let _ = stream.shutdown().await;
    with_state(state, |st| st.stats.huge_body_ended = true);
}

async fn write(
    stream: &mut TcpStream,
    status: u16,
    body: &[u8],
    retry_after: Option<u32>,
    close: bool,
) -> std::io::Result<()> {
    write_typed(
        stream,
        status,
        "application/json; charset=utf-8",
        body,
        retry_after,
        close,
    )
    .await
}

async fn write_typed(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    retry_after: Option<u32>,
    close: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(s) = retry_after {
        head.push_str(&format!("retry-after: {s}\r\n"));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut reply = head.into_bytes();
    reply.extend_from_slice(body);
    stream.write_all(&reply).await?;
    stream.flush().await
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
