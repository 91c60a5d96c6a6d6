//! The kube source: a HorizontalPodAutoscaler's spec and status read from the Kubernetes API
//! (`autoscaling/v2`), sampled while the window runs, or read once at its end for the
//! end-state check.
//!
//! Useful where no kube-state-metrics is scraped. It has no history: for windows in the past
//! only `end_gap` can be answered (with a read made now, and the verdict says so); the others
//! need source `prometheus`.

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Api;
use kube::config::{Config, KubeConfigOptions};

use super::sampling;
use super::{Probe, Reading, Source, SourceError, SourceKind};
use crate::model::{HpaMeasure, HpaSli, Sli};
use crate::series;
use crate::window::Window;

/// A Kubernetes API server, through a `kube` client.
pub struct KubeSource {
    client: kube::Client,
    /// Which cluster, for the verdict (e.g. `context staging`).
    origin: String,
}

/// What the API says about an autoscaler at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HpaState {
    pub current: i32,
    pub desired: i32,
    pub min: i32,
    pub max: i32,
}

impl KubeSource {
    /// A source over an existing client (tests pass a mocked service here).
    pub fn new(client: kube::Client, origin: impl Into<String>) -> KubeSource {
        KubeSource {
            client,
            origin: origin.into(),
        }
    }

    /// Connects with the kubeconfig's `context` (its current context when `None`, or the
    /// in-cluster service account when there is no kubeconfig).
    pub async fn connect(context: Option<&str>) -> Result<KubeSource, SourceError> {
        let config = match context {
            Some(name) => Config::from_kubeconfig(&KubeConfigOptions {
                context: Some(name.to_string()),
                ..KubeConfigOptions::default()
            })
            .await
            .map_err(|e| SourceError::unreachable(format!("kubeconfig context {name}: {e}")))?,
            None => Config::infer()
                .await
                .map_err(|e| SourceError::unreachable(format!("no Kubernetes config: {e}")))?,
        };
        let origin = match context {
            Some(name) => format!("context {name} ({})", config.cluster_url),
            None => config.cluster_url.to_string(),
        };
        let client = kube::Client::try_from(config)
            .map_err(|e| SourceError::unreachable(format!("Kubernetes client: {e}")))?;
        Ok(KubeSource::new(client, origin))
    }

    /// Reads the autoscaler once.
    pub async fn read(&self, namespace: &str, name: &str) -> Result<HpaState, SourceError> {
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), namespace);
        let hpa = api
            .get(name)
            .await
            .map_err(|e| classify(e, namespace, name))?;
        let spec = hpa
            .spec
            .ok_or_else(|| SourceError::rejected(format!("HPA {namespace}/{name} has no spec")))?;
        let status = hpa.status.unwrap_or_default();
        Ok(HpaState {
            current: status.current_replicas.unwrap_or(0),
            desired: status.desired_replicas,
            // The API's default for an unset minReplicas.
            min: spec.min_replicas.unwrap_or(1),
            max: spec.max_replicas,
        })
    }

    async fn measure_hpa(&self, hpa: &HpaSli, window: &Window) -> Result<Reading, SourceError> {
        if hpa.measure == HpaMeasure::EndGap {
            return self.end_gap(hpa, window).await;
        }
        let samples =
            sampling::sample(window, || self.read(&hpa.namespace, &hpa.name), |_| false).await;
        if samples.window_over {
            return Ok(Reading::no_data(format!(
                "the kube source samples live and the window ended at {}; use source prometheus (kube-state-metrics) for past windows",
                window.to.to_rfc3339()
            )));
        }
        let Some((_, last)) = samples.taken.last() else {
            return Err(samples
                .last_error
                .clone()
                .unwrap_or_else(|| SourceError::unreachable("no reads")));
        };
        let current = samples.points(|s| s.current as f64);
        Ok(match hpa.measure {
            HpaMeasure::ScaleOut => {
                let peak = series::max(&current).unwrap_or(0.0);
                Reading::exact(peak - last.min as f64).with_note(format!(
                    "peak {peak} replicas, minReplicas {}; {}",
                    last.min,
                    samples.summary()
                ))
            }
            HpaMeasure::TimeAtMax => {
                let max = last.max as f64;
                Reading::exact(series::longest_run(&current, |c| c >= max)).with_note(format!(
                    "maxReplicas {}; {}",
                    last.max,
                    samples.summary()
                ))
            }
            HpaMeasure::EndGap => unreachable!("handled above"),
        })
    }

    /// One read when the window ends (or now, if it already has).
    async fn end_gap(&self, hpa: &HpaSli, window: &Window) -> Result<Reading, SourceError> {
        let now = chrono::Utc::now();
        if let Ok(left) = (window.to - now).to_std() {
            tokio::time::sleep(left).await;
        }
        let read_at = chrono::Utc::now();
        let state = self.read(&hpa.namespace, &hpa.name).await?;
        let mut note = format!(
            "desired {}, current {} replicas, read at {}",
            state.desired,
            state.current,
            read_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        if read_at - window.to > chrono::Duration::seconds(5) {
            note.push_str(" (after the window ended: the API has no history)");
        }
        Ok(Reading::exact((state.desired - state.current).abs() as f64).with_note(note))
    }
}

/// The API path of an autoscaler, as the client requests it.
pub fn hpa_path(namespace: &str, name: &str) -> String {
    format!("/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{name}")
}

fn classify(error: kube::Error, namespace: &str, name: &str) -> SourceError {
    match &error {
        kube::Error::Api(status) if status.code == 404 => {
            SourceError::rejected(format!("HPA {namespace}/{name} does not exist"))
        }
        kube::Error::Api(status) if status.code == 401 || status.code == 403 => {
            SourceError::rejected(format!(
                "not allowed to read HPA {namespace}/{name}: {}",
                status.message
            ))
        }
        _ => SourceError::unreachable(format!("reading HPA {namespace}/{name}: {error}")),
    }
}

impl Source for KubeSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Kube
    }

    fn describe(&self, sli: &Sli, window: &Window) -> Probe {
        let Sli::Hpa(hpa) = sli else {
            return Probe {
                source: format!("kube {}", self.origin),
                query: None,
            };
        };
        let how = match hpa.measure {
            HpaMeasure::EndGap => "read once when the window ends".to_string(),
            _ => format!(
                "sampled every {} while the window runs",
                humantime::format_duration(window.sample_every)
            ),
        };
        Probe {
            source: format!("kube {}: {how}", self.origin),
            query: Some(format!(
                "GET {} (spec.minReplicas, spec.maxReplicas, status.currentReplicas, status.desiredReplicas)",
                hpa_path(&hpa.namespace, &hpa.name)
            )),
        }
    }

    fn measure<'a>(
        &'a self,
        sli: &'a Sli,
        window: &'a Window,
    ) -> BoxFuture<'a, Result<Reading, SourceError>> {
        async move {
            match sli {
                Sli::Hpa(hpa) => self.measure_hpa(hpa, window).await,
                other => Err(SourceError::rejected(format!(
                    "the kube source cannot measure a `{}` SLI",
                    other.kind_name()
                ))),
            }
        }
        .boxed()
    }
}
