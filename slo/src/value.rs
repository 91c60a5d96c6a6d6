//! Units and numbers as people write and read them.
//!
//! An SLO file says `500ms`, `1%` or `5m` rather than `0.5`, `0.01` or `300`: [`Amount`] accepts
//! both forms and stores the value in the SLI's base unit (seconds, ratio, count), so the
//! evaluator compares plain numbers. [`Unit`] turns values back into text (`437.5 ms`,
//! `0.8 %`) and names the unit a run report expects (`ms`, `ratio`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// What an SLI measures, which fixes its base unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A request latency, in seconds (shown in ms).
    Latency,
    /// A span of time such as a recovery time, in seconds.
    Duration,
    /// A fraction, 0.01 = 1 % (shown in %).
    Ratio,
    /// A number of pods.
    Replicas,
    /// A number of Kafka messages.
    Messages,
    /// A plain number (a PromQL expression of unknown meaning).
    Number,
}

impl Unit {
    /// The unit name used in [`reports::SloVerdict::unit`] and the value converted to it: run
    /// reports show latencies in milliseconds.
    pub fn for_report(self, value: f64) -> (f64, Option<&'static str>) {
        match self {
            Unit::Latency => (value * 1000.0, Some("ms")),
            Unit::Duration => (value, Some("s")),
            Unit::Ratio => (value, Some("ratio")),
            Unit::Replicas => (value, Some("replicas")),
            Unit::Messages => (value, Some("messages")),
            Unit::Number => (value, None),
        }
    }

    /// `value` (in the base unit) as text, e.g. `437.5 ms`, `0.8 %`, `45 s`, `6 replicas`.
    pub fn format(self, value: f64) -> String {
        if !value.is_finite() {
            return value.to_string();
        }
        match self {
            Unit::Latency if value.abs() < 1.0 => format!("{} ms", trimmed(value * 1000.0)),
            Unit::Latency | Unit::Duration => format!("{} s", trimmed(value)),
            Unit::Ratio => format!("{} %", trimmed(value * 100.0)),
            Unit::Replicas => format!("{} replicas", trimmed(value)),
            Unit::Messages => format!("{} messages", trimmed(value)),
            Unit::Number => trimmed(value),
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Latency => "latency",
            Unit::Duration => "duration",
            Unit::Ratio => "ratio",
            Unit::Replicas => "replicas",
            Unit::Messages => "messages",
            Unit::Number => "number",
        })
    }
}

/// Up to three decimals, without trailing zeros: `500`, `437.5`, `0.498`.
fn trimmed(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// A number in an SLO file: `0.5`, `1000`, `"500ms"`, `"5m"` (seconds) or `"1%"` (a ratio).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Amount(pub f64);

impl Amount {
    /// Parses the text form; plain numbers are taken as they are.
    pub fn parse(text: &str) -> Result<Amount, String> {
        let text = text.trim();
        if let Some(percent) = text.strip_suffix('%') {
            return percent
                .trim()
                .parse::<f64>()
                .map(|p| Amount(p / 100.0))
                .map_err(|_| format!("`{text}` is not a percentage like `1%` or `0.5%`"));
        }
        if let Ok(number) = text.parse::<f64>() {
            return Ok(Amount(number));
        }
        humantime::parse_duration(text)
            .map(|d| Amount(d.as_secs_f64()))
            .map_err(|_| {
                format!(
                    "`{text}` is neither a number, a percentage (`1%`) nor a duration (`500ms`, `5m`)"
                )
            })
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, a percentage like `1%` or a duration like `500ms`")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Amount, E> {
                Ok(Amount(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Amount, E> {
                Ok(Amount(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Amount, E> {
                Ok(Amount(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Amount, E> {
                Amount::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A duration in an SLO file, written the humantime way: `15m`, `30s`, `1h 30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl TryFrom<String> for HumanDuration {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let duration = config::duration::parse(&text)?;
        if duration.is_zero() {
            return Err("the duration must be longer than 0".into());
        }
        Ok(HumanDuration(duration))
    }
}

config::deserialize_validated!(HumanDuration, string);

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        config::Duration(self.0).serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_accept_numbers_percentages_and_durations() {
        assert_eq!(Amount::parse("0.5").unwrap(), Amount(0.5));
        assert_eq!(Amount::parse("1%").unwrap(), Amount(0.01));
        assert_eq!(Amount::parse("500ms").unwrap(), Amount(0.5));
        assert_eq!(Amount::parse("5m").unwrap(), Amount(300.0));
        assert!(Amount::parse("fast").unwrap_err().contains("`fast`"));
        assert!(Amount::parse("x%").is_err());
    }

    #[test]
    fn values_are_shown_in_the_unit_people_use() {
        assert_eq!(Unit::Latency.format(0.4375), "437.5 ms");
        assert_eq!(Unit::Latency.format(1.25), "1.25 s");
        assert_eq!(Unit::Ratio.format(0.00498), "0.498 %");
        assert_eq!(Unit::Duration.format(45.0), "45 s");
        assert_eq!(Unit::Replicas.format(4.0), "4 replicas");
        assert_eq!(Unit::Number.format(-0.0), "0");
        assert_eq!(Unit::Latency.for_report(0.5), (500.0, Some("ms")));
    }
}
