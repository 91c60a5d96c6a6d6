//! The Prometheus source against a real Prometheus holding the known-answer dataset
//! (`slo::testing::dataset`): every SLI kind, every status, and each measured value checked
//! twice — against the closed-form answer and against the same PromQL sent by the test itself.
//!
//! One Prometheus serves the whole binary; without a `prometheus` binary the tests print a skip
//! message and pass, except with `CI=true`, where they fail naming it.

use std::path::Path;

use prometheus_http_query::Client;
use prometheus_http_query::response::Data;
use slo::testing::dataset::{self, FROM, LOAD_END, TO};
use slo::{
    CheckContext, CheckOutcome, Checked, Gate, Marks, Problem, SloStatus, Sources, Window,
    human_instant, sources::PrometheusSource,
};

const HEAD: &str = "apiVersion: shakedown/v1\nkind: SLOSet\nmetadata: {name: test}\nslos:\n";

/// Checks the SLOs in `slos` (YAML list items) over the dataset's window; `None` to skip.
async fn check(slos: &str) -> Option<(CheckOutcome, String)> {
    let prometheus = dataset::prometheus()?;
    let outcome = check_against(prometheus.url(), slos).await;
    Some((outcome, prometheus.url().to_string()))
}

async fn check_against(url: &str, slos: &str) -> CheckOutcome {
    check_window(url, slos, FROM, TO).await
}

/// [`check_against`] over the window `[from, to]` (Unix seconds).
async fn check_window(url: &str, slos: &str, from: i64, to: i64) -> CheckOutcome {
    let set = slo::parse(&format!("{HEAD}{slos}"), Path::new("test.yaml")).expect("valid SLO set");
    let window = Window::new(dataset::at(from), dataset::at(to), &set.defaults)
        .unwrap()
        .with_marks(Marks {
            load_end: Some(dataset::at(LOAD_END)),
            events: Vec::new(),
        });
    let sources = Sources::new().with(PrometheusSource::new(url).unwrap());
    slo::check(&set, &CheckContext { window, sources }).await
}

fn verdict<'a>(outcome: &'a CheckOutcome, name: &str) -> &'a Checked {
    outcome
        .results
        .iter()
        .find(|c| c.verdict.name == name)
        .unwrap_or_else(|| panic!("no verdict {name}"))
}

/// The measured value in the SLI's base unit (reports show latency in ms).
fn base_value(checked: &Checked) -> f64 {
    let measured = checked.verdict.measured.expect("a measured value");
    match checked.verdict.unit.as_deref() {
        Some("ms") => measured / 1000.0,
        _ => measured,
    }
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{what}: measured {actual}, expected {expected}"
    );
}

/// Sends the verdict's query to Prometheus at the window's end, as a person re-running it
/// would, and returns the one value.
async fn rerun(url: &str, checked: &Checked) -> f64 {
    let query = checked.verdict.query.as_deref().expect("a query");
    let result = Client::try_from(url)
        .unwrap()
        .query(query)
        .at(TO)
        .get()
        .await
        .expect("query runs");
    match result.data() {
        Data::Vector(v) if v.len() == 1 => v[0].sample().value(),
        Data::Scalar(s) => s.value(),
        other => panic!("unexpected result {other:?}"),
    }
}

fn assert_status(checked: &Checked, status: SloStatus) {
    assert_eq!(
        checked.verdict.status, status,
        "{}: {:?}",
        checked.verdict.name, checked.verdict
    );
}

fn assert_window(checked: &Checked) {
    assert_eq!(
        (checked.from, checked.to),
        (dataset::at(FROM), dataset::at(TO))
    );
    let window = checked.verdict.window.as_deref().unwrap();
    assert!(window.contains("(20m)"), "{window}");
}

#[tokio::test]
async fn latency_quantiles_pass_warn_fail_and_unknown() {
    let mut slos = String::new();
    for (service, _, _) in dataset::LATENCY_SERVICES
        .iter()
        .chain(&[("ghost", [0; 5], 0.0)])
    {
        slos.push_str(&format!(
            "  - name: {service}\n    sli: {{latency: {{quantile: 0.95, selector: 'service=\"{service}\"'}}}}\n    objective: {{lt: 500ms, warn: 400ms}}\n"
        ));
    }
    let Some((outcome, url)) = check(&slos).await else {
        return;
    };
    let expected = [
        ("gateway-fast", SloStatus::Pass),
        ("gateway-slowish", SloStatus::Warn),
        ("gateway-slow", SloStatus::Fail),
    ];
    for ((name, status), (_, _, p95)) in expected.iter().zip(dataset::LATENCY_SERVICES) {
        let checked = verdict(&outcome, name);
        assert_status(checked, *status);
        assert_close(base_value(checked), p95, name);
        assert_close(
            base_value(checked),
            rerun(&url, checked).await,
            "same PromQL",
        );
        assert_eq!(checked.verdict.unit.as_deref(), Some("ms"));
        assert!(
            checked
                .verdict
                .source
                .contains(&format!("instant query at {}", human_instant(TO as f64)))
        );
        assert_window(checked);
    }
    let ghost = verdict(&outcome, "ghost");
    assert_status(ghost, SloStatus::Unknown);
    assert_eq!(ghost.problem, Some(Problem::NoData));
    assert_eq!(ghost.verdict.measured, None, "no data is never 0");
    assert!(
        ghost
            .verdict
            .message
            .as_deref()
            .unwrap()
            .starts_with("no data")
    );
    assert_eq!(outcome.gate(false), Gate::Failed);
}

#[tokio::test]
async fn error_ratio_counts_5xx_only_and_no_errors_is_zero() {
    let mut slos = String::new();
    let services = dataset::ERROR_SERVICES.iter().map(|case| case.service);
    for service in services.chain(["ghost"]) {
        slos.push_str(&format!(
            "  - name: {service}\n    sli: {{error_ratio: {{selector: 'service=\"{service}\"'}}}}\n    objective: {{lt: 1%, warn: 0.5%}}\n"
        ));
    }
    let Some((outcome, url)) = check(&slos).await else {
        return;
    };
    let statuses = [
        SloStatus::Pass,
        SloStatus::Warn,
        SloStatus::Fail,
        SloStatus::Pass,
    ];
    for (status, case) in statuses.iter().zip(&dataset::ERROR_SERVICES) {
        let checked = verdict(&outcome, case.service);
        assert_status(checked, *status);
        assert_close(base_value(checked), case.ratio, case.service);
        assert_close(
            base_value(checked),
            rerun(&url, checked).await,
            "same PromQL",
        );
        assert_eq!(checked.verdict.unit.as_deref(), Some("ratio"));
    }
    let ghost = verdict(&outcome, "ghost");
    assert_status(ghost, SloStatus::Unknown);
    assert_eq!(ghost.problem, Some(Problem::NoData));
}

fn error_ratio_slos(services: &[&str]) -> String {
    services
        .iter()
        .map(|service| {
            format!(
                "  - name: {service}\n    sli: {{error_ratio: {{selector: 'service=\"{service}\"'}}}}\n    objective: {{lt: 1%}}\n"
            )
        })
        .collect()
}

/// Asserts `actual` is `expected` within 0.1 % (the counting is exact; this is the promise).
fn assert_within_a_thousandth(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-3 * expected.abs(),
        "{what}: measured {actual}, the truth is {expected}"
    );
}

fn counter_case(service: &str) -> &'static dataset::CounterCase {
    dataset::COUNTER_SERVICES
        .iter()
        .find(|c| c.service == service)
        .expect("a counter case")
}

#[tokio::test]
async fn an_error_burst_on_a_series_born_inside_the_window_is_counted_from_zero() {
    // The 503 series' first sample is already 60: rate() would count only what came after.
    let case = counter_case("orders-burst");
    let truth = case.bad as f64 / case.all as f64;
    let Some((outcome, url)) = check(&error_ratio_slos(&[case.service])).await else {
        return;
    };
    let checked = verdict(&outcome, case.service);
    assert_within_a_thousandth(base_value(checked), truth, case.service);
    assert_close(
        base_value(checked),
        rerun(&url, checked).await,
        "same PromQL",
    );
    assert_status(checked, SloStatus::Fail);

    // A window whose bounds are not multiples of the 15 s step is widened to the steps
    // around it, so the same increments are counted and the query runs at the span's end.
    let unaligned = check_window(&url, &error_ratio_slos(&[case.service]), FROM + 5, TO - 5).await;
    let checked = verdict(&unaligned, case.service);
    assert_within_a_thousandth(base_value(checked), truth, "unaligned window");
    let at = human_instant(TO as f64);
    assert!(
        checked
            .verdict
            .source
            .ends_with(&format!("instant query at {at}")),
        "{}",
        checked.verdict.source
    );
}

#[tokio::test]
async fn a_counter_reset_inside_the_window_counts_what_came_before_and_after_it() {
    let case = counter_case("orders-restarted");
    let Some((outcome, url)) = check(&error_ratio_slos(&[case.service])).await else {
        return;
    };
    let checked = verdict(&outcome, case.service);
    assert_within_a_thousandth(
        base_value(checked),
        case.bad as f64 / case.all as f64,
        case.service,
    );
    assert_close(
        base_value(checked),
        rerun(&url, checked).await,
        "same PromQL",
    );
}

/// What `histogram_quantile` gives for buckets holding `counts` (per bucket, `+Inf` last):
/// the first bucket whose cumulative count reaches rank q * total, linearly interpolated
/// between its bounds (from 0 for the first); the highest finite bound for `+Inf`.
fn histogram_quantile(q: f64, bounds: &[f64], counts: &[u64]) -> f64 {
    let cumulative: Vec<f64> = counts
        .iter()
        .scan(0, |total, n| {
            *total += n;
            Some(*total as f64)
        })
        .collect();
    let rank = q * cumulative[cumulative.len() - 1];
    let b = cumulative[..cumulative.len() - 1]
        .iter()
        .position(|c| *c >= rank)
        .unwrap_or(bounds.len());
    if b == bounds.len() {
        return bounds[bounds.len() - 1];
    }
    let (start, below) = if b == 0 {
        (0.0, 0.0)
    } else {
        (bounds[b - 1], cumulative[b - 1])
    };
    start + (bounds[b] - start) * (rank - below) / (cumulative[b] - below)
}

#[tokio::test]
async fn latency_counts_a_slow_label_set_born_inside_the_window() {
    let service = dataset::BORN_SLOW_SERVICE;
    let expected = histogram_quantile(0.95, &dataset::BOUNDS, &dataset::BORN_SLOW_COUNTS);
    // Rank 855 of 900 is the 55th of the 100 in (0.5 s, 1 s].
    assert_close(expected, 0.775, "interpolation by hand");
    let slos = format!(
        "  - name: p95\n    sli: {{latency: {{quantile: 0.95, selector: 'service=\"{service}\"'}}}}\n    objective: {{lt: 500ms}}\n"
    );
    let Some((outcome, url)) = check(&slos).await else {
        return;
    };
    let checked = verdict(&outcome, "p95");
    assert_within_a_thousandth(base_value(checked), expected, service);
    assert_close(
        base_value(checked),
        rerun(&url, checked).await,
        "same PromQL",
    );
    assert_status(checked, SloStatus::Fail);
}

#[tokio::test]
async fn promql_fills_in_the_window_and_reads_scalars() {
    let slos = r#"  - name: broken-rps
    sli: {promql: {query: 'sum(rate(http_request_duration_seconds_count{service="orders-broken"}[$window]))'}}
    objective: {gt: 50, warn: 70}
  - name: window-length
    sli: {promql: {query: '$to - $from', unit: duration}}
    objective: {lte: 20m}
  - name: nothing
    sli: {promql: {query: 'up{job="none"}'}}
    objective: {gt: 0}
"#;
    let Some((outcome, url)) = check(slos).await else {
        return;
    };
    let rps = verdict(&outcome, "broken-rps");
    assert_status(rps, SloStatus::Warn);
    assert_close(base_value(rps), 1000.0 / 15.0, "requests per second");
    assert_close(base_value(rps), rerun(&url, rps).await, "same PromQL");
    assert!(rps.verdict.query.as_deref().unwrap().contains("[1200s]"));

    let length = verdict(&outcome, "window-length");
    assert_status(length, SloStatus::Pass);
    assert_eq!(length.verdict.measured, Some(1200.0));
    assert_eq!(
        length.verdict.query.as_deref(),
        Some(&*format!("{TO} - {FROM}"))
    );

    assert_status(verdict(&outcome, "nothing"), SloStatus::Unknown);
}

#[tokio::test]
async fn hpa_scale_out_time_at_max_and_end_gap() {
    let mut slos = String::new();
    for hpa in &dataset::HPAS {
        let name = hpa.name;
        for (measure, objective) in [
            ("scale_out", "{gt: 0}"),
            ("time_at_max", "{lte: 5m, warn: 2m}"),
            ("end_gap", "{lte: 0}"),
        ] {
            slos.push_str(&format!(
                "  - name: {name}-{}\n    sli: {{hpa: {{namespace: ecommerce, name: {name}, measure: {measure}}}}}\n    objective: {objective}\n",
                measure.replace('_', "-")
            ));
        }
    }
    slos.push_str("  - name: ghost-time-at-max\n    sli: {hpa: {namespace: ecommerce, name: ghost, measure: time_at_max}}\n    objective: {lte: 5m}\n");
    let Some((outcome, url)) = check(&slos).await else {
        return;
    };
    let status = |passes: bool| {
        if passes {
            SloStatus::Pass
        } else {
            SloStatus::Fail
        }
    };
    for hpa in &dataset::HPAS {
        let scale_out = verdict(&outcome, &format!("{}-scale-out", hpa.name));
        assert_eq!(
            scale_out.verdict.measured,
            Some(hpa.scale_out),
            "{}",
            hpa.name
        );
        assert_status(scale_out, status(hpa.scale_out > 0.0));
        assert_eq!(rerun(&url, scale_out).await, hpa.scale_out);

        let end_gap = verdict(&outcome, &format!("{}-end-gap", hpa.name));
        assert_eq!(end_gap.verdict.measured, Some(hpa.end_gap), "{}", hpa.name);
        assert_status(end_gap, status(hpa.end_gap == 0.0));
        assert_eq!(rerun(&url, end_gap).await, hpa.end_gap);

        let at_max = verdict(&outcome, &format!("{}-time-at-max", hpa.name));
        assert_eq!(
            at_max.verdict.measured,
            Some(hpa.time_at_max),
            "{}",
            hpa.name
        );
        assert_eq!(at_max.verdict.unit.as_deref(), Some("s"));
        assert!(at_max.verdict.source.contains(&format!(
            "range query from {} to {} step 15s",
            human_instant(FROM as f64),
            human_instant(TO as f64)
        )));
    }
    // Rising 2 -> 6 of max 10: never pinned. Stuck at max for the whole window: fails.
    // Three minutes at max: inside the 5 minutes allowed, beyond the 2-minute warning.
    assert_status(verdict(&outcome, "order-time-at-max"), SloStatus::Pass);
    assert_status(verdict(&outcome, "payment-time-at-max"), SloStatus::Fail);
    assert_status(verdict(&outcome, "cart-time-at-max"), SloStatus::Warn);
    assert_status(verdict(&outcome, "ghost-time-at-max"), SloStatus::Unknown);
}

#[tokio::test]
async fn kafka_lag_maximum_and_recovery_after_the_end_of_load() {
    let mut slos = String::new();
    for lag in &dataset::LAGS {
        let (group, topic) = (lag.group, lag.topic);
        slos.push_str(&format!(
            "  - name: {group}-max\n    sli: {{kafka_lag: {{group: {group}, topics: [{topic}], measure: max_lag}}}}\n    objective: {{lt: 10000, warn: 4000}}\n"
        ));
        slos.push_str(&format!(
            "  - name: {group}-recovery\n    sli: {{kafka_lag: {{group: {group}, topics: [{topic}], measure: recovery_time, below: 1000}}}}\n    objective: {{lte: 60s, warn: 30s}}\n"
        ));
    }
    slos.push_str("  - name: ghost-recovery\n    sli: {kafka_lag: {group: ghost, measure: recovery_time, below: 1000, after: window_start}}\n    objective: {lte: 60s}\n");
    let Some((outcome, url)) = check(&slos).await else {
        return;
    };
    for lag in &dataset::LAGS {
        let max = verdict(&outcome, &format!("{}-max", lag.group));
        assert_eq!(max.verdict.measured, Some(lag.max_lag), "{}", lag.group);
        assert_eq!(rerun(&url, max).await, lag.max_lag);
        let recovery = verdict(&outcome, &format!("{}-recovery", lag.group));
        match lag.recovery_below_1000 {
            Some(seconds) => assert_eq!(recovery.verdict.measured, Some(seconds), "{}", lag.group),
            None => {
                // Not recovered in the 600 s after the end of load: at least that, so it fails.
                assert_eq!(recovery.verdict.measured, Some((TO - LOAD_END) as f64));
                assert!(
                    recovery
                        .verdict
                        .message
                        .as_deref()
                        .unwrap()
                        .starts_with("at least 600 s")
                );
            }
        }
        assert!(recovery.verdict.source.contains(&format!(
            "range query from {} to {}",
            human_instant(LOAD_END as f64),
            human_instant(TO as f64)
        )));
    }
    assert_status(verdict(&outcome, "notification-group-max"), SloStatus::Warn);
    assert_status(verdict(&outcome, "audit-group-max"), SloStatus::Pass);
    assert_status(verdict(&outcome, "stuck-group-max"), SloStatus::Fail);
    assert_status(
        verdict(&outcome, "notification-group-recovery"),
        SloStatus::Warn,
    );
    assert_status(verdict(&outcome, "audit-group-recovery"), SloStatus::Pass);
    assert_status(verdict(&outcome, "stuck-group-recovery"), SloStatus::Fail);
    assert_status(verdict(&outcome, "ghost-recovery"), SloStatus::Unknown);
}

#[tokio::test]
async fn kafka_time_lag_from_kafka_lag_exporter_and_its_recovery() {
    let mut slos = String::new();
    for lag in &dataset::TIME_LAGS {
        let (group, topic) = (lag.group, lag.topic);
        slos.push_str(&format!(
            "  - name: {group}-time-lag\n    sli: {{kafka_lag: {{group: {group}, topics: [{topic}], measure: time_lag}}}}\n    objective: {{lt: 10s, warn: 5s}}\n"
        ));
        // No topics: the exporter's per-group maximum.
        slos.push_str(&format!(
            "  - name: {group}-group-time-lag\n    sli: {{kafka_lag: {{group: {group}, measure: time_lag}}}}\n    objective: {{lt: 10s, warn: 5s}}\n"
        ));
        slos.push_str(&format!(
            "  - name: {group}-time-recovery\n    sli: {{kafka_lag: {{group: {group}, topics: [{topic}], measure: recovery_time, below: 5s}}}}\n    objective: {{lte: 60s, warn: 20s}}\n"
        ));
    }
    slos.push_str("  - name: ghost-time-lag\n    sli: {kafka_lag: {group: ghost, topics: [orders], measure: time_lag}}\n    objective: {lt: 10s}\n");
    let Some((outcome, url)) = check(&slos).await else {
        return;
    };
    for lag in &dataset::TIME_LAGS {
        for name in [
            format!("{}-time-lag", lag.group),
            format!("{}-group-time-lag", lag.group),
        ] {
            let checked = verdict(&outcome, &name);
            assert_eq!(checked.verdict.measured, Some(lag.max_seconds), "{name}");
            assert_eq!(rerun(&url, checked).await, lag.max_seconds, "{name}");
            assert_eq!(checked.verdict.unit.as_deref(), Some("s"), "{name}");
        }
        let recovery = verdict(&outcome, &format!("{}-time-recovery", lag.group));
        match lag.recovery_below_5s {
            Some(seconds) => assert_eq!(recovery.verdict.measured, Some(seconds), "{}", lag.group),
            None => assert_eq!(recovery.verdict.measured, Some((TO - LOAD_END) as f64)),
        }
        assert!(
            recovery
                .verdict
                .query
                .as_deref()
                .unwrap()
                .starts_with("max(kafka_consumergroup_group_lag_seconds{group=")
        );
    }
    // 8 s behind at worst: under the 10 s objective, past the 5 s warning; caught up (< 5 s)
    // 30 s after the load, past the 20 s warning. Two minutes behind fails both.
    for name in [
        "notification-group-time-lag",
        "notification-group-group-time-lag",
        "notification-group-time-recovery",
    ] {
        assert_status(verdict(&outcome, name), SloStatus::Warn);
    }
    for name in [
        "stuck-group-time-lag",
        "stuck-group-group-time-lag",
        "stuck-group-time-recovery",
    ] {
        assert_status(verdict(&outcome, name), SloStatus::Fail);
    }
    let ghost = verdict(&outcome, "ghost-time-lag");
    assert_status(ghost, SloStatus::Unknown);
    assert_eq!(ghost.problem, Some(Problem::NoData));
}

#[tokio::test]
async fn queries_prometheus_refuses_are_configuration_errors() {
    let slos = r#"  - name: syntax
    sli: {promql: {query: 'sum(rate(foo[5m]'}}
    objective: {lt: 1}
  - name: many-series
    sli: {promql: {query: 'kube_horizontalpodautoscaler_spec_max_replicas'}}
    objective: {lt: 100}
"#;
    let Some((outcome, _)) = check(slos).await else {
        return;
    };
    for name in ["syntax", "many-series"] {
        let checked = verdict(&outcome, name);
        assert_status(checked, SloStatus::Unknown);
        assert_eq!(checked.problem, Some(Problem::Rejected), "{name}");
    }
    assert!(
        verdict(&outcome, "many-series")
            .verdict
            .message
            .as_deref()
            .unwrap()
            .contains("4 series")
    );
    assert_eq!(outcome.gate(true), Gate::Invalid);
}

#[tokio::test]
async fn an_unreachable_prometheus_gives_unknown_verdicts_that_say_so() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let outcome = check_against(
        &format!("http://127.0.0.1:{port}"),
        "  - name: p95\n    sli: {latency: {quantile: 0.95}}\n    objective: {lt: 500ms}\n",
    )
    .await;
    let checked = verdict(&outcome, "p95");
    assert_status(checked, SloStatus::Unknown);
    assert_eq!(checked.problem, Some(Problem::Unreachable));
    let message = checked.verdict.message.as_deref().unwrap();
    assert!(message.starts_with("unreachable: "), "{message}");
    assert!(
        checked
            .verdict
            .query
            .as_deref()
            .unwrap()
            .starts_with("histogram_quantile(0.95")
    );
    assert_eq!(
        outcome.gate(true),
        Gate::Unreachable,
        "--allow-unknown does not hide it"
    );
}
