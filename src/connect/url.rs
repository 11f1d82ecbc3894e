//! The target database URL: parsing (libpq and SQLAlchemy spellings), TLS
//! settings, connecting with clear error messages, and a redacted form that
//! is the only way the URL is ever shown — the password never reaches a log,
//! an error message or `Debug` output, even when the URL is malformed.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow};
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use super::tls::{self, SslMode};

/// Socket directory used when the URL names no host (Debian's libpq default).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
/// Used when the URL has no `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Used when the URL has no `application_name`.
pub const DEFAULT_APPLICATION_NAME: &str = "cutover";

/// A parsed target URL. Clone it freely; show it only through
/// [`TargetUrl::redacted`] (which `Display` and `Debug` also use).
#[derive(Clone)]
pub struct TargetUrl {
    config: Config,
    sslmode: SslMode,
    sslrootcert: Option<PathBuf>,
    /// `None` = wait forever (`connect_timeout=0`, like libpq).
    connect_timeout: Option<Duration>,
    /// `scheme://user:***@hosts` — already redacted.
    display_head: String,
    /// Encoded path after the hosts, without the leading `/`.
    display_db: Option<String>,
    /// Query parameters as written, with the `password` value replaced.
    display_query: Vec<(String, String)>,
}

impl TargetUrl {
    /// Parses `postgres://`, `postgresql://` and `postgresql+<driver>://` URLs.
    pub fn parse(s: &str) -> Result<TargetUrl> {
        parse_inner(s).map_err(|why| anyhow!("invalid target URL {}: {why}", redact_raw(s)))
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let mut out = self.display_head.clone();
        if let Some(db) = &self.display_db {
            out.push('/');
            out.push_str(db);
        }
        for (i, (k, v)) in self.display_query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }

    /// The database named by the URL (`None`: the server uses the user name).
    pub fn dbname(&self) -> Option<&str> {
        self.config.get_dbname()
    }

    /// The user the connection authenticates as.
    pub fn user(&self) -> Option<&str> {
        self.config.get_user()
    }

    #[cfg(test)]
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    #[cfg(test)]
    pub fn sslrootcert(&self) -> Option<&std::path::Path> {
        self.sslrootcert.as_deref()
    }

    /// `None` means no timeout.
    #[cfg(test)]
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The underlying tokio-postgres configuration (contains the password).
    #[cfg(test)]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The same server and settings, another database.
    #[cfg(test)]
    pub fn with_dbname(&self, db: &str) -> TargetUrl {
        let mut t = self.clone();
        t.config.dbname(db);
        t.display_db = Some(encode(db));
        t.display_query.retain(|(k, _)| k != "dbname");
        t
    }

    /// Where the URL points, for messages: `host:port` or the socket path.
    pub fn server(&self) -> String {
        let hosts = self.config.get_hosts();
        let ports = self.config.get_ports();
        let mut parts = Vec::new();
        for (i, h) in hosts.iter().enumerate() {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            parts.push(match h {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("socket {}/.s.PGSQL.{port}", dir.display()),
            });
        }
        parts.join(", ")
    }

    /// Connects and spawns the connection task on the current tokio runtime.
    pub async fn connect(&self) -> Result<Client> {
        let attempt = self.connect_raw();
        let res = match self.connect_timeout {
            Some(t) => match tokio::time::timeout(t, attempt).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(anyhow!(
                        "cannot connect to {}: timed out after {} s waiting for {}: check that the host and port are right and reachable (firewall?), or raise connect_timeout",
                        self.redacted(),
                        t.as_secs_f64(),
                        self.server()
                    ));
                }
            },
            None => attempt.await,
        };
        match res {
            Ok(c) => Ok(c),
            Err(Failure::Setup(e)) => Err(anyhow!("cannot connect to {}: {e:#}", self.redacted())),
            Err(Failure::Pg(e)) => Err(anyhow!(
                "cannot connect to {}: {}",
                self.redacted(),
                self.explain(&e).await
            )),
        }
    }

    async fn connect_raw(&self) -> Result<Client, Failure> {
        if self.config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
            let (client, conn) = self.config.connect(NoTls).await.map_err(Failure::Pg)?;
            // Connection errors surface to the client as "connection closed".
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(client)
        } else {
            let tls = tls::connector(self.sslmode, self.sslrootcert.as_deref())
                .map_err(Failure::Setup)?;
            let (client, conn) = self.config.connect(tls).await.map_err(Failure::Pg)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(client)
        }
    }

    /// Turns a connect error into one sentence saying what is wrong and what
    /// to do. Never includes the password (tokio-postgres errors do not carry
    /// the configuration).
    async fn explain(&self, e: &tokio_postgres::Error) -> String {
        let server = self.server();
        let user = self.user().unwrap_or("?");
        if let Some(db) = e.as_db_error() {
            let msg = db.message();
            let code = db.code();
            return if *code == SqlState::INVALID_PASSWORD {
                format!(
                    "password authentication failed for user \"{user}\" on {server}: check the user name and password in the URL"
                )
            } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                && msg.contains("does not exist")
            {
                format!(
                    "role \"{user}\" does not exist on {server}: create it or fix the user name in the URL"
                )
            } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                && msg.contains("no encryption")
            {
                format!(
                    "the server requires TLS ({msg}): use sslmode=require, verify-ca or verify-full"
                )
            } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
                format!("the server rejected the connection: {msg}")
            } else if *code == SqlState::UNDEFINED_DATABASE {
                let dbname = self.dbname().unwrap_or(user);
                format!(
                    "database \"{dbname}\" does not exist on {server}: create it or fix the URL"
                )
            } else if *code == SqlState::TOO_MANY_CONNECTIONS {
                format!("the server at {server} has too many connections: {msg}")
            } else if *code == SqlState::CANNOT_CONNECT_NOW {
                format!("the server at {server} is not accepting connections yet: {msg}")
            } else {
                format!(
                    "the server at {server} refused the connection: {msg} (SQLSTATE {})",
                    code.code()
                )
            };
        }
        let chain = error_chain(e);
        if chain.contains("server does not support TLS") {
            return format!(
                "the server at {server} does not support TLS, but sslmode={} requires it: enable ssl on the server, or use sslmode=prefer or sslmode=disable",
                self.sslmode
            );
        }
        if let Some(r) = tls::find_rustls_error(e) {
            return self.explain_tls(r);
        }
        // A DNS failure looks like any other I/O error; resolve again to tell.
        for (i, h) in self.config.get_hosts().iter().enumerate() {
            if let Host::Tcp(name) = h
                && name.parse::<std::net::IpAddr>().is_err()
            {
                let port = self.config.get_ports().get(i).copied().unwrap_or(5432);
                if let Err(err) = tokio::net::lookup_host((name.as_str(), port)).await {
                    return format!(
                        "unknown host \"{name}\" (DNS lookup failed: {err}): check the host name in the URL"
                    );
                }
            }
        }
        if let Some(io) = find_io_error(e) {
            use std::io::ErrorKind as K;
            let unix = self
                .config
                .get_hosts()
                .iter()
                .all(|h| matches!(h, Host::Unix(_)));
            match io.kind() {
                K::ConnectionRefused if unix => {
                    return format!(
                        "connection refused on {server}: no server is running there; check the host (socket directory) and port"
                    );
                }
                K::ConnectionRefused => {
                    return format!(
                        "connection refused: nothing is listening on {server}; check the host and port, and that the server is running and accepts TCP connections"
                    );
                }
                K::NotFound if unix => {
                    return format!(
                        "nothing is listening on {server} (no socket file): is the server running, and are the host (socket directory) and port right?"
                    );
                }
                K::PermissionDenied if unix => {
                    return format!("permission denied opening {server}: {io}");
                }
                K::TimedOut => {
                    return format!(
                        "timed out connecting to {server}: check that the host and port are right and reachable, or raise connect_timeout"
                    );
                }
                K::UnexpectedEof | K::ConnectionReset => {
                    return format!(
                        "the server at {server} closed the connection during startup ({chain})"
                    );
                }
                _ => {}
            }
        }
        format!("{chain} ({server})")
    }

    fn explain_tls(&self, r: &rustls::Error) -> String {
        use rustls::CertificateError as C;
        let server = self.server();
        let mode = self.sslmode;
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            _ => String::new(),
        };
        match r {
            rustls::Error::InvalidCertificate(C::NotValidForName)
            | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => format!(
                "TLS certificate verification failed: the certificate of {server} is not valid for host name \"{host}\" (sslmode={mode}): connect using a name the certificate lists, or use sslmode=verify-ca"
            ),
            rustls::Error::InvalidCertificate(C::UnknownIssuer) => format!(
                "TLS certificate verification failed: the certificate of {server} is not signed by a trusted CA (sslmode={mode}): pass the CA certificate with sslrootcert=/path/to/ca.pem"
            ),
            rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => format!(
                "TLS certificate verification failed: the certificate of {server} has expired"
            ),
            rustls::Error::InvalidCertificate(other) => format!(
                "TLS certificate verification failed for {server} (sslmode={mode}): {other}"
            ),
            other => format!("TLS handshake with {server} failed (sslmode={mode}): {other}"),
        }
    }
}

enum Failure {
    Setup(anyhow::Error),
    Pg(tokio_postgres::Error),
}

impl fmt::Display for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TargetUrl({})", self.redacted())
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

fn find_io_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(x) = cur {
        if let Some(io) = x.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = x.source();
    }
    None
}

/// Shows a string that may or may not be a valid URL without its password:
/// everything between `://` (or the start) and the last `@` becomes `***`,
/// and so does the value of any `password=` parameter.
pub fn redact_raw(s: &str) -> String {
    let start = s.find("://").map(|i| i + 3).unwrap_or(0);
    let mut out = match s[start..].rfind('@') {
        Some(i) => format!("{}***{}", &s[..start], &s[start + i..]),
        None => s.to_string(),
    };
    // password=... in a query string or a key=value connection string.
    let mut search_from = 0;
    loop {
        let lower = out.to_ascii_lowercase();
        let Some(rel) = lower[search_from..].find("password=") else {
            break;
        };
        let vstart = search_from + rel + "password=".len();
        let vend = out[vstart..]
            .find(|c: char| c == '&' || c.is_whitespace())
            .map(|i| vstart + i)
            .unwrap_or(out.len());
        out.replace_range(vstart..vend, "***");
        search_from = vstart + 3;
    }
    out
}

/// Errors from here are shown to the user: they must never contain a part of
/// the password, so they name what is wrong, not the offending text, unless
/// that text cannot come from the password.
fn parse_inner(s: &str) -> Result<TargetUrl, String> {
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err("expected a URL like postgresql://user:password@host:5432/dbname".to_string());
    };
    let scheme_lc = scheme.to_ascii_lowercase();
    let base = scheme_lc.split('+').next().unwrap_or("");
    let driver_ok = match scheme_lc.split_once('+') {
        None => true,
        Some((_, d)) => {
            !d.is_empty()
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        }
    };
    if !(base == "postgres" || base == "postgresql") || !driver_ok {
        let shown = if scheme.len() <= 40 && !scheme.contains('@') {
            format!("\"{scheme}\"")
        } else {
            "(not shown)".to_string()
        };
        return Err(format!(
            "unsupported scheme {shown}: expected postgresql://, postgres:// or postgresql+<driver>://"
        ));
    }

    let (before_q, query) = match rest.find('?') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if !before_q.contains('@') && query.is_some_and(|q| q.contains('@')) {
        return Err(
            "'@' after '?': if the password contains special characters, percent-encode them (? as %3F, @ as %40, / as %2F, # as %23, % as %25)"
                .to_string(),
        );
    }
    let (userinfo, hostpath) = match before_q.rfind('@') {
        Some(i) => (Some(&before_q[..i]), &before_q[i + 1..]),
        None => (None, before_q),
    };
    let (hostlist, path) = match hostpath.find('/') {
        Some(i) => (&hostpath[..i], Some(&hostpath[i + 1..])),
        None => (hostpath, None),
    };

    let mut config = Config::new();
    let mut user: Option<String> = None;
    let mut password: Option<Vec<u8>> = None;
    let mut display_head = format!("{scheme}://");
    if let Some(ui) = userinfo {
        let (u, p) = match ui.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (ui, None),
        };
        let u_dec = decode_str(u).map_err(|_| {
            "the user name has invalid percent-encoding (write % as %25)".to_string()
        })?;
        if !u_dec.is_empty() {
            user = Some(u_dec);
        }
        if let Some(p) = p {
            let p_dec = decode(p).map_err(|_| {
                "the password has invalid percent-encoding (write % as %25)".to_string()
            })?;
            if !p_dec.is_empty() {
                password = Some(p_dec);
            }
            display_head.push_str(u);
            display_head.push_str(":***@");
        } else {
            display_head.push_str(u);
            display_head.push('@');
        }
    }
    display_head.push_str(hostlist);

    // Hosts and ports from the authority.
    let mut hosts: Vec<String> = Vec::new();
    let mut ports: Vec<Option<u16>> = Vec::new();
    if !hostlist.is_empty() {
        for item in hostlist.split(',') {
            let (h, p) = split_host_port(item)?;
            hosts.push(h);
            ports.push(p);
        }
    }

    let mut dbname: Option<String> = None;
    let mut display_db = None;
    if let Some(p) = path {
        display_db = Some(p.to_string());
        let d = decode_str(p)
            .map_err(|_| "the database name has invalid percent-encoding".to_string())?;
        if !d.is_empty() {
            dbname = Some(d);
        }
    }

    let mut sslmode = SslMode::default();
    let mut sslrootcert = None;
    let mut connect_timeout = Some(DEFAULT_CONNECT_TIMEOUT);
    let mut application_name = DEFAULT_APPLICATION_NAME.to_string();
    let mut options = None;
    let mut query_hosts: Option<Vec<String>> = None;
    let mut query_ports: Option<Vec<u16>> = None;
    let mut display_query = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let Some((k_raw, v_raw)) = pair.split_once('=') else {
            return Err(match shown_name(pair) {
                Some(n) => format!("query parameter \"{n}\" has no value (expected {n}=...)"),
                None => "a query parameter has no value (expected name=value)".to_string(),
            });
        };
        let key = decode_str(k_raw)
            .map_err(|_| "a query parameter name has invalid percent-encoding".to_string())?;
        if key == "password" {
            display_query.push((k_raw.to_string(), "***".to_string()));
            let p = decode(v_raw).map_err(|_| {
                "the password parameter has invalid percent-encoding (write % as %25)".to_string()
            })?;
            password = if p.is_empty() { None } else { Some(p) };
            continue;
        }
        display_query.push((k_raw.to_string(), v_raw.to_string()));
        let value = decode_str(v_raw)
            .map_err(|_| format!("query parameter \"{key}\" has invalid percent-encoding"))?;
        match key.as_str() {
            "sslmode" => sslmode = SslMode::parse(&value).map_err(|e| e.to_string())?,
            "sslrootcert" => {
                sslrootcert = if value.is_empty() {
                    None
                } else {
                    Some(PathBuf::from(value))
                }
            }
            "host" => {
                query_hosts = Some(
                    value
                        .split(',')
                        .filter(|h| !h.is_empty())
                        .map(str::to_string)
                        .collect(),
                )
            }
            "port" => {
                let mut ps = Vec::new();
                for p in value.split(',') {
                    ps.push(parse_port(p).ok_or_else(|| {
                        format!("invalid port \"{p}\" in query parameter port (expected 1-65535)")
                    })?);
                }
                query_ports = Some(ps);
            }
            "user" => user = if value.is_empty() { None } else { Some(value) },
            "dbname" => dbname = if value.is_empty() { None } else { Some(value) },
            "application_name" => application_name = value,
            "connect_timeout" => {
                let secs: i64 = value.trim().parse().map_err(|_| {
                    format!("invalid connect_timeout \"{value}\" (expected whole seconds)")
                })?;
                connect_timeout = if secs <= 0 {
                    None
                } else {
                    Some(Duration::from_secs(secs as u64))
                };
            }
            "options" => options = Some(value),
            other => {
                return Err(match shown_name(other) {
                    Some(n) => format!(
                        "unknown query parameter \"{n}\" (supported: sslmode, sslrootcert, host, port, user, password, dbname, application_name, connect_timeout, options)"
                    ),
                    None => "unknown query parameter".to_string(),
                });
            }
        }
    }

    if let Some(qh) = query_hosts {
        ports = vec![None; qh.len()];
        hosts = qh;
    }
    if hosts.is_empty() {
        hosts.push(DEFAULT_SOCKET_DIR.to_string());
        ports.push(None);
    }
    if let Some(qp) = query_ports {
        if qp.len() == 1 {
            ports = vec![Some(qp[0]); hosts.len()];
        } else if qp.len() == hosts.len() {
            ports = qp.into_iter().map(Some).collect();
        } else {
            return Err(format!(
                "{} ports given for {} hosts (give one port, or one per host)",
                qp.len(),
                hosts.len()
            ));
        }
    }
    let mut all_unix = true;
    for (h, p) in hosts.iter().zip(&ports) {
        if h.starts_with('/') {
            config.host_path(h);
        } else {
            all_unix = false;
            config.host(h);
        }
        config.port(p.unwrap_or(5432));
    }

    let user = match user {
        Some(u) => u,
        None => current_os_user().ok_or_else(|| {
            "no user in the URL and the current OS user name is unknown: add user@ to the URL"
                .to_string()
        })?,
    };
    config.user(&user);
    if let Some(p) = password {
        config.password(p);
    }
    if let Some(d) = &dbname {
        config.dbname(d);
    }
    config.application_name(&application_name);
    if let Some(o) = options {
        config.options(o);
    }
    if let Some(t) = connect_timeout {
        config.connect_timeout(t);
    }
    // libpq ignores sslmode on Unix sockets (the server has no TLS there).
    config.ssl_mode(if all_unix {
        tokio_postgres::config::SslMode::Disable
    } else {
        sslmode.to_tokio()
    });

    Ok(TargetUrl {
        config,
        sslmode,
        sslrootcert,
        connect_timeout,
        display_head,
        display_db,
        display_query,
    })
}

/// A query parameter name is echoed only if it looks like a name; anything
/// odd may be a fragment of a mis-encoded password.
fn shown_name(s: &str) -> Option<&str> {
    (!s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then_some(s)
}

fn parse_port(p: &str) -> Option<u16> {
    p.parse::<u16>().ok().filter(|&n| n != 0)
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, `%2Fsocket%2Fdir`, `:port`.
fn split_host_port(item: &str) -> Result<(String, Option<u16>), String> {
    let bad_port = || "invalid port in the URL (expected host:port with port 1-65535)".to_string();
    if let Some(rest) = item.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err("an IPv6 address in the URL lacks its closing ']'".to_string());
        };
        let addr = &rest[..end];
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("invalid IPv6 address between [ and ] in the URL".to_string());
        }
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(p).ok_or_else(bad_port)?),
            None if after.is_empty() => None,
            None => return Err("unexpected text after ']' in the URL".to_string()),
        };
        return Ok((addr.to_string(), port));
    }
    let (h, port) = match item.rfind(':') {
        Some(i) => (
            &item[..i],
            Some(parse_port(&item[i + 1..]).ok_or_else(bad_port)?),
        ),
        None => (item, None),
    };
    let host = decode_str(h)
        .map_err(|_| "the host in the URL has invalid percent-encoding".to_string())?;
    let host = if host.is_empty() {
        DEFAULT_SOCKET_DIR.to_string()
    } else {
        host
    };
    Ok((host, port))
}

fn decode(s: &str) -> Result<Vec<u8>, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err(()),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn decode_str(s: &str) -> Result<String, ()> {
    String::from_utf8(decode(s)?).map_err(|_| ())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
#[cfg(test)]
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The effective user's login name, like libpq's default user.
fn current_os_user() -> Option<String> {
    // SAFETY: getpwuid_r writes into the buffers we own; we read pw_name only
    // when it succeeded and returned our struct.
    unsafe {
        let uid = libc::geteuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
            return std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_str()
                .ok()
                .map(str::to_string);
        }
    }
    std::env::var("USER").ok().filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> TargetUrl {
        TargetUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e:#}"))
    }

    fn hosts(t: &TargetUrl) -> Vec<String> {
        t.config()
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(s) => format!("tcp:{s}"),
                Host::Unix(p) => format!("unix:{}", p.display()),
            })
            .collect()
    }

    fn err(s: &str) -> String {
        format!("{:#}", TargetUrl::parse(s).expect_err(s))
    }

    #[test]
    fn schemes() {
        for scheme in [
            "postgres",
            "postgresql",
            "postgresql+asyncpg",
            "postgresql+psycopg2",
            "postgresql+psycopg",
            "postgresql+pg8000",
            "POSTGRESQL",
        ] {
            let t = p(&format!("{scheme}://u:pw@h:5433/db"));
            assert_eq!(t.user(), Some("u"));
            assert_eq!(t.config().get_password(), Some(&b"pw"[..]));
            assert_eq!(hosts(&t), ["tcp:h"]);
            assert_eq!(t.config().get_ports(), [5433]);
            assert_eq!(t.dbname(), Some("db"));
            assert_eq!(t.redacted(), format!("{scheme}://u:***@h:5433/db"));
        }
        assert!(err("mysql://u:pw@h/db").contains("unsupported scheme \"mysql\""));
        assert!(err("postgresql+://u@h/db").contains("unsupported scheme"));
        assert!(err("u:secret@h/db").contains("expected a URL like"));
        assert!(!err("u:secret@h/db").contains("secret"));
    }

    #[test]
    fn percent_encoded_password_and_defaults() {
        let t = p("postgresql://appuser:k%2Ble%2CU2kG1Gb0cp_@127.0.0.1:5432/appdb");
        assert_eq!(t.config().get_password(), Some(&b"k+le,U2kG1Gb0cp_"[..]));
        assert_eq!(t.user(), Some("appuser"));
        assert_eq!(
            t.redacted(),
            "postgresql://appuser:***@127.0.0.1:5432/appdb"
        );
        assert_eq!(t.config().get_application_name(), Some("cutover"));
        assert_eq!(t.connect_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(t.sslmode(), SslMode::Prefer);
        assert_eq!(
            t.config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Prefer
        );
        let t = p("postgresql://us%40er:p%40ss%2Fw%3Fd@h/d%20b");
        assert_eq!(t.user(), Some("us@er"));
        assert_eq!(t.config().get_password(), Some(&b"p@ss/w?d"[..]));
        assert_eq!(t.dbname(), Some("d b"));
        // Raw '/' and '@' in the password still work (last '@' wins).
        let t = p("postgresql://u:a/b@c@h/db");
        assert_eq!(t.config().get_password(), Some(&b"a/b@c"[..]));
        assert_eq!(hosts(&t), ["tcp:h"]);
    }

    #[test]
    fn no_password_no_user_no_db() {
        let t = p("postgresql://u@h/db");
        assert_eq!(t.config().get_password(), None);
        assert_eq!(t.redacted(), "postgresql://u@h/db");
        let t = p("postgresql://h");
        assert_eq!(t.dbname(), None);
        assert!(t.user().is_some(), "defaults to the OS user");
        assert_eq!(t.config().get_ports(), [5432]);
    }

    #[test]
    fn ipv6() {
        let t = p("postgresql://u:pw@[::1]:6543/db");
        assert_eq!(hosts(&t), ["tcp:::1"]);
        assert_eq!(t.config().get_ports(), [6543]);
        assert_eq!(t.server(), "[::1]:6543");
        let t = p("postgresql://u@[2001:db8::5]/db");
        assert_eq!(hosts(&t), ["tcp:2001:db8::5"]);
        assert_eq!(t.config().get_ports(), [5432]);
        assert!(err("postgresql://u@[::1/db").contains("closing ']'"));
        assert!(err("postgresql://u@[zz]/db").contains("invalid IPv6"));
    }

    #[test]
    fn unix_sockets() {
        let t = p("postgresql://u@/db");
        assert_eq!(hosts(&t), ["unix:/var/run/postgresql"]);
        assert_eq!(
            t.config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        let t = p("postgresql://u@/db?host=/tmp/sock&port=6000");
        assert_eq!(hosts(&t), ["unix:/tmp/sock"]);
        assert_eq!(t.config().get_ports(), [6000]);
        assert_eq!(t.server(), "socket /tmp/sock/.s.PGSQL.6000");
        let t = p("postgresql://u@%2Ftmp%2Fdir/db");
        assert_eq!(hosts(&t), ["unix:/tmp/dir"]);
        let t = p("postgresql://u@%2Ftmp%2Fdir:7000/db");
        assert_eq!(t.config().get_ports(), [7000]);
        let t = p("postgres:///db?host=%2Fvar%2Frun%2Fpostgresql");
        assert_eq!(hosts(&t), ["unix:/var/run/postgresql"]);
        // host parameter may be a host name too, overriding the authority.
        let t = p("postgresql://u@ignored/db?host=db.example.com");
        assert_eq!(hosts(&t), ["tcp:db.example.com"]);
    }

    #[test]
    fn multiple_hosts() {
        let t = p("postgresql://u@h1:5433,h2,[::1]:5434/db");
        assert_eq!(hosts(&t), ["tcp:h1", "tcp:h2", "tcp:::1"]);
        assert_eq!(t.config().get_ports(), [5433, 5432, 5434]);
        assert!(err("postgresql://u@a,b/db?port=1,2,3").contains("3 ports given for 2 hosts"));
    }

    #[test]
    fn query_parameters() {
        let t = p(
            "postgresql://h/x?sslmode=verify-full&sslrootcert=/etc/ca.pem&port=6000&user=bob&password=s%26cret&dbname=other&application_name=me&connect_timeout=3&options=-c%20search_path%3Dapp",
        );
        assert_eq!(t.sslmode(), SslMode::VerifyFull);
        assert_eq!(t.sslrootcert(), Some(std::path::Path::new("/etc/ca.pem")));
        assert_eq!(t.config().get_ports(), [6000]);
        assert_eq!(t.user(), Some("bob"));
        assert_eq!(t.config().get_password(), Some(&b"s&cret"[..]));
        assert_eq!(t.dbname(), Some("other"));
        assert_eq!(t.config().get_application_name(), Some("me"));
        assert_eq!(t.connect_timeout(), Some(Duration::from_secs(3)));
        assert_eq!(t.config().get_options(), Some("-c search_path=app"));
        assert_eq!(
            t.config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert!(t.redacted().contains("password=***"));
        assert!(!t.redacted().contains("cret"));
        for (m, want) in [
            ("disable", tokio_postgres::config::SslMode::Disable),
            ("allow", tokio_postgres::config::SslMode::Prefer),
            ("prefer", tokio_postgres::config::SslMode::Prefer),
            ("require", tokio_postgres::config::SslMode::Require),
            ("verify-ca", tokio_postgres::config::SslMode::Require),
        ] {
            assert_eq!(
                p(&format!("postgresql://h/x?sslmode={m}"))
                    .config()
                    .get_ssl_mode(),
                want
            );
        }
        assert_eq!(
            p("postgresql://h/x?connect_timeout=0").connect_timeout(),
            None
        );
        assert!(err("postgresql://h/x?sslmode=on").contains("invalid sslmode \"on\""));
        assert!(err("postgresql://h/x?connect_timeout=abc").contains("connect_timeout"));
        assert!(err("postgresql://h/x?port=99999").contains("invalid port"));
        let e = err("postgresql://u:secret@h/x?sslcert=/a.pem");
        assert!(e.contains("unknown query parameter \"sslcert\""), "{e}");
        assert!(!e.contains("secret"));
        assert!(err("postgresql://h/x?sslmode").contains("\"sslmode\" has no value"));
    }

    #[test]
    fn with_dbname() {
        let t = p("postgresql://u:pw@h:5433/db?dbname=zzz&sslmode=require");
        let o = t.with_dbname("other db");
        assert_eq!(o.dbname(), Some("other db"));
        assert_eq!(o.config().get_password(), Some(&b"pw"[..]));
        assert_eq!(o.sslmode(), SslMode::Require);
        assert_eq!(
            o.redacted(),
            "postgresql://u:***@h:5433/other%20db?sslmode=require"
        );
        assert_eq!(t.dbname(), Some("zzz"));
    }

    #[test]
    fn password_never_shown() {
        let pw = "Sup3rS3cret";
        let good = [
            format!("postgresql://u:{pw}@h/db"),
            format!("postgresql+asyncpg://u:{pw}@[::1]:5/db?sslmode=require"),
            format!("postgresql://u@h/db?password={pw}"),
            format!("postgresql://u@h/db?PassWord={pw}&x=1"),
        ];
        for u in &good[..3] {
            let t = p(u);
            for shown in [
                t.to_string(),
                format!("{t:?}"),
                t.redacted(),
                t.with_dbname("x").redacted(),
            ] {
                assert!(!shown.contains(pw), "{shown}");
                assert!(shown.contains("***"), "{shown}");
            }
        }
        let malformed = [
            format!("postgresql://u:{pw}@h:notaport/db"),
            format!("postgresql://u:{pw}@h/db?bogus=1"),
            format!("postgresql://u:{pw}%zz@h/db"),
            format!("postgresql://u:{pw}?x@h/db"),
            format!("postgresql://u:{pw}?sslmode=x@h/db"),
            format!("postgresql://u:12?ab={pw}@h/db"),
            format!("mysql://u:{pw}@h/db"),
            format!("u:{pw}@h/db"),
            format!("postgresql://u:{pw}@[::1/db"),
            format!("postgresql://u:{pw}@h,h2/db?port=1,2,3"),
            format!("postgresql://u@h/db?password={pw}&bogus=1"),
            format!("postgresql://u@h/db?PassWord={pw}&x=1"),
            format!("postgresql://u@h/db?password={pw}%zz"),
            format!("host=h password={pw} dbname=x"),
        ];
        for u in &malformed {
            let e = TargetUrl::parse(u).err().unwrap_or_else(|| panic!("{u}"));
            for shown in [format!("{e}"), format!("{e:#}"), format!("{e:?}")] {
                assert!(!shown.contains(pw), "{u} -> {shown}");
            }
        }
        // What redaction keeps for a malformed URL.
        assert_eq!(
            redact_raw("postgresql://u:x@y@h:zz/db?password=p&a=b"),
            "postgresql://***@h:zz/db?password=***&a=b"
        );
    }

    #[test]
    fn unknown_param_name_with_password_fragment_is_not_echoed() {
        // A raw '?' in the password: the part after it must not be echoed.
        let e = err("postgresql://u:ab?cd=ef@h/db");
        assert!(!e.contains("cd"), "{e}");
        assert!(e.contains("percent-encode"), "{e}");
    }

    #[test]
    fn encode_roundtrip() {
        assert_eq!(encode("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(decode_str(&encode("a b/é")).unwrap(), "a b/é");
        assert!(decode("%4").is_err());
        assert!(decode("%g0").is_err());
    }

    /// Against real scratch clusters (needs PostgreSQL server binaries).
    mod live {
        use super::*;
        use cutover_scratch::Scratch;

        const PW: &str = "k+le,U2kG1Gb0cp_";

        async fn start(tls: Option<(&str, &str)>) -> Scratch {
            let (cert, key) = tls.unzip();
            let (cert, key) = (cert.map(str::to_string), key.map(str::to_string));
            tokio::task::spawn_blocking(move || match (cert, key) {
                (Some(c), Some(k)) => Scratch::start_tls(false, &c, &k),
                _ => Scratch::start(false),
            })
            .await
            .unwrap()
            .unwrap()
        }

        async fn setup_app(s: &Scratch) {
            let c = p(&s.url("postgres")).connect().await.unwrap();
            c.batch_execute(&format!("create role appuser login password '{PW}'"))
                .await
                .unwrap();
            c.batch_execute("create database appdb owner appuser")
                .await
                .unwrap();
        }

        async fn conn_err(url: &str) -> String {
            let e = format!("{:#}", p(url).connect().await.expect_err(url));
            eprintln!("MSG: {e}");
            assert!(!e.contains(PW), "{e}");
            assert!(!e.contains("k%2Ble"), "{e}");
            e
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn connect_and_errors() {
            let s = start(None).await;
            setup_app(&s).await;
            let port = s.tcp_port();
            for scheme in [
                "postgresql",
                "postgres",
                "postgresql+asyncpg",
                "postgresql+psycopg2",
            ] {
                let url = format!("{scheme}://appuser:k%2Ble%2CU2kG1Gb0cp_@127.0.0.1:{port}/appdb");
                let c = p(&url).connect().await.unwrap();
                let row = c
                    .query_one("select current_user, current_database(), current_setting('application_name')", &[])
                    .await
                    .unwrap();
                assert_eq!(row.get::<_, String>(0), "appuser");
                assert_eq!(row.get::<_, String>(1), "appdb");
                assert_eq!(row.get::<_, String>(2), "cutover");
            }
            // Password as a query parameter, and with_dbname.
            let t = p(&format!(
                "postgresql://appuser@127.0.0.1:{port}/x?password=k%2Ble%2CU2kG1Gb0cp_&sslmode=disable"
            ));
            let c = t.with_dbname("appdb").connect().await.unwrap();
            let db: String = c
                .query_one("select current_database()", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(db, "appdb");

            let e = conn_err(&format!(
                "postgresql://appuser:wrong@127.0.0.1:{port}/appdb"
            ))
            .await;
            assert!(
                e.contains("password authentication failed for user \"appuser\""),
                "{e}"
            );
            assert!(
                e.contains(&format!("postgresql://appuser:***@127.0.0.1:{port}/appdb")),
                "{e}"
            );

            let e = conn_err(&format!(
                "postgresql://appuser:k%2Ble%2CU2kG1Gb0cp_@127.0.0.1:{port}/nope"
            ))
            .await;
            assert!(
                e.contains(&format!(
                    "database \"nope\" does not exist on 127.0.0.1:{port}: create it or fix the URL"
                )),
                "{e}"
            );

            // Over TCP with scram a missing role looks like a bad password
            // (the server hides which); over the trusted socket it is named.
            let sock = s.url("postgres").replace("postgres@", "ghost@");
            let e = conn_err(&sock).await;
            assert!(e.contains("role \"ghost\" does not exist"), "{e}");

            let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let free_port = free.local_addr().unwrap().port();
            drop(free);
            let e = conn_err(&format!(
                "postgresql://appuser:{PW}@127.0.0.1:{free_port}/appdb"
            ))
            .await;
            assert!(
                e.contains(&format!(
                    "connection refused: nothing is listening on 127.0.0.1:{free_port}"
                )),
                "{e}"
            );

            let e = conn_err(&format!(
                "postgresql://postgres@/postgres?host={}&port={free_port}",
                s.data_dir().display()
            ))
            .await;
            assert!(e.contains("(no socket file)"), "{e}");

            let e = conn_err("postgresql://u:pw@nonexistent-host.invalid:5432/db").await;
            assert!(
                e.contains("unknown host \"nonexistent-host.invalid\""),
                "{e}"
            );

            // A server that accepts but never answers.
            let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let silent_port = silent.local_addr().unwrap().port();
            let holder = tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok((sock, _)) = silent.accept().await {
                    held.push(sock);
                }
            });
            let e = conn_err(&format!(
                "postgresql://u:{PW}@127.0.0.1:{silent_port}/db?connect_timeout=1&sslmode=disable"
            ))
            .await;
            assert!(e.contains("timed out after 1 s"), "{e}");
            holder.abort();

            let e = conn_err(&format!(
                "postgresql://appuser:{PW}@127.0.0.1:{port}/appdb?sslmode=require"
            ))
            .await;
            assert!(e.contains("does not support TLS"), "{e}");
            // prefer falls back to plain text.
            p(&format!(
                "postgresql://appuser:{PW}@127.0.0.1:{port}/appdb?sslmode=prefer"
            ))
            .connect()
            .await
            .unwrap();
            drop(c);
            tokio::task::spawn_blocking(move || s.stop())
                .await
                .unwrap()
                .unwrap();
        }

        /// A CA and a server certificate for "localhost" only.
        fn make_certs() -> (String, String, String) {
            let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            ca_params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "cutover test CA");
            let ca_key = rcgen::KeyPair::generate().unwrap();
            let ca_cert = ca_params.self_signed(&ca_key).unwrap();
            let issuer = rcgen::Issuer::new(ca_params, ca_key);
            let leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            let leaf_key = rcgen::KeyPair::generate().unwrap();
            let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
            (ca_cert.pem(), leaf.pem(), leaf_key.serialize_pem())
        }

        async fn uses_tls(c: &Client) -> bool {
            c.query_one(
                "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0)
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn tls_modes() {
            let (ca, cert, key) = make_certs();
            let s = start(Some((&cert, &key))).await;
            setup_app(&s).await;
            let port = s.tcp_port();
            let ca_path = s.data_dir().join("test-ca.pem");
            std::fs::write(&ca_path, &ca).unwrap();
            let ca_q = encode(&ca_path.to_string_lossy());
            let base = |host: &str, q: &str| {
                format!("postgresql://appuser:k%2Ble%2CU2kG1Gb0cp_@{host}:{port}/appdb?{q}")
            };

            for q in ["sslmode=require", "sslmode=prefer", "sslmode=allow"] {
                let c = p(&base("127.0.0.1", q)).connect().await.unwrap();
                assert!(uses_tls(&c).await, "{q}");
            }
            let c = p(&base("127.0.0.1", "sslmode=disable"))
                .connect()
                .await
                .unwrap();
            assert!(!uses_tls(&c).await);

            let c = p(&base(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={ca_q}"),
            ))
            .connect()
            .await
            .unwrap();
            assert!(uses_tls(&c).await);
            let c = p(&base(
                "127.0.0.1",
                &format!("sslmode=verify-ca&sslrootcert={ca_q}"),
            ))
            .connect()
            .await
            .unwrap();
            assert!(uses_tls(&c).await);
            // require + sslrootcert behaves like verify-ca (libpq).
            p(&base(
                "127.0.0.1",
                &format!("sslmode=require&sslrootcert={ca_q}"),
            ))
            .connect()
            .await
            .unwrap();

            let e = conn_err(&base(
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={ca_q}"),
            ))
            .await;
            assert!(e.contains("not valid for host name \"127.0.0.1\""), "{e}");
            let e = conn_err(&base("localhost", "sslmode=verify-full")).await;
            assert!(e.contains("not signed by a trusted CA"), "{e}");
            let e = conn_err(&base("localhost", "sslmode=verify-ca")).await;
            assert!(e.contains("not signed by a trusted CA"), "{e}");
            let e = conn_err(&base(
                "localhost",
                "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            ))
            .await;
            assert!(
                e.contains("cannot read sslrootcert file /nonexistent/ca.pem"),
                "{e}"
            );

            // A server that only accepts TLS connections (hostssl in pg_hba).
            let su = p(&s.url("postgres")).connect().await.unwrap();
            std::fs::write(
                s.data_dir().join("data/pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
            )
            .unwrap();
            su.batch_execute("select pg_reload_conf()").await.unwrap();
            let plain = base("127.0.0.1", "sslmode=disable");
            let mut e = String::new();
            for _ in 0..100 {
                match p(&plain).connect().await {
                    Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    Err(err) => {
                        e = format!("{err:#}");
                        break;
                    }
                }
            }
            assert!(e.contains("the server requires TLS"), "{e}");
            assert!(!e.contains(PW), "{e}");
            p(&base("127.0.0.1", "sslmode=require"))
                .connect()
                .await
                .unwrap();
            drop((c, su));
            tokio::task::spawn_blocking(move || s.stop())
                .await
                .unwrap()
                .unwrap();
        }
    }
}
