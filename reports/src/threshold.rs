//! Client-side thresholds: pass/fail rules on the numbers the load generator measured.
//!
//! A threshold is written the way people say it — `p95<500ms`, `error_rate<5%`, `rps>=100` —
//! so the same text works on the command line, in profile YAML and in the report. Latency
//! thresholds of an open-model run are judged on the latency corrected for coordinated
//! omission, because that is what a user arriving on schedule would have seen.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::{LatencyStats, Totals, Verdict};

/// The thresholds used when neither the caller nor the profile gives any:
/// p95 < 500 ms, p99 < 1000 ms, error rate < 5 %.
pub fn default_thresholds() -> Vec<Threshold> {
    vec![
        Threshold::new(ThresholdMetric::P95, Comparison::Less, 500.0),
        Threshold::new(ThresholdMetric::P99, Comparison::Less, 1000.0),
        Threshold::new(ThresholdMetric::ErrorRate, Comparison::Less, 0.05),
    ]
}

/// What a threshold measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdMetric {
    P50,
    P90,
    P95,
    P99,
    Max,
    Mean,
    /// Failed requests over all requests, as a fraction (0.05 = 5 %).
    ErrorRate,
    /// Requests per second over the run.
    Rps,
}

impl ThresholdMetric {
    const ALL: [(ThresholdMetric, &'static str); 8] = [
        (ThresholdMetric::P50, "p50"),
        (ThresholdMetric::P90, "p90"),
        (ThresholdMetric::P95, "p95"),
        (ThresholdMetric::P99, "p99"),
        (ThresholdMetric::Max, "max"),
        (ThresholdMetric::Mean, "mean"),
        (ThresholdMetric::ErrorRate, "error_rate"),
        (ThresholdMetric::Rps, "rps"),
    ];

    /// The name used in threshold text.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(m, _)| *m == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    fn is_latency(self) -> bool {
        !matches!(self, ThresholdMetric::ErrorRate | ThresholdMetric::Rps)
    }

    /// The unit of the objective and measured value: `ms`, `ratio` or `rps`.
    pub fn unit(self) -> &'static str {
        match self {
            ThresholdMetric::ErrorRate => "ratio",
            ThresholdMetric::Rps => "rps",
            _ => "ms",
        }
    }

    fn latency_of(self, stats: &LatencyStats) -> f64 {
        match self {
            ThresholdMetric::P50 => stats.p50_ms,
            ThresholdMetric::P90 => stats.p90_ms,
            ThresholdMetric::P95 => stats.p95_ms,
            ThresholdMetric::P99 => stats.p99_ms,
            ThresholdMetric::Max => stats.max_ms,
            ThresholdMetric::Mean => stats.mean_ms,
            ThresholdMetric::ErrorRate | ThresholdMetric::Rps => f64::NAN,
        }
    }
}

/// How the measured value must compare to the objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    fn symbol(self) -> &'static str {
        match self {
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
        }
    }

    fn holds(self, measured: f64, objective: f64) -> bool {
        match self {
            Comparison::Less => measured < objective,
            Comparison::LessOrEqual => measured <= objective,
            Comparison::Greater => measured > objective,
            Comparison::GreaterOrEqual => measured >= objective,
        }
    }
}

/// One rule: `metric comparison objective`. Objectives are in ms for latencies, a fraction
/// for the error rate and requests/s for `rps`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    pub metric: ThresholdMetric,
    pub comparison: Comparison,
    pub objective: f64,
}

/// A threshold that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid threshold `{text}`: {reason} (expected e.g. `p95<500ms`, `error_rate<5%`, `rps>=100`)"
)]
pub struct ThresholdParseError {
    pub text: String,
    pub reason: String,
}

impl Threshold {
    pub fn new(metric: ThresholdMetric, comparison: Comparison, objective: f64) -> Self {
        Self {
            metric,
            comparison,
            objective,
        }
    }

    /// Judges the threshold against the run totals. Latency metrics use the corrected
    /// latency when there is one (open model). Without requests nothing can be measured and
    /// the threshold fails: an empty run proves nothing.
    pub fn evaluate(&self, totals: &Totals) -> ThresholdResult {
        let corrected = self.metric.is_latency() && totals.corrected_latency.is_some();
        let measured = match self.metric {
            ThresholdMetric::ErrorRate => (totals.requests > 0).then_some(totals.error_rate),
            ThresholdMetric::Rps => (totals.requests > 0).then_some(totals.rps),
            metric => totals
                .corrected_latency
                .as_ref()
                .or(totals.latency.as_ref())
                .map(|stats| metric.latency_of(stats)),
        };
        let status = match measured {
            Some(value) if self.comparison.holds(value, self.objective) => Verdict::Pass,
            _ => Verdict::Fail,
        };
        let measured_from = if corrected {
            "all requests, latency from intended start (corrected for coordinated omission)"
        } else {
            "all requests"
        };
        ThresholdResult {
            name: self.to_string(),
            metric: self.metric.name().to_string(),
            objective: self.objective,
            unit: self.metric.unit().to_string(),
            measured,
            status,
            measured_from: measured_from.to_string(),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let objective = match self.metric.unit() {
            "ms" => format!("{}ms", trim_number(self.objective)),
            "ratio" => format!("{}%", trim_number(self.objective * 100.0)),
            _ => trim_number(self.objective),
        };
        write!(
            f,
            "{}{}{}",
            self.metric.name(),
            self.comparison.symbol(),
            objective
        )
    }
}

impl FromStr for Threshold {
    type Err = ThresholdParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| ThresholdParseError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let operator_at = compact
            .find(['<', '>'])
            .ok_or_else(|| fail("no comparison (<, <=, >, >=)"))?;
        let metric_text = compact[..operator_at].to_ascii_lowercase();
        let rest = &compact[operator_at..];
        let (comparison, value_text) = if let Some(v) = rest.strip_prefix("<=") {
            (Comparison::LessOrEqual, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Comparison::GreaterOrEqual, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Comparison::Less, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Comparison::Greater, v)
        } else {
            return Err(fail("no comparison (<, <=, >, >=)"));
        };
        let metric_text = match metric_text.as_str() {
            "error-rate" | "errors" => "error_rate",
            "avg" => "mean",
            other => other,
        };
        let metric = ThresholdMetric::ALL
            .iter()
            .find(|(_, name)| *name == metric_text)
            .map(|(m, _)| *m)
            .ok_or_else(|| {
                fail("unknown metric (p50, p90, p95, p99, max, mean, error_rate, rps)")
            })?;
        let objective = parse_objective(metric, value_text).map_err(|r| fail(&r))?;
        Ok(Threshold::new(metric, comparison, objective))
    }
}

/// Parses the number after the comparison into the metric's unit.
fn parse_objective(metric: ThresholdMetric, text: &str) -> Result<f64, String> {
    let number = |t: &str| {
        t.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("`{t}` is not a non-negative number"))
    };
    match metric.unit() {
        "ms" => {
            let (digits, factor) = if let Some(d) = text.strip_suffix("ms") {
                (d, 1.0)
            } else if let Some(d) = text.strip_suffix("us").or(text.strip_suffix("µs")) {
                (d, 0.001)
            } else if let Some(d) = text.strip_suffix('s') {
                (d, 1000.0)
            } else {
                return Err(format!(
                    "`{text}` has no unit: a latency needs one, e.g. `{}<{text}ms` (ms, s or us)",
                    metric.name()
                ));
            };
            Ok(number(digits)? * factor)
        }
        // Like SLO objectives: a bare `5` could be 5 % or 500 %, so a ratio says which.
        "ratio" => {
            let ratio = if let Some(percent) = text.strip_suffix('%') {
                number(percent)? / 100.0
            } else if let Some(fraction) = text.strip_suffix("ratio") {
                number(fraction)?
            } else {
                let hint = match number(text) {
                    Ok(v) if v <= 1.0 => format!(
                        "e.g. `{0}<{1}%` (or the fraction `{0}<{text}ratio`)",
                        metric.name(),
                        trim_number(v * 100.0)
                    ),
                    _ => format!("e.g. `{}<{text}%`", metric.name()),
                };
                return Err(format!(
                    "`{text}` has no unit: an error rate is a percentage, {hint}"
                ));
            };
            if ratio > 1.0 {
                Err(format!("`{text}` is more than 100 %"))
            } else {
                Ok(ratio)
            }
        }
        _ => number(text.strip_suffix("/s").unwrap_or(text)),
    }
}

pub(crate) fn trim_number(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Parse inside the visitor so format-aware deserializers (YAML) can point at the
        // threshold's own line when it is invalid.
        struct ThresholdVisitor;
        impl serde::de::Visitor<'_> for ThresholdVisitor {
            type Value = Threshold;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a threshold such as `p95<500ms`")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Threshold, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(ThresholdVisitor)
    }
}

/// A judged threshold as it appears in the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// The rule as text, e.g. `p95<500ms`.
    pub name: String,
    /// The metric, e.g. `p95`, `error_rate`, `rps`.
    pub metric: String,
    /// The objective in `unit`.
    pub objective: f64,
    /// `ms`, `ratio` or `rps`.
    pub unit: String,
    /// The measured value in `unit`; `None` when nothing could be measured.
    pub measured: Option<f64>,
    pub status: Verdict,
    /// Which requests and which latency the value was measured over.
    pub measured_from: String,
}

impl ThresholdResult {
    /// The rule's comparison and objective in words, e.g. `< 500 ms`.
    pub fn objective_text(&self) -> String {
        let comparison = self
            .name
            .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
        let symbol: String = comparison
            .chars()
            .take_while(|c| matches!(c, '<' | '>' | '='))
            .collect();
        format!("{symbol} {}", format_value(self.objective, &self.unit))
    }

    /// The measured value in words, e.g. `612.3 ms`, or `not measured`.
    pub fn measured_text(&self) -> String {
        self.measured.map_or_else(
            || "not measured".to_string(),
            |v| format_value(v, &self.unit),
        )
    }
}

/// Formats a value in its unit for people: ms with one decimal, ratios as percent.
pub fn format_value(value: f64, unit: &str) -> String {
    match unit {
        "ms" => format!("{value:.1} ms"),
        "ratio" => format!("{:.2} %", value * 100.0),
        "rps" => format!("{value:.1} req/s"),
        other => format!("{value} {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::LatencyHistogram;

    fn totals(p95_ms: f64, error_rate: f64, requests: u64) -> Totals {
        let latency = LatencyStats {
            p50_ms: p95_ms / 2.0,
            p90_ms: p95_ms,
            p95_ms,
            p99_ms: p95_ms * 2.0,
            max_ms: p95_ms * 3.0,
            mean_ms: p95_ms / 2.0,
        };
        Totals {
            requests,
            errors: (requests as f64 * error_rate) as u64,
            error_rate,
            rps: 10.0,
            latency: (requests > 0).then_some(latency),
            corrected_latency: None,
            histogram: LatencyHistogram::fine(),
            corrected_histogram: None,
        }
    }

    #[test]
    fn parses_the_usual_spellings() {
        let cases = [
            ("p95<500ms", ThresholdMetric::P95, Comparison::Less, 500.0),
            ("p99 < 1s", ThresholdMetric::P99, Comparison::Less, 1000.0),
            (
                "error_rate<5%",
                ThresholdMetric::ErrorRate,
                Comparison::Less,
                0.05,
            ),
            (
                "error_rate <= 0.01 ratio",
                ThresholdMetric::ErrorRate,
                Comparison::LessOrEqual,
                0.01,
            ),
            (
                "rps>=100",
                ThresholdMetric::Rps,
                Comparison::GreaterOrEqual,
                100.0,
            ),
            (
                "MEAN>250us",
                ThresholdMetric::Mean,
                Comparison::Greater,
                0.25,
            ),
        ];
        for (text, metric, comparison, objective) in cases {
            let parsed: Threshold = text.parse().unwrap();
            assert_eq!(parsed.metric, metric, "{text}");
            assert_eq!(parsed.comparison, comparison, "{text}");
            assert!((parsed.objective - objective).abs() < 1e-9, "{text}");
            // Display must parse back to the same rule.
            assert_eq!(parsed.to_string().parse::<Threshold>().unwrap(), parsed);
        }
    }

    #[test]
    fn rejects_nonsense_with_a_reason() {
        for text in [
            "p95 500ms",
            "p42<1s",
            "p95<500",
            "error_rate<7",
            "error_rate<0.05",
            "error_rate<150%",
            "rps>-1",
        ] {
            let error = text.parse::<Threshold>().unwrap_err();
            assert!(error.to_string().contains(text), "{error}");
        }
        let error = "p95<500".parse::<Threshold>().unwrap_err().to_string();
        assert!(
            error.contains("`500` has no unit: a latency needs one, e.g. `p95<500ms`"),
            "{error}"
        );
        let error = "error_rate<0.05"
            .parse::<Threshold>()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("e.g. `error_rate<5%` (or the fraction `error_rate<0.05ratio`)"),
            "{error}"
        );
        let error = "errors<5".parse::<Threshold>().unwrap_err().to_string();
        assert!(error.contains("e.g. `error_rate<5%`"), "{error}");
    }

    #[test]
    fn evaluates_against_totals() {
        let [p95, _p99, errors] = default_thresholds().try_into().unwrap();
        assert_eq!(p95.evaluate(&totals(400.0, 0.0, 10)).status, Verdict::Pass);
        let failed = p95.evaluate(&totals(612.3, 0.0, 10));
        assert_eq!(failed.status, Verdict::Fail);
        assert_eq!(failed.measured_text(), "612.3 ms");
        assert_eq!(failed.objective_text(), "< 500.0 ms");
        assert_eq!(errors.evaluate(&totals(1.0, 0.1, 10)).status, Verdict::Fail);
    }

    #[test]
    fn nothing_measured_fails() {
        for threshold in default_thresholds() {
            let result = threshold.evaluate(&totals(1.0, 0.0, 0));
            assert_eq!(result.measured, None);
            assert_eq!(result.status, Verdict::Fail);
        }
    }

    #[test]
    fn open_model_latency_uses_corrected_values() {
        let mut open = totals(10.0, 0.0, 10);
        let mut corrected = open.latency.unwrap();
        corrected.p95_ms = 900.0;
        open.corrected_latency = Some(corrected);
        let result = Threshold::new(ThresholdMetric::P95, Comparison::Less, 500.0).evaluate(&open);
        assert_eq!(result.measured, Some(900.0));
        assert_eq!(result.status, Verdict::Fail);
        assert!(result.measured_from.contains("corrected"));
    }
}
