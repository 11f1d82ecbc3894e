//! The target database of a run: the URL given (`--target URL` or `$DATABASE_URL`), or a
//! throwaway scratch cluster (`--target scratch --schema FILE.sql`, or `--schema-from URL`)
//! that lives as long as the run and is let go of at its end.

use super::outcome::Output;
use super::progress::Notes;
use super::schema::{self, Schema};
use crate::cli::Common;
use crate::connect::TargetUrl;
use crate::error::usage;
use anyhow::Context;
use cutover_scratch::Scratch;

/// The target: a URL, or a scratch cluster that lives as long as this value.
pub(crate) struct Target {
    pub(crate) url: TargetUrl,
    scratch: Option<Scratch>,
}

/// How a run let go of its target, for its outcome.
pub(crate) enum Released {
    /// Nothing to say: a URL target, or a scratch cluster dropped on the way out of a run
    /// that failed.
    Quietly,
    /// The scratch cluster was stopped and removed: a progress note, after the rest.
    Stopped(Notes),
    /// `--keep-scratch`: the cluster is still running, at this URL.
    Kept(String),
    /// Stopping or removing the scratch cluster failed.
    Failed(anyhow::Error),
}

impl Released {
    /// What became of the scratch cluster, after the rest of the outcome.
    pub(crate) fn show(self, out: &mut Output) {
        match self {
            Released::Quietly => {}
            Released::Stopped(notes) => out.note(notes, "scratch: cluster stopped and removed"),
            Released::Kept(url) => out.line(format!("scratch cluster kept running: {url}")),
            Released::Failed(e) => out.error(e),
        }
    }

    pub(crate) fn failed(&self) -> bool {
        matches!(self, Released::Failed(_))
    }
}

impl Target {
    /// The target the command line names, if any; a scratch cluster is started and given
    /// the schema here.
    pub(crate) async fn open(c: &Common, notes: Notes) -> anyhow::Result<Option<Target>> {
        Target::open_with(
            c.target.as_deref(),
            &c.schema,
            &c.schema_from,
            c.keep_scratch,
            notes,
        )
        .await
    }

    /// [`Target::open`] from the target options alone, for a command without a mapping
    /// (`inspect`).
    pub(crate) async fn open_with(
        target: Option<&str>,
        schema: &Option<std::path::PathBuf>,
        schema_from: &Option<String>,
        keep_scratch: bool,
        notes: Notes,
    ) -> anyhow::Result<Option<Target>> {
        let given = crate::connect::target_text(target)?;
        let Some(given) = given else { return Ok(None) };
        if given != "scratch" {
            if schema.is_some() || schema_from.is_some() || keep_scratch {
                return Err(usage(
                    "--schema, --schema-from and --keep-scratch only apply with --target scratch",
                ));
            }
            let url = TargetUrl::parse(&given)?;
            crate::load::remember_target(&url);
            return Ok(Some(Target { url, scratch: None }));
        }
        let schema = match (schema, schema_from) {
            (Some(file), _) => Schema::File(file.clone()),
            (None, Some(from)) => {
                let raw = if from.is_empty() {
                    std::env::var("DATABASE_URL")
                        .ok()
                        .filter(|s| !s.trim().is_empty())
                        .ok_or_else(|| {
                            usage("--schema-from without a URL takes the schema from $DATABASE_URL, which is not set: give the URL of the database whose schema to copy")
                        })?
                } else {
                    from.clone()
                };
                let url = TargetUrl::parse(&raw)?;
                Schema::Database(raw, Box::new(url))
            }
            (None, None) => {
                return Err(usage(
                    "--target scratch needs --schema FILE.sql (the SQL that creates the target schema, e.g. fixtures/podium/schema.sql or a `pg_dump -s` of the real target) or --schema-from URL (a database to take the schema from)",
                ));
            }
        };
        // The schema before the cluster: a file that cannot be used, or a database that
        // cannot be dumped, fails before anything is started.
        let sql = schema.sql().await?;
        let keep = keep_scratch;
        let scratch = tokio::task::spawn_blocking(move || Scratch::start(keep))
            .await
            .context("starting the scratch cluster")??;
        let admin = TargetUrl::parse(&scratch.url("postgres"))?;
        let url = TargetUrl::parse(&scratch.url("cutover"))?;
        let roles = schema::apply(&admin, &url, &sql, &schema.describe()).await?;
        let revisions = match &schema {
            Schema::Database(_, from) => Some(schema::copy_revisions(from, &url).await?),
            Schema::File(_) => None,
        };
        notes.note(format_args!(
            "scratch: PostgreSQL cluster started, {} applied",
            schema.describe()
        ));
        if !roles.is_empty() {
            notes.note(format_args!(
                "scratch: created the roles the schema names, without login: {}",
                roles.join(", ")
            ));
        }
        match revisions {
            Some(r) if r.is_empty() => {
                notes.note(format_args!("scratch: no alembic_version rows to copy"))
            }
            Some(r) => notes.note(format_args!(
                "scratch: alembic_version copied: {}",
                r.join(", ")
            )),
            None => {}
        }
        crate::load::remember_target(&url);
        Ok(Some(Target {
            url,
            scratch: Some(scratch),
        }))
    }

    /// The target, for the commands that cannot run without one.
    pub(crate) async fn required(c: &Common, notes: Notes) -> anyhow::Result<Target> {
        Target::open(c, notes).await?.ok_or_else(|| usage("no target database: pass --target URL, set DATABASE_URL, or use --target scratch --schema FILE.sql (or --schema-from URL)"))
    }

    pub(crate) fn is_scratch(&self) -> bool {
        self.scratch.is_some()
    }

    /// The end of a run that got this far: a scratch cluster is stopped and removed, or
    /// with `--keep-scratch` left running.
    pub(crate) fn release(self, keep: bool, notes: Notes) -> Released {
        let Some(s) = self.scratch else {
            return Released::Quietly;
        };
        if keep {
            // Dropping a kept cluster leaves it running.
            return Released::Kept(s.url("cutover"));
        }
        match s.stop() {
            Ok(()) => Released::Stopped(notes),
            Err(e) => Released::Failed(e),
        }
    }
}
