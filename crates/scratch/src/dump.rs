//! `pg_dump -s` of a database, so a scratch cluster can be given a real target's schema.
//! Runs the `pg_dump` beside the server binaries (the same version as the scratch server,
//! so what it writes that server can run). The URL may be in any spelling cutover accepts
//! (`postgresql+psycopg2://…`); its password goes to `pg_dump` through the environment
//! (`PGPASSWORD`, PostgreSQL docs "Environment Variables"), never on its command line,
//! which other users of the machine can read.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use percent_encoding::percent_decode_str;

use crate::server::find_bindir;

/// The schema of the database at `url`, as `pg_dump --schema-only` writes it.
pub fn schema_only(url: &str) -> Result<String> {
    let pg_dump = find_bindir()?.join("pg_dump");
    if !pg_dump.is_file() {
        bail!(
            "{} not found: install PostgreSQL's client programs beside its server (apt-get install postgresql)",
            pg_dump.display()
        );
    }
    let (conninfo, password) = libpq_url(url);
    let mut cmd = Command::new(&pg_dump);
    cmd.args(["--schema-only", "--no-password", "--dbname"])
        .arg(&conninfo)
        .stdin(Stdio::null());
    if let Some(p) = &password {
        cmd.env("PGPASSWORD", OsStr::from_bytes(p));
    }
    if !url.contains("connect_timeout=") {
        // cutover's own default; libpq would wait forever.
        cmd.env("PGCONNECT_TIMEOUT", "10");
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {}", pg_dump.display()))?;
    if !out.status.success() {
        bail!(
            "{} --schema-only failed ({}): {}",
            pg_dump.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).context("pg_dump wrote a schema that is not UTF-8")
}

/// `url` as libpq reads it (`postgresql://`, no password) and the password apart, decoded.
/// Everything else cutover accepts in a URL libpq accepts too.
fn libpq_url(url: &str) -> (String, Option<Vec<u8>>) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (before_q, query) = match rest.find('?') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut password = None;
    let mut out = String::from("postgresql://");
    match before_q.rfind('@') {
        Some(at) => {
            let (userinfo, hostpath) = (&before_q[..at], &before_q[at..]);
            let user = match userinfo.split_once(':') {
                Some((user, p)) => {
                    password = Some(percent_decode_str(p).collect::<Vec<u8>>());
                    user
                }
                None => userinfo,
            };
            out.push_str(user);
            out.push_str(hostpath);
        }
        None => out.push_str(before_q),
    }
    let mut kept = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("password", v)) => password = Some(percent_decode_str(v).collect()),
            _ => kept.push(pair),
        }
    }
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    (out, password.filter(|p| !p.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url() {
        let (u, p) = libpq_url("postgresql+psycopg2://app:k%2Ble%2CU2@db.example:5433/appdb");
        assert_eq!(u, "postgresql://app@db.example:5433/appdb");
        assert_eq!(p.as_deref(), Some(&b"k+le,U2"[..]));
        let (u, p) =
            libpq_url("postgres://app@/appdb?host=/run/pg&password=s%40cret&sslmode=require");
        assert_eq!(u, "postgresql://app@/appdb?host=/run/pg&sslmode=require");
        assert_eq!(p.as_deref(), Some(&b"s@cret"[..]));
        let (u, p) = libpq_url("postgresql://h1,h2:5432/db");
        assert_eq!(u, "postgresql://h1,h2:5432/db");
        assert_eq!(p, None);
        // A password with an '@' in it, percent-encoded or not after the last '@'.
        let (u, p) = libpq_url("postgresql://u:p%40ss@host/db");
        assert_eq!(
            (u.as_str(), p.as_deref()),
            ("postgresql://u@host/db", Some(&b"p@ss"[..]))
        );
    }
}
