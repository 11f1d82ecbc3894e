//! The layering rule of `lib.rs`, checked: a top-level module imports (`crate::name`) only
//! modules listed before it there. A change that makes a lower layer reach up fails here,
//! with the offending file and line, instead of growing a cycle.

use std::path::{Path, PathBuf};

/// Bottom to top, as in `lib.rs`.
const LAYERS: &[&str] = &[
    "error", "files", "graph", "hooks", "value", "pg", "connect", "source", "convert", "mapping",
    "plan", "extract", "load", "report", "draft", "cli", "commands", "app",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file under `src/` belongs to.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

/// Every `crate::name` in a line of code (comments included: a doc link up a layer is a
/// dependency too).
fn crate_refs(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let tail = &rest[i + "crate::".len()..];
        let name: String = tail
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `crate::{a, b}`: each name in the braces.
        if name.is_empty() && tail.starts_with('{') {
            let inner = tail[1..].split('}').next().unwrap_or("");
            for part in inner.split(',') {
                let n: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !n.is_empty() {
                    out.push(n);
                }
            }
        } else if !name.is_empty() {
            out.push(name);
        }
        rest = tail;
    }
    out
}

#[test]
fn imports_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut wrong = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for f in &all {
        let Some(m) = module_of(&src, f) else {
            continue;
        };
        // The crate root, and the test-only modules that reach everywhere on purpose.
        if matches!(m.as_str(), "lib" | "main" | "layers" | "tests") {
            continue;
        }
        seen.insert(m.clone());
        let Some(me) = rank(&m) else {
            wrong.push(format!("{}: module `{m}` is not in LAYERS", f.display()));
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            for dep in crate_refs(line) {
                match rank(&dep) {
                    Some(d) if d > me => wrong.push(format!(
                        "{}:{}: `{m}` imports `{dep}`, a layer above it",
                        f.display(),
                        n + 1
                    )),
                    _ => {}
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Every layer listed exists, so the list cannot drift from the tree unnoticed.
    for l in LAYERS {
        assert!(
            seen.contains(*l),
            "LAYERS names `{l}`, which has no file under src/"
        );
    }
}

#[test]
fn finds_references() {
    assert_eq!(crate_refs("use crate::plan::Plan;"), ["plan"]);
    assert_eq!(
        crate_refs("use crate::{error, value::Value};"),
        ["error", "value"]
    );
    assert_eq!(crate_refs("x(crate::a::b, crate::c)"), ["a", "c"]);
    assert!(crate_refs("no refs here").is_empty());
}
