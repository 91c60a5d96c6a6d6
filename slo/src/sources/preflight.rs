//! Pre-flight: before a run sends its first request, every source its SLO file needs must
//! answer — otherwise the load is spent and the gate says `unknown` (or `INVALID`) minutes
//! later. A source nobody configured, a Prometheus that refuses a query (a typo in a selector
//! or a `promql:` SLI), a Prometheus, Kafka or Kubernetes API that does not answer: each is
//! found here, at once, and named.
//!
//! Queries are checked by asking them for the last minutes: Prometheus parses and plans the
//! same expression the gate will send later, so a rejection now is a rejection then.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use prometheus_http_query::{Client, Error as PromError};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::promql::{self, Plan};
use super::{KubeSource, SourceError, SourceErrorKind, SourceKind, SourcesConfig, configure_hint};
use crate::model::{Sli, SloSet};
use crate::window::Window;

/// How long each backend may take to answer a pre-flight question.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The span queries are tried over (any span parses the same way).
const TRIAL_SPAN: chrono::Duration = chrono::Duration::minutes(5);

/// Every problem the pre-flight found, as one error: nothing was sent.
#[derive(Debug, thiserror::Error)]
#[error("pre-flight failed, nothing was sent:\n  {}", list(.problems))]
pub struct PreflightFailed {
    pub problems: Vec<SourceError>,
}

fn list(problems: &[SourceError]) -> String {
    problems
        .iter()
        .map(|p| p.message.as_str())
        .collect::<Vec<_>>()
        .join("\n  ")
}

impl PreflightFailed {
    /// A configuration problem (a source not configured, a query refused) rather than only
    /// unreachable backends: it wins, since fixing the configuration comes first.
    pub fn is_rejected(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.kind == SourceErrorKind::Rejected)
    }
}

/// [`preflight`] as a gate: `Ok` when every source answers, else all the problems as one error.
pub async fn require(set: &SloSet, config: &SourcesConfig) -> Result<(), PreflightFailed> {
    let problems = preflight(set, config).await;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PreflightFailed { problems })
    }
}

/// Checks that every source `set` needs is configured in `config` and answers. Client SLIs are
/// skipped: they read the run that is about to happen. Returns every problem found, each as
/// `rejected` (configuration: exit 2) or `unreachable` (exit 3).
pub async fn preflight(set: &SloSet, config: &SourcesConfig) -> Vec<SourceError> {
    let mut by_kind: BTreeMap<SourceKind, Vec<&crate::model::Slo>> = BTreeMap::new();
    for slo in &set.slos {
        by_kind.entry(slo.source_kind()).or_default().push(slo);
    }
    let mut problems = Vec::new();
    for (kind, slos) in by_kind {
        let names = || {
            slos.iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let not_configured = || {
            SourceError::rejected(format!(
                "SLO file {} needs a {kind} source (for {}), and none is configured: {}",
                set.metadata.name,
                names(),
                configure_hint(kind)
            ))
        };
        match kind {
            SourceKind::Client => {}
            SourceKind::Prometheus => match &config.prometheus {
                None => problems.push(not_configured()),
                Some(url) => problems.extend(prometheus(url, set, &slos).await),
            },
            SourceKind::Kafka => match &config.kafka {
                None => problems.push(not_configured()),
                Some(bootstrap) => problems.extend(kafka(bootstrap.clone()).await.err()),
            },
            SourceKind::Kube => problems.extend(kube(config, &slos).await),
        }
    }
    problems
}

/// The server answers, and accepts every query the gate will send.
async fn prometheus(url: &str, set: &SloSet, slos: &[&crate::model::Slo]) -> Vec<SourceError> {
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(http) => Client::from(http, url),
        Err(e) => return vec![SourceError::unreachable(format!("HTTP client: {e}"))],
    };
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            return vec![SourceError::rejected(format!(
                "`{url}` is not a Prometheus base URL: {e}"
            ))];
        }
    };
    let now = Utc::now();
    let Ok(window) = Window::new(now - TRIAL_SPAN, now, &set.defaults) else {
        return Vec::new();
    };
    if let Err(error) = client.query("vector(1)").get().await {
        return vec![classify(url, "vector(1)", error)];
    }
    let mut problems = Vec::new();
    for slo in slos {
        // Plans that cannot be made yet (a recovery mark not known before the run) are judged
        // later; their expression has the same shape as one that can.
        let expr = match promql::plan(&slo.sli, &window) {
            Ok(Plan::Instant { expr, .. }) | Ok(Plan::Range { expr, .. }) => expr,
            Err(_) => continue,
        };
        if let Err(error) = client.query(&expr).get().await {
            let mut problem = classify(url, &expr, error);
            problem.message = format!("SLO {}: {}", slo.name, problem.message);
            problems.push(problem);
        }
    }
    problems
}

fn classify(url: &str, expr: &str, error: PromError) -> SourceError {
    match &error {
        PromError::Prometheus(e) if e.is_bad_data() || e.is_execution() => {
            SourceError::rejected(format!(
                "Prometheus {url} refuses the query `{expr}`: {}",
                e.message()
            ))
        }
        _ => {
            let mut cause: &dyn std::error::Error = &error;
            while let Some(source) = cause.source() {
                cause = source;
            }
            SourceError::unreachable(format!("Prometheus {url} does not answer: {cause}"))
        }
    }
}

/// The cluster answers a metadata request.
async fn kafka(bootstrap: String) -> Result<(), SourceError> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("client.id", "shakedown-preflight")
            .create()
            .map_err(|e| SourceError::rejected(format!("Kafka client for {bootstrap}: {e}")))?;
        consumer
            .fetch_metadata(None, TIMEOUT)
            .map(|_| ())
            .map_err(|e| {
                SourceError::unreachable(format!("Kafka {bootstrap} does not answer: {e}"))
            })
    })
    .await
    .map_err(|e| SourceError::unreachable(format!("Kafka check stopped: {e}")))?
}

/// The API answers and lets us read every autoscaler the SLOs name.
async fn kube(config: &SourcesConfig, slos: &[&crate::model::Slo]) -> Vec<SourceError> {
    let source = match KubeSource::connect(config.kube_context.as_deref()).await {
        Ok(source) => source,
        Err(error) => return vec![error],
    };
    let mut problems = Vec::new();
    for slo in slos {
        if let Sli::Hpa(hpa) = &slo.sli
            && let Err(mut error) =
                tokio::time::timeout(TIMEOUT, source.read(&hpa.namespace, &hpa.name))
                    .await
                    .unwrap_or_else(|_| {
                        Err(SourceError::unreachable(format!(
                            "the Kubernetes API did not answer within {} s",
                            TIMEOUT.as_secs()
                        )))
                    })
        {
            error.message = format!("SLO {}: {}", slo.name, error.message);
            problems.push(error);
        }
    }
    problems
}
