//! Helpers shared by the end-to-end tests — the one test helper module of the root package:
//! running the binary and reading what it wrote ([`cli`]), starting the embedded stack from the
//! real binary, a small client for the gateway's REST API, and a recording stand-in target.

#![allow(dead_code)]

pub mod cli;

use std::{path::PathBuf, time::Duration};

use serde_json::{Value, json};
use shop::stack::{PrometheusMode, Stack, StackOptions};

/// The shakedown binary built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_shakedown"))
}

/// Starts the embedded stack on free loopback ports (no Prometheus unless asked).
pub async fn start_stack(prometheus: bool) -> Stack {
    let mut options = StackOptions::new(binary());
    options.prometheus = if prometheus {
        PrometheusMode::Auto
    } else {
        PrometheusMode::Off
    };
    options.env.push(("RUST_LOG".into(), "warn".into()));
    Stack::start(options).await.expect("embedded stack starts")
}

/// Injects `fault` (the `/admin/faults` body, e.g. `{"latency_ms": 40}`) into `service` of the
/// embedded stack; panics when the service refuses it.
pub async fn inject_fault(stack: &Stack, service: &str, fault: Value) {
    let endpoint = stack
        .endpoint(service)
        .unwrap_or_else(|| panic!("the stack has no {service} service"));
    let answer = reqwest::Client::new()
        .put(format!("{}/admin/faults", endpoint.admin_url))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{answer:?}");
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client of the gateway's public API, logged in as one user.
pub struct Shopper {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub user_id: String,
    pub email: String,
}

impl Shopper {
    /// Registers a fresh user and logs in.
    pub async fn register(base: &str, tag: &str) -> Shopper {
        let http = reqwest::Client::new();
        let email = format!("{tag}-{}@example.com", uuid_like());
        let r = http
            .post(format!("{base}/api/v1/auth/register"))
            .json(&json!({"email": email, "password": "correct horse battery", "first_name": "Ada", "last_name": tag}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "register: {}", r.text().await.unwrap());
        let r = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        Shopper {
            http,
            base: base.to_string(),
            token: body["token"].as_str().expect("token").to_string(),
            user_id: body["id"].as_str().expect("id").to_string(),
            email,
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Serves `app` on 127.0.0.1 (a free port) on its own thread and runtime, for the rest of the test
/// process, so blocking tests can use it; returns its base URL.
pub fn serve_in_background(app: axum::Router) -> String {
    serve_until(app, std::future::pending())
}

/// [`serve_in_background`] until `stop` completes.
fn serve_until(
    app: axum::Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await;
        });
    });
    url
}

/// A stand-in target on 127.0.0.1 that answers every request `200 {"status":"ok"}` and counts
/// what it received, so a test can prove that nothing (or how much) was sent. It runs on its own
/// thread and runtime, so blocking tests can use it too; it stops when dropped.
pub struct RecordingServer {
    pub url: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RecordingServer {
    pub fn start() -> RecordingServer {
        use std::sync::atomic::{AtomicU64, Ordering};
        let requests = std::sync::Arc::new(AtomicU64::new(0));
        let counted = requests.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new().fallback(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { axum::Json(json!({"status": "ok"})) }
        });
        let url = serve_until(app, async {
            let _ = stopped.await;
        });
        RecordingServer {
            url,
            requests,
            stop: Some(stop),
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
