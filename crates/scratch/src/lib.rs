//! A throwaway ("scratch") PostgreSQL cluster: `initdb` into a fresh private
//! temp directory, run `postgres` as a child on a Unix socket there plus a
//! free 127.0.0.1 port, and remove it all afterwards. Used for dry runs and
//! tests, so they never need an existing server.
//!
//! PostgreSQL refuses to run as root; as root the cluster runs as an account of
//! its own, `cutover-scratch` (see `account`), as anyone else as the current user.
//! Starting a cluster also removes the directories of clusters whose run was
//! killed before it could (see `dir`). `script` and `dump` give a scratch
//! database a real target's schema: what `pg_dump -s` writes, as plain SQL.

mod account;
mod dir;
pub mod dump;
pub mod script;
mod server;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;

use anyhow::{Context, Result, anyhow};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

pub use account::ACCOUNT;
use server::Launch;
pub use server::find_bindir;

/// What a URL component keeps as it is: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

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
            server::stop_child(child)?;
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

fn start_inner(keep: bool, tls: Option<(&str, &str)>) -> Result<Scratch> {
    let bindir = find_bindir()?;
    let run_as = account::run_as()?;
    let base = dir::base();
    dir::clear_stale(&base, run_as);
    let dir = dir::make_private(&base)?;
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
    server::initdb(&bindir, &dir, run_as)?;

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
        let port = server::free_port()?;
        match server::launch(&bindir, &dir, port, keep, run_as, &extra) {
            Ok(child) => {
                scratch.child = Some(child);
                if keep {
                    // Never cleared as stale: the user asked for it to stay.
                    fs::write(dir.join(dir::KEPT_MARK), "")
                        .with_context(|| format!("marking {} as kept", dir.display()))?;
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

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

    fn is_root() -> bool {
        unsafe { libc::geteuid() == 0 }
    }

    /// The effective uid of a running process.
    fn uid_of(pid: u32) -> u32 {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    }

    /// As root, what the cluster's superuser can do as the server's OS user reaches nothing
    /// of the `postgres` account's: the server runs as an account of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_server_is_an_identity_of_its_own() {
        let s = tokio::task::spawn_blocking(|| Scratch::start(false))
            .await
            .unwrap()
            .unwrap();
        let c = connect(&s.url("postgres")).await;
        c.batch_execute("CREATE TEMP TABLE who (u text); COPY who FROM PROGRAM 'id -un'")
            .await
            .unwrap();
        let who: String = c.query_one("SELECT u FROM who", &[]).await.unwrap().get(0);
        if !is_root() {
            let me = std::env::var("USER").unwrap_or_default();
            assert!(me.is_empty() || who == me, "{who} vs {me}");
            return;
        }
        assert_eq!(who, ACCOUNT, "COPY TO PROGRAM runs as");
        let account = account::lookup_user(ACCOUNT).unwrap();
        let backend: i32 = c
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let postmaster = s.child.as_ref().unwrap().id();
        for pid in [postmaster, backend as u32] {
            assert_eq!(uid_of(pid), account.uid, "process {pid}");
        }
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(s.data_dir()).unwrap();
        assert_eq!(meta.uid(), account.uid);
        assert_eq!(meta.mode() & 0o077, 0, "private: {:o}", meta.mode());

        // A file only `postgres` may read, in a directory only it may enter: out of reach.
        let Some(pg) = account::lookup_user("postgres") else {
            return;
        };
        let secret_dir =
            std::env::temp_dir().join(format!("cutover-postgres-only-{}", std::process::id()));
        let _ = fs::remove_dir_all(&secret_dir);
        fs::create_dir(&secret_dir).unwrap();
        let secret = secret_dir.join("secret");
        fs::write(&secret, "the real cluster's secret\n").unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(&secret_dir, fs::Permissions::from_mode(0o700)).unwrap();
        for p in [&secret, &secret_dir] {
            std::os::unix::fs::chown(p, Some(pg.uid), Some(pg.gid)).unwrap();
        }
        let read = c
            .query_one("SELECT pg_read_file($1)", &[&secret.to_str().unwrap()])
            .await;
        let copied = c
            .batch_execute(&format!(
                "CREATE TEMP TABLE leak (l text); COPY leak FROM PROGRAM 'cat {}'",
                secret.display()
            ))
            .await;
        let _ = fs::remove_dir_all(&secret_dir);
        let err = read.expect_err("pg_read_file read a postgres-only file");
        assert!(
            err.as_db_error()
                .is_some_and(|d| d.message().contains("Permission denied")),
            "{err:?}"
        );
        assert!(
            copied.is_err(),
            "COPY FROM PROGRAM read a postgres-only file"
        );
        // And so is the data directory of a real cluster, if the machine has one.
        for real in fs::read_dir("/var/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
        {
            let main = real.path().join("main");
            if main.is_dir() {
                let listed = c
                    .query_one(
                        "SELECT count(*) FROM pg_ls_dir($1)",
                        &[&main.to_str().unwrap()],
                    )
                    .await;
                assert!(listed.is_err(), "listed {}", main.display());
            }
        }
    }

    /// A run that was SIGKILLed left its directory; the next cluster clears it.
    #[test]
    fn starting_a_cluster_clears_what_a_killed_run_left() {
        let mut c = Command::new("true").spawn().unwrap();
        let dead = c.id();
        c.wait().unwrap();
        let stale = dir::base().join(format!("cutover-scratch-{dead}-5eed5eed"));
        fs::create_dir_all(stale.join("data")).unwrap();
        fs::write(stale.join("data/PG_VERSION"), "15\n").unwrap();
        fs::write(stale.join("postgres.log"), "the killed run's log\n").unwrap();
        let s = Scratch::start(false).unwrap();
        assert!(!stale.exists(), "{} left behind", stale.display());
        assert!(s.data_dir().exists());
        s.stop().unwrap();
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
