//! Connecting to real scratch clusters: the session settings, every connect error message,
//! TLS modes and client certificates, channel binding, several hosts.

use super::*;
use cutover_scratch::Scratch;
use tokio_postgres::Client;

const PW: &str = "k+le,U2kG1Gb0cp_";
const PW_ENC: &str = "k%2Ble%2CU2kG1Gb0cp_";

async fn start(tls: Option<(String, String)>) -> Scratch {
    tokio::task::spawn_blocking(move || match tls {
        Some((c, k)) => Scratch::start_tls(false, &c, &k),
        None => Scratch::start(false),
    })
    .await
    .unwrap()
    .unwrap()
}

async fn stop(s: Scratch) {
    tokio::task::spawn_blocking(move || s.stop())
        .await
        .unwrap()
        .unwrap();
}

async fn setup_app(s: &Scratch) {
    let c = p(&s.url("postgres")).connect().await.unwrap();
    c.batch_execute(&format!("create role appuser login password '{PW}'"))
        .await
        .unwrap();
    c.batch_execute("create database appdb owner appuser")
        .await
        .unwrap();
}

async fn conn_err(url: &str) -> String {
    let e = format!("{:#}", p(url).connect().await.expect_err(url));
    assert!(!e.contains(PW), "{e}");
    assert!(!e.contains(PW_ENC), "{e}");
    e
}

async fn one(c: &Client, q: &str) -> String {
    c.query_one(q, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_settings_and_errors() {
    let s = start(None).await;
    setup_app(&s).await;
    let port = s.tcp_port();
    for scheme in [
        "postgresql",
        "postgres",
        "postgresql+asyncpg",
        "postgresql+psycopg2",
    ] {
        let url = format!("{scheme}://appuser:{PW_ENC}@127.0.0.1:{port}/appdb");
        let c = p(&url).connect().await.unwrap();
        assert_eq!(one(&c, "select current_user::text").await, "appuser");
        assert_eq!(one(&c, "select current_database()::text").await, "appdb");
        assert_eq!(
            one(&c, "select current_setting('application_name')").await,
            "cutover"
        );
        assert_eq!(
            one(&c, "select current_setting('search_path')").await,
            "pg_catalog, pg_temp"
        );
        assert_eq!(
            one(&c, "select current_setting('tcp_keepalives_idle')").await,
            "30"
        );
        assert_eq!(
            one(&c, "select current_setting('tcp_keepalives_interval')").await,
            "10"
        );
        assert_eq!(
            one(&c, "select current_setting('tcp_keepalives_count')").await,
            "3"
        );
    }
    // A role or database default search_path is overridden; the schema-setup session keeps it.
    let su = p(&s.url("appdb")).connect().await.unwrap();
    su.batch_execute("alter role appuser set search_path = public, pg_catalog")
        .await
        .unwrap();
    let url = p(&format!(
        "postgresql://appuser:{PW_ENC}@127.0.0.1:{port}/appdb?application_name=mine"
    ));
    let c = url.connect().await.unwrap();
    assert_eq!(
        one(&c, "select current_setting('search_path')").await,
        "pg_catalog, pg_temp"
    );
    assert_eq!(
        one(&c, "select current_setting('application_name')").await,
        "mine"
    );
    let c = url.connect_unpinned_for_schema_setup().await.unwrap();
    assert_eq!(
        one(&c, "select current_setting('search_path')").await,
        "public, pg_catalog"
    );
    c.batch_execute("create table made_here (id int)")
        .await
        .unwrap();
    assert_eq!(
        one(
            &su,
            "select relnamespace::regnamespace::text from pg_class where relname = 'made_here'"
        )
        .await,
        "public"
    );
    // A pinned session still finds alembic_version where Alembic does: on the role's
    // default search_path, skipping a view of that name.
    use crate::pg::catalog::{alembic_revision, alembic_table};
    su.batch_execute(
        "create table public.alembic_version (version_num varchar(32));
         insert into public.alembic_version values ('abc');
         alter table public.alembic_version owner to appuser;",
    )
    .await
    .unwrap();
    let pinned = url.connect().await.unwrap();
    assert_eq!(alembic_revision(&pinned).await.as_deref(), Some("abc"));
    su.batch_execute(
        "create schema early authorization appuser;
         create view early.alembic_version as select 'planted'::varchar(32) as version_num;
         create schema app authorization appuser;
         create table app.alembic_version (version_num varchar(32));
         insert into app.alembic_version values ('b2'), ('a1');
         grant select on app.alembic_version to appuser;
         alter role appuser set search_path = early, \"$user\", app, public;",
    )
    .await
    .unwrap();
    let pinned = url.connect().await.unwrap();
    assert_eq!(
        alembic_table(&pinned).await.as_deref(),
        Some("app.alembic_version")
    );
    assert_eq!(alembic_revision(&pinned).await.as_deref(), Some("a1,b2"));
    // Keyword/value, and the password from the environment.
    let t = with_env(
        &format!("host=127.0.0.1 port={port} user=appuser dbname=appdb"),
        &[("PGPASSWORD", PW)],
    );
    t.connect().await.unwrap();
    let t = with_env(
        &format!("postgresql://appuser@127.0.0.1:{port}/x?password={PW_ENC}&sslmode=disable"),
        &[],
    );
    let c = t.with_dbname("appdb").connect().await.unwrap();
    assert_eq!(one(&c, "select current_database()::text").await, "appdb");

    let e = conn_err(&format!(
        "postgresql://appuser:wrong@127.0.0.1:{port}/appdb"
    ))
    .await;
    assert!(
        e.contains("password authentication failed for user \"appuser\""),
        "{e}"
    );
    assert!(
        e.contains(&format!("postgresql://appuser:***@127.0.0.1:{port}/appdb")),
        "{e}"
    );
    let e = format!(
        "{:#}",
        with_env(
            &format!("postgresql://appuser@127.0.0.1:{port}/appdb"),
            &[("PGPASSWORD", "wrong")]
        )
        .connect()
        .await
        .unwrap_err()
    );
    assert!(
        e.contains("check the user name, and the password in PGPASSWORD"),
        "{e}"
    );
    let e = conn_err(&format!("postgresql://appuser@127.0.0.1:{port}/appdb")).await;
    assert!(
        e.contains("asks for a password for user \"appuser\" and none was given"),
        "{e}"
    );

    let e = conn_err(&format!(
        "postgresql://appuser:{PW_ENC}@127.0.0.1:{port}/nope"
    ))
    .await;
    assert!(
        e.contains(&format!(
            "database \"nope\" does not exist on 127.0.0.1:{port}: create it or fix the target"
        )),
        "{e}"
    );
    // Over TCP with scram a missing role looks like a bad password (the server hides
    // which); over the trusted socket it is named.
    let e = conn_err(&s.url("postgres").replace("postgres@", "ghost@")).await;
    assert!(e.contains("role \"ghost\" does not exist"), "{e}");

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free_port = free.local_addr().unwrap().port();
    drop(free);
    let e = conn_err(&format!(
        "postgresql://appuser:{PW}@127.0.0.1:{free_port}/appdb"
    ))
    .await;
    assert!(
        e.contains(&format!(
            "connection refused: nothing is listening on 127.0.0.1:{free_port}"
        )),
        "{e}"
    );
    let e = conn_err(&format!(
        "postgresql://postgres@/postgres?host={}&port={free_port}",
        s.data_dir().display()
    ))
    .await;
    assert!(e.contains("(no socket file)"), "{e}");
    let e = conn_err("postgresql://u:pw@nonexistent-host.invalid:5432/db").await;
    assert!(
        e.contains("unknown host \"nonexistent-host.invalid\""),
        "{e}"
    );

    // Several hosts: the first refuses, the second answers.
    let t = p(&format!(
        "postgresql://appuser:{PW_ENC}@127.0.0.1:{free_port},127.0.0.1:{port}/appdb?target_session_attrs=read-write"
    ));
    let c = t.connect().await.unwrap();
    assert_eq!(
        one(&c, "select inet_server_port()::text").await,
        port.to_string()
    );
    // read-write refuses a server in read-only mode.
    su.batch_execute("alter database appdb set default_transaction_read_only = on")
        .await
        .unwrap();
    let e = conn_err(&format!(
        "postgresql://appuser:{PW_ENC}@127.0.0.1:{port}/appdb?target_session_attrs=read-write"
    ))
    .await;
    assert!(
        e.contains("accepts writes (target_session_attrs=read-write)"),
        "{e}"
    );
    su.batch_execute("alter database appdb reset default_transaction_read_only")
        .await
        .unwrap();

    // A server that accepts but never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let e = conn_err(&format!(
        "postgresql://u:{PW}@127.0.0.1:{silent_port}/db?connect_timeout=1&sslmode=disable"
    ))
    .await;
    assert!(e.contains("timed out after 1 s"), "{e}");
    holder.abort();

    let e = conn_err(&format!(
        "postgresql://appuser:{PW}@127.0.0.1:{port}/appdb?sslmode=require"
    ))
    .await;
    assert!(e.contains("does not support TLS"), "{e}");
    // channel_binding=require with a server that has no TLS: refused before the password.
    let e = conn_err(&format!(
        "postgresql://appuser:{PW_ENC}@127.0.0.1:{port}/appdb?channel_binding=require"
    ))
    .await;
    assert!(
        e.contains("did not authenticate with SCRAM channel binding"),
        "{e}"
    );
    // prefer falls back to plain text.
    p(&format!(
        "postgresql://appuser:{PW_ENC}@127.0.0.1:{port}/appdb?sslmode=prefer"
    ))
    .connect()
    .await
    .unwrap();
    drop((c, su));
    stop(s).await;
}

/// A CA, a server certificate for "localhost" only, and a client certificate for `user`.
struct Certs {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn make_certs(user: &str) -> Certs {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cutover test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, user);
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = client_params.signed_by(&client_key, &issuer).unwrap();
    Certs {
        ca: ca_cert.pem(),
        server: (leaf.pem(), leaf_key.serialize_pem()),
        client: (client.pem(), client_key.serialize_pem()),
    }
}

async fn uses_tls(c: &Client) -> bool {
    c.query_one(
        "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_and_client_certificates() {
    let certs = make_certs("appuser");
    let s = start(Some(certs.server.clone())).await;
    setup_app(&s).await;
    let port = s.tcp_port();
    let ca_path = s.data_dir().join("test-ca.pem");
    std::fs::write(&ca_path, &certs.ca).unwrap();
    let ca_q = encode(&ca_path.to_string_lossy());
    let base =
        |host: &str, q: &str| format!("postgresql://appuser:{PW_ENC}@{host}:{port}/appdb?{q}");

    for q in [
        "sslmode=require",
        "sslmode=prefer",
        "sslmode=allow",
        "ssl=require",
    ] {
        let c = p(&base("127.0.0.1", q)).connect().await.unwrap();
        assert!(uses_tls(&c).await, "{q}");
    }
    let c = p(&base("127.0.0.1", "sslmode=disable"))
        .connect()
        .await
        .unwrap();
    assert!(!uses_tls(&c).await);
    let c = p(&base(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca_q}"),
    ))
    .connect()
    .await
    .unwrap();
    assert!(uses_tls(&c).await);
    // PGSSLMODE / PGSSLROOTCERT fill in for a URL that names neither.
    let ca_s = ca_path.to_str().unwrap();
    with_env(
        &format!("postgresql://appuser:{PW_ENC}@localhost:{port}/appdb"),
        &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", ca_s)],
    )
    .connect()
    .await
    .unwrap();
    let c = p(&base(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca_q}"),
    ))
    .connect()
    .await
    .unwrap();
    assert!(uses_tls(&c).await);
    // require + sslrootcert behaves like verify-ca (libpq).
    p(&base(
        "127.0.0.1",
        &format!("sslmode=require&sslrootcert={ca_q}"),
    ))
    .connect()
    .await
    .unwrap();
    // Channel binding over TLS with SCRAM.
    p(&base(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca_q}&channel_binding=require"),
    ))
    .connect()
    .await
    .unwrap();

    let e = conn_err(&base(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca_q}"),
    ))
    .await;
    assert!(e.contains("not valid for host name \"127.0.0.1\""), "{e}");
    let e = conn_err(&base("localhost", "sslmode=verify-full")).await;
    assert!(e.contains("not signed by a trusted CA"), "{e}");
    assert!(e.contains("system trust store"), "{e}");
    let e = conn_err(&base("localhost", "sslmode=verify-full&sslrootcert=system")).await;
    assert!(e.contains("not signed by a trusted CA"), "{e}");
    let e = conn_err(&base("localhost", "sslmode=verify-ca")).await;
    assert!(e.contains("not signed by a trusted CA"), "{e}");
    let e = conn_err(&base(
        "localhost",
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    ))
    .await;
    assert!(
        e.contains("cannot read sslrootcert file /nonexistent/ca.pem"),
        "{e}"
    );

    // Client certificates: the server trusts the CA and wants a certificate on TCP.
    let data = s.data_dir().join("data");
    std::fs::write(data.join("client-ca.pem"), &certs.ca).unwrap();
    let su = p(&s.url("postgres")).connect().await.unwrap();
    su.batch_execute("alter system set ssl_ca_file = 'client-ca.pem'")
        .await
        .unwrap();
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 cert\nhost all all 127.0.0.1/32 reject\n",
    )
    .unwrap();
    su.batch_execute("select pg_reload_conf()").await.unwrap();
    let (cert, key) = (
        s.data_dir().join("client.crt"),
        s.data_dir().join("client.key"),
    );
    std::fs::write(&cert, &certs.client.0).unwrap();
    write_private(&key, &certs.client.1, 0o600);
    let with_cert = format!(
        "postgresql://appuser@127.0.0.1:{port}/appdb?sslmode=require&sslcert={}&sslkey={}",
        encode(&cert.to_string_lossy()),
        encode(&key.to_string_lossy())
    );
    let mut last = String::new();
    for _ in 0..100 {
        match p(&with_cert).connect().await {
            Ok(c) => {
                assert!(uses_tls(&c).await);
                last.clear();
                break;
            }
            Err(e) => {
                last = format!("{e:#}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert!(last.is_empty(), "client certificate refused: {last}");
    // Without the certificate the server refuses.
    let e = conn_err(&base("127.0.0.1", "sslmode=require")).await;
    assert!(
        e.contains("rejected") || e.contains("refused") || e.contains("certificate"),
        "{e}"
    );

    // A server that only accepts TLS connections (hostssl in pg_hba).
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
    )
    .unwrap();
    su.batch_execute("select pg_reload_conf()").await.unwrap();
    let plain = base("127.0.0.1", "sslmode=disable");
    let mut e = String::new();
    for _ in 0..100 {
        match p(&plain).connect().await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(err) => {
                e = format!("{err:#}");
                break;
            }
        }
    }
    assert!(e.contains("the server requires TLS"), "{e}");
    assert!(!e.contains(PW), "{e}");
    p(&base("127.0.0.1", "sslmode=require"))
        .connect()
        .await
        .unwrap();
    drop((c, su));
    stop(s).await;
}
