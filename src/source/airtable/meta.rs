//! The Airtable metadata API (`GET /v0/meta/bases/{base}/tables`) as typed data: which tables
//! a base has, their ids and fields, each field's type and, for links, the linked table and
//! the inverse field. Extraction needs it to name tables and fields and to know which fields
//! are checkboxes (absent means false); discovery and mappings need the link structure.
//!
//! Parsing is lenient where Airtable adds things (unknown field types, extra keys) and strict
//! where extraction depends on it (every table and field has an id and a name).

use serde_json::Value as Json;

/// The tables of one base, as the metadata API describes them.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseSchema {
    pub tables: Vec<TableSchema>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// `tbl…`
    pub id: String,
    pub name: String,
    /// `fld…` of the primary field, when the response says.
    pub primary_field_id: Option<String>,
    pub fields: Vec<FieldSchema>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldSchema {
    /// `fld…`
    pub id: String,
    pub name: String,
    /// Airtable's type name (`singleLineText`, `checkbox`, `multipleRecordLinks`, …); types
    /// this version does not know are kept as they are.
    pub field_type: String,
    /// The field's `options` object as sent (`Json::Null` when absent).
    pub options: Json,
    /// For `multipleRecordLinks`: where the link points.
    pub link: Option<LinkOptions>,
}

/// The `options` of a `multipleRecordLinks` field.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkOptions {
    pub linked_table_id: String,
    /// The field on the linked table that holds the other side of this link, if any.
    pub inverse_link_field_id: Option<String>,
    /// The UI prefers one record; the API still sends an array.
    pub prefers_single_record_link: bool,
}

impl BaseSchema {
    /// Parse a metadata response body; `what` names the base for messages.
    pub fn parse(json: &Json, what: &str) -> anyhow::Result<BaseSchema> {
        let tables = json.get("tables").and_then(Json::as_array).ok_or_else(|| {
            anyhow::anyhow!("{what}: the metadata response has no `tables` array")
        })?;
        let mut out = Vec::with_capacity(tables.len());
        for (i, t) in tables.iter().enumerate() {
            let id = str_at(t, "id").ok_or_else(|| {
                anyhow::anyhow!("{what}: metadata table #{} has no string `id`", i + 1)
            })?;
            let name = str_at(t, "name").ok_or_else(|| {
                anyhow::anyhow!("{what}: metadata table {id} has no string `name`")
            })?;
            let fields_json = t.get("fields").and_then(Json::as_array).ok_or_else(|| {
                anyhow::anyhow!("{what}: metadata table {name:?} has no `fields` array")
            })?;
            let mut fields = Vec::with_capacity(fields_json.len());
            for (j, f) in fields_json.iter().enumerate() {
                let fid = str_at(f, "id").ok_or_else(|| {
                    anyhow::anyhow!(
                        "{what}: metadata table {name:?}: field #{} has no string `id`",
                        j + 1
                    )
                })?;
                let fname = str_at(f, "name").ok_or_else(|| {
                    anyhow::anyhow!("{what}: metadata table {name:?}: field {fid} has no `name`")
                })?;
                let field_type = str_at(f, "type").unwrap_or("unknown").to_string();
                let options = f.get("options").cloned().unwrap_or(Json::Null);
                let link = if field_type == "multipleRecordLinks" {
                    str_at(&options, "linkedTableId").map(|linked| LinkOptions {
                        linked_table_id: linked.to_string(),
                        inverse_link_field_id: str_at(&options, "inverseLinkFieldId")
                            .map(str::to_string),
                        prefers_single_record_link: options
                            .get("prefersSingleRecordLink")
                            .and_then(Json::as_bool)
                            .unwrap_or(false),
                    })
                } else {
                    None
                };
                fields.push(FieldSchema {
                    id: fid.to_string(),
                    name: fname.to_string(),
                    field_type,
                    options,
                    link,
                });
            }
            out.push(TableSchema {
                id: id.to_string(),
                name: name.to_string(),
                primary_field_id: str_at(t, "primaryFieldId").map(str::to_string),
                fields,
            });
        }
        Ok(BaseSchema { tables: out })
    }

    /// A table by name, or by `tbl…` id.
    pub fn table(&self, name_or_id: &str) -> Option<&TableSchema> {
        self.tables
            .iter()
            .find(|t| t.name == name_or_id)
            .or_else(|| self.tables.iter().find(|t| t.id == name_or_id))
    }

    /// A table by its `tbl…` id.
    pub fn table_by_id(&self, id: &str) -> Option<&TableSchema> {
        self.tables.iter().find(|t| t.id == id)
    }
}

impl TableSchema {
    /// A field by name, or by `fld…` id.
    pub fn field(&self, name_or_id: &str) -> Option<&FieldSchema> {
        self.fields
            .iter()
            .find(|f| f.name == name_or_id)
            .or_else(|| self.fields.iter().find(|f| f.id == name_or_id))
    }
}

/// Whether Airtable computes a field of this type itself (Airtable's field model: "Field
/// types", computed fields are read-only through the API): formulas, rollups, counts,
/// lookups, auto numbers, the created/modified times and collaborators, buttons and AI
/// text. Such a value can be read, but it is derived from other fields or from Airtable.
pub fn is_computed(field_type: &str) -> bool {
    matches!(
        field_type,
        "formula"
            | "rollup"
            | "count"
            | "lookup"
            | "multipleLookupValues"
            | "autoNumber"
            | "createdBy"
            | "lastModifiedBy"
            | "createdTime"
            | "lastModifiedTime"
            | "button"
            | "aiText"
    )
}

fn str_at<'a>(v: &'a Json, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Json::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_links_and_keeps_unknown_types() {
        let j: Json = serde_json::from_str(
            r#"{"tables":[{"id":"tblA","name":"A","primaryFieldId":"fld1","fields":[
                {"id":"fld1","name":"Name","type":"singleLineText"},
                {"id":"fld2","name":"B","type":"multipleRecordLinks",
                 "options":{"linkedTableId":"tblB","inverseLinkFieldId":"fld9","prefersSingleRecordLink":true}},
                {"id":"fld3","name":"New","type":"aiText","options":{"x":1}}]}]}"#,
        )
        .unwrap();
        let s = BaseSchema::parse(&j, "base appX").unwrap();
        let t = s.table("A").unwrap();
        let link = t.field("B").unwrap().link.as_ref().unwrap();
        assert_eq!(link.linked_table_id, "tblB");
        assert_eq!(link.inverse_link_field_id.as_deref(), Some("fld9"));
        assert!(link.prefers_single_record_link);
        assert_eq!(t.field("fld3").unwrap().field_type, "aiText");
        assert!(s.table("tblA").is_some());
    }

    #[test]
    fn computed_field_types() {
        for t in [
            "formula",
            "rollup",
            "count",
            "multipleLookupValues",
            "autoNumber",
            "button",
            "aiText",
            "createdBy",
            "lastModifiedTime",
        ] {
            assert!(is_computed(t), "{t}");
        }
        for t in [
            "singleLineText",
            "multipleRecordLinks",
            "checkbox",
            "number",
            "unknown",
        ] {
            assert!(!is_computed(t), "{t}");
        }
    }

    #[test]
    fn rejects_the_wrong_shape() {
        for body in [r#"{}"#, r#"{"tables":[{"name":"x","fields":[]}]}"#, r#"[]"#] {
            let j: Json = serde_json::from_str(body).unwrap();
            assert!(BaseSchema::parse(&j, "base appX").is_err(), "{body}");
        }
    }
}
