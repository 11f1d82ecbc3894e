//! A cluster's directory, `cutover-scratch-<pid>-<random>` in the temp directory, created
//! private (mode 0700, handed to the server's account).

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

/// Every cluster directory's name starts with this, then `<pid>-<8 hex digits>`.
pub(crate) const PREFIX: &str = "cutover-scratch-";
/// Unix socket paths are limited to ~107 bytes; stay well below.
pub(crate) const MAX_SOCKET_DIR_LEN: usize = 80;
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
