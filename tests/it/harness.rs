//! The test harness: one throwaway PostgreSQL cluster per test run (started with cutover's
//! own scratch module, as the server's unprivileged user when run as root), a fresh database
//! per test, the Podium fixture built per test, and the real `cutover` binary run as a user
//! would run it. A test that cannot get its database fails: nothing here skips.

use cutover_testkit::Scratch;
#[allow(unused_imports)]
pub use cutover_testkit::pg::{one, sql, try_sql};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

static CLUSTER: OnceLock<Mutex<Option<Scratch>>> = OnceLock::new();
static INFO: OnceLock<(String, u16)> = OnceLock::new();

extern "C" fn stop_cluster() {
    if let Some(s) = CLUSTER
        .get()
        .and_then(|m| m.lock().ok())
        .and_then(|mut g| g.take())
    {
        let _ = s.stop();
    }
}

/// (superuser URL to database "postgres", TCP port) of this run's cluster.
fn cluster() -> &'static (String, u16) {
    INFO.get_or_init(|| {
        let s = Scratch::start(false)
            .expect("the test cluster must start (PostgreSQL server binaries installed?)");
        let info = (s.url("postgres"), s.tcp_port());
        CLUSTER.set(Mutex::new(Some(s))).ok();
        // The test harness ends with process::exit, which runs atexit handlers.
        unsafe { libc::atexit(stop_cluster) };
        info
    })
}

pub fn tcp_port() -> u16 {
    cluster().1
}

/// A database of its own for one test.
pub struct Db {
    pub name: String,
    pub url: String,
    pub dir: PathBuf,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Db {
    /// A fresh database named after the test with the Podium schema applied, and a fresh
    /// copy of the Podium SQLite fixture in a private directory.
    pub fn new(test: &str) -> Db {
        let db = Db::bare(test);
        let schema = std::fs::read_to_string(repo().join("fixtures/podium/schema.sql")).unwrap();
        sql(&db.url, &schema);
        db.build_sqlite("legacy.sqlite", &[]);
        db
    }

    /// A fresh empty database and a private directory, nothing else.
    pub fn bare(test: &str) -> Db {
        let admin = &cluster().0;
        let name = format!("t_{test}");
        sql(
            admin,
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        );
        sql(admin, &format!("CREATE DATABASE \"{name}\""));
        let url = admin.replacen("/postgres?", &format!("/{name}?"), 1);
        let dir = std::env::temp_dir().join(format!("cutover-it-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Db { name, url, dir }
    }

    /// The fixture SQLite file of this test.
    pub fn sqlite(&self) -> PathBuf {
        self.dir.join("legacy.sqlite")
    }

    /// Build `file` from fixtures/podium/legacy.sql plus extra statements.
    pub fn build_sqlite(&self, file: &str, extra: &[&str]) -> PathBuf {
        let path = self.dir.join(file);
        let _ = std::fs::remove_file(&path);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            &std::fs::read_to_string(repo().join("fixtures/podium/legacy.sql")).unwrap(),
        )
        .unwrap();
        for s in extra {
            conn.execute_batch(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        path
    }

    /// Change this test's SQLite fixture.
    pub fn edit_sqlite(&self, statements: &str) {
        let conn = rusqlite::Connection::open(self.sqlite()).unwrap();
        conn.execute_batch(statements).unwrap();
    }

    pub fn sql(&self, q: &str) -> Vec<Vec<Option<String>>> {
        sql(&self.url, q)
    }

    pub fn one(&self, q: &str) -> String {
        one(&self.url, q)
    }

    /// `cutover CMD` with the Podium mapping, this test's SQLite file and database.
    pub fn cutover(&self, cmd: &str, extra: &[&str]) -> Run {
        self.cutover_at(&self.url, cmd, extra)
    }

    /// The same against another URL for this database (another user, TCP, TLS …).
    pub fn cutover_at(&self, url: &str, cmd: &str, extra: &[&str]) -> Run {
        let source = format!("sqlite:{}", self.sqlite().display());
        let mapping = repo().join("mappings/podium-sqlite.toml");
        let mut args = vec![
            cmd,
            "-m",
            mapping.to_str().unwrap(),
            "--source",
            &source,
            "--target",
            url,
        ];
        args.extend_from_slice(extra);
        run(&args)
    }

    /// Every mapped table's rows in id order plus every sequence's state: equal dumps mean
    /// an unchanged target.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for t in [
            "users",
            "events",
            "event_attendees",
            "projects",
            "project_collaborators",
            "referrals",
            "votes",
            "alembic_version",
        ] {
            let rows = self.sql(&format!("SELECT to_jsonb(t)::text FROM {t} t ORDER BY 1"));
            out.push_str(&format!("-- {t}\n"));
            for r in rows {
                out.push_str(r[0].as_deref().unwrap_or("NULL"));
                out.push('\n');
            }
        }
        for r in self.sql("SELECT sequencename, last_value::text FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1") {
            out.push_str(&format!("seq {} {:?}\n", r[0].as_deref().unwrap_or(""), r[1]));
        }
        out
    }

    /// (inserted, updated, deleted) tuples ever, across the mapped tables.
    pub fn tuple_stats(&self) -> (i64, i64, i64) {
        // A backend flushes its counts as it exits, just after its client has gone: wait for
        // the last run's backend to leave, so its rows are counted.
        for _ in 0..500 {
            let others = self.one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            );
            if others == "0" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let r = &self.sql(
            "SELECT sum(n_tup_ins)::text, sum(n_tup_upd)::text, sum(n_tup_del)::text FROM pg_stat_user_tables WHERE schemaname = 'public' AND relname <> 'alembic_version'",
        )[0];
        let n = |i: usize| r[i].as_deref().unwrap_or("0").parse::<i64>().unwrap();
        (n(0), n(1), n(2))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a run of the binary printed and how it exited.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
    #[track_caller]
    pub fn ok(&self) -> &Run {
        assert_eq!(self.code, 0, "expected success:\n{}", self.all());
        self
    }
    #[track_caller]
    pub fn fails(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "expected exit {code}:\n{}", self.all());
        self
    }
}

/// Run the real binary, with no DATABASE_URL inherited.
pub fn run(args: &[&str]) -> Run {
    run_env(args, &[])
}

/// Where runs with a mapping of the checkout (`mappings/…`) keep their records: under
/// `target/`, not beside the mapping, where every test's throwaway target would leave one.
pub const STATE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/cutover-state");

/// Point `cmd` at [`STATE`] when `args` name a mapping of the checkout.
pub fn state_out_of_checkout(cmd: &mut Command, args: &[&str]) {
    let mappings = repo().join("mappings");
    if args
        .iter()
        .any(|a| a.starts_with("mappings/") || Path::new(a).starts_with(&mappings))
    {
        cmd.env("CUTOVER_STATE", STATE);
    }
}

pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cutover"));
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .current_dir(repo());
    state_out_of_checkout(&mut cmd, args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out: Output = cmd.output().expect("run cutover");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A cell of a load's summary table: the row whose first cell is `table`, the column headed
/// `column` (read from the header line, so the test does not depend on which columns show).
pub fn cell(stdout: &str, table: &str, column: &str) -> Option<String> {
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with("table "));
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let at = header.iter().position(|h| *h == column)?;
    let row = lines.find(|l| l.split_whitespace().next() == Some(table))?;
    row.split_whitespace().nth(at).map(str::to_string)
}

/// Write a file into a directory and return its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
