//! An application's schema, legacy SQLite file and mapping in a fresh database, and the
//! round every real-schema test makes: check, load, a second load that writes nothing,
//! verify — with `pg_dump -s` the same before and after.

use crate::harness::{Db, Run, run, write};
use std::path::PathBuf;

/// One application: its schema in a fresh database, its legacy SQLite file, its mapping.
pub(crate) struct App {
    pub(crate) db: Db,
    pub(crate) mapping: PathBuf,
    pub(crate) source: String,
}

impl App {
    pub(crate) fn new(test: &str, schema: &str, legacy: &str, mapping: &str) -> App {
        let db = Db::bare(test);
        db.sql(schema);
        let sqlite = db.dir.join("legacy.sqlite");
        rusqlite::Connection::open(&sqlite)
            .unwrap()
            .execute_batch(legacy)
            .unwrap();
        let mapping = write(&db.dir, "app.toml", mapping);
        App {
            source: format!("sqlite:{}", sqlite.display()),
            db,
            mapping,
        }
    }

    pub(crate) fn cutover(&self, cmd: &str) -> Run {
        self.run_with(cmd, &[])
    }

    /// `cutover CMD` with the app's mapping, source and target, and `extra` arguments.
    pub(crate) fn run_with(&self, cmd: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            cmd,
            "-m",
            self.mapping.to_str().unwrap(),
            "--source",
            &self.source,
            "--target",
            &self.db.url,
        ];
        args.extend_from_slice(extra);
        run(&args)
    }

    /// Run SQL on the legacy SQLite file: the source changed since the last load.
    pub(crate) fn edit_source(&self, statements: &str) {
        let path = self.source.strip_prefix("sqlite:").unwrap();
        rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(statements)
            .unwrap();
    }

    /// The schema as `pg_dump -s` writes it.
    pub(crate) fn schema(&self) -> String {
        let pg_dump = cutover_testkit::find_bindir().unwrap().join("pg_dump");
        let out = std::process::Command::new(pg_dump)
            .args(["-s", "--no-owner", &self.db.url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Each dump carries a random `\restrict` key: not part of the schema.
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// check, load, a second load that writes nothing, verify — the schema untouched.
    pub(crate) fn loads_and_converges(&self) {
        let schema = self.schema();
        self.cutover("check").ok();
        self.cutover("load").ok();
        let stats = self.db.tuple_stats();
        self.cutover("load").ok();
        assert_eq!(self.db.tuple_stats(), stats, "a second run wrote rows");
        self.cutover("verify").ok();
        assert_eq!(self.schema(), schema, "the load changed the schema");
    }
}
