//! On-call drills on the embedded stack, through the real binary: load, the experiment inside
//! it, the steady state, recovery times and the order accounting.

mod common;

use std::path::{Path, PathBuf};

use common::cli::{prometheus_installed, shakedown};
use serde_json::Value;

fn experiment(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("chaos/experiments")
        .join(name)
}

/// One drill at a time: each starts a whole stack (14 services, Kafka, Prometheus) and loads
/// it, and recovery times measured on a starved 2-core machine would say nothing.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `shakedown drill` and returns (exit code, stdout, the report).
fn drill(name: &str, extra: &[&str]) -> (i32, String, Value) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    let output = shakedown()
        .arg("drill")
        .arg(experiment(name))
        .args(["--out", out.path().to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}\n{stderr}");
    let report_dir = out.path().join("latest");
    assert!(
        report_dir.join("report.json").is_file(),
        "no report written (exit {:?})",
        output.status.code()
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(report_dir.join("report.json")).unwrap())
            .unwrap();
    let html = std::fs::read_to_string(report_dir.join("report.html")).unwrap();
    assert!(html.contains("chaos."), "journal markers on the charts");
    (output.status.code().unwrap(), stdout, report)
}

fn slo<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no verdict {name} in {}", report["slos"]))
}

fn journal<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["journal"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

fn recovery_seconds(event: &Value) -> f64 {
    let detail = event["detail"].as_str().unwrap();
    let after = detail.split("recovered in ").nth(1).expect(detail);
    after.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn process_kill_of_order_during_checkout_recovers_without_losing_orders() {
    // 10 users without think time: enough checkout traffic that the order service is busy
    // when it dies, still a small load for the 2-core machine.
    let (code, stdout, report) = drill("local-process-kill-order.yaml", &["--users", "10"]);
    assert_eq!(code, 0, "{stdout}");
    let kill = journal(&report, "chaos.process-kill");
    assert_eq!(kill.len(), 1);
    assert_eq!(kill[0]["outcome"], "ok");
    let recovery = recovery_seconds(kill[0]);
    assert!(
        recovery > 0.0 && recovery < 30.0,
        "recovered in {recovery} s"
    );
    assert_eq!(slo(&report, "orders-lost")["measured"], 0.0);
    assert_eq!(slo(&report, "order-events-lost")["measured"], 0.0);
    assert!(stdout.contains("lost: 0 orders, 0 events"), "{stdout}");
    assert_eq!(slo(&report, "before: gateway-errors")["status"], "pass");
    assert_eq!(slo(&report, "after: gateway-errors")["status"], "pass");

    // "During" is the kill through the recovery — not the calm before it.
    let during = journal(&report, "chaos.steady-state.during");
    assert_eq!(during.len(), 1, "{}", report["journal"]);
    let (from, to) = (time(&during[0]["at"]), time(&during[0]["ended_at"]));
    let killed = time(&kill[0]["at"]);
    // The journal prints the recovery rounded to 0.1 s: the true one is at most 0.05 s shorter.
    let recovered = killed + chrono::Duration::milliseconds(((recovery - 0.05) * 1000.0) as i64);
    assert!(
        from <= killed && to >= recovered,
        "during {from}..{to} must hold the kill at {killed} and the recovery at {recovered}"
    );
    assert!(
        (killed - from).num_milliseconds() < 500,
        "during starts at the kill, not at the method's start: {from} vs {killed}"
    );
    let after = journal(&report, "chaos.steady-state.after");
    assert!(
        time(&after[0]["at"]) >= to,
        "after starts when the recovery is over"
    );
    assert!(
        during[0]["detail"].as_str().unwrap().contains("window "),
        "the journal says the window: {}",
        during[0]
    );
    // What the client measured: the failed responses the kill caused (503 from the gateway)
    // lie in the seconds of the during window (plus one for responses still in flight).
    let started = time(&report["started_at"]);
    let mut in_during = 0;
    for slice in report["timeseries"].as_array().unwrap() {
        let errors = slice["errors_by_kind"]["status"].as_u64().unwrap();
        if errors == 0 {
            continue;
        }
        let begins = started + chrono::Duration::seconds(slice["second"].as_i64().unwrap());
        let ends = begins + chrono::Duration::seconds(1);
        assert!(
            ends > from && begins <= to + chrono::Duration::seconds(1),
            "{errors} failed responses in {begins}..{ends}, outside the during window {from}..{to}"
        );
        in_during += errors;
    }
    eprintln!("failed responses in the during window: {in_during}");
}

fn time(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("{value}")))
        .unwrap()
}

#[test]
fn two_of_three_brokers_down_then_consumers_catch_up_and_no_event_is_lost() {
    let (code, stdout, report) = drill("local-broker-failure.yaml", &[]);
    assert_eq!(code, 0, "{stdout}");
    let failure = journal(&report, "chaos.broker-failure");
    assert_eq!(failure.len(), 1);
    assert_eq!(failure[0]["outcome"], "ok");
    let detail = failure[0]["detail"].as_str().unwrap();
    assert!(detail.contains("broker 2, broker 3"), "{detail}");
    assert!(detail.contains("down for 10s"), "{detail}");
    assert!(recovery_seconds(failure[0]) < 60.0);
    for phase in ["before", "after"] {
        let lag = slo(&report, &format!("{phase}: notification-lag"));
        assert_eq!(lag["status"], "pass", "{lag}");
        assert_eq!(lag["unit"], "messages", "{lag}");
    }
    assert_eq!(slo(&report, "order-events-lost")["measured"], 0.0);
    assert_eq!(slo(&report, "orders-lost")["measured"], 0.0);
    assert_eq!(journal(&report, "chaos.brokers-up")[0]["outcome"], "ok");
}

#[test]
fn a_latency_fault_breaking_p95_halts_the_method_and_fails_the_drill() {
    if !prometheus_installed() {
        slo::testing::missing_tool("prometheus", "scripts/setup.sh installs it");
        return;
    }
    let (code, stdout, report) = drill("local-latency-fault.yaml", &[]);
    assert_eq!(code, 1, "{stdout}");
    let experiment = slo(&report, "experiment");
    assert_eq!(experiment["status"], "fail");
    assert!(
        experiment["message"]
            .as_str()
            .unwrap()
            .contains("halted: product-page-p95"),
        "{experiment}"
    );
    let faults = journal(&report, "chaos.faults");
    assert_eq!(faults.len(), 1);
    let detail = faults[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("cut short"),
        "the halt ends the 20 s fault early: {detail}"
    );
    let held = chrono::DateTime::parse_from_rfc3339(faults[0]["ended_at"].as_str().unwrap())
        .unwrap()
        - chrono::DateTime::parse_from_rfc3339(faults[0]["at"].as_str().unwrap()).unwrap();
    assert!(held.num_seconds() < 18, "fault held {held}");
    assert_eq!(journal(&report, "chaos.faults-clear")[0]["outcome"], "ok");
}

#[test]
fn a_dry_run_prints_the_plan_and_starts_nothing() {
    let output = shakedown()
        .args(["chaos", "run", "--dry-run"])
        .arg(experiment("local-latency-fault.yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(
        "PUT <admin URL of product>/admin/faults {\"error_ratio\":0.0,\"jitter_ms\":0,\"latency_ms\":800}"
    ), "{stdout}");
    assert!(
        stdout.contains("halt when `product-page-p95` fails"),
        "{stdout}"
    );
}

#[test]
fn a_malformed_experiment_exits_2_naming_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "apiVersion: shakedown/v1\nkind: Experiment\nmetadata: {name: bad}\ntarget: {local: {}}\nmethod:\n  - name: k\n    action: {process-kill: {service: nope}}\n",
    )
    .unwrap();
    let output = shakedown().args(["drill"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.yaml:7:"), "{stderr}");
    assert!(stderr.contains("unknown service `nope`"), "{stderr}");
}

/// `chaos run` without a kubeconfig: a dry run of the kube example still prints its exact requests
/// (its client refuses every request, so nothing can be sent).
fn chaos_run(args: &[&str], experiment: &Path) -> std::process::Output {
    shakedown()
        .args(["chaos", "run"])
        .args(args)
        .arg(experiment)
        .output()
        .unwrap()
}

#[test]
fn a_kube_dry_run_prints_the_requests_without_a_cluster() {
    let output = chaos_run(&["--dry-run"], &experiment("pod-kill-order.yaml"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(
            "GET /api/v1/namespaces/ecommerce/pods?labelSelector=app.kubernetes.io%2Fname%3Dorder"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("\"gracePeriodSeconds\":0"), "{stdout}");
}

#[test]
fn kube_system_and_namespaces_outside_the_allowlist_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let experiment_in = |namespace: &str, allowed: &str| {
        let path = dir.path().join(format!("{namespace}.yaml"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: shakedown/v1\nkind: Experiment\nmetadata: {{name: x}}\ntarget:\n  kube: {{namespace: {namespace}, allowed_namespaces: [{allowed}]}}\nmethod:\n  - name: k\n    action: {{pod-kill: {{selector: app=dns}}}}\n"
            ),
        )
        .unwrap();
        path
    };
    for (namespace, allowed) in [("kube-system", "kube-system"), ("payments", "ecommerce")] {
        for args in [&["--dry-run"][..], &[]] {
            let output = chaos_run(args, &experiment_in(namespace, allowed));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{namespace} {args:?}: {stderr}"
            );
            assert!(stderr.contains("refused"), "{stderr}");
        }
    }
}

#[test]
fn a_local_dry_run_refuses_what_the_real_run_refuses_for_the_stack_it_would_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all-brokers.yaml");
    std::fs::write(
        &path,
        "apiVersion: shakedown/v1\nkind: Experiment\nmetadata: {name: all-brokers}\ntarget: {local: {}}\nmethod:\n  - name: every broker\n    action: {broker-failure: {brokers: 3, duration: 10s}}\n",
    )
    .unwrap();
    // The default stack has 3 brokers: the real run refuses "3 of 3", so the dry run does,
    // through `chaos run` and `drill` alike, without starting anything.
    for command in [&["chaos", "run"][..], &["drill"]] {
        let output = shakedown()
            .args(command)
            .arg("--dry-run")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(stderr.contains("3 of 3 brokers"), "{stderr}");
        assert!(stderr.contains("method[0] `every broker`"), "{stderr}");
        assert!(stderr.contains("--brokers 3"), "{stderr}");
    }
    // With `--brokers 4` the same experiment leaves one up: planned, with its brokers named.
    let output = chaos_run(&["--dry-run", "--brokers", "4"], &path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("take down mock Kafka brokers [2, 3, 4]"),
        "{stdout}"
    );
    assert!(stdout.contains("safety checks passed"), "{stdout}");
    assert!(stdout.contains("deferred to the live target"), "{stdout}");
}

#[test]
fn a_kube_dry_run_names_the_checks_deferred_to_the_cluster() {
    let output = chaos_run(&["--dry-run"], &experiment("pod-kill-order.yaml"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("deferred to the live target"), "{stdout}");
    assert!(
        stdout.contains("matching pods at max_blast_radius_percent"),
        "{stdout}"
    );
}

#[test]
fn a_latency_fault_pages_for_the_product_page_and_not_for_errors() {
    if !prometheus_installed() {
        slo::testing::missing_tool("prometheus", "scripts/setup.sh installs it");
        return;
    }
    let (code, stdout, report) = drill("local-latency-alerts.yaml", &[]);
    assert_eq!(code, 0, "{stdout}");
    let page = slo(&report, "alert: ProductPageBurnRatePage");
    assert_eq!(page["status"], "pass", "{page}");
    let after = page["measured"].as_f64().unwrap();
    assert!(
        after > 0.0 && after <= 15.0,
        "fired {after} s after the method's start"
    );
    assert_eq!(
        slo(&report, "alert: GatewayErrorsBurnRatePage")["status"],
        "pass"
    );
    let records = journal(&report, "chaos.alert");
    assert_eq!(records.len(), 2, "{}", report["journal"]);
    assert!(
        stdout.contains("expected alert ProductPageBurnRatePage fired"),
        "{stdout}"
    );
}

#[test]
fn an_expected_alert_that_does_not_fire_fails_the_drill() {
    if !prometheus_installed() {
        slo::testing::missing_tool("prometheus", "scripts/setup.sh installs it");
        return;
    }
    // The same fault, expecting the error alert and forbidding the latency one: both must fail.
    let text = std::fs::read_to_string(experiment("local-latency-alerts.yaml"))
        .unwrap()
        .replace(
            "  - name: ProductPageBurnRatePage\n    within: 15s",
            "  - name: GatewayErrorsBurnRatePage\n    within: 15s",
        )
        .replace(
            "forbid_alerts:\n  - GatewayErrorsBurnRatePage",
            "forbid_alerts:\n  - ProductPageBurnRatePage",
        );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("swapped.yaml");
    std::fs::write(&file, text).unwrap();
    let (code, stdout, report) = drill(file.to_str().unwrap(), &[]);
    assert_eq!(code, 1, "{stdout}");
    let errors = slo(&report, "alert: GatewayErrorsBurnRatePage");
    assert_eq!(errors["status"], "fail", "{errors}");
    assert!(
        errors["message"]
            .as_str()
            .unwrap()
            .contains("did not fire within 15s"),
        "{errors}"
    );
    assert_eq!(
        slo(&report, "alert: ProductPageBurnRatePage")["status"],
        "fail"
    );
    let experiment = slo(&report, "experiment");
    assert!(
        experiment["message"]
            .as_str()
            .unwrap()
            .contains("forbidden alert ProductPageBurnRatePage fired"),
        "{experiment}"
    );
}
