//! Coordinated omission: in an open-model run a one-second server stall must show in the
//! latency corrected to each iteration's intended start, and only there.

mod support;

use std::time::Duration;

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

    let report = execute(RunSpec {
        scenario: "health".into(),
        target: gateway.url(),
        profile,
        quiet: true,
        thresholds: vec!["p99<500ms".parse().unwrap()],
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
}
