//! Each renderer produces valid output of its format from the same sample report.

use super::*;
use crate::fixtures::sample_report;
use crate::model::{SloStatus, Verdict};

#[test]
fn json_round_trips_exactly() {
    let report = sample_report();
    let text = JsonRenderer.render(&report).unwrap();
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back, report);
    // Histograms travel as base64 text, not as arrays of counts.
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(value["totals"]["histogram"].is_string());
    assert_eq!(value["schema_version"], 1);
    assert_eq!(value["verdict"], "pass");
}

#[test]
fn markdown_leads_with_the_verdict_and_tables() {
    let mut report = sample_report();
    let text = MarkdownRenderer.render(&report).unwrap();
    let first_line = text.lines().next().unwrap();
    assert!(first_line.contains("PASS"), "{first_line}");
    assert!(text.contains("| `p95<500ms` |"), "{text}");
    assert!(text.contains("| list_products | 200 |"), "{text}");
    assert!(text.contains("| connect | 5 |"), "{text}");
    // The journal detail has a pipe, which must not split the table cell.
    assert!(text.contains("pod payments-7d9 \\| deleted"), "{text}");
    assert!(
        text.contains("| checkout | `POST /api/v1/orders` | 120.0 ms | 310.0 ms | 480.0 ms | 95.0 ms | 240.0 ms | 400.0 ms | +70.0 ms |"),
        "client and server side by side: {text}"
    );
    assert!(text.contains("No server route matched: browse."), "{text}");

    report.partial = true;
    report.partial_reason = Some("interrupted (Ctrl-C)".into());
    report.recompute_verdict();
    let text = MarkdownRenderer.render(&report).unwrap();
    assert!(text.lines().next().unwrap().contains("FAIL"));
    assert!(text.contains("**Partial run:** interrupted (Ctrl-C)"));
}

#[test]
fn html_is_self_contained_with_inline_svg_charts() {
    let mut report = sample_report();
    report.scenario = "<script>alert(1)</script>".into();
    let html = HtmlRenderer.render(&report).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 3, "three charts");
    assert!(
        html.contains("chaos.kill-pod payments"),
        "journal marker label"
    );
    assert!(html.contains("<h2>Client and server latency</h2>"));
    assert!(html.contains("<td>checkout</td><td><code>POST "), "{html}");
    assert!(html.contains("+70.0 ms"));
    assert!(!html.contains("<script"), "report text must be escaped");
    assert!(!html.contains("src=\"http"), "no external resources");
    assert!(html.ends_with("</html>\n") || html.ends_with("</html>"));
}

#[test]
fn html_renders_an_empty_run() {
    let mut report = sample_report();
    report.timeseries.clear();
    report.transactions.clear();
    report.journal.clear();
    let html = HtmlRenderer.render(&report).unwrap();
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(html.contains("No requests were made."));
}

#[test]
fn junit_has_one_case_per_threshold_and_slo() {
    let mut report = sample_report();
    report.thresholds[0].status = Verdict::Fail;
    report.thresholds[0].measured = Some(612.3);
    report.slos[0].status = SloStatus::Fail;
    report.recompute_verdict();
    let xml = JunitRenderer.render(&report).unwrap();
    assert!(xml.starts_with("<?xml"));
    let cases = xml.matches("<testcase ").count();
    assert_eq!(cases, report.thresholds.len() + report.slos.len(), "{xml}");
    assert_eq!(xml.matches("<failure").count(), 2, "{xml}");
    assert!(
        xml.contains("measured 612.3 ms, objective &lt; 500.0 ms"),
        "{xml}"
    );
    assert!(xml.contains("name=\"thresholds\""));
    assert!(xml.contains("name=\"slos\""));
}

#[test]
fn junit_marks_a_partial_run_as_a_failed_case() {
    let mut report = sample_report();
    report.partial = true;
    report.partial_reason = Some("target down".into());
    let xml = JunitRenderer.render(&report).unwrap();
    assert!(xml.contains("run completed as planned"));
    assert!(xml.contains("partial run: target down"));
}

#[test]
fn every_renderer_has_a_distinct_file_name() {
    let names: Vec<_> = all_renderers().iter().map(|r| r.file_name()).collect();
    assert_eq!(
        names,
        ["report.json", "report.md", "report.html", "junit.xml"]
    );
}

/// The one SLO renderer's rule: verdicts arrive as the gate judged them, so `fail` (including an
/// unknown that gated) is a failure and an `unknown` left is skipped with its reason.
#[test]
fn junit_fails_failed_slos_and_skips_unknowns_that_did_not_gate() {
    let mut report = sample_report();
    report.thresholds.clear();
    report.slos.truncate(1);
    let mut unknown = report.slos[0].clone();
    unknown.name = "allowed-unknown".into();
    unknown.status = SloStatus::Unknown;
    unknown.message = Some("no series matched".into());
    let mut gated = unknown.clone();
    gated.name = "gated-unknown".into();
    gated.status = SloStatus::Fail;
    gated.message = Some("unknown, and the gate requires data: no series matched".into());
    report.slos = vec![unknown, gated];
    report.recompute_verdict();
    let xml = JunitRenderer.render(&report).unwrap();
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    assert_eq!(xml.matches("<skipped").count(), 1, "{xml}");
    assert!(xml.contains("message=\"no series matched\""), "{xml}");

    let alone = crate::render::slo_junit(
        "t",
        "c",
        report.started_at.fixed_offset(),
        &report.slos,
        Some("target down"),
    );
    assert_eq!(
        alone.matches("<failure").count(),
        2,
        "and the partial run: {alone}"
    );
    assert!(alone.contains("partial run: target down"), "{alone}");
}
