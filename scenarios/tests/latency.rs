//! The recorder measures what the server does: a fixed 50 ms server delay shows up as a
//! p50 between 50 and 53 ms in a short closed-model run.

mod support;

use std::time::Duration;

use scenarios::{Profile, RunSpec, execute};
use support::{Behaviour, Gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_p50_matches_the_injected_delay() {
    let gateway = Gateway::start(Behaviour {
        delay: Duration::from_millis(50),
        ..Behaviour::default()
    });
    let profile = Profile::from_yaml(
        "name: short\nclosed:\n  stages:\n    - { duration: 1s, users: 2 }\n    - { duration: 2s, users: 2 }\nthink_time: { min: 10ms, max: 20ms }\n",
        "test profile",
    )
    .unwrap();

    let report = execute(RunSpec {
        scenario: "ingest".into(),
        target: gateway.url(),
        profile,
        quiet: true,
        thresholds: Vec::new(),
        live: None,
    })
    .await
    .unwrap();

    assert!(!report.partial, "{:?}", report.partial_reason);
    assert_eq!(report.totals.errors, 0, "{:?}", report.error_samples);
    assert!(
        report.totals.requests >= 20,
        "only {} requests",
        report.totals.requests
    );
    let latency = report.totals.latency.unwrap();
    assert!(
        (50.0..=53.0).contains(&latency.p50_ms),
        "p50 {} ms for a 50 ms server delay",
        latency.p50_ms
    );
    // The closed model keeps no corrected histograms.
    assert!(report.totals.corrected_latency.is_none());
    assert_eq!(report.consistency_problems(), Vec::<String>::new());
    // Every request counted by the gateway beyond the health probe is in the report.
    assert_eq!(report.totals.requests + 1, gateway.requests());
    // Users were running for the whole plan and are gone at the end.
    assert!(
        report
            .timeseries
            .iter()
            .take(3)
            .skip(1)
            .all(|s| s.active_users == 2)
    );
}
