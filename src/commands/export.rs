//! `cutover export`: write a snapshot of every source table the mapping reads.

use super::outcome::{Outcome, Output};
use super::prepare::source_spec;
use super::progress::Notes;
use crate::cli::ExportArgs;
use crate::error::usage;
use crate::mapping;
use crate::source;
use crate::source::snapshot::Manifest;
use crate::source::snapshot::writer::{Options, check_out, source_info, write};
use anyhow::Context;
use std::path::PathBuf;

/// The snapshot written.
pub(crate) struct Exported {
    manifest: Manifest,
    out: PathBuf,
}

/// The `export` command.
pub(crate) async fn command(a: ExportArgs) -> anyhow::Result<Outcome> {
    let m = mapping::load(&a.mapping)?;
    let spec = source_spec(&m, a.source.as_deref())?;
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
    };
    // Refuse a bad --out before reading anything (it is checked again before writing).
    check_out(&a.out, opts.force, &source_info(&spec))?;
    Notes::unless_quiet(opts.quiet).note(format_args!("export: {spec} -> {}", a.out.display()));
    let out = a.out.clone();
    // The records the mapping selects (`view`, `filter`) are the ones exported.
    let open = super::prepare::open_options(a.from.open_options(), &m, &spec)?;
    let manifest = tokio::task::spawn_blocking(move || {
        let mut src = source::open(&spec, &open)?;
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
        write(src.as_mut(), &source_info(&spec), &tables, &out, opts)
    })
    .await
    .context("exporting")??;
    Ok(Outcome::Export(Exported {
        manifest,
        out: a.out,
    }))
}

impl Exported {
    /// A line per table, then where the snapshot is and how to load from it.
    pub(crate) fn show(self, out: &mut Output) {
        let rows: u64 = self.manifest.tables.iter().map(|t| t.rows).sum();
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
