//! What a check produced and what it means for a CI gate.
//!
//! Each SLO ends as a [`Checked`]: the run report's own [`SloVerdict`] (so reports and this
//! crate share one verdict type) plus the exact window and, for `unknown`, the kind of
//! problem. [`CheckOutcome::gate`] folds them into one decision with a fixed precedence, and
//! [`attach`] copies the verdicts into a run report.

use chrono::{DateTime, Utc};
use reports::{Report, SloStatus, SloVerdict};
use serde::Serialize;

/// Why an SLO could not be judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// The source answered, with nothing to judge (no series, no samples, no requests).
    NoData,
    /// The SLO needs a source nobody configured (e.g. no `--prometheus-url`).
    NotConfigured,
    /// The source could not be reached.
    Unreachable,
    /// The source refused the question (e.g. invalid PromQL, unknown HPA).
    Rejected,
}

/// One judged SLO.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Checked {
    #[serde(flatten)]
    pub verdict: SloVerdict,
    /// The SLO's description from the file.
    pub description: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Set when the status is `unknown`.
    pub problem: Option<Problem>,
}

/// Every verdict of one check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckOutcome {
    /// The SLO set's `metadata.name`.
    pub set: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub results: Vec<Checked>,
    /// Why the run judged was partial (interrupted, target down...), when it was: a partial
    /// run fails the gate whatever its SLOs say — it did not run the load it was meant to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_run: Option<String>,
}

/// The decision of a gate over a whole check, in order of precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Every SLO passed or warned (unknowns only with `allow_unknown`).
    Pass,
    /// An SLO failed, or one is unknown for lack of data and unknowns are not allowed.
    Failed,
    /// The SLO set asks something wrong: a rejected query or an unconfigured source.
    Invalid,
    /// A source could not be reached; this is never waved through by `allow_unknown`, since
    /// nothing was checked at all.
    Unreachable,
}

impl CheckOutcome {
    /// The verdicts alone, in SLO file order.
    pub fn verdicts(&self) -> Vec<SloVerdict> {
        self.results.iter().map(|c| c.verdict.clone()).collect()
    }

    pub fn count(&self, status: SloStatus) -> usize {
        self.results
            .iter()
            .filter(|c| c.verdict.status == status)
            .count()
    }

    /// The gate decision: a partial run or a failed SLO wins (a definite answer), then a
    /// configuration problem, then an unreachable source, then unknowns for lack of data unless
    /// `allow_unknown`.
    pub fn gate(&self, allow_unknown: bool) -> Gate {
        let has = |problem: Problem| self.results.iter().any(|c| c.problem == Some(problem));
        if self.partial_run.is_some() || self.count(SloStatus::Fail) > 0 {
            Gate::Failed
        } else if has(Problem::Rejected) || has(Problem::NotConfigured) {
            Gate::Invalid
        } else if has(Problem::Unreachable) {
            Gate::Unreachable
        } else if self.count(SloStatus::Unknown) > 0 && !allow_unknown {
            Gate::Failed
        } else {
            Gate::Pass
        }
    }
}

impl Checked {
    /// The verdict as the gate judges it: an `unknown` that gates becomes `fail` (the reason
    /// kept in the message), since a gate must never pass on missing data. Only an SLO without
    /// data is let through by `allow_unknown`; one whose source was unreachable, refused the
    /// query or is not configured was not checked at all and always gates.
    pub fn gated_verdict(&self, allow_unknown: bool) -> SloVerdict {
        let mut verdict = self.verdict.clone();
        let waved_through = allow_unknown && self.problem == Some(Problem::NoData);
        if verdict.status == SloStatus::Unknown && !waved_through {
            verdict.status = SloStatus::Fail;
            let why = verdict.message.take().unwrap_or_default();
            verdict.message = Some(format!("unknown, and the gate requires data: {why}"));
        }
        verdict
    }
}

impl CheckOutcome {
    /// Every verdict as the gate judges it (see [`Checked::gated_verdict`]), in SLO file order:
    /// what a run report and `slo-junit.xml` carry.
    pub fn gated_verdicts(&self, allow_unknown: bool) -> Vec<SloVerdict> {
        self.results
            .iter()
            .map(|c| c.gated_verdict(allow_unknown))
            .collect()
    }
}

/// Puts the outcome's verdicts into `report.slos` (replacing verdicts of the same name) and
/// recomputes the report's verdict. A run report only fails on `fail`, so unknowns that gate
/// are recorded as `fail` (see [`Checked::gated_verdict`]), with the reason kept in the message.
pub fn attach(report: &mut Report, outcome: &CheckOutcome, allow_unknown: bool) {
    for verdict in outcome.gated_verdicts(allow_unknown) {
        match report.slos.iter_mut().find(|s| s.name == verdict.name) {
            Some(existing) => *existing = verdict,
            None => report.slos.push(verdict),
        }
    }
    report.recompute_verdict();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(status: SloStatus, problem: Option<Problem>) -> Checked {
        Checked {
            verdict: SloVerdict {
                name: format!("{status:?}-{problem:?}"),
                status,
                measured: None,
                unit: None,
                objective: "x < 1".into(),
                source: "prometheus".into(),
                query: None,
                window: None,
                message: None,
            },
            description: None,
            from: DateTime::UNIX_EPOCH,
            to: DateTime::UNIX_EPOCH,
            problem,
        }
    }

    fn outcome(results: Vec<Checked>) -> CheckOutcome {
        CheckOutcome {
            set: "t".into(),
            from: DateTime::UNIX_EPOCH,
            to: DateTime::UNIX_EPOCH,
            results,
            partial_run: None,
        }
    }

    #[test]
    fn the_gate_has_a_fixed_precedence() {
        let pass = || checked(SloStatus::Pass, None);
        let warn = || checked(SloStatus::Warn, None);
        let fail = || checked(SloStatus::Fail, None);
        let no_data = || checked(SloStatus::Unknown, Some(Problem::NoData));
        let down = || checked(SloStatus::Unknown, Some(Problem::Unreachable));
        let bad = || checked(SloStatus::Unknown, Some(Problem::Rejected));

        assert_eq!(outcome(vec![pass(), warn()]).gate(false), Gate::Pass);
        assert_eq!(outcome(vec![pass(), no_data()]).gate(false), Gate::Failed);
        assert_eq!(outcome(vec![pass(), no_data()]).gate(true), Gate::Pass);
        assert_eq!(outcome(vec![pass(), down()]).gate(true), Gate::Unreachable);
        assert_eq!(outcome(vec![down(), bad()]).gate(true), Gate::Invalid);
        assert_eq!(
            outcome(vec![down(), bad(), fail()]).gate(true),
            Gate::Failed
        );
    }

    #[test]
    fn a_partial_run_never_passes() {
        let mut partial = outcome(vec![checked(SloStatus::Pass, None)]);
        partial.partial_run = Some("interrupted (Ctrl-C)".into());
        assert_eq!(partial.gate(true), Gate::Failed);
        partial
            .results
            .push(checked(SloStatus::Unknown, Some(Problem::Unreachable)));
        assert_eq!(partial.gate(true), Gate::Failed, "a definite answer wins");
    }
}

#[cfg(test)]
mod gated_tests {
    use super::*;

    fn checked(status: SloStatus, problem: Option<Problem>) -> Checked {
        Checked {
            verdict: SloVerdict {
                name: "s".into(),
                status,
                measured: None,
                unit: None,
                objective: "x < 1".into(),
                source: "prometheus".into(),
                query: None,
                window: None,
                message: Some("no series".into()),
            },
            description: None,
            from: DateTime::UNIX_EPOCH,
            to: DateTime::UNIX_EPOCH,
            problem,
        }
    }

    #[test]
    fn an_unknown_that_gates_is_a_failure_and_says_why() {
        let no_data = checked(SloStatus::Unknown, Some(Problem::NoData));
        let gated = no_data.gated_verdict(false);
        assert_eq!(gated.status, SloStatus::Fail);
        assert_eq!(
            gated.message.as_deref(),
            Some("unknown, and the gate requires data: no series")
        );
        assert_eq!(
            no_data.gated_verdict(true).status,
            SloStatus::Unknown,
            "allowed"
        );
        for problem in [
            Problem::Unreachable,
            Problem::Rejected,
            Problem::NotConfigured,
        ] {
            assert_eq!(
                checked(SloStatus::Unknown, Some(problem))
                    .gated_verdict(true)
                    .status,
                SloStatus::Fail,
                "{problem:?} was not checked at all: --allow-unknown does not let it through"
            );
        }
        let fail = checked(SloStatus::Fail, None);
        assert_eq!(fail.gated_verdict(true), fail.verdict);
    }
}
