//! Coordinated omission: in an open-model run a one-second server stall must show in the
//! latency corrected to each iteration's intended start, and only there.

mod support;

use std::sync::Arc;
use std::time::Duration;

use scenarios::live::LiveMetrics;
use scenarios::{Profile, RunSpec, execute};
use support::{Behaviour, Gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_corrected_p99_not_in_uncorrected() {
    // 50 iterations/s for 5 s with at most 2 users; the 60th request (~1.2 s in) stalls the
    // whole server for one second.
    let gateway = Gateway::start(Behaviour {
        stall: Some((60, Duration::from_secs(1))),
        ..Behaviour::default()
    });
    let profile = Profile::from_yaml(
        "name: steady\nopen:\n  start_rate: 50\n  max_users: 2\n  stages:\n    - { duration: 5s, rate: 50 }\n",
        "test profile",
    )
    .unwrap();

    let live = Arc::new(LiveMetrics::new());
    let report = execute(RunSpec {
        scenario: "health".into(),
        target: gateway.url(),
        profile,
        quiet: true,
        thresholds: vec!["p99<500ms".parse().unwrap()],
        live: Some(live.clone()),
    })
    .await
    .unwrap();

    assert!(!report.partial, "{:?}", report.partial_reason);
    assert_eq!(report.totals.errors, 0, "{:?}", report.error_samples);
    let uncorrected = report.totals.latency.unwrap();
    let corrected = report.totals.corrected_latency.unwrap();
    // The stalled requests themselves were measured…
    assert!(uncorrected.max_ms >= 900.0, "{uncorrected:?}");
    // …but they are too few to reach the uncorrected p99,
    assert!(uncorrected.p99_ms < 200.0, "{uncorrected:?}");
    // while every iteration that fell due during the stall carries its wait.
    assert!(corrected.p99_ms >= 500.0, "{corrected:?}");

    // Late iterations were started, not dropped.
    let arrivals = report.arrivals.unwrap();
    // 50/s for 5 s; the schedule's clock starts with the first ticket, a hair after Goose's.
    assert!(
        (245..=250).contains(&arrivals.scheduled_iterations),
        "{arrivals:?}"
    );
    assert!(arrivals.started_iterations >= 245, "{arrivals:?}");
    assert!(arrivals.max_lateness_ms >= 900.0, "{arrivals:?}");
    assert!(report.totals.requests >= 245);

    // The threshold is judged on the corrected latency, so the stall fails it.
    assert_eq!(report.thresholds[0].status, reports::Verdict::Fail);
    assert!(report.thresholds[0].measured_from.contains("corrected"));

    // Per transaction and per second, corrected histograms exist alongside the raw ones.
    let health = &report.transactions[0];
    assert_eq!(health.name, "health");
    assert_eq!(
        health.corrected_histogram.as_ref().unwrap().count(),
        health.requests
    );
    let worst_second = report
        .timeseries
        .iter()
        .filter_map(|s| s.corrected_latency)
        .map(|p| p.p99_ms)
        .fold(0.0, f64::max);
    assert!(worst_second >= 500.0);
    assert_eq!(report.consistency_problems(), Vec::<String>::new());

    // The live metrics saw the same requests and the late iterations.
    let value = |name: &str, labels: &[(&str, &str)]| {
        live.samples()
            .into_iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.value)
    };
    assert_eq!(
        value("shakedown_requests_total", &[("transaction", "health")]),
        Some(health.requests as f64)
    );
    // One request per iteration: every iteration that sent its request was counted, and no
    // more than were started.
    let iterations = value("shakedown_iteration_lateness_seconds_count", &[]).unwrap();
    assert!(
        (health.requests as f64..=arrivals.started_iterations as f64).contains(&iterations),
        "{iterations} iterations, {} requests, {arrivals:?}",
        health.requests
    );
    let under_half_a_second = value(
        "shakedown_iteration_lateness_seconds_bucket",
        &[("le", "0.5")],
    )
    .unwrap();
    assert!(
        under_half_a_second < arrivals.started_iterations as f64,
        "the stalled iterations were late by more than 0.5 s"
    );
    assert_eq!(value("shakedown_active_users", &[]), Some(0.0));
}
