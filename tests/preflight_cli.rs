//! Pre-flight through the real binary: what a run or a drill needs is checked before the first
//! request, so a missing Prometheus, an unreachable one, a query it refuses or a missing
//! kubeconfig ends the command at once with exit 2 or 3 — and a recording target proves that
//! nothing was sent to it.

mod common;

use std::path::Path;
use std::process::Output;

use common::RecordingServer;
use common::cli::{run as shakedown, stderr};

fn slo_file(dir: &Path, query: &str) -> String {
    let path = dir.join("slo.yaml");
    std::fs::write(
        &path,
        format!(
            r#"apiVersion: shakedown/v1
kind: SLOSet
metadata:
  name: preflight
slos:
  - name: gateway-p95
    sli:
      latency:
        quantile: 0.95
        selector: service="api-gateway"
    objective: {{ lt: 500ms }}
  - name: custom
    sli:
      promql:
        query: '{query}'
    objective: {{ lt: 1 }}
"#
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

fn run_with_slo(target: &RecordingServer, slo: &str, extra: &[&str]) -> Output {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "run",
        "health",
        "--target",
        &target.url,
        "--profile",
        "smoke",
        "--duration",
        "5s",
        "--slo",
        slo,
        "--out",
        out.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    shakedown(&args)
}

#[test]
fn an_slo_file_without_its_prometheus_exits_2_before_any_request() {
    let target = RecordingServer::start();
    let dir = tempfile::tempdir().unwrap();
    let slo = slo_file(dir.path(), "vector(0)");
    let output = run_with_slo(&target, &slo, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("needs a prometheus source"),
        "{}",
        stderr(&output)
    );
    assert_eq!(target.requests(), 0, "nothing reached the target");
}

#[test]
fn an_unreachable_prometheus_exits_3_before_any_request() {
    let target = RecordingServer::start();
    let dir = tempfile::tempdir().unwrap();
    let slo = slo_file(dir.path(), "vector(0)");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}");
    let output = run_with_slo(&target, &slo, &["--prometheus-url", &url]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("does not answer"),
        "{}",
        stderr(&output)
    );
    assert_eq!(target.requests(), 0, "nothing reached the target");
}

#[test]
fn a_query_prometheus_refuses_exits_2_before_any_request() {
    // `start` fails the test in CI when Prometheus is missing (slo::testing::missing_tool).
    let Some(prometheus) = slo::testing::prometheus::TestPrometheus::start("# EOF\n") else {
        return;
    };
    let target = RecordingServer::start();
    let dir = tempfile::tempdir().unwrap();
    let slo = slo_file(dir.path(), "sum(rate(http_requests_total[5m]) by");
    let output = run_with_slo(&target, &slo, &["--prometheus-url", prometheus.url()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("SLO custom"), "{text}");
    assert!(text.contains("refuses the query"), "{text}");
    assert!(
        !text.contains("SLO gateway-p95"),
        "a good query passes: {text}"
    );
    assert_eq!(target.requests(), 0, "nothing reached the target");
}

#[test]
fn a_kube_drill_without_a_kubeconfig_exits_3_before_any_request() {
    let target = RecordingServer::start();
    let experiment =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("chaos/experiments/pod-kill-order.yaml");
    let out = tempfile::tempdir().unwrap();
    let output = shakedown(&[
        "drill",
        experiment.to_str().unwrap(),
        "--target",
        &target.url,
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("kubeconfig"),
        "{}",
        stderr(&output)
    );
    assert_eq!(target.requests(), 0, "no load was sent");
}

#[test]
fn a_target_without_a_scheme_gets_the_fix_and_nothing_starts() {
    let output = shakedown(&["run", "health", "--target", "127.0.0.1:8080"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("did you mean http://127.0.0.1:8080?"),
        "{text}"
    );
    assert!(!text.contains("running"), "no run started: {text}");
}

#[test]
fn an_unknown_scenario_is_refused_before_the_banner() {
    let target = RecordingServer::start();
    let output = shakedown(&["run", "chekout", "--target", &target.url]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("unknown scenario \"chekout\""), "{text}");
    assert!(!text.contains("running chekout"), "{text}");
    assert_eq!(target.requests(), 0);
}
