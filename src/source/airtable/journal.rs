//! The resume journal: every complete page a listing fetched, with the offset that follows
//! it, kept until the run succeeds, so a run that failed or was killed part-way is resumed
//! by the next one instead of fetching everything again.
//!
//! **Where.** `$TMPDIR/cutover-airtable-resume-UID/` (mode 0700, owned by this user — else
//! refused), then one directory per API and base (named by the SHA-256 of both), locked with
//! flock(2) by the run using it: a second run on the same base at once keeps no journal.
//! Inside, one directory per table holds `key.json` — the base, the table, the field ids
//! asked for and how the table was split into ranges (`ranges`) — and per range the pages,
//! `00000001.page`, …. A journal whose key differs from what this run asks (other fields,
//! other ranges, so other filters) is thrown away, never mixed in.
//!
//! **A page file** is a header line (`{"page":n,"next":offset|null,"records":k,"bytes":b,
//! "sha256":…}`) and then the page's records as JSON lines, `b` bytes whose SHA-256 the
//! header gives. It is written under a temporary name and renamed into place
//! ([`crate::files::write_unsynced`]), so a run killed mid-write leaves no page under a
//! page's name. It is not synced, which would hold the listing's task (and the answers of
//! others on the same thread) up for as long as the disk takes: a page that a crash of the
//! machine left short or that does not match its checksum is detected on replay and
//! re-fetched, with every page after it.
//!
//! A journal last touched more than an hour ago is not resumed from and is removed.
//!
//! **Expiry.** Airtable's offsets expire (a `LIST_RECORDS_ITERATOR_NOT_AVAILABLE` error,
//! https://airtable.com/developers/web/api/list-records): a listing whose saved offset is
//! refused is cleared and starts again from its first page — the journal is never half of one
//! listing and half of another.

use crate::files;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One base's journal, locked by this run for as long as it is held.
pub(super) struct Journal {
    dir: PathBuf,
    /// Held open: the flock(2) lasts as long as the file.
    _lock: File,
}

/// What a table's journal must match to be reused.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Key {
    api: String,
    base: String,
    table: String,
    fields: Vec<String>,
    ranges: usize,
}

/// One table's journal: how it is split and a directory per range.
#[derive(Debug, Clone)]
pub(super) struct TableJournal {
    dir: PathBuf,
    /// The number of ranges the table is listed in (the one a resumed journal was made with).
    pub(super) ranges: usize,
}

/// One range's pages.
#[derive(Debug)]
pub(super) struct RangeJournal {
    dir: PathBuf,
}

/// Where a replayed listing goes on from.
#[derive(Debug, Default)]
pub(super) struct Resumed {
    /// Pages replayed.
    pub(super) pages: u64,
    /// Records replayed.
    pub(super) records: u64,
    /// The offset after the last replayed page (`None` with `pages > 0`: the listing is done).
    pub(super) next: Option<String>,
    /// Every offset the replayed pages were followed by.
    pub(super) offsets: Vec<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    page: u64,
    next: Option<String>,
    records: u64,
    bytes: u64,
    sha256: String,
}

/// How long fetched pages are worth resuming from: a run resumed later would load records as
/// they were then, mixed with others read now.
const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Nothing under `path` (down to `depth` levels: a base's journal is 2 above its pages)
/// changed for more than [`MAX_AGE`]?
fn too_old(path: &Path, depth: u32) -> bool {
    fn newest(path: &Path, depth: u32) -> Option<std::time::SystemTime> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        let mut t = meta.modified().ok()?;
        if depth > 0 && meta.is_dir() {
            for e in std::fs::read_dir(path).ok()?.flatten() {
                if let Some(u) = newest(&e.path(), depth - 1) {
                    t = t.max(u);
                }
            }
        }
        Some(t)
    }
    newest(path, depth)
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > MAX_AGE)
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A directory that must be this user's own and private: made if missing, refused if it
/// is a link, someone else's, or open to others.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    match files::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => anyhow::bail!("cannot create {}: {e}", dir.display()),
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
        anyhow::bail!(
            "{} is not a private directory of this user (a link, another user's, or open to \
             others); cutover keeps fetched Airtable records there between runs, so it will \
             not use it: remove it, or set TMPDIR to a directory of your own",
            dir.display()
        );
    }
    Ok(())
}

impl Journal {
    /// The journal of `base` at `api`, locked for this run; `None` when another run holds it
    /// (this run then keeps no journal).
    pub(super) fn open(api: &str, base: &str) -> anyhow::Result<Option<Journal>> {
        // SAFETY: as above.
        let uid = unsafe { libc::geteuid() };
        let root = std::env::temp_dir().join(format!("cutover-airtable-resume-{uid}"));
        Journal::open_in(&root, api, base)
    }

    pub(super) fn open_in(root: &Path, api: &str, base: &str) -> anyhow::Result<Option<Journal>> {
        private_dir(root)?;
        let name = hex(Sha256::digest(format!("{api}\n{base}").as_bytes()));
        let dir = root.join(&name[..32]);
        private_dir(&dir)?;
        let lock_path = dir.join("lock");
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(files::FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", lock_path.display()))?;
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for the duration of the call.
        let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            return Ok(None);
        }
        // Journals of other bases (or of this one before its schema changed) left by runs
        // that never succeeded, once they are too old to resume.
        if let Ok(rd) = std::fs::read_dir(root) {
            for entry in rd.flatten() {
                let path = entry.path();
                if path != dir && !path.is_symlink() && too_old(&path, 2) {
                    let _ = std::fs::remove_dir_all(&path);
                }
            }
        }
        Ok(Some(Journal { dir, _lock: lock }))
    }

    /// The journal of one table, listed with `fields` (ids); a journal made for anything else
    /// is removed. `ranges` is how many ranges a fresh listing would use.
    pub(super) fn table(
        &self,
        api: &str,
        base: &str,
        table: &str,
        fields: &[&str],
        ranges: usize,
    ) -> anyhow::Result<TableJournal> {
        let dir = self.dir.join(table);
        let want = Key {
            api: api.to_string(),
            base: base.to_string(),
            table: table.to_string(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            ranges,
        };
        let key_path = dir.join("key.json");
        let found: Option<Key> = std::fs::read(&key_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(k) = found
            && !too_old(&dir, 2)
            && (Key {
                ranges: k.ranges,
                ..want.clone()
            }) == k
        {
            return Ok(TableJournal {
                dir,
                ranges: k.ranges,
            });
        }
        // Nothing, or a journal of another listing: start this table afresh.
        let _ = std::fs::remove_dir_all(&dir);
        private_dir(&dir)?;
        let text = serde_json::to_vec(&want)?;
        files::write(&key_path, &text, files::Existing::Replace)
            .map_err(|e| anyhow::anyhow!("cannot write the resume journal's key {e}"))?;
        Ok(TableJournal { dir, ranges })
    }

    /// The run succeeded: nothing is kept for a next one.
    pub(super) fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Journal {
    /// What holds no page is not worth keeping: tables that kept nothing, and the base's
    /// directory when no table is left (the run read nothing, or kept nothing).
    fn drop(&mut self) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut left = false;
        for e in rd.flatten() {
            let path = e.path();
            if e.file_name() == "lock" {
                continue;
            }
            let pages = std::fs::read_dir(&path)
                .into_iter()
                .flatten()
                .flatten()
                .any(|r| {
                    std::fs::read_dir(r.path())
                        .into_iter()
                        .flatten()
                        .flatten()
                        .any(|p| p.file_name().to_string_lossy().ends_with(".page"))
                });
            if pages {
                left = true;
            } else {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
        if !left {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl TableJournal {
    /// Range `i` (from 0) of the table.
    pub(super) fn range(&self, i: usize) -> anyhow::Result<RangeJournal> {
        let dir = self.dir.join(format!("range-{i}"));
        private_dir(&dir)?;
        Ok(RangeJournal { dir })
    }
}

impl RangeJournal {
    fn page_path(&self, page: u64) -> PathBuf {
        self.dir.join(format!("{page:08}.page"))
    }

    /// Hand every record (a JSON line) of the complete pages kept, in order, to `each`; a
    /// torn or damaged page is removed with every page after it, to be fetched again.
    pub(super) fn replay(
        &self,
        each: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<Resumed> {
        let mut pages: Vec<u64> = Vec::new();
        for entry in std::fs::read_dir(&self.dir)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", self.dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match name.strip_suffix(".page").and_then(|n| n.parse().ok()) {
                Some(n) => pages.push(n),
                // A temporary file of a write that was cut short.
                None => {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        pages.sort_unstable();
        let mut out = Resumed::default();
        let mut good = 0u64;
        for &n in &pages {
            if n != good + 1 {
                break;
            }
            let path = self.page_path(n);
            let Some((header, body)) = read_page(&path, n) else {
                break;
            };
            for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                each(line)?;
            }
            out.records += header.records;
            if let Some(o) = &header.next {
                out.offsets.push(o.clone());
            }
            out.next = header.next;
            good = n;
            if out.next.is_none() {
                break;
            }
        }
        out.pages = good;
        for &n in pages.iter().filter(|&&n| n > good) {
            let _ = std::fs::remove_file(self.page_path(n));
        }
        Ok(out)
    }

    /// Keep page `page` (from 1): its records as JSON lines and the offset that follows it.
    pub(super) fn save(
        &self,
        page: u64,
        lines: &[u8],
        records: u64,
        next: Option<&str>,
    ) -> anyhow::Result<()> {
        let header = Header {
            page,
            next: next.map(str::to_string),
            records,
            bytes: lines.len() as u64,
            sha256: hex(Sha256::digest(lines)),
        };
        let mut bytes = serde_json::to_vec(&header)?;
        bytes.push(b'\n');
        bytes.extend_from_slice(lines);
        // Unsynced: the header's checksum finds a page a crash lost (see the module doc).
        files::write_unsynced(&self.page_path(page), &bytes, files::Existing::Replace)
            .map_err(|e| anyhow::anyhow!("cannot keep a fetched page in the resume journal: {e}"))
    }

    /// Forget every page (the listing starts again from its first page).
    pub(super) fn clear(&self) {
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for entry in rd.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// A page file checked whole: header, length and checksum; `None` if any is wrong.
fn read_page(path: &Path, page: u64) -> Option<(Header, Vec<u8>)> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let mut r = BufReader::new(f);
    let mut first = String::new();
    r.read_line(&mut first).ok()?;
    let header: Header = serde_json::from_str(first.trim_end()).ok()?;
    if header.page != page {
        return None;
    }
    let mut body = Vec::with_capacity(header.bytes as usize);
    r.read_to_end(&mut body).ok()?;
    if body.len() as u64 != header.bytes || hex(Sha256::digest(&body)) != header.sha256 {
        return None;
    }
    let lines = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    (lines as u64 == header.records).then_some((header, body))
}

/// The base's journal, or none with a note saying why when it cannot be used.
/// `meta` is the base's metadata as read: a base whose tables or fields changed since the
/// journal was kept does not reuse it.
pub(super) fn open_or_note(api: &str, base: &str, meta: &str) -> Option<std::sync::Arc<Journal>> {
    // The crate's own unit tests run many fakes in one process and never finish a run.
    if cfg!(test) {
        return None;
    }
    match Journal::open(
        api,
        &format!("{base}\n{}", hex(Sha256::digest(meta.as_bytes()))),
    ) {
        Ok(Some(j)) => Some(std::sync::Arc::new(j)),
        Ok(None) => {
            eprintln!(
                "note: Airtable base {base}: another cutover run is reading this base; this \
                 run keeps no resume journal (a failure means fetching again from the start)"
            );
            None
        }
        Err(e) => {
            eprintln!("note: Airtable base {base}: no resume journal: {e:#}");
            None
        }
    }
}

/// The journal of `table` listed for `fields` (names) and the mapping's `selection` of its
/// records, split into `parallelism` ranges when new, when the base has one.
pub(super) fn for_table(
    journal: Option<&Journal>,
    client: &super::Client,
    table: &super::TableSchema,
    fields: &[String],
    selection: &crate::source::Selection,
    parallelism: usize,
) -> anyhow::Result<Option<TableJournal>> {
    let Some(j) = journal else { return Ok(None) };
    let mut ids: Vec<&str> = fields
        .iter()
        .map(|f| table.field(f).map_or(f.as_str(), |x| x.id.as_str()))
        .collect();
    // Pages listed for another view or filter are other records: part of what is matched.
    let view = selection.view.as_ref().map(|v| format!("view:{v}"));
    let filter = selection.filter.as_ref().map(|f| format!("filter:{f}"));
    ids.extend(view.as_deref());
    ids.extend(filter.as_deref());
    j.table(client.api(), &client.base, &table.id, &ids, parallelism)
        .map(Some)
        .map_err(|e| {
            anyhow::anyhow!(
                "Airtable base {}, table {:?}: resume journal: {e:#}",
                client.base,
                table.name
            )
        })
}

/// Write the kept pages of a range into its spool files again.
pub(super) fn replay(
    j: &RangeJournal,
    out: &mut super::ranges::ClassFiles,
) -> anyhow::Result<Resumed> {
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        id: std::borrow::Cow<'a, str>,
    }
    j.replay(&mut |line| {
        let id: Id = serde_json::from_slice(line)
            .map_err(|e| anyhow::anyhow!("a kept record is unreadable: {e}"))?;
        out.write(super::ranges::class_of(&id.id), line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cutover-journal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn replayed(r: &RangeJournal) -> (Resumed, Vec<String>) {
        let mut lines = Vec::new();
        let resumed = r
            .replay(&mut |l| {
                lines.push(String::from_utf8(l.to_vec()).unwrap());
                Ok(())
            })
            .unwrap();
        (resumed, lines)
    }

    #[test]
    fn pages_replay_in_order_and_a_torn_page_is_dropped_with_those_after() {
        let root = root("torn");
        let j = Journal::open_in(&root, "http://x", "appX")
            .unwrap()
            .unwrap();
        let t = j.table("http://x", "appX", "tblA", &["fldA"], 1).unwrap();
        let r = t.range(0).unwrap();
        r.save(1, b"{\"id\":\"rec1\"}\n", 1, Some("itr1/rec2"))
            .unwrap();
        r.save(2, b"{\"id\":\"rec2\"}\n", 1, Some("itr2/rec3"))
            .unwrap();
        r.save(3, b"{\"id\":\"rec3\"}\n", 1, Some("itr3/rec4"))
            .unwrap();
        let (res, lines) = replayed(&r);
        assert_eq!(res.pages, 3);
        assert_eq!(res.next.as_deref(), Some("itr3/rec4"));
        assert_eq!(
            lines,
            [
                "{\"id\":\"rec1\"}",
                "{\"id\":\"rec2\"}",
                "{\"id\":\"rec3\"}"
            ]
        );

        // Page 2 cut short (as a disk that lost its tail would leave it) and a temporary
        // file of a write killed mid-way.
        let p2 = r.page_path(2);
        let bytes = std::fs::read(&p2).unwrap();
        std::fs::write(&p2, &bytes[..bytes.len() - 3]).unwrap();
        std::fs::write(r.dir.join(".00000004.page.cutover-tmp1"), b"{\"pa").unwrap();
        let (res, lines) = replayed(&r);
        assert_eq!(res.pages, 1);
        assert_eq!(res.next.as_deref(), Some("itr1/rec2"));
        assert_eq!(lines, ["{\"id\":\"rec1\"}"]);
        assert_eq!(
            std::fs::read_dir(&r.dir).unwrap().count(),
            1,
            "only page 1 kept"
        );

        // A flipped byte is caught by the checksum.
        let p1 = r.page_path(1);
        let mut bytes = std::fs::read(&p1).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 1;
        std::fs::write(&p1, &bytes).unwrap();
        assert_eq!(replayed(&r).0.pages, 0);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn another_field_set_or_split_is_not_reused_and_a_second_run_gets_no_journal() {
        let root = root("key");
        let j = Journal::open_in(&root, "http://x", "appX")
            .unwrap()
            .unwrap();
        assert!(
            Journal::open_in(&root, "http://x", "appX")
                .unwrap()
                .is_none(),
            "locked by the first"
        );
        let t = j.table("http://x", "appX", "tblA", &["fldA"], 2).unwrap();
        t.range(1).unwrap().save(1, b"{}\n", 1, None).unwrap();
        // The same listing: the split it was made with is kept, and so is the page.
        let again = j.table("http://x", "appX", "tblA", &["fldA"], 5).unwrap();
        assert_eq!(again.ranges, 2);
        assert_eq!(replayed(&again.range(1).unwrap()).0.pages, 1);
        // Another field set: thrown away.
        let other = j
            .table("http://x", "appX", "tblA", &["fldA", "fldB"], 2)
            .unwrap();
        assert_eq!(replayed(&other.range(1).unwrap()).0.pages, 0);
        let dir = j.dir.clone();
        j.remove();
        assert!(!dir.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn pages_older_than_an_hour_are_not_resumed() {
        let root = root("old");
        let j = Journal::open_in(&root, "http://x", "appX")
            .unwrap()
            .unwrap();
        let t = j.table("http://x", "appX", "tblA", &["fldA"], 1).unwrap();
        let r = t.range(0).unwrap();
        r.save(1, b"{}\n", 1, Some("itr1/rec2")).unwrap();
        let then = std::time::SystemTime::now() - MAX_AGE - std::time::Duration::from_secs(60);
        for p in [
            r.page_path(1),
            r.dir.clone(),
            t.dir.join("key.json"),
            t.dir.clone(),
        ] {
            std::fs::File::open(&p).unwrap().set_modified(then).unwrap();
        }
        let again = j.table("http://x", "appX", "tblA", &["fldA"], 1).unwrap();
        assert_eq!(replayed(&again.range(0).unwrap()).0.pages, 0);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_journal_that_kept_nothing_is_removed_with_the_run() {
        let root = root("empty");
        let j = Journal::open_in(&root, "http://x", "appX")
            .unwrap()
            .unwrap();
        let dir = j.dir.clone();
        j.table("http://x", "appX", "tblA", &["fldA"], 1)
            .unwrap()
            .range(0)
            .unwrap();
        let kept = j.table("http://x", "appX", "tblB", &["fldB"], 1).unwrap();
        kept.range(0).unwrap().save(1, b"{}\n", 1, None).unwrap();
        drop(j);
        assert!(!dir.join("tblA").exists(), "no page: removed");
        assert!(dir.join("tblB").exists(), "pages: kept for the next run");
        let j = Journal::open_in(&root, "http://x", "appX")
            .unwrap()
            .unwrap();
        j.remove();
        drop(j);
        let j = Journal::open_in(&root, "http://x", "appX")
            .unwrap()
            .unwrap();
        drop(j);
        assert!(!dir.exists(), "nothing kept, nothing left");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_root_open_to_others_is_refused() {
        let root = root("open");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = Journal::open_in(&root, "http://x", "appX").err().unwrap();
        assert!(e.to_string().contains("not a private directory"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
