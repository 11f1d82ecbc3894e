//! cutover: move an application's data from SQLite into the PostgreSQL schema it now owns.
//!
//! The data flows mapping → plan → source → convert (extract) → target (load) → report;
//! each stage is a module named after it. `run` wires them together per command.

pub mod checkpoint;
pub mod cli;
pub mod convert;
pub mod error;
pub mod extract;
pub mod inspect;
pub mod mapping;
pub mod plan;
pub mod report;
pub mod run;
pub mod snapshot;
pub mod source;
pub mod target;
pub mod value;
