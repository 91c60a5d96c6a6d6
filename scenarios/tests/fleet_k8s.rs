//! `--on k8s` against a fake API server (tower-test's mock service): the exact Indexed Job the
//! coordinator creates, the watch of its pods (one list, then watch calls from the list's
//! resource version, renewed from the last version an event or bookmark carried, listed again
//! after 410 Gone) that reports a pod stuck in ImagePullBackOff or unschedulable, and the Job's
//! deletion at the end and on Ctrl-C. No cluster can run on the CI machine, and the point is the
//! exact requests anyway.

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

/// What the fake API server answers: a JSON document, or a watch stream (one JSON event a
/// line, then the end of the stream, as when the server ends a watch call).
enum Reply {
    Json(u16, Value),
    Events(Vec<Value>),
}

/// A fake API server answering with `respond`, logging every request.
fn serve<F>(mut respond: F) -> (kube::Client, Log)
where
    F: FnMut(&Seen) -> Reply + Send + 'static,
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
            let (status, body) = match respond(&seen) {
                Reply::Json(status, json) => (status, serde_json::to_vec(&json).unwrap()),
                Reply::Events(events) => (
                    200,
                    events
                        .iter()
                        .flat_map(|e| {
                            let mut line = serde_json::to_vec(e).unwrap();
                            line.push(b'\n');
                            line
                        })
                        .collect(),
                ),
            };
            shared.lock().unwrap().push(seen);
            send.send_response(
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(body))
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
const RUN_ID: &str = "01a22e1b-5490-7073-a7df-1fb1588dca35";

/// The label selector of run [`RUN_ID`]'s pods, as it appears in a query string.
const SELECTOR: &str =
    "labelSelector=shakedown.dev%2Frun-id%3D01a22e1b-5490-7073-a7df-1fb1588dca35";

/// The exact query of a list of run [`RUN_ID`]'s pods (kube starts every query with `&`, which
/// servers ignore).
fn list_query() -> String {
    format!("&{SELECTOR}")
}

/// Job creations echoed back, deletions accepted; pod lists and watch calls answered in turn
/// from `lists` and `watches` (past their end: an empty list, a watch that ends at once).
fn api(lists: Vec<Value>, watches: Vec<Vec<Value>>) -> impl FnMut(&Seen) -> Reply + Send {
    let mut lists = lists.into_iter();
    let mut watches = watches.into_iter();
    move |seen| match (&seen.method, seen.path.as_str()) {
        (&Method::POST, JOBS) => Reply::Json(201, seen.body.clone()),
        (&Method::GET, PODS) if seen.query.contains("watch=true") => {
            Reply::Events(watches.next().unwrap_or_default())
        }
        (&Method::GET, PODS) => {
            Reply::Json(200, lists.next().unwrap_or_else(|| pod_list("1", vec![])))
        }
        (&Method::DELETE, path) if path.starts_with(JOBS) => Reply::Json(
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        ),
        _ => Reply::Json(
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}),
        ),
    }
}

fn pod_list(version: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": version}, "items": items})
}

const POD: &str = "shakedown-load-x-0-abcde";

/// Worker pod 0 at resource `version`, its container waiting for `reason`.
fn waiting_pod(version: &str, reason: &str, message: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": POD, "namespace": "load", "resourceVersion": version},
        "status": {
            "phase": "Pending",
            "containerStatuses": [{
                "name": "worker", "image": "registry.example.com/shakedown:0.1.0", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": message}}
            }]
        }
    })
}

fn stuck_pod(version: &str) -> Value {
    waiting_pod(
        version,
        "ImagePullBackOff",
        "Back-off pulling image \"registry.example.com/shakedown:0.1.0\"",
    )
}

fn event(kind: &str, object: Value) -> Value {
    json!({"type": kind, "object": object})
}

/// The exact query of a watch call of run [`RUN_ID`]'s pods from `version`.
fn watch_query(version: &str) -> String {
    format!(
        "&watch=true&timeoutSeconds=290&{SELECTOR}&allowWatchBookmarks=true&resourceVersion={version}"
    )
}

/// What the launcher reports within 10 s (the watcher waits 1 s between watch calls that end
/// at once).
async fn reported(kube: &mut Kube) -> String {
    for _ in 0..100 {
        if let Some(reason) = kube.exited() {
            return reason;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing reported");
}

/// The (method, path, query) of every request, in order.
fn requests(log: &Log) -> Vec<(Method, String, String)> {
    log.lock()
        .unwrap()
        .iter()
        .map(|s| (s.method.clone(), s.path.clone(), s.query.clone()))
        .collect()
}

#[tokio::test]
async fn the_workers_are_one_indexed_job_and_a_pod_stuck_in_a_watch_event_is_reported_then_the_job_deleted()
 {
    // No pod yet when listed; the watch from the list's version sees pod 0 created, then (in a
    // renewed watch, from that event's version) stuck pulling its image.
    let (client, log) = serve(api(
        vec![pod_list("100", vec![])],
        vec![
            vec![event(
                "ADDED",
                waiting_pod("101", "ContainerCreating", "creating"),
            )],
            vec![event("MODIFIED", stuck_pod("102"))],
        ],
    ));
    let mut kube = Kube::new(client, spec());
    kube.launch("http://shakedown-coordinator.load:7070", 3, RUN_ID)
        .await
        .unwrap();

    let reason = reported(&mut kube).await;
    assert_eq!(
        reason,
        format!(
            "pod {POD} cannot start: ImagePullBackOff (Back-off pulling image \
             \"registry.example.com/shakedown:0.1.0\")"
        )
    );
    kube.finish().await;

    let name = job_name(RUN_ID);
    assert_eq!(
        requests(&log),
        [
            (Method::POST, JOBS.to_string(), String::new()),
            (Method::GET, PODS.to_string(), list_query()),
            (Method::GET, PODS.to_string(), watch_query("100")),
            (Method::GET, PODS.to_string(), watch_query("101")),
            (Method::DELETE, format!("{JOBS}/{name}"), String::new()),
        ]
    );

    let seen = log.lock().unwrap().clone();
    let job = &seen[0].body;
    assert_eq!(job["metadata"]["name"], name);
    assert_eq!(job["metadata"]["labels"]["shakedown.dev/run-id"], RUN_ID);
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], 3);
    assert_eq!(spec["parallelism"], 3);
    assert_eq!(spec["backoffLimit"], 0);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(
        spec["template"]["metadata"]["labels"]["shakedown.dev/run-id"],
        RUN_ID
    );
    assert_eq!(
        pod["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"],
        json!({"shakedown.dev/run-id": RUN_ID}),
        "one worker per node where possible"
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
    let deleted = seen.last().unwrap();
    assert_eq!(deleted.body["propagationPolicy"], "Background");
}

#[tokio::test]
async fn an_expired_version_is_listed_again_and_bookmarks_move_the_watch_on() {
    // The first watch's version is gone (410 in an ERROR event): list again, watch from the
    // new list's version; a bookmark moves the next watch to its version, where a pod turns
    // out unschedulable.
    let gone = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "message": "too old resource version: 100 (150)", "reason": "Expired", "code": 410});
    let mut unschedulable = waiting_pod("251", "ContainerCreating", "");
    unschedulable["status"] = json!({
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 Insufficient cpu."}]
    });
    let (client, log) = serve(api(
        vec![pod_list("100", vec![]), pod_list("200", vec![])],
        vec![
            vec![event("ERROR", gone)],
            vec![event(
                "BOOKMARK",
                json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "250"}}),
            )],
            vec![event("MODIFIED", unschedulable)],
        ],
    ));
    let mut kube = Kube::new(client, spec());
    kube.launch("http://shakedown-coordinator.load:7070", 2, RUN_ID)
        .await
        .unwrap();
    let reason = reported(&mut kube).await;
    assert_eq!(
        reason,
        format!(
            "pod {POD} cannot be scheduled: Unschedulable (0/3 nodes are available: 3 \
             Insufficient cpu.)"
        )
    );
    kube.finish().await;
    let pods: Vec<String> = requests(&log)
        .into_iter()
        .filter(|(_, path, _)| path == PODS)
        .map(|(_, _, query)| query)
        .collect();
    assert_eq!(
        pods,
        [
            list_query(),
            watch_query("100"),
            list_query(),
            watch_query("200"),
            watch_query("250"),
        ]
    );
}

#[tokio::test]
async fn a_pod_already_stuck_when_listed_or_deleted_while_watched_is_reported() {
    let (client, _) = serve(api(vec![pod_list("7", vec![stuck_pod("7")])], vec![]));
    let mut kube = Kube::new(client, spec());
    kube.launch("http://c:7070", 1, RUN_ID).await.unwrap();
    assert!(reported(&mut kube).await.contains("ImagePullBackOff"));
    kube.finish().await;

    let (client, _) = serve(api(
        vec![pod_list("7", vec![])],
        vec![vec![event(
            "DELETED",
            waiting_pod("8", "ContainerCreating", ""),
        )]],
    ));
    let mut kube = Kube::new(client, spec());
    kube.launch("http://c:7070", 1, RUN_ID).await.unwrap();
    assert_eq!(reported(&mut kube).await, format!("pod {POD} was deleted"));
    kube.finish().await;
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
        live: None,
    }
}

#[tokio::test]
async fn ctrl_c_while_waiting_for_the_pods_deletes_the_job() {
    let (client, log) = serve(api(vec![], vec![]));
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
    let (client, log) = serve(api(
        vec![pod_list("5", vec![])],
        vec![vec![event("MODIFIED", stuck_pod("6"))]],
    ));
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
