//! Refusals before any load is sent: an unreachable target (with its partial report), an
//! unknown scenario and a malformed target URL.

mod support;

use scenarios::{Profile, RunError, RunSpec, execute};

fn spec(scenario: &str, target: String) -> RunSpec {
    RunSpec {
        scenario: scenario.into(),
        target,
        profile: Profile::builtin("smoke").unwrap(),
        quiet: true,
        thresholds: Vec::new(),
        live: None,
    }
}

#[tokio::test]
async fn unreachable_target_returns_a_partial_report() {
    let target = support::closed_port_url();
    let error = execute(spec("smoke", target.clone())).await.unwrap_err();
    assert!(error.is_unreachable(), "{error}");
    assert!(!error.is_usage());
    assert!(error.to_string().contains(&target), "{error}");

    let report = error.partial_report().unwrap();
    assert!(report.partial);
    let reason = report.partial_reason.as_deref().unwrap();
    assert!(
        reason.contains("unreachable") && reason.contains("/health"),
        "{reason}"
    );
    assert_eq!(report.totals.requests, 0);
    assert_eq!(report.verdict, reports::Verdict::Fail);
    assert_eq!(report.thresholds.len(), 3, "the smoke profile's thresholds");
    assert!(report.thresholds.iter().all(|t| t.measured.is_none()));
    assert_eq!(report.consistency_problems(), Vec::<String>::new());

    // It renders like any other report.
    let dir = tempfile::tempdir().unwrap();
    let written = reports::write_all(dir.path(), report).unwrap();
    assert_eq!(written.len(), 4);
    let markdown = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(markdown.contains("FAIL") && markdown.contains("Partial run"));
    assert!(error.into_partial_report().is_some());
}

#[tokio::test]
async fn unknown_scenario_is_a_usage_error() {
    let error = execute(spec("shopping-spree", support::closed_port_url()))
        .await
        .unwrap_err();
    assert!(matches!(error, RunError::UnknownScenario { .. }));
    assert!(error.is_usage());
    assert!(error.partial_report().is_none());
    let text = error.to_string();
    for name in ["smoke", "browse", "checkout", "ingest"] {
        assert!(text.contains(name), "{text}");
    }
}

#[tokio::test]
async fn malformed_target_is_a_usage_error() {
    let error = execute(spec("browse", "localhost:8080".into()))
        .await
        .unwrap_err();
    assert!(matches!(error, RunError::InvalidTarget { .. }), "{error}");
    assert!(error.is_usage());
}
