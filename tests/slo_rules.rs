//! `shakedown slo rules` through the real binary: the rules it writes are accepted by `promtool
//! check rules`, its burn-rate alerts fire when `promtool test rules` says they should (and not
//! before), the committed `deploy/observability/rules/slo.yml` is exactly what it generates from
//! `slo/examples/shop.yaml`, and bad or rule-less SLO files exit 2.
//!
//! promtool comes with Debian's `prometheus` package; without it the promtool tests print a
//! message and pass, except in CI, where they fail (`slo::testing::missing_tool`).

mod common;

use std::path::Path;
use std::process::Command;

use common::cli::{code, run as shakedown, stderr, stdout};

fn promtool_installed() -> bool {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        slo::testing::missing_tool(
            "promtool",
            "scripts/setup.sh installs it (Debian: prometheus)",
        );
    }
    found
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// Two SLOs with a one-day budget (windows 10s, 1m, 2m, 12m, 2h24m), one without.
const SLOS: &str = r#"apiVersion: shakedown/v1
kind: SLOSet
metadata: {name: drill}
slos:
  - name: checkout-latency
    sli:
      latency: {quantile: 0.99, selector: 'service="api-gateway"'}
    objective: {lt: 500ms}
    budget: {target: 99%, period: 1d}
  - name: cart-errors
    sli:
      error_ratio: {selector: 'service="cart"'}
    objective: {lt: 1%}
    budget: {target: 99%, period: 1d}
  - name: orders-lag
    sli:
      kafka_lag: {group: g, topics: [orders], measure: max_lag}
    objective: {lt: 1000}
"#;

/// The gateway answers 2 requests a second; from 150 s on every one is slower than 500 ms (the
/// 0.5 s bucket stops growing). The cart answers 2 a second, all fine, and has no 5xx series at
/// all (its error ratio must be 0, not empty).
const UNIT_TESTS: &str = r#"rule_files:
  - rules.yml
evaluation_interval: 5s
tests:
  - interval: 5s
    input_series:
      - series: 'http_request_duration_seconds_count{service="api-gateway",route="/api/checkout",status="200"}'
        values: '0+10x60'
      - series: 'http_request_duration_seconds_bucket{service="api-gateway",route="/api/checkout",status="200",le="0.5"}'
        values: '0+10x30 300+0x30'
      - series: 'http_request_duration_seconds_count{service="cart",route="/carts",status="200"}'
        values: '0+10x60'
    promql_expr_test:
      - expr: slo:sli_error:ratio_rate1m{slo="cart-errors"}
        eval_time: 4m
        exp_samples:
          - labels: 'slo:sli_error:ratio_rate1m{slo="cart-errors"}'
            value: 0
      - expr: slo:sli_error:ratio_rate1m{slo="checkout-latency"}
        eval_time: 2m
        exp_samples:
          - labels: 'slo:sli_error:ratio_rate1m{slo="checkout-latency"}'
            value: 0
      - expr: slo:error_budget:ratio{slo="checkout-latency"}
        eval_time: 1m
        exp_samples:
          - labels: 'slo:error_budget:ratio{slo="checkout-latency"}'
            value: 0.01
    alert_rule_test:
      # Every request fast: nothing fires.
      - eval_time: 2m
        alertname: CheckoutLatencyBurnRatePage
        exp_alerts: []
      - eval_time: 2m
        alertname: CheckoutLatencyBurnRateTicket
        exp_alerts: []
      # 30 s after every request became slow: 25 % of the last 2 minutes, all of the last 10 s.
      - eval_time: 3m
        alertname: CheckoutLatencyBurnRatePage
        exp_alerts:
          - exp_labels: {severity: page, slo: checkout-latency}
            exp_annotations:
              summary: SLO checkout-latency is burning its error budget fast
              description: '100% of the requests were bad over the short window, against a budget of 1% over 1d (target 99%): the budget will be gone long before the period ends. Fires at 14.4× over 2m and 10s, or 6× over 12m and 1m.'
      - eval_time: 3m
        alertname: CheckoutLatencyBurnRateTicket
        exp_alerts:
          - exp_labels: {severity: ticket, slo: checkout-latency}
            exp_annotations:
              summary: SLO checkout-latency is burning its error budget steadily
              description: '16.67% of the requests were bad over the short window, against a budget of 1% over 1d (target 99%): at this pace the budget will not last the period. Fires at 1× over 2h24m and 12m.'
      - eval_time: 4m
        alertname: CartErrorsBurnRatePage
        exp_alerts: []
"#;

#[test]
fn the_rules_pass_promtool_and_the_alerts_fire_when_the_budget_burns() {
    let dir = tempfile::tempdir().unwrap();
    let slos = dir.path().join("slos.yaml");
    std::fs::write(&slos, SLOS).unwrap();
    let rules = dir.path().join("rules.yml");
    let output = shakedown(&[
        "slo",
        "rules",
        slos.to_str().unwrap(),
        "--out",
        rules.to_str().unwrap(),
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("note: SLO `orders-lag` has no rules: no `budget`"),
        "{}",
        stderr(&output)
    );
    let text = std::fs::read_to_string(&rules).unwrap();
    assert!(text.contains("alert: CartErrorsBurnRateTicket"), "{text}");
    if !promtool_installed() {
        return;
    }
    let checked = promtool(&["check", "rules", "rules.yml"], dir.path());
    assert!(checked.contains("SUCCESS: 18 rules found"), "{checked}");
    std::fs::write(dir.path().join("rules_test.yml"), UNIT_TESTS).unwrap();
    promtool(&["test", "rules", "rules_test.yml"], dir.path());
}

#[test]
fn a_prometheus_rule_object_holds_the_same_groups() {
    let dir = tempfile::tempdir().unwrap();
    let slos = dir.path().join("slos.yaml");
    std::fs::write(&slos, SLOS).unwrap();
    let plain = shakedown(&["slo", "rules", slos.to_str().unwrap()]);
    let object = shakedown(&[
        "slo",
        "rules",
        slos.to_str().unwrap(),
        "--format",
        "prometheus-rule",
    ]);
    assert_eq!((code(&plain), code(&object)), (0, 0), "{}", stderr(&object));
    let object: serde_json::Value = serde_yaml_ng::from_str(&stdout(&object)).unwrap();
    let plain: serde_json::Value = serde_yaml_ng::from_str(&stdout(&plain)).unwrap();
    assert_eq!(object["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(object["kind"], "PrometheusRule");
    assert_eq!(object["metadata"]["name"], "drill-slo-burn-rate");
    assert_eq!(object["spec"], plain);
    if !promtool_installed() {
        return;
    }
    // What the operator loads is what promtool accepts.
    std::fs::write(
        dir.path().join("spec.yml"),
        serde_yaml_ng::to_string(&object["spec"]).unwrap(),
    )
    .unwrap();
    promtool(&["check", "rules", "spec.yml"], dir.path());
}

#[test]
fn the_committed_observability_rules_are_the_generated_ones() {
    // Run from the repository root with the relative path, as the file's header says.
    let output = common::cli::shakedown()
        .args(["slo", "rules", "slo/examples/shop.yaml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/observability/rules/slo.yml"),
    )
    .unwrap();
    assert!(
        stdout(&output) == committed,
        "deploy/observability/rules/slo.yml is not what `shakedown slo rules slo/examples/shop.yaml` \
         generates; regenerate it:\n  shakedown slo rules slo/examples/shop.yaml --out deploy/observability/rules/slo.yml"
    );
}

#[test]
fn bad_budgets_and_sets_without_one_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let slos = dir.path().join("slos.yaml");
    std::fs::write(
        &slos,
        SLOS.replace(
            "target: 99%, period: 1d}\n  - name: cart",
            "target: 99, period: 1d}\n  - name: cart",
        ),
    )
    .unwrap();
    let output = shakedown(&["slo", "rules", slos.to_str().unwrap()]);
    assert_eq!(code(&output), 2);
    let error = stderr(&output);
    assert!(
        error.contains("slos.yaml:9:")
            && error.contains("slos[0].budget")
            && error.contains("`target: 99.5%`"),
        "{error}"
    );

    let without: String = SLOS
        .lines()
        .filter(|l| !l.contains("budget:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&slos, without).unwrap();
    let output = shakedown(&["slo", "rules", slos.to_str().unwrap()]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("no SLO of the set has burn-rate rules"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).is_empty());

    let hpa = SLOS.replace(
        "    objective: {lt: 1000}\n",
        "    objective: {lt: 1000}\n    budget: {target: 99%, period: 1d}\n",
    );
    std::fs::write(&slos, hpa).unwrap();
    let output = shakedown(&["slo", "rules", slos.to_str().unwrap()]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("a `budget` needs an SLI that counts good and bad requests"),
        "{}",
        stderr(&output)
    );
}
