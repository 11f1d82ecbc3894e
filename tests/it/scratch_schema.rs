//! `--target scratch` given a real target's schema: a file the installed `pg_dump -s`
//! wrote (psql-only `\restrict` lines, owners and grants for roles the throwaway cluster
//! lacks, no alembic_version row), or `--schema-from URL`, which runs pg_dump itself and
//! copies the alembic_version rows.

use crate::harness::{Db, Run, one, run, run_env, write};
use cutover_testkit::find_bindir;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The Podium target as an application leaves it: tables owned by a role of their own,
/// read by another (a grant and a row-level security policy name it).
fn real_target(test: &str) -> (Db, String, String) {
    let db = Db::new(test);
    let (owner, reader) = (format!("{test}_owner"), format!("{test}_reader"));
    db.sql(&format!(
        "DROP ROLE IF EXISTS {owner}; DROP ROLE IF EXISTS {reader};
         CREATE ROLE {owner} NOLOGIN; CREATE ROLE {reader} NOLOGIN;
         DO $$ DECLARE t record; BEGIN
           FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
             EXECUTE format('ALTER TABLE public.%I OWNER TO {owner}', t.tablename);
           END LOOP;
         END $$;
         GRANT USAGE ON SCHEMA public TO {reader};
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader};
         ALTER TABLE users ENABLE ROW LEVEL SECURITY;
         CREATE POLICY readers_see_all ON users FOR SELECT TO {reader} USING (true);"
    ));
    assert_eq!(
        db.one("SELECT version_num FROM alembic_version"),
        "a1b2c3d4e5f6"
    );
    (db, owner, reader)
}

/// `pg_dump --schema-only` of the database, by the installed pg_dump.
fn pg_dump_s(db: &Db) -> String {
    let out = Command::new(find_bindir().unwrap().join("pg_dump"))
        .args(["--schema-only", "--dbname", &db.url])
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// pg_dump 15.14, 16.10, 17.6 and later write `\restrict KEY` lines (and have an option
/// to choose the key).
fn writes_restrict_lines() -> bool {
    let help = Command::new(find_bindir().unwrap().join("pg_dump"))
        .arg("--help")
        .output()
        .expect("run pg_dump --help");
    String::from_utf8_lossy(&help.stdout).contains("--restrict-key")
}

fn scratch_load(db: &Db, schema_args: &[&str], env: &[(&str, &str)]) -> Run {
    let source = format!("sqlite:{}", db.sqlite().display());
    let mut args = vec![
        "load",
        "-m",
        "mappings/podium-sqlite.toml",
        "--source",
        &source,
        "--target",
        "scratch",
    ];
    args.extend_from_slice(schema_args);
    run_env(&args, env)
}

#[track_caller]
fn loaded_and_verified(r: &Run) {
    r.ok();
    assert!(r.stdout.contains("committed."), "{}", r.all());
    assert!(
        r.stdout.contains("verify: the target matches the source."),
        "{}",
        r.all()
    );
}

#[test]
fn a_pg_dump_schema_file_is_accepted() {
    let (db, owner, reader) = real_target("dump_file");
    let dump = pg_dump_s(&db);
    assert!(dump.contains(&format!("OWNER TO {owner}")), "{dump}");
    assert!(dump.contains(&format!("TO {reader}")), "{dump}");
    if writes_restrict_lines() {
        assert!(dump.contains("\n\\restrict "), "{dump}");
    }
    let file = write(&db.dir, "schema.sql", &dump);

    // A schema-only dump has no alembic_version row: the message says what to do.
    let r = scratch_load(&db, &["--schema", file.to_str().unwrap()], &[]);
    r.fails(2);
    assert!(
        r.stderr.contains("alembic_version table is empty") && r.stderr.contains("--schema-from"),
        "{}",
        r.all()
    );
    assert!(!r.stderr.contains("restrict"), "{}", r.all());
    assert!(!r.stderr.contains("does not exist"), "{}", r.all());

    std::fs::write(
        &file,
        format!("{dump}\nINSERT INTO public.alembic_version VALUES ('a1b2c3d4e5f6');\n"),
    )
    .unwrap();
    loaded_and_verified(&scratch_load(
        &db,
        &["--schema", file.to_str().unwrap()],
        &[],
    ));
}

#[test]
fn schema_from_a_url_copies_schema_roles_and_revision() {
    let (db, owner, reader) = real_target("schema_from");
    loaded_and_verified(&scratch_load(&db, &["--schema-from", &db.url], &[]));
    // Without a URL: $DATABASE_URL's schema (the real target of the other steps).
    let r = scratch_load(
        &db,
        &["--schema-from", "--keep-scratch"],
        &[("DATABASE_URL", &db.url)],
    );
    loaded_and_verified(&r);
    let kept = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("scratch cluster kept running: "))
        .unwrap_or_else(|| panic!("no kept cluster:\n{}", r.all()))
        .to_string();
    let _stop = Kept(kept.clone());
    // Owners, grants and the policy stand as on the real target.
    assert_eq!(
        one(
            &kept,
            "SELECT tableowner FROM pg_tables WHERE tablename = 'votes'"
        ),
        owner
    );
    assert_eq!(
        one(
            &kept,
            &format!("SELECT has_table_privilege('{reader}', 'public.events', 'SELECT')::text")
        ),
        "true"
    );
    assert_eq!(
        one(
            &kept,
            "SELECT array_to_string(roles::text[], ',') FROM pg_policies WHERE policyname = 'readers_see_all'"
        ),
        reader
    );
    assert_eq!(
        one(
            &kept,
            &format!("SELECT rolcanlogin::text FROM pg_roles WHERE rolname = '{owner}'")
        ),
        "false"
    );
    assert_eq!(
        one(&kept, "SELECT version_num FROM alembic_version"),
        "a1b2c3d4e5f6"
    );
}

/// Stops and removes a `--keep-scratch` cluster, given its URL (`…?host=DIR&port=…`).
struct Kept(String);
impl Drop for Kept {
    fn drop(&mut self) {
        let Some(dir) = self
            .0
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("host="))
            .map(|d| d.replace("%2F", "/"))
        else {
            return;
        };
        let dir = Path::new(&dir);
        if let Some(pid) = std::fs::read_to_string(dir.join("data/postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next()?.trim().parse::<i32>().ok())
        {
            unsafe { libc::kill(pid, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn psql_meta_commands_are_refused_naming_the_line() {
    let db = Db::bare("meta_commands");
    let file = write(
        &db.dir,
        "schema.sql",
        "CREATE TABLE t (a int);\nCOMMENT ON TABLE t IS 'a \\ backslash';\n\\connect other\n",
    );
    let r = run(&[
        "load",
        "-m",
        "mappings/podium-sqlite.toml",
        "--target",
        "scratch",
        "--schema",
        file.to_str().unwrap(),
    ]);
    r.fails(2);
    assert!(
        r.stderr.contains(&format!(
            "--schema {}: line 3: `\\connect` is a psql meta-command",
            file.display()
        )),
        "{}",
        r.all()
    );
}

#[test]
fn schema_from_an_unreachable_database_fails_clearly() {
    let r = run(&[
        "load",
        "-m",
        "mappings/podium-sqlite.toml",
        "--target",
        "scratch",
        "--schema-from",
        "postgresql://app:s3cret-pw@127.0.0.1:1/appdb",
    ]);
    r.fails(3);
    assert!(
        r.stderr
            .contains("--schema-from postgresql://app:***@127.0.0.1:1/appdb"),
        "{}",
        r.all()
    );
    assert!(r.stderr.contains("pg_dump"), "{}", r.all());
    assert!(!r.all().contains("s3cret-pw"), "{}", r.all());
    // Not both.
    run(&[
        "check",
        "-m",
        "mappings/podium-sqlite.toml",
        "--target",
        "scratch",
        "--schema",
        "x.sql",
        "--schema-from",
        "postgresql://h/db",
    ])
    .fails(2);
}
