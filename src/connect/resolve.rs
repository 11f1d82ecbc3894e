//! Which target a run uses when several places could name one, first match wins:
//!
//! 1. `--target` on the command line;
//! 2. `DATABASE_URL` in the environment;
//! 3. `DATABASE_URL` in `./.env` (as sqlx reads it; only when the environment has none);
//! 4. the `PG*` environment variables alone (libpq's defaults), when `PGHOST`, `PGHOSTADDR`
//!    or `PGDATABASE` names a server or database.
//!
//! Whichever string wins, the `PG*` variables and the password file still fill in what it
//! leaves out (see `settings.rs`).

use std::path::Path;

use anyhow::Result;

use super::dotenv;
use super::settings::Vars;
use crate::error::usage;

/// The text naming the target, by the precedence above: `Some("")` when only the `PG*`
/// variables do (parse it with `TargetUrl::parse` all the same), `None` when nothing names
/// a target. The text may be `scratch`, which the caller handles.
pub(crate) fn target_text(flag: Option<&str>) -> Result<Option<String>> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    target_text_in(flag, &|name| std::env::var(name).ok(), &cwd)
}

fn target_text_in(flag: Option<&str>, vars: Vars<'_>, cwd: &Path) -> Result<Option<String>> {
    let nonblank = |s: String| (!s.trim().is_empty()).then_some(s);
    if let Some(t) = flag {
        return Ok(Some(t.to_string()));
    }
    if let Some(t) = vars("DATABASE_URL").and_then(nonblank) {
        return Ok(Some(t));
    }
    if let Some(t) = dotenv::lookup(cwd, "DATABASE_URL")
        .map_err(|e| usage(format!("{e} (it may set DATABASE_URL)")))?
        .and_then(nonblank)
    {
        return Ok(Some(t));
    }
    let named = ["PGHOST", "PGHOSTADDR", "PGDATABASE"]
        .iter()
        .any(|v| vars(v).is_some_and(|s| !s.is_empty()));
    Ok(named.then(String::new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn precedence() {
        let dir = std::env::temp_dir().join(format!("cutover-resolve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let run = |flag: Option<&str>, e: &HashMap<String, String>| {
            target_text_in(flag, &|n| e.get(n).cloned(), &dir).unwrap()
        };
        let all = env(&[("DATABASE_URL", "postgresql:///from-env"), ("PGHOST", "h")]);
        std::fs::write(dir.join(".env"), "DATABASE_URL=postgresql:///from-dotenv\n").unwrap();
        assert_eq!(run(Some("scratch"), &all).as_deref(), Some("scratch"));
        assert_eq!(run(None, &all).as_deref(), Some("postgresql:///from-env"));
        let blank = env(&[("DATABASE_URL", " "), ("PGHOST", "h")]);
        assert_eq!(
            run(None, &blank).as_deref(),
            Some("postgresql:///from-dotenv")
        );
        std::fs::remove_file(dir.join(".env")).unwrap();
        assert_eq!(run(None, &blank).as_deref(), Some(""));
        assert_eq!(
            run(None, &env(&[("PGDATABASE", "app")])).as_deref(),
            Some("")
        );
        assert_eq!(run(None, &env(&[("PGUSER", "u")])), None);
        assert_eq!(run(None, &env(&[])), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
