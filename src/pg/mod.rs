//! The target's vocabulary, read before anything is planned: PostgreSQL column types, SQL
//! quoting, and the catalog of the target schema's tables, columns and keys.

pub(crate) mod catalog;
pub(crate) mod sql;
pub(crate) mod types;

pub(crate) use types::PgType;
