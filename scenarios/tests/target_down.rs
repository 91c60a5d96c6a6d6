//! A target that dies mid-run: once every request of the last 5 s failed to connect, the
//! run stops early and returns what it measured, marked partial.

mod support;

use std::time::Duration;

use scenarios::{Profile, RunSpec, execute};
use support::{Behaviour, Gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_stops_when_the_target_dies() {
    let mut gateway = Gateway::start(Behaviour::default());
    // Planned for 60 s; the target dies after 1.5 s.
    let profile = Profile::from_yaml(
        "name: long\nclosed:\n  stages:\n    - { duration: 0s, users: 2 }\n    - { duration: 60s, users: 2 }\nthink_time: { min: 20ms, max: 40ms }\n",
        "test profile",
    )
    .unwrap();
    let spec = RunSpec {
        scenario: "health".into(),
        target: gateway.url(),
        profile,
        quiet: true,
        thresholds: Vec::new(),
        live: None,
    };

    let (outcome, ()) = tokio::join!(execute(spec), async {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        gateway.kill();
    });
    let report = outcome.unwrap();

    assert!(report.partial);
    let reason = report.partial_reason.as_deref().unwrap();
    assert!(reason.contains("target down"), "{reason}");
    assert_eq!(report.planned_duration_s, 60.0);
    assert!(
        report.actual_duration_s < report.planned_duration_s,
        "stopped early, not after {} s",
        report.actual_duration_s
    );
    assert!(
        report.totals.requests > report.totals.errors,
        "some succeeded before"
    );
    assert!(report.errors_by_kind.connect > 0);
    assert_eq!(report.verdict, reports::Verdict::Fail);
    assert_eq!(report.consistency_problems(), Vec::<String>::new());
}
