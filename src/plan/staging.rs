//! The staging table: every table is loaded through a temporary table that the convert stage
//! fills by binary COPY and the load then works from. This file is its whole contract — the
//! name, the columns, the DDL and COPY statement, the binary COPY framing and each row's
//! prefix, the messages that carry the COPY data from the convert stage to the load, and the
//! SQL fragments over the staged rows — so that the writer and every reader agree on it.
//!
//! `cutover_stage_{index}` (dropped at commit) holds, per source row: `row_`, the row's
//! position in the source; `drop_`, set when the row is rejected or skipped; `skip_`, set
//! too when it was skipped on purpose rather than rejected; `same_`, set (with `drop_`) when
//! the row is exactly what the last load wrote and the target still holds (`fingerprint.rs`:
//! staged with its legacy id only, and neither resolved nor written); `fp_`, the row's
//! fingerprint (NULL for a dropped row); then `c{i}` for
//! each stage column, typed as the target column (a reference: as the parent's legacy
//! column). The resolved rows `r` are the staged rows not dropped with every reference joined
//! to its parent's primary key: `row_`, then `r{i}` per stage column.
//!
//! Binary COPY format: <https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4>

use super::{Plan, TableKind, TablePlan};
use crate::convert::reject::RejectRow;
use crate::pg::sql::{ident, literal};
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::atomic::Ordering;

/// What the convert stage sends to the loader, table by table in plan order.
pub(crate) enum Msg {
    /// COPY data for the current table (the first chunk starts with the COPY header).
    Chunk(Bytes),
    /// The table is complete (its last chunk ended with the COPY trailer).
    End(Extracted),
}

/// The outcome of reading one table.
#[derive(Debug, Default)]
pub(crate) struct Extracted {
    pub(crate) read: u64,
    pub(crate) rejected: u64,
    /// Rows left out on purpose: a NOT NULL reference with `on_missing = "skip"` is empty.
    pub(crate) skipped: u64,
    /// Rows exactly as the last load wrote them (staged as `same_`).
    pub(crate) same: u64,
    /// The fingerprints the table was handed, with those its rows matched.
    pub(crate) known: Option<super::fingerprint::Known>,
    /// A junction's links as staged, summed up: their count and the wrapping sum of their
    /// fingerprints — None when a link was left out.
    pub(crate) digest: Option<(u64, u64)>,
    /// The first rejects (and skips) in detail (bounded by the convert stage's limits).
    pub(crate) rejects: Vec<RejectRow>,
    /// Per column, the loaded values the mapping's policies changed (`truncate`, `on_error`).
    pub(crate) adjusted: Vec<crate::convert::ColumnAdjusted>,
    /// The convert stage saw every kept row's identity and no two were the same, so the
    /// staged rows hold no duplicate legacy ids (false: it could not tell, and the staged rows
    /// are searched for them).
    pub(crate) distinct: bool,
    /// It saw two kept rows with the same identity fingerprint: duplicates are likely.
    pub(crate) repeated: bool,
}

/// Where, from a kept row's start, its `drop_` and `same_` flags and its fingerprint are,
/// and its stage columns begin: field count (2), `row_` (4 + 8), `drop_`, `skip_` and `same_`
/// (4 + 1 each), `fp_` (4 + 8).
const DROP_AT: usize = 2 + 12 + 4;
const SAME_AT: usize = DROP_AT + 1 + 5 + 4;
const FP_AT: usize = SAME_AT + 1 + 4;
pub(crate) const ROW_PREFIX: usize = FP_AT + 8;

/// The 11-byte signature that opens every binary COPY stream.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// The resolved rows' source order.
pub(crate) const RESOLVED_ORDER: &str = "r.row_";

/// One table's staging table and the SQL over it.
pub(crate) struct Staging<'a> {
    table: &'a TablePlan,
    name: String,
    /// Fields per COPY row: `row_`, `drop_`, `skip_`, `same_`, `fp_` and the stage columns.
    fields: i16,
    /// Stage columns that are the identity (never updated once inserted).
    key_cols: Vec<usize>,
    /// Stage columns that are values, updated when they change.
    value_cols: Vec<usize>,
    resolved: String,
    /// Whether the resolved rows are kept in a table of their own
    /// ([`Staging::materialize_sql`]), which [`Staging::resolved`] then reads.
    materialized: std::sync::atomic::AtomicBool,
    key_match: String,
    label: String,
}

impl<'a> Staging<'a> {
    /// The staging table of `table`, the `index`-th table of its plan.
    pub(crate) fn new(table: &'a TablePlan, index: usize) -> Self {
        let key_cols: Vec<usize> = (0..table.stage.len())
            .filter(|&i| table.stage[i].key)
            .collect();
        // A column the table's triggers set is written on insert only.
        let value_cols = (0..table.stage.len())
            .filter(|&i| !key_cols.contains(&i))
            .filter(|&i| !table.set_by_triggers.contains(&table.stage[i].target))
            .collect();
        let name = name(index);
        let resolved = resolved(table, &name);
        let key_match = match &table.kind {
            TableKind::Entity { match_column } => format!("t.{} = r.r0", ident(match_column)),
            TableKind::Junction { .. } => key_cols
                .iter()
                .map(|&i| format!("t.{} = r.r{i}", ident(&table.stage[i].target)))
                .collect::<Vec<_>>()
                .join(" AND "),
        };
        Staging {
            table,
            fields: (5 + table.stage.len()) as i16,
            key_cols,
            value_cols,
            label: label(table, "r", "r"),
            resolved,
            materialized: std::sync::atomic::AtomicBool::new(false),
            key_match,
            name,
        }
    }

    /// One staging table per table of `plan`, in plan order.
    pub(crate) fn all(plan: &'a Plan) -> Vec<Staging<'a>> {
        plan.tables
            .iter()
            .enumerate()
            .map(|(i, t)| Staging::new(t, i))
            .collect()
    }

    pub(crate) fn table(&self) -> &'a TablePlan {
        self.table
    }

    /// The staging table's name (`cutover_stage_{index}`); stage column `i` is `c{i}`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The stage columns that make a row's identity, when two staged values of each are
    /// equal in SQL exactly when their binary COPY fields are byte for byte the same (text
    /// and varchar under the database's deterministic default collation, integers, uuids):
    /// then the convert stage can tell duplicates apart by the bytes it writes. None for any
    /// other type (citext, char(n), numeric: equal values with different bytes).
    pub(crate) fn identity_by_bytes(&self) -> Option<&[usize]> {
        let plain = |t: &str| {
            matches!(t, "text" | "integer" | "bigint" | "smallint" | "uuid")
                || t.starts_with("character varying")
        };
        (!self.key_cols.is_empty()
            && self
                .key_cols
                .iter()
                .all(|&i| plain(&self.table.stage[i].sql_type)))
        .then_some(self.key_cols.as_slice())
    }

    /// Create the staging table, dropped at commit.
    pub(crate) fn create(&self) -> String {
        let mut ddl = format!(
            "CREATE TEMP TABLE {} (row_ bigint NOT NULL, drop_ boolean NOT NULL, skip_ boolean NOT NULL, same_ boolean NOT NULL, fp_ bigint",
            self.name
        );
        for (i, c) in self.table.stage.iter().enumerate() {
            ddl.push_str(&format!(", c{i} {}", c.sql_type));
        }
        ddl.push_str(") ON COMMIT DROP");
        ddl
    }

    /// Start the COPY that fills it.
    pub(crate) fn copy_in(&self) -> String {
        format!("COPY {} FROM STDIN (FORMAT binary)", self.name)
    }

    /// Statistics on the staged rows.
    pub(crate) fn analyze(&self) -> String {
        format!("ANALYZE {}", self.name)
    }

    // ---- binary COPY framing ----

    /// Signature, flags (0: no OIDs) and header-extension length (0).
    pub(crate) fn header(out: &mut BytesMut) {
        out.extend_from_slice(SIGNATURE);
        out.put_i32(0);
        out.put_i32(0);
    }

    /// Start a row: its field count, `row_` (the source position), `drop_`, `skip_`,
    /// `same_` (false) and `fp_` (NULL for a dropped row, else 0 until
    /// [`Staging::set_fingerprint`]). The stage columns follow, each as written by the
    /// converter, in stage order, from [`ROW_PREFIX`] bytes after the row's start.
    #[inline]
    pub(crate) fn begin_row(&self, out: &mut BytesMut, ordinal: u64, dropped: bool, skipped: bool) {
        out.put_i16(self.fields);
        out.put_i32(8);
        out.put_i64(ordinal as i64);
        out.put_i32(1);
        out.put_u8(u8::from(dropped));
        out.put_i32(1);
        out.put_u8(u8::from(skipped));
        out.put_i32(1);
        out.put_u8(0);
        if dropped {
            out.put_i32(-1);
        } else {
            out.put_i32(8);
            out.put_i64(0);
        }
    }

    /// Set `fp_` of the kept row that starts at `row` in `out`.
    #[inline]
    pub(crate) fn set_fingerprint(out: &mut BytesMut, row: usize, fp: u64) {
        out[row + FP_AT..row + FP_AT + 8].copy_from_slice(&fp.to_be_bytes());
    }

    /// Turn the kept row that starts at `row` in `out` (the last row there) into a `same_`
    /// row: dropped, with its legacy id (the first stage column) and fingerprint only.
    pub(crate) fn make_same(&self, out: &mut BytesMut, row: usize) {
        out[row + DROP_AT] = 1;
        out[row + SAME_AT] = 1;
        if self.table.stage.is_empty() {
            out.truncate(row + ROW_PREFIX);
            return;
        }
        let at = row + ROW_PREFIX;
        let len = i32::from_be_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]);
        out.truncate(at + 4 + usize::try_from(len).unwrap_or(0));
        for _ in 1..self.table.stage.len() {
            out.put_i32(-1);
        }
    }

    /// A row left out (rejected, or `skipped`) that still marks its record as present:
    /// flagged as dropped, `legacy` writes its first stage column (the legacy id), the rest
    /// are NULL. When `legacy` fails, `out` is left as it was.
    pub(crate) fn dropped_row<E>(
        &self,
        out: &mut BytesMut,
        ordinal: u64,
        skipped: bool,
        legacy: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = out.len();
        self.begin_row(out, ordinal, true, skipped);
        if self.table.stage.is_empty() {
            return Ok(());
        }
        if let Err(e) = legacy(out) {
            out.truncate(start);
            return Err(e);
        }
        for _ in 1..self.table.stage.len() {
            out.put_i32(-1);
        }
        Ok(())
    }

    /// End of data: a field count of -1.
    pub(crate) fn trailer(out: &mut BytesMut) {
        out.put_i16(-1);
    }

    // ---- the staged rows `s` ----

    /// How a staged row `s` is named in messages: its legacy id, or for a link the ids it
    /// joins.
    pub(crate) fn staged_label(&self) -> String {
        label(self.table, "s", "c")
    }

    /// Staged rows not dropped: what should be in the target.
    pub(crate) fn count(&self) -> String {
        format!("SELECT count(*) FROM {} WHERE NOT drop_", self.name)
    }

    /// What should be in the target after the load: the staged rows not dropped and the
    /// rows found unchanged (`same_`).
    pub(crate) fn count_with_same(&self) -> String {
        format!(
            "SELECT count(*) FROM {} WHERE NOT drop_ OR same_",
            self.name
        )
    }

    /// How many rows were found unchanged (`same_`): each one's target row was found in the
    /// target when the load started (`load/record.rs`), and is not written; None for a
    /// junction.
    pub(crate) fn same_count(&self) -> Option<String> {
        let TableKind::Entity { .. } = &self.table.kind else {
            return None;
        };
        Some(format!("SELECT count(*) FROM {} WHERE same_", self.name))
    }

    /// Whether two rows not dropped share an identity, or one has the legacy id of a row
    /// found unchanged (which has nothing else staged).
    pub(crate) fn any_duplicates(&self) -> String {
        format!(
            "SELECT EXISTS (SELECT 1 FROM {s} WHERE NOT drop_ GROUP BY {partition} HAVING count(*) > 1){same}",
            s = self.name,
            partition = self.partition(),
            same = match self.table.kind {
                // A count, not EXISTS: EXISTS plans for a first match soon, as a nested loop
                // over every unchanged row per changed row, when there is none.
                TableKind::Entity { .. } => format!(
                    " OR (SELECT count(*) FROM {s} a JOIN {s} b ON b.c0 = a.c0 WHERE NOT a.drop_ AND b.same_) > 0",
                    s = self.name
                ),
                TableKind::Junction { .. } => String::new(),
            }
        )
    }

    /// Drop every row whose identity an earlier source row has — or the legacy id of a row
    /// found unchanged, which keeps its place whatever the order —, returning their labels
    /// and source positions (`row_`).
    pub(crate) fn drop_duplicates(&self) -> String {
        // Rows are told apart by ctid: the rows exploded from one record share its row_.
        let same = match self.table.kind {
            TableKind::Entity { .. } => format!(
                "\n                 UNION SELECT a.ctid FROM {s} a JOIN {s} b ON b.c0 = a.c0 WHERE NOT a.drop_ AND b.same_",
                s = self.name
            ),
            TableKind::Junction { .. } => String::new(),
        };
        format!(
            "WITH d AS (SELECT ctid AS id, row_number() OVER (PARTITION BY {partition} ORDER BY row_) AS n FROM {s} WHERE NOT drop_),
                 u AS (SELECT id FROM d WHERE n > 1{same})
                 UPDATE {s} s SET drop_ = true, skip_ = {skip} FROM u WHERE s.ctid = u.id RETURNING {label}, s.row_",
            s = self.name,
            // A repeated link is skipped; a repeated entity rejected.
            skip = self.table.is_junction(),
            partition = self.partition(),
            label = self.staged_label()
        )
    }

    fn partition(&self) -> String {
        self.key_cols
            .iter()
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The rows not dropped with any reference that does not resolve, at most `limit`: the
    /// row's ctid as text, its label, then per reference column in stage order whether it
    /// dangles, then per reference column its staged value as text, then per reference column
    /// whether the parent row it names was rejected in this run (staged as dropped, not as
    /// skipped), then its source position (`row_`). None without
    /// references.
    pub(crate) fn dangling(&self, limit: usize) -> Option<String> {
        let mut joins = String::new();
        let mut flags = Vec::new();
        let mut values = Vec::new();
        let mut left_out = Vec::new();
        let mut any = Vec::new();
        for (i, c) in self.table.stage.iter().enumerate() {
            let Some(r) = &c.reference else { continue };
            values.push(format!("s.c{i}::text"));
            // A deferred reference may point at a row written later: it is judged once
            // every table is loaded, never dangling here.
            if r.deferred {
                flags.push("false".to_string());
                left_out.push("false".to_string());
                continue;
            }
            let m = ident(&r.match_column);
            joins.push_str(&format!(
                " LEFT JOIN {} p{i} ON p{i}.{m} = s.c{i}",
                r.qualified
            ));
            let flag = format!("(s.c{i} IS NOT NULL AND p{i}.{m} IS NULL)");
            // Uncorrelated, so PostgreSQL hashes the parent's dropped ids once.
            left_out.push(format!(
                "({flag} AND s.c{i} IN (SELECT q.c0 FROM {} q WHERE q.drop_ AND NOT q.skip_ AND NOT q.same_))",
                name(r.parent)
            ));
            any.push(flag.clone());
            flags.push(flag);
        }
        if any.is_empty() {
            return None;
        }
        Some(format!(
            "SELECT s.ctid::text, {label}, {flags}, {values}, {left_out}, s.row_ FROM {s} s{joins} WHERE NOT s.drop_ AND ({any}) LIMIT {limit}",
            label = self.staged_label(),
            s = self.name,
            flags = flags.join(", "),
            values = values.join(", "),
            left_out = left_out.join(", "),
            any = any.join(" OR "),
        ))
    }

    /// Rows not dropped whose reference column `i` names a parent row that this run
    /// rejected: a condition on `s`.
    fn parent_rejected(&self, i: usize) -> Option<String> {
        let r = self.table.stage.get(i)?.reference.as_ref()?;
        Some(format!(
            "{} AND s.c{i} IN (SELECT q.c0 FROM {} q WHERE q.drop_ AND NOT q.skip_ AND NOT q.same_)",
            self.unresolved(i)?,
            name(r.parent)
        ))
    }

    /// The first `limit` rows whose reference column `i` names a parent row rejected in
    /// this run: label, value as text, source position (`row_`).
    pub(crate) fn parent_rejected_examples(&self, i: usize, limit: usize) -> Option<String> {
        Some(format!(
            "SELECT {label}, s.c{i}::text, s.row_ FROM {s} s WHERE {cond} LIMIT {limit}",
            label = self.staged_label(),
            s = self.name,
            cond = self.parent_rejected(i)?
        ))
    }

    /// Drop (as rejected) the rows whose reference column `i` names a parent row rejected in
    /// this run.
    pub(crate) fn drop_parent_rejected(&self, i: usize) -> Option<String> {
        Some(format!(
            "UPDATE {} s SET drop_ = true, skip_ = false WHERE {}",
            self.name,
            self.parent_rejected(i)?
        ))
    }

    /// Drop (as rejected) the rows not dropped whose source positions (`row_`) are bound as
    /// `$1`.
    pub(crate) fn drop_rows_at(&self) -> String {
        format!(
            "UPDATE {} SET drop_ = true, skip_ = false WHERE NOT drop_ AND row_ = ANY ($1::bigint[])",
            self.name
        )
    }

    /// Drop the rows whose ctids (as text) are bound as `$1`, as skipped when `$2`.
    pub(crate) fn drop_rows(&self) -> String {
        format!(
            "UPDATE {} SET drop_ = true, skip_ = $2 WHERE ctid = ANY ($1::text[]::tid[])",
            self.name
        )
    }

    /// Rows not dropped whose reference column `i` does not resolve: a condition on `s`.
    fn unresolved(&self, i: usize) -> Option<String> {
        let r = self.table.stage.get(i)?.reference.as_ref()?;
        if r.deferred {
            return None;
        }
        Some(format!(
            "NOT s.drop_ AND s.c{i} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {p} p WHERE p.{m} = s.c{i})",
            p = r.qualified,
            m = ident(&r.match_column)
        ))
    }

    /// How many rows have reference column `i` unresolved.
    pub(crate) fn count_unresolved(&self, i: usize) -> Option<String> {
        let unresolved = self.unresolved(i)?;
        Some(format!(
            "SELECT count(*) FROM {} s WHERE {unresolved}",
            self.name
        ))
    }

    /// The first `limit` rows with reference column `i` unresolved: label, value as text,
    /// source position (`row_`).
    pub(crate) fn unresolved_examples(&self, i: usize, limit: usize) -> Option<String> {
        let unresolved = self.unresolved(i)?;
        Some(format!(
            "SELECT {label}, s.c{i}::text, s.row_ FROM {s} s WHERE {unresolved} LIMIT {limit}",
            label = self.staged_label(),
            s = self.name
        ))
    }

    /// Drop the rows with reference column `i` unresolved, as skipped when `skip`.
    pub(crate) fn drop_unresolved(&self, i: usize, skip: bool) -> Option<String> {
        let unresolved = self.unresolved(i)?;
        Some(format!(
            "UPDATE {} s SET drop_ = true, skip_ = {skip} WHERE {unresolved}",
            self.name
        ))
    }

    /// Target rows `t` of an entity whose legacy id is no longer in the source (never rows
    /// whose legacy id is NULL, which the application created). None for a junction.
    pub(crate) fn gone(&self) -> Option<String> {
        let TableKind::Entity { match_column } = &self.table.kind else {
            return None;
        };
        Some(format!(
            "t.{m} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {s} s WHERE s.c0 = t.{m})",
            m = ident(match_column),
            s = self.name
        ))
    }

    // ---- the resolved rows `r` ----

    /// `SELECT s.row_, … AS r0, … AS rN FROM stage s LEFT JOIN parents … WHERE NOT s.drop_`:
    /// the staged values with every reference joined to its parent's primary key through
    /// the parent's legacy column (no id map held in memory).
    pub(crate) fn resolved(&self) -> String {
        if self.materialized.load(Ordering::Relaxed) {
            format!("SELECT * FROM {}", self.materialized_name())
        } else {
            self.resolved.clone()
        }
    }

    /// The temporary table of [`Staging::materialize_sql`].
    fn materialized_name(&self) -> String {
        format!("{}_resolved", self.name)
    }

    /// The statements that keep the resolved rows in a temporary table of their own, for a
    /// merge re-run whose few changed rows are otherwise joined to their parents again by
    /// each statement that reads them (comparing, updating, inserting, counting, recording).
    /// Only for a table without references set once every table is written (those resolve
    /// later), and only once no row will be dropped any more; [`Staging::materialized`]
    /// then makes [`Staging::resolved`] read from it, until [`Staging::forget_materialized`].
    pub(crate) fn materialize_sql(&self) -> Option<String> {
        if self
            .table
            .stage
            .iter()
            .any(|c| c.reference.as_ref().is_some_and(|r| r.deferred))
        {
            return None;
        }
        let m = self.materialized_name();
        Some(format!(
            "DROP TABLE IF EXISTS {m}; CREATE TEMP TABLE {m} ON COMMIT DROP AS {}; ANALYZE {m}",
            self.resolved
        ))
    }

    /// The table of [`Staging::materialize_sql`] now holds the resolved rows.
    pub(crate) fn materialized(&self) {
        self.materialized.store(true, Ordering::Relaxed);
    }

    /// Rows are about to be dropped: the resolved rows are read from the staged ones again.
    pub(crate) fn forget_materialized(&self) {
        self.materialized.store(false, Ordering::Relaxed);
    }

    /// The resolved rows of which every reference resolved (or is NULL in the source): what
    /// a table empty at the start receives before any reference is judged.
    pub(crate) fn resolved_complete(&self) -> String {
        format!("{} AND {}", self.resolved, self.complete())
    }

    /// The resolved rows, among those whose ctid (as text) is bound as `$1`.
    pub(crate) fn resolved_among(&self) -> String {
        format!("{} AND s.ctid = ANY ($1::text[]::tid[])", self.resolved)
    }

    /// The resolved rows with some reference that did not resolve (left NULL).
    pub(crate) fn resolved_incomplete(&self) -> String {
        format!("{} AND NOT {}", self.resolved, self.complete())
    }

    /// Every reference of staged row `s` resolved through its join `p{i}`, or is NULL.
    fn complete(&self) -> String {
        let all: Vec<String> = self
            .table
            .stage
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let r = c.reference.as_ref()?;
                Some(format!(
                    "(s.c{i} IS NULL OR p{i}.{} IS NOT NULL)",
                    ident(&r.match_column)
                ))
            })
            .collect();
        if all.is_empty() {
            "true".to_string()
        } else {
            format!("({})", all.join(" AND "))
        }
    }

    /// Column `i` of resolved row `r`.
    pub(crate) fn resolved_col(i: usize) -> String {
        format!("r.r{i}")
    }

    /// Matches target row `t` with resolved row `r` on the identity.
    pub(crate) fn key_match(&self) -> &str {
        &self.key_match
    }

    /// Stage columns that are values (not identity), updated when they change.
    pub(crate) fn value_cols(&self) -> &[usize] {
        &self.value_cols
    }

    /// How a resolved row `r` is named in messages.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Value column `i` of target row `t` and of resolved row `r`, comparable: a staged value
    /// of another type made the column's (so a modifier such as `interval(0)` rounds it as
    /// writing it did), and as text for a type without equality, such as json, or whose `=`
    /// equates distinct values.
    pub(crate) fn compared_col(&self, i: usize) -> (String, String) {
        let c = &self.table.stage[i];
        let (old, new) = (format!("t.{}", ident(&c.target)), Self::resolved_col(i));
        if !c.compare_as_text {
            // A domain's base value compares with the column once made its type (`posint[]`
            // has no `=` with `integer[]`).
            return match &c.coercion {
                Some(k) => (old, format!("{new}::{}", k.column)),
                None => (old, new),
            };
        }
        match &c.coercion {
            Some(k) if k.cast.is_some() => {
                (format!("{old}::text"), format!("{new}::{}::text", k.column))
            }
            _ => (format!("{old}::text"), format!("{new}::text")),
        }
    }

    /// The value columns of target row `t` and of resolved row `r`, as comparable lists.
    pub(crate) fn compared(&self) -> (String, String) {
        let (old, new): (Vec<String>, Vec<String>) = self
            .value_cols
            .iter()
            .map(|&i| self.compared_col(i))
            .unzip();
        (old.join(", "), new.join(", "))
    }

    /// `t` and `r` differ in a value column.
    pub(crate) fn differs(&self) -> String {
        let (old, new) = self.compared();
        format!("({old}) IS DISTINCT FROM ({new})")
    }

    /// The resolved rows with the target's column names: the select list over `r`.
    pub(crate) fn as_target(&self) -> String {
        self.table
            .stage
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} AS {}", Self::resolved_col(i), ident(&c.target)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Staging<'_> {
    /// Rows of this table left out (rejected or skipped) that are still staged, flagged as
    /// dropped: their values say whose links they are.
    pub(crate) fn count_dropped(&self) -> String {
        format!("SELECT count(*) FROM {} WHERE drop_", self.name)
    }

    /// Links `t` of a junction that `--prune` removes: a row it links is a legacy row gone
    /// from the source (pruned next), and every row it links is a legacy row (a link to a row
    /// the application created is the application's, and is never pruned: it holds the
    /// legacy row, and the prune says so). None for an entity.
    pub(crate) fn gone_links(&self, plan: &Plan) -> Option<String> {
        let table = self.table;
        if !table.is_junction() {
            return None;
        }
        let mut gone = Vec::new();
        let mut legacy = Vec::new();
        for c in &table.stage {
            let Some(q) = &c.reference else { continue };
            let TableKind::Entity { match_column } = &plan.tables.get(q.parent)?.kind else {
                return None;
            };
            let (col, pk, m) = (ident(&c.target), ident(&q.pk), ident(match_column));
            gone.push(format!(
                "t.{col} IN (SELECT p.{pk} FROM {pq} p WHERE p.{m} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {ps} ps WHERE ps.c0 = p.{m}))",
                pq = q.qualified,
                ps = name(q.parent),
            ));
            legacy.push(format!(
                "EXISTS (SELECT 1 FROM {pq} p WHERE p.{pk} = t.{col} AND p.{m} IS NOT NULL)",
                pq = q.qualified,
            ));
        }
        Some(format!(
            "({}) AND {}",
            gone.join(" OR "),
            legacy.join(" AND ")
        ))
    }

    /// Links `t` of a junction that a merge may remove: its owner is in the source and
    /// every one of that owner's source links loaded (none rejected or skipped, so a typo in
    /// one link never removes the link it meant), every row it links is one the source
    /// describes (a legacy id that is not NULL: never a link to a row the application
    /// created), and the source no longer has it. None for an entity.
    pub(crate) fn unlinkable(&self, plan: &Plan) -> Option<String> {
        let table = self.table;
        let TableKind::Junction { owner } = table.kind else {
            return None;
        };
        let r = table.stage.get(owner)?.reference.as_ref()?;
        let parent = plan.tables.get(r.parent)?;
        let TableKind::Entity { match_column } = &parent.kind else {
            return None;
        };
        let same: Vec<String> = self
            .key_cols
            .iter()
            .map(|&i| format!("t.{} = r.r{i}", ident(&table.stage[i].target)))
            .collect();
        let mut legacy = String::new();
        for (i, c) in table.stage.iter().enumerate() {
            let Some(q) = &c.reference else { continue };
            if i == owner {
                continue;
            }
            legacy.push_str(&format!(
                "\n               AND EXISTS (SELECT 1 FROM {qq} q WHERE q.{pk} = t.{col} AND q.{m} IS NOT NULL)",
                qq = q.qualified,
                pk = ident(&q.pk),
                col = ident(&c.target),
                m = ident(&q.match_column),
            ));
        }
        Some(format!(
            "t.{own} IN (SELECT p.{pk} FROM {pq} p JOIN {ps} ps ON ps.c0 = p.{pm} WHERE (NOT ps.drop_ OR ps.same_)
                 AND NOT EXISTS (SELECT 1 FROM {s} d WHERE d.drop_ AND d.c{owner} = ps.c0)){legacy}
               AND NOT EXISTS (SELECT 1 FROM ({sel}) r WHERE {same})",
            own = ident(&table.stage[owner].target),
            pk = ident(&r.pk),
            pq = parent.qualified,
            ps = name(r.parent),
            pm = ident(match_column),
            s = self.name,
            sel = self.resolved(),
            same = same.join(" AND "),
        ))
    }
}

fn name(index: usize) -> String {
    format!("cutover_stage_{index}")
}

/// The resolved rows of `table` staged in `s`: references joined to their parents' primary
/// keys.
fn resolved(table: &TablePlan, s: &str) -> String {
    let mut select = vec!["s.row_".to_string(), "s.fp_".to_string()];
    let mut joins = String::new();
    for (i, c) in table.stage.iter().enumerate() {
        match &c.reference {
            Some(r) => {
                match &r.cast_to {
                    // A type name from the catalog (`format_type`), never user text.
                    Some(ty) => select.push(format!("p{i}.{}::{ty} AS r{i}", ident(&r.pk))),
                    None => select.push(format!("p{i}.{} AS r{i}", ident(&r.pk))),
                }
                joins.push_str(&format!(
                    " LEFT JOIN {} p{i} ON p{i}.{} = s.c{i}",
                    r.qualified,
                    ident(&r.match_column)
                ));
            }
            // Text input: PostgreSQL's input function parses the staged text; assignment to
            // the column then applies its modifier and domains (a type name from the catalog).
            None => match c.coercion.as_ref().and_then(|k| k.cast.as_deref()) {
                Some(ty) => select.push(format!("s.c{i}::{ty} AS r{i}")),
                None => select.push(format!("s.c{i} AS r{i}")),
            },
        }
    }
    format!(
        "SELECT {} FROM {s} s{joins} WHERE NOT s.drop_",
        select.join(", ")
    )
}

/// A row named for messages, over staged (`s`, `c`) or resolved (`r`, `r`) columns.
fn label(table: &TablePlan, alias: &str, col: &str) -> String {
    if table.is_junction() {
        table
            .stage
            .iter()
            .enumerate()
            .filter(|(_, c)| c.reference.is_some())
            .map(|(i, c)| {
                format!(
                    "{} || '=' || coalesce({alias}.{col}{i}::text, 'NULL')",
                    literal(&c.target)
                )
            })
            .collect::<Vec<_>>()
            .join(" || ' ' || ")
    } else {
        format!("{alias}.{col}0::text")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{ColumnPlan, Rules};
    use crate::mapping::{OnMissing, Shape};
    use crate::pg::PgType;
    use crate::plan::{RefPlan, StageColumn, StageInput};

    fn col(target: &str, sql_type: &str, key: bool, reference: Option<RefPlan>) -> StageColumn {
        StageColumn {
            target: target.into(),
            input: StageInput::Field(0),
            plan: ColumnPlan {
                ty: PgType::Text { max_chars: None },
                not_null: false,
                rules: Rules::default(),
            },
            sql_type: sql_type.into(),
            compare_as_text: sql_type == "json",
            coercion: None,
            key,
            reference,
            shape: Shape::default(),
        }
    }

    fn to(table: &str, parent: usize) -> Option<RefPlan> {
        Some(RefPlan {
            table: table.into(),
            qualified: format!("\"public\".\"{table}\""),
            match_column: "legacy_id".into(),
            pk: "id".into(),
            parent,
            on_missing: OnMissing::Error,
            not_null: true,
            cast_to: None,
            deferred: false,
        })
    }

    fn entity(name: &str, stage: Vec<StageColumn>) -> TablePlan {
        TablePlan {
            name: name.into(),
            from: name.into(),
            qualified: format!("\"public\".\"{name}\""),
            kind: TableKind::Entity {
                match_column: "legacy_id".into(),
            },
            fields: vec![],
            stage,
            overriding: false,
            ids_from_source: false,
            disable_triggers: Vec::new(),
            set_by_triggers: Vec::new(),
            triggers_fire: false,
            on_duplicate: Default::default(),
        }
    }

    /// teams, users (one of each kind of column), votes (a junction of users and teams).
    fn plan() -> Plan {
        let teams = entity("teams", vec![col("legacy_id", "text", true, None)]);
        let users = entity(
            "users",
            vec![
                col("legacy_id", "text", true, None),
                col("email", "text", false, None),
                col("prefs", "json", false, None),
                col("team_id", "text", false, to("teams", 0)),
            ],
        );
        let votes = TablePlan {
            kind: TableKind::Junction { owner: 0 },
            ..entity(
                "votes",
                vec![
                    col("voter_id", "text", true, to("users", 1)),
                    col("team_id", "text", true, to("teams", 0)),
                ],
            )
        };
        Plan {
            tables: vec![teams, users, votes],
            schema: "public".into(),
            deferred_constraints: Vec::new(),
        }
    }

    #[test]
    fn framing_bytes() {
        let mut out = BytesMut::new();
        Staging::header(&mut out);
        assert_eq!(
            &out[..],
            b"PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        );
        assert_eq!(out.len(), 19);
        out.clear();
        let plan = plan();
        let teams = Staging::new(&plan.tables[0], 0);
        teams.begin_row(&mut out, 7, false, true);
        assert_eq!(&out[..2], &[0, 6]);
        assert_eq!(
            &out[2..],
            &[
                0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0,
                0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0
            ]
        );
        assert_eq!(out.len(), ROW_PREFIX);
        Staging::set_fingerprint(&mut out, 0, 0x0102_0304_0506_0708);
        assert_eq!(&out[ROW_PREFIX - 8..], &[1, 2, 3, 4, 5, 6, 7, 8]);
        out.clear();
        Staging::trailer(&mut out);
        assert_eq!(&out[..], &[0xff, 0xff]);
    }

    #[test]
    fn dropped_rows_keep_the_legacy_id_only() {
        let plan = plan();
        let users = Staging::new(&plan.tables[1], 1);
        let mut out = BytesMut::new();
        let ok: Result<(), ()> = users.dropped_row(&mut out, 2, false, |o| {
            o.put_i32(1);
            o.put_u8(b'x');
            Ok(())
        });
        assert!(ok.is_ok());
        let mut want = vec![
            0, 9, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0,
            0xff, 0xff, 0xff, 0xff,
        ];
        want.extend([0, 0, 0, 1, b'x']);
        for _ in 0..3 {
            want.extend([0xff, 0xff, 0xff, 0xff]);
        }
        assert_eq!(&out[..], &want[..]);
        out.clear();
        out.put_u8(9);
        assert!(users.dropped_row(&mut out, 2, true, |_| Err(())).is_err());
        assert_eq!(&out[..], &[9]);
    }

    #[test]
    fn a_row_found_unchanged_keeps_its_legacy_id_and_fingerprint_only() {
        let plan = plan();
        let users = Staging::new(&plan.tables[1], 1);
        let mut out = BytesMut::new();
        out.put_u8(9);
        users.begin_row(&mut out, 3, false, false);
        Staging::set_fingerprint(&mut out, 1, 42);
        for field in [&b"u1"[..], b"a@b", b"{}", b"t9"] {
            out.put_i32(field.len() as i32);
            out.put_slice(field);
        }
        users.make_same(&mut out, 1);
        let mut want = vec![
            9, 0, 9, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1,
            1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 42,
        ];
        want.extend([0, 0, 0, 2, b'u', b'1']);
        for _ in 0..3 {
            want.extend([0xff, 0xff, 0xff, 0xff]);
        }
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn entity_sql() {
        let plan = plan();
        let s = Staging::new(&plan.tables[1], 1);
        assert_eq!(
            s.create(),
            "CREATE TEMP TABLE cutover_stage_1 (row_ bigint NOT NULL, drop_ boolean NOT NULL, skip_ boolean NOT NULL, same_ boolean NOT NULL, fp_ bigint, c0 text, c1 text, c2 json, c3 text) ON COMMIT DROP"
        );
        assert_eq!(
            s.copy_in(),
            "COPY cutover_stage_1 FROM STDIN (FORMAT binary)"
        );
        assert_eq!(
            s.resolved(),
            "SELECT s.row_, s.fp_, s.c0 AS r0, s.c1 AS r1, s.c2 AS r2, p3.\"id\" AS r3 FROM cutover_stage_1 s LEFT JOIN \"public\".\"teams\" p3 ON p3.\"legacy_id\" = s.c3 WHERE NOT s.drop_"
        );
        assert_eq!(s.key_match(), "t.\"legacy_id\" = r.r0");
        assert_eq!(s.value_cols(), &[1, 2, 3]);
        assert_eq!(
            s.differs(),
            "(t.\"email\", t.\"prefs\"::text, t.\"team_id\") IS DISTINCT FROM (r.r1, r.r2::text, r.r3)"
        );
        assert_eq!(s.label(), "r.r0::text");
        assert_eq!(s.staged_label(), "s.c0::text");
        assert_eq!(
            s.gone().unwrap(),
            "t.\"legacy_id\" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cutover_stage_1 s WHERE s.c0 = t.\"legacy_id\")"
        );
        assert!(s.unlinkable(&plan).is_none());
        assert!(s.gone_links(&plan).is_none());
        assert_eq!(
            s.count(),
            "SELECT count(*) FROM cutover_stage_1 WHERE NOT drop_"
        );
        assert_eq!(
            s.any_duplicates(),
            "SELECT EXISTS (SELECT 1 FROM cutover_stage_1 WHERE NOT drop_ GROUP BY c0 HAVING count(*) > 1) OR (SELECT count(*) FROM cutover_stage_1 a JOIN cutover_stage_1 b ON b.c0 = a.c0 WHERE NOT a.drop_ AND b.same_) > 0"
        );
        assert_eq!(
            s.dangling(11).unwrap(),
            "SELECT s.ctid::text, s.c0::text, (s.c3 IS NOT NULL AND p3.\"legacy_id\" IS NULL), s.c3::text, ((s.c3 IS NOT NULL AND p3.\"legacy_id\" IS NULL) AND s.c3 IN (SELECT q.c0 FROM cutover_stage_0 q WHERE q.drop_ AND NOT q.skip_ AND NOT q.same_)), s.row_ FROM cutover_stage_1 s LEFT JOIN \"public\".\"teams\" p3 ON p3.\"legacy_id\" = s.c3 WHERE NOT s.drop_ AND ((s.c3 IS NOT NULL AND p3.\"legacy_id\" IS NULL)) LIMIT 11"
        );
        assert_eq!(
            s.resolved_complete(),
            format!(
                "{} AND ((s.c3 IS NULL OR p3.\"legacy_id\" IS NOT NULL))",
                s.resolved()
            )
        );
        assert_eq!(
            s.drop_parent_rejected(3).unwrap(),
            "UPDATE cutover_stage_1 s SET drop_ = true, skip_ = false WHERE NOT s.drop_ AND s.c3 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM \"public\".\"teams\" p WHERE p.\"legacy_id\" = s.c3) AND s.c3 IN (SELECT q.c0 FROM cutover_stage_0 q WHERE q.drop_ AND NOT q.skip_ AND NOT q.same_)"
        );
        assert_eq!(s.identity_by_bytes(), Some(&[0][..]));
        assert!(Staging::new(&plan.tables[0], 0).dangling(11).is_none());
        assert_eq!(
            s.drop_unresolved(3, true).unwrap(),
            "UPDATE cutover_stage_1 s SET drop_ = true, skip_ = true WHERE NOT s.drop_ AND s.c3 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM \"public\".\"teams\" p WHERE p.\"legacy_id\" = s.c3)"
        );
        assert!(s.drop_unresolved(1, false).is_none());
        assert_eq!(
            s.as_target(),
            "r.r0 AS \"legacy_id\", r.r1 AS \"email\", r.r2 AS \"prefs\", r.r3 AS \"team_id\""
        );
    }

    #[test]
    fn coerced_columns_are_cast_where_written_and_compared_as_the_column() {
        use crate::pg::types::Coercion;
        let mut plan = plan();
        let users = &mut plan.tables[1];
        // email: staged as text for an interval(0) column; prefs: an array of a domain.
        users.stage[1].sql_type = "text".into();
        users.stage[1].compare_as_text = true;
        users.stage[1].coercion = Some(Coercion {
            staged: "text".into(),
            column: "interval(0)".into(),
            cast: Some("interval".into()),
            refusable: true,
        });
        users.stage[2].compare_as_text = false;
        users.stage[2].coercion = Some(Coercion {
            staged: "integer[]".into(),
            column: "public.posint[]".into(),
            cast: None,
            refusable: true,
        });
        let s = Staging::new(&plan.tables[1], 1);
        assert!(
            s.resolved()
                .starts_with("SELECT s.row_, s.fp_, s.c0 AS r0, s.c1::interval AS r1, s.c2 AS r2,"),
            "{}",
            s.resolved()
        );
        assert_eq!(
            s.compared_col(1),
            ("t.\"email\"::text".into(), "r.r1::interval(0)::text".into())
        );
        assert_eq!(
            s.compared_col(2),
            ("t.\"prefs\"".into(), "r.r2::public.posint[]".into())
        );
    }

    #[test]
    fn a_deferred_reference_never_dangles_while_staging() {
        let mut plan = plan();
        if let Some(r) = plan.tables[1].stage[3].reference.as_mut() {
            r.deferred = true;
        }
        let s = Staging::new(&plan.tables[1], 1);
        // Judged once every table is written (load/cycles.rs), not here.
        assert!(s.dangling(11).is_none());
        assert!(s.drop_unresolved(3, false).is_none());
        // Still resolved against what the target holds, and compared.
        assert!(s.resolved().contains("LEFT JOIN \"public\".\"teams\" p3"));
        assert_eq!(s.value_cols(), &[1, 2, 3]);
    }

    #[test]
    fn junction_sql() {
        let plan = plan();
        let s = Staging::new(&plan.tables[2], 2);
        assert_eq!(
            s.key_match(),
            "t.\"voter_id\" = r.r0 AND t.\"team_id\" = r.r1"
        );
        assert!(s.value_cols().is_empty());
        assert_eq!(
            s.label(),
            "'voter_id' || '=' || coalesce(r.r0::text, 'NULL') || ' ' || 'team_id' || '=' || coalesce(r.r1::text, 'NULL')"
        );
        assert!(s.gone().is_none());
        let unlink = s.unlinkable(&plan).unwrap();
        // Owners in the source with none of their links left out, ...
        assert!(unlink.starts_with(
            "t.\"voter_id\" IN (SELECT p.\"id\" FROM \"public\".\"users\" p JOIN cutover_stage_1 ps ON ps.c0 = p.\"legacy_id\" WHERE (NOT ps.drop_ OR ps.same_)
                 AND NOT EXISTS (SELECT 1 FROM cutover_stage_2 d WHERE d.drop_ AND d.c0 = ps.c0))"
        ), "{unlink}");
        // ... links between legacy rows only, ...
        assert!(unlink.contains(
            "AND EXISTS (SELECT 1 FROM \"public\".\"teams\" q WHERE q.\"id\" = t.\"team_id\" AND q.\"legacy_id\" IS NOT NULL)"
        ), "{unlink}");
        // ... that the source no longer has.
        assert!(unlink.ends_with(&format!(
            "AND NOT EXISTS (SELECT 1 FROM ({}) r WHERE t.\"voter_id\" = r.r0 AND t.\"team_id\" = r.r1)",
            s.resolved()
        )), "{unlink}");
        let pruned = s.gone_links(&plan).unwrap();
        assert!(pruned.contains("t.\"voter_id\" IN (SELECT p.\"id\" FROM \"public\".\"users\" p WHERE p.\"legacy_id\" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cutover_stage_1 ps WHERE ps.c0 = p.\"legacy_id\")) OR t.\"team_id\" IN"), "{pruned}");
        assert!(pruned.ends_with("AND EXISTS (SELECT 1 FROM \"public\".\"teams\" p WHERE p.\"id\" = t.\"team_id\" AND p.\"legacy_id\" IS NOT NULL)"), "{pruned}");
        assert!(s.drop_duplicates().contains(
            "PARTITION BY c0, c1 ORDER BY row_) AS n FROM cutover_stage_2 WHERE NOT drop_),"
        ));
    }
}
