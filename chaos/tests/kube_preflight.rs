//! Pre-flight against a fake API server: the exact questions asked (the version, then one
//! SelfSubjectAccessReview per permission, in the experiment's namespace), and what a missing
//! permission or a silent server becomes (refused → exit 2, unreachable → exit 3) — before any
//! pod is touched.

use std::sync::{Arc, Mutex};

use chaos::ChaosError;
use chaos::kube::preflight::POD_ACTIONS;
use chaos::kube::{KubeTarget, KubeTargetSpec};
use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

fn spec() -> KubeTargetSpec {
    KubeTargetSpec {
        context: None,
        namespace: "ecommerce".into(),
        allowed_namespaces: vec!["ecommerce".into()],
        max_blast_radius_percent: 50.0,
    }
}

type Log = Arc<Mutex<Vec<(Method, String, Value)>>>;

/// A target whose API server answers /version with `version_status`, and each review with
/// `allowed(verb, resource)`.
fn target(version_status: u16, allowed: fn(&str, &str) -> bool) -> (KubeTarget, Log) {
    let log: Log = Arc::default();
    let seen = log.clone();
    let service = tower::service_fn(move |request: Request<Body>| {
        let seen = seen.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            seen.lock().unwrap().push((
                parts.method.clone(),
                parts.uri.path().to_string(),
                body.clone(),
            ));
            let (status, answer) = match parts.uri.path() {
                "/version" if version_status == 200 => (
                    200,
                    json!({"major": "1", "minor": "33", "gitVersion": "v1.33.1",
                           "gitCommit": "x", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                           "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"}),
                ),
                "/version" => (
                    version_status,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": "unavailable", "code": version_status}),
                ),
                _ => {
                    let attributes = &body["spec"]["resourceAttributes"];
                    let verb = attributes["verb"].as_str().unwrap_or("");
                    let resource = attributes["resource"].as_str().unwrap_or("");
                    let mut review = body.clone();
                    review["status"] = json!({"allowed": allowed(verb, resource)});
                    (201, review)
                }
            };
            Ok::<_, std::convert::Infallible>(
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            )
        }
    });
    let client = kube::Client::new(service, "ecommerce");
    (
        KubeTarget::with_client(client, &spec(), false).unwrap(),
        log,
    )
}

#[tokio::test]
async fn asks_the_version_then_one_review_per_permission() {
    let (target, log) = target(200, |_, _| true);
    target.preflight(POD_ACTIONS).await.unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1 + POD_ACTIONS.len(), "{log:?}");
    assert_eq!((&log[0].0, log[0].1.as_str()), (&Method::GET, "/version"));
    for ((method, path, body), need) in log[1..].iter().zip(POD_ACTIONS) {
        assert_eq!(method, Method::POST);
        assert_eq!(
            path,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        );
        assert_eq!(
            body["spec"]["resourceAttributes"],
            json!({"namespace": "ecommerce", "verb": need.verb, "group": need.group,
                   "resource": need.resource}),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_missing_permission_is_refused_by_name() {
    let (target, _) = target(200, |verb, resource| {
        !(verb == "delete" && resource == "pods")
    });
    let error = target.preflight(POD_ACTIONS).await.unwrap_err();
    assert!(matches!(error, ChaosError::Refused(_)), "{error:?}");
    assert_eq!(error.conclusion(), chaos::Conclusion::Invalid);
    let text = error.to_string();
    assert!(
        text.contains("may not delete pods in namespace ecommerce"),
        "{text}"
    );
    assert!(!text.contains("list pods"), "only what is missing: {text}");
}

#[tokio::test]
async fn a_silent_api_server_is_unreachable() {
    let (target, log) = target(503, |_, _| true);
    let error = target.preflight(POD_ACTIONS).await.unwrap_err();
    assert!(matches!(error, ChaosError::Unreachable(_)), "{error:?}");
    assert_eq!(error.conclusion(), chaos::Conclusion::Unreachable);
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "no review is asked of a silent server"
    );
}

#[tokio::test]
async fn a_dry_run_asks_nothing() {
    let target = KubeTarget::offline(&spec()).unwrap();
    target.preflight(POD_ACTIONS).await.unwrap();
}
