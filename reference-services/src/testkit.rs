//! The one service test harness, for unit tests (`crate::testkit`) and integration tests
//! (`shop::testkit`, behind the `testing` feature that the crate's own dev-dependency turns on):
//! start a service in-process on free loopback ports and wait until it answers, poll for a
//! condition, GET JSON, run a throwaway `redis-server`, and fake backends ([`fakes`]).
//!
//! It lives in the library because unit tests in `src/` can only use code of the crate, while
//! integration tests in `tests/` can use the library; `tests/harness/` keeps only the fixtures of
//! integration tests (mock Kafka helpers, fake peers, PostgreSQL). Waiting always polls (never a
//! fixed sleep), so tests are as fast as the service and do not flake on a slow machine.

use std::{
    future::Future,
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::platform::{config::ServiceConfig, http::Runtime, shutdown::Shutdown};

pub mod fakes;

/// How long a test waits for something that should happen soon (a hang guard, not a timing
/// assertion: it normally happens in a fraction of that).
pub const DEADLINE: Duration = Duration::from_secs(20);
/// For waits that include start-up or Kafka brokers coming back (librdkafka reconnects with
/// back-off).
pub const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A service running in a background task of the test's runtime.
pub struct Running {
    pub addr: SocketAddr,
    /// Base URL of its listener, e.g. `http://127.0.0.1:41234` (HTTP requests and gRPC clients).
    pub url: String,
    /// Base URL of its loopback admin listener (`/admin/faults`, `/admin/accounting`).
    pub admin_url: String,
    pub shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Triggers shutdown and waits for the service to stop; panics if it failed or hung.
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

/// A test needs `tool` and it is missing: in CI (`CI` set, not `false`/`0`) that fails the test
/// naming the tool, since the machine is supposed to have it; elsewhere the caller skips after
/// this message. The rule of `slo::testing::missing_tool`, here because shop and slo do not
/// depend on each other.
pub fn missing_tool(tool: &str, install: &str) {
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !in_ci,
        "{tool} is needed by this test and is missing on this CI machine: {install}"
    );
    eprintln!("SKIP: {tool} is not installed ({install})");
}

/// The test configuration of service `name` (data in `dir`) with Kafka at `bootstrap`.
pub fn config(name: &str, dir: &Path, bootstrap: &str) -> ServiceConfig {
    ServiceConfig {
        kafka_bootstrap: Some(bootstrap.to_string()),
        ..ServiceConfig::for_test(name, dir)
    }
}

/// Starts service `name` (data in `dir`) with `run` and waits until `/health` answers 200.
pub async fn start<F, Fut>(name: &str, dir: &Path, run: F) -> Running
where
    F: FnOnce(Runtime) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    start_with(ServiceConfig::for_test(name, dir), run).await
}

/// Like [`start`] with a prepared configuration (e.g. [`config`], or one naming a database).
pub async fn start_with<F, Fut>(config: ServiceConfig, run: F) -> Running
where
    F: FnOnce(Runtime) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let shutdown = Shutdown::default();
    let name = config.name.clone();
    let addr = config.listen;
    let admin_url = format!("http://{}", config.admin_listen);
    let runtime = Runtime::with_shutdown(config, shutdown.clone()).expect("runtime");
    let running = Running {
        addr,
        url: format!("http://{addr}"),
        admin_url,
        shutdown,
        task: Some(tokio::spawn(run(runtime))),
    };
    wait_healthy(&running, &name).await;
    running
}

async fn wait_healthy(running: &Running, name: &str) {
    let client = reqwest::Client::new();
    let health = format!("{}/health", running.url);
    let task = running.task.as_ref().expect("running");
    eventually(
        &format!("service {name} answers /health"),
        RECOVERY_DEADLINE,
        || {
            assert!(
                !task.is_finished(),
                "service {name} stopped during start-up"
            );
            let request = client.get(&health).send();
            async move {
                request
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        },
    )
    .await;
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

/// A `redis-server` on a free loopback port, killed when dropped.
pub struct RedisServer {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one, or returns `None` (after saying why) when `redis-server` is not installed;
    /// with `CI` set that is a failure instead.
    pub async fn start() -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = crate::platform::config::free_port();
        let spawned = Command::new("redis-server")
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                missing_tool(
                    &format!("redis-server ({e})"),
                    "scripts/setup.sh installs it",
                );
                return None;
            }
        };
        let server = Self {
            url: format!("redis://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        server.wait_ready().await;
        Some(server)
    }

    async fn wait_ready(&self) {
        let client = redis::Client::open(self.url.as_str()).expect("redis url");
        let deadline = Instant::now() + RECOVERY_DEADLINE;
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                let pong: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut conn).await;
                if pong.is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
