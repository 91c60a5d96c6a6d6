//! `shakedown capacity` through the real binary, against a local server whose latency grows with
//! concurrency (one request at a time, 10 ms each): with a p95 < 25 ms threshold one user holds
//! and four users (≈ 40 ms each) break it, so the answer is known before the search runs.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cli::{json, only_run_dir, shakedown};
use serde_json::Value;

/// A one-request-at-a-time HTTP server on 127.0.0.1: each request holds a global lock for 10 ms.
fn serialized_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let lock = Arc::new(Mutex::new(()));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let lock = lock.clone();
            std::thread::spawn(move || serve(stream, &lock));
        }
    });
    url
}

fn serve(stream: TcpStream, lock: &Mutex<()>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut content_length = 0usize;
        let mut line = String::new();
        // Request line and headers, until the blank line.
        let mut first = true;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" && !first {
                break;
            }
            first = false;
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        {
            let _one_at_a_time = lock.lock().unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
        let body = r#"{"status":"healthy"}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn capacity(args: &[&str]) -> Output {
    shakedown()
        .arg("capacity")
        .args(args)
        .output()
        .expect("running shakedown")
}

/// The one capacity directory under `out` (a capacity search makes no `latest` link).
fn summary_dir(out: &Path) -> PathBuf {
    only_run_dir(out)
}

fn search(out: &Path, extra: &[&str]) -> (Output, Value) {
    let target = serialized_server();
    let profile = out.join("thresholds.yaml");
    std::fs::write(
        &profile,
        "name: tight\nclosed:\n  stages:\n    - { duration: 1s, users: 1 }\nthresholds:\n  - p95<25ms\n",
    )
    .unwrap();
    let runs = out.join("runs");
    let mut args = vec![
        "health",
        "--target",
        &target,
        "--start",
        "1",
        "--step",
        "3",
        "--max",
        "10",
        "--hold",
        "3s",
        "--ramp",
        "0s",
        "--profile",
        profile.to_str().unwrap(),
        "--out",
        runs.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = capacity(&args);
    let dir = summary_dir(&runs);
    let summary = json(&dir.join("capacity.json"));
    (output, summary)
}

#[test]
fn the_search_stops_at_the_first_step_that_breaks_and_reports_the_one_before() {
    let out = tempfile::tempdir().unwrap();
    let (output, summary) = search(out.path(), &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(summary["highest_holding"], 1, "{summary:#}");
    assert_eq!(summary["breaking_point"], 4, "{summary:#}");
    let steps = summary["steps"].as_array().unwrap();
    assert_eq!(
        steps.len(),
        2,
        "no step after the breaking point: {summary:#}"
    );
    assert_eq!(steps[0]["passed"], true);
    assert!(steps[0]["p95_ms"].as_f64().unwrap() < 25.0);
    assert_eq!(steps[1]["passed"], false);
    assert!(steps[1]["p95_ms"].as_f64().unwrap() >= 25.0);
    assert!(
        steps[1]["failure_reasons"][0]
            .as_str()
            .unwrap()
            .contains("p95<25ms"),
        "{summary:#}"
    );
    assert!(
        stdout.contains("Highest load that held: 1 users"),
        "{stdout}"
    );

    let dir = summary_dir(&out.path().join("runs"));
    for step in ["step-00001", "step-00004"] {
        let report: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(step).join("report.json")).unwrap(),
        )
        .unwrap();
        assert!(report["totals"]["requests"].as_u64().unwrap() > 0, "{step}");
    }
    assert!(!dir.join("step-00007").exists());
    assert!(dir.join("capacity.md").is_file());
}

#[test]
fn require_fails_the_search_when_too_little_load_held() {
    let out = tempfile::tempdir().unwrap();
    let (output, summary) = search(out.path(), &["--require", "4"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(summary["highest_holding"], 1);
}

#[test]
fn a_bad_plan_is_a_usage_error() {
    for args in [
        &["--start", "0", "--target", "http://127.0.0.1:9"][..],
        &[
            "--start",
            "5",
            "--max",
            "2",
            "--target",
            "http://127.0.0.1:9",
        ],
        &["--hold", "soon", "--target", "http://127.0.0.1:9"],
    ] {
        let output = capacity(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty());
    }
}

#[test]
fn an_unreachable_target_exits_3_and_still_writes_the_summary() {
    let out = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("http://127.0.0.1:{port}");
    let runs = out.path().join("runs");
    let output = capacity(&[
        "health",
        "--target",
        &target,
        "--out",
        runs.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(3));
    let dir = summary_dir(&runs);
    let summary = json(&dir.join("capacity.json"));
    assert!(
        summary["interrupted"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{summary:#}"
    );
    assert!(summary["highest_holding"].is_null());
    assert!(dir.join("step-00010").join("report.json").is_file());
}
