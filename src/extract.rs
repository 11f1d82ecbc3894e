//! The convert stage: read each planned table from the source, convert every value to its
//! target column's type and encode it straight into binary COPY rows.
//!
//! It runs on its own thread (the source libraries are blocking) and hands fixed-size chunks
//! of COPY data to the loader over a bounded channel, so reading the source overlaps writing
//! to PostgreSQL and memory stays the same however large the source is. A value that cannot
//! be converted makes its row a reject; the row is still staged, flagged as dropped, with
//! only its legacy id, so that `--prune` never deletes the target row of a rejected record.

use crate::convert::{self, Converter, Reject};
use crate::mapping::Const;
use crate::plan::{Plan, StageInput, TableKind, TablePlan};
use crate::report::RejectRow;
use crate::source::{Record, Source, Wanted};
use crate::target::copy;
use crate::value::Value;
use bytes::{BufMut, Bytes, BytesMut};
use indicatif::ProgressBar;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Flush COPY data to the loader in chunks of about this size.
const CHUNK: usize = 256 * 1024;

/// What the convert stage sends to the loader, table by table in plan order.
pub enum Msg {
    /// COPY data for the current table (the first chunk starts with the COPY header).
    Chunk(Bytes),
    /// The table is complete (its last chunk ended with the COPY trailer).
    End(Extracted),
}

/// The outcome of reading one table.
#[derive(Debug, Default)]
pub struct Extracted {
    pub table: usize,
    pub read: u64,
    pub rejected: u64,
    /// The first rejects in detail (bounded, see [`Limits`]).
    pub rejects: Vec<RejectRow>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Keep at most this many rejects in detail per table (the count is always exact).
    pub keep_rejects: usize,
}

/// The loader went away (it failed or finished early); its own error says why.
#[derive(Debug)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the load stopped before the source was read to the end")
    }
}

impl std::error::Error for Stopped {}

/// Progress display, one bar per table (hidden when quiet or not a terminal).
pub trait Progress: Send + Sync {
    fn table(&self, name: &str, rows: u64) -> ProgressBar;
}

/// Read and encode every table of `plan` in order, sending the data to `tx`.
pub fn run(
    mut source: Box<dyn Source>,
    plan: Arc<Plan>,
    tx: mpsc::Sender<Msg>,
    limits: Limits,
    progress: &dyn Progress,
) -> anyhow::Result<()> {
    let wanted: Vec<Wanted> = plan
        .tables
        .iter()
        .map(|t| Wanted {
            table: t.from.clone(),
            fields: t.fields.clone(),
        })
        .collect();
    source.prepare(&wanted)?;
    let mut conv = Converter::new();
    for (index, table) in plan.tables.iter().enumerate() {
        let total = source.count(&table.from)?;
        let bar = progress.table(&table.name, total);
        let mut out = BytesMut::with_capacity(CHUNK + 64 * 1024);
        copy::header(&mut out);
        let mut ex = Extracted {
            table: index,
            ..Extracted::default()
        };
        let mut failed: Option<anyhow::Error> = None;
        let read = source.scan(&table.from, &table.fields, &mut |rec: &dyn Record| {
            if let Err((col, reject)) = encode_row(table, rec, &mut conv, &mut out) {
                ex.rejected += 1;
                if ex.rejects.len() < limits.keep_rejects {
                    ex.rejects.push(reject_row(table, rec, col, reject));
                }
                encode_dropped(table, rec, &mut conv, &mut out);
            }
            if out.len() >= CHUNK {
                if tx.blocking_send(Msg::Chunk(out.split().freeze())).is_err() {
                    failed = Some(Stopped.into());
                    return Err(Stopped.into());
                }
                bar.set_position(rec.ordinal());
            }
            Ok(())
        });
        if let Some(e) = failed {
            return Err(e);
        }
        ex.read = read?;
        copy::trailer(&mut out);
        bar.set_position(ex.read);
        bar.finish();
        if tx.blocking_send(Msg::Chunk(out.freeze())).is_err()
            || tx.blocking_send(Msg::End(ex)).is_err()
        {
            return Err(Stopped.into());
        }
    }
    Ok(())
}

fn input<'a>(rec: &'a dyn Record, input: &'a StageInput) -> Value<'a> {
    match input {
        StageInput::Field(i) => rec.get(*i),
        StageInput::Const(Const::Text(s)) => Value::Text(s.as_bytes()),
        StageInput::Const(Const::Int(i)) => Value::Int(*i),
        StageInput::Const(Const::Float(f)) => Value::Float(*f),
        StageInput::Const(Const::Bool(b)) => Value::Bool(*b),
    }
}

/// Encode one staging row: ordinal, drop flag (false), then every stage column. On a reject,
/// `out` is left as it was and the failing column's index is returned.
fn encode_row(
    table: &TablePlan,
    rec: &dyn Record,
    conv: &mut Converter,
    out: &mut BytesMut,
) -> Result<(), (usize, Reject)> {
    let start = out.len();
    copy::begin_row(out, (2 + table.stage.len()) as i16);
    out.put_i32(8);
    out.put_i64(rec.ordinal() as i64);
    out.put_i32(1);
    out.put_u8(0);
    for (i, col) in table.stage.iter().enumerate() {
        if let Err(r) = conv.encode(input(rec, &col.input), &col.plan, out) {
            out.truncate(start);
            return Err((i, r));
        }
    }
    Ok(())
}

/// A rejected entity row is still staged, flagged as dropped, with its legacy id only, so
/// that pruning knows the record exists. A junction row has no identity of its own: nothing.
fn encode_dropped(table: &TablePlan, rec: &dyn Record, conv: &mut Converter, out: &mut BytesMut) {
    if table.is_junction() {
        return;
    }
    let start = out.len();
    copy::begin_row(out, (2 + table.stage.len()) as i16);
    out.put_i32(8);
    out.put_i64(rec.ordinal() as i64);
    out.put_i32(1);
    out.put_u8(1);
    for (i, col) in table.stage.iter().enumerate() {
        if i == 0 {
            if conv.encode(input(rec, &col.input), &col.plan, out).is_err() {
                // Not even the legacy id converts: the row cannot be tied to anything.
                out.truncate(start);
                return;
            }
        } else {
            out.put_i32(-1);
        }
    }
}

fn reject_row(table: &TablePlan, rec: &dyn Record, col: usize, reject: Reject) -> RejectRow {
    let c = &table.stage[col];
    RejectRow {
        table: table.name.clone(),
        legacy_id: legacy_id(table, rec),
        column: c.target.clone(),
        value: convert::describe(input(rec, &c.input)),
        reason: reject.reason,
    }
}

/// The legacy id of a record as people read it, or its row number when it has none.
pub fn legacy_id(table: &TablePlan, rec: &dyn Record) -> String {
    match (&table.kind, table.stage.first().map(|c| &c.input)) {
        (TableKind::Entity { .. }, Some(StageInput::Field(i))) => match rec.get(*i) {
            Value::Null => format!("(none, source row {})", rec.ordinal()),
            v => plain(v),
        },
        _ => {
            // A link: the legacy ids it joins.
            let parts: Vec<String> = table
                .stage
                .iter()
                .filter(|c| c.reference.is_some())
                .map(|c| format!("{}={}", c.target, plain(input(rec, &c.input))))
                .collect();
            parts.join(" ")
        }
    }
}

/// A value as plain text (no quotes) for naming rows.
fn plain(v: Value<'_>) -> String {
    match v {
        Value::Int(n) => n.to_string(),
        Value::Text(t) => String::from_utf8_lossy(t).trim().to_string(),
        Value::Null => "NULL".to_string(),
        other => convert::describe(other),
    }
}
