//! Plain SQL against a test database, for asserting what a run left behind: every row comes
//! back as text cells, the way `psql` shows them. Connects without TLS (the scratch cluster's
//! Unix socket or loopback), so it needs nothing of cutover's own connection code.

/// Rows as text cells (`None` for NULL).
pub type Rows = Vec<Vec<Option<String>>>;

/// Run SQL with the simple query protocol (several statements run as one implicit
/// transaction) and return every row, or the database's message with its DETAIL.
pub fn try_sql(url: &str, query: &str) -> Result<Rows, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting a runtime: {e}"))?;
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connecting to the test database: {}", describe(&e)))?;
        let driver = tokio::spawn(conn);
        let msgs = client.simple_query(query).await.map_err(|e| describe(&e));
        drop(client);
        let _ = driver.await;
        Ok(msgs?
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect())
    })
}

/// [`try_sql`] that panics with the query and the database's message on failure.
pub fn sql(url: &str, query: &str) -> Rows {
    try_sql(url, query).unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// The first cell of the first row, or "NULL".
pub fn one(url: &str, query: &str) -> String {
    sql(url, query)
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_else(|| "NULL".into())
}

/// PostgreSQL's message, SQLSTATE and DETAIL, which a bare "db error" hides.
pub fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str("\n  DETAIL: ");
                s.push_str(d);
            }
            s
        }
        None => err.to_string(),
    }
}
