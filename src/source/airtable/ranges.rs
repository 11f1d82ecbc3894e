//! A table split into disjoint ranges of record ids, so that a large table can be paged by
//! several requests in flight at once, and the order its records are kept in.
//!
//! One listing pages one request at a time (each page's offset comes with the page before),
//! so at 500 ms per request one table gets 2 requests per second of the base's 5. Record ids
//! are `rec` and 14 random letters and digits (https://support.airtable.com/docs/understanding-airtable-ids), so the character after `rec`
//! splits a table into ranges of about equal size, each listed on its own with
//! `filterByFormula` and `REGEX_MATCH(RECORD_ID(), "^rec[…]")`
//! (https://support.airtable.com/docs/formula-field-reference). The last range is the
//! complement of the others (`NOT(…)`), so together they hold every record whatever its id.
//!
//! **The order.** Records are kept in one spool file per character class (`0`–`9`, `A`–`Z`,
//! `a`–`z`, then anything else), each in the order the API listed them, and read class by
//! class: a table is seen in its records' order by the character after `rec`, ties in the
//! API's order. That is the same whether the table was listed in one piece or in ranges, and
//! however the ranges' pages interleaved in time.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The characters after `rec` in a record id, in the order records are kept.
const ID_CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// One class per character, and one for anything else.
pub(crate) const CLASSES: usize = ID_CHARS.len() + 1;

/// The class of a record id.
pub(crate) fn class_of(id: &str) -> usize {
    id.as_bytes()
        .get(3)
        .and_then(|b| ID_CHARS.iter().position(|c| c == b))
        .unwrap_or(CLASSES - 1)
}

/// A range: the classes it holds and the formula that lists them (`None`: the whole table).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Range {
    pub classes: std::ops::Range<usize>,
    pub formula: Option<String>,
}

/// How many ranges each of `tables` tables listed at once is split into, at `rate` requests
/// per second and answers `round_trip` seconds after a request leaves: enough listings that
/// the rate is kept while each waits for its answer (the rate times the round trip, with
/// room for slower ones), shared among the tables, at most 8 per table. No more: each range
/// ends with a partial page, a request the whole table would not have needed.
pub(super) fn per_table(rate: f64, round_trip: f64, tables: usize) -> usize {
    if !round_trip.is_finite() || !rate.is_finite() {
        return 1;
    }
    let listings = (rate * round_trip.max(0.0) * 1.5).ceil().max(1.0);
    (listings / tables.max(1) as f64).ceil().clamp(1.0, 8.0) as usize
}

/// `k` ranges covering every class, in order.
pub(super) fn split(k: usize) -> Vec<Range> {
    let k = k.clamp(1, ID_CHARS.len());
    if k == 1 {
        return vec![Range {
            classes: 0..CLASSES,
            formula: None,
        }];
    }
    let chars = ID_CHARS.len();
    let bounds: Vec<usize> = (0..=k).map(|i| i * chars / k).collect();
    let class = |r: std::ops::Range<usize>| String::from_utf8_lossy(&ID_CHARS[r]).into_owned();
    (0..k)
        .map(|i| {
            if i + 1 < k {
                Range {
                    classes: bounds[i]..bounds[i + 1],
                    formula: Some(format!(
                        "REGEX_MATCH(RECORD_ID(), \"^rec[{}]\")",
                        class(bounds[i]..bounds[i + 1])
                    )),
                }
            } else {
                Range {
                    classes: bounds[i]..CLASSES,
                    formula: Some(format!(
                        "NOT(REGEX_MATCH(RECORD_ID(), \"^rec[{}]\"))",
                        class(0..bounds[i])
                    )),
                }
            }
        })
        .collect()
}

/// The formula a range of a table is listed with when the mapping selects records by
/// `filter` too: both must hold, `AND(<filter>, <range>)`.
pub(super) fn combine(user: Option<&str>, range: Option<&str>) -> Option<String> {
    match (user, range) {
        (None, r) => r.map(str::to_string),
        (Some(u), None) => Some(u.to_string()),
        (Some(u), Some(r)) => Some(format!("AND({u}, {r})")),
    }
}

/// The spool file of class `class` for a table whose spool name is `base`.
pub(crate) fn class_path(base: &Path, class: usize) -> PathBuf {
    let mut name = base.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{class:02}"));
    base.with_file_name(name)
}

/// The spool files one range writes: created when the first record of a class comes.
pub(super) struct ClassFiles {
    base: PathBuf,
    range: std::ops::Range<usize>,
    open: Vec<Option<BufWriter<File>>>,
}

impl ClassFiles {
    pub(super) fn new(base: &Path, range: std::ops::Range<usize>) -> ClassFiles {
        ClassFiles {
            base: base.to_path_buf(),
            range,
            open: (0..CLASSES).map(|_| None).collect(),
        }
    }

    /// Append a record (one JSON line) of `class`, which must be in this range.
    pub(super) fn write(&mut self, class: usize, line: &[u8]) -> anyhow::Result<()> {
        if !self.range.contains(&class) {
            anyhow::bail!("a record outside the range asked for");
        }
        let path = class_path(&self.base, class);
        let w = match &mut self.open[class] {
            Some(w) => w,
            slot => slot.insert(BufWriter::new(super::spool::create(&path)?)),
        };
        w.write_all(line)
            .and_then(|_| w.write_all(b"\n"))
            .map_err(|e| anyhow::anyhow!("cannot write the spool file {}: {e}", path.display()))
    }

    /// Throw away what was written (the listing starts again).
    pub(super) fn reset(&mut self) {
        for class in self.range.clone() {
            if self.open[class].take().is_some() {
                let _ = std::fs::remove_file(class_path(&self.base, class));
            }
        }
    }

    /// Flush everything; the classes written, in order.
    pub(super) fn finish(mut self) -> anyhow::Result<Vec<usize>> {
        let mut done = Vec::new();
        for class in self.range.clone() {
            if let Some(mut w) = self.open[class].take() {
                w.flush().map_err(|e| {
                    anyhow::anyhow!(
                        "cannot write the spool file {}: {e}",
                        class_path(&self.base, class).display()
                    )
                })?;
                done.push(class);
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_listed_together_share_the_listings_needed() {
        // 500 ms answers: 4 listings keep 5 requests per second going.
        assert_eq!(per_table(5.0, 0.5, 1), 4);
        assert_eq!(per_table(5.0, 0.5, 2), 2);
        // 100-300 ms: four tables are enough listings on their own.
        assert_eq!(per_table(5.0, 0.2, 4), 1);
        assert_eq!(per_table(5.0, 0.2, 1), 2);
        assert_eq!(per_table(5.0, 0.01, 1), 1);
        assert_eq!(per_table(5.0, 5.0, 1), 8);
        assert_eq!(per_table(5.0, f64::INFINITY, 1), 1);
    }

    #[test]
    fn a_filter_and_a_range_must_both_hold() {
        assert_eq!(combine(None, None), None);
        assert_eq!(combine(Some("{A}"), None).as_deref(), Some("{A}"));
        let r = split(2);
        let f = r[0].formula.as_deref();
        assert_eq!(combine(None, f).as_deref(), f);
        assert_eq!(
            combine(Some("OR({A}, {B} > 1)"), f).unwrap(),
            format!("AND(OR({{A}}, {{B}} > 1), {})", f.unwrap())
        );
    }

    #[test]
    fn ranges_cover_every_class_once() {
        for k in [1, 2, 3, 4, 8, 62, 100] {
            let ranges = split(k);
            let mut next = 0;
            for r in &ranges {
                assert_eq!(r.classes.start, next, "{k}: {ranges:?}");
                next = r.classes.end;
            }
            assert_eq!(next, CLASSES);
        }
        let r = split(4);
        assert_eq!(
            r[0].formula.as_deref(),
            Some(r#"REGEX_MATCH(RECORD_ID(), "^rec[0123456789ABCDE]")"#)
        );
        assert!(r[3].formula.as_deref().unwrap().starts_with("NOT("));
        assert_eq!(class_of("rec0xx"), 0);
        assert_eq!(class_of("reczxx"), 61);
        assert_eq!(class_of("rec-xx"), 62);
        assert_eq!(class_of("re"), 62);
    }
}
