//! The one value type that flows from a source to the converter: borrowed
//! from the source's row buffer so reading a row allocates nothing.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Text as the source stores it; SQLite text may be invalid UTF-8.
    Text(&'a [u8]),
    Blob(&'a [u8]),
    /// A structured value (Airtable arrays/objects, later).
    Json(&'a serde_json::Value),
}
