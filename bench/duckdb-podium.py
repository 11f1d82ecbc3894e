"""DuckDB contender for `make bench`: the Podium load written as a DuckDB user would write it.

Usage: python duckdb-podium.py LEGACY.sqlite TARGET_URL

DuckDB attaches the legacy SQLite file and the target PostgreSQL database (its `sqlite` and
`postgres` extensions, installed from the Python packages `duckdb-extension-sqlite-scanner`
and `duckdb-extension-postgres-scanner`, so nothing is downloaded at run time) and runs one
INSERT ... SELECT per target table, in foreign-key order, with the value conversions the
mapping `mappings/podium-sqlite.toml` does: trimmed lowercase emails, epoch or text
timestamps, local event times, state letters to enum labels, defaults for NULLs, dangling
referrers nulled and votes for missing projects dropped. The target keeps every key, index
and foreign key in place. Everything runs in one transaction; sequences are reset after.
"""

import sys

import duckdb
from duckdb_extensions import import_extension

legacy, target = sys.argv[1], sys.argv[2]
con = duckdb.connect()
for ext in ("sqlite_scanner", "postgres_scanner"):
    import_extension(ext, con=con)
con.sql("LOAD sqlite_scanner; LOAD postgres_scanner")
# The legacy file mixes integers and text in one column: read every value as text.
con.sql("SET sqlite_all_varchar = true")
con.sql("SET TimeZone = 'UTC'")
con.sql(f"ATTACH '{legacy}' AS lite (TYPE sqlite, READ_ONLY)")
con.sql(f"ATTACH '{target}' AS pg (TYPE postgres)")

# An epoch-seconds integer or a text timestamp (UTC), as `epoch = "seconds"` reads it.
def ts(col):
    return (
        f"CASE WHEN {col} IS NULL THEN NULL "
        f"WHEN regexp_full_match({col}, '[0-9]+') THEN to_timestamp(CAST({col} AS BIGINT)) "
        f"ELSE CAST(CAST({col} AS TIMESTAMP) AS TIMESTAMPTZ) END"
    )

def boolean(col):
    return f"CASE lower({col}) WHEN 't' THEN true WHEN 'true' THEN true WHEN '1' THEN true WHEN 'f' THEN false WHEN 'false' THEN false WHEN '0' THEN false END"

STATEMENTS = [
    f"""INSERT INTO pg.public.users (id, airtable_id, email, display_name, first_name, last_name,
        phone, is_admin, email_verified, created_at)
      SELECT CAST(id AS INTEGER), id, lower(trim(email)), coalesce(name, ''), first, last, phone,
        coalesce({boolean('is_admin')}, false), {boolean('verified')}, {ts('created')}
      FROM lite.people""",
    f"""INSERT INTO pg.public.events (id, airtable_id, name, slug, description, owner_id, starts_at,
        votable, leaderboard_enabled, max_votes_per_user, created_at)
      SELECT CAST(id AS INTEGER), id, title, slug, about, CAST(owner AS INTEGER),
        timezone('America/New_York', CAST(starts AS TIMESTAMP)),
        coalesce({boolean('votable')}, false), coalesce({boolean('leaderboard')}, false),
        coalesce(CAST(max_votes AS SMALLINT), 3),
        make_timestamptz(CAST(created_ms AS BIGINT) * 1000)
      FROM lite.events""",
    """INSERT INTO pg.public.event_attendees (event_id, user_id)
      SELECT DISTINCT CAST(event AS INTEGER), CAST(person AS INTEGER) FROM lite.event_people""",
    f"""INSERT INTO pg.public.projects (id, airtable_id, name, description, repo_url, demo_url,
        image_url, hours_spent, status, tags, owner_id, event_id, created_at)
      SELECT CAST(id AS BIGINT), id, title, description, repo, demo, image,
        CAST(hours AS DECIMAL(6,1)),
        CASE state WHEN 'D' THEN 'draft' WHEN 'S' THEN 'submitted' WHEN 'A' THEN 'archived' END,
        coalesce(tags, '[]'), CAST(owner AS INTEGER), CAST(event AS INTEGER), {ts('created')}
      FROM lite.projects""",
    """INSERT INTO pg.public.project_collaborators (project_id, user_id)
      SELECT DISTINCT CAST(project AS BIGINT), CAST(person AS INTEGER) FROM lite.project_people""",
    f"""INSERT INTO pg.public.referrals (id, airtable_id, referrer_id, user_id, event_id, created_at)
      SELECT CAST(r.id AS INTEGER), r.id, CAST(p.id AS INTEGER), CAST(r.referred AS INTEGER),
        CAST(r.event AS INTEGER), {ts('r.created')}
      FROM lite.referrals r LEFT JOIN lite.people p ON p.id = r.referrer""",
    f"""INSERT INTO pg.public.votes (id, airtable_id, voter_id, project_id, event_id, points, created_at)
      SELECT CAST(v.id AS BIGINT), v.id, CAST(v.voter AS INTEGER), CAST(v.project AS BIGINT),
        CAST(v.event AS INTEGER), coalesce(CAST(v.points AS SMALLINT), 1), {ts('v.cast_at')}
      FROM lite.votes v SEMI JOIN lite.projects p ON p.id = v.project""",
]

con.sql("BEGIN")
for sql in STATEMENTS:
    con.sql(sql)
con.sql("COMMIT")
for table in ("users", "events", "projects", "referrals", "votes"):
    con.sql(
        f"CALL postgres_execute('pg', 'SELECT setval(pg_get_serial_sequence(''public.{table}'', ''id''), "
        f"coalesce((SELECT max(id) FROM public.{table}), 0) + 1, false)')"
    )
print("duckdb: loaded")
