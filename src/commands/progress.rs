//! What a run shows on stderr while it works: short notes (`load: SRC -> TARGET`, the
//! scratch cluster starting and stopping) and a bar per table. Both are decided in one place,
//! so a log or CI run, or one with `--quiet`, prints nothing but its outcome and its errors.

use crate::extract::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fmt;
use std::io::{IsTerminal, Write};

/// Whether progress is shown.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Notes {
    on: bool,
}

impl Notes {
    /// For the commands that read a database: on a terminal only, and never with `--quiet`.
    pub(crate) fn on_terminal(quiet: bool) -> Notes {
        Notes {
            on: !quiet && std::io::stderr().is_terminal(),
        }
    }

    /// For `export`: whenever not `--quiet`, like the snapshot writer's own per-table lines.
    pub(crate) fn unless_quiet(quiet: bool) -> Notes {
        Notes { on: !quiet }
    }

    /// No progress at all (a second pass whose progress would repeat the first's).
    pub(crate) fn none() -> Notes {
        Notes { on: false }
    }

    pub(crate) fn shown(self) -> bool {
        self.on
    }

    /// Print one note on stderr, if progress is shown.
    pub(crate) fn note(self, text: fmt::Arguments<'_>) {
        if self.on {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    }
}

/// The per-table bars of the convert stage, drawn on stderr, or nowhere.
pub(crate) struct Bars {
    multi: MultiProgress,
    hidden: bool,
}

impl Bars {
    pub(crate) fn new(notes: Notes) -> Bars {
        let hidden = !notes.shown();
        let multi = MultiProgress::with_draw_target(if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        });
        Bars { multi, hidden }
    }
}

impl Progress for Bars {
    fn table(&self, name: &str, rows: u64) -> ProgressBar {
        if self.hidden {
            return ProgressBar::hidden();
        }
        let bar = self.multi.add(ProgressBar::new(rows));
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:>24} {bar:30} {human_pos}/{human_len} rows  {elapsed}",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix(name.to_string());
        bar
    }
}
