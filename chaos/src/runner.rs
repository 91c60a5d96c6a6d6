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

use chrono::{DateTime, Utc};
use futures::future::join_all;
use tokio_util::sync::CancellationToken;

use crate::action::Action;
use crate::error::ChaosError;
use crate::journal::{ActionRecord, Outcome};
use crate::model::Experiment;
use crate::outcome::ExperimentOutcome;
use crate::plan::{Planned, timeline};
use crate::steady::{Hypothesis, PhaseVerdict};

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
///
/// The three windows the hypothesis is judged over:
/// - *before*: `steady_state.before` long, ending when the method starts;
/// - *during*: from the start of the first action that ran through the end of the last one's
///   recovery (an action returns once its target has recovered, or its recovery timed out; an
///   action that lasts, such as brokers down for 10 s, returns after its duration and then its
///   recovery) — so the disruption and the way back are judged, not the calm before;
/// - *after*: `steady_state.after` long, starting when the last recovery has ended and the
///   rollbacks are done — at the first instant from which the sources count nothing earlier
///   ([`Hypothesis::clean_start`]: Prometheus SLIs count whole steps).
///
/// Each window is a `steady-state.<phase>` journal record whose start and end are the window.
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
        started_at: Some(Utc::now()),
        ..ExperimentOutcome::default()
    };
    let allow_unknown = outcome.allow_unknown;
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
                let verdict = PhaseVerdict::of(&checked, allow_unknown);
                outcome
                    .journal
                    .push(probe("steady-state.before", (from, to), &checked, verdict));
                say(format!(
                    "steady state before ({}): {verdict}{}",
                    window_text(from, to),
                    if verdict.passes() {
                        ""
                    } else {
                        "; the method is skipped"
                    }
                ));
                run_method = verdict.passes();
                outcome.before = Some(checked);
            }
            None => {
                outcome.interrupted = true;
                run_method = false;
            }
        }
    }

    // Method, with the halt watch beside it.
    let plan = timeline(&experiment.method);
    let method_cancel = cancel.child_token();
    let halted = Mutex::new(None::<String>);
    let mut during_window = None;
    if run_method {
        let method_start = Utc::now();
        outcome.method_started_at = Some(method_start);
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
        let method_end = Utc::now();
        during_window = Some(disruption_window(
            records.iter().map(|(r, _)| r),
            (method_start, method_end),
        ));
        outcome
            .journal
            .extend(records.iter().map(|(r, _)| r.clone()));
        outcome
            .errors
            .extend(records.into_iter().filter_map(|(_, e)| e));
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

    // During: judged over what actually happened (the method may have stopped early), from
    // Prometheus's history once its data for the window is in — meanwhile the rollbacks run
    // and the "after" window is observed. Live sources have nothing left to sample.
    let method_events: Vec<_> = outcome
        .journal
        .iter()
        .map(ActionRecord::to_journal_event)
        .collect();
    let during = async {
        let (Some(h), Some(_), Some((from, to))) = (hypothesis, steady, during_window) else {
            return None;
        };
        let complete = to + chrono::Duration::from_std(h.settle()).unwrap_or_default();
        if let Ok(wait) = (complete - Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        let checked = h.check(from, to, &method_events).await;
        Some(((from, to), checked))
    };

    // Rollbacks: always, with their own token — they must not be cancelled by what stopped
    // the method. Then after.
    let interrupted = outcome.interrupted;
    let rollbacks_then_after = async {
        let mut records = Vec::new();
        let mut errors = Vec::new();
        let rollback_cancel = CancellationToken::new();
        for action in &bound.rollbacks {
            say(format!("rollback: {} {}", action.kind(), action.target()));
            let (record, error) = execute(action.as_ref(), &rollback_cancel).await;
            records.push(record);
            errors.extend(error);
        }
        let mut after = None;
        if let (Some(h), Some(s)) = (hypothesis, steady)
            && run_method
            && !interrupted
        {
            let events: Vec<_> = method_events
                .iter()
                .cloned()
                .chain(records.iter().map(ActionRecord::to_journal_event))
                .collect();
            // The last recovery is over (actions return after it) and the rollbacks are done;
            // the window starts where the sources count nothing from before that.
            let from =
                h.clean_start(during_window.map_or(Utc::now(), |(_, to)| to.max(Utc::now())));
            let to = from + chrono::Duration::from_std(s.after).unwrap_or_default();
            say(format!(
                "steady state after: observing {} ({})",
                humantime::format_duration(s.after),
                window_text(from, to)
            ));
            let checked = tokio::select! {
                checked = h.check(from, to, &events) => Some(checked),
                _ = cancel.cancelled() => None,
            };
            after = Some(checked.map(|c| ((from, to), c)));
        }
        (records, errors, after)
    };
    let (during, (rollback_records, rollback_errors, after)) =
        tokio::join!(during, rollbacks_then_after);

    if let Some((window, checked)) = during {
        let verdict = PhaseVerdict::of(&checked, allow_unknown);
        say(format!(
            "steady state during ({}): {verdict} (informational)",
            window_text(window.0, window.1)
        ));
        outcome
            .journal
            .push(probe("steady-state.during", window, &checked, verdict));
        outcome.during = Some(checked);
    }
    outcome.journal.extend(rollback_records);
    outcome.errors.extend(rollback_errors);
    match after {
        Some(Some((window, checked))) => {
            let verdict = PhaseVerdict::of(&checked, allow_unknown);
            say(format!("steady state after: {verdict}"));
            outcome
                .journal
                .push(probe("steady-state.after", window, &checked, verdict));
            outcome.after = Some(checked);
        }
        Some(None) => outcome.interrupted = true,
        None => {}
    }
    // Concurrent actions end out of order; the journal reads in the order things started.
    outcome.journal.sort_by_key(|r| r.started_at);
    outcome
}

/// The "during" window: from the start of the first action that ran through the end of the
/// last disruption (start through recovery). When nothing ran (halted or interrupted before
/// the first action), the method's own span.
pub fn disruption_window<'r>(
    records: impl Iterator<Item = &'r ActionRecord>,
    method: (DateTime<Utc>, DateTime<Utc>),
) -> (DateTime<Utc>, DateTime<Utc>) {
    records
        .filter_map(ActionRecord::disruption)
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
        .unwrap_or(method)
}

fn window_text(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!(
        "{} to {}, {:.1} s",
        from.format("%H:%M:%S%.3f"),
        to.format("%H:%M:%S%.3f"),
        (to - from).num_milliseconds() as f64 / 1000.0
    )
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

/// A steady-state check as a journal record: its start and end are the phase's window; the
/// detail says the window, the whole seconds the SLO engine judged, and each SLO's status.
fn probe(
    name: &str,
    window: (DateTime<Utc>, DateTime<Utc>),
    checked: &slo::CheckOutcome,
    verdict: PhaseVerdict,
) -> ActionRecord {
    let verdicts: Vec<String> = checked
        .results
        .iter()
        .map(|c| format!("{}: {}", c.verdict.name, c.verdict.status))
        .collect();
    ActionRecord {
        action: name.to_string(),
        target: checked.set.clone(),
        started_at: window.0,
        ended_at: Some(window.1),
        outcome: verdict.outcome(),
        affected: Vec::new(),
        recovery: None,
        detail: Some(format!(
            "window {} (judged over {} to {}): {verdict}; {}",
            window_text(window.0, window.1),
            checked.from.format("%H:%M:%S"),
            checked.to.format("%H:%M:%S"),
            verdicts.join(", ")
        )),
    }
}
