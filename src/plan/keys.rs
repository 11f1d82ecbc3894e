//! The mapping's duplicate policies bound to the target's unique keys: every key named under
//! `on_duplicate_key` must be a unique constraint or unique index of the table, so a typo is
//! a problem at `check` time with its line, never a policy silently not applied.

use crate::mapping::suggest;
use crate::mapping::{OnDuplicate, Problem, TableMap};
use crate::pg::catalog::TableInfo;

/// What the load does when source rows collide on a unique key of one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DuplicatePolicy {
    /// For every key the mapping does not name.
    pub(crate) default: OnDuplicate,
    /// Per key name.
    pub(crate) keys: Vec<(String, OnDuplicate)>,
}

impl DuplicatePolicy {
    /// Some key keeps one row of those that collide (rather than failing the load).
    pub(crate) fn settles(&self) -> bool {
        self.default != OnDuplicate::Error
            || self.keys.iter().any(|(_, p)| *p != OnDuplicate::Error)
    }

    /// The policy of the unique key `name`.
    pub(crate) fn of(&self, name: &str) -> OnDuplicate {
        self.keys
            .iter()
            .find(|(k, _)| k == name)
            .map_or(self.default, |(_, p)| *p)
    }
}

/// The table's duplicate policy, with a problem for each key name the target does not have.
pub(super) fn bind(t: &TableMap, info: &TableInfo, problems: &mut Vec<Problem>) -> DuplicatePolicy {
    let mut keys = Vec::new();
    for k in &t.on_duplicate_key {
        if info.unique_keys.iter().any(|u| u == &k.name) {
            keys.push((k.name.clone(), k.policy));
        } else {
            let known = if info.unique_keys.is_empty() {
                " (it has none)".to_string()
            } else {
                format!(" (it has {})", info.unique_keys.join(", "))
            };
            problems.push(Problem {
                line: k.line,
                key: format!("tables.{}.on_duplicate_key.{}", t.name, k.name),
                message: format!(
                    "`{}` is not a unique key or unique index of `{}`{known}{}",
                    k.name,
                    t.name,
                    suggest::hint(&k.name, info.unique_keys.iter().map(String::as_str))
                ),
            });
        }
    }
    DuplicatePolicy {
        default: t.on_duplicate,
        keys,
    }
}
