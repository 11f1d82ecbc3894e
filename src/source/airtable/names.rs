//! The names a base's tables and fields had when cutover last read it, so a mapping that
//! names a field Airtable has since renamed can be told which field it was (its `fld…` id
//! and its new name) rather than only that the name is gone. Airtable's metadata API gives
//! only current names; ids never change (https://airtable.com/developers/web/api/field-model).
//!
//! One small JSON file per base (`names-app….json`) in the directory of the pacing files
//! (see `shared`), written privately and atomically each time a base's metadata is read.
//! It only ever improves a message: a missing, unreadable or unwritable file is ignored.

use super::meta::BaseSchema;
use crate::files;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Names kept per table or field, newest last.
const KEEP: usize = 8;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Memo {
    /// Per `tbl…` id.
    tables: BTreeMap<String, TableNames>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TableNames {
    names: Vec<String>,
    /// Per `fld…` id.
    fields: BTreeMap<String, Vec<String>>,
}

/// Names a table and its fields had before, and no longer have.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Former {
    /// Per `tbl…` id: the table's earlier names.
    pub(crate) tables: BTreeMap<String, Vec<String>>,
    /// Per `tbl…` id: (earlier name, `fld…` id) of its renamed fields.
    pub(crate) fields: BTreeMap<String, Vec<(String, String)>>,
}

/// The memo file's name for base `base` (beside its pacing file, named like it).
pub(crate) fn file_name(base: &str, api: &str) -> String {
    format!(
        "names-{}",
        super::shared::base_name(base, api).trim_start_matches("base-")
    )
}

/// Read the memo at `path`, say which names of `schema` changed since, and write the memo
/// back with today's names added.
pub(crate) fn remember(path: &Path, schema: &BaseSchema) -> Former {
    let mut memo: Memo = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let former = compare(&memo, schema);
    update(&mut memo, schema);
    if let Some(dir) = path.parent()
        && super::shared::private_dir(dir).is_ok()
        && let Ok(bytes) = serde_json::to_vec(&memo)
    {
        let _ = files::write(path, &bytes, files::Existing::Replace);
    }
    former
}

fn compare(memo: &Memo, schema: &BaseSchema) -> Former {
    let mut former = Former::default();
    for t in &schema.tables {
        let Some(seen) = memo.tables.get(&t.id) else {
            continue;
        };
        let names: Vec<String> = seen
            .names
            .iter()
            .filter(|n| **n != t.name)
            .cloned()
            .collect();
        if !names.is_empty() {
            former.tables.insert(t.id.clone(), names);
        }
        let mut fields = Vec::new();
        for f in &t.fields {
            for n in seen.fields.get(&f.id).into_iter().flatten() {
                // A name another field holds now is that field's, not a rename.
                if *n != f.name && !t.fields.iter().any(|g| g.name == *n) {
                    fields.push((n.clone(), f.id.clone()));
                }
            }
        }
        if !fields.is_empty() {
            former.fields.insert(t.id.clone(), fields);
        }
    }
    former
}

fn update(memo: &mut Memo, schema: &BaseSchema) {
    fn push(names: &mut Vec<String>, name: &str) {
        names.retain(|n| n != name);
        names.push(name.to_string());
        if names.len() > KEEP {
            names.remove(0);
        }
    }
    for t in &schema.tables {
        let seen = memo.tables.entry(t.id.clone()).or_default();
        push(&mut seen.names, &t.name);
        for f in &t.fields {
            push(seen.fields.entry(f.id.clone()).or_default(), &f.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh private directory of its own per test.
    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cutover-names-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn schema(table: &str, fields: &[(&str, &str)]) -> BaseSchema {
        let fields: Vec<_> = fields
            .iter()
            .map(|(id, name)| serde_json::json!({"id": id, "name": name, "type": "singleLineText"}))
            .collect();
        let json = serde_json::json!({"tables": [{"id": "tblA", "name": table, "fields": fields}]});
        BaseSchema::parse(&json, "test").unwrap()
    }

    #[test]
    fn a_rename_between_reads_is_remembered() {
        let d = dir("rename");
        let path = d.join(file_name("appX", "http://x"));
        let first = remember(
            &path,
            &schema("People", &[("fld1", "Name"), ("fld2", "Email")]),
        );
        assert_eq!(first, Former::default());
        let second = remember(
            &path,
            &schema("Members", &[("fld1", "Full name"), ("fld2", "Email")]),
        );
        assert_eq!(second.tables["tblA"], vec!["People".to_string()]);
        assert_eq!(
            second.fields["tblA"],
            vec![("Name".to_string(), "fld1".to_string())]
        );
        // Still known on the next read, and the file is private.
        let third = remember(
            &path,
            &schema("Members", &[("fld1", "Full name"), ("fld2", "Email")]),
        );
        assert_eq!(third.fields["tblA"], second.fields["tblA"]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_name_taken_by_another_field_is_not_a_rename() {
        let d = dir("taken");
        let path = d.join(file_name("appX", "http://x"));
        remember(&path, &schema("T", &[("fld1", "Name"), ("fld2", "Other")]));
        let f = remember(
            &path,
            &schema("T", &[("fld1", "Old name"), ("fld2", "Name")]),
        );
        // `Name` is fld2's now; only fld2's own earlier name counts as a rename.
        assert_eq!(
            f.fields["tblA"],
            vec![("Other".to_string(), "fld2".to_string())],
            "{f:?}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_unreadable_memo_is_ignored() {
        let d = dir("unreadable");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let path = d.join(file_name("appX", "http://x"));
        std::fs::write(&path, b"{not json").unwrap();
        let f = remember(&path, &schema("T", &[("fld1", "Name")]));
        assert_eq!(f, Former::default());
        // And it was replaced by a good one.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("fld1"), "{text}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
