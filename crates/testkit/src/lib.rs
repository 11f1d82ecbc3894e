//! What cutover's tests and benchmark share, kept out of the shipped crate: a fake of the
//! Airtable API that behaves as the documented service, a throwaway PostgreSQL cluster, and
//! plain SQL helpers for checking what a run left in a database.

pub mod fake_airtable;
pub mod pg;

pub use cutover_scratch::{Scratch, find_bindir};
mod tricky;

pub use tricky::TRICKY_TEXTS;
