//! The one duration notation of every configuration file: humantime text such as `30s`,
//! `1m30s` or `500ms`, with a bare `0` meaning zero. Whether zero is allowed is the caller's
//! rule (an SLO window must be longer than 0, a step's `at` may be 0), checked where that rule
//! lives so its message names the field's meaning.

use std::fmt;

use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration read from humantime text and written back the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Duration(d)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl std::str::FromStr for Duration {
    type Err = DurationError;
    fn from_str(text: &str) -> Result<Self, DurationError> {
        parse(text).map(Duration)
    }
}

/// Text that is not a duration, as written, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration \"{text}\": {reason} (use e.g. 30s, 1m30s, 500ms)")]
pub struct DurationError {
    pub text: String,
    pub reason: String,
}

impl From<DurationError> for String {
    /// For serde's `TryFrom<String>` conversions, whose errors are their messages.
    fn from(error: DurationError) -> String {
        error.to_string()
    }
}

/// Parses `30s`, `1m30s`, `500ms`; `0` means zero.
pub fn parse(text: &str) -> Result<std::time::Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    humantime::parse_duration(trimmed).map_err(|e| DurationError {
        text: text.to_string(),
        reason: e.to_string(),
    })
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Parsed inside the visitor, so a bad value is reported at its own node's position.
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 30s, 1m30s or 500ms")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
                text.parse().map_err(E::custom)
            }
            // Formats that type numbers (JSON) hand over `0` as a number.
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Duration, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Duration, E> {
                self.visit_str(&n.to_string())
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `#[serde(deserialize_with = "config::duration::required")]` on a `std::time::Duration`.
pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    Duration::deserialize(d).map(|d| d.0)
}

/// `#[serde(default, deserialize_with = "config::duration::optional")]` on an
/// `Option<std::time::Duration>`.
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<std::time::Duration>, D::Error> {
    Option::<Duration>::deserialize(d).map(|d| d.map(|d| d.0))
}

#[cfg(test)]
mod tests {
    use std::time::Duration as Std;

    use super::*;

    #[test]
    fn reads_what_people_write() {
        assert_eq!(parse("30s"), Ok(Std::from_secs(30)));
        assert_eq!(parse("1m30s"), Ok(Std::from_secs(90)));
        assert_eq!(parse("500ms"), Ok(Std::from_millis(500)));
        assert_eq!(parse("0"), Ok(Std::ZERO));
        assert_eq!(parse(" 0s "), Ok(Std::ZERO));
    }

    #[test]
    fn a_bad_duration_has_one_message() {
        let error = parse("soon").unwrap_err();
        assert_eq!(error.text, "soon");
        let error = error.to_string();
        assert!(error.starts_with("invalid duration \"soon\": "), "{error}");
        assert!(error.ends_with("(use e.g. 30s, 1m30s, 500ms)"), "{error}");
        // A bare number other than 0 has no unit, which is ambiguous.
        assert!(parse("5").is_err());
    }

    #[test]
    fn round_trips_through_yaml() {
        #[derive(Deserialize)]
        struct Doc {
            every: Duration,
            #[serde(deserialize_with = "required")]
            at: Std,
            #[serde(default, deserialize_with = "optional")]
            until: Option<Std>,
        }
        let doc: Doc = serde_yaml_ng::from_str("every: 1m30s\nat: 0\n").unwrap();
        assert_eq!(doc.every.0, Std::from_secs(90));
        assert_eq!(doc.at, Std::ZERO);
        assert_eq!(doc.until, None);
        let doc: Doc = serde_yaml_ng::from_str("every: 1s\nat: 2s\nuntil: 500ms\n").unwrap();
        assert_eq!(doc.until, Some(Std::from_millis(500)));
        let text = serde_yaml_ng::to_string(&Duration(Std::from_secs(90))).unwrap();
        assert_eq!(text.trim(), "1m 30s");
        assert!(serde_yaml_ng::from_str::<Doc>("every: 5 parsecs\nat: 0\n").is_err());
    }
}
