//! The convert stage: read each planned table from the source, convert every value to its
//! target column's type and encode it straight into binary COPY rows.
//!
//! It runs on its own thread (the source libraries are blocking) and hands fixed-size chunks
//! of COPY data to the loader over a bounded channel, so reading the source overlaps writing
//! to PostgreSQL and memory stays the same however large the source is. A value that cannot
//! be converted makes its row a reject; the row is still staged, flagged as dropped, with
//! only its legacy id, so that `--prune` never deletes the target row of a rejected record.
//! On a re-run, a row whose fingerprint says it is exactly what the last load wrote is staged
//! the same way, flagged `same_` (`plan/fingerprint.rs`): only changed rows go further.

use crate::convert::reject::{Code, RejectRow};
use crate::convert::{self, Adjusted, ColumnAdjusted, Converter, Reject, json_scalar};
use crate::mapping::Const;
use crate::mapping::OnMissing;
use crate::plan::fingerprint::{self, KnownRx};
pub(crate) use crate::plan::staging::{Extracted, Msg};
use crate::plan::staging::{ROW_PREFIX, Staging};
use crate::plan::{Plan, StageInput, TableKind, TablePlan};
use crate::source::{Record, Source, Wanted};
use crate::value::Value;
use bytes::BytesMut;
use std::hash::Hasher;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Flush COPY data to the loader in chunks of about this size.
const CHUNK: usize = 256 * 1024;

/// At most this many identities are remembered per table to tell duplicates apart (8 bytes
/// each, sorted once the table is read: about 2 MB, so memory stays flat however large the
/// source); past it PostgreSQL searches the staged rows instead.
const IDENTITIES_IN_MEMORY: usize = 300_000;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Keep at most this many rejects in detail per table (the count is always exact).
    pub(crate) keep_rejects: usize,
}

/// The loader went away (it failed or finished early); its own error says why.
#[derive(Debug)]
pub(crate) struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the load stopped before the source was read to the end")
    }
}

impl std::error::Error for Stopped {}

/// Told how far the reading has got: the row count of every table up front, then per table
/// (by its index in the plan) the rows read so far, and when it is read to the end.
pub(crate) trait Progress: Send + Sync {
    fn counted(&self, rows: &[u64]);
    fn read(&self, table: usize, rows: u64);
    fn read_all(&self, table: usize, rows: u64, took: std::time::Duration);
}

/// Read and encode every table of `plan` in order, sending the data to `tx`; `known` gives,
/// per table, the fingerprints of the rows the last load wrote. The source is borrowed, so
/// that it can be read again afterwards (the rows of the rejects).
pub(crate) fn run(
    source: &mut dyn Source,
    plan: Arc<Plan>,
    tx: mpsc::Sender<Msg>,
    mut known: KnownRx,
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
    let counts = plan
        .tables
        .iter()
        .map(|t| source.count(&t.from))
        .collect::<anyhow::Result<Vec<u64>>>()?;
    progress.counted(&counts);
    let mut conv = Converter::new();
    for (index, table) in plan.tables.iter().enumerate() {
        let started = std::time::Instant::now();
        let staging = Staging::new(table, index);
        let mut out = BytesMut::with_capacity(CHUNK + 64 * 1024);
        Staging::header(&mut out);
        let mut ex = Extracted::default();
        let mut seen = Identities::new(staging.identity_by_bytes(), counts[index]);
        let entity = !table.is_junction();
        let seed = fingerprint::seed(table);
        let mut same = known.table(index).filter(|k| entity && k.len() > 0);
        // A junction's links summed up: how many, and the wrapping sum of their fingerprints.
        let mut links = (0u64, 0u64);
        let mut failed: Option<anyhow::Error> = None;
        let explode = table.stage.iter().position(|c| c.shape.explode);
        // What the mapping's policies changed, per stage column: of the row being encoded,
        // and of every row loaded.
        let mut adjusted =
            vec![(Adjusted::default(), ColumnAdjusted::default()); table.stage.len()];
        let read = source.scan(&table.from, &table.fields, &mut |rec: &dyn Record| {
            let mut one = |over: Option<(usize, Value<'_>)>, out: &mut BytesMut| {
                if let Some(col) = empty_skipped_reference(table, rec, over) {
                    ex.skipped += 1;
                    if ex.rejects.len() < limits.keep_rejects {
                        let c = &table.stage[col];
                        let reason = format!(
                            "skipped: no `{}` to reference (on_missing = \"skip\")",
                            c.target
                        );
                        ex.rejects.push(reject_row(
                            table,
                            rec,
                            col,
                            Code::EmptyReference,
                            Reject::new(reason),
                        ));
                    }
                    encode_dropped(&staging, rec, &mut conv, true, out);
                } else {
                    let row = out.len();
                    match encode_row(
                        &staging,
                        rec,
                        over,
                        &mut conv,
                        &mut adjusted,
                        seen.keys(),
                        out,
                    ) {
                        Ok(identity) => {
                            seen.add(identity);
                            let fp = fingerprint::of(seed, &out[row + ROW_PREFIX..]);
                            Staging::set_fingerprint(out, row, fp);
                            if !entity {
                                links = (links.0 + 1, links.1.wrapping_add(fp));
                            } else if same.as_mut().is_some_and(|k| k.take(fp)) {
                                staging.make_same(out, row);
                                ex.same += 1;
                            }
                            for (a, total) in adjusted.iter_mut() {
                                total.add(*a);
                            }
                        }
                        Err((col, code, reject)) => {
                            ex.rejected += 1;
                            if ex.rejects.len() < limits.keep_rejects {
                                ex.rejects.push(reject_row(table, rec, col, code, reject));
                            }
                            encode_dropped(&staging, rec, &mut conv, false, out);
                        }
                    }
                }
            };
            match explode {
                None => one(None, &mut out),
                // A link field feeding a junction: one row per linked record.
                Some(e) => match input(rec, &table.stage[e].input) {
                    Value::Null => {}
                    Value::Json(serde_json::Value::Array(items)) => {
                        for item in items {
                            one(Some((e, json_scalar(item))), &mut out);
                        }
                    }
                    other => one(Some((e, other)), &mut out),
                },
            }
            if out.len() >= CHUNK {
                if tx.blocking_send(Msg::Chunk(out.split().freeze())).is_err() {
                    failed = Some(Stopped.into());
                    return Err(Stopped.into());
                }
                progress.read(index, rec.ordinal());
            }
            Ok(())
        });
        if let Some(e) = failed {
            return Err(e);
        }
        ex.read = read?;
        ex.adjusted = adjusted
            .into_iter()
            .map(|(_, total)| total)
            .zip(&table.stage)
            .filter(|(a, _)| a.any())
            .map(|(a, c)| ColumnAdjusted {
                column: c.target.clone(),
                ..a
            })
            .collect();
        if !entity && ex.rejected == 0 && ex.skipped == 0 {
            ex.digest = Some(links);
        }
        ex.distinct = seen.distinct();
        ex.repeated = seen.repeated;
        drop(seen);
        ex.known = same;
        Staging::trailer(&mut out);
        progress.read_all(index, ex.read, started.elapsed());
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
        // Named in messages by the legacy id it is made from.
        StageInput::Generated { field, .. } => rec.get(*field),
    }
}

/// The identities of one table's kept rows, as 64-bit fingerprints of their key columns'
/// COPY bytes: no fingerprint seen twice means no two rows share an identity. A repeat may be
/// a fingerprint collision, so it only says "look": PostgreSQL then finds the duplicates.
struct Identities<'a> {
    /// The key columns (stage indexes); None when they cannot be compared by their bytes.
    keys: Option<&'a [usize]>,
    seen: Vec<u64>,
    /// Every identity so far was remembered.
    distinct: bool,
    /// Two were the same (known once the table is read).
    repeated: bool,
}

impl<'a> Identities<'a> {
    /// For a table of about `rows` rows: one allocation up front when they fit.
    fn new(keys: Option<&'a [usize]>, rows: u64) -> Self {
        let fits = (rows as usize) <= IDENTITIES_IN_MEMORY;
        Identities {
            distinct: keys.is_some() && fits,
            repeated: false,
            keys,
            seen: if keys.is_some() && fits {
                Vec::with_capacity(rows as usize)
            } else {
                Vec::new()
            },
        }
    }

    /// The key columns to fingerprint while encoding, while it can still tell.
    fn keys(&self) -> Option<&'a [usize]> {
        self.keys.filter(|_| self.distinct)
    }

    fn add(&mut self, identity: Option<u64>) {
        let Some(id) = identity else { return };
        if !self.distinct {
            return;
        }
        if self.seen.len() >= IDENTITIES_IN_MEMORY {
            self.distinct = false;
            self.seen = Vec::new();
        } else {
            self.seen.push(id);
        }
    }

    /// No identity was seen twice (the source may have had more rows than it counted).
    fn distinct(&mut self) -> bool {
        if !self.distinct {
            return false;
        }
        self.seen.sort_unstable();
        self.repeated = self.seen.windows(2).any(|w| w[0] == w[1]);
        !self.repeated
    }
}

/// Encode one staging row: ordinal, drop flag (false), then every stage column. With `keys`,
/// returns the fingerprint of those columns' bytes. On a reject, `out` is left as it was and
/// the failing column's index is returned, with the kind of reject.
fn encode_row(
    staging: &Staging<'_>,
    rec: &dyn Record,
    over: Option<(usize, Value<'_>)>,
    conv: &mut Converter,
    adjusted: &mut [(Adjusted, ColumnAdjusted)],
    keys: Option<&[usize]>,
    out: &mut BytesMut,
) -> Result<Option<u64>, (usize, Code, Reject)> {
    let start = out.len();
    let mut identity = keys.map(|_| std::hash::DefaultHasher::new());
    staging.begin_row(out, rec.ordinal(), false, false);
    // Room for a generated id, so making one allocates nothing.
    let mut id: [u8; 16];
    for (i, col) in staging.table().stage.iter().enumerate() {
        let value = match (over, &col.input) {
            (Some((e, v)), _) if e == i => v,
            (
                _,
                StageInput::Generated {
                    id: how,
                    field,
                    namespace,
                },
            ) => {
                // Named by the legacy id as its legacy column (stage column 0) holds it.
                let trim = staging
                    .table()
                    .stage
                    .first()
                    .is_some_and(|c| c.plan.rules.trim);
                id = convert::generated_id(*how, namespace, rec.get(*field), trim);
                Value::Blob(&id)
            }
            _ => input(rec, &col.input),
        };
        let field = out.len();
        if let Err(r) = conv.encode(value, &col.plan, out) {
            out.truncate(start);
            return Err((i, r.code, r));
        }
        if let Some((a, total)) = adjusted.get_mut(i) {
            *a = conv.adjusted();
            if a.whole_object && total.example.is_none() {
                total.example = Some(convert::whole_object_hint(value));
            }
        }
        if let (Some(h), Some(keys)) = (identity.as_mut(), keys)
            && keys.contains(&i)
        {
            // The field's length prefix is part of it, so fields never run together.
            h.write(&out[field..]);
        }
    }
    Ok(identity.map(|h| h.finish()))
}

/// A NOT NULL reference whose policy is "skip" and whose source value is empty: the row is
/// left out on purpose (a missing reference is missing whether it dangles or is blank).
fn empty_skipped_reference(
    table: &TablePlan,
    rec: &dyn Record,
    over: Option<(usize, Value<'_>)>,
) -> Option<usize> {
    table.stage.iter().enumerate().position(|(i, c)| {
        let skip = c
            .reference
            .as_ref()
            .is_some_and(|r| r.on_missing == OnMissing::Skip && r.not_null);
        skip && {
            let v = match over {
                Some((e, v)) if e == i => v,
                _ => input(rec, &c.input),
            };
            match v {
                Value::Null => true,
                Value::Text(t) => t.iter().all(u8::is_ascii_whitespace),
                Value::Json(j) => j.as_array().is_some_and(|a| a.is_empty()),
                _ => false,
            }
        }
    })
}

/// A rejected entity row is still staged, flagged as dropped, with its legacy id only, so
/// that pruning knows the record exists (as `skipped` when it was left out on purpose). A
/// junction row has no identity of its own: nothing.
fn encode_dropped(
    staging: &Staging<'_>,
    rec: &dyn Record,
    conv: &mut Converter,
    skipped: bool,
    out: &mut BytesMut,
) {
    let table = staging.table();
    if table.is_junction() {
        return;
    }
    // Not even the legacy id converts: the row cannot be tied to anything, and is left out.
    let _ = staging.dropped_row(out, rec.ordinal(), skipped, |out| {
        let col = &table.stage[0];
        conv.encode(input(rec, &col.input), &col.plan, out)
    });
}

fn reject_row(
    table: &TablePlan,
    rec: &dyn Record,
    col: usize,
    code: Code,
    reject: Reject,
) -> RejectRow {
    let c = &table.stage[col];
    RejectRow {
        table: table.name.clone(),
        source: table.from.clone(),
        legacy_id: legacy_id(table, rec),
        column: c.target.clone(),
        value: convert::describe(input(rec, &c.input)),
        code,
        reason: reject.reason,
        ordinal: rec.ordinal(),
        row: None,
    }
}

/// The legacy id of a record as people read it, or its row number when it has none.
fn legacy_id(table: &TablePlan, rec: &dyn Record) -> String {
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
