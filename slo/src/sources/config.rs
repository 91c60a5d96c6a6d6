//! Turning "where things are" (URLs, bootstrap servers, a kube context, a run report) into
//! connected sources — only the ones an SLO set actually uses, so a set without Kubernetes
//! SLOs never needs a kubeconfig.

use std::collections::BTreeSet;
use std::sync::Arc;

use reports::Report;

use super::{ClientSource, KafkaSource, KubeSource, PrometheusSource, SourceKind, Sources};

/// A source that cannot even be set up from what was given: a configuration error.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The HTTP client for Prometheus could not be built (TLS set-up).
    #[error("building the HTTP client: {0}")]
    HttpClient(String),
    /// `--prometheus-url` (or the environment) is not a base URL.
    #[error("`{url}` is not a Prometheus base URL: {reason}")]
    PrometheusUrl { url: String, reason: String },
}

/// Where each backend is; `None` leaves that source unconfigured.
#[derive(Clone, Debug, Default)]
pub struct SourcesConfig {
    /// Prometheus base URL, e.g. `http://prometheus:9090`.
    pub prometheus: Option<String>,
    /// Kafka bootstrap servers, e.g. `kafka:9092`.
    pub kafka: Option<String>,
    /// kubeconfig context; the current context (or in-cluster config) when `None`.
    pub kube_context: Option<String>,
    /// A run report for client SLIs, with where it came from.
    pub report: Option<(Arc<Report>, String)>,
}

impl SourcesConfig {
    /// Connects the sources of `kinds`. `Err` is a usage error (e.g. a malformed URL); a
    /// backend that cannot be set up (no kubeconfig) is recorded as broken instead, so its
    /// SLOs become `unknown: unreachable` and the other SLOs are still judged.
    pub async fn build(&self, kinds: &BTreeSet<SourceKind>) -> Result<Sources, SetupError> {
        let mut sources = Sources::new();
        for kind in kinds {
            sources = match kind {
                SourceKind::Prometheus => match &self.prometheus {
                    Some(url) => sources.with(PrometheusSource::new(url)?),
                    None => sources,
                },
                SourceKind::Kafka => match &self.kafka {
                    Some(bootstrap) => sources.with(KafkaSource::new(bootstrap.clone())),
                    None => sources,
                },
                SourceKind::Client => match &self.report {
                    Some((report, origin)) => {
                        sources.with(ClientSource::new(report.clone(), origin.clone()))
                    }
                    None => sources,
                },
                SourceKind::Kube => match KubeSource::connect(self.kube_context.as_deref()).await {
                    Ok(source) => sources.with(source),
                    Err(error) => sources.with_broken(SourceKind::Kube, error),
                },
            };
        }
        Ok(sources)
    }
}
