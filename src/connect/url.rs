//! The target: a connection string (URL or keyword/value) completed from the `PG*`
//! environment variables and the password file, ready to connect. It is shown only through
//! [`TargetUrl::redacted`] (which `Display` and `Debug` use too), so the password never
//! reaches a log, an error message or `Debug` output — even when the string is malformed.

use std::fmt;
use std::time::Duration;

use anyhow::Result;
use tokio_postgres::Config;
use tokio_postgres::config::Host;

use super::conninfo;
use super::redact::redact;
use super::settings::{self, Origin, Vars};
use super::tls;
use crate::error::usage;

/// What `pg_stat_activity` shows for cutover's sessions unless the target sets a name.
pub(crate) use super::settings::DEFAULT_APPLICATION_NAME;

/// A parsed target. Clone it freely.
#[derive(Clone)]
pub(crate) struct TargetUrl {
    pub(super) config: Config,
    pub(super) tls: tls::Settings,
    /// `None` = wait forever (`connect_timeout=0`, like libpq).
    pub(super) connect_timeout: Option<Duration>,
    /// What was written, redacted; or, for the `PG*` variables alone, what they say.
    pub(super) shown: String,
    /// Where the password came from, `None` if there is none.
    pub(super) password_from: Option<Origin>,
}

impl TargetUrl {
    /// Parses a URL (`postgres://`, `postgresql://`, `postgresql+<driver>://`) or libpq
    /// keyword/value settings; the `PG*` environment variables and the password file fill
    /// in what it leaves out. "" means the `PG*` variables alone. A malformed target is a
    /// usage error (exit 2) that shows the string redacted.
    pub(crate) fn parse(s: &str) -> Result<TargetUrl> {
        let (url, warnings) = Self::parse_with(s, &|name| std::env::var(name).ok())?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        Ok(url)
    }

    /// [`TargetUrl::parse`] with the environment given, and the warnings returned.
    pub(super) fn parse_with(s: &str, vars: Vars<'_>) -> Result<(TargetUrl, Vec<String>)> {
        let invalid = |why: String| {
            if s.trim().is_empty() {
                usage(format!(
                    "invalid target (from the PG* environment variables): {why}"
                ))
            } else {
                usage(format!("invalid target {}: {why}", redact(s)))
            }
        };
        let pairs = conninfo::split(s).map_err(invalid)?;
        let built = settings::build(pairs, vars).map_err(invalid)?;
        let mut url = TargetUrl {
            config: built.config,
            tls: built.tls,
            connect_timeout: built.connect_timeout,
            shown: redact(s),
            password_from: built.password_from,
        };
        if s.trim().is_empty() {
            url.shown = format!("{} (from the PG* environment variables)", url.described());
        }
        Ok((url, built.warnings))
    }

    /// The target with any password replaced by `***`.
    pub(crate) fn redacted(&self) -> String {
        self.shown.clone()
    }

    /// The database named (`None`: the server uses the user name).
    pub(crate) fn dbname(&self) -> Option<&str> {
        self.config.get_dbname()
    }

    /// The user the connection authenticates as.
    pub(crate) fn user(&self) -> Option<&str> {
        self.config.get_user()
    }

    /// Where the target points, for messages: `host:port` or the socket path, per host.
    pub(crate) fn server(&self) -> String {
        let hosts = self.config.get_hosts();
        let addrs = self.config.get_hostaddrs();
        let ports = self.config.get_ports();
        let n = hosts.len().max(addrs.len());
        let mut parts = Vec::new();
        for i in 0..n {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            let host = match (hosts.get(i), addrs.get(i)) {
                (Some(Host::Unix(dir)), _) => {
                    parts.push(format!("socket {}/.s.PGSQL.{port}", dir.display()));
                    continue;
                }
                (Some(Host::Tcp(name)), _) => name.clone(),
                (None, Some(addr)) => addr.to_string(),
                (None, None) => continue,
            };
            parts.push(if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            });
        }
        parts.join(", ")
    }

    /// `host=… port=… user=… dbname=…` of the effective settings, without the password.
    fn described(&self) -> String {
        let mut out = format!("server {}", self.server());
        if let Some(u) = self.user() {
            out.push_str(&format!(", user {u}"));
        }
        if let Some(d) = self.dbname() {
            out.push_str(&format!(", database {d}"));
        }
        out
    }

    /// Whether TCP keepalives and `tcp_user_timeout` bound how long a dead server goes
    /// unnoticed, and how long that is at most (roughly).
    pub(super) fn dead_peer_bound(&self) -> Option<Duration> {
        let c = &self.config;
        let keepalive = c.get_keepalives().then(|| {
            c.get_keepalives_idle()
                + c.get_keepalives_interval()
                    .unwrap_or(Duration::from_secs(75))
                    * c.get_keepalives_retries().unwrap_or(9)
        });
        match (keepalive, c.get_tcp_user_timeout().copied()) {
            (Some(k), Some(u)) => Some(k.max(u)),
            (k, u) => k.or(u),
        }
    }

    #[cfg(test)]
    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    /// The same server and settings, another database.
    #[cfg(test)]
    pub(super) fn with_dbname(&self, db: &str) -> TargetUrl {
        let mut t = self.clone();
        t.config.dbname(db);
        t
    }
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
