//! How much later than it was sent a request may reach the server: the allowance the pacer
//! (`pace`) holds each request's slot for while it is in flight. Sized from the round trips
//! measured, rather than fixed for the worst case.
//!
//! A round trip is the way there (when the request arrives: what the server counts against
//! its 5 requests per second, https://airtable.com/developers/web/api/rate-limits), the
//! server's work and the way back. Only how much the way there *varies* matters: a delay
//! every request shares moves all arrivals alike and puts no more of them in one second. The
//! way there varies by at most as much as the whole round trip does, when its parts vary
//! independently (the spread of a sum of independent delays is the sum of their spreads).
//! So once enough round trips are seen, the allowance is the spread of the recent ones, with
//! a margin — narrow when answers come back steadily (500 ms every time: a few
//! milliseconds), never wider than the configured allowance (100 ms by default, for a round
//! trip that varies because the server's work does). The spread is taken across all of a
//! client's requests, not per listing: requests sent together can reach a busy server one
//! behind the other, a delay on the way there that only the round trips of different
//! listings show. A wider spread widens it at once; only a run of steady round trips
//! narrows it again. A 429 means arrivals bunched more than the
//! allowance allowed for: it doubles (at least to the configured one) and stays so for the
//! rest of the run.
//!
//! Once a request is answered, its own round trip bounds its way there more tightly. Its
//! answer came back `rtt` after it left, and the fastest round trip seen took `fastest`; if
//! the fastest one's server work and way back took no longer than this one's (the fastest
//! round trip was fast in every part), this one's way there took at most `rtt - fastest`
//! longer than the fastest one's. A round trip that was long because the server worked
//! long so frees its slot early, while one that was long because it arrived late keeps it.
//! That assumption is not checked by anything but the server: a 429 ends it for the rest of
//! the run, as it widens the allowance.

use std::collections::VecDeque;

/// Round trips remembered.
const SAMPLES: usize = 64;
/// Round trips seen before the allowance is sized from them; until then, the configured one.
const MIN_SAMPLES: usize = 16;
/// The spread seen is a sample's: the allowance is this much wider.
const MARGIN: f64 = 1.25;
/// And at least this (seconds): timers and clocks are not exact.
const FLOOR: f64 = 0.005;
/// The widest an allowance grows after 429s (seconds).
const WIDEST: f64 = 1.0;
/// Added to an answered request's `rtt - fastest` (seconds): the fastest round trip seen
/// may itself have had a little more server work than another one (with 0–100 ms on the
/// way there and 100–300 ms of server work drawn independently, by up to about 20 ms).
const SETTLE_MARGIN: f64 = 0.03;

/// One client's allowance, from its own round trips.
#[derive(Debug, Clone, Default)]
pub(crate) struct Allowance {
    /// Recent round trips of answered requests (seconds), oldest first.
    rtts: VecDeque<f64>,
    /// Set by a 429: the allowance is never narrower than this again.
    widened: f64,
    /// Until when the last 429's lock lasts: the other requests in flight then meet the
    /// same lock, which widens the allowance once.
    widened_until: f64,
    /// The fastest round trip of an answered request in the whole run (seconds), once one
    /// is seen.
    fastest: Option<f64>,
}

impl Allowance {
    /// A request that was answered took `rtt` seconds from leaving to its answer.
    pub(crate) fn observe(&mut self, rtt: f64) {
        if !rtt.is_finite() || rtt < 0.0 {
            return;
        }
        if self.rtts.len() == SAMPLES {
            self.rtts.pop_front();
        }
        self.rtts.push_back(rtt);
        self.fastest = Some(self.fastest.map_or(rtt, |f| f.min(rtt)));
    }

    /// The fastest round trip of an answered request so far (seconds).
    pub(crate) fn fastest(&self) -> Option<f64> {
        self.fastest
    }

    /// The latest moment a request sent at `sent` and answered (already `observe`d) at
    /// `done` can have arrived, not counting the allowance it was booked with (the ledger
    /// keeps the earlier of the two).
    pub(crate) fn arrived_by(&self, sent: f64, done: f64) -> f64 {
        let done = done.max(sent);
        match self.fastest {
            Some(fastest) if self.widened == 0.0 && self.rtts.len() >= MIN_SAMPLES => {
                done.min(sent + (done - sent - fastest).max(0.0) + SETTLE_MARGIN)
            }
            _ => done,
        }
    }

    /// The allowance now (seconds), given the configured one.
    pub(crate) fn get(&self, configured: f64) -> f64 {
        let cap = configured.max(self.widened);
        if self.rtts.len() < MIN_SAMPLES {
            return cap;
        }
        let lo = self.rtts.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self.rtts.iter().copied().fold(0.0, f64::max);
        ((hi - lo) * MARGIN).max(FLOOR).max(self.widened).min(cap)
    }

    /// A 429 for a request sent at `sent`, the base locked until `until`: arrivals bunched
    /// more than the allowance allowed for (once per lock).
    pub(crate) fn widen(&mut self, configured: f64, sent: f64, until: f64) {
        if sent < self.widened_until {
            return;
        }
        self.widened = (2.0 * self.get(configured)).max(configured).min(WIDEST);
        self.widened_until = until;
        self.rtts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_round_trips_narrow_it_and_a_spread_widens_it_at_once() {
        let mut a = Allowance::default();
        for _ in 0..MIN_SAMPLES - 1 {
            a.observe(0.5);
        }
        assert_eq!(a.get(0.1), 0.1, "too few round trips yet");
        a.observe(0.502);
        let narrow = a.get(0.1);
        assert!((narrow - 0.005).abs() < 1e-9, "{narrow}");
        // One slow answer, and the allowance covers it.
        a.observe(0.56);
        assert!((a.get(0.1) - 0.075).abs() < 1e-9, "{}", a.get(0.1));
        // Never wider than configured: a spread of 200 ms is the server's work too.
        a.observe(0.76);
        assert_eq!(a.get(0.1), 0.1);
        // It narrows again only once the slow ones are forgotten.
        for _ in 0..SAMPLES - 1 {
            a.observe(0.5);
        }
        assert_eq!(a.get(0.1), 0.1);
        a.observe(0.5);
        assert_eq!(a.get(0.1), FLOOR);
    }

    #[test]
    fn a_long_round_trip_frees_its_slot_by_how_much_longer_than_the_fastest_it_was() {
        let mut a = Allowance::default();
        // Until enough round trips are seen, only the answer bounds the arrival.
        a.observe(0.1);
        assert_eq!(a.arrived_by(10.0, 10.3), 10.3);
        for i in 0..MIN_SAMPLES {
            a.observe(0.1 + 0.2 * i as f64 / MIN_SAMPLES as f64);
        }
        // 300 ms where the fastest took 100 ms: at most 200 ms later on the way there.
        let by = a.arrived_by(10.0, 10.3);
        assert!((by - (10.2 + SETTLE_MARGIN)).abs() < 1e-9, "{by}");
        // The fastest one itself: the margin, never later than its answer.
        assert!((a.arrived_by(10.0, 10.1) - (10.0 + SETTLE_MARGIN)).abs() < 1e-9);
        assert_eq!(a.arrived_by(10.0, 10.005), 10.005);
        // A 429 ends the assumption for good.
        a.widen(0.1, 11.0, 41.0);
        for _ in 0..SAMPLES {
            a.observe(0.1);
        }
        assert_eq!(a.arrived_by(50.0, 50.3), 50.3);
    }

    #[test]
    fn a_429_doubles_it_for_good() {
        let mut a = Allowance::default();
        for _ in 0..SAMPLES {
            a.observe(0.5);
        }
        assert_eq!(a.get(0.1), FLOOR);
        a.widen(0.1, 1.0, 31.0);
        assert_eq!(a.get(0.1), 0.1, "at least the configured one");
        for _ in 0..SAMPLES {
            a.observe(0.5);
        }
        assert_eq!(a.get(0.1), 0.1, "steady answers do not undo it");
        // Another request in flight meets the same lock: once per lock.
        a.widen(0.1, 2.0, 32.0);
        assert_eq!(a.get(0.1), 0.1);
        a.widen(0.1, 40.0, 70.0);
        assert_eq!(a.get(0.1), 0.2);
        for i in 0..10 {
            a.widen(0.1, 100.0 * (i + 1) as f64, 100.0 * (i + 1) as f64 + 30.0);
        }
        assert_eq!(a.get(0.1), WIDEST);
    }
}
