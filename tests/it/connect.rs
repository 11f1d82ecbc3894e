//! Reaching the target as libpq users expect, and safely: the `PG*` variables and the
//! password file fill what the target leaves out, `PGSSLMODE` is honoured, a malformed target
//! is a usage error that hides its password, planted overloads never run with cutover's
//! privileges, and a server that stops answering fails the run in bounded time.

use crate::harness::{Db, Run, repo, run_env, tcp_port};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PW: &str = "c0nn-Pa55w0rd";

/// A password-authenticated superuser for TCP (roles are cluster-wide: created once).
fn tcp_role(db: &Db) -> &'static str {
    db.sql(&format!(
        // Tests run at once: another may create the role between the check and the CREATE.
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'conn_tcp') THEN CREATE ROLE conn_tcp LOGIN SUPERUSER PASSWORD '{PW}'; END IF; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;"
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
fn a_password_for_an_unverified_remote_server_draws_a_warning() {
    let db = Db::new("conn_warning");
    let target = "postgresql://loader:Hunter2Secret@db.example.invalid/app?sslmode=require";
    let r = cutover(&db, "check", target, &[]);
    r.fails(3);
    assert!(
        r.stderr
            .contains("warning: the password for user \"loader\" goes to db.example.invalid:5432")
            && r.stderr.contains("Use sslmode=verify-full"),
        "{}",
        r.all()
    );
    assert!(!r.all().contains("Hunter2Secret"), "{}", r.all());
    let r = cutover(&db, "check", &target.replace("require", "verify-full"), &[]);
    assert!(!r.stderr.contains("warning:"), "{}", r.all());
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

#[test]
fn planted_overloads_never_run_with_cutovers_privileges() {
    let db = Db::new("conn_search_path");
    // mallory may create in public (the default before PostgreSQL 15) and plants objects
    // that match cutover's unqualified calls better than pg_catalog's. Each records that it
    // ran and tries to make mallory a superuser, then does what the real one would.
    db.sql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mallory') THEN CREATE ROLE mallory; END IF; END $$;
         ALTER ROLE mallory NOSUPERUSER;
         GRANT CREATE ON SCHEMA public TO mallory;
         SET ROLE mallory;
         CREATE TABLE public.mallory_log (what text);
         GRANT INSERT ON public.mallory_log TO PUBLIC;
         CREATE FUNCTION public.mallory_ran(what text) RETURNS void LANGUAGE plpgsql AS $f$
         BEGIN
           INSERT INTO public.mallory_log VALUES (what);
           BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER'; EXCEPTION WHEN others THEN NULL; END;
         END $f$;
         CREATE FUNCTION public.unnest(a smallint[]) RETURNS SETOF smallint LANGUAGE plpgsql AS $f$
         BEGIN PERFORM public.mallory_ran('unnest(smallint[])'); RETURN QUERY SELECT x FROM pg_catalog.unnest(a) x; END $f$;
         CREATE FUNCTION public.unnest(a text[]) RETURNS SETOF text LANGUAGE plpgsql AS $f$
         BEGIN PERFORM public.mallory_ran('unnest(text[])'); RETURN QUERY SELECT x FROM pg_catalog.unnest(a) x; END $f$;
         CREATE FUNCTION public.mallory_eq(a varchar, b varchar) RETURNS boolean LANGUAGE plpgsql AS $f$
         BEGIN PERFORM public.mallory_ran('=(varchar,varchar)'); RETURN pg_catalog.texteq(a::text, b::text); END $f$;
         CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.mallory_eq);
         CREATE FUNCTION public.mallory_count(n bigint, v anyelement) RETURNS bigint LANGUAGE plpgsql AS $f$
         BEGIN PERFORM public.mallory_ran('count(...)'); RETURN n + CASE WHEN v IS NULL THEN 0 ELSE 1 END; END $f$;
         CREATE AGGREGATE public.count(varchar) (SFUNC = public.mallory_count, STYPE = bigint, INITCOND = '0');
         CREATE AGGREGATE public.count(integer) (SFUNC = public.mallory_count, STYPE = bigint, INITCOND = '0');
         CREATE AGGREGATE public.count(bigint) (SFUNC = public.mallory_count, STYPE = bigint, INITCOND = '0');
         CREATE FUNCTION public.pg_try_advisory_xact_lock(k integer) RETURNS boolean LANGUAGE plpgsql AS $f$
         BEGIN PERFORM public.mallory_ran('pg_try_advisory_xact_lock(integer)'); RETURN pg_catalog.pg_try_advisory_xact_lock(k::bigint); END $f$;
         RESET ROLE;",
    );
    // cutover runs as the superuser the harness connects as.
    let clean = |after: &str| {
        let ran = db.sql("SELECT DISTINCT what FROM public.mallory_log ORDER BY 1");
        assert!(
            ran.is_empty(),
            "planted objects ran inside `cutover {after}`: {ran:?}"
        );
        assert_eq!(
            db.one("SELECT rolsuper::text FROM pg_catalog.pg_roles WHERE rolname = 'mallory'"),
            "false",
            "mallory became a superuser during `cutover {after}`"
        );
    };
    for cmd in ["check", "load", "verify"] {
        db.cutover(cmd, &[]).ok();
        clean(cmd);
    }
    assert_ne!(db.one("SELECT count(*) FROM public.users"), "0");
}

/// A TCP proxy to the test cluster that, once `hole_after` bytes went from the client to
/// the server, stops forwarding and reading in both directions while keeping the sockets
/// open: the server seems to vanish, as in a network partition or a stalled host.
struct BlackHole {
    port: u16,
    holed: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
}

impl BlackHole {
    /// Closes every connection, so the server ends the abandoned session and its locks go.
    fn close(&self) {
        for s in self.sockets.lock().unwrap().iter() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn black_hole(target: u16, hole_after: u64) -> BlackHole {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // A small receive buffer (fixed, so the kernel does not grow it), so that a client that
    // keeps writing fills it soon.
    let size: libc::c_int = 64 * 1024;
    // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int of the given size.
    unsafe {
        use std::os::fd::AsRawFd;
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let port = listener.local_addr().unwrap().port();
    let holed = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let sockets = Arc::new(Mutex::new(Vec::new()));
    let (h, kept) = (holed.clone(), sockets.clone());
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let server = TcpStream::connect(("127.0.0.1", target)).unwrap();
            kept.lock().unwrap().push(server.try_clone().unwrap());
            kept.lock().unwrap().push(client.try_clone().unwrap());
            let pump = |mut from: TcpStream, mut to: TcpStream, count: Option<Arc<AtomicU64>>| {
                let holed = h.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        if holed.load(Ordering::SeqCst) {
                            // Keep both sockets open, read and write nothing, forever.
                            std::thread::sleep(Duration::from_secs(3600));
                            continue;
                        }
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if let Some(c) = &count
                            && c.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > hole_after
                        {
                            holed.store(true, Ordering::SeqCst);
                            continue;
                        }
                        if holed.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
                            continue;
                        }
                    }
                });
            };
            pump(
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                Some(sent.clone()),
            );
            pump(server, client, None);
        }
    });
    BlackHole {
        port,
        holed,
        sockets,
    }
}

#[test]
fn a_server_that_stops_answering_fails_the_run_in_bounded_time() {
    let db = Db::new("conn_black_hole");
    let user = tcp_role(&db);
    // Enough rows that the COPY is still sending when the server goes silent.
    db.edit_sqlite(
        "WITH RECURSIVE n(i) AS (SELECT 1000 UNION ALL SELECT i + 1 FROM n WHERE i < 30999)
         INSERT INTO people (id, email, name, first, last, phone, is_admin, verified, created)
         SELECT i, 'bulk' || i || '@example.com', printf('%.1000c', 'x'), 'F', 'L', NULL, 0, 't', 1700000000 FROM n;",
    );
    let hole = black_hole(tcp_port(), 512 * 1024);
    let url = format!(
        "postgresql://{user}:{PW}@127.0.0.1:{}/{}?sslmode=disable&tcp_user_timeout=2000&keepalives_idle=1&keepalives_interval=1&keepalives_retries=2",
        hole.port, db.name
    );
    let source = format!("sqlite:{}", db.sqlite().display());
    let mapping = repo().join("mappings/podium-sqlite.toml");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args([
            "load",
            "-m",
            mapping.to_str().unwrap(),
            "--source",
            &source,
            "--target",
            &url,
        ])
        .env_remove("DATABASE_URL")
        .env("CUTOVER_STATE", crate::harness::STATE)
        .current_dir(repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let bound = Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            hole.close();
            panic!(
                "cutover still waits {} s after the server went silent (holed: {}):\n{}",
                bound.as_secs(),
                hole.holed.load(Ordering::SeqCst),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    hole.close();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        hole.holed.load(Ordering::SeqCst),
        "the proxy never went silent:\n{stderr}"
    );
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("lost the connection to 127.0.0.1:{}", hole.port))
            && stderr.contains("stopped answering"),
        "a message naming the server expected:\n{stderr}"
    );
    assert!(!stderr.contains(PW), "{stderr}");
    assert_eq!(
        db.one("SELECT count(*) FROM public.users"),
        "0",
        "nothing committed"
    );
}

/// With no --target and no DATABASE_URL in the environment, a `.env` in the working
/// directory names the target, as sqlx reads it; the environment wins over it.
#[test]
fn a_dot_env_in_the_working_directory_names_the_target() {
    let db = Db::new("conn_dotenv");
    let work = db.dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join(".env"),
        format!("# the app's settings\nDATABASE_URL={}\n", db.url),
    )
    .unwrap();
    let mapping = repo().join("mappings/podium-sqlite.toml");
    let source = format!("sqlite:{}", db.sqlite().display());
    let load = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"));
        cmd.args(["load", "-m", mapping.to_str().unwrap(), "--source", &source])
            .env_remove("DATABASE_URL")
            .env("CUTOVER_STATE", crate::harness::STATE)
            .current_dir(&work);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = load(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(db.one("SELECT count(*) FROM votes"), "24");
    // DATABASE_URL in the environment comes first: here it names a database that does not
    // exist, and the run fails on it rather than using .env.
    let elsewhere = db
        .url
        .replacen(&format!("/{}?", db.name), "/no_such_db?", 1);
    let out = load(&[("DATABASE_URL", &elsewhere)]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_db"));
}
