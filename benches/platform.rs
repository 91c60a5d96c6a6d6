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
//!    It also prints the CPU time one flow costs (every service's, and this process's: the
//!    generator and the mock Kafka cluster), and so the most flows/s the machine's cores allow;
//! 3. **memory**: every service process's peak resident set (the largest `VmRSS` sampled every
//!    250 ms during both loads, and the kernel's `VmHWM` at the end; target < 30 MB each), and
//!    at the end how much of the resident set is the process's own memory (`RssAnon`) and how
//!    much is mapped files (`RssFile`: mostly the pages of the one `shakedown` executable that
//!    every service runs, in memory once for all of them), and the proportional set (`Pss`:
//!    shared pages divided among the processes mapping them — what each service costs).
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
    let cpu_before = CpuTimes::of(&pids);
    let flows = run(&checkout, &target, closed_profile(users, seconds)).await;
    let cpu = CpuTimes::of(&pids).since(&cpu_before);
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

    if completed > 0 {
        let per_flow = |seconds: f64| seconds * 1000.0 / completed as f64;
        let services: f64 = cpu.services.values().sum();
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        println!(
            "   CPU per complete flow: {:.2} ms in the services, {:.2} ms in this process (generator and mock Kafka);",
            per_flow(services),
            per_flow(cpu.this_process)
        );
        println!(
            "   {cores} cores can carry at most {:.0} flows/s at that cost",
            cores as f64 * 1000.0 / per_flow(services + cpu.this_process)
        );
        let mut heaviest: Vec<_> = cpu.services.iter().collect();
        heaviest.sort_by(|a, b| b.1.total_cmp(a.1));
        let listed: Vec<String> = heaviest
            .iter()
            .map(|(name, seconds)| format!("{name} {:.2}", per_flow(**seconds)))
            .collect();
        println!("   by service, ms per flow: {}", listed.join(", "));
    }

    println!();
    println!("3. resident memory of every service under that load (target: < 30 MB each)");
    println!(
        "   {:<18} {:>14} {:>12} {:>14} {:>14} {:>10}",
        "service", "max VmRSS MB", "VmHWM MB", "RssAnon MB", "RssFile MB", "Pss MB"
    );
    let mut over = Vec::new();
    for (name, pid) in &pids {
        let max_rss = sampled.get(name).copied().unwrap_or(0);
        let hwm = status_kb(*pid, "VmHWM:").unwrap_or(0);
        let mb = |field| status_kb(*pid, field).unwrap_or(0) as f64 / 1024.0;
        let pss = proc_kb(*pid, "smaps_rollup", "Pss:").unwrap_or(0) as f64 / 1024.0;
        println!(
            "   {:<18} {:>14.1} {:>12.1} {:>14.1} {:>14.1} {:>10.1}",
            name,
            max_rss as f64 / 1024.0,
            hwm as f64 / 1024.0,
            mb("RssAnon:"),
            mb("RssFile:"),
            pss
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
    proc_kb(pid, "status", field)
}

/// A field in kB of `/proc/PID/<file>` (`status`, or `smaps_rollup` for `Pss:`: the resident
/// set with each shared page divided among the processes that map it, so the one executable
/// all services run counts once in total, not once per service).
fn proc_kb(pid: u32, file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

/// CPU time (user + system) used so far by every service and by this process, in seconds.
struct CpuTimes {
    services: BTreeMap<String, f64>,
    this_process: f64,
}

impl CpuTimes {
    fn of(pids: &[(String, u32)]) -> Self {
        Self {
            services: pids
                .iter()
                .map(|(name, pid)| (name.clone(), cpu_seconds(&pid.to_string())))
                .collect(),
            this_process: cpu_seconds("self"),
        }
    }

    fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            services: self
                .services
                .iter()
                .map(|(name, now)| {
                    let before = earlier.services.get(name).copied().unwrap_or(0.0);
                    (name.clone(), now - before)
                })
                .collect(),
            this_process: self.this_process - earlier.this_process,
        }
    }
}

/// utime + stime of `/proc/<pid>/stat` (fields 14 and 15, after the parenthesised name), in
/// seconds; 0 for a process that is gone.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(after_name) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / per_second
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
