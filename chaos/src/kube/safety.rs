//! The safety rules of the kube target, as pure functions: they run before any request is sent, so
//! a typo in an experiment file cannot take down a namespace it was never meant to touch.
//!
//! - Namespaces are default-deny: only those in `allowed_namespaces`, and never `kube-system` or
//!   `kube-public`, whatever the allowlist says.
//! - Blast radius: of `matching` pods, one action may delete at most
//!   `floor(matching * max_blast_radius_percent / 100)`; more is refused. So 1 of 3 pods passes at
//!   50 %, 2 of 3 does not, and the only pod of a selector may only be killed when the limit is
//!   100 %.

use super::spec::{KubeBrokerFailure, KubeTargetSpec, PodKill};
use crate::ChaosError;

/// Namespaces no experiment may touch: breaking them breaks the cluster, not the shop.
pub const PROTECTED_NAMESPACES: [&str; 2] = ["kube-system", "kube-public"];

/// Checks the target itself: non-empty allowlist without protected namespaces, default namespace
/// in it, blast radius in (0, 100].
pub fn check_spec(spec: &KubeTargetSpec) -> Result<(), ChaosError> {
    if spec.allowed_namespaces.is_empty() {
        return Err(ChaosError::Refused(
            "kube target: allowed_namespaces is empty; list the namespaces experiments may touch"
                .into(),
        ));
    }
    for ns in spec
        .allowed_namespaces
        .iter()
        .chain(std::iter::once(&spec.namespace))
    {
        if PROTECTED_NAMESPACES.contains(&ns.as_str()) {
            return Err(ChaosError::Refused(format!(
                "kube target: namespace \"{ns}\" is never allowed"
            )));
        }
    }
    if !spec.allowed_namespaces.contains(&spec.namespace) {
        return Err(ChaosError::Refused(format!(
            "kube target: namespace \"{}\" is not in allowed_namespaces {:?}",
            spec.namespace, spec.allowed_namespaces
        )));
    }
    let max = spec.max_blast_radius_percent;
    if !(max > 0.0 && max <= 100.0) {
        return Err(ChaosError::Refused(format!(
            "kube target: max_blast_radius_percent must be in (0, 100], got {max}"
        )));
    }
    Ok(())
}

/// The namespace an action will touch, if the target allows it.
pub fn check_namespace<'a>(
    spec: &'a KubeTargetSpec,
    action_ns: Option<&'a str>,
) -> Result<&'a str, ChaosError> {
    let ns = action_ns.unwrap_or(&spec.namespace);
    if PROTECTED_NAMESPACES.contains(&ns) {
        return Err(ChaosError::Refused(format!(
            "namespace \"{ns}\" is never allowed"
        )));
    }
    if !spec.allowed_namespaces.iter().any(|a| a == ns) {
        return Err(ChaosError::Refused(format!(
            "namespace \"{ns}\" is not in allowed_namespaces {:?}",
            spec.allowed_namespaces
        )));
    }
    Ok(ns)
}

/// How many pods of `matching` one action may delete (see the module docs).
pub fn allowed_pods(matching: usize, max_percent: f64) -> usize {
    // The epsilon keeps 10 * 70 / 100 from landing on 6.999... in floating point.
    ((matching as f64 * max_percent / 100.0) + 1e-9)
        .floor()
        .max(0.0) as usize
}

/// Refused when deleting `picked` of `matching` pods exceeds the blast radius.
pub fn check_blast_radius(
    picked: usize,
    matching: usize,
    max_percent: f64,
    what: &str,
) -> Result<(), ChaosError> {
    let allowed = allowed_pods(matching, max_percent);
    if picked > allowed {
        return Err(ChaosError::Refused(format!(
            "{what}: deleting {picked} of {matching} matching pods exceeds max_blast_radius_percent \
             {max_percent} (at most {allowed} = floor({matching} * {max_percent} / 100))"
        )));
    }
    Ok(())
}

/// How many pods a `pod-kill` picks of `matching`: `count` (at most all of them), `percent`
/// rounded up and at least 1, or 1.
pub fn pods_to_pick(action: &PodKill, matching: usize) -> usize {
    let wanted = match (action.count, action.percent) {
        (Some(count), _) => count as usize,
        (None, Some(percent)) => {
            ((matching as f64 * percent / 100.0) - 1e-9).ceil().max(1.0) as usize
        }
        (None, None) => 1,
    };
    wanted.min(matching)
}

/// The fewest matching pods (or StatefulSet replicas) with which deleting `picked` of them is
/// inside the blast radius: what a dry run says the live cluster must have.
pub fn fewest_matching_for(picked: usize, max_percent: f64) -> usize {
    if max_percent.is_nan() || max_percent <= 0.0 {
        return usize::MAX;
    }
    let mut m = ((picked as f64) * 100.0 / max_percent)
        .ceil()
        .max(picked as f64) as usize;
    while m > picked && allowed_pods(m - 1, max_percent) >= picked {
        m -= 1;
    }
    while allowed_pods(m, max_percent) < picked {
        m += 1;
    }
    m
}

/// For a `percent` pod-kill: the numbers of matching pods up to `up_to` for which the pick
/// (rounded up, at least 1) exceeds the blast radius, i.e. the run would be refused.
pub fn refused_matching_counts(action: &PodKill, max_percent: f64, up_to: usize) -> Vec<usize> {
    (1..=up_to)
        .filter(|&m| pods_to_pick(action, m) > allowed_pods(m, max_percent))
        .collect()
}

fn check_selector(selector: &str) -> Result<(), ChaosError> {
    // An empty selector matches every pod in the namespace: never what anyone meant.
    if selector.trim().is_empty() {
        return Err(ChaosError::Invalid(
            "selector must not be empty (it would match every pod)".into(),
        ));
    }
    Ok(())
}

fn check_recovery_timeout(timeout: std::time::Duration) -> Result<(), ChaosError> {
    if timeout.is_zero() {
        return Err(ChaosError::Invalid(
            "recovery_timeout must be longer than 0".into(),
        ));
    }
    Ok(())
}

/// Everything about a `pod-kill` that can be checked without the API.
pub fn check_pod_kill(spec: &KubeTargetSpec, action: &PodKill) -> Result<(), ChaosError> {
    check_namespace(spec, action.namespace.as_deref())?;
    check_selector(&action.selector)?;
    check_recovery_timeout(action.recovery_timeout)?;
    match (action.count, action.percent) {
        (Some(_), Some(_)) => {
            return Err(ChaosError::Invalid(
                "pod-kill: give either count or percent, not both".into(),
            ));
        }
        (Some(0), None) => {
            return Err(ChaosError::Invalid(
                "pod-kill: count must be at least 1".into(),
            ));
        }
        (None, Some(percent)) => {
            if !(percent > 0.0 && percent <= 100.0) {
                return Err(ChaosError::Invalid(format!(
                    "pod-kill: percent must be in (0, 100], got {percent}"
                )));
            }
            // Rounding up never picks less than the percent, so this is refused for any number
            // of matching pods: say so now rather than after listing them.
            if percent > spec.max_blast_radius_percent {
                return Err(ChaosError::Refused(format!(
                    "pod-kill: percent {percent} exceeds max_blast_radius_percent {}",
                    spec.max_blast_radius_percent
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Everything about a kube `broker-failure` that can be checked without the API.
pub fn check_broker_failure(
    spec: &KubeTargetSpec,
    action: &KubeBrokerFailure,
) -> Result<(), ChaosError> {
    check_namespace(spec, action.namespace.as_deref())?;
    check_recovery_timeout(action.recovery_timeout)?;
    match (&action.selector, &action.statefulset) {
        (Some(_), Some(_)) => Err(ChaosError::Invalid(
            "broker-failure: give either selector or statefulset, not both".into(),
        )),
        (None, None) => Err(ChaosError::Invalid(
            "broker-failure: give a selector or a statefulset with ordinals".into(),
        )),
        (Some(selector), None) => {
            check_selector(selector)?;
            if !action.ordinals.is_empty() {
                return Err(ChaosError::Invalid(
                    "broker-failure: ordinals need statefulset, not selector".into(),
                ));
            }
            if action.count == Some(0) {
                return Err(ChaosError::Invalid(
                    "broker-failure: count must be at least 1".into(),
                ));
            }
            Ok(())
        }
        (None, Some(statefulset)) => {
            if statefulset.trim().is_empty() {
                return Err(ChaosError::Invalid(
                    "broker-failure: statefulset must not be empty".into(),
                ));
            }
            if action.count.is_some() {
                return Err(ChaosError::Invalid(
                    "broker-failure: count goes with selector; with statefulset list ordinals"
                        .into(),
                ));
            }
            if action.ordinals.is_empty() {
                return Err(ChaosError::Invalid(
                    "broker-failure: statefulset needs ordinals (e.g. [1])".into(),
                ));
            }
            let mut seen = action.ordinals.clone();
            seen.sort_unstable();
            seen.dedup();
            if seen.len() != action.ordinals.len() {
                return Err(ChaosError::Invalid(
                    "broker-failure: ordinals repeat".into(),
                ));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec() -> KubeTargetSpec {
        KubeTargetSpec {
            context: None,
            namespace: "ecommerce".into(),
            allowed_namespaces: vec!["ecommerce".into(), "kafka".into()],
            max_blast_radius_percent: 50.0,
        }
    }

    fn kill() -> PodKill {
        PodKill {
            namespace: None,
            selector: "app=order".into(),
            count: None,
            percent: None,
            grace_period_seconds: 0,
            recovery_timeout: Duration::from_secs(120),
        }
    }

    #[test]
    fn the_blast_radius_rounds_down() {
        assert_eq!(allowed_pods(3, 50.0), 1);
        assert_eq!(allowed_pods(1, 50.0), 0);
        assert_eq!(allowed_pods(1, 100.0), 1);
        assert_eq!(allowed_pods(10, 70.0), 7);
        assert_eq!(allowed_pods(0, 100.0), 0);
        assert!(check_blast_radius(1, 3, 50.0, "x").is_ok());
        assert!(matches!(
            check_blast_radius(2, 3, 50.0, "x"),
            Err(ChaosError::Refused(_))
        ));
        assert!(matches!(
            check_blast_radius(1, 1, 99.0, "x"),
            Err(ChaosError::Refused(_))
        ));
    }

    #[test]
    fn the_fewest_matching_pods_agree_with_the_blast_radius_check() {
        for max in [10.0, 33.3, 50.0, 70.0, 99.0, 100.0] {
            for picked in 1..6 {
                let m = fewest_matching_for(picked, max);
                assert!(
                    check_blast_radius(picked, m, max, "x").is_ok(),
                    "{picked} {max}"
                );
                assert!(
                    check_blast_radius(picked, m - 1, max, "x").is_err(),
                    "{picked} of {} at {max}",
                    m - 1
                );
            }
        }
        assert_eq!(fewest_matching_for(1, 50.0), 2);
        assert_eq!(fewest_matching_for(1, 100.0), 1);
        let mut half = kill();
        half.percent = Some(50.0);
        assert_eq!(refused_matching_counts(&half, 50.0, 6), vec![1, 3, 5]);
    }

    #[test]
    fn percent_rounds_up_and_picks_at_least_one() {
        let mut action = kill();
        assert_eq!(pods_to_pick(&action, 5), 1);
        action.percent = Some(50.0);
        assert_eq!(pods_to_pick(&action, 3), 2);
        assert_eq!(pods_to_pick(&action, 4), 2);
        action.percent = Some(10.0);
        assert_eq!(pods_to_pick(&action, 3), 1);
        action.percent = None;
        action.count = Some(5);
        assert_eq!(pods_to_pick(&action, 3), 3);
    }

    #[test]
    fn the_target_spec_is_default_deny() {
        assert!(check_spec(&spec()).is_ok());
        let mut s = spec();
        s.allowed_namespaces.clear();
        assert!(matches!(check_spec(&s), Err(ChaosError::Refused(_))));
        let mut s = spec();
        s.allowed_namespaces.push("kube-system".into());
        assert!(matches!(check_spec(&s), Err(ChaosError::Refused(m)) if m.contains("kube-system")));
        let mut s = spec();
        s.namespace = "other".into();
        assert!(matches!(check_spec(&s), Err(ChaosError::Refused(_))));
        for bad in [0.0, -5.0, 100.5, f64::NAN] {
            let mut s = spec();
            s.max_blast_radius_percent = bad;
            assert!(
                matches!(check_spec(&s), Err(ChaosError::Refused(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn actions_are_checked_before_anything_is_sent() {
        let s = spec();
        assert!(check_pod_kill(&s, &kill()).is_ok());
        let mut a = kill();
        a.namespace = Some("kube-public".into());
        assert!(matches!(
            check_pod_kill(&s, &a),
            Err(ChaosError::Refused(_))
        ));
        let mut a = kill();
        a.selector = " ".into();
        assert!(matches!(
            check_pod_kill(&s, &a),
            Err(ChaosError::Invalid(_))
        ));
        let mut a = kill();
        a.count = Some(1);
        a.percent = Some(10.0);
        assert!(matches!(
            check_pod_kill(&s, &a),
            Err(ChaosError::Invalid(_))
        ));
        let mut a = kill();
        a.percent = Some(80.0);
        assert!(matches!(
            check_pod_kill(&s, &a),
            Err(ChaosError::Refused(_))
        ));
        let mut a = kill();
        a.count = Some(0);
        assert!(matches!(
            check_pod_kill(&s, &a),
            Err(ChaosError::Invalid(_))
        ));

        let broker = KubeBrokerFailure {
            namespace: Some("kafka".into()),
            selector: None,
            statefulset: Some("shop-kafka".into()),
            ordinals: vec![1],
            count: None,
            grace_period_seconds: 0,
            recovery_timeout: Duration::from_secs(60),
        };
        assert!(check_broker_failure(&s, &broker).is_ok());
        let mut b = broker.clone();
        b.ordinals.clear();
        assert!(matches!(
            check_broker_failure(&s, &b),
            Err(ChaosError::Invalid(_))
        ));
        let mut b = broker.clone();
        b.selector = Some("strimzi.io/kind=Kafka".into());
        assert!(matches!(
            check_broker_failure(&s, &b),
            Err(ChaosError::Invalid(_))
        ));
        let mut b = broker.clone();
        b.ordinals = vec![1, 1];
        assert!(matches!(
            check_broker_failure(&s, &b),
            Err(ChaosError::Invalid(_))
        ));
        let mut b = broker;
        b.namespace = Some("payments".into());
        assert!(matches!(
            check_broker_failure(&s, &b),
            Err(ChaosError::Refused(_))
        ));
    }
}
