//! The Kubernetes target of chaos experiments: `pod-kill` and `broker-failure` through the API
//! server, guarded by default-deny namespaces and a blast-radius limit, with recovery measured
//! from the first delete until the owning controller is back to its desired ready replicas.
//!
//! Split by concern: [`spec`] is what the experiment file says, [`safety`] the rules that refuse
//! dangerous actions before any request, [`pods`] listing/picking/deleting, [`recovery`] the wait,
//! `actions` the sequence of one kill, [`requests`] and [`describe`] the request texts shared by
//! real runs, errors and dry runs.

mod actions;
pub mod describe;
pub mod pods;
pub mod preflight;
pub mod recovery;
pub mod requests;
pub mod safety;
pub mod spec;

use tokio_util::sync::CancellationToken;

pub use spec::{KubeBrokerFailure, KubeTargetSpec, PodKill};

use self::actions::{Kill, broker_target, dry_run_record};
use crate::{ActionRecord, ChaosError};

/// A connected (or, in a dry run, merely configured) Kubernetes target.
#[derive(Clone)]
pub struct KubeTarget {
    client: kube::Client,
    spec: KubeTargetSpec,
    dry_run: bool,
}

impl std::fmt::Debug for KubeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeTarget")
            .field("spec", &self.spec)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

impl KubeTarget {
    /// Builds a client from kubeconfig (`context`, or the current one) or, without a kubeconfig,
    /// the in-cluster config. The spec's safety rules are checked first (Refused: empty allowlist,
    /// kube-system/kube-public in it or as namespace, namespace not in the allowlist, blast radius
    /// outside (0, 100]). Unreachable if no config loads. Sends no request, so a dry run stays
    /// silent.
    pub async fn connect(spec: &KubeTargetSpec, dry_run: bool) -> Result<KubeTarget, ChaosError> {
        safety::check_spec(spec)?;
        let config = match &spec.context {
            Some(context) => kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions {
                context: Some(context.clone()),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                ChaosError::Unreachable(format!("kubeconfig context \"{context}\": {e}"))
            })?,
            None => kube::Config::infer().await.map_err(|e| {
                ChaosError::Unreachable(format!("no kubeconfig or in-cluster config: {e}"))
            })?,
        };
        let client = kube::Client::try_from(config)
            .map_err(|e| ChaosError::Unreachable(format!("kube client: {e}")))?;
        Self::with_client(client, spec, dry_run)
    }

    /// Same with a given client (tests use tower-test's mock service).
    /// A dry-run target that needs no kubeconfig and cannot send anything: its client refuses every
    /// request, so "a dry run sends nothing" holds by construction, not by care.
    pub fn offline(spec: &KubeTargetSpec) -> Result<KubeTarget, ChaosError> {
        let refuse_all = tower::service_fn(|_: http::Request<kube::client::Body>| async {
            Err::<http::Response<kube::client::Body>, tower::BoxError>(
                "dry run: no request may be sent".into(),
            )
        });
        let client = kube::Client::new(refuse_all, spec.namespace.clone());
        KubeTarget::with_client(client, spec, true)
    }

    pub fn with_client(
        client: kube::Client,
        spec: &KubeTargetSpec,
        dry_run: bool,
    ) -> Result<KubeTarget, ChaosError> {
        safety::check_spec(spec)?;
        Ok(KubeTarget {
            client,
            spec: spec.clone(),
            dry_run,
        })
    }

    pub fn spec(&self) -> &KubeTargetSpec {
        &self.spec
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// Checks an action before the experiment starts (namespace allowed, count/percent sane,
    /// selector given) without talking to the API: Refused or Invalid.
    pub fn check_pod_kill(&self, action: &PodKill) -> Result<(), ChaosError> {
        safety::check_pod_kill(&self.spec, action)
    }

    /// Like [`Self::check_pod_kill`]: exactly one of selector / statefulset with ordinals.
    pub fn check_broker_failure(&self, action: &KubeBrokerFailure) -> Result<(), ChaosError> {
        safety::check_broker_failure(&self.spec, action)
    }

    /// Lists the non-terminating pods of the label selector in the namespace and picks `count`
    /// or `percent` of them at random (percent rounds up, at least 1; neither means 1).
    ///
    /// Blast radius: refused (Err Refused, nothing deleted) when the picked pods exceed
    /// `floor(matching * max_blast_radius_percent / 100)`, so the only pod of a selector can only
    /// be killed with a limit of 100. Also refused when a picked pod has no controller (it would
    /// not come back).
    ///
    /// Then resolves each pod's owner (pod -> ReplicaSet -> Deployment, or StatefulSet), deletes
    /// each pod with `gracePeriodSeconds`, and polls every second, up to `recovery_timeout` or
    /// until `cancel` fires, until every owner has its desired ready replicas, the deleted pods
    /// (by uid) are gone, and as many pods of the selector are ready as before.
    ///
    /// Returns a record (`pod-kill`, target `<ns>/<selector>`, the pod names): Ok with the time
    /// from the first delete to recovery; Failed with a detail when no pod matched, recovery
    /// timed out, or the wait was cancelled; Skipped when cancelled before anything was sent.
    /// Err(Unreachable) when the API cannot be reached, Err(Failed) when it answers with an error.
    /// In a dry run nothing at all is sent: outcome DryRun, detail = [`Self::describe_pod_kill`].
    pub async fn pod_kill(
        &self,
        action: &PodKill,
        cancel: &CancellationToken,
    ) -> Result<ActionRecord, ChaosError> {
        self.check_pod_kill(action)?;
        let ns = self.namespace(action.namespace.as_deref());
        let target = self.pod_kill_target(action);
        if self.dry_run {
            return Ok(dry_run_record(
                "pod-kill",
                target,
                self.describe_pod_kill(action),
            ));
        }
        let kill = Kill::new(
            "pod-kill",
            target,
            ns,
            action.grace_period_seconds,
            action.recovery_timeout,
        );
        let amount = |matching: usize| safety::pods_to_pick(action, matching);
        self.kill_by_selector(kill, &action.selector, &amount, cancel)
            .await
    }

    /// Same for Kafka broker pods (action `broker-failure`): by selector like
    /// [`Self::pod_kill`] (`count`, default 1), or by StatefulSet ordinals: checks the
    /// StatefulSet exists and has those ordinals (blast radius against its replicas), deletes
    /// pods `<sts>-<n>` directly, then waits for `readyReplicas == replicas` and each pod to be
    /// back (new uid, ready). Target `<ns>/<selector>` or `<ns>/statefulset/<sts>`.
    pub async fn broker_failure(
        &self,
        action: &KubeBrokerFailure,
        cancel: &CancellationToken,
    ) -> Result<ActionRecord, ChaosError> {
        self.check_broker_failure(action)?;
        let ns = self.namespace(action.namespace.as_deref());
        let target = self.broker_failure_target(action);
        if self.dry_run {
            return Ok(dry_run_record(
                "broker-failure",
                target,
                self.describe_broker_failure(action),
            ));
        }
        let kill = Kill::new(
            "broker-failure",
            target,
            ns,
            action.grace_period_seconds,
            action.recovery_timeout,
        );
        match (&action.selector, &action.statefulset) {
            (Some(selector), _) => {
                let count = action.count.unwrap_or(1) as usize;
                let amount = move |matching: usize| count.min(matching);
                self.kill_by_selector(kill, selector, &amount, cancel).await
            }
            (None, Some(statefulset)) => {
                self.kill_by_ordinals(kill, statefulset, &action.ordinals, cancel)
                    .await
            }
            (None, None) => unreachable!("check_broker_failure requires selector or statefulset"),
        }
    }

    /// One line per request that [`Self::pod_kill`] would send: for --dry-run output.
    pub fn describe_pod_kill(&self, action: &PodKill) -> Vec<String> {
        describe::pod_kill(&self.spec, action)
    }

    /// One line per request that [`Self::broker_failure`] would send: for --dry-run output.
    pub fn describe_broker_failure(&self, action: &KubeBrokerFailure) -> Vec<String> {
        describe::broker_failure(&self.spec, action)
    }

    /// What a `pod-kill` is aimed at, as its journal records it: `<ns>/<selector>`.
    pub fn pod_kill_target(&self, action: &PodKill) -> String {
        let ns = self.namespace(action.namespace.as_deref());
        format!("{ns}/{}", action.selector)
    }

    /// What a kube `broker-failure` is aimed at: `<ns>/<selector>` or `<ns>/statefulset/<sts>`.
    pub fn broker_failure_target(&self, action: &KubeBrokerFailure) -> String {
        broker_target(self.namespace(action.namespace.as_deref()), action)
    }

    fn namespace<'a>(&'a self, action_ns: Option<&'a str>) -> &'a str {
        action_ns.unwrap_or(&self.spec.namespace)
    }
}
