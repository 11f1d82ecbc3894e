//! The source rows behind the rejects (`--rejects-with-rows`), so that they can be fixed and
//! fed back: after the load, each table with rejects is read again from the same source —
//! the same consistent view of it (SQLite's read transaction, Airtable's spool, the
//! snapshot's files), with the same fields in the same order, so a row's position names the
//! same row — and each rejected row is kept as a JSON object of the fields the mapping
//! reads from it.

use crate::convert::reject::RejectRow;
use crate::plan::Plan;
use crate::source::{Record, Source};
use crate::value::Value;
use anyhow::Context;
use std::collections::HashMap;

/// Fill in `row` for every reject, reading `source` again off the async threads.
pub(crate) async fn fill(
    source: Box<dyn Source>,
    plan: &Plan,
    rejects: Vec<RejectRow>,
) -> anyhow::Result<Vec<RejectRow>> {
    let plan = plan.clone();
    tokio::task::spawn_blocking(move || {
        let mut source = source;
        let mut rejects = rejects;
        fill_from(source.as_mut(), &plan, &mut rejects)?;
        Ok::<_, anyhow::Error>(rejects)
    })
    .await
    .context("reading the rejected rows again")?
}

fn fill_from(
    source: &mut dyn Source,
    plan: &Plan,
    rejects: &mut [RejectRow],
) -> anyhow::Result<()> {
    for table in &plan.tables {
        let wanted: Vec<u64> = rejects
            .iter()
            .filter(|r| r.table == table.name)
            .map(|r| r.ordinal)
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let mut rows: HashMap<u64, String> = wanted.iter().map(|&n| (n, String::new())).collect();
        source.scan(&table.from, &table.fields, &mut |rec: &dyn Record| {
            if let Some(row) = rows.get_mut(&rec.ordinal()) {
                *row = as_json(rec, &table.fields);
            }
            Ok(())
        })?;
        for r in rejects.iter_mut().filter(|r| r.table == table.name) {
            r.row = rows.get(&r.ordinal).filter(|s| !s.is_empty()).cloned();
        }
    }
    Ok(())
}

/// A record as a JSON object of its fields in source order: text as strings (invalid UTF-8
/// replaced), bytes as `\x` and hex (as PostgreSQL writes bytea), numbers that JSON cannot
/// hold as strings.
fn as_json(rec: &dyn Record, fields: &[String]) -> String {
    let mut out = String::from("{");
    for (i, name) in fields.iter().enumerate() {
        let v = match rec.get(i) {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => b.into(),
            Value::Int(n) => n.into(),
            Value::Float(f) => serde_json::Number::from_f64(f)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| f.to_string().into()),
            Value::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
            Value::Blob(b) => {
                let mut s = String::from("\\x");
                for byte in b {
                    s.push_str(&format!("{byte:02x}"));
                }
                s.into()
            }
            Value::Json(j) => j.clone(),
        };
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::from(name.as_str()).to_string());
        out.push(':');
        out.push_str(&v.to_string());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rec(Vec<Value<'static>>);

    impl Record for Rec {
        fn ordinal(&self) -> u64 {
            1
        }
        fn get(&self, i: usize) -> Value<'_> {
            self.0.get(i).copied().unwrap_or(Value::Null)
        }
    }

    #[test]
    fn records_become_json_objects() {
        let rec = Rec(vec![
            Value::Int(8),
            Value::Text(b"not a date"),
            Value::Blob(&[0, 255]),
            Value::Float(f64::NAN),
            Value::Null,
        ]);
        let fields: Vec<String> = ["id", "created", "photo", "score", "phone"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            as_json(&rec, &fields),
            r#"{"id":8,"created":"not a date","photo":"\\x00ff","score":"NaN","phone":null}"#
        );
    }
}
