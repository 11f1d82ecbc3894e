//! `cutover export`: write a snapshot of every source table the mapping reads.

use crate::cli::ExportArgs;
use crate::error::usage;
use crate::mapping;
use crate::source::snapshot::writer::{Options, check_out, source_info, write};
use crate::source::{self, SourceSpec};
use anyhow::Context;

/// The `export` command.
pub(crate) async fn command(a: ExportArgs) -> anyhow::Result<i32> {
    let m = mapping::load(&a.mapping)?;
    let spec = match &a.source {
        Some(s) => SourceSpec::parse(s)?,
        None => m.source.clone().ok_or_else(|| {
            usage(format!(
                "no source: pass --source sqlite:PATH or add a [source] section to {}",
                m.file.display()
            ))
        })?,
    };
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
    if !opts.quiet {
        eprintln!("export: {spec} -> {}", a.out.display());
    }
    let out = a.out.clone();
    let open = a.from.open_options();
    let manifest = tokio::task::spawn_blocking(move || {
        let mut src = source::open(&spec, &open)?;
        let all = src.tables()?;
        let mut tables = Vec::with_capacity(from.len());
        for name in &from {
            match all.iter().find(|t| &t.name == name) {
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
    let rows: u64 = manifest.tables.iter().map(|t| t.rows).sum();
    for t in &manifest.tables {
        println!("{:<24} {:>10} rows  {}", t.name, t.rows, t.file);
    }
    println!(
        "snapshot written: {} ({} tables, {rows} rows). Load from it with --source snapshot:{}",
        a.out.display(),
        manifest.tables.len(),
        a.out.display()
    );
    Ok(0)
}
