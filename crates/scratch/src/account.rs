//! Who the scratch server runs as. PostgreSQL refuses to run as root, and a scratch
//! cluster's superuser can run programs as the server's OS user (`COPY … TO PROGRAM`) and
//! read its files (`pg_read_file`). So as root the server gets an identity of its own, the
//! system account `cutover-scratch`, which owns nothing else on the machine — not the
//! `postgres` account, which owns the machine's real clusters, nor `nobody`, which other
//! services share. `initdb` needs a passwd entry for the user it runs as, so the account is
//! created on first use, the way Debian's packages create their system users. As anyone
//! else the server runs as that user, who already has every power the server would have.

use std::ffi::CString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, bail};

/// The system account scratch servers run as when cutover runs as root.
pub const ACCOUNT: &str = "cutover-scratch";

/// A user and group id to run the server as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RunAs {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// The identity to run the server as: `None` to run it as ourselves (we are not root), else
/// the `cutover-scratch` account, created if it does not exist yet.
pub(crate) fn run_as() -> Result<Option<RunAs>> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    ensure_account().map(Some)
}

/// The `cutover-scratch` account, created with `useradd --system` if it is missing. Two
/// runs may try at once: whoever loses the race finds the account the other created.
fn ensure_account() -> Result<RunAs> {
    static CREATING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = CREATING.lock().unwrap_or_else(|e| e.into_inner());
    let mut last = String::new();
    for _attempt in 0..5 {
        if let Some(r) = lookup_user(ACCOUNT) {
            return check(r);
        }
        if let Err(e) = useradd() {
            // Another process may hold the passwd lock, or have just created the account.
            last = e;
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    if let Some(r) = lookup_user(ACCOUNT) {
        return check(r);
    }
    bail!(
        "running as root, the scratch PostgreSQL server needs an unprivileged account of its own, `{ACCOUNT}`, and creating it failed: {last}. Create it yourself (useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin {ACCOUNT}) or run cutover as a normal user"
    )
}

/// An account that is root, or shares its group with root, would defeat the purpose.
fn check(r: RunAs) -> Result<RunAs> {
    if r.uid == 0 || r.gid == 0 {
        bail!(
            "the account `{ACCOUNT}` has user or group id 0: the scratch server must not run with root's ids; give it ids of its own (userdel {ACCOUNT}, and cutover creates it again)"
        );
    }
    Ok(r)
}

/// `useradd --system` for the account; the error says why it failed.
fn useradd() -> Result<(), String> {
    let program = ["/usr/sbin/useradd", "/sbin/useradd", "/usr/bin/useradd"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or("useradd");
    let shell = ["/usr/sbin/nologin", "/sbin/nologin", "/bin/false"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or("/bin/false");
    let out = Command::new(program)
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            shell,
            "--comment",
            "cutover throwaway PostgreSQL clusters",
            ACCOUNT,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{program} {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// The user's ids from the passwd database.
pub(crate) fn lookup_user(name: &str) -> Option<RunAs> {
    let cname = CString::new(name).ok()?;
    // SAFETY: getpwnam_r writes only into the buffers we pass; we read the result only on
    // success.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16384];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        (rc == 0 && !result.is_null()).then_some(RunAs {
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_root_a_dedicated_account_else_ourselves() {
        let r = run_as().unwrap();
        if unsafe { libc::geteuid() } != 0 {
            assert_eq!(r, None);
            return;
        }
        let r = r.expect("as root the server runs as an account of its own");
        assert_eq!(lookup_user(ACCOUNT), Some(r));
        assert_ne!(r.uid, 0);
        for other in ["postgres", "nobody"] {
            if let Some(o) = lookup_user(other) {
                assert_ne!(o.uid, r.uid, "shares its uid with {other}");
            }
        }
        // Asking again finds it.
        assert_eq!(run_as().unwrap(), Some(r));
    }
}
