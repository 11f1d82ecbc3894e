//! The records a mapping selects from an Airtable table (`view`, `filter`) against the fake
//! API, which evaluates views and `filterByFormula` as Airtable does: every list request
//! carries them, also when a slow table is listed in ranges of record ids at once (each
//! range `AND(<filter>, <range>)`), and the records read are exactly those both select, in
//! the order the table is always read in.

use super::airtable_source::opts;
use crate::source::airtable::{AirtableOptions, AirtableSource, Token};
use crate::source::{Record, Selection, Source, Wanted};
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig, Latency, fake_id, synthetic};
use std::time::Duration;

const BASE: &str = "appSelectFixture1";
const TOKEN: &str = "patSELECTSECRET01.0123456789abcdef";

/// Alpha (`synthetic`: Number = i, Done on even rows) with a view "Early" of Number < 1500.
fn alpha(n: usize) -> (FakeConfig, String) {
    let (meta, records) = synthetic("Alpha", n);
    let table = meta["id"].as_str().unwrap().to_string();
    let mut c = FakeConfig::new(BASE, TOKEN)
        .with_table(meta, records)
        .with_view(&table, "Early", "{Number} < 1500");
    c.lock = Duration::from_secs(1);
    let view = fake_id("viw", &format!("{table}/Early"), 0);
    (c, view)
}

fn with(url: &str, table: &str, selection: Selection) -> AirtableOptions {
    AirtableOptions {
        selections: vec![(table.to_string(), selection)],
        ..opts(url)
    }
}

/// The record ids of Alpha the source reads, in order.
fn read(src: &mut AirtableSource) -> Vec<String> {
    src.prepare(&[Wanted {
        table: "Alpha".into(),
        fields: vec!["@id".into(), "Number".into()],
    }])
    .unwrap_or_else(|e| panic!("{e:#}"));
    let mut ids = Vec::new();
    src.scan("Alpha", &["@id".to_string()], &mut |r: &dyn Record| {
        if let crate::value::Value::Text(t) = r.get(0) {
            ids.push(String::from_utf8_lossy(t).into_owned());
        }
        Ok(())
    })
    .unwrap();
    ids
}

/// Alpha's ids in reading order, of the records `keep` says (by their Number).
fn expected(n: usize, keep: impl Fn(usize) -> bool) -> Vec<String> {
    let kept: std::collections::HashSet<String> = (0..n)
        .filter(|i| keep(*i))
        .map(|i| fake_id("rec", "Alpha", i as u64))
        .collect();
    super::airtable_source::expected_ids("Alpha", n)
        .into_iter()
        .filter(|id| kept.contains(id))
        .collect()
}

#[test]
fn a_filter_and_a_view_select_records_in_one_listing() {
    let (config, view) = alpha(600);
    let (url, fake) = FakeAirtable::start(config).unwrap();
    let selection = Selection {
        view: Some(view),
        filter: Some("{Done}".into()),
    };
    let mut src =
        AirtableSource::open(BASE, Token::new(TOKEN), with(&url, "Alpha", selection)).unwrap();
    let ids = read(&mut src);
    assert_eq!(ids, expected(600, |i| i % 2 == 0 && i < 1500));
    assert_eq!(ids.len(), 300);
    // Every page asked with the formula: 3 pages of 100.
    let seen = fake.stats();
    assert_eq!(seen.pages, 3, "{seen:?}");
    assert_eq!(seen.filtered, 3, "{seen:?}");
}

#[test]
fn a_slow_table_in_ranges_keeps_the_selection_in_every_range() {
    let (mut config, _) = alpha(2000);
    config.latency = Latency::Fixed(Duration::from_millis(500));
    let (url, fake) = FakeAirtable::start(config).unwrap();
    // The view by its name, and a filter that itself has commas and parentheses.
    let selection = Selection {
        view: Some("Early".into()),
        filter: Some("OR(AND({Done}, {Number} < 500), {Number} < 10)".into()),
    };
    let mut src =
        AirtableSource::open(BASE, Token::new(TOKEN), with(&url, "Alpha", selection)).unwrap();
    let ids = read(&mut src);
    let seen = fake.stats();
    // 255 records are 3 pages in one listing; listed in ranges at once, each range is at
    // least one page of its own, and every page was asked with the formula.
    assert!(seen.pages > 3, "{seen:?}");
    assert_eq!(seen.filtered, seen.pages, "{seen:?}");
    assert_eq!(seen.locks, 0, "{seen:?}");
    assert_eq!(ids, expected(2000, |i| (i % 2 == 0 && i < 500) || i < 10));
    assert_eq!(ids.len(), 255);
}

#[test]
fn a_table_named_by_its_id_gets_its_selection() {
    let (config, _) = alpha(300);
    let table = fake_id("tbl", "Alpha", 0);
    let (url, _fake) = FakeAirtable::start(config).unwrap();
    let selection = Selection {
        view: None,
        filter: Some("{Number} >= 250".into()),
    };
    let mut src =
        AirtableSource::open(BASE, Token::new(TOKEN), with(&url, &table, selection)).unwrap();
    assert_eq!(read(&mut src), expected(300, |i| i >= 250));
}

#[test]
fn an_unknown_view_or_a_bad_formula_fails_naming_the_table_and_the_key() {
    for (selection, says) in [
        (
            Selection {
                view: Some("Nope".into()),
                filter: None,
            },
            "`view` names no view of this table",
        ),
        (
            Selection {
                view: None,
                filter: Some("SOMETHING_ELSE({Number})".into()),
            },
            "`filter` is not a formula Airtable accepts",
        ),
    ] {
        let (config, _) = alpha(10);
        let (url, _fake) = FakeAirtable::start(config).unwrap();
        let mut src =
            AirtableSource::open(BASE, Token::new(TOKEN), with(&url, "Alpha", selection)).unwrap();
        let e = src
            .prepare(&[Wanted {
                table: "Alpha".into(),
                fields: vec!["@id".into()],
            }])
            .unwrap_err();
        let text = format!("{e:#}");
        assert!(text.contains("\"Alpha\"") && text.contains(says), "{text}");
        assert!(!text.contains("SELECTSECRET"), "{text}");
    }
}
