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
//! thresholds: ["p95<500ms", "error_rate<5%"]   # optional
//! ```
//!
//! Values are checked while they are parsed (unknown fields, durations, non-negative rates,
//! whole-second closed stages), so each error carries the line serde_yaml_ng saw it on and the
//! field path serde_path_to_error tracked. Only the rules that span several fields run after
//! parsing.

use std::fmt;
use std::time::Duration;

use reports::Threshold;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use super::{
    DEFAULT_REQUEST_TIMEOUT, Load, Profile, ProfileError, RateStage, ThinkTime, UserStage,
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
    thresholds: Vec<Threshold>,
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
    duration: YamlDuration,
    rate: Rate,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThinkTimeFile {
    min: YamlDuration,
    max: YamlDuration,
}

/// Validates a scalar inside the deserializer's visit call. serde_yaml_ng attaches the
/// position of the event being deserialized when an error comes back, so checking here —
/// rather than after `String::deserialize` returned — makes the error point at the value's
/// own line instead of its enclosing mapping.
struct Checked<F> {
    expecting: &'static str,
    check: F,
}

impl<'de, T, F: FnOnce(&str) -> Result<T, String>> Visitor<'de> for Checked<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        (self.check)(text).map_err(E::custom)
    }
}

/// The numeric twin of [`Checked`].
struct CheckedNumber<F> {
    expecting: &'static str,
    check: F,
}

impl<'de, T, F: FnOnce(f64) -> Result<T, String>> Visitor<'de> for CheckedNumber<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<T, E> {
        (self.check)(value).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        self.visit_f64(value as f64)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        self.visit_f64(value as f64)
    }
}

const DURATION_EXAMPLES: &str = "a duration such as 30s, 1m30s or 500ms";

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration \"{text}\": {e} (use e.g. 30s, 1m30s, 500ms)"))
}

/// A duration written the humantime way: `30s`, `1m30s`, `500ms`.
struct YamlDuration(Duration);

impl<'de> Deserialize<'de> for YamlDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(Checked {
            expecting: DURATION_EXAMPLES,
            check: |text: &str| parse_duration(text).map(YamlDuration),
        })
    }
}

/// A closed-model stage duration: Goose's test plan counts whole seconds.
struct WholeSeconds(Duration);

impl<'de> Deserialize<'de> for WholeSeconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(Checked {
            expecting: DURATION_EXAMPLES,
            check: |text: &str| {
                let duration = parse_duration(text)?;
                if duration.subsec_nanos() != 0 {
                    return Err(format!(
                        "closed-model stages last whole seconds, got {}",
                        humantime::format_duration(duration)
                    ));
                }
                Ok(WholeSeconds(duration))
            },
        })
    }
}

/// A duration that must be longer than zero.
struct PositiveDuration(Duration);

impl<'de> Deserialize<'de> for PositiveDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(Checked {
            expecting: DURATION_EXAMPLES,
            check: |text: &str| match parse_duration(text)? {
                duration if duration.is_zero() => Err("must be longer than zero".to_string()),
                duration => Ok(PositiveDuration(duration)),
            },
        })
    }
}

/// A finite, non-negative rate in iterations per second.
#[derive(Default)]
struct Rate(f64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_f64(CheckedNumber {
            expecting: "a rate in iterations per second",
            check: |rate: f64| {
                if rate.is_finite() && rate >= 0.0 {
                    Ok(Rate(rate))
                } else {
                    Err(format!(
                        "a rate is a non-negative number of iterations per second, got {rate}"
                    ))
                }
            },
        })
    }
}

/// A count of at least one.
struct AtLeastOne(u32);

impl<'de> Deserialize<'de> for AtLeastOne {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_u32(CheckedNumber {
            expecting: "a whole number of at least 1",
            check: |n: f64| {
                if n.fract() == 0.0 && (1.0..=f64::from(u32::MAX)).contains(&n) {
                    Ok(AtLeastOne(n as u32))
                } else {
                    Err(format!("must be a whole number of at least 1, got {n}"))
                }
            },
        })
    }
}

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
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    let file: ProfileFile = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let field = error.path().to_string();
        let inner = error.into_inner();
        let location = inner.location();
        ProfileError::Invalid {
            origin: origin.to_string(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            // serde_path_to_error reports the root as "."; we print no field for it.
            field: if field == "." { String::new() } else { field },
            message: bare_message(&inner),
        }
    })?;
    into_profile(file, origin, default_name)
}

/// serde_yaml_ng's message without the location and path it appends/prepends, since we
/// print both ourselves.
fn bare_message(error: &serde_yaml_ng::Error) -> String {
    let mut message = error.to_string();
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    // Messages from nested fields may start with the YAML path ("closed.stages[0]: …").
    if let Some((prefix, rest)) = message.split_once(": ") {
        let looks_like_path =
            !prefix.contains(' ') && (prefix.contains('.') || prefix.contains('['));
        if looks_like_path {
            message = rest.to_string();
        }
    }
    message
}

/// The rules that span several fields.
fn into_profile(
    file: ProfileFile,
    origin: &str,
    default_name: &str,
) -> Result<Profile, ProfileError> {
    let invalid = |field: &str, message: &str| ProfileError::Invalid {
        origin: origin.to_string(),
        line: None,
        column: None,
        field: field.to_string(),
        message: message.to_string(),
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
    Ok(Profile {
        name: file.name.unwrap_or_else(|| default_name.to_string()),
        description: file.description,
        load,
        thresholds: file.thresholds,
        think_time,
        request_timeout: file
            .request_timeout
            .map_or(DEFAULT_REQUEST_TIMEOUT, |d| d.0),
        worker: None,
    })
}
