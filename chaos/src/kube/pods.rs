//! Finding, picking and deleting pods, and finding who will bring them back. Owners are resolved
//! before the delete because a deleted pod takes its ownerReferences with it.

use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams};

use super::requests::{api_error, apps_path, is_not_found, list_pods_request, pod_path};
use crate::ChaosError;

/// A pod picked for deletion. The uid tells a StatefulSet's replacement (same name) from it.
#[derive(Clone, Debug, PartialEq)]
pub struct Victim {
    pub name: String,
    pub uid: Option<String>,
}

impl Victim {
    pub fn of(pod: &Pod) -> Victim {
        Victim {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone(),
        }
    }
}

/// The controller whose desired replicas say when the target has recovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    Deployment(String),
    StatefulSet(String),
    /// A ReplicaSet nobody manages.
    ReplicaSet(String),
    /// A controller kube does not know (DaemonSet, StrimziPodSet, an operator's own): recovery is
    /// judged by the ready pods of the selector alone.
    Other {
        kind: String,
        name: String,
    },
}

impl Owner {
    pub fn describe(&self) -> String {
        match self {
            Owner::Deployment(name) => format!("deployment {name}"),
            Owner::StatefulSet(name) => format!("statefulset {name}"),
            Owner::ReplicaSet(name) => format!("replicaset {name}"),
            Owner::Other { kind, name } => format!("{kind} {name}"),
        }
    }
}

/// Pods being deleted already are not counted: they are neither a target nor part of the
/// blast-radius base.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

pub fn is_ready(pod: &Pod) -> bool {
    !is_terminating(pod)
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pods matching `selector` that are not already terminating.
pub async fn list(client: &kube::Client, ns: &str, selector: &str) -> Result<Vec<Pod>, ChaosError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| api_error(&list_pods_request(ns, selector), e))?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| !is_terminating(p))
        .collect())
}

/// `amount` of `pods`, at random: which replica dies should not be predictable.
pub fn pick(pods: &[Pod], amount: usize) -> Vec<Victim> {
    let mut rng = rand::rng();
    let mut indices =
        rand::seq::index::sample(&mut rng, pods.len(), amount.min(pods.len())).into_vec();
    // Deleting in list order keeps the journal readable.
    indices.sort_unstable();
    indices.into_iter().map(|i| Victim::of(&pods[i])).collect()
}

/// The controllers of `pods` (pod -> ReplicaSet -> Deployment), without duplicates. Refused when
/// a pod has no controller: deleting it would remove it for good, not test recovery.
pub async fn resolve_owners(
    client: &kube::Client,
    ns: &str,
    pods: &[&Pod],
) -> Result<Vec<Owner>, ChaosError> {
    let mut owners = Vec::new();
    // Replicas of one Deployment share a ReplicaSet: read it once.
    let mut replica_sets: Vec<(String, Owner)> = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let controller = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true))
            .ok_or_else(|| {
                ChaosError::Refused(format!(
                    "pod {ns}/{name} has no controller: it would not come back"
                ))
            })?;
        let owner = match controller.kind.as_str() {
            "ReplicaSet" => match replica_sets.iter().find(|(rs, _)| *rs == controller.name) {
                Some((_, owner)) => owner.clone(),
                None => {
                    let owner = replica_set_owner(client, ns, &controller.name).await?;
                    replica_sets.push((controller.name.clone(), owner.clone()));
                    owner
                }
            },
            "StatefulSet" => Owner::StatefulSet(controller.name.clone()),
            kind => Owner::Other {
                kind: kind.to_string(),
                name: controller.name.clone(),
            },
        };
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    Ok(owners)
}

async fn replica_set_owner(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<Owner, ChaosError> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let rs = api
        .get(name)
        .await
        .map_err(|e| api_error(&format!("GET {}", apps_path(ns, "replicasets", name)), e))?;
    let deployment = rs
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true) && r.kind == "Deployment");
    Ok(match deployment {
        Some(d) => Owner::Deployment(d.name.clone()),
        None => Owner::ReplicaSet(name.to_string()),
    })
}

/// The StatefulSet, or None when there is no such StatefulSet.
pub async fn get_statefulset(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<Option<StatefulSet>, ChaosError> {
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    match api.get(name).await {
        Ok(sts) => Ok(Some(sts)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(api_error(
            &format!("GET {}", apps_path(ns, "statefulsets", name)),
            e,
        )),
    }
}

/// The pod, or None when there is no such pod.
pub async fn get(client: &kube::Client, ns: &str, name: &str) -> Result<Option<Pod>, ChaosError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    match api.get(name).await {
        Ok(pod) => Ok(Some(pod)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(api_error(&format!("GET {}", pod_path(ns, name)), e)),
    }
}

/// Deletes one pod. A 404 counts as done: the pod went away between the list and the delete,
/// which is what was wanted.
pub async fn delete(
    client: &kube::Client,
    ns: &str,
    name: &str,
    grace_period_seconds: u32,
) -> Result<(), ChaosError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    match api
        .delete(
            name,
            &DeleteParams::default().grace_period(grace_period_seconds),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(api_error(&format!("DELETE {}", pod_path(ns, name)), e)),
    }
}
