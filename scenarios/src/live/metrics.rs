//! The live figures of a run and their OpenMetrics exposition.
//!
//! Counted here from the recorder's events (see [`super::LiveSink`]) and encoded with
//! `prometheus-client`'s OpenMetrics text encoder through a [`Collector`], so the exposition is
//! the library's, while the same figures can also be read as flat samples for remote write.
//!
//! | series | type | labels |
//! |---|---|---|
//! | `shakedown_requests_total` | counter | `transaction` |
//! | `shakedown_errors_total` | counter | `transaction`, `kind` (connect, timeout, status, check, other) |
//! | `shakedown_request_duration_seconds` | histogram | `transaction` |
//! | `shakedown_active_users` | gauge | |
//! | `shakedown_iteration_lateness_seconds` | histogram (open model) | |

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use reports::ErrorKind;

use super::LiveSink;

/// The content type of [`LiveMetrics::encode`]'s text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency and lateness histograms, in seconds (plus `+Inf`).
///
/// Fixed, so series from several runs and workers aggregate: 1 ms to 10 s in 1-2.5-5 steps,
/// which puts a bucket boundary near every usual HTTP objective (50, 100, 250, 500 ms, 1 s).
/// Exact percentiles are the report's (HDR histograms); these are for watching and alerting.
pub const LATENCY_BUCKETS_SECONDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One flat sample (a series and its current value), as remote write sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The full series name, e.g. `shakedown_request_duration_seconds_bucket`.
    pub name: String,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// The live metrics of this process's runs; a [`LiveSink`]. A coordinator, which runs no load
/// itself, sets them to the sum of its workers' [`Figures`] instead ([`LiveMetrics::replace`]).
#[derive(Debug, Default)]
pub struct LiveMetrics {
    state: Mutex<Figures>,
}

/// Everything the live metrics count, as plain numbers: what a worker sends its coordinator,
/// and what workers' figures add up to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    pub transactions: BTreeMap<String, TransactionFigures>,
    pub active_users: u32,
    pub lateness: Buckets,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransactionFigures {
    pub requests: u64,
    /// Failed requests by kind (`connect`, `timeout`, `status`, `check`, `other`).
    pub errors: BTreeMap<String, u64>,
    pub latency: Buckets,
}

/// A histogram with [`LATENCY_BUCKETS_SECONDS`]: per-bucket (not cumulative) counts, the last
/// one being `+Inf`.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    pub counts: [u64; LATENCY_BUCKETS_SECONDS.len() + 1],
    /// Seconds.
    pub sum: f64,
    pub count: u64,
}

impl Figures {
    /// Adds `other`'s counts to these (another worker's, say); active users add up too.
    pub fn add(&mut self, other: &Figures) {
        for (name, theirs) in &other.transactions {
            let ours = self.transactions.entry(name.clone()).or_default();
            ours.requests += theirs.requests;
            for (kind, errors) in &theirs.errors {
                *ours.errors.entry(kind.clone()).or_default() += errors;
            }
            ours.latency.add(&theirs.latency);
        }
        self.active_users += other.active_users;
        self.lateness.add(&other.lateness);
    }
}

impl Default for Buckets {
    fn default() -> Self {
        Self {
            counts: [0; LATENCY_BUCKETS_SECONDS.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }
}

impl Buckets {
    fn add(&mut self, other: &Buckets) {
        for (ours, theirs) in self.counts.iter_mut().zip(other.counts) {
            *ours += theirs;
        }
        self.sum += other.sum;
        self.count += other.count;
    }

    fn observe(&mut self, value: Duration) {
        let seconds = value.as_secs_f64();
        let index = LATENCY_BUCKETS_SECONDS
            .iter()
            .position(|upper| seconds <= *upper)
            .unwrap_or(LATENCY_BUCKETS_SECONDS.len());
        self.counts[index] += 1;
        self.sum += seconds;
        self.count += 1;
    }

    /// `(upper bound, count in this bucket)`, ending with `+Inf`.
    fn pairs(&self) -> Vec<(f64, u64)> {
        LATENCY_BUCKETS_SECONDS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts)
            .collect()
    }

    /// The `_bucket` (cumulative, with `le`), `_sum` and `_count` samples of `name`.
    fn samples(&self, name: &str, labels: &[(&'static str, String)], out: &mut Vec<Sample>) {
        let mut cumulative = 0;
        for (upper, count) in self.pairs() {
            cumulative += count;
            let mut with_le = labels.to_vec();
            with_le.push(("le", le(upper)));
            out.push(Sample {
                name: format!("{name}_bucket"),
                labels: with_le,
                value: cumulative as f64,
            });
        }
        out.push(Sample {
            name: format!("{name}_sum"),
            labels: labels.to_vec(),
            value: self.sum,
        });
        out.push(Sample {
            name: format!("{name}_count"),
            labels: labels.to_vec(),
            value: self.count as f64,
        });
    }
}

/// An `le` label value as Prometheus writes it (`0.25`, `1.0`, `+Inf`).
fn le(upper: f64) -> String {
    if upper.is_infinite() {
        "+Inf".to_string()
    } else if upper.fract() == 0.0 {
        format!("{upper:.1}")
    } else {
        upper.to_string()
    }
}

impl LiveMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// The OpenMetrics text of the current figures, ending with `# EOF`.
    pub fn encode(self: &std::sync::Arc<Self>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }

    /// Every series and its current value, flat (histograms as `_bucket`, `_sum`, `_count`).
    pub fn samples(&self) -> Vec<Sample> {
        let state = self.lock();
        let mut out = Vec::new();
        for (name, transaction) in &state.transactions {
            let labels = vec![("transaction", name.clone())];
            out.push(Sample {
                name: "shakedown_requests_total".to_string(),
                labels: labels.clone(),
                value: transaction.requests as f64,
            });
            for (kind, errors) in &transaction.errors {
                out.push(Sample {
                    name: "shakedown_errors_total".to_string(),
                    labels: vec![("transaction", name.clone()), ("kind", kind.clone())],
                    value: *errors as f64,
                });
            }
            transaction
                .latency
                .samples("shakedown_request_duration_seconds", &labels, &mut out);
        }
        out.push(Sample {
            name: "shakedown_active_users".to_string(),
            labels: Vec::new(),
            value: f64::from(state.active_users),
        });
        state
            .lateness
            .samples("shakedown_iteration_lateness_seconds", &[], &mut out);
        out
    }

    /// A copy of the current figures.
    pub fn figures(&self) -> Figures {
        self.lock().clone()
    }

    /// Sets every figure at once (a coordinator's sum of its workers').
    pub fn replace(&self, figures: Figures) {
        *self.lock() = figures;
    }

    fn lock(&self) -> MutexGuard<'_, Figures> {
        // Counters are plain numbers: a panic elsewhere cannot leave them half-updated.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LiveSink for LiveMetrics {
    fn request(&self, transaction: &str, latency: Duration, error: Option<ErrorKind>) {
        let mut state = self.lock();
        let entry = match state.transactions.get_mut(transaction) {
            Some(entry) => entry,
            None => state
                .transactions
                .entry(transaction.to_string())
                .or_default(),
        };
        entry.requests += 1;
        entry.latency.observe(latency);
        if let Some(kind) = error {
            *entry.errors.entry(kind.to_string()).or_default() += 1;
        }
    }

    fn iteration_started(&self, lateness: Duration) {
        self.lock().lateness.observe(lateness);
    }

    fn active_users(&self, users: u32) {
        self.lock().active_users = users;
    }
}

impl Collector for LiveMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let state = self.lock();
        {
            let mut metric = encoder.encode_descriptor(
                "shakedown_requests",
                "Requests completed, by transaction.",
                None,
                MetricType::Counter,
            )?;
            for (name, transaction) in &state.transactions {
                let labels = [("transaction", name.as_str())];
                metric
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&transaction.requests, None)?;
            }
        }
        {
            let mut metric = encoder.encode_descriptor(
                "shakedown_errors",
                "Failed requests, by transaction and kind (connect, timeout, status, check, other).",
                None,
                MetricType::Counter,
            )?;
            for (name, transaction) in &state.transactions {
                for (kind, errors) in &transaction.errors {
                    let labels = [("transaction", name.as_str()), ("kind", kind.as_str())];
                    metric
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, _, u64>(errors, None)?;
                }
            }
        }
        {
            let mut metric = encoder.encode_descriptor(
                "shakedown_request_duration",
                "Request latency measured by the load generator (send to end of body), by transaction.",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for (name, transaction) in &state.transactions {
                let labels = [("transaction", name.as_str())];
                let latency = &transaction.latency;
                metric
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(
                        latency.sum,
                        latency.count,
                        &latency.pairs(),
                        None,
                    )?;
            }
        }
        encoder
            .encode_descriptor(
                "shakedown_active_users",
                "Users running now.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&i64::from(state.active_users))?;
        let lateness = &state.lateness;
        encoder
            .encode_descriptor(
                "shakedown_iteration_lateness",
                "Open model: how late each iteration started compared to its schedule.",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(
                lateness.sum,
                lateness.count,
                &lateness.pairs(),
                None,
            )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn fed() -> Arc<LiveMetrics> {
        let metrics = Arc::new(LiveMetrics::new());
        metrics.request("browse", Duration::from_millis(3), None);
        metrics.request("browse", Duration::from_millis(30), None);
        metrics.request(
            "checkout",
            Duration::from_millis(200),
            Some(ErrorKind::Status),
        );
        metrics.request(
            "checkout",
            Duration::from_secs(20),
            Some(ErrorKind::Timeout),
        );
        metrics.iteration_started(Duration::from_millis(7));
        metrics.active_users(4);
        metrics
    }

    #[test]
    fn the_exposition_names_every_series_with_its_labels() {
        let text = fed().encode();
        for line in [
            "# TYPE shakedown_requests counter",
            r#"shakedown_requests_total{transaction="browse"} 2"#,
            r#"shakedown_requests_total{transaction="checkout"} 2"#,
            r#"shakedown_errors_total{transaction="checkout",kind="status"} 1"#,
            r#"shakedown_errors_total{transaction="checkout",kind="timeout"} 1"#,
            "# TYPE shakedown_request_duration_seconds histogram",
            "# UNIT shakedown_request_duration_seconds seconds",
            r#"shakedown_request_duration_seconds_bucket{le="0.005",transaction="browse"} 1"#,
            r#"shakedown_request_duration_seconds_bucket{le="0.05",transaction="browse"} 2"#,
            r#"shakedown_request_duration_seconds_bucket{le="10.0",transaction="checkout"} 1"#,
            r#"shakedown_request_duration_seconds_bucket{le="+Inf",transaction="checkout"} 2"#,
            r#"shakedown_request_duration_seconds_count{transaction="checkout"} 2"#,
            "shakedown_active_users 4",
            "shakedown_iteration_lateness_seconds_count 1",
            r#"shakedown_iteration_lateness_seconds_bucket{le="0.01"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            !text.contains(r#"transaction="browse",kind"#),
            "browse had no errors: {text}"
        );
    }

    #[test]
    fn figures_add_up_like_one_process_fed_with_both() {
        let one = fed();
        let two = Arc::new(LiveMetrics::new());
        two.request(
            "browse",
            Duration::from_millis(700),
            Some(ErrorKind::Connect),
        );
        two.request("search", Duration::from_millis(2), None);
        two.iteration_started(Duration::from_millis(40));
        two.active_users(3);
        let mut sum = one.figures();
        sum.add(&two.figures());

        let both = fed();
        both.request(
            "browse",
            Duration::from_millis(700),
            Some(ErrorKind::Connect),
        );
        both.request("search", Duration::from_millis(2), None);
        both.iteration_started(Duration::from_millis(40));
        both.active_users(4 + 3);
        assert_eq!(sum, both.figures());

        let coordinator = Arc::new(LiveMetrics::new());
        coordinator.replace(sum);
        assert_eq!(coordinator.encode(), both.encode());
    }

    #[test]
    fn flat_samples_agree_with_the_exposition() {
        let metrics = fed();
        let text = metrics.encode();
        // Series as `name{sorted labels}` -> value, from the text (no commas in our values).
        let exposed: BTreeMap<String, f64> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
                let mut labels: Vec<&str> = labels
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .collect();
                labels.sort();
                (
                    format!("{name}{{{}}}", labels.join(",")),
                    value.parse().unwrap(),
                )
            })
            .collect();
        let samples = metrics.samples();
        assert_eq!(samples.len(), exposed.len(), "{samples:?}\n{text}");
        for sample in &samples {
            let mut labels: Vec<String> = sample
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            labels.sort();
            let series = format!("{}{{{}}}", sample.name, labels.join(","));
            assert_eq!(
                exposed.get(&series),
                Some(&sample.value),
                "{series}:\n{text}"
            );
        }
        let requests: f64 = samples
            .iter()
            .filter(|s| s.name == "shakedown_requests_total")
            .map(|s| s.value)
            .sum();
        assert_eq!(requests, 4.0);
    }
}
