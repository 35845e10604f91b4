//! Durations as people write them, the one parser of the workspace: flow files
//! (`delay: 1s`), the conductor's flags, environment and config file, and the CLI's flags.
//!
//! The syntax is humantime's (`500ms`, `10s`, `1.5s`, `2m`, `1h`, `7d`, `1m 30s`,
//! `2 hours`). A unit is required: a bare `10` is refused rather than guessed
//! (seconds? milliseconds?), and an unknown unit is named with the common ones.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A text that is not a duration; shown as `invalid duration "TEXT": REASON`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: {reason}")]
pub struct DurationError {
    /// The text as given (trimmed).
    pub text: String,
    /// What is wrong with it, for messages that name the text their own way.
    pub reason: String,
}

/// Parses a duration with its unit (humantime's syntax: `500ms`, `10s`, `1.5s`, `2m`, `1h`, `7d`).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let refuse = |reason: String| DurationError { text: text.to_owned(), reason };
    if text.is_empty() {
        return Err(refuse("expected a number and a unit, e.g. 10s or 500ms".to_owned()));
    }
    if text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(refuse(format!("missing unit (ms, s, m, h or d), e.g. {text}s")));
    }
    humantime::parse_duration(text).map_err(|e| {
        refuse(match e {
            humantime::DurationError::UnknownUnit { unit, value, .. } if unit.is_empty() => {
                format!("missing unit (ms, s, m, h or d), e.g. {value}s")
            }
            humantime::DurationError::UnknownUnit { unit, .. } => {
                format!("unknown unit {unit:?}; use ms, s, m, h or d")
            }
            humantime::DurationError::NumberOverflow => "out of range".to_owned(),
            other => other.to_string(),
        })
    })
}

/// A duration in one unit, the way [`parse_duration`] reads it: `1500ms`, `90s`, `2h`.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
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

/// Serde adapter for `Option<Duration>` fields written as duration strings.
pub fn deserialize_opt<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
    let text: Option<String> = Option::deserialize(de)?;
    text.map(|t| parse_duration(&t).map_err(serde::de::Error::custom)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_unit_fractions_and_compounds() {
        let cases = [
            ("500ms", Duration::from_millis(500)),
            ("10s", Duration::from_secs(10)),
            ("1.5s", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("7d", Duration::from_secs(7 * 86_400)),
            (" 10 s ", Duration::from_secs(10)),
            ("1m 30s", Duration::from_secs(90)),
            ("2min", Duration::from_secs(120)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn refuses_missing_or_unknown_units_naming_the_text() {
        let err = parse_duration("10").unwrap_err();
        assert_eq!(err.to_string(), r#"invalid duration "10": missing unit (ms, s, m, h or d), e.g. 10s"#);
        let err = parse_duration("1.5").unwrap_err();
        assert!(err.reason.contains("missing unit"), "{err}");
        let err = parse_duration("10parsecs").unwrap_err();
        assert_eq!(err.to_string(), r#"invalid duration "10parsecs": unknown unit "parsecs"; use ms, s, m, h or d"#);
        let err = parse_duration("soon").unwrap_err();
        assert_eq!(err.reason, "expected number at 0");
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").unwrap_err().reason.contains("expected a number and a unit"));
        assert_eq!(parse_duration("99999999999999999999999s").unwrap_err().reason, "out of range");
    }

    #[test]
    fn formats_round_trip() {
        for d in [
            Duration::from_millis(250),
            Duration::from_secs(1),
            Duration::from_millis(1500),
            Duration::from_secs(90),
            Duration::from_secs(7200),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        let shown: Vec<String> =
            [1_000, 1_500, 90_000, 7_200_000].map(|ms| format_duration(Duration::from_millis(ms))).into();
        assert_eq!(shown, ["1s", "1500ms", "90s", "2h"]);
    }

    #[test]
    fn reads_optional_config_fields() {
        #[derive(Deserialize)]
        struct Settings {
            #[serde(default, deserialize_with = "deserialize_opt")]
            grace: Option<Duration>,
        }
        let read = |json: &str| serde_json::from_str::<Settings>(json).map(|s| s.grace);
        assert_eq!(read(r#"{"grace": "2s"}"#).ok(), Some(Some(Duration::from_secs(2))));
        assert_eq!(read("{}").ok(), Some(None));
        let err = read(r#"{"grace": "10 parsecs"}"#).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(r#""10 parsecs""#) && err.contains("unknown unit"), "{err}");
    }
}
