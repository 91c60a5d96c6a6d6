//! An on-call drill: load, the chaos experiment inside it after a warm-up, and one report with
//! the steady state before/during/after, the journal, recovery times and, on the embedded stack,
//! the order accounting (acknowledged vs stored vs `order.created` events; 0 lost is expected).

use std::time::Duration;

use reports::{Report, Verdict};
use scenarios::{RunError, RunSpec, Scenario};
use shop::stack::Stack;
use tokio_util::sync::CancellationToken;

use super::{DrillError, Prepared, execute};
use crate::orders::OrderCounts;
use crate::{ChaosError, Conclusion, Experiment, ExperimentOutcome};

/// What a drill runs: a prepared experiment, the load around it, and the stack it runs on.
pub struct Drill<'a> {
    pub experiment: &'a Experiment,
    pub prepared: &'a Prepared,
    /// The embedded stack (local experiments, and order accounting), if any.
    pub stack: Option<&'a Stack>,
    /// The load; its profile should last the warm-up, the experiment and a margin.
    pub load: RunSpec,
    /// Load runs this long before the experiment starts, so the steady state is measured on a
    /// warm system.
    pub warmup: Duration,
    /// The load's scenario, resolved; `load.scenario` is only its name. Its `accounting:
    /// {orders: ...}` declares the transaction that is exactly one order placement; without one
    /// there is no order accounting.
    pub scenario: Scenario,
}

/// What a drill produced.
#[derive(Debug)]
pub struct DrillOutcome {
    /// The load's report with the experiment's journal and verdicts (and the accounting's)
    /// merged in, its verdict recomputed.
    pub report: Report,
    pub experiment: ExperimentOutcome,
    /// The load was cut short (target unreachable, load generator failed); its partial report
    /// is `report`, before the merge.
    pub load_failure: Option<RunError>,
    /// The order accounting, on the embedded stack only.
    pub accounting: Option<Result<OrderCounts, ChaosError>>,
}

impl DrillOutcome {
    /// What the drill concludes, in order: a load that was cut short, an experiment that was
    /// refused or could not reach its target, an accounting that could not be made, and then
    /// the report's verdict (hypothesis, recoveries, accounting).
    pub fn conclusion(&self) -> Conclusion {
        if let Some(error) = &self.load_failure {
            return if error.is_usage() {
                Conclusion::Invalid
            } else {
                Conclusion::Unreachable
            };
        }
        let experiment = self.experiment.conclusion();
        if matches!(experiment, Conclusion::Invalid | Conclusion::Unreachable) {
            return experiment;
        }
        if let Some(Err(error)) = &self.accounting {
            return error.conclusion();
        }
        match self.report.verdict {
            Verdict::Pass => Conclusion::Pass,
            Verdict::Fail => Conclusion::Failed,
        }
    }
}

/// The accounting as one line for the operator.
pub fn accounting_line(counts: &OrderCounts) -> String {
    format!(
        "orders: {} acknowledged, {} found, {} with an order.created event, {} unsent in the outbox (lost: {} orders, {} events)",
        counts.acknowledged,
        counts.found,
        counts.events,
        counts.unsent,
        counts.lost_orders(),
        counts.lost_events()
    )
}

/// Runs the drill. A cancelled `shutdown` stops both the load and the experiment; a load that
/// ends early on its own (the target died) stops the experiment too. Rollbacks run either way.
/// `say` gets the experiment's progress lines.
pub async fn run(
    drill: Drill<'_>,
    shutdown: &CancellationToken,
    say: &(dyn Fn(String) + Sync),
) -> Result<DrillOutcome, DrillError> {
    let cancel = shutdown.child_token();
    let load = async {
        let result = scenarios::execute_scenario(&drill.scenario, drill.load, shutdown).await;
        // No load (the target does not answer) or load cut short: the experiment stops too.
        if !matches!(&result, Ok(report) if !report.partial) {
            cancel.cancel();
        }
        result
    };
    let experiment_run = async {
        tokio::select! {
            _ = tokio::time::sleep(drill.warmup) => {}
            _ = cancel.cancelled() => {}
        }
        execute(drill.experiment, drill.prepared, drill.stack, &cancel, say).await
    };
    let (load, outcome) = tokio::join!(load, experiment_run);
    let outcome = outcome?;
    let (mut report, load_failure) = match load {
        Ok(report) => (report, None),
        Err(error) => match error.partial_report() {
            Some(report) => (report.clone(), Some(error)),
            None => return Err(error.into()),
        },
    };

    // A drill is judged by its hypothesis, its recoveries and the order accounting; the load
    // profile's client thresholds (made for load runs) would fail it for the degradation the
    // drill causes on purpose.
    report.thresholds.clear();
    report.journal.extend(
        outcome
            .journal
            .iter()
            .map(crate::ActionRecord::to_journal_event),
    );
    report.journal.sort_by_key(|e| e.at);
    report.slos.extend(outcome.verdicts());
    let mut accounting = None;
    if let (Some(stack), Some(transaction)) = (drill.stack, drill.scenario.order_transaction()) {
        let acknowledged = crate::orders::acknowledged(&report, transaction);
        let counts = crate::orders::count_in(stack, acknowledged).await;
        if let Ok(counts) = &counts {
            report.slos.extend(counts.verdicts());
        }
        accounting = Some(counts);
    }
    report.recompute_verdict();
    Ok(DrillOutcome {
        report,
        experiment: outcome,
        load_failure,
        accounting,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use slo::testing::report::{TransactionSpec, run_report};

    fn outcome() -> DrillOutcome {
        let mut report = run_report(
            chrono::Utc::now(),
            2,
            &[TransactionSpec::new("place_order", vec![1_000; 4], 0)],
        );
        report.thresholds.clear();
        report.recompute_verdict();
        DrillOutcome {
            report,
            experiment: ExperimentOutcome::default(),
            load_failure: None,
            accounting: None,
        }
    }

    fn counts(found: u64) -> OrderCounts {
        OrderCounts {
            acknowledged: 4,
            found,
            events: found,
            unsent: 0,
        }
    }

    #[test]
    fn a_clean_drill_passes_and_a_failed_verdict_fails() {
        let mut drill = outcome();
        assert_eq!(drill.conclusion(), Conclusion::Pass);
        drill.report.slos.extend(counts(3).verdicts());
        drill.report.recompute_verdict();
        assert_eq!(drill.conclusion(), Conclusion::Failed, "one order lost");
    }

    #[test]
    fn a_refused_or_unreachable_experiment_wins_over_the_verdict() {
        let mut drill = outcome();
        drill
            .experiment
            .errors
            .push(ChaosError::Refused("blast radius".into()));
        drill.accounting = Some(Err(ChaosError::Unreachable("order db".into())));
        assert_eq!(drill.conclusion(), Conclusion::Invalid);
        drill.experiment.errors = vec![ChaosError::Failed("pod came back late".into())];
        assert_eq!(
            drill.conclusion(),
            Conclusion::Unreachable,
            "a plain failure of an action does not hide an accounting that could not be made"
        );
    }

    #[test]
    fn a_load_cut_short_wins_over_everything() {
        let mut drill = outcome();
        drill.experiment.errors = vec![ChaosError::Refused("blast radius".into())];
        drill.load_failure = Some(RunError::Unreachable {
            target: "http://127.0.0.1:9".into(),
            reason: "connection refused".into(),
            report: Box::new(drill.report.clone()),
        });
        assert_eq!(drill.conclusion(), Conclusion::Unreachable);
        drill.load_failure = Some(RunError::InvalidTarget {
            target: "ftp://x".into(),
            reason: "not http".into(),
        });
        assert_eq!(drill.conclusion(), Conclusion::Invalid);
    }

    #[test]
    fn the_accounting_line_says_what_was_lost() {
        assert_eq!(
            accounting_line(&counts(3)),
            "orders: 4 acknowledged, 3 found, 3 with an order.created event, 0 unsent in the outbox (lost: 1 orders, 0 events)"
        );
    }
}
