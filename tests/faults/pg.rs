//! Faults on the PostgreSQL side: the process killed or interrupted at each checkpoint, the
//! connection dropped, the server stopped and restarted, a statement timeout, two loads at once.

use crate::harness::{Db, one, repo, sql};
use crate::{clean_dump, other_backends, podium_args, spawn_paused, state, strs, touch};
use cutover_testkit::{Scratch, find_bindir};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Wait until no backend of a killed cutover is left on `db` (it holds the load lock until
/// PostgreSQL notices the client is gone), then run the load again: it must converge.
fn rerun_converges(db: &Db, expected: &str) {
    rerun_converges_with(db, expected, &[]);
}

fn rerun_converges_with(db: &Db, expected: &str, extra: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while other_backends(db) > 0 {
        assert!(
            Instant::now() < deadline,
            "the killed load's backend is still there after 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = db.cutover("load", extra);
    r.ok();
    // A re-run onto a target the killed run left as it was commits its changes, or — when
    // that target already holds the source — says there was nothing to do.
    assert!(
        r.stdout.contains("\ncommitted.\n") || r.stdout.contains("\nnothing to do: "),
        "{}",
        r.all()
    );
    assert_eq!(state(db), expected, "the re-run did not converge");
    db.cutover("verify", &[]).ok();
}

/// SIGKILL at `point` of a first load into the empty schema.
fn sigkill_first_load_at(point: &str, name: &str) {
    let db = Db::new(name);
    let before = state(&db);
    let args = podium_args(&db, "load", &db.url, &[]);
    let p = spawn_paused(&strs(&args), &[], point, None);
    p.signal(libc::SIGKILL);
    let r = p.wait(Duration::from_secs(10));
    assert_eq!(r.code, -libc::SIGKILL, "{}", r.all());
    assert_eq!(
        state(&db),
        before,
        "SIGKILL at {point} left the target changed"
    );
    rerun_converges(&db, clean_dump());
}

#[test]
fn sigkill_during_copy_of_an_early_table() {
    sigkill_first_load_at("copy:users", "f_kill_copy_users");
}

#[test]
fn sigkill_during_copy_of_a_late_table() {
    sigkill_first_load_at("copy:votes", "f_kill_copy_votes");
}

#[test]
fn sigkill_before_sequence_reset() {
    sigkill_first_load_at("sequences", "f_kill_sequences");
}

#[test]
fn sigkill_just_before_commit() {
    // Sequences have been reset by now: that must be rolled back with everything else.
    sigkill_first_load_at("commit", "f_kill_commit");
}

#[test]
fn sigkill_before_commit_of_a_rerun_keeps_the_loaded_target() {
    let db = Db::new("f_kill_rerun");
    db.cutover("load", &[]).ok();
    db.edit_sqlite(
        "INSERT INTO people (id, email, name, is_admin, created) VALUES (30, 'zed@example.com', 'Zed', 0, 1700000000);
         UPDATE people SET name = 'Bob Renamed' WHERE id = 2;
         DELETE FROM votes WHERE id = 30;",
    );
    let loaded = state(&db);
    let args = podium_args(&db, "load", &db.url, &["--prune"]);
    let p = spawn_paused(&strs(&args), &[], "commit", None);
    p.signal(libc::SIGKILL);
    p.wait(Duration::from_secs(10));
    assert_eq!(state(&db), loaded, "the loaded target changed");
    // Concretely: --prune had deleted the largest vote id inside the killed transaction; a
    // sequence reset that outlived the rollback would hand that id out again.
    db.sql(
        "BEGIN; INSERT INTO votes (voter_id, project_id, event_id) SELECT id, 13, 4 FROM users ORDER BY id LIMIT 5; ROLLBACK;",
    );
    // The re-run lands exactly where a fresh load of the changed source does.
    let fresh = Db::new("f_kill_rerun_fresh");
    std::fs::copy(db.sqlite(), fresh.sqlite()).unwrap();
    fresh.cutover("load", &[]).ok();
    rerun_converges_with(&db, &state(&fresh), &["--prune"]);
    assert_eq!(
        db.one("SELECT display_name FROM users WHERE id = 2"),
        "Bob Renamed"
    );
}

#[test]
fn sigint_rolls_back_and_exits_promptly() {
    let db = Db::new("f_sigint");
    let before = state(&db);
    let args = podium_args(&db, "load", &db.url, &[]);
    let p = spawn_paused(&strs(&args), &[], "copy:projects", None);
    let t = Instant::now();
    p.signal(libc::SIGINT);
    let r = p.wait(Duration::from_secs(10));
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "Ctrl-C took {:?}",
        t.elapsed()
    );
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.stderr.contains("interrupted (Ctrl-C)") && r.stderr.contains("rolled it back"),
        "{}",
        r.all()
    );
    assert_eq!(state(&db), before);
    rerun_converges(&db, clean_dump());
}

/// SIGTERM (what systemd, Kubernetes and CI send) is handled like Ctrl-C: rolled back,
/// cleaned up, exit 3 — including the scratch cluster of a `--target scratch` load.
#[test]
fn sigterm_rolls_back_like_ctrl_c_and_removes_the_scratch_cluster() {
    let db = Db::new("f_sigterm");
    let before = state(&db);
    let args = podium_args(&db, "load", &db.url, &[]);
    let p = spawn_paused(&strs(&args), &[], "copy:projects", None);
    p.signal(libc::SIGTERM);
    let r = p.wait(Duration::from_secs(10));
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.stderr.contains("interrupted (SIGTERM)") && r.stderr.contains("rolled it back"),
        "{}",
        r.all()
    );
    assert_eq!(state(&db), before);

    let schema = repo().join("fixtures/podium/schema.sql");
    let source = format!("sqlite:{}", db.sqlite().display());
    let mapping = repo().join("mappings/podium-sqlite.toml");
    let args = [
        "load",
        "-m",
        mapping.to_str().unwrap(),
        "--source",
        &source,
        "--target",
        "scratch",
        "--schema",
        schema.to_str().unwrap(),
    ];
    let p = spawn_paused(&args, &[], "copy:projects", None);
    let own = format!("cutover-scratch-{}-", p.pid());
    let own_dirs = || -> usize {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&own))
            .count()
    };
    assert_eq!(own_dirs(), 1, "the paused load runs its scratch cluster");
    let server: libc::pid_t = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(&own))
        .and_then(|e| std::fs::read_to_string(e.path().join("data/postmaster.pid")).ok())
        .and_then(|s| s.lines().next()?.trim().parse().ok())
        .expect("the scratch server's pid");
    p.signal(libc::SIGTERM);
    let r = p.wait(Duration::from_secs(20));
    assert_eq!(r.code, 3, "{}", r.all());
    assert_eq!(
        own_dirs(),
        0,
        "the scratch cluster outlived SIGTERM:\n{}",
        r.all()
    );
    // And its server is gone with it.
    assert_ne!(
        unsafe { libc::kill(server, 0) },
        0,
        "the scratch server outlived SIGTERM"
    );
}

#[test]
fn dropped_connection_mid_load_fails_clearly_and_rolls_back() {
    let db = Db::new("f_dropped");
    let before = state(&db);
    let resume = db.dir.join("resume");
    let args = podium_args(&db, "load", &db.url, &[]);
    let p = spawn_paused(&strs(&args), &[], "merge:events", Some(&resume));
    let killed = db.one(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    assert_eq!(killed, "1", "expected cutover's one connection");
    touch(&resume);
    let r = p.wait(Duration::from_secs(30));
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.stderr.contains("error:") && !r.stderr.contains("panicked"),
        "{}",
        r.all()
    );
    assert!(
        r.stderr.to_lowercase().contains("connection") || r.stderr.contains("terminat"),
        "the error should say the connection went away: {}",
        r.all()
    );
    assert_eq!(state(&db), before);
    rerun_converges(&db, clean_dump());
}

/// `pg_ctl` as the cluster's owner (the unprivileged user when run as root).
fn pg_ctl(dir: &Path, args: &[&str]) {
    let data = dir.join("data");
    let meta = std::fs::metadata(&data).unwrap();
    let status = Command::new(find_bindir().unwrap().join("pg_ctl"))
        .arg("-D")
        .arg(&data)
        .args(args)
        .uid(meta.uid())
        .gid(meta.gid())
        .current_dir(dir)
        .status()
        .expect("run pg_ctl");
    assert!(status.success(), "pg_ctl {args:?} failed");
}

/// Stops the restarted server (which `Scratch` does not know about) even if the test fails.
struct Restarted<'a>(&'a Path);
impl Drop for Restarted<'_> {
    fn drop(&mut self) {
        pg_ctl(self.0, &["-m", "immediate", "-w", "stop"]);
    }
}

#[test]
fn server_stopped_and_restarted_mid_load() {
    // A cluster of its own: this test stops it.
    let s = Scratch::start(false).expect("scratch cluster");
    let dir = s.data_dir().to_path_buf();
    sql(&s.url("postgres"), "CREATE DATABASE podium");
    let db = Db {
        name: "podium".into(),
        url: s.url("podium"),
        dir: std::env::temp_dir().join(format!("cutover-faults-restart-{}", std::process::id())),
    };
    std::fs::create_dir_all(&db.dir).unwrap();
    sql(
        &db.url,
        &std::fs::read_to_string(crate::harness::repo().join("fixtures/podium/schema.sql"))
            .unwrap(),
    );
    db.build_sqlite("legacy.sqlite", &[]);
    let before = state(&db);

    let resume = db.dir.join("resume");
    let args = podium_args(&db, "load", &db.url, &[]);
    let p = spawn_paused(&strs(&args), &[], "merge:projects", Some(&resume));
    // Fast shutdown: the server ends every session, rolls back, and exits.
    pg_ctl(&dir, &["-m", "fast", "-w", "stop"]);
    touch(&resume);
    let r = p.wait(Duration::from_secs(30));
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(!r.stderr.contains("panicked"), "{}", r.all());
    assert!(
        r.stderr.contains("error:"),
        "a clear error is expected: {}",
        r.all()
    );

    // While it is down, a new load says it cannot connect.
    let r = db.cutover("load", &[]);
    r.fails(3);
    assert!(r.stderr.to_lowercase().contains("connect"), "{}", r.all());

    let port = s.tcp_port().to_string();
    pg_ctl(
        &dir,
        &[
            "-l",
            dir.join("data/restart.log").to_str().unwrap(),
            "-o",
            &format!(
                "-k {} -p {port} -c listen_addresses=127.0.0.1",
                dir.display()
            ),
            "-w",
            "start",
        ],
    );
    let _guard = Restarted(&dir);
    assert_eq!(state(&db), before, "the target changed");
    db.cutover("load", &[]).ok();
    assert_eq!(state(&db), clean_dump(), "the re-run did not converge");
    let _ = one;
}

#[test]
fn statement_timeout_fails_clearly_and_changes_nothing() {
    let db = Db::new("f_stmt_timeout");
    let before = state(&db);
    let admin = db.url.replacen(&format!("/{}?", db.name), "/postgres?", 1);
    sql(
        &admin,
        &format!(
            "ALTER DATABASE \"{}\" SET statement_timeout = '1ms'",
            db.name
        ),
    );
    let r = db.cutover("load", &[]);
    sql(
        &admin,
        &format!("ALTER DATABASE \"{}\" RESET statement_timeout", db.name),
    );
    r.fails(3);
    assert!(
        r.stderr
            .contains("canceling statement due to statement timeout"),
        "{}",
        r.all()
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.all());
    assert_eq!(state(&db), before);
    rerun_converges(&db, clean_dump());
}

#[test]
fn a_second_load_fails_fast_and_does_not_interleave() {
    let db = Db::new("f_concurrent");
    let resume = db.dir.join("resume");
    let args = podium_args(&db, "load", &db.url, &[]);
    let first = spawn_paused(&strs(&args), &[], "merge:users", Some(&resume));
    let t = Instant::now();
    let second = db.cutover("load", &[]);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the second load waited {:?}",
        t.elapsed()
    );
    second.fails(3);
    assert!(
        second
            .stderr
            .contains("another `cutover load` is running against this database"),
        "{}",
        second.all()
    );
    // Nothing of either is visible yet. The first load bulk-loads the empty tables, which
    // holds them locked until it commits: a reader waits (here: times out) or sees them empty.
    for t in ["users", "votes"] {
        match crate::harness::try_sql(
            &db.url,
            &format!("SET lock_timeout = '500ms'; SELECT count(*) FROM {t}"),
        ) {
            Ok(rows) => assert_eq!(
                rows[0][0].as_deref(),
                Some("0"),
                "{t} visible before commit"
            ),
            Err(e) => assert!(e.contains("lock timeout"), "{t}: {e}"),
        }
    }
    touch(&resume);
    let r = first.wait(Duration::from_secs(60));
    r.ok();
    assert_eq!(state(&db), clean_dump(), "the first load was disturbed");

    // And the other way round: a second load whose rival is killed gets through afterwards.
    let p = spawn_paused(
        &strs(&podium_args(&db, "load", &db.url, &["--prune"])),
        &[],
        "merge:users",
        None,
    );
    db.cutover("load", &[]).fails(3);
    p.signal(libc::SIGKILL);
    p.wait(Duration::from_secs(10));
    rerun_converges(&db, clean_dump());
}
