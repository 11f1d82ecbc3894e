//! Writing a snapshot: every table asked for, read from a source, into a new directory.
//!
//! The files are written into a temporary directory beside `--out`, each fsynced, the
//! manifest last, and the directory is renamed into place only when all of it is on disk. A
//! failure at any point (disk full, unreadable source) leaves `--out` as it was and removes
//! the temporary directory: nothing that looks like a complete snapshot appears.

use super::format::{self, Cell, ColumnType};
use super::{
    ColumnEntry, FORMAT, FORMAT_VERSION, HashWriter, MANIFEST, Manifest, SourceInfo, TableEntry,
};
use crate::error::{unavailable, usage};
use crate::files;
use crate::source::{Record, Source, SourceSpec, SourceTable, Wanted};
use crate::value::Value;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// How to write a snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Replace a non-empty `--out`.
    pub force: bool,
    /// No progress bars or per-table notes.
    pub quiet: bool,
    /// Keep no attachment files (their URLs stay in the cells, and expire).
    pub no_attachments: bool,
}

/// Kind and location of a source for the manifest. A spec's text form never holds a
/// credential (tokens and passwords come from the environment), so it is safe to record.
pub fn source_info(spec: &SourceSpec) -> SourceInfo {
    let text = spec.to_string();
    let (kind, location) = text.split_once(':').unwrap_or(("unknown", text.as_str()));
    let location = match kind {
        "sqlite" | "snapshot" => std::fs::canonicalize(location)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| location.to_string()),
        _ => location.to_string(),
    };
    SourceInfo {
        kind: kind.to_string(),
        location,
    }
}

/// `--out` must not exist, or be an empty directory, or (with `--force`) a previous cutover
/// snapshot: its `manifest.json` and exactly the files that manifest lists, nothing else. So
/// `--force` can never delete a source database, a mapping or anything else that happens to
/// be in the directory given by mistake; and a source inside `--out` is refused outright.
pub fn check_out(out: &Path, force: bool, source: &SourceInfo) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(out) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(unavailable(format!(
                "cannot use --out {}: {e}",
                out.display()
            )));
        }
    };
    if !meta.is_dir() {
        return Err(usage(format!(
            "--out {} exists and is not a directory: choose a directory for the snapshot",
            out.display()
        )));
    }
    if matches!(source.kind.as_str(), "sqlite" | "snapshot")
        && let Ok(out_real) = std::fs::canonicalize(out)
        && Path::new(&source.location).starts_with(&out_real)
    {
        return Err(usage(format!(
            "--out {} holds the source being exported ({}): write the snapshot somewhere else",
            out.display(),
            source.location
        )));
    }
    let names = list_dir(out)?;
    if names.is_empty() {
        return Ok(());
    }
    if !force {
        return Err(usage(format!(
            "--out {} is not empty: choose a new directory, or pass --force to replace a previous snapshot there",
            out.display()
        )));
    }
    let not_snapshot = |why: String| {
        usage(format!(
            "--force only replaces a previous cutover snapshot, and {} is not one: {why}. Remove what is there yourself, or choose another --out",
            out.display()
        ))
    };
    let manifest_path = out.join(MANIFEST);
    let manifest: Manifest = match std::fs::symlink_metadata(&manifest_path) {
        Ok(m) if m.is_file() => std::fs::read(&manifest_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|m: &Manifest| m.format == FORMAT)
            .ok_or_else(|| not_snapshot(format!("its {MANIFEST} is not a cutover manifest")))?,
        _ => return Err(not_snapshot(format!("it has no {MANIFEST}"))),
    };
    let mut listed: Vec<&str> = vec![MANIFEST];
    listed.extend(manifest.tables.iter().map(|t| t.file.as_str()));
    listed.extend(manifest.extra.iter().map(|x| x.file.as_str()));
    for (name, is_file) in &names {
        if name == super::attachments::DIR && !manifest.attachments.is_empty() {
            continue;
        }
        if !listed.contains(&name.as_str()) {
            return Err(not_snapshot(format!(
                "it holds `{name}`, which its manifest does not list"
            )));
        }
        if !is_file {
            return Err(not_snapshot(format!("`{name}` is not a regular file")));
        }
    }
    Ok(())
}

/// The entries of a directory: name, and whether it is a regular file (not a link).
fn list_dir(dir: &Path) -> anyhow::Result<Vec<(String, bool)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)
        .map_err(|e| unavailable(format!("cannot read --out {}: {e}", dir.display())))?
    {
        let entry = entry.with_context(|| format!("reading --out {}", dir.display()))?;
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        out.push((entry.file_name().to_string_lossy().into_owned(), is_file));
    }
    Ok(out)
}

/// Removes the temporary directory unless the snapshot was installed.
struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Write a snapshot of `tables` (every field of each) from `source` to `out`.
pub fn write(
    source: &mut dyn Source,
    info: &SourceInfo,
    tables: &[SourceTable],
    out: &Path,
    opts: Options,
) -> anyhow::Result<Manifest> {
    check_out(out, opts.force, info)?;
    let name = out
        .file_name()
        .ok_or_else(|| usage(format!("--out {} names no directory", out.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| {
        unavailable(format!(
            "cannot create {} for --out {}: {e}",
            parent.display(),
            out.display()
        ))
    })?;
    let tmp = TempDir {
        path: parent.join(format!(".{name}.cutover-tmp-{}", std::process::id())),
        keep: false,
    };
    // Left over from an earlier run of this same process id: ours to remove.
    let _ = std::fs::remove_dir_all(&tmp.path);
    files::create_dir(&tmp.path).map_err(|e| {
        unavailable(format!(
            "cannot write the snapshot beside --out {}: creating {}: {e}",
            out.display(),
            tmp.path.display()
        ))
    })?;

    let wanted: Vec<Wanted> = tables
        .iter()
        .map(|t| Wanted {
            table: t.name.clone(),
            fields: t.fields.clone(),
        })
        .collect();
    // Each table is written as soon as it has been fetched, while the rest are fetched.
    source.start(&wanted)?;
    let mut taken = std::collections::HashSet::new();
    taken.insert(MANIFEST.to_string());
    let files: Vec<String> = tables
        .iter()
        .map(|t| super::file_name(&t.name, &mut taken))
        .collect();
    let mut entries: Vec<Option<TableEntry>> = tables.iter().map(|_| None).collect();
    let mut left: Vec<usize> = (0..tables.len()).collect();
    while !left.is_empty() {
        let names: Vec<&str> = left.iter().map(|&i| tables[i].name.as_str()).collect();
        let i = left.remove(source.ready(&names)?);
        let (t, file) = (&tables[i], &files[i]);
        let entry = write_table(source, t, &tmp.path.join(file), file, opts)
            .with_context(|| format!("exporting source table `{}`", t.name))?;
        entries[i] = Some(entry);
    }
    let entries: Vec<TableEntry> = entries.into_iter().flatten().collect();
    let attachments = if opts.no_attachments {
        Kept {
            kept: Vec::new(),
            staging: parent.join(format!(".{name}.cutover-attachments")),
        }
    } else {
        keep_attachments(source, tables, &parent, &name, &tmp.path)?
    };
    // The source's own schema description (Airtable: the metadata response), kept beside.
    let mut extra = Vec::new();
    if let Some((file, text)) = source.metadata() {
        let path = tmp.path.join(file);
        let io = |e: std::io::Error| unavailable(format!("writing {}: {e}", path.display()));
        let mut f = files::create_new(&path).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        let mut hash = Sha256::new();
        hash.update(text.as_bytes());
        extra.push(super::ExtraEntry {
            file: file.to_string(),
            sha256: super::hex_digest(hash),
        });
    }
    let manifest = Manifest {
        format: FORMAT.to_string(),
        format_version: FORMAT_VERSION,
        cutover_version: env!("CARGO_PKG_VERSION").to_string(),
        extracted_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        source: info.clone(),
        tables: entries,
        extra,
        attachments: attachments.kept,
        airtable_changes: source.change_feed(),
    };
    let path = tmp.path.join(MANIFEST);
    let io = |e: std::io::Error| unavailable(format!("writing {}: {e}", path.display()));
    let mut text = serde_json::to_string_pretty(&manifest).context("encoding the manifest")?;
    text.push('\n');
    let mut f = files::create_new(&path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    sync_dir(&tmp.path)?;
    install(&tmp.path, out, &parent, &name)?;
    let mut tmp = tmp;
    tmp.keep = true;
    // Every file is in the snapshot now: what a failed run would have resumed from goes.
    let _ = std::fs::remove_dir_all(&attachments.staging);
    Ok(manifest)
}

/// The attachment files a snapshot keeps, moved into the snapshot being written, and the
/// private directory beside `--out` where they were downloaded (`.NAME.cutover-attachments`,
/// kept when the export fails, so the next run fetches only the files it lacks).
struct Kept {
    kept: Vec<super::AttachmentEntry>,
    staging: PathBuf,
}

fn keep_attachments(
    source: &mut dyn Source,
    tables: &[SourceTable],
    parent: &Path,
    name: &str,
    tmp: &Path,
) -> anyhow::Result<Kept> {
    use super::attachments::{Store, install};
    let staging = parent.join(format!(".{name}.cutover-attachments"));
    match files::create_dir(&staging) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let m = std::fs::symlink_metadata(&staging)
                .map_err(|e| unavailable(format!("{}: {e}", staging.display())))?;
            // SAFETY: geteuid has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            if !m.is_dir() || m.uid() != me || m.permissions().mode() & 0o077 != 0 {
                return Err(unavailable(format!(
                    "{} is not a private directory of this user (a link, another user's, or \
                     open to others); cutover downloads attachments there: remove it",
                    staging.display()
                )));
            }
        }
        Err(e) => {
            return Err(unavailable(format!(
                "cannot create {} for the attachments: {e}",
                staging.display()
            )));
        }
    }
    let (store, have) = Store::open(&staging);
    let store = std::sync::Arc::new(store);
    let names: Vec<String> = tables.iter().map(|t| t.name.clone()).collect();
    let mut kept = source.attachments(&names, &store, &std::sync::Arc::new(have))?;
    kept.sort_by(|a, b| a.id.cmp(&b.id));
    kept.dedup_by(|a, b| a.id == b.id);
    store.finish();
    install(&store, &kept, tmp).map_err(|e| {
        unavailable(format!(
            "cannot move the attachments from {} into the snapshot: {e}",
            staging.display()
        ))
    })?;
    if kept.is_empty() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(Kept { kept, staging })
}

/// Make a directory's entries (new files, renames) durable.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| unavailable(format!("syncing directory {}: {e}", dir.display())))
}

/// Rename the finished temporary directory to `out`, replacing what is there (checked by
/// [`check_out`]) only once the new snapshot is in place.
fn install(tmp: &Path, out: &Path, parent: &Path, name: &str) -> anyhow::Result<()> {
    let rename = |from: &Path, to: &Path| {
        std::fs::rename(from, to).map_err(|e| {
            unavailable(format!(
                "cannot move the snapshot into place ({} -> {}): {e}",
                from.display(),
                to.display()
            ))
        })
    };
    if std::fs::symlink_metadata(out).is_ok() {
        let old = parent.join(format!(".{name}.cutover-old-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&old);
        rename(out, &old)?;
        if let Err(e) = rename(tmp, out) {
            let _ = std::fs::rename(&old, out);
            return Err(e);
        }
        sync_dir(parent)?;
        std::fs::remove_dir_all(&old).map_err(|e| {
            unavailable(format!(
                "the snapshot is in place, but the old contents of {} could not be removed from {}: {e}",
                out.display(),
                old.display()
            ))
        })?;
    } else {
        rename(tmp, out)?;
    }
    sync_dir(parent)
}

fn bar(name: &str, rows: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(rows), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{prefix:>24} {bar:30} {pos}/{len} rows {per_sec}")
    {
        bar.set_style(style);
    }
    bar.set_prefix(name.to_string());
    bar
}

/// Rows held while the columns' types are chosen: at most this many…
const SAMPLE_ROWS: usize = 1000;
/// …and about this many bytes of their text, blobs and JSON.
const SAMPLE_BYTES: usize = 8 << 20;

/// The first rows of a table, held until each column's type is chosen from them: the
/// variant most of their non-NULL values have (the first seen wins a tie), so that most
/// cells are plain and only the exceptions are tagged. The choice only decides which cells
/// are tagged (a cell whose value is of another type says so), so choosing from the first
/// rows instead of all of them changes no value read back, and the table is read once.
struct Sample {
    rows: Vec<Vec<Cell<'static>>>,
    bytes: usize,
    /// Per column: (count, first row seen) per type in `ORDER`.
    seen: Vec<[(u64, u64); 6]>,
}

impl Sample {
    const ORDER: [ColumnType; 6] = [
        ColumnType::Text,
        ColumnType::Integer,
        ColumnType::Real,
        ColumnType::Boolean,
        ColumnType::Blob,
        ColumnType::Json,
    ];

    fn new(columns: usize) -> Sample {
        Sample {
            rows: Vec::new(),
            bytes: 0,
            seen: vec![[(0, u64::MAX); 6]; columns],
        }
    }

    /// Hold a row; true once enough are held to choose.
    fn hold(&mut self, rec: &dyn Record) -> bool {
        let mut row = Vec::with_capacity(self.seen.len());
        for (i, col) in self.seen.iter_mut().enumerate() {
            let v = rec.get(i);
            let ty = ColumnType::of(&v);
            if let Some(k) = Sample::ORDER.iter().position(|o| *o == ty) {
                col[k].0 += 1;
                col[k].1 = col[k].1.min(rec.ordinal());
            }
            let (cell, bytes) = owned(&v);
            self.bytes += bytes;
            row.push(cell);
        }
        self.rows.push(row);
        self.rows.len() >= SAMPLE_ROWS || self.bytes >= SAMPLE_BYTES
    }

    fn types(&self) -> Vec<ColumnType> {
        self.seen
            .iter()
            .map(|col| {
                (0..Sample::ORDER.len())
                    .filter(|&k| col[k].0 > 0)
                    .max_by_key(|&k| (col[k].0, std::cmp::Reverse(col[k].1)))
                    .map_or(ColumnType::Null, |k| Sample::ORDER[k])
            })
            .collect()
    }

    /// Write the rows held, and hold no more.
    fn write<W: Write>(
        &mut self,
        w: &mut csv::Writer<W>,
        types: &[ColumnType],
        cells: &mut [String],
    ) -> csv::Result<()> {
        for row in self.rows.drain(..) {
            write_row(w, types, cells, row.iter().map(Cell::value))?;
        }
        self.bytes = 0;
        Ok(())
    }
}

/// One CSV row of `values`, each encoded for its column's type into `cells` (reused).
fn write_row<'v, W: Write>(
    w: &mut csv::Writer<W>,
    types: &[ColumnType],
    cells: &mut [String],
    values: impl Iterator<Item = Value<'v>>,
) -> csv::Result<()> {
    for ((cell, ty), v) in cells.iter_mut().zip(types).zip(values) {
        format::encode(&v, *ty, cell);
    }
    w.write_record(&*cells)
}

/// A value held past its record, and about how many bytes it holds.
fn owned(v: &Value<'_>) -> (Cell<'static>, usize) {
    fn json_bytes(j: &serde_json::Value) -> usize {
        use serde_json::Value as J;
        8 + match j {
            J::String(s) => s.len(),
            J::Array(a) => a.iter().map(json_bytes).sum(),
            J::Object(o) => o.iter().map(|(k, v)| k.len() + json_bytes(v)).sum(),
            _ => 0,
        }
    }
    match v {
        Value::Null => (Cell::Null, 0),
        Value::Bool(b) => (Cell::Bool(*b), 0),
        Value::Int(i) => (Cell::Int(*i), 0),
        Value::Float(f) => (Cell::Float(*f), 0),
        Value::Text(t) => (Cell::TextBytes(t.to_vec()), t.len()),
        Value::Blob(b) => (Cell::Blob(b.to_vec()), b.len()),
        Value::Json(j) => (Cell::Json((*j).clone()), json_bytes(j)),
    }
}

/// Write one table's CSV file, fsynced, and describe it for the manifest.
fn write_table(
    source: &mut dyn Source,
    t: &SourceTable,
    path: &Path,
    file: &str,
    opts: Options,
) -> anyhow::Result<TableEntry> {
    if t.fields.is_empty() {
        return Err(unavailable(format!(
            "source table `{}` has no fields; a CSV file cannot hold it",
            t.name
        )));
    }
    let io = |e: std::io::Error| unavailable(format!("writing {}: {e}", path.display()));
    let total = source.count(&t.name)?;
    let progress = bar(&t.name, total, opts.quiet);
    let f = files::create_new(path).map_err(io)?;
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(HashWriter {
            inner: BufWriter::with_capacity(256 * 1024, f),
            hash: Sha256::new(),
        });
    let csv_err = |e: csv::Error| unavailable(format!("writing {}: {e}", path.display()));
    w.write_record(&t.fields).map_err(csv_err)?;
    let mut sample = Sample::new(t.fields.len());
    let mut chosen: Option<Vec<ColumnType>> = None;
    let mut cells = vec![String::new(); t.fields.len()];
    let rows = source.scan(&t.name, &t.fields, &mut |rec: &dyn Record| {
        match &chosen {
            Some(types) => {
                let values = (0..types.len()).map(|i| rec.get(i));
                write_row(&mut w, types, &mut cells, values).map_err(csv_err)?;
            }
            None => {
                if sample.hold(rec) {
                    let types = sample.types();
                    sample.write(&mut w, &types, &mut cells).map_err(csv_err)?;
                    chosen = Some(types);
                }
            }
        }
        if rec.ordinal().is_multiple_of(4096) {
            progress.set_position(rec.ordinal());
        }
        Ok(())
    })?;
    let types = match chosen {
        Some(types) => types,
        None => {
            let types = sample.types();
            sample.write(&mut w, &types, &mut cells).map_err(csv_err)?;
            types
        }
    };
    let hw = w
        .into_inner()
        .map_err(|e| io(std::io::Error::other(e.error().to_string())))?;
    let digest = hw.hash;
    let f = hw
        .inner
        .into_inner()
        .map_err(|e| io(std::io::Error::other(e.error().to_string())))?;
    f.sync_all().map_err(io)?;
    progress.set_position(rows);
    progress.finish();
    if !opts.quiet && progress.is_hidden() {
        eprintln!("export: {:<24} {rows:>10} rows -> {file}", t.name);
    }
    Ok(TableEntry {
        name: t.name.clone(),
        file: file.to_string(),
        columns: t
            .fields
            .iter()
            .zip(types)
            .map(|(name, ty)| ColumnEntry {
                name: name.clone(),
                ty,
            })
            .collect(),
        rows,
        sha256: super::hex_digest(digest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source of two tables whose second fails after some rows, as a disk or network
    /// failure midway would.
    struct Failing;

    struct Row(u64);

    impl Record for Row {
        fn ordinal(&self) -> u64 {
            self.0
        }
        fn get(&self, i: usize) -> Value<'_> {
            if i == 0 {
                Value::Int(self.0 as i64)
            } else {
                Value::Text(b"x")
            }
        }
    }

    impl Source for Failing {
        fn tables(&self) -> anyhow::Result<Vec<SourceTable>> {
            Ok(["good", "bad"]
                .iter()
                .map(|n| SourceTable {
                    name: n.to_string(),
                    fields: vec!["id".into(), "v".into()],
                    ..SourceTable::default()
                })
                .collect())
        }
        fn count(&self, _: &str) -> anyhow::Result<u64> {
            Ok(10)
        }
        fn scan(
            &mut self,
            table: &str,
            _: &[String],
            each: &mut dyn FnMut(&dyn Record) -> anyhow::Result<()>,
        ) -> anyhow::Result<u64> {
            for i in 1..=10 {
                if table == "bad" && i == 5 {
                    anyhow::bail!("the source went away");
                }
                each(&Row(i))?;
            }
            Ok(10)
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cutover-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_failure_midway_leaves_no_snapshot() {
        let dir = scratch("midway");
        let info = SourceInfo {
            kind: "test".into(),
            location: "here".into(),
        };
        let tables = Failing.tables().unwrap();
        // Into a new directory, and over an existing snapshot with --force.
        for (out, force) in [(dir.join("new"), false), (dir.join("old"), true)] {
            // A previous snapshot of no tables: its manifest alone.
            let old = serde_json::to_string(&Manifest {
                format: FORMAT.to_string(),
                format_version: FORMAT_VERSION,
                cutover_version: "0".into(),
                extracted_at: "then".into(),
                source: info.clone(),
                tables: Vec::new(),
                extra: Vec::new(),
                attachments: Vec::new(),
                airtable_changes: None,
            })
            .unwrap();
            if force {
                std::fs::create_dir_all(&out).unwrap();
                std::fs::write(out.join(MANIFEST), &old).unwrap();
            }
            let opts = Options {
                force,
                quiet: true,
                no_attachments: false,
            };
            let err = write(&mut Failing, &info, &tables, &out, opts).unwrap_err();
            let text = format!("{err:#}");
            assert!(
                text.contains("`bad`") && text.contains("went away"),
                "{text}"
            );
            if force {
                // The old snapshot is untouched.
                assert_eq!(std::fs::read_to_string(out.join(MANIFEST)).unwrap(), old);
            } else {
                assert!(!out.exists());
            }
        }
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "temporary directories left: {left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_complete_export_is_installed_and_reads_back() {
        let dir = scratch("complete");
        let out = dir.join("snap");
        let info = SourceInfo {
            kind: "test".into(),
            location: "here".into(),
        };
        let tables = vec![Failing.tables().unwrap().remove(0)];
        let m = write(&mut Failing, &info, &tables, &out, Options::default()).unwrap();
        assert_eq!(m.tables[0].rows, 10);
        assert_eq!(m.tables[0].columns[0].ty, ColumnType::Integer);
        let src = crate::source::snapshot::reader::SnapshotSource::open(&out).unwrap();
        assert_eq!(src.count("good").unwrap(), 10);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A table whose values change type after the rows the types are chosen from: one
    /// column of integers that turn to text, blobs and NULLs, one that is NULL until then.
    struct Shifting {
        scans: usize,
    }

    const SHIFTING_ROWS: u64 = SAMPLE_ROWS as u64 + 500;

    struct Shifted(u64);

    impl Record for Shifted {
        fn ordinal(&self) -> u64 {
            self.0
        }
        fn get(&self, i: usize) -> Value<'_> {
            let late = self.0 > SAMPLE_ROWS as u64;
            match (i, late, self.0 % 3) {
                (0, false, _) => Value::Int(self.0 as i64),
                (0, true, 0) => Value::Text(b"\\not a tag"),
                (0, true, 1) => Value::Blob(b"\x00\xff"),
                (0, true, _) => Value::Null,
                (_, false, _) => Value::Null,
                (_, true, _) => Value::Text(b"late"),
            }
        }
    }

    impl Source for Shifting {
        fn tables(&self) -> anyhow::Result<Vec<SourceTable>> {
            Ok(vec![SourceTable {
                name: "t".into(),
                fields: vec!["a".into(), "b".into()],
                ..SourceTable::default()
            }])
        }
        fn count(&self, _: &str) -> anyhow::Result<u64> {
            Ok(SHIFTING_ROWS)
        }
        fn scan(
            &mut self,
            _: &str,
            _: &[String],
            each: &mut dyn FnMut(&dyn Record) -> anyhow::Result<()>,
        ) -> anyhow::Result<u64> {
            self.scans += 1;
            for i in 1..=SHIFTING_ROWS {
                each(&Shifted(i))?;
            }
            Ok(SHIFTING_ROWS)
        }
    }

    #[test]
    fn values_whose_type_changes_after_the_first_rows_read_back_as_they_were_from_one_read() {
        let dir = scratch("shifting");
        let out = dir.join("snap");
        let info = SourceInfo {
            kind: "test".into(),
            location: "here".into(),
        };
        let mut src = Shifting { scans: 0 };
        let tables = src.tables().unwrap();
        let m = write(&mut src, &info, &tables, &out, Options::default()).unwrap();
        assert_eq!(src.scans, 1, "the table is read once");
        let types: Vec<ColumnType> = m.tables[0].columns.iter().map(|c| c.ty).collect();
        assert_eq!(types, [ColumnType::Integer, ColumnType::Null]);
        let mut back = crate::source::snapshot::reader::SnapshotSource::open(&out).unwrap();
        let fields = vec!["a".to_string(), "b".to_string()];
        let mut n = 0;
        back.scan("t", &fields, &mut |rec: &dyn Record| {
            n += 1;
            let want = Shifted(n);
            for i in 0..2 {
                assert_eq!(
                    format!("{:?}", rec.get(i)),
                    format!("{:?}", want.get(i)),
                    "row {n}, column {i}"
                );
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(n, SHIFTING_ROWS);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
