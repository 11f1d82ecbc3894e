//! Dates and times: a hand-written ISO-8601 parser (fast and allocation-free,
//! unlike format-string parsing) plus the rules that turn a source value into
//! PostgreSQL's binary date (i32 days since 2000-01-01), time (i64 µs since
//! midnight) and timestamp/timestamptz (i64 µs since 2000-01-01 00:00 UTC):
//! epoch integers, UTC offsets, the mapping's time zone and its DST gaps/folds.
use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use super::{Adjusted, Epoch, Reject, Rules, describe};
use crate::value::Value;

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Seconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;
const PG_EPOCH_UNIX_MICROS: i64 = PG_EPOCH_UNIX_SECS * 1_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_UNIX_DAYS: i64 = 10_957;
/// PostgreSQL's valid timestamp range: [4714-11-24 BC, 294277-01-01).
const MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
const END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;
/// PostgreSQL's valid date range (Julian day 0 .. DATE_END_JULIAN).
const MIN_DATE: i64 = -2_451_545;
const END_DATE: i64 = 2_147_483_494 - 2_451_545;

/// A parsed date or date-time, before time-zone rules are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parsed {
    Infinity,
    NegInfinity,
    /// Local wall-clock µs since 2000-01-01 00:00 (for a date alone: midnight),
    /// and the explicit UTC offset in seconds east, if one was written.
    At {
        local: i64,
        offset: Option<i32>,
    },
}

/// Parse `YYYY-MM-DD` or `YYYY-MM-DD[ T]HH:MM[:SS[.fraction]]` with an
/// optional `Z`, `+HH`, `+HHMM` or `+HH:MM` (one space may precede it), or
/// `infinity` / `-infinity`. Surrounding ASCII whitespace is ignored.
/// Fractions are rounded half up to microseconds. None if not of that shape.
fn parse_datetime(text: &[u8]) -> Option<Parsed> {
    let s = text.trim_ascii();
    if s.eq_ignore_ascii_case(b"infinity") || s.eq_ignore_ascii_case(b"+infinity") {
        return Some(Parsed::Infinity);
    }
    if s.eq_ignore_ascii_case(b"-infinity") {
        return Some(Parsed::NegInfinity);
    }
    let mut c = Cursor { s, i: 0 };
    let (ylen, year) = c.digits(6)?;
    if ylen < 4 || !(1..=294_276).contains(&year) {
        return None;
    }
    c.expect(b'-')?;
    let (mlen, month) = c.digits(2)?;
    c.expect(b'-')?;
    let (dlen, day) = c.digits(2)?;
    if mlen == 0 || dlen == 0 || !(1..=12).contains(&month) {
        return None;
    }
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day) - PG_EPOCH_UNIX_DAYS;
    let mut local = days.checked_mul(MICROS_PER_DAY)?;
    if c.done() {
        return Some(Parsed::At {
            local,
            offset: None,
        });
    }
    match c.next()? {
        b' ' | b'T' | b't' => {}
        _ => return None,
    }
    local = local.checked_add(c.time_of_day()?)?;
    let offset = c.offset()?;
    if !c.done() {
        return None;
    }
    Some(Parsed::At { local, offset })
}

/// Parse `HH:MM[:SS[.fraction]]` into µs since midnight (24:00:00 allowed).
fn parse_time(text: &[u8]) -> Option<i64> {
    let mut c = Cursor {
        s: text.trim_ascii(),
        i: 0,
    };
    let t = c.time_of_day()?;
    c.done().then_some(t)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }
    fn expect(&mut self, b: u8) -> Option<()> {
        (self.next()? == b).then_some(())
    }
    /// Up to `max` digits; returns (count, value).
    fn digits(&mut self, max: usize) -> Option<(usize, i64)> {
        let mut n = 0usize;
        let mut v: i64 = 0;
        while let Some(b) = self.peek() {
            if !b.is_ascii_digit() || n == max {
                break;
            }
            v = v * 10 + i64::from(b - b'0');
            n += 1;
            self.i += 1;
        }
        Some((n, v))
    }
    fn exactly(&mut self, n: usize) -> Option<i64> {
        let (got, v) = self.digits(n)?;
        (got == n).then_some(v)
    }
    /// HH:MM[:SS[.frac]] -> µs; hour 0-23 (or 24:00:00 exactly).
    fn time_of_day(&mut self) -> Option<i64> {
        let (hlen, hour) = self.digits(2)?;
        if hlen == 0 {
            return None;
        }
        self.expect(b':')?;
        let minute = self.exactly(2)?;
        let mut second = 0;
        let mut micros = 0;
        if self.peek() == Some(b':') {
            self.i += 1;
            second = self.exactly(2)?;
            if let Some(b'.' | b',') = self.peek() {
                self.i += 1;
                let mut n = 0usize;
                let mut round_up = false;
                while let Some(b) = self.peek() {
                    if !b.is_ascii_digit() {
                        break;
                    }
                    if n < 6 {
                        micros = micros * 10 + i64::from(b - b'0');
                    } else if n == 6 {
                        round_up = b >= b'5';
                    }
                    n += 1;
                    self.i += 1;
                }
                if n == 0 {
                    return None;
                }
                for _ in n..6 {
                    micros *= 10;
                }
                if round_up {
                    micros += 1;
                }
            }
        }
        if minute > 59 || second > 59 {
            return None;
        }
        if hour > 24 || (hour == 24 && (minute != 0 || second != 0 || micros != 0)) {
            return None;
        }
        Some(((hour * 60 + minute) * 60 + second) * 1_000_000 + micros)
    }
    /// Optional trailing offset; Some(None) when there is none.
    fn offset(&mut self) -> Option<Option<i32>> {
        if self.done() {
            return Some(None);
        }
        if self.peek() == Some(b' ') {
            self.i += 1;
        }
        let sign = match self.next()? {
            b'Z' | b'z' => return Some(Some(0)),
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let hours = self.exactly(2)?;
        let mut minutes = 0;
        if self.peek() == Some(b':') {
            self.i += 1;
            minutes = self.exactly(2)?;
        } else if !self.done() {
            minutes = self.exactly(2)?;
        }
        if hours > 15 || minutes > 59 {
            return None;
        }
        Some(Some(sign * (hours * 3600 + minutes * 60) as i32))
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn naive(pg_micros: i64) -> Option<NaiveDateTime> {
    let unix = pg_micros.checked_add(PG_EPOCH_UNIX_MICROS)?;
    DateTime::from_timestamp_micros(unix).map(|d| d.naive_utc())
}

fn pg_micros(n: NaiveDateTime) -> i64 {
    n.and_utc().timestamp_micros() - PG_EPOCH_UNIX_MICROS
}

fn out_of_range(v: Value<'_>, what: &str) -> Reject {
    Reject::new(format!(
        "{} is out of range for a {what} column",
        describe(v)
    ))
}

/// Wall-clock time in `tz` -> UTC. An ambiguous time (DST fold) takes the UTC offset in force
/// just after the transition — the later instant — as PostgreSQL does for its own text input,
/// so a value means the same whether cutover or PostgreSQL parses it. A wall-clock time
/// skipped by a DST gap is rejected (PostgreSQL would silently shift it).
fn local_to_utc(local: i64, tz: Tz, v: Value<'_>, what: &str) -> Result<i64, Reject> {
    if tz == Tz::UTC {
        return Ok(local);
    }
    let n = naive(local).ok_or_else(|| out_of_range(v, what))?;
    match tz.from_local_datetime(&n) {
        LocalResult::Single(dt) => Ok(pg_micros(dt.naive_utc())),
        LocalResult::Ambiguous(_, late) => Ok(pg_micros(late.naive_utc())),
        LocalResult::None => Err(Reject::new(format!(
            "{} does not exist in time zone {} (skipped by a daylight-saving change): \
             fix the source or give the value an explicit UTC offset",
            describe(v),
            tz.name()
        ))),
    }
}

/// UTC -> wall-clock time in `tz`.
fn utc_to_local(utc: i64, tz: Tz, v: Value<'_>, what: &str) -> Result<i64, Reject> {
    if tz == Tz::UTC {
        return Ok(utc);
    }
    let n = naive(utc).ok_or_else(|| out_of_range(v, what))?;
    Ok(pg_micros(tz.from_utc_datetime(&n).naive_local()))
}

/// What a source value says about a point in time.
enum Instant {
    Infinity,
    NegInfinity,
    /// µs since 2000-01-01 UTC.
    Utc(i64),
    /// Wall-clock µs since 2000-01-01 in the mapping's time zone.
    Local(i64),
}

fn epoch_int(n: i64, epoch: Option<Epoch>, v: Value<'_>, what: &str) -> Result<Instant, Reject> {
    let unix = match epoch {
        Some(Epoch::Seconds) => n.checked_mul(1_000_000),
        Some(Epoch::Millis) => n.checked_mul(1_000),
        None => {
            return Err(Reject::new(format!(
                "integer {} in a {what} column: set `epoch = \"seconds\"` or \
                 `\"milliseconds\"` in the mapping",
                describe(v)
            )));
        }
    };
    unix.and_then(|u| u.checked_sub(PG_EPOCH_UNIX_MICROS))
        .map(Instant::Utc)
        .ok_or_else(|| out_of_range(v, what))
}

fn epoch_float(f: f64, epoch: Option<Epoch>, v: Value<'_>, what: &str) -> Result<Instant, Reject> {
    let scale = match epoch {
        Some(Epoch::Seconds) => 1e6,
        Some(Epoch::Millis) => 1e3,
        None => {
            return Err(Reject::new(format!(
                "number {} in a {what} column: set `epoch = \"seconds\"` or \
                 `\"milliseconds\"` in the mapping",
                describe(v)
            )));
        }
    };
    let micros = (f * scale).round();
    // 9.2e18 is comfortably inside i64 and far beyond PostgreSQL's range.
    if !micros.is_finite() || micros.abs() > 9.2e18 {
        return Err(out_of_range(v, what));
    }
    (micros as i64)
        .checked_sub(PG_EPOCH_UNIX_MICROS)
        .map(Instant::Utc)
        .ok_or_else(|| out_of_range(v, what))
}

/// Text of digits with an optional leading '-' (an epoch time when `epoch` is set).
fn is_integer_text(t: &[u8]) -> bool {
    let digits = t.strip_prefix(b"-").unwrap_or(t);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

fn interpret(v: Value<'_>, rules: &Rules, what: &str) -> Result<Instant, Reject> {
    match v {
        Value::Int(n) => epoch_int(n, rules.epoch, v, what),
        Value::Float(f) => epoch_float(f, rules.epoch, v, what),
        Value::Text(t) => {
            let s = t.trim_ascii();
            if is_integer_text(s) {
                return match std::str::from_utf8(s)
                    .ok()
                    .and_then(|x| x.parse::<i64>().ok())
                {
                    Some(n) => epoch_int(n, rules.epoch, v, what),
                    None if rules.epoch.is_none() => epoch_int(0, None, v, what),
                    None => Err(out_of_range(v, what)),
                };
            }
            match parse_datetime(s) {
                Some(Parsed::Infinity) => Ok(Instant::Infinity),
                Some(Parsed::NegInfinity) => Ok(Instant::NegInfinity),
                Some(Parsed::At {
                    local,
                    offset: Some(off),
                }) => local
                    .checked_sub(i64::from(off) * 1_000_000)
                    .map(Instant::Utc)
                    .ok_or_else(|| out_of_range(v, what)),
                Some(Parsed::At {
                    local,
                    offset: None,
                }) => Ok(Instant::Local(local)),
                None => Err(Reject::new(format!(
                    "{} is not a {what}: expected YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS[.ffffff]] \
                     with an optional Z or +HH:MM offset",
                    describe(v)
                ))),
            }
        }
        _ => Err(Reject::new(format!(
            "{} cannot go into a {what} column",
            describe(v)
        ))),
    }
}

fn check_timestamp(ts: i64, v: Value<'_>, what: &str) -> Result<i64, Reject> {
    if (MIN_TIMESTAMP..END_TIMESTAMP).contains(&ts) {
        Ok(ts)
    } else {
        Err(out_of_range(v, what))
    }
}

/// A `timestamp` (`with_tz` false: wall-clock time in `rules.timezone`) or
/// `timestamptz` (`with_tz` true: UTC) value.
pub(crate) fn to_timestamp(v: Value<'_>, rules: &Rules, with_tz: bool) -> Result<i64, Reject> {
    let what = if with_tz { "timestamptz" } else { "timestamp" };
    let ts = match interpret(v, rules, what)? {
        Instant::Infinity => return Ok(i64::MAX),
        Instant::NegInfinity => return Ok(i64::MIN),
        Instant::Utc(u) if with_tz => u,
        Instant::Utc(u) => utc_to_local(u, rules.timezone, v, what)?,
        Instant::Local(l) if with_tz => local_to_utc(l, rules.timezone, v, what)?,
        Instant::Local(l) => l,
    };
    check_timestamp(ts, v, what)
}

/// A `date`: the calendar date in `rules.timezone`. Date-time text whose time of day (in
/// that zone) is not midnight would lose its time: a reject, unless the mapping says
/// `truncate = true`, which keeps the date (counted in `adjusted`). Epoch times (`epoch`)
/// are instants by the mapping's own choice and always give their date.
pub(crate) fn to_date(v: Value<'_>, rules: &Rules, adjusted: &mut Adjusted) -> Result<i32, Reject> {
    let what = "date";
    let local = match interpret(v, rules, what)? {
        Instant::Infinity => return Ok(i32::MAX),
        Instant::NegInfinity => return Ok(i32::MIN),
        Instant::Utc(u) => utc_to_local(u, rules.timezone, v, what)?,
        Instant::Local(l) => l,
    };
    let days = local.div_euclid(MICROS_PER_DAY);
    let timed_text = matches!(v, Value::Text(t) if !is_integer_text(t.trim_ascii()));
    if timed_text && local.rem_euclid(MICROS_PER_DAY) != 0 {
        if !rules.truncate {
            return Err(Reject::new(format!(
                "{} has a time of day, which a date column cannot hold: set truncate = true in the mapping to keep the date, or use a timestamp column",
                describe(v)
            )));
        }
        adjusted.truncated = true;
    }
    if (MIN_DATE..END_DATE).contains(&days) {
        i32::try_from(days).map_err(|_| out_of_range(v, what))
    } else {
        Err(out_of_range(v, what))
    }
}

/// A `time` (without time zone).
pub(crate) fn to_time(v: Value<'_>) -> Result<i64, Reject> {
    match v {
        Value::Text(t) => parse_time(t).ok_or_else(|| {
            Reject::new(format!(
                "{} is not a time of day: expected HH:MM[:SS[.ffffff]]",
                describe(v)
            ))
        }),
        _ => Err(Reject::new(format!(
            "{} cannot go into a time column: expected text HH:MM[:SS[.ffffff]]",
            describe(v)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{col_r, enc, err, ok, t};
    use crate::pg::PgType;

    const DAY: i64 = MICROS_PER_DAY;
    const HOUR: i64 = 3_600_000_000;

    fn at(s: &str) -> Option<(i64, Option<i32>)> {
        match parse_datetime(s.as_bytes())? {
            Parsed::At { local, offset } => Some((local, offset)),
            _ => None,
        }
    }

    fn rules(tz: Tz, epoch: Option<Epoch>) -> Rules {
        Rules {
            timezone: tz,
            epoch,
            ..Rules::default()
        }
    }

    fn ts(s: &str, r: &Rules, with_tz: bool) -> Result<i64, Reject> {
        to_timestamp(Value::Text(s.as_bytes()), r, with_tz)
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1), PG_EPOCH_UNIX_DAYS);
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 1),
            29
        );
        assert_eq!(
            days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 1),
            28
        );
        // cross-check against chrono over a wide range
        let base = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for y in [1, 4, 100, 1582, 1899, 1999, 2000, 2024, 2100, 9999] {
            for m in 1..=12 {
                let d = chrono::NaiveDate::from_ymd_opt(y as i32, m as u32, 1).unwrap();
                assert_eq!(days_from_civil(y, m, 1), (d - base).num_days());
            }
        }
    }

    #[test]
    fn parse_shapes() {
        assert_eq!(at("2000-01-01"), Some((0, None)));
        assert_eq!(at("2000-01-02"), Some((DAY, None)));
        assert_eq!(at("1999-12-31"), Some((-DAY, None)));
        assert_eq!(at("2000-01-01 01:02"), Some((HOUR + 120_000_000, None)));
        assert_eq!(at("2000-01-01T01:02:03"), Some((HOUR + 123_000_000, None)));
        assert_eq!(at("2000-01-01 00:00:00.5"), Some((500_000, None)));
        assert_eq!(at("2000-01-01 00:00:00.123456789"), Some((123_457, None)));
        assert_eq!(at("2000-01-01 00:00:00.0000004"), Some((0, None)));
        assert_eq!(at("2000-01-01 23:59:59.9999995"), Some((DAY, None)));
        assert_eq!(at("2000-01-01 24:00:00"), Some((DAY, None)));
        assert_eq!(at("2000-01-01 00:00Z"), Some((0, Some(0))));
        assert_eq!(at("2000-01-01 00:00:00+02"), Some((0, Some(7200))));
        assert_eq!(at("2000-01-01 00:00:00-0530"), Some((0, Some(-19800))));
        assert_eq!(at("2000-01-01 00:00:00 +05:30"), Some((0, Some(19800))));
        assert_eq!(at(" 2024-2-9 "), at("2024-02-09"));
        assert_eq!(parse_datetime(b"Infinity"), Some(Parsed::Infinity));
        assert_eq!(parse_datetime(b"-infinity"), Some(Parsed::NegInfinity));
        for bad in [
            "",
            "2024",
            "2024-02-30",
            "2023-02-29",
            "2024-13-01",
            "2024-00-01",
            "0000-01-01",
            "24-01-01",
            "2024/01/01",
            "2024-01-01 25:00",
            "2024-01-01 24:00:01",
            "2024-01-01 12:60",
            "2024-01-01 12:00:60",
            "2024-01-01 12",
            "2024-01-01 12:00:00.",
            "2024-01-01 12:00:00+1",
            "2024-01-01 12:00:00+16",
            "2024-01-01 12:00:00+01:60",
            "2024-01-01 12:00:00 x",
            "2024-01-01x",
            "294277-01-01",
            "1234567-01-01",
        ] {
            assert_eq!(parse_datetime(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(parse_time(b"00:00"), Some(0));
        assert_eq!(
            parse_time(b"13:45:30.25"),
            Some(((13 * 60 + 45) * 60 + 30) * 1_000_000 + 250_000)
        );
        assert_eq!(parse_time(b"24:00:00"), Some(DAY));
        assert_eq!(parse_time(b"24:00:01"), None);
        assert_eq!(parse_time(b"12"), None);
    }

    #[test]
    fn timestamps_and_offsets() {
        let utc = rules(Tz::UTC, None);
        assert_eq!(ts("2000-01-01 00:00:00", &utc, true).unwrap(), 0);
        assert_eq!(ts("2000-01-01 02:00:00+02:00", &utc, true).unwrap(), 0);
        assert_eq!(ts("2000-01-01 02:00:00+02:00", &utc, false).unwrap(), 0);
        let ny = rules(chrono_tz::America::New_York, None);
        // naive into timestamptz: interpreted in New York (EST = UTC-5)
        assert_eq!(ts("2000-01-01 00:00:00", &ny, true).unwrap(), 5 * HOUR);
        // naive into timestamp: kept as is
        assert_eq!(ts("2000-01-01 00:00:00", &ny, false).unwrap(), 0);
        // offset into timestamp: converted to New York wall-clock time
        assert_eq!(ts("2000-01-01 05:00:00Z", &ny, false).unwrap(), 0);
        assert_eq!(ts("infinity", &ny, true).unwrap(), i64::MAX);
        assert_eq!(ts("-infinity", &ny, false).unwrap(), i64::MIN);
        let r = ts("2024-03-01 00:00:00 x", &utc, true).unwrap_err();
        assert!(r.reason.contains("is not a timestamptz"), "{}", r.reason);
    }

    #[test]
    fn dst_gap_and_fold() {
        let ny = rules(chrono_tz::America::New_York, None);
        // 2024-03-10 02:30 does not exist in New York
        let r = ts("2024-03-10 02:30:00", &ny, true).unwrap_err();
        assert!(r.reason.contains("America/New_York"), "{}", r.reason);
        assert!(r.reason.contains("does not exist"), "{}", r.reason);
        // but it is fine as a naive timestamp and with an explicit offset
        assert!(ts("2024-03-10 02:30:00", &ny, false).is_ok());
        assert!(ts("2024-03-10 02:30:00-05:00", &ny, true).is_ok());
        // 2024-11-03 01:30 happens twice: take the later one (EST, UTC-5), as PostgreSQL
        // does: SELECT '2024-11-03 01:30'::timestamp AT TIME ZONE 'America/New_York'
        let fold = ts("2024-11-03 01:30:00", &ny, true).unwrap();
        let expect = ts("2024-11-03 06:30:00Z", &ny, true).unwrap();
        assert_eq!(fold, expect);
    }

    #[test]
    fn epochs() {
        let none = rules(Tz::UTC, None);
        let s = rules(Tz::UTC, Some(Epoch::Seconds));
        let ms = rules(Tz::UTC, Some(Epoch::Millis));
        let r = to_timestamp(Value::Int(1_700_000_000), &none, true).unwrap_err();
        assert!(r.reason.contains("epoch = \"seconds\""), "{}", r.reason);
        assert!(r.reason.contains("timestamptz column"), "{}", r.reason);
        assert!(ts("1700000000", &none, true).is_err());
        assert!(
            to_date(Value::Int(5), &none, &mut Adjusted::default())
                .unwrap_err()
                .reason
                .contains("date column")
        );
        assert_eq!(to_timestamp(Value::Int(946_684_800), &s, true).unwrap(), 0);
        assert_eq!(
            to_timestamp(Value::Int(946_684_800_000), &ms, true).unwrap(),
            0
        );
        assert_eq!(ts("946684801", &s, true).unwrap(), 1_000_000);
        assert_eq!(
            ts("-1", &s, true).unwrap(),
            -PG_EPOCH_UNIX_MICROS - 1_000_000
        );
        assert_eq!(
            to_timestamp(Value::Float(946_684_800.25), &s, true).unwrap(),
            250_000
        );
        assert_eq!(
            to_timestamp(Value::Float(946_684_800_000.5), &ms, true).unwrap(),
            500
        );
        assert_eq!(
            to_timestamp(Value::Int(0), &s, true).unwrap(),
            -PG_EPOCH_UNIX_MICROS
        );
        for n in [i64::MAX, i64::MIN] {
            assert!(to_timestamp(Value::Int(n), &s, true).is_err());
            assert!(to_timestamp(Value::Int(n), &ms, false).is_err());
            assert!(to_date(Value::Int(n), &s, &mut Adjusted::default()).is_err());
        }
        assert!(to_timestamp(Value::Float(f64::NAN), &s, true).is_err());
        assert!(to_timestamp(Value::Float(1e300), &s, true).is_err());
        assert!(ts("99999999999999999999999", &s, true).is_err());
        // epoch into date uses the mapping's time zone
        let tokyo = rules(chrono_tz::Asia::Tokyo, Some(Epoch::Seconds));
        // 2000-01-01 20:00 UTC is 2000-01-02 05:00 in Tokyo
        assert_eq!(
            to_date(
                Value::Int(946_684_800 + 20 * 3600),
                &tokyo,
                &mut Adjusted::default()
            )
            .unwrap(),
            1
        );
        assert_eq!(
            to_date(
                Value::Int(946_684_800 + 20 * 3600),
                &s,
                &mut Adjusted::default()
            )
            .unwrap(),
            0
        );
    }

    #[test]
    fn dates() {
        let utc = rules(Tz::UTC, None);
        let d =
            |s: &str, r: &Rules| to_date(Value::Text(s.as_bytes()), r, &mut Adjusted::default());
        assert_eq!(d("2000-01-01", &utc).unwrap(), 0);
        assert_eq!(d("1999-12-31", &utc).unwrap(), -1);
        assert_eq!(d("2024-02-29", &utc).unwrap(), 8825);
        // A time of day that is midnight loses nothing.
        assert_eq!(d("2000-01-01 00:00:00", &utc).unwrap(), 0);
        assert_eq!(d("2000-01-01T02:00:00+02:00", &utc).unwrap(), 0);
        // Any other time of day would be lost: a reject, unless the mapping says truncate.
        let e = d("2000-01-01 23:00:00", &utc).unwrap_err();
        assert!(e.reason.contains("has a time of day"), "{}", e.reason);
        assert!(e.reason.contains("truncate = true"), "{}", e.reason);
        assert!(d("2000-01-01 23:00:00-02:00", &utc).is_err());
        let cut = |s: &str, tz: Tz| {
            let r = Rules {
                truncate: true,
                ..rules(tz, None)
            };
            let mut a = Adjusted::default();
            let days = to_date(Value::Text(s.as_bytes()), &r, &mut a).unwrap();
            (days, a.truncated)
        };
        assert_eq!(cut("2000-01-01 23:00:00", Tz::UTC), (0, true));
        assert_eq!(cut("2000-01-01 23:00:00-02:00", Tz::UTC), (1, true));
        assert_eq!(
            cut("2000-01-02 03:00:00Z", chrono_tz::America::Los_Angeles),
            (0, true)
        );
        assert_eq!(cut("2000-01-02", Tz::UTC), (1, false));
        // Epoch times are instants by the mapping's choice: their date, not counted.
        let mut a = Adjusted::default();
        let s = rules(Tz::UTC, Some(Epoch::Seconds));
        assert_eq!(to_date(Value::Text(b"946731600"), &s, &mut a).unwrap(), 0);
        assert!(!a.truncated);
        assert_eq!(d("infinity", &utc).unwrap(), i32::MAX);
        assert_eq!(d("-infinity", &utc).unwrap(), i32::MIN);
        assert_eq!(d("0001-01-01", &utc).unwrap(), -730_119);
        assert!(to_date(Value::Bool(true), &utc, &mut Adjusted::default()).is_err());
        assert!(to_date(Value::Blob(b"2000-01-01"), &utc, &mut Adjusted::default()).is_err());
    }

    #[test]
    fn time_column() {
        assert_eq!(to_time(Value::Text(b" 01:00 ")).unwrap(), HOUR);
        assert!(to_time(Value::Int(5)).is_err());
        assert!(to_time(Value::Text(b"2000-01-01 01:00")).is_err());
    }

    #[test]
    fn dates_times_through_converter() {
        assert_eq!(ok(t("2000-01-02"), PgType::Date), 1i32.to_be_bytes());
        assert_eq!(
            ok(t("2000-01-01 00:00:01"), PgType::Timestamp),
            1_000_000i64.to_be_bytes()
        );
        assert_eq!(
            ok(t("2000-01-01T00:00:01Z"), PgType::Timestamptz),
            1_000_000i64.to_be_bytes()
        );
        assert_eq!(ok(t("00:00:01"), PgType::Time), 1_000_000i64.to_be_bytes());
        assert_eq!(
            ok(t("infinity"), PgType::Timestamptz),
            i64::MAX.to_be_bytes()
        );
        assert_eq!(ok(t("-infinity"), PgType::Date), i32::MIN.to_be_bytes());
        let r = err(Value::Int(1_700_000_000), PgType::Timestamptz);
        assert_eq!(
            r,
            "integer 1700000000 in a timestamptz column: set `epoch = \"seconds\"` or `\"milliseconds\"` in the mapping"
        );
        let c = col_r(
            PgType::Timestamptz,
            Rules {
                epoch: Some(Epoch::Millis),
                ..Rules::default()
            },
        );
        assert_eq!(
            enc(Value::Int(946_684_800_001), &c).unwrap()[4..],
            1000i64.to_be_bytes()
        );
        assert_eq!(
            enc(t("946684800001"), &c).unwrap()[4..],
            1000i64.to_be_bytes()
        );
        let c = col_r(
            PgType::Timestamptz,
            Rules {
                timezone: chrono_tz::Europe::Berlin,
                ..Rules::default()
            },
        );
        assert!(
            enc(t("2024-03-31 02:30"), &c)
                .unwrap_err()
                .reason
                .contains("Europe/Berlin")
        );
        assert_eq!(
            enc(t("2000-01-01 01:00"), &c).unwrap()[4..],
            0i64.to_be_bytes(),
            "Berlin is UTC+1 in winter"
        );
    }
}
