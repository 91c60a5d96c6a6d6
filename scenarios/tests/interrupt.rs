//! Interruption: cancelling the run's token (what the CLI's signal handler does on Ctrl-C or
//! SIGTERM) stops the users and the run still returns its report, marked partial. Goose's
//! killswitch is process-wide, so this test lives alone in its binary.

mod support;

use std::time::Duration;

use scenarios::{INTERRUPTED, Profile, RunSpec, execute_until};
use support::{Behaviour, Gateway};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_yields_a_partial_report() {
    let gateway = Gateway::start(Behaviour::default());
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

    let cancel = CancellationToken::new();
    let (outcome, ()) = tokio::join!(execute_until(spec, &cancel), async {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        cancel.cancel();
    });

    let report = outcome.unwrap();

    assert!(report.partial);
    assert_eq!(report.partial_reason.as_deref(), Some(INTERRUPTED));

    assert!(
        report.actual_duration_s < report.planned_duration_s,
        "stopped early, not after {} s",
        report.actual_duration_s
    );
    assert!(report.totals.requests > 0);
    assert_eq!(report.totals.errors, 0);
    assert_eq!(report.verdict, reports::Verdict::Fail);
    assert_eq!(report.consistency_problems(), Vec::<String>::new());
}
