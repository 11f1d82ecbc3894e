//! Where a pacing [`Ledger`] lives: in a file that every cutover process of this user on the
//! machine opens, one per base (`base-app….json`) and one per token (`token-<digest>.json`,
//! a SHA-256 digest, never the token), so that concurrent commands on one base share its
//! limit. A limit belongs to a server: for an API root other than Airtable's
//! (`AIRTABLE_API_URL`) the names carry a digest of it too. Files untouched for a day are
//! removed when the directory is next used. Each change is made under an exclusive `flock(2)` on the file, so processes take
//! turns; within the process a mutex does the same for threads (one open file description is
//! one lock owner).
//!
//! The directory is `$XDG_RUNTIME_DIR/cutover` (the user's private runtime directory, per
//! the XDG Base Directory specification), else `$XDG_CACHE_HOME/cutover` or
//! `~/.cache/cutover`. It must be a directory (not a link) owned by this user that no one else
//! can enter, and each file is opened with `O_NOFOLLOW`, owned by this user and mode 0600
//! (see [`crate::files`]); anything else is refused rather than used. When no such directory
//! can be made at all (no home, a read-only file system), the ledger stays in memory and
//! only this process's requests are paced together.

use super::pace::Ledger;
use crate::files;
use sha2::Digest;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A ledger, in a shared file or in memory.
pub(crate) struct Shared {
    inner: Mutex<Store>,
    path: Option<PathBuf>,
}

enum Store {
    File(File),
    Memory(Ledger),
}

impl Shared {
    pub(crate) fn memory() -> Shared {
        Shared {
            inner: Mutex::new(Store::Memory(Ledger::default())),
            path: None,
        }
    }

    /// The ledger named `name` in `dir` (created private if missing).
    pub(crate) fn open(dir: &Path, name: &str) -> anyhow::Result<Shared> {
        private_dir(dir)?;
        let path = dir.join(name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(files::FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot open the Airtable pacing file {} (shared by cutover processes on \
                     this machine): {e}",
                    path.display()
                )
            })?;
        let meta = file.metadata()?;
        // SAFETY: geteuid has no failure mode.
        let me = unsafe { libc::geteuid() };
        if !meta.is_file() || meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
            return Err(crate::error::usage(format!(
                "the Airtable pacing file {} is not a private file of this user (owner {}, \
                 mode {:o}); remove it",
                path.display(),
                meta.uid(),
                meta.permissions().mode() & 0o7777
            )));
        }
        Ok(Shared {
            inner: Mutex::new(Store::File(file)),
            path: Some(path),
        })
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Read, change and write back the ledger, holding it exclusively.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> anyhow::Result<T> {
        let f = |l: &mut Ledger| {
            l.sanitize(super::pace::now());
            f(l)
        };
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *g {
            Store::Memory(l) => Ok(f(l)),
            Store::File(file) => {
                let what = || {
                    self.path
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                };
                let fd = file.as_raw_fd();
                // SAFETY: flock on a descriptor we own; it blocks until the lock is ours.
                while unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Err(anyhow::anyhow!("cannot lock {}: {e}", what()));
                    }
                }
                let result = (|| -> std::io::Result<T> {
                    let mut text = String::new();
                    file.rewind()?;
                    file.read_to_string(&mut text)?;
                    // A ledger left half-written or by another version is only pacing state.
                    let mut ledger: Ledger = serde_json::from_str(&text).unwrap_or_default();
                    let out = f(&mut ledger);
                    let bytes = serde_json::to_vec(&ledger).map_err(std::io::Error::other)?;
                    file.rewind()?;
                    file.set_len(0)?;
                    file.write_all(&bytes)?;
                    Ok(out)
                })();
                // SAFETY: as above.
                unsafe { libc::flock(fd, libc::LOCK_UN) };
                result.map_err(|e| anyhow::anyhow!("cannot update {}: {e}", what()))
            }
        }
    }
}

/// The default directory for the shared ledgers, if the environment names one.
pub(crate) fn default_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(run) = var("XDG_RUNTIME_DIR") {
        return Some(run.join("cutover"));
    }
    if let Some(cache) = var("XDG_CACHE_HOME") {
        return Some(cache.join("cutover"));
    }
    var("HOME").map(|h| h.join(".cache").join("cutover"))
}

/// The API root every request goes to unless `AIRTABLE_API_URL` says otherwise.
const AIRTABLE_API: &str = "https://api.airtable.com";

fn digest(text: &str, bytes: usize) -> String {
    let d = sha2::Sha256::digest(text.as_bytes());
    d.iter().take(bytes).map(|b| format!("{b:02x}")).collect()
}

fn server_suffix(api: &str) -> String {
    if api == AIRTABLE_API {
        String::new()
    } else {
        format!("-{}", digest(api, 4))
    }
}

/// The ledger file name for base `base` at the API root `api`.
pub(crate) fn base_name(base: &str, api: &str) -> String {
    format!("base-{base}{}.json", server_suffix(api))
}

/// The ledger file name for a token at `api`: a digest, so the token is never on disk.
pub(crate) fn token_name(secret: &str, api: &str) -> String {
    let hex = digest(&format!("cutover pacing {secret}"), 12);
    format!("token-{hex}{}.json", server_suffix(api))
}

/// Remove this user's ledgers in `dir` that nobody touched for a day.
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    // SAFETY: geteuid has no failure mode.
    let me = unsafe { libc::geteuid() };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let stale = std::fs::symlink_metadata(e.path()).is_ok_and(|m| {
            m.is_file()
                && m.uid() == me
                && m.modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > std::time::Duration::from_secs(86_400))
        });
        if stale
            && name.ends_with(".json")
            && (name.starts_with("base-") || name.starts_with("token-"))
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Make `dir` (and its parent, for `~/.cache`) if missing, and check it is a private
/// directory of this user, not a link.
pub(crate) fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if let Some(parent) = dir.parent()
        && !parent.exists()
    {
        let _ = files::create_dir(parent);
    }
    match files::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(anyhow::anyhow!(
                "cannot create the directory {}: {e}",
                dir.display()
            ));
        }
    }
    let meta = std::fs::symlink_metadata(dir)?;
    // SAFETY: geteuid has no failure mode.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
        return Err(crate::error::usage(format!(
            "{} is not a private directory of this user (a link, another owner, or open to \
             others); cutover keeps its Airtable pacing files there, so it refuses to use it",
            dir.display()
        )));
    }
    sweep(dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cutover-pace-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn two_openers_share_one_ledger() {
        let d = dir("share");
        let a = Shared::open(&d, "base-appX.json").unwrap();
        let b = Shared::open(&d, "base-appX.json").unwrap();
        a.with(|l| l.locked_until = 42.0).unwrap();
        assert_eq!(b.with(|l| l.locked_until).unwrap(), 42.0);
        let mode = std::fs::metadata(a.path().unwrap()).unwrap().permissions();
        assert_eq!(mode.mode() & 0o777, 0o600);
        let dmode = std::fs::metadata(&d).unwrap().permissions();
        assert_eq!(dmode.mode() & 0o777, 0o700);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn links_are_refused() {
        let d = dir("links");
        std::fs::create_dir_all(&d).unwrap();
        let victim = d.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let inner = d.join("cutover");
        std::os::unix::fs::symlink(&d, &inner).unwrap();
        assert!(
            Shared::open(&inner, "x.json").is_err(),
            "a linked directory"
        );
        std::fs::remove_file(&inner).unwrap();
        Shared::open(&inner, "y.json").unwrap();
        std::os::unix::fs::symlink(&victim, inner.join("z.json")).unwrap();
        assert!(Shared::open(&inner, "z.json").is_err(), "a linked file");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!token_name("patSECRET", AIRTABLE_API).contains("SECRET"));
        assert_eq!(base_name("appX", AIRTABLE_API), "base-appX.json");
        assert_ne!(
            base_name("appX", "http://127.0.0.1:1"),
            base_name("appX", "http://127.0.0.1:2")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
