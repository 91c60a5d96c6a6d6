//! Many generators, one verdict, end to end: `shakedown run --workers N --on local|manual` as a
//! coordinator with real `shakedown worker` processes against a small local server. The merged
//! report must be what `report merge` makes of the workers' own reports; a worker that dies
//! leaves a partial report naming it; workers that never join end the run with exit 3; an
//! `abort_on_fail` threshold stops everyone.

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
        comparable(merged),
        "the live-merged report is the merge of the workers' own reports: same totals, \
         percentiles of the union, time series, thresholds"
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
