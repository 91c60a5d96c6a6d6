//! JUnit XML of a check: the verdicts as the gate judged them (an `unknown` that gates is a
//! failure), rendered by the one SLO JUnit renderer, `reports::render::slo_junit`, so
//! `slo-junit.xml` and a run's `junit.xml` follow the same rule.

use reports::Provenance;

use crate::outcome::CheckOutcome;

pub fn junit(outcome: &CheckOutcome, allow_unknown: bool, provenance: &Provenance) -> String {
    reports::render::slo_junit(
        &format!("shakedown slo {}", outcome.set),
        &format!("shakedown.slo.{}", outcome.set),
        outcome.to.fixed_offset(),
        &outcome.gated_verdicts(allow_unknown),
        outcome.partial_run.as_deref(),
        provenance,
    )
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use reports::{SloStatus, SloVerdict};

    use super::*;
    use crate::outcome::{Checked, Problem};

    fn checked(name: &str, status: SloStatus, problem: Option<Problem>) -> Checked {
        Checked {
            verdict: SloVerdict {
                name: name.into(),
                status,
                measured: None,
                unit: None,
                objective: "p95 < 300 ms".into(),
                source: "prometheus".into(),
                query: None,
                window: None,
                message: Some("no series matched".into()),
            },
            description: None,
            from: DateTime::UNIX_EPOCH,
            to: DateTime::UNIX_EPOCH,
            problem,
        }
    }

    fn outcome() -> CheckOutcome {
        CheckOutcome {
            set: "shop".into(),
            from: DateTime::UNIX_EPOCH,
            to: DateTime::UNIX_EPOCH,
            results: vec![
                checked("fast", SloStatus::Pass, None),
                checked("quiet", SloStatus::Unknown, Some(Problem::NoData)),
            ],
            partial_run: None,
        }
    }

    #[test]
    fn an_unknown_slo_fails_the_junit_unless_allowed() {
        let gated = junit(&outcome(), false, &Provenance::default());
        assert!(gated.contains("failures=\"1\""), "{gated}");
        assert!(
            gated.contains("unknown, and the gate requires data: no series matched"),
            "{gated}"
        );
        let allowed = junit(&outcome(), true, &Provenance::default());
        assert!(allowed.contains("failures=\"0\""), "{allowed}");
        assert_eq!(allowed.matches("<skipped").count(), 1, "{allowed}");
    }

    /// The run's junit.xml renders what `attach` put in the report the same way.
    #[test]
    fn the_run_junit_and_the_slo_junit_agree() {
        for allow_unknown in [false, true] {
            let mut report = crate::testing::report::run_report(
                chrono::Utc::now(),
                2,
                &[crate::testing::report::TransactionSpec::new(
                    "browse",
                    vec![1_000; 4],
                    0,
                )],
            );
            report.thresholds.clear();
            crate::attach(&mut report, &outcome(), allow_unknown);
            let run = reports::Renderer::render(&reports::render::JunitRenderer, &report).unwrap();
            let slo = junit(&outcome(), allow_unknown, &Provenance::default());
            for xml in [&run, &slo] {
                let failures = xml.matches("<failure").count();
                let skipped = xml.matches("<skipped").count();
                assert_eq!(
                    (failures, skipped),
                    if allow_unknown { (0, 1) } else { (1, 0) },
                    "allow_unknown {allow_unknown}: {xml}"
                );
            }
        }
    }
}
