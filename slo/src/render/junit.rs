//! JUnit XML: one test case per SLO in suite `slos`, so any CI shows the gate in its test tab.
//!
//! `fail` is a failure; `unknown` is a failure too unless unknowns are allowed (then skipped),
//! because that is what the gate does with it; `warn` passes with the warning in its output.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use reports::SloStatus;

use super::measured_text;
use crate::outcome::{CheckOutcome, Problem};

pub fn junit(outcome: &CheckOutcome, allow_unknown: bool) -> String {
    let mut suite = TestSuite::new("slos");
    suite.set_timestamp(outcome.to.fixed_offset());
    for checked in &outcome.results {
        let v = &checked.verdict;
        let detail = format!(
            "measured {}, objective {}",
            measured_text(checked),
            v.objective
        );
        let status = match v.status {
            SloStatus::Pass | SloStatus::Warn => TestCaseStatus::success(),
            SloStatus::Fail => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(detail.clone()).set_type("slo");
                status
            }
            SloStatus::Unknown => {
                let message = v.message.clone().unwrap_or_else(|| "not measured".into());
                let waved_through = allow_unknown && checked.problem == Some(Problem::NoData);
                if waved_through {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(message);
                    status
                } else {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(message).set_type("unknown");
                    status
                }
            }
        };
        let mut case = TestCase::new(v.name.clone(), status);
        case.set_classname(format!("shakedown.slo.{}", outcome.set));
        let mut out = format!("{detail}; status {}; source {}", v.status, v.source);
        for (label, value) in [
            ("query", &v.query),
            ("window", &v.window),
            ("message", &v.message),
        ] {
            if let Some(value) = value {
                out.push_str(&format!("; {label} {value}"));
            }
        }
        case.set_system_out(out);
        suite.add_test_case(case);
    }
    if let Some(why) = &outcome.partial_run {
        // As in a run report's junit.xml: the partial run is its own failing case.
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status
            .set_message(format!("the run was partial: {why}"))
            .set_type("partial");
        let mut case = TestCase::new("run completed as planned", status);
        case.set_classname(format!("shakedown.slo.{}", outcome.set));
        suite.add_test_case(case);
    }
    let mut report = Report::new(format!("shakedown slo {}", outcome.set));
    report.add_test_suite(suite);
    // Serializing in-memory XML only fails on I/O, which a String cannot have.
    report.to_string().unwrap_or_default()
}
