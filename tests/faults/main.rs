//! Fault injection (`make test-faults`): the real binary is killed, interrupted, cut off from
//! its server, timed out, raced and fed a misbehaving Airtable API. Every case asserts the
//! same two things: the target is either exactly as before or fully loaded (compared with
//! `Db::dump()`), and running the same load again converges to exactly what a clean load
//! gives. Slow-ish (a few minutes), so it is its own test binary, not part of `cargo test`.

#[allow(dead_code)]
#[path = "../it/harness.rs"]
mod harness;

mod airtable;
mod commit;
mod export;
mod pg;

use harness::{Db, Run, repo};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What a clean load of the Podium SQLite fixture gives, computed once.
pub fn clean_dump() -> &'static str {
    static CLEAN: OnceLock<String> = OnceLock::new();
    CLEAN.get_or_init(|| {
        let db = Db::new("faults_clean_reference");
        db.cutover("load", &[]).ok();
        state(&db)
    })
}

/// A cutover run stopped at a checkpoint (`CUTOVER_TEST_PAUSE_AT`).
pub struct Paused {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Start `cutover <args>` with the pause hook at `point`; returns once it printed that it
/// paused there (fails the test after 60 s). With `resume`, the pause ends once that file
/// exists.
pub fn spawn_paused(
    args: &[&str],
    env: &[(&str, &str)],
    point: &str,
    resume: Option<&Path>,
) -> Paused {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cutover"));
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env("CUTOVER_TEST_PAUSE_AT", point)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    harness::state_out_of_checkout(&mut cmd, args);
    if let Some(r) = resume {
        cmd.env("CUTOVER_TEST_RESUME_FILE", r);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run cutover");
    let stdout = Arc::new(Mutex::new(String::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let mut out = child.stdout.take().unwrap();
    let so = stdout.clone();
    let r1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        so.lock().unwrap().push_str(&s);
    });
    let err = child.stderr.take().unwrap();
    let se = stderr.clone();
    let want = format!("cutover: paused at {point}");
    let r2 = std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if line == want {
                let _ = tx.send(());
            }
            let mut s = se.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let mut p = Paused {
        child,
        stdout,
        stderr,
        readers: vec![r1, r2],
    };
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = p.child.kill();
        let run = p.wait(Duration::from_secs(10));
        panic!("cutover never paused at {point}:\n{}", run.all());
    }
    p
}

impl Paused {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: a plain kill(2) on our own, not yet reaped, child.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({sig})");
    }

    /// Wait for the process to exit (fails the test after `limit`).
    pub fn wait(mut self, limit: Duration) -> Run {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "cutover did not exit within {limit:?}:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        use std::os::unix::process::ExitStatusExt;
        Run {
            code: status
                .code()
                .unwrap_or_else(|| -status.signal().unwrap_or(0)),
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
        }
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The arguments `Db::cutover` uses: the Podium SQLite mapping, this test's file and database.
pub fn podium_args(db: &Db, cmd: &str, target: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        cmd.into(),
        "-m".into(),
        repo()
            .join("mappings/podium-sqlite.toml")
            .to_string_lossy()
            .into_owned(),
        "--source".into(),
        format!("sqlite:{}", db.sqlite().display()),
        "--target".into(),
        target.into(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Backends other than the caller's connected to `db` (a killed client's backend lingers
/// until PostgreSQL notices the socket closed).
pub fn other_backends(db: &Db) -> i64 {
    db.one("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        .parse()
        .unwrap()
}

pub fn touch(p: &PathBuf) {
    std::fs::write(p, b"").unwrap();
}

/// `Db::dump()` plus each sequence's raw state: `pg_sequences.last_value` is NULL both for a
/// fresh sequence and for one `setval(…, false)` moved, so the dump alone cannot tell them
/// apart, while the application's next INSERT can.
pub fn state(db: &Db) -> String {
    let mut out = db.dump();
    for r in db.sql("SELECT schemaname, sequencename FROM pg_sequences ORDER BY 1, 2") {
        let name = format!(
            "\"{}\".\"{}\"",
            r[0].as_deref().unwrap(),
            r[1].as_deref().unwrap()
        );
        let v = db.sql(&format!(
            "SELECT last_value::text, is_called::text FROM {name}"
        ));
        out.push_str(&format!("raw {name} {:?}\n", v[0]));
    }
    out
}
