//! `--on k8s` against a fake API server (tower-test's mock service): the exact Indexed Job the
//! coordinator creates, the pod watch that reports a pod stuck in ImagePullBackOff, and the
//! Job's deletion at the end and on Ctrl-C. No cluster can run on the CI machine, and the point
//! is the exact requests anyway.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::Body;
use scenarios::fleet::k8s::{Kube, KubeSpec, job_name};
use scenarios::fleet::{FleetError, FleetPlan, Launcher, coordinate};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower_test::mock;

#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    body: Value,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A fake API server answering with `respond`, logging every request.
fn serve<F>(respond: F) -> (kube::Client, Log)
where
    F: Fn(&Seen) -> (u16, Value) + Send + 'static,
{
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let log: Log = Arc::default();
    let shared = log.clone();
    tokio::spawn(async move {
        let mut handle = pin!(handle);
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap();
            let seen = Seen {
                method: parts.method.clone(),
                path: parts.uri.path().to_string(),
                query: parts.uri.query().unwrap_or("").to_string(),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            let (status, json) = respond(&seen);
            shared.lock().unwrap().push(seen);
            send.send_response(
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&json).unwrap()))
                    .unwrap(),
            );
        }
    });
    (kube::Client::new(service, "default"), log)
}

fn spec() -> KubeSpec {
    KubeSpec {
        namespace: "load".into(),
        image: "registry.example.com/shakedown:0.1.0".into(),
        cpu: "1".into(),
        memory: "512Mi".into(),
    }
}

const JOBS: &str = "/apis/batch/v1/namespaces/load/jobs";
const PODS: &str = "/api/v1/namespaces/load/pods";

/// Job created (echoed back), pods as `pods`, deletions accepted.
fn api(pods: Value) -> impl Fn(&Seen) -> (u16, Value) {
    move |seen| match (&seen.method, seen.path.as_str()) {
        (&Method::POST, JOBS) => (201, seen.body.clone()),
        (&Method::GET, PODS) => (
            200,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": pods}),
        ),
        (&Method::DELETE, path) if path.starts_with(JOBS) => (
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        ),
        _ => (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}),
        ),
    }
}

fn stuck_pod() -> Value {
    json!([{
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "shakedown-load-x-0-abcde", "namespace": "load"},
        "status": {
            "phase": "Pending",
            "containerStatuses": [{
                "name": "worker", "image": "registry.example.com/shakedown:0.1.0", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff",
                                      "message": "Back-off pulling image \"registry.example.com/shakedown:0.1.0\""}}
            }]
        }
    }])
}

#[tokio::test]
async fn the_workers_are_one_indexed_job_and_a_stuck_pod_is_reported_then_the_job_deleted() {
    let (client, log) = serve(api(stuck_pod()));
    let mut kube = Kube::new(client, spec());
    let run_id = "01a22e1b-5490-7073-a7df-1fb1588dca35";
    kube.launch("http://shakedown-coordinator.load:7070", 3, run_id)
        .await
        .unwrap();

    let mut reason = None;
    for _ in 0..50 {
        reason = kube.exited();
        if reason.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reason = reason.expect("the stuck pod is reported");
    assert!(
        reason.contains("shakedown-load-x-0-abcde") && reason.contains("ImagePullBackOff"),
        "{reason}"
    );
    kube.finish().await;

    let seen = log.lock().unwrap().clone();
    let created = &seen[0];
    assert_eq!(
        (&created.method, created.path.as_str()),
        (&Method::POST, JOBS)
    );
    let job = &created.body;
    assert_eq!(job["metadata"]["name"], job_name(run_id));
    assert_eq!(job["metadata"]["labels"]["shakedown.dev/run-id"], run_id);
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], 3);
    assert_eq!(spec["parallelism"], 3);
    assert_eq!(spec["backoffLimit"], 0);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(
        spec["template"]["metadata"]["labels"]["shakedown.dev/run-id"],
        run_id
    );
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "registry.example.com/shakedown:0.1.0");
    assert_eq!(
        container["args"],
        json!([
            "worker",
            "--quiet",
            "--coordinator",
            "http://shakedown-coordinator.load:7070"
        ])
    );
    assert_eq!(container["env"][0]["name"], "JOB_COMPLETION_INDEX");
    assert_eq!(
        container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    let resources = &container["resources"];
    assert_eq!(
        resources["requests"],
        json!({"cpu": "1", "memory": "512Mi"})
    );
    assert_eq!(
        resources["limits"], resources["requests"],
        "CPU request = limit"
    );

    let listed: Vec<&Seen> = seen.iter().filter(|s| s.path == PODS).collect();
    assert!(!listed.is_empty());
    assert!(
        listed[0]
            .query
            .contains("labelSelector=shakedown.dev%2Frun-id%3D01a22e1b"),
        "{}",
        listed[0].query
    );
    let deleted = seen.last().unwrap();
    assert_eq!(deleted.method, Method::DELETE);
    assert_eq!(deleted.path, format!("{JOBS}/{}", job_name(run_id)));
    assert_eq!(deleted.body["propagationPolicy"], "Background");
}

/// A target for the coordinator's pre-flight probe.
async fn target() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(|| async { "ok" });
        let _ = axum::serve(listener, app).await;
    });
    url
}

fn plan(target: String, join_timeout: Duration) -> FleetPlan {
    FleetPlan {
        scenario: "health".into(),
        profile: "smoke".into(),
        scale: None,
        overrides: Default::default(),
        target,
        workers: 2,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        advertise: Some("http://shakedown-coordinator.load:7070".into()),
        join_timeout,
        quiet: true,
    }
}

#[tokio::test]
async fn ctrl_c_while_waiting_for_the_pods_deletes_the_job() {
    let (client, log) = serve(api(json!([])));
    let cancel = CancellationToken::new();
    let interrupt = cancel.clone();
    let watcher = log.clone();
    tokio::spawn(async move {
        // Ctrl-C once the Job exists.
        while !watcher
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.method == Method::POST)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        interrupt.cancel();
    });
    let outcome = coordinate(
        plan(target().await, Duration::from_secs(60)),
        Kube::new(client, spec()),
        &cancel,
    )
    .await;
    assert!(
        matches!(outcome, Err(FleetError::Interrupted)),
        "{outcome:?}"
    );
    let seen = log.lock().unwrap().clone();
    let name = seen[0].body["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let deleted = seen.last().unwrap();
    assert_eq!(deleted.method, Method::DELETE);
    assert_eq!(deleted.path, format!("{JOBS}/{name}"));
}

#[tokio::test]
async fn a_pod_stuck_pulling_its_image_ends_the_run_with_the_reason_and_the_job_deleted() {
    let (client, log) = serve(api(stuck_pod()));
    let outcome = coordinate(
        plan(target().await, Duration::from_secs(60)),
        Kube::new(client, spec()),
        &CancellationToken::new(),
    )
    .await;
    let error = outcome.unwrap_err();
    assert!(matches!(error, FleetError::NeverJoined { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("ImagePullBackOff"), "{message}");
    let deleted = log.lock().unwrap().last().unwrap().clone();
    assert_eq!(deleted.method, Method::DELETE);
}
