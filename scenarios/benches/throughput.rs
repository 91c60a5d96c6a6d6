//! How much load can the harness generate, compared with the leanest possible client?
//!
//! Starts a minimal axum server on 127.0.0.1 (a tiny JSON `GET /health`) and drives it for a
//! bounded time with (a) the harness — Goose users running the `health` scenario through our
//! recorder — and (b) a raw loop of tasks sharing one `reqwest::Client`, then prints
//! requests/s and p50/p99 of both side by side. Client and server share the machine, so the
//! numbers compare the two clients on the same box; they are not a server benchmark.
//!
//! Run with `cargo bench -p scenarios --bench throughput`. `SHAKEDOWN_BENCH_SECONDS` and
//! `SHAKEDOWN_BENCH_USERS` change the defaults (5 s, 64 concurrent users/connections).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::get;
use reports::LatencyHistogram;
use scenarios::{Profile, RunSpec, execute};
use serde_json::json;

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
        let harness = harness(addr, users, seconds).await;

        println!();
        println!("{:<28} {:>12} {:>10} {:>10} {:>10}", "client", "requests", "req/s", "p50 ms", "p99 ms");
        for row in [&harness, &raw] {
            println!(
                "{:<28} {:>12} {:>10.0} {:>10.3} {:>10.3}",
                row.name, row.requests, row.rps, row.p50_ms, row.p99_ms
            );
        }
        println!(
            "\nharness / raw throughput: {:.0} %",
            100.0 * harness.rps / raw.rps.max(f64::MIN_POSITIVE)
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

/// The harness: `execute` with the `health` scenario, all users started at once.
async fn harness(addr: SocketAddr, users: u64, seconds: u64) -> Row {
    let yaml = format!(
        "name: bench\nclosed:\n  stages:\n    - {{ duration: 0s, users: {users} }}\n    - {{ duration: {seconds}s, users: {users} }}\nthresholds: [\"p99<10s\"]\n"
    );
    let profile = Profile::from_yaml(&yaml, "benchmark profile").expect("valid profile");
    let report = execute(RunSpec {
        scenario: "health".into(),
        target: format!("http://{addr}"),
        profile,
        quiet: true,
        thresholds: Vec::new(),
    })
    .await
    .expect("harness run");
    assert_eq!(report.totals.errors, 0, "the benchmark server never fails");
    let latency = report.totals.latency.expect("requests were made");
    Row {
        name: "harness (Goose + recorder)",
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
