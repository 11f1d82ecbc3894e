//! The rest of what application schemas carry, loaded as they are: generated columns,
//! GENERATED ALWAYS identities, defaults, row level security, and an application in a schema
//! of its own with its own `alembic_version`.

use crate::app::App;
use crate::harness::{run, tcp_port};

#[test]
fn generated_columns_always_identities_and_defaults_keep_working() {
    let app = App::new(
        "checks_generated",
        "CREATE TABLE product (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL,
                               price_cents integer NOT NULL,
                               price numeric GENERATED ALWAYS AS (price_cents / 100.0) STORED,
                               slug text NOT NULL GENERATED ALWAYS AS (lower(name)) STORED,
                               created_at timestamptz NOT NULL DEFAULT now(), legacy_id text UNIQUE);
         CREATE TABLE line (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                            product_id integer NOT NULL REFERENCES product (id),
                            qty integer NOT NULL DEFAULT 1, legacy_id text UNIQUE);",
        "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, cents INTEGER);
         INSERT INTO products VALUES (7, 'Tea', 450), (9, 'Cake', 300);
         CREATE TABLE lines (id INTEGER PRIMARY KEY, product INTEGER);
         INSERT INTO lines VALUES (1, 9), (2, 7);",
        "[tables.product]\nfrom = \"products\"\nkeep_id = true\nlegacy_column = \"legacy_id\"\n\
         [tables.product.columns]\nname = \"name\"\nprice_cents = \"cents\"\n\n\
         [tables.line]\nfrom = \"lines\"\nlegacy_column = \"legacy_id\"\n\
         [tables.line.columns]\nproduct_id = { field = \"product\", references = \"product\" }\n",
    );
    app.loads_and_converges();
    // Ids kept into GENERATED ALWAYS (OVERRIDING SYSTEM VALUE), the generated columns
    // computed, the defaults filled; the application's next INSERTs get new ids.
    assert_eq!(
        app.db.one(
            "SELECT string_agg(id || ' ' || slug || ' ' || price || ' ' || (created_at IS NOT NULL), ', ' ORDER BY id) FROM product"
        ),
        "7 tea 4.5000000000000000 true, 9 cake 3.0000000000000000 true"
    );
    assert_eq!(
        app.db.one("SELECT string_agg(qty::text, ',') FROM line"),
        "1,1"
    );
    assert_eq!(
        app.db
            .one("INSERT INTO product (name, price_cents) VALUES ('Jam', 1) RETURNING id"),
        "10"
    );
    app.db.sql("INSERT INTO line (product_id) VALUES (10)");

    // A mapping that writes a generated column is refused, naming it.
    std::fs::write(
        &app.mapping,
        std::fs::read_to_string(&app.mapping).unwrap().replace(
            "price_cents = \"cents\"\n",
            "price_cents = \"cents\"\nprice = \"cents\"\n",
        ),
    )
    .unwrap();
    let check = app.cutover("check");
    check.fails(2);
    assert!(
        check.stderr.contains(
            "`price` is a generated column: PostgreSQL computes it, remove it from the mapping"
        ),
        "{}",
        check.stderr
    );
}

#[test]
fn expect_revision_reads_the_alembic_version_of_the_mappings_schema() {
    // An application in a schema of its own, its version table beside its tables; another
    // application's alembic_version in public, first on the search path.
    let app = App::new(
        "checks_revision",
        "CREATE SCHEMA shop;
         CREATE TABLE shop.alembic_version (version_num varchar(32) PRIMARY KEY);
         INSERT INTO shop.alembic_version VALUES ('shop0042');
         CREATE TABLE public.alembic_version (version_num varchar(32) PRIMARY KEY);
         INSERT INTO public.alembic_version VALUES ('blog0007');
         CREATE TABLE shop.customer (id serial PRIMARY KEY, name text NOT NULL, legacy_id text UNIQUE);",
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO customers VALUES (1, 'Ada');",
        "[target]\nschema = \"shop\"\nexpect_revision = \"shop0042\"\n\n\
         [tables.customer]\nfrom = \"customers\"\nlegacy_column = \"legacy_id\"\n\
         [tables.customer.columns]\nname = \"name\"\n",
    );
    app.cutover("check").ok();
    let report = app.db.dir.join("load.json");
    let load = run(&[
        "load",
        "-m",
        app.mapping.to_str().unwrap(),
        "--source",
        &app.source,
        "--target",
        &app.db.url,
        "--report",
        report.to_str().unwrap(),
    ]);
    load.ok();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["alembic_revision"], "shop0042");
    assert_eq!(app.db.one("SELECT count(*) FROM shop.customer"), "1");
    // The other application's revision is not this one's.
    std::fs::write(
        &app.mapping,
        std::fs::read_to_string(&app.mapping)
            .unwrap()
            .replace("shop0042", "blog0007"),
    )
    .unwrap();
    let wrong = app.cutover("load");
    wrong.fails(2);
    assert!(
        wrong.stderr.contains(
            "the target schema is at Alembic revision shop0042, but the mapping expects blog0007"
        ),
        "{}",
        wrong.stderr
    );
    assert!(
        app.cutover("check")
            .fails(2)
            .stderr
            .contains("not at Alembic revision blog0007")
    );
}

#[test]
fn check_says_whether_row_level_security_binds_the_load() {
    let app = App::new(
        "checks_rls",
        "CREATE TABLE note (id serial PRIMARY KEY, tenant text NOT NULL DEFAULT 'a', body text,
                            legacy_id text UNIQUE);
         ALTER TABLE note ENABLE ROW LEVEL SECURITY;
         CREATE POLICY note_tenant ON note USING (tenant = current_setting('app.tenant', true));",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, tenant TEXT, body TEXT);
         INSERT INTO notes VALUES (1, 'a', 'x'), (2, 'b', 'y');",
        "[tables.note]\nfrom = \"notes\"\nlegacy_column = \"legacy_id\"\n\
         [tables.note.columns]\ntenant = \"tenant\"\nbody = \"body\"\n",
    );
    let check = app.cutover("check");
    check.ok();
    let words = check
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        words.contains("row level security on note (1 policy): the load's role `postgres` owns the table or bypasses row security, so its policies do not apply to the load"),
        "{}",
        check.stdout
    );
    // The owner loads every row, whatever the policies; the application's role still sees
    // only its tenant's.
    app.loads_and_converges();
    assert_eq!(app.db.one("SELECT count(*) FROM note"), "2");

    // A role the policies bind is told, before it loads.
    app.db.sql(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rls_loader') THEN CREATE ROLE rls_loader LOGIN PASSWORD 'pw'; END IF; END $$;
         GRANT ALL ON ALL TABLES IN SCHEMA public TO rls_loader;
         GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO rls_loader;
         GRANT ALL ON DATABASE \"{}\" TO rls_loader;",
        app.db.name
    ));
    let url = format!(
        "postgresql://rls_loader:pw@127.0.0.1:{}/{}?sslmode=disable",
        tcp_port(),
        app.db.name
    );
    let check = run(&[
        "check",
        "-m",
        app.mapping.to_str().unwrap(),
        "--source",
        &app.source,
        "--target",
        &url,
    ]);
    check.ok();
    let words = check
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        words.contains("its policies apply to the load's role `rls_loader`")
            && words.contains("row level security on `note` binds the load's role `rls_loader`")
            && words.contains("load as the table's owner or a role with BYPASSRLS"),
        "{}",
        check.stdout
    );
}
