//! The Airtable extraction figure: a synthetic base served by the fake Airtable API with a
//! realistic 100–300 ms per request and the real 5-requests-in-any-second limit (30 s lock),
//! extracted by the real `cutover export` — records/s against the 500 records/s ceiling of
//! one base (5 requests/s × 100 records), and the requests and 429s the server saw.

use super::measure;
use anyhow::{Result, bail};
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig, Latency, synthetic};
use serde::Serialize;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct Extraction {
    pub records: u64,
    /// The whole `cutover export`: metadata, every page, the CSV files.
    pub wall_s: f64,
    pub records_per_s: f64,
    /// records_per_s against the 500 records/s ceiling.
    pub ceiling_share: f64,
    pub requests: u64,
    pub rate_limited: u64,
    /// The most requests the server saw in any rolling second.
    pub server_max_per_second: u32,
}

pub fn measure_export(
    cutover: &Path,
    dir: &Path,
    records: usize,
    timeout: Duration,
) -> Result<Extraction> {
    let base = "appBenchmarkBase1";
    let token = "patBENCHMARK.token";
    let mut config = FakeConfig::new(base, token);
    config.latency = Latency::Uniform(Duration::from_millis(100), Duration::from_millis(300));
    let names = ["Users", "Events", "Projects", "Votes"];
    let per_table = records / names.len();
    let mut mapping = format!("[source]\nkind = \"airtable\"\nbase = \"{base}\"\n");
    for name in names {
        let (meta, rows) = synthetic(name, per_table);
        config = config.with_table(meta, rows);
        mapping.push_str(&format!(
            "\n[tables.{t}]\nfrom = \"{name}\"\nlegacy_id = \"@id\"\nlegacy_column = \"airtable_id\"\n[tables.{t}.columns]\nname = \"Name\"\n",
            t = name.to_lowercase()
        ));
    }
    let (url, fake) = FakeAirtable::start(config)?;
    let work = dir.join("airtable");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let mapping_path = work.join("bench.toml");
    std::fs::write(&mapping_path, mapping)?;
    let mut cmd = Command::new(cutover);
    cmd.args(["export", "--quiet", "-m"])
        .arg(&mapping_path)
        .arg("--out")
        .arg(work.join("snapshot"))
        .env("AIRTABLE_API_URL", &url)
        .env("AIRTABLE_TOKEN", token);
    let m = measure(cmd, "airtable-export", &work, timeout)?;
    if !m.ok() {
        bail!(
            "cutover export from the fake Airtable API failed:\n{}",
            m.tail()
        );
    }
    let f = fake.stats();
    let total = (per_table * names.len()) as u64;
    let records_per_s = total as f64 / m.wall_s;
    Ok(Extraction {
        records: total,
        wall_s: m.wall_s,
        records_per_s,
        ceiling_share: records_per_s / 500.0,
        requests: f.requests,
        rate_limited: f.rate_limited,
        server_max_per_second: f.max_per_second,
    })
}
