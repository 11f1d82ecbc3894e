//! The command line: what the user typed, parsed and checked value by value. Doc comments
//! are the help text. The commands turn these into real work.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Move an application's data from SQLite into the PostgreSQL schema it now owns:
/// mapped, FK-ordered, COPY-loaded, verified, and safe to re-run.
#[derive(Debug, Parser)]
#[command(name = "cutover", version, about, long_about = None, after_help = EXAMPLES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The cutover day, in commands (`cutover help`).
const EXAMPLES: &str = "\
Examples:
  cutover inspect --source sqlite:booking.db --target \"$DATABASE_URL\" --emit-mapping mappings/booking.toml
  cutover check  -m mappings/booking.toml --target \"$DATABASE_URL\"
  cutover load   -m mappings/booking.toml --dry-run
  cutover load   -m mappings/booking.toml --report load.json --rejects rejects.csv
  cutover verify -m mappings/booking.toml

Exit codes: 0 success, 1 the data did not check out, 2 bad usage or mapping,
3 a source or target could not be reached or the load failed (README, \"Exit codes\").";

const CHECK_EXAMPLES: &str = "\
Examples:
  cutover check -m mappings/booking.toml                      # mapping against the source only
  cutover check -m mappings/booking.toml --target \"$DATABASE_URL\"
  cutover check -m mappings/booking.toml --format json | jq .plan.warnings";

const LOAD_EXAMPLES: &str = "\
Examples:
  cutover load -m mappings/booking.toml --dry-run             # everything, then roll back
  cutover load -m mappings/booking.toml --target scratch --schema schema.sql
  cutover load -m mappings/booking.toml --report load.json --rejects rejects.csv
  cutover load -m mappings/booking.toml --prune --report - | jq .outcome";

const VERIFY_EXAMPLES: &str = "\
Examples:
  cutover verify -m mappings/booking.toml
  cutover verify -m mappings/booking.toml --show 50 --report verify.json";

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Validate the mapping, the source and the target; print the load plan. Writes nothing.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Load the source into the target in one transaction (all or nothing).
    #[command(after_help = LOAD_EXAMPLES)]
    Load(LoadArgs),
    /// Compare the target with what the source maps to, row by row; exit 1 on any difference.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
    /// Write a snapshot of the source: one CSV file per table the mapping reads, plus
    /// manifest.json. Load from it later with --source snapshot:DIR.
    Export(ExportArgs),
    /// List a source's tables, fields, types and links; draft a starter mapping.
    Inspect(InspectArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    #[command(hide = true)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout.
    #[command(hide = true)]
    Man,
}

#[derive(Debug, Args)]
pub(crate) struct Common {
    /// The mapping file (mappings/*.toml).
    #[arg(short = 'm', long = "mapping", value_name = "MAPPING")]
    pub(crate) mapping: PathBuf,
    /// Source to read: sqlite:PATH, airtable:BASE_ID or snapshot:DIR. Default: the mapping's [source] section.
    #[arg(long, value_name = "SRC")]
    pub(crate) source: Option<String>,
    /// Target database: a URL (postgres://, postgresql://, postgresql+asyncpg:// …), libpq
    /// keyword/value settings (host=… dbname=… user=…), or `scratch` for a throwaway cluster.
    /// Default: $DATABASE_URL, then DATABASE_URL in ./.env, then the PG* variables. A password
    /// written here is visible to other users in `ps`: put it in PGPASSWORD or ~/.pgpass.
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

/// `--report`, for the commands that write one.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Write a JSON report of the run (README, "The JSON report"); `-` for stdout, which then
    /// carries nothing else (the summary goes to stderr).
    #[arg(long, value_name = "FILE.json")]
    pub(crate) report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// text: the plan for people; json: the plan and findings as JSON on stdout (the same
    /// document as --report).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Pass when at most N rows would be rejected (as `load --max-rejects N` would commit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) max_rejects: u64,
    /// Write every row that would be rejected as CSV, in the format of `load --rejects`.
    #[arg(long, value_name = "FILE")]
    pub(crate) rejects: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
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
    /// Write rejected and skipped rows as CSV: table, legacy_id, column, value, reason, code,
    /// source_table.
    #[arg(long, value_name = "FILE")]
    pub(crate) rejects: Option<PathBuf>,
    /// With --rejects: add each rejected row as the source holds it (the fields the mapping
    /// reads, as a JSON object), read again from the source after the load.
    #[arg(long, requires = "rejects")]
    pub(crate) rejects_with_rows: bool,
    /// The directory that keeps the record of what each load wrote, one file per target,
    /// which lets a re-run tell the application's edits from the source's. Default:
    /// MAPPING.cutover-state beside the mapping.
    #[arg(long, value_name = "DIR", env = "CUTOVER_STATE")]
    pub(crate) state: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
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
    #[command(flatten)]
    pub(crate) report: ReportArgs,
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
    #[arg(long, value_name = "DIR", required_unless_present = "refresh")]
    pub(crate) out: Option<PathBuf>,
    /// Airtable: create a webhook before reading, so that `--refresh` can later bring the
    /// snapshot up to date by reading only what changed.
    #[arg(long, conflicts_with = "refresh")]
    pub(crate) track_changes: bool,
    /// Airtable: do not download attachment files into the snapshot (their URLs, which
    /// expire after a couple of hours, stay in the cells).
    #[arg(long)]
    pub(crate) no_attachments: bool,
    /// Bring the snapshot in DIR (exported with --track-changes) up to date with what was
    /// created, changed and deleted in the base since, and write it in place.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "force"])]
    pub(crate) refresh: Option<PathBuf>,
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
    /// Write a starter mapping to this file, for you to review and edit: with --target, the
    /// source paired with the target's tables and columns; without, every table and field
    /// under a guessed name. An existing file is not overwritten.
    #[arg(long, value_name = "FILE.toml")]
    pub(crate) emit_mapping: Option<PathBuf>,
    /// The database the mapping will load (a URL or libpq keyword/value settings, or
    /// `scratch` with --schema): its schema `public` is read, never written, and the draft
    /// pairs the source with it. Only when given: $DATABASE_URL is not read here.
    #[arg(long, value_name = "URL")]
    pub(crate) target: Option<String>,
    /// With --target scratch: the SQL file that creates the target schema.
    #[arg(long, value_name = "FILE.sql", requires = "target")]
    pub(crate) schema: Option<PathBuf>,
    /// With --target scratch: take the schema from this database with `pg_dump -s`.
    #[arg(
        long,
        value_name = "URL",
        requires = "target",
        conflicts_with = "schema"
    )]
    pub(crate) schema_from: Option<String>,
    /// text: the listing for people; json: the listing and the draft (when one is made) as
    /// JSON on stdout, for tools.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
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
            selections: Vec::new(),
        }
    }
}
