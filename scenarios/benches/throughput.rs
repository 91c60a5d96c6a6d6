//! How much load can the harness generate, compared with the leanest possible client?
//!
//! Starts a minimal axum server on 127.0.0.1 (a tiny JSON `GET /health`) and drives it for a
//! bounded time with (a) the harness running the built-in `health` scenario file, (b) the
//! harness running the same journey as Rust step functions (the `scenarios::rust` extension
//! point: what the built-ins were before they became files), and (c) a raw loop of tasks
//! sharing one `reqwest::Client`, then prints requests/s and p50/p99 side by side, with the
//! file / Rust ratio (the goal is at least 90 %). Client and server share the machine, so the
//! numbers compare the two clients on the same box; they are not a server benchmark.
//!
//! Run with `cargo bench --workspace --bench throughput`. `SHAKEDOWN_BENCH_SECONDS` and
//! `SHAKEDOWN_BENCH_USERS` change the defaults (5 s, 64 concurrent users/connections).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::get;
use reports::LatencyHistogram;
use scenarios::rust::{
    Call, GooseUser, ScenarioDef, Step, ThinkTime, TransactionResult, expect, send, step_fn,
};
use scenarios::{Profile, RunSpec, Scenario, execute_scenario};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let seconds = env_or("SHAKEDOWN_BENCH_SECONDS", 5).clamp(1, 60);
    let users = env_or("SHAKEDOWN_BENCH_USERS", 64).clamp(1, 1024);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let addr = start_server().await;
        let duration = Duration::from_secs(seconds);
        println!(
            "throughput: GET /health on {addr}, {users} concurrent users/connections, {seconds} s each"
        );

        // Warm the server and the kernel's socket paths so the first contender is not
        // penalised.
        let _ = raw_loop(addr, users, Duration::from_secs(1)).await;

        let raw = raw_loop(addr, users, duration).await;
        let rust = harness(
            addr,
            users,
            seconds,
            Scenario::from_rust(rust_health()),
            "harness, Rust steps",
        )
        .await;
        let file = harness(
            addr,
            users,
            seconds,
            Scenario::resolve("health").expect("built-in health"),
            "harness, scenario file",
        )
        .await;

        println!();
        println!("{:<28} {:>12} {:>10} {:>10} {:>10}", "client", "requests", "req/s", "p50 ms", "p99 ms");
        for row in [&file, &rust, &raw] {
            println!(
                "{:<28} {:>12} {:>10.0} {:>10.3} {:>10.3}",
                row.name, row.requests, row.rps, row.p50_ms, row.p99_ms
            );
        }
        println!(
            "\nscenario file / Rust steps throughput: {:.0} % (goal: at least 90 %)",
            100.0 * file.rps / rust.rps.max(f64::MIN_POSITIVE)
        );
        println!(
            "harness (file) / raw throughput: {:.0} %",
            100.0 * file.rps / raw.rps.max(f64::MIN_POSITIVE)
        );
    });
}

struct Row {
    name: &'static str,
    requests: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn start_server() -> SocketAddr {
    let app = axum::Router::new().route(
        "/health",
        get(|| async { Json(json!({"status": "healthy"})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// `GET /health` as a Rust step function, checked like the file's step.
async fn health(user: &mut GooseUser) -> TransactionResult {
    send(user, Call::get("health", "/health"), |body| {
        expect::equals(body, "status", "healthy")
    })
    .await
}

/// The `health` journey through the Rust extension point.
fn rust_health() -> ScenarioDef {
    ScenarioDef {
        name: "health",
        description: "GET /health as Rust steps",
        think_time: ThinkTime {
            min: Duration::ZERO,
            max: Duration::ZERO,
        },
        on_start: vec![],
        steps: vec![Step::new("health", step_fn(|user| Box::pin(health(user))))],
    }
}

/// The harness: `scenario` with all users started at once.
async fn harness(
    addr: SocketAddr,
    users: u64,
    seconds: u64,
    scenario: Scenario,
    name: &'static str,
) -> Row {
    let yaml = format!(
        "name: bench\nclosed:\n  stages:\n    - {{ duration: 0s, users: {users} }}\n    - {{ duration: {seconds}s, users: {users} }}\nthresholds: [\"p99<10s\"]\n"
    );
    let profile = Profile::from_yaml(&yaml, "benchmark profile").expect("valid profile");
    let spec = RunSpec {
        scenario: String::new(),
        target: format!("http://{addr}"),
        profile,
        quiet: true,
        thresholds: Vec::new(),
        live: None,
    };
    let report = execute_scenario(&scenario, spec, &CancellationToken::new())
        .await
        .expect("harness run");
    assert_eq!(report.totals.errors, 0, "the benchmark server never fails");
    let latency = report.totals.latency.expect("requests were made");
    Row {
        name,
        requests: report.totals.requests,
        rps: report.totals.rps,
        p50_ms: latency.p50_ms,
        p99_ms: latency.p99_ms,
    }
}

/// The baseline: `users` tasks looping on one shared client until the deadline.
async fn raw_loop(addr: SocketAddr, users: u64, duration: Duration) -> Row {
    let client = reqwest::Client::new();
    let url = Arc::new(format!("http://{addr}/health"));
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..users)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let mut histogram = LatencyHistogram::fine();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let response = client.get(url.as_str()).send().await.expect("request");
                    let body = response.bytes().await.expect("body");
                    assert!(!body.is_empty());
                    histogram.record_micros(sent.elapsed().as_micros() as u64);
                }
                histogram
            })
        })
        .collect();
    let mut all = LatencyHistogram::fine();
    for task in tasks {
        all.merge(&task.await.expect("task")).expect("merge");
    }
    let elapsed = started.elapsed().as_secs_f64();
    Row {
        name: "raw shared reqwest loop",
        requests: all.count(),
        rps: all.count() as f64 / elapsed,
        p50_ms: all.quantile_ms(0.5).unwrap_or(0.0),
        p99_ms: all.quantile_ms(0.99).unwrap_or(0.0),
    }
}
