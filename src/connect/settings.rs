//! What the written settings mean: libpq's keywords (PostgreSQL docs, "Parameter Key
//! Words"), the `PG*` environment variables filling what the string leaves out ("Environment
//! Variables"), the password file, and cutover's defaults, turned into a tokio-postgres
//! [`Config`] plus what cutover handles itself.
//!
//! tokio-postgres parses and checks the keywords it knows (hosts, ports, user, dbname,
//! options, application_name, keepalives, target_session_attrs, channel_binding, …). cutover
//! keeps `sslmode` (tokio-postgres stops at `require`; `verify-ca` and `verify-full` are
//! cutover's, over rustls), `sslrootcert`, `sslcert`, `sslkey`, asyncpg's `ssl` (an alias of
//! `sslmode`), `passfile`, `connect_timeout` (a bound on the whole connect, not each socket)
//! and `tcp_user_timeout` (milliseconds, as in libpq; tokio-postgres reads seconds).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::Config;

use super::conninfo::{Pairs, shown_name};
use super::pgpass;
use super::tls::{self, ClientCert, Roots, SslMode};

/// Socket directory used when nothing names a host (Debian's libpq default).
pub(super) const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
/// Without `connect_timeout`: connecting (TCP, TLS, authentication) may take this long.
pub(super) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Without `application_name`: what `pg_stat_activity` shows for cutover's sessions.
pub(crate) const DEFAULT_APPLICATION_NAME: &str = "cutover";
/// Without keepalive settings: probe an idle connection after 30 s, every 10 s, 3 times.
pub(super) const DEFAULT_KEEPALIVES: (Duration, Duration, u32) =
    (Duration::from_secs(30), Duration::from_secs(10), 3);
/// Without `tcp_user_timeout`: data the server has not acknowledged for this long means the
/// connection is dead.
pub(super) const DEFAULT_TCP_USER_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads an environment variable (the process's, or a test's).
pub(super) type Vars<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Where a setting's value came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The target string.
    Written,
    /// An environment variable.
    Env(&'static str),
    /// A password file.
    File(PathBuf),
}

/// Who interprets a keyword.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    TokioPostgres,
    Cutover,
}

/// The keywords accepted, the environment variable that fills each, and who reads it.
const KEYWORDS: &[(&str, Option<&str>, By)] = &[
    ("host", Some("PGHOST"), By::Cutover),
    ("hostaddr", Some("PGHOSTADDR"), By::TokioPostgres),
    ("port", Some("PGPORT"), By::Cutover),
    ("user", Some("PGUSER"), By::Cutover),
    ("password", Some("PGPASSWORD"), By::Cutover),
    ("passfile", Some("PGPASSFILE"), By::Cutover),
    ("dbname", Some("PGDATABASE"), By::TokioPostgres),
    ("options", Some("PGOPTIONS"), By::TokioPostgres),
    ("application_name", Some("PGAPPNAME"), By::Cutover),
    ("fallback_application_name", None, By::Cutover),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT"), By::Cutover),
    ("sslmode", Some("PGSSLMODE"), By::Cutover),
    ("sslrootcert", Some("PGSSLROOTCERT"), By::Cutover),
    ("sslcert", Some("PGSSLCERT"), By::Cutover),
    ("sslkey", Some("PGSSLKEY"), By::Cutover),
    (
        "sslnegotiation",
        Some("PGSSLNEGOTIATION"),
        By::TokioPostgres,
    ),
    (
        "channel_binding",
        Some("PGCHANNELBINDING"),
        By::TokioPostgres,
    ),
    (
        "target_session_attrs",
        Some("PGTARGETSESSIONATTRS"),
        By::TokioPostgres,
    ),
    (
        "load_balance_hosts",
        Some("PGLOADBALANCEHOSTS"),
        By::TokioPostgres,
    ),
    ("keepalives", None, By::TokioPostgres),
    ("keepalives_idle", None, By::TokioPostgres),
    ("keepalives_interval", None, By::TokioPostgres),
    ("keepalives_retries", None, By::TokioPostgres),
    ("tcp_user_timeout", None, By::Cutover),
];

/// Whether `k` is a setting cutover accepts (`ssl` included).
pub(super) fn is_keyword(k: &str) -> bool {
    k == "ssl" || KEYWORDS.iter().any(|kw| kw.0 == k)
}

/// A setting's value, and how to name it in a message (`sslmode`, or `PGSSLMODE`).
struct Value {
    text: String,
    label: String,
    origin: Origin,
}

/// Everything a connection needs.
pub(super) struct Built {
    pub(super) config: Config,
    pub(super) tls: tls::Settings,
    pub(super) connect_timeout: Option<Duration>,
    pub(super) password_from: Option<Origin>,
    /// Printed once the target is parsed (an ignored password file, …).
    pub(super) warnings: Vec<String>,
}

/// The settings of `pairs`, completed from `vars` and the password file.
pub(super) fn build(pairs: Pairs, vars: Vars<'_>) -> Result<Built, String> {
    let mut given: BTreeMap<&'static str, Value> = BTreeMap::new();
    let mut after_password = false;
    for (key, text) in pairs {
        // asyncpg (and SQLAlchemy's asyncpg dialect) spell sslmode `ssl`.
        let name = if key == "ssl" {
            "sslmode"
        } else {
            key.as_str()
        };
        let Some(&(keyword, _, _)) = KEYWORDS.iter().find(|k| k.0 == name) else {
            return Err(unknown(&key, after_password));
        };
        after_password |= keyword == "password";
        given.insert(
            keyword,
            Value {
                text,
                label: key,
                origin: Origin::Written,
            },
        );
    }
    for &(keyword, env, _) in KEYWORDS {
        if let Some(var) = env
            && !given.contains_key(keyword)
            && let Some(text) = vars(var).filter(|v| !v.is_empty())
        {
            given.insert(
                keyword,
                Value {
                    text,
                    label: var.to_string(),
                    origin: Origin::Env(var),
                },
            );
        }
    }
    let get = |k: &str| given.get(k).map(|v| v.text.as_str());
    let invalid = |k: &str, expected: &str| {
        let v = &given[k];
        format!("invalid {} \"{}\"{expected}", v.label, v.text)
    };
    let home = home_dir(vars);
    let mut warnings = Vec::new();

    // TLS.
    let system = get("sslrootcert") == Some("system");
    let mode = match get("sslmode") {
        Some(m) => SslMode::parse(m).map_err(|_| {
            invalid(
                "sslmode",
                ": expected disable, allow, prefer, require, verify-ca or verify-full",
            )
        })?,
        // libpq: sslrootcert=system makes verify-full the default.
        None if system => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if system && mode != SslMode::VerifyFull {
        return Err(format!(
            "sslmode={mode} may not be used with sslrootcert=system: the system's roots only identify a server together with its host name (use sslmode=verify-full)"
        ));
    }
    let in_home = |f: &str| home.as_ref().map(|h| h.join(".postgresql").join(f));
    let roots = match get("sslrootcert") {
        Some("system") => Some(Roots::System),
        Some(p) if !p.is_empty() => Some(Roots::File(PathBuf::from(p))),
        _ => in_home("root.crt").filter(|p| p.exists()).map(Roots::File),
    };
    let cert = match get("sslcert") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => in_home("postgresql.crt").filter(|p| p.exists()),
    };
    let client = cert.map(|cert| ClientCert {
        key: match get("sslkey") {
            Some(k) if !k.is_empty() => PathBuf::from(k),
            _ => in_home("postgresql.key").unwrap_or_else(|| cert.with_extension("key")),
        },
        cert,
    });
    if get("channel_binding") == Some("require") && mode == SslMode::Disable {
        return Err(
            "channel_binding=require needs TLS, but sslmode is disable: use sslmode=verify-full (or require)"
                .to_string(),
        );
    }

    // Timeouts.
    let seconds = |k: &str, default: Option<Duration>| -> Result<Option<Duration>, String> {
        match get(k) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n > 0 => Ok(Some(Duration::from_secs(n as u64))),
                Ok(_) => Ok(None),
                Err(_) => Err(invalid(k, " (expected whole seconds)")),
            },
        }
    };
    let connect_timeout = seconds("connect_timeout", Some(DEFAULT_CONNECT_TIMEOUT))?;
    let tcp_user_timeout = match get("tcp_user_timeout") {
        None => Some(DEFAULT_TCP_USER_TIMEOUT),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n > 0 => Some(Duration::from_millis(n as u64)),
            Ok(_) => None,
            Err(_) => return Err(invalid("tcp_user_timeout", " (expected milliseconds)")),
        },
    };

    // Hosts and ports.
    let hosts: Vec<String> = match get("host") {
        Some(h) => h
            .split(',')
            .map(|h| match h.trim() {
                "" => DEFAULT_SOCKET_DIR.to_string(),
                h => h.to_string(),
            })
            .collect(),
        None if get("hostaddr").is_some() => Vec::new(),
        None => vec![DEFAULT_SOCKET_DIR.to_string()],
    };
    let ports: Vec<String> = match get("port") {
        Some(p) => {
            let mut out = Vec::new();
            for item in p.split(',') {
                match item.trim() {
                    "" => out.push("5432".to_string()),
                    n => match n.parse::<u16>() {
                        Ok(port) if port > 0 => out.push(port.to_string()),
                        _ => return Err(invalid("port", " (expected a port from 1 to 65535)")),
                    },
                }
            }
            out
        }
        None => vec!["5432".to_string()],
    };
    let n_hosts = hosts
        .len()
        .max(get("hostaddr").map_or(0, |a| a.split(',').count()));
    if ports.len() > 1 && ports.len() != n_hosts {
        return Err(format!(
            "{} ports given for {} hosts (give one port, or one per host)",
            ports.len(),
            n_hosts
        ));
    }

    let user = match get("user") {
        Some(u) => u.to_string(),
        None => current_os_user().ok_or_else(|| {
            "no user given and the current OS user name is unknown: add user@ to the URL or set PGUSER"
                .to_string()
        })?,
    };
    let application_name = get("application_name")
        .or(get("fallback_application_name"))
        .unwrap_or(DEFAULT_APPLICATION_NAME)
        .to_string();

    // The password: written, PGPASSWORD, or the password file.
    let (password, password_from) = match given.get("password") {
        Some(v) => (Some(v.text.clone()), Some(v.origin.clone())),
        None => {
            let file = match get("passfile") {
                Some(f) if !f.is_empty() => Some(PathBuf::from(f)),
                _ => home.as_ref().map(|h| h.join(".pgpass")),
            };
            match file {
                Some(file) => {
                    let dbname = get("dbname").unwrap_or(&user);
                    let hostaddrs: Vec<&str> = get("hostaddr")
                        .map(|a| a.split(',').collect())
                        .unwrap_or_default();
                    let wants: Vec<pgpass::Want<'_>> = (0..n_hosts)
                        .map(|i| pgpass::Want {
                            host: match hosts.get(i).map(String::as_str) {
                                Some(DEFAULT_SOCKET_DIR) => "localhost",
                                Some(h) => h,
                                None => hostaddrs.get(i).copied().unwrap_or("localhost"),
                            },
                            port: ports.get(i).or(ports.first()).map_or("5432", |p| p),
                            dbname,
                            user: &user,
                        })
                        .collect();
                    let (pw, warning) = pgpass::lookup(&file, &wants);
                    warnings.extend(warning);
                    let from = pw.as_ref().map(|_| Origin::File(file));
                    (pw, from)
                }
                None => (None, None),
            }
        }
    };

    // What tokio-postgres reads, as a keyword/value string: each keyword checked on its own
    // first so that an error names it.
    let mut text = String::new();
    let mut add = |k: &str, v: &str, label: Option<&str>| -> Result<(), String> {
        let one = format!("{k}={}", quote(v));
        if let (Some(label), Err(_)) = (label, Config::from_str(&one)) {
            return Err(format!("invalid {label} \"{v}\""));
        }
        text.push_str(&one);
        text.push(' ');
        Ok(())
    };
    for (&keyword, v) in &given {
        if KEYWORDS
            .iter()
            .any(|k| k.0 == keyword && k.2 == By::TokioPostgres)
        {
            add(keyword, &v.text, Some(&v.label))?;
        }
    }
    if !hosts.is_empty() {
        add("host", &hosts.join(","), None)?;
    }
    add("port", &ports.join(","), None)?;
    add("user", &user, None)?;
    add("application_name", &application_name, None)?;
    let mut config =
        Config::from_str(&text).map_err(|e| format!("invalid connection settings: {e}"))?;
    if let Some(p) = password {
        config.password(p);
    }
    if let Some(t) = connect_timeout {
        config.connect_timeout(t);
    }
    if let Some(t) = tcp_user_timeout {
        config.tcp_user_timeout(t);
    }
    let (idle, interval, retries) = DEFAULT_KEEPALIVES;
    if get("keepalives_idle").is_none() {
        config.keepalives_idle(idle);
    }
    if get("keepalives_interval").is_none() {
        config.keepalives_interval(interval);
    }
    if get("keepalives_retries").is_none() {
        config.keepalives_retries(retries);
    }
    // libpq ignores sslmode on Unix sockets (the server offers no TLS there).
    let all_unix = !config.get_hosts().is_empty()
        && config.get_hostaddrs().is_empty()
        && config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, tokio_postgres::config::Host::Unix(_)));
    config.ssl_mode(if all_unix {
        tokio_postgres::config::SslMode::Disable
    } else {
        mode.to_tokio()
    });
    Ok(Built {
        config,
        tls: tls::Settings {
            mode,
            roots,
            client,
        },
        connect_timeout,
        password_from,
        warnings,
    })
}

fn unknown(key: &str, after_password: bool) -> String {
    match shown_name(key).filter(|_| !after_password) {
        Some(k) => format!(
            "unknown setting \"{k}\" (supported: {}, and ssl as asyncpg's name for sslmode)",
            KEYWORDS.iter().map(|k| k.0).collect::<Vec<_>>().join(", ")
        ),
        None => "unknown setting (if the password contains & or =, percent-encode them: & as %26, = as %3D)".to_string(),
    }
}

/// A keyword/value value, quoted for tokio-postgres' parser.
fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('\'');
    for c in v.chars() {
        if c == '\'' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('\'');
    s
}

/// `$HOME`, else the home directory of the effective user (libpq does the same).
fn home_dir(vars: Vars<'_>) -> Option<PathBuf> {
    if let Some(h) = vars("HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(h));
    }
    passwd_field(|p| p.pw_dir).map(PathBuf::from)
}

/// The effective user's login name, like libpq's default user.
fn current_os_user() -> Option<String> {
    passwd_field(|p| p.pw_name).or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
}

fn passwd_field(field: fn(&libc::passwd) -> *mut libc::c_char) -> Option<String> {
    // SAFETY: getpwuid_r writes into buffers we own; the field is read only when the call
    // succeeded and returned our struct, and is copied out before the buffer goes away.
    unsafe {
        let uid = libc::geteuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        let ptr = field(&pwd);
        if rc == 0 && !result.is_null() && !ptr.is_null() {
            return std::ffi::CStr::from_ptr(ptr)
                .to_str()
                .ok()
                .map(str::to_string);
        }
    }
    None
}
