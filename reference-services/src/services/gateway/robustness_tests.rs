//! The gateway under pressure, against a fake product backend that can hold calls: requests
//! beyond the in-flight bound are shed with a 503 and `Retry-After`, backend calls carry the
//! request's deadline, and random paths and methods do not grow the metrics' label sets.

use std::{collections::BTreeSet, time::Duration};

use rand::Rng;
use reqwest::Method;
use serde_json::Value;

use super::{Limits, Options, Peers, run_with_options};
use crate::{
    platform::deadline,
    testkit::{
        self, DEADLINE, Running,
        fakes::{FakeProducts, FakeServer},
    },
};

/// Every backend at a closed loopback port, except the product service at `product`.
fn peers(product: &str) -> Peers {
    let closed = "http://127.0.0.1:1".to_string();
    Peers {
        auth: closed.clone(),
        user: closed.clone(),
        product: product.to_string(),
        inventory: closed.clone(),
        offer: closed.clone(),
        cart: closed.clone(),
        order: closed.clone(),
        payment: closed.clone(),
        recommendation: closed.clone(),
        analytics_ingest: closed,
    }
}

struct Fixture {
    gateway: Running,
    fake: FakeProducts,
    _server: FakeServer,
    /// A client that gives up after [`DEADLINE`]: a hang guard, so a request the gateway queues
    /// instead of answering fails the test instead of hanging it.
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn gateway(limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeProducts::default();
    let server = fake.serve("127.0.0.1:0".parse().unwrap()).await;
    let options = Options {
        limits,
        ..Options::default()
    };
    let peers = peers(&server.url);
    let gateway = testkit::start("api-gateway", dir.path(), |rt| {
        run_with_options(rt, peers, options)
    })
    .await;
    Fixture {
        gateway,
        fake,
        _server: server,
        http: reqwest::Client::builder()
            .timeout(DEADLINE)
            .build()
            .unwrap(),
        _dir: dir,
    }
}

impl Fixture {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.gateway.url))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_in_flight_bound_requests_are_shed_with_retry_after() {
    let limits = Limits {
        max_in_flight: 2,
        retry_after_secs: 3,
        ..Limits::default()
    };
    let f = gateway(limits).await;
    f.fake.hold();
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(f.get("/api/v1/products").send()))
        .collect();
    testkit::eventually("two listings held in the backend", DEADLINE, || {
        let held = f.fake.held();
        async move { (held == 2).then_some(()) }
    })
    .await;

    let shed = f.get("/api/v1/products").send().await.unwrap();
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "3");
    let body: Value = shed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    assert_eq!(f.fake.calls(), 2, "a shed request reached the backend");
    // The ops routes are not guarded: probes and scrapes still answer.
    let health = f.get("/health").send().await.unwrap();
    assert_eq!(health.status(), 200);

    f.fake.release();
    for request in held {
        assert_eq!(request.await.unwrap().unwrap().status(), 200);
    }
    let after = f.get("/api/v1/products").send().await.unwrap();
    assert_eq!(after.status(), 200, "the bound is freed when requests end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_calls_carry_the_request_deadline() {
    let budget = Duration::from_secs(5);
    let f = gateway(Limits {
        request_timeout: budget,
        ..Limits::default()
    })
    .await;
    let last_deadline = |f: &Fixture| {
        f.fake
            .deadlines()
            .last()
            .copied()
            .expect("the backend was called")
            .expect("the backend call carried no grpc-timeout")
    };

    let answer = f.get("/api/v1/products").send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let sent = last_deadline(&f);
    assert!(!sent.is_zero() && sent <= budget, "{sent:?}");

    let asked = f
        .get("/api/v1/products")
        .header(deadline::REQUEST_TIMEOUT_HEADER, "800")
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    let sent = last_deadline(&f);
    assert!(sent <= Duration::from_millis(800), "{sent:?}");

    let both = f
        .get("/api/v1/products")
        .header(deadline::REQUEST_TIMEOUT_HEADER, "800")
        .header(deadline::GRPC_TIMEOUT_HEADER, "300m")
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 200);
    let sent = last_deadline(&f);
    assert!(sent <= Duration::from_millis(300), "{sent:?}");
}

/// Marks every made-up path and method, so none of them may appear in /metrics.
const MARKER: &str = "ZQ7RND";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_paths_and_methods_keep_metric_labels_bounded() {
    let f = gateway(Limits::default()).await;
    let standard = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::HEAD,
    ];
    let mut rng = rand::rng();
    for i in 0..1000 {
        let method = if i % 3 == 0 {
            Method::from_bytes(format!("{MARKER}{:X}", rng.random::<u32>()).as_bytes()).unwrap()
        } else {
            standard[i % standard.len()].clone()
        };
        // Some at a real route with a made-up method, most at made-up paths; some as gRPC calls.
        let path = match i % 4 {
            0 => "/api/v1/products".to_string(),
            1 => format!("/{MARKER}.Service/{MARKER}{:x}", rng.random::<u64>()),
            _ => format!("/{}/{MARKER}/{:x}", i, rng.random::<u64>()),
        };
        let mut request = f.http.request(method, format!("{}{path}", f.gateway.url));
        if i % 4 == 1 {
            request = request.header("content-type", "application/grpc");
        }
        request.send().await.unwrap();
    }

    let text = f
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.to_uppercase().contains(MARKER),
        "a made-up path or method became a label value:\n{}",
        text.lines()
            .filter(|l| l.to_uppercase().contains(MARKER))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let methods: BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("http_request_duration_seconds"))
        .filter_map(|l| l.split("method=\"").nth(1)?.split('"').next())
        .collect();
    let allowed = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other",
    ];
    assert!(
        methods.iter().all(|m| allowed.contains(m)),
        "method labels {methods:?}"
    );
    assert!(methods.contains("other"), "method labels {methods:?}");
    assert!(
        text.contains(r#"route="unmatched""#),
        "no unmatched series:\n{text}"
    );
}
