//! What a run shows on stderr while it works, decided in one place. On a terminal: a bar
//! per table (rows read, then the phase the load is in), an overall bar with an ETA over
//! every phase (the merge, the key rebuild and the commit are most of a large load), and the
//! elapsed time at the end. Off a terminal (CI, nohup, a log): one line per table and phase
//! with its timing, as each ends. With `--quiet`: nothing; the summary and errors are the
//! outcome's, printed by `app`.

use crate::extract::Progress;
use crate::load::{Observer, Phase};
use crate::report::text::{clock, thousands};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    Off,
    /// A line per event on stderr: for logs.
    Lines,
    /// Bars redrawn in place: for a terminal.
    Bars,
}

/// Whether progress is shown, and how.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Notes {
    shown: Shown,
}

impl Notes {
    /// For the commands that read a database: bars on a terminal, lines otherwise, nothing
    /// with `--quiet`.
    pub(crate) fn for_run(quiet: bool) -> Notes {
        let shown = if quiet {
            Shown::Off
        } else if std::io::stderr().is_terminal() {
            Shown::Bars
        } else {
            Shown::Lines
        };
        Notes { shown }
    }

    /// For `export`: notes as lines whenever not `--quiet`, like the snapshot writer's own
    /// per-table lines.
    pub(crate) fn unless_quiet(quiet: bool) -> Notes {
        Notes {
            shown: if quiet { Shown::Off } else { Shown::Lines },
        }
    }

    /// No progress at all (a second pass whose progress would repeat the first's).
    pub(crate) fn none() -> Notes {
        Notes { shown: Shown::Off }
    }

    pub(crate) fn shown(self) -> bool {
        self.shown != Shown::Off
    }

    /// Print one note on stderr, if progress is shown.
    pub(crate) fn note(self, text: fmt::Arguments<'_>) {
        if self.shown() {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    }
}

/// What the run does after reading, for the overall bar's share of each phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// Only reading and converting (`check`).
    Read,
    /// A load; `verify`: with `--verify`.
    Load { verify: bool },
    /// A comparison (`verify`): read, resolve and compare, then roll back.
    Compare,
}

/// The progress of one run, shown as [`Notes`] says: fed by the convert stage (rows read)
/// on its thread and by the load (phases) on this one.
pub(crate) struct Display {
    shown: Shown,
    work: Work,
    names: Vec<String>,
    start: Instant,
    board: OnceLock<Board>,
}

/// The bars, once the row counts are known.
struct Board {
    /// What draws the bars, together, below each other.
    _multi: MultiProgress,
    tables: Vec<ProgressBar>,
    overall: ProgressBar,
    /// Per table: rows read so far (to move the overall bar by the difference).
    read: Vec<AtomicU64>,
    /// Per table: microseconds spent in its phases so far.
    spent: Vec<AtomicU64>,
    rows: Vec<u64>,
    total: u64,
}

impl Display {
    /// The display for a run over `names` (the plan's tables, in order).
    pub(crate) fn new(notes: Notes, work: Work, names: Vec<String>) -> Display {
        Display {
            shown: notes.shown,
            work,
            names,
            start: Instant::now(),
            board: OnceLock::new(),
        }
    }

    /// A line for a log, stamped with the time since the run started.
    fn line(&self, text: fmt::Arguments<'_>) {
        let _ = writeln!(
            std::io::stderr(),
            "[{}] {text}",
            clock(self.start.elapsed())
        );
    }

    fn name(&self, table: Option<usize>) -> &str {
        table
            .and_then(|i| self.names.get(i))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The overall bar's units for a phase once it is over: reading counts one per row
    /// (as the rows come in); writing a table, as much again for that table; the phases
    /// over the whole load, as much again for all of them.
    fn units(&self, board: &Board, phase: Phase, table: Option<usize>) -> u64 {
        let all = board.rows.iter().sum::<u64>();
        let of_table = table.and_then(|i| board.rows.get(i)).copied().unwrap_or(0);
        let share = |percent: u64| all * percent / 100;
        match phase {
            Phase::Setup => 0,
            Phase::Copy => 0,
            Phase::Resolve => of_table / 4,
            Phase::Write | Phase::Compare => of_table - of_table / 4,
            Phase::Rebuild => share(50),
            Phase::Prune => share(5),
            Phase::Sequences => share(5),
            Phase::Counts => share(20),
            Phase::Verify => all,
            Phase::Commit | Phase::Rollback => share(20),
        }
    }

    fn board(&self, rows: &[u64]) -> Board {
        let all: u64 = rows.iter().sum();
        let total = match self.work {
            Work::Read => all,
            Work::Compare => 2 * all,
            Work::Load { verify } => 3 * all + if verify { all } else { 0 },
        }
        .max(1);
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let width = self
            .names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .max("overall".len());
        let table_style = ProgressStyle::with_template(&format!(
            "{{prefix:<{width}}} {{bar:16}} {{human_pos:>9}}/{{human_len:<9}} {{wide_msg}}"
        ));
        let tables = self
            .names
            .iter()
            .zip(rows)
            .map(|(name, n)| {
                let bar = multi.add(ProgressBar::new(*n));
                if let Ok(style) = table_style.as_ref().map(ProgressStyle::clone) {
                    bar.set_style(style);
                }
                bar.set_prefix(name.clone());
                bar.set_message("waiting");
                bar
            })
            .collect();
        let overall = multi.add(ProgressBar::new(total));
        if let Ok(style) = ProgressStyle::with_template(&format!(
            "{{prefix:<{width}}} {{bar:16}} {{percent:>3}}% {{elapsed:>4}}, ETA {{eta:<4}} {{wide_msg}}"
        )) {
            overall.set_style(style);
        }
        overall.set_prefix("overall");
        overall.set_message("reading");
        overall.enable_steady_tick(Duration::from_millis(250));
        Board {
            _multi: multi,
            tables,
            overall,
            read: rows.iter().map(|_| AtomicU64::new(0)).collect(),
            spent: rows.iter().map(|_| AtomicU64::new(0)).collect(),
            rows: rows.to_vec(),
            total,
        }
    }

    /// The end of the run: the overall bar says how long it took; the bars stay on screen
    /// above the summary.
    fn done(&self, board: &Board) {
        board.overall.set_position(board.total);
        board
            .overall
            .finish_with_message(format!("done in {}", clock(self.start.elapsed())));
        for bar in &board.tables {
            bar.finish();
        }
    }
}

impl Progress for Display {
    fn counted(&self, rows: &[u64]) {
        match self.shown {
            Shown::Off => {}
            Shown::Lines => self.line(format_args!(
                "source: {} tables, {} rows",
                rows.len(),
                thousands(rows.iter().sum())
            )),
            Shown::Bars => {
                let _ = self.board.set(self.board(rows));
            }
        }
    }

    fn read(&self, table: usize, rows: u64) {
        let Some(board) = self.board.get() else {
            return;
        };
        if let (Some(bar), Some(last)) = (board.tables.get(table), board.read.get(table)) {
            bar.set_position(rows);
            if bar.message() == "waiting" {
                bar.set_message("reading");
            }
            let before = last.swap(rows, Ordering::Relaxed);
            board.overall.inc(rows.saturating_sub(before));
        }
    }

    fn read_all(&self, table: usize, rows: u64, took: Duration) {
        match self.shown {
            Shown::Off => {}
            // A load says so when its COPY ends; only a check says so here.
            Shown::Lines if self.work == Work::Read => self.line(format_args!(
                "{}: read {}, {} rows",
                self.name(Some(table)),
                clock(took),
                thousands(rows)
            )),
            Shown::Lines => {}
            Shown::Bars => {
                self.read(table, rows);
                let Some(board) = self.board.get() else {
                    return;
                };
                if let Some(bar) = board.tables.get(table) {
                    bar.set_length(rows);
                    if self.work == Work::Read {
                        bar.set_message(format!("read in {}", clock(took)));
                    }
                }
                if self.work == Work::Read && table + 1 == self.names.len() {
                    self.done(board);
                }
            }
        }
    }
}

impl Observer for Display {
    fn started(&self, phase: Phase, table: Option<usize>) {
        let Some(board) = self.board.get() else {
            return;
        };
        match table.and_then(|i| board.tables.get(i)) {
            Some(bar) => bar.set_message(format!("{}…", phase.doing())),
            None => board.overall.set_message(format!("{}…", phase.doing())),
        }
    }

    fn finished(&self, phase: Phase, table: Option<usize>, took: Duration, rows: Option<u64>) {
        match self.shown {
            Shown::Off => {}
            Shown::Lines => {
                let rows = rows
                    .map(|n| format!(", {} rows", thousands(n)))
                    .unwrap_or_default();
                match table {
                    Some(_) => self.line(format_args!(
                        "{}: {} {}{rows}",
                        self.name(table),
                        phase.name(),
                        clock(took)
                    )),
                    None => self.line(format_args!("{} {}", phase.name(), clock(took))),
                }
                if matches!(phase, Phase::Commit | Phase::Rollback) {
                    self.line(format_args!("finished in {}", clock(self.start.elapsed())));
                }
            }
            Shown::Bars => {
                let Some(board) = self.board.get() else {
                    return;
                };
                board.overall.inc(self.units(board, phase, table));
                if let Some(i) = table
                    && let (Some(bar), Some(spent)) = (board.tables.get(i), board.spent.get(i))
                {
                    let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                    let spent = spent.fetch_add(micros, Ordering::Relaxed) + micros;
                    let last = match self.work {
                        Work::Compare => Phase::Compare,
                        _ => Phase::Write,
                    };
                    if phase == last {
                        let spent = clock(Duration::from_micros(spent));
                        bar.set_message(format!("done in {spent}"));
                    }
                }
                if matches!(phase, Phase::Commit | Phase::Rollback) {
                    self.done(board);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_and_hidden_displays_take_every_event() {
        let d = Display::new(
            Notes::none(),
            Work::Load { verify: false },
            vec!["users".into()],
        );
        d.counted(&[3]);
        d.read(0, 2);
        d.read_all(0, 3, Duration::ZERO);
        d.started(Phase::Copy, Some(0));
        d.finished(Phase::Copy, Some(0), Duration::ZERO, Some(3));
        d.finished(Phase::Commit, None, Duration::ZERO, None);
        assert!(d.board.get().is_none());
    }
}
