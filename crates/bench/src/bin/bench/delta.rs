//! The delta refresh figure: a 100,000-record base served by the fake Airtable API (100–300 ms
//! per request, the real limit of 5 requests in any second), exported with `cutover export
//! --track-changes`; then 1 % of it changes (half edited, a quarter created, a quarter
//! deleted) and `cutover export --refresh` brings the snapshot up to date. The figure is the
//! refresh's wall time and requests against the full export's.

use super::measure;
use anyhow::{Result, bail};
use cutover_testkit::fake_airtable::{FakeAirtable, FakeConfig, Latency, fake_id, synthetic};
use serde::Serialize;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct Refresh {
    pub records: u64,
    pub changed: u64,
    pub full_wall_s: f64,
    pub full_requests: u64,
    pub refresh_wall_s: f64,
    pub refresh_requests: u64,
    /// refresh_wall_s / full_wall_s.
    pub wall_ratio: f64,
}

impl Refresh {
    pub fn line(&self) -> String {
        format!(
            "delta refresh: {} records, {} changed: full export {:.1} s ({} requests), refresh {:.1} s ({} requests): {:.1}% of the full export's time",
            self.records,
            self.changed,
            self.full_wall_s,
            self.full_requests,
            self.refresh_wall_s,
            self.refresh_requests,
            self.wall_ratio * 100.0
        )
    }
}

pub fn measure_refresh(
    cutover: &Path,
    dir: &Path,
    records: usize,
    timeout: Duration,
) -> Result<Refresh> {
    let base = "appBenchmarkBase2";
    let token = "patBENCHMARK.token";
    let mut config = FakeConfig::new(base, token);
    config.latency = Latency::Uniform(Duration::from_millis(100), Duration::from_millis(300));
    let name = "Records";
    let (meta, rows) = synthetic(name, records);
    config = config.with_table(meta, rows);
    let (url, fake) = FakeAirtable::start(config)?;
    let work = dir.join("delta");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let mapping = work.join("bench.toml");
    std::fs::write(
        &mapping,
        format!(
            "[source]\nkind = \"airtable\"\nbase = \"{base}\"\n\n[tables.records]\nfrom = \"{name}\"\nlegacy_id = \"@id\"\nlegacy_column = \"airtable_id\"\n[tables.records.columns]\nname = \"Name\"\n"
        ),
    )?;
    let snap = work.join("snapshot");
    let export = |extra: &[&str]| {
        let mut cmd = Command::new(cutover);
        cmd.args(["export", "--quiet", "-m"])
            .arg(&mapping)
            .args(extra)
            .env("AIRTABLE_API_URL", &url)
            .env("AIRTABLE_TOKEN", token)
            .env("TMPDIR", &work);
        cmd
    };
    let snap_s = snap.to_string_lossy().into_owned();
    let full = measure(
        export(&["--track-changes", "--out", &snap_s]),
        "delta-full-export",
        &work,
        timeout,
    )?;
    if !full.ok() {
        bail!("the full export failed:\n{}", full.tail());
    }
    let full_requests = fake.stats().requests;

    // 1 %: half edited, a quarter created, a quarter deleted.
    let table = fake_id("tbl", name, 0);
    let changed = (records / 100).max(4);
    let step = records / changed;
    for k in 0..changed / 2 {
        let rec = fake_id("rec", name, (k * step) as u64);
        fake.change_record(
            &table,
            &rec,
            serde_json::json!({"Name": format!("edited {k}")}),
        );
    }
    for k in 0..changed / 4 {
        let id = fake_id("rec", name, (records + k) as u64);
        fake.create_record(
            &table,
            serde_json::json!({"id": id, "createdTime": "2024-06-01T10:00:00.000Z",
                "fields": {"Name": format!("new {k}"), "Number": k}}),
        );
    }
    for k in 0..changed - changed / 2 - changed / 4 {
        let rec = fake_id("rec", name, (k * step + step / 2) as u64);
        fake.delete_record(&table, &rec);
    }
    let refresh = measure(
        export(&["--refresh", &snap_s]),
        "delta-refresh",
        &work,
        timeout,
    )?;
    if !refresh.ok() {
        bail!("the refresh failed:\n{}", refresh.tail());
    }
    let refresh_requests = fake.stats().requests - full_requests;
    Ok(Refresh {
        records: records as u64,
        changed: changed as u64,
        full_wall_s: full.wall_s,
        full_requests,
        refresh_wall_s: refresh.wall_s,
        refresh_requests,
        wall_ratio: refresh.wall_s / full.wall_s,
    })
}
