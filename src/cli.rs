//! The command line: what the user typed, parsed and checked value by value. Doc comments
//! are the help text. The commands turn these into real work.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Move an application's data from SQLite into the PostgreSQL schema it now owns:
/// mapped, FK-ordered, COPY-loaded, verified, and safe to re-run.
#[derive(Debug, Parser)]
#[command(name = "cutover", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
pub(crate) struct Common {
    /// The mapping file (mappings/*.toml).
    #[arg(short = 'm', long = "mapping", value_name = "MAPPING")]
    pub(crate) mapping: PathBuf,
    /// Source to read: sqlite:PATH, airtable:BASE_ID or snapshot:DIR. Default: the mapping's [source] section.
    #[arg(long, value_name = "SRC")]
    pub(crate) source: Option<String>,
    /// Target PostgreSQL URL (postgres://, postgresql://, postgresql+asyncpg:// …), or
    /// `scratch` for a throwaway cluster. Default: $DATABASE_URL.
    #[arg(long, value_name = "URL")]
    pub(crate) target: Option<String>,
    /// With --target scratch: the SQL file that creates the target schema (a `pg_dump -s`
    /// output is fine).
    #[arg(long, value_name = "FILE.sql")]
    pub(crate) schema: Option<PathBuf>,
    /// With --target scratch: take the schema from this database instead, with the
    /// installed `pg_dump -s`, and copy its alembic_version rows. Without a URL:
    /// $DATABASE_URL.
    #[arg(
        long,
        value_name = "URL",
        num_args = 0..=1,
        default_missing_value = "",
        conflicts_with = "schema"
    )]
    pub(crate) schema_from: Option<String>,
    /// With --target scratch: leave the cluster running and print its URL.
    #[arg(long)]
    pub(crate) keep_scratch: bool,
    /// Print nothing but the summary (and errors).
    #[arg(short, long)]
    pub(crate) quiet: bool,
    #[command(flatten)]
    pub(crate) from: SourceArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Do the whole load, check it, report it, then roll it back.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// merge: upsert by legacy id, keep existing ids, leave unchanged rows alone.
    /// replace: empty the mapped tables and load them again.
    #[arg(long, value_enum, default_value_t = ModeArg::Merge)]
    pub(crate) mode: ModeArg,
    /// Delete target rows whose legacy id is no longer in the source (never rows whose
    /// legacy id is NULL, i.e. created by the application).
    #[arg(long)]
    pub(crate) prune: bool,
    /// Before committing, compare every loaded row with the source (every mapped column,
    /// after conversion) inside the transaction; any difference fails the load.
    #[arg(long)]
    pub(crate) verify: bool,
    /// Load anyway when at most N rows are rejected (they are left out and listed).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) max_rejects: u64,
    /// Write rejected rows as CSV: table, legacy_id, column, value, reason.
    #[arg(long, value_name = "FILE")]
    pub(crate) rejects: Option<PathBuf>,
    /// Write the per-table figures as JSON.
    #[arg(long, value_name = "FILE.json")]
    pub(crate) report: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ModeArg {
    Merge,
    Replace,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// How many differences to show per table.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub(crate) show: usize,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The mapping file (mappings/*.toml): its source tables are exported.
    #[arg(short = 'm', long = "mapping", value_name = "MAPPING")]
    pub(crate) mapping: PathBuf,
    /// Source to read: sqlite:PATH, airtable:BASE_ID or snapshot:DIR. Default: the mapping's [source] section.
    #[arg(long, value_name = "SRC")]
    pub(crate) source: Option<String>,
    /// The directory to write the snapshot to (created; must not exist or be empty).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Replace a non-empty --out directory and everything in it.
    #[arg(long)]
    pub(crate) force: bool,
    /// No progress bars or notes, only the summary.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    #[command(flatten)]
    pub(crate) from: SourceArgs,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The source to inspect: sqlite:PATH, airtable:BASE_ID or snapshot:DIR.
    #[arg(long, value_name = "SRC")]
    pub(crate) source: String,
    /// Write a starter mapping (every table and field, links as references or junctions)
    /// to this file, for you to review and edit. An existing file is not overwritten.
    #[arg(long, value_name = "FILE.toml")]
    pub(crate) emit_mapping: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) from: SourceArgs,
}

/// How to reach a source beyond its location (Airtable).
#[derive(Debug, Clone, Args)]
pub(crate) struct SourceArgs {
    /// Read the Airtable personal access token from this file instead of $AIRTABLE_TOKEN
    /// (never from the command line).
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Airtable requests per second for the base (default 5, the API's limit per base).
    #[arg(long, value_name = "N")]
    pub(crate) airtable_rps: Option<f64>,
}

impl SourceArgs {
    pub(crate) fn open_options(&self) -> crate::source::OpenOptions {
        crate::source::OpenOptions {
            token_file: self.token_file.clone(),
            airtable_rps: self.airtable_rps,
        }
    }
}
