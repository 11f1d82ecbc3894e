//! The mapping file: which source table feeds which target table, field by field.
//!
//! A mapping is read from TOML by walking the parsed document by hand rather than through
//! serde, so that every problem is collected at once (not just the first) and each one names
//! the file, the line, the key and, for a misspelt name, the closest real one. What the
//! mapping says is checked here on its own; the plan checks it against the source and
//! the target catalog.
//!
//! `model` is what a mapping says; `walker` reads TOML values keeping every problem,
//! `parse` knows the file's layout, `check` the rules across tables, and `problems` how they
//! are all reported.

mod check;
mod model;
mod parse;
mod problems;
pub(crate) mod suggest;
mod walker;

pub(crate) use model::{
    ColumnMap, Const, GenerateId, Identity, Input, KeyPolicy, Many, Mapping, OnConflict,
    OnDuplicate, OnError, OnMissing, Reference, Shape, TableMap, Triggers,
};
pub(crate) use problems::{Problem, Problems};
use std::path::Path;

/// Read and check a mapping file. Every problem is reported at once (exit code 2).
pub(crate) fn load(path: &Path) -> anyhow::Result<Mapping> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| crate::error::usage(format!("cannot read mapping {}: {e}", path.display())))?;
    parse(path, &text).map_err(|p| crate::error::usage(p.to_string()))
}

/// Parse mapping text; `path` names the file in messages and anchors relative paths.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Mapping, Problems> {
    let (mapping, mut problems) = parse::document(path, text);
    if let Some(m) = &mapping {
        check::references(m, &mut problems);
        check::selections(m, &mut problems);
    }
    match mapping {
        Some(m) if problems.is_empty() => Ok(m),
        _ => {
            problems.sort_by_key(|p| p.line);
            Err(Problems {
                file: path.to_path_buf(),
                list: problems,
            })
        }
    }
}

#[cfg(test)]
mod tests;
