//! `shakedown run --url`: ad-hoc URL mode through the real binary, against a local server on
//! 127.0.0.1 that records every request it receives (method, path, header, body).

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use common::cli::{all_output, code, json, only_run_dir, run};

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    header: Option<String>,
    body: String,
}

/// A server answering `200 {}` to everything and keeping what it was sent (except the harness's
/// `GET /health` pre-flight probe).
fn recording_server() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let kept = seen.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            if uri.path() != "/health" {
                kept.lock().unwrap().push(Seen {
                    method: method.to_string(),
                    path: uri.to_string(),
                    header: headers
                        .get("x-test")
                        .map(|v| v.to_str().unwrap().to_string()),
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
            }
            async { "{}" }
        },
    );
    let url = common::serve_in_background(app);
    (url, seen)
}

#[test]
fn a_fixed_rate_makes_the_planned_number_of_requests_as_given() {
    let (base, seen) = recording_server();
    let out = tempfile::tempdir().unwrap();
    let url = format!("{base}/api/items?page=2");
    let output = run(&[
        "run",
        "--url",
        &url,
        "--method",
        "post",
        "-H",
        "X-Test: {{ literal }}",
        "--body",
        r#"{"sku": "A-1"}"#,
        "--rate",
        "20",
        "--duration",
        "3s",
        "--quiet",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&output), 0, "{}", all_output(&output));

    let report = json(&only_run_dir(out.path()).join("report.json"));
    let seen = seen.lock().unwrap().clone();
    // 20 iterations/s for 3 s: 60 planned, each one request.
    assert_eq!(report["arrivals"]["scheduled_iterations"], 60, "{report}");
    assert_eq!(seen.len(), 60, "requests the server received");
    assert_eq!(report["totals"]["requests"], 60);
    assert_eq!(report["totals"]["errors"], 0);
    assert_eq!(report["scenario"], "url");
    assert_eq!(report["transactions"][0]["name"], "POST /api/items");
    for request in &seen {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/api/items?page=2");
        // Sent as typed: ad-hoc values are never templates.
        assert_eq!(request.header.as_deref(), Some("{{ literal }}"));
        assert_eq!(request.body, r#"{"sku": "A-1"}"#);
    }
}

#[test]
fn users_mode_sends_a_body_file_and_reports_status_errors() {
    let (base, seen) = recording_server();
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, "[1, 2, 3]").unwrap();
    let output = run(&[
        "run",
        "--url",
        &format!("{base}/ingest"),
        "--method",
        "PUT",
        "--body",
        &format!("@{}", body.display()),
        "--users",
        "2",
        "--duration",
        "1s",
        "--quiet",
        "--out",
        dir.path().join("runs").to_str().unwrap(),
    ]);
    assert_eq!(code(&output), 0, "{}", all_output(&output));
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|r| r.method == "PUT" && r.path == "/ingest" && r.body == "[1, 2, 3]"),
        "{seen:?}"
    );
    let report = json(&only_run_dir(&dir.path().join("runs")).join("report.json"));
    assert_eq!(report["totals"]["requests"], seen.len() as u64);
}

#[test]
fn bad_url_mode_flags_exit_2_before_any_request() {
    let (base, seen) = recording_server();
    let url = format!("{base}/x");
    let missing = "/nonexistent/shakedown-body.json";
    let body_file = format!("@{missing}");
    // A complete command, then one mistake each.
    let complete = ["--url", url.as_str(), "--users", "1", "--duration", "1s"];
    let with = |extra: &[&str]| -> Vec<String> {
        complete
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let ftp = with(&[])
        .into_iter()
        .map(|a| {
            if a == url {
                "ftp://127.0.0.1/x".to_string()
            } else {
                a
            }
        })
        .collect();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            complete[..4].iter().map(|s| s.to_string()).collect(),
            "--duration",
        ),
        (
            ["--url", url.as_str(), "--duration", "1s"]
                .map(String::from)
                .to_vec(),
            "--users",
        ),
        (with(&["-H", "no colon"]), "--header"),
        (with(&["--body", &body_file]), missing),
        (ftp, "http(s)"),
        (with(&["--target", &base]), "--target"),
    ];
    for (flags, says) in cases {
        let mut args = vec!["run".to_string()];
        args.extend(flags);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run(&args);
        let text = all_output(&output);
        assert_eq!(code(&output), 2, "{args:?}: {text}");
        assert!(
            text.contains(says),
            "{args:?} should mention {says}: {text}"
        );
    }
    assert!(seen.lock().unwrap().is_empty(), "nothing may be sent");
}
