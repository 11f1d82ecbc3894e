//! Measures the Airtable extractor's request rate against the 5/s ceiling: a fake base of
//! 20,000 records in four tables (200 pages), extracted concurrently through the fake
//! server with its real 5-in-any-rolling-second limit and 30 s lock. Prints requests, 429s,
//! retries and achieved requests/s. Run: `cargo run --release --example airtable-rate
//! [RECORDS] [LATENCY_MS_LOW LATENCY_MS_HIGH]`.

use cutover::source::Source;
use cutover::source::Wanted;
use cutover::source::airtable::fake::{FakeAirtable, FakeConfig, Latency, synthetic};
use cutover::source::airtable::{AirtableOptions, AirtableSource, Token};
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let total: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let latency = match (
        args.get(1).and_then(|s| s.parse::<u64>().ok()),
        args.get(2).and_then(|s| s.parse::<u64>().ok()),
    ) {
        (Some(lo), Some(hi)) => {
            Latency::Uniform(Duration::from_millis(lo), Duration::from_millis(hi))
        }
        (Some(lo), None) => Latency::Fixed(Duration::from_millis(lo)),
        _ => Latency::None,
    };
    let base = "appRateBenchmark1";
    let token = "patBENCHMARK.token";
    let mut config = FakeConfig::new(base, token);
    config.latency = latency;
    let names = ["Users", "Events", "Projects", "Votes"];
    for name in names {
        let (meta, records) = synthetic(name, total / names.len());
        config = config.with_table(meta, records);
    }
    let (url, fake) = FakeAirtable::start(config)?;
    let options = AirtableOptions {
        api_url: Some(url),
        ..AirtableOptions::default()
    };
    let mut src = AirtableSource::open(base, Token::new(token), options)?;
    let started = Instant::now();
    let wanted: Vec<Wanted> = names
        .iter()
        .map(|t| Wanted {
            table: t.to_string(),
            fields: vec!["@id".into(), "Name".into(), "Number".into(), "Done".into()],
        })
        .collect();
    src.prepare(&wanted)?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut records = 0;
    for t in names {
        records += src.count(t)?;
    }
    let s = src.stats();
    let f = fake.stats();
    println!(
        "records {records} in {elapsed:.1} s; client: {} requests during extraction ({} in all), \
         {} 429s, {} retries, {:.2} requests/s (ceiling 5, {:.0}%), {:.0} records/s; \
         server: max {} requests in any rolling second, {} 429s",
        s.extract_requests,
        s.requests,
        s.rate_limited,
        s.retries,
        s.requests_per_second(),
        s.requests_per_second() / 5.0 * 100.0,
        records as f64 / elapsed,
        f.max_per_second,
        f.rate_limited
    );
    Ok(())
}
