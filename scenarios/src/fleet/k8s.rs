//! `--on k8s`: the workers as one Kubernetes Indexed Job, created through the API (`kube`), one
//! pod per share (`JOB_COMPLETION_INDEX` is the share index), each running
//! `shakedown worker --coordinator URL`. CPU request equals its limit, so CPU throttling cannot
//! skew the latencies a worker measures. While the run starts, the Job's pods are watched (one
//! list, then a watch from its `resourceVersion`, renewed from the last version seen, listed
//! again when that version expired) and a pod that cannot start (image pull, unschedulable, bad
//! config) ends the run with its reason; the Job is deleted at the end, whatever the end (done,
//! aborted, Ctrl-C).

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, ObjectFieldSelector, Pod,
    PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile,
    SecurityContext, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use tokio::task::JoinHandle;

use super::error::FleetError;
use super::launch::Launcher;

/// The label every object of one run carries (Job, pods), so its pods are found by run.
pub const RUN_LABEL: &str = "shakedown.dev/run-id";
/// The name label of every worker pod, whatever the run: what a NetworkPolicy in front of the
/// coordinator selects (`deploy/load/coordinator.yaml`).
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const APP: &str = "shakedown-load";
/// The namespace `--on k8s` uses unless told otherwise: the one `deploy/load/` creates.
pub const DEFAULT_NAMESPACE: &str = "shakedown-load";
/// One watch call lasts at most this long (the API server ends it); then it is renewed from
/// the last resource version seen.
pub const WATCH_SECONDS: u32 = 290;
/// The pause before listing again after an error, and before renewing a watch that ended at
/// once (an API server or proxy that closes watches must not be hammered).
const RETRY: Duration = Duration::from_secs(1);
/// Waiting reasons of a container that will not start by itself.
const STUCK: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "CrashLoopBackOff",
];

/// Where and how the worker pods run.
#[derive(Clone, Debug, PartialEq)]
pub struct KubeSpec {
    pub namespace: String,
    /// The shakedown image the workers run.
    pub image: String,
    /// CPU of each worker, request = limit (e.g. `1`, `500m`).
    pub cpu: String,
    /// Memory of each worker, request = limit (e.g. `512Mi`).
    pub memory: String,
}

/// Workers as a Kubernetes Indexed Job.
pub struct Kube {
    client: kube::Client,
    spec: KubeSpec,
    job: Option<String>,
    trouble: Arc<Mutex<Option<String>>>,
    watcher: Option<JoinHandle<()>>,
}

impl Kube {
    /// With the cluster of the environment: `KUBECONFIG` (or `~/.kube/config`) and its current
    /// context, or the pod's service account when the coordinator runs in the cluster.
    pub async fn from_environment(spec: KubeSpec) -> Result<Self, FleetError> {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| FleetError::Kube(format!("no usable cluster configuration: {e}")))?;
        Ok(Self::new(client, spec))
    }

    pub fn new(client: kube::Client, spec: KubeSpec) -> Self {
        Self {
            client,
            spec,
            job: None,
            trouble: Arc::default(),
            watcher: None,
        }
    }
}

/// The Job's name for run `run_id` (a UUID: 15 + 36 characters, within the 63 a label allows).
pub fn job_name(run_id: &str) -> String {
    format!("{APP}-{run_id}")
}

/// The Indexed Job of `workers` workers joining the coordinator at `url`.
pub fn job(spec: &KubeSpec, url: &str, workers: u32, run_id: &str) -> Job {
    let labels = BTreeMap::from([
        (NAME_LABEL.to_string(), APP.to_string()),
        (
            "app.kubernetes.io/component".to_string(),
            "worker".to_string(),
        ),
        (
            "app.kubernetes.io/part-of".to_string(),
            "shakedown".to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "shakedown".to_string(),
        ),
        (RUN_LABEL.to_string(), run_id.to_string()),
    ]);
    let resources = BTreeMap::from([
        ("cpu".to_string(), Quantity(spec.cpu.clone())),
        ("memory".to_string(), Quantity(spec.memory.clone())),
    ]);
    let workers = i32::try_from(workers).unwrap_or(i32::MAX);
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(run_id)),
            namespace: Some(spec.namespace.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(workers),
            parallelism: Some(workers),
            // A restarted worker would replay its share: the coordinator reports it missing.
            backoff_limit: Some(0),
            ttl_seconds_after_finished: Some(3600),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    // One worker per node where possible: generators on one node compete for
                    // its CPU and network, and the measure suffers.
                    topology_spread_constraints: Some(vec![TopologySpreadConstraint {
                        max_skew: 1,
                        topology_key: "kubernetes.io/hostname".into(),
                        when_unsatisfiable: "ScheduleAnyway".into(),
                        label_selector: Some(LabelSelector {
                            match_labels: Some(BTreeMap::from([(
                                RUN_LABEL.to_string(),
                                run_id.to_string(),
                            )])),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }]),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65532),
                        run_as_group: Some(65532),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    containers: vec![Container {
                        name: "worker".into(),
                        image: Some(spec.image.clone()),
                        args: Some(
                            ["worker", "--quiet", "--coordinator", url]
                                .map(String::from)
                                .to_vec(),
                        ),
                        env: Some(vec![
                            EnvVar {
                                name: "JOB_COMPLETION_INDEX".into(),
                                value_from: Some(EnvVarSource {
                                    field_ref: Some(ObjectFieldSelector {
                                        field_path: "metadata.annotations['batch.kubernetes.io/job-completion-index']".into(),
                                        ..Default::default()
                                    }),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            },
                            EnvVar {
                                name: "RUST_LOG".into(),
                                value: Some("info".into()),
                                ..Default::default()
                            },
                        ]),
                        resources: Some(ResourceRequirements {
                            requests: Some(resources.clone()),
                            limits: Some(resources),
                            ..Default::default()
                        }),
                        security_context: Some(SecurityContext {
                            run_as_non_root: Some(true),
                            read_only_root_filesystem: Some(true),
                            allow_privilege_escalation: Some(false),
                            capabilities: Some(Capabilities {
                                drop: Some(vec!["ALL".into()]),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        // The root filesystem is read-only; /tmp is the platform's writable place.
                        volume_mounts: Some(vec![VolumeMount {
                            name: "tmp".into(),
                            mount_path: "/tmp".into(),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }],
                    volumes: Some(vec![Volume {
                        name: "tmp".into(),
                        empty_dir: Some(EmptyDirVolumeSource {
                            size_limit: Some(Quantity("64Mi".into())),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Why `pod` will not run by itself, if it will not.
pub fn stuck(pod: &Pod) -> Option<String> {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let status = pod.status.as_ref()?;
    for container in status.container_statuses.iter().flatten() {
        let waiting = container.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(waiting) = waiting
            && let Some(reason) = waiting.reason.as_deref()
            && STUCK.contains(&reason)
        {
            return Some(format!(
                "pod {name} cannot start: {reason}{}",
                waiting
                    .message
                    .as_deref()
                    .map_or(String::new(), |m| format!(" ({m})"))
            ));
        }
    }
    for condition in status.conditions.iter().flatten() {
        if condition.type_ == "PodScheduled"
            && condition.status == "False"
            && condition.reason.as_deref() == Some("Unschedulable")
        {
            return Some(format!(
                "pod {name} cannot be scheduled: Unschedulable{}",
                condition
                    .message
                    .as_deref()
                    .map_or(String::new(), |m| format!(" ({m})"))
            ));
        }
    }
    (status.phase.as_deref() == Some("Failed")).then(|| format!("pod {name} failed"))
}

/// Watches the pods of `selector` until one cannot start, and says why: a list gives the pods
/// that exist and a resource version; a watch from that version gives every change after it,
/// and is renewed from the last version seen (an event's or a bookmark's) when it ends. A
/// version the server no longer has (410 Gone) or an error event means listing again. Errors
/// are logged and retried: the join timeout bounds the wait anyway.
async fn first_trouble(pods: &Api<Pod>, selector: &str) -> String {
    loop {
        let began = Instant::now();
        let list = match pods.list(&ListParams::default().labels(selector)).await {
            Ok(list) => list,
            Err(error) => {
                tracing::warn!("listing the worker pods: {error}");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if let Some(reason) = list.items.iter().find_map(stuck) {
            return reason;
        }
        let mut version = list.metadata.resource_version.unwrap_or_default();
        let params = WatchParams::default()
            .labels(selector)
            .timeout(WATCH_SECONDS);
        // Watch calls from `version` on, until the list must be made again.
        loop {
            let watched = Instant::now();
            let events = match pods.watch(&params, &version).await {
                Ok(events) => events,
                Err(kube::Error::Api(status)) if status.code == 410 => break,
                Err(error) => {
                    tracing::warn!("watching the worker pods: {error}");
                    break;
                }
            };
            let mut events = pin!(events);
            let mut relist = false;
            while let Some(event) = events.next().await {
                match event {
                    Ok(WatchEvent::Added(pod) | WatchEvent::Modified(pod)) => {
                        if let Some(reason) = stuck(&pod) {
                            return reason;
                        }
                        version = pod.metadata.resource_version.unwrap_or(version);
                    }
                    // With `backoffLimit: 0` a deleted pod (evicted, preempted, removed by
                    // hand) fails the Job: its worker will never run.
                    Ok(WatchEvent::Deleted(pod)) => {
                        return format!(
                            "pod {} was deleted",
                            pod.metadata.name.as_deref().unwrap_or("?")
                        );
                    }
                    Ok(WatchEvent::Bookmark(bookmark)) => {
                        version = bookmark.metadata.resource_version;
                    }
                    Ok(WatchEvent::Error(status)) => {
                        if status.code != 410 {
                            tracing::warn!("watching the worker pods: {}", status.message);
                        }
                        relist = true;
                        break;
                    }
                    // A broken stream: renewed from the last version seen.
                    Err(error) => {
                        tracing::warn!("watching the worker pods: {error}");
                        break;
                    }
                }
            }
            if relist {
                break;
            }
            if watched.elapsed() < RETRY {
                tokio::time::sleep(RETRY).await;
            }
        }
        if began.elapsed() < RETRY {
            tokio::time::sleep(RETRY).await;
        }
    }
}

impl Launcher for Kube {
    async fn launch(&mut self, url: &str, workers: u32, run_id: &str) -> Result<(), FleetError> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.spec.namespace);
        let job = job(&self.spec, url, workers, run_id);
        let name = job_name(run_id);
        jobs.create(&PostParams::default(), &job)
            .await
            .map_err(|e| {
                FleetError::Kube(format!(
                    "creating Job {name} in namespace {}: {e}",
                    self.spec.namespace
                ))
            })?;
        self.job = Some(name);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.spec.namespace);
        let selector = format!("{RUN_LABEL}={run_id}");
        let trouble = self.trouble.clone();
        self.watcher = Some(tokio::spawn(async move {
            let reason = first_trouble(&pods, &selector).await;
            *trouble.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
        }));
        Ok(())
    }

    fn exited(&mut self) -> Option<String> {
        self.trouble
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn finish(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
        }
        let Some(name) = self.job.take() else {
            return;
        };
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.spec.namespace);
        // Background propagation: the Job's pods go with it.
        if let Err(error) = jobs.delete(&name, &DeleteParams::background()).await {
            eprintln!("warning: could not delete Job {name}: {error}; delete it with kubectl");
        }
    }
}
