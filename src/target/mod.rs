//! The PostgreSQL side: connecting, reading the catalog, and loading.
pub mod catalog;
pub mod copy;
pub mod diagnose;
pub mod load;
pub mod pgtype;
pub mod scratch;
pub mod sequences;
pub mod sql;
pub mod tls;
pub mod url;
