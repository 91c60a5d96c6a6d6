//! How fast is the reference platform on this machine, end to end?
//!
//! Starts the embedded stack exactly as `shakedown up` does (this package's own release binary
//! runs every service as `shakedown serve NAME`, mock Kafka, no Prometheus) and drives it with
//! the harness, through the gateway:
//!
//! 1. **product detail**: `GET /api/v1/products/1`, open model at a fixed arrival rate (default
//!    2,000/s), after a short warm-up; prints the achieved rate and p50/p95/p99 (measured from
//!    each request's intended start, so a stalled generator or server shows up; targets: the
//!    asked rate, p95 < 5 ms);
//! 2. **checkout**: the built-in `checkout` scenario, closed model, no think time (default 32
//!    users); prints complete flows/s (a flow ends with its `get_order` check passing; target
//!    ≥ 500) and the p95 of all its requests and of each step;
//! 3. **memory**: every service process's peak resident set (the largest `VmRSS` sampled every
//!    250 ms during both loads, and the kernel's `VmHWM` at the end; target < 30 MB each).
//!
//! Generator and stack share the machine, so the figures are for this machine as a whole (on a
//! 2-core box the generator takes a good part of a core); other load on the machine makes them
//! pessimistic. Every request must succeed: an error fails the benchmark, since figures over
//! failing requests would mean nothing.
//!
//! Run with `cargo bench -p shakedown --bench platform` (about a minute once built).
//! `SHAKEDOWN_BENCH_SECONDS` (default 20, per load), `SHAKEDOWN_BENCH_RATE` (2000) and
//! `SHAKEDOWN_BENCH_USERS` (32) change the defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reports::{LatencyStats, Report};
use scenarios::{Profile, RunSpec, Scenario, execute_scenario};
use shop::stack::{PrometheusMode, Stack, StackOptions};
use tokio_util::sync::CancellationToken;

/// The product-detail journey: one request, checked.
const PRODUCT_SCENARIO: &str = r#"
apiVersion: shakedown/v1
kind: Scenario
name: product-detail
description: GET /api/v1/products/1 through the gateway
steps:
  - name: get_product
    url: /api/v1/products/1
    checks:
      status: 200
      json:
        - { path: "$.id", equals: 1 }
"#;

/// How often the resident sets are sampled during the loads.
const MEMORY_SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let seconds = env_or("SHAKEDOWN_BENCH_SECONDS", 20).clamp(2, 300);
    let rate = env_or("SHAKEDOWN_BENCH_RATE", 2000).clamp(1, 100_000);
    let users = env_or("SHAKEDOWN_BENCH_USERS", 32).clamp(1, 1024);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(bench(seconds, rate, users));
}

async fn bench(seconds: u64, rate: u64, users: u64) {
    let mut options = StackOptions::new(PathBuf::from(env!("CARGO_BIN_EXE_shakedown")));
    // Prometheus is not part of the platform: it would only take CPU from it.
    options.prometheus = PrometheusMode::Off;
    println!(
        "platform: starting the embedded stack ({})...",
        options.executable.display()
    );
    let stack = Stack::start(options)
        .await
        .expect("the embedded stack starts");
    let target = stack.gateway_url().to_string();
    let pids: Vec<(String, u32)> = stack
        .endpoints()
        .iter()
        .map(|e| {
            let pid = stack
                .supervisor()
                .pid(&e.name)
                .expect("a service of the stack")
                .expect("a ready service has a process");
            (e.name.clone(), pid)
        })
        .collect();
    let memory = MemorySampler::start(pids.clone());

    let product = Scenario::from_yaml(PRODUCT_SCENARIO, "product-detail (benchmark)", None)
        .expect("valid scenario");
    // Warm-up: connections, caches, the allocator's arenas; not measured.
    let warm_up = open_profile(rate / 4, rate.min(256), 3);
    run(&product, &target, warm_up).await;
    let detail = run(
        &product,
        &target,
        open_profile(rate, rate.min(256), seconds),
    )
    .await;
    let checkout = Scenario::resolve("checkout").expect("built-in checkout");
    let flows = run(&checkout, &target, closed_profile(users, seconds)).await;
    let sampled = memory.stop().await;

    println!();
    println!(
        "1. GET /api/v1/products/1, open model at {rate}/s for {seconds} s (after a 3 s warm-up)"
    );
    let latency = detail
        .totals
        .corrected_latency
        .or(detail.totals.latency)
        .expect("requests were made");
    println!(
        "   achieved {:.0} req/s ({} requests); p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.1} ms  (target: p95 < 5 ms)",
        detail.totals.rps,
        detail.totals.requests,
        latency.p50_ms,
        latency.p95_ms,
        latency.p99_ms,
        latency.max_ms
    );
    if let Some(a) = &detail.arrivals {
        println!(
            "   iterations due {}, started {}, latest start {:.1} ms after its time",
            a.scheduled_iterations, a.started_iterations, a.max_lateness_ms
        );
    }

    println!();
    println!("2. checkout, closed model, {users} users, no think time, {seconds} s");
    let completed = transaction(&flows, "get_order").map_or(0, |t| t.requests - t.errors);
    let all = flows.totals.latency.expect("requests were made");
    println!(
        "   {:.0} complete flows/s ({completed} flows), {:.0} req/s; p95 {:.1} ms over all requests  (target: ≥ 500 flows/s)",
        completed as f64 / flows.actual_duration_s,
        flows.totals.rps,
        all.p95_ms
    );
    println!(
        "   {:<16} {:>9} {:>9} {:>9}",
        "step", "requests", "p50 ms", "p95 ms"
    );
    for t in &flows.transactions {
        let l = t.latency.unwrap_or_else(zero);
        println!(
            "   {:<16} {:>9} {:>9.1} {:>9.1}",
            t.name, t.requests, l.p50_ms, l.p95_ms
        );
    }

    println!();
    println!("3. resident memory of every service under that load (target: < 30 MB each)");
    println!(
        "   {:<18} {:>14} {:>12}",
        "service", "max VmRSS MB", "VmHWM MB"
    );
    let mut over = Vec::new();
    for (name, pid) in &pids {
        let max_rss = sampled.get(name).copied().unwrap_or(0);
        let hwm = status_kb(*pid, "VmHWM:").unwrap_or(0);
        println!(
            "   {:<18} {:>14.1} {:>12.1}",
            name,
            max_rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
        if hwm > 30 * 1024 {
            over.push(name.as_str());
        }
    }
    if !over.is_empty() {
        println!("   over 30 MB (VmHWM): {}", over.join(", "));
    }
    stack.stop().await;
}

fn zero() -> LatencyStats {
    LatencyStats {
        p50_ms: 0.0,
        p90_ms: 0.0,
        p95_ms: 0.0,
        p99_ms: 0.0,
        max_ms: 0.0,
        mean_ms: 0.0,
    }
}

fn transaction<'a>(report: &'a Report, name: &str) -> Option<&'a reports::TransactionStats> {
    report.transactions.iter().find(|t| t.name == name)
}

fn open_profile(rate: u64, max_users: u64, seconds: u64) -> Profile {
    let yaml = format!(
        "name: bench-open\nopen:\n  start_rate: {rate}\n  max_users: {max_users}\n  stages:\n    - {{ duration: {seconds}s, rate: {rate} }}\nthresholds: [\"p99<10s\"]\n"
    );
    Profile::from_yaml(&yaml, "benchmark profile").expect("valid profile")
}

fn closed_profile(users: u64, seconds: u64) -> Profile {
    let yaml = format!(
        "name: bench-closed\nclosed:\n  stages:\n    - {{ duration: 0s, users: {users} }}\n    - {{ duration: {seconds}s, users: {users} }}\nthink_time: {{ min: 0s, max: 0s }}\nthresholds: [\"p99<10s\"]\n"
    );
    Profile::from_yaml(&yaml, "benchmark profile").expect("valid profile")
}

/// Runs `scenario` against `target`; panics when a request failed.
async fn run(scenario: &Scenario, target: &str, profile: Profile) -> Report {
    let spec = RunSpec {
        scenario: String::new(),
        target: target.to_string(),
        profile,
        quiet: true,
        thresholds: Vec::new(),
        live: None,
    };
    let report = execute_scenario(scenario, spec, &CancellationToken::new())
        .await
        .expect("harness run");
    assert_eq!(
        report.totals.errors,
        0,
        "every request of {} succeeds; errors: {:?}",
        scenario.name(),
        report.error_samples
    );
    report
}

/// A `/proc/PID/status` field in kB (`VmRSS:`, `VmHWM:`).
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

/// Samples every service's `VmRSS` in the background and keeps each one's largest.
struct MemorySampler {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    peaks: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl MemorySampler {
    fn start(pids: Vec<(String, u32)>) -> Self {
        let cancel = CancellationToken::new();
        let peaks = Arc::new(Mutex::new(BTreeMap::new()));
        let task = tokio::spawn({
            let (cancel, peaks) = (cancel.clone(), peaks.clone());
            async move {
                let mut tick = tokio::time::interval(MEMORY_SAMPLE_INTERVAL);
                while !cancel.is_cancelled() {
                    tick.tick().await;
                    let mut peaks = peaks.lock().expect("not poisoned");
                    for (name, pid) in &pids {
                        let rss = status_kb(*pid, "VmRSS:").unwrap_or(0);
                        let peak = peaks.entry(name.clone()).or_insert(0);
                        *peak = (*peak).max(rss);
                    }
                }
            }
        });
        Self {
            cancel,
            task,
            peaks,
        }
    }

    /// Stops sampling; each service's largest `VmRSS`, in kB.
    async fn stop(self) -> BTreeMap<String, u64> {
        self.cancel.cancel();
        self.task.await.expect("sampler task");
        Arc::try_unwrap(self.peaks)
            .expect("the sampler is done")
            .into_inner()
            .expect("not poisoned")
    }
}
