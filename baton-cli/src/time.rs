//! Instants as people read them (`2026-11-18 11:06:40Z`). Durations are
//! `flowfile::duration`'s, the workspace's one parser.

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SSZ` (UTC).
pub fn format_time(millis: u64) -> String {
    let at = i64::try_from(millis).ok().and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok());
    match at {
        Some(at) => at.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        // Beyond the year 9999: not a time any conductor writes; show the number.
        None => format!("{millis}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(format_time(1_795_000_000_123), "2026-11-18 11:06:40Z");
    }
}
