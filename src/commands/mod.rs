//! The commands: each wires the stages together (mapping → plan → source → convert →
//! target → report) and decides the exit code.

mod export;

use crate::cli::{Cli, Command, Common, InspectArgs, LoadArgs, ModeArg, VerifyArgs};
use crate::connect::TargetUrl;
use crate::convert::reject::RejectRow;
use crate::error::{data, describe_pg, unavailable, usage};
use crate::extract::{self, Limits, Msg, Progress};
use crate::load::Report;
use crate::load::{self, Mode, Options};
use crate::mapping::{self, Mapping};
use crate::pg::catalog;
use crate::plan::{self, Plan};
use crate::report;
use crate::source::{self, Source, SourceSpec, SourceTable};
use anyhow::Context;
use cutover_scratch::Scratch;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use tokio::sync::mpsc;

pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Check(c) => check(c).await,
        Command::Load(l) => load_command(l).await,
        Command::Verify(v) => verify_command(v).await,
        Command::Export(e) => export::command(e).await,
        Command::Inspect(i) => inspect_command(i).await,
    }
}

/// Progress notes go to a terminal only: with --quiet, or when stderr is not a terminal
/// (a log, CI), a run prints nothing but its summary and its errors.
fn chatty(c: &Common) -> bool {
    !c.quiet && std::io::stderr().is_terminal()
}

/// The target: a URL, or a scratch cluster that lives as long as this value.
struct Target {
    url: TargetUrl,
    scratch: Option<Scratch>,
}

impl Target {
    async fn open(c: &Common) -> anyhow::Result<Option<Target>> {
        let given = match &c.target {
            Some(t) => Some(t.clone()),
            None => std::env::var("DATABASE_URL")
                .ok()
                .filter(|s| !s.trim().is_empty()),
        };
        let Some(given) = given else { return Ok(None) };
        if given != "scratch" {
            if c.schema.is_some() || c.keep_scratch {
                return Err(usage(
                    "--schema and --keep-scratch only apply with --target scratch",
                ));
            }
            return Ok(Some(Target {
                url: TargetUrl::parse(&given)?,
                scratch: None,
            }));
        }
        let Some(schema) = &c.schema else {
            return Err(usage(
                "--target scratch needs --schema FILE.sql: the SQL that creates the target schema (e.g. fixtures/podium/schema.sql)",
            ));
        };
        let sql = std::fs::read_to_string(schema)
            .map_err(|e| usage(format!("cannot read --schema {}: {e}", schema.display())))?;
        let keep = c.keep_scratch;
        let scratch = tokio::task::spawn_blocking(move || Scratch::start(keep))
            .await
            .context("starting the scratch cluster")??;
        let admin = TargetUrl::parse(&scratch.url("postgres"))?;
        let client = admin.connect().await?;
        client
            .batch_execute("CREATE DATABASE cutover")
            .await
            .map_err(|e| {
                unavailable(format!(
                    "creating the scratch database: {}",
                    describe_pg(&e)
                ))
            })?;
        drop(client);
        let url = TargetUrl::parse(&scratch.url("cutover"))?;
        let client = url.connect().await?;
        client.batch_execute(&sql).await.map_err(|e| {
            usage(format!(
                "applying --schema {} to the scratch database failed: {}",
                schema.display(),
                describe_pg(&e)
            ))
        })?;
        if chatty(c) {
            eprintln!(
                "scratch: PostgreSQL cluster started, schema {} applied",
                schema.display()
            );
        }
        Ok(Some(Target {
            url,
            scratch: Some(scratch),
        }))
    }

    fn require(t: Option<Target>) -> anyhow::Result<Target> {
        t.ok_or_else(|| usage("no target database: pass --target URL, set DATABASE_URL, or use --target scratch --schema FILE.sql"))
    }

    fn finish(self, keep: bool, quiet: bool) -> anyhow::Result<()> {
        if let Some(s) = self.scratch {
            if keep {
                // Dropping a kept cluster leaves it running.
                println!("scratch cluster kept running: {}", s.url("cutover"));
            } else {
                s.stop()?;
                if !quiet && std::io::stderr().is_terminal() {
                    eprintln!("scratch: cluster stopped and removed");
                }
            }
        }
        Ok(())
    }
}

fn source_spec(m: &Mapping, c: &Common) -> anyhow::Result<SourceSpec> {
    match &c.source {
        Some(s) => SourceSpec::parse(s),
        None => m.source.clone().ok_or_else(|| {
            usage(format!(
                "no source: pass --source sqlite:PATH or add a [source] section to {}",
                m.file.display()
            ))
        }),
    }
}

async fn open_source(
    spec: SourceSpec,
    opts: source::OpenOptions,
) -> anyhow::Result<(Box<dyn Source>, Vec<SourceTable>)> {
    tokio::task::spawn_blocking(move || {
        let s = source::open(&spec, &opts)?;
        let tables = s.tables()?;
        Ok::<_, anyhow::Error>((s, tables))
    })
    .await
    .context("opening the source")?
}

/// Mapping, source and target catalog bound into a plan.
async fn prepare(
    c: &Common,
    target: &Target,
) -> anyhow::Result<(Mapping, Plan, Box<dyn Source>, tokio_postgres::Client)> {
    let m = mapping::load(&c.mapping)?;
    let (source, tables) = open_source(source_spec(&m, c)?, c.from.open_options()).await?;
    let client = target.url.connect().await?;
    let cat = catalog::read(&client, &m.schema).await?;
    let plan = plan::bind(&m, &cat, &tables).map_err(|p| usage(p.to_string()))?;
    Ok((m, plan, source, client))
}

struct Bars {
    multi: MultiProgress,
    hidden: bool,
}

impl Bars {
    fn new(quiet: bool) -> Bars {
        let hidden = quiet || !std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        });
        Bars { multi, hidden }
    }
}

impl Progress for Bars {
    fn table(&self, name: &str, rows: u64) -> ProgressBar {
        if self.hidden {
            return ProgressBar::hidden();
        }
        let bar = self.multi.add(ProgressBar::new(rows));
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:>24} {bar:30} {human_pos}/{human_len} rows  {elapsed}",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix(name.to_string());
        bar
    }
}

/// Run the convert stage on its own thread and the load on this one.
async fn load_with(
    source: Box<dyn Source>,
    plan: &Plan,
    client: &mut tokio_postgres::Client,
    opts: &Options,
    keep_rejects: usize,
    quiet: bool,
) -> anyhow::Result<load::Outcome> {
    let (tx, mut rx) = mpsc::channel::<Msg>(8);
    let shared = Arc::new(plan.clone());
    let reader = std::thread::spawn(move || {
        let bars = Bars::new(quiet);
        extract::run(source, shared, tx, Limits { keep_rejects }, &bars)
    });
    let result = load::run(client, plan, &mut rx, opts).await;
    drop(rx);
    let read = reader
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the source reader crashed")));
    match (result, read) {
        (Ok(outcome), _) => Ok(outcome),
        // A source error explains a load that stopped for want of data; a reader that
        // stopped because the load failed explains nothing.
        (Err(e), Err(source_err)) if source_err.downcast_ref::<extract::Stopped>().is_some() => {
            Err(e)
        }
        (Err(_), Err(source_err)) => Err(source_err),
        (Err(e), Ok(())) => Err(e),
    }
}

async fn load_command(a: LoadArgs) -> anyhow::Result<i32> {
    let c = &a.common;
    let target = Target::require(Target::open(c).await?)?;
    let (m, plan, source, mut client) = prepare(c, &target).await?;
    let opts = Options {
        mode: match a.mode {
            ModeArg::Merge => Mode::Merge,
            ModeArg::Replace => Mode::Replace,
        },
        prune: a.prune,
        dry_run: a.dry_run,
        max_rejects: a.max_rejects,
        expect_revision: m.expect_revision.clone(),
        verify: a.verify,
        examples: 10,
    };
    if chatty(c) {
        eprintln!(
            "load: {} -> {}{}",
            source_spec(&m, c)?,
            target.url.redacted(),
            if a.dry_run {
                " (dry run: will roll back)"
            } else {
                ""
            }
        );
    }
    let keep = usize::try_from(a.max_rejects)
        .unwrap_or(usize::MAX)
        .saturating_add(1000);
    let outcome = load_with(source, &plan, &mut client, &opts, keep, c.quiet).await?;
    print_outcome(
        &outcome.report,
        &outcome.rejects,
        a.rejects.as_deref(),
        a.report.as_deref(),
    )?;
    let mut code = 0;
    if let Some(f) = outcome.failure {
        eprintln!("error: {f:#}");
        code = crate::error::exit_code(&f);
    } else if outcome.report.committed {
        println!("committed.");
    } else {
        println!("dry run: rolled back, the target is unchanged.");
    }
    // A scratch load is verified before the cluster goes away.
    if code == 0 && target.scratch.is_some() && !a.dry_run {
        let (_, plan, source, mut client) = prepare(c, &target).await?;
        code = verify_with(source, &plan, &mut client, &m, true, 10).await?;
    }
    drop(client);
    target.finish(c.keep_scratch, c.quiet)?;
    Ok(code)
}

fn print_outcome(
    r: &Report,
    rejects: &[RejectRow],
    rejects_file: Option<&std::path::Path>,
    report_file: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    print!("{}", report::render(r));
    if let Some(rebuilt) = &r.rebuilt {
        println!("bulk load into empty tables: {rebuilt}");
    }
    if !r.sequences_reset.is_empty() {
        println!("sequences reset: {}", r.sequences_reset.len());
    }
    if !rejects.is_empty() {
        println!(
            "rejected or skipped rows (first {}):",
            rejects.len().min(10)
        );
        for x in rejects.iter().take(10) {
            println!(
                "  {} {} {} = {}: {}",
                x.table, x.legacy_id, x.column, x.value, x.reason
            );
        }
    }
    for t in &r.tables {
        for e in t.verify.iter().flat_map(|d| &d.examples) {
            println!("  {}: {e}", t.table);
        }
    }
    if let Some(p) = rejects_file {
        report::write_rejects(p, rejects)?;
    }
    if let Some(p) = report_file {
        report::write_json(r, p)?;
    }
    Ok(())
}

async fn verify_command(v: VerifyArgs) -> anyhow::Result<i32> {
    let c = &v.common;
    let target = Target::require(Target::open(c).await?)?;
    let (m, plan, source, mut client) = prepare(c, &target).await?;
    let code = verify_with(source, &plan, &mut client, &m, c.quiet, v.show).await?;
    drop(client);
    target.finish(c.keep_scratch, c.quiet)?;
    Ok(code)
}

/// Compare the target with what the source maps to, row by row and column by column, in one
/// consistent snapshot of the target; nothing is written. Exit 1 on any difference.
async fn verify_with(
    source: Box<dyn Source>,
    plan: &Plan,
    client: &mut tokio_postgres::Client,
    m: &Mapping,
    quiet: bool,
    show: usize,
) -> anyhow::Result<i32> {
    let opts = Options {
        mode: Mode::Verify,
        prune: false,
        dry_run: true,
        max_rejects: u64::MAX,
        expect_revision: m.expect_revision.clone(),
        verify: false,
        examples: show,
    };
    let outcome = load_with(source, plan, client, &opts, show, quiet).await?;
    let mut bad = Vec::new();
    println!(
        "verify: {:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "table", "source", "equal", "differ", "missing", "extra", "left out"
    );
    for t in &outcome.report.tables {
        let d = t.verify.clone().unwrap_or_default();
        println!(
            "verify: {:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            t.table,
            t.read,
            d.equal,
            d.differ,
            d.missing,
            d.extra,
            t.rejected + t.skipped
        );
        if !d.is_clean() {
            bad.push(format!(
                "{}: {} differ, {} missing, {} extra",
                t.table, d.differ, d.missing, d.extra
            ));
        }
    }
    for t in &outcome.report.tables {
        for e in t.verify.iter().flat_map(|d| &d.examples) {
            println!("  {}: {e}", t.table);
        }
    }
    if !outcome.rejects.is_empty() {
        println!(
            "left out of the comparison (rejected or skipped), first {}:",
            outcome.rejects.len().min(show)
        );
        for x in outcome.rejects.iter().take(show) {
            println!(
                "  {} {} {} = {}: {}",
                x.table, x.legacy_id, x.column, x.value, x.reason
            );
        }
    }
    if bad.is_empty() {
        println!("verify: the target matches the source.");
        Ok(0)
    } else {
        let e = data(format!(
            "the target does not match the source: {}",
            bad.join("; ")
        ));
        eprintln!("error: {e:#}");
        Ok(1)
    }
}

async fn check(c: Common) -> anyhow::Result<i32> {
    let m = mapping::load(&c.mapping)?;
    let spec = source_spec(&m, &c)?;
    let (source, tables) = open_source(spec.clone(), c.from.open_options()).await?;
    let Some(target) = Target::open(&c).await? else {
        check_source_only(&m, &tables)?;
        println!(
            "mapping {} and source {} are consistent.",
            m.file.display(),
            spec
        );
        println!(
            "no target given (--target or DATABASE_URL): target tables, columns and types were not checked."
        );
        return Ok(0);
    };
    let client = target.url.connect().await?;
    let cat = catalog::read(&client, &m.schema).await?;
    let plan = plan::bind(&m, &cat, &tables).map_err(|p| usage(p.to_string()))?;
    if let Some(rev) = &m.expect_revision {
        let ok = client
            .query("SELECT version_num::text FROM alembic_version", &[])
            .await
            .map(|rows| rows.iter().any(|r| r.get::<_, String>(0) == *rev))
            .unwrap_or(false);
        if !ok {
            return Err(usage(format!(
                "the target is not at Alembic revision {rev} (expect_revision in the mapping): run `alembic upgrade head` or update the mapping"
            )));
        }
    }
    println!("load plan ({} -> {}):", spec, target.url.redacted());
    print!("{}", plan.describe());

    // Convert every source value without writing anything.
    let (tx, mut rx) = mpsc::channel::<Msg>(8);
    let shared = Arc::new(plan.clone());
    let quiet = c.quiet;
    let reader = std::thread::spawn(move || {
        extract::run(
            source,
            shared,
            tx,
            Limits { keep_rejects: 20 },
            &Bars::new(quiet),
        )
    });
    let mut rejected = 0u64;
    let mut examples = Vec::new();
    while let Some(msg) = rx.recv().await {
        if let Msg::End(ex) = msg {
            rejected += ex.rejected;
            examples.extend(ex.rejects);
        }
    }
    reader
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the source reader crashed")))?;
    drop(client);
    target.finish(c.keep_scratch, c.quiet)?;
    if rejected > 0 {
        println!("{rejected} source rows cannot be converted to the target's types; for example:");
        for x in examples.iter().take(20) {
            println!(
                "  {} {} {} = {}: {}",
                x.table, x.legacy_id, x.column, x.value, x.reason
            );
        }
        return Err(data(format!("{rejected} rows would be rejected")));
    }
    println!("check passed: every mapped value converts to its target column.");
    Ok(0)
}

fn check_source_only(m: &Mapping, tables: &[SourceTable]) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for t in &m.tables {
        match tables.iter().find(|s| s.name == t.from) {
            None => problems.push(mapping::Problem {
                line: t.line,
                key: format!("tables.{}.from", t.name),
                message: format!(
                    "source table `{}` does not exist{}",
                    t.from,
                    mapping::suggest::hint(&t.from, tables.iter().map(|s| s.name.as_str()))
                ),
            }),
            Some(s) => {
                for c in &t.columns {
                    if let mapping::Input::Field(f) = &c.input
                        && !s.fields.contains(f)
                    {
                        problems.push(mapping::Problem {
                            line: c.line,
                            key: format!("tables.{}.columns.{}.field", t.name, c.name),
                            message: format!(
                                "source table `{}` has no field `{f}`{}",
                                s.name,
                                mapping::suggest::hint(f, s.fields.iter().map(String::as_str))
                            ),
                        });
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(usage(
            mapping::Problems {
                file: m.file.clone(),
                list: problems,
            }
            .to_string(),
        ))
    }
}

async fn inspect_command(a: InspectArgs) -> anyhow::Result<i32> {
    let spec = SourceSpec::parse(&a.source)?;
    let s2 = spec.clone();
    let opts = a.from.open_options();
    let shapes = tokio::task::spawn_blocking(move || source::open(&s2, &opts)?.describe())
        .await
        .context("inspecting the source")??;
    print!("{}", crate::draft::render(&shapes));
    if let Some(path) = &a.emit_mapping {
        if path.exists() {
            return Err(usage(format!(
                "{} already exists: choose another --emit-mapping file, or remove it first",
                path.display()
            )));
        }
        let text = crate::draft::draft_mapping(&spec, &shapes);
        std::fs::write(path, text)
            .map_err(|e| unavailable(format!("cannot write {}: {e}", path.display())))?;
        println!(
            "starter mapping written to {}: review it, then `cutover check -m {} --target URL`",
            path.display(),
            path.display()
        );
    }
    Ok(0)
}
