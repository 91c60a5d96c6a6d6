//! JUnit XML: thresholds and SLOs as test cases, so any CI shows them in its test tab.
//!
//! One test case per threshold (suite `thresholds`) and per SLO verdict (suite `slos`); a
//! failure carries the measured value against the objective. A partial run adds one failing
//! case, `run completed as planned`, so a CI test view never shows green for a run whose
//! overall verdict is fail. SLOs that are `unknown` are reported as skipped, `warn` as passed
//! with the warning in the case's output.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};

use super::Renderer;
use crate::model::{Report, SloStatus, Verdict};

/// JUnit XML (`junit.xml`).
pub struct JunitRenderer;

impl Renderer for JunitRenderer {
    fn file_name(&self) -> &'static str {
        "junit.xml"
    }

    fn render(&self, report: &Report) -> anyhow::Result<String> {
        let timestamp = report.started_at.fixed_offset();
        let duration = Duration::from_secs_f64(report.actual_duration_s.max(0.0));
        let classname = format!("shakedown.{}", report.scenario);

        let mut thresholds = TestSuite::new("thresholds");
        thresholds.set_timestamp(timestamp).set_time(duration);
        if report.partial {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(format!(
                "partial run: {}",
                report
                    .partial_reason
                    .as_deref()
                    .unwrap_or("reason not recorded")
            ));
            let mut case = TestCase::new("run completed as planned", status);
            case.set_classname(classname.clone());
            thresholds.add_test_case(case);
        }
        for threshold in &report.thresholds {
            let status = match threshold.status {
                Verdict::Pass => TestCaseStatus::success(),
                Verdict::Fail => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status
                        .set_message(format!(
                            "measured {}, objective {}",
                            threshold.measured_text(),
                            threshold.objective_text()
                        ))
                        .set_type("threshold")
                        .set_description(format!("measured over {}", threshold.measured_from));
                    status
                }
            };
            let mut case = TestCase::new(threshold.name.clone(), status);
            case.set_classname(classname.clone());
            case.set_system_out(format!(
                "measured {} ({}), objective {}",
                threshold.measured_text(),
                threshold.measured_from,
                threshold.objective_text()
            ));
            thresholds.add_test_case(case);
        }

        let mut slos = TestSuite::new("slos");
        slos.set_timestamp(timestamp).set_time(duration);
        for slo in &report.slos {
            let measured = slo.measured.map_or_else(
                || "not measured".to_string(),
                |v| {
                    format!("{v} {}", slo.unit.as_deref().unwrap_or(""))
                        .trim()
                        .to_string()
                },
            );
            let detail = format!("measured {measured}, objective {}", slo.objective);
            let status = match slo.status {
                SloStatus::Pass | SloStatus::Warn => TestCaseStatus::success(),
                SloStatus::Fail => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(detail.clone()).set_type("slo");
                    status
                }
                SloStatus::Unknown => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(
                        slo.message
                            .clone()
                            .unwrap_or_else(|| "could not be measured".to_string()),
                    );
                    status
                }
            };
            let mut case = TestCase::new(slo.name.clone(), status);
            case.set_classname(format!("{classname}.slo"));
            let mut out = format!("{detail}; status {}; source {}", slo.status, slo.source);
            if let Some(query) = &slo.query {
                out.push_str(&format!("; query {query}"));
            }
            if let Some(window) = &slo.window {
                out.push_str(&format!("; window {window}"));
            }
            case.set_system_out(out);
            slos.add_test_case(case);
        }

        let mut junit = JunitReport::new(format!("shakedown {}", report.scenario));
        junit
            .set_timestamp(timestamp)
            .set_time(duration)
            .add_test_suite(thresholds)
            .add_test_suite(slos);
        Ok(junit.to_string()?)
    }
}
