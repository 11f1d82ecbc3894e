//! The PostgreSQL side: connecting, reading the catalog, and loading.
pub mod bulk;
pub mod catalog;
pub mod copy;
pub mod diagnose;
pub mod diff;
pub mod load;
pub mod merge;
pub mod pgtype;
pub mod scratch;
pub mod sequences;
pub mod sql;
pub mod stage;
pub mod tls;
pub mod url;

use crate::error::{data, describe_pg, unavailable};
use crate::plan::TablePlan;

/// A database error in a table's load, with PostgreSQL's DETAIL. Constraint violations are
/// the data not checking out (exit 1); anything else is a failed load (exit 3).
pub(crate) fn table_error(
    e: &tokio_postgres::Error,
    table: &TablePlan,
    doing: &str,
) -> anyhow::Error {
    let msg = format!("table `{}`, {doing}: {}", table.name, describe_pg(e));
    match e.as_db_error().map(|d| d.code().code().to_string()) {
        Some(code) if code.starts_with("23") => data(format!(
            "{msg}\n  Nothing was committed; fix these rows in the source, or the mapping, and run again."
        )),
        _ => unavailable(msg),
    }
}
