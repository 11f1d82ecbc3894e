use super::*;
use crate::convert::Epoch;
use crate::source::SourceSpec;

fn parse_str(text: &str) -> Result<Mapping, Problems> {
    parse(Path::new("mappings/t.toml"), text)
}

const GOOD: &str = r#"
[source]
kind = "sqlite"
path = "../legacy.db"

[target]
expect_revision = "abc"
timezone = "Europe/Paris"

[tables.users]
from = "people"
legacy_column = "airtable_id"
keep_id = true
[tables.users.columns]
email = { field = "email", trim = true, lowercase = true, required = true }
name = "name"
status = { value = "active" }
created_at = { field = "created", epoch = "seconds" }

[tables.events]
legacy_column = "airtable_id"
[tables.events.columns]
owner_id = { field = "owner", references = "users", on_missing = "null" }

[tables.event_attendees]
from = "event_people"
junction = true
[tables.event_attendees.columns]
event_id = { field = "event", references = "events" }
user_id = { field = "person", references = "users", on_missing = "skip" }
"#;

#[test]
fn parses_a_full_mapping() {
    let m = parse_str(GOOD).unwrap();
    assert_eq!(m.tables.len(), 3);
    assert_eq!(m.tables[0].name, "users");
    assert_eq!(m.tables[0].from, "people");
    assert_eq!(m.expect_revision.as_deref(), Some("abc"));
    match &m.source {
        Some(SourceSpec::Sqlite(p)) => assert_eq!(p, Path::new("mappings/../legacy.db")),
        other => panic!("{other:?}"),
    }
    let u = &m.tables[0];
    assert!(
        matches!(&u.identity, Identity::Legacy { field, column: Some(c), keep_id: true, .. } if field == "id" && c == "airtable_id")
    );
    let email = u.column("email").unwrap();
    assert!(email.rules.trim && email.rules.lowercase && email.rules.required);
    assert_eq!(email.rules.timezone, chrono_tz::Europe::Paris);
    assert!(
        matches!(&u.column("status").unwrap().input, Input::Const(Const::Text(s)) if s == "active")
    );
    assert!(matches!(u.column("name").unwrap().input, Input::Field(ref f) if f == "name"));
    assert_eq!(
        u.column("created_at").unwrap().rules.epoch,
        Some(Epoch::Seconds)
    );
    let ev = &m.tables[1];
    assert_eq!(ev.from, "events");
    assert_eq!(
        ev.column("owner_id")
            .unwrap()
            .reference
            .as_ref()
            .unwrap()
            .on_missing,
        OnMissing::Null
    );
    let j = &m.tables[2];
    assert!(matches!(&j.identity, Identity::Junction { owner } if owner == "event_id"));
}

#[test]
fn reports_every_problem_with_line_and_suggestion() {
    let text = r#"
[tables.users]
legacy_colum = "airtable_id"
[tables.users.columns]
email = { feild = "email" }
age = { field = "age", epoch = "hours" }

[tables.events]
keep_id = true
[tables.events.columns]
owner_id = { field = "owner", references = "user" }
"#;
    let err = parse_str(text).unwrap_err();
    let out = err.to_string();
    assert!(out.contains("mappings/t.toml:3: tables.users.legacy_colum: unknown key (did you mean `legacy_column`?)"), "{out}");
    assert!(out.contains("mappings/t.toml:5: tables.users.columns.email.feild: unknown key (did you mean `field`?)"), "{out}");
    assert!(
        out.contains("tables.users.columns.age.epoch: `hours` is not one of seconds, milliseconds"),
        "{out}"
    );
    assert!(out.contains("mappings/t.toml:11: tables.events.columns.owner_id.references: `user` is not a mapped table (did you mean `users`?)"), "{out}");
    assert!(out.contains("say how target rows are tied"), "{out}");
    assert!(err.list.len() >= 5, "{out}");
}

#[test]
fn toml_syntax_error_names_the_line() {
    let err = parse_str("[tables.users]\nfrom = \"x\nkeep_id = true\n").unwrap_err();
    let out = err.to_string();
    assert!(out.contains("mappings/t.toml:2: not valid TOML"), "{out}");
}

#[test]
fn cycles_are_left_to_the_plan_which_knows_the_columns() {
    let text = r#"
[tables.a]
keep_id = true
[tables.a.columns]
b_id = { field = "b", references = "b" }
[tables.b]
keep_id = true
[tables.b.columns]
c_id = { field = "c", references = "c" }
[tables.c]
keep_id = true
[tables.c.columns]
a_id = { field = "a", references = "a" }
"#;
    // Whether a cycle loads depends on the target's NOT NULL columns: binding decides.
    let m = parse_str(&format!("{text}[tables.d]\nkeep_id = true\n[tables.d.columns]\nparent_id = {{ field = \"p\", references = \"d\" }}\n")).unwrap();
    assert_eq!(m.tables.len(), 4);
}

#[test]
fn column_written_twice_and_bad_junctions_are_rejected() {
    let text = r#"
[tables.users]
legacy_column = "airtable_id"
[tables.users.columns]
airtable_id = "x"
[tables.j]
junction = true
legacy_column = "x"
[tables.j.columns]
user_id = { field = "u", references = "users", on_missing = "null" }
"#;
    let out = parse_str(text).unwrap_err().to_string();
    assert!(
        out.contains("column `airtable_id` is written twice"),
        "{out}"
    );
    assert!(out.contains("a junction table has no legacy id"), "{out}");
    assert!(
        out.contains("at least two columns with `references`"),
        "{out}"
    );
    assert!(out.contains("cannot apply to a junction row"), "{out}");
}

#[test]
fn arbitrary_input_never_panics() {
    // A cheap property test: mangled versions of a good mapping only ever give Ok or Problems.
    let bytes = GOOD.as_bytes();
    let mut seed: u64 = 0x2545F4914F6CDD1D;
    for _ in 0..2000 {
        let mut b = bytes.to_vec();
        for _ in 0..3 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed as usize) % b.len();
            b[i] = (seed >> 32) as u8 % 128;
        }
        let s = String::from_utf8_lossy(&b);
        let _ = parse_str(&s);
    }
}

#[test]
fn snapshot_source_section() {
    let m = parse_str("[source]\nkind = \"snapshot\"\ndir = \"../snap\"\n[tables.t]\nkeep_id = true\n[tables.t.columns]\na = \"a\"\n").unwrap();
    assert_eq!(
        m.source,
        Some(SourceSpec::Snapshot(
            Path::new("mappings/../snap").to_path_buf()
        ))
    );
    let err = parse_str("[source]\nkind = \"snapshot\"\n[tables.t]\nkeep_id = true\n[tables.t.columns]\na = \"a\"\n").unwrap_err();
    assert!(err.to_string().contains("source.dir: missing"), "{err}");
}

#[test]
fn airtable_source_section() {
    let body = "[tables.t]\nkeep_id = true\n[tables.t.columns]\na = \"a\"\n";
    let m = parse_str(&format!(
        "[source]\nkind = \"airtable\"\nbase = \"appAbCdEfGh123456\"\n{body}"
    ))
    .unwrap();
    assert_eq!(
        m.source,
        Some(SourceSpec::Airtable {
            base: "appAbCdEfGh123456".into()
        })
    );
    let err = parse_str(&format!(
        "[source]\nkind = \"airtable\"\nbase = \"myBase\"\n{body}"
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("mappings/t.toml:3: source.base: `myBase` is not an Airtable base id"),
        "{err}"
    );
}

#[test]
fn value_policies_are_read_path_truncate_on_error_trim_legacy_id() {
    use crate::convert::{Many, OnError, Step};
    let text = r#"
[tables.users]
legacy_column = "airtable_id"
trim_legacy_id = true
[tables.users.columns]
email = { field = "Owner", path = "email" }
photo = { field = "Photos", path = "0.url", many = "first" }
deep = { field = "Photos", path = "thumbnails.large.url" }
bio = { field = "bio", truncate = true }
score = { field = "Score", on_error = "null" }
"#;
    let m = parse_str(text).unwrap();
    let u = &m.tables[0];
    assert!(matches!(u.identity, Identity::Legacy { trim: true, .. }));
    let rules = |c: &str| u.column(c).unwrap().rules.clone();
    assert_eq!(rules("email").path, Some(vec![Step::Key("email".into())]));
    assert_eq!(
        rules("photo").path,
        Some(vec![Step::Index(0), Step::Key("url".into())])
    );
    assert_eq!(rules("photo").many, Many::First);
    assert_eq!(rules("deep").path.map(|p| p.len()), Some(3));
    assert!(rules("bio").truncate && !rules("email").truncate);
    assert_eq!(rules("score").on_error, OnError::Null);
    assert_eq!(rules("bio").on_error, OnError::Reject);
    // Without the key, legacy ids are kept exactly as the source holds them.
    let plain = parse_str("[tables.t]\nkeep_id = true\n[tables.t.columns]\na = \"a\"\n").unwrap();
    assert!(matches!(
        plain.tables[0].identity,
        Identity::Legacy { trim: false, .. }
    ));
}

#[test]
fn a_bad_path_or_policy_is_named_with_its_line() {
    let text = r#"
[tables.users]
keep_id = true
[tables.users.columns]
a = { field = "a", path = "0..url" }
b = { field = "b", path = "" }
c = { field = "c", truncate = "yes" }
d = { field = "d", path = 3 }

[tables.links]
junction = true
trim_legacy_id = true
[tables.links.columns]
user_id = { field = "u", references = "users" }
other_id = { field = "o", references = "users" }
"#;
    let out = parse_str(text).unwrap_err().to_string();
    assert!(
        out.contains("mappings/t.toml:5: tables.users.columns.a.path: `0..url` has an empty step"),
        "{out}"
    );
    assert!(
        out.contains("mappings/t.toml:6: tables.users.columns.b.path: must not be empty"),
        "{out}"
    );
    assert!(out.contains("tables.users.columns.c.truncate"), "{out}");
    assert!(
        out.contains("tables.users.columns.d.path: expected a string, found integer"),
        "{out}"
    );
    assert!(
        out.contains("tables.links.trim_legacy_id: a junction table has no legacy id"),
        "{out}"
    );
}

const SELECTED: &str = r#"
[source]
kind = "airtable"
base = "appAbCdEfGh123456"

[tables.teams]
from = "Teams"
legacy_id = "@id"
legacy_column = "airtable_id"
view = "Active teams"
filter = "{Members} > 0"
[tables.teams.columns]
name = "Name"

[tables.team_members]
from = "Teams"
junction = true
view = "Active teams"
filter = "{Members} > 0"
[tables.team_members.columns]
team_id = { field = "@id", references = "teams" }
person_id = { field = "Members", references = "teams", explode = true }
"#;

#[test]
fn view_and_filter_select_an_airtable_tables_records() {
    let m = parse_str(SELECTED).unwrap();
    let t = &m.tables[0];
    assert_eq!(t.selection.view.as_deref(), Some("Active teams"));
    assert_eq!(t.selection.filter.as_deref(), Some("{Members} > 0"));
    assert_eq!(t.selection_line, 10);
    // One selection per source table, however many tables read it.
    assert_eq!(
        m.selections(),
        vec![("Teams".to_string(), t.selection.clone())]
    );
    assert!(m.selections()[0].1.view.is_some());
    // On a SQLite source given instead (--source), refused at the key's line.
    let p = m.selection_problems(&SourceSpec::Sqlite("x.db".into()));
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!((p[0].line, p[0].key.as_str()), (10, "tables.teams.view"));
    assert!(p[0].message.contains("sqlite:x.db"), "{}", p[0].message);
    // A snapshot holds the records its export selected.
    assert!(
        m.selection_problems(&SourceSpec::Snapshot("s".into()))
            .is_empty()
    );
}

#[test]
fn view_and_filter_on_a_sqlite_mapping_are_refused_at_their_line() {
    let text = GOOD.replace(
        "from = \"people\"\n",
        "from = \"people\"\nfilter = \"{Active}\"\n",
    );
    let e = parse_str(&text).unwrap_err();
    let p = e
        .list
        .iter()
        .find(|p| p.key == "tables.users.filter")
        .unwrap();
    assert_eq!(p.line, 12);
    assert!(p.message.contains("not Airtable"), "{}", p.message);
}

#[test]
fn tables_read_from_one_source_table_need_the_same_selection() {
    let text = SELECTED.replacen(
        "view = \"Active teams\"\nfilter = \"{Members} > 0\"\n[tables.team_members.columns]",
        "[tables.team_members.columns]",
        1,
    );
    let e = parse_str(&text).unwrap_err();
    assert_eq!(e.list.len(), 1, "{e}");
    let p = &e.list[0];
    assert_eq!(p.key, "tables.team_members");
    assert!(
        p.message.contains("reads source table `Teams` with every record")
            && p.message.contains("`teams` (line 10) reads it with view = \"Active teams\", filter = \"{Members} > 0\""),
        "{}",
        p.message
    );
}
