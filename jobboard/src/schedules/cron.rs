//! `CronClock`: a schedule's cron expression evaluated in its time zone.
//!
//! Five fields (minute resolution, second 0) or six with leading seconds, parsed by
//! `croner`; the time zone is an IANA name read from the tz database `jiff` bundles
//! (so a host without `/usr/share/zoneinfo` still knows every zone). Ticks are
//! whole seconds, handled as milliseconds since the Unix epoch like every board time.

use croner::parser::{CronParser, Seconds};
use croner::Cron;
use flows::Millis;
use jiff_tz::tz::TimeZone;
use jiff_tz::{Timestamp, Zoned};

use crate::error::Error;

/// A parsed cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct CronClock {
    cron: Cron,
    zone: TimeZone,
}

impl CronClock {
    /// Parses `expr` (5 fields, or 6 with leading seconds) in the IANA zone `timezone`
    /// (empty means UTC). `InvalidInput` names what is wrong.
    pub fn new(expr: &str, timezone: &str) -> Result<CronClock, Error> {
        let fields = expr.split_whitespace().count();
        if !(fields == 5 || fields == 6) {
            return Err(Error::InvalidInput(format!(
                "cron {expr:?} has {fields} fields; give 5 (minute hour day-of-month month day-of-week) or 6 with leading seconds"
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expr)
            .map_err(|e| Error::InvalidInput(format!("cron {expr:?} is not valid: {e}")))?;
        let zone = match timezone {
            "" | "UTC" => TimeZone::UTC,
            name => TimeZone::get(name).map_err(|_| {
                Error::InvalidInput(format!("time zone {name:?} is unknown (give an IANA name such as Europe/Berlin)"))
            })?,
        };
        let clock = CronClock { cron, zone };
        // A pattern that never matches (31 February) is refused now, not at its first tick.
        if clock.next_after(flows::now_millis()).is_none() {
            return Err(Error::InvalidInput(format!("cron {expr:?} never fires")));
        }
        Ok(clock)
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        // croner works in whole seconds (it drops the fraction); ticks are whole
        // seconds, so "after x" is "after x rounded down".
        let found = self.cron.find_next_occurrence(&self.zoned(after / 1_000 * 1_000)?, false).ok()?;
        u64::try_from(found.timestamp().as_millisecond()).ok()
    }

    /// The last tick strictly before `before`.
    pub fn previous_before(&self, before: Millis) -> Option<Millis> {
        // Likewise "before x" is "before x rounded up".
        let found = self.cron.find_previous_occurrence(&self.zoned(before.div_ceil(1_000) * 1_000)?, false).ok()?;
        u64::try_from(found.timestamp().as_millisecond()).ok()
    }

    fn zoned(&self, at: Millis) -> Option<Zoned> {
        let at = Timestamp::from_millisecond(i64::try_from(at).ok()?).ok()?;
        Some(at.to_zoned(self.zone.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-27T08:00:00Z.
    const EIGHT: Millis = 1_795_766_400_000;

    #[test]
    fn five_fields_tick_on_the_minute_and_six_take_seconds() {
        let minutely = CronClock::new("* * * * *", "").expect("5 fields");
        assert_eq!(minutely.next_after(EIGHT), Some(EIGHT + 60_000));
        assert_eq!(minutely.previous_before(EIGHT + 1), Some(EIGHT));
        let every_second = CronClock::new("* * * * * *", "UTC").expect("6 fields");
        assert_eq!(every_second.next_after(EIGHT + 500), Some(EIGHT + 1_000));
        let at_ten = CronClock::new("10 * * * * *", "UTC").expect("6 fields");
        assert_eq!(at_ten.next_after(EIGHT), Some(EIGHT + 10_000));
    }

    #[test]
    fn a_time_zone_moves_the_ticks() {
        // 09:00 in Berlin is 08:00 UTC in November (CET, UTC+1).
        let berlin = CronClock::new("0 9 * * *", "Europe/Berlin").expect("valid");
        assert_eq!(berlin.next_after(EIGHT - 1), Some(EIGHT));
    }

    #[test]
    fn bad_expressions_and_zones_are_named() {
        for (expr, zone, says) in [
            ("* * * *", "", "4 fields"),
            ("* * * * * * *", "", "7 fields"),
            ("61 * * * *", "", "not valid"),
            ("* * * * *", "Mars/Olympus", "Mars/Olympus"),
            ("0 0 31 2 *", "", "never fires"),
        ] {
            let error = CronClock::new(expr, zone).expect_err(expr).to_string();
            assert!(error.contains(says), "{expr} in {zone}: {error}");
        }
    }
}
