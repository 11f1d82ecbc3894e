//! A connection string as the user wrote it, split into libpq's (keyword, value) pairs.
//!
//! Two spellings, both from libpq's "Connection Strings" documentation: a URL
//! (`postgresql://user:password@host:port,host2/dbname?keyword=value`, with SQLAlchemy's
//! `postgresql+asyncpg://`, `+psycopg2://`, `+psycopg://` accepted too) and keyword/value
//! settings (`host=db.example.com dbname=app user=loader`). A URL becomes the pairs libpq
//! would make of it: userinfo into `user` and `password`, the hosts and ports into `host` and
//! `port` lists, the path into `dbname`. What each keyword means is `settings.rs`'s concern.
//!
//! Errors never quote the text they complain about unless it cannot be part of a password:
//! they name what is wrong instead.

pub(super) type Pairs = Vec<(String, String)>;

/// The pairs of `s`, in the order written (a later pair overrides an earlier one).
pub(super) fn split(s: &str) -> Result<Pairs, String> {
    if s.contains("://") {
        url(s)
    } else if s.trim().is_empty() {
        Ok(Vec::new())
    } else if s.contains('=') {
        keyword_value(s)
    } else {
        Err(
            "expected a URL like postgresql://user@host:5432/dbname or settings like \"host=db.example.com dbname=app user=loader\""
                .to_string(),
        )
    }
}

fn url(s: &str) -> Result<Pairs, String> {
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err("expected a URL like postgresql://user@host:5432/dbname".to_string());
    };
    check_scheme(scheme)?;
    let (before_q, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    if !before_q.contains('@') && query.is_some_and(|q| q.contains('@')) {
        return Err(
            "'@' after '?': if the password contains special characters, percent-encode them (? as %3F, @ as %40, / as %2F, # as %23, % as %25)"
                .to_string(),
        );
    }
    let mut pairs = Pairs::new();
    // The last '@' ends the userinfo, so a raw '/' or '@' in a password still works.
    let hostpath = match before_q.rsplit_once('@') {
        Some((userinfo, hostpath)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            let user = decode(user)
                .map_err(|_| "the user name has invalid percent-encoding (write % as %25)")?;
            if !user.is_empty() {
                pairs.push(("user".into(), user));
            }
            if let Some(p) = password {
                let p = decode(p).map_err(|_| {
                    "the password has invalid percent-encoding (write % as %25) or is not UTF-8"
                })?;
                if !p.is_empty() {
                    pairs.push(("password".into(), p));
                }
            }
            hostpath
        }
        None => before_q,
    };
    let (hostlist, path) = match hostpath.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (hostpath, None),
    };
    if !hostlist.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for item in hostlist.split(',') {
            let (h, p) = host_port(item)?;
            hosts.push(h);
            ports.push(p);
        }
        pairs.push(("host".into(), hosts.join(",")));
        if ports.iter().any(|p| !p.is_empty()) {
            pairs.push(("port".into(), ports.join(",")));
        }
    }
    if let Some(p) = path {
        let db = decode(p).map_err(|_| "the database name has invalid percent-encoding")?;
        if !db.is_empty() {
            pairs.push(("dbname".into(), db));
        }
    }
    let mut after_password = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(match shown_name(pair).filter(|_| !after_password) {
                Some(n) => format!("query parameter \"{n}\" has no value (expected {n}=...)"),
                None => "a query parameter has no value (expected name=value)".to_string(),
            });
        };
        let key = decode(k).map_err(|_| "a query parameter name has invalid percent-encoding")?;
        let value = decode(v).map_err(|_| match key.as_str() {
            "password" => {
                "the password parameter has invalid percent-encoding (write % as %25)".to_string()
            }
            k => match shown_name(k) {
                Some(n) => format!("query parameter \"{n}\" has invalid percent-encoding"),
                None => "a query parameter has invalid percent-encoding".to_string(),
            },
        })?;
        after_password |= key == "password";
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn check_scheme(scheme: &str) -> Result<(), String> {
    let lower = scheme.to_ascii_lowercase();
    let (base, driver) = match lower.split_once('+') {
        Some((b, d)) => (b, Some(d)),
        None => (lower.as_str(), None),
    };
    let driver_ok = driver.is_none_or(|d| {
        !d.is_empty()
            && d.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    });
    if matches!(base, "postgres" | "postgresql") && driver_ok {
        return Ok(());
    }
    let shown = match shown_name(scheme) {
        Some(s) => format!("\"{s}\""),
        None if scheme.len() <= 40 && !scheme.contains(['@', ':']) => format!("\"{scheme}\""),
        None => "(not shown)".to_string(),
    };
    Err(format!(
        "unsupported scheme {shown}: expected postgresql://, postgres:// or postgresql+<driver>://"
    ))
}

/// One item of the URL's host list: `host`, `host:port`, `[v6]`, `[v6]:port`, `%2Fsocket%2Fdir`,
/// `:port` or nothing. The port comes back as written ("" when absent).
fn host_port(item: &str) -> Result<(String, String), String> {
    let bad_port = "invalid port in the URL (expected host:port with a port from 1 to 65535; a password goes in user:password@host)";
    let check = |p: &str| -> Result<String, String> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(p.to_string()),
            _ => Err(bad_port.to_string()),
        }
    };
    if let Some(rest) = item.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err("an IPv6 address in the URL lacks its closing ']'".to_string());
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("invalid IPv6 address between [ and ] in the URL".to_string());
        }
        let port = match after.strip_prefix(':') {
            Some(p) => check(p)?,
            None if after.is_empty() => String::new(),
            None => return Err("unexpected text after ']' in the URL".to_string()),
        };
        return Ok((addr.to_string(), port));
    }
    let (h, port) = match item.rsplit_once(':') {
        Some((h, p)) => (h, check(p)?),
        None => (item, String::new()),
    };
    let host = decode(h).map_err(|_| "the host in the URL has invalid percent-encoding")?;
    Ok((host, port))
}

/// libpq's keyword/value format: `keyword = value` separated by white space; a value is
/// single-quoted when it is empty or holds spaces, and `\'` and `\\` escape inside it.
fn keyword_value(s: &str) -> Result<Pairs, String> {
    let mut pairs = Pairs::new();
    let mut it = s.chars().peekable();
    let mut after_password = false;
    loop {
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if it.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = it.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if it.next() != Some('=') {
            return Err(match shown_name(&key).filter(|_| !after_password) {
                Some(k) => format!("missing '=' after \"{k}\" (expected keyword=value)"),
                None => "a setting lacks its '=' (expected keyword=value)".to_string(),
            });
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if it.next_if_eq(&'\'').is_some() {
            loop {
                match it.next() {
                    None => {
                        return Err(format!(
                            "the quoted value of {} has no closing quote",
                            shown_name(&key).unwrap_or("a setting")
                        ));
                    }
                    Some('\'') => break,
                    Some('\\') => value.extend(it.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = it.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(it.next());
                } else {
                    value.push(c);
                }
            }
        }
        after_password |= key == "password";
        pairs.push((key, value));
    }
}

/// A name is echoed only if it looks like one; anything odd may be part of a mis-encoded
/// password.
pub(super) fn shown_name(s: &str) -> Option<&str> {
    (!s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then_some(s)
}

/// Strict percent-decoding (libpq rejects a `%` not followed by two hex digits), to UTF-8.
fn decode(s: &str) -> Result<String, ()> {
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
    String::from_utf8(out).map_err(|_| ())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
#[cfg(test)]
pub(super) fn encode(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<(String, String)> {
        split(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(s: &str) -> String {
        split(s).expect_err(s)
    }

    #[test]
    fn urls_become_libpq_pairs() {
        assert_eq!(
            p(
                "postgresql+asyncpg://us%40er:p%40ss%2Fw%3Fd@h1:5433,[::1],%2Ftmp%2Fs:7/d%20b?sslmode=require&application_name=a%20b"
            ),
            kv(&[
                ("user", "us@er"),
                ("password", "p@ss/w?d"),
                ("host", "h1,::1,/tmp/s"),
                ("port", "5433,,7"),
                ("dbname", "d b"),
                ("sslmode", "require"),
                ("application_name", "a b"),
            ])
        );
        // A raw '/' and '@' in the password: the last '@' ends the userinfo.
        assert_eq!(
            p("postgres://u:a/b@c@h/db"),
            kv(&[
                ("user", "u"),
                ("password", "a/b@c"),
                ("host", "h"),
                ("dbname", "db")
            ])
        );
        assert_eq!(p("postgresql://"), kv(&[]));
        assert_eq!(
            p("postgresql:///db?host=/run/pg"),
            kv(&[("dbname", "db"), ("host", "/run/pg")])
        );
        assert_eq!(p("postgresql://u@h"), kv(&[("user", "u"), ("host", "h")]));
        assert_eq!(p("POSTGRESQL+psycopg2://h/"), kv(&[("host", "h")]));
    }

    #[test]
    fn keyword_value_settings() {
        assert_eq!(
            p(r"host=h port = 5433 dbname='my db' password='it\'s \\ x' user=a\ b options=''"),
            kv(&[
                ("host", "h"),
                ("port", "5433"),
                ("dbname", "my db"),
                ("password", r"it's \ x"),
                ("user", "a b"),
                ("options", ""),
            ])
        );
        assert!(err("host=h dbname").contains("missing '=' after \"dbname\""));
        assert!(err("host=h password='abc").contains("no closing quote"));
        assert!(!err("host=h password='abc").contains("abc"));
        assert!(err("u:secret").contains("expected a URL"));
        assert!(!err("u:secret").contains("secret"));
        assert_eq!(p("  "), kv(&[]));
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_text() {
        assert!(err("mysql://u:pw@h/db").contains("unsupported scheme \"mysql\""));
        assert!(err("postgresql+://u@h/db").contains("unsupported scheme"));
        for (url, want) in [
            ("postgres://u:S3CR3T/db", "invalid port in the URL"),
            (
                "postgresql://u:S3CR3T%zz@h/db",
                "password has invalid percent-encoding",
            ),
            ("postgresql://u:S3CR3T?x@h/db", "percent-encode them"),
            ("postgresql://u@[::1/db", "closing ']'"),
            ("postgresql://u@[zz]/db", "invalid IPv6"),
            ("postgresql://u@h:0/db", "invalid port"),
            ("postgresql://u@h:99999/db", "invalid port"),
            (
                "postgresql://u@h/db?password=S3CR3T%zz",
                "password parameter",
            ),
            ("postgresql://u@h/db?password=x&S3CR3T", "has no value"),
        ] {
            let e = err(url);
            assert!(e.contains(want), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
        assert!(err("postgresql://h/x?sslmode").contains("\"sslmode\" has no value"));
    }

    #[test]
    fn encode_roundtrip() {
        assert_eq!(encode("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(decode(&encode("a b/é")).unwrap(), "a b/é");
        assert!(decode("%4").is_err());
        assert!(decode("%g0").is_err());
        assert!(decode("%ff").is_err(), "not UTF-8");
    }
}
