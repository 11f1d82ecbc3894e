//! How the names a mapping writes meet the source's tables and fields: by name, or by the
//! source's own id (Airtable's `tbl…` and `fld…`, which survive a rename in the base), and
//! what to say when neither matches — the ids there are, or the rename that happened since
//! the base was last read, with the id form to write instead.

use crate::mapping::suggest;
use crate::source::SourceTable;

/// Does `s` look like one of Airtable's own ids with this prefix (`tbl`, `fld`, `viw`):
/// the prefix and 14 letters or digits?
pub(crate) fn is_id(s: &str, prefix: &str) -> bool {
    s.len() == 17 && s.starts_with(prefix) && s[3..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The source table a mapping's `from` names.
pub(crate) fn table<'a>(source: &'a [SourceTable], from: &str) -> Option<&'a SourceTable> {
    source.iter().find(|s| s.is(from))
}

/// Why no source table is `from`.
pub(crate) fn missing_table(source: &[SourceTable], from: &str) -> String {
    let has_ids = source.iter().any(|s| s.id.is_some());
    if has_ids && is_id(from, "tbl") {
        let list: Vec<String> = source
            .iter()
            .map(|s| format!("{} {}", s.id.as_deref().unwrap_or("?"), s.name))
            .collect();
        return format!(
            "the source has no table with the id `{from}` (its tables: {}); take the id from \
             the base's URL (airtable.com/app…/tbl…) or from `cutover inspect`",
            list.join(", ")
        );
    }
    if let Some(now) = source
        .iter()
        .find(|s| s.former_names.iter().any(|n| n == from))
    {
        let id = now.id.as_deref().unwrap_or("?");
        return format!(
            "source table `{from}` was renamed `{}` (id {id}) since cutover last read this \
             base; name it by its id, which a rename does not change: from = \"{id}\"  # {}",
            now.name, now.name
        );
    }
    format!(
        "source table `{from}` does not exist{}",
        suggest::hint(from, source.iter().map(|s| s.name.as_str()))
    )
}

/// Why table `s` has no field `name` (a name or an id).
pub(crate) fn missing_field(s: &SourceTable, name: &str) -> String {
    let has_ids = s.field_ids.iter().any(Option::is_some);
    if has_ids && is_id(name, "fld") {
        return format!(
            "source table `{}` has no field with the id `{name}`; its fields are {}",
            s.name,
            field_list(s)
        );
    }
    if let Some((_, i)) = s.former_fields.iter().find(|(old, _)| old == name) {
        let now = &s.fields[*i];
        let id = s.field_ids.get(*i).cloned().flatten().unwrap_or_default();
        return format!(
            "source table `{}` has no field `{name}` any more: it was renamed `{now}` (id {id}) \
             since cutover last read this base; name it by its id, which a rename does not \
             change: field = \"{id}\"  # {now}",
            s.name
        );
    }
    format!(
        "source table `{}` has no field `{name}`{}",
        s.name,
        suggest::hint(name, s.fields.iter().map(String::as_str))
    )
}

/// `fld… Name, fld… Email` (fields without an id by name alone).
fn field_list(s: &SourceTable) -> String {
    s.fields
        .iter()
        .enumerate()
        .map(|(i, f)| match s.field_ids.get(i).cloned().flatten() {
            Some(id) => format!("{id} {f}"),
            None => f.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people() -> SourceTable {
        SourceTable {
            name: "Members".into(),
            fields: vec!["@id".into(), "Full name".into(), "Email".into()],
            id: Some("tblPeople00000001".into()),
            field_ids: vec![
                None,
                Some("fldName0000000001".into()),
                Some("fldEmail000000001".into()),
            ],
            former_names: vec!["People".into()],
            former_fields: vec![("Name".into(), 1)],
        }
    }

    #[test]
    fn names_and_ids_both_match() {
        let s = [people()];
        assert!(table(&s, "Members").is_some());
        assert!(table(&s, "tblPeople00000001").is_some());
        assert_eq!(s[0].field("Email"), Some(2));
        assert_eq!(s[0].field("fldName0000000001"), Some(1));
        assert_eq!(s[0].field("fldNope0000000001"), None);
    }

    #[test]
    fn an_unknown_id_lists_the_ids_there_are() {
        let s = people();
        let m = missing_field(&s, "fldNope0000000001");
        assert!(
            m.contains("no field with the id `fldNope0000000001`"),
            "{m}"
        );
        assert!(
            m.contains("fldName0000000001 Full name, fldEmail000000001 Email"),
            "{m}"
        );
        let m = missing_table(&[s], "tblNope0000000001");
        assert!(m.contains("tblPeople00000001 Members"), "{m}");
    }

    #[test]
    fn a_renamed_name_gets_its_id_and_new_name() {
        let s = people();
        let m = missing_field(&s, "Name");
        assert!(
            m.contains("renamed `Full name` (id fldName0000000001)"),
            "{m}"
        );
        assert!(
            m.contains("field = \"fldName0000000001\"  # Full name"),
            "{m}"
        );
        let m = missing_table(&[s], "People");
        assert!(
            m.contains("renamed `Members` (id tblPeople00000001)"),
            "{m}"
        );
        assert!(m.contains("from = \"tblPeople00000001\""), "{m}");
    }

    #[test]
    fn without_ids_a_name_is_only_a_name() {
        let s = SourceTable {
            name: "people".into(),
            fields: vec!["id".into(), "email".into()],
            ..SourceTable::default()
        };
        let m = missing_field(&s, "emial");
        assert!(m.contains("has no field `emial`"), "{m}");
        assert!(m.contains("email"), "{m}");
    }
}
