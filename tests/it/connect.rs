//! Reaching the target as libpq users expect: the `PG*` variables and the password file fill
//! what the target leaves out, `PGSSLMODE` is honoured, and a malformed target is a usage
//! error that hides its password.

use crate::harness::{Db, Run, repo, run_env, tcp_port};

const PW: &str = "c0nn-Pa55w0rd";

/// A password-authenticated superuser for TCP (roles are cluster-wide: created once).
fn tcp_role(db: &Db) -> &'static str {
    db.sql(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'conn_tcp') THEN CREATE ROLE conn_tcp LOGIN SUPERUSER PASSWORD '{PW}'; END IF; END $$;"
    ));
    "conn_tcp"
}

/// `cutover CMD` with the Podium mapping and this test's SQLite file, the target and the
/// environment given.
fn cutover(db: &Db, cmd: &str, target: &str, env: &[(&str, &str)]) -> Run {
    let source = format!("sqlite:{}", db.sqlite().display());
    let mapping = repo().join("mappings/podium-sqlite.toml");
    run_env(
        &[
            cmd,
            "-m",
            mapping.to_str().unwrap(),
            "--source",
            &source,
            "--target",
            target,
        ],
        env,
    )
}

#[test]
fn a_malformed_target_is_a_usage_error_that_hides_the_password() {
    let db = Db::new("conn_malformed");
    for target in [
        "postgres://loader:Hunter2Secret/app",
        "postgresql://loader:Hunter2Secret@db:port/app",
        "postgresql://loader@db/app?password=Hunter2Secret&bogus=1",
        "host=db password=Hunter2Secret dbname",
    ] {
        let r = cutover(&db, "check", target, &[]);
        r.fails(2);
        assert!(!r.all().contains("Hunter2Secret"), "{target}: {}", r.all());
        assert!(r.stderr.contains("invalid target"), "{}", r.all());
    }
}

#[test]
fn pgsslmode_verify_full_is_honoured() {
    // The test cluster has no TLS: a target that must verify the server cannot connect.
    let db = Db::new("conn_pgsslmode");
    let user = tcp_role(&db);
    let url = format!(
        "postgresql://{user}:{PW}@127.0.0.1:{}/{}",
        tcp_port(),
        db.name
    );
    cutover(&db, "check", &url, &[]).ok();
    let r = cutover(&db, "check", &url, &[("PGSSLMODE", "verify-full")]);
    r.fails(3);
    assert!(
        r.stderr
            .contains("does not support TLS, but sslmode=verify-full requires it"),
        "{}",
        r.all()
    );
    // asyncpg's spelling, in the URL.
    let r = cutover(
        &db,
        "check",
        &format!(
            "postgresql+asyncpg://{user}:{PW}@127.0.0.1:{}/{}?ssl=require",
            tcp_port(),
            db.name
        ),
        &[],
    );
    r.fails(3);
    assert!(r.stderr.contains("does not support TLS"), "{}", r.all());
}

#[test]
fn pg_variables_and_the_password_file_fill_in() {
    let db = Db::new("conn_pgvars");
    let user = tcp_role(&db);
    let port = tcp_port().to_string();
    // Host and database written; port, user and password from the environment.
    let url = format!("postgresql://127.0.0.1/{}", db.name);
    let r = cutover(
        &db,
        "check",
        &url,
        &[("PGPORT", &port), ("PGUSER", user), ("PGPASSWORD", PW)],
    );
    r.ok();
    // Keyword/value settings, the password from the password file.
    let passfile = db.dir.join("pgpass");
    std::fs::write(
        &passfile,
        format!("127.0.0.1:{port}:{}:{user}:{PW}\n", db.name),
    )
    .unwrap();
    let mode = |m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(m)).unwrap();
    };
    mode(0o600);
    let kv = format!("host=127.0.0.1 port={port} dbname={} user={user}", db.name);
    let env = [("PGPASSFILE", passfile.to_str().unwrap())];
    cutover(&db, "check", &kv, &env).ok();
    // A password file others can read is ignored, with a warning, as libpq does.
    mode(0o644);
    let r = cutover(&db, "check", &kv, &env);
    r.fails(3);
    assert!(
        r.stderr.contains("has group or world access"),
        "{}",
        r.all()
    );
    assert!(r.stderr.contains("none was given"), "{}", r.all());
    assert!(!r.all().contains(PW), "{}", r.all());
}
