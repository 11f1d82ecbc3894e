//! Running the server binaries: `initdb`, `postgres` as a child that dies with this
//! process (unless kept), waiting for it to accept connections, and stopping it. Where the
//! binaries are is found once per call from `pg_config`, Debian's layout or PATH.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::account::RunAs;

const NOT_FOUND: &str = "PostgreSQL server binaries (initdb, postgres) not found: install Debian's `postgresql` package (apt-get install postgresql) or put them on PATH";
/// How long `launch` waits for the server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop_child` waits after SIGINT (fast shutdown) before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The directory holding `initdb` and `postgres`: `pg_config --bindir`, else
/// the newest `/usr/lib/postgresql/*/bin`, else wherever `initdb` is on PATH.
pub fn find_bindir() -> Result<PathBuf> {
    let usable = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Ok(out) = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if usable(&dir) {
            return Ok(dir);
        }
    }
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let v: Option<Vec<u32>> = name.split('.').map(|p| p.parse().ok()).collect();
                Some((v?, e.path().join("bin")))
            })
            .filter(|(_, bin)| usable(bin))
            .collect();
        versions.sort();
        if let Some((_, bin)) = versions.pop() {
            return Ok(bin);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if usable(&dir) {
                return Ok(dir);
            }
        }
    }
    bail!(NOT_FOUND)
}

/// Fast shutdown (SIGINT), then SIGKILL after a while; reaps the child.
pub(crate) fn stop_child(mut child: Child) -> Result<()> {
    let pid = child.id() as libc::pid_t;
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    // SAFETY: plain syscall on the pid of our own, not yet reaped, child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above; the child is still not reaped.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    child
        .wait()
        .context("waiting for the scratch server to exit")?;
    Ok(())
}

pub(crate) fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free TCP port on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

fn command_as(program: &Path, dir: &Path, run_as: Option<RunAs>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir).stdin(Stdio::null());
    // libpq/initdb environment that could redirect what we start.
    for var in ["PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGOPTIONS"] {
        cmd.env_remove(var);
    }
    if let Some(r) = run_as {
        // std drops supplementary groups (setgroups(0)) when uid is set as root.
        cmd.uid(r.uid).gid(r.gid);
    }
    cmd
}

pub(crate) fn initdb(bindir: &Path, dir: &Path, run_as: Option<RunAs>) -> Result<()> {
    let data = dir.join("data");
    let log_path = dir.join("initdb.log");
    let mut first_log = String::new();
    for locale in ["C.UTF-8", "C"] {
        if data.exists() {
            fs::remove_dir_all(&data).context("cleaning up after a failed initdb")?;
        }
        let log = File::create(&log_path).context("creating initdb.log")?;
        let status = command_as(&bindir.join("initdb"), dir, run_as)
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-E", "UTF8", "--no-sync"])
            .arg(format!("--locale={locale}"))
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .with_context(|| format!("running {}", bindir.join("initdb").display()))?;
        if status.success() {
            return Ok(());
        }
        if first_log.is_empty() {
            first_log = log_tail(&log_path);
        }
    }
    bail!(
        "initdb failed for the scratch cluster in {}: {}\n{}",
        dir.display(),
        log_tail(&log_path),
        first_log
    )
}

pub(crate) enum Launch {
    PortTaken(anyhow::Error),
    Failed(anyhow::Error),
}

pub(crate) fn launch(
    bindir: &Path,
    dir: &Path,
    port: u16,
    keep: bool,
    run_as: Option<RunAs>,
    extra: &[String],
) -> Result<Child, Launch> {
    let log_path = dir.join("postgres.log");
    let failed = |e: anyhow::Error| Launch::Failed(e);
    let log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .context("creating postgres.log")
        .map_err(failed)?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut cmd = command_as(&bindir.join("postgres"), dir, run_as);
    cmd.arg("-D")
        .arg(dir.join("data"))
        .arg("-k")
        .arg(dir)
        .args(["-c", "listen_addresses=127.0.0.1", "-p"])
        .arg(port.to_string())
        .args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=100",
            // Messages in English whatever the machine's locale: callers read some of them
            // (a missing role's name).
            "-c",
            "lc_messages=C",
        ])
        .args(extra)
        .stdout(log.try_clone().map_err(|e| failed(e.into()))?)
        .stderr(log);
    // SAFETY: getpid is async-signal-safe and called here in the parent.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe syscalls (setsid, prctl, getppid), allocating nothing.
    // std runs it after setuid/setgid, which matters: changing credentials
    // clears PR_SET_PDEATHSIG.
    unsafe {
        cmd.pre_exec(move || {
            if keep {
                // Own session: no SIGHUP/SIGINT from our terminal.
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else {
                // Die (immediate shutdown, which also ends the backends)
                // when our parent goes. Note: the "parent" is the *thread*
                // that forked us; that is why `spawn_long_lived` forks from
                // a thread that lives as long as the process.
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGQUIT as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    // The parent died before prctl took effect.
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
            }
            Ok(())
        });
    }
    let mut child = spawn_long_lived(cmd)
        .with_context(|| format!("starting {}", bindir.join("postgres").display()))
        .map_err(failed)?;

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let tail = log_tail_from(&log_path, log_start);
                let e = anyhow!(
                    "the scratch PostgreSQL server exited during startup ({status}); log {}:\n{tail}",
                    log_path.display()
                );
                return Err(
                    if tail.contains("could not bind") || tail.contains("in use") {
                        Launch::PortTaken(e)
                    } else {
                        Launch::Failed(e)
                    },
                );
            }
            Ok(None) => {}
            Err(e) => return Err(failed(anyhow!(e).context("checking the scratch server"))),
        }
        if is_ready(bindir, dir, port) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = stop_child(child);
            return Err(failed(anyhow!(
                "the scratch PostgreSQL server did not accept connections within {} s; log {}:\n{}",
                START_TIMEOUT.as_secs(),
                log_path.display(),
                log_tail_from(&log_path, log_start)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `pg_isready` if it is there, else the postmaster.pid status line.
fn is_ready(bindir: &Path, dir: &Path, port: u16) -> bool {
    let isready = bindir.join("pg_isready");
    if isready.is_file() {
        return Command::new(isready)
            .arg("-q")
            .arg("-h")
            .arg(dir)
            .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    }
    fs::read_to_string(dir.join("data/postmaster.pid"))
        .map(|s| s.lines().nth(7).is_some_and(|l| l.trim() == "ready"))
        .unwrap_or(false)
}

fn log_tail(path: &Path) -> String {
    log_tail_from(path, 0)
}

/// The last ~3 KB of a log, from byte `start` on.
fn log_tail_from(path: &Path, start: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return "(no log)".to_string();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = start.max(len.saturating_sub(3000));
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(from)).is_err() || f.read_to_end(&mut buf).is_err() {
        return "(unreadable log)".to_string();
    }
    String::from_utf8_lossy(&buf).trim_end().to_string()
}

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` from a thread that lives until the process exits.
/// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not
/// the process: spawning from a short-lived thread (a test thread, a tokio
/// `spawn_blocking` worker) would kill the server as soon as that thread
/// ended.
fn spawn_long_lived(cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        let spawned = std::thread::Builder::new()
            .name("cutover-scratch-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            });
        if let Err(e) = spawned {
            eprintln!("warning: cannot start the scratch spawner thread: {e}");
        }
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    let sent = tx
        .lock()
        .map_err(|_| io::Error::other("scratch spawner lock poisoned"))?
        .send((cmd, reply_tx));
    if sent.is_err() {
        return Err(io::Error::other("scratch spawner thread is not running"));
    }
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("scratch spawner thread is not running"))?
}
