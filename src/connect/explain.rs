//! A failed or lost connection in one sentence: what is wrong and what to do about it
//! (a wrong password, a refused port, an unknown host, TLS, channel binding, a server that
//! stopped answering). Nothing here ever shows a password: tokio-postgres errors do not carry
//! the configuration, and the target is shown only redacted.

use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;

use super::settings::Origin;
use super::tls;
use super::url::TargetUrl;

/// Why a connection attempt failed.
pub(super) enum Failure {
    /// Before reaching the server (the TLS setup: roots, client certificate).
    Setup(anyhow::Error),
    Pg(tokio_postgres::Error),
}

/// Where to look for the password that was refused.
fn password_hint(url: &TargetUrl) -> String {
    match &url.password_from {
        Some(Origin::Written) | None => "the user name and password in the target".to_string(),
        Some(Origin::Env(var)) => format!("the user name, and the password in {var}"),
        Some(Origin::File(path)) => format!(
            "the user name, and the password file {} (the first matching line wins)",
            path.display()
        ),
    }
}

/// A connect error as one sentence.
pub(super) async fn connect_error(url: &TargetUrl, e: &tokio_postgres::Error) -> String {
    let server = url.server();
    let user = url.user().unwrap_or("?");
    if let Some(db) = e.as_db_error() {
        let msg = db.message();
        let code = db.code();
        return if *code == SqlState::INVALID_PASSWORD {
            format!(
                "password authentication failed for user \"{user}\" on {server}: check {}",
                password_hint(url)
            )
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            && msg.contains("does not exist")
        {
            format!(
                "role \"{user}\" does not exist on {server}: create it or fix the user name in the target"
            )
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            && msg.contains("no encryption")
        {
            format!(
                "the server requires TLS ({msg}): use sslmode=verify-full (or require, verify-ca)"
            )
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            format!("the server rejected the connection: {msg}")
        } else if *code == SqlState::UNDEFINED_DATABASE {
            let dbname = url.dbname().unwrap_or(user);
            format!("database \"{dbname}\" does not exist on {server}: create it or fix the target")
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
            url.tls.mode
        );
    }
    if chain.contains("password missing") {
        return format!(
            "the server at {server} asks for a password for user \"{user}\" and none was given: set PGPASSWORD, add a line to ~/.pgpass (or PGPASSFILE), or put it in the target"
        );
    }
    if chain.contains("did not use channel binding") {
        return format!(
            "channel_binding=require, but {server} did not authenticate with SCRAM channel binding over TLS: it may not be the real server, or it authenticates by another method (pg_hba.conf should say scram-sha-256) or without TLS"
        );
    }
    if chain.contains("database does not allow writes") {
        return format!(
            "no server among {server} accepts writes (target_session_attrs=read-write): every one is a read-only standby or in read-only mode"
        );
    }
    if let Some(r) = tls::find_rustls_error(e) {
        return explain_tls(url, r);
    }
    // A DNS failure looks like any other I/O error; resolve again to tell.
    for (i, h) in url.config.get_hosts().iter().enumerate() {
        if let Host::Tcp(name) = h
            && name.parse::<std::net::IpAddr>().is_err()
        {
            let port = url.config.get_ports().get(i).copied().unwrap_or(5432);
            if let Err(err) = tokio::net::lookup_host((name.as_str(), port)).await {
                return format!(
                    "unknown host \"{name}\" (DNS lookup failed: {err}): check the host name in the target"
                );
            }
        }
    }
    if let Some(io) = find_io_error(e) {
        use std::io::ErrorKind as K;
        let unix = url
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

fn explain_tls(url: &TargetUrl, r: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let server = url.server();
    let mode = url.tls.mode;
    let roots = url
        .tls
        .verifying_roots()
        .map(|r| format!(", checked against {r}"))
        .unwrap_or_default();
    let host = match url.config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => String::new(),
    };
    match r {
        rustls::Error::InvalidCertificate(C::NotValidForName)
        | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => format!(
            "TLS certificate verification failed: the certificate of {server} is not valid for host name \"{host}\" (sslmode={mode}): connect using a name the certificate lists, or use sslmode=verify-ca"
        ),
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => format!(
            "TLS certificate verification failed: the certificate of {server} is not signed by a trusted CA (sslmode={mode}{roots}): pass the CA certificate with sslrootcert=/path/to/ca.pem"
        ),
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            format!("TLS certificate verification failed: the certificate of {server} has expired")
        }
        rustls::Error::InvalidCertificate(other) => format!(
            "TLS certificate verification failed for {server} (sslmode={mode}{roots}): {other}"
        ),
        rustls::Error::AlertReceived(alert) if url.tls.client.is_some() => format!(
            "TLS handshake with {server} failed: the server refused the client certificate ({alert:?}): check that sslcert is signed by the CA in the server's ssl_ca_file"
        ),
        other => format!("TLS handshake with {server} failed (sslmode={mode}): {other}"),
    }
}

/// What the connection task prints when an established connection dies of a network
/// failure: the server stopped answering (keepalives, `tcp_user_timeout`) or cannot be
/// reached any more. `None` for a server that ended the session or closed the connection,
/// which also happens on purpose (a scratch cluster stopping) and which the statement that
/// was running reports itself.
pub(super) fn lost(
    server: &str,
    bound: Option<Duration>,
    e: &tokio_postgres::Error,
) -> Option<String> {
    use std::io::ErrorKind as K;
    if e.as_db_error().is_some() {
        return None;
    }
    let why = match find_io_error(e)?.kind() {
        K::TimedOut => {
            let within = bound
                .map(|b| format!(" for about {} s", b.as_secs()))
                .unwrap_or_default();
            format!(
                "the server stopped answering: nothing sent to it was acknowledged{within} (tcp_user_timeout, TCP keepalives); it, or the network to it, is down or stalled"
            )
        }
        K::ConnectionReset | K::UnexpectedEof | K::BrokenPipe | K::ConnectionAborted => {
            return None;
        }
        _ => error_chain(e),
    };
    Some(format!("cutover: lost the connection to {server}: {why}"))
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
