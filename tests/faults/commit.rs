//! Interrupting a load while its COMMIT runs. A COMMIT the server has received goes through
//! whether or not cutover waits for the answer, so what cutover says must be what the
//! target holds: it waits for the answer, or looks the transaction up.

use crate::harness::{Db, Run};
use crate::{podium_args, spawn_paused, state, strs, touch};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A loaded target whose source has changed since, so the next load updates a row of
/// `users`, and a COMMIT there takes `secs` seconds (a deferred constraint trigger sleeps
/// once per transaction), then fails if `fail`. The trigger is not there for the first
/// load: a bulk load rebuilds constraints, which pending trigger events forbid. Returns
/// the target and (as it is, as a load of the changed source leaves it).
fn slow_commit(name: &str, secs: f64, fail: bool) -> (Db, String, String) {
    let db = Db::new(name);
    db.cutover("load", &[]).ok();
    db.edit_sqlite("UPDATE people SET name = 'Bob Renamed' WHERE id = 2;");
    let fresh = Db::new(&format!("{name}_fresh"));
    std::fs::copy(db.sqlite(), fresh.sqlite()).unwrap();
    fresh.cutover("load", &[]).ok();
    let raise = if fail {
        "RAISE EXCEPTION 'refused at commit time';"
    } else {
        ""
    };
    db.sql(&format!(
        "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF current_setting('cutover_test.slept', true) IS DISTINCT FROM 'yes' THEN
             PERFORM set_config('cutover_test.slept', 'yes', true);
             PERFORM pg_sleep({secs});
             {raise}
           END IF;
           RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT OR UPDATE ON users
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();"
    ));
    let (before, after) = (state(&db), state(&fresh));
    assert_ne!(before, after);
    (db, before, after)
}

/// Starts a load, lets it reach COMMIT and returns once the server is running it.
fn load_in_commit(db: &Db) -> crate::Paused {
    let resume = db.dir.join("resume");
    let args = podium_args(db, "load", &db.url, &[]);
    let p = spawn_paused(&strs(&args), &[], "commit", Some(&resume));
    touch(&resume);
    in_commit(db);
    p
}

/// Returns once a session on the database other than ours is running COMMIT.
fn in_commit(db: &Db) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.one(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND query = 'COMMIT'",
    ) != "1"
    {
        assert!(Instant::now() < deadline, "the load never reached COMMIT");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What cutover said matches what the target holds, and it is `expect`.
#[track_caller]
fn says_what_the_target_holds(db: &Db, (before, after): (&str, &str), r: &Run, expect: &str) {
    let held = if state(db) == before {
        "rolled back"
    } else if state(db) == after {
        "committed"
    } else {
        panic!("the target is neither as before nor loaded:\n{}", r.all())
    };
    let said = if r.stdout.contains("committed.") || r.stderr.contains("PostgreSQL committed it") {
        "committed"
    } else if r.stderr.contains("rolled it back") || r.stderr.contains("nothing was loaded") {
        "rolled back"
    } else {
        "nothing clear"
    };
    assert_eq!(
        said,
        held,
        "cutover said one thing, the target holds another:\n{}",
        r.all()
    );
    assert_eq!(held, expect, "{}", r.all());
}

/// Wait until the target's backend of the interrupted run is gone (its COMMIT is done).
fn settled(db: &Db) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while crate::other_backends(db) > 0 {
        assert!(
            Instant::now() < deadline,
            "the load's backend is still there"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_during_a_slow_commit_waits_for_its_answer() {
    let (db, before, after) = slow_commit("f_commit_wait", 3.0, false);
    let p = load_in_commit(&db);
    p.signal(libc::SIGINT);
    let r = p.wait(Duration::from_secs(60));
    settled(&db);
    says_what_the_target_holds(&db, (&before, &after), &r, "committed");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("Ctrl-C: COMMIT was already sent; waiting"),
        "{}",
        r.all()
    );
}

#[test]
fn a_second_ctrl_c_looks_the_transaction_up() {
    let (db, before, after) = slow_commit("f_commit_lookup", 3.0, false);
    let p = load_in_commit(&db);
    p.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(500));
    p.signal(libc::SIGINT);
    let r = p.wait(Duration::from_secs(60));
    settled(&db);
    says_what_the_target_holds(&db, (&before, &after), &r, "committed");
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.stderr
            .contains("interrupted (Ctrl-C) while COMMIT was running; PostgreSQL committed it"),
        "{}",
        r.all()
    );
    db.cutover("verify", &[]).ok();
}

#[test]
fn sigterm_during_a_commit_that_fails_says_it_rolled_back() {
    let (db, before, after) = slow_commit("f_commit_refused", 2.0, true);
    let p = load_in_commit(&db);
    p.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(500));
    p.signal(libc::SIGTERM);
    let r = p.wait(Duration::from_secs(60));
    settled(&db);
    says_what_the_target_holds(&db, (&before, &after), &r, "rolled back");
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.stderr
            .contains("interrupted (SIGTERM) while COMMIT was running; PostgreSQL rolled it back"),
        "{}",
        r.all()
    );
}

/// A TCP proxy to the test cluster whose connections can be cut on cutover's side: cutover
/// sees its connection closed, while the server goes on with what it was doing and finds
/// out only when it next reads, as when a network path breaks.
struct Proxy {
    port: u16,
    clients: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn to(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let clients = Arc::new(Mutex::new(Vec::new()));
        let kept = clients.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                kept.lock().unwrap().push(client.try_clone().unwrap());
                // An end of stream is passed on, so a backend whose client has gone sees it
                // once it reads again (it reads nothing while it runs a statement).
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    })
                };
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Proxy { port, clients }
    }

    /// Closes every connection made so far on cutover's side.
    fn cut(&self) {
        for c in self.clients.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn a_connection_lost_during_commit_is_looked_up() {
    let (db, before, after) = slow_commit("f_commit_cut", 3.0, false);
    db.sql(
        "DROP ROLE IF EXISTS f_commit_cut; CREATE ROLE f_commit_cut LOGIN SUPERUSER PASSWORD 'cut-pw-1'",
    );
    let proxy = Proxy::to(crate::harness::tcp_port());
    let url = format!(
        "postgresql://f_commit_cut:cut-pw-1@127.0.0.1:{}/{}?sslmode=disable",
        proxy.port, db.name
    );
    let resume = db.dir.join("resume");
    let args = podium_args(&db, "load", &url, &[]);
    let p = spawn_paused(&strs(&args), &[], "commit", Some(&resume));
    touch(&resume);
    in_commit(&db);
    proxy.cut();
    let r = p.wait(Duration::from_secs(60));
    settled(&db);
    says_what_the_target_holds(&db, (&before, &after), &r, "committed");
    assert_eq!(r.code, 0, "{}", r.all());
}
