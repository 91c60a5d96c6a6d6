//! Pre-flight for a cluster: before a drill sends load or an experiment acts, the API server
//! must answer and the credentials must allow what the actions will do. Otherwise a drill runs
//! its load for minutes and fails on its first delete ("forbidden"), having proved nothing.
//!
//! Permissions are asked of the API server itself with SelfSubjectAccessReviews — the same
//! answer `kubectl auth can-i` gives — for the namespace the experiment works in.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::KubeTarget;
use crate::ChaosError;

/// One thing an action needs to be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    pub verb: &'static str,
    /// API group, `""` for the core group.
    pub group: &'static str,
    pub resource: &'static str,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.group {
            "" => write!(f, "{} {}", self.verb, self.resource),
            group => write!(f, "{} {}.{group}", self.verb, self.resource),
        }
    }
}

const fn permission(verb: &'static str, group: &'static str, resource: &'static str) -> Permission {
    Permission {
        verb,
        group,
        resource,
    }
}

/// What pod-kill and broker-failure do: list and delete pods, then follow the owners (pods'
/// ReplicaSets up to Deployments, StatefulSets) until they are back to their ready replicas.
pub const POD_ACTIONS: &[Permission] = &[
    permission("list", "", "pods"),
    permission("delete", "", "pods"),
    permission("get", "apps", "replicasets"),
    permission("get", "apps", "deployments"),
    permission("get", "apps", "statefulsets"),
];

impl KubeTarget {
    /// Asks the API server for its version (it answers at all) and whether each of `needs` is
    /// allowed in the target namespace. Unreachable (exit 3) when the server does not answer;
    /// Refused (exit 2) naming every permission that is missing. A dry-run target sends
    /// nothing and passes: the checks are deferred to a live cluster.
    pub async fn preflight(&self, needs: &[Permission]) -> Result<(), ChaosError> {
        if self.dry_run {
            return Ok(());
        }
        let version = self.client.apiserver_version().await.map_err(|e| {
            ChaosError::Unreachable(format!("the Kubernetes API server does not answer: {e}"))
        })?;
        tracing::debug!(version = %version.git_version, "Kubernetes API server answers");
        let reviews: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let namespace = &self.spec.namespace;
        let mut missing = Vec::new();
        for need in needs {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(namespace.clone()),
                        verb: Some(need.verb.to_string()),
                        group: Some(need.group.to_string()),
                        resource: Some(need.resource.to_string()),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let answer = reviews
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| {
                    ChaosError::Unreachable(format!(
                        "asking the API server whether we may {need} in {namespace}: {e}"
                    ))
                })?;
            if !answer.status.is_some_and(|s| s.allowed) {
                missing.push(need.to_string());
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ChaosError::Refused(format!(
                "the Kubernetes credentials may not {} in namespace {namespace}: grant them (deploy/chaos has a least-privilege Role) or use another context",
                missing.join(", ")
            )))
        }
    }
}
