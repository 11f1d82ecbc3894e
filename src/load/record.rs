//! What each load wrote, kept beside the mapping, so that a re-run can tell a value the source
//! changed from a value the application changed since cutover last wrote it.
//!
//! The record is one file per mapping and target (`<mapping>.cutover-state/<hash>.record`,
//! the hash of the target URL without its password and the schema). Per entity table it holds,
//! for every target row with a legacy id, a 64-bit hash of each mapped value column
//! (`hashtextextended` of the value's text form, the function PostgreSQL's hash partitioning
//! relies on staying stable) as cutover last wrote it — or, for a value the application
//! changed and cutover kept, the hash of what cutover had written before, so the conflict is
//! reported again until it is resolved. A re-run uploads it into temporary tables (nothing is
//! created in the target's schemas) and merges three ways: the record, the target, the source.
//!
//! Each row also keeps the fingerprint of the source row it was written from
//! (`plan/fingerprint.rs`), when the target held exactly that row after the load: a re-run
//! hands those of rows still in the target to the convert stage, which then stages an
//! unchanged source row by its legacy id alone. A row whose value the application changed
//! has none, so it is compared again on every run.
//!
//! A junction has no rows in the record, only a digest of its staged links and of the links
//! the target held after the load (when no link was left out): when both are the same on a
//! re-run, the junction is as the last load left it, and is neither resolved nor written.
//!
//! Layout: the line `cutover-record 2`, then a JSON header (u32 big-endian length first:
//! the database's oid, the target), then per table a JSON section header (length-prefixed
//! likewise: table name, its oid, its legacy column, the hashed columns, whether a
//! fingerprint follows them) followed by a u64 length and the section's rows as PostgreSQL
//! binary COPY data (`k text, h0 bigint, …, f bigint`), and a u32 zero at the end. A record
//! of the first layout (`cutover-record 1`, no fingerprints) is read as well. The file is written under a temporary name inside the load's
//! transaction and renamed into place only once COMMIT has succeeded (`files`: private,
//! never through a link). A record written for another database, or for a table that was
//! since re-created (another oid), is not used, and the run says so.

use super::table_error;
use crate::error::{describe_pg, unavailable};
use crate::files;
use crate::pg::sql::ident;
use crate::plan::fingerprint::{self, Known, KnownTx};
use crate::plan::staging::Staging;
use crate::plan::{Plan, TableKind};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tokio_postgres::Transaction;

const MAGIC: &[u8] = b"cutover-record 2\n";
/// The first layout, without fingerprints.
const MAGIC_1: &[u8] = b"cutover-record 1\n";

/// The record file of the load `at` into the database `tx` is connected to: named by the
/// cluster's system identifier, the database's name and oid (so that every URL reaching the
/// same database finds the same record, and two servers with a database of the same name
/// never share one), or by the target URL where the role may not read the identifier.
pub(crate) async fn locate(tx: &Transaction<'_>, at: &super::RecordAt) -> anyhow::Result<PathBuf> {
    let failed = |e: tokio_postgres::Error| {
        unavailable(format!(
            "identifying the target database for its record: {}",
            describe_pg(&e)
        ))
    };
    let allowed: bool = tx
        .query_one(
            "SELECT pg_catalog.has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE')",
            &[],
        )
        .await
        .map_err(failed)?
        .get(0);
    let cluster: Option<String> = if allowed {
        tx.query_one(
            "SELECT system_identifier::text FROM pg_catalog.pg_control_system()",
            &[],
        )
        .await
        .map_err(failed)?
        .get(0)
    } else {
        None
    };
    let identity = match cluster {
        Some(id) => {
            let row = tx
                .query_one(
                    "SELECT datname::text, oid::text FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()",
                    &[],
                )
                .await
                .map_err(failed)?;
            format!(
                "cluster {id} database {} oid {}",
                row.get::<_, String>(0),
                row.get::<_, String>(1)
            )
        }
        None => format!("url {}", at.target),
    };
    Ok(place(
        &at.mapping,
        at.state.as_deref(),
        &identity,
        &at.schema,
    ))
}

/// The record file of `mapping` for the target identified by `target` and `schema`, in
/// `state` or else in `MAPPING.cutover-state` beside the mapping.
pub(crate) fn place(mapping: &Path, state: Option<&Path>, target: &str, schema: &str) -> PathBuf {
    let dir = match state {
        Some(dir) => dir.to_path_buf(),
        None => {
            let stem = mapping
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "mapping".into());
            mapping
                .parent()
                .unwrap_or(Path::new("."))
                .join(format!("{stem}.cutover-state"))
        }
    };
    let hash: String = Sha256::digest(format!("{target}\n{schema}").as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    dir.join(format!("{hash}.record"))
}

/// The hash of a value as the record keeps it: NULL hashes to 0.
pub(crate) fn hash(expr: &str) -> String {
    format!("coalesce(pg_catalog.hashtextextended(({expr})::text, 0), 0)")
}

#[derive(Serialize, Deserialize)]
struct Header {
    database_oid: i64,
    target: String,
}

#[derive(Serialize, Deserialize)]
struct Section {
    table: String,
    oid: i64,
    key: String,
    columns: Vec<String>,
    /// Each row ends with the fingerprint `f` (absent in the first layout).
    #[serde(default)]
    fingerprints: bool,
    /// The target's legacy ids ([`target_keys`]) when the record was written; for a
    /// junction, its links.
    #[serde(default)]
    target_keys: Option<String>,
    /// A junction's staged links, as the convert stage summed them up (`Extracted::digest`).
    #[serde(default)]
    digest: Option<String>,
}

/// A table's record as uploaded for this run: the temporary table `b` is joined on, and the
/// value columns it has a hash of.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    pub(crate) table: String,
    columns: Vec<String>,
    /// It has the fingerprint column `f`.
    fingerprints: bool,
    /// Where its rows are in the record file: offset and length.
    rows: (u64, u64),
    /// Its rows are in the temporary table (else only in the file, until some source row
    /// turns out to have changed).
    uploaded: bool,
    /// The target's legacy ids ([`target_keys`]) when this load started.
    keys_now: Option<String>,
    /// Only the rows of source rows found changed (or without a fingerprint) were uploaded;
    /// those of the rows found unchanged (`taken` here) stay in the file.
    partly: Option<Known>,
    /// Its rows, when they were read from the file: all of them had a fingerprint.
    all_fingerprinted: bool,
}

impl Base {
    /// The recorded hash of target column `column` over the joined record row `b`, if the
    /// record has one.
    pub(crate) fn hash_of(&self, column: &str) -> Option<String> {
        self.columns
            .iter()
            .position(|c| c == column)
            .map(|j| format!("b.h{j}"))
    }

    /// Whether it holds hashes of exactly these columns, in this order.
    pub(crate) fn is_of(&self, columns: &[&str]) -> bool {
        self.columns
            .iter()
            .map(String::as_str)
            .eq(columns.iter().copied())
    }
}

/// The previous load's record, per table of the plan (None: no record of that table).
#[derive(Debug, Default)]
pub(crate) struct Uploaded {
    pub(crate) bases: Vec<Option<Base>>,
    /// Per junction: its staged links and target links as the last load left them.
    junctions: Vec<Option<(String, String)>>,
    /// The record file they were read from.
    path: Option<PathBuf>,
}

impl Uploaded {
    pub(crate) fn base(&self, index: usize) -> Option<&Base> {
        self.bases.get(index).and_then(Option::as_ref)
    }

    /// Whether the `index`-th table, a junction whose links were staged as `digest`, is as
    /// the last load left it: the same links staged, and the same links in the target.
    pub(crate) async fn junction_unchanged(
        &self,
        tx: &Transaction<'_>,
        table: &crate::plan::TablePlan,
        index: usize,
        digest: Option<(u64, u64)>,
    ) -> anyhow::Result<bool> {
        let (Some(Some((was, links))), Some(now)) = (self.junctions.get(index), digest) else {
            return Ok(false);
        };
        Ok(*was == digest_text(now) && *links == target_keys(tx, table).await?)
    }

    /// Upload the `index`-th table's recorded rows if they are still only in the file: when
    /// `needed` (some source row changed, so the merge compares with them), those of every
    /// row but the ones `same` matched (the source rows found unchanged, which nothing
    /// compares); else none (the temporary table is created empty, and the record carried
    /// over as it is).
    pub(crate) async fn upload_if_needed(
        &mut self,
        tx: &Transaction<'_>,
        table: &crate::plan::TablePlan,
        index: usize,
        needed: bool,
        same: Option<Known>,
    ) -> anyhow::Result<()> {
        let (Some(Some(base)), Some(path)) = (self.bases.get_mut(index), &self.path) else {
            return Ok(());
        };
        if base.uploaded {
            return Ok(());
        }
        // Every recorded row was matched by an unchanged source row: none to upload.
        let none_left =
            base.all_fingerprinted && same.as_ref().is_some_and(|k| k.taken() == k.len());
        if needed && !none_left {
            base.partly = same;
            upload_rows(tx, table, base, path).await?;
        } else {
            tx.batch_execute(&base.ddl())
                .await
                .map_err(|e| table_error(&e, table, "reading the record of the last load"))?;
        }
        base.uploaded = true;
        Ok(())
    }
}

impl Base {
    fn ddl(&self) -> String {
        let mut ddl = format!("CREATE TEMP TABLE {} (k text NOT NULL", self.table);
        for j in 0..self.columns.len() {
            ddl.push_str(&format!(", h{j} bigint"));
        }
        if self.fingerprints {
            ddl.push_str(", f bigint");
        }
        ddl.push_str(") ON COMMIT DROP");
        ddl
    }
}

/// Per table of the plan, what [`save`] is told: whether it was empty at the start, whether
/// its record is left unchanged, and for a junction its links' digest.
pub(crate) type PerTable<'a> = (&'a [bool], &'a [bool], &'a [Option<(u64, u64)>]);

/// A junction's digest as the record keeps it.
fn digest_text((links, sum): (u64, u64)) -> String {
    format!("{links} {sum}")
}

/// Copy `base`'s rows from the record file at `path` into its temporary table.
async fn upload_rows(
    tx: &Transaction<'_>,
    table: &crate::plan::TablePlan,
    base: &Base,
    path: &Path,
) -> anyhow::Result<()> {
    let pg =
        |e: tokio_postgres::Error| table_error(&e, table, "reading the record of the last load");
    let io = |e: std::io::Error| {
        unavailable(format!(
            "reading the record of the last load, {}: {e}",
            path.display()
        ))
    };
    tx.batch_execute(&base.ddl()).await.map_err(pg)?;
    let sink = tx
        .copy_in::<_, bytes::Bytes>(&format!("COPY {} FROM STDIN (FORMAT binary)", base.table))
        .await
        .map_err(pg)?;
    let mut sink = std::pin::pin!(sink);
    let mut r = File::open(path).map_err(io)?;
    r.seek(SeekFrom::Start(base.rows.0)).map_err(io)?;
    if let Some(same) = &base.partly {
        // Row by row, leaving out the rows of the source rows found unchanged.
        let mut rows = CopyRows::new(r.take(base.rows.1)).map_err(io)?;
        let mut out = bytes::BytesMut::with_capacity(1 << 16);
        out.extend_from_slice(COPY_HEADER);
        while let Some((row, fp)) = rows.next().map_err(io)? {
            if fp.is_none_or(|fp| !same.is_taken(fp)) {
                out.extend_from_slice(row);
            }
            if out.len() >= 1 << 16 {
                sink.send(out.split().freeze()).await.map_err(pg)?;
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        sink.send(out.freeze()).await.map_err(pg)?;
    } else {
        let mut left = base.rows.1;
        let mut buf = vec![0u8; 1 << 16];
        while left > 0 {
            let n = (left as usize).min(buf.len());
            r.read_exact(&mut buf[..n]).map_err(io)?;
            sink.send(bytes::Bytes::copy_from_slice(&buf[..n]))
                .await
                .map_err(pg)?;
            left -= n as u64;
        }
    }
    sink.as_mut().finish().await.map_err(pg)?;
    tx.batch_execute(&format!("ANALYZE {}", base.table))
        .await
        .map_err(pg)?;
    Ok(())
}

/// The legacy ids `table` holds, as a count and a sum of their hashes: equal at two moments,
/// the same set of rows carries legacy ids (a row deleted and another added with an id of
/// the same hash aside). Cheap: one pass over the table, nothing sorted or joined.
async fn target_keys(
    tx: &Transaction<'_>,
    table: &crate::plan::TablePlan,
) -> anyhow::Result<String> {
    let (value, filter) = match &table.kind {
        TableKind::Entity { match_column } => {
            let m = ident(match_column);
            (format!("t.{m}::text"), format!(" WHERE t.{m} IS NOT NULL"))
        }
        // A link is its row.
        TableKind::Junction { .. } => {
            let cols: Vec<String> = table
                .stage
                .iter()
                .map(|c| format!("t.{}", ident(&c.target)))
                .collect();
            (format!("ROW({})::text", cols.join(", ")), String::new())
        }
    };
    let row = tx
        .query_one(
            &format!(
                "SELECT count(*)::text || ' ' || coalesce(sum(pg_catalog.hashtextextended({value}, 0)::numeric), 0)::text FROM {} t{filter}",
                table.qualified
            ),
            &[],
        )
        .await
        .map_err(|e| table_error(&e, table, "reading the legacy ids it holds"))?;
    Ok(row.get(0))
}

/// The fingerprints (the last column) of the binary COPY rows at `rows` in the record file,
/// and whether every row had one; None when there are more than `room`.
fn fingerprints_in(
    path: &Path,
    rows: (u64, u64),
    room: usize,
) -> std::io::Result<Option<(Vec<u64>, bool)>> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(rows.0))?;
    let mut rows = CopyRows::new(f.take(rows.1))?;
    let mut out = Vec::new();
    let mut all = true;
    while let Some((_, fp)) = rows.next()? {
        match fp {
            Some(_) if out.len() == room => return Ok(None),
            Some(fp) => out.push(fp),
            None => all = false,
        }
    }
    Ok(Some((out, all)))
}

/// Signature, flags and header-extension length of the binary COPY data cutover writes.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The rows of a table's section in the record file, one at a time: each row's bytes as
/// binary COPY frames it, and its last field as a fingerprint (None when NULL).
struct CopyRows<R> {
    r: BufReader<R>,
    row: Vec<u8>,
}

impl<R: Read> CopyRows<R> {
    fn new(r: R) -> std::io::Result<Self> {
        let mut r = BufReader::with_capacity(1 << 16, r);
        let mut head = [0u8; 19];
        r.read_exact(&mut head)?;
        if head[..11] != COPY_HEADER[..11] {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a table's rows do not start as binary COPY data",
            ));
        }
        let ext = u32::from_be_bytes([head[15], head[16], head[17], head[18]]);
        std::io::copy(&mut (&mut r).take(u64::from(ext)), &mut std::io::sink())?;
        Ok(CopyRows { r, row: Vec::new() })
    }

    fn next(&mut self) -> std::io::Result<Option<(&[u8], Option<u64>)>> {
        self.row.clear();
        let mut n = [0u8; 2];
        self.r.read_exact(&mut n)?;
        let fields = i16::from_be_bytes(n);
        if fields < 0 {
            return Ok(None);
        }
        self.row.extend_from_slice(&n);
        let mut last = None;
        for _ in 0..fields {
            let mut len = [0u8; 4];
            self.r.read_exact(&mut len)?;
            self.row.extend_from_slice(&len);
            let len = i32::from_be_bytes(len);
            last = None;
            if len < 0 {
                continue;
            }
            let at = self.row.len();
            self.row.resize(at + len as usize, 0);
            self.r.read_exact(&mut self.row[at..])?;
            if len == 8 {
                let mut v = [0u8; 8];
                v.copy_from_slice(&self.row[at..]);
                last = Some(u64::from_be_bytes(v));
            }
        }
        Ok(Some((&self.row, last)))
    }
}

fn temp_name(index: usize) -> String {
    format!("cutover_record_{index}")
}

async fn database_oid(tx: &Transaction<'_>) -> anyhow::Result<i64> {
    let row = tx
        .query_one(
            "SELECT oid::bigint FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()",
            &[],
        )
        .await
        .map_err(|e| unavailable(format!("reading the database's oid: {}", describe_pg(&e))))?;
    Ok(row.get(0))
}

async fn table_oid(tx: &Transaction<'_>, qualified: &str) -> anyhow::Result<i64> {
    let row = tx
        .query_one(
            "SELECT pg_catalog.to_regclass($1)::oid::bigint",
            &[&qualified],
        )
        .await
        .map_err(|e| unavailable(format!("reading {qualified}'s oid: {}", describe_pg(&e))))?;
    Ok(row.get::<_, Option<i64>>(0).unwrap_or(0))
}

/// Upload the record at `path` into temporary tables. Returns what was uploaded and, when
/// there is no usable record, a note saying so and what that means for this run. Per table
/// for which `skip_same` says so, the fingerprints of the recorded rows the target still
/// holds go to `known` as soon as the table is uploaded, in plan order.
pub(crate) async fn upload(
    tx: &Transaction<'_>,
    plan: &Plan,
    path: &Path,
    skip_same: &[bool],
    known: &KnownTx,
) -> anyhow::Result<(Uploaded, Option<String>)> {
    let mut up = Uploaded {
        bases: vec![None; plan.tables.len()],
        junctions: vec![None; plan.tables.len()],
        path: Some(path.to_path_buf()),
    };
    let unknown = "values that differ from the source are kept as the target holds them and reported as conflicts (on_conflict = \"overwrite\" takes the source's)";
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((
                up,
                Some(format!(
                    "no record of an earlier load into this target (looked for {} in {}): {unknown}",
                    path.file_name().unwrap_or_default().to_string_lossy(),
                    path.parent()
                        .and_then(Path::file_name)
                        .unwrap_or_default()
                        .to_string_lossy()
                )),
            ));
        }
        Err(e) => {
            return Err(unavailable(format!(
                "reading the record of the last load, {}: {e}",
                path.display()
            )));
        }
    };
    let corrupt = |why: String| {
        unavailable(format!(
            "the record of the last load, {}, cannot be read ({why}); move it aside to run without it (then {unknown})",
            path.display()
        ))
    };
    let mut r = BufReader::new(file);
    let mut magic = vec![0u8; MAGIC.len()];
    r.read_exact(&mut magic)
        .map_err(|e| corrupt(e.to_string()))?;
    if magic != MAGIC && magic != MAGIC_1 {
        return Err(corrupt("not a cutover record".into()));
    }
    let header: Header = read_json(&mut r)
        .map_err(|e| corrupt(e.to_string()))?
        .ok_or_else(|| corrupt("no header".into()))?;
    if header.database_oid != database_oid(tx).await? {
        return Ok((
            up,
            Some(format!(
                "the record {} was written for another database ({}): {unknown}",
                path.display(),
                header.target
            )),
        ));
    }
    let mut stale = Vec::new();
    // Tables up to here have been sent their fingerprints (or none); what is left of the
    // fingerprints that may be held in memory.
    let mut sent = 0;
    let mut room = fingerprint::IN_MEMORY;
    while let Some(section) = read_json::<Section>(&mut r).map_err(|e| corrupt(e.to_string()))? {
        let mut len = [0u8; 8];
        r.read_exact(&mut len).map_err(|e| corrupt(e.to_string()))?;
        let len = u64::from_be_bytes(len);
        if let Some(digest) = &section.digest {
            let index = plan
                .tables
                .iter()
                .position(|t| t.name == section.table && t.is_junction());
            if let (Some(i), Some(links)) = (index, &section.target_keys)
                && table_oid(tx, &plan.tables[i].qualified).await? == section.oid
            {
                up.junctions[i] = Some((digest.clone(), links.clone()));
            }
            r.seek_relative(len as i64)
                .map_err(|e| corrupt(e.to_string()))?;
            continue;
        }
        let index = plan.tables.iter().position(|t| {
            t.name == section.table
                && matches!(&t.kind, TableKind::Entity { match_column } if *match_column == section.key)
        });
        let usable = match index {
            Some(i) => table_oid(tx, &plan.tables[i].qualified).await? == section.oid,
            None => false,
        };
        let (Some(index), true) = (index, usable) else {
            if index.is_some() {
                stale.push(section.table.clone());
            }
            r.seek_relative(len as i64)
                .map_err(|e| corrupt(e.to_string()))?;
            continue;
        };
        let table = &plan.tables[index];
        let offset = r.stream_position().map_err(|e| corrupt(e.to_string()))?;
        r.seek_relative(len as i64)
            .map_err(|e| corrupt(e.to_string()))?;
        let mut base = Base {
            table: temp_name(index),
            columns: section.columns,
            fingerprints: section.fingerprints,
            rows: (offset, len),
            uploaded: false,
            keys_now: None,
            partly: None,
            all_fingerprinted: false,
        };
        let mut known_rows = None;
        let skipping = section.fingerprints && skip_same.get(index) == Some(&true);
        if skipping && index >= sent {
            // The target still holds every recorded row when its legacy ids are the ones it
            // held as the record was written: then the fingerprints are read from the file,
            // and the rows are uploaded only if some source row changed. Otherwise the rows
            // are uploaded now, to tell which are still there.
            let now = target_keys(tx, table).await?;
            if section.target_keys.as_deref() == Some(now.as_str()) {
                let read =
                    fingerprints_in(path, base.rows, room).map_err(|e| corrupt(e.to_string()))?;
                known_rows = read.map(|(fps, all)| {
                    base.all_fingerprinted = all;
                    fps
                });
            } else {
                upload_rows(tx, table, &base, path).await?;
                base.uploaded = true;
                known_rows = present(tx, table, &base.table, room).await?;
            }
            base.keys_now = Some(now);
        } else {
            upload_rows(tx, table, &base, path).await?;
            base.uploaded = true;
        }
        if index >= sent {
            for before in sent..index {
                known.send(before, Known::default());
            }
            let rows = known_rows.unwrap_or_default();
            room -= rows.len();
            known.send(index, Known::new(rows));
            sent = index + 1;
        }
        up.bases[index] = Some(base);
    }
    let note = (!stale.is_empty()).then(|| {
        format!(
            "the record {} is of tables since re-created ({}): there, {unknown}",
            path.display(),
            stale.join(", ")
        )
    });
    Ok((up, note))
}

/// The fingerprints of the rows recorded in `name` that `table` still holds (a row the
/// application deleted is written again, so it must not look unchanged); None when there are
/// more than `room`.
async fn present(
    tx: &Transaction<'_>,
    table: &crate::plan::TablePlan,
    name: &str,
    room: usize,
) -> anyhow::Result<Option<Vec<u64>>> {
    let TableKind::Entity { match_column } = &table.kind else {
        return Ok(None);
    };
    let failed =
        |e: tokio_postgres::Error| table_error(&e, table, "reading the record of the last load");
    let sql = format!(
        "SELECT b.f FROM {name} b WHERE b.f IS NOT NULL AND EXISTS (SELECT 1 FROM {tt} t WHERE t.{m}::text = b.k) LIMIT {limit}",
        tt = table.qualified,
        m = ident(match_column),
        limit = room + 1,
    );
    let rows = tx
        .query_raw(&sql, std::iter::empty::<i64>())
        .await
        .map_err(failed)?;
    let mut rows = std::pin::pin!(rows);
    let mut out = Vec::new();
    while let Some(row) = rows.next().await {
        let f: i64 = row.map_err(failed)?.get(0);
        out.push(f as u64);
    }
    Ok((out.len() <= room).then_some(out))
}

/// A u32-length-prefixed JSON value; None at the end marker (length 0).
fn read_json<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> std::io::Result<Option<T>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 {
        return Ok(None);
    }
    if len > 1 << 24 {
        return Err(std::io::Error::other(
            "a section header is implausibly long",
        ));
    }
    let mut text = vec![0u8; len];
    r.read_exact(&mut text)?;
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(std::io::Error::other)
}

fn write_json<T: Serialize>(w: &mut impl Write, v: &T) -> std::io::Result<()> {
    let text = serde_json::to_vec(v).map_err(std::io::Error::other)?;
    w.write_all(&(text.len() as u32).to_be_bytes())?;
    w.write_all(&text)
}

/// A new record written under a temporary name, put in place by [`Pending::keep`] once the
/// load has committed; dropped, it is removed.
pub(crate) struct Pending {
    tmp: PathBuf,
    path: PathBuf,
    kept: bool,
}

impl Pending {
    /// Rename the new record into place (after COMMIT succeeded).
    pub(crate) fn keep(mut self) -> Result<(), String> {
        files::check(&self.path, files::Existing::Replace)?;
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Write what the target holds now, inside the load's transaction, as the next record: per
/// entity table with value columns, every row with a legacy id, each value column's hash —
/// the value cutover wrote or found equal to the source, or, where the target differs from
/// the source (the application's value, kept), the hash recorded before. A table that was
/// `empty` at the start holds only what this load wrote: its rows are hashed as they are. A
/// table whose record this run left `unchanged` is carried over from the uploaded one.
pub(crate) async fn save(
    tx: &Transaction<'_>,
    staging: &[Staging<'_>],
    uploaded: &Uploaded,
    (empty, unchanged, digests): PerTable<'_>,
    path: &Path,
    target: &str,
) -> anyhow::Result<Pending> {
    let failed = |e: std::io::Error| {
        unavailable(format!(
            "writing the record of this load, {}: {e}; nothing was committed (the record is what makes later re-runs safe for the application's edits)",
            path.display()
        ))
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    match files::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed(e)),
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.cutover-tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let file = files::create_new(&tmp).map_err(failed)?;
    let pending = Pending {
        tmp,
        path: path.to_path_buf(),
        kept: false,
    };
    let mut w = BufWriter::new(file);
    w.write_all(MAGIC).map_err(failed)?;
    write_json(
        &mut w,
        &Header {
            database_oid: database_oid(tx).await?,
            target: target.to_string(),
        },
    )
    .map_err(failed)?;
    for (index, s) in staging.iter().enumerate() {
        let table = s.table();
        if let (TableKind::Junction { .. }, Some(Some(digest))) = (&table.kind, digests.get(index))
        {
            write_json(
                &mut w,
                &Section {
                    table: table.name.clone(),
                    oid: table_oid(tx, &table.qualified).await?,
                    key: String::new(),
                    columns: Vec::new(),
                    fingerprints: false,
                    target_keys: Some(target_keys(tx, table).await?),
                    digest: Some(digest_text(*digest)),
                },
            )
            .map_err(failed)?;
            w.write_all(&0u64.to_be_bytes()).map_err(failed)?;
            continue;
        }
        let TableKind::Entity { match_column } = &table.kind else {
            continue;
        };
        if s.value_cols().is_empty() {
            continue;
        }
        let m = ident(match_column);
        let base = uploaded.base(index);
        let mut cols = Vec::new();
        let mut select = vec![format!("t.{m}::text")];
        // The row is fingerprinted when the target holds exactly the source row.
        let mut equal = Vec::new();
        for &i in s.value_cols() {
            let c = &table.stage[i];
            cols.push(c.target.clone());
            let old = base
                .and_then(|b| b.hash_of(&c.target))
                .unwrap_or_else(|| "NULL::bigint".into());
            let (t_val, r_val) = (
                hash(&format!("t.{}", ident(&c.target))),
                hash(&Staging::resolved_col(i)),
            );
            select.push(format!(
                "CASE WHEN r.row_ IS NULL THEN {old} WHEN {t_val} = {r_val} THEN {r_val} ELSE {old} END"
            ));
            equal.push(format!("{t_val} = {r_val}"));
        }
        // A trigger may have rewritten what was written: then no row is taken as unchanged.
        let old_fp = match base {
            Some(b) if b.fingerprints => "b.f",
            _ => "NULL::bigint",
        };
        select.push(if table.triggers_fire {
            "NULL::bigint".to_string()
        } else {
            format!(
                "CASE WHEN r.row_ IS NULL THEN {old_fp} WHEN {} THEN r.fp_ END",
                if equal.is_empty() {
                    "true".to_string()
                } else {
                    equal.join(" AND ")
                }
            )
        });
        let join_base = match base {
            Some(b) => format!(" LEFT JOIN {} b ON b.k = t.{m}::text", b.table),
            None => String::new(),
        };
        // A table whose record is unchanged is copied over from the last record, as it is.
        let carried = match (base, &uploaded.path) {
            (Some(b), Some(path)) if unchanged.get(index) == Some(&true) => Some((b, path)),
            _ => None,
        };
        let fingerprints = carried.is_none_or(|(b, _)| b.fingerprints);
        let sql = match base {
            _ if carried.is_some() => String::new(),
            _ if empty.get(index) == Some(&true) => {
                let hashes: Vec<String> = s
                    .value_cols()
                    .iter()
                    .map(|&i| hash(&format!("t.{}", ident(&table.stage[i].target))))
                    .collect();
                // Written from the staged rows as they are (no row matched, none updated).
                let (fp, join) = if table.triggers_fire {
                    ("NULL::bigint".to_string(), String::new())
                } else {
                    (
                        "s.fp_".to_string(),
                        format!(" LEFT JOIN {} s ON s.c0 = t.{m} AND NOT s.drop_", s.name()),
                    )
                };
                format!(
                    "COPY (SELECT t.{m}::text, {}, {fp} FROM {} t{join} WHERE t.{m} IS NOT NULL) TO STDOUT (FORMAT binary)",
                    hashes.join(", "),
                    table.qualified
                )
            }
            // The rows this load resolved, then the recorded rows it did not: driven from
            // those two (a re-run's few changed rows, by the target's legacy-id index)
            // rather than from every row of the target.
            _ => {
                let select = select.join(", ");
                let (tt, key) = (&table.qualified, s.key_match());
                let recorded = match base {
                    Some(b) => format!(
                        " UNION ALL SELECT {select} FROM {} b JOIN {tt} t ON t.{m}::text = b.k LEFT JOIN r ON {key} WHERE r.row_ IS NULL AND t.{m} IS NOT NULL",
                        b.table
                    ),
                    None => String::new(),
                };
                format!(
                    "COPY (WITH r AS MATERIALIZED ({sel}) SELECT {select} FROM r JOIN {tt} t ON {key}{join_base} WHERE t.{m} IS NOT NULL{recorded}) TO STDOUT (FORMAT binary)",
                    sel = s.resolved(),
                )
            }
        };
        // What the target holds now: for a record carried over, what it held as the load
        // started (this load wrote nothing there).
        let target_keys = match carried {
            Some((b, _)) => b.keys_now.clone(),
            None => Some(target_keys(tx, table).await?),
        };
        write_json(
            &mut w,
            &Section {
                table: table.name.clone(),
                oid: table_oid(tx, &table.qualified).await?,
                key: match_column.clone(),
                columns: cols,
                fingerprints,
                target_keys,
                digest: None,
            },
        )
        .map_err(failed)?;
        let at = w.stream_position().map_err(failed)?;
        w.write_all(&0u64.to_be_bytes()).map_err(failed)?;
        let mut len = 0u64;
        if let Some((b, path)) = carried {
            let mut old = File::open(path).map_err(failed)?;
            old.seek(SeekFrom::Start(b.rows.0)).map_err(failed)?;
            len = std::io::copy(&mut old.take(b.rows.1), &mut w).map_err(failed)?;
            if len != b.rows.1 {
                return Err(failed(std::io::ErrorKind::UnexpectedEof.into()));
            }
        } else {
            let stream = tx
                .copy_out(&sql)
                .await
                .map_err(|e| table_error(&e, table, "recording what this load wrote"))?;
            let mut stream = std::pin::pin!(stream);
            // With only some recorded rows uploaded, the rows of the source rows found
            // unchanged follow the server's, from the last record as they are: the server's
            // COPY trailer (2 bytes) is held back until they are written.
            let partly = base.and_then(|b| b.partly.as_ref());
            let mut tail: Vec<u8> = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk =
                    chunk.map_err(|e| table_error(&e, table, "recording what this load wrote"))?;
                if partly.is_some() {
                    tail.extend_from_slice(&chunk);
                    let keep = tail.len().saturating_sub(2);
                    w.write_all(&tail[..keep]).map_err(failed)?;
                    len += keep as u64;
                    tail.drain(..keep);
                } else {
                    w.write_all(&chunk).map_err(failed)?;
                    len += chunk.len() as u64;
                }
            }
            if let (Some(same), Some(b), Some(path)) = (partly, base, &uploaded.path) {
                let mut old = File::open(path).map_err(failed)?;
                old.seek(SeekFrom::Start(b.rows.0)).map_err(failed)?;
                let mut rows = CopyRows::new(old.take(b.rows.1)).map_err(failed)?;
                while let Some((row, fp)) = rows.next().map_err(failed)? {
                    if fp.is_some_and(|fp| same.is_taken(fp)) {
                        w.write_all(row).map_err(failed)?;
                        len += row.len() as u64;
                    }
                }
                w.write_all(&tail).map_err(failed)?;
                len += tail.len() as u64;
            }
        }
        let end = w.stream_position().map_err(failed)?;
        w.seek(SeekFrom::Start(at)).map_err(failed)?;
        w.write_all(&len.to_be_bytes()).map_err(failed)?;
        w.seek(SeekFrom::Start(end)).map_err(failed)?;
    }
    w.write_all(&0u32.to_be_bytes()).map_err(failed)?;
    let file = w.into_inner().map_err(|e| failed(e.into_error()))?;
    file.sync_all().map_err(failed)?;
    Ok(pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_record_per_mapping_and_target_beside_the_mapping() {
        let m = Path::new("/srv/m/podium.toml");
        let a = place(m, None, "postgresql://u:***@h/db", "public");
        let b = place(m, None, "postgresql://u:***@h/other", "public");
        let c = place(
            m,
            Some(Path::new("/var/lib/cutover")),
            "postgresql://u:***@h/db",
            "public",
        );
        assert_eq!(c.parent(), Some(Path::new("/var/lib/cutover")));
        assert_eq!(a.parent(), Some(Path::new("/srv/m/podium.cutover-state")));
        assert!(a.to_string_lossy().ends_with(".record"));
        assert_ne!(a, b);
        assert_eq!(a, place(m, None, "postgresql://u:***@h/db", "public"));
    }

    #[test]
    fn fingerprints_are_read_from_the_last_column_of_a_tables_rows() {
        let mut rows = b"PGCOPY\n\xff\r\n\0".to_vec();
        rows.extend([0u8; 8]);
        let row = |rows: &mut Vec<u8>, k: &[u8], f: Option<u64>| {
            rows.extend(3i16.to_be_bytes());
            rows.extend((k.len() as i32).to_be_bytes());
            rows.extend(k);
            rows.extend(8i32.to_be_bytes());
            rows.extend(7i64.to_be_bytes());
            match f {
                Some(f) => {
                    rows.extend(8i32.to_be_bytes());
                    rows.extend(f.to_be_bytes());
                }
                None => rows.extend((-1i32).to_be_bytes()),
            }
        };
        row(&mut rows, b"a", Some(11));
        row(&mut rows, b"bbbbbbbb", None);
        row(&mut rows, b"c", Some(u64::MAX));
        rows.extend((-1i16).to_be_bytes());
        let dir = std::env::temp_dir().join(format!("cutover-fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r");
        let mut file = b"before".to_vec();
        file.extend(&rows);
        std::fs::write(&path, &file).unwrap();
        let at = (6, rows.len() as u64);
        assert_eq!(
            fingerprints_in(&path, at, 10).unwrap(),
            Some((vec![11, u64::MAX], false))
        );
        assert_eq!(
            fingerprints_in(&path, at, 1).unwrap(),
            None,
            "more than fit"
        );
        assert!(fingerprints_in(&path, (0, rows.len() as u64), 10).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_sections_round_trip_and_end() {
        let mut buf = Vec::new();
        write_json(
            &mut buf,
            &Section {
                table: "users".into(),
                oid: 7,
                key: "airtable_id".into(),
                columns: vec!["email".into()],
                fingerprints: true,
                target_keys: Some("3 12".into()),
                digest: None,
            },
        )
        .unwrap();
        buf.extend(0u32.to_be_bytes());
        let mut r = &buf[..];
        let s: Section = read_json(&mut r).unwrap().unwrap();
        assert_eq!((s.table.as_str(), s.oid, s.columns.len()), ("users", 7, 1));
        assert!(s.fingerprints);
        // The first layout's sections have no fingerprints.
        let s: Section =
            serde_json::from_str(r#"{"table":"u","oid":1,"key":"k","columns":[]}"#).unwrap();
        assert!(!s.fingerprints);
        assert!(read_json::<Section>(&mut r).unwrap().is_none());
    }
}
