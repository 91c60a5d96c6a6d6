//! Figures per service (or per any label) over a window, from the latency histograms and CPU
//! counters services export: p95 and mean latency, request and error rates, CPU cores. Capacity runs ask
//! for it after every step to find which service saturates first; it is one small set of PromQL
//! queries, each grouped by the label, so the cost does not grow with the number of services.
//!
//! The series are the reference platform's, which follow the common conventions:
//! `http_request_duration_seconds` (labels `route`, `status`) and `grpc_server_handling_seconds`
//! (label `grpc_code`) histograms, `grpc_client_handling_seconds` for outbound calls, and
//! `process_cpu_seconds_total`. Health, readiness and metrics
//! routes are left out: probes and scrapes are not the load.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_http_query::response::Data;
use serde::{Deserialize, Serialize};

use super::prometheus::PrometheusSource;
use super::{OPS_ROUTES, SourceError};

/// Request-count series of both protocols; the `_bucket` and `_count` suffixes are added.
const LATENCY_HISTOGRAMS: &str = "http_request_duration_seconds|grpc_server_handling_seconds";
/// Server errors: 5xx on HTTP; on gRPC the codes that mean the server failed (not the caller).
/// Each regex also matches the empty value, which is how an HTTP series reads `grpc_code` and a
/// gRPC series reads `status`.
const HTTP_ERRORS: &str = "5..|";
const GRPC_ERRORS: &str = "|Unknown|DeadlineExceeded|Unimplemented|Internal|Unavailable|DataLoss";

/// What one group (e.g. one service) did in the window. A figure is `None` when the group has
/// no such series (a service without a histogram, a process that exports no CPU counter).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupFigures {
    pub name: String,
    pub requests_per_second: Option<f64>,
    pub p95_ms: Option<f64>,
    /// Mean latency: exact (from the histograms' sums), where a quantile is interpolated
    /// within a bucket.
    pub mean_ms: Option<f64>,
    /// Mean latency of the group's outbound gRPC calls (`grpc_client_handling_seconds`) to its
    /// slowest dependency: how long it waits on it. Per dependency, since a slow one averaged
    /// with fast ones would read as half as slow.
    pub outbound_mean_ms: Option<f64>,
    pub error_ratio: Option<f64>,
    pub cpu_cores: Option<f64>,
}

/// The figures of every group and the queries that produced them (for the report's provenance).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Breakdown {
    pub groups: Vec<GroupFigures>,
    pub queries: Vec<String>,
}

/// The PromQL of each figure over `range`, grouped by `label`.
pub fn queries(label: &str, range: Duration) -> [(Figure, String); 6] {
    let w = format!("{}s", range.as_secs().max(1));
    let series = |suffix: &str, extra: &str| {
        let names = LATENCY_HISTOGRAMS
            .split('|')
            .map(|n| format!("{n}_{suffix}"))
            .collect::<Vec<_>>()
            .join("|");
        format!("{{__name__=~\"{names}\",route!~\"{OPS_ROUTES}\"{extra}}}")
    };
    let total = format!("sum by ({label}) (rate({}[{w}]))", series("count", ""));
    let errors = format!(
        "sum by ({label}) (rate({}[{w}]))",
        series(
            "count",
            &format!(",status=~\"{HTTP_ERRORS}\",grpc_code=~\"{GRPC_ERRORS}\"")
        )
    );
    [
        (Figure::RequestsPerSecond, total.clone()),
        (
            Figure::P95,
            format!(
                "histogram_quantile(0.95, sum by ({label}, le) (rate({}[{w}])))",
                series("bucket", "")
            ),
        ),
        (
            Figure::Mean,
            format!(
                "sum by ({label}) (rate({}[{w}])) / {total}",
                series("sum", "")
            ),
        ),
        (
            Figure::OutboundMean,
            format!(
                "max by ({label}) (sum by ({label}, grpc_service) (rate(grpc_client_handling_seconds_sum[{w}])) / sum by ({label}, grpc_service) (rate(grpc_client_handling_seconds_count[{w}])))"
            ),
        ),
        (
            Figure::ErrorRatio,
            // A group that answered no error has no error series: count it as 0, not as absent.
            format!("({errors} or {total} * 0) / {total}"),
        ),
        (
            Figure::Cpu,
            format!("sum by ({label}) (rate(process_cpu_seconds_total[{w}]))"),
        ),
    ]
}

/// One figure of [`GroupFigures`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    RequestsPerSecond,
    P95,
    Mean,
    OutboundMean,
    ErrorRatio,
    Cpu,
}

impl PrometheusSource {
    /// The figures of every value of `label` over `from..to` (queried at `to`). Groups appear
    /// when any figure has a value for them; NaN (no requests: 0/0) is no value.
    pub async fn breakdown(
        &self,
        label: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Breakdown, SourceError> {
        let range = (to - from).to_std().unwrap_or_default();
        let mut groups: BTreeMap<String, GroupFigures> = BTreeMap::new();
        let mut asked = Vec::new();
        for (figure, query) in queries(label, range) {
            let result = self.instant(&query, to.timestamp()).await?;
            let Data::Vector(series) = result.data() else {
                return Err(SourceError::rejected(format!(
                    "Prometheus answered `{query}` with something other than an instant vector"
                )));
            };
            for one in series {
                let Some(name) = one.metric().get(label) else {
                    continue;
                };
                let value = one.sample().value();
                if value.is_nan() {
                    continue;
                }
                let group = groups.entry(name.clone()).or_insert_with(|| GroupFigures {
                    name: name.clone(),
                    ..GroupFigures::default()
                });
                let slot = match figure {
                    Figure::RequestsPerSecond => &mut group.requests_per_second,
                    Figure::P95 => &mut group.p95_ms,
                    Figure::Mean => &mut group.mean_ms,
                    Figure::OutboundMean => &mut group.outbound_mean_ms,
                    Figure::ErrorRatio => &mut group.error_ratio,
                    Figure::Cpu => &mut group.cpu_cores,
                };
                *slot = Some(
                    if matches!(figure, Figure::P95 | Figure::Mean | Figure::OutboundMean) {
                        value * 1000.0
                    } else {
                        value
                    },
                );
            }
            asked.push(query);
        }
        Ok(Breakdown {
            groups: groups.into_values().collect(),
            queries: asked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_groups_by_the_label_and_leaves_probes_out() {
        for (_, query) in queries("service", Duration::from_secs(30)) {
            assert!(query.contains("sum by (service"), "{query}");
            assert!(query.contains("[30s]"), "{query}");
            if !query.contains("process_cpu") && !query.contains("grpc_client") {
                assert!(
                    query.contains("route!~\"/health|/ready|/metrics\""),
                    "{query}"
                );
            }
        }
    }

    #[test]
    fn a_window_under_a_second_still_has_a_range() {
        let [(_, total), ..] = queries("job", Duration::from_millis(300));
        assert!(total.contains("[1s]"), "{total}");
    }
}
