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
        &report.provenance,
    );
    assert_eq!(
        alone.matches("<failure").count(),
        2,
        "and the partial run: {alone}"
    );
    assert!(alone.contains("partial run: target down"), "{alone}");
}

/// The fixture's generator used 1.9 of 2 cores: every format says degraded, and why, next to
/// the verdict; the provenance block carries build, command, host, files and queries.
#[test]
fn every_format_carries_provenance_and_the_degraded_mark() {
    let report = sample_report();
    assert!(report.provenance.generator.as_ref().unwrap().degraded);
    assert_eq!(
        report.verdict,
        Verdict::Pass,
        "degraded does not change the verdict"
    );

    let value: serde_json::Value =
        serde_json::from_str(&JsonRenderer.render(&report).unwrap()).unwrap();
    let p = &value["provenance"];
    assert_eq!(
        p["shakedown"]["commit"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(p["host"]["cpus"], 2);
    assert_eq!(p["files"][0]["role"], "profile");
    assert_eq!(p["generator"]["degraded"], true);
    assert!(
        p["generator"]["why"][0]
            .as_str()
            .unwrap()
            .contains("1.90 of its 2 cores")
    );

    let md = MarkdownRenderer.render(&report).unwrap();
    let banner = md.find("**Degraded generator**").expect("banner");
    assert!(
        banner < md.find("### Thresholds").unwrap(),
        "near the verdict: {md}"
    );
    assert!(md.contains("### Provenance"), "{md}");
    assert!(md.contains("| Build | shakedown 0.1.0 (commit 0123456789abcdef0123456789abcdef01234567, release build) |"), "{md}");
    assert!(
        md.contains("| Command | `shakedown run checkout --profile 'my profile.yaml'` |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| Host | ci-runner-7 — Debian GNU/Linux 13 (trixie), kernel 6.12.0, x86_64, 2 CPUs |"
        ),
        "{md}"
    );
    assert!(md.contains("| profile file | `my profile.yaml` sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad (3 bytes) |"), "{md}");
    assert!(
        md.contains("CPU 1.90 of 2 cores (19.0 s) · machine CPUs 97 % busy · DEGRADED"),
        "{md}"
    );
    assert!(
        md.contains("```promql\nhistogram_quantile(0.95, …)\n```"),
        "{md}"
    );

    let html = HtmlRenderer.render(&report).unwrap();
    assert!(html.contains("<b>Degraded generator</b>"), "{html}");
    assert!(html.contains("<h2>Provenance</h2>"));
    assert!(
        html.contains("<code>shakedown run checkout --profile &#x27;my profile.yaml&#x27;</code>"),
        "escaped: {html}"
    );

    let xml = JunitRenderer.render(&report).unwrap();
    for property in [
        "name=\"shakedown.commit\" value=\"0123456789abcdef0123456789abcdef01234567\"",
        "name=\"host.cpus\" value=\"2\"",
        "name=\"file.profile\" value=\"my profile.yaml sha256:ba7816bf",
        "name=\"promql.0\"",
        "name=\"generator.degraded\" value=\"true\"",
    ] {
        assert!(xml.contains(property), "{property}: {xml}");
    }
    assert!(xml.contains("hostname=\"ci-runner-7\""), "{xml}");
    assert!(
        xml.contains("<system-err>degraded generator: the shakedown process"),
        "{xml}"
    );
    assert_eq!(
        xml.matches("<failure").count(),
        0,
        "not a failing case: {xml}"
    );
}

/// A report written before provenance existed loads, and renders without the block.
#[test]
fn a_report_without_provenance_renders_without_the_block() {
    let mut report = sample_report();
    report.provenance = crate::Provenance::default();
    let text = JsonRenderer.render(&report).unwrap();
    assert!(!text.contains("provenance"));
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back.provenance, crate::Provenance::default());
    let md = MarkdownRenderer.render(&report).unwrap();
    assert!(
        !md.contains("Provenance") && !md.contains("Degraded"),
        "{md}"
    );
    let html = HtmlRenderer.render(&report).unwrap();
    assert!(!html.contains("<h2>Provenance</h2>"));
}
