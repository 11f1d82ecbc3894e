//! The convert stage on a thread of its own, feeding either the load on this one (`load`,
//! `verify`) or nothing but a tally of what would be rejected (`check`). Both show their
//! progress on one [`Display`]: rows read from the convert stage, phases from the load. The
//! source comes back afterwards, so the rows of the rejects can be read again from it.

use super::progress::Display;
use crate::convert::reject::RejectRow;
use crate::extract::{self, Limits, Msg};
use crate::load::{self, Options};
use crate::plan::Plan;
use crate::plan::fingerprint::{self, KnownRx};
use crate::report::json::TableConverted;
use crate::source::Source;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The convert stage on its own thread; the source is handed back when it is done.
fn spawn_reader(
    mut source: Box<dyn Source>,
    plan: &Plan,
    tx: mpsc::Sender<Msg>,
    known: KnownRx,
    keep_rejects: usize,
    display: &Arc<Display>,
) -> std::thread::JoinHandle<(Box<dyn Source>, anyhow::Result<()>)> {
    let shared = Arc::new(plan.clone());
    let display = Arc::clone(display);
    std::thread::spawn(move || {
        let read = extract::run(
            source.as_mut(),
            shared,
            tx,
            known,
            Limits { keep_rejects },
            display.as_ref(),
        );
        (source, read)
    })
}

/// Run the convert stage on its own thread and the load on this one.
pub(crate) async fn load_with(
    source: Box<dyn Source>,
    plan: &Plan,
    client: &mut tokio_postgres::Client,
    opts: &Options,
    keep_rejects: usize,
    display: &Arc<Display>,
) -> anyhow::Result<(load::Outcome, Box<dyn Source>)> {
    let (tx, mut rx) = mpsc::channel::<Msg>(8);
    let (known_tx, known_rx) = fingerprint::channel();
    let reader = spawn_reader(source, plan, tx, known_rx, keep_rejects, display);
    let result = load::run(client, plan, &mut rx, known_tx, opts, display.as_ref()).await;
    drop(rx);
    let (source, read) = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the source reader crashed"))?;
    match (result, read) {
        (Ok(outcome), _) => Ok((outcome, source)),
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
    /// Rows read, per table in plan order.
    pub(crate) read: Vec<u64>,
    /// Rows with a value that does not convert to its target column.
    pub(crate) rejected: u64,
    /// The first of them, in detail.
    pub(crate) examples: Vec<RejectRow>,
    /// Per table in plan order: rows read and rejected, values the policies would change.
    pub(crate) tables: Vec<TableConverted>,
}

/// Convert every source value without writing anything.
pub(crate) async fn convert_only(
    source: Box<dyn Source>,
    plan: &Plan,
    keep_rejects: usize,
    display: &Arc<Display>,
) -> anyhow::Result<Converted> {
    let (tx, mut rx) = mpsc::channel::<Msg>(8);
    let reader = spawn_reader(source, plan, tx, KnownRx::none(), keep_rejects, display);
    let mut converted = Converted {
        read: Vec::new(),
        rejected: 0,
        examples: Vec::new(),
        tables: Vec::new(),
    };
    while let Some(msg) = rx.recv().await {
        if let Msg::End(ex) = msg {
            let t = plan.tables.get(converted.tables.len());
            converted.tables.push(TableConverted {
                table: t.map(|t| t.name.clone()).unwrap_or_default(),
                source: t.map(|t| t.from.clone()).unwrap_or_default(),
                read: ex.read,
                rejected: ex.rejected,
                adjusted: ex.adjusted,
            });
            converted.read.push(ex.read);
            converted.rejected += ex.rejected;
            converted.examples.extend(ex.rejects);
        }
    }
    let (mut source, read) = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the source reader crashed"))?;
    read?;
    // Every record was read: nothing is kept for a re-run (a later load reads afresh).
    source.finished();
    Ok(converted)
}
