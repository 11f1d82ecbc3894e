//! The spool: the private directory where the Airtable source keeps the records it extracted
//! (personal data, often) as JSON lines until the load has read them, removed with the
//! source.
//!
//! Private means: the directory is always a new one (`mkdir` refuses an existing name, a
//! symbolic link planted there included) with mode 0700; each file is created exclusively
//! (`O_CREAT | O_EXCL`, which refuses a link at its name too) with mode 0600, as every file
//! cutover writes ([`crate::files`]); and reading adds `O_NOFOLLOW` too (open(2)). The
//! directory is made in the system's temporary directory (`TMPDIR`, else /tmp), which, like
//! /tmp, must not let other users rename what is not theirs (the sticky bit).

use crate::files;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A private directory for spooled records, removed on drop.
pub(super) struct Spool {
    pub(super) dir: PathBuf,
    /// Files named so far: each gets a number of its own.
    files: u64,
}

impl Spool {
    /// A new spool in the temporary directory, under a name no one can predict.
    pub(super) fn new() -> anyhow::Result<Spool> {
        let tmp = std::env::temp_dir();
        let mut last = None;
        for _ in 0..16 {
            // RandomState is seeded from the operating system's randomness.
            let random = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            let dir = tmp.join(format!(
                "cutover-airtable-{}-{random:016x}",
                std::process::id()
            ));
            match Spool::at(dir) {
                Ok(spool) => return Ok(spool),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => {
                    return Err(anyhow::anyhow!(
                        "cannot create a private spool directory in {}: {e}",
                        tmp.display()
                    ));
                }
            }
        }
        Err(anyhow::anyhow!(
            "cannot create a private spool directory in {}: every name tried was taken ({})",
            tmp.display(),
            last.map_or_else(String::new, |e| e.to_string())
        ))
    }

    /// The spool at exactly `dir`, which must not exist yet.
    pub(super) fn at(dir: PathBuf) -> std::io::Result<Spool> {
        files::create_dir(&dir)?;
        // mkdir made it, with 0700 less the umask; check that is what is there.
        let spool = Spool { dir, files: 0 };
        let meta = std::fs::symlink_metadata(&spool.dir)?;
        if !meta.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is not the directory just made",
                spool.dir.display()
            )));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(std::io::Error::other(format!(
                "{} can be entered by other users",
                spool.dir.display()
            )));
        }
        Ok(spool)
    }

    /// A new file name in the spool for records of `table_id`.
    pub(super) fn next_file(&mut self, table_id: &str) -> PathBuf {
        let n = self.files;
        self.files += 1;
        self.dir.join(format!("{n}-{table_id}.jsonl"))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Create the spool file `path` for writing: it must not exist (nothing, not even a link,
/// is written through), and only this user can read it.
pub(super) fn create(path: &Path) -> anyhow::Result<File> {
    files::create_new(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "cannot create the spool file {}: something is already there (a link or file \
                 someone else put in the spool?); records are never written through it",
                path.display()
            )
        } else {
            anyhow::anyhow!("cannot create the spool file {}: {e}", path.display())
        }
    })
}

/// Open the spool file `path` for reading, never through a link.
pub(super) fn open(path: &Path) -> anyhow::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot read the spool file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_planted_at_the_spool_path_is_refused() {
        let base = std::env::temp_dir().join(format!("cutover-spool-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("theirs")).unwrap();
        let planted = base.join("spool");
        std::os::unix::fs::symlink(base.join("theirs"), &planted).unwrap();
        let e = Spool::at(planted.clone()).err().expect("refused");
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert!(
            std::fs::read_dir(base.join("theirs"))
                .unwrap()
                .next()
                .is_none()
        );

        let mut spool = Spool::at(base.join("mine")).unwrap();
        let file = spool.next_file("tblX");
        assert_ne!(file, spool.next_file("tblX"), "every file is new");
        drop(create(&file).unwrap());
        assert!(create(&file).is_err(), "never opened twice for writing");
        drop(spool);
        assert!(!base.join("mine").exists());
        std::fs::remove_dir_all(&base).ok();
    }
}
