//! Do two generators send more than one? The same closed-model load (`health`, 64 users, no
//! think time) against the same in-process axum server, once as one `shakedown run` process and
//! once as `shakedown run --workers 2 --on local` (a coordinator and two worker processes, 32
//! users each); prints requests/s of both and their ratio (the goal is ≥ 1.6×).
//!
//! Cores: nothing is pinned. The server runs on this bench process's tokio runtime with
//! `SHAKEDOWN_BENCH_SERVER_THREADS` worker threads (default 1); generators and coordinator are
//! separate processes scheduled by the kernel over the remaining capacity, so on a 2-core
//! machine server and generators compete, and the figures are for the machine as a whole.
//!
//! Run with `cargo bench -p shakedown --bench fleet` (release build of this package's binary).
//! `SHAKEDOWN_BENCH_SECONDS` (default 10) and `SHAKEDOWN_BENCH_USERS` (64) change the load.

use std::path::Path;
use std::process::Command;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let seconds = env_or("SHAKEDOWN_BENCH_SECONDS", 10).clamp(2, 600);
    let users = env_or("SHAKEDOWN_BENCH_USERS", 64).clamp(2, 4096);
    let threads = env_or("SHAKEDOWN_BENCH_SERVER_THREADS", 1).clamp(1, 64) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    runtime.spawn(async move {
        let app = axum::Router::new().route(
            "/health",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "healthy"})) }),
        );
        let _ = axum::serve(listener, app).await;
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let profile = dir.path().join("bench.yaml");
    std::fs::write(
        &profile,
        format!(
            "name: fleet-bench\nclosed:\n  stages:\n    - {{ duration: 1s, users: {users} }}\n    - {{ duration: {seconds}s, users: {users} }}\n"
        ),
    )
    .expect("profile");
    println!(
        "fleet scaling: health, {users} users, {}s, server on {threads} tokio thread(s) at {url}",
        seconds + 1
    );
    let one = run(&url, &profile, &dir.path().join("one"), &[]);
    println!(
        "one process:                      {:>10.0} req/s, generator {:.2} cores ({:.0} requests per CPU-second)",
        one.rps,
        one.cores,
        one.rps / one.cores
    );
    let two = run(
        &url,
        &profile,
        &dir.path().join("two"),
        &["--workers", "2", "--on", "local"],
    );
    println!(
        "coordinator + 2 local workers:    {:>10.0} req/s, workers {:.2} cores ({:.0} requests per CPU-second)",
        two.rps,
        two.cores,
        two.rps / two.cores
    );
    println!("ratio: {:.2}× (goal ≥ 1.6×)", two.rps / one.rps);
    println!(
        "cores: {} on this machine; one process already spreads its users over all of them",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
}

/// What one run achieved and the CPU its generators used (from the reports' provenance).
struct Achieved {
    rps: f64,
    /// Average cores the generator processes kept busy (workers summed).
    cores: f64,
}

/// Requests/s of one run and its generators' CPU, from its reports (a coordinated run's workers
/// write their own, with their CPU, under `workers/`).
fn run(url: &str, profile: &Path, out: &Path, extra: &[&str]) -> Achieved {
    let status = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args(["run", "health", "--quiet", "--target", url])
        .arg("--profile")
        .arg(profile)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("RUST_LOG", "warn")
        .status()
        .expect("shakedown runs");
    assert!(status.success(), "the run failed: {status}");
    let run_dir = out.join("latest");
    let report = read_report(&run_dir.join("report.json"));
    let own = |report: &serde_json::Value| {
        report["provenance"]["generator"]["cpu_cores_used"]
            .as_f64()
            .unwrap_or(0.0)
    };
    let mut worker_reports = Vec::new();
    collect_reports(&run_dir.join("workers"), &mut worker_reports);
    let cores = if worker_reports.is_empty() {
        own(&report)
    } else {
        worker_reports
            .iter()
            .map(|path| own(&read_report(path)))
            .sum()
    };
    Achieved {
        rps: report["totals"]["rps"].as_f64().expect("rps"),
        cores,
    }
}

fn read_report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report")).expect("report JSON")
}

/// Every `report.json` under `dir` (none when it does not exist).
fn collect_reports(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_reports(&path, found);
        } else if path.file_name().is_some_and(|n| n == "report.json") {
            found.push(path);
        }
    }
}
