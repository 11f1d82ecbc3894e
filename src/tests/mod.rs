//! Tests that reach inside the crate rather than run the binary: the converter and the
//! mapping parser under random input, the Airtable source against the fake API (and against
//! one that misbehaves without end), snapshot values compared one by one with the source
//! they came from, and the SQLite source against damaged write-ahead logs.

mod airtable_limits;
mod airtable_select;
mod airtable_source;
mod properties;
mod snapshot_values;
mod sqlite_source;
