//! Opening a session on the target: the TLS connector its settings ask for, a bound on the
//! whole connect (`connect_timeout`), and a connection task that says which server went when
//! an established connection dies (TCP keepalives and `tcp_user_timeout` are on, see
//! `settings.rs`, so a server that vanishes is noticed in bounded time).

use anyhow::{Result, anyhow};
use tokio_postgres::{Client, NoTls};

use super::explain::{self, Failure};
use super::tls;
use super::url::TargetUrl;

impl TargetUrl {
    /// Connects and spawns the connection task on the current tokio runtime.
    pub(crate) async fn connect(&self) -> Result<Client> {
        self.open().await
    }

    async fn open(&self) -> Result<Client> {
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
                if let Err(e) = conn.await {
                    eprintln!("{}", explain::lost(&server, bound, &e));
                }
            });
            Ok(client)
        } else {
            let tls = tls::connector(&self.tls).map_err(Failure::Setup)?;
            let (client, conn) = self.config.connect(tls).await.map_err(Failure::Pg)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    eprintln!("{}", explain::lost(&server, bound, &e));
                }
            });
            Ok(client)
        }
    }
}
