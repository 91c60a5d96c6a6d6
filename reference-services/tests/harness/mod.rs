//! What the integration tests of the order, payment and event-driven services share: starting a
//! service in-process on free loopback ports, waiting for a condition by polling (never a fixed
//! sleep), the mock Kafka cluster, fake peers and a throwaway PostgreSQL server.
//!
//! Each test binary uses a part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod fakes;
pub mod kafka;
pub mod postgres;

use std::{
    net::SocketAddr,
    path::Path,
    time::{Duration, Instant},
};

use shop::platform::{config::ServiceConfig, http::Runtime, shutdown::Shutdown};

/// How long a test waits for something that should happen soon (a hang guard, not a timing
/// assertion: it normally happens in a fraction of that).
pub const DEADLINE: Duration = Duration::from_secs(20);
/// For waits that include Kafka brokers coming back (librdkafka reconnects with back-off).
pub const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A service running in a task of the test's runtime.
pub struct Running {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, for HTTP requests and gRPC clients alike.
    pub url: String,
    /// `http://127.0.0.1:PORT` of the loopback admin listener (`/admin/faults`, `/admin/accounting`).
    pub admin_url: String,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Shuts the service down gracefully and waits until it stopped; panics if it failed.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        let task = self.task.take().expect("stopped once");
        tokio::time::timeout(RECOVERY_DEADLINE, task)
            .await
            .expect("service did not stop")
            .expect("service task panicked")
            .expect("service failed");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// The configuration of service `name` for a test: data in `dir`, Kafka at `bootstrap`.
pub fn config(name: &str, dir: &Path, bootstrap: &str) -> ServiceConfig {
    ServiceConfig {
        kafka_bootstrap: Some(bootstrap.to_string()),
        ..ServiceConfig::for_test(name, dir)
    }
}

/// Starts a service with `run` on `config` and waits until its `/health` answers.
pub async fn start<F, Fut>(config: ServiceConfig, run: F) -> Running
where
    F: FnOnce(Runtime) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let shutdown = Shutdown::default();
    let addr = config.listen;
    let admin_url = format!("http://{}", config.admin_listen);
    let runtime = Runtime::with_shutdown(config, shutdown.clone()).expect("runtime");
    let task = tokio::spawn(run(runtime));
    let url = format!("http://{addr}");
    let health = format!("{url}/health");
    let client = reqwest::Client::new();
    eventually("service answers /health", DEADLINE, || {
        let request = client.get(&health).send();
        async move {
            request
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        }
    })
    .await;
    assert!(!task.is_finished(), "service stopped right after starting");
    Running {
        addr,
        url,
        admin_url,
        shutdown,
        task: Some(task),
    }
}

/// Polls `check` until it yields a value; panics naming `what` after `deadline`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < deadline,
            "gave up after {deadline:?} waiting for: {what}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// GETs `url` and returns the status and the JSON body.
pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.expect("GET");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}
