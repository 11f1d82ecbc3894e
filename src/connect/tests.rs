//! The target parsed from every spelling with a controlled environment, and connected to
//! real scratch clusters (`live`): what each setting does, every error message, and that the
//! password never shows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::config::{ChannelBinding, Host, SslMode as PgSslMode, TargetSessionAttrs};

use super::conninfo::encode;
use super::settings::Origin;
use super::tls::{ClientCert, Roots, SslMode};
use super::url::TargetUrl;

/// A home directory with nothing in it, so the tester's own ~/.pgpass never matters.
const NO_HOME: &str = "/nonexistent/cutover-test-home";

fn parse_env(s: &str, env: &[(&str, &str)]) -> anyhow::Result<(TargetUrl, Vec<String>)> {
    let map: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TargetUrl::parse_with(s, &|n| {
        map.get(n)
            .cloned()
            .or_else(|| (n == "HOME").then(|| NO_HOME.to_string()))
    })
}

fn with_env(s: &str, env: &[(&str, &str)]) -> TargetUrl {
    parse_env(s, env).unwrap_or_else(|e| panic!("{s}: {e:#}")).0
}

fn p(s: &str) -> TargetUrl {
    with_env(s, &[])
}

fn err_env(s: &str, env: &[(&str, &str)]) -> String {
    let e = parse_env(s, env).expect_err(s);
    assert_eq!(crate::error::exit_code(&e), 2, "a usage error: {e:#}");
    format!("{e:#}")
}

fn err(s: &str) -> String {
    err_env(s, &[])
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

fn password(t: &TargetUrl) -> Option<&str> {
    t.config()
        .get_password()
        .map(|p| std::str::from_utf8(p).unwrap())
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
        assert_eq!(password(&t), Some("pw"));
        assert_eq!(hosts(&t), ["tcp:h"]);
        assert_eq!(t.config().get_ports(), [5433]);
        assert_eq!(t.dbname(), Some("db"));
        assert_eq!(t.redacted(), format!("{scheme}://u:***@h:5433/db"));
        assert_eq!(t.password_from, Some(Origin::Written));
    }
    assert!(err("mysql://u:pw@h/db").contains("unsupported scheme \"mysql\""));
    assert!(err("u:secret@h/db").contains("expected a URL like"));
    assert!(!err("u:secret@h/db").contains("secret"));
}

#[test]
fn defaults_every_session_gets() {
    let t = p("postgresql://appuser:k%2Ble%2CU2kG1Gb0cp_@127.0.0.1:5432/appdb");
    assert_eq!(password(&t), Some("k+le,U2kG1Gb0cp_"));
    assert_eq!(
        t.redacted(),
        "postgresql://appuser:***@127.0.0.1:5432/appdb"
    );
    let c = t.config();
    assert_eq!(c.get_application_name(), Some("cutover"));
    assert_eq!(t.connect_timeout, Some(Duration::from_secs(10)));
    assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(10)));
    assert_eq!(t.tls.mode, SslMode::Prefer);
    assert_eq!(c.get_ssl_mode(), PgSslMode::Prefer);
    assert!(c.get_keepalives());
    assert_eq!(c.get_keepalives_idle(), Duration::from_secs(30));
    assert_eq!(c.get_keepalives_interval(), Some(Duration::from_secs(10)));
    assert_eq!(c.get_keepalives_retries(), Some(3));
    assert_eq!(c.get_tcp_user_timeout(), Some(&Duration::from_secs(60)));
    assert_eq!(t.dead_peer_bound(), Some(Duration::from_secs(60)));
    let t = p("postgresql://u@h/db");
    assert_eq!(password(&t), None);
    assert_eq!(t.password_from, None);
    assert_eq!(t.redacted(), "postgresql://u@h/db");
    let t = p("postgresql://h");
    assert_eq!(t.dbname(), None);
    assert!(t.user().is_some(), "defaults to the OS user");
    assert_eq!(t.config().get_ports(), [5432]);
}

#[test]
fn hosts_ports_and_sockets() {
    let t = p("postgresql://u:pw@[::1]:6543/db");
    assert_eq!(hosts(&t), ["tcp:::1"]);
    assert_eq!(t.server(), "[::1]:6543");
    let t = p("postgresql://u@h1:5433,h2,[::1]:5434/db");
    assert_eq!(hosts(&t), ["tcp:h1", "tcp:h2", "tcp:::1"]);
    assert_eq!(t.config().get_ports(), [5433, 5432, 5434]);
    assert_eq!(t.server(), "h1:5433, h2:5432, [::1]:5434");
    assert!(err("postgresql://u@a,b/db?port=1,2,3").contains("3 ports given for 2 hosts"));
    let t = p("postgresql://u@/db");
    assert_eq!(hosts(&t), ["unix:/var/run/postgresql"]);
    assert_eq!(t.config().get_ssl_mode(), PgSslMode::Disable);
    let t = p("postgresql://u@/db?host=/tmp/sock&port=6000");
    assert_eq!(hosts(&t), ["unix:/tmp/sock"]);
    assert_eq!(t.server(), "socket /tmp/sock/.s.PGSQL.6000");
    let t = p("postgresql://u@%2Ftmp%2Fdir:7000/db");
    assert_eq!(hosts(&t), ["unix:/tmp/dir"]);
    assert_eq!(t.config().get_ports(), [7000]);
    // The host parameter overrides the authority (later settings win).
    let t = p("postgresql://u@ignored/db?host=db.example.com");
    assert_eq!(hosts(&t), ["tcp:db.example.com"]);
    let t = p("host=h1,h2 port=5,6 target_session_attrs=read-write load_balance_hosts=random");
    assert_eq!(t.config().get_ports(), [5, 6]);
    assert_eq!(
        t.config().get_target_session_attrs(),
        TargetSessionAttrs::ReadWrite
    );
}

#[test]
fn query_parameters() {
    let t = p(
        "postgresql://h/x?sslmode=verify-full&sslrootcert=/etc/ca.pem&port=6000&user=bob&password=s%26cret&dbname=other&application_name=me&connect_timeout=3&options=-c%20work_mem%3D64MB&keepalives_idle=5&keepalives_interval=2&keepalives_retries=4&tcp_user_timeout=2500&channel_binding=require",
    );
    assert_eq!(t.tls.mode, SslMode::VerifyFull);
    assert_eq!(t.tls.roots, Some(Roots::File("/etc/ca.pem".into())));
    let c = t.config();
    assert_eq!(c.get_ports(), [6000]);
    assert_eq!(t.user(), Some("bob"));
    assert_eq!(password(&t), Some("s&cret"));
    assert_eq!(t.dbname(), Some("other"));
    assert_eq!(c.get_application_name(), Some("me"));
    assert_eq!(t.connect_timeout, Some(Duration::from_secs(3)));
    assert_eq!(c.get_options(), Some("-c work_mem=64MB"));
    assert_eq!(c.get_keepalives_idle(), Duration::from_secs(5));
    assert_eq!(c.get_keepalives_interval(), Some(Duration::from_secs(2)));
    assert_eq!(c.get_keepalives_retries(), Some(4));
    // Milliseconds, as in libpq.
    assert_eq!(c.get_tcp_user_timeout(), Some(&Duration::from_millis(2500)));
    assert_eq!(c.get_channel_binding(), ChannelBinding::Require);
    assert_eq!(c.get_ssl_mode(), PgSslMode::Require);
    assert!(t.redacted().contains("password=***"));
    assert!(!t.redacted().contains("cret"));
    for (m, want) in [
        ("disable", PgSslMode::Disable),
        ("allow", PgSslMode::Prefer),
        ("prefer", PgSslMode::Prefer),
        ("require", PgSslMode::Require),
        ("verify-ca", PgSslMode::Require),
    ] {
        let t = p(&format!("postgresql://h/x?sslmode={m}"));
        assert_eq!(t.config().get_ssl_mode(), want);
        // asyncpg (SQLAlchemy's asyncpg dialect) writes ssl= for the same values.
        let a = p(&format!("postgresql+asyncpg://h/x?ssl={m}"));
        assert_eq!(a.tls.mode.as_str(), m);
    }
    let t = p("postgresql://h/x?connect_timeout=0&tcp_user_timeout=0&keepalives=0");
    assert_eq!(t.connect_timeout, None);
    assert_eq!(t.config().get_tcp_user_timeout(), None);
    assert!(!t.config().get_keepalives());
    let t = p("postgresql://h/x?fallback_application_name=app");
    assert_eq!(t.config().get_application_name(), Some("app"));
}

#[test]
fn bad_settings_are_named() {
    for (target, want) in [
        ("postgresql://h/x?sslmode=on", "invalid sslmode \"on\""),
        ("postgresql+asyncpg://h/x?ssl=true", "invalid ssl \"true\""),
        (
            "postgresql://h/x?connect_timeout=abc",
            "invalid connect_timeout \"abc\"",
        ),
        (
            "postgresql://h/x?tcp_user_timeout=1s",
            "expected milliseconds",
        ),
        ("postgresql://h/x?port=99999", "invalid port \"99999\""),
        (
            "postgresql://h/x?target_session_attrs=primary",
            "invalid target_session_attrs",
        ),
        (
            "postgresql://h/x?channel_binding=yes",
            "invalid channel_binding \"yes\"",
        ),
        (
            "postgresql://h/x?keepalives_idle=x",
            "invalid keepalives_idle",
        ),
        ("host=h hostaddr=not-an-ip", "invalid hostaddr"),
        (
            "postgresql://h/x?sslmode=disable&channel_binding=require",
            "channel_binding=require needs TLS",
        ),
        (
            "postgresql://h/x?sslmode=require&sslrootcert=system",
            "may not be used with sslrootcert=system",
        ),
        ("postgresql://h/x?bogus=1", "unknown setting \"bogus\""),
    ] {
        let e = err(target);
        assert!(e.contains(want), "{target}: {e}");
        assert!(
            e.contains("invalid target postgresql") || e.contains("invalid target host"),
            "{e}"
        );
    }
    let e = err_env("postgresql://h/x", &[("PGSSLMODE", "bogus")]);
    assert!(e.contains("invalid PGSSLMODE \"bogus\""), "{e}");
    // A fragment after a raw '&' in a password is not echoed as a setting name.
    let e = err("postgresql://u@h/db?password=ab&cd=ef");
    assert!(!e.contains("cd"), "{e}");
    assert!(e.contains("percent-encode"), "{e}");
    let e = err("postgresql://u:ab?cd=ef@h/db");
    assert!(!e.contains("cd"), "{e}");
    assert!(e.contains("percent-encode"), "{e}");
}

#[test]
fn keyword_value_settings() {
    let t = p(
        "host=db.example.com port=5433 dbname='my db' user=loader password='p w' sslmode=verify-full",
    );
    assert_eq!(hosts(&t), ["tcp:db.example.com"]);
    assert_eq!(t.dbname(), Some("my db"));
    assert_eq!(password(&t), Some("p w"));
    assert_eq!(t.tls.mode, SslMode::VerifyFull);
    assert_eq!(
        t.redacted(),
        "host=db.example.com port=5433 dbname='my db' user=loader password=*** sslmode=verify-full"
    );
}

#[test]
fn environment_fills_what_the_string_leaves_out() {
    let env = [
        ("PGHOST", "db.internal"),
        ("PGPORT", "6432"),
        ("PGUSER", "loader"),
        ("PGPASSWORD", "from-env"),
        ("PGDATABASE", "app"),
        ("PGSSLMODE", "verify-full"),
        ("PGSSLROOTCERT", "/etc/ca.pem"),
        ("PGAPPNAME", "cutover-day"),
        ("PGCONNECT_TIMEOUT", "4"),
        ("PGOPTIONS", "-c lock_timeout=5s"),
        ("PGTARGETSESSIONATTRS", "read-write"),
    ];
    let t = with_env("postgresql://", &env);
    assert_eq!(hosts(&t), ["tcp:db.internal"]);
    assert_eq!(t.config().get_ports(), [6432]);
    assert_eq!(t.user(), Some("loader"));
    assert_eq!(password(&t), Some("from-env"));
    assert_eq!(t.password_from, Some(Origin::Env("PGPASSWORD")));
    assert_eq!(t.dbname(), Some("app"));
    assert_eq!(
        t.tls.mode,
        SslMode::VerifyFull,
        "PGSSLMODE=verify-full is honoured"
    );
    assert_eq!(t.config().get_ssl_mode(), PgSslMode::Require);
    assert_eq!(t.tls.roots, Some(Roots::File("/etc/ca.pem".into())));
    assert_eq!(t.config().get_application_name(), Some("cutover-day"));
    assert_eq!(t.connect_timeout, Some(Duration::from_secs(4)));
    assert_eq!(t.config().get_options(), Some("-c lock_timeout=5s"));
    assert_eq!(
        t.config().get_target_session_attrs(),
        TargetSessionAttrs::ReadWrite
    );
    // What the string says wins.
    let t = with_env(
        "postgresql://u:pw@h:1/db?sslmode=disable&application_name=x",
        &env,
    );
    assert_eq!(
        (hosts(&t), t.config().get_ports()),
        (vec!["tcp:h".to_string()], &[1][..])
    );
    assert_eq!(
        (t.user(), password(&t), t.dbname()),
        (Some("u"), Some("pw"), Some("db"))
    );
    assert_eq!(t.tls.mode, SslMode::Disable);
    assert_eq!(t.config().get_application_name(), Some("x"));
    // The PG* variables alone (the empty string): shown by what they say.
    let t = with_env("", &env);
    assert_eq!(
        t.redacted(),
        "server db.internal:6432, user loader, database app (from the PG* environment variables)"
    );
    let e = err_env("", &[("PGPORT", "x")]);
    assert!(
        e.contains("invalid target (from the PG* environment variables): invalid PGPORT \"x\""),
        "{e}"
    );
    // sslrootcert=system makes verify-full the default, as in libpq.
    let t = with_env("postgresql://h/db", &[("PGSSLROOTCERT", "system")]);
    assert_eq!(
        (t.tls.mode, t.tls.roots.clone()),
        (SslMode::VerifyFull, Some(Roots::System))
    );
}

/// A private directory for files a test writes.
fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cutover-connect-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_private(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn password_file() {
    let home = scratch_dir("pgpass");
    let home_s = home.to_str().unwrap();
    let pgpass = home.join(".pgpass");
    write_private(
        &pgpass,
        "db.example.com:5432:app:loader:from-file\nlocalhost:*:*:loader:local\n",
        0o600,
    );
    let env = [("HOME", home_s)];
    let t = with_env("postgresql://loader@db.example.com/app", &env);
    assert_eq!(password(&t), Some("from-file"));
    assert_eq!(t.password_from, Some(Origin::File(pgpass.clone())));
    assert!(!format!("{t:?}").contains("from-file"));
    // A Unix socket in the default directory matches "localhost".
    let t = with_env("postgresql://loader@/app", &env);
    assert_eq!(password(&t), Some("local"));
    // PGPASSWORD and the written password come first.
    let t = with_env(
        "postgresql://loader@db.example.com/app",
        &[("HOME", home_s), ("PGPASSWORD", "e")],
    );
    assert_eq!(password(&t), Some("e"));
    // No matching line: no password.
    assert_eq!(
        password(&with_env("postgresql://other@db.example.com/app", &env)),
        None
    );
    // PGPASSFILE and passfile name another file.
    let other = home.join("other");
    write_private(&other, "*:*:*:*:elsewhere\n", 0o600);
    let t = with_env(
        "postgresql://u@h/d",
        &[("HOME", home_s), ("PGPASSFILE", other.to_str().unwrap())],
    );
    assert_eq!(password(&t), Some("elsewhere"));
    let t = with_env(&format!("host=h user=u passfile={}", other.display()), &env);
    assert_eq!(password(&t), Some("elsewhere"));
    // Readable by others: ignored, with a warning naming the file.
    write_private(&pgpass, "*:*:*:*:leaky\n", 0o644);
    let (t, warnings) = parse_env("postgresql://loader@db.example.com/app", &env).unwrap();
    assert_eq!(password(&t), None);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("has group or world access"),
        "{warnings:?}"
    );
    assert!(warnings[0].contains(".pgpass"), "{warnings:?}");
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn certificates_from_settings_and_home() {
    let home = scratch_dir("certs");
    let pg = home.join(".postgresql");
    std::fs::create_dir_all(&pg).unwrap();
    let env = [("HOME", home.to_str().unwrap())];
    let t = with_env("postgresql://h/db?sslmode=require", &env);
    assert_eq!((t.tls.roots.clone(), t.tls.client.clone()), (None, None));
    assert_eq!(t.tls.verifying_roots(), None);
    for f in ["root.crt", "postgresql.crt", "postgresql.key"] {
        std::fs::write(pg.join(f), "x").unwrap();
    }
    // libpq: with ~/.postgresql/root.crt present, require verifies the chain.
    let t = with_env("postgresql://h/db?sslmode=require", &env);
    assert_eq!(
        t.tls.verifying_roots(),
        Some(Roots::File(pg.join("root.crt")))
    );
    assert_eq!(
        t.tls.client,
        Some(ClientCert {
            cert: pg.join("postgresql.crt"),
            key: pg.join("postgresql.key")
        })
    );
    let t = with_env(
        "postgresql://h/db?sslcert=/c.pem&sslkey=/k.pem&sslrootcert=/r.pem",
        &env,
    );
    assert_eq!(t.tls.roots, Some(Roots::File("/r.pem".into())));
    assert_eq!(
        t.tls.client,
        Some(ClientCert {
            cert: "/c.pem".into(),
            key: "/k.pem".into()
        })
    );
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn password_warning_for_unverified_remote_servers() {
    let warn = |s: &str| p(s).exposure_warning();
    let w = warn("postgresql://u:pw@db.example.com/x?sslmode=require").unwrap();
    assert!(
        w.contains("db.example.com:5432") && w.contains("sslmode=verify-full"),
        "{w}"
    );
    assert!(!w.contains("pw@"), "{w}");
    assert!(
        warn("postgresql://u:pw@db.example.com/x?sslmode=disable")
            .unwrap()
            .contains("unencrypted")
    );
    assert!(warn("postgresql://u:pw@db.example.com/x?sslmode=verify-full").is_none());
    assert!(
        warn("postgresql://u@db.example.com/x?sslmode=require").is_none(),
        "no password"
    );
    assert!(warn("postgresql://u:pw@localhost/x").is_none());
    assert!(warn("postgresql://u:pw@127.0.0.1,[::1]/x").is_none());
    assert!(warn("postgresql://u:pw@/x?host=/tmp").is_none());
    assert!(warn("postgresql://u:pw@127.0.0.1,db.example.com/x").is_some());
}

#[test]
fn password_never_shown() {
    let pw = "Sup3rS3cret";
    for u in [
        format!("postgresql://u:{pw}@h/db"),
        format!("postgresql+asyncpg://u:{pw}@[::1]:5/db?sslmode=require"),
        format!("postgresql://u@h/db?password={pw}"),
        format!("host=h password={pw} dbname=x"),
        format!("host=h password='{pw} x' dbname=x"),
    ] {
        let t = p(&u);
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
    for u in [
        format!("postgres://u:{pw}/db"),
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
        format!("postgresql://u@h/db?password={pw}%zz"),
        format!("host=h password={pw} dbname"),
        format!("host=h password='{pw}"),
        format!("host=h password={pw} sslmode=x"),
    ] {
        let e = parse_env(&u, &[]).err().unwrap_or_else(|| panic!("{u}"));
        assert_eq!(crate::error::exit_code(&e), 2, "{u}");
        for shown in [format!("{e}"), format!("{e:#}"), format!("{e:?}")] {
            assert!(!shown.contains(pw), "{u} -> {shown}");
        }
    }
}

/// Against real scratch clusters (needs PostgreSQL server binaries).
mod live;
