//! cutover: move an application's data from Airtable or SQLite into the PostgreSQL schema
//! it now owns.
//!
//! The modules are layers, listed here from the bottom up; each imports only from the ones
//! above it in this list, never from below (a unit test in `layers.rs` checks it). The data
//! flows mapping → plan → source → extract (convert) → load → report; `commands` wires the
//! stages together per command and `app` is the one place that prints an outcome and picks
//! the exit code. This is a binary crate's library: nothing in it is a stable API.

// The floor: vocabulary every layer speaks.
mod error;
mod files;
mod graph;
mod hooks;
mod value;
// The target's vocabulary: PostgreSQL types, SQL quoting, the catalog.
mod pg;
// Reaching the target: URLs, TLS.
mod connect;
// Where records come from: SQLite, Airtable, snapshots.
mod source;
// Turning source values into PostgreSQL's binary format, by per-column rules.
mod convert;
// What the user wrote: the mapping file.
mod mapping;
// The mapping bound to the source and the target catalog, in load order; the staging table.
mod plan;
// The convert stage: source rows to COPY data, on its own thread.
mod extract;
// Writing the target, in one transaction.
mod load;
// What a run did, for people and machines.
mod report;
// `inspect --emit-mapping`: a draft mapping from a source's shape.
mod draft;
// The command line and the commands.
mod app;
mod cli;
mod commands;

#[cfg(test)]
mod layers;
#[cfg(test)]
mod tests;

pub use app::main;
