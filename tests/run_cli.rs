//! `shakedown run` through the real binary: exit codes, the report directory and its numbers,
//! partial reports (unreachable target, Ctrl-C) and `--slo` gating on the embedded stack's own
//! Prometheus.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::cli::{closed_port, code, json, only_run_dir, prometheus_installed, shakedown, stderr};
use serde_json::Value;

/// `shakedown run ARGS`.
fn run(args: &[&str]) -> Output {
    shakedown()
        .arg("run")
        .args(args)
        .output()
        .expect("running shakedown")
}

/// The one run directory under `out`, which `out/latest` points at.
fn run_dir(out: &Path) -> PathBuf {
    let dir = only_run_dir(out);
    assert_eq!(
        std::fs::canonicalize(out.join("latest")).unwrap(),
        std::fs::canonicalize(&dir).unwrap(),
        "latest points at the run"
    );
    dir
}

fn report(dir: &Path) -> Value {
    json(&dir.join("report.json"))
}

#[test]
fn an_unreachable_target_exits_3_and_still_writes_a_partial_report() {
    let out = tempfile::tempdir().unwrap();
    let target = format!("http://127.0.0.1:{}", closed_port());
    let output = run(&[
        "smoke",
        "--target",
        &target,
        "--profile",
        "smoke",
        "--out",
        out.path().to_str().unwrap(),
    ]);

    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("unreachable"),
        "{}",
        stderr(&output)
    );
    let dir = run_dir(out.path());
    for file in ["report.json", "report.md", "report.html", "junit.xml"] {
        assert!(dir.join(file).is_file(), "{file} written");
    }
    let report = report(&dir);
    assert_eq!(report["partial"], true);
    assert!(
        report["partial_reason"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["totals"]["requests"], 0);
}

#[test]
fn a_bad_profile_file_exits_2_naming_file_line_and_field() {
    let out = tempfile::tempdir().unwrap();
    let profile = out.path().join("broken.yaml");
    std::fs::write(
        &profile,
        "name: broken\nclosed:\n  stages:\n    - { duration: 10s, users: 2 }\n    - { duration: soon, users: 2 }\n",
    )
    .unwrap();
    let output = run(&[
        "--target",
        "http://127.0.0.1:9",
        "--profile",
        profile.to_str().unwrap(),
        "--out",
        out.path().join("runs").to_str().unwrap(),
    ]);

    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("broken.yaml"), "names the file: {message}");
    assert!(
        message.contains("broken.yaml:5:"),
        "names the line: {message}"
    );
    assert!(message.contains("duration"), "names the field: {message}");
    assert!(
        !out.path().join("runs").exists(),
        "nothing ran, nothing written"
    );
}

#[test]
fn usage_mistakes_exit_2() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path().to_str().unwrap();
    for args in [
        &[
            "no-such-scenario",
            "--target",
            "http://127.0.0.1:9",
            "--out",
            out,
        ][..],
        &[
            "--target",
            "ftp://127.0.0.1:9",
            "--profile",
            "smoke",
            "--out",
            out,
        ],
        &["--profile", "no-such-profile", "--out", out],
        &["--scale", "0", "--out", out],
        &["--duration", "forever", "--out", out],
        &[
            "--slo",
            "/no/such/slo.yaml",
            "--target",
            "http://127.0.0.1:9",
        ],
        &[
            "--target",
            "http://127.0.0.1:9",
            "--workers",
            "2",
            "--on",
            "local",
            "--metrics-listen",
            "127.0.0.1",
            "--out",
            out,
        ],
    ] {
        let output = run(args);
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr(&output));
        assert!(!stderr(&output).is_empty(), "{args:?} says why");
    }
}

/// A short run on the embedded stack with an SLO set that passes on the stack's p95 and one that
/// cannot pass: the gate must fail (exit 1) for the right SLO, and the report's numbers must agree
/// with each other across report.json and junit.xml.
#[test]
fn a_run_on_the_embedded_stack_is_gated_on_its_prometheus_p95() {
    let out = tempfile::tempdir().unwrap();
    let slo = out.path().join("slo.yaml");
    let prometheus = prometheus_installed();
    let (source, sli) = if prometheus {
        (
            "prometheus",
            "latency: {quantile: 0.95, selector: 'service=\"api-gateway\", route!~\"/health|/ready|/metrics\"'}",
        )
    } else {
        slo::testing::missing_tool(
            "prometheus",
            "gating on the client p95 only; scripts/setup.sh installs it",
        );
        ("client", "client: {measure: latency, quantile: 0.95}")
    };
    std::fs::write(
        &slo,
        format!(
            "apiVersion: shakedown/v1\nkind: SLOSet\nmetadata: {{name: t}}\nslos:\n  - name: p95-holds\n    sli: {{{sli}}}\n    objective: {{lt: 500ms}}\n    source: {source}\n  - name: p95-impossible\n    sli: {{{sli}}}\n    objective: {{lt: 1us}}\n    source: {source}\n"
        ),
    )
    .unwrap();
    let runs = out.path().join("runs");
    let output = run(&[
        "browse",
        "--profile",
        "smoke",
        "--duration",
        "8s",
        "--slo",
        slo.to_str().unwrap(),
        "--out",
        runs.to_str().unwrap(),
    ]);
    assert_eq!(
        code(&output),
        1,
        "the impossible SLO fails: {}",
        stderr(&output)
    );

    let dir = run_dir(&runs);
    let report = report(&dir);
    assert_eq!(report["partial"], false);
    assert_eq!(report["verdict"], "fail");
    let requests = report["totals"]["requests"].as_u64().unwrap();
    assert!(requests > 0);
    let series_sum: u64 = report["timeseries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, series_sum, "the time series adds up to the total");
    let transactions_sum: u64 = report["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(
        requests, transactions_sum,
        "transactions add up to the total"
    );

    let slos = report["slos"].as_array().unwrap();
    let verdict = |name: &str| {
        slos.iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {slos:?}"))
    };
    let holds = verdict("p95-holds");
    assert_eq!(holds["status"], "pass", "{holds}");
    let measured = holds["measured"].as_f64().unwrap();
    assert_eq!(holds["unit"], "ms");
    assert!(measured > 0.0 && measured < 500.0, "p95 {measured} ms");
    assert_eq!(verdict("p95-impossible")["status"], "fail");
    if prometheus {
        assert!(
            holds["query"]
                .as_str()
                .unwrap()
                .contains("histogram_quantile(0.95"),
            "{holds}"
        );
    }

    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let thresholds = report["thresholds"].as_array().unwrap().len();
    assert_eq!(
        junit.matches("<testcase").count(),
        thresholds + slos.len(),
        "one case per threshold and SLO: {junit}"
    );
    assert_eq!(junit.matches("<failure").count(), 1, "{junit}");
    assert!(junit.contains("p95-impossible"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("report: {}", dir.join("report.html").display())));
    assert!(stdout.contains("verdict: FAIL"), "{stdout}");
    assert!(
        !stdout.contains("users launched"),
        "stdout carries results only: {stdout}"
    );
}

#[test]
fn ctrl_c_writes_a_partial_report() {
    let out = tempfile::tempdir().unwrap();
    let runs = out.path().join("runs");
    let mut child = shakedown()
        .args([
            "run",
            "health",
            "--profile",
            "smoke",
            "--duration",
            "60s",
            "--out",
        ])
        .arg(&runs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the load is running (Goose installs its handler as the run starts).
    let stderr_pipe = child.stderr.take().unwrap();
    let (said, heard) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr_pipe).lines() {
            let line = line.unwrap_or_default();
            if line.starts_with("running ") {
                let _ = said.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    heard
        .recv_timeout(Duration::from_secs(60))
        .expect("the run starts within 60 s");
    std::thread::sleep(Duration::from_secs(3));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let output = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("shakedown did not stop within 30 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    let said = reader.join().unwrap();
    assert_eq!(code(&output), 1, "a partial run never passes: {said}");
    let report = report(&run_dir(&runs));
    assert_eq!(report["partial"], true);
    assert_eq!(report["partial_reason"], "interrupted (Ctrl-C or SIGTERM)");
    assert!(report["totals"]["requests"].as_u64().unwrap() > 0);
    assert!(report["actual_duration_s"].as_f64().unwrap() < 50.0);
}

/// The embedded stack with Prometheus and 40 ms added to every product-service call: the report
/// sets the client's latency of the product-detail transaction next to the gateway's for
/// `GET /api/v1/products/{id}`. The server's p50 carries the fault; the client's p95 is the
/// server's plus the way to it, so the gap is the difference and cannot be far below zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_sets_client_latency_next_to_the_servers_per_route() {
    if !prometheus_installed() {
        slo::testing::missing_tool(
            "prometheus",
            "the server side comes from it; scripts/setup.sh installs it",
        );
        return;
    }
    let stack = common::start_stack(true).await;
    common::inject_fault(&stack, "product", serde_json::json!({"latency_ms": 40})).await;
    let out = tempfile::tempdir().unwrap();
    let scenario = out.path().join("detail.yaml");
    std::fs::write(
        &scenario,
        "apiVersion: shakedown/v1\nkind: Scenario\nname: detail\nsteps:\n  - name: product_detail\n    url: \"/api/v1/products/{{ random_int(1, 100) }}\"\n    checks: {status: 200}\n  - name: unmatched_health\n    url: /health\n",
    )
    .unwrap();
    let runs = out.path().join("runs");
    let args: Vec<String> = [
        scenario.to_str().unwrap(),
        "--target",
        stack.gateway_url(),
        "--prometheus-url",
        stack.prometheus_url().unwrap(),
        "--users",
        "4",
        "--duration",
        "5s",
        "--out",
        runs.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let output = tokio::task::spawn_blocking(move || {
        run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    stack.stop().await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));

    let dir = run_dir(&runs);
    let report = report(&dir);
    let side = &report["server_side"];
    let row = side["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["transaction"] == "product_detail")
        .unwrap_or_else(|| panic!("{side:#}\n{}", stderr(&output)));
    assert_eq!(row["method"], "GET");
    assert_eq!(row["route"], "/api/v1/products/{id}");
    // Interpolated within the 25–50 ms bucket that holds the 40 ms fault (a gateway without
    // it answers in a few ms, in the buckets below 10 ms).
    let server_p50 = row["server"]["p50_ms"].as_f64().unwrap();
    assert!(
        server_p50 > 25.0,
        "the fault is in the server's time: {row:#}"
    );
    assert!(row["client"]["p50_ms"].as_f64().unwrap() >= 40.0, "{row:#}");
    let (client_p95, server_p95) = (
        row["client"]["p95_ms"].as_f64().unwrap(),
        row["server"]["p95_ms"].as_f64().unwrap(),
    );
    let gap = row["gap_p95_ms"].as_f64().unwrap();
    assert!((gap - (client_p95 - server_p95)).abs() < 1e-6, "{row:#}");
    // The server's p95 is interpolated within a histogram bucket (25–50 ms, 50–100 ms), so it
    // can read above the client's; never by more than the bucket.
    assert!(gap > -50.0, "{row:#}");
    assert!(
        side["unmatched"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "unmatched_health"),
        "probes are not routes of the load: {side:#}"
    );
    let markdown = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        markdown.contains("### Client and server latency"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| product_detail | `GET /api/v1/products/{id}` |"),
        "{markdown}"
    );
}
