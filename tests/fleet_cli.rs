//! Many generators, one verdict, end to end: `shakedown run --workers N --on local|manual` as a
//! coordinator with real `shakedown worker` processes against a small local server. The merged
//! report must be what `report merge` makes of the workers' own reports; a worker that dies
//! leaves a partial report naming it; workers that never join end the run with exit 3; an
//! `abort_on_fail` threshold stops everyone; the coordinator's `--metrics-listen` serves the sum
//! of the workers' live metrics, equal to its report.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::cli::{all_output, code, json, only_run_dir, shakedown};
use serde_json::Value;

/// A `/health` that answers like the reference services (`{"status":"healthy"}`), counts
/// requests, and turns slow (300 ms) when `slow` is set.
struct Target {
    url: String,
    requests: Arc<AtomicU64>,
    slow: Arc<AtomicBool>,
}

fn target() -> Target {
    let requests = Arc::new(AtomicU64::new(0));
    let slow = Arc::new(AtomicBool::new(false));
    let (counted, slowed) = (requests.clone(), slow.clone());
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let slow = slowed.load(Ordering::SeqCst);
        async move {
            if slow {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            axum::Json(serde_json::json!({"status": "healthy"}))
        }
    });
    Target {
        url: common::serve_in_background(app),
        requests,
        slow,
    }
}

fn profile(dir: &Path, seconds: u32, users: u32, extra: &str) -> PathBuf {
    let path = dir.join("fleet-profile.yaml");
    std::fs::write(
        &path,
        format!(
            "name: fleet\nclosed:\n  stages:\n    - {{ duration: 1s, users: {users} }}\n    - {{ duration: {seconds}s, users: {users} }}\nthink_time: {{ min: 20ms, max: 40ms }}\n{extra}"
        ),
    )
    .unwrap();
    path
}

/// The report without what only the coordinator's has (its own run id, the breakdown).
fn comparable(mut report: Value) -> Value {
    let object = report.as_object_mut().unwrap();
    object.remove("run_id");
    object.remove("workers");
    // Who produced each is its own command's (checked separately).
    object.remove("provenance");
    report
}

#[test]
fn three_local_workers_make_one_report_equal_to_merging_theirs() {
    let server = target();
    let out = tempfile::tempdir().unwrap();
    let profile = profile(out.path(), 3, 3, "");
    let output = shakedown()
        .args([
            "run",
            "health",
            "--target",
            &server.url,
            "--workers",
            "3",
            "--on",
            "local",
        ])
        .arg("--profile")
        .arg(&profile)
        .arg("--out")
        .arg(out.path().join("runs"))
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", all_output(&output));

    let run = only_run_dir(&out.path().join("runs"));
    let report = json(&run.join("report.json"));
    let workers = report["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 3, "{report:#}");
    for (index, worker) in workers.iter().enumerate() {
        assert_eq!(worker["index"], index);
        assert_eq!(worker["status"], "finished");
        assert!(worker["requests"].as_u64().unwrap() > 0, "{worker}");
    }
    let requests = |r: &Value| r["totals"]["requests"].as_u64().unwrap();
    let sum: u64 = workers
        .iter()
        .map(|w| w["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests(&report), sum, "totals are the sum of the workers'");
    assert!(server.requests.load(Ordering::SeqCst) >= sum);
    assert_eq!(report["profile"]["merged_workers"], 3);

    // Each worker also wrote its own report; merging them gives the coordinator's report.
    let mut own: Vec<(u64, PathBuf)> = std::fs::read_dir(run.join("workers"))
        .unwrap()
        .map(|e| e.unwrap().path().join("report.json"))
        .map(|path| {
            (
                json(&path)["profile"]["worker"]["index"].as_u64().unwrap(),
                path,
            )
        })
        .collect();
    own.sort();
    assert_eq!(own.len(), 3);
    let merged_dir = out.path().join("merged");
    let merge = shakedown()
        .args(["report", "merge", "--out"])
        .arg(&merged_dir)
        .args(own.iter().map(|(_, path)| path))
        .output()
        .unwrap();
    assert_eq!(code(&merge), 0, "{}", all_output(&merge));
    let merged = json(&merged_dir.join("report.json"));
    assert_eq!(
        comparable(report.clone()),
        comparable(merged.clone()),
        "the live-merged report is the merge of the workers' own reports: same totals, \
         percentiles of the union, time series, thresholds"
    );
    let command = report["provenance"]["command_line"].as_str().unwrap();
    assert!(command.starts_with("shakedown run health "), "{command}");
    let read: Vec<&Value> = merged["provenance"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        read.len(),
        3,
        "report merge digests the three reports it read"
    );
    assert!(
        read.iter()
            .all(|f| f["role"] == "report" && f["sha256"].is_string())
    );
    // Each worker's own report measured its process's CPU; the merge keeps the busiest.
    assert!(
        merged["provenance"]["generator"]["cpu_seconds"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let union = report["totals"]["latency"]["p95_ms"].as_f64().unwrap();
    assert!(union > 0.0);
}

/// Starts `run ... --on manual` and returns it with the URL its workers must join.
fn manual_coordinator(args: &[&str], out: &Path) -> (Child, String) {
    let mut coordinator = shakedown()
        .args(args)
        .args(["--on", "manual"])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(coordinator.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the coordinator says where workers join")
            .unwrap();
        if let Some((_, rest)) = line.split_once("--coordinator ") {
            break rest.trim_end_matches('`').to_string();
        }
    };
    // Keep draining what it says, so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (coordinator, url)
}

fn worker(url: &str, name: &str) -> Child {
    shakedown()
        .args(["worker", "--quiet", "--coordinator", url, "--name", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_worker_killed_mid_run_makes_the_report_partial_and_names_it() {
    let server = target();
    let out = tempfile::tempdir().unwrap();
    let profile = profile(out.path(), 8, 2, "");
    let profile = profile.to_str().unwrap();
    let runs = out.path().join("runs");
    let (mut coordinator, url) = manual_coordinator(
        &[
            "run",
            "health",
            "--target",
            &server.url,
            "--workers",
            "2",
            "--profile",
            profile,
        ],
        &runs,
    );
    let mut steady = worker(&url, "steady");
    let mut doomed = worker(&url, "doomed");
    // Let load flow and a couple of intervals reach the coordinator, then SIGKILL one worker.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.requests.load(Ordering::SeqCst) < 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(2500));
    doomed.kill().unwrap();
    doomed.wait().unwrap();

    let status = coordinator.wait().unwrap();
    assert_eq!(status.code(), Some(1), "a partial run cannot pass");
    assert_eq!(steady.wait().unwrap().code(), Some(0));
    let report = json(&only_run_dir(&runs).join("report.json"));
    assert_eq!(report["partial"], true);
    assert_eq!(report["verdict"], "fail");
    let reason = report["partial_reason"].as_str().unwrap();
    assert!(reason.contains("doomed"), "{reason}");
    let workers = report["workers"].as_array().unwrap();
    let doomed = workers.iter().find(|w| w["name"] == "doomed").unwrap();
    let steady = workers.iter().find(|w| w["name"] == "steady").unwrap();
    assert_eq!(doomed["status"], "disconnected", "{doomed}");
    assert_eq!(steady["status"], "finished", "{steady}");
    assert!(
        doomed["requests"].as_u64().unwrap() > 0,
        "its data up to its last interval is kept: {doomed}"
    );
    assert_eq!(
        report["totals"]["requests"].as_u64().unwrap(),
        doomed["requests"].as_u64().unwrap() + steady["requests"].as_u64().unwrap()
    );
}

#[test]
fn workers_that_never_join_end_the_run_with_exit_3() {
    let server = target();
    let out = tempfile::tempdir().unwrap();
    let profile = profile(out.path(), 2, 2, "");
    let profile = profile.to_str().unwrap();
    let (mut coordinator, url) = manual_coordinator(
        &[
            "run",
            "health",
            "--target",
            &server.url,
            "--workers",
            "2",
            "--profile",
            profile,
            "--join-timeout",
            "2s",
        ],
        &out.path().join("runs"),
    );
    let mut lonely = worker(&url, "lonely");
    let status = coordinator.wait().unwrap();
    let _ = lonely.kill();
    let _ = lonely.wait();
    assert_eq!(status.code(), Some(3));
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        1,
        "only the probe: no load without everyone"
    );
    assert!(!out.path().join("runs").exists(), "no report without a run");
}

#[test]
fn an_abort_on_fail_threshold_stops_every_worker_and_fails_the_run() {
    let server = target();
    let out = tempfile::tempdir().unwrap();
    let profile = profile(
        out.path(),
        60,
        2,
        "thresholds:\n  - { threshold: \"p95<100ms\", abort_on_fail: true, delay_abort_eval: 1s }\n",
    );
    let slow = server.slow.clone();
    let requests = server.requests.clone();
    // Turn the server slow once load flows.
    std::thread::spawn(move || {
        while requests.load(Ordering::SeqCst) < 50 {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_secs(2));
        slow.store(true, Ordering::SeqCst);
    });
    let output = shakedown()
        .args([
            "run",
            "health",
            "--target",
            &server.url,
            "--workers",
            "2",
            "--on",
            "local",
        ])
        .arg("--profile")
        .arg(&profile)
        .arg("--out")
        .arg(out.path().join("runs"))
        .output()
        .unwrap();
    assert_eq!(code(&output), 1, "{}", all_output(&output));
    let run = only_run_dir(&out.path().join("runs"));
    let report = json(&run.join("report.json"));
    assert_eq!(report["partial"], true);
    let reason = report["partial_reason"].as_str().unwrap();
    assert!(
        reason.contains("p95<100ms") && reason.contains("abort_on_fail"),
        "{reason}"
    );
    // The abort names when it fired; every worker's load ended within 2 s of it.
    let fired: f64 = reason
        .split("after ")
        .nth(1)
        .and_then(|rest| rest.split(" s").next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no abort time in {reason}"));
    assert!(fired < 60.0);
    for entry in std::fs::read_dir(run.join("workers")).unwrap() {
        let own = json(&entry.unwrap().path().join("report.json"));
        let lasted = own["actual_duration_s"].as_f64().unwrap();
        assert!(
            lasted <= fired + 2.0,
            "a worker ran {lasted} s; the abort fired at {fired} s"
        );
        assert!(
            own["partial_reason"]
                .as_str()
                .unwrap()
                .contains("stopped by the coordinator"),
            "{own}"
        );
    }
}

/// A `/health` that answers 503 to every third request, so errors have a kind to count.
fn failing_target() -> String {
    let requests = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().fallback(move || {
        let n = requests.fetch_add(1, Ordering::SeqCst);
        async move {
            let status = if n % 3 == 2 {
                axum::http::StatusCode::SERVICE_UNAVAILABLE
            } else {
                axum::http::StatusCode::OK
            };
            (status, axum::Json(serde_json::json!({"status": "healthy"})))
        }
    });
    common::serve_in_background(app)
}

/// A port nobody listens on right now (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET http://ADDRESS/metrics`: the body, or `None` when nothing answers with 200.
fn scrape(address: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// The value of one series (`name{labels}` exactly as exposed) in an exposition.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_coordinator_serves_its_workers_live_metrics_summed_and_they_equal_its_report() {
    let target = failing_target();
    let out = tempfile::tempdir().unwrap();
    // 2 workers share 4 users for 1 + 3 s.
    let profile = profile(out.path(), 3, 4, "");
    let address = format!("127.0.0.1:{}", free_port());
    let mut coordinator = shakedown()
        .args(["run", "health", "--target", &target])
        .args(["--workers", "2", "--on", "local"])
        .args(["--metrics-listen", &address, "--metrics-linger", "3s"])
        .arg("--profile")
        .arg(&profile)
        .arg("--out")
        .arg(out.path().join("runs"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Scrape like a fast Prometheus until the coordinator is gone; the last scrape falls in the
    // linger, after the workers' last intervals.
    let mut last = None;
    let mut most_users: f64 = 0.0;
    while coordinator.try_wait().unwrap().is_none() {
        if let Some(text) = scrape(&address) {
            most_users = most_users.max(sample(&text, "shakedown_active_users").unwrap());
            last = Some(text);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = coordinator.wait_with_output().unwrap();
    assert!(matches!(code(&output), 0 | 1), "{}", all_output(&output));
    assert!(
        all_output(&output).contains(&format!("metrics: http://{address}/metrics")),
        "{}",
        all_output(&output)
    );
    let last = last.expect("the coordinator served its metrics");
    let report = json(&only_run_dir(&out.path().join("runs")).join("report.json"));

    let transactions = report["transactions"].as_array().unwrap();
    assert!(!transactions.is_empty());
    for transaction in transactions {
        let name = transaction["name"].as_str().unwrap();
        let requests = transaction["requests"].as_f64().unwrap();
        let errors = transaction["errors"].as_f64().unwrap();
        assert!(requests > 0.0 && errors > 0.0, "{transaction}");
        let labels = format!("{{transaction=\"{name}\"}}");
        assert_eq!(
            sample(&last, &format!("shakedown_requests_total{labels}")),
            Some(requests),
            "{name}: requests_total equals the report's\n{last}"
        );
        assert_eq!(
            sample(
                &last,
                &format!("shakedown_request_duration_seconds_count{labels}")
            ),
            Some(requests),
            "{name}\n{last}"
        );
        let by_kind: f64 = ["connect", "timeout", "status", "check", "other"]
            .iter()
            .filter_map(|kind| {
                sample(
                    &last,
                    &format!("shakedown_errors_total{{transaction=\"{name}\",kind=\"{kind}\"}}"),
                )
            })
            .sum();
        assert_eq!(by_kind, errors, "{name}: errors by kind add up\n{last}");
    }
    // One transaction here, so its errors by kind are the run's.
    let name = transactions[0]["name"].as_str().unwrap();
    assert_eq!(
        sample(
            &last,
            &format!("shakedown_errors_total{{transaction=\"{name}\",kind=\"status\"}}")
        ),
        report["errors_by_kind"]["status"].as_f64(),
        "{last}"
    );
    // Users: both workers' together while they ran, none once they finished.
    assert_eq!(most_users, 4.0, "the sum of the workers' users");
    assert_eq!(sample(&last, "shakedown_active_users"), Some(0.0));
}
