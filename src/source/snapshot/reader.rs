//! `--source snapshot:DIR`: a snapshot read back as a [`Source`].
//!
//! Opening checks the whole snapshot before anything is read from it: the manifest's format
//! version, that every file it lists exists, hashes to its SHA-256, has the manifest's header
//! and row count, and that every cell decodes. A snapshot that fails any of these is refused
//! with the file named, so a load never starts from a damaged backup. `scan` then streams one
//! file at a time (bounded memory) and yields the same [`crate::value::Value`]s the original
//! source did; it hashes again as it reads, so a file changed after opening is caught too.
//!
//! Every file is opened by [`open_regular`]: only a regular file of the snapshot directory
//! itself is read, never through a symbolic link (which can lead out of the snapshot, or to
//! `/dev/zero`, which never ends) and never a FIFO or a device (opening a FIFO blocks until
//! someone writes to it).

use super::attachments::{self, Keep, Kept};
use super::format::{self, Cell, ColumnType};
use super::{FORMAT, FORMAT_VERSION, HashReader, MANIFEST, Manifest, TableEntry};
use crate::error::unavailable;
use crate::source::{Record, Source, SourceTable};
use crate::value::Value;
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

pub struct SnapshotSource {
    dir: PathBuf,
    manifest: Manifest,
    /// The attachment files by attachment id.
    attachments: std::collections::HashMap<String, super::AttachmentEntry>,
    /// (table, field) → what the mapping keeps of its attachments.
    keep: std::collections::HashMap<(String, String), Keep>,
}

/// What to do about a damaged snapshot, appended to every such error.
const REMEDY: &str = "the snapshot is damaged or was edited: restore it from your backup copy, or export it again with `cutover export`";

impl SnapshotSource {
    /// Open and check the snapshot in `dir` (see the module doc).
    pub fn open(dir: &Path) -> anyhow::Result<SnapshotSource> {
        let path = dir.join(MANIFEST);
        let text = match open_regular(&path) {
            Ok(f) => read_bounded(f, &path, MAX_MANIFEST)?,
            Err(Unreadable::Missing) => {
                return Err(unavailable(format!(
                    "{} is not a cutover snapshot: {} is missing (write one with `cutover export --out {}`)",
                    dir.display(),
                    path.display(),
                    dir.display()
                )));
            }
            Err(why) => {
                return Err(unavailable(format!(
                    "{}: {}; {REMEDY}",
                    path.display(),
                    why.describe()
                )));
            }
        };
        // The version first, so a newer format says so instead of failing on a field.
        let head: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            unavailable(format!(
                "{}: not a valid manifest ({e}); {REMEDY}",
                path.display()
            ))
        })?;
        if head.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(unavailable(format!(
                "{}: not a cutover snapshot manifest (`format` is not \"{FORMAT}\")",
                path.display()
            )));
        }
        match head.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) if v > u64::from(FORMAT_VERSION) => {
                return Err(unavailable(format!(
                    "{}: snapshot format version {v} was written by a newer cutover; this one reads version {FORMAT_VERSION}: upgrade cutover",
                    path.display()
                )));
            }
            other => {
                return Err(unavailable(format!(
                    "{}: unsupported snapshot format version {}; this cutover reads version {FORMAT_VERSION}",
                    path.display(),
                    other.map_or("(none)".to_string(), |v| v.to_string())
                )));
            }
        }
        let manifest: Manifest = serde_json::from_value(head).map_err(|e| {
            unavailable(format!(
                "{}: not a valid manifest ({e}); {REMEDY}",
                path.display()
            ))
        })?;
        let mut source = SnapshotSource {
            dir: dir.to_path_buf(),
            manifest,
            attachments: std::collections::HashMap::new(),
            keep: std::collections::HashMap::new(),
        };
        source.check_attachments()?;
        let mut names = std::collections::HashSet::new();
        for t in &source.manifest.tables {
            if !super::safe_file_name(&t.file) || !names.insert(t.file.as_str()) {
                return Err(unavailable(format!(
                    "{}: table `{}` names file `{}`, which is not a file of its own inside the snapshot; {REMEDY}",
                    path.display(),
                    t.name,
                    t.file
                )));
            }
        }
        for t in &source.manifest.tables {
            source.check_table(t)?;
        }
        for x in &source.manifest.extra {
            let file = dir.join(&x.file);
            if !super::safe_file_name(&x.file) {
                return Err(unavailable(format!(
                    "{}: names file `{}`, which is not a file of its own inside the snapshot; {REMEDY}",
                    path.display(),
                    x.file
                )));
            }
            let f = open_regular(&file).map_err(|why| {
                unavailable(format!(
                    "{}: listed in the manifest, but it {}; {REMEDY}",
                    file.display(),
                    why.describe()
                ))
            })?;
            let mut hashing = HashReader {
                inner: f,
                hash: Sha256::new(),
            };
            std::io::copy(&mut hashing, &mut std::io::sink())
                .map_err(|e| unavailable(format!("cannot read {}: {e}", file.display())))?;
            if super::hex_digest(hashing.hash) != x.sha256 {
                return Err(unavailable(format!(
                    "{}: its SHA-256 does not match the manifest (changed or damaged since export); {REMEDY}",
                    file.display()
                )));
            }
        }
        Ok(source)
    }

    /// Every attachment file the manifest lists: named by its checksum, reached without a
    /// link, a regular file of its size and SHA-256.
    fn check_attachments(&mut self) -> anyhow::Result<()> {
        let manifest = self.dir.join(MANIFEST);
        for a in &self.manifest.attachments {
            if !attachments::is_file_name(&a.file, &a.sha256) {
                return Err(unavailable(format!(
                    "{}: attachment {} names file `{}`, which is not its checksum's file in the \
                     snapshot; {REMEDY}",
                    manifest.display(),
                    a.id,
                    a.file
                )));
            }
            let path = self.dir.join(&a.file);
            // The directories on the way must be directories, not links.
            let mut at = self.dir.clone();
            let parts: Vec<_> = Path::new(&a.file).components().collect();
            for part in &parts[..parts.len().saturating_sub(1)] {
                at.push(part);
                if !std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir()) {
                    return Err(unavailable(format!(
                        "{}: not a directory of the snapshot (missing, or a link); {REMEDY}",
                        at.display()
                    )));
                }
            }
            let f = open_regular(&path).map_err(|why| {
                unavailable(format!(
                    "attachment file {} (attachment {}) {}; {REMEDY}",
                    path.display(),
                    a.id,
                    why.describe()
                ))
            })?;
            let mut hashing = HashReader {
                inner: f,
                hash: Sha256::new(),
            };
            let size = std::io::copy(&mut hashing, &mut std::io::sink())
                .map_err(|e| unavailable(format!("cannot read {}: {e}", path.display())))?;
            if size != a.size || super::hex_digest(hashing.hash) != a.sha256 {
                return Err(unavailable(format!(
                    "attachment file {} (attachment {}) does not match the manifest's size and \
                     SHA-256; {REMEDY}",
                    path.display(),
                    a.id
                )));
            }
            self.attachments.insert(a.id.clone(), a.clone());
        }
        Ok(())
    }

    pub(crate) fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, table: &str) -> anyhow::Result<&TableEntry> {
        self.manifest
            .tables
            .iter()
            .find(|t| t.name == table)
            .ok_or_else(|| {
                unavailable(format!(
                    "the snapshot {} has no table `{table}`",
                    self.dir.display()
                ))
            })
    }

    /// Check one file: its SHA-256 first (the plainest verdict on a changed or truncated
    /// file), then header, row count and every cell.
    fn check_table(&self, t: &TableEntry) -> anyhow::Result<()> {
        let path = self.dir.join(&t.file);
        let f = self.open_file(t, &path)?;
        let mut hashing = HashReader {
            inner: f,
            hash: Sha256::new(),
        };
        std::io::copy(&mut hashing, &mut std::io::sink())
            .map_err(|e| unavailable(format!("cannot read {}: {e}", path.display())))?;
        let sha = super::hex_digest(hashing.hash);
        if sha != t.sha256 {
            return Err(unavailable(format!(
                "snapshot file {} (table `{}`) does not match the manifest: its SHA-256 is {sha}, the manifest says {}; {REMEDY}",
                path.display(),
                t.name,
                t.sha256
            )));
        }
        let all: Vec<usize> = (0..t.columns.len()).collect();
        let none = vec![None; all.len()];
        self.read(t, &all, &none, &mut |_| Ok(())).map(|_| ())
    }

    fn open_file(&self, t: &TableEntry, path: &Path) -> anyhow::Result<File> {
        open_regular(path).map_err(|why| {
            unavailable(format!(
                "snapshot file {} (table `{}`) {}; {REMEDY}",
                path.display(),
                t.name,
                why.describe()
            ))
        })
    }

    /// Stream `t`'s file, decoding the columns `cols`, and check it against the manifest.
    fn read(
        &self,
        t: &TableEntry,
        cols: &[usize],
        keep: &[Option<&Keep>],
        each: &mut dyn FnMut(&dyn Record) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let path = self.dir.join(&t.file);
        let f = self.open_file(t, &path)?;
        let damaged = |what: String| {
            unavailable(format!(
                "snapshot file {} (table `{}`): {what}; {REMEDY}",
                path.display(),
                t.name
            ))
        };
        let mut hashing = HashReader {
            inner: BufReader::with_capacity(256 * 1024, f),
            hash: Sha256::new(),
        };
        let mut n = 0u64;
        let result = (|| -> anyhow::Result<()> {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(false)
                .from_reader(&mut hashing);
            let mut rec = csv::ByteRecord::new();
            let header_ok = r
                .read_byte_record(&mut rec)
                .map_err(|e| damaged(format!("cannot read the header row: {}", csv_error(&e))))?;
            let want: Vec<&[u8]> = t.columns.iter().map(|c| c.name.as_bytes()).collect();
            if !header_ok || rec.iter().collect::<Vec<_>>() != want {
                return Err(damaged(
                    "the header row differs from the manifest's column list".to_string(),
                ));
            }
            // One row's cells, the allocation kept from row to row (`recycle`).
            let mut spare: Vec<Cell<'static>> = Vec::with_capacity(cols.len());
            loop {
                match r.read_byte_record(&mut rec) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        return Err(damaged(format!("after data row {n}: {}", csv_error(&e))));
                    }
                }
                n += 1;
                if n > t.rows {
                    return Err(damaged(format!(
                        "more rows than the {} the manifest lists",
                        t.rows
                    )));
                }
                let mut cells = recycle(std::mem::take(&mut spare));
                for (i, &c) in cols.iter().enumerate() {
                    let ty = t.columns.get(c).map_or(ColumnType::Text, |c| c.ty);
                    let raw = rec.get(c).unwrap_or_default();
                    let name = t.columns.get(c).map_or("?", |c| c.name.as_str());
                    let cell = format::decode(raw, ty)
                        .map_err(|why| damaged(format!("data row {n}, column `{name}`: {why}")))?;
                    let cell = match keep.get(i).copied().flatten() {
                        None => cell,
                        Some(k) => {
                            let json = match &cell {
                                Cell::Json(j) => Some(j),
                                _ => None,
                            };
                            match attachments::keep(json, k, &self.attachments, &self.dir) {
                                Ok(Kept::Null) => Cell::Null,
                                Ok(Kept::Strings(j)) => Cell::Json(j),
                                Ok(Kept::Bytes(b)) => Cell::Blob(b),
                                Err(why) => {
                                    return Err(unavailable(format!(
                                        "snapshot {}, table `{}`, row {n}, field `{name}`: {why}",
                                        self.dir.display(),
                                        t.name
                                    )));
                                }
                            }
                        }
                    };
                    cells.push(cell);
                }
                let row = SnapshotRecord { cells, ordinal: n };
                each(&row).with_context(|| format!("source table `{}`, row {n}", t.name))?;
                spare = recycle(row.cells);
            }
            Ok(())
        })();
        result?;
        let sha = super::hex_digest(hashing.hash);
        if sha != t.sha256 {
            return Err(damaged(format!(
                "its SHA-256 is {sha}, the manifest says {}",
                t.sha256
            )));
        }
        if n != t.rows {
            return Err(damaged(format!(
                "it has {n} data rows, the manifest says {}",
                t.rows
            )));
        }
        Ok(n)
    }
}

/// The most a manifest may hold: it lists tables and columns, a few kilobytes.
const MAX_MANIFEST: u64 = 64 << 20;

/// Why a snapshot's file is not read.
#[derive(Debug)]
enum Unreadable {
    Missing,
    Link,
    /// Not a regular file: what it is instead.
    Special(&'static str),
    Io(std::io::Error),
}

impl Unreadable {
    /// Worded to follow "the file …".
    fn describe(&self) -> String {
        const ONLY: &str = "cutover reads only regular files inside the snapshot directory";
        match self {
            Unreadable::Missing => "is missing".to_string(),
            Unreadable::Link => format!("is a symbolic link: {ONLY}"),
            Unreadable::Special(what) => format!("is {what}, not a regular file: {ONLY}"),
            Unreadable::Io(e) => format!("cannot be read: {e}"),
        }
    }
}

/// Open `path` for reading only if it is a regular file reached without a symbolic link.
/// `O_NOFOLLOW` refuses a link in the last component (the manifest's names have no other,
/// see `safe_file_name`), `O_NONBLOCK` keeps the open of a FIFO from waiting for a writer,
/// and the type is checked on the opened file, so nothing can be swapped in between. On a
/// regular file `O_NONBLOCK` changes nothing (POSIX, open(2)).
fn open_regular(path: &Path) -> Result<File, Unreadable> {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let f = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unreadable::Missing),
        Err(e) => {
            let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            return Err(if link {
                Unreadable::Link
            } else {
                Unreadable::Io(e)
            });
        }
    };
    let ty = f.metadata().map_err(Unreadable::Io)?.file_type();
    if ty.is_file() {
        return Ok(f);
    }
    Err(Unreadable::Special(special(&ty)))
}

fn special(ty: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ty.is_fifo() {
        "a FIFO (named pipe)"
    } else if ty.is_char_device() || ty.is_block_device() {
        "a device"
    } else if ty.is_socket() {
        "a socket"
    } else if ty.is_dir() {
        "a directory"
    } else {
        "not a plain file"
    }
}

/// All of `f`, refusing more than `max` bytes.
fn read_bounded(f: File, path: &Path, max: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| unavailable(format!("cannot read {}: {e}", path.display())))?;
    if out.len() as u64 > max {
        return Err(unavailable(format!(
            "{}: larger than {} MiB, far more than a manifest holds; {REMEDY}",
            path.display(),
            max >> 20
        )));
    }
    Ok(out)
}

/// A CSV error without the crate's position noise, but with the line where there is one.
fn csv_error(e: &csv::Error) -> String {
    match e.position() {
        Some(p) => format!("line {}: {e}", p.line()),
        None => e.to_string(),
    }
}

impl Source for SnapshotSource {
    fn tables(&self) -> anyhow::Result<Vec<SourceTable>> {
        Ok(self
            .manifest
            .tables
            .iter()
            .map(|t| SourceTable {
                name: t.name.clone(),
                fields: t.columns.iter().map(|c| c.name.clone()).collect(),
                ..SourceTable::default()
            })
            .collect())
    }

    fn count(&self, table: &str) -> anyhow::Result<u64> {
        Ok(self.entry(table)?.rows)
    }

    fn scan(
        &mut self,
        table: &str,
        fields: &[String],
        each: &mut dyn FnMut(&dyn Record) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let t = self.entry(table)?;
        let mut cols = Vec::with_capacity(fields.len());
        for f in fields {
            match t.columns.iter().position(|c| &c.name == f) {
                Some(i) => cols.push(i),
                None => {
                    return Err(unavailable(format!(
                        "the snapshot {} has no field `{f}` in table `{table}`",
                        self.dir.display()
                    )));
                }
            }
        }
        let keep: Vec<Option<&Keep>> = fields
            .iter()
            .map(|f| self.keep.get(&(table.to_string(), f.clone())))
            .collect();
        self.read(t, &cols, &keep, each)
    }

    fn keep_attachments(&mut self, table: &str, field: &str, keep: &Keep) -> anyhow::Result<()> {
        let t = self.entry(table)?;
        if !t.columns.iter().any(|c| c.name == field) {
            return Err(unavailable(format!(
                "the snapshot {} has no field `{field}` in table `{table}`",
                self.dir.display()
            )));
        }
        self.keep
            .insert((table.to_string(), field.to_string()), keep.clone());
        Ok(())
    }
}

/// `v` emptied, as a vector of cells that may borrow from another row: the same allocation
/// (collecting into a vector of an element of the same size reuses the source's buffer,
/// https://doc.rust-lang.org/std/vec/struct.Vec.html#impl-FromIterator%3CT%3E-for-Vec%3CT%3E).
fn recycle<'b>(mut v: Vec<Cell<'_>>) -> Vec<Cell<'b>> {
    v.clear();
    v.into_iter().map(|_| Cell::Null).collect()
}

struct SnapshotRecord<'r> {
    cells: Vec<Cell<'r>>,
    ordinal: u64,
}

impl Record for SnapshotRecord<'_> {
    fn ordinal(&self) -> u64 {
        self.ordinal
    }
    fn get(&self, i: usize) -> Value<'_> {
        self.cells.get(i).map_or(Value::Null, Cell::value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rows_cells_keep_their_allocation_from_row_to_row() {
        let mut spare: Vec<Cell<'static>> = Vec::with_capacity(8);
        let before = spare.as_ptr() as usize;
        for row in [&b"one"[..], b"two", b"three"] {
            let mut cells = recycle(std::mem::take(&mut spare));
            cells.push(Cell::Text(row));
            cells.push(Cell::Int(1));
            assert!(matches!(cells[0].value(), Value::Text(t) if t == row));
            spare = recycle(cells);
        }
        assert_eq!(spare.as_ptr() as usize, before);
        assert_eq!(spare.capacity(), 8);
    }
}
