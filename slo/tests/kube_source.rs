//! The kube source against a mocked Kubernetes API (`tower-test`): the exact request it makes,
//! what it does with the answers, a live window sampled over time, and a missing HPA. One test
//! reads a real cluster, only when `KUBECONFIG` is set.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::client::Body;
use serde_json::json;
use slo::sources::KubeSource;
use slo::{CheckContext, CheckOutcome, Problem, SloStatus, Sources, Window};
use tower_test::mock::{self, Handle};

const NAMESPACE: &str = "ecommerce";
const PATH: &str = "/apis/autoscaling/v2/namespaces/ecommerce/horizontalpodautoscalers/order";

fn hpa(min: i32, max: i32, current: i32, desired: i32) -> serde_json::Value {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "order", "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "order"},
            "minReplicas": min,
            "maxReplicas": max
        },
        "status": {"currentReplicas": current, "desiredReplicas": desired}
    })
}

fn respond(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// A kube source over a mocked API, and the handle that plays the API server.
fn mocked() -> (KubeSource, Handle<Request<Body>, Response<Body>>) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    (KubeSource::new(client, "mock"), handle)
}

/// Answers every request after checking it is `GET <PATH>`, with `answer(time since start)`;
/// returns how many requests were served once the source is dropped.
fn serve(
    mut handle: Handle<Request<Body>, Response<Body>>,
    answer: impl Fn(Duration) -> Response<Body> + Send + 'static,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut served = 0;
        while let Some((request, reply)) = handle.next_request().await {
            assert_eq!(request.method(), Method::GET);
            assert_eq!(request.uri().path(), PATH);
            served += 1;
            reply.send_response(answer(started.elapsed()));
        }
        served
    })
}

fn set(slos: &str) -> slo::SloSet {
    let text = format!(
        "apiVersion: shakedown/v1\nkind: SLOSet\nmetadata: {{name: kube}}\ndefaults: {{sample_every: 100ms}}\nslos:\n{slos}"
    );
    slo::parse(&text, Path::new("kube.yaml")).unwrap()
}

fn hpa_slo(name: &str, hpa: &str, measure: &str, objective: &str) -> String {
    format!(
        "  - name: {name}\n    sli: {{hpa: {{namespace: {NAMESPACE}, name: {hpa}, measure: {measure}}}}}\n    objective: {objective}\n    source: kube\n"
    )
}

async fn check(source: KubeSource, set: &slo::SloSet, window: Window) -> CheckOutcome {
    let ctx = CheckContext {
        window,
        sources: Sources::new().with(source),
    };
    slo::check(set, &ctx).await
}

#[tokio::test]
async fn the_end_state_of_a_past_window_is_one_read_of_the_api() {
    let (source, handle) = mocked();
    let server = serve(handle, |_| respond(StatusCode::OK, &hpa(2, 10, 4, 6)));
    let set = set(&hpa_slo("settled", "order", "end_gap", "{lte: 0}"));
    let now = Utc::now();
    let window = Window::new(now - chrono::Duration::minutes(10), now, &set.defaults).unwrap();
    let outcome = check(source, &set, window).await;
    assert_eq!(server.await.unwrap(), 1, "exactly one request");

    let verdict = &outcome.results[0].verdict;
    assert_eq!(verdict.status, SloStatus::Fail);
    assert_eq!(verdict.measured, Some(2.0));
    assert_eq!(verdict.unit.as_deref(), Some("replicas"));
    assert!(
        verdict
            .query
            .as_deref()
            .unwrap()
            .starts_with(&format!("GET {PATH}"))
    );
    assert!(verdict.source.contains("read once when the window ends"));
    assert!(
        verdict
            .message
            .as_deref()
            .unwrap()
            .contains("desired 6, current 4")
    );
}

#[tokio::test]
async fn a_running_window_is_sampled_until_its_end() {
    let set = set(&format!(
        "{}{}",
        hpa_slo("scaled-out", "order", "scale_out", "{gt: 0}"),
        hpa_slo("pinned", "order", "time_at_max", "{lte: 500ms}")
    ));
    // A 2-second window starting at the next whole second (windows are whole seconds).
    let start = Utc::now().trunc_subsecs(0) + chrono::Duration::seconds(1);
    let window = Window::new(start, start + chrono::Duration::seconds(2), &set.defaults).unwrap();
    let (source, handle) = mocked();
    // 2 replicas for the window's first 300 ms, then pinned at the maximum of 10.
    let pinned_from = start + chrono::Duration::milliseconds(300);
    let server = serve(handle, move |_| {
        let current = if Utc::now() < pinned_from { 2 } else { 10 };
        respond(StatusCode::OK, &hpa(2, 10, current, current))
    });
    let outcome = check(source, &set, window).await;
    let served = server.await.unwrap();
    assert!(served >= 10, "sampled every 100 ms, got {served} requests");

    let scaled = &outcome.results[0].verdict;
    assert_eq!(scaled.measured, Some(8.0), "peak 10 - min 2: {scaled:?}");
    assert_eq!(scaled.status, SloStatus::Pass);
    assert!(scaled.source.contains("sampled every 100ms"));

    let pinned = &outcome.results[1].verdict;
    let at_max = pinned.measured.unwrap();
    // From the first sample at 10 replicas (300-400 ms in) to the last one (the window's end,
    // 2 s in); loose bounds because a busy machine delays timers.
    assert!(
        at_max > 1.2 && at_max < 2.5,
        "at max for {at_max} s of a 2 s window: {pinned:?}"
    );
    assert_eq!(pinned.status, SloStatus::Fail, "pinned longer than 500 ms");
}

#[tokio::test]
async fn a_missing_autoscaler_is_a_configuration_error_not_an_outage() {
    let (source, handle) = mocked();
    let server = serve(handle, |_| {
        respond(
            StatusCode::NOT_FOUND,
            &json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "horizontalpodautoscalers.autoscaling \"order\" not found",
                "reason": "NotFound", "code": 404
            }),
        )
    });
    let set = set(&hpa_slo("settled", "order", "end_gap", "{lte: 0}"));
    let now = Utc::now();
    let window = Window::new(now - chrono::Duration::minutes(1), now, &set.defaults).unwrap();
    let outcome = check(source, &set, window).await;
    server.await.unwrap();
    let checked = &outcome.results[0];
    assert_eq!(checked.verdict.status, SloStatus::Unknown);
    assert_eq!(checked.problem, Some(Problem::Rejected));
    assert!(
        checked
            .verdict
            .message
            .as_deref()
            .unwrap()
            .contains("HPA ecommerce/order does not exist"),
        "{checked:?}"
    );
}

/// Reads the first autoscaler of `SHAKEDOWN_TEST_NAMESPACE` (default `default`) in the cluster
/// `KUBECONFIG` points at and checks the source's end gap against a direct read.
#[tokio::test]
async fn a_real_cluster_when_kubeconfig_is_set() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("SKIP: KUBECONFIG is not set; no cluster to read HPAs from");
        return;
    }
    let namespace =
        std::env::var("SHAKEDOWN_TEST_NAMESPACE").unwrap_or_else(|_| "default".to_string());
    let client = kube::Client::try_default()
        .await
        .expect("a client from KUBECONFIG");
    let api: kube::Api<HorizontalPodAutoscaler> = kube::Api::namespaced(client, &namespace);
    let list = api.list(&Default::default()).await.expect("listing HPAs");
    let Some(first) = list.items.first() else {
        eprintln!("SKIP: no HorizontalPodAutoscaler in namespace {namespace}");
        return;
    };
    let name = first.metadata.name.clone().expect("named");
    let status = first.status.clone().unwrap_or_default();
    let expected = (status.desired_replicas - status.current_replicas.unwrap_or(0)).abs() as f64;

    let source = KubeSource::connect(None).await.expect("connects");
    let text = format!(
        "  - name: settled\n    sli: {{hpa: {{namespace: {namespace}, name: {name}, measure: end_gap}}}}\n    objective: {{lte: 0}}\n    source: kube\n"
    );
    let set = set(&text);
    let now = Utc::now();
    let window = Window::new(now - chrono::Duration::minutes(1), now, &set.defaults).unwrap();
    let outcome = check(source, &set, window).await;
    // The HPA may move between the two reads; both are small integers and usually equal.
    let measured = outcome.results[0].verdict.measured.expect("measured");
    assert!(
        (measured - expected).abs() <= 1.0,
        "end gap {measured}, direct read {expected}"
    );
}
