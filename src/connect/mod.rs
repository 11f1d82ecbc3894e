//! Reaching the target: the connection string (a URL or libpq keyword/value settings) with
//! the `PG*` environment variables, `.env` and the password file filling the gaps; TLS; and
//! the session every connection starts with (search_path pinned, application_name,
//! keepalives). The password is only ever shown as `***`.
//!
//! | file | what |
//! |---|---|
//! | `conninfo.rs` | the written string split into libpq's keyword/value pairs |
//! | `settings.rs` | what the keywords mean, the `PG*` variables, defaults → tokio-postgres `Config` |
//! | `pgpass.rs` | the password file |
//! | `resolve.rs`, `dotenv.rs` | which target: `--target`, `DATABASE_URL`, `.env`, `PG*` |
//! | `url.rs` | [`TargetUrl`], the parsed target |
//! | `session.rs` | connecting, and what every session sets first |
//! | `explain.rs` | failed and lost connections as sentences |
//! | `tls.rs` | sslmode, root and client certificates over rustls |
//! | `redact.rs` | showing any connection string without its password |
//! | `process.rs` | no core dumps of a process holding secrets |

mod conninfo;
mod dotenv;
mod explain;
mod pgpass;
mod process;
mod redact;
mod resolve;
mod session;
mod settings;
pub(crate) mod tls;
pub(crate) mod url;

#[cfg(test)]
mod tests;

pub(crate) use process::forbid_core_dumps;
pub(crate) use resolve::target_text;
pub(crate) use url::TargetUrl;
