//! The one place a run ends: parse the command line, run the command on an async runtime
//! (Ctrl-C rolls back, or once COMMIT is sent waits for it), show its outcome — text on stdout, errors with their whole chain on
//! stderr — and pick the exit code from it.

use crate::commands::{self, Part};
use clap::Parser;
use std::io::Write;
use tokio::signal::unix::SignalKind;

/// Run `cutover` with the process's arguments; the exit code to end with.
pub fn main() -> i32 {
    // Before any password or token is read: a core dump of this process would hold them.
    crate::connect::forbid_core_dumps();
    let cli = crate::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return show(vec![Part::Error(crate::error::unavailable(format!(
                "cannot start the async runtime: {e}"
            )))]);
        }
    };
    let result = runtime.block_on(async {
        // SIGTERM is what systemd, Kubernetes and CI send to stop a process: it is treated
        // like Ctrl-C. Without a handler it would kill cutover without any clean-up.
        let mut term = match tokio::signal::unix::signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                return Err(crate::error::unavailable(format!(
                    "cannot handle SIGTERM: {e}"
                )));
            }
        };
        let command = commands::run(cli);
        tokio::pin!(command);
        let by = tokio::select! {
            r = &mut command => return r,
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
            _ = term.recv() => "SIGTERM",
        };
        // Dropping the command drops its transaction, so PostgreSQL rolls it back (and a
        // scratch cluster, a spool or a half-written snapshot is removed) — unless COMMIT
        // is already on its way, which no dropped connection stops: then its answer, or
        // what the target holds, is what the run reports.
        crate::load::interrupted(by, command, |note| {
            let _ = writeln!(std::io::stderr(), "{note}");
        })
        .await
    });
    // Do not wait for background tasks (connections) to wind down.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    show(match result {
        Ok(outcome) => outcome.show(),
        Err(err) => vec![Part::Error(err)],
    })
}

/// Print the parts in order; the exit code is the last error's, or 0 without one. A reader
/// that goes away (`cutover … | head`) stops the printing, not the exit code: what was done
/// is done, and the report and rejects files are already written.
fn show(parts: Vec<Part>) -> i32 {
    let mut code = 0;
    let mut stdout = Some(std::io::stdout().lock());
    let mut stderr = std::io::stderr().lock();
    for part in parts {
        match part {
            Part::Text(text) => {
                if let Some(out) = &mut stdout
                    && out
                        .write_all(text.as_bytes())
                        .and_then(|()| out.flush())
                        .is_err()
                {
                    stdout = None;
                }
            }
            Part::Note(note) => {
                let _ = writeln!(stderr, "{note}");
            }
            Part::Aside(text) => {
                let _ = stderr.write_all(text.as_bytes());
            }
            Part::Error(err) => {
                let _ = writeln!(stderr, "error: {err:#}");
                code = crate::error::exit_code(&err);
            }
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_error_picks_the_code() {
        assert_eq!(show(vec![Part::Text(String::new())]), 0);
        assert_eq!(
            show(vec![
                Part::Error(crate::error::data("differs")),
                Part::Text(String::new()),
                Part::Error(crate::error::unavailable("cannot stop")),
            ]),
            3
        );
        assert_eq!(show(vec![Part::Error(crate::error::usage("bad"))]), 2);
    }
}
