//! The client source on a run report with known numbers, and attaching verdicts to the report.

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use reports::{Report, SloStatus, Verdict};
use slo::sources::ClientSource;
use slo::testing::report::{TransactionSpec, run_report, spread};
use slo::{CheckContext, CheckOutcome, Problem, Sources, Window};

fn report() -> Report {
    run_report(
        Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap(),
        20,
        &[
            TransactionSpec::new("browse", spread(100, 10_000, 109_000), 0),
            TransactionSpec::new("place_order", spread(100, 100_000, 199_000), 5),
        ],
    )
}

async fn check(report: &Report) -> CheckOutcome {
    let text = r#"apiVersion: shakedown/v1
kind: SLOSet
metadata: {name: client}
slos:
  - name: p95
    sli: {client: {measure: latency, quantile: 0.95}}
    objective: {lt: 500ms, warn: 150ms}
  - name: checkout-p99
    sli: {client: {measure: latency, quantile: 0.99, transaction: place_order}}
    objective: {lt: 150ms}
  - name: errors
    sli: {client: {measure: error_rate}}
    objective: {lt: 1%}
  - name: browse-errors
    sli: {client: {measure: error_rate, transaction: browse}}
    objective: {lt: 1%}
  - name: nope
    sli: {client: {measure: error_rate, transaction: nope}}
    objective: {lt: 1%}
"#;
    let set = slo::parse(text, Path::new("client.yaml")).unwrap();
    let window = Window::of_run(report, &set.defaults).unwrap();
    let sources = Sources::new().with(ClientSource::new(Arc::new(report.clone()), "report.json"));
    slo::check(&set, &CheckContext { window, sources }).await
}

#[tokio::test]
async fn client_slis_read_the_reports_histograms_and_counts() {
    let report = report();
    let outcome = check(&report).await;
    let by_name = |name: &str| {
        outcome
            .results
            .iter()
            .find(|c| c.verdict.name == name)
            .unwrap()
    };

    let p95 = &by_name("p95").verdict;
    assert_eq!(p95.measured, report.totals.histogram.quantile_ms(0.95));
    // 95th of 200 evenly spread values: the place_order half, near 189 ms.
    assert!((p95.measured.unwrap() - 189.0).abs() < 1.0, "{p95:?}");
    assert_eq!(p95.status, SloStatus::Warn);

    let p99 = &by_name("checkout-p99").verdict;
    let place_order = report
        .transactions
        .iter()
        .find(|t| t.name == "place_order")
        .unwrap();
    assert_eq!(p99.measured, place_order.histogram.quantile_ms(0.99));
    assert_eq!(p99.status, SloStatus::Fail);
    assert!(
        p99.query
            .as_deref()
            .unwrap()
            .contains("transaction place_order")
    );

    let errors = &by_name("errors").verdict;
    assert_eq!(errors.measured, Some(5.0 / 200.0));
    assert_eq!(errors.status, SloStatus::Fail);
    assert_eq!(by_name("browse-errors").verdict.measured, Some(0.0));
    assert_eq!(by_name("browse-errors").verdict.status, SloStatus::Pass);

    let nope = by_name("nope");
    assert_eq!(nope.problem, Some(Problem::NoData));
    assert!(
        nope.verdict
            .message
            .as_deref()
            .unwrap()
            .contains("browse, place_order")
    );

    // The window is the run's.
    assert_eq!((nope.from, nope.to), (report.started_at, report.ended_at));
}

#[tokio::test]
async fn verdicts_attach_to_the_report_and_unknown_fails_only_when_data_is_required() {
    let mut strict = report();
    let outcome = check(&strict).await;
    assert_eq!(strict.verdict, Verdict::Pass);
    slo::attach(&mut strict, &outcome, false);
    assert_eq!(strict.slos.len(), 5);
    assert_eq!(strict.verdict, Verdict::Fail);
    let nope = strict.slos.iter().find(|s| s.name == "nope").unwrap();
    assert_eq!(nope.status, SloStatus::Fail);
    assert!(
        nope.message
            .as_deref()
            .unwrap()
            .starts_with("unknown, and the gate requires data")
    );

    let mut lenient = report();
    slo::attach(&mut lenient, &outcome, true);
    let nope = lenient.slos.iter().find(|s| s.name == "nope").unwrap();
    assert_eq!(nope.status, SloStatus::Unknown);

    // Attaching again replaces verdicts by name instead of duplicating them.
    slo::attach(&mut lenient, &outcome, true);
    assert_eq!(lenient.slos.len(), 5);
    // The report still renders with the verdicts in it.
    let markdown = reports::render::MarkdownRenderer;
    use reports::Renderer as _;
    assert!(markdown.render(&lenient).unwrap().contains("checkout-p99"));
}
