//! When the next request to a base may leave, so that the server never counts more than its
//! limit in any one second, whatever the network does to the requests on the way.
//!
//! Airtable allows 5 requests per second per base and 50 per second per token, and a 429
//! locks the base for 30 s (https://airtable.com/developers/web/api/rate-limits). The
//! server counts *arrivals*: requests sent evenly arrive bunched when the network delays
//! some more than others. So the pacer keeps a ledger of recent requests and, for each, the
//! latest moment it can have arrived: the time it was sent plus an allowance for the way
//! there while it is in flight (sized from the round trips seen, see `allowance`), and once
//! answered the earlier of that, the moment the answer came back (a request arrives before
//! it is answered) and what its round trip says of its way there (`allowance`). A request
//! may leave at `t` only when fewer than `limit` earlier requests can have arrived after
//! `t - 1 s`: then no one-second window the server looks at holds more than `limit`
//! arrivals, since any such window holds a request sent last, which was checked against all
//! the others. Answers that come back soon free their slot early, so the pacing gives up
//! little of the ceiling.
//!
//! That alone keeps every second within the limit, so at the configured rate requests are
//! not spaced besides: five may leave together and a sixth one second after the first of
//! them arrived. Below it the request rate adapts (additive increase, multiplicative
//! decrease): a 429 means someone else is using the base too, so the rate halves, requests
//! leave at most that often, and the base is left alone for the lock's duration; every
//! answered request raises the rate a little, back up to the configured one.
//!
//! The ledger is kept in a file per base (and one per token) that every cutover process on
//! the machine shares under an exclusive `flock` (`shared`), so two processes on one base
//! share its 5 requests per second instead of tripping each other's lock.

use serde::{Deserialize, Serialize};

/// Added to the one-second window: clocks are not exact. ntpd slews a clock by at most
/// 500 ppm (ntpd(8), "How NTP Operates"), so the server's second and this machine's differ by
/// about 0.5 ms; twice that. A clock slewed faster (chrony may, after a large offset) can
/// cost a 429, which the pacer answers by backing off. Timers fire late, never early, and
/// need none.
const GUARD: f64 = 0.001;
/// Requests per second added after each answered request (additive increase).
const INCREASE: f64 = 0.05;
/// The rate is never halved below this.
const MIN_RATE: f64 = 0.25;

/// The state shared by everyone pacing requests against one limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Ledger {
    /// Recent requests: ticket and the latest moment it can have arrived (seconds on the
    /// monotonic clock, which every process on the machine shares).
    pub recent: Vec<(u64, f64)>,
    /// When the last request was allowed to leave.
    pub last_send: f64,
    /// The base is locked (after a 429) until then.
    pub locked_until: f64,
    /// The current request rate (requests per second); 0 means the configured one.
    pub rate: f64,
    /// 429s seen by anyone sharing the ledger.
    pub rate_limited: u64,
    /// When the rate was last halved: a 429 for a request sent before then is the same
    /// lock, already answered.
    pub decreased_at: f64,
    pub next_ticket: u64,
}

/// One limit: so many arrivals in any second, at most `max_rate` requests per second sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    pub per_second: u32,
    pub max_rate: f64,
    /// How much later than it was sent a request may arrive (network jitter), in seconds,
    /// until round trips say otherwise (see `allowance`).
    pub jitter: f64,
}

/// No time in a ledger is legitimately further ahead than this (seconds): a lock lasts at
/// most an hour (`Retry-After` is capped below 3600 s).
const FURTHEST_AHEAD: f64 = 4000.0;

impl Ledger {
    /// Forget a ledger written before the machine restarted: the monotonic clock starts
    /// again at boot, so its times would lie far in the future.
    pub(crate) fn sanitize(&mut self, now: f64) {
        let ahead = |t: f64| !t.is_finite() || t > now + FURTHEST_AHEAD;
        if ahead(self.last_send)
            || ahead(self.locked_until)
            || ahead(self.decreased_at)
            || self.recent.iter().any(|r| ahead(r.1))
            || !self.rate.is_finite()
            || self.rate < 0.0
        {
            let next_ticket = self.next_ticket;
            *self = Ledger {
                next_ticket,
                ..Ledger::default()
            };
        }
    }

    /// The current rate, within (0, max].
    pub(crate) fn rate(&self, limit: &Limit) -> f64 {
        if self.rate > 0.0 {
            self.rate.min(limit.max_rate)
        } else {
            limit.max_rate
        }
    }

    /// The earliest moment at or after `not_before` a request may leave.
    pub(crate) fn earliest(&self, limit: &Limit, now: f64, not_before: f64) -> f64 {
        let mut t = now.max(not_before).max(self.locked_until);
        // Spaced only while the rate is down after a 429: at the limit, the arrivals below
        // keep every second within it.
        let rate = self.rate(limit);
        if rate < limit.max_rate {
            t = t.max(self.last_send + 1.0 / rate);
        }
        let k = limit.per_second.max(1) as usize;
        if self.recent.len() >= k {
            let mut latest: Vec<f64> = self.recent.iter().map(|r| r.1).collect();
            latest.sort_by(|a, b| b.total_cmp(a));
            t = t.max(latest[k - 1] + 1.0 + GUARD);
        }
        t
    }

    /// Book a request leaving at `t` (from [`Ledger::earliest`]) that may arrive up to
    /// `allowance` seconds later; returns its ticket.
    pub(crate) fn book(&mut self, now: f64, t: f64, allowance: f64) -> u64 {
        // Requests that arrived more than a second before any future request are done with.
        self.recent.retain(|r| r.1 > now - 1.0 - GUARD);
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.recent.push((ticket, t + allowance.max(0.0)));
        self.last_send = self.last_send.max(t);
        ticket
    }

    /// The request `ticket` had arrived by `by`.
    pub(crate) fn arrived(&mut self, ticket: u64, by: f64) {
        if let Some(r) = self.recent.iter_mut().find(|r| r.0 == ticket) {
            r.1 = r.1.min(by);
        }
    }

    /// A 429 for a request sent at `sent`: lock out everyone until `until`, and halve the
    /// rate (once per lock: the other requests in flight then meet the same lock).
    pub(crate) fn rate_limited(&mut self, limit: &Limit, until: f64, sent: f64) {
        self.locked_until = self.locked_until.max(until);
        self.rate_limited += 1;
        if sent > self.decreased_at {
            self.rate = (self.rate(limit) / 2.0).max(MIN_RATE.min(limit.max_rate));
            self.decreased_at = until - 1e-9;
        }
    }

    /// An answered request: raise the rate a little.
    pub(crate) fn answered(&mut self, limit: &Limit) {
        self.rate = (self.rate(limit) + INCREASE).min(limit.max_rate);
    }
}

/// Seconds on the monotonic clock (`CLOCK_MONOTONIC`, the same for every process on the
/// machine, unlike `Instant`, which cannot be written to a file).
pub(crate) fn now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Limit = Limit {
        per_second: 5,
        max_rate: 5.0,
        jitter: 0.1,
    };

    /// Send `n` requests as fast as the ledger allows, each answered `rtt(i)` after it left,
    /// arriving `arrive(i)` after it left; return the arrival times.
    fn run(n: usize, arrive: impl Fn(usize) -> f64, rtt: impl Fn(usize) -> f64) -> Vec<f64> {
        paced(n, arrive, rtt, false)
    }

    /// The same, with the allowance sized from the round trips as the client sizes it
    /// (`adaptive`), or the configured one.
    fn paced(
        n: usize,
        arrive: impl Fn(usize) -> f64,
        rtt: impl Fn(usize) -> f64,
        adaptive: bool,
    ) -> Vec<f64> {
        let mut l = Ledger::default();
        let mut allowance = super::super::allowance::Allowance::default();
        let mut pending: Vec<(f64, f64, u64)> = Vec::new();
        let mut clock = 0.0;
        let mut arrivals = Vec::new();
        for i in 0..n {
            let t = l.earliest(&BASE, clock, 0.0);
            // Answers that came back before t are known by then.
            pending.retain(|&(sent, done, ticket)| {
                if done <= t {
                    allowance.observe(done - sent);
                    let by = if adaptive {
                        allowance.arrived_by(sent, done)
                    } else {
                        done
                    };
                    l.arrived(ticket, by);
                    false
                } else {
                    true
                }
            });
            let t = l.earliest(&BASE, clock, 0.0);
            let a = if adaptive {
                allowance.get(BASE.jitter)
            } else {
                BASE.jitter
            };
            let ticket = l.book(t, t, a);
            clock = t;
            pending.push((t, t + rtt(i), ticket));
            arrivals.push(t + arrive(i));
        }
        arrivals
    }

    fn max_in_a_second(arrivals: &[f64]) -> usize {
        let mut a = arrivals.to_vec();
        a.sort_by(f64::total_cmp);
        (0..a.len())
            .map(|i| a[i..].iter().take_while(|&&x| x - a[i] < 1.0).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn jitter_never_puts_six_arrivals_in_a_second() {
        // Arrival jitter 0–100 ms, answers right after arrival: a pseudo-random pattern,
        // worst cases included (one late, the next five early).
        let j = |i: usize| [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.099, 0.01][i % 9];
        let arrivals = run(400, j, j);
        assert!(max_in_a_second(&arrivals) <= 5);
        // And the pace stays near the ceiling: 5 per (1 s + the mean jitter), with no
        // spacing besides.
        let rate = arrivals.len() as f64 / arrivals[arrivals.len() - 1];
        assert!(rate > 4.85, "{rate}");
    }

    #[test]
    fn slow_answers_fall_back_to_the_jitter_allowance() {
        // Fixed 500 ms round trips: each slot is held for 1 s plus the 100 ms allowance.
        let arrivals = run(200, |_| 0.05, |_| 0.5);
        assert!(max_in_a_second(&arrivals) <= 5);
        // After the first five, which leave together: 5 per 1.1 s.
        let rate = (arrivals.len() - 5) as f64 / (arrivals[arrivals.len() - 1] - arrivals[4]);
        assert!(rate > 4.5 && rate < 4.6, "{rate}");
        assert!(arrivals[4] - arrivals[0] < 1e-9, "{arrivals:?}");
    }

    #[test]
    fn steady_answers_narrow_the_allowance_toward_five_per_second() {
        // Fixed 500 ms round trips, every request 50 ms on the way: arrivals as steady as
        // the sends, so slots need not be held for jitter that does not happen.
        let arrivals = paced(300, |_| 0.05, |_| 0.5, true);
        assert!(max_in_a_second(&arrivals) <= 5);
        let steady = &arrivals[50..];
        let rate = (steady.len() - 1) as f64 / (steady[steady.len() - 1] - steady[0]);
        assert!(rate > 4.9, "{rate}");
        // Round trips that vary by 0-100 ms, as the way there does: the allowance stays
        // wide enough, whatever the pattern.
        let j = |i: usize| [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.099, 0.01][i % 9];
        let arrivals = paced(400, j, j, true);
        assert!(max_in_a_second(&arrivals) <= 5);
    }

    #[test]
    fn server_work_that_varies_frees_slots_early() {
        // 100–300 ms of server work, none of it on the way there: a slot held for the
        // configured 100 ms would cap the rate at 5 per 1.1 s.
        let work = |i: usize| 0.1 + 0.2 * ((i * 7919) % 101) as f64 / 100.0;
        let arrivals = paced(600, |_| 0.0, work, true);
        assert!(max_in_a_second(&arrivals) <= 5);
        let steady = &arrivals[100..];
        let rate = (steady.len() - 1) as f64 / (steady[steady.len() - 1] - steady[0]);
        assert!(rate > 4.58, "{rate}");
    }

    #[test]
    fn jitter_on_top_of_server_work_still_never_puts_six_arrivals_in_a_second() {
        // 0–100 ms on the way there and 100–300 ms of server work, drawn independently:
        // the fastest round trip is then not quite fast in every part, which the margin
        // covers.
        for seed in 1..21u64 {
            let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut draw = || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 53) as f64
            };
            let there: Vec<f64> = (0..2000).map(|_| 0.1 * draw()).collect();
            let work: Vec<f64> = (0..2000).map(|_| 0.1 + 0.2 * draw()).collect();
            let arrivals = paced(2000, |i| there[i], |i| there[i] + work[i], true);
            assert!(max_in_a_second(&arrivals) <= 5, "seed {seed}");
        }
    }

    #[test]
    fn a_429_halves_the_rate_then_it_recovers() {
        let mut l = Ledger::default();
        l.rate_limited(&BASE, 30.0, 0.5);
        assert_eq!(l.rate(&BASE), 2.5);
        l.rate_limited(&BASE, 30.0, 0.6);
        assert_eq!(l.rate(&BASE), 2.5, "the same lock halves the rate once");
        assert_eq!(l.earliest(&BASE, 1.0, 0.0), 30.0, "locked until then");
        // Below the limit's rate, requests are spaced by it.
        let t = l.book(30.0, 30.0, 0.1);
        assert_eq!(t, 0);
        assert_eq!(l.earliest(&BASE, 30.0, 0.0), 30.4);
        for _ in 0..100 {
            l.answered(&BASE);
        }
        assert_eq!(l.rate(&BASE), 5.0);
    }

    #[test]
    fn a_ledger_from_before_a_reboot_is_forgotten() {
        let mut l = Ledger {
            last_send: 200_000.0,
            locked_until: 200_030.0,
            next_ticket: 7,
            ..Ledger::default()
        };
        l.sanitize(60.0);
        assert_eq!(l.earliest(&BASE, 60.0, 0.0), 60.0);
        assert_eq!(l.next_ticket, 7);
        let mut ok = Ledger {
            locked_until: 90.0,
            ..Ledger::default()
        };
        ok.sanitize(60.0);
        assert_eq!(ok.locked_until, 90.0, "a lock 30 s ahead stays");
    }

    #[test]
    fn fifty_per_second_for_a_token() {
        let token = Limit {
            per_second: 50,
            max_rate: 50.0,
            jitter: 0.1,
        };
        let mut l = Ledger::default();
        let mut sent = Vec::new();
        for _ in 0..120 {
            let t = l.earliest(&token, 0.0, 0.0);
            l.book(0.0, t, token.jitter);
            sent.push(t);
        }
        assert!(max_in_a_second(&sent) <= 50);
    }
}
