//! Staging one table: create its staging table and COPY the convert stage's rows into it,
//! then gather statistics so the merge's joins are planned for the real row counts. What the
//! staging table holds is [`Staging`]'s to say.

use super::table_error;
use crate::extract::{Extracted, Msg};
use crate::plan::staging::Staging;
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_postgres::Transaction;

/// Create the staging table and COPY the table's rows into it.
pub(crate) async fn copy(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    rx: &mut mpsc::Receiver<Msg>,
) -> anyhow::Result<Extracted> {
    let table = staging.table();
    tx.batch_execute(&staging.create())
        .await
        .map_err(|e| table_error(&e, table, "creating its staging table"))?;

    let sink = tx
        .copy_in::<_, bytes::Bytes>(&staging.copy_in())
        .await
        .map_err(|e| table_error(&e, table, "starting COPY"))?;
    let mut sink = std::pin::pin!(sink);
    let mut first = true;
    loop {
        match rx.recv().await {
            Some(Msg::Chunk(bytes)) => {
                if let Err(e) = sink.send(bytes).await {
                    return Err(table_error(&e, table, "COPY"));
                }
                if first {
                    first = false;
                    crate::hooks::reached(&format!("copy:{}", table.name)).await;
                }
            }
            Some(Msg::End(ex)) => {
                sink.as_mut()
                    .finish()
                    .await
                    .map_err(|e| table_error(&e, table, "COPY"))?;
                // Statistics, so the merge's joins are planned for the real row counts (hash
                // joins need no index on the staging table).
                tx.batch_execute(&staging.analyze())
                    .await
                    .map_err(|e| table_error(&e, table, "analyzing its staging table"))?;
                return Ok(ex);
            }
            // The convert stage stopped; its own error is reported by the caller.
            None => {
                return Err(anyhow::anyhow!(
                    "reading the source stopped while loading `{}`",
                    table.name
                ));
            }
        }
    }
}
