//! Staging: each table's converted rows go by binary COPY into a temporary table
//! (`cutover_stage_N`, dropped at commit) that the merge then works from. Its columns are the
//! row's source position (`row_`), a drop flag (`drop_`: rejected or skipped) and one column per
//! mapped target column, typed as the target column (references: as the parent's legacy column).

use super::table_error;
use crate::extract::{Extracted, Msg};
use crate::plan::TablePlan;
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_postgres::Transaction;

/// Create the staging table and COPY the table's rows into it.
pub async fn copy(
    tx: &Transaction<'_>,
    index: usize,
    table: &TablePlan,
    rx: &mut mpsc::Receiver<Msg>,
) -> anyhow::Result<Extracted> {
    let stage = table.stage_table(index);
    let cols: Vec<String> = table
        .stage
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} {}", TablePlan::stage_col(i), c.sql_type))
        .collect();
    let mut ddl =
        format!("CREATE TEMP TABLE {stage} (row_ bigint NOT NULL, drop_ boolean NOT NULL");
    for c in &cols {
        ddl.push_str(", ");
        ddl.push_str(c);
    }
    ddl.push_str(") ON COMMIT DROP");
    tx.batch_execute(&ddl)
        .await
        .map_err(|e| table_error(&e, table, "creating its staging table"))?;

    let sink = tx
        .copy_in::<_, bytes::Bytes>(&format!("COPY {stage} FROM STDIN (FORMAT binary)"))
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
                tx.batch_execute(&format!("ANALYZE {stage}"))
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
