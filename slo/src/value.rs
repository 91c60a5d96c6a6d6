//! Units and numbers as people write and read them.
//!
//! An SLO file says `500ms`, `1%` or `5m` rather than `0.5`, `0.01` or `300`: [`Bound`] reads
//! those forms, remembers which one was written (a bare number on a latency is refused) and
//! stores the value in the SLI's base unit (seconds, ratio, count), so the evaluator compares
//! plain numbers. [`Unit`] turns values back into text (`437.5 ms`,
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

/// How the number of an objective was written, which tells what its author meant by it: a bare
/// `500` could be milliseconds or seconds, a bare `5` a fraction or a percentage, so objectives
/// whose SLI has a unit must say it (see [`Unit::check_bound`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// A plain number: `500`, `0.01`, `"3"`.
    Bare,
    /// A percentage: `1%`.
    Percent,
    /// A fraction with its explicit marker: `0.01 ratio`.
    Fraction,
    /// A duration: `500ms`, `2s`, `5m`.
    Duration,
}

/// The marker of a ratio written as a fraction: `lt: 0.01 ratio` is `lt: 1%`.
pub const FRACTION_SUFFIX: &str = "ratio";

/// One bound of an objective (`lt`, `warn`, ...): its value in the SLI's base unit, how it was
/// written, and the text as written, for error messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    pub value: f64,
    pub written: Written,
    pub text: String,
}

impl Bound {
    /// Parses the text form of a bound (YAML numbers arrive here as their text too).
    pub fn parse(text: &str) -> Result<Bound, String> {
        let text = text.trim();
        let bound = |value: f64, written: Written| {
            if value.is_finite() {
                Ok(Bound {
                    value,
                    written,
                    text: text.to_string(),
                })
            } else {
                Err(format!("`{text}` is not a finite number"))
            }
        };
        if let Some(percent) = text.strip_suffix('%') {
            let percent = percent
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("`{text}` is not a percentage like `1%` or `0.5%`"))?;
            return bound(percent / 100.0, Written::Percent);
        }
        if let Some(fraction) = text.strip_suffix(FRACTION_SUFFIX) {
            let fraction = fraction
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("`{text}` is not a fraction like `0.01 {FRACTION_SUFFIX}`"))?;
            return bound(fraction, Written::Fraction);
        }
        if let Ok(number) = text.parse::<f64>() {
            return bound(number, Written::Bare);
        }
        humantime::parse_duration(text)
            .map_err(|_| {
                format!(
                    "`{text}` is neither a number, a percentage (`1%`), a fraction \
                     (`0.01 {FRACTION_SUFFIX}`) nor a duration (`500ms`, `5m`)"
                )
            })
            .and_then(|d| bound(d.as_secs_f64(), Written::Duration))
    }
}

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BoundVisitor { check: None })
    }
}

/// Reads a [`Bound`] and, when `check` names the SLI's unit and the field, refuses a bound
/// written in the wrong unit right inside the scalar, so the error carries its line.
pub(crate) struct BoundVisitor {
    pub check: Option<(Unit, &'static str)>,
}

impl BoundVisitor {
    fn accept<E: serde::de::Error>(&self, text: &str) -> Result<Bound, E> {
        let bound = Bound::parse(text).map_err(E::custom)?;
        if let Some((unit, field)) = self.check {
            unit.check_bound(field, &bound).map_err(E::custom)?;
        }
        Ok(bound)
    }
}

impl serde::de::Visitor<'_> for BoundVisitor {
    type Value = Bound;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, a percentage like `1%` or a duration like `500ms`")
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Bound, E> {
        self.accept(&v.to_string())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Bound, E> {
        self.accept(&v.to_string())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Bound, E> {
        self.accept(&v.to_string())
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Bound, E> {
        self.accept(v)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for BoundVisitor {
    type Value = Bound;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Bound, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Written {
    /// `value` (base unit) the way it was written, for messages about a bound whose text is
    /// gone: `500`, `1%`, `0.01 ratio`, `500ms`.
    pub fn text(self, value: f64) -> String {
        match self {
            Written::Bare => trimmed_exact(value),
            Written::Percent => format!("{}%", trimmed_exact(value * 100.0)),
            Written::Fraction => format!("{} {FRACTION_SUFFIX}", trimmed_exact(value)),
            Written::Duration => {
                humantime::format_duration(Duration::from_secs_f64(value.max(0.0))).to_string()
            }
        }
    }
}

/// A number without float noise or trailing zeros: `0.01`, `500`, `0.0001`.
fn trimmed_exact(value: f64) -> String {
    let text = format!("{value:.9}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// An objective bound written in a unit its SLI cannot be compared with; the message says how
/// to write it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UnitError {
    /// The objective field, e.g. `lt` or `warn`.
    pub field: String,
    pub message: String,
}

impl Unit {
    /// Whether `bound`, given as objective field `field`, is written in a unit this SLI can be
    /// compared with. Latencies and durations need a duration, ratios a percentage or an
    /// explicit fraction, counts a plain number; the error says how to write it.
    pub fn check_bound(self, field: &str, bound: &Bound) -> Result<(), UnitError> {
        self.bound_problem(field, bound)
            .map_err(|message| UnitError {
                field: field.to_string(),
                message,
            })
    }

    fn bound_problem(self, field: &str, bound: &Bound) -> Result<(), String> {
        let given = format!("`{field}: {}`", bound.text);
        let number = bound.value;
        match (self, bound.written) {
            (Unit::Latency | Unit::Duration, Written::Duration)
            | (Unit::Ratio, Written::Percent | Written::Fraction)
            | (Unit::Replicas | Unit::Messages | Unit::Number, Written::Bare) => {}
            (Unit::Latency, Written::Bare) => {
                // 0.5 was seconds before units were required; 500 is almost surely ms.
                let ms = if number.abs() < 1.0 && number != 0.0 {
                    trimmed(number * 1000.0)
                } else {
                    trimmed(number)
                };
                return Err(format!(
                    "{given} has no unit: a latency objective needs one, e.g. `{field}: {ms}ms` \
                     (units: us, ms, s, m)"
                ));
            }
            (Unit::Duration, Written::Bare) => {
                return Err(format!(
                    "{given} has no unit: a duration objective needs one, e.g. `{field}: {}s` \
                     (units: ms, s, m, h)",
                    trimmed(number)
                ));
            }
            (Unit::Latency | Unit::Duration, Written::Percent | Written::Fraction) => {
                return Err(format!(
                    "{given} is a ratio, but a {self} objective needs a duration, e.g. \
                     `{field}: 500ms`"
                ));
            }
            (Unit::Ratio, Written::Bare) => {
                let hint = if (0.0..=1.0).contains(&number) {
                    format!(
                        "`{field}: {}%` (or the fraction written `{field}: {} {FRACTION_SUFFIX}`)",
                        trimmed(number * 100.0),
                        bound.text
                    )
                } else {
                    format!("`{field}: {}%`", trimmed(number))
                };
                return Err(format!(
                    "{given} has no unit: a ratio objective needs a percentage, e.g. {hint}"
                ));
            }
            (Unit::Ratio, Written::Duration) => {
                return Err(format!(
                    "{given} is a duration, but a ratio objective needs a percentage, e.g. \
                     `{field}: 1%`"
                ));
            }
            (Unit::Replicas | Unit::Messages, _) => {
                return Err(format!(
                    "{given}: a {self} objective is a plain count, e.g. `{field}: 2`"
                ));
            }
            (Unit::Number, _) => {
                return Err(format!(
                    "{given} has a unit, but this SLI's values are plain numbers: write a plain \
                     number, or say what the query measures with `unit:` (latency, duration, \
                     ratio) on the promql SLI"
                ));
            }
        }
        if self == Unit::Ratio && !(0.0..=1.0).contains(&number) {
            return Err(format!(
                "{given} is outside 0 %..100 %: a ratio objective is a share of the whole"
            ));
        }
        if matches!(self, Unit::Latency | Unit::Duration) && number < 0.0 {
            return Err(format!("{given} is negative"));
        }
        Ok(())
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
    fn bounds_remember_how_they_were_written() {
        let parsed = |t: &str| {
            let b = Bound::parse(t).unwrap();
            (b.value, b.written)
        };
        assert_eq!(parsed("500"), (500.0, Written::Bare));
        assert_eq!(parsed("1%"), (0.01, Written::Percent));
        assert_eq!(parsed("0.01 ratio"), (0.01, Written::Fraction));
        assert_eq!(parsed("0.01ratio"), (0.01, Written::Fraction));
        assert_eq!(parsed("500ms"), (0.5, Written::Duration));
        assert!(Bound::parse("x ratio").unwrap_err().contains("0.01 ratio"));
        assert!(Bound::parse("soon").is_err());
        for (written, value, text) in [
            (Written::Bare, 500.0, "500"),
            (Written::Percent, 0.015, "1.5%"),
            (Written::Fraction, 0.01, "0.01 ratio"),
            (Written::Duration, 0.5, "500ms"),
        ] {
            assert_eq!(written.text(value), text);
            assert_eq!(parsed(text), (value, written), "{text}");
        }
    }

    #[test]
    fn a_bound_must_be_written_in_the_unit_of_its_sli() {
        let check = |unit: Unit, text: &str| unit.check_bound("lt", &Bound::parse(text).unwrap());
        assert!(check(Unit::Latency, "500ms").is_ok());
        assert!(check(Unit::Duration, "2m").is_ok());
        assert!(check(Unit::Ratio, "1%").is_ok());
        assert!(check(Unit::Ratio, "0.01 ratio").is_ok());
        assert!(check(Unit::Replicas, "3").is_ok());
        assert!(check(Unit::Messages, "1000").is_ok());
        assert!(check(Unit::Number, "0.5").is_ok());
        for (unit, text) in [
            (Unit::Latency, "500"),
            (Unit::Latency, "5%"),
            (Unit::Duration, "60"),
            (Unit::Ratio, "5"),
            (Unit::Ratio, "0.05"),
            (Unit::Ratio, "1s"),
            (Unit::Ratio, "101%"),
            (Unit::Replicas, "10%"),
            (Unit::Messages, "5s"),
            (Unit::Number, "1%"),
        ] {
            let error = check(unit, text).unwrap_err();
            assert_eq!(error.field, "lt");
            let error = error.to_string();
            assert!(
                error.starts_with(&format!("`lt: {text}`")),
                "{unit} {text}: {error}"
            );
        }
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
