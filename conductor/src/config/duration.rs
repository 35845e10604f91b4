//! Durations as people write them in flags, env vars and YAML: `500ms`, `10s`, `2m`, `1h`, `7d`.
//!
//! A unit is required: a bare `10` is refused rather than guessed (seconds? milliseconds?).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parses `<number><unit>` with unit `ms`, `s`, `m`, `h` or `d`; the number may have a fraction (`1.5s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!("invalid duration {text:?}: expected a number and a unit, e.g. 10s or 500ms"));
    }
    let value: f64 = number.parse().map_err(|_| format!("invalid duration {text:?}: {number:?} is not a number"))?;
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "" => return Err(format!("invalid duration {text:?}: missing unit (ms, s, m, h or d), e.g. {number}s")),
        other => return Err(format!("invalid duration {text:?}: unknown unit {other:?}; use ms, s, m, h or d")),
    };
    Duration::try_from_secs_f64(value * seconds_per_unit)
        .map_err(|_| format!("invalid duration {text:?}: out of range"))
}

/// Serde adapter for `Option<Duration>` fields written as duration strings.
pub fn deserialize_opt<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
    let text: Option<String> = Option::deserialize(de)?;
    text.map(|t| parse_duration(&t).map_err(serde::de::Error::custom)).transpose()
}

/// Formats a duration the way [`parse_duration`] reads it (for logs and help).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let (secs, sub_second) = (ms / 1000, ms % 1000);
    let (hours, sub_hour) = (secs / 3600, secs % 3600);
    if sub_second > 0 {
        format!("{ms}ms")
    } else if sub_hour > 0 || hours == 0 {
        format!("{secs}s")
    } else {
        format!("{hours}h")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_unit() {
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
        assert!(err.contains("unknown unit"), "{err}");
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for d in [Duration::from_millis(250), Duration::from_secs(10), Duration::from_secs(7200)] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
