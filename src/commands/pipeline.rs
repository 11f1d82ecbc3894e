//! The convert stage on a thread of its own, feeding either the load on this one (`load`,
//! `verify`) or nothing but a tally of what would be rejected (`check`).

use super::progress::{Bars, Notes};
use crate::convert::reject::RejectRow;
use crate::extract::{self, Limits, Msg};
use crate::load::{self, Options};
use crate::plan::Plan;
use crate::source::Source;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Run the convert stage on its own thread and the load on this one.
pub(crate) async fn load_with(
    source: Box<dyn Source>,
    plan: &Plan,
    client: &mut tokio_postgres::Client,
    opts: &Options,
    keep_rejects: usize,
    notes: Notes,
) -> anyhow::Result<load::Outcome> {
    let (tx, mut rx) = mpsc::channel::<Msg>(8);
    let shared = Arc::new(plan.clone());
    let reader = std::thread::spawn(move || {
        let bars = Bars::new(notes);
        extract::run(source, shared, tx, Limits { keep_rejects }, &bars)
    });
    let result = load::run(client, plan, &mut rx, opts).await;
    drop(rx);
    let read = reader
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the source reader crashed")));
    match (result, read) {
        (Ok(outcome), _) => Ok(outcome),
        // A source error explains a load that stopped for want of data; a reader that
        // stopped because the load failed explains nothing.
        (Err(e), Err(source_err)) if source_err.downcast_ref::<extract::Stopped>().is_some() => {
            Err(e)
        }
        (Err(_), Err(source_err)) => Err(source_err),
        (Err(e), Ok(())) => Err(e),
    }
}

/// What converting every source value found, writing nothing.
pub(crate) struct Converted {
    /// Rows with a value that does not convert to its target column.
    pub(crate) rejected: u64,
    /// The first of them, in detail.
    pub(crate) examples: Vec<RejectRow>,
}

/// Convert every source value without writing anything.
pub(crate) async fn convert_only(
    source: Box<dyn Source>,
    plan: &Plan,
    keep_rejects: usize,
    notes: Notes,
) -> anyhow::Result<Converted> {
    let (tx, mut rx) = mpsc::channel::<Msg>(8);
    let shared = Arc::new(plan.clone());
    let reader = std::thread::spawn(move || {
        extract::run(
            source,
            shared,
            tx,
            Limits { keep_rejects },
            &Bars::new(notes),
        )
    });
    let mut rejected = 0u64;
    let mut examples = Vec::new();
    while let Some(msg) = rx.recv().await {
        if let Msg::End(ex) = msg {
            rejected += ex.rejected;
            examples.extend(ex.rejects);
        }
    }
    reader
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the source reader crashed")))?;
    Ok(Converted { rejected, examples })
}
