//! The pgloader contender. pgloader maps SQLite tables and columns to PostgreSQL by *name* and
//! has no value maps, trims or mixed-type timestamp rules, so it cannot load the legacy file
//! into this schema as is (`people.name` → `users.display_name`, `state` 'S' → 'submitted',
//! …). The benchmark therefore hands it a *pgloader-shaped* copy of the source, built untimed
//! with SQLite: tables and columns renamed to the target's, values pgloader has no rule for
//! pre-converted, dangling references pre-resolved. That makes its figure a lower bound for
//! pgloader doing this job: it only casts and COPYs. The load file itself is
//! `bench/pgloader-podium.load` (`data only, truncate, disable triggers, reset sequences`).

use anyhow::{Context, Result};
use std::path::Path;

/// What the shaped copy does for pgloader, printed with its figures.
pub const HANDICAP: &str = "pgloader reads a pre-shaped copy of the source (built untimed): tables/columns renamed to the target's, emails trimmed+lowercased, timestamps normalised to UTC text, D/S/A mapped to enum labels, NULL defaults filled, dangling referrers nulled and dangling votes dropped -- pgloader itself only casts and COPYs";

/// Build `out` from `source` (the legacy-shaped file), unless it is already there.
pub fn shape(source: &Path, out: &Path) -> Result<()> {
    if out.is_file() {
        return Ok(());
    }
    let tmp = out.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let conn =
        rusqlite::Connection::open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    conn.execute("ATTACH DATABASE ?1 AS src", [source.to_string_lossy()])
        .with_context(|| format!("attaching {}", source.display()))?;
    conn.execute_batch(SHAPE)
        .context("building the pgloader-shaped copy of the source")?;
    drop(conn);
    std::fs::rename(&tmp, out)?;
    Ok(())
}

/// The load file from the template in bench/, with the source and target filled in.
pub fn load_file(template: &Path, sqlite: &Path, target_url: &str) -> Result<String> {
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("reading {}", template.display()))?;
    Ok(text
        .replace("{{SOURCE}}", &sqlite.to_string_lossy())
        .replace("{{TARGET}}", target_url))
}

/// UTC text PostgreSQL parses as timestamptz, from the legacy mixed column `c`.
macro_rules! ts {
    ($c:literal) => {
        concat!(
            "CASE WHEN ",
            $c,
            " IS NULL THEN NULL WHEN typeof(",
            $c,
            ") = 'integer' THEN datetime(",
            $c,
            ", 'unixepoch') || '+00' ELSE replace(replace(",
            $c,
            ", 'T', ' '), 'Z', '') || '+00' END"
        )
    };
}

const SHAPE: &str = concat!(
    "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; BEGIN;
CREATE TABLE users (id INTEGER PRIMARY KEY, airtable_id TEXT, email TEXT, display_name TEXT,
  first_name TEXT, last_name TEXT, phone TEXT, is_admin INTEGER, email_verified TEXT, created_at TEXT);
INSERT INTO users SELECT id, CAST(id AS TEXT), lower(trim(email)), coalesce(name, ''), first, last,
  phone, is_admin, verified, ",
    ts!("created"),
    " FROM src.people;
CREATE TABLE events (id INTEGER PRIMARY KEY, airtable_id TEXT, name TEXT, slug TEXT, description TEXT,
  owner_id INTEGER, starts_at TEXT, votable TEXT, leaderboard_enabled INTEGER, max_votes_per_user INTEGER,
  created_at TEXT);
INSERT INTO events SELECT id, CAST(id AS TEXT), title, slug, about, owner, starts, votable, leaderboard,
  coalesce(max_votes, 3), strftime('%Y-%m-%d %H:%M:%f', created_ms / 1000.0, 'unixepoch') || '+00'
  FROM src.events;
CREATE TABLE event_attendees (event_id INTEGER, user_id INTEGER);
INSERT INTO event_attendees SELECT event, person FROM src.event_people;
CREATE TABLE projects (id INTEGER PRIMARY KEY, airtable_id TEXT, name TEXT, description TEXT,
  repo_url TEXT, demo_url TEXT, image_url TEXT, hours_spent TEXT, status TEXT, tags TEXT,
  owner_id INTEGER, event_id INTEGER, created_at TEXT);
INSERT INTO projects SELECT id, CAST(id AS TEXT), title, description, repo, demo, image,
  CAST(hours AS TEXT), CASE state WHEN 'D' THEN 'draft' WHEN 'S' THEN 'submitted' ELSE 'archived' END,
  coalesce(tags, '[]'), owner, event, ",
    ts!("created"),
    " FROM src.projects;
CREATE TABLE project_collaborators (project_id INTEGER, user_id INTEGER);
INSERT INTO project_collaborators SELECT project, person FROM src.project_people;
CREATE TABLE referrals (id INTEGER PRIMARY KEY, airtable_id TEXT, referrer_id INTEGER,
  user_id INTEGER, event_id INTEGER, created_at TEXT);
INSERT INTO referrals SELECT id, CAST(id AS TEXT),
  CASE WHEN referrer IN (SELECT id FROM src.people) THEN referrer END, referred, event, ",
    ts!("created"),
    " FROM src.referrals;
CREATE TABLE votes (id INTEGER PRIMARY KEY, airtable_id TEXT, voter_id INTEGER, project_id INTEGER,
  event_id INTEGER, points INTEGER, created_at TEXT);
INSERT INTO votes SELECT id, CAST(id AS TEXT), voter, project, event, coalesce(points, 1),
  datetime(cast_at, 'unixepoch') || '+00'
  FROM src.votes WHERE project IN (SELECT id FROM src.projects);
COMMIT;"
);
