//! Is a SQLite file a whole, committed database? Checked once the source's read transaction
//! has started and before any record is read, because a file copied with `cp` while its
//! application writes can be torn, and SQLite reads most torn files without a word:
//!
//! - Rollback-journal mode: a long write transaction writes changed pages into the main file
//!   before it commits, keeping the originals in `FILE-journal` ("Atomic Commit In SQLite",
//!   sqlite.org, "Cache Spill Prior To Commit" and "Hot Rollback Journals"). Copied with
//!   that journal, the copy has a hot journal; SQLite refuses to open it read-only
//!   (`SQLITE_READONLY_ROLLBACK`), and [`hot_journal`] words that. Copied without it, the
//!   copy is the half-written transaction: `PRAGMA quick_check` finds the b-tree damage that
//!   moving rows between pages leaves ([`quick_check`]). A torn copy whose uncommitted
//!   changes happen to leave every page well-formed (values changed in place) cannot be told
//!   from a good file without its journal; that is why the advice is `.backup`.
//! - WAL mode: committed transactions live in `FILE-wal` until a checkpoint. SQLite uses the
//!   frames up to the first invalid one and ignores the rest, and ignores the whole log if
//!   its header is invalid ("Database File Format", sqlite.org, "The Write-Ahead Log"): a
//!   damaged log silently drops committed transactions. [`check_wal`] reads the log frame
//!   by frame (one page of memory) and refuses one SQLite would cut short.
//!
//! `quick_check` rather than `integrity_check`: it verifies every page, cell and b-tree
//! structure, reading the file once (about the time of one full scan; on a 443 MB file with
//! two indexes 0.75 s warm, against 6.6 s for `integrity_check`, which also checks every
//! index entry against its table: O(N log N) where quick_check is O(N); see PRAGMA
//! quick_check, sqlite.org). Index contents do not matter to cutover, which reads tables.

use crate::error::unavailable;
use rusqlite::Connection;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// How to get a file that can be trusted, appended to every refusal here.
pub(super) const COPY_ADVICE: &str = "copy a live database with `sqlite3 app.db \".backup copy.db\"` or `sqlite3 app.db \"VACUUM INTO 'copy.db'\"`, which take a consistent snapshot, never with `cp` while the application may write";

/// Errors listed from a failed quick_check.
const SHOWN: usize = 3;

/// `FILE` with `suffix` appended, as SQLite names its journal and log.
pub(super) fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Did SQLite refuse because the file has a hot journal it would have to roll back?
pub(super) fn is_hot_journal(e: &rusqlite::Error) -> bool {
    e.sqlite_extended_error_code() == Some(rusqlite::ffi::SQLITE_READONLY_ROLLBACK)
}

/// The refusal for a hot journal beside `db`.
pub(super) fn hot_journal(db: &Path) -> anyhow::Error {
    unavailable(format!(
        "SQLite source {}: {} is a hot journal: the file was copied (or its application \
         stopped) in the middle of a write transaction, so it holds changes that were never \
         committed. cutover reads sources read-only, does not roll them back and loads \
         nothing from a torn file: {COPY_ADVICE}",
        db.display(),
        beside(db, "-journal").display()
    ))
}

/// Run `PRAGMA quick_check` inside the open read transaction; refuse the file if it finds
/// anything.
pub(super) fn quick_check(conn: &Connection, db: &Path) -> anyhow::Result<()> {
    let found: Result<Vec<String>, rusqlite::Error> = conn
        .prepare(&format!("PRAGMA quick_check({SHOWN})"))
        .and_then(|mut stmt| {
            stmt.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<String>, _>>()
        });
    let problems = match found {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => return Ok(()),
        Ok(rows) => rows
            .iter()
            .flat_map(|r| r.lines())
            .filter(|l| !l.starts_with("*** in database"))
            .take(SHOWN)
            .map(|l| l.chars().take(200).collect::<String>())
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => e.to_string(),
    };
    Err(unavailable(format!(
        "SQLite source {} is damaged, so nothing was read from it (PRAGMA quick_check: \
         {problems}). A file copied while its application was writing is torn like this: \
         {COPY_ADVICE}. Otherwise restore it from a backup (`sqlite3 FILE .recover` can \
         salvage what is left)",
        db.display()
    )))
}

/// Refuse `db` if its write-ahead log is one SQLite would read only in part. A log that
/// looks damaged is read twice: an application appending to a live log while it is read
/// can make one pass see a frame half-written with later ones already complete.
pub(super) fn check_wal(db: &Path) -> anyhow::Result<()> {
    let wal = beside(db, "-wal");
    let mut verdict = scan_file(&wal);
    if matches!(verdict, Ok(Some(_))) {
        verdict = scan_file(&wal);
    }
    let why = match verdict {
        Ok(None) => return Ok(()),
        Ok(Some(why)) => why,
        Err(e) => format!("it cannot be read ({e})"),
    };
    Err(unavailable(format!(
        "SQLite source {}: its write-ahead log {} is damaged: {why}. SQLite would silently \
         read only part of the committed data, so nothing was read. A log copied while its \
         application was writing looks like this: {COPY_ADVICE}",
        db.display(),
        wal.display()
    )))
}

/// `Ok(None)`: no log, an empty one, or one whose every committed frame is readable.
fn scan_file(wal: &Path) -> std::io::Result<Option<String>> {
    use std::os::unix::fs::OpenOptionsExt;
    // Opening a FIFO for reading would wait for a writer: not with O_NONBLOCK, which changes
    // nothing for a regular file (open(2)).
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(wal);
    let f = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Ok(Some("it is not a regular file".to_string()));
    }
    scan(BufReader::with_capacity(64 * 1024, f), meta.len())
}

const MAGIC_LITTLE: u32 = 0x377f_0682;
const MAGIC_BIG: u32 = 0x377f_0683;
const VERSION: u32 = 3_007_000;
const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

fn be(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The log's checksum ("Database File Format", "Checksum Algorithm"): over 32-bit words,
/// big-endian or little-endian as the magic number says, continuing from `s`.
fn checksum(data: &[u8], big: bool, s: (u32, u32)) -> (u32, u32) {
    let (mut s0, mut s1) = s;
    for w in data.chunks_exact(8) {
        let word = |b: &[u8]| {
            let a = [b[0], b[1], b[2], b[3]];
            if big {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            }
        };
        s0 = s0.wrapping_add(word(&w[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&w[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

/// Read a log of `len` bytes. A frame is valid if its salts are the header's and its
/// cumulative checksum matches; SQLite uses the valid frames up to the first invalid one.
/// Frames after that are normal when they are left over from before the log was restarted
/// (other salts) or belong to a transaction that never committed. A commit frame with the
/// header's salts after an invalid frame is neither: committed data SQLite would drop.
fn scan(mut r: impl Read, len: u64) -> std::io::Result<Option<String>> {
    if len == 0 {
        return Ok(None);
    }
    if len < HEADER as u64 {
        return Ok(Some(format!(
            "it is {len} bytes long, shorter than its {HEADER}-byte header"
        )));
    }
    let mut header = [0u8; HEADER];
    r.read_exact(&mut header)?;
    let magic = be(&header[0..]);
    if magic != MAGIC_LITTLE && magic != MAGIC_BIG {
        return Ok(Some(
            "its header does not start with the WAL magic number, so SQLite would ignore \
             every transaction in it"
                .to_string(),
        ));
    }
    let big = magic == MAGIC_BIG;
    let version = be(&header[4..]);
    if version != VERSION {
        return Ok(Some(format!(
            "its header names log format {version}, not {VERSION}"
        )));
    }
    let page = be(&header[8..]);
    if !(512..=65536).contains(&page) || !page.is_power_of_two() {
        return Ok(Some(format!(
            "its header gives a page size of {page}, which SQLite does not have"
        )));
    }
    let mut sum = checksum(&header[..24], big, (0, 0));
    if sum != (be(&header[24..]), be(&header[28..])) {
        return Ok(Some(
            "its header checksum is wrong, so SQLite would ignore every transaction in it"
                .to_string(),
        ));
    }
    let salts = &header[16..24];
    let mut frame = vec![0u8; FRAME_HEADER + page as usize];
    let mut first_bad: Option<u64> = None;
    let mut n = 0u64;
    while read_full(&mut r, &mut frame)? {
        n += 1;
        let h = &frame[..FRAME_HEADER];
        let same_log = &h[8..16] == salts;
        let commit = be(&h[4..]) != 0;
        match first_bad {
            None => {
                let s = checksum(&frame[FRAME_HEADER..], big, checksum(&h[..8], big, sum));
                if same_log && be(h) != 0 && s == (be(&h[16..]), be(&h[20..])) {
                    sum = s;
                } else {
                    first_bad = Some(n);
                }
            }
            Some(bad) if same_log && commit => {
                return Ok(Some(format!(
                    "frame {bad} is damaged, yet frame {n} after it commits a transaction \
                     of the same log; SQLite would stop at frame {bad} and drop every \
                     transaction after it"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

/// Fill `buf` entirely: false at the end of the file (a partial last frame included).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_foreign_logs_are_named_for_what_they_are() {
        assert_eq!(scan(&b""[..], 0).unwrap(), None);
        let short = scan(&b"abc"[..], 3).unwrap().unwrap();
        assert!(short.contains("3 bytes"), "{short}");
        let foreign = scan(&[0u8; 64][..], 64).unwrap().unwrap();
        assert!(foreign.contains("magic"), "{foreign}");
    }

    #[test]
    fn a_header_is_checked_against_its_checksum() {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&MAGIC_LITTLE.to_be_bytes());
        h[4..8].copy_from_slice(&VERSION.to_be_bytes());
        h[8..12].copy_from_slice(&4096u32.to_be_bytes());
        let (a, b) = checksum(&h[..24], false, (0, 0));
        h[24..28].copy_from_slice(&a.to_be_bytes());
        h[28..32].copy_from_slice(&b.to_be_bytes());
        assert_eq!(scan(&h[..], 32).unwrap(), None);
        h[12] ^= 1;
        assert!(scan(&h[..], 32).unwrap().unwrap().contains("checksum"));
    }
}
