//! What a command did, as a value: each command returns an [`Outcome`] instead of printing
//! its result, and `app` shows it — the text on stdout, the errors (and a closing progress
//! note) on stderr, in the order they happened — and picks the exit code from it. When the
//! JSON report goes to stdout (`--report -`), the text for people goes to stderr instead, so
//! that stdout holds nothing but the JSON.

use super::check::Checked;
use super::export::Exported;
use super::inspect::Inspected;
use super::load::Loaded;
use super::progress::Notes;
use super::target::Released;
use super::verify::Verified;

/// What one command did.
pub(crate) enum Outcome {
    Check(Checked),
    Load(Box<Loaded>),
    Verify {
        verified: Verified,
        released: Released,
    },
    Inspect(Inspected),
    Export(Exported),
    /// A run that failed after `--report -` asked for the JSON report on stdout: the report
    /// (which names the error), then the error.
    Failed {
        json: String,
        error: anyhow::Error,
    },
    /// Text generated from the command line itself (completions, the man page).
    Generated(String),
}

/// One piece of what a run shows.
pub(crate) enum Part {
    /// Text for stdout, newlines included.
    Text(String),
    /// A progress note for stderr, about the end of the run.
    Note(String),
    /// Text for stderr as it is, newlines included: the summary when stdout carries the
    /// JSON report.
    Aside(String),
    /// An error for stderr; the last one shown decides the exit code.
    Error(anyhow::Error),
}

/// The pieces of an outcome, in the order they are shown.
#[derive(Default)]
pub(crate) struct Output {
    parts: Vec<Part>,
    /// Text goes to stderr: stdout is kept for the JSON report.
    aside: bool,
}

impl Output {
    /// Text as it is, its newlines included.
    pub(crate) fn text(&mut self, text: impl Into<String>) {
        let text = text.into();
        match (self.parts.last_mut(), self.aside) {
            (Some(Part::Text(s)), false) | (Some(Part::Aside(s)), true) => s.push_str(&text),
            (_, false) => self.parts.push(Part::Text(text)),
            (_, true) => self.parts.push(Part::Aside(text)),
        }
    }

    /// From now on, text goes to stderr (`true`) or stdout (`false`).
    pub(crate) fn aside(&mut self, aside: bool) {
        self.aside = aside;
    }

    /// One line of text.
    pub(crate) fn line(&mut self, line: impl Into<String>) {
        let mut line = line.into();
        line.push('\n');
        self.text(line);
    }

    /// A progress note, if progress is shown.
    pub(crate) fn note(&mut self, notes: Notes, note: &str) {
        if notes.shown() {
            self.parts.push(Part::Note(note.to_string()));
        }
    }

    pub(crate) fn error(&mut self, e: anyhow::Error) {
        self.parts.push(Part::Error(e));
    }

    pub(crate) fn into_parts(self) -> Vec<Part> {
        self.parts
    }
}

impl Outcome {
    /// What to show for this outcome, in order.
    pub(crate) fn show(self) -> Vec<Part> {
        let mut out = Output::default();
        match self {
            Outcome::Check(c) => c.show(&mut out),
            Outcome::Load(l) => l.show(&mut out),
            Outcome::Verify { verified, released } => {
                verified.show(&mut out);
                released.show(&mut out);
            }
            Outcome::Inspect(i) => i.show(&mut out),
            Outcome::Export(e) => e.show(&mut out),
            Outcome::Failed { json, error } => {
                out.text(json);
                out.error(error);
            }
            Outcome::Generated(text) => out.text(text),
        }
        out.into_parts()
    }
}

/// The parts as one transcript, stdout and stderr interleaved as a terminal shows them.
#[cfg(test)]
pub(crate) fn transcript(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Text(t) | Part::Aside(t) => t.clone(),
            Part::Note(n) => format!("{n}\n"),
            Part::Error(e) => format!("error: {e:#}\n"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_runs_are_joined_and_errors_kept_in_place() {
        let mut out = Output::default();
        out.line("a");
        out.text("b\n");
        out.error(anyhow::anyhow!("bad"));
        out.line("c");
        out.note(Notes::none(), "not shown");
        assert_eq!(out.parts.len(), 3);
        assert_eq!(transcript(&out.parts), "a\nb\nerror: bad\nc\n");
    }

    #[test]
    fn aside_text_is_kept_apart_from_stdout() {
        let mut out = Output::default();
        out.aside(true);
        out.line("summary");
        out.aside(false);
        out.text("{}");
        let parts = out.into_parts();
        assert!(matches!(&parts[0], Part::Aside(s) if s == "summary\n"));
        assert!(matches!(&parts[1], Part::Text(s) if s == "{}"));
    }
}
