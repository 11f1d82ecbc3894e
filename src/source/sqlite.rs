//! The SQLite source: opened read-only, every table read inside one read transaction so the
//! extract is consistent even if the old application is still writing. Before anything is
//! read, the file is checked to be a whole, committed database (`consistency`): a torn copy
//! or a damaged file is refused, never read in part. Values are taken as SQLite stores them
//! (type affinity is loose) and converted later per target column.

mod consistency;

use super::{Record, Source, SourceTable};
use crate::error::unavailable;
use crate::pg::sql::ident;
use crate::value::Value;
use anyhow::Context;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

pub struct SqliteSource {
    path: PathBuf,
    conn: Connection,
}

impl SqliteSource {
    pub fn open(path: &Path) -> anyhow::Result<SqliteSource> {
        if !path.is_file() {
            return Err(unavailable(format!(
                "SQLite source {} does not exist or is not a file",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| unavailable(format!("cannot open SQLite source {}: {e}", path.display())))?;
        // Wait a while for a writer to finish rather than failing at once.
        conn.busy_timeout(std::time::Duration::from_secs(10)).ok();
        let source = SqliteSource {
            path: path.to_path_buf(),
            conn,
        };
        // Start the read transaction and take the snapshot now: the first read acquires it.
        source
            .conn
            .execute_batch("BEGIN DEFERRED; SELECT count(*) FROM sqlite_master;")
            .map_err(|e| {
                if consistency::is_hot_journal(&e) {
                    consistency::hot_journal(path)
                } else {
                    source.error(e, "reading its schema")
                }
            })?;
        // Inside the transaction: the log's committed frames and the pages checked are the
        // ones every later read sees.
        consistency::check_wal(path)?;
        consistency::quick_check(&source.conn, path)?;
        Ok(source)
    }

    fn error(&self, e: rusqlite::Error, doing: &str) -> anyhow::Error {
        let hint = match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => {
                ": the file is not a SQLite database (or is encrypted)".to_string()
            }
            Some(rusqlite::ErrorCode::DatabaseCorrupt) => format!(
                ": the file is damaged; if it was copied while its application was writing, {}",
                consistency::COPY_ADVICE
            ),
            Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)
                if consistency::beside(&self.path, "-wal").exists() =>
            {
                format!(
                    ": its write-ahead log {} cannot be read read-only, which needs the \
                     shared-memory file (-shm) beside it to exist or to be creatable; {}, \
                     somewhere you can write, and read the copy",
                    consistency::beside(&self.path, "-wal").display(),
                    consistency::COPY_ADVICE
                )
            }
            Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
                format!(
                    ": another process holds a write lock; stop the old application, or {}",
                    consistency::COPY_ADVICE
                )
            }
            _ => String::new(),
        };
        unavailable(format!(
            "SQLite source {}: {doing}: {e}{hint}",
            self.path.display()
        ))
    }
}

impl Source for SqliteSource {
    fn tables(&self) -> anyhow::Result<Vec<SourceTable>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, type = 'view' FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .map_err(|e| self.error(e, "listing tables"))?;
        let names: Vec<(String, bool)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.error(e, "listing tables"))?;
        let mut out = Vec::with_capacity(names.len());
        for (name, view) in names {
            let mut stmt = self
                .conn
                .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
                .map_err(|e| self.error(e, "reading columns"))?;
            let fields: Result<Vec<String>, _> = stmt
                .query_map([&name], |r| r.get(0))
                .and_then(|rows| rows.collect());
            let fields = match fields {
                Ok(fields) => fields,
                // A view that no longer compiles (it names a table or column that is gone)
                // is left out: only a command that reads it needs it, and that one is told
                // the source table does not exist.
                Err(_) if view => continue,
                Err(e) => {
                    return Err(self.error(e, &format!("reading the columns of `{name}`")));
                }
            };
            out.push(SourceTable {
                name,
                fields,
                ..SourceTable::default()
            });
        }
        Ok(out)
    }

    /// The tables only: a view holds what its tables already hold, so a draft that mapped
    /// it too would load its rows twice.
    fn describe(&self) -> anyhow::Result<Vec<super::TableShape>> {
        let views: Vec<String> = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'view'")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| self.error(e, "listing views"))?;
        let mut out = Vec::new();
        for t in self
            .tables()?
            .into_iter()
            .filter(|t| !views.contains(&t.name))
        {
            let mut stmt = self
                .conn
                .prepare("SELECT name, type, pk FROM pragma_table_info(?1) ORDER BY cid")
                .map_err(|e| self.error(e, "reading columns"))?;
            let cols: Vec<(String, String, i64)> = stmt
                .query_map([&t.name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.error(e, &format!("reading the columns of `{}`", t.name)))?;
            let mut stmt = self
                .conn
                .prepare("SELECT \"from\", \"table\" FROM pragma_foreign_key_list(?1) WHERE seq = 0 AND id NOT IN (SELECT id FROM pragma_foreign_key_list(?1) WHERE seq > 0)")
                .map_err(|e| self.error(e, "reading foreign keys"))?;
            let fks: Vec<(String, String)> = stmt
                .query_map([&t.name], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.error(e, &format!("reading the foreign keys of `{}`", t.name)))?;
            let pks: Vec<&(String, String, i64)> = cols.iter().filter(|c| c.2 > 0).collect();
            let (id_field, integer_id) = match pks.as_slice() {
                // SQLite's affinity rule: a declared type containing INT is an integer.
                [one] => (
                    Some(one.0.clone()),
                    one.1.to_ascii_uppercase().contains("INT"),
                ),
                _ => (None, false),
            };
            let fields = cols
                .iter()
                .map(|(name, kind, _)| super::FieldShape {
                    name: name.clone(),
                    kind: kind.clone(),
                    id: None,
                    computed: false,
                    link: fks.iter().find(|(from, _)| from == name).map(|(_, table)| {
                        super::LinkShape {
                            table: table.clone(),
                            ..super::LinkShape::default()
                        }
                    }),
                })
                .collect();
            out.push(super::TableShape {
                name: t.name,
                id_field,
                integer_id,
                fields,
                id: None,
            });
        }
        Ok(out)
    }

    fn count(&self, table: &str) -> anyhow::Result<u64> {
        let n: i64 = self
            .conn
            .query_row(&format!("SELECT count(*) FROM {}", ident(table)), [], |r| {
                r.get(0)
            })
            .map_err(|e| self.error(e, &format!("counting `{table}`")))?;
        Ok(n as u64)
    }

    fn scan(
        &mut self,
        table: &str,
        fields: &[String],
        each: &mut dyn FnMut(&dyn Record) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let cols: Vec<String> = fields.iter().map(|f| ident(f)).collect();
        let select = if cols.is_empty() {
            "1".to_string()
        } else {
            cols.join(", ")
        };
        let sql = format!("SELECT {select} FROM {}", ident(table));
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(|e| self.error(e, &format!("reading `{table}`")))?;
        let mut rows = stmt
            .query([])
            .map_err(|e| self.error(e, &format!("reading `{table}`")))?;
        let mut n = 0u64;
        loop {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => {
                    return Err(self.error(e, &format!("reading `{table}` after row {n}")));
                }
            };
            n += 1;
            each(&SqliteRecord { row, ordinal: n })
                .with_context(|| format!("source table `{table}`, row {n}"))?;
        }
        Ok(n)
    }
}

struct SqliteRecord<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    ordinal: u64,
}

impl Record for SqliteRecord<'_, '_> {
    fn ordinal(&self) -> u64 {
        self.ordinal
    }
    fn get(&self, i: usize) -> Value<'_> {
        match self.row.get_ref(i) {
            Ok(ValueRef::Null) | Err(_) => Value::Null,
            Ok(ValueRef::Integer(i)) => Value::Int(i),
            Ok(ValueRef::Real(f)) => Value::Float(f),
            Ok(ValueRef::Text(t)) => Value::Text(t),
            Ok(ValueRef::Blob(b)) => Value::Blob(b),
        }
    }
}
