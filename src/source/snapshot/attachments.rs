//! Attachment files kept in a snapshot, because the URLs Airtable gives for them expire after
//! a couple of hours (https://airtable.com/developers/web/api/field-model#multipleattachment):
//! a database that stored those URLs would hold dead links.
//!
//! Files are content-addressed: `attachments/sha256/ab/cdef…` (the SHA-256 of the bytes, its
//! first two hex digits a directory), each listed in the manifest by attachment id with its
//! checksum and size. A file is written under a temporary name, hashed as it is written,
//! synced, and renamed to its final name only then ([`Store::put`]), so a download cut short
//! never stands under a final name; a file already present under its name and checksum is
//! not written again.
//!
//! A mapping says what a column stores of an attachment field ([`Keep`]): the file's path in
//! the snapshot, its bytes, or a URL made of a prefix of the team's choosing and that path.

use super::{AttachmentEntry, hex_digest};
use crate::files;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The directory of attachment files inside a snapshot.
pub const DIR: &str = "attachments";

/// What a column keeps of each attachment (`attachments = { store = … }` in a mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Keep {
    /// The file's path inside the snapshot (`attachments/sha256/ab/cdef…`).
    Path,
    /// The file's bytes (for a bytea column): one attachment per cell.
    Bytes,
    /// This prefix followed by the path (`https://cdn.example.com/attachments/sha256/…`).
    Url(String),
}

/// The snapshot path of the file with SHA-256 `sha` (lowercase hex).
pub(crate) fn file_for(sha: &str) -> String {
    format!("{DIR}/sha256/{}/{}", &sha[..2], &sha[2..])
}

/// Is `file` a path this module writes (so a manifest cannot point outside the snapshot)?
pub(crate) fn is_file_name(file: &str, sha: &str) -> bool {
    sha.len() == 64
        && sha
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && file == file_for(sha)
}

/// A directory of content-addressed files being filled, with an index of the attachments
/// it holds (`index.jsonl`, one [`AttachmentEntry`] a line, appended as each file is in
/// place), so an export that failed part-way is resumed by the next one.
pub(crate) struct Store {
    root: PathBuf,
    index: std::sync::Mutex<Option<std::fs::File>>,
}

/// A file being written: removed unless committed.
pub(crate) struct Pending<'s> {
    store: &'s Store,
    tmp: PathBuf,
    file: Option<std::fs::File>,
    hash: Sha256,
    size: u64,
}

impl Store {
    /// The store at `root` (made when the first file comes) and the attachments it already
    /// holds, each checked against its checksum: what a failed export left.
    pub(crate) fn open(root: &Path) -> (Store, HashMap<String, AttachmentEntry>) {
        let store = Store {
            root: root.to_path_buf(),
            index: std::sync::Mutex::new(None),
        };
        let mut have = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(root.join(INDEX)) {
            // A line cut short by a kill does not parse and is left out.
            for line in text.lines() {
                if let Ok(e) = serde_json::from_str::<AttachmentEntry>(line)
                    && is_file_name(&e.file, &e.sha256)
                    && store.has(&e.sha256, e.size)
                {
                    have.insert(e.id.clone(), e);
                }
            }
        }
        (store, have)
    }

    /// The store whose files go under `root`, with no index.
    #[cfg(test)]
    pub(crate) fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
            index: std::sync::Mutex::new(None),
        }
    }

    /// Is the file of `sha` there, with `size` bytes that hash to `sha`?
    pub(crate) fn has(&self, sha: &str, size: u64) -> bool {
        let path = self.root.join(file_for(sha));
        let Ok(f) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        else {
            return false;
        };
        if !f.metadata().is_ok_and(|m| m.is_file() && m.len() == size) {
            return false;
        }
        let mut h = Sha256::new();
        let mut r = std::io::BufReader::new(f);
        std::io::copy(&mut r, &mut HashWrite(&mut h)).is_ok() && hex_digest(h) == sha
    }

    /// Start a file: written under a temporary name until [`Pending::commit`].
    pub(crate) fn begin(&self) -> std::io::Result<Pending<'_>> {
        let tmp_dir = self.root.join(DIR).join("tmp");
        mkdirs(&self.root, &tmp_dir)?;
        let tmp = tmp_dir.join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let file = files::create_new(&tmp)?;
        Ok(Pending {
            store: self,
            tmp,
            file: Some(file),
            hash: Sha256::new(),
            size: 0,
        })
    }

    /// Write everything `body` gives as a file of the store. Returns (sha256, size).
    #[cfg(test)]
    pub(crate) fn put(&self, body: &mut dyn Read) -> std::io::Result<(String, u64)> {
        let mut p = self.begin()?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = body.read(&mut buf)?;
            if n == 0 {
                break;
            }
            p.write(&buf[..n])?;
        }
        p.commit()
    }

    /// Note in the index that the store holds `e` (after its file is in place).
    pub(crate) fn record(&self, e: &AttachmentEntry) -> std::io::Result<()> {
        let mut guard = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            mkdirs(&self.root, &self.root)?;
            *guard = Some(
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(files::FILE_MODE)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(self.root.join(INDEX))?,
            );
        }
        let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        match guard.as_mut() {
            Some(f) => f.write_all(&line),
            None => Ok(()),
        }
    }

    /// Take in the file of `e` at `from` (an older snapshot's), as a link where the file
    /// system allows, else a copy; noted in the index.
    pub(crate) fn adopt(&self, from: &Path, e: &AttachmentEntry) -> std::io::Result<()> {
        let to = self.root.join(&e.file);
        if !self.has(&e.sha256, e.size) {
            if let Some(parent) = to.parent() {
                mkdirs(&self.root, parent)?;
            }
            let _ = std::fs::remove_file(&to);
            if std::fs::hard_link(from, &to).is_err() {
                let mut src = std::fs::File::open(from)?;
                let mut p = self.begin()?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = src.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    p.write(&buf[..n])?;
                }
                p.commit()?;
            }
        }
        self.record(e)
    }

    /// Remove the temporary directory (empty once every download is renamed into place).
    pub(crate) fn finish(&self) {
        let _ = std::fs::remove_dir_all(self.root.join(DIR).join("tmp"));
    }
}

impl Pending<'_> {
    pub(crate) fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.hash.update(b);
        self.size += b.len() as u64;
        match self.file.as_mut() {
            Some(f) => f.write_all(b),
            None => Err(std::io::Error::other("the file was already finished")),
        }
    }

    /// Sync the file and rename it to its checksum's name. Returns (sha256, size).
    pub(crate) fn commit(mut self) -> std::io::Result<(String, u64)> {
        let f = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("the file was already finished"))?;
        f.sync_all()?;
        drop(f);
        let sha = hex_digest(std::mem::take(&mut self.hash));
        let dest = self.store.root.join(file_for(&sha));
        if let Some(parent) = dest.parent() {
            mkdirs(&self.store.root, parent)?;
        }
        std::fs::rename(&self.tmp, &dest)?;
        Ok((sha, self.size))
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        // Not committed (or the rename failed): the partial file goes.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Move the files of `kept` from the store into the snapshot being written at `dest`.
pub(crate) fn install(store: &Store, kept: &[AttachmentEntry], dest: &Path) -> std::io::Result<()> {
    for e in kept {
        let to = dest.join(&e.file);
        if std::fs::symlink_metadata(&to).is_ok() {
            // The same bytes under two attachment ids: one file.
            continue;
        }
        if let Some(parent) = to.parent() {
            mkdirs(dest, parent)?;
        }
        std::fs::rename(store.root.join(&e.file), &to)?;
    }
    Ok(())
}

/// The store's index of the attachments it holds.
const INDEX: &str = "index.jsonl";

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

use std::os::unix::fs::OpenOptionsExt;

/// Make `dir` and its parents up to `root`, each private.
pub(crate) fn mkdirs(root: &Path, dir: &Path) -> std::io::Result<()> {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        match files::create_dir(&at) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !std::fs::symlink_metadata(&at)?.is_dir() {
                    return Err(std::io::Error::other(format!(
                        "{} is not a directory",
                        at.display()
                    )));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

struct HashWrite<'a>(&'a mut Sha256);

impl Write for HashWrite<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The attachments of one cell (an array of `{id, url, filename, …}` objects) as the column
/// keeps them: paths or URLs as a JSON array of strings (one per attachment, in order; a
/// text column takes a single one, an array or jsonb column all), the bytes of the one
/// attachment, or an error naming the attachment the snapshot does not hold.
pub(crate) enum Kept {
    Null,
    Strings(serde_json::Value),
    Bytes(Vec<u8>),
}

pub(crate) fn keep(
    cell: Option<&serde_json::Value>,
    keep: &Keep,
    index: &HashMap<String, AttachmentEntry>,
    dir: &Path,
) -> Result<Kept, String> {
    let items = match cell {
        None | Some(serde_json::Value::Null) => return Ok(Kept::Null),
        Some(serde_json::Value::Array(a)) => a,
        Some(other) => {
            return Err(format!(
                "not a list of attachments (found {})",
                short(&other.to_string())
            ));
        }
    };
    if items.is_empty() {
        return Ok(Kept::Null);
    }
    let mut entries = Vec::with_capacity(items.len());
    for a in items {
        let id = a
            .get("id")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("an attachment without an id: {}", short(&a.to_string())))?;
        let e = index.get(id).ok_or_else(|| {
            format!(
                "attachment {id} is not in the snapshot (it was exported without its files?): \
                 export again with `cutover export`"
            )
        })?;
        entries.push(e);
    }
    match keep {
        Keep::Bytes => {
            if entries.len() > 1 {
                // Several values where one is expected: the converter rejects the row.
                return Ok(Kept::Strings(serde_json::Value::Array(
                    entries
                        .iter()
                        .map(|e| serde_json::Value::String(e.file.clone()))
                        .collect(),
                )));
            }
            let path = dir.join(&entries[0].file);
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| format!("attachment file {}: {e}", path.display()))?;
            let mut bytes = Vec::with_capacity(entries[0].size as usize);
            f.read_to_end(&mut bytes)
                .map_err(|e| format!("attachment file {}: {e}", path.display()))?;
            let mut h = Sha256::new();
            h.update(&bytes);
            if hex_digest(h) != entries[0].sha256 {
                return Err(format!(
                    "attachment file {} does not match its SHA-256 in the manifest (changed \
                     or damaged since export): restore the snapshot or export again",
                    path.display()
                ));
            }
            Ok(Kept::Bytes(bytes))
        }
        Keep::Path => Ok(Kept::Strings(
            entries
                .iter()
                .map(|e| serde_json::Value::String(e.file.clone()))
                .collect(),
        )),
        Keep::Url(prefix) => Ok(Kept::Strings(
            entries
                .iter()
                .map(|e| serde_json::Value::String(format!("{prefix}{}", e.file)))
                .collect(),
        )),
    }
}

fn short(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_named_by_its_checksum_and_written_once() {
        let root = std::env::temp_dir().join(format!("cutover-att-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let store = Store::new(&root);
        let (sha, size) = store.put(&mut &b"hello"[..]).unwrap();
        assert_eq!(
            sha,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(size, 5);
        let file = file_for(&sha);
        assert_eq!(file, format!("attachments/sha256/2c/{}", &sha[2..]));
        assert!(is_file_name(&file, &sha));
        assert!(!is_file_name("attachments/sha256/../../x", &sha));
        assert!(store.has(&sha, 5));
        // A damaged file is not taken for the real one.
        std::fs::write(root.join(&file), b"hellp").unwrap();
        assert!(!store.has(&sha, 5));
        store.finish();
        assert!(!root.join(DIR).join("tmp").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_read_cut_short_leaves_no_file_under_a_final_name() {
        struct Fails(u32);
        impl Read for Fails {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("connection reset"));
                }
                self.0 -= 1;
                buf[0] = b'x';
                Ok(1)
            }
        }
        let root = std::env::temp_dir().join(format!("cutover-att-cut-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let store = Store::new(&root);
        assert!(store.put(&mut Fails(3)).is_err());
        let (again, have) = Store::open(&root);
        assert!(have.is_empty());
        let (sha, size) = again.put(&mut &b"abc"[..]).unwrap();
        let e = AttachmentEntry {
            id: "attA".into(),
            file: file_for(&sha),
            sha256: sha,
            size,
        };
        again.record(&e).unwrap();
        let (_, have) = Store::open(&root);
        assert_eq!(
            have.get("attA").map(|e| e.size),
            Some(3),
            "found by the next run"
        );
        std::fs::remove_file(root.join(&e.file)).unwrap();
        let (_, have) = Store::open(&root);
        assert!(have.is_empty(), "a file gone is fetched again");
        let tmp = root.join(DIR).join("tmp");
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
