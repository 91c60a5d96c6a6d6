//! The kube target against a real cluster, when there is one: `KUBECONFIG` set. Proves that the
//! client builds from a real kubeconfig, that a dry run stays silent, and that listing by selector
//! works with real credentials. Without `KUBECONFIG` (as on CI) it says so and passes.
//!
//! Env: `SHAKEDOWN_KUBE_TEST_NAMESPACE` (default `default`), `SHAKEDOWN_KUBE_TEST_SELECTOR`
//! (default `app=shakedown-live-test`). Nothing is ever deleted: the pod-kill runs as a dry run.

use std::time::Duration;

use chaos::Outcome;
use chaos::kube::{KubeTarget, KubeTargetSpec, PodKill};
use tokio_util::sync::CancellationToken;

fn settings() -> Option<(String, String)> {
    if std::env::var_os("KUBECONFIG").is_none() {
        println!("skipped: KUBECONFIG is not set");
        return None;
    }
    let ns = std::env::var("SHAKEDOWN_KUBE_TEST_NAMESPACE").unwrap_or_else(|_| "default".into());
    let selector = std::env::var("SHAKEDOWN_KUBE_TEST_SELECTOR")
        .unwrap_or_else(|_| "app=shakedown-live-test".into());
    Some((ns, selector))
}

fn spec(ns: &str) -> KubeTargetSpec {
    KubeTargetSpec {
        context: None,
        namespace: ns.to_string(),
        allowed_namespaces: vec![ns.to_string()],
        max_blast_radius_percent: 50.0,
    }
}

#[tokio::test]
async fn dry_run_pod_kill_against_the_real_cluster() {
    let Some((ns, selector)) = settings() else {
        return;
    };
    let target = KubeTarget::connect(&spec(&ns), true)
        .await
        .expect("kubeconfig loads");
    let action = PodKill {
        namespace: None,
        selector: selector.clone(),
        count: None,
        percent: None,
        grace_period_seconds: 0,
        recovery_timeout: Duration::from_secs(30),
    };
    let record = target
        .pod_kill(&action, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(record.outcome, Outcome::DryRun);
    assert!(record.affected.is_empty());
    assert!(
        record
            .detail
            .unwrap()
            .contains(&format!("GET /api/v1/namespaces/{ns}/pods?labelSelector="))
    );
}

#[tokio::test]
async fn listing_pods_by_selector_against_the_real_cluster() {
    let Some((ns, selector)) = settings() else {
        return;
    };
    let client = kube::Client::try_default()
        .await
        .expect("client from KUBECONFIG");
    let pods = chaos::kube::pods::list(&client, &ns, &selector)
        .await
        .expect("list pods in the test namespace");
    println!("{} pod(s) match {selector} in {ns}", pods.len());
    assert!(pods.iter().all(|p| p.metadata.deletion_timestamp.is_none()));
}
