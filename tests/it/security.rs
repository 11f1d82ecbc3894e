//! Secrets never leak; TLS works and verifies host names; the scratch cluster stays local and
//! leaves nothing behind.

use crate::harness::{Db, Run, repo, run_env, tcp_port};
use cutover_testkit::Scratch;
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig};
use std::path::Path;
use std::time::{Duration, Instant};

const PASSWORD: &str = "Zq7+pw/S3CR3T@x%y:z";
const PASSWORD_ENC: &str = "Zq7%2Bpw%2FS3CR3T%40x%25y%3Az";
const TOKEN: &str = "patLEAKCHECK0042.feedfacecafebeef0123456789abcdef";
const BASE: &str = "appPodium00000001";

fn secrets() -> Vec<&'static str> {
    // The whole secrets, their encoded forms, and distinctive fragments of them.
    vec![
        PASSWORD,
        PASSWORD_ENC,
        "S3CR3T",
        TOKEN,
        "LEAKCHECK0042",
        "feedfacecafebeef",
    ]
}

fn assert_no_secret(what: &str, text: &str) {
    for s in secrets() {
        assert!(
            !text.contains(s),
            "{what} contains the secret {s:?}:\n{text}"
        );
    }
}

fn grep_tree(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                assert_no_secret(&p.display().to_string(), &String::from_utf8_lossy(&bytes));
                n += 1;
            }
        }
    }
    n
}

#[test]
fn secrets_never_appear_in_any_output_or_file() {
    let db = Db::new("sec_secrets");
    db.sql(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'secuser') THEN CREATE ROLE secuser LOGIN PASSWORD '{PASSWORD}'; END IF; END $$;
         GRANT ALL ON ALL TABLES IN SCHEMA public TO secuser;
         GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO secuser;"
    ));
    let url = format!(
        "postgresql+asyncpg://secuser:{PASSWORD_ENC}@127.0.0.1:{}/{}?sslmode=disable",
        tcp_port(),
        db.name
    );
    let bad_url = url.replace("Zq7%2B", "Zq8%2B");
    // One rejected row, so the rejects file has content.
    db.edit_sqlite("UPDATE people SET created = 'not a date' WHERE id = 8;");
    let mapping = repo().join("mappings/podium-sqlite.toml");
    let m = mapping.to_str().unwrap();
    let source = format!("sqlite:{}", db.sqlite().display());
    let out = db.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let file = |n: &str| out.join(n).to_str().unwrap().to_string();
    let (report, rejects, snap) = (file("report.json"), file("rejects.csv"), file("snap"));
    let broken = crate::harness::write(&db.dir, "broken.toml", "[tables.users\nfrom = 1");
    let env = [("DATABASE_URL", url.as_str()), ("AIRTABLE_TOKEN", TOKEN)];
    let mut runs: Vec<(String, Run)> = Vec::new();
    let mut go = |args: &[&str], env: &[(&str, &str)]| {
        runs.push((args.join(" "), run_env(args, env)));
    };
    // Through DATABASE_URL and through --target; success, data failure, usage failure,
    // unreachable and refused-password failures.
    go(&["check", "-m", m, "--source", &source], &env);
    go(
        &[
            "load",
            "-m",
            m,
            "--source",
            &source,
            "--report",
            &report,
            "--rejects",
            &rejects,
        ],
        &env,
    );
    go(
        &[
            "load",
            "-m",
            m,
            "--source",
            &source,
            "--target",
            &url,
            "--max-rejects",
            "10",
            "--report",
            &report,
            "--rejects",
            &rejects,
        ],
        &env,
    );
    go(
        &["verify", "-m", m, "--source", &source, "--target", &url],
        &env,
    );
    go(
        &["load", "-m", m, "--source", &source, "--target", &bad_url],
        &env,
    );
    go(
        &["load", "-m", broken.to_str().unwrap(), "--source", &source],
        &env,
    );
    let refused = format!("postgresql://secuser:{PASSWORD_ENC}@127.0.0.1:1/x");
    go(
        &["check", "-m", m, "--source", &source, "--target", &refused],
        &env,
    );
    go(
        &["export", "-m", m, "--source", &source, "--out", &snap],
        &env,
    );
    go(&["inspect", "--source", &source], &env);
    go(
        &[
            "verify",
            "-m",
            m,
            "--source",
            &format!("snapshot:{snap}"),
            "--target",
            &url,
        ],
        &env,
    );
    // Airtable, with the token in the environment the way it is meant to be given.
    let mut config =
        FakeConfig::from_dir(&repo().join("fixtures/podium-airtable"), BASE, TOKEN).unwrap();
    // Separate processes share the base's rate window; do not sit out a 30 s lock.
    config.lock = Duration::from_secs(1);
    config.faults.retry_after = Some(1);
    let (api, _server) = FakeAirtable::start(config).unwrap();
    let aenv = [
        ("DATABASE_URL", url.as_str()),
        ("AIRTABLE_TOKEN", TOKEN),
        ("AIRTABLE_API_URL", api.as_str()),
    ];
    go(&["inspect", "--source", &format!("airtable:{BASE}")], &aenv);
    go(&["check", "-m", "mappings/podium.toml"], &aenv);
    let wrong = [
        ("AIRTABLE_TOKEN", "patWRONG.LEAKCHECK0042x"),
        ("AIRTABLE_API_URL", api.as_str()),
    ];
    go(&["check", "-m", "mappings/podium.toml"], &wrong);
    // --help of every command, with both secrets in the environment (clap can show env values).
    for cmd in [
        &[][..],
        &["load"],
        &["check"],
        &["verify"],
        &["export"],
        &["inspect"],
    ] {
        let mut a: Vec<&str> = cmd.to_vec();
        a.push("--help");
        go(&a, &aenv);
    }
    go(&["--version"], &aenv);

    let mut codes = Vec::new();
    for (args, r) in &runs {
        assert!(!r.all().contains("panicked"), "{args}: {}", r.all());
        assert_no_secret(args, &r.all());
        codes.push(r.code);
    }
    // The runs did what they were meant to (so the grep covered real output).
    assert_eq!(
        codes[..10],
        [1, 1, 0, 0, 3, 2, 3, 0, 0, 0],
        "{:?}",
        runs.iter()
            .map(|(a, r)| format!("{a}: {}", r.all()))
            .collect::<Vec<_>>()
    );
    assert!(
        runs[4].1.stderr.contains("password authentication failed"),
        "{}",
        runs[4].1.all()
    );
    assert!(
        std::fs::read_to_string(&rejects)
            .unwrap()
            .contains("users,8,")
    );
    let files = grep_tree(&out);
    assert!(
        files >= 4,
        "report, rejects and a snapshot expected: {files} files"
    );
    assert!(Path::new(&snap).join("manifest.json").exists());
}

/// A self-signed certificate for `localhost`, the PEM written to `dir/root.pem`.
fn cert(dir: &Path) -> (String, String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (c, k) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    let root = dir.join("root.pem");
    std::fs::write(&root, &c).unwrap();
    (c, k, root.display().to_string())
}

#[test]
fn tls_require_and_verify_full_work_and_a_wrong_host_fails() {
    let db = Db::bare("sec_tls");
    let (c, k, root) = cert(&db.dir);
    let s = Scratch::start_tls(false, &c, &k).expect("TLS scratch cluster");
    let admin = s.url("postgres");
    crate::harness::sql(
        &admin,
        "CREATE ROLE tlsuser LOGIN SUPERUSER PASSWORD 'tls-pw-123'",
    );
    crate::harness::sql(&admin, "CREATE DATABASE podium OWNER tlsuser");
    let tdb = Db {
        name: "podium".into(),
        url: s.url("podium"),
        dir: db.dir.join("tls"),
    };
    std::fs::create_dir_all(&tdb.dir).unwrap();
    crate::harness::sql(
        &tdb.url,
        &std::fs::read_to_string(repo().join("fixtures/podium/schema.sql")).unwrap(),
    );
    tdb.build_sqlite("legacy.sqlite", &[]);
    let port = s.tcp_port();
    let require =
        format!("postgresql://tlsuser:tls-pw-123@127.0.0.1:{port}/podium?sslmode=require");
    let r = tdb.cutover_at(&require, "load", &[]);
    r.ok();
    assert_eq!(tdb.one("SELECT count(*) FROM votes"), "24");
    // The server really did TLS for it.
    // The server really did TLS for it (asked through psql, which speaks sslmode=require).
    let psql = cutover_testkit::find_bindir().unwrap().join("psql");
    let out = std::process::Command::new(psql)
        .arg(&require)
        .args([
            "-Atc",
            "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "true",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let full = format!(
        "postgresql://tlsuser:tls-pw-123@localhost:{port}/podium?sslmode=verify-full&sslrootcert={root}"
    );
    tdb.cutover_at(&full, "verify", &[]).ok();
    // The same certificate for a name it was not issued to.
    let wrong = full.replace("@localhost:", "@127.0.0.1:");
    let r = tdb.cutover_at(&wrong, "verify", &[]);
    r.fails(3);
    let err = r.stderr.to_lowercase();
    assert!(
        err.contains("certificate") && (err.contains("name") || err.contains("127.0.0.1")),
        "a clear host-name error expected: {}",
        r.all()
    );
    assert!(!r.all().contains("tls-pw-123"));
    // verify-full with no root for a self-signed certificate: refused too.
    let noroot =
        format!("postgresql://tlsuser:tls-pw-123@localhost:{port}/podium?sslmode=verify-full");
    tdb.cutover_at(&noroot, "verify", &[]).fails(3);
}

fn scratch_dirs() -> Vec<String> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("cutover-scratch-") && n != "cutover-scratch-demo")
        .filter(|n| !n.starts_with("cutover-scratch-demo-"))
        .collect()
}

#[test]
fn scratch_cluster_is_local_only_and_removed_even_after_an_error() {
    crate::harness::tcp_port(); // the suite's own cluster is up before we look
    let before = scratch_dirs();
    let db = Db::bare("sec_scratch");
    let bad = crate::harness::write(
        &db.dir,
        "bad.sql",
        "CREATE TABLE users (id int PRIMARY KEY;\n",
    );
    let source = format!("sqlite:{}", db.dir.join("none.sqlite").display());
    let r = run_env(
        &[
            "load",
            "-m",
            "mappings/podium-sqlite.toml",
            "--source",
            &source,
            "--target",
            "scratch",
            "--schema",
            bad.to_str().unwrap(),
        ],
        &[],
    );
    assert_ne!(r.code, 0, "{}", r.all());
    // Others tests may run a scratch cluster at the same time: wait for every new one to go.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let new: Vec<String> = scratch_dirs()
            .into_iter()
            .filter(|d| !before.contains(d))
            .collect();
        if new.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scratch directories left behind: {new:?}\n{}",
            r.all()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Listening: a Unix socket in its private directory and 127.0.0.1, nothing else.
    let s = Scratch::start(false).unwrap();
    assert_eq!(
        crate::harness::one(&s.url("postgres"), "SHOW listen_addresses"),
        "127.0.0.1"
    );
    assert_eq!(
        crate::harness::one(&s.url("postgres"), "SHOW unix_socket_directories"),
        s.data_dir().display().to_string()
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(s.data_dir()).unwrap().permissions(),
    );
    assert_eq!(
        mode & 0o077,
        0,
        "the scratch directory must be private: {mode:o}"
    );
    let dir = s.data_dir().to_path_buf();
    drop(s);
    assert!(!dir.exists());
}
