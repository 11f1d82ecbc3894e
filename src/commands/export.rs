//! `cutover export`: write a snapshot of every source table the mapping reads.

use super::outcome::{Outcome, Output};
use super::prepare::source_spec;
use super::progress::Notes;
use crate::cli::ExportArgs;
use crate::error::usage;
use crate::mapping;
use crate::source::airtable::delta::Refreshed;
use crate::source::snapshot::Manifest;
use crate::source::snapshot::reader::SnapshotSource;
use crate::source::snapshot::writer::{Options, check_out, source_info, write};
use crate::source::{self, Source};
use anyhow::Context;
use std::path::PathBuf;

/// The snapshot written.
pub(crate) struct Exported {
    manifest: Manifest,
    out: PathBuf,
    /// A refresh: records (replaced, added, left out).
    refreshed: Option<(u64, u64, u64)>,
}

/// The `export` command.
pub(crate) async fn command(a: ExportArgs) -> anyhow::Result<Outcome> {
    let m = mapping::load(&a.mapping)?;
    let spec = source_spec(&m, a.source.as_deref())?;
    if let Some(dir) = a.refresh.clone() {
        return refresh(a, spec, dir).await;
    }
    let out_dir = a
        .out
        .clone()
        .ok_or_else(|| usage("export needs --out DIR (or --refresh DIR)"))?;
    // The tables the mapping reads, each once, in mapping order.
    let mut from: Vec<String> = Vec::new();
    for t in &m.tables {
        if !from.contains(&t.from) {
            from.push(t.from.clone());
        }
    }
    let opts = Options {
        force: a.force,
        quiet: a.quiet,
        no_attachments: a.no_attachments,
    };
    // Refuse a bad --out before reading anything (it is checked again before writing).
    check_out(&out_dir, opts.force, &source_info(&spec))?;
    Notes::unless_quiet(opts.quiet).note(format_args!("export: {spec} -> {}", out_dir.display()));
    let out = out_dir.clone();
    // The records the mapping selects (`view`, `filter`) are the ones exported.
    let open = super::prepare::open_options(a.from.open_options(), &m, &spec)?;
    let track = a.track_changes;
    let manifest = tokio::task::spawn_blocking(move || {
        let mut src = source::open(&spec, &open)?;
        if track {
            // Before anything is read: every change from now on is recorded.
            src.track_changes()?;
        }
        let all = src.tables()?;
        let mut tables = Vec::with_capacity(from.len());
        for name in &from {
            match all.iter().find(|t| t.is(name)) {
                Some(t) => tables.push(t.clone()),
                None => {
                    return Err(usage(format!(
                        "the mapping reads source table `{name}`, which {spec} does not have{}",
                        mapping::suggest::hint(name, all.iter().map(|t| t.name.as_str()))
                    )));
                }
            }
        }
        let manifest = write(src.as_mut(), &source_info(&spec), &tables, &out, opts)?;
        src.finished();
        Ok(manifest)
    })
    .await
    .context("exporting")??;
    Ok(Outcome::Export(Exported {
        manifest,
        out: out_dir,
        refreshed: None,
    }))
}

/// `export --refresh DIR`: the snapshot in DIR brought up to date from its base's webhook.
async fn refresh(a: ExportArgs, spec: source::SourceSpec, dir: PathBuf) -> anyhow::Result<Outcome> {
    let source::SourceSpec::Airtable { base } = &spec else {
        return Err(usage(format!(
            "--refresh brings an Airtable snapshot up to date, and the source is {spec}"
        )));
    };
    let base = base.clone();
    let opts = Options {
        force: true,
        quiet: a.quiet,
        no_attachments: a.no_attachments,
    };
    Notes::unless_quiet(opts.quiet).note(format_args!(
        "export: refreshing {} from {spec}",
        dir.display()
    ));
    let open = a.from.open_options();
    let out = dir.clone();
    let (manifest, summary) = tokio::task::spawn_blocking(move || {
        let old = SnapshotSource::open(&out)?;
        let info = old.manifest().source.clone();
        if info.kind != "airtable" || info.location != base {
            return Err(usage(format!(
                "{} is a snapshot of {}:{}, not of airtable:{base}",
                out.display(),
                info.kind,
                info.location
            )));
        }
        let airtable = source::open_airtable(&base, &open)?;
        let mut src = Refreshed::new(old, airtable)?;
        let tables = src.tables()?;
        let manifest = write(&mut src, &info, &tables, &out, opts)?;
        let summary = src.summary;
        src.finished();
        Ok((manifest, summary))
    })
    .await
    .context("refreshing")??;
    Ok(Outcome::Export(Exported {
        manifest,
        out: dir,
        refreshed: Some(summary),
    }))
}

impl Exported {
    /// A line per table, then where the snapshot is and how to load from it.
    pub(crate) fn show(self, out: &mut Output) {
        let rows: u64 = self.manifest.tables.iter().map(|t| t.rows).sum();
        if let Some((changed, added, removed)) = self.refreshed {
            out.line(format!(
                "refreshed: {changed} records changed, {added} added, {removed} removed since the \
                 snapshot"
            ));
        }
        for t in &self.manifest.tables {
            out.line(format!("{:<24} {:>10} rows  {}", t.name, t.rows, t.file));
        }
        out.line(format!(
            "snapshot written: {} ({} tables, {rows} rows). Load from it with --source snapshot:{}",
            self.out.display(),
            self.manifest.tables.len(),
            self.out.display()
        ));
    }
}
