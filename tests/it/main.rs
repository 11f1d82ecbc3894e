//! Integration tests: the real binary against a real PostgreSQL (see harness.rs).
mod app;
mod harness;

mod airtable_ids;
mod airtable_load;
mod airtable_select;
mod airtable_snapshot;
mod bad_input;
mod cli_errors;
mod connect;
mod cycles;
mod engine;
mod files;
mod identifiers;
mod inspect;
mod locks;
mod output;
mod podium_load;
mod process;
mod rerun;
mod schema_checks;
mod schemas;
mod scratch_schema;

mod security;
mod snapshot;
mod snapshot_files;
mod sqlite_files;
mod triggers;
mod types;
mod unchanged;
mod values;
