//! Self-references and cycles of references, as application schemas have them: a table
//! whose rows point at rows of their own table (a row may point at a later one), and two
//! tables that point at each other with NOT NULL on one side. Each loads as it is, in a
//! first load, a re-run that writes nothing, `--mode replace` and a merge of a changed
//! source; `verify` finds no difference, the schema is unchanged, the application's INSERT
//! works afterwards. A cycle that no order can load is refused by `check`, saying why.

use crate::app::App;
use crate::harness::cell;

const EMPLOYEES: &str = "
    CREATE TABLE employee (id serial PRIMARY KEY, name text NOT NULL,
                           reports_to integer REFERENCES employee (id), legacy_id text UNIQUE);
    CREATE TABLE comment (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL,
                          author_id integer NOT NULL REFERENCES employee (id),
                          parent_id bigint REFERENCES comment (id) ON DELETE CASCADE,
                          legacy_id text UNIQUE);";

const EMPLOYEES_LEGACY: &str = "
    CREATE TABLE staff (id INTEGER PRIMARY KEY, name TEXT, boss INTEGER);
    -- Ada reports to Grace, who comes later in the source; Grace reports to nobody.
    INSERT INTO staff VALUES (1, 'Ada', 3), (2, 'Linus', 1), (3, 'Grace', NULL), (4, 'Ken', 3);
    CREATE TABLE comments (id INTEGER PRIMARY KEY, body TEXT, author INTEGER, parent INTEGER);
    INSERT INTO comments VALUES (10, 'a reply to a later comment', 2, 12), (11, 'a reply', 1, 10),
                                (12, 'the first post', 3, NULL);";

const EMPLOYEES_MAPPING: &str = "
[tables.employee]
from = \"staff\"
legacy_column = \"legacy_id\"
[tables.employee.columns]
name = \"name\"
reports_to = { field = \"boss\", references = \"employee\" }

[tables.comment]
from = \"comments\"
legacy_column = \"legacy_id\"
[tables.comment.columns]
body = \"body\"
author_id = { field = \"author\", references = \"employee\" }
parent_id = { field = \"parent\", references = \"comment\" }
";

const BOSSES: &str =
    "SELECT string_agg(e.name || '>' || coalesce(b.name, '-'), ', ' ORDER BY e.legacy_id)
                        FROM employee e LEFT JOIN employee b ON b.id = e.reports_to";
const THREADS: &str =
    "SELECT string_agg(c.legacy_id || '>' || coalesce(p.legacy_id, '-'), ', ' ORDER BY c.legacy_id)
                         FROM comment c LEFT JOIN comment p ON p.id = c.parent_id";

#[test]
fn a_table_referencing_its_own_rows_loads_also_a_row_pointing_at_a_later_one() {
    let app = App::new(
        "cycles_self",
        EMPLOYEES,
        EMPLOYEES_LEGACY,
        EMPLOYEES_MAPPING,
    );
    let check = app.cutover("check");
    check.ok();
    assert!(
        check.stdout.contains(
            "reports_to -> employee (on_missing = \"error\"); set once the table is\n         written: it points at rows of its own table"
        ),
        "{}",
        check.stdout
    );
    app.loads_and_converges();
    assert_eq!(
        app.db.one(BOSSES),
        "Ada>Grace, Linus>Ada, Grace>-, Ken>Grace"
    );
    assert_eq!(app.db.one(THREADS), "10>12, 11>10, 12>-");

    // --mode replace gives the same links, verify agrees.
    app.run_with("load", &["--mode", "replace"]).ok();
    assert_eq!(
        app.db.one(BOSSES),
        "Ada>Grace, Linus>Ada, Grace>-, Ken>Grace"
    );
    app.cutover("verify").ok();

    // A merge of a changed source: Ken now reports to a new employee, Margaret, who comes
    // later in the source; Ada to nobody. Counted as written, then converged.
    app.edit_source(
        "INSERT INTO staff VALUES (5, 'Margaret', NULL); UPDATE staff SET boss = 5 WHERE id = 4;
         UPDATE staff SET boss = NULL WHERE id = 1;",
    );
    let merged = app.run_with("load", &[]);
    merged.ok();
    assert_eq!(
        cell(&merged.stdout, "employee", "inserted").as_deref(),
        Some("1")
    );
    assert_eq!(
        app.db.one(BOSSES),
        "Ada>-, Linus>Ada, Grace>-, Ken>Margaret, Margaret>-"
    );
    app.cutover("verify").ok();
    let again = app.run_with("load", &[]);
    again.ok();
    assert!(again.stdout.contains("nothing to do"), "{}", again.stdout);

    // The application's own INSERTs.
    app.db.sql(
        "INSERT INTO employee (name, reports_to) SELECT 'new', id FROM employee WHERE legacy_id = '3';
         INSERT INTO comment (body, author_id) SELECT 'new', id FROM employee WHERE legacy_id = '3'",
    );
}

#[test]
fn a_dangling_self_reference_follows_on_missing() {
    let legacy = "CREATE TABLE staff (id INTEGER PRIMARY KEY, name TEXT, boss INTEGER);
                  INSERT INTO staff VALUES (1, 'Ada', 99), (2, 'Linus', 1);
                  CREATE TABLE comments (id INTEGER PRIMARY KEY, body TEXT, author INTEGER, parent INTEGER);";
    let app = App::new("cycles_dangling", EMPLOYEES, legacy, EMPLOYEES_MAPPING);
    // The default, "error": the row is a reject, and nothing is committed.
    let refused = app.run_with("load", &[]);
    refused.fails(1);
    assert!(
        refused
            .all()
            .contains("references `employee` legacy id 99, which is not in the target"),
        "{}",
        refused.all()
    );
    assert_eq!(app.db.one("SELECT count(*) FROM employee"), "0");
    // "null": loaded with the reference NULL, and counted.
    std::fs::write(
        &app.mapping,
        EMPLOYEES_MAPPING.replace(
            "references = \"employee\" }\n\n",
            "references = \"employee\", on_missing = \"null\" }\n\n",
        ),
    )
    .unwrap();
    let loaded = app.run_with("load", &[]);
    loaded.ok();
    assert!(
        loaded
            .stdout
            .contains("references set to NULL (on_missing = \"null\"): employee 1"),
        "{}",
        loaded.stdout
    );
    assert_eq!(app.db.one(BOSSES), "Ada>-, Linus>Ada");
    app.cutover("verify").ok();
}

/// Sakila's two stores and their staff: a store's manager is one of its staff.
const STORES: &str = "
    CREATE TABLE store (store_id serial PRIMARY KEY, manager_staff_id integer,
                        address text NOT NULL, legacy_id text UNIQUE,
                        last_update timestamptz NOT NULL DEFAULT now());
    CREATE TABLE staff (staff_id serial PRIMARY KEY, first_name text NOT NULL,
                        store_id integer NOT NULL REFERENCES store (store_id),
                        legacy_id text UNIQUE);
    ALTER TABLE store ADD CONSTRAINT store_manager_staff_id_fkey
        FOREIGN KEY (manager_staff_id) REFERENCES staff (staff_id);";

const STORES_LEGACY: &str = "
    CREATE TABLE stores (id INTEGER PRIMARY KEY, manager INTEGER, address TEXT);
    INSERT INTO stores VALUES (1, 1, '47 MySakila Drive'), (2, 2, '28 MySQL Boulevard');
    CREATE TABLE staff (id INTEGER PRIMARY KEY, first_name TEXT, store INTEGER);
    INSERT INTO staff VALUES (1, 'Mike', 1), (2, 'Jon', 2), (3, 'Ann', 2);";

/// The staff first in the file: the order still starts with the stores, since only the
/// store's reference to its manager can be written NULL.
const STORES_MAPPING: &str = "
[tables.staff]
legacy_column = \"legacy_id\"
[tables.staff.columns]
first_name = \"first_name\"
store_id = { field = \"store\", references = \"store\" }

[tables.store]
from = \"stores\"
legacy_column = \"legacy_id\"
[tables.store.columns]
address = \"address\"
manager_staff_id = { field = \"manager\", references = \"staff\" }
";

const MANAGERS: &str = "SELECT string_agg(s.address || '=' || coalesce(m.first_name, '-') || '@' || coalesce(ms.address, '-'), ', ' ORDER BY s.legacy_id)
                          FROM store s LEFT JOIN staff m ON m.staff_id = s.manager_staff_id
                          LEFT JOIN store ms ON ms.store_id = m.store_id";

#[test]
fn two_tables_referencing_each_other_load_with_not_null_on_one_side() {
    let app = App::new("cycles_two", STORES, STORES_LEGACY, STORES_MAPPING);
    let check = app.cutover("check");
    check.ok();
    let out = &check.stdout;
    let (store, staff) = (
        out.find("1. store <- stores").expect(out),
        out.find("2. staff <- staff").expect(out),
    );
    assert!(store < staff, "{out}");
    assert!(
        out.contains("manager_staff_id -> staff (on_missing = \"error\"); set once every table is\n         written: it closes a cycle of references"),
        "{out}"
    );
    app.loads_and_converges();
    let both =
        "47 MySakila Drive=Mike@47 MySakila Drive, 28 MySQL Boulevard=Jon@28 MySQL Boulevard";
    assert_eq!(app.db.one(MANAGERS), both);

    app.run_with("load", &["--mode", "replace"]).ok();
    assert_eq!(app.db.one(MANAGERS), both);
    app.cutover("verify").ok();

    // The second store gets a new manager, a new member of staff: merged, then converged.
    app.edit_source(
        "INSERT INTO staff VALUES (4, 'Kim', 2); UPDATE stores SET manager = 4 WHERE id = 2;",
    );
    app.run_with("load", &[]).ok();
    assert_eq!(
        app.db.one(MANAGERS),
        "47 MySakila Drive=Mike@47 MySakila Drive, 28 MySQL Boulevard=Kim@28 MySQL Boulevard"
    );
    app.cutover("verify").ok();
    let stats = app.db.tuple_stats();
    let again = app.run_with("load", &[]);
    again.ok();
    assert!(again.stdout.contains("nothing to do"), "{}", again.stdout);
    assert_eq!(app.db.tuple_stats(), stats, "a re-run wrote rows");

    // The application's own INSERTs: a store, then its manager.
    app.db.sql(
        "WITH s AS (INSERT INTO store (address) VALUES ('new') RETURNING store_id)
         INSERT INTO staff (first_name, store_id) SELECT 'new', store_id FROM s",
    );
}

#[test]
fn a_cycle_of_not_null_references_is_refused_by_check_with_the_way_out() {
    let schema = STORES.replace(
        "manager_staff_id integer,",
        "manager_staff_id integer NOT NULL,",
    );
    let app = App::new("cycles_refused", &schema, STORES_LEGACY, STORES_MAPPING);
    let check = app.cutover("check");
    check.fails(2);
    let err = check.stderr.replace('\n', " ");
    assert!(
        err.contains("the references form a cycle no load order can satisfy"),
        "{err}"
    );
    assert!(
        err.contains("staff -> store (staff.store_id (NOT NULL))"),
        "{err}"
    );
    assert!(
        err.contains("store -> staff (store.manager_staff_id (NOT NULL))"),
        "{err}"
    );
    assert!(err.contains("Make one of these columns nullable"), "{err}");
    // A load is refused the same way, before anything is written.
    app.run_with("load", &[]).fails(2);
    assert_eq!(app.db.one("SELECT count(*) FROM store"), "0");
}

/// The same two tables with ids kept and the links filled as they are (no `references`):
/// both NOT NULL, both foreign keys DEFERRABLE.
const KEPT: &str = "
    CREATE TABLE store (store_id integer PRIMARY KEY, manager_staff_id integer NOT NULL,
                        address text NOT NULL);
    CREATE TABLE staff (staff_id integer PRIMARY KEY, first_name text NOT NULL,
                        store_id integer NOT NULL REFERENCES store (store_id) DEFERRABLE);
    ALTER TABLE store ADD CONSTRAINT store_manager_staff_id_fkey
        FOREIGN KEY (manager_staff_id) REFERENCES staff (staff_id) DEFERRABLE INITIALLY IMMEDIATE;";

const KEPT_MAPPING: &str = "
[tables.store]
from = \"stores\"
keep_id = true
[tables.store.columns]
address = \"address\"
manager_staff_id = \"manager\"

[tables.staff]
keep_id = true
[tables.staff.columns]
first_name = \"first_name\"
store_id = \"store\"
";

#[test]
fn a_cycle_of_deferrable_foreign_keys_loads_with_them_checked_at_the_end() {
    let app = App::new("cycles_deferrable", KEPT, STORES_LEGACY, KEPT_MAPPING);
    let check = app.cutover("check");
    check.ok();
    assert!(
        check.stdout.contains(
            "foreign keys checked once every table is written (they close a cycle):\n  public.store_manager_staff_id_fkey"
        ) || check.stdout.contains("(they close a cycle): public.store_manager_staff_id_fkey"),
        "{}",
        check.stdout
    );
    app.loads_and_converges();
    // A new store whose manager is new too: each row references one not yet written.
    app.edit_source(
        "INSERT INTO stores VALUES (3, 4, '1 New Street'); INSERT INTO staff VALUES (4, 'Kim', 3);",
    );
    app.run_with("load", &[]).ok();
    assert_eq!(
        app.db.one(
            "SELECT s.address || '=' || m.first_name FROM store s JOIN staff m ON m.staff_id = s.manager_staff_id WHERE s.store_id = 3"
        ),
        "1 New Street=Kim"
    );
    app.cutover("verify").ok();
    let again = app.run_with("load", &[]);
    again.ok();
    assert!(again.stdout.contains("nothing to do"), "{}", again.stdout);
    // The foreign keys are checked all the same, before anything commits.
    app.edit_source("INSERT INTO stores VALUES (5, 99, 'Nowhere');");
    let bad = app.run_with("load", &[]);
    bad.fails(1);
    assert!(
        bad.stderr
            .contains("checking the foreign keys that close a cycle"),
        "{}",
        bad.stderr
    );
    assert_eq!(app.db.one("SELECT count(*) FROM store"), "3");
    // Without DEFERRABLE no order can load them, and check says what would.
    let app = App::new(
        "cycles_not_deferrable",
        &KEPT
            .replace(" DEFERRABLE INITIALLY IMMEDIATE", "")
            .replace(" DEFERRABLE", ""),
        STORES_LEGACY,
        KEPT_MAPPING,
    );
    let check = app.cutover("check");
    check.fails(2);
    let err = check.stderr.replace('\n', " ");
    assert!(
        err.contains("store.manager_staff_id (a foreign key filled without `references`)"),
        "{err}"
    );
    assert!(
        err.contains("make a foreign key filled without `references` DEFERRABLE"),
        "{err}"
    );
}

#[test]
fn a_deferrable_foreign_key_to_its_own_table_lets_an_updated_row_point_at_a_new_one() {
    // Ids kept, the link filled as it is: a re-run updates rows before inserting new ones,
    // so an existing row pointing at a new one needs the check at the end of the load.
    let app = App::new(
        "cycles_self_deferrable",
        "CREATE TABLE employee (id integer PRIMARY KEY, name text NOT NULL,
                                reports_to integer REFERENCES employee (id) DEFERRABLE);",
        "CREATE TABLE staff (id INTEGER PRIMARY KEY, name TEXT, boss INTEGER);
         INSERT INTO staff VALUES (1, 'Ada', 2), (2, 'Grace', NULL);",
        "[tables.employee]\nfrom = \"staff\"\nkeep_id = true\n[tables.employee.columns]\nname = \"name\"\nreports_to = \"boss\"\n",
    );
    app.loads_and_converges();
    app.edit_source(
        "INSERT INTO staff VALUES (3, 'Margaret', NULL); UPDATE staff SET boss = 3 WHERE id = 1;",
    );
    app.run_with("load", &[]).ok();
    assert_eq!(
        app.db.one(BOSSES.replace("e.legacy_id", "e.id").as_str()),
        "Ada>Margaret, Grace>-, Margaret>-"
    );
    app.cutover("verify").ok();
}

#[test]
fn a_not_null_reference_to_its_own_table_is_refused_with_the_way_out() {
    let app = App::new(
        "cycles_self_not_null",
        &EMPLOYEES.replace(
            "reports_to integer REFERENCES",
            "reports_to integer NOT NULL REFERENCES",
        ),
        EMPLOYEES_LEGACY,
        EMPLOYEES_MAPPING,
    );
    let check = app.cutover("check");
    check.fails(2);
    assert!(
        check.stderr.replace('\n', " ").contains(
            "`employee.reports_to` is NOT NULL and references its own table: every row would need the row it references written first. Make the column nullable"
        ),
        "{}",
        check.stderr
    );
}
