//! Dry-run descriptions: one line per request an action would send, built from the same path
//! helpers as the real requests, so what `--dry-run` prints is what a real run sends.

use std::time::Duration;

use super::requests::{POLL_INTERVAL, apps_path, delete_body, list_pods_request, pod_path};
use super::spec::{KubeBrokerFailure, KubeTargetSpec, PodKill};

pub fn pod_kill(spec: &KubeTargetSpec, action: &PodKill) -> Vec<String> {
    let ns = action.namespace.as_deref().unwrap_or(&spec.namespace);
    let how_many = match (action.count, action.percent) {
        (Some(count), _) => format!("{count} pod(s)"),
        (None, Some(percent)) => format!("ceil({percent}% of the matching pods), at least 1,"),
        (None, None) => "1 pod".to_string(),
    };
    selector_kill(
        spec,
        ns,
        &action.selector,
        &how_many,
        action.grace_period_seconds,
        action.recovery_timeout,
    )
}

pub fn broker_failure(spec: &KubeTargetSpec, action: &KubeBrokerFailure) -> Vec<String> {
    let ns = action.namespace.as_deref().unwrap_or(&spec.namespace);
    match (&action.selector, &action.statefulset) {
        (Some(selector), _) => selector_kill(
            spec,
            ns,
            selector,
            &format!("{} pod(s)", action.count.unwrap_or(1)),
            action.grace_period_seconds,
            action.recovery_timeout,
        ),
        (None, Some(sts)) => {
            let sts_path = apps_path(ns, "statefulsets", sts);
            let names: Vec<String> = action
                .ordinals
                .iter()
                .map(|n| format!("{sts}-{n}"))
                .collect();
            let mut lines = vec![format!(
                "GET {sts_path} (replicas: the blast-radius base, max {}%)",
                spec.max_blast_radius_percent
            )];
            lines.extend(names.iter().map(|n| format!("GET {}", pod_path(ns, n))));
            lines.extend(names.iter().map(|n| {
                format!(
                    "DELETE {} {}",
                    pod_path(ns, n),
                    delete_body(action.grace_period_seconds)
                )
            }));
            let pod_gets: Vec<String> = names
                .iter()
                .map(|n| format!("GET {}", pod_path(ns, n)))
                .collect();
            lines.push(format!(
                "then every {} up to {}: GET {sts_path} and {} until readyReplicas == replicas and each pod is back",
                humantime::format_duration(POLL_INTERVAL),
                humantime::format_duration(action.recovery_timeout),
                pod_gets.join(" and ")
            ));
            lines
        }
        (None, None) => vec!["nothing: give a selector or a statefulset with ordinals".into()],
    }
}

fn selector_kill(
    spec: &KubeTargetSpec,
    ns: &str,
    selector: &str,
    how_many: &str,
    grace: u32,
    timeout: Duration,
) -> Vec<String> {
    let max = spec.max_blast_radius_percent;
    vec![
        list_pods_request(ns, selector),
        format!(
            "GET {} for each picked pod owned by a ReplicaSet (to find its Deployment)",
            apps_path(ns, "replicasets", "<replicaset>")
        ),
        format!(
            "DELETE {} {} for each of {how_many} picked at random (refused before any DELETE if more than floor(matching * {max} / 100))",
            pod_path(ns, "<pod>"),
            delete_body(grace)
        ),
        format!(
            "then every {} up to {}: GET {} (or statefulsets/<name>; pods of other controllers, e.g. a StrimziPodSet, are judged by the selector alone) and {} until the owners have their desired ready replicas and the deleted pods are gone (gone by uid, and as many pods of the selector ready as before)",
            humantime::format_duration(POLL_INTERVAL),
            humantime::format_duration(timeout),
            apps_path(ns, "deployments", "<owner>"),
            list_pods_request(ns, selector)
        ),
    ]
}
