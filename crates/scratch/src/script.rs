//! A SQL script as `pg_dump -s` writes it, made into plain SQL that a server runs as one
//! simple query. `pg_dump` (15.14, 16.10, 17.6 and later) brackets its output with
//! `\restrict KEY` and `\unrestrict KEY`, psql meta-commands that only psql understands
//! (PostgreSQL docs, "psql": `\restrict`); those lines are dropped. Any other meta-command
//! is refused, naming its line, and so is `COPY … FROM stdin`, whose rows only psql can
//! send. A backslash counts only outside string constants, quoted identifiers,
//! dollar-quoted bodies and comments, the way psql's own lexer sees it.

use anyhow::{Result, bail};

/// Where the lexer is in the script.
#[derive(Clone, Copy, PartialEq, Eq)]
enum In {
    Code,
    /// `'…'`; `escapes` for an `E'…'` constant, where a backslash escapes the next character.
    Quoted {
        escapes: bool,
    },
    /// `"…"`.
    Ident,
    /// `$tag$…$tag$`: the tag's byte range in the script.
    Dollar {
        start: usize,
        end: usize,
    },
    LineComment,
    /// `/* … */`, which nest.
    BlockComment {
        depth: u32,
    },
}

/// The script without pg_dump's `\restrict`/`\unrestrict` lines; an error naming the
/// line of any other psql meta-command, or of a `COPY … FROM stdin`.
pub fn plain_sql(script: &str) -> Result<String> {
    let b = script.as_bytes();
    let mut out = String::with_capacity(script.len());
    let mut state = In::Code;
    let mut line = 1usize;
    // The current statement's code (no comments, no constants), lowercased, to recognize
    // `COPY … FROM stdin` when its `;` comes.
    let mut statement = String::new();
    let mut copied = 0; // bytes of `script` already in `out`
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        match state {
            In::Code => match c {
                b'\\' => {
                    let end = script[i..].find('\n').map_or(b.len(), |n| i + n);
                    let command = meta_command(&script[i + 1..end]);
                    if command != "restrict" && command != "unrestrict" {
                        bail!(
                            "line {line}: `\\{command}` is a psql meta-command, which only psql understands: remove it (the file is run as plain SQL; only the `\\restrict` and `\\unrestrict` lines pg_dump writes are dropped)"
                        );
                    }
                    out.push_str(&script[copied..i]);
                    copied = end;
                    i = end;
                    continue;
                }
                b'\'' => {
                    let prev = i.checked_sub(1).map(|p| b[p]);
                    let before = i.checked_sub(2).map(|p| b[p]);
                    let escapes =
                        matches!(prev, Some(b'e' | b'E')) && !before.is_some_and(is_ident_byte);
                    state = In::Quoted { escapes };
                }
                b'"' => state = In::Ident,
                b'-' if next == Some(b'-') => state = In::LineComment,
                b'/' if next == Some(b'*') => {
                    state = In::BlockComment { depth: 1 };
                    i += 2;
                    continue;
                }
                b'$' if !i.checked_sub(1).is_some_and(|p| is_ident_byte(b[p])) => {
                    if let Some(close) = dollar_tag(b, i) {
                        state = In::Dollar {
                            start: i,
                            end: close + 1,
                        };
                        i = close + 1;
                        continue;
                    }
                }
                b';' => {
                    if is_copy_from_stdin(&statement) {
                        bail!(
                            "line {line}: `COPY … FROM stdin` is followed by rows only psql can send: give a schema-only dump (pg_dump -s), or INSERT statements"
                        );
                    }
                    statement.clear();
                }
                _ => statement.push(char::from(c.to_ascii_lowercase())),
            },
            In::Quoted { escapes } => {
                if escapes && c == b'\\' {
                    if next == Some(b'\n') {
                        line += 1;
                    }
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    if next == Some(b'\'') {
                        i += 2;
                        continue;
                    }
                    state = In::Code;
                    // A constant separates words as a space does.
                    statement.push(' ');
                }
            }
            In::Ident => {
                if c == b'"' {
                    state = In::Code;
                    statement.push_str(" \"\" ");
                }
            }
            In::Dollar { start, end } => {
                let tag = &b[start..end];
                if b[i..].starts_with(tag) {
                    state = In::Code;
                    statement.push(' ');
                    i += tag.len();
                    continue;
                }
            }
            In::LineComment => {
                if c == b'\n' {
                    state = In::Code;
                    statement.push(' ');
                }
            }
            In::BlockComment { depth } => {
                if c == b'*' && next == Some(b'/') {
                    state = if depth == 1 {
                        statement.push(' ');
                        In::Code
                    } else {
                        In::BlockComment { depth: depth - 1 }
                    };
                    i += 2;
                    continue;
                }
                if c == b'/' && next == Some(b'*') {
                    state = In::BlockComment { depth: depth + 1 };
                    i += 2;
                    continue;
                }
            }
        }
        if c == b'\n' {
            line += 1;
        }
        i += 1;
    }
    out.push_str(&script[copied..]);
    Ok(out)
}

/// The name of the meta-command that starts a line's text after its backslash: `connect`
/// for `\connect db`, `.` for `\.`. Never its arguments, which may be secrets.
fn meta_command(rest: &str) -> String {
    let word: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '\\')
        .take(20)
        .collect();
    if word.is_empty() {
        return "\\".into();
    }
    word
}

/// Letters, digits, `_`, `$` and any non-ASCII byte continue an identifier.
fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// The index of the `$` that closes a dollar-quote tag opened at `open`, if one is.
fn dollar_tag(b: &[u8], open: usize) -> Option<usize> {
    let mut j = open + 1;
    if b.get(j).is_some_and(|c| c.is_ascii_digit()) {
        return None; // `$1`: a parameter
    }
    while let Some(&c) = b.get(j) {
        if c == b'$' {
            return Some(j);
        }
        if !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80) {
            return None;
        }
        j += 1;
    }
    None
}

/// `copy … from stdin`, in a statement's lowercased code.
fn is_copy_from_stdin(statement: &str) -> bool {
    let words: Vec<&str> = statement.split_whitespace().collect();
    words.first() == Some(&"copy") && words.windows(2).any(|w| w == ["from", "stdin"])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        format!("{:#}", plain_sql(s).unwrap_err())
    }

    #[test]
    fn drops_the_restrict_lines_pg_dump_writes() {
        let dump = "--\n-- PostgreSQL database dump\n--\n\n\\restrict aBc123XyZ\n\nSET x = 1;\nCREATE TABLE t (a int);\n\n\\unrestrict aBc123XyZ\n";
        let sql = plain_sql(dump).unwrap();
        assert!(!sql.contains('\\'), "{sql}");
        assert!(!sql.contains("aBc123XyZ"), "{sql}");
        assert!(
            sql.contains("SET x = 1;\nCREATE TABLE t (a int);\n"),
            "{sql}"
        );
        // Lines stay where they were, so PostgreSQL's positions still match the file.
        assert_eq!(sql.lines().count(), dump.lines().count());
    }

    #[test]
    fn refuses_other_meta_commands_naming_the_line() {
        let e = err("CREATE TABLE t (a int);\n\n\\connect otherdb secretuser\n");
        assert!(
            e.starts_with("line 3: `\\connect` is a psql meta-command"),
            "{e}"
        );
        assert!(!e.contains("secretuser"), "{e}");
        let e = err("SELECT 1 \\gset\n");
        assert!(e.contains("line 1: `\\gset`"), "{e}");
        let e = err("/* a\n b */ SELECT 1;\n\\i other.sql\n");
        assert!(e.contains("line 3: `\\i`"), "{e}");
    }

    #[test]
    fn backslashes_in_constants_bodies_and_comments_are_sql() {
        let ok = [
            "SELECT 'a \\ b';\n",
            "SELECT E'it\\'s \\\\';\n",
            "SELECT 'it''s \\x';\n",
            "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$\n\\not a command\nSELECT 'x'\n$$;\n",
            "CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $body$ SELECT $$\\$$ $body$;\n",
            "SELECT 1; -- a \\comment\n",
            "/* outer /* \\inner */ still \\comment */ SELECT 1;\n",
            "SELECT \"we\\ird\" FROM t;\n",
            "PREPARE p AS SELECT $1::text;\n",
        ];
        for s in ok {
            assert_eq!(plain_sql(s).unwrap(), s, "{s}");
        }
        // After a constant or a body ends, a backslash is a meta-command again.
        let e = err("SELECT 'x';\nSELECT $q$ y $q$;\n\\q\n");
        assert!(e.contains("line 3: `\\q`"), "{e}");
        // A quote inside an E'' constant does not end it.
        let e = err("SELECT E'\\'\n\\x';\n\\watch\n");
        assert!(e.contains("line 3: `\\watch`"), "{e}");
    }

    #[test]
    fn refuses_copy_from_stdin() {
        let e = err("CREATE TABLE t (a int);\nCOPY public.t (a) FROM stdin;\n1\n\\.\n");
        assert!(e.starts_with("line 2: `COPY … FROM stdin`"), "{e}");
        // Words in constants or comments are not the statement's.
        let fine = "COMMENT ON TABLE t IS 'copy from stdin';\nCOPY t FROM '/x/y.csv';\n";
        assert_eq!(plain_sql(fine).unwrap(), fine);
    }
}
