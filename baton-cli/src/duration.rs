//! Durations as people write them in flags (`500ms`, `2s`, `1.5s`, `2m`), and instants
//! as people read them (`2026-11-18 11:06:40Z`).
//!
//! A unit is required: a bare `10` is refused rather than guessed (seconds? milliseconds?).

use std::time::Duration;

/// Parses a duration with its unit (humantime's syntax: `500ms`, `10s`, `1.5s`, `2m`, `1h`, `7d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("invalid duration {text:?}: missing unit (ms, s, m, h or d), e.g. {text}s"));
    }
    humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// A duration the way [`parse_duration`] reads it (`1s`, `500ms`, `1m`).
pub fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

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
    fn reads_every_unit_and_fractions() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn refuses_missing_or_unknown_units_naming_the_text() {
        let err = parse_duration("10").unwrap_err();
        assert!(err.contains("\"10\"") && err.contains("missing unit"), "{err}");
        let err = parse_duration("10parsecs").unwrap_err();
        assert!(err.contains("\"10parsecs\""), "{err}");
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for d in
            [Duration::from_millis(250), Duration::from_secs(1), Duration::from_secs(60), Duration::from_secs(7200)]
        {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(Duration::from_secs(1)), "1s");
    }

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(format_time(1_795_000_000_123), "2026-11-18 11:06:40Z");
    }
}
