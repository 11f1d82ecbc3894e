//! `DATABASE_URL` from a `.env` file in the working directory, the file sqlx (through
//! dotenvy) and most web frameworks read, so the application's own `.env` names the target.
//! Only that one variable is read, only from the working directory (never a parent), and
//! nothing is put into the process environment.
//!
//! The format is dotenvy's: `KEY=value` lines, an optional `export ` prefix, `#` comments,
//! values bare (trimmed; ` #` starts a comment), in single quotes (literal) or in double
//! quotes (`\"`, `\\`, `\n` escapes). Variables are not expanded. The first definition wins.

use std::path::Path;

/// The value of `key` in `dir/.env`; `Ok(None)` when there is no such file or line.
pub(super) fn lookup(dir: &Path, key: &str) -> Result<Option<String>, String> {
    let path = dir.join(".env");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    Ok(find(&text, key))
}

fn find(text: &str, key: &str) -> Option<String> {
    for line in text.lines() {
        let line = line.trim_start();
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim_end() == key {
            return Some(value(v.trim_start()));
        }
    }
    None
}

fn value(v: &str) -> String {
    if let Some(rest) = v.strip_prefix('\'') {
        return rest.split('\'').next().unwrap_or("").to_string();
    }
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut it = rest.chars();
        while let Some(c) = it.next() {
            match c {
                '"' => break,
                '\\' => match it.next() {
                    Some('n') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => break,
                },
                c => out.push(c),
            }
        }
        return out;
    }
    let bare = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    bare.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dotenv_lines() {
        let text = "# app settings\nSECRET_KEY=x\nexport DATABASE_URL = postgresql://u@h/db  # prod\nDATABASE_URL=second\n";
        assert_eq!(
            find(text, "DATABASE_URL").as_deref(),
            Some("postgresql://u@h/db")
        );
        assert_eq!(
            find("DATABASE_URL='a b#c'", "DATABASE_URL").as_deref(),
            Some("a b#c")
        );
        assert_eq!(
            find(r#"DATABASE_URL="p\"q\\r" # c"#, "DATABASE_URL").as_deref(),
            Some(r#"p"q\r"#)
        );
        assert_eq!(find("#DATABASE_URL=x\nOTHER=y", "DATABASE_URL"), None);
        assert_eq!(find("DATABASE_URLX=y", "DATABASE_URL"), None);
    }

    #[test]
    fn missing_file_is_none() {
        let dir = std::env::temp_dir().join(format!("cutover-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(lookup(&dir, "DATABASE_URL").unwrap(), None);
        std::fs::write(dir.join(".env"), "DATABASE_URL=postgresql:///x\n").unwrap();
        assert_eq!(
            lookup(&dir, "DATABASE_URL").unwrap().as_deref(),
            Some("postgresql:///x")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
