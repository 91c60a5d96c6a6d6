//! Helpers shared by the end-to-end tests: start the embedded stack from the real binary, and a
//! small client for the gateway's REST API.

#![allow(dead_code)]

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
