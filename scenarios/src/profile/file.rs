//! The profile YAML format and its validation.
//!
//! ```yaml
//! name: ramp                 # optional, defaults to the file stem
//! description: text          # optional
//! closed:                    # either `closed` …
//!   stages:
//!     - { duration: 30s, users: 20 }
//! open:                      # … or `open`
//!   start_rate: 0            # optional, iterations/s at time zero
//!   max_users: 50
//!   stages:
//!     - { duration: 30s, rate: 20 }
//! think_time: { min: 1s, max: 3s }   # optional, closed model
//! request_timeout: 10s               # optional
//! thresholds:                                 # optional
//!   - "p95<500ms"
//!   - { threshold: "error_rate<5%", abort_on_fail: true, delay_abort_eval: 10s }
//! ```
//!
//! A threshold with `abort_on_fail` stops a coordinated run (`run --workers N --on ...`) as soon
//! as it fails on the merged data, but not before `delay_abort_eval` (default 0s) into the run.
//!
//! Values are checked while they are parsed (unknown fields, durations, non-negative rates,
//! whole-second closed stages), so each error carries the line and field path the shared
//! `config` reader reports. Only the rules that span several fields run after parsing.

use std::time::Duration;

use reports::Threshold;
use serde::{Deserialize, Deserializer};

use super::{
    AbortRule, DEFAULT_REQUEST_TIMEOUT, Load, Profile, ProfileError, RateStage, ThinkTime,
    UserStage,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: Option<String>,
    description: Option<String>,
    closed: Option<ClosedFile>,
    open: Option<OpenFile>,
    think_time: Option<ThinkTimeFile>,
    request_timeout: Option<PositiveDuration>,
    #[serde(default)]
    thresholds: Vec<ThresholdEntry>,
}

/// A threshold as text, or as a map with abort settings.
enum ThresholdEntry {
    Plain(Threshold),
    Rule(ThresholdRule),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdRule {
    threshold: Threshold,
    #[serde(default)]
    abort_on_fail: bool,
    delay_abort_eval: Option<config::Duration>,
}

impl<'de> Deserialize<'de> for ThresholdEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entry;
        impl<'de> serde::de::Visitor<'de> for Entry {
            type Value = ThresholdEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a threshold such as \"p95<500ms\", or { threshold, abort_on_fail, delay_abort_eval }")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ThresholdEntry, E> {
                text.parse().map(ThresholdEntry::Plain).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ThresholdEntry, A::Error> {
                ThresholdRule::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ThresholdEntry::Rule)
            }
        }
        deserializer.deserialize_any(Entry)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClosedFile {
    #[serde(deserialize_with = "non_empty")]
    stages: Vec<UserStageFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserStageFile {
    duration: WholeSeconds,
    users: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenFile {
    #[serde(default)]
    start_rate: Rate,
    max_users: AtLeastOne,
    #[serde(deserialize_with = "non_empty")]
    stages: Vec<RateStageFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateStageFile {
    duration: config::Duration,
    rate: Rate,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThinkTimeFile {
    min: config::Duration,
    max: config::Duration,
}

/// A closed-model stage duration: Goose's test plan counts whole seconds.
struct WholeSeconds(Duration);

impl TryFrom<String> for WholeSeconds {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let duration = config::duration::parse(&text)?;
        if duration.subsec_nanos() != 0 {
            return Err(format!(
                "closed-model stages last whole seconds, got {}",
                humantime::format_duration(duration)
            ));
        }
        Ok(WholeSeconds(duration))
    }
}

/// A duration that must be longer than zero.
struct PositiveDuration(Duration);

impl TryFrom<String> for PositiveDuration {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match config::duration::parse(&text)? {
            duration if duration.is_zero() => Err("must be longer than zero".to_string()),
            duration => Ok(PositiveDuration(duration)),
        }
    }
}

/// A finite, non-negative rate in iterations per second.
#[derive(Default)]
struct Rate(f64);

impl TryFrom<f64> for Rate {
    type Error = String;
    fn try_from(rate: f64) -> Result<Self, String> {
        if rate.is_finite() && rate >= 0.0 {
            Ok(Rate(rate))
        } else {
            Err(format!(
                "a rate is a non-negative number of iterations per second, got {rate}"
            ))
        }
    }
}

/// A count of at least one.
struct AtLeastOne(u32);

impl TryFrom<f64> for AtLeastOne {
    type Error = String;
    fn try_from(n: f64) -> Result<Self, String> {
        if n.fract() == 0.0 && (1.0..=f64::from(u32::MAX)).contains(&n) {
            Ok(AtLeastOne(n as u32))
        } else {
            Err(format!("must be a whole number of at least 1, got {n}"))
        }
    }
}

// Checked inside each value's own visitor, so an error carries the value's line rather than
// its enclosing mapping's.
config::deserialize_validated!(WholeSeconds, string);
config::deserialize_validated!(PositiveDuration, string);
config::deserialize_validated!(Rate, number);
config::deserialize_validated!(AtLeastOne, number);

fn non_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let items = Vec::<T>::deserialize(deserializer)?;
    if items.is_empty() {
        return Err(serde::de::Error::custom("needs at least one stage"));
    }
    Ok(items)
}

/// Parses and validates profile YAML. `origin` names the text in errors; `default_name` is
/// used when the YAML has no `name`.
pub(super) fn parse(text: &str, origin: &str, default_name: &str) -> Result<Profile, ProfileError> {
    into_profile(config::parse(text, origin)?, origin, default_name)
}

/// The rules that span several fields.
fn into_profile(
    file: ProfileFile,
    origin: &str,
    default_name: &str,
) -> Result<Profile, ProfileError> {
    let invalid = |field: &str, message: &str| {
        ProfileError::from(config::Error::field(origin, field, message))
    };
    let load = match (file.closed, file.open) {
        (Some(_), Some(_)) => {
            return Err(invalid("", "give either `closed` or `open`, not both"));
        }
        (None, None) => {
            return Err(invalid(
                "",
                "missing the load model: add a `closed:` (target users) or `open:` (target arrival rate) section",
            ));
        }
        (Some(closed), None) => {
            let stages: Vec<UserStage> = closed
                .stages
                .into_iter()
                .map(|s| UserStage {
                    duration: s.duration.0,
                    users: s.users,
                })
                .collect();
            if stages.iter().all(|s| s.duration.is_zero()) {
                return Err(invalid("closed.stages", "the stages last no time at all"));
            }
            if stages[0].users == 0 {
                return Err(invalid(
                    "closed.stages[0].users",
                    "the first stage must start at least one user",
                ));
            }
            Load::Closed { stages }
        }
        (None, Some(open)) => {
            let stages: Vec<RateStage> = open
                .stages
                .into_iter()
                .map(|s| RateStage {
                    duration: s.duration.0,
                    rate: s.rate.0,
                })
                .collect();
            if stages.iter().all(|s| s.rate == 0.0) {
                return Err(invalid(
                    "open.stages",
                    "every stage has rate 0, so nothing would run",
                ));
            }
            if stages.iter().all(|s| s.duration.is_zero()) {
                return Err(invalid("open.stages", "the stages last no time at all"));
            }
            Load::Open {
                start_rate: open.start_rate.0,
                max_users: open.max_users.0,
                stages,
            }
        }
    };
    let think_time = match file.think_time {
        Some(ThinkTimeFile { min, max }) if min.0 > max.0 => {
            return Err(invalid("think_time", "`min` is longer than `max`"));
        }
        Some(ThinkTimeFile { min, max }) => Some(ThinkTime {
            min: min.0,
            max: max.0,
        }),
        None => None,
    };
    let mut thresholds = Vec::new();
    let mut aborts = Vec::new();
    for entry in file.thresholds {
        match entry {
            ThresholdEntry::Plain(threshold) => thresholds.push(threshold),
            ThresholdEntry::Rule(rule) => {
                if rule.abort_on_fail {
                    aborts.push(AbortRule {
                        threshold: rule.threshold,
                        delay: rule.delay_abort_eval.map_or(Duration::ZERO, |d| d.0),
                    });
                } else if rule.delay_abort_eval.is_some() {
                    return Err(invalid(
                        "thresholds",
                        &format!(
                            "`delay_abort_eval` without `abort_on_fail: true` on {}",
                            rule.threshold
                        ),
                    ));
                }
                thresholds.push(rule.threshold);
            }
        }
    }
    Ok(Profile {
        name: file.name.unwrap_or_else(|| default_name.to_string()),
        description: file.description,
        load,
        thresholds,
        aborts,
        think_time,
        request_timeout: file
            .request_timeout
            .map_or(DEFAULT_REQUEST_TIMEOUT, |d| d.0),
        worker: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGES: &str = "closed:\n  stages:\n    - { duration: 5s, users: 2 }\n";

    #[test]
    fn thresholds_may_abort_on_fail_after_a_delay() {
        let text = format!(
            "{STAGES}thresholds:\n  - \"p99<1000ms\"\n  - {{ threshold: \"p95<500ms\", abort_on_fail: true, delay_abort_eval: 10s }}\n  - {{ threshold: \"error_rate<5%\" }}\n"
        );
        let profile = parse(&text, "p.yaml", "p").unwrap();
        let names: Vec<String> = profile.thresholds.iter().map(|t| t.to_string()).collect();
        assert_eq!(names, ["p99<1000ms", "p95<500ms", "error_rate<5%"]);
        assert_eq!(
            profile.aborts,
            [AbortRule {
                threshold: "p95<500ms".parse().unwrap(),
                delay: Duration::from_secs(10),
            }]
        );
    }

    #[test]
    fn bad_threshold_entries_name_the_line_and_the_problem() {
        let delay_alone = format!(
            "{STAGES}thresholds:\n  - {{ threshold: \"p95<500ms\", delay_abort_eval: 10s }}\n"
        );
        let error = parse(&delay_alone, "p.yaml", "p").unwrap_err().to_string();
        assert!(error.contains("delay_abort_eval"), "{error}");

        let unknown =
            format!("{STAGES}thresholds:\n  - {{ threshold: \"p95<500ms\", abort: true }}\n");
        let error = parse(&unknown, "p.yaml", "p").unwrap_err().to_string();
        assert!(error.contains("p.yaml:5"), "{error}");
        assert!(error.contains("abort"), "{error}");

        let garbled = format!("{STAGES}thresholds:\n  - \"p95 under 500\"\n");
        let error = parse(&garbled, "p.yaml", "p").unwrap_err().to_string();
        assert!(error.contains("p.yaml:5"), "{error}");
    }
}
