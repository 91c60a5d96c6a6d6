//! What an experiment file says about the Kubernetes target and its actions. Kept apart from the
//! code that acts on it so the runner can parse and validate a whole file before anything is sent.

use std::time::Duration;

use serde::Deserialize;

fn default_blast_radius() -> f64 {
    50.0
}

fn default_recovery_timeout() -> Duration {
    Duration::from_secs(120)
}

/// The `kube` target of an experiment file: `target: {kube: {...}}`
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeTargetSpec {
    /// kubeconfig context; current context when None.
    #[serde(default)]
    pub context: Option<String>,
    /// Default namespace of actions.
    pub namespace: String,
    /// Default-deny: actions may only touch these namespaces (must be non-empty and include
    /// `namespace`).
    pub allowed_namespaces: Vec<String>,
    /// Most pods of a selector one action may touch, in percent of the matching pods (default 50).
    /// See [`crate::kube::safety::allowed_pods`] for the exact rule.
    #[serde(default = "default_blast_radius")]
    pub max_blast_radius_percent: f64,
}

/// `pod-kill` action fields.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodKill {
    /// Default: the target's namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Label selector, e.g. `app=order`.
    pub selector: String,
    /// Exactly one of `count` / `percent`; neither means 1 pod.
    #[serde(default)]
    pub count: Option<u32>,
    /// Percent of the matching pods, rounded up, at least 1.
    #[serde(default)]
    pub percent: Option<f64>,
    /// `gracePeriodSeconds` of the delete; 0 (default) kills at once, like a crash.
    #[serde(default)]
    pub grace_period_seconds: u32,
    /// How long the owner may take to be back to its desired ready replicas (default 120s).
    #[serde(
        default = "default_recovery_timeout",
        deserialize_with = "config::duration::required"
    )]
    pub recovery_timeout: Duration,
}

/// Kube `broker-failure` fields: delete Kafka broker pods by selector (Strimzi labels, e.g.
/// "strimzi.io/cluster=my-kafka-cluster,strimzi.io/pool-name=broker": Strimzi's StrimziPodSet pods)
/// or by StatefulSet ordinal (Kafka run as a StatefulSet: older Strimzi, other operators).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeBrokerFailure {
    #[serde(default)]
    pub namespace: Option<String>,
    /// Either this (with `count`) ...
    #[serde(default)]
    pub selector: Option<String>,
    /// ... or this with `ordinals`: pods `<statefulset>-<n>`.
    #[serde(default)]
    pub statefulset: Option<String>,
    #[serde(default)]
    pub ordinals: Vec<u32>,
    /// With `selector`; default 1.
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub grace_period_seconds: u32,
    #[serde(
        default = "default_recovery_timeout",
        deserialize_with = "config::duration::required"
    )]
    pub recovery_timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_the_file_leaves_out() {
        let spec: KubeTargetSpec = serde_json::from_value(serde_json::json!({
            "namespace": "ecommerce", "allowed_namespaces": ["ecommerce"]
        }))
        .unwrap();
        assert_eq!(spec.max_blast_radius_percent, 50.0);
        assert_eq!(spec.context, None);

        let kill: PodKill =
            serde_json::from_value(serde_json::json!({"selector": "app=order"})).unwrap();
        assert_eq!(kill.recovery_timeout, Duration::from_secs(120));
        assert_eq!(kill.grace_period_seconds, 0);
        assert_eq!((kill.count, kill.percent), (None, None));

        let broker: KubeBrokerFailure = serde_json::from_value(serde_json::json!({
            "statefulset": "shop-kafka", "ordinals": [1], "recovery_timeout": "1m30s"
        }))
        .unwrap();
        assert_eq!(broker.recovery_timeout, Duration::from_secs(90));
        assert_eq!(broker.ordinals, vec![1]);
    }

    #[test]
    fn unknown_fields_and_bad_durations_are_rejected() {
        let typo = serde_json::from_value::<PodKill>(
            serde_json::json!({"selector": "app=order", "cuont": 2}),
        );
        assert!(typo.unwrap_err().to_string().contains("cuont"));
        let bad = serde_json::from_value::<PodKill>(
            serde_json::json!({"selector": "app=order", "recovery_timeout": "soon"}),
        );
        assert!(bad.unwrap_err().to_string().contains("soon"));
    }
}
