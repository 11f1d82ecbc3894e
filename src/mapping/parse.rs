//! The mapping's TOML layout: which keys each section allows and what they mean, read into
//! the model by a `Walker` that keeps going past problems. Only what one table says is checked
//! here; the rules across tables are `check`.

use super::walker::{Walker, join, line_start};
use super::{
    ColumnMap, Const, GenerateId, Identity, Input, Many, Mapping, OnError, OnMissing, Problem,
};
use super::{KeyPolicy, OnConflict, OnDuplicate, Reference, Shape, TableMap, Triggers, suggest};
use crate::convert::{Epoch, JsonMode, Rules, Step};
use crate::source::SourceSpec;
use crate::source::snapshot::attachments::Keep;
use std::collections::HashMap;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

const TOP_KEYS: &[&str] = &["source", "target", "tables"];
const SOURCE_KEYS: &[&str] = &["kind", "path", "base", "dir"];
const TARGET_KEYS: &[&str] = &["schema", "expect_revision", "timezone"];
const TABLE_KEYS: &[&str] = &[
    "from",
    "legacy_id",
    "legacy_column",
    "keep_id",
    "generate_id",
    "trim_legacy_id",
    "junction",
    "owner",
    "on_conflict",
    "columns",
    "triggers",
    "disable_triggers",
    "set_by_triggers",
    "on_duplicate",
    "on_duplicate_key",
    "view",
    "filter",
];
const ON_DUPLICATE: &[(&str, OnDuplicate)] = &[
    ("error", OnDuplicate::Error),
    ("keep_first", OnDuplicate::KeepFirst),
    ("keep_last", OnDuplicate::KeepLast),
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
    "path",
    "truncate",
    "on_conflict",
    "attachments",
];

/// Read mapping text into a mapping, with every problem found on the way (none if it is
/// sound). Not valid TOML gives no mapping and that one problem.
pub(super) fn document(path: &Path, text: &str) -> (Option<Mapping>, Vec<Problem>) {
    let mut w = Walker::new(text);
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let line = e.span().map(|s| w.line(s.start)).unwrap_or(1);
            let problem = Problem {
                line,
                key: String::new(),
                message: format!("not valid TOML: {}", e.message().trim()),
            };
            return (None, vec![problem]);
        }
    };
    let mapping = w.mapping(path, doc.get_ref());
    (mapping, w.problems)
}

impl Walker<'_> {
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
                            && let Some(tm) = self.table(
                                name.get_ref(),
                                name.span().start,
                                body,
                                timezone,
                                source.as_ref(),
                            )
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
        source: Option<&SourceSpec>,
    ) -> Option<TableMap> {
        let prefix = format!("tables.{name}");
        self.unknown_keys(t, TABLE_KEYS, &prefix);
        let line = self.line(at);
        // Which records to read: Airtable's view and formula, sent with every list request.
        let mut selection = crate::source::Selection::default();
        let mut selection_line = line;
        for key in ["view", "filter"] {
            let Some(v) = t.get(key) else { continue };
            let k = join(&prefix, key);
            if selection.is_all() {
                selection_line = self.line(v.span().start);
            }
            let value = self.string(v, &k);
            if let Some(SourceSpec::Sqlite(_) | SourceSpec::Snapshot(_)) = source {
                self.problem(
                    v.span().start,
                    &k,
                    "`view` and `filter` choose the records Airtable lists, and this mapping's source is not Airtable: remove them",
                );
            }
            match key {
                "view" => selection.view = value,
                _ => selection.filter = value,
            }
        }
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
        let trim_id = t
            .get("trim_legacy_id")
            .and_then(|v| self.boolean(v, &join(&prefix, "trim_legacy_id")))
            .unwrap_or(false);
        let generate = t.get("generate_id").and_then(|v| {
            self.choice(
                v,
                &join(&prefix, "generate_id"),
                &[("uuid4", GenerateId::Uuid4), ("uuid5", GenerateId::Uuid5)],
            )
        });
        let owner = t
            .get("owner")
            .and_then(|v| self.string(v, &join(&prefix, "owner")));
        let triggers = Triggers {
            disable_all: t
                .get("triggers")
                .and_then(|v| {
                    self.choice(
                        v,
                        &join(&prefix, "triggers"),
                        &[("keep", false), ("disable", true)],
                    )
                })
                .unwrap_or(false),
            disable: t
                .get("disable_triggers")
                .map(|v| self.strings(v, &join(&prefix, "disable_triggers")))
                .unwrap_or_default(),
            set_by: t
                .get("set_by_triggers")
                .map(|v| self.strings(v, &join(&prefix, "set_by_triggers")))
                .unwrap_or_default(),
        };
        let on_conflict = t
            .get("on_conflict")
            .and_then(|v| self.on_conflict(v, &join(&prefix, "on_conflict")))
            .unwrap_or_default();
        let on_duplicate = t
            .get("on_duplicate")
            .and_then(|v| self.choice(v, &join(&prefix, "on_duplicate"), ON_DUPLICATE))
            .unwrap_or_default();
        let mut on_duplicate_key = Vec::new();
        if let Some(entry) = t.get_key_value("on_duplicate_key") {
            let key = join(&prefix, "on_duplicate_key");
            if let Some(keys) = self.table_of(entry, &key) {
                for (kname, kval) in keys.iter() {
                    let k = join(&key, kname.get_ref());
                    if let Some(policy) = self.choice(kval, &k, ON_DUPLICATE) {
                        on_duplicate_key.push(KeyPolicy {
                            name: kname.get_ref().to_string(),
                            policy,
                            line: self.line(kname.span().start),
                        });
                    }
                }
            }
        }
        if junction && (t.contains_key("on_duplicate") || t.contains_key("on_duplicate_key")) {
            self.problem(at, &join(&prefix, "on_duplicate"), "a junction table's rows are its links: a repeated link is skipped, and `on_duplicate` applies to tables with a legacy id");
        }

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
                ("generate_id", generate.is_some()),
                ("trim_legacy_id", trim_id),
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
                    self.problem(line_start(self.text, c.line), &format!("{prefix}.columns.{}", c.name), "`on_missing = \"null\"` cannot apply to a junction row: use \"error\" or \"skip\"");
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
            if generate.is_some() && keep_id {
                self.problem(
                    at,
                    &join(&prefix, "generate_id"),
                    "give either `keep_id` (the source's id becomes the primary key) or `generate_id` (cutover generates it), not both",
                );
            } else if generate.is_some() && legacy_column.is_none() {
                self.problem(
                    at,
                    &join(&prefix, "generate_id"),
                    "a generated primary key needs `legacy_column` too: the target column that keeps the legacy id, so a re-run finds the rows it loaded and references can resolve",
                );
            } else if legacy_column.is_none() && !keep_id {
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
                generate,
                trim: trim_id,
            }
        };
        Some(TableMap {
            name: name.to_string(),
            from: from?,
            line,
            selection,
            selection_line,
            identity,
            columns,
            triggers,
            on_conflict,
            on_duplicate,
            on_duplicate_key,
        })
    }

    /// `on_conflict = "keep" | "overwrite"`.
    fn on_conflict(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<OnConflict> {
        self.choice(
            v,
            key,
            &[
                ("keep", OnConflict::Keep),
                ("overwrite", OnConflict::Overwrite),
            ],
        )
    }

    /// `attachments = { store = "path" | "bytes" | "url", url_prefix = "https://…/" }`.
    fn attachments(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<Keep> {
        let DeValue::Table(t) = v.get_ref() else {
            self.problem(
                v.span().start,
                key,
                format!(
                    "expected an inline table such as {{ store = \"path\" }}, found {}",
                    v.get_ref().type_str()
                ),
            );
            return None;
        };
        self.unknown_keys(t, &["store", "url_prefix"], key);
        let Some(store) = t.get("store") else {
            self.problem(
                v.span().start,
                key,
                "missing `store`: \"path\" (the file's path in the snapshot), \"bytes\" (its \
                 bytes, for a bytea column) or \"url\" (with `url_prefix`)",
            );
            return None;
        };
        let sk = join(key, "store");
        let kind = self.choice(store, &sk, &[("path", 0u8), ("bytes", 1), ("url", 2)])?;
        let prefix = t
            .get("url_prefix")
            .map(|p| (p, self.string(p, &join(key, "url_prefix"))));
        match (kind, prefix) {
            (0, None) => Some(Keep::Path),
            (1, None) => Some(Keep::Bytes),
            (2, Some((p, Some(text)))) => {
                let ok = (text.starts_with("https://") || text.starts_with("http://"))
                    && text.ends_with('/')
                    && !text.chars().any(|c| c.is_whitespace() || c.is_control());
                if !ok {
                    self.problem(
                        p.span().start,
                        &join(key, "url_prefix"),
                        format!(
                            "`{text}` is not an http(s) URL ending in `/`, such as \
                             \"https://cdn.example.com/\" (the file's snapshot path follows it)"
                        ),
                    );
                    return None;
                }
                Some(Keep::Url(text))
            }
            (2, None) => {
                self.problem(
                    store.span().start,
                    &sk,
                    "store = \"url\" needs `url_prefix`, where the snapshot's attachments \
                     directory is served (e.g. \"https://cdn.example.com/\")",
                );
                None
            }
            (2, Some((_, None))) => None,
            (_, Some((p, _))) => {
                self.problem(
                    p.span().start,
                    &join(key, "url_prefix"),
                    "`url_prefix` only applies with store = \"url\"",
                );
                None
            }
            _ => None,
        }
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
                on_conflict: None,
                attachments: None,
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
        rules.truncate = flag(self, "truncate");
        if let Some(p) = t.get("path") {
            let pk = join(&key, "path");
            rules.path = self
                .string(p, &pk)
                .and_then(|text| match path_steps(&text) {
                    Ok(steps) => Some(steps),
                    Err(why) => {
                        self.problem(p.span().start, &pk, why);
                        None
                    }
                });
        }
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
            rules.many = self
                .choice(
                    v,
                    &join(&key, "many"),
                    &[("reject", Many::Reject), ("first", Many::First)],
                )
                .unwrap_or_default();
        }
        if let Some(v) = t.get("on_error") {
            rules.on_error = self
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
        let on_conflict = t
            .get("on_conflict")
            .and_then(|v| self.on_conflict(v, &join(&key, "on_conflict")));
        let attachments = match t.get("attachments") {
            None => None,
            Some(a) => {
                let keep = self.attachments(a, &join(&key, "attachments"));
                let ak = join(&key, "attachments");
                let clash = if matches!(input, Input::Const(_)) {
                    Some("a source `field` (an attachment field), not a constant `value`")
                } else if rules.path.is_some() {
                    Some("no `path` (it picks from the attachment objects itself)")
                } else if reference.is_some() || shape.explode {
                    Some("no `references` or `explode`")
                } else if keep == Some(Keep::Bytes) && rules.many == Many::First {
                    Some(
                        "one attachment per cell with store = \"bytes\" (`many = \"first\"` would \
                         load a path as bytes): drop `many`, or store paths or URLs",
                    )
                } else {
                    None
                };
                if let Some(why) = clash {
                    self.problem(a.span().start, &ak, format!("`attachments` needs {why}"));
                }
                keep
            }
        };
        Some(ColumnMap {
            name: name.get_ref().to_string(),
            line,
            input,
            rules,
            reference,
            shape,
            on_conflict,
            attachments,
        })
    }
}

/// A `path` into a structured value: steps separated by `.`, each an object's key or, all
/// digits, a list's index (`email`, `0.url`, `attachments.0.filename`).
fn path_steps(text: &str) -> Result<Vec<Step>, String> {
    text.split('.')
        .map(|step| match step {
            "" => Err(format!(
                "`{text}` has an empty step: write keys and indexes separated by single dots, e.g. \"0.url\""
            )),
            s if s.bytes().all(|b| b.is_ascii_digit()) => s
                .parse()
                .map(Step::Index)
                .map_err(|_| format!("index `{s}` in `{text}` is too large")),
            s => Ok(Step::Key(s.to_string())),
        })
        .collect()
}
