//! The only way a connection string is ever shown: with every password replaced by `***`,
//! whether or not the string parses. A malformed string is redacted generously (when in
//! doubt, more is hidden), because a typo is exactly when a password lands in the wrong
//! place: `postgres://u:PASS/db` (no `@`) must not print PASS as a "port".

use super::settings::is_keyword;

/// `s` with the userinfo password, any `password=` value (URL query or keyword/value) and
/// anything that may be a misplaced password replaced by `***`.
pub(super) fn redact(s: &str) -> String {
    match s.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", redact_url_rest(rest)),
        None if s.contains('@') => {
            // Not a URL or keyword/value string we understand: keep only what follows the
            // last '@' (a host name), then mask password settings in it.
            let tail = &s[s.rfind('@').unwrap_or(0)..];
            format!("***{}", redact_settings(tail))
        }
        None => redact_settings(s),
    }
}

fn redact_url_rest(rest: &str) -> String {
    let (before_q, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    // '@' only after the '?': a password with a raw '?' in it. Hide all before the '@'.
    if !before_q.contains('@')
        && let Some(at) = rest.rfind('@')
    {
        return format!("***{}", redact_query(&rest[at..]));
    }
    let mut out = String::with_capacity(rest.len());
    let hostpath = match before_q.rsplit_once('@') {
        Some((userinfo, hostpath)) => {
            match userinfo.split_once(':') {
                Some((user, _)) if plain_user(user) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                Some(_) => out.push_str("***"),
                None => out.push_str(userinfo),
            }
            out.push('@');
            hostpath
        }
        None => before_q,
    };
    let (hosts, path) = match hostpath.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (hostpath, None),
    };
    // No '@': a "port" that is not a number is probably a password (user:password/db).
    let hosts: Vec<String> = hosts
        .split(',')
        .map(|item| match item.rsplit_once(':') {
            Some((h, port))
                if !item.starts_with('[') && !port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                let h = h.split(':').next().unwrap_or(h);
                format!("{h}:***")
            }
            _ => item.to_string(),
        })
        .collect();
    out.push_str(&hosts.join(","));
    if let Some(p) = path {
        out.push('/');
        out.push_str(p);
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_query(q));
    }
    out
}

/// A user name shown before `:***` must look like one (not a password fragment).
fn plain_user(u: &str) -> bool {
    u.len() <= 64 && !u.contains(['?', '/', '#', '@', ' '])
}

/// `a=b&password=x` → `a=b&password=***`: every parameter whose name says password. After
/// a password, a parameter that is not a known setting may be the rest of a password with a
/// raw `&` in it, so it is hidden too.
fn redact_query(q: &str) -> String {
    let mut seen_password = false;
    q.split('&')
        .map(|pair| {
            let key = pair.split('=').next().unwrap_or("");
            if secret_key(key) && pair.contains('=') {
                seen_password = true;
                format!("{key}=***")
            } else if seen_password && !is_keyword(key) {
                "***".to_string()
            } else {
                pair.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn secret_key(k: &str) -> bool {
    k.to_ascii_lowercase().contains("password")
}

/// Keyword/value text: the value of every keyword naming a password becomes `***`, quoted
/// or not; after it, any word that does not start a known setting may be the rest of an
/// unquoted password with spaces, so it is hidden too. Scans leniently, since the text may
/// be malformed.
fn redact_settings(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(rel) = lower[from..].find("password") {
        let kw_end = from + rel + "password".len();
        let after = &s[kw_end..];
        let Some(eq) = after
            .find(|c: char| !c.is_whitespace())
            .filter(|&j| after[j..].starts_with('='))
        else {
            from = kw_end;
            continue;
        };
        let vstart = kw_end + eq + 1;
        let vstart = vstart
            + s[vstart..]
                .find(|c: char| !c.is_whitespace())
                .unwrap_or(s.len() - vstart);
        let vend = value_end(s, vstart);
        return format!("{}***{}", &s[..vstart], hide_unknown_words(&s[vend..]));
    }
    s.to_string()
}

/// Words that start a known setting stay (with a password value hidden); others become `***`.
fn hide_unknown_words(rest: &str) -> String {
    let mut out = String::with_capacity(rest.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        let key = word.split('=').next().unwrap_or("");
        if secret_key(key) && word.contains('=') {
            out.push_str(key);
            out.push_str("=***");
        } else if is_keyword(key) {
            out.push_str(word);
        } else {
            out.push_str("***");
        }
        word.clear();
    };
    for c in rest.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Where a keyword/value value starting at `start` ends: its closing quote, or white space.
fn value_end(s: &str, start: usize) -> usize {
    let b = s.as_bytes();
    if b.get(start) == Some(&b'\'') {
        let mut j = start + 1;
        while j < b.len() {
            match b[j] {
                b'\\' => j += 2,
                b'\'' => return j + 1,
                _ => j += 1,
            }
        }
        return b.len();
    }
    let mut j = start;
    while j < b.len() && !b[j].is_ascii_whitespace() {
        j += if b[j] == b'\\' { 2 } else { 1 };
    }
    j.min(b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_strings_keep_all_but_the_password() {
        for (given, shown) in [
            (
                "postgresql://u:pw@h:5433/db",
                "postgresql://u:***@h:5433/db",
            ),
            (
                "postgresql+asyncpg://u:pw@[::1]:5/db?ssl=require",
                "postgresql+asyncpg://u:***@[::1]:5/db?ssl=require",
            ),
            (
                "postgresql://u@h/db?password=pw&sslmode=require",
                "postgresql://u@h/db?password=***&sslmode=require",
            ),
            (
                "postgresql://u@h/db?PassWord=pw",
                "postgresql://u@h/db?PassWord=***",
            ),
            ("postgresql://u:a/b@c@h/db", "postgresql://u:***@h/db"),
            ("postgresql://u@h1,h2:6/db", "postgresql://u@h1,h2:6/db"),
            (
                "host=h password=pw dbname=x",
                "host=h password=*** dbname=x",
            ),
            (
                "host=h password = 'p w \\' x' dbname=x",
                "host=h password = *** dbname=x",
            ),
            ("host=h sslpassword=pw", "host=h sslpassword=***"),
            ("", ""),
        ] {
            assert_eq!(redact(given), shown, "{given}");
        }
    }

    #[test]
    fn malformed_strings_hide_what_may_be_a_password() {
        let pw = "S3CR3T";
        for given in [
            format!("postgres://u:{pw}/db"),
            format!("postgres://u:{pw}"),
            format!("postgresql://u:{pw}@h:zz/db"),
            format!("postgresql://u:{pw}?x@h/db"),
            format!("postgresql://u:12?ab={pw}@h/db"),
            format!("postgresql://u:x{pw}?sslmode=x@h/db"),
            format!("postgresql://u:{pw}%zz@h/db"),
            format!("postgresql://u@h/db?password={pw}%zz&bogus"),
            format!("u:{pw}@h/db"),
            format!("mysql://u:{pw}@h/db"),
            format!("host=h password='{pw} x"),
            format!("host=h password={pw}"),
            format!("host=h password=x {pw} dbname=d"),
            format!("postgresql://u@h/db?password=x&{pw}=1&dbname=d"),
            format!("postgresql://u:{pw}@[::1/db"),
        ] {
            let shown = redact(&given);
            assert!(!shown.contains(pw), "{given} -> {shown}");
            assert!(shown.contains("***"), "{given} -> {shown}");
        }
        assert_eq!(redact("postgres://u:PASS/db"), "postgres://u:***/db");
        assert_eq!(
            redact("postgresql://u:x@y@h:zz/db?password=p&a=b&sslmode=require"),
            "postgresql://u:***@h:***/db?password=***&***&sslmode=require"
        );
    }
}
