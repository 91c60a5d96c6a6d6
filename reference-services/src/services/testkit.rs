//! Test support shared by the service tests: start a service in-process on free loopback ports
//! and wait until it answers, and run a throwaway `redis-server` for the tests that need one.
//!
//! Waiting polls the service's `/health` route (never a fixed sleep), so tests are as fast as the
//! service's start-up and do not flake on a slow machine.

use std::{
    future::Future,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::platform::{config::ServiceConfig, http::Runtime, shutdown::Shutdown};

/// Upper bound on how long start-up may take before a test gives up (a hang guard, not a timing
/// assertion: a healthy start takes a fraction of it).
const START_DEADLINE: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A service running in a background task of the test's runtime.
pub struct Running {
    /// Base URL of its listener, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    pub shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Triggers shutdown and waits for the service to stop; panics if it failed.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        (&mut self.task)
            .await
            .expect("service task panicked")
            .expect("service failed");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.trigger();
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

/// Like [`start`] with a prepared configuration (e.g. one that names a Kafka cluster).
pub async fn start_with<F, Fut>(config: ServiceConfig, run: F) -> Running
where
    F: FnOnce(Runtime) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let shutdown = Shutdown::default();
    let name = config.name.clone();
    let url = format!("http://{}", config.listen);
    let runtime = Runtime::with_shutdown(config, shutdown.clone()).expect("runtime");
    let task = tokio::spawn(run(runtime));
    let running = Running {
        url,
        shutdown,
        task,
    };
    wait_healthy(&running, &name).await;
    running
}

async fn wait_healthy(running: &Running, name: &str) {
    let client = reqwest::Client::new();
    let health = format!("{}/health", running.url);
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if running.task.is_finished() {
            panic!("service {name} stopped during start-up");
        }
        let answered = client
            .get(&health)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if answered {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "service {name} did not become healthy"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A `redis-server` on a free loopback port, killed when dropped.
pub struct RedisServer {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one, or returns `None` (after saying why) when `redis-server` is not installed.
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
                eprintln!("skipping: redis-server is not available ({e})");
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
        let deadline = Instant::now() + START_DEADLINE;
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
