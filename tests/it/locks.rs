//! A load and a live application on one database: cutover's load lock names whoever holds
//! it, and the tables are locked up front, parents first, with a bounded wait, so a busy table
//! makes the load stop at once with the holder named instead of stalling or deadlocking.

use crate::harness::Db;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A psql session (as an application would hold one) that runs `sql` and then sleeps with
/// its transaction open until dropped. Returns once `sql` has run.
struct Session {
    child: Child,
    url: String,
    app: String,
}

impl Session {
    fn hold(db: &Db, app: &str, sql: &str) -> Session {
        let psql = cutover_testkit::find_bindir().unwrap().join("psql");
        let mut child = Command::new(psql)
            .arg(&db.url)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .env("PGAPPNAME", app)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{sql}\n\\echo HELD\nSELECT pg_sleep(120);").unwrap();
        // Keep stdin open: psql waits for more input after the sleep.
        std::mem::forget(stdin);
        let out = child.stdout.take().unwrap();
        let line = BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.trim() == "HELD");
        assert!(line.is_some(), "psql did not take its lock");
        Session {
            child,
            url: db.url.clone(),
            app: app.to_string(),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A backend asleep in pg_sleep does not notice its client went: end it.
        crate::harness::sql(
            &self.url,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{}'",
                self.app
            ),
        );
        let gone = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{}'",
            self.app
        );
        for _ in 0..500 {
            if crate::harness::one(&self.url, &gone) == "0" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

#[test]
fn a_squatter_on_the_load_lock_is_named() {
    let db = Db::new("locks_squat");
    let squatter = Session::hold(
        &db,
        "not-cutover",
        &format!(
            "SELECT pg_advisory_lock({}, hashtext(current_database()));",
            0x6375_7476
        ),
    );
    let pid = db.one("SELECT pid FROM pg_stat_activity WHERE application_name = 'not-cutover'");
    let r = db.cutover("load", &[]);
    r.fails(3);
    assert!(
        r.stderr.contains(&format!("pid {pid}"))
            && r.stderr.contains("not-cutover")
            && r.stderr.contains("is not cutover"),
        "{}",
        r.all()
    );
    assert_eq!(db.one("SELECT count(*) FROM users"), "0");
    drop(squatter);
    db.cutover("load", &[]).ok();
}

#[test]
fn a_table_in_use_stops_the_load_at_once_naming_the_holder() {
    let db = Db::new("locks_busy");
    db.cutover("load", &[]).ok();
    // An application transaction that has written to `votes` and is still open.
    db.sql(&format!(
        "ALTER DATABASE \"{}\" SET lock_timeout = '1s'",
        db.name
    ));
    let app = Session::hold(
        &db,
        "the-app",
        "BEGIN; UPDATE votes SET created_at = created_at WHERE id = (SELECT min(id) FROM votes);",
    );
    let before = db.dump();
    let started = std::time::Instant::now();
    let r = db.cutover("load", &[]);
    r.fails(3);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        r.stderr.contains("table `votes` is in use")
            && r.stderr.contains("the-app")
            && r.stderr.contains("lock_timeout 1s"),
        "{}",
        r.all()
    );
    drop(app);
    assert_eq!(db.dump(), before);
    db.cutover("load", &[]).ok();
}
