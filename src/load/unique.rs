//! Source rows that collide on a unique key of the target other than their legacy id — an
//! email, a slug, `lower(email)`, `(voter_id, project_id)` — settled by the mapping's
//! `on_duplicate` policy (per table, or per key under `on_duplicate_key`).
//!
//! Looked for only when writing a table failed, or when one of its unique keys set aside for
//! the bulk load could not be rebuilt: the write is then undone and every unique key of the
//! table is searched, one after the other, over the staged rows not dropped and the target's
//! rows that they do not replace. Under `error` the load fails naming every colliding key and
//! the legacy ids behind it, so one run shows them all; under `keep_first` / `keep_last` a
//! row already in the target stays (it cannot be changed by rejecting another), otherwise the
//! row first / last in source order; the others are rejected as `duplicate_key`, naming the
//! key and the value. The write is then run again.

use super::{TableReport, table_error};
use crate::convert::reject::{Code, RejectRow};
use crate::error::data;
use crate::mapping::OnDuplicate;
use crate::pg::sql::ident;
use crate::plan::staging::Staging;
use crate::plan::{TableKind, TablePlan};
use tokio_postgres::Transaction;

/// More colliding rows than this for one key are not settled row by row: the load fails.
const COLLIDING_IN_MEMORY: i64 = 100_000;
/// Groups of colliding rows shown per key when the load fails.
const SHOWN: usize = 5;

/// A unique key as expressions over the table's columns, and the predicate of a partial
/// unique index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UniqueKey {
    /// The constraint's or index's name (unqualified), as the mapping names it.
    pub(crate) name: String,
    exprs: Vec<String>,
    predicate: Option<String>,
}

impl UniqueKey {
    /// From a definition: `PRIMARY KEY (id)`, `UNIQUE (a, b)` or `CREATE UNIQUE INDEX … USING
    /// btree (lower((email)::text)) WHERE (…)`. None for anything it cannot read plainly
    /// (sort orders, operator classes, collations).
    pub(crate) fn from_def(name: &str, def: &str) -> Option<UniqueKey> {
        let start = def.find(" USING ").unwrap_or_default();
        let open = start + def[start..].find('(')?;
        let close = open + closing(&def[open..])?;
        let inner = &def[open + 1..close];
        if inner.contains(" DESC")
            || inner.contains(" ASC")
            || inner.contains("_ops")
            || inner.contains(" COLLATE ")
        {
            return None;
        }
        let rest = &def[close + 1..];
        if rest.contains(" INCLUDE ") && !rest.trim_start().starts_with("INCLUDE") {
            return None;
        }
        let predicate = rest
            .find(" WHERE ")
            .map(|w| rest[w + 7..].trim().to_string());
        Some(UniqueKey {
            name: name.to_string(),
            exprs: split_top(inner),
            predicate,
        })
    }

    /// Whether it is on `column` alone, over every row (no predicate).
    pub(crate) fn is_on(&self, column: &str) -> bool {
        self.predicate.is_none()
            && matches!(self.exprs.as_slice(), [e] if *e == column || *e == crate::pg::sql::ident(column))
    }

    /// `(a, lower((email)::text))`, as PostgreSQL's DETAIL names a key.
    fn shown(&self) -> String {
        format!("({})", self.exprs.join(", "))
    }
}

/// The offset of the parenthesis closing the one `s` starts with.
fn closing(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quoted = false;
    for (i, ch) in s.char_indices() {
        match ch {
            '\'' | '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `a, lower((b)::text)` split at its top-level commas.
fn split_top(s: &str) -> Vec<String> {
    let (mut out, mut depth, mut quoted, mut from) = (Vec::new(), 0usize, false, 0);
    for (i, ch) in s.char_indices() {
        match ch {
            '\'' | '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                out.push(s[from..i].trim().to_string());
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[from..].trim().to_string());
    out
}

/// The unique keys of `table` in the catalog now (those not set aside).
pub(crate) async fn present(
    tx: &Transaction<'_>,
    table: &TablePlan,
) -> anyhow::Result<Vec<UniqueKey>> {
    let rows = tx
        .query(
            "SELECT c.relname::text, pg_get_indexdef(i.indexrelid)
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = $1::text::regclass AND i.indisunique
              ORDER BY NOT i.indisprimary, 1",
            &[&table.qualified],
        )
        .await
        .map_err(|e| table_error(&e, table, "reading its unique keys"))?;
    Ok(rows
        .iter()
        .filter_map(|r| UniqueKey::from_def(&r.get::<_, String>(0), &r.get::<_, String>(1)))
        .collect())
}

/// What searching a table's unique keys found.
#[derive(Debug, Default)]
pub(crate) struct Settled {
    /// Rows were rejected under `keep_first` / `keep_last`.
    pub(crate) rejected: bool,
    /// Keys whose policy is `error` have colliding rows: why the load must fail, naming
    /// every such key and the legacy ids behind it (see [`refusal`]).
    pub(crate) refused: Option<String>,
}

/// Search every key of `keys` for staged rows that collide, and settle them by the table's
/// policy: rows that lose under `keep_first` / `keep_last` are rejected; the keys whose
/// policy is `error` are named in [`Settled::refused`].
pub(crate) async fn settle(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    keys: &[UniqueKey],
    t: &mut TableReport,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<Settled> {
    let table = staging.table();
    let TableKind::Entity { match_column } = &table.kind else {
        return Ok(Settled::default());
    };
    let mut refused: Vec<String> = Vec::new();
    let mut settled = false;
    for key in keys {
        // The legacy id's own key: duplicate legacy ids were rejected while resolving.
        if key.exprs.len() == 1
            && (key.exprs[0] == *match_column || key.exprs[0] == ident(match_column))
        {
            continue;
        }
        let policy = table.on_duplicate.of(&key.name);
        let Some(groups) = collisions(tx, staging, match_column, key, policy).await? else {
            continue;
        };
        if groups.is_empty() {
            continue;
        }
        if policy == OnDuplicate::Error {
            let mut lines: Vec<String> = groups
                .iter()
                .take(SHOWN)
                .map(|g| {
                    let ids: Vec<&str> = g.rows.iter().map(|r| r.label.as_str()).collect();
                    format!(
                        "    {} {}={}: legacy ids {}",
                        key.name,
                        key.shown(),
                        g.value,
                        ids.join(", ")
                    )
                })
                .collect();
            if groups.len() > SHOWN {
                lines.push(format!(
                    "    … and {} more values of {}",
                    groups.len() - SHOWN,
                    key.name
                ));
            }
            refused.push(lines.join("\n"));
            continue;
        }
        let mut losers: Vec<i64> = Vec::new();
        for g in &groups {
            let Some((winner, rest)) = g.rows.split_first() else {
                continue;
            };
            for r in rest {
                let Some(row) = r.row else { continue };
                losers.push(row);
                let kept = match (winner.old, winner.row) {
                    (true, _) | (_, None) => format!(
                        "the target already has a row with this key (legacy id {})",
                        winner.label
                    ),
                    (false, Some(_)) => format!(
                        "legacy id {}, {} in the source, is kept (on_duplicate = \"{}\")",
                        winner.label,
                        if policy == OnDuplicate::KeepFirst {
                            "earlier"
                        } else {
                            "later"
                        },
                        policy.as_str()
                    ),
                };
                rejects.push(RejectRow {
                    table: table.name.clone(),
                    source: table.from.clone(),
                    legacy_id: r.label.clone(),
                    column: key.name.clone(),
                    value: g.value.clone(),
                    code: Code::DuplicateKey,
                    reason: format!(
                        "duplicate on unique key {} {}={}: {kept}",
                        key.name,
                        key.shown(),
                        g.value
                    ),
                    ordinal: u64::try_from(row).unwrap_or_default(),
                    row: None,
                });
            }
        }
        if !losers.is_empty() {
            let n = tx
                .execute(&staging.drop_rows_at(), &[&losers])
                .await
                .map_err(|e| {
                    table_error(&e, table, "rejecting rows that collide on a unique key")
                })?;
            t.rejected += n;
            settled = true;
        }
    }
    let mut out = Settled {
        rejected: settled,
        refused: None,
    };
    if !refused.is_empty() {
        let example = table
            .on_duplicate
            .keys
            .first()
            .map(|(k, _)| k.clone())
            .or_else(|| {
                keys.iter()
                    .find(|k| {
                        refused
                            .iter()
                            .any(|r| r.contains(&format!("    {} (", k.name)))
                    })
                    .map(|k| k.name.clone())
            })
            .unwrap_or_default();
        out.refused = Some(format!(
            "table `{name}`: source rows collide on unique keys of the target:\n{list}\n  to keep one row per key and reject the others, set on_duplicate = \"keep_first\" (or \"keep_last\") under [tables.{name}], or for one key under [tables.{name}.on_duplicate_key], e.g. \"{example}\" = \"keep_first\"",
            name = table.name,
            list = refused.join("\n"),
        ));
    }
    Ok(out)
}

/// The load's error for the tables' refused keys, `why` (one [`Settled::refused`] or more).
pub(crate) fn refusal(why: &str) -> anyhow::Error {
    data(format!(
        "{why}\n  Nothing was committed; fix these rows in the source, or choose a policy in the mapping as above."
    ))
}

/// Rows of one group that share a key value, the one that stays first.
struct Group {
    value: String,
    rows: Vec<Member>,
}

struct Member {
    label: String,
    /// The staged row's source position; None for a target row the load does not replace.
    row: Option<i64>,
    /// Already in the target (by legacy id): it stays ahead of rows new to it.
    old: bool,
}

/// The groups of rows colliding on `key`: staged rows not dropped, and target rows that no
/// staged row replaces. None when the key cannot be evaluated over the mapped columns (it
/// uses a column the mapping does not fill).
async fn collisions(
    tx: &Transaction<'_>,
    staging: &Staging<'_>,
    match_column: &str,
    key: &UniqueKey,
    policy: OnDuplicate,
) -> anyhow::Result<Option<Vec<Group>>> {
    let table = staging.table();
    let cols: Vec<String> = table.stage.iter().map(|c| ident(&c.target)).collect();
    let m = ident(match_column);
    let rows = format!(
        "SELECT {as_target}, {label} AS cutover_label_, r.row_ AS cutover_row_,
                r.r0 IN (SELECT t.{m} FROM {tt} t) AS cutover_old_ FROM ({resolved}) r
         UNION ALL
         SELECT {cols}, coalesce(t.{m}::text, '(a row without legacy id)'), NULL::bigint, true FROM {tt} t
          WHERE t.{m} IS NULL OR NOT EXISTS (SELECT 1 FROM {s} s WHERE s.c0 = t.{m} AND NOT s.drop_)",
        as_target = staging.as_target(),
        label = staging.label(),
        resolved = staging.resolved(),
        cols = cols.iter().map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", "),
        tt = table.qualified,
        s = staging.name(),
    );
    let exprs = key.exprs.join(", ");
    let mut filter: Vec<String> = key
        .exprs
        .iter()
        .map(|e| format!("({e}) IS NOT NULL"))
        .collect();
    if let Some(p) = &key.predicate {
        filter.push(format!("({p})"));
    }
    // Rows already in the target first (they stay), then source order.
    let order = match policy {
        OnDuplicate::KeepLast => "d.cutover_old_ DESC, d.cutover_row_ DESC NULLS FIRST",
        _ => "d.cutover_old_ DESC, d.cutover_row_ ASC NULLS FIRST",
    };
    let sql = format!(
        "SELECT cutover_label_, cutover_row_, v, cutover_old_ FROM (
            SELECT d.cutover_label_, d.cutover_row_, d.cutover_old_, ROW({exprs})::text AS v,
                   row_number() OVER (PARTITION BY {exprs} ORDER BY {order}) AS n,
                   count(*) OVER (PARTITION BY {exprs}) AS c
              FROM ({rows}) d WHERE {filter}) x
          WHERE c > 1 ORDER BY v, n LIMIT {}",
        COLLIDING_IN_MEMORY + 1,
        filter = filter.join(" AND "),
    );
    tx.batch_execute("SAVEPOINT cutover_unique_key")
        .await
        .map_err(|e| table_error(&e, table, "searching its unique keys"))?;
    let found = match tx.query(&sql, &[]).await {
        Ok(found) => found,
        Err(_) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT cutover_unique_key")
                .await
                .map_err(|e| table_error(&e, table, "searching its unique keys"))?;
            return Ok(None);
        }
    };
    tx.batch_execute("RELEASE SAVEPOINT cutover_unique_key")
        .await
        .map_err(|e| table_error(&e, table, "searching its unique keys"))?;
    if found.len() as i64 > COLLIDING_IN_MEMORY {
        return Err(data(format!(
            "table `{}`: more than {COLLIDING_IN_MEMORY} source rows collide on its unique key {} {}; nothing was committed. Fix the source, or the mapping's rules for these columns.",
            table.name,
            key.name,
            key.shown()
        )));
    }
    let mut groups: Vec<Group> = Vec::new();
    for r in found {
        let value: String = r.get(2);
        let member = Member {
            label: r.get(0),
            row: r.get(1),
            old: r.get(3),
        };
        match groups.last_mut() {
            Some(g) if g.value == value => g.rows.push(member),
            _ => groups.push(Group {
                value,
                rows: vec![member],
            }),
        }
    }
    Ok(Some(groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unique_keys() {
        let k = UniqueKey::from_def(
            "votes_voter_id_project_id_key",
            "UNIQUE (voter_id, project_id)",
        )
        .unwrap();
        assert_eq!(k.exprs, ["voter_id", "project_id"]);
        assert_eq!(k.predicate, None);
        let k = UniqueKey::from_def(
            "ix_users_email_lower",
            "CREATE UNIQUE INDEX ix_users_email_lower ON public.users USING btree (lower((email)::text)) WHERE (deleted_at IS NULL)",
        )
        .unwrap();
        assert_eq!(k.exprs, ["lower((email)::text)"]);
        assert_eq!(k.predicate.as_deref(), Some("(deleted_at IS NULL)"));
        assert_eq!(k.shown(), "(lower((email)::text))");
        assert!(
            UniqueKey::from_def("x", "CREATE UNIQUE INDEX x ON t USING btree (a DESC)").is_none()
        );
        assert_eq!(
            split_top("a, coalesce(b, 'x,y'), f((c)::text, d)"),
            ["a", "coalesce(b, 'x,y')", "f((c)::text, d)"]
        );
    }
}
