//! Reaching the target: a PostgreSQL URL parsed, checked and redacted, and the TLS modes it
//! asks for.

pub(crate) mod tls;
pub(crate) mod url;

pub(crate) use url::TargetUrl;
