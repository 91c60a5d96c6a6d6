//! Live metrics through the real binary: a real Prometheus scrapes `--metrics-listen` during a
//! `run` on the embedded stack, and what it stored agrees with the run's report; a bad address
//! or a port in use stops the command before any load (exit 2).

mod common;

use std::net::TcpListener;

use common::RecordingServer;
use common::cli::{code, json, only_run_dir, shakedown, stderr};
use serde_json::Value;
use slo::testing::prometheus::TestPrometheus;

/// A port nobody listens on right now (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The scalar or the single value of an instant query at the present.
fn query(prometheus: &TestPrometheus, promql: &str) -> Option<f64> {
    let result = query_at(prometheus, promql, None);
    assert!(
        result.len() <= 1,
        "{promql}: one series expected: {result:?}"
    );
    result.first()?["value"][1].as_str()?.parse().ok()
}

/// The series of an instant query at `time` (Unix seconds; default now); panics unless
/// Prometheus accepts the query.
fn query_at(prometheus: &TestPrometheus, promql: &str, time: Option<f64>) -> Vec<Value> {
    let mut params = vec![("query", promql.to_string())];
    if let Some(time) = time {
        params.push(("time", format!("{time:.3}")));
    }
    let url =
        url::Url::parse_with_params(&format!("{}/api/v1/query", prometheus.url()), params).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body: Value = runtime.block_on(async {
        reqwest::get(url)
            .await
            .expect("querying prometheus")
            .json()
            .await
            .expect("a JSON answer")
    });
    assert_eq!(body["status"], "success", "{promql}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Every query of the run dashboard, with its variables set to "all" and `rate_interval`.
fn dashboard_queries(rate_interval: &str) -> Vec<String> {
    let path = common::cli::repo("deploy/observability/dashboards/shakedown-run.json");
    let dashboard = json(std::path::Path::new(&path));
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|panel| panel["targets"].as_array())
        .flatten()
        .map(|target| {
            target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", rate_interval)
                .replace("$instance", ".*")
                .replace("$transaction", ".*")
        })
        .collect()
}

#[test]
fn prometheus_scrapes_a_run_live_and_agrees_with_its_report() {
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: shakedown\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    // Skips locally (fails in CI) when Prometheus is not installed.
    let Some(prometheus) = TestPrometheus::start_configured(&config, &[]) else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let address = format!("127.0.0.1:{port}");
    let output = shakedown()
        .args(["run", "browse", "--profile", "smoke", "--duration", "6s"])
        .args(["--metrics-listen", &address, "--metrics-linger", "3s"])
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("running shakedown");
    let exited = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        matches!(code(&output), 0 | 1),
        "the run ran: {}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains(&format!("metrics: http://{address}/metrics")),
        "{}",
        stderr(&output)
    );
    let report = json(&only_run_dir(out.path()).join("report.json"));
    let requests = report["totals"]["requests"].as_u64().unwrap();
    assert!(requests > 0, "{report}");

    // The endpoint is gone with the run; Prometheus keeps what it scraped. The last scrape
    // (during the linger) holds the final counters, which are the largest.
    let total =
        |promql: &str| query(&prometheus, promql).unwrap_or_else(|| panic!("{promql}: no data"));
    assert_eq!(
        total("sum(max_over_time(shakedown_requests_total[10m]))"),
        requests as f64,
        "requests_total agrees with the report"
    );
    assert_eq!(
        total("sum(max_over_time(shakedown_request_duration_seconds_count[10m]))"),
        requests as f64
    );
    let transactions = report["transactions"].as_array().unwrap();
    assert!(transactions.len() > 1, "browse has several transactions");
    for transaction in transactions {
        let name = transaction["name"].as_str().unwrap();
        let selector = format!("{{transaction=\"{name}\"}}");
        assert_eq!(
            total(&format!(
                "max_over_time(shakedown_requests_total{selector}[10m])"
            )),
            transaction["requests"].as_f64().unwrap(),
            "{name}"
        );
        assert_eq!(
            total(&format!(
                "max_over_time(shakedown_request_duration_seconds_bucket{{transaction=\"{name}\",le=\"+Inf\"}}[10m])"
            )),
            transaction["requests"].as_f64().unwrap(),
            "{name}"
        );
        let errors = query(
            &prometheus,
            &format!("sum(max_over_time(shakedown_errors_total{selector}[10m]))"),
        )
        .unwrap_or(0.0);
        assert_eq!(errors, transaction["errors"].as_f64().unwrap(), "{name}");
    }
    // Scraped while the load ran (users were active), and after it (none left).
    assert!(total("max_over_time(shakedown_active_users[10m])") >= 1.0);
    assert_eq!(total("min_over_time(shakedown_active_users[10m])"), 0.0);

    // The Grafana dashboard's queries work on these series: evaluated over the last seconds of
    // the load (it ended about a linger before the exit), each one that does not need errors
    // has data.
    let queries = dashboard_queries("10s");
    assert!(queries.len() >= 10, "{queries:?}");
    for promql in &queries {
        let series = query_at(&prometheus, promql, Some(exited - 4.0));
        if !promql.contains("shakedown_errors_total") {
            assert!(!series.is_empty(), "no data for the dashboard's {promql}");
        }
    }
}

#[test]
fn a_bad_address_or_a_port_in_use_stops_the_run_before_any_load() {
    let target = RecordingServer::start();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let in_use = taken.local_addr().unwrap().to_string();
    for (address, expected) in [
        ("localhost:9464", "not an address"),
        ("127.0.0.1", "not an address"),
        (in_use.as_str(), "cannot listen"),
    ] {
        let out = tempfile::tempdir().unwrap();
        let output = shakedown()
            .args([
                "run",
                "health",
                "--profile",
                "smoke",
                "--target",
                &target.url,
            ])
            .args(["--metrics-listen", address, "--out"])
            .arg(out.path())
            .output()
            .expect("running shakedown");
        assert_eq!(code(&output), 2, "{address}: {}", stderr(&output));
        let message = stderr(&output);
        assert!(
            message.contains("--metrics-listen") && message.contains(expected),
            "{address}: {message}"
        );
    }
    assert_eq!(target.requests(), 0, "no load was sent");
}

/// `shakedown run health` for 3 s against `target`, with `extra` flags; the output and
/// the report.
fn run_health(target: &str, extra: &[&str]) -> (std::process::Output, Value) {
    let out = tempfile::tempdir().unwrap();
    let output = shakedown()
        .args(["run", "health", "--profile", "smoke", "--duration", "3s"])
        .args(["--target", target])
        .args(extra)
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("running shakedown");
    assert!(
        matches!(code(&output), 0 | 1),
        "the run ran: {}",
        stderr(&output)
    );
    let report = json(&only_run_dir(out.path()).join("report.json"));
    (output, report)
}

#[test]
fn remote_write_lands_the_final_figures_in_prometheus() {
    let Some(prometheus) =
        TestPrometheus::start_configured("global: {}\n", &["--web.enable-remote-write-receiver"])
    else {
        return;
    };
    let target = RecordingServer::start();
    let url = format!("{}/api/v1/write", prometheus.url());
    let (output, report) = run_health(
        &target.url,
        &["--remote-write", &url, "--remote-write-interval", "1s"],
    );
    assert!(!stderr(&output).contains("warning"), "{}", stderr(&output));
    let requests = report["totals"]["requests"].as_f64().unwrap();
    assert!(requests > 0.0);
    // The last push carries the final counters, labelled with the job.
    assert_eq!(
        query(
            &prometheus,
            "shakedown_requests_total{job=\"shakedown\",transaction=\"health\"}"
        ),
        Some(requests)
    );
    assert_eq!(
        query(
            &prometheus,
            "shakedown_request_duration_seconds_count{transaction=\"health\"}"
        ),
        Some(requests)
    );
    assert_eq!(query(&prometheus, "shakedown_active_users"), Some(0.0));
}

#[test]
fn a_failing_remote_write_endpoint_does_not_stop_the_run() {
    let target = RecordingServer::start();
    // A port that refuses connections.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1/write", closed.local_addr().unwrap());
    drop(closed);
    let (output, report) = run_health(
        &target.url,
        &["--remote-write", &url, "--remote-write-interval", "1s"],
    );
    assert!(report["totals"]["requests"].as_u64().unwrap() > 0);
    assert_eq!(report["partial"], false);
    let message = stderr(&output);
    assert_eq!(
        message
            .matches(&format!("warning: remote write to {url} failed"))
            .count(),
        1,
        "warned once: {message}"
    );
    assert!(
        message.contains(&format!("pushes to {url} failed")),
        "the tally: {message}"
    );
}

#[test]
fn a_bad_remote_write_url_is_a_usage_error() {
    let target = RecordingServer::start();
    let out = tempfile::tempdir().unwrap();
    let output = shakedown()
        .args([
            "run",
            "health",
            "--profile",
            "smoke",
            "--target",
            &target.url,
        ])
        .args(["--remote-write", "127.0.0.1:9090/api/v1/write", "--out"])
        .arg(out.path())
        .output()
        .expect("running shakedown");
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--remote-write"),
        "{}",
        stderr(&output)
    );
    assert_eq!(target.requests(), 0, "no load was sent");
}

#[test]
fn a_capacity_search_pushes_every_step_and_they_add_up() {
    let Some(prometheus) =
        TestPrometheus::start_configured("global: {}\n", &["--web.enable-remote-write-receiver"])
    else {
        return;
    };
    // Healthy, so every step holds and the search climbs to --max.
    let target = common::serve_in_background(axum::Router::new().route(
        "/health",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "healthy"})) }),
    ));
    let out = tempfile::tempdir().unwrap();
    let url = format!("{}/api/v1/write", prometheus.url());
    let output = shakedown()
        .args(["capacity", "health", "--target", &target])
        .args(["--start", "1", "--step", "1", "--max", "2", "--hold", "1s"])
        .args(["--ramp", "0s", "--remote-write", &url])
        .args(["--remote-write-interval", "1s", "--out"])
        .arg(out.path())
        .output()
        .expect("running shakedown");
    assert!(matches!(code(&output), 0 | 1), "{}", stderr(&output));
    let summary = only_run_dir(out.path());
    let mut steps = 0;
    let mut requests = 0.0;
    for entry in std::fs::read_dir(&summary).unwrap() {
        let report = entry.unwrap().path().join("report.json");
        if report.is_file() {
            steps += 1;
            requests += json(&report)["totals"]["requests"].as_f64().unwrap();
        }
    }
    assert_eq!(
        steps,
        2,
        "two steps ran: {}\n{}",
        stderr(&output),
        std::fs::read_to_string(summary.join("capacity.md")).unwrap_or_default()
    );
    assert!(requests > 0.0);
    assert_eq!(
        query(&prometheus, "sum(shakedown_requests_total)"),
        Some(requests),
        "the pushed counters cover every step"
    );
}

#[test]
fn drill_and_capacity_refuse_a_bad_address_before_starting_anything() {
    let experiment = common::cli::repo("chaos/experiments/local-process-kill-order.yaml");
    for command in [
        vec!["drill", experiment.as_str()],
        vec!["capacity", "health", "--target", "http://127.0.0.1:9"],
    ] {
        let out = tempfile::tempdir().unwrap();
        let output = shakedown()
            .args(&command)
            .args(["--metrics-listen", "nowhere", "--out"])
            .arg(out.path())
            .output()
            .expect("running shakedown");
        assert_eq!(code(&output), 2, "{command:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("--metrics-listen \"nowhere\""),
            "{command:?}: {}",
            stderr(&output)
        );
        assert_eq!(
            std::fs::read_dir(out.path()).unwrap().count(),
            0,
            "{command:?}: nothing written"
        );
    }
}
