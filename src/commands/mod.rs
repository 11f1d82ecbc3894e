//! The commands: each wires the stages together (mapping → plan → source → convert →
//! target) and returns what happened as an [`Outcome`]; `app` shows it and picks the exit
//! code.

mod check;
mod export;
mod inspect;
mod install;
mod load;
mod outcome;
mod pipeline;
mod plan_view;
mod prepare;
mod progress;
mod record;
mod rows;
mod schema;
mod target;
mod verify;

pub(crate) use outcome::{Outcome, Part};

use crate::cli::{Cli, Command};

/// Run the command the command line names.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Check(c) => check::command(c).await,
        Command::Load(l) => load::command(l).await,
        Command::Verify(v) => verify::command(v).await,
        Command::Export(e) => export::command(e).await,
        Command::Inspect(i) => inspect::command(i).await,
        Command::Completions { shell } => Ok(Outcome::Generated(install::completions(shell))),
        Command::Man => Ok(Outcome::Generated(install::man()?)),
    }
}
