//! A cluster's directory, `cutover-scratch-<pid>-<random>` in the temp directory: created
//! private (mode 0700, handed to the server's account), and cleared once the run that made
//! it is gone. A run that is SIGKILLed cannot remove its own directory; the next cluster
//! started on the machine removes every directory whose creating process no longer exists.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

use crate::account::RunAs;

/// Every cluster directory's name starts with this, then `<pid>-<8 hex digits>`.
pub(crate) const PREFIX: &str = "cutover-scratch-";
/// Unix socket paths are limited to ~107 bytes; stay well below.
pub(crate) const MAX_SOCKET_DIR_LEN: usize = 80;
/// A file in a `--keep-scratch` cluster's directory: the user asked for it to stay, so it
/// is never cleared as stale.
pub(crate) const KEPT_MARK: &str = "kept";

/// Where cluster directories go: the temp directory, or `/tmp` when its path is too long
/// for the Unix socket that lives in the cluster's directory.
pub(crate) fn base() -> PathBuf {
    let base = std::env::temp_dir();
    if base.as_os_str().len() > MAX_SOCKET_DIR_LEN - 40 {
        return PathBuf::from("/tmp");
    }
    base
}

/// A fresh directory under `base`, mode 0700, named after this process.
pub(crate) fn make_private(base: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    for _ in 0..100 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let rand = nanos ^ n.wrapping_mul(0x9E37_79B9) ^ pid.rotate_left(16);
        let dir = base.join(format!("{PREFIX}{pid}-{rand:08x}"));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("creating scratch cluster directory {}", dir.display())
                });
            }
        }
    }
    bail!(
        "could not create a unique scratch directory under {}",
        base.display()
    )
}

/// Removes the cluster directories under `base` whose creating process is gone, and
/// returns them. Left alone: a directory of a live process, of a kept cluster, one whose
/// server still runs, one owned by anybody but us or the server's account, and anything
/// that is not a plain directory (a symlink is never followed).
pub(crate) fn clear_stale(base: &Path, server: Option<RunAs>) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(base) else {
        return Vec::new();
    };
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(creator) else {
            continue;
        };
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let ours = meta.uid() == me || server.is_some_and(|s| s.uid == meta.uid());
        if !meta.is_dir() || !ours || alive(pid) {
            continue;
        }
        if path.join(KEPT_MARK).exists() || server_running(&path) {
            continue;
        }
        if fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// The pid in a cluster directory's name, `cutover-scratch-<pid>-<8 hex digits>`.
fn creator(name: &str) -> Option<libc::pid_t> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, rand) = rest.split_once('-')?;
    let digits = |s: &str, radix: u32| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    if !digits(pid, 10) || rand.len() != 8 || !digits(rand, 16) {
        return None;
    }
    pid.parse().ok().filter(|&p| p > 0)
}

/// Whether a process with this pid exists (`kill(pid, 0)`: EPERM means it does).
fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// The cluster's postmaster is still running (its pid file names a live process).
fn server_running(dir: &Path) -> bool {
    fs::read_to_string(dir.join("data/postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse::<libc::pid_t>().ok())
        .is_some_and(|pid| pid > 0 && alive(pid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The pid of a process that has exited and been reaped.
    fn gone_pid() -> libc::pid_t {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id() as libc::pid_t;
        c.wait().unwrap();
        assert!(!alive(pid));
        pid
    }

    #[test]
    fn names() {
        assert_eq!(creator("cutover-scratch-123-0a1b2c3d"), Some(123));
        for bad in [
            "cutover-scratch-demo-123",
            "cutover-scratch-123-0a1b2c3",
            "cutover-scratch-123-0a1b2c3x",
            "cutover-scratch--0a1b2c3d",
            "cutover-scratch-0-0a1b2c3d",
            "cutover-it-123-0a1b2c3d",
        ] {
            assert_eq!(creator(bad), None, "{bad}");
        }
    }

    #[test]
    fn clears_only_what_a_dead_run_left() {
        let base = std::env::temp_dir().join(format!("cutover-stale-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let dead = gone_pid();
        let mk = |name: String| {
            let d = base.join(name);
            fs::create_dir_all(d.join("data")).unwrap();
            fs::write(d.join("data/PG_VERSION"), "15\n").unwrap();
            d
        };
        let stale = mk(format!("{PREFIX}{dead}-0000abcd"));
        let live = mk(format!("{PREFIX}{}-0000abcd", std::process::id()));
        let kept = mk(format!("{PREFIX}{dead}-1111abcd"));
        fs::write(kept.join(KEPT_MARK), "").unwrap();
        let running = mk(format!("{PREFIX}{dead}-2222abcd"));
        fs::write(
            running.join("data/postmaster.pid"),
            format!("{}\n/x\n", std::process::id()),
        )
        .unwrap();
        let other = mk(format!("cutover-scratch-demo-{dead}"));
        // A symlink with a stale name is not followed, and what it points to stays.
        let target = mk("elsewhere".into());
        let link = base.join(format!("{PREFIX}{dead}-3333abcd"));
        std::os::unix::fs::symlink(&target, &link).unwrap();

        let removed = clear_stale(&base, None);
        assert_eq!(removed, vec![stale.clone()]);
        assert!(!stale.exists());
        for d in [&live, &kept, &running, &other, &target] {
            assert!(d.join("data/PG_VERSION").exists(), "{}", d.display());
        }
        assert!(fs::symlink_metadata(&link).is_ok());

        // As root: a directory of some other user is left alone too.
        if me_is_root() {
            let foreign = mk(format!("{PREFIX}{dead}-4444abcd"));
            std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
            assert!(clear_stale(&base, None).is_empty());
            assert!(foreign.exists());
        }
        fs::remove_dir_all(&base).unwrap();
    }

    fn me_is_root() -> bool {
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
}
