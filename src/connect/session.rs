//! Opening a session on the target, and what every session cutover opens starts with.
//!
//! - `search_path` is pinned to `pg_catalog, pg_temp` by a schema-qualified call before
//!   anything else runs. cutover calls catalog functions and operators unqualified
//!   (`unnest`, `=`, `count`, `pg_try_advisory_xact_lock`, …); a role that may create objects
//!   in a schema on the search path could otherwise plant better-matching overloads that then
//!   run with cutover's privileges (PostgreSQL docs, "Schemas", "Usage Patterns";
//!   CVE-2018-1058). Target tables are schema-qualified in the SQL cutover writes.
//! - `application_name` is `cutover` unless the target sets one, so a lock holder or a
//!   long-running statement is recognisable in `pg_stat_activity`.
//! - TCP keepalives and `tcp_user_timeout` are on (see `settings.rs`), so a server that
//!   vanishes is noticed in bounded time; the connection task then says which server stopped
//!   answering.
//!   The server's side gets the same keepalive settings (`tcp_keepalives_idle`, `_interval`,
//!   `_count`), so a cutover that vanishes mid-load has its transaction rolled back and its
//!   locks released in about a minute, not after the server's two-hour default.
//! - A password that would reach a non-local server without `sslmode=verify-full` draws a
//!   warning: under prefer or require a server impersonating the target may ask for it in
//!   clear text and receive it.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, anyhow};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls};

use super::explain::{self, Failure};
use super::tls::{self, SslMode};
use super::url::TargetUrl;

/// The statement every pinned session runs first.
pub(super) const PIN_SEARCH_PATH: &str =
    "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)";

impl TargetUrl {
    /// Connects, pins `search_path`, and spawns the connection task on the current tokio
    /// runtime. Every session cutover reads or writes the target through comes from here.
    pub(crate) async fn connect(&self) -> Result<Client> {
        let client = self.open().await?;
        let mut setup = format!("{PIN_SEARCH_PATH};");
        let c = &self.config;
        if c.get_keepalives() {
            let set = |name: &str, v: u64| format!("pg_catalog.set_config('{name}', '{v}', false)");
            setup.push_str(&format!(
                " SELECT {}, {}, {};",
                set(
                    "tcp_keepalives_idle",
                    c.get_keepalives_idle().as_secs().max(1)
                ),
                set(
                    "tcp_keepalives_interval",
                    c.get_keepalives_interval()
                        .map_or(0, |d| d.as_secs().max(1))
                ),
                set(
                    "tcp_keepalives_count",
                    c.get_keepalives_retries().map_or(0, u64::from)
                ),
            ));
        }
        client.batch_execute(&setup).await.map_err(|e| {
            anyhow!(
                "cannot set up the session on {}: setting search_path and keepalives failed: {}",
                self.redacted(),
                crate::error::describe_pg(&e)
            )
        })?;
        Ok(client)
    }

    /// Connects WITHOUT pinning `search_path`: only for applying the user's own `--schema`
    /// SQL to a fresh scratch database, where an unqualified `CREATE TABLE` must land in
    /// `public` as it would under psql. Never use it for a session that reads or writes data.
    pub(crate) async fn connect_unpinned_for_schema_setup(&self) -> Result<Client> {
        self.open().await
    }

    async fn open(&self) -> Result<Client> {
        if let Some(w) = self.exposure_warning() {
            static ONCE: AtomicBool = AtomicBool::new(false);
            if !ONCE.swap(true, Ordering::Relaxed) {
                eprintln!("warning: {w}");
            }
        }
        let attempt = self.open_raw();
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
                explain::connect_error(self, &e).await
            )),
        }
    }

    async fn open_raw(&self) -> Result<Client, Failure> {
        let server = self.server();
        let bound = self.dead_peer_bound();
        if self.config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
            let (client, conn) = self.config.connect(NoTls).await.map_err(Failure::Pg)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await
                    && let Some(why) = explain::lost(&server, bound, &e)
                {
                    eprintln!("{why}");
                }
            });
            Ok(client)
        } else {
            let tls = tls::connector(&self.tls).map_err(Failure::Setup)?;
            let (client, conn) = self.config.connect(tls).await.map_err(Failure::Pg)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await
                    && let Some(why) = explain::lost(&server, bound, &e)
                {
                    eprintln!("{why}");
                }
            });
            Ok(client)
        }
    }

    /// A warning when a password would go to a non-local server whose identity is not
    /// checked (anything short of `sslmode=verify-full`).
    pub(super) fn exposure_warning(&self) -> Option<String> {
        self.config.get_password()?;
        if self.tls.mode == SslMode::VerifyFull || self.is_local() {
            return None;
        }
        let how = match self.tls.mode {
            SslMode::Disable => "unencrypted",
            _ => "encrypted, but without checking the server's certificate",
        };
        Some(format!(
            "the password for user \"{}\" goes to {} over a connection that is {how} (sslmode={}): a server impersonating it could ask for the password in clear text and receive it. Use sslmode=verify-full (with sslrootcert=FILE, or sslrootcert=system for a public CA) so the server must prove who it is.",
            self.user().unwrap_or("?"),
            self.server(),
            self.tls.mode
        ))
    }

    /// Every host is this machine (a Unix socket or a loopback address).
    fn is_local(&self) -> bool {
        let loopback = |name: &str| {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback())
        };
        let addrs = self.config.get_hostaddrs();
        if !addrs.is_empty() {
            return addrs.iter().all(|a| a.is_loopback());
        }
        self.config.get_hosts().iter().all(|h| match h {
            Host::Unix(_) => true,
            Host::Tcp(name) => loopback(name),
        })
    }
}
