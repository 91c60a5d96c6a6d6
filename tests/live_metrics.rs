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
    let url = url::Url::parse_with_params(
        &format!("{}/api/v1/query", prometheus.url()),
        [("query", promql)],
    )
    .unwrap();
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
    let result = body["data"]["result"].as_array()?;
    assert!(result.len() <= 1, "{promql}: one series expected: {body}");
    result.first()?["value"][1].as_str()?.parse().ok()
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
