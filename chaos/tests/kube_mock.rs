//! The kube target against a fake API server (tower-test's mock service): which requests a
//! pod-kill or broker-failure sends, in what order, with which selector and delete options, and
//! which it must never send (refused, dry run). No cluster can run on the CI machine, and the
//! point of these actions is the exact requests anyway.

use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chaos::kube::{KubeBrokerFailure, KubeTarget, KubeTargetSpec, PodKill};
use chaos::{ChaosError, Outcome};
use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_test::mock;

/// One request as the fake API server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    raw_query: String,
    query: Vec<(String, String)>,
    body: Value,
}

impl Seen {
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn is(&self, method: Method, path: &str) -> bool {
        self.method == method && self.path == path
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// kube sends `?&labelSelector=...`: parse the query rather than compare it.
fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A fake API server: answers each request with `respond(request, log so far)` -> (status, JSON)
/// until the client is dropped, and logs every request.
fn serve<F>(
    handle: mock::Handle<Request<Body>, Response<Body>>,
    mut respond: F,
) -> (Log, JoinHandle<()>)
where
    F: FnMut(&Seen, &[Seen]) -> (u16, Value) + Send + 'static,
{
    let log: Log = Arc::default();
    let shared = log.clone();
    let task = tokio::spawn(async move {
        let mut handle = pin!(handle);
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap();
            let raw_query = parts.uri.query().unwrap_or("").to_string();
            let seen = Seen {
                method: parts.method.clone(),
                path: parts.uri.path().to_string(),
                query: parse_query(&raw_query),
                raw_query,
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            let before = shared.lock().unwrap().clone();
            let (status, json) = respond(&seen, &before);
            shared.lock().unwrap().push(seen);
            let response = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&json).unwrap()))
                .unwrap();
            send.send_response(response);
        }
    });
    (log, task)
}

fn not_found() -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
               "message": "not found", "code": 404}),
    )
}

fn spec(max: f64) -> KubeTargetSpec {
    KubeTargetSpec {
        context: None,
        namespace: "ecommerce".into(),
        allowed_namespaces: vec!["ecommerce".into(), "kafka".into()],
        max_blast_radius_percent: max,
    }
}

fn kill(selector: &str) -> PodKill {
    PodKill {
        namespace: None,
        selector: selector.into(),
        count: None,
        percent: None,
        grace_period_seconds: 0,
        recovery_timeout: Duration::from_secs(20),
    }
}

fn pod(name: &str, uid: &str, owner_kind: &str, owner: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "ecommerce", "uid": uid, "labels": {"app": "order"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner,
                                 "uid": format!("{owner}-uid"), "controller": true}]
        },
        "status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }}
        ]}
    })
}

fn pod_list(pods: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": pods})
}

fn replica_set() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "order-7d9f", "namespace": "ecommerce", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "order", "uid": "order-uid",
             "controller": true}
        ]},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "order"}}},
        "status": {"replicas": 3, "readyReplicas": 3}
    })
}

fn deployment(ready: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "order", "namespace": "ecommerce"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "order"}},
                 "template": {"metadata": {"labels": {"app": "order"}},
                              "spec": {"containers": [{"name": "order", "image": "order"}]}}},
        "status": {"replicas": 3, "readyReplicas": ready}
    })
}

fn statefulset(ready: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "shop-kafka", "namespace": "kafka"},
        "spec": {"replicas": 3, "serviceName": "shop-kafka",
                 "selector": {"matchLabels": {"app": "kafka"}},
                 "template": {"metadata": {"labels": {"app": "kafka"}},
                              "spec": {"containers": [{"name": "kafka", "image": "kafka"}]}}},
        "status": {"replicas": 3, "readyReplicas": ready}
    })
}

const PODS: &str = "/api/v1/namespaces/ecommerce/pods";
const RS: &str = "/apis/apps/v1/namespaces/ecommerce/replicasets/order-7d9f";
const DEPLOY: &str = "/apis/apps/v1/namespaces/ecommerce/deployments/order";

/// The `order` Deployment with 3 pods behind ReplicaSet order-7d9f. After a DELETE the pod is
/// replaced by `<name>-new`; the Deployment reports `ready_after_delete(n)` on its n-th read after
/// the delete.
fn order_deployment(
    ready_after_delete: impl Fn(usize) -> i32 + Send + 'static,
) -> impl FnMut(&Seen, &[Seen]) -> (u16, Value) + Send + 'static {
    move |req, before| {
        let deleted: Vec<String> = before
            .iter()
            .filter(|s| s.method == Method::DELETE)
            .map(|s| s.path.rsplit('/').next().unwrap().to_string())
            .collect();
        let deploy_reads = before
            .iter()
            .filter(|s| s.path == DEPLOY && !deleted.is_empty())
            .count();
        if req.is(Method::GET, PODS) {
            let mut pods: Vec<Value> = ["order-a", "order-b", "order-c"]
                .iter()
                .filter(|n| !deleted.iter().any(|d| d == *n))
                .map(|n| pod(n, &format!("{n}-uid"), "ReplicaSet", "order-7d9f", true))
                .collect();
            for d in &deleted {
                let name = format!("{d}-new");
                pods.push(pod(
                    &name,
                    &format!("{name}-uid"),
                    "ReplicaSet",
                    "order-7d9f",
                    true,
                ));
            }
            (200, pod_list(pods))
        } else if req.is(Method::GET, RS) {
            (200, replica_set())
        } else if req.method == Method::DELETE && req.path.starts_with(&format!("{PODS}/")) {
            let name = req.path.rsplit('/').next().unwrap();
            (
                200,
                pod(
                    name,
                    &format!("{name}-uid"),
                    "ReplicaSet",
                    "order-7d9f",
                    false,
                ),
            )
        } else if req.is(Method::GET, DEPLOY) {
            (200, deployment(ready_after_delete(deploy_reads)))
        } else {
            not_found()
        }
    }
}

async fn finish(target: KubeTarget, task: JoinHandle<()>, log: Log) -> Vec<Seen> {
    // Dropping the only client closes the mock service, which ends the fake server.
    drop(target);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the fake API server did not stop after the client was dropped")
        .unwrap();
    log.lock().unwrap().clone()
}

fn target(max: f64, dry_run: bool) -> (KubeTarget, mock::Handle<Request<Body>, Response<Body>>) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    (
        KubeTarget::with_client(client, &spec(max), dry_run).unwrap(),
        handle,
    )
}

#[tokio::test]
async fn pod_kill_lists_by_selector_deletes_the_picked_pod_and_waits_for_the_deployment() {
    let (target, handle) = target(50.0, false);
    // Not ready on the first read after the delete, ready from the second on.
    let (log, task) = serve(handle, order_deployment(|n| if n == 0 { 2 } else { 3 }));
    let record = target
        .pod_kill(&kill("app=order"), &CancellationToken::new())
        .await
        .unwrap();
    let seen = finish(target, task, log).await;

    let list = &seen[0];
    assert!(list.is(Method::GET, PODS), "{list:?}");
    assert_eq!(list.param("labelSelector"), Some("app=order"));
    assert!(
        list.raw_query.contains("labelSelector=app%3Dorder"),
        "{}",
        list.raw_query
    );
    assert!(seen[1].is(Method::GET, RS), "{:?}", seen[1]);

    let deletes: Vec<&Seen> = seen.iter().filter(|s| s.method == Method::DELETE).collect();
    assert_eq!(deletes.len(), 1, "{seen:?}");
    assert!(std::ptr::eq(deletes[0], &seen[2]));
    let killed = deletes[0].path.strip_prefix(&format!("{PODS}/")).unwrap();
    assert!(
        ["order-a", "order-b", "order-c"].contains(&killed),
        "{killed}"
    );
    assert_eq!(deletes[0].body["gracePeriodSeconds"], 0);

    let after: Vec<&Seen> = seen[3..].iter().collect();
    assert!(after.iter().all(|s| s.method == Method::GET), "{after:?}");
    assert!(
        after.iter().filter(|s| s.path == DEPLOY).count() >= 2,
        "{after:?}"
    );
    assert!(
        seen.last().unwrap().is(Method::GET, PODS),
        "the last poll checks the pods are gone"
    );

    assert_eq!(record.action, "pod-kill");
    assert_eq!(record.target, "ecommerce/app=order");
    assert_eq!(record.outcome, Outcome::Ok, "{:?}", record.detail);
    assert_eq!(record.affected, vec![killed.to_string()]);
    let recovery = record.recovery.expect("recovery measured");
    assert!(
        recovery >= Duration::from_millis(900) && recovery < Duration::from_secs(10),
        "one poll interval: {recovery:?}"
    );
    assert!(record.ended_at.unwrap() >= record.started_at);
}

#[tokio::test]
async fn pod_kill_sends_the_configured_grace_period_to_each_picked_pod() {
    let (target, handle) = target(100.0, false);
    let (log, task) = serve(handle, order_deployment(|_| 3));
    let mut action = kill("app=order");
    action.count = Some(2);
    action.grace_period_seconds = 15;
    let record = target
        .pod_kill(&action, &CancellationToken::new())
        .await
        .unwrap();
    let seen = finish(target, task, log).await;
    let deletes: Vec<&Seen> = seen.iter().filter(|s| s.method == Method::DELETE).collect();
    assert_eq!(deletes.len(), 2);
    assert!(
        deletes.iter().all(|d| d.body["gracePeriodSeconds"] == 15),
        "{deletes:?}"
    );
    assert_ne!(deletes[0].path, deletes[1].path);
    assert_eq!(record.outcome, Outcome::Ok, "{:?}", record.detail);
    assert_eq!(record.affected.len(), 2);
    // The replica set is read once even though both pods belong to it.
    assert_eq!(seen.iter().filter(|s| s.path == RS).count(), 1);
}

#[tokio::test]
async fn namespaces_outside_the_allowlist_and_kube_system_are_refused_without_a_request() {
    let (target, handle) = target(50.0, false);
    let (log, task) = serve(handle, |_, _| not_found());
    let cancel = CancellationToken::new();

    let mut action = kill("app=order");
    action.namespace = Some("payments".into());
    let err = target.pod_kill(&action, &cancel).await.unwrap_err();
    assert!(
        matches!(&err, ChaosError::Refused(m) if m.contains("payments")),
        "{err}"
    );

    action.namespace = Some("kube-system".into());
    let err = target.pod_kill(&action, &cancel).await.unwrap_err();
    assert!(
        matches!(&err, ChaosError::Refused(m) if m.contains("kube-system")),
        "{err}"
    );

    let broker = KubeBrokerFailure {
        namespace: Some("kube-system".into()),
        selector: Some("strimzi.io/kind=Kafka".into()),
        statefulset: None,
        ordinals: vec![],
        count: None,
        grace_period_seconds: 0,
        recovery_timeout: Duration::from_secs(5),
    };
    let err = target.broker_failure(&broker, &cancel).await.unwrap_err();
    assert!(matches!(err, ChaosError::Refused(_)), "{err}");

    let seen = finish(target, task, log).await;
    assert!(seen.is_empty(), "no request may be sent: {seen:?}");

    // A target that allows kube-system is refused as a whole.
    let (service, _handle) = mock::pair::<Request<Body>, Response<Body>>();
    let mut bad = spec(50.0);
    bad.allowed_namespaces.push("kube-system".into());
    let err =
        KubeTarget::with_client(kube::Client::new(service, "default"), &bad, false).unwrap_err();
    assert!(matches!(err, ChaosError::Refused(_)), "{err}");
}

#[tokio::test]
async fn more_than_the_blast_radius_is_refused_and_nothing_is_deleted() {
    // 100 % of anything is more than 50 %: refused before even listing.
    let (target, handle) = target(50.0, false);
    let (log, task) = serve(handle, order_deployment(|_| 3));
    let mut action = kill("app=order");
    action.percent = Some(100.0);
    let err = target
        .pod_kill(&action, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ChaosError::Refused(m) if m.contains("max_blast_radius_percent")),
        "{err}"
    );

    // 2 of the 3 matching pods (> floor(3 * 50 / 100) = 1): refused after the list.
    action.percent = None;
    action.count = Some(2);
    let err = target
        .pod_kill(&action, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ChaosError::Refused(m) if m.contains("2 of 3")),
        "{err}"
    );

    let seen = finish(target, task, log).await;
    assert_eq!(seen.len(), 1, "only the list: {seen:?}");
    assert!(seen[0].is(Method::GET, PODS));
    assert!(seen.iter().all(|s| s.method != Method::DELETE));
}

#[tokio::test]
async fn dry_run_sends_nothing_and_describes_the_requests() {
    let (target, handle) = target(50.0, true);
    let (log, task) = serve(handle, order_deployment(|_| 3));
    let cancel = CancellationToken::new();
    let record = target.pod_kill(&kill("app=order"), &cancel).await.unwrap();
    assert_eq!(record.outcome, Outcome::DryRun);
    assert!(record.affected.is_empty());
    let detail = record.detail.unwrap();
    assert!(
        detail.contains("GET /api/v1/namespaces/ecommerce/pods?labelSelector=app%3Dorder"),
        "{detail}"
    );
    assert!(
        detail
            .contains(r#"DELETE /api/v1/namespaces/ecommerce/pods/<pod> {"gracePeriodSeconds":0}"#),
        "{detail}"
    );
    let lines = target.describe_pod_kill(&kill("app=order"));
    assert_eq!(
        lines[0],
        "GET /api/v1/namespaces/ecommerce/pods?labelSelector=app%3Dorder"
    );
    assert!(lines.iter().any(|l| l.starts_with("DELETE ")));

    let broker = KubeBrokerFailure {
        namespace: Some("kafka".into()),
        selector: None,
        statefulset: Some("shop-kafka".into()),
        ordinals: vec![1, 2],
        count: None,
        grace_period_seconds: 0,
        recovery_timeout: Duration::from_secs(5),
    };
    let record = target.broker_failure(&broker, &cancel).await.unwrap();
    assert_eq!(record.outcome, Outcome::DryRun);
    let lines = target.describe_broker_failure(&broker);
    assert_eq!(
        lines[0].split(' ').take(2).collect::<Vec<_>>(),
        [
            "GET",
            "/apis/apps/v1/namespaces/kafka/statefulsets/shop-kafka"
        ]
    );
    for n in [1, 2] {
        let delete = format!(
            r#"DELETE /api/v1/namespaces/kafka/pods/shop-kafka-{n} {{"gracePeriodSeconds":0}}"#
        );
        assert!(lines.contains(&delete), "{lines:?}");
        assert!(record.detail.as_deref().unwrap().contains(&delete));
    }

    let seen = finish(target, task, log).await;
    assert!(seen.is_empty(), "a dry run sends nothing: {seen:?}");
}

const STS: &str = "/apis/apps/v1/namespaces/kafka/statefulsets/shop-kafka";
const KAFKA_POD: &str = "/api/v1/namespaces/kafka/pods/shop-kafka-1";

#[tokio::test]
async fn broker_failure_by_ordinal_deletes_the_pod_and_waits_for_the_statefulset() {
    let (target, handle) = target(50.0, false);
    let (log, task) = serve(handle, |req, before| {
        let deleted = before.iter().any(|s| s.method == Method::DELETE);
        let reads_after = |path: &str| {
            let at = before.iter().position(|s| s.method == Method::DELETE);
            at.map_or(0, |at| {
                before[at..].iter().filter(|s| s.path == path).count()
            })
        };
        if req.is(Method::GET, STS) {
            (
                200,
                statefulset(if !deleted || reads_after(STS) >= 1 {
                    3
                } else {
                    2
                }),
            )
        } else if req.is(Method::GET, KAFKA_POD) {
            if !deleted {
                (
                    200,
                    pod("shop-kafka-1", "old-uid", "StatefulSet", "shop-kafka", true),
                )
            } else if reads_after(KAFKA_POD) == 0 {
                not_found()
            } else {
                (
                    200,
                    pod("shop-kafka-1", "new-uid", "StatefulSet", "shop-kafka", true),
                )
            }
        } else if req.is(Method::DELETE, KAFKA_POD) {
            (
                200,
                pod(
                    "shop-kafka-1",
                    "old-uid",
                    "StatefulSet",
                    "shop-kafka",
                    false,
                ),
            )
        } else {
            not_found()
        }
    });
    let broker = KubeBrokerFailure {
        namespace: Some("kafka".into()),
        selector: None,
        statefulset: Some("shop-kafka".into()),
        ordinals: vec![1],
        count: None,
        grace_period_seconds: 10,
        recovery_timeout: Duration::from_secs(20),
    };
    let record = target
        .broker_failure(&broker, &CancellationToken::new())
        .await
        .unwrap();
    let seen = finish(target, task, log).await;

    assert!(seen[0].is(Method::GET, STS), "{:?}", seen[0]);
    assert!(seen[1].is(Method::GET, KAFKA_POD), "{:?}", seen[1]);
    assert!(seen[2].is(Method::DELETE, KAFKA_POD), "{:?}", seen[2]);
    assert_eq!(seen[2].body["gracePeriodSeconds"], 10);
    assert_eq!(
        seen.iter().filter(|s| s.method == Method::DELETE).count(),
        1
    );
    assert!(
        seen[3..].iter().filter(|s| s.is(Method::GET, STS)).count() >= 2,
        "{seen:?}"
    );
    assert!(seen.last().unwrap().is(Method::GET, KAFKA_POD));

    assert_eq!(record.action, "broker-failure");
    assert_eq!(record.target, "kafka/statefulset/shop-kafka");
    assert_eq!(record.outcome, Outcome::Ok, "{:?}", record.detail);
    assert_eq!(record.affected, vec!["shop-kafka-1".to_string()]);
    assert!(record.recovery.unwrap() >= Duration::from_millis(900));
}

#[tokio::test]
async fn broker_failure_of_a_missing_ordinal_fails_before_deleting_anything() {
    let (target, handle) = target(50.0, false);
    let (log, task) = serve(handle, |req, _| {
        if req.is(Method::GET, STS) {
            (200, statefulset(3))
        } else {
            not_found()
        }
    });
    let broker = KubeBrokerFailure {
        namespace: Some("kafka".into()),
        selector: None,
        statefulset: Some("shop-kafka".into()),
        ordinals: vec![5],
        count: None,
        grace_period_seconds: 0,
        recovery_timeout: Duration::from_secs(5),
    };
    let record = target
        .broker_failure(&broker, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(record.outcome, Outcome::Failed);
    assert!(record.detail.unwrap().contains("no ordinal 5"));
    let seen = finish(target, task, log).await;
    assert_eq!(seen.len(), 1);
}

#[tokio::test]
async fn recovery_that_never_comes_fails_at_the_timeout() {
    let (target, handle) = target(50.0, false);
    let (log, task) = serve(handle, order_deployment(|_| 2));
    let mut action = kill("app=order");
    action.recovery_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let record = target
        .pod_kill(&action, &CancellationToken::new())
        .await
        .unwrap();
    let took = started.elapsed();
    let seen = finish(target, task, log).await;

    assert_eq!(record.outcome, Outcome::Failed);
    assert_eq!(record.recovery, None);
    assert_eq!(record.affected.len(), 1);
    let detail = record.detail.unwrap();
    assert!(detail.contains("timed out after 2s"), "{detail}");
    assert!(detail.contains("deployment order: 2/3 ready"), "{detail}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
    // Polled about once a second: the read at 0 s, 1 s and 2 s.
    let polls = seen.iter().filter(|s| s.path == DEPLOY).count();
    assert!((2..=4).contains(&polls), "{polls} polls");
}

#[tokio::test]
async fn no_matching_pod_is_a_failed_action() {
    let (target, handle) = target(50.0, false);
    let (log, task) = serve(handle, |_, _| (200, pod_list(vec![])));
    let record = target
        .pod_kill(&kill("app=nothing"), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(record.outcome, Outcome::Failed);
    assert!(
        record
            .detail
            .unwrap()
            .contains("no pod matched app=nothing")
    );
    assert!(record.affected.is_empty());
    let seen = finish(target, task, log).await;
    assert_eq!(seen.len(), 1);
}

#[tokio::test]
async fn cancelling_while_waiting_stops_the_wait() {
    let (target, handle) = target(50.0, false);
    let (log, task) = serve(handle, order_deployment(|_| 2));
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let record = target.pod_kill(&kill("app=order"), &cancel).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(record.outcome, Outcome::Failed);
    assert!(record.detail.unwrap().contains("cancelled"));
    assert_eq!(record.affected.len(), 1);

    // Cancelled before it starts: nothing more is sent.
    let sent = log.lock().unwrap().len();
    let record = target.pod_kill(&kill("app=order"), &cancel).await.unwrap();
    assert_eq!(record.outcome, Outcome::Skipped);
    let seen = finish(target, task, log).await;
    assert_eq!(seen.len(), sent);
}

#[tokio::test]
async fn an_api_server_that_cannot_be_reached_is_unreachable() {
    let (target, handle) = target(50.0, false);
    drop(handle);
    let err = target
        .pod_kill(&kill("app=order"), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, ChaosError::Unreachable(_)), "{err}");
}

#[tokio::test]
async fn connect_checks_safety_first_and_is_unreachable_without_config() {
    let mut bad = spec(50.0);
    bad.allowed_namespaces.clear();
    let err = KubeTarget::connect(&bad, true).await.unwrap_err();
    assert!(matches!(err, ChaosError::Refused(_)), "{err}");

    let mut missing = spec(50.0);
    missing.context = Some("shakedown-no-such-context".into());
    let err = KubeTarget::connect(&missing, true).await.unwrap_err();
    assert!(matches!(err, ChaosError::Unreachable(_)), "{err}");
}

#[tokio::test]
async fn actions_can_run_on_a_spawned_task() {
    // The runner spawns actions next to its probes: their futures must be Send.
    fn assert_send<T: Send>(_: &T) {}
    let (target, _handle) = target(50.0, true);
    let cancel = CancellationToken::new();
    let action = kill("app=order");
    assert_send(&target.pod_kill(&action, &cancel));
    let broker = KubeBrokerFailure {
        namespace: None,
        selector: Some("strimzi.io/kind=Kafka".into()),
        statefulset: None,
        ordinals: vec![],
        count: Some(1),
        grace_period_seconds: 0,
        recovery_timeout: Duration::from_secs(5),
    };
    assert_send(&target.broker_failure(&broker, &cancel));
}

const KAFKA_PODS: &str = "/api/v1/namespaces/kafka/pods";
const BROKERS: &str = "strimzi.io/cluster=my-kafka-cluster,strimzi.io/pool-name=broker";

/// A broker pod as Strimzi's StrimziPodSet creates it (node pools, KRaft): Strimzi's labels and
/// a StrimziPodSet as its controller, no StatefulSet anywhere.
fn strimzi_broker(name: &str, uid: &str, ready: bool, terminating: bool) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "kafka", "uid": uid,
            "labels": {
                "strimzi.io/cluster": "my-kafka-cluster", "strimzi.io/kind": "Kafka",
                "strimzi.io/name": "my-kafka-cluster-kafka", "strimzi.io/pool-name": "broker",
                "strimzi.io/broker-role": "true", "strimzi.io/controller-role": "false"
            },
            "ownerReferences": [{"apiVersion": "core.strimzi.io/v1beta2", "kind": "StrimziPodSet",
                                 "name": "my-kafka-cluster-broker",
                                 "uid": "podset-uid", "controller": true}]
        },
        "status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }}
        ]}
    });
    if terminating {
        pod["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    pod
}

#[tokio::test]
async fn broker_failure_selects_strimzi_pod_set_brokers_by_label_and_waits_for_them_ready() {
    let (target, handle) = target(67.0, false);
    // Three brokers 3, 4, 5 (node ids are the operator's). After the delete, the lists show: the
    // old pod terminating, then its replacement (same name, new uid) not ready, then ready.
    let (log, task) = serve(handle, |req, before| {
        let deleted: Option<String> = before
            .iter()
            .find(|s| s.method == Method::DELETE)
            .map(|s| s.path.rsplit('/').next().unwrap().to_string());
        let lists_after = before
            .iter()
            .skip_while(|s| s.method != Method::DELETE)
            .filter(|s| s.is(Method::GET, KAFKA_PODS))
            .count();
        if req.is(Method::GET, KAFKA_PODS) {
            let pods = (3..=5)
                .map(|id| {
                    let name = format!("my-kafka-cluster-broker-{id}");
                    let old_uid = format!("uid-{id}");
                    match &deleted {
                        Some(d) if *d == name => match lists_after {
                            0 => strimzi_broker(&name, &old_uid, true, true),
                            1 => strimzi_broker(&name, "new-uid", false, false),
                            _ => strimzi_broker(&name, "new-uid", true, false),
                        },
                        _ => strimzi_broker(&name, &old_uid, true, false),
                    }
                })
                .collect();
            (200, pod_list(pods))
        } else if req.method == Method::DELETE && req.path.starts_with(&format!("{KAFKA_PODS}/")) {
            let name = req.path.rsplit('/').next().unwrap();
            let id = name.rsplit('-').next().unwrap();
            (200, strimzi_broker(name, &format!("uid-{id}"), true, true))
        } else {
            not_found()
        }
    });
    let broker = KubeBrokerFailure {
        namespace: Some("kafka".into()),
        selector: Some(BROKERS.into()),
        statefulset: None,
        ordinals: vec![],
        count: Some(1),
        grace_period_seconds: 0,
        recovery_timeout: Duration::from_secs(20),
    };
    let record = target
        .broker_failure(&broker, &CancellationToken::new())
        .await
        .unwrap();
    let seen = finish(target, task, log).await;

    // List by Strimzi's labels, delete the picked broker pod, and nothing but pod lists after:
    // a StrimziPodSet is no apps/v1 workload, so no StatefulSet or ReplicaSet is asked for.
    assert!(seen[0].is(Method::GET, KAFKA_PODS), "{:?}", seen[0]);
    assert_eq!(seen[0].param("labelSelector"), Some(BROKERS));
    assert_eq!(seen[1].method, Method::DELETE, "{:?}", seen[1]);
    let killed = seen[1]
        .path
        .strip_prefix(&format!("{KAFKA_PODS}/"))
        .unwrap();
    assert!(
        [3, 4, 5]
            .map(|id| format!("my-kafka-cluster-broker-{id}"))
            .contains(&killed.to_string()),
        "{killed}"
    );
    assert_eq!(seen[1].body["gracePeriodSeconds"], 0);
    let polls = &seen[2..];
    assert!(
        polls
            .iter()
            .all(|s| s.is(Method::GET, KAFKA_PODS) && s.param("labelSelector") == Some(BROKERS)),
        "{polls:?}"
    );
    assert!(
        seen.iter().all(|s| !s.path.starts_with("/apis/")),
        "no workload API read: {seen:?}"
    );
    // Terminating, then back but not ready, then ready: three polls.
    assert_eq!(polls.len(), 3, "{polls:?}");

    assert_eq!(record.action, "broker-failure");
    assert_eq!(record.target, format!("kafka/{BROKERS}"));
    assert_eq!(record.outcome, Outcome::Ok, "{:?}", record.detail);
    assert_eq!(record.affected, vec![killed.to_string()]);
    assert_eq!(
        record.detail.as_deref(),
        Some("recovered: StrimziPodSet my-kafka-cluster-broker")
    );
    let recovery = record.recovery.expect("recovery measured");
    assert!(
        recovery >= Duration::from_millis(1800) && recovery < Duration::from_secs(10),
        "two poll intervals: {recovery:?}"
    );
}

#[tokio::test]
async fn broker_failure_of_more_strimzi_brokers_than_the_blast_radius_deletes_nothing() {
    let (target, handle) = target(50.0, false);
    let (log, task) = serve(handle, |req, _| {
        if req.is(Method::GET, KAFKA_PODS) {
            let pods = (3..=5)
                .map(|id| {
                    strimzi_broker(
                        &format!("my-kafka-cluster-broker-{id}"),
                        &format!("uid-{id}"),
                        true,
                        false,
                    )
                })
                .collect();
            (200, pod_list(pods))
        } else {
            not_found()
        }
    });
    let broker = KubeBrokerFailure {
        namespace: Some("kafka".into()),
        selector: Some(BROKERS.into()),
        statefulset: None,
        ordinals: vec![],
        count: Some(2),
        grace_period_seconds: 0,
        recovery_timeout: Duration::from_secs(5),
    };
    let err = target
        .broker_failure(&broker, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ChaosError::Refused(m) if m.contains("2 of 3")),
        "{err}"
    );
    let seen = finish(target, task, log).await;
    assert_eq!(seen.len(), 1, "only the list: {seen:?}");
    assert_eq!(seen[0].param("labelSelector"), Some(BROKERS));
}
