//! The mapping file: which source table feeds which target table, field by field.
//!
//! A mapping is read from TOML by walking the parsed document by hand rather than through
//! serde, so that every problem is collected at once (not just the first) and each one names
//! the file, the line, the key and, for a misspelt name, the closest real one. What the
//! mapping says is checked here on its own; the plan checks it against the source and
//! the target catalog.

pub(crate) mod suggest;

use crate::convert::{Epoch, JsonMode, Rules};
use crate::source::SourceSpec;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A parsed, self-consistent mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub file: PathBuf,
    pub source: Option<SourceSpec>,
    /// Target schema (`public` unless the mapping says otherwise).
    pub schema: String,
    /// The `alembic_version` the target must be at, if the mapping pins one.
    pub expect_revision: Option<String>,
    /// Tables in file order (the tie-break of the load order).
    pub tables: Vec<TableMap>,
}

#[derive(Debug, Clone)]
pub struct TableMap {
    /// Target table name.
    pub name: String,
    /// Source table name.
    pub from: String,
    pub line: usize,
    pub identity: Identity,
    pub columns: Vec<ColumnMap>,
}

/// How a target row is tied to its source row.
#[derive(Debug, Clone)]
pub enum Identity {
    /// An entity: the source field `field` holds the legacy id; it is stored in target column
    /// `column` and/or kept as the target's primary key (`keep_id`).
    Legacy {
        field: String,
        column: Option<String>,
        keep_id: bool,
    },
    /// A junction (many-to-many) table: rows are identified by their reference columns, and
    /// `owner` (a reference column) says whose links the source fully describes.
    Junction { owner: String },
}

#[derive(Debug, Clone)]
pub struct ColumnMap {
    /// Target column name.
    pub name: String,
    pub line: usize,
    pub input: Input,
    pub rules: Rules,
    pub reference: Option<Reference>,
    pub shape: Shape,
}

/// What to do with structured source values (Airtable arrays and formula errors) before
/// they are converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// An array where the column holds one value (a single link, a lookup).
    pub many: Many,
    /// A formula, rollup or lookup error (`{"error": "#ERROR!"}`, `{"specialValue": "NaN"}`).
    pub on_error: OnError,
    /// One row per element of this column's array (a junction fed from a link field).
    pub explode: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Many {
    /// Several values where one is expected is a reject.
    #[default]
    Reject,
    /// Take the first.
    First,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    #[default]
    Reject,
    Null,
}

#[derive(Debug, Clone)]
pub enum Input {
    Field(String),
    Const(Const),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Const {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Debug, Clone)]
pub struct Reference {
    /// The mapped target table whose legacy id the source value holds.
    pub table: String,
    pub on_missing: OnMissing,
}

/// What to do when a reference does not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMissing {
    Error,
    Null,
    Skip,
}

impl TableMap {
    pub fn is_junction(&self) -> bool {
        matches!(self.identity, Identity::Junction { .. })
    }
    #[cfg(test)]
    pub fn column(&self, name: &str) -> Option<&ColumnMap> {
        self.columns.iter().find(|c| c.name == name)
    }
}

impl Mapping {
    pub fn table(&self, name: &str) -> Option<&TableMap> {
        self.tables.iter().find(|t| t.name == name)
    }
}

/// One problem in a mapping, located.
#[derive(Debug, Clone)]
pub struct Problem {
    pub line: usize,
    pub key: String,
    pub message: String,
}

/// Every problem found, rendered one per line as `file:line: key: message`.
#[derive(Debug)]
pub struct Problems {
    pub file: PathBuf,
    pub list: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.list.len();
        writeln!(
            f,
            "{} has {n} problem{}:",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.list {
            if p.key.is_empty() {
                writeln!(f, "  {}:{}: {}", self.file.display(), p.line, p.message)?;
            } else {
                writeln!(
                    f,
                    "  {}:{}: {}: {}",
                    self.file.display(),
                    p.line,
                    p.key,
                    p.message
                )?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Read and check a mapping file. Every problem is reported at once (exit code 2).
pub fn load(path: &Path) -> anyhow::Result<Mapping> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| crate::error::usage(format!("cannot read mapping {}: {e}", path.display())))?;
    parse(path, &text).map_err(|p| crate::error::usage(p.to_string()))
}

/// Parse mapping text; `path` names the file in messages and anchors relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Mapping, Problems> {
    let mut w = Walker {
        text,
        problems: Vec::new(),
    };
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let line = e.span().map(|s| w.line(s.start)).unwrap_or(1);
            return Err(Problems {
                file: path.to_path_buf(),
                list: vec![Problem {
                    line,
                    key: String::new(),
                    message: format!("not valid TOML: {}", e.message().trim()),
                }],
            });
        }
    };
    let mapping = w.mapping(path, doc.get_ref());
    if let Some(m) = &mapping {
        check_references(m, &mut w.problems);
    }
    match mapping {
        Some(m) if w.problems.is_empty() => Ok(m),
        _ => {
            w.problems.sort_by_key(|p| p.line);
            Err(Problems {
                file: path.to_path_buf(),
                list: w.problems,
            })
        }
    }
}

const TOP_KEYS: &[&str] = &["source", "target", "tables"];
const SOURCE_KEYS: &[&str] = &["kind", "path", "base", "dir"];
const TARGET_KEYS: &[&str] = &["schema", "expect_revision", "timezone"];
const TABLE_KEYS: &[&str] = &[
    "from",
    "legacy_id",
    "legacy_column",
    "keep_id",
    "junction",
    "owner",
    "columns",
];
const COLUMN_KEYS: &[&str] = &[
    "field",
    "value",
    "trim",
    "lowercase",
    "map",
    "empty_as_null",
    "default",
    "required",
    "epoch",
    "timezone",
    "json",
    "split",
    "references",
    "on_missing",
    "many",
    "on_error",
    "explode",
];

type Entry<'i> = (
    &'i Spanned<std::borrow::Cow<'i, str>>,
    &'i Spanned<DeValue<'i>>,
);

struct Walker<'t> {
    text: &'t str,
    problems: Vec<Problem>,
}

impl Walker<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn problem(&mut self, offset: usize, key: &str, message: impl Into<String>) {
        let line = self.line(offset);
        self.problems.push(Problem {
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn unknown_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], prefix: &str) {
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

    fn table_of<'a, 'i>(&mut self, entry: Entry<'a>, key: &str) -> Option<&'a DeTable<'i>>
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

    fn string(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<String> {
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

    fn boolean(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<bool> {
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

    fn choice<T: Copy>(
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

    fn timezone(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<chrono_tz::Tz> {
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

    fn mapping(&mut self, path: &Path, doc: &DeTable<'_>) -> Option<Mapping> {
        self.unknown_keys(doc, TOP_KEYS, "");
        let base = path.parent().unwrap_or(Path::new("."));

        let mut source = None;
        if let Some(entry) = doc.get_key_value("source")
            && let Some(t) = self.table_of(entry, "source")
        {
            source = self.source(base, t, entry.0.span().start);
        }

        let mut schema = "public".to_string();
        let mut expect_revision = None;
        let mut timezone = chrono_tz::UTC;
        if let Some(entry) = doc.get_key_value("target")
            && let Some(t) = self.table_of(entry, "target")
        {
            self.unknown_keys(t, TARGET_KEYS, "target");
            if let Some(v) = t.get("schema") {
                schema = self.string(v, "target.schema").unwrap_or(schema);
            }
            if let Some(v) = t.get("expect_revision") {
                expect_revision = self.string(v, "target.expect_revision");
            }
            if let Some(v) = t.get("timezone") {
                timezone = self.timezone(v, "target.timezone").unwrap_or(timezone);
            }
        }

        let mut tables = Vec::new();
        match doc.get_key_value("tables") {
            None => self.problem(
                self.text.len(),
                "tables",
                "no tables are mapped: add a [tables.NAME] section",
            ),
            Some(entry) => {
                if let Some(t) = self.table_of(entry, "tables") {
                    for (name, value) in t.iter() {
                        let key = format!("tables.{}", name.get_ref());
                        if let Some(body) = self.table_of((name, value), &key)
                            && let Some(tm) =
                                self.table(name.get_ref(), name.span().start, body, timezone)
                        {
                            tables.push(tm);
                        }
                    }
                    if t.is_empty() {
                        self.problem(entry.0.span().start, "tables", "no tables are mapped");
                    }
                }
            }
        }

        Some(Mapping {
            file: path.to_path_buf(),
            source,
            schema,
            expect_revision,
            tables,
        })
    }

    fn source(&mut self, base: &Path, t: &DeTable<'_>, at: usize) -> Option<SourceSpec> {
        self.unknown_keys(t, SOURCE_KEYS, "source");
        let Some(kind) = t.get("kind") else {
            self.problem(at, "source.kind", "missing: say `kind = \"sqlite\"`");
            return None;
        };
        let kind = self.choice(
            kind,
            "source.kind",
            &[
                ("sqlite", "sqlite"),
                ("airtable", "airtable"),
                ("snapshot", "snapshot"),
            ],
        )?;
        match kind {
            "sqlite" => {
                let Some(p) = t.get("path") else {
                    self.problem(
                        at,
                        "source.path",
                        "missing: the SQLite file, relative to this mapping",
                    );
                    return None;
                };
                let p = self.string(p, "source.path")?;
                Some(SourceSpec::Sqlite(base.join(p)))
            }
            "airtable" => {
                let Some(b) = t.get("base") else {
                    self.problem(
                        at,
                        "source.base",
                        "missing: the base id (appXXXXXXXXXXXXXX, from the base's URL)",
                    );
                    return None;
                };
                let base = self.string(b, "source.base")?;
                if !crate::source::airtable::is_base_id(&base) {
                    self.problem(
                        b.span().start,
                        "source.base",
                        format!("`{base}` is not an Airtable base id: `app` followed by 14 letters or digits"),
                    );
                    return None;
                }
                Some(SourceSpec::Airtable { base })
            }
            "snapshot" => {
                let Some(d) = t.get("dir") else {
                    self.problem(
                        at,
                        "source.dir",
                        "missing: the snapshot directory (written by `cutover export`), relative to this mapping",
                    );
                    return None;
                };
                let d = self.string(d, "source.dir")?;
                Some(SourceSpec::Snapshot(base.join(d)))
            }
            other => {
                self.problem(
                    at,
                    "source.kind",
                    format!("`{other}` sources are not supported by this version of cutover"),
                );
                None
            }
        }
    }

    fn table(
        &mut self,
        name: &str,
        at: usize,
        t: &DeTable<'_>,
        tz: chrono_tz::Tz,
    ) -> Option<TableMap> {
        let prefix = format!("tables.{name}");
        self.unknown_keys(t, TABLE_KEYS, &prefix);
        let line = self.line(at);
        let from = match t.get("from") {
            Some(v) => self.string(v, &join(&prefix, "from")),
            None => Some(name.to_string()),
        };
        let junction = match t.get("junction") {
            Some(v) => self.boolean(v, &join(&prefix, "junction")).unwrap_or(false),
            None => false,
        };
        let legacy_field = t
            .get("legacy_id")
            .and_then(|v| self.string(v, &join(&prefix, "legacy_id")));
        let legacy_column = t
            .get("legacy_column")
            .and_then(|v| self.string(v, &join(&prefix, "legacy_column")));
        let keep_id = t
            .get("keep_id")
            .and_then(|v| self.boolean(v, &join(&prefix, "keep_id")))
            .unwrap_or(false);
        let owner = t
            .get("owner")
            .and_then(|v| self.string(v, &join(&prefix, "owner")));

        let mut columns = Vec::new();
        match t.get_key_value("columns") {
            Some(entry) => {
                let key = join(&prefix, "columns");
                if let Some(cols) = self.table_of(entry, &key) {
                    for (cname, cval) in cols.iter() {
                        if let Some(c) = self.column(&key, cname, cval, tz) {
                            columns.push(c);
                        }
                    }
                }
            }
            None if junction => {}
            None => self.problem(
                at,
                &prefix,
                format!("no columns: add a [{prefix}.columns] section"),
            ),
        }

        let identity = if junction {
            for (key, present) in [
                ("legacy_id", legacy_field.is_some()),
                ("legacy_column", legacy_column.is_some()),
                ("keep_id", keep_id),
            ] {
                if present {
                    self.problem(at, &join(&prefix, key), "a junction table has no legacy id: its rows are identified by their references");
                }
            }
            if columns.iter().filter(|c| c.shape.explode).count() > 1 {
                self.problem(
                    at,
                    &prefix,
                    "only one column of a junction can have `explode = true`",
                );
            }
            let refs: Vec<&ColumnMap> = columns.iter().filter(|c| c.reference.is_some()).collect();
            if refs.len() < 2 {
                self.problem(
                    at,
                    &prefix,
                    "a junction table needs at least two columns with `references`",
                );
            }
            for c in &refs {
                if c.reference
                    .as_ref()
                    .is_some_and(|r| r.on_missing == OnMissing::Null)
                {
                    self.problem(self_offset(self.text, c.line), &format!("{prefix}.columns.{}", c.name), "`on_missing = \"null\"` cannot apply to a junction row: use \"error\" or \"skip\"");
                }
            }
            let owner = match owner {
                Some(o) => {
                    if !refs.iter().any(|c| c.name == o) {
                        let hint = suggest::hint(&o, refs.iter().map(|c| c.name.as_str()));
                        self.problem(
                            at,
                            &join(&prefix, "owner"),
                            format!("`{o}` is not one of this junction's reference columns{hint}"),
                        );
                    }
                    o
                }
                None => refs.first().map(|c| c.name.clone()).unwrap_or_default(),
            };
            Identity::Junction { owner }
        } else {
            if owner.is_some() {
                self.problem(
                    at,
                    &join(&prefix, "owner"),
                    "only a junction table (`junction = true`) has an owner",
                );
            }
            if legacy_column.is_none() && !keep_id {
                self.problem(
                    at,
                    &prefix,
                    "say how target rows are tied to source rows: `legacy_column = \"airtable_id\"` (a target column that keeps the legacy id) and/or `keep_id = true` (the source's integer id becomes the primary key)",
                );
            }
            if let Some(lc) = &legacy_column
                && columns.iter().any(|c| &c.name == lc)
            {
                self.problem(at, &join(&prefix, "legacy_column"), format!("column `{lc}` is written twice: as the legacy column and in [{prefix}.columns]"));
            }
            Identity::Legacy {
                field: legacy_field.unwrap_or_else(|| "id".to_string()),
                column: legacy_column,
                keep_id,
            }
        };
        Some(TableMap {
            name: name.to_string(),
            from: from?,
            line,
            identity,
            columns,
        })
    }

    fn column(
        &mut self,
        prefix: &str,
        name: &Spanned<std::borrow::Cow<'_, str>>,
        v: &Spanned<DeValue<'_>>,
        tz: chrono_tz::Tz,
    ) -> Option<ColumnMap> {
        let key = join(prefix, name.get_ref());
        let line = self.line(name.span().start);
        let mut rules = Rules {
            timezone: tz,
            ..Rules::default()
        };
        // Shorthand: `email = "email_field"`.
        if let DeValue::String(_) = v.get_ref() {
            let field = self.string(v, &key)?;
            return Some(ColumnMap {
                name: name.get_ref().to_string(),
                line,
                input: Input::Field(field),
                rules,
                reference: None,
                shape: Shape::default(),
            });
        }
        let DeValue::Table(t) = v.get_ref() else {
            self.problem(v.span().start, &key, format!("expected a source field name or an inline table such as {{ field = \"x\" }}, found {}", v.get_ref().type_str()));
            return None;
        };
        self.unknown_keys(t, COLUMN_KEYS, &key);
        let at = v.span().start;
        let input = match (t.get("field"), t.get("value")) {
            (Some(f), None) => Input::Field(self.string(f, &join(&key, "field"))?),
            (None, Some(c)) => Input::Const(match c.get_ref() {
                DeValue::String(s) => Const::Text(s.to_string()),
                DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                    Ok(i) => Const::Int(i),
                    Err(_) => {
                        self.problem(c.span().start, &join(&key, "value"), "integer out of range");
                        return None;
                    }
                },
                DeValue::Float(f) => {
                    Const::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN))
                }
                DeValue::Boolean(b) => Const::Bool(*b),
                other => {
                    self.problem(
                        c.span().start,
                        &join(&key, "value"),
                        format!(
                            "a constant must be a string, number or boolean, found {}",
                            other.type_str()
                        ),
                    );
                    return None;
                }
            }),
            (Some(_), Some(_)) => {
                self.problem(at, &key, "give either `field` or `value`, not both");
                return None;
            }
            (None, None) => {
                self.problem(
                    at,
                    &key,
                    "missing `field` (the source field) or `value` (a constant)",
                );
                return None;
            }
        };
        let flag = |w: &mut Self, k: &str| {
            t.get(k)
                .and_then(|v| w.boolean(v, &join(&key, k)))
                .unwrap_or(false)
        };
        rules.trim = flag(self, "trim");
        rules.lowercase = flag(self, "lowercase");
        rules.empty_as_null = flag(self, "empty_as_null");
        rules.required = flag(self, "required");
        if let Some(d) = t.get("default") {
            rules.default = match d.get_ref() {
                DeValue::String(s) => Some(s.to_string()),
                DeValue::Integer(i) => Some(i.as_str().to_string()),
                DeValue::Float(f) => Some(f.as_str().to_string()),
                DeValue::Boolean(b) => Some(b.to_string()),
                other => {
                    self.problem(
                        d.span().start,
                        &join(&key, "default"),
                        format!(
                            "expected a string, number or boolean, found {}",
                            other.type_str()
                        ),
                    );
                    None
                }
            };
        }
        if let Some(e) = t.get("epoch") {
            rules.epoch = self.choice(
                e,
                &join(&key, "epoch"),
                &[("seconds", Epoch::Seconds), ("milliseconds", Epoch::Millis)],
            );
        }
        if let Some(z) = t.get("timezone") {
            rules.timezone = self.timezone(z, &join(&key, "timezone")).unwrap_or(tz);
        }
        if let Some(j) = t.get("json") {
            rules.json = self
                .choice(
                    j,
                    &join(&key, "json"),
                    &[("parse", JsonMode::Parse), ("string", JsonMode::String)],
                )
                .unwrap_or(JsonMode::Parse);
        }
        if let Some(s) = t.get("split") {
            rules.split = self.string(s, &join(&key, "split"));
        }
        if let Some(m) = t.get("map") {
            let mk = join(&key, "map");
            match m.get_ref() {
                DeValue::Table(entries) => {
                    let mut map = HashMap::new();
                    for (from, to) in entries.iter() {
                        let to = match to.get_ref() {
                            DeValue::String(s) => s.to_string(),
                            DeValue::Integer(i) => i.as_str().to_string(),
                            DeValue::Boolean(b) => b.to_string(),
                            other => {
                                self.problem(
                                    to.span().start,
                                    &join(&mk, from.get_ref()),
                                    format!("expected a string, found {}", other.type_str()),
                                );
                                continue;
                            }
                        };
                        map.insert(from.get_ref().to_string(), to);
                    }
                    rules.map = Some(map);
                }
                other => self.problem(
                    m.span().start,
                    &mk,
                    format!(
                        "expected a table such as {{ D = \"draft\" }}, found {}",
                        other.type_str()
                    ),
                ),
            }
        }
        let reference = match t.get("references") {
            Some(r) => {
                let table = self.string(r, &join(&key, "references"))?;
                let on_missing = match t.get("on_missing") {
                    Some(o) => self
                        .choice(
                            o,
                            &join(&key, "on_missing"),
                            &[
                                ("error", OnMissing::Error),
                                ("null", OnMissing::Null),
                                ("skip", OnMissing::Skip),
                            ],
                        )
                        .unwrap_or(OnMissing::Error),
                    None => OnMissing::Error,
                };
                if matches!(input, Input::Const(_)) {
                    self.problem(
                        at,
                        &key,
                        "a reference needs a source `field`, not a constant `value`",
                    );
                }
                Some(Reference { table, on_missing })
            }
            None => {
                if let Some(o) = t.get("on_missing") {
                    self.problem(
                        o.span().start,
                        &join(&key, "on_missing"),
                        "only applies to a column with `references`",
                    );
                }
                None
            }
        };
        let mut shape = Shape::default();
        if let Some(v) = t.get("many") {
            shape.many = self
                .choice(
                    v,
                    &join(&key, "many"),
                    &[("reject", Many::Reject), ("first", Many::First)],
                )
                .unwrap_or_default();
        }
        if let Some(v) = t.get("on_error") {
            shape.on_error = self
                .choice(
                    v,
                    &join(&key, "on_error"),
                    &[("reject", OnError::Reject), ("null", OnError::Null)],
                )
                .unwrap_or_default();
        }
        if let Some(v) = t.get("explode") {
            shape.explode = self.boolean(v, &join(&key, "explode")).unwrap_or(false);
        }
        Some(ColumnMap {
            name: name.get_ref().to_string(),
            line,
            input,
            rules,
            reference,
            shape,
        })
    }
}

/// Checks across tables: references name mapped entity tables, and they form no cycle.
fn check_references(m: &Mapping, problems: &mut Vec<Problem>) {
    let names: Vec<&str> = m.tables.iter().map(|t| t.name.as_str()).collect();
    for t in &m.tables {
        for c in &t.columns {
            let Some(r) = &c.reference else { continue };
            let key = format!("tables.{}.columns.{}.references", t.name, c.name);
            match m.table(&r.table) {
                None => problems.push(Problem {
                    line: c.line,
                    key,
                    message: format!("`{}` is not a mapped table{}", r.table, suggest::hint(&r.table, names.iter().copied())),
                }),
                Some(p) if p.is_junction() => problems.push(Problem {
                    line: c.line,
                    key,
                    message: format!("`{}` is a junction table; a reference must point at a table with a legacy id", r.table),
                }),
                Some(p) if p.name == t.name => problems.push(Problem {
                    line: c.line,
                    key,
                    message: "a table referencing itself is not supported by this version of cutover".to_string(),
                }),
                Some(_) => {}
            }
        }
    }
    let edges: Vec<(usize, usize, usize)> = m
        .tables
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.columns.iter().filter_map(move |c| {
                let r = c.reference.as_ref()?;
                let j = m.tables.iter().position(|p| p.name == r.table)?;
                (j != i).then_some((i, j, c.line))
            })
        })
        .collect();
    if let Some(cycle) =
        crate::graph::find_cycle(m.tables.len(), edges.iter().map(|&(a, b, _)| (a, b)))
    {
        let path: Vec<&str> = cycle.iter().map(|&i| m.tables[i].name.as_str()).collect();
        let line = edges
            .iter()
            .find(|e| e.0 == cycle[0])
            .map(|e| e.2)
            .unwrap_or(1);
        problems.push(Problem {
            line,
            key: "references".to_string(),
            message: format!(
                "the references form a cycle: {}; no load order can satisfy it",
                path.join(" -> ")
            ),
        });
    }
}

fn self_offset(text: &str, line: usize) -> usize {
    text.split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum()
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests;
