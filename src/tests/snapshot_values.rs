//! A snapshot holds exactly what its source held: every value of a table of tricky values
//! (mixed SQLite types, invalid UTF-8, blobs, NUL, float bits) is read back through the
//! snapshot source and compared one by one with what the SQLite source yields.

use crate::source::snapshot::reader::SnapshotSource;
use crate::source::sqlite::SqliteSource;
use crate::source::{Record, Source};
use crate::value::Value;
use clap::Parser;
use cutover_testkit::TRICKY_TEXTS;
use std::path::Path;

/// `cutover export -m MAPPING --out DIR`, run in-process through the command line parser.
fn export(mapping: &Path, out: &Path) {
    let cli = crate::cli::Cli::try_parse_from([
        "cutover",
        "export",
        "-m",
        mapping.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ])
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = rt.block_on(crate::commands::run(cli)).unwrap();
    let shown = outcome.show();
    assert!(
        !shown
            .iter()
            .any(|p| matches!(p, crate::commands::Part::Error(_))),
        "the export failed"
    );
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A value owned, for comparing what two sources yield.
#[derive(Debug, PartialEq)]
enum Owned {
    Null,
    Bool(bool),
    Int(i64),
    /// By bits: 0.1 + 0.2 must not come back as 0.3, nor -0.0 as 0.0.
    Float(u64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
    Json(serde_json::Value),
}

fn owned(v: Value<'_>) -> Owned {
    match v {
        Value::Null => Owned::Null,
        Value::Bool(b) => Owned::Bool(b),
        Value::Int(i) => Owned::Int(i),
        Value::Float(f) => Owned::Float(f.to_bits()),
        Value::Text(t) => Owned::Text(t.to_vec()),
        Value::Blob(b) => Owned::Blob(b.to_vec()),
        Value::Json(j) => Owned::Json(j.clone()),
    }
}

fn read_all(source: &mut dyn Source, table: &str) -> Vec<Vec<Owned>> {
    let fields = source
        .tables()
        .unwrap()
        .into_iter()
        .find(|t| t.name == table)
        .unwrap_or_else(|| panic!("no table {table}"))
        .fields;
    let mut rows = Vec::new();
    let n = source
        .scan(table, &fields, &mut |r: &dyn Record| {
            rows.push((0..fields.len()).map(|i| owned(r.get(i))).collect());
            Ok(())
        })
        .unwrap();
    assert_eq!(n as usize, rows.len());
    assert_eq!(source.count(table).unwrap(), n);
    rows
}

#[test]
fn tricky_values_round_trip_exactly() {
    let dir = std::env::temp_dir().join(format!("cutover-it-{}-snap_tricky", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("tricky.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    // `v` has no declared type, so SQLite keeps every value as given: the same column holds
    // integers, reals, text, blobs and NULL, as messy legacy columns do.
    conn.execute_batch(
        "CREATE TABLE tricky (id INTEGER PRIMARY KEY, v, note TEXT);
         CREATE TABLE single (v);
         INSERT INTO single VALUES (NULL), (''), ('x'), (NULL);",
    )
    .unwrap();
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    use rusqlite::types::Value as S;
    for t in TRICKY_TEXTS {
        values.push(S::Text(t.to_string()));
    }
    values.extend([
        S::Null,
        S::Integer(12),
        S::Real(12.0),
        S::Text("12".into()),
        S::Integer(i64::MAX),
        S::Integer(i64::MIN),
        S::Real(0.1 + 0.2),
        S::Real(-0.0),
        S::Real(1e300),
        S::Real(5e-324),
        S::Real(std::f64::consts::PI),
        S::Blob(vec![0, 1, 2, 0xff, b',', b'"', b'\n']),
        S::Blob(vec![]),
        S::Text("nul\0inside".into()),
    ]);
    for (i, v) in values.iter().enumerate() {
        conn.execute(
            "INSERT INTO tricky (id, v, note) VALUES (?1, ?2, ?3)",
            rusqlite::params![i as i64 + 1, v, format!("row {i}")],
        )
        .unwrap();
    }
    // Invalid UTF-8 stored as text (SQLite does not check).
    conn.execute_batch(
        "INSERT INTO tricky (id, v, note) VALUES (1000, CAST(x'fffe41c3' AS TEXT), CAST(x'80' AS TEXT));",
    )
    .unwrap();
    let kind: String = conn
        .query_row("SELECT typeof(v) FROM tricky WHERE id = 1000", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(kind, "text");
    drop(conn);

    let mapping = write(
        &dir,
        "tricky.toml",
        "[source]\nkind = \"sqlite\"\npath = \"tricky.sqlite\"\n\n\
         [tables.tricky]\nkeep_id = true\n[tables.tricky.columns]\nv = \"v\"\n\n\
         [tables.single]\nkeep_id = true\nlegacy_id = \"v\"\n[tables.single.columns]\nv = \"v\"\n",
    );
    let snap = dir.join("snap");
    export(&mapping, &snap);

    let mut sqlite = SqliteSource::open(&db).unwrap();
    let mut snapshot = SnapshotSource::open(&snap).unwrap();
    for table in ["tricky", "single"] {
        let want = read_all(&mut sqlite, table);
        let got = read_all(&mut snapshot, table);
        assert_eq!(want.len(), got.len(), "{table}");
        for (w, g) in want.iter().zip(&got) {
            assert_eq!(w, g, "{table}");
        }
    }
    // A subset of fields, in another order, reads the same values.
    let fields = vec!["note".to_string(), "id".to_string()];
    let mut got = Vec::new();
    snapshot
        .scan("tricky", &fields, &mut |r: &dyn Record| {
            got.push((owned(r.get(0)), owned(r.get(1))));
            Ok(())
        })
        .unwrap();
    assert_eq!(got[0], (Owned::Text(b"row 0".to_vec()), Owned::Int(1)));
    assert_eq!(got.last().unwrap().0, Owned::Text(vec![0x80]));

    // The file is valid UTF-8 CSV a spreadsheet opens: the plain cells are the values.
    let csv = std::fs::read_to_string(snap.join("tricky.csv")).unwrap();
    assert!(
        csv.starts_with("id,v,note\r\n1,\"comma, inside\",row 0\r\n"),
        "{csv}"
    );
    assert!(csv.contains("\r\n8,\\s:\\N,row 7\r\n"), "{csv}");
    let _ = std::fs::remove_dir_all(&dir);
}
