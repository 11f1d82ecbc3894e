//! What cutover shows and writes, run as a user runs it: progress through every phase (as
//! lines in a log, as bars on a terminal, nothing with --quiet), the 80-column summary, the
//! JSON report (also for a failed run, also on stdout), the rejects file with its codes and
//! source rows, `check` as a plan, exit codes, completions and the man page.

use crate::harness::{Db, cell, repo, run};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::FromRawFd;
use std::process::{Command, Stdio};

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The podium load's arguments for this test's database, as a spawned command.
fn podium(db: &Db, cmd: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cutover"));
    c.args([
        cmd,
        "-m",
        repo().join("mappings/podium-sqlite.toml").to_str().unwrap(),
        "--source",
        &format!("sqlite:{}", db.sqlite().display()),
        "--target",
        &db.url,
    ])
    .args(extra)
    .env_remove("DATABASE_URL")
    .env("CUTOVER_STATE", crate::harness::STATE)
    .current_dir(repo())
    .stdin(Stdio::null());
    c
}

#[test]
fn off_a_terminal_each_phase_is_a_line_as_it_happens() {
    let db = Db::new("out_lines");
    let resume = db.dir.join("resume");
    let mut child = podium(&db, "load", &[])
        .env("CUTOVER_TEST_PAUSE_AT", "commit")
        .env("CUTOVER_TEST_RESUME_FILE", &resume)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Everything up to the commit is on stderr while the load waits before COMMIT.
    let mut before = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line == "cutover: paused at commit" {
            break;
        }
        before.push(line);
    }
    std::fs::write(&resume, "").unwrap();
    let after: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success());
    let before = before.join("\n");
    // The target first, without its password.
    assert!(
        before.starts_with("load: sqlite:") && before.contains(" -> postgresql://"),
        "{before}"
    );
    for phase in [
        "] setup ",
        "] users: copy ",
        "] users: resolve ",
        "] users: write ",
        "] votes: copy ",
        "] votes: write ",
        "] rebuild ",
        "] sequences ",
        "] counts ",
    ] {
        assert!(
            before.contains(phase),
            "{phase:?} missing before COMMIT:\n{before}"
        );
    }
    assert!(
        before.contains("] users: copy ") && before.contains(", 14 rows"),
        "{before}"
    );
    let after = after.join("\n");
    assert!(after.contains("] commit "), "{after}");
    assert!(after.contains("] finished in "), "{after}");
}

#[test]
fn quiet_prints_the_summary_and_nothing_else() {
    let db = Db::new("out_quiet");
    let r = db.cutover("load", &["--quiet"]);
    r.ok();
    assert_eq!(r.stderr, "", "stderr with --quiet");
    assert!(r.stdout.starts_with("table "), "{}", r.stdout);
}

/// Run `podium load` with stderr on a pseudo-terminal; what the terminal received.
fn on_a_terminal(db: &Db) -> String {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty fills in two new descriptors; each is owned by exactly one File below.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty");
    let mut cmd = podium(db, "load", &[]);
    // SAFETY: `slave` is ours and handed over whole to the child's stderr.
    cmd.stdout(Stdio::null())
        .stderr(unsafe { Stdio::from_raw_fd(slave) });
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    // SAFETY: `master` is ours alone.
    let mut tty = unsafe { std::fs::File::from_raw_fd(master) };
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        // Reading ends with EIO once the child (the only other holder) is gone.
        let _ = tty.read_to_end(&mut seen);
        String::from_utf8_lossy(&seen).into_owned()
    });
    assert!(child.wait().unwrap().success());
    reader.join().unwrap()
}

#[test]
fn on_a_terminal_bars_follow_the_phases_with_an_eta_and_the_time_at_the_end() {
    let db = Db::new("out_tty");
    let seen = on_a_terminal(&db);
    assert!(seen.contains("overall"), "{seen}");
    assert!(seen.contains("ETA"), "{seen}");
    assert!(seen.contains("14/14"), "{seen}");
    assert!(seen.contains("100%"), "{seen}");
    assert!(seen.contains("done in"), "{seen}");
    // Not the log lines.
    assert!(!seen.contains("] users: copy"), "{seen}");
}

#[test]
fn the_summary_fits_80_columns_with_totals_separators_and_times() {
    let db = Db::new("out_summary");
    db.edit_sqlite(
        "WITH RECURSIVE n(i) AS (SELECT 100 UNION ALL SELECT i + 1 FROM n WHERE i < 1199)
         INSERT INTO people (id, email, name, is_admin, created)
         SELECT i, 'u' || i || '@example.org', 'U' || i, 0, 1700000000 FROM n;
         UPDATE people SET created = 'not a date' WHERE id BETWEEN 100 AND 111;",
    );
    let r = db.cutover("load", &["--max-rejects", "20"]);
    r.ok();
    for line in r.stdout.lines() {
        assert!(
            line.chars().count() <= 80,
            "wider than 80: {line:?}\n{}",
            r.stdout
        );
    }
    assert_eq!(cell(&r.stdout, "users", "read").as_deref(), Some("1,114"));
    assert_eq!(cell(&r.stdout, "users", "rejected").as_deref(), Some("12"));
    assert_eq!(cell(&r.stdout, "total", "read").as_deref(), Some("1,183"));
    assert!(
        cell(&r.stdout, "total", "time").is_some_and(|t| t.ends_with('s')),
        "{}",
        r.stdout
    );
    // Twelve rejects of one kind: one group with a count, not twelve lines.
    assert!(
        r.stdout
            .contains("12 × users.created_at, convert (legacy ids 100, 101, 102, 103, 104, …)"),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stdout.matches("users.created_at").count(),
        1,
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("references set to NULL (on_missing = \"null\"): referrals 1\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("committed.\n"), "{}", r.stdout);

    // A re-run that changes nothing says so.
    let r = db.cutover("load", &["--max-rejects", "20"]);
    r.ok();
    assert!(r.stdout.contains("\nnothing to do: "), "{}", r.stdout);
    assert!(!r.stdout.contains("committed."), "{}", r.stdout);
    // A dry run says what it would do.
    db.edit_sqlite("UPDATE people SET name = 'Changed' WHERE id = 1;");
    let r = db.cutover("load", &["--dry-run", "--max-rejects", "20"]);
    r.ok();
    assert!(
        r.stdout
            .contains("dry run: would insert 0, update 1 and delete 0 rows; rolled back"),
        "{}",
        r.stdout
    );
}

#[test]
fn the_json_report_records_the_run() {
    let db = Db::new("out_report");
    let report = db.dir.join("report.json");
    let r = db.cutover("load", &["--report", report.to_str().unwrap()]);
    r.ok();
    let v = json(&report);
    assert_eq!(v["format"], "cutover-report");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["command"], "load");
    assert_eq!(v["cutover_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["outcome"], "committed");
    assert_eq!(v["exit_code"], 0);
    for time in ["started_at", "finished_at"] {
        let t = v[time].as_str().unwrap();
        assert!(t.len() >= 20 && t.ends_with('Z'), "{time}: {t}");
    }
    assert!(v["seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(v["source"]["kind"], "sqlite");
    assert!(
        v["source"]["location"]
            .as_str()
            .unwrap()
            .ends_with("legacy.sqlite")
    );
    assert!(v["target"].as_str().unwrap().starts_with("postgresql://"));
    let mapping = repo().join("mappings/podium-sqlite.toml");
    let sha: String = Sha256::digest(std::fs::read(&mapping).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v["mapping"]["sha256"], sha.as_str());
    assert!(
        v["mapping"]["path"]
            .as_str()
            .unwrap()
            .ends_with("podium-sqlite.toml")
    );
    assert_eq!(v["alembic_revision"], "a1b2c3d4e5f6");
    let users = &v["tables"][0];
    assert_eq!(users["table"], "users");
    assert_eq!(users["read"], 14);
    for phase in ["copy", "resolve", "write"] {
        assert!(users["seconds"][phase].is_f64(), "{users}");
    }
    for phase in ["setup", "rebuild", "sequences", "counts", "commit"] {
        assert!(v["phases"][phase].is_f64(), "{}", v["phases"]);
    }
    let seq = &v["sequences_reset"][0];
    assert_eq!(seq["table"], "users");
    assert_eq!(seq["column"], "id");
    assert_eq!(seq["next"], 25);
    let rebuilt = v["bulk_load"]["rebuilt"].as_array().unwrap();
    assert_eq!(
        rebuilt
            .iter()
            .filter(|c| c["kind"] == "foreign_key")
            .count(),
        13
    );
    assert!(
        rebuilt
            .iter()
            .any(|c| c["table"] == "users" && c["name"] == "users_pkey")
    );
    let by_reason = &v["rejects"]["by_reason"][0];
    assert_eq!(by_reason["table"], "votes");
    assert_eq!(by_reason["code"], "skipped_reference");
    assert_eq!(by_reason["count"], 1);
    assert!(v["error"].is_null());
}

#[test]
fn a_failed_run_still_writes_its_report_naming_the_error() {
    let db = Db::new("out_failed");
    db.edit_sqlite("UPDATE people SET created = 'not a date' WHERE id = 8;");
    let report = db.dir.join("report.json");
    let r = db.cutover("load", &["--report", report.to_str().unwrap()]);
    r.fails(1);
    let v = json(&report);
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["error"]["kind"], "data");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than --max-rejects 0"),
        "{}",
        v["error"]
    );
    assert_eq!(v["committed"], false);
    // A run that stops before loading: the wrong Alembic revision.
    db.sql("UPDATE alembic_version SET version_num = 'ffff0000'");
    let r = db.cutover("load", &["--report", report.to_str().unwrap()]);
    r.fails(2);
    let v = json(&report);
    assert_eq!(v["error"]["kind"], "usage");
    assert_eq!(v["exit_code"], 2);
    assert_eq!(v["alembic_revision"], "ffff0000");
    assert!(v["tables"].is_null(), "{v}");
}

#[test]
fn report_dash_puts_the_json_alone_on_stdout() {
    let db = Db::new("out_stdout");
    let r = db.cutover("load", &["--report", "-"]);
    r.ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", r.stdout));
    assert_eq!(v["outcome"], "committed");
    assert!(!repo().join("-").exists(), "a file named - was created");
    // The summary went to stderr instead.
    assert!(r.stderr.contains("\ntable "), "{}", r.stderr);
    assert!(r.stderr.contains("committed."), "{}", r.stderr);
    // verify and check take it too.
    let r = db.cutover("verify", &["--report", "-"]);
    r.ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["command"], "verify");
    assert_eq!(v["outcome"], "matches");
    assert_eq!(v["tables"][0]["verify"]["equal"], 14);
    let file = db.dir.join("check.json");
    db.cutover("check", &["--report", file.to_str().unwrap()])
        .ok();
    let v = json(&file);
    assert_eq!(v["command"], "check");
    assert_eq!(v["outcome"], "passed");
}

#[test]
fn rejects_carry_a_code_the_source_table_and_optionally_the_source_row() {
    let db = Db::new("out_rejects");
    db.edit_sqlite("UPDATE people SET created = 'not a date' WHERE id = 8;");
    let rejects = db.dir.join("rejects.csv");
    let r = db.cutover(
        "load",
        &[
            "--max-rejects",
            "10",
            "--rejects",
            rejects.to_str().unwrap(),
            "--rejects-with-rows",
        ],
    );
    r.ok();
    let mut csv = csv::Reader::from_path(&rejects).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "table",
            "legacy_id",
            "column",
            "value",
            "reason",
            "code",
            "source_table",
            "source_row"
        ]
    );
    let rows: Vec<Vec<String>> = csv
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    let find = |table: &str, id: &str| {
        rows.iter()
            .find(|r| r[0] == table && r[1] == id)
            .unwrap_or_else(|| panic!("no reject {table} {id}: {rows:?}"))
    };
    // A value that does not convert, found while reading.
    let user = find("users", "8");
    assert_eq!((user[5].as_str(), user[6].as_str()), ("convert", "people"));
    let row: serde_json::Value = serde_json::from_str(&user[7]).unwrap();
    assert_eq!(row["id"], 8);
    assert_eq!(row["created"], "not a date");
    // A reference to the rejected user, found while resolving: its row read again.
    let project = find("projects", "3");
    assert_eq!(project[5], "parent_rejected");
    let row: serde_json::Value = serde_json::from_str(&project[7]).unwrap();
    assert_eq!(row["id"], 3);
    let vote = find("votes", "17");
    assert_eq!(
        (vote[5].as_str(), vote[6].as_str()),
        ("skipped_reference", "votes")
    );
    assert!(rows.iter().all(|r| !r[7].is_empty()), "{rows:?}");
    // --rejects-with-rows needs --rejects.
    db.cutover("load", &["--rejects-with-rows"]).fails(2);
}

#[test]
fn check_shows_the_plan_and_what_the_load_touches() {
    let db = Db::new("out_check");
    db.edit_sqlite("ALTER TABLE people ADD COLUMN nickname TEXT;");
    db.sql(
        "ALTER TABLE users ADD COLUMN bio text;
         CREATE FUNCTION out_check_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
         CREATE TRIGGER audit_users BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION out_check_noop();",
    );
    let r = db.cutover("check", &[]);
    r.ok();
    let out = &r.stdout;
    assert!(
        out.contains("1. users <- people (matched on airtable_id), 14 rows"),
        "{out}"
    );
    assert!(
        out.contains("7. votes <- votes (matched on airtable_id), 25 rows"),
        "{out}"
    );
    assert!(
        out.contains("project_id -> projects (on_missing = \"skip\")"),
        "{out}"
    );
    assert!(
        out.contains("sequences reset after the load (5): users.id"),
        "{out}"
    );
    assert!(out.contains("13 foreign keys"), "{out}");
    assert!(out.contains("trigger audit_users on users"), "{out}");
    assert!(out.contains("warnings (2):"), "{out}");
    assert!(
        out.contains("source table `people`: 1 field is not mapped: nickname"),
        "{out}"
    );
    assert!(
        out.contains("target column `users.bio` is not mapped: a new row gets NULL"),
        "{out}"
    );
    for line in out.lines().filter(|l| !l.starts_with("load plan (")) {
        assert!(line.chars().count() <= 80, "wider than 80: {line:?}");
    }

    let r = db.cutover("check", &["--format", "json"]);
    r.ok();
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", r.stdout));
    let plan = &v["plan"];
    assert_eq!(plan["tables"][0]["table"], "users");
    assert_eq!(plan["tables"][0]["rows"], 14);
    assert_eq!(plan["tables"][0]["unmapped_source_fields"][0], "nickname");
    assert_eq!(
        plan["tables"][0]["unmapped_target_columns"][0]["column"],
        "bio"
    );
    assert_eq!(plan["triggers"][0]["name"], "audit_users");
    assert_eq!(plan["sequences"][0]["sequence"], "public.users_id_seq");
    assert!(plan["constraints"].as_array().unwrap().len() > 40);
    assert_eq!(plan["warnings"].as_array().unwrap().len(), 2);
    // Values that will not convert: exit 1 in JSON too, with the rejects in it.
    db.edit_sqlite("UPDATE people SET is_admin = 'maybe' WHERE id = 2;");
    let r = db.cutover("check", &["--format", "json"]);
    r.fails(1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["outcome"], "rejects");
    assert_eq!(v["rejects"]["by_reason"][0]["column"], "is_admin");
    assert!(
        r.stderr.contains("1 rows would be rejected"),
        "{}",
        r.stderr
    );
}

#[test]
fn exit_codes_for_usage_help_and_a_closed_pipe() {
    assert_eq!(run(&["load", "--no-such-flag"]).code, 2);
    assert_eq!(run(&["load"]).code, 2);
    assert_eq!(run(&["--help"]).code, 0);
    assert_eq!(run(&["--version"]).code, 0);
    // A report that cannot be written: found before anything runs.
    let r = run(&["load", "-m", "mappings/podium-sqlite.toml", "--report", "/"]);
    r.fails(2);
    // A reader that goes away stops the printing, not the exit code.
    let db = Db::new("out_pipe");
    let mut child = podium(&db, "load", &["--report", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn help_has_examples_and_completions_and_a_man_page_are_generated() {
    let help = run(&["--help"]);
    assert!(help.stdout.contains("Examples:"), "{}", help.stdout);
    assert!(help.stdout.contains("Exit codes:"), "{}", help.stdout);
    let load = run(&["load", "--help"]);
    assert!(load.stdout.contains("cutover load -m"), "{}", load.stdout);
    // Hidden from --help, there for packagers.
    assert!(!help.stdout.contains("completions"), "{}", help.stdout);
    for shell in ["bash", "zsh", "fish"] {
        let r = run(&["completions", shell]);
        r.ok();
        assert!(
            r.stdout.contains("cutover") && r.stdout.contains("dry-run"),
            "{shell}"
        );
    }
    let man = run(&["man"]);
    man.ok();
    assert!(man.stdout.contains(".TH cutover"), "{}", &man.stdout[..200]);
    assert!(man.stdout.contains("cutover\\-verify"), "no verify section");
    assert_eq!(run(&["completions", "tcsh"]).code, 2);
}
