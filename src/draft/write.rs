//! A draft as TOML text, with every name and value written by `toml_writer` (quoted and
//! escaped as TOML requires) and every piece of source text in a comment escaped as in a
//! basic string, so a newline in a name, a declared type or a comment can never end the
//! comment and start a mapping line of its own. Each line is remembered with the table or
//! column it belongs to, so a problem `check` reports at a line can be traced back.

use super::model::{Draft, DraftColumn, DraftTable, Identity};
use crate::source::SourceSpec;
use toml_writer::{TomlKeyBuilder, TomlStringBuilder, TomlWrite};

/// What a line of the text is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Line {
    Other,
    /// The header of table `.0` or one of its keys.
    Table(usize),
    /// Column `.1` of table `.0`.
    Column(usize, usize),
}

/// The text, and per line (0-based) what it belongs to.
pub(crate) struct Written {
    pub(crate) text: String,
    pub(crate) lines: Vec<Line>,
}

/// A TOML key, bare when it can be, else a basic string.
pub(crate) fn key(name: &str) -> String {
    let mut s = String::new();
    let _ = s.key(TomlKeyBuilder::new(name).as_default());
    s
}

/// A TOML basic string on one line.
pub(crate) fn string(text: &str) -> String {
    let mut s = String::new();
    let _ = s.value(TomlStringBuilder::new(text).as_basic());
    s
}

/// Source text inside a comment: the inside of a basic string, so quotes, backslashes,
/// newlines and every control character are escapes.
pub(crate) fn comment(text: &str) -> String {
    let quoted = string(text);
    quoted[1..quoted.len() - 1].to_string()
}

struct Out {
    text: String,
    lines: Vec<Line>,
}

impl Out {
    fn line(&mut self, at: Line, text: &str) {
        // Nothing written here holds a newline; a comment's text has been escaped.
        debug_assert!(!text.contains('\n'));
        self.text.push_str(text);
        self.text.push('\n');
        self.lines.push(at);
    }
}

/// Write `draft` for a source `spec`, `schema` the target schema.
pub(crate) fn write(draft: &Draft, spec: &SourceSpec, schema: &str) -> Written {
    let mut o = Out {
        text: String::new(),
        lines: Vec::new(),
    };
    let other = Line::Other;
    o.line(
        other,
        &format!(
            "# Starter mapping drafted by `cutover inspect` from {}.",
            comment(&spec.to_string())
        ),
    );
    for n in &draft.notes {
        o.line(other, &format!("# {}", comment(n)));
    }
    o.line(other, "");
    o.line(other, "[source]");
    match spec {
        SourceSpec::Sqlite(p) => {
            let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            o.line(other, "kind = \"sqlite\"");
            o.line(other, &format!("path = {}", string(&p.to_string_lossy())));
        }
        SourceSpec::Airtable { base } => {
            o.line(other, "kind = \"airtable\"");
            o.line(
                other,
                &format!(
                    "base = {}   # the token comes from AIRTABLE_TOKEN or --token-file",
                    string(base)
                ),
            );
        }
        SourceSpec::Snapshot(p) => {
            let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            o.line(other, "kind = \"snapshot\"");
            o.line(other, &format!("dir = {}", string(&p.to_string_lossy())));
        }
    }
    o.line(other, "");
    o.line(other, "[target]");
    o.line(other, &format!("schema = {}", string(schema)));
    match &draft.revision {
        Some(rev) => o.line(
            other,
            &format!(
                "expect_revision = {}   # the target's Alembic revision when this was drafted",
                string(rev)
            ),
        ),
        None => o.line(
            other,
            "# expect_revision = \"…\"   # the Alembic revision this mapping was written for",
        ),
    }
    for (ti, t) in draft.tables.iter().enumerate() {
        o.line(other, "");
        table(&mut o, ti, t);
    }
    if !draft.todos.is_empty() {
        o.line(other, "");
        o.line(
            other,
            "# TODO: what the draft could not pair. Map each, or leave it out on purpose.",
        );
        for t in &draft.todos {
            o.line(other, &format!("# TODO: {}", comment(t)));
        }
    }
    Written {
        text: o.text,
        lines: o.lines,
    }
}

fn table(o: &mut Out, ti: usize, t: &DraftTable) {
    let at = Line::Table(ti);
    let off = t.disabled.is_some();
    let hash = if off { "# " } else { "" };
    if let Some(why) = &t.disabled {
        o.line(at, &format!("# TODO: not drafted: {}", comment(why)));
    }
    for n in &t.notes {
        o.line(at, &format!("# {}", comment(n)));
    }
    let todo = if t.todo.is_empty() {
        String::new()
    } else {
        let all: Vec<String> = t.todo.iter().map(|s| comment(s)).collect();
        format!("   # TODO: {}", all.join("; "))
    };
    o.line(at, &format!("{hash}[tables.{}]{todo}", key(&t.name)));
    // By the source's id when it has one (a rename in the base does not change it), with
    // the name beside it.
    match &t.from_id {
        Some(id) => o.line(
            at,
            &format!("{hash}from = {}   # {}", string(id), comment(&t.from)),
        ),
        None => o.line(at, &format!("{hash}from = {}", string(&t.from))),
    }
    match &t.identity {
        Identity::Entity {
            legacy_id,
            legacy_column,
            keep_id,
            generate_id,
        } => {
            o.line(at, &format!("{hash}legacy_id = {}", string(legacy_id)));
            if let Some(lc) = legacy_column {
                o.line(at, &format!("{hash}legacy_column = {}", string(lc)));
            }
            if *keep_id {
                o.line(at, &format!("{hash}keep_id = true"));
            }
            if let Some(g) = generate_id {
                o.line(at, &format!("{hash}generate_id = {}", string(g)));
            }
        }
        Identity::Junction { owner } => {
            o.line(at, &format!("{hash}junction = true"));
            if let Some(owner) = owner {
                o.line(at, &format!("{hash}owner = {}", string(owner)));
            }
        }
    }
    o.line(at, &format!("{hash}[tables.{}.columns]", key(&t.name)));
    for (ci, c) in t.columns.iter().enumerate() {
        let at = Line::Column(ti, ci);
        let body = column(c);
        let why = match (&c.field_id, &c.field) {
            (Some(_), Some(name)) if c.comment.is_empty() => format!("   # {}", comment(name)),
            (Some(_), Some(name)) => {
                format!("   # {} ({})", comment(name), comment(&c.comment))
            }
            _ if c.comment.is_empty() => String::new(),
            _ => format!("   # {}", comment(&c.comment)),
        };
        match (&c.todo, off) {
            (Some(todo), _) => {
                o.line(at, &format!("# TODO: {}", comment(todo)));
                o.line(at, &format!("# {body}{why}"));
            }
            (None, true) => o.line(at, &format!("# {body}{why}")),
            (None, false) => o.line(at, &format!("{body}{why}")),
        }
    }
}

/// `name = "field"` or `name = { field = …, references = … }`.
fn column(c: &DraftColumn) -> String {
    let mut parts: Vec<String> = Vec::new();
    let field = c.field_id.as_ref().or(c.field.as_ref());
    if let Some(f) = field {
        parts.push(format!("field = {}", string(f)));
    }
    if let Some(v) = &c.value {
        let v = match v {
            toml::Value::String(s) => string(s),
            other => other.to_string(),
        };
        parts.push(format!("value = {v}"));
    }
    if let Some(r) = &c.references {
        parts.push(format!("references = {}", string(r)));
    }
    if c.explode {
        parts.push("explode = true".to_string());
    }
    match (field, parts.len()) {
        (Some(f), 1) => format!("{} = {}", key(&c.name), string(f)),
        _ => format!("{} = {{ {} }}", key(&c.name), parts.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_text_is_escaped() {
        assert_eq!(key("users"), "users");
        assert_eq!(key("a b"), "\"a b\"");
        assert_eq!(string("x\ny\"z\\"), "\"x\\ny\\\"z\\\\\"");
        assert_eq!(comment("TEXT\n[tables.x]\u{7}"), "TEXT\\n[tables.x]\\u0007");
        let k = key("k\n= 1");
        let doc: toml::Table = toml::from_str(&format!("{k} = 2")).unwrap();
        assert_eq!(doc["k\n= 1"].as_integer(), Some(2));
    }
}
