//! `cutover inspect`: a source's tables, fields, types and links, and on request a starter
//! mapping drafted from them.

use super::outcome::{Outcome, Output};
use crate::cli::InspectArgs;
use crate::draft;
use crate::error::{unavailable, usage};
use crate::files;
use crate::source::{self, SourceSpec};
use anyhow::Context;
use std::path::PathBuf;

/// What an inspection found.
pub(crate) struct Inspected {
    /// The source's shape, rendered.
    listing: String,
    /// `--emit-mapping`: the file written, or why not.
    emitted: Option<anyhow::Result<PathBuf>>,
}

/// The `inspect` command.
pub(crate) async fn command(a: InspectArgs) -> anyhow::Result<Outcome> {
    let spec = SourceSpec::parse(&a.source)?;
    let s2 = spec.clone();
    let opts = a.from.open_options();
    let shapes = tokio::task::spawn_blocking(move || source::open(&s2, &opts)?.describe())
        .await
        .context("inspecting the source")??;
    let emitted = a.emit_mapping.map(|path| {
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(usage(format!(
                "{} already exists: choose another --emit-mapping file, or remove it first",
                path.display()
            )));
        }
        let text = draft::draft_mapping(&spec, &shapes);
        files::write(&path, text.as_bytes(), files::Existing::Refuse)
            .map_err(|e| unavailable(format!("cannot write the draft: {e}")))?;
        Ok(path)
    });
    Ok(Outcome::Inspect(Inspected {
        listing: draft::render(&shapes),
        emitted,
    }))
}

impl Inspected {
    pub(crate) fn show(self, out: &mut Output) {
        out.text(self.listing);
        match self.emitted {
            Some(Ok(path)) => out.line(format!(
                "starter mapping written to {}: review it, then `cutover check -m {} --target URL`",
                path.display(),
                path.display()
            )),
            Some(Err(e)) => out.error(e),
            None => {}
        }
    }
}
