//! Files cutover writes for the user: reports, rejects, drafted mappings and snapshots. They
//! hold personal data and cutover often runs as root in shared directories, so every file is
//! created the one safe way: exclusively (`O_CREAT | O_EXCL`), never through a symbolic link
//! (`O_NOFOLLOW`), readable by its owner only (0600; directories 0700), written in full and
//! synced under a temporary name, then renamed into place — a reader never sees half a file,
//! and a link planted at the path cannot redirect the write (see open(2), rename(2)).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Owner read and write only.
pub(crate) const FILE_MODE: u32 = 0o600;
/// Owner only.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Create `path` as a new private file: fails if anything (a file, a link) is already there.
pub(crate) fn create_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Create `path` as a new private directory: fails if anything is already there.
pub(crate) fn create_dir(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().mode(DIR_MODE).create(path)
}

/// What may already stand at the path a file is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// An existing regular file is replaced (`--report`, `--rejects`).
    Replace,
    /// Anything already there is an error (`--emit-mapping` never overwrites).
    Refuse,
}

/// Whether `path` may be written: a symbolic link, a directory or a device there is
/// refused (and with [`Existing::Refuse`], a file too), naming the path.
pub(crate) fn check(path: &Path, existing: Existing) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(format!(
            "{}: it is a symbolic link, and cutover does not write through links; give the real path",
            path.display()
        )),
        Ok(m) if !m.is_file() => Err(format!(
            "{}: it exists and is not a regular file",
            path.display()
        )),
        Ok(_) if existing == Existing::Refuse => {
            Err(format!("{}: it already exists", path.display()))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Write `bytes` to `path` as a private file, atomically, after [`check`], synced to disk
/// before it takes the name.
pub(crate) fn write(path: &Path, bytes: &[u8], existing: Existing) -> Result<(), String> {
    write_file(path, bytes, existing, true)
}

/// [`write`] without the sync: for a file whose reader checks it whole (a checksum in it), so
/// that what a crash of the machine lost is found and made again. The rename still means a
/// killed process leaves the old file or the new one, and the writer is not held up by the
/// disk (fsync(2) waits for the file system's journal, at times for tens of milliseconds).
pub(crate) fn write_unsynced(path: &Path, bytes: &[u8], existing: Existing) -> Result<(), String> {
    write_file(path, bytes, existing, false)
}

fn write_file(path: &Path, bytes: &[u8], existing: Existing, sync: bool) -> Result<(), String> {
    check(path, existing)?;
    let tmp = temp_beside(path);
    let result = (|| {
        let mut f = create_new(&tmp)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        match existing {
            // rename(2) replaces the directory entry itself: a link planted after the check
            // above is replaced, never followed.
            Existing::Replace => std::fs::rename(&tmp, path),
            // link(2) fails if the name exists, so a file created meanwhile is not clobbered.
            Existing::Refuse => {
                std::fs::hard_link(&tmp, path)?;
                std::fs::remove_file(&tmp)
            }
        }
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: {e}", path.display()));
    }
    Ok(())
}

/// A temporary name in the same directory (so the final rename stays on one file system).
fn temp_beside(path: &Path) -> PathBuf {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{name}.cutover-tmp{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cutover-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn private_atomic_and_replacing() {
        let d = dir("replace");
        let p = d.join("report.json");
        write(&p, b"one", Existing::Replace).unwrap();
        write(&p, b"two", Existing::Replace).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "no temporary file left"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn never_through_a_link() {
        let d = dir("link");
        let victim = d.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let p = d.join("rejects.csv");
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        let e = write(&p, b"x", Existing::Replace).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // A link at a new file's own path is not followed either.
        let q = d.join("new");
        std::os::unix::fs::symlink(&victim, &q).unwrap();
        assert!(create_new(&q).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuse_keeps_what_is_there() {
        let d = dir("refuse");
        let p = d.join("draft.toml");
        write(&p, b"first", Existing::Refuse).unwrap();
        assert!(write(&p, b"second", Existing::Refuse).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_link_planted_at_the_temporary_name_is_not_followed() {
        let d = dir("tmpname");
        let victim = d.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let p = d.join("report.json");
        std::os::unix::fs::symlink(&victim, temp_beside(&p)).unwrap();
        assert!(write(&p, b"x", Existing::Replace).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!p.exists());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
