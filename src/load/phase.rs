//! The load's phases as they happen. Reading the source is only part of a load: on a large
//! one the merge, the key rebuild and the commit take most of the time. So the load names
//! each phase as it starts and ends — per table COPY, resolve and write (or compare), then
//! rebuild, prune, sequences, counts, verify and commit — to an [`Observer`] that shows
//! progress, and keeps each phase's duration for the report.

use serde::ser::{Serialize, SerializeMap, Serializer};
use std::time::{Duration, Instant};

/// A step of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The transaction, the load lock, the revision check, constraints set aside.
    Setup,
    /// One table's rows read from the source and COPYed into its staging table.
    Copy,
    /// One table's duplicates and references resolved.
    Resolve,
    /// One table merged into the target.
    Write,
    /// One table compared with the target (`verify`).
    Compare,
    /// The constraints set aside for the bulk load, rebuilt.
    Rebuild,
    /// Rows no longer in the source deleted (`--prune`).
    Prune,
    /// Every sequence set past its column's largest value.
    Sequences,
    /// Every row that should be loaded is.
    Counts,
    /// Every loaded row compared with the source (`--verify`).
    Verify,
    Commit,
    Rollback,
}

impl Phase {
    /// The phase's stable name, as in the JSON report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::Copy => "copy",
            Phase::Resolve => "resolve",
            Phase::Write => "write",
            Phase::Compare => "compare",
            Phase::Rebuild => "rebuild",
            Phase::Prune => "prune",
            Phase::Sequences => "sequences",
            Phase::Counts => "counts",
            Phase::Verify => "verify",
            Phase::Commit => "commit",
            Phase::Rollback => "rollback",
        }
    }

    /// What the load is doing in this phase, for a progress line.
    pub(crate) fn doing(self) -> &'static str {
        match self {
            Phase::Setup => "setting up",
            Phase::Copy => "reading and COPYing",
            Phase::Resolve => "resolving references",
            Phase::Write => "writing",
            Phase::Compare => "comparing",
            Phase::Rebuild => "rebuilding constraints",
            Phase::Prune => "pruning",
            Phase::Sequences => "resetting sequences",
            Phase::Counts => "checking row counts",
            Phase::Verify => "verifying every row",
            Phase::Commit => "committing",
            Phase::Rollback => "rolling back",
        }
    }
}

/// Told of each phase as the load passes it; `table` is the table's index in the plan, for
/// the per-table phases. Both default to nothing.
pub(crate) trait Observer {
    fn started(&self, phase: Phase, table: Option<usize>) {
        let _ = (phase, table);
    }
    /// `rows`: for COPY, the rows read from the source.
    fn finished(&self, phase: Phase, table: Option<usize>, took: Duration, rows: Option<u64>) {
        let _ = (phase, table, took, rows);
    }
}

/// A phase under way: started when made, reported and recorded when stopped.
pub(crate) struct Clock<'a> {
    observer: &'a dyn Observer,
    phase: Phase,
    table: Option<usize>,
    start: Instant,
}

impl<'a> Clock<'a> {
    pub(crate) fn start(observer: &'a dyn Observer, phase: Phase, table: Option<usize>) -> Self {
        observer.started(phase, table);
        Clock {
            observer,
            phase,
            table,
            start: Instant::now(),
        }
    }

    /// The phase is over: tell the observer and add its duration to `into`.
    pub(crate) fn stop(self, rows: Option<u64>, into: &mut Durations) {
        let took = self.start.elapsed();
        self.observer.finished(self.phase, self.table, took, rows);
        into.add(self.phase, took);
    }
}

/// How long each phase took, in the order they ran; a JSON object of seconds by phase name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Durations(Vec<(Phase, Duration)>);

impl Durations {
    pub(crate) fn add(&mut self, phase: Phase, took: Duration) {
        match self.0.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, d)) => *d += took,
            None => self.0.push((phase, took)),
        }
    }

    pub(crate) fn get(&self, phase: Phase) -> Option<Duration> {
        self.0.iter().find(|(p, _)| *p == phase).map(|(_, d)| *d)
    }

    pub(crate) fn total(&self) -> Duration {
        self.0.iter().map(|(_, d)| *d).sum()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (Phase, Duration)> + '_ {
        self.0.iter().copied()
    }
}

/// Seconds, to the millisecond: what a report needs, without float noise.
pub(crate) fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

impl Serialize for Durations {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (phase, d) in &self.0 {
            map.serialize_entry(phase.name(), &seconds(*d))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Seen(RefCell<Vec<String>>);

    impl Observer for Seen {
        fn started(&self, phase: Phase, table: Option<usize>) {
            self.0
                .borrow_mut()
                .push(format!("+{} {table:?}", phase.name()));
        }
        fn finished(&self, phase: Phase, _: Option<usize>, _: Duration, rows: Option<u64>) {
            self.0
                .borrow_mut()
                .push(format!("-{} {rows:?}", phase.name()));
        }
    }

    #[test]
    fn clocks_tell_the_observer_and_add_up() {
        let seen = Seen::default();
        let mut d = Durations::default();
        Clock::start(&seen, Phase::Copy, Some(0)).stop(Some(14), &mut d);
        Clock::start(&seen, Phase::Copy, Some(0)).stop(None, &mut d);
        Clock::start(&seen, Phase::Commit, None).stop(None, &mut d);
        assert_eq!(
            seen.0.borrow().as_slice(),
            [
                "+copy Some(0)",
                "-copy Some(14)",
                "+copy Some(0)",
                "-copy None",
                "+commit None",
                "-commit None"
            ]
        );
        assert_eq!(d.iter().count(), 2);
        let json = serde_json::to_value(&d).unwrap();
        assert!(json["copy"].is_f64() && json["commit"].is_f64(), "{json}");
        assert_eq!(seconds(Duration::from_micros(1_234_567)), 1.235);
    }
}
