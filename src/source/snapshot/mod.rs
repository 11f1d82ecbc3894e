//! Snapshots: the source frozen into a directory of CSV files plus `manifest.json`, so a team
//! keeps the backup it must keep before cutover (a copy anyone can open in a spreadsheet)
//! and can load from it as often as it likes — the dry run and the real run then read
//! exactly the same records, and a slow source (Airtable) is read once.
//!
//! `writer` writes a snapshot, `reader` reads one back as a [`crate::source::Source`], and
//! `format` is the cell encoding that makes the round trip lossless. The manifest defined
//! here ties them together; README.md, "Snapshots", documents the format.

pub(crate) mod attachments;
pub(crate) mod format;
pub(crate) mod reader;
pub(crate) mod writer;

use format::ColumnType;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

/// `format` in every manifest.
pub const FORMAT: &str = "cutover-snapshot";
/// The format version this cutover writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name inside a snapshot directory.
pub const MANIFEST: &str = "manifest.json";

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub cutover_version: String,
    /// UTC, RFC 3339.
    pub extracted_at: String,
    pub source: SourceInfo,
    pub tables: Vec<TableEntry>,
    /// Files kept beside the tables, such as Airtable's metadata (`airtable-meta.json`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<ExtraEntry>,
    /// Attachment files kept in the snapshot (see [`attachments`]), by attachment id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentEntry>,
    /// The Airtable webhook that records changes since this snapshot (`export
    /// --track-changes`), for `export --refresh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub airtable_changes: Option<ChangeFeed>,
}

/// An Airtable webhook and the cursor of the first payload not yet applied to the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeFeed {
    pub webhook: String,
    pub cursor: u64,
}

/// An attachment file in the snapshot: the attachment's id (`att…`), its file
/// (`attachments/sha256/ab/cdef…`), SHA-256 and size in bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentEntry {
    pub id: String,
    pub file: String,
    pub sha256: String,
    pub size: u64,
}

/// A file beside the tables: its name and SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtraEntry {
    pub file: String,
    pub sha256: String,
}

/// Where the data came from: the kind and location only, never a credential.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceInfo {
    pub kind: String,
    pub location: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableEntry {
    /// The source table's name.
    pub name: String,
    /// The CSV file's name inside the snapshot directory.
    pub file: String,
    pub columns: Vec<ColumnEntry>,
    /// Data rows (the header row not counted).
    pub rows: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnEntry {
    pub name: String,
    /// The type of the column's plain cells (see [`format`]).
    #[serde(rename = "type")]
    pub ty: ColumnType,
}

/// Lowercase hex of a finished digest.
fn hex_digest(h: Sha256) -> String {
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A writer that hashes what passes through it.
struct HashWriter<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what passes through it.
struct HashReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// A file name for a table: its name where that is a safe file name, otherwise with unsafe
/// characters replaced, unique within the snapshot (`taken` holds names already used).
fn file_name(table: &str, taken: &mut std::collections::HashSet<String>) -> String {
    let mut stem: String = table
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() {
        stem.push_str("table");
    }
    let mut name = format!("{stem}.csv");
    let mut n = 2;
    while !taken.insert(name.to_ascii_lowercase()) {
        name = format!("{stem}-{n}.csv");
        n += 1;
    }
    name
}

/// A manifest's file name must name a file directly inside the snapshot directory.
fn safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name != MANIFEST
        && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_unique() {
        let mut taken = Default::default();
        assert_eq!(file_name("people", &mut taken), "people.csv");
        assert_eq!(file_name("../etc/x", &mut taken), "___etc_x.csv");
        assert_eq!(file_name("a b", &mut taken), "a_b.csv");
        assert_eq!(file_name("a/b", &mut taken), "a_b-2.csv");
        assert_eq!(file_name("People", &mut taken), "People-2.csv");
        assert_eq!(file_name("", &mut taken), "table.csv");
        assert!(!safe_file_name("../x.csv"));
        assert!(!safe_file_name(MANIFEST));
        assert!(safe_file_name("people.csv"));
    }
}
