//! The Airtable extraction figure: a synthetic base served by cutover's fake Airtable API with
//! a realistic 100–300 ms per request and the real 5-requests-in-any-second limit (30 s lock),
//! extracted by the real `AirtableSource` — records/s against the 500 records/s ceiling of one
//! base (5 requests/s × 100 records), and the number of 429s.

use cutover::source::airtable::fake::{FakeAirtable, FakeConfig, Latency, synthetic};
use cutover::source::airtable::{AirtableOptions, AirtableSource, Token};
use cutover::source::{Source, Wanted};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct Extraction {
    pub records: u64,
    pub wall_s: f64,
    pub records_per_s: f64,
    /// records_per_s against the 500 records/s ceiling.
    pub ceiling_share: f64,
    pub requests: u64,
    pub rate_limited: u64,
    pub retries: u64,
    /// The most requests the server saw in any rolling second.
    pub server_max_per_second: u32,
}

pub fn measure(records: usize) -> anyhow::Result<Extraction> {
    let base = "appBenchmarkBase1";
    let token = "patBENCHMARK.token";
    let mut config = FakeConfig::new(base, token);
    config.latency = Latency::Uniform(Duration::from_millis(100), Duration::from_millis(300));
    let names = ["Users", "Events", "Projects", "Votes"];
    for name in names {
        let (meta, rows) = synthetic(name, records / names.len());
        config = config.with_table(meta, rows);
    }
    let (url, fake) = FakeAirtable::start(config)?;
    let options = AirtableOptions {
        api_url: Some(url),
        ..AirtableOptions::default()
    };
    let mut src = AirtableSource::open(base, Token::new(token), options)?;
    let wanted: Vec<Wanted> = names
        .iter()
        .map(|t| Wanted {
            table: t.to_string(),
            fields: vec!["@id".into(), "Name".into(), "Number".into(), "Done".into()],
        })
        .collect();
    let started = Instant::now();
    src.prepare(&wanted)?;
    let wall_s = started.elapsed().as_secs_f64();
    let mut total = 0;
    for t in names {
        total += src.count(t)?;
    }
    let s = src.stats();
    let f = fake.stats();
    let records_per_s = total as f64 / wall_s;
    Ok(Extraction {
        records: total,
        wall_s,
        records_per_s,
        ceiling_share: records_per_s / 500.0,
        requests: s.extract_requests,
        rate_limited: s.rate_limited.max(f.rate_limited),
        retries: s.retries,
        server_max_per_second: f.max_per_second,
    })
}
