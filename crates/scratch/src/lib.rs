//! A throwaway ("scratch") PostgreSQL cluster: `initdb` into a fresh private
//! temp directory, run `postgres` as a child on a Unix socket there plus a
//! free 127.0.0.1 port, and remove it all afterwards. Used for dry runs and
//! tests, so they never need an existing server.
//!
//! PostgreSQL refuses to run as root; as root the cluster runs as the
//! `postgres` system user (or `nobody`), as anyone else as the current user.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What a URL component keeps as it is: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

const NOT_FOUND: &str = "PostgreSQL server binaries (initdb, postgres) not found: install Debian's `postgresql` package (apt-get install postgresql) or put them on PATH";
/// How long `start` waits for the server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop` waits after SIGINT (fast shutdown) before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Unix socket paths are limited to ~107 bytes; stay well below.
const MAX_SOCKET_DIR_LEN: usize = 80;

/// A running throwaway cluster. Dropping it stops the server and removes
/// its directory, unless it was started with `keep`.
pub struct Scratch {
    dir: PathBuf,
    child: Option<Child>,
    port: u16,
    keep: bool,
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .field("pid", &self.child.as_ref().map(Child::id))
            .field("keep", &self.keep)
            .finish()
    }
}

impl Scratch {
    /// Starts a fresh cluster (blocking, typically 1-3 s). With `keep` the
    /// server runs in its own session, survives this process, and its
    /// directory is left in place; otherwise it dies with this process.
    pub fn start(keep: bool) -> Result<Scratch> {
        start_inner(keep, None)
    }

    /// Like [`Scratch::start`], with TLS enabled on the TCP port using the
    /// given PEM certificate (chain) and private key.
    pub fn start_tls(keep: bool, cert_pem: &str, key_pem: &str) -> Result<Scratch> {
        start_inner(keep, Some((cert_pem, key_pem)))
    }

    /// Superuser URL over the Unix socket (trust auth, no password).
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgresql://postgres@/{}?host={}&port={}",
            encode(dbname),
            encode(&self.dir.to_string_lossy()),
            self.port
        )
    }

    /// URL over TCP 127.0.0.1 (scram-sha-256 password auth) for a role that
    /// the caller created with a password.
    pub fn tcp_url(&self, user: &str, password: &str, dbname: &str) -> String {
        format!(
            "postgresql://{}:{}@127.0.0.1:{}/{}",
            encode(user),
            encode(password),
            self.port,
            encode(dbname)
        )
    }

    /// The TCP port on 127.0.0.1 (the Unix socket uses the same number).
    pub fn tcp_port(&self) -> u16 {
        self.port
    }

    /// The cluster's private directory: `data/`, the socket, the logs.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// Fast shutdown (SIGINT), wait up to 10 s, then SIGKILL; then remove
    /// the directory. Does this even when started with `keep`.
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if let Some(child) = self.child.take() {
            stop_child(child)?;
        }
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)
                .with_context(|| format!("removing scratch cluster {}", self.dir.display()))?;
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Err(e) = self.shutdown() {
            eprintln!("warning: cleaning up scratch cluster: {e:#}");
        }
    }
}

fn stop_child(mut child: Child) -> Result<()> {
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

/// The user the server runs as when we are root.
#[derive(Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn run_as() -> Result<Option<RunAs>> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Some(r) = lookup_user(name) {
            return Ok(Some(r));
        }
    }
    bail!(
        "running as root, and neither a `postgres` nor a `nobody` user exists to run the scratch PostgreSQL server (it refuses to run as root): create one (adduser --system postgres) or run as a normal user"
    )
}

fn lookup_user(name: &str) -> Option<RunAs> {
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam_r writes only into the buffers we pass; we read the
    // result only on success.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
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

fn make_private_dir() -> Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut base = std::env::temp_dir();
    if base.as_os_str().len() > MAX_SOCKET_DIR_LEN - 40 {
        base = PathBuf::from("/tmp");
    }
    let pid = std::process::id();
    for _ in 0..100 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let rand = nanos ^ n.wrapping_mul(0x9E37_79B9) ^ pid.rotate_left(16);
        let dir = base.join(format!("cutover-scratch-{pid}-{rand:08x}"));
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

fn start_inner(keep: bool, tls: Option<(&str, &str)>) -> Result<Scratch> {
    let bindir = find_bindir()?;
    let run_as = run_as()?;
    let dir = make_private_dir()?;
    // From here on, remove the directory if anything fails.
    let mut scratch = Scratch {
        dir: dir.clone(),
        child: None,
        port: 0,
        keep: false,
    };
    if let Some(r) = run_as {
        std::os::unix::fs::chown(&dir, Some(r.uid), Some(r.gid))
            .with_context(|| format!("handing {} to the server user", dir.display()))?;
    }
    initdb(&bindir, &dir, run_as)?;

    let mut extra: Vec<String> = Vec::new();
    if let Some((cert, key)) = tls {
        let cert_path = dir.join("server.crt");
        let key_path = dir.join("server.key");
        for (path, contents) in [(&cert_path, cert), (&key_path, key)] {
            fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
            if let Some(r) = run_as {
                std::os::unix::fs::chown(path, Some(r.uid), Some(r.gid))?;
            }
        }
        extra.extend([
            "-c".into(),
            "ssl=on".into(),
            "-c".into(),
            format!("ssl_cert_file={}", cert_path.display()),
            "-c".into(),
            format!("ssl_key_file={}", key_path.display()),
        ]);
    }

    let mut last_err = None;
    for _attempt in 0..5 {
        let port = free_port()?;
        match launch(&bindir, &dir, port, keep, run_as, &extra) {
            Ok(child) => {
                scratch.child = Some(child);
                scratch.port = port;
                scratch.keep = keep;
                return Ok(scratch);
            }
            Err(Launch::PortTaken(e)) => last_err = Some(e),
            Err(Launch::Failed(e)) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| anyhow!("could not find a free port")))
}

fn free_port() -> Result<u16> {
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

fn initdb(bindir: &Path, dir: &Path, run_as: Option<RunAs>) -> Result<()> {
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

enum Launch {
    PortTaken(anyhow::Error),
    Failed(anyhow::Error),
}

fn launch(
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn connect(url: &str) -> tokio_postgres::Client {
        let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c
    }

    #[test]
    fn finds_bindir() {
        let d = find_bindir().unwrap();
        assert!(d.join("initdb").is_file(), "{}", d.display());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_query_tcp_stop() {
        let s = tokio::task::spawn_blocking(|| Scratch::start(false))
            .await
            .unwrap()
            .unwrap();
        let dir = s.data_dir().to_path_buf();
        assert!(dir.join("data/PG_VERSION").is_file());
        assert!(dir.as_os_str().len() < 100);
        // spawn_blocking's thread may go away; the server must not (PDEATHSIG
        // is tied to the spawning thread, hence spawn_long_lived).
        let c = connect(&s.url("postgres")).await;
        let row = c
            .query_one("select 40 + 2, current_user", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 42);
        assert_eq!(row.get::<_, String>(1), "postgres");
        if unsafe { libc::geteuid() } == 0 {
            // Runs as an unprivileged user when we are root.
            let owner: String = c
                .query_one("select pg_catalog.current_setting('data_directory')", &[])
                .await
                .map(|r| r.get(0))
                .unwrap();
            use std::os::unix::fs::MetadataExt;
            assert_ne!(fs::metadata(&owner).unwrap().uid(), 0);
        }
        c.batch_execute("create role app login password 'k+le,U2kG1Gb0cp_'")
            .await
            .unwrap();
        c.batch_execute("create database appdb owner app")
            .await
            .unwrap();
        let c2 = connect(&s.tcp_url("app", "k+le,U2kG1Gb0cp_", "appdb")).await;
        let db: String = c2
            .query_one("select current_database()", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(db, "appdb");
        drop((c, c2));
        tokio::task::spawn_blocking(move || s.stop())
            .await
            .unwrap()
            .unwrap();
        assert!(!dir.exists(), "stop removes {}", dir.display());
    }

    #[test]
    fn two_clusters_and_drop_cleans_up() {
        let a = Scratch::start(false).unwrap();
        let b = Scratch::start(false).unwrap();
        assert_ne!(a.tcp_port(), b.tcp_port());
        assert_ne!(a.data_dir(), b.data_dir());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for s in [&a, &b] {
                let c = connect(&s.url("postgres")).await;
                let port: String = c.query_one("show port", &[]).await.unwrap().get(0);
                assert_eq!(port, s.tcp_port().to_string());
            }
        });
        let (da, db) = (a.data_dir().to_path_buf(), b.data_dir().to_path_buf());
        let pid = a.child.as_ref().unwrap().id() as libc::pid_t;
        drop(a);
        assert!(!da.exists());
        assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "server process gone");
        assert!(db.exists());
        b.stop().unwrap();
        assert!(!db.exists());
    }

    #[test]
    fn keep_survives_drop() {
        let s = Scratch::start(true).unwrap();
        let dir = s.data_dir().to_path_buf();
        let pid = s.child.as_ref().unwrap().id() as libc::pid_t;
        // Own session.
        assert_eq!(unsafe { libc::getsid(pid) }, pid);
        let port = s.tcp_port();
        drop(s);
        assert!(dir.exists());
        assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "still running");
        // Clean up by hand (and reap: it is still our child).
        unsafe { libc::kill(pid, libc::SIGINT) };
        let mut status = 0;
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(!dir.join("data/postmaster.pid").exists(), "port {port}");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Without `keep`, the server goes when the process that started it dies
    /// (even from a test thread that has ended meanwhile).
    #[test]
    fn server_dies_with_parent() {
        use std::io::BufRead;
        if std::env::var_os("CUTOVER_SCRATCH_CHILD").is_some() {
            let s = std::thread::spawn(|| Scratch::start(false).unwrap())
                .join()
                .unwrap();
            println!(
                "SCRATCH {} {}",
                s.child.as_ref().unwrap().id(),
                s.dir.display()
            );
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "tests::server_dies_with_parent", "--nocapture"])
            .env("CUTOVER_SCRATCH_CHILD", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = io::BufReader::new(child.stdout.take().unwrap());
        let line = out
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("SCRATCH "))
            .expect("child started a cluster");
        let mut parts = line.split(' ').skip(1);
        let pid: libc::pid_t = parts.next().unwrap().parse().unwrap();
        let dir = PathBuf::from(parts.next().unwrap());
        assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "server running");
        child.kill().unwrap();
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_ne!(
            unsafe { libc::kill(pid, 0) },
            0,
            "server {pid} outlived its parent"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
