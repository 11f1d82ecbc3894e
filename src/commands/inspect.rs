//! `cutover inspect`: a source's tables, fields, types and links, and on request a starter
//! mapping drafted from them — paired with the target's schema when `--target` is given.
//! Reads the target's catalog only; writes nothing but the draft file.

use super::outcome::{Outcome, Output};
use super::progress::Notes;
use super::target::{Released, Target};
use crate::cli::{Format, InspectArgs};
use crate::draft::{self, Drafted};
use crate::error::{unavailable, usage};
use crate::files;
use crate::pg::catalog;
use crate::source::{self, SourceSpec};
use anyhow::Context;
use std::path::PathBuf;

/// What an inspection found.
pub(crate) struct Inspected {
    /// The source's shape, rendered (or the JSON document, `--format json`).
    listing: String,
    /// What the draft left to a person.
    summary: Option<String>,
    /// `--emit-mapping`: the file written, or why not.
    emitted: Option<anyhow::Result<PathBuf>>,
    /// stdout holds the JSON document alone.
    json_only: bool,
    released: Released,
}

/// The `inspect` command.
pub(crate) async fn command(a: InspectArgs) -> anyhow::Result<Outcome> {
    let spec = SourceSpec::parse(&a.source)?;
    // A draft that could not be written is known before anything is read.
    if let Some(path) = &a.emit_mapping
        && std::fs::symlink_metadata(path).is_ok()
    {
        return Err(usage(format!(
            "{} already exists: choose another --emit-mapping file, or remove it first",
            path.display()
        )));
    }
    let s2 = spec.clone();
    let opts = a.from.open_options();
    let (shapes, tables) = tokio::task::spawn_blocking(move || {
        let src = source::open(&s2, &opts)?;
        anyhow::Ok((src.describe()?, src.tables()?))
    })
    .await
    .context("inspecting the source")??;
    let json_only = a.format == Format::Json;
    let notes = Notes::for_run(json_only);
    let target = match &a.target {
        Some(t) => Target::open_with(Some(t), &a.schema, &a.schema_from, false, notes).await?,
        None => None,
    };
    let (cat, revision) = match &target {
        Some(t) => {
            let client = t.url.connect().await?;
            let cat = catalog::read(&client, "public").await?;
            (
                Some(cat),
                catalog::alembic_revision_of(&client, "public").await,
            )
        }
        None => (None, None),
    };
    let drafted: Option<Drafted> = (a.emit_mapping.is_some() || cat.is_some()).then(|| {
        let path = a
            .emit_mapping
            .clone()
            .unwrap_or_else(|| PathBuf::from("draft.toml"));
        let path = std::path::absolute(&path).unwrap_or(path);
        draft::draft_mapping(
            &spec,
            &shapes,
            cat.as_ref().map(|c| (c, tables.as_slice())),
            revision.clone(),
            &path,
        )
    });
    let emitted = a.emit_mapping.map(|path| {
        let text = &drafted
            .as_ref()
            .map(|d| d.text.as_str())
            .unwrap_or_default();
        files::write(&path, text.as_bytes(), files::Existing::Refuse)
            .map_err(|e| unavailable(format!("cannot write the draft: {e}")))?;
        Ok(path)
    });
    let listing = if json_only {
        let doc = draft::json(&spec, &shapes, drafted.as_ref());
        format!("{}\n", serde_json::to_string_pretty(&doc)?)
    } else {
        draft::render(&shapes)
    };
    let summary = match (&drafted, json_only) {
        (Some(d), false) => Some(d.summary()),
        _ => None,
    };
    let released = match target {
        Some(t) => t.release(false, notes),
        None => Released::Quietly,
    };
    Ok(Outcome::Inspect(Inspected {
        listing,
        summary,
        emitted,
        json_only,
        released,
    }))
}

impl Inspected {
    pub(crate) fn show(self, out: &mut Output) {
        out.text(self.listing);
        if let Some(s) = self.summary {
            out.line(s);
        }
        match self.emitted {
            Some(Ok(_)) if self.json_only => {}
            Some(Ok(path)) => out.line(format!(
                "starter mapping written to {}: review it, then `cutover check -m {} --target URL`",
                path.display(),
                path.display()
            )),
            Some(Err(e)) => out.error(e),
            None => {}
        }
        self.released.show(out);
    }
}
