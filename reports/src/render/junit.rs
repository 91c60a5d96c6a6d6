//! JUnit XML: thresholds and SLOs as test cases, so any CI shows them in its test tab.
//!
//! One test case per threshold (suite `thresholds`) and per SLO verdict (suite `slos`); a
//! failure carries the measured value against the objective. A partial run adds one failing
//! case, `run completed as planned`, so a CI test view never shows green for a run whose
//! overall verdict is fail.
//!
//! SLO verdicts are rendered by [`slo_suite`], the one SLO renderer (`slo check`'s
//! `slo-junit.xml` is [`slo_junit`] over the same function). The rule: a verdict arrives here as
//! the gate judged it — an `unknown` SLO that gates (no data, unknowns not allowed) has already
//! become `fail` (`slo::attach`, `slo::CheckOutcome::gated_verdicts`, the chaos phases), since a
//! gate must never pass on missing data. So `fail` is a failure; an `unknown` that is left did
//! not gate (allowed by `--allow-unknown`, or informational) and is skipped with its reason;
//! `warn` passes with the warning in the case's output.

use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use quick_junit::{
    NonSuccessKind, Property, Report as JunitReport, TestCase, TestCaseStatus, TestSuite,
};

use super::Renderer;
use crate::error::RenderError;
use crate::model::{Report, SloStatus, SloVerdict, Verdict};
use crate::provenance::Provenance;

/// JUnit XML (`junit.xml`).
pub struct JunitRenderer;

impl Renderer for JunitRenderer {
    fn file_name(&self) -> &'static str {
        "junit.xml"
    }

    fn render(&self, report: &Report) -> Result<String, RenderError> {
        let timestamp = report.started_at.fixed_offset();
        let duration = Duration::from_secs_f64(report.actual_duration_s.max(0.0));
        let classname = format!("shakedown.{}", report.scenario);

        let mut thresholds = TestSuite::new("thresholds");
        thresholds.set_timestamp(timestamp).set_time(duration);
        stamp(&mut thresholds, &report.provenance);
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

        let slos = slo_suite(
            &report.slos,
            &format!("{classname}.slo"),
            timestamp,
            duration,
        );

        let mut junit = JunitReport::new(format!("shakedown {}", report.scenario));
        junit
            .set_timestamp(timestamp)
            .set_time(duration)
            .add_test_suite(thresholds)
            .add_test_suite(slos);
        Ok(junit.to_string()?)
    }
}

/// Puts provenance on a suite: one property per fact (CI systems show suite properties next to
/// the results), the host as the suite's `hostname`, and a degraded generator in `system-err`
/// (it does not change the verdict, so it is not a failing case).
pub fn stamp(suite: &mut TestSuite, p: &Provenance) {
    let mut properties: Vec<(String, String)> = Vec::new();
    if let Some(build) = &p.shakedown {
        properties.push(("shakedown.version".into(), build.version.clone()));
        if let Some(commit) = &build.commit {
            properties.push(("shakedown.commit".into(), commit.clone()));
        }
        properties.push(("shakedown.dirty".into(), build.dirty.to_string()));
        properties.push(("shakedown.build".into(), build.profile.clone()));
    }
    for (name, value) in [("command_line", &p.command_line), ("target", &p.target)] {
        if let Some(value) = value {
            properties.push((name.into(), value.clone()));
        }
    }
    for (name, at) in [("started_at", p.started_at), ("ended_at", p.ended_at)] {
        if let Some(at) = at {
            properties.push((name.into(), at.to_rfc3339()));
        }
    }
    if let Some(host) = &p.host {
        suite
            .extra
            .insert("hostname".into(), host.name.clone().into());
        properties.push(("host.name".into(), host.name.clone()));
        properties.push(("host.os".into(), host.os.clone()));
        if let Some(kernel) = &host.kernel {
            properties.push(("host.kernel".into(), kernel.clone()));
        }
        properties.push(("host.arch".into(), host.arch.clone()));
        properties.push(("host.cpus".into(), host.cpus.to_string()));
    }
    for file in &p.files {
        let digest = file
            .sha256
            .as_ref()
            .map_or("built-in".to_string(), |hex| format!("sha256:{hex}"));
        properties.push((
            format!("file.{}", file.role),
            format!("{} {digest}", file.path),
        ));
    }
    for (index, query) in p.queries.iter().enumerate() {
        properties.push((format!("promql.{index}"), query.clone()));
    }
    if let Some(g) = &p.generator {
        for (name, value) in [
            ("generator.cpu_cores_used", g.cpu_cores_used),
            ("generator.host_cpu_busy", g.host_cpu_busy),
            ("generator.max_lateness_ms", g.max_lateness_ms),
        ] {
            if let Some(value) = value {
                properties.push((name.into(), value.to_string()));
            }
        }
        if let Some(cores) = g.cores {
            properties.push(("generator.cores".into(), cores.to_string()));
        }
        properties.push(("generator.degraded".into(), g.degraded.to_string()));
        if g.degraded {
            suite.set_system_err(format!("degraded generator: {}", g.why.join("; ")));
        }
    }
    suite.add_properties(properties.into_iter().map(|(n, v)| Property::new(n, v)));
}

/// The suite `slos`: one test case per verdict (see the module doc for the rule).
pub fn slo_suite(
    verdicts: &[SloVerdict],
    classname: &str,
    timestamp: DateTime<FixedOffset>,
    duration: Duration,
) -> TestSuite {
    let mut slos = TestSuite::new("slos");
    slos.set_timestamp(timestamp).set_time(duration);
    for slo in verdicts {
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
        case.set_classname(classname.to_string());
        let mut out = format!("{detail}; status {}; source {}", slo.status, slo.source);
        for (label, value) in [
            ("query", &slo.query),
            ("window", &slo.window),
            ("message", &slo.message),
        ] {
            if let Some(value) = value {
                out.push_str(&format!("; {label} {value}"));
            }
        }
        case.set_system_out(out);
        slos.add_test_case(case);
    }
    slos
}

/// A JUnit document of SLO verdicts alone (`slo check`'s `slo-junit.xml`): the suite of
/// [`slo_suite`] and, when the run judged was partial, a failing `run completed as planned`
/// case, as in a run's `junit.xml`.
pub fn slo_junit(
    title: &str,
    classname: &str,
    timestamp: DateTime<FixedOffset>,
    verdicts: &[SloVerdict],
    partial_run: Option<&str>,
    provenance: &Provenance,
) -> String {
    let mut suite = slo_suite(verdicts, classname, timestamp, Duration::ZERO);
    stamp(&mut suite, provenance);
    if let Some(why) = partial_run {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status
            .set_message(format!("partial run: {why}"))
            .set_type("partial");
        let mut case = TestCase::new("run completed as planned", status);
        case.set_classname(classname.to_string());
        suite.add_test_case(case);
    }
    let mut junit = JunitReport::new(title);
    junit.set_timestamp(timestamp).add_test_suite(suite);
    // Serializing in-memory XML only fails on I/O, which a String cannot have.
    junit.to_string().unwrap_or_default()
}
