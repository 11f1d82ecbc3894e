//! Row fingerprints: how a re-run tells, while converting, a source row that is exactly what
//! the last load wrote from one that changed, so that PostgreSQL is sent, resolved and merged
//! only the rows that changed.
//!
//! A row's fingerprint is the 64-bit XXH3 hash of its converted stage columns as binary COPY
//! fields (length prefixes included, so fields never run together), seeded by the table's
//! shape — its name, source, and every stage column's target, type and parent — so that a
//! changed mapping or schema makes every row new. The record of each load keeps the
//! fingerprint of every row the load left equal to the source (`load/record.rs`); the next
//! load in merge mode hands the convert stage, per table, the fingerprints of those rows still
//! in the target ([`Known`]). A row whose fingerprint is among them is staged with its legacy
//! id only and flagged `same_` (see `staging.rs`): it still counts, keeps its target row from
//! `--prune`, and takes part in the duplicate search, but nothing about it is resolved,
//! compared or written.
//!
//! Memory is bounded: at most [`IN_MEMORY`] fingerprints are held over a whole load (8 bytes
//! each); a table whose record does not fit is compared in full by PostgreSQL, as without a
//! record.
//!
//! XXH3: <https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md>

use super::TablePlan;
use std::sync::mpsc;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// At most this many fingerprints are held over a load (16 MB).
pub(crate) const IN_MEMORY: usize = 2_000_000;

/// The seed of `table`'s fingerprints: its shape as the staging rows are encoded.
pub(crate) fn seed(table: &TablePlan) -> u64 {
    let mut shape = format!("cutover row 1\0{}\0{}", table.name, table.from);
    for c in &table.stage {
        shape.push('\0');
        shape.push_str(&c.target);
        shape.push('\0');
        shape.push_str(&c.sql_type);
        if let Some(r) = &c.reference {
            shape.push('\0');
            shape.push_str(&r.qualified);
            shape.push('.');
            shape.push_str(&r.match_column);
        }
    }
    xxh3_64(shape.as_bytes())
}

/// The fingerprint of a row whose stage columns are encoded as `fields`.
#[inline]
pub(crate) fn of(seed: u64, fields: &[u8]) -> u64 {
    xxh3_64_with_seed(fields, seed)
}

/// The fingerprints of one table's rows that the last load wrote and the target still holds
/// as written. Each matches one source row at most: a second row with the same fingerprint
/// (a repeated record) is staged in full, so the duplicate search sees both.
///
/// Looked up once per source row, so the lookup is one step rather than a binary search
/// (twenty dependent reads from memory for a million fingerprints, a quarter of a re-run's
/// time in the client): fingerprints are hashes, spread evenly, so their top bits say where
/// in the sorted list one lies. `starts` holds, for each value of the top `bits` bits,
/// where its fingerprints begin — about four per bucket, one byte of index per
/// fingerprint.
#[derive(Debug, Default, Clone)]
pub(crate) struct Known {
    sorted: Vec<u64>,
    taken: Vec<u64>,
    /// `starts[b]..starts[b + 1]`: the fingerprints whose top `bits` bits are `b`.
    starts: Vec<u32>,
    bits: u32,
}

/// Fingerprints per bucket of [`Known::starts`], on average.
const PER_BUCKET: usize = 4;

impl Known {
    pub(crate) fn new(mut fingerprints: Vec<u64>) -> Known {
        fingerprints.sort_unstable();
        fingerprints.dedup();
        fingerprints.shrink_to_fit();
        let taken = vec![0; fingerprints.len().div_ceil(64)];
        let bits = (fingerprints.len() / PER_BUCKET).max(1).ilog2().min(31);
        let mut starts = Vec::with_capacity((1usize << bits) + 1);
        let mut i = 0;
        for b in 0..(1u64 << bits) {
            while i < fingerprints.len() && bucket(fingerprints[i], bits) < b {
                i += 1;
            }
            starts.push(i as u32);
        }
        starts.push(fingerprints.len() as u32);
        Known {
            sorted: fingerprints,
            taken,
            starts,
            bits,
        }
    }

    /// Where `fp` is in `sorted`, if it is.
    #[inline]
    fn find(&self, fp: u64) -> Option<usize> {
        let b = bucket(fp, self.bits) as usize;
        let (lo, hi) = (
            *self.starts.get(b)? as usize,
            *self.starts.get(b + 1)? as usize,
        );
        let i = self.sorted.get(lo..hi)?.binary_search(&fp).ok()?;
        Some(lo + i)
    }

    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }

    /// How many were matched by a source row.
    pub(crate) fn taken(&self) -> usize {
        self.taken.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether `fp` was matched by a source row.
    pub(crate) fn is_taken(&self, fp: u64) -> bool {
        self.find(fp)
            .is_some_and(|i| self.taken[i / 64] & (1u64 << (i % 64)) != 0)
    }

    /// Whether `fp` is known and not matched yet; matching it takes it.
    #[inline]
    pub(crate) fn take(&mut self, fp: u64) -> bool {
        let Some(i) = self.find(fp) else {
            return false;
        };
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        if self.taken[word] & bit != 0 {
            return false;
        }
        self.taken[word] |= bit;
        true
    }
}

/// The top `bits` bits of `fp` (0 for no bits).
#[inline]
fn bucket(fp: u64, bits: u32) -> u64 {
    if bits == 0 { 0 } else { fp >> (64 - bits) }
}

/// The load's end: hands the convert stage each table's [`Known`] fingerprints, in plan
/// order (a table not sent has none). Dropping it tells the convert stage no more will come.
pub(crate) struct KnownTx(mpsc::Sender<(usize, Known)>);

impl KnownTx {
    pub(crate) fn send(&self, index: usize, known: Known) {
        // The convert stage is gone only when the load is failing anyway.
        let _ = self.0.send((index, known));
    }
}

/// The convert stage's end.
pub(crate) struct KnownRx {
    rx: Option<mpsc::Receiver<(usize, Known)>>,
    ahead: Option<(usize, Known)>,
}

impl KnownRx {
    /// No fingerprints for any table (`check`, `verify`, `--mode replace`).
    pub(crate) fn none() -> KnownRx {
        KnownRx {
            rx: None,
            ahead: None,
        }
    }

    /// The fingerprints of the `index`-th table, waiting until the load has sent them or said
    /// there are none.
    pub(crate) fn table(&mut self, index: usize) -> Option<Known> {
        loop {
            match self.ahead.take() {
                Some((i, known)) if i == index => return Some(known),
                Some((i, known)) if i > index => {
                    self.ahead = Some((i, known));
                    return None;
                }
                // An earlier table's, sent late: of no use now.
                Some(_) => {}
                None => {}
            }
            self.ahead = Some(self.rx.as_ref()?.recv().ok()?);
        }
    }
}

pub(crate) fn channel() -> (KnownTx, KnownRx) {
    let (tx, rx) = mpsc::channel();
    (
        KnownTx(tx),
        KnownRx {
            rx: Some(rx),
            ahead: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_matches_once() {
        let mut k = Known::new(vec![30, 10, 20, 10]);
        assert_eq!(k.len(), 3);
        assert!(!k.is_taken(20));
        assert!(k.take(20));
        assert!(k.is_taken(20) && !k.is_taken(30));
        assert!(!k.take(20), "a repeated row is not taken twice");
        assert!(!k.take(25));
        assert!(k.take(10) && k.take(30));
    }

    #[test]
    fn every_fingerprint_is_found_in_its_bucket() {
        // Spread hashes (as real fingerprints are), and a cluster sharing their top bits.
        let mut fps: Vec<u64> = (0..10_000u64).map(|i| of(7, &i.to_le_bytes())).collect();
        fps.extend((0..100u64).map(|i| (5u64 << 60) | i));
        fps.extend([0, u64::MAX]);
        let mut k = Known::new(fps.clone());
        assert!(k.bits > 8, "{}", k.bits);
        for &fp in &fps {
            assert!(k.take(fp), "{fp:#x}");
        }
        assert_eq!(k.taken(), fps.len());
        for fp in [1u64, (5u64 << 60) | 100, u64::MAX - 1] {
            assert!(!k.take(fp) && !k.is_taken(fp), "{fp:#x}");
        }
        assert!(!Known::new(Vec::new()).take(0));
    }

    #[test]
    fn fingerprints_are_fixed_by_the_bytes_and_the_seed() {
        // XXH3-64 is specified: the same bytes give the same hash on every build.
        assert_eq!(of(0, b""), 0x2d06_8005_38d3_94c2);
        assert_ne!(of(1, b"a"), of(2, b"a"));
        assert_ne!(of(1, b"a"), of(1, b"b"));
    }

    #[test]
    fn tables_arrive_in_plan_order_and_gaps_have_none() {
        let (tx, mut rx) = channel();
        tx.send(0, Known::new(vec![1]));
        tx.send(2, Known::new(vec![3]));
        drop(tx);
        assert_eq!(rx.table(0).map(|k| k.len()), Some(1));
        assert!(rx.table(1).is_none());
        assert_eq!(rx.table(2).map(|k| k.len()), Some(1));
        assert!(rx.table(3).is_none());
        assert!(KnownRx::none().table(0).is_none());
    }
}
