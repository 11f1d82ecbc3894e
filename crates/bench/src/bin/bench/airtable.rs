//! The Airtable extraction figures: a synthetic base served by the fake Airtable API with the
//! real 5-requests-in-any-second limit (30 s lock), counted when a request arrives, extracted
//! by the real `cutover export` — records/s against the 500 records/s ceiling of one base
//! (5 requests/s × 100 records), and the requests, 429s and locks the server saw. The
//! scenarios (`--only-airtable` runs them all): a realistic 100–300 ms per request; 0–100 ms
//! of arrival jitter; two cutover processes exporting the same base at once; one table of
//! 30,000 records at 500 ms per request.

use super::measure;
use anyhow::{Result, bail};
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig, Latency, synthetic};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One way the base is served and extracted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scenario {
    /// Four tables, 100–300 ms per request.
    Baseline,
    /// Four tables, each request arriving 0–100 ms late (its own draw), answered at once.
    Jitter,
    /// Two `cutover export` processes at once on the same four-table base.
    TwoProcesses,
    /// One table, 500 ms per request.
    BigTable,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::Baseline,
        Scenario::Jitter,
        Scenario::TwoProcesses,
        Scenario::BigTable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Baseline => "100-300 ms per request",
            Scenario::Jitter => "0-100 ms arrival jitter",
            Scenario::TwoProcesses => "two processes on one base, 100-300 ms",
            Scenario::BigTable => "one table at 500 ms per request",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Extraction {
    pub scenario: String,
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
    /// Times the base was locked (30 s each).
    pub locks: u64,
}

impl Extraction {
    pub fn line(&self) -> String {
        format!(
            "{}: {} records in {:.1} s: {:.0} records/s ({:.1}% of 500), {} requests, {} 429s, {} locks, server max {}/s",
            self.scenario,
            self.records,
            self.wall_s,
            self.records_per_s,
            self.ceiling_share * 100.0,
            self.requests,
            self.rate_limited,
            self.locks,
            self.server_max_per_second
        )
    }
}

pub fn measure_export(
    cutover: &Path,
    dir: &Path,
    records: usize,
    timeout: Duration,
) -> Result<Extraction> {
    measure_scenario(cutover, dir, Scenario::Baseline, records, timeout)
}

pub fn measure_scenario(
    cutover: &Path,
    dir: &Path,
    scenario: Scenario,
    records: usize,
    timeout: Duration,
) -> Result<Extraction> {
    let base = "appBenchmarkBase1";
    let token = "patBENCHMARK.token";
    let mut config = FakeConfig::new(base, token);
    let realistic = Latency::Uniform(Duration::from_millis(100), Duration::from_millis(300));
    config.latency = realistic;
    let four = ["Users", "Events", "Projects", "Votes"];
    let names: &[&str] = match scenario {
        Scenario::Baseline | Scenario::TwoProcesses => &four,
        Scenario::Jitter => {
            config.network = Latency::Uniform(Duration::ZERO, Duration::from_millis(100));
            config.latency = Latency::None;
            &four
        }
        Scenario::BigTable => {
            config.latency = Latency::Fixed(Duration::from_millis(500));
            &["Votes"]
        }
    };
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
    let export = |n: usize| {
        let mut cmd = Command::new(cutover);
        cmd.args(["export", "--quiet", "-m"])
            .arg(&mapping_path)
            .arg("--out")
            .arg(work.join(format!("snapshot-{n}")))
            .env("AIRTABLE_API_URL", &url)
            .env("AIRTABLE_TOKEN", token);
        cmd
    };
    let processes = if scenario == Scenario::TwoProcesses {
        2
    } else {
        1
    };
    let started = Instant::now();
    let runs: Vec<_> = (0..processes)
        .map(|n| {
            let cmd = export(n);
            let work: PathBuf = work.clone();
            std::thread::spawn(move || {
                measure(cmd, &format!("airtable-export-{n}"), &work, timeout)
            })
        })
        .collect();
    for r in runs {
        let m = r
            .join()
            .map_err(|_| anyhow::anyhow!("a measuring thread panicked"))??;
        if !m.ok() {
            bail!(
                "cutover export from the fake Airtable API failed:\n{}",
                m.tail()
            );
        }
    }
    // Every process's records, over the time until the last one finished.
    let wall_s = started.elapsed().as_secs_f64();
    let f = fake.stats();
    let total = (per_table * names.len() * processes) as u64;
    let records_per_s = total as f64 / wall_s;
    Ok(Extraction {
        scenario: scenario.name().to_string(),
        records: total,
        wall_s,
        records_per_s,
        ceiling_share: records_per_s / 500.0,
        requests: f.requests,
        rate_limited: f.rate_limited,
        server_max_per_second: f.max_per_second,
        locks: f.locks,
    })
}
