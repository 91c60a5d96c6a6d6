//! Ctrl-C: Goose's handler stops the users and the run still returns its report, marked
//! partial. The test sends SIGINT to its own process, so it lives alone in this binary.

mod support;

use std::time::Duration;

use scenarios::{Profile, RunSpec, execute};
use support::{Behaviour, Gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_yields_a_partial_report() {
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
    };

    let (outcome, ()) = tokio::join!(execute(spec), async {
        // Goose installs its handler as the run starts; by now it is there.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let status = std::process::Command::new("kill")
            .args(["-INT", &std::process::id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    });
    let report = outcome.unwrap();

    assert!(report.partial);
    assert_eq!(
        report.partial_reason.as_deref(),
        Some("interrupted (Ctrl-C)")
    );
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
