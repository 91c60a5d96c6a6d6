//! Waiting for the target to heal after a kill: the owners back to their desired ready replicas
//! and the killed pods really gone. Recovery time is what a drill measures, so it is taken from
//! the first delete to the first poll that sees everything healthy.

use std::collections::HashSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use kube::Api;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::pods::{self, Owner, Victim};
use super::requests::{POLL_INTERVAL, api_error, apps_path, is_not_found};
use crate::ChaosError;

/// How to tell that the killed pods are gone.
#[derive(Clone, Debug)]
pub enum Gone {
    /// None of these uids is among the pods of the selector any more, and at least as many of
    /// them are ready as before the kill. The count guards against a controller whose status
    /// still shows the old ready replicas a moment after the pod went away.
    Selector {
        selector: String,
        uids: HashSet<String>,
        ready_before: usize,
    },
    /// Each named pod exists again with another uid and is ready (StatefulSet pods come back
    /// under the same name).
    Named(Vec<Victim>),
}

/// What a recovery wait ended with.
#[derive(Clone, Debug, PartialEq)]
pub enum Recovery {
    /// Healthy again, this long after `since`.
    Recovered(Duration),
    /// Still not healthy at the deadline; says what was still missing.
    TimedOut(String),
    /// The cancel token fired first, this long after `since`.
    Cancelled(Duration),
}

/// Polls every [`POLL_INTERVAL`] from `since` until healthy, `timeout`, or `cancel`. API errors
/// while polling do not end the wait (the API server may be busy with the very churn we caused);
/// the last one is reported if time runs out.
pub async fn wait(
    client: &kube::Client,
    ns: &str,
    owners: &[Owner],
    gone: &Gone,
    since: Instant,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Recovery {
    let deadline = since + timeout;
    loop {
        let missing = match still_missing(client, ns, owners, gone).await {
            Ok(None) => return Recovery::Recovered(since.elapsed()),
            Ok(Some(missing)) => missing,
            Err(e) => e.to_string(),
        };
        let now = Instant::now();
        if now >= deadline {
            return Recovery::TimedOut(missing);
        }
        tokio::select! {
            _ = cancel.cancelled() => return Recovery::Cancelled(since.elapsed()),
            _ = tokio::time::sleep(POLL_INTERVAL.min(deadline - now)) => {}
        }
    }
}

/// None when healthy, else what is not yet.
async fn still_missing(
    client: &kube::Client,
    ns: &str,
    owners: &[Owner],
    gone: &Gone,
) -> Result<Option<String>, ChaosError> {
    for owner in owners {
        if let Some(missing) = owner_missing(client, ns, owner).await? {
            return Ok(Some(missing));
        }
    }
    match gone {
        Gone::Selector {
            selector,
            uids,
            ready_before,
        } => {
            let now = pods::list(client, ns, selector).await?;
            if let Some(old) = now
                .iter()
                .find(|p| p.metadata.uid.as_ref().is_some_and(|u| uids.contains(u)))
            {
                let name = old.metadata.name.as_deref().unwrap_or_default();
                return Ok(Some(format!("pod {name} still exists")));
            }
            let ready = now.iter().filter(|p| pods::is_ready(p)).count();
            if ready < *ready_before {
                return Ok(Some(format!(
                    "{ready} of the {ready_before} pods of {selector} that were ready before are ready"
                )));
            }
        }
        Gone::Named(victims) => {
            for victim in victims {
                match pods::get(client, ns, &victim.name).await? {
                    None => return Ok(Some(format!("pod {} not recreated yet", victim.name))),
                    Some(pod) if pod.metadata.uid == victim.uid || pods::is_terminating(&pod) => {
                        return Ok(Some(format!("pod {} still exists", victim.name)));
                    }
                    Some(pod) if !pods::is_ready(&pod) => {
                        return Ok(Some(format!("pod {} not ready yet", victim.name)));
                    }
                    Some(_) => {}
                }
            }
        }
    }
    Ok(None)
}

/// None when the owner has its desired ready replicas, else "deployment order: 2/3 ready".
async fn owner_missing(
    client: &kube::Client,
    ns: &str,
    owner: &Owner,
) -> Result<Option<String>, ChaosError> {
    let (plural, name) = match owner {
        Owner::Deployment(name) => ("deployments", name),
        Owner::StatefulSet(name) => ("statefulsets", name),
        Owner::ReplicaSet(name) => ("replicasets", name),
        Owner::Other { .. } => return Ok(None),
    };
    let request = format!("GET {}", apps_path(ns, plural, name));
    // Replicas default to 1 when unset, as the API server defaults them.
    let result = match owner {
        Owner::Deployment(_) => Api::<Deployment>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .map(|d| {
                (
                    d.spec.and_then(|s| s.replicas).unwrap_or(1),
                    d.status.and_then(|s| s.ready_replicas).unwrap_or(0),
                )
            }),
        Owner::StatefulSet(_) => Api::<StatefulSet>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .map(|s| {
                (
                    s.spec.and_then(|s| s.replicas).unwrap_or(1),
                    s.status.and_then(|s| s.ready_replicas).unwrap_or(0),
                )
            }),
        _ => Api::<ReplicaSet>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .map(|r| {
                (
                    r.spec.and_then(|s| s.replicas).unwrap_or(1),
                    r.status.and_then(|s| s.ready_replicas).unwrap_or(0),
                )
            }),
    };
    match result {
        Ok((desired, ready)) if ready >= desired => Ok(None),
        Ok((desired, ready)) => Ok(Some(format!(
            "{}: {ready}/{desired} ready",
            owner.describe()
        ))),
        Err(e) if is_not_found(&e) => Ok(Some(format!("{} not found", owner.describe()))),
        Err(e) => Err(api_error(&request, e)),
    }
}
