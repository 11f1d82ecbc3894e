//! Reading a parsed TOML document by hand, with every problem located: a value of the wrong
//! kind, an empty string, a misspelt key or choice is recorded with its line and key (and the
//! closest real name) instead of ending the walk, so one run reports them all.

use super::Problem;
use super::suggest;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A key and its value, both with their place in the text.
pub(super) type Entry<'i> = (
    &'i Spanned<std::borrow::Cow<'i, str>>,
    &'i Spanned<DeValue<'i>>,
);

/// The text being read and the problems found in it so far.
pub(super) struct Walker<'t> {
    pub(super) text: &'t str,
    pub(super) problems: Vec<Problem>,
}

impl<'t> Walker<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Walker {
            text,
            problems: Vec::new(),
        }
    }

    /// The 1-based line of a byte offset in the text.
    pub(super) fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// Record a problem at `offset`, under `key`.
    pub(super) fn problem(&mut self, offset: usize, key: &str, message: impl Into<String>) {
        let line = self.line(offset);
        self.problems.push(Problem {
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// Every key of `table` not in `allowed`, with the closest allowed one.
    pub(super) fn unknown_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], prefix: &str) {
        for (k, _) in table.iter() {
            if !allowed.contains(&k.get_ref().as_ref()) {
                let name = k.get_ref().as_ref();
                let hint = suggest::hint(name, allowed.iter().copied());
                self.problem(
                    k.span().start,
                    &join(prefix, name),
                    format!("unknown key{hint}; allowed: {}", allowed.join(", ")),
                );
            }
        }
    }

    /// The entry's value as a table, or a problem.
    pub(super) fn table_of<'a, 'i>(
        &mut self,
        entry: Entry<'a>,
        key: &str,
    ) -> Option<&'a DeTable<'i>>
    where
        'a: 'i,
    {
        match entry.1.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.problem(
                    entry.1.span().start,
                    key,
                    format!("expected a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A non-empty string, or a problem.
    pub(super) fn string(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) if !s.trim().is_empty() => Some(s.to_string()),
            DeValue::String(_) => {
                self.problem(v.span().start, key, "must not be empty");
                None
            }
            other => {
                self.problem(
                    v.span().start,
                    key,
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// An array of non-empty strings, or a problem.
    pub(super) fn strings(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Vec<String> {
        match v.get_ref() {
            DeValue::Array(items) => items.iter().filter_map(|i| self.string(i, key)).collect(),
            other => {
                self.problem(
                    v.span().start,
                    key,
                    format!("expected an array of names, found {}", other.type_str()),
                );
                Vec::new()
            }
        }
    }

    /// `true` or `false`, or a problem.
    pub(super) fn boolean(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.problem(
                    v.span().start,
                    key,
                    format!("expected true or false, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// One of the named `options`, or a problem listing them.
    pub(super) fn choice<T: Copy>(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        key: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let s = self.string(v, key)?;
        if let Some((_, t)) = options.iter().find(|(name, _)| *name == s) {
            return Some(*t);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let hint = suggest::hint(&s, names.iter().copied());
        self.problem(
            v.span().start,
            key,
            format!("`{s}` is not one of {}{hint}", names.join(", ")),
        );
        None
    }

    /// An IANA time zone name, or a problem.
    pub(super) fn timezone(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        key: &str,
    ) -> Option<chrono_tz::Tz> {
        let s = self.string(v, key)?;
        match s.parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                let hint = suggest::hint(&s, chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()));
                self.problem(
                    v.span().start,
                    key,
                    format!(
                        "`{s}` is not an IANA time zone name such as `Europe/Paris` or `UTC`{hint}"
                    ),
                );
                None
            }
        }
    }
}

/// The offset where 1-based `line` starts in `text`: the way back from a line to a place.
pub(super) fn line_start(text: &str, line: usize) -> usize {
    text.split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum()
}

/// `prefix.key`, or `key` at the top level.
pub(super) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}
