//! Before a command reads a row: the mapping read, the source opened, and (with a target)
//! the mapping bound to the source's tables and the target's catalog into a plan.

use super::progress::Notes;
use super::record::source_ref;
use super::target::Target;
use crate::cli::Common;
use crate::error::usage;
use crate::mapping::{self, Mapping};
use crate::pg::catalog;
use crate::plan::{self, Plan};
use crate::report::json::Run;
use crate::source::{self, Source, SourceSpec, SourceTable};
use anyhow::Context;

/// The source to read: `--source`, else the mapping's `[source]` section.
pub(crate) fn source_spec(m: &Mapping, given: Option<&str>) -> anyhow::Result<SourceSpec> {
    match given {
        Some(s) => SourceSpec::parse(s),
        None => m.source.clone().ok_or_else(|| {
            usage(format!(
                "no source: pass --source sqlite:PATH or add a [source] section to {}",
                m.file.display()
            ))
        }),
    }
}

/// How to open the source for mapping `m`: `base` (from the command line) with the records
/// the mapping selects (`view`, `filter`), refused at their lines on a source that cannot
/// select them.
pub(crate) fn open_options(
    base: source::OpenOptions,
    m: &Mapping,
    spec: &SourceSpec,
) -> anyhow::Result<source::OpenOptions> {
    let problems = m.selection_problems(spec);
    if !problems.is_empty() {
        return Err(usage(
            mapping::Problems {
                file: m.file.clone(),
                list: problems,
            }
            .to_string(),
        ));
    }
    Ok(source::OpenOptions {
        selections: m.selections(),
        ..base
    })
}

/// Open the source and list its tables, off the async threads (it may block on files or
/// the network).
pub(crate) async fn open_source(
    spec: SourceSpec,
    opts: source::OpenOptions,
) -> anyhow::Result<(Box<dyn Source>, Vec<SourceTable>)> {
    tokio::task::spawn_blocking(move || {
        let s = source::open(&spec, &opts)?;
        let mut tables = s.tables()?;
        if let SourceSpec::Snapshot(dir) = &spec {
            airtable_ids(dir, &mut tables);
        }
        Ok::<_, anyhow::Error>((s, tables))
    })
    .await
    .context("opening the source")?
}

/// Tell the source which attachment fields the mapping keeps as files (`attachments`).
/// A source field is read one way for every column: all its columns keep its attachments
/// the same way, or none does.
pub(crate) fn keep_attachments(m: &Mapping, source: &mut dyn Source) -> anyhow::Result<()> {
    for t in &m.tables {
        for c in &t.columns {
            let mapping::Input::Field(f) = &c.input else {
                continue;
            };
            if let Some(other) = t.columns.iter().find(|o| {
                matches!(&o.input, mapping::Input::Field(g) if g == f)
                    && o.attachments != c.attachments
            }) && c.attachments.is_some()
            {
                return Err(usage(format!(
                    "{}:{}: tables.{}.columns.{}: `attachments`: field `{f}` is also read by \
                     column `{}` (line {}) with another `attachments` (or none); a field's \
                     attachments are kept one way for all its columns",
                    m.file.display(),
                    c.line,
                    t.name,
                    c.name,
                    other.name,
                    other.line
                )));
            }
        }
        for c in &t.columns {
            if let (Some(keep), mapping::Input::Field(f)) = (&c.attachments, &c.input) {
                source.keep_attachments(&t.from, f, keep).map_err(|e| {
                    usage(format!(
                        "{}:{}: tables.{}.columns.{}: {e:#}",
                        m.file.display(),
                        c.line,
                        t.name,
                        c.name
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// A snapshot of an Airtable base keeps the base's metadata beside its tables
/// (`airtable-meta.json`): its tables and fields get their `tbl…` and `fld…` ids from it,
/// so a mapping that names them by id reads the snapshot as it reads the base.
fn airtable_ids(dir: &std::path::Path, tables: &mut [SourceTable]) {
    let Ok(text) = std::fs::read_to_string(dir.join("airtable-meta.json")) else {
        return;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    let Ok(schema) = source::airtable::BaseSchema::parse(&json, "the snapshot's metadata") else {
        return;
    };
    for t in tables.iter_mut() {
        let Some(ts) = schema.tables.iter().find(|s| s.name == t.name) else {
            continue;
        };
        t.id = Some(ts.id.clone());
        t.field_ids = t
            .fields
            .iter()
            .map(|f| {
                ts.fields
                    .iter()
                    .find(|x| x.name == *f)
                    .map(|x| x.id.clone())
            })
            .collect();
    }
}

/// Everything a load or a verify starts from.
pub(crate) struct Prepared {
    pub(crate) mapping: Mapping,
    pub(crate) spec: SourceSpec,
    pub(crate) plan: Plan,
    pub(crate) source: Box<dyn Source>,
    pub(crate) client: tokio_postgres::Client,
}

/// Mapping, source and target catalog bound into a plan.
pub(crate) async fn prepare(c: &Common, target: &Target) -> anyhow::Result<Prepared> {
    let mapping = mapping::load(&c.mapping)?;
    let spec = source_spec(&mapping, c.source.as_deref())?;
    let open = open_options(c.from.open_options(), &mapping, &spec)?;
    let (mut source, tables) = open_source(spec.clone(), open).await?;
    keep_attachments(&mapping, source.as_mut())?;
    let client = target.url.connect().await?;
    let cat = catalog::read(&client, &mapping.schema).await?;
    let plan = plan::bind(&mapping, &cat, &tables).map_err(|p| usage(p.to_string()))?;
    Ok(Prepared {
        mapping,
        spec,
        plan,
        source,
        client,
    })
}

/// The target a load or a verify writes to or reads, and everything it starts from, each
/// noted in the run's record as soon as it is known (so a failure's report names them).
pub(crate) async fn prepare_run(
    c: &Common,
    notes: Notes,
    run: &mut Run,
) -> anyhow::Result<(Target, Prepared)> {
    let target = Target::required(c, notes).await?;
    run.target = Some(target.url.redacted());
    let p = prepare(c, &target).await?;
    run.source = Some(source_ref(&p.spec));
    run.alembic_revision = catalog::alembic_revision_of(&p.client, &p.mapping.schema).await;
    Ok((target, p))
}
