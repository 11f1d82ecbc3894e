//! How a mapping's problems are reported: each one located by line and key, all of them
//! together, one per line under the file's name. Problems found later, against the source
//! and the target catalog, are reported with the same types so they read the same.

use std::fmt;
use std::path::PathBuf;

/// One problem in a mapping, located.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub(crate) line: usize,
    pub(crate) key: String,
    pub(crate) message: String,
}

/// Every problem found, rendered one per line as `file:line: key: message`.
#[derive(Debug)]
pub(crate) struct Problems {
    pub(crate) file: PathBuf,
    pub(crate) list: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.list.len();
        writeln!(
            f,
            "{} has {n} problem{}:",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.list {
            if p.key.is_empty() {
                writeln!(f, "  {}:{}: {}", self.file.display(), p.line, p.message)?;
            } else {
                writeln!(
                    f,
                    "  {}:{}: {}: {}",
                    self.file.display(),
                    p.line,
                    p.key,
                    p.message
                )?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}
