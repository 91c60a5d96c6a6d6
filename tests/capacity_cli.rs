//! `shakedown capacity` through the real binary, against local servers whose behaviour under load
//! is known before the search runs: one that serves one request at a time in 10 ms (capacity
//! 100 req/s: with a p95 < 25 ms threshold one user holds and four users, ≈ 40 ms each, break it;
//! the rate search must find ≈ 100 req/s), and one whose service time follows the Universal
//! Scalability Law with known σ and κ (the fitted model must find them).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cli::{json, only_run_dir, shakedown};
use serde_json::Value;

/// A one-request-at-a-time HTTP server on 127.0.0.1: each request holds a global lock for 10 ms.
fn serialized_server() -> String {
    serialized_server_measured().0
}

/// The same, and how long the lock was held in all (µs) and how many times: the server's real
/// capacity on this machine, whose sleeps may run long under load.
fn serialized_server_measured() -> (String, Arc<Mutex<(u64, u64)>>) {
    let lock = Arc::new(Mutex::new((0u64, 0u64)));
    let held = lock.clone();
    let url = server(move |_| {
        let mut totals = lock.lock().unwrap();
        let started = Instant::now();
        // Sleep most of it and spin the last millisecond: a sleep alone runs long by a varying
        // amount, and a varying service time builds queues below the nominal capacity.
        let done = started + Duration::from_millis(10);
        std::thread::sleep(Duration::from_millis(9));
        while Instant::now() < done {
            std::hint::spin_loop();
        }
        totals.0 += started.elapsed().as_micros() as u64;
        totals.1 += 1;
    });
    (url, held)
}

/// An HTTP server on 127.0.0.1 answering every request `{"status":"healthy"}` after
/// `work(requests in flight, this one included)`.
fn server(work: impl Fn(usize) + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let work = Arc::new(work);
    let in_flight = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (work, in_flight) = (work.clone(), in_flight.clone());
            std::thread::spawn(move || serve(stream, &*work, &in_flight));
        }
    });
    url
}

fn serve(stream: TcpStream, work: &dyn Fn(usize), in_flight: &AtomicUsize) {
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
        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        work(now);
        in_flight.fetch_sub(1, Ordering::SeqCst);
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
    assert_eq!(summary["highest_holding"], 1.0, "{summary:#}");
    assert_eq!(summary["breaking_point"], 4.0, "{summary:#}");
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
    assert_eq!(summary["highest_holding"], 1.0);
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

#[test]
fn the_rate_search_finds_the_sustainable_rate_within_the_resolution() {
    let out = tempfile::tempdir().unwrap();
    let (target, held) = serialized_server_measured();
    let runs = out.path().join("runs");
    let output = capacity(&[
        "health",
        "--rate",
        "--target",
        &target,
        "--start",
        "20",
        "--max",
        "400",
        "--resolution",
        "5%",
        "--hold",
        "5s",
        "--ramp",
        "1s",
        "--out",
        runs.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    // 20 → 400 is 6 doublings at most (20, 40, …, 320, 400), then ⌈log2(1/5 %)⌉ = 5 halvings.
    assert!(stderr.contains("at most 11 steps"), "{stderr}");
    let dir = summary_dir(&runs);
    let summary = json(&dir.join("capacity.json"));
    let steps = summary["steps"].as_array().unwrap();
    assert!(steps.len() <= 11, "{summary:#}");
    assert_eq!(summary["dimension"], "rate");
    // 100 req/s nominally; the sleeps run long on a loaded machine, so the server's own measure.
    let (micros, requests) = *held.lock().unwrap();
    let capacity = 1e6 / (micros as f64 / requests as f64);
    let found = summary["highest_holding"].as_f64().unwrap();
    assert!(
        found <= capacity * 1.05 && found >= capacity / 1.05,
        "found {found} req/s, the server sustains {capacity:.1}: {summary:#}"
    );
    let broke = summary["breaking_point"].as_f64().unwrap();
    assert!((broke - found) / found <= 0.05 + 1e-9, "{summary:#}");
    // A step past the capacity fails for not keeping up, even inside the latency thresholds.
    assert!(
        steps.iter().any(|s| s["failure_reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("did not keep up"))),
        "{summary:#}"
    );
    for file in ["capacity.md", "capacity.html"] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    assert!(std::fs::read_dir(&dir).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("step-01-20rps")
    }));
}

#[test]
fn the_fitted_model_recovers_a_known_scalability_law() {
    // Service time (1 + σ(n−1) + κn(n−1)) / λ for n requests in flight: with N users and no
    // think time, X(N) = λN / (1 + σ(N−1) + κN(N−1)) exactly — the law with known parameters.
    let (lambda, sigma, kappa) = (50.0_f64, 0.1_f64, 0.01_f64);
    let target = server(move |n| {
        let n = n as f64;
        let seconds = (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0)) / lambda;
        std::thread::sleep(Duration::from_secs_f64(seconds));
    });
    let out = tempfile::tempdir().unwrap();
    let runs = out.path().join("runs");
    let output = capacity(&[
        "health",
        "--target",
        &target,
        "--start",
        "2",
        "--step",
        "2",
        "--max",
        "20",
        "--hold",
        "3s",
        "--ramp",
        "0s",
        "--out",
        runs.to_str().unwrap(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = json(&summary_dir(&runs).join("capacity.json"));
    let model = &summary["model"];
    let value = |name: &str| model[name]["value"].as_f64().unwrap();
    assert!(
        (value("sigma") - sigma).abs() / sigma <= 0.15,
        "σ {}: {model:#}",
        value("sigma")
    );
    assert!(
        (value("kappa") - kappa).abs() / kappa <= 0.15,
        "κ {}: {model:#}",
        value("kappa")
    );
    let measured_peak = summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["steady_rps"].as_f64())
        .fold(0.0, f64::max);
    let predicted = model["peak_throughput"].as_f64().unwrap();
    assert!(
        (predicted - measured_peak).abs() / measured_peak <= 0.10,
        "predicted {predicted:.1} req/s, measured {measured_peak:.1}: {model:#}"
    );
    let markdown = std::fs::read_to_string(summary_dir(&runs).join("capacity.md")).unwrap();
    assert!(markdown.contains("predicted peak"), "{markdown}");
}

/// The embedded stack with Prometheus, one service made a bottleneck: the product service serves
/// one request at a time with 20 ms added (a capacity of 50 requests/s) while the gateway in
/// front of it does not. Product details climb from 10 to 80 requests/s; the summary must name
/// product as the first service to saturate — not the gateway, which waits on it (its outbound
/// calls show it) and so saturates no earlier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_fault_on_one_service_names_it_first_to_saturate() {
    if !common::cli::prometheus_installed() {
        slo::testing::missing_tool(
            "prometheus",
            "per-service figures come from it; scripts/setup.sh installs it",
        );
        return;
    }
    let stack = common::start_stack(true).await;
    common::inject_fault(
        &stack,
        "product",
        serde_json::json!({"latency_ms": 20, "concurrency": 1}),
    )
    .await;
    // Prometheus has just started: the first step needs the services scraped already.
    let query = format!(
        "{}/api/v1/query?query=process_cpu_seconds_total%7Bservice%3D%22product%22%7D",
        stack.prometheus_url().unwrap()
    );
    let scraped = common::eventually(Duration::from_secs(30), || async {
        let body: Value = reqwest::get(&query).await.ok()?.json().await.ok()?;
        (!body["data"]["result"].as_array()?.is_empty()).then_some(())
    })
    .await;
    assert!(scraped.is_some(), "Prometheus never scraped product");

    let out = tempfile::tempdir().unwrap();
    let scenario = out.path().join("product-detail.yaml");
    std::fs::write(
        &scenario,
        "apiVersion: shakedown/v1\nkind: Scenario\nname: product-detail\nsteps:\n  - name: get_product\n    url: /api/v1/products/1\n    checks: {status: 200}\n",
    )
    .unwrap();
    let runs = out.path().join("runs");
    let args: Vec<String> = [
        scenario.to_str().unwrap(),
        "--target",
        stack.gateway_url(),
        "--prometheus-url",
        stack.prometheus_url().unwrap(),
        "--rate",
        "--start",
        "10",
        "--max",
        "80",
        "--resolution",
        "50%",
        "--hold",
        "4s",
        "--ramp",
        "1s",
        "--out",
        runs.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        capacity(&args)
    })
    .await
    .unwrap();
    stack.stop().await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "a verdict, not an error: {stderr}"
    );

    let summary = json(&summary_dir(&runs).join("capacity.json"));
    let steps = summary["steps"].as_array().unwrap();
    for step in steps {
        let services = step["services"]
            .as_array()
            .unwrap_or_else(|| panic!("per-service figures in {step:#}\n{stderr}"));
        let figures = |name: &str| {
            services
                .iter()
                .find(|s| s["name"] == name)
                .unwrap_or_else(|| panic!("{name} in {services:#?}"))
        };
        for name in ["api-gateway", "product"] {
            assert!(figures(name)["p95_ms"].as_f64().is_some(), "{step:#}");
            assert!(figures(name)["cpu_cores"].as_f64().is_some(), "{step:#}");
        }
    }
    let markdown = std::fs::read_to_string(summary_dir(&runs).join("capacity.md")).unwrap();
    let first = &summary["saturation"][0];
    assert_eq!(first["service"], "product", "{markdown}");
    let gateway = summary["saturation"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "api-gateway");
    if let Some(gateway) = gateway {
        assert!(
            gateway["load"].as_f64() >= first["load"].as_f64(),
            "{:#}",
            summary["saturation"]
        );
    }
    assert!(
        markdown.contains("**product** saturated first"),
        "{markdown}"
    );
}

/// Per-service figures are asked for before any load: a Prometheus that does not answer is exit
/// 3 and a label that cannot be one is exit 2, both before the first step (no step directory).
#[test]
fn per_service_figures_are_checked_before_the_first_step() {
    let out = tempfile::tempdir().unwrap();
    let target = serialized_server();
    let prometheus = format!("http://127.0.0.1:{}", common::cli::closed_port());
    let run = |extra: &[&str]| {
        let runs = out.path().join("runs");
        let mut args = vec![
            "health",
            "--target",
            &target,
            "--prometheus-url",
            &prometheus,
            "--out",
            runs.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        capacity(&args)
    };
    let unreachable = run(&[]);
    let stderr = common::cli::stderr(&unreachable);
    assert_eq!(common::cli::code(&unreachable), 3, "{stderr}");
    assert!(stderr.contains("per-service figures"), "{stderr}");
    assert!(stderr.contains(&prometheus), "{stderr}");

    let bad_label = run(&["--service-label", "app.kubernetes.io/name"]);
    let stderr = common::cli::stderr(&bad_label);
    assert_eq!(common::cli::code(&bad_label), 2, "{stderr}");
    assert!(stderr.contains("--service-label"), "{stderr}");
    assert!(!out.path().join("runs").exists(), "no step ran");
}
