//! Running an experiment: steady state before, the method on its timeline (watched by the halt
//! conditions and by cancellation), rollbacks that always run, steady state after — every step
//! journaled.
//!
//! The order follows Chaos Toolkit: if the hypothesis does not hold before, the method is not
//! run (breaking an already broken system proves nothing). "During" is judged for the report
//! but does not fail the experiment on its own — degradation during the method is the point;
//! the halt conditions bound how far it may go.

use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use tokio_util::sync::CancellationToken;

use crate::action::Action;
use crate::error::ChaosError;
use crate::journal::{ActionRecord, Outcome};
use crate::model::Experiment;
use crate::outcome::ExperimentOutcome;
use crate::plan::{Planned, timeline};
use crate::steady::{Hypothesis, holds};

/// An experiment's actions, bound to their target.
pub struct Bound<'a> {
    /// One per step of `method`, in file order.
    pub method: Vec<Box<dyn Action + 'a>>,
    /// One per rollback, in file order.
    pub rollbacks: Vec<Box<dyn Action + 'a>>,
}

/// Runs `experiment`. `cancel` is Ctrl-C (or the end of the drill's load): the method stops,
/// rollbacks still run, the "after" check is skipped. `say` gets one line per step, for the
/// operator watching.
pub async fn run(
    experiment: &Experiment,
    bound: Bound<'_>,
    hypothesis: Option<&dyn Hypothesis>,
    halt_every: Duration,
    cancel: &CancellationToken,
    say: &(dyn Fn(String) + Sync),
) -> ExperimentOutcome {
    let mut outcome = ExperimentOutcome {
        allow_unknown: hypothesis.is_some_and(|h| h.allow_unknown()),
        ..ExperimentOutcome::default()
    };
    let steady = experiment.steady_state.as_ref();

    // Before.
    let mut run_method = true;
    if let (Some(h), Some(s)) = (hypothesis, steady) {
        say(format!(
            "steady state before: observing {} for {}",
            s.origin,
            humantime::format_duration(s.before)
        ));
        let from = Utc::now();
        let to = from + chrono::Duration::from_std(s.before).unwrap_or_default();
        let checked = tokio::select! {
            checked = h.check(from, to, &[]) => Some(checked),
            _ = cancel.cancelled() => None,
        };
        match checked {
            Some(checked) => {
                let ok = holds(&checked, outcome.allow_unknown);
                outcome
                    .journal
                    .push(probe("steady-state.before", &checked, ok));
                say(format!(
                    "steady state before: {}",
                    if ok {
                        "holds"
                    } else {
                        "does NOT hold; the method is skipped"
                    }
                ));
                run_method = ok;
                outcome.before = Some(checked);
            }
            None => {
                outcome.interrupted = true;
                run_method = false;
            }
        }
    }

    // Method, with the halt watch and the "during" check beside it.
    let plan = timeline(&experiment.method);
    let method_cancel = cancel.child_token();
    let method_start = Utc::now();
    let halted = Mutex::new(None::<String>);
    if run_method {
        let span = crate::plan::span(&experiment.method);
        let actions = run_timeline(&plan, &bound.method, &method_cancel, say);
        let halt_watch = async {
            let Some(h) = hypothesis else {
                return std::future::pending::<()>().await;
            };
            loop {
                tokio::time::sleep(halt_every).await;
                if let Some(reason) = h.halt().await {
                    say(format!("HALT: {reason}"));
                    *halted.lock().expect("halt lock") = Some(reason);
                    method_cancel.cancel();
                    return std::future::pending::<()>().await;
                }
            }
        };
        let records = tokio::select! {
            records = actions => records,
            _ = halt_watch => unreachable!("the halt watch never ends on its own"),
        };
        outcome
            .journal
            .extend(records.iter().map(|(r, _)| r.clone()));
        outcome
            .errors
            .extend(records.into_iter().filter_map(|(_, e)| e));
        let method_end = Utc::now();
        if let (Some(h), Some(_)) = (hypothesis, steady) {
            // Judged over what actually happened (the method may have stopped early), so
            // Prometheus answers from its history; live sources have nothing left to sample.
            let events: Vec<_> = outcome
                .journal
                .iter()
                .map(ActionRecord::to_journal_event)
                .collect();
            let planned_end = method_start + chrono::Duration::from_std(span).unwrap_or_default();
            let checked = h
                .check(
                    method_start,
                    method_end.min(planned_end).max(method_start),
                    &events,
                )
                .await;
            let ok = holds(&checked, outcome.allow_unknown);
            outcome
                .journal
                .push(probe("steady-state.during", &checked, ok));
            outcome.during = Some(checked);
        }
    } else {
        for (planned, action) in plan.iter().map(|p| (p, &bound.method[p.step])) {
            outcome
                .journal
                .push(skipped(action.as_ref(), planned, "the method was not run"));
        }
    }
    outcome.halted = halted.into_inner().expect("halt lock");
    if cancel.is_cancelled() {
        outcome.interrupted = true;
    }

    // Rollbacks: always, with their own token — they must not be cancelled by what stopped
    // the method.
    let rollback_cancel = CancellationToken::new();
    for action in &bound.rollbacks {
        say(format!("rollback: {} {}", action.kind(), action.target()));
        let (record, error) = execute(action.as_ref(), &rollback_cancel).await;
        outcome.journal.push(record);
        outcome.errors.extend(error);
    }

    // After.
    if let (Some(h), Some(s)) = (hypothesis, steady)
        && run_method
        && !outcome.interrupted
    {
        say(format!(
            "steady state after: observing for {}",
            humantime::format_duration(s.after)
        ));
        let events: Vec<_> = outcome
            .journal
            .iter()
            .map(ActionRecord::to_journal_event)
            .collect();
        let from = Utc::now();
        let to = from + chrono::Duration::from_std(s.after).unwrap_or_default();
        let checked = tokio::select! {
            checked = h.check(from, to, &events) => Some(checked),
            _ = cancel.cancelled() => None,
        };
        match checked {
            Some(checked) => {
                let ok = holds(&checked, outcome.allow_unknown);
                say(format!(
                    "steady state after: {}",
                    if ok { "holds" } else { "does NOT hold" }
                ));
                outcome
                    .journal
                    .push(probe("steady-state.after", &checked, ok));
                outcome.after = Some(checked);
            }
            None => outcome.interrupted = true,
        }
    }
    // Concurrent actions end out of order; the journal reads in the order things started.
    outcome.journal.sort_by_key(|r| r.started_at);
    outcome
}

/// Runs every planned occurrence at its offset, concurrently (a pod kill may happen while
/// brokers are down); occurrences not yet started when `cancel` fires are journaled as skipped.
async fn run_timeline(
    plan: &[Planned],
    actions: &[Box<dyn Action + '_>],
    cancel: &CancellationToken,
    say: &(dyn Fn(String) + Sync),
) -> Vec<(ActionRecord, Option<ChaosError>)> {
    let start = tokio::time::Instant::now();
    join_all(plan.iter().map(|planned| async move {
        let action = actions[planned.step].as_ref();
        tokio::select! {
            _ = tokio::time::sleep_until(start + planned.offset) => {}
            _ = cancel.cancelled() => {
                return (skipped(action, planned, "halted or interrupted before it was due"), None);
            }
        }
        if cancel.is_cancelled() {
            return (
                skipped(action, planned, "halted or interrupted before it was due"),
                None,
            );
        }
        say(format!(
            "t+{}: {} ({} {})",
            humantime::format_duration(planned.offset),
            planned.name,
            action.kind(),
            action.target()
        ));
        let (record, error) = execute(action, cancel).await;
        say(format!(
            "  {} {}: {}{}",
            record.action,
            record.target,
            record.outcome.as_str(),
            record
                .recovery
                .map(|r| format!(", recovered in {:.1} s", r.as_secs_f64()))
                .unwrap_or_default()
        ));
        (record, error)
    }))
    .await
}

/// Runs one action; an error becomes a failed record (and is kept for the exit code).
async fn execute(
    action: &dyn Action,
    cancel: &CancellationToken,
) -> (ActionRecord, Option<ChaosError>) {
    let started_at = Utc::now();
    match action.run(cancel).await {
        Ok(record) => (record, None),
        Err(error) => (
            ActionRecord {
                action: action.kind().to_string(),
                target: action.target(),
                started_at,
                ended_at: Some(Utc::now()),
                outcome: Outcome::Failed,
                affected: Vec::new(),
                recovery: None,
                detail: Some(error.to_string()),
            },
            Some(error),
        ),
    }
}

fn skipped(action: &dyn Action, planned: &Planned, why: &str) -> ActionRecord {
    let now = Utc::now();
    ActionRecord {
        action: action.kind().to_string(),
        target: action.target(),
        started_at: now,
        ended_at: Some(now),
        outcome: Outcome::Skipped,
        affected: Vec::new(),
        recovery: None,
        detail: Some(format!(
            "{} (t+{}): {why}",
            planned.name,
            humantime::format_duration(planned.offset)
        )),
    }
}

/// A steady-state check as a journal record.
fn probe(name: &str, checked: &slo::CheckOutcome, ok: bool) -> ActionRecord {
    let verdicts: Vec<String> = checked
        .results
        .iter()
        .map(|c| format!("{}: {}", c.verdict.name, c.verdict.status))
        .collect();
    ActionRecord {
        action: name.to_string(),
        target: checked.set.clone(),
        started_at: checked.from,
        ended_at: Some(checked.to),
        outcome: if ok { Outcome::Ok } else { Outcome::Failed },
        affected: Vec::new(),
        recovery: None,
        detail: Some(verdicts.join(", ")),
    }
}
