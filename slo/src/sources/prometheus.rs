//! The Prometheus source: PromQL over the HTTP API with `prometheus-http-query`.
//!
//! An empty result is "no data" (`unknown`), never 0; a result with several series is a
//! configuration error because an SLO needs one value; a connection failure is
//! `unreachable`. Queries run once the window has ended, so a check started with the load
//! judges the whole window.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use prometheus_http_query::response::{Data, PromqlResult};
use prometheus_http_query::{Client, Error as PromError};

use super::promql::{self, Plan, RangeJudgement};
use super::{Probe, Reading, SetupError, Source, SourceError, SourceKind};
use crate::model::Sli;
use crate::series::{self, Point};
use crate::time::human_instant;
use crate::window::Window;

/// How long to wait for a connection before calling Prometheus unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// A Prometheus server, by base URL (e.g. `http://prometheus:9090`).
pub struct PrometheusSource {
    pub(super) client: Client,
    url: String,
}

impl PrometheusSource {
    /// A source for the server at `url`; fails only if `url` is not a URL.
    pub fn new(url: &str) -> Result<PrometheusSource, SetupError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(QUERY_TIMEOUT)
            .build()
            .map_err(|e| SetupError::HttpClient(e.to_string()))?;
        let client = Client::from(http, url).map_err(|e| SetupError::PrometheusUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        Ok(PrometheusSource {
            client,
            url: url.trim_end_matches('/').to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// One instant query at `at` (unix seconds), its failure classified.
    pub(super) async fn instant(&self, expr: &str, at: i64) -> Result<PromqlResult, SourceError> {
        self.client.query(expr).at(at).get().await.map_err(classify)
    }

    async fn run(&self, plan: &Plan) -> Result<Reading, SourceError> {
        match plan {
            Plan::Instant { expr, at } => {
                let result = self.client.query(expr).at(*at).get().await;
                instant_value(result.map_err(classify)?)
            }
            Plan::Range {
                expr,
                start,
                end,
                step,
                judge,
            } => {
                let result = self
                    .client
                    .query_range(expr, *start, *end, *step as f64)
                    .get()
                    .await;
                let points = range_points(result.map_err(classify)?)?;
                Ok(judge_range(&points, *judge, *end))
            }
        }
    }
}

impl Source for PrometheusSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Prometheus
    }

    fn describe(&self, sli: &Sli, window: &Window) -> Probe {
        match promql::plan(sli, window) {
            Ok(Plan::Instant { expr, at }) => Probe {
                source: format!(
                    "prometheus {}: instant query at {}",
                    self.url,
                    human_instant(at as f64)
                ),
                query: Some(expr),
            },
            Ok(Plan::Range {
                expr,
                start,
                end,
                step,
                ..
            }) => Probe {
                source: format!(
                    "prometheus {}: range query from {} to {} step {step}s",
                    self.url,
                    human_instant(start as f64),
                    human_instant(end as f64)
                ),
                query: Some(expr),
            },
            Err(_) => Probe {
                source: format!("prometheus {}", self.url),
                query: None,
            },
        }
    }

    fn measure<'a>(
        &'a self,
        sli: &'a Sli,
        window: &'a Window,
    ) -> BoxFuture<'a, Result<Reading, SourceError>> {
        async move {
            let plan = match promql::plan(sli, window) {
                Ok(plan) => plan,
                Err(why) => return Ok(Reading::no_data(why)),
            };
            wait_until_past(window.to.timestamp().max(plan.last_instant())).await;
            self.run(&plan).await
        }
        .boxed()
    }
}

/// Sleeps until `unix_seconds` (the window's end, or the later end of a counted span) has
/// passed: Prometheus cannot answer for the future.
async fn wait_until_past(unix_seconds: i64) {
    let Some(until) = chrono::DateTime::from_timestamp(unix_seconds, 0) else {
        return;
    };
    if let Ok(left) = (until - chrono::Utc::now()).to_std() {
        tokio::time::sleep(left).await;
    }
}

pub(super) fn classify(error: PromError) -> SourceError {
    match &error {
        PromError::Prometheus(e) if e.is_bad_data() || e.is_execution() => {
            SourceError::rejected(format!("Prometheus refused the query: {}", e.message()))
        }
        PromError::Prometheus(e) => SourceError::unreachable(format!(
            "Prometheus could not answer ({:?}): {}",
            e.error_type(),
            e.message()
        )),
        _ => SourceError::unreachable(with_root_cause(&error)),
    }
}

/// `what failed: why`, with the innermost cause as the why (e.g. `Connection refused`):
/// reqwest hides it in the error's sources, between layers that repeat the whole URL.
fn with_root_cause(error: &dyn std::error::Error) -> String {
    let mut root = None;
    let mut source = error.source();
    while let Some(cause) = source {
        root = Some(cause);
        source = cause.source();
    }
    match root {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

fn instant_value(result: PromqlResult) -> Result<Reading, SourceError> {
    let value = match result.data() {
        Data::Scalar(sample) => sample.value(),
        Data::Vector(series) => match &series[..] {
            [] => {
                return Ok(Reading::no_data(
                    "the query matched no series in the window",
                ));
            }
            [one] => one.sample().value(),
            many => return Err(too_many_series(many.len())),
        },
        Data::Matrix(_) => {
            return Err(SourceError::rejected(
                "the query returned a range vector; an SLO needs one value (wrap it in a function such as max_over_time)",
            ));
        }
    };
    if value.is_nan() {
        return Ok(Reading::no_data(
            "the query returned NaN (e.g. no requests in the window: 0/0)",
        ));
    }
    Ok(Reading::exact(value))
}

fn too_many_series(count: usize) -> SourceError {
    SourceError::rejected(format!(
        "the query returned {count} series; an SLO needs one value (aggregate with sum, max...)"
    ))
}

fn range_points(result: PromqlResult) -> Result<Vec<Point>, SourceError> {
    match result.data() {
        Data::Matrix(series) => match &series[..] {
            [] => Ok(Vec::new()),
            [one] => Ok(one
                .samples()
                .iter()
                .map(|s| Point {
                    at: s.timestamp(),
                    value: s.value(),
                })
                .collect()),
            many => Err(too_many_series(many.len())),
        },
        _ => Err(SourceError::rejected(
            "a range query did not return a matrix",
        )),
    }
}

fn judge_range(points: &[Point], judge: RangeJudgement, end: i64) -> Reading {
    if points.is_empty() {
        return Reading::no_data("the query matched no series in the window");
    }
    match judge {
        RangeJudgement::LongestTrueRun => {
            let at_max = points.iter().filter(|p| p.value >= 1.0).count();
            Reading::exact(series::longest_run(points, |v| v >= 1.0)).with_note(format!(
                "at max replicas in {at_max} of {} samples",
                points.len()
            ))
        }
        RangeJudgement::RecoveryBelow { below, since } => {
            let since = since as f64;
            match series::first_at_or_after(points, since, |v| v < below) {
                Some(point) => Reading::exact(point.at - since).with_note(format!(
                    "lag {} at {}",
                    point.value,
                    human_instant(point.at)
                )),
                None => {
                    let last = points.last().map_or(f64::NAN, |p| p.value);
                    Reading {
                        measured: super::Measured::AtLeast(end as f64 - since),
                        note: Some(format!(
                            "not recovered: lag still {last} at the end of the window"
                        )),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::Measured;

    fn points(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                at: 1000.0 + 15.0 * i as f64,
                value: *v,
            })
            .collect()
    }

    #[test]
    fn recovery_is_exact_when_seen_and_a_lower_bound_otherwise() {
        let judge = RangeJudgement::RecoveryBelow {
            below: 1000.0,
            since: 1000,
        };
        let recovered = judge_range(&points(&[5000.0, 3000.0, 900.0]), judge, 1030);
        assert_eq!(recovered.measured, Measured::Exact(30.0));
        let stuck = judge_range(&points(&[5000.0, 5000.0, 5000.0]), judge, 1030);
        assert_eq!(stuck.measured, Measured::AtLeast(30.0));
        assert!(stuck.note.unwrap().contains("not recovered"));
        assert_eq!(judge_range(&[], judge, 1030).measured, Measured::NoData);
    }

    #[test]
    fn the_url_is_checked_when_the_source_is_made() {
        let source = PrometheusSource::new("http://127.0.0.1:9").unwrap();
        assert_eq!(source.url(), "http://127.0.0.1:9");
        assert!(PrometheusSource::new("not a url").is_err());
    }
}
