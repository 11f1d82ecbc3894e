//! The command line: what the user typed, parsed and checked value by value. Doc comments
//! are the help text. `run` turns these into real work.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Move an application's data from SQLite into the PostgreSQL schema it now owns:
/// mapped, FK-ordered, COPY-loaded, verified, and safe to re-run.
#[derive(Debug, Parser)]
#[command(name = "cutover", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the mapping, the source and the target; print the load plan. Writes nothing.
    Check(Common),
    /// Load the source into the target in one transaction (all or nothing).
    Load(LoadArgs),
    /// Compare the target with what the source maps to, row by row; exit 1 on any difference.
    Verify(VerifyArgs),
    /// Write a snapshot of the source: one CSV file per table the mapping reads, plus
    /// manifest.json. Load from it later with --source snapshot:DIR.
    Export(ExportArgs),
    /// List a source's tables, fields, types and links; draft a starter mapping.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct Common {
    /// The mapping file (mappings/*.toml).
    #[arg(short = 'm', long = "mapping", value_name = "MAPPING")]
    pub mapping: PathBuf,
    /// Source to read: sqlite:PATH, airtable:BASE_ID or snapshot:DIR. Default: the mapping's [source] section.
    #[arg(long, value_name = "SRC")]
    pub source: Option<String>,
    /// Target PostgreSQL URL (postgres://, postgresql://, postgresql+asyncpg:// …), or
    /// `scratch` for a throwaway cluster. Default: $DATABASE_URL.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// With --target scratch: the SQL file that creates the target schema.
    #[arg(long, value_name = "FILE.sql")]
    pub schema: Option<PathBuf>,
    /// With --target scratch: leave the cluster running and print its URL.
    #[arg(long)]
    pub keep_scratch: bool,
    /// Print nothing but the summary (and errors).
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub from: SourceArgs,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub common: Common,
    /// Do the whole load, check it, report it, then roll it back.
    #[arg(long)]
    pub dry_run: bool,
    /// merge: upsert by legacy id, keep existing ids, leave unchanged rows alone.
    /// replace: empty the mapped tables and load them again.
    #[arg(long, value_enum, default_value_t = ModeArg::Merge)]
    pub mode: ModeArg,
    /// Delete target rows whose legacy id is no longer in the source (never rows whose
    /// legacy id is NULL, i.e. created by the application).
    #[arg(long)]
    pub prune: bool,
    /// Before committing, compare every loaded row with the source (every mapped column,
    /// after conversion) inside the transaction; any difference fails the load.
    #[arg(long)]
    pub verify: bool,
    /// Load anyway when at most N rows are rejected (they are left out and listed).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_rejects: u64,
    /// Write rejected rows as CSV: table, legacy_id, column, value, reason.
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Write the per-table figures as JSON.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Merge,
    Replace,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub common: Common,
    /// How many differences to show per table.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub show: usize,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The mapping file (mappings/*.toml): its source tables are exported.
    #[arg(short = 'm', long = "mapping", value_name = "MAPPING")]
    pub mapping: PathBuf,
    /// Source to read: sqlite:PATH, airtable:BASE_ID or snapshot:DIR. Default: the mapping's [source] section.
    #[arg(long, value_name = "SRC")]
    pub source: Option<String>,
    /// The directory to write the snapshot to (created; must not exist or be empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace a non-empty --out directory and everything in it.
    #[arg(long)]
    pub force: bool,
    /// No progress bars or notes, only the summary.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub from: SourceArgs,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The source to inspect: sqlite:PATH, airtable:BASE_ID or snapshot:DIR.
    #[arg(long, value_name = "SRC")]
    pub source: String,
    /// Write a starter mapping (every table and field, links as references or junctions)
    /// to this file, for you to review and edit. An existing file is not overwritten.
    #[arg(long, value_name = "FILE.toml")]
    pub emit_mapping: Option<PathBuf>,
    #[command(flatten)]
    pub from: SourceArgs,
}

/// How to reach a source beyond its location (Airtable).
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Read the Airtable personal access token from this file instead of $AIRTABLE_TOKEN
    /// (never from the command line).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Airtable requests per second for the base (default 5, the API's limit per base).
    #[arg(long, value_name = "N")]
    pub airtable_rps: Option<f64>,
}

impl SourceArgs {
    pub fn open_options(&self) -> crate::source::OpenOptions {
        crate::source::OpenOptions {
            token_file: self.token_file.clone(),
            airtable_rps: self.airtable_rps,
        }
    }
}
