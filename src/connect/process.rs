//! Keeping the process's secrets out of core dumps. cutover holds the target's password and
//! the Airtable token in memory; a crash (or a `gcore` by another process of the same user)
//! would otherwise write them to a core file, which often ends up in a shared crash
//! collector. `setrlimit(RLIMIT_CORE, 0)` stops core files; `prctl(PR_SET_DUMPABLE, 0)` also
//! stops a same-user process from attaching with ptrace or reading `/proc/PID/mem`
//! (Linux `prctl(2)`, `setrlimit(2)`).

/// Makes this process non-dumpable. Call it once at start-up, before any secret is read.
/// Failures are ignored: this is a safeguard, not a requirement for running.
pub(crate) fn forbid_core_dumps() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls with valid arguments; no memory is shared with them
    // beyond the struct passed by reference for the duration of the call.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_core_dumps_after_the_call() {
        super::forbid_core_dumps();
        let mut lim = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: getrlimit and prctl(PR_GET_DUMPABLE) only read process state.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_CORE, &mut lim), 0);
            #[cfg(target_os = "linux")]
            assert_eq!(libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
        }
        assert_eq!((lim.rlim_cur, lim.rlim_max), (0, 0));
    }
}
