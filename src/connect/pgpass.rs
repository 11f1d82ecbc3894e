//! The password file (`~/.pgpass`, or `PGPASSFILE`, or the `passfile` setting), read by
//! libpq's rules (PostgreSQL docs, "The Password File"), so the password can stay off the
//! command line and out of the environment.
//!
//! Each line is `hostname:port:database:username:password`; `*` in one of the first four
//! fields matches anything; `\:` and `\\` escape; `#` starts a comment line; the first
//! matching line wins. The host `localhost` also matches a Unix-socket connection to the
//! default socket directory. A file that group or others may read (or that is not a plain
//! file) is ignored, with a warning, as libpq does.

use std::path::Path;

/// What a connection would present, field by field.
pub(super) struct Want<'a> {
    pub(super) host: &'a str,
    pub(super) port: &'a str,
    pub(super) dbname: &'a str,
    pub(super) user: &'a str,
}

/// The password of the first line matching one of `wants` (tried in order), and a warning
/// to print when the file was ignored.
pub(super) fn lookup(path: &Path, wants: &[Want<'_>]) -> (Option<String>, Option<String>) {
    let Ok(meta) = std::fs::metadata(path) else {
        return (None, None);
    };
    if !meta.is_file() {
        return (
            None,
            Some(format!(
                "password file \"{}\" is not a plain file: ignored",
                path.display()
            )),
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return (
                None,
                Some(format!(
                    "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less: ignored (chmod 600 {})",
                    path.display(),
                    path.display()
                )),
            );
        }
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return (
                None,
                Some(format!(
                    "cannot read password file \"{}\": {e}: ignored",
                    path.display()
                )),
            );
        }
    };
    (find(&text, wants), None)
}

fn find(text: &str, wants: &[Want<'_>]) -> Option<String> {
    for want in wants {
        let asked = [want.host, want.port, want.dbname, want.user];
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let Some((fields, password)) = fields(line) else {
                continue;
            };
            if fields.iter().zip(asked).all(|(f, a)| f == "*" || f == a) {
                return Some(password);
            }
        }
    }
    None
}

/// The four unescaped match fields and the unescaped password, or `None` for a short line.
fn fields(line: &str) -> Option<([String; 4], String)> {
    let mut out: [String; 4] = Default::default();
    let mut it = line.chars();
    for field in &mut out {
        let mut ended = false;
        while let Some(c) = it.next() {
            match c {
                '\\' => field.extend(it.next()),
                ':' => {
                    ended = true;
                    break;
                }
                c => field.push(c),
            }
        }
        if !ended {
            return None;
        }
    }
    let mut password = String::new();
    while let Some(c) = it.next() {
        match c {
            '\\' => password.extend(it.next()),
            c => password.push(c),
        }
    }
    Some((out, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want<'a>(host: &'a str, port: &'a str, dbname: &'a str, user: &'a str) -> Want<'a> {
        Want {
            host,
            port,
            dbname,
            user,
        }
    }

    const FILE: &str = "# comment:*:*:*:nope\n\
                        db.example.com:5432:app:loader:first\n\
                        db.example.com:*:*:loader:second\n\
                        weird\\:host:5433:d\\\\b:u:pa\\:ss\\\\word:tail\n\
                        localhost:6000:*:*:local\r\n\
                        *:*:*:admin:any\n\
                        short:line\n";

    #[test]
    fn libpq_matching_rules() {
        let f = |h, p, d, u| find(FILE, &[want(h, p, d, u)]);
        assert_eq!(
            f("db.example.com", "5432", "app", "loader").as_deref(),
            Some("first")
        );
        assert_eq!(
            f("db.example.com", "6543", "other", "loader").as_deref(),
            Some("second")
        );
        assert_eq!(
            f("weird:host", "5433", "d\\b", "u").as_deref(),
            Some("pa:ss\\word:tail")
        );
        assert_eq!(f("localhost", "6000", "x", "y").as_deref(), Some("local"));
        assert_eq!(f("anything", "1", "x", "admin").as_deref(), Some("any"));
        assert_eq!(f("db.example.com", "5432", "app", "other"), None);
        assert_eq!(f("comment", "x", "y", "z"), None, "a # line is a comment");
        // Several hosts: the first that has a line.
        assert_eq!(
            find(
                FILE,
                &[
                    want("h1", "5432", "app", "loader"),
                    want("db.example.com", "5432", "app", "loader")
                ]
            )
            .as_deref(),
            Some("first")
        );
    }

    #[cfg(unix)]
    #[test]
    fn ignored_unless_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("cutover-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pgpass");
        std::fs::write(&path, "*:*:*:*:pw\n").unwrap();
        let w = [want("h", "5432", "d", "u")];
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (pw, warning) = lookup(&path, &w);
        assert_eq!(pw, None);
        assert!(warning.unwrap().contains("has group or world access"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(lookup(&path, &w), (Some("pw".to_string()), None));
        assert_eq!(lookup(&dir.join("none"), &w), (None, None));
        let (pw, warning) = lookup(&dir, &w);
        assert_eq!(pw, None);
        assert!(warning.unwrap().contains("not a plain file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
