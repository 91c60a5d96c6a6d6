//! The method as a timeline: each step's occurrences (`at`, `repeat_every`, `count`) expanded
//! and ordered, how long the whole method lasts, and the dry run — the same safety checks as a
//! real run (through [`Preflight`]), the exact plan printed, nothing started or sent.

use std::time::Duration;

use chrono::Utc;

use crate::error::ChaosError;
use crate::journal::{ActionRecord, Outcome};
use crate::model::{ActionSpec, Experiment, Step};

/// One occurrence of a step.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    /// Index into the method's steps.
    pub step: usize,
    pub name: String,
    /// From the start of the method.
    pub offset: Duration,
}

/// Every occurrence of every step, by offset (file order breaks ties).
pub fn timeline(steps: &[Step]) -> Vec<Planned> {
    let mut plan: Vec<Planned> = steps
        .iter()
        .enumerate()
        .flat_map(|(step, s)| {
            s.occurrences().into_iter().map(move |offset| Planned {
                step,
                name: s.name.clone(),
                offset,
            })
        })
        .collect();
    plan.sort_by_key(|p| (p.offset, p.step));
    plan
}

/// When the method is over if nothing is cut short: the last occurrence's offset plus how long
/// its action keeps the system broken.
pub fn span(steps: &[Step]) -> Duration {
    steps
        .iter()
        .flat_map(|s| {
            s.occurrences()
                .into_iter()
                .map(|offset| offset + s.action.nominal_duration())
        })
        .max()
        .unwrap_or_default()
}

/// The whole experiment as planned: before + method + after.
pub fn total(experiment: &Experiment) -> Duration {
    let (before, after) = experiment
        .steady_state
        .as_ref()
        .map(|s| (s.before, s.after))
        .unwrap_or_default();
    before + span(&experiment.method) + after
}

/// An action as the dry run checked it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checked {
    /// The exact requests or steps, in order.
    pub steps: Vec<String>,
    /// Safety rules evaluated now, and what they decided.
    pub passed: Vec<String>,
    /// What only the live target can answer (e.g. how many pods match a selector); the real
    /// run checks it when the action runs.
    pub deferred: Vec<String>,
}

/// A target as the dry run sees it. `check` must run the very functions the real run binds
/// actions with, so a dry run refuses (exit 2) exactly what the real run refuses — local:
/// [`crate::local::resolve`] against the stack's planned shape; kube:
/// [`crate::kube_actions::bind`] on an offline target.
pub trait Preflight {
    /// The target's own rules that were checked (allowlist, blast radius, brokers...).
    fn target(&self) -> Vec<String>;
    /// Checks `spec` as binding would and describes it; `Err` is the real run's refusal.
    fn check(&self, spec: &ActionSpec) -> Result<Checked, ChaosError>;
}

/// What a dry run prints and journals.
#[derive(Clone, Debug, Default)]
pub struct DryRun {
    pub lines: Vec<String>,
    /// One `dry-run` record per planned occurrence and rollback.
    pub records: Vec<ActionRecord>,
    /// Every deferred check, by step: what a live target still has to answer.
    pub deferred: Vec<String>,
}

/// The dry run: every method step and rollback through `target`'s checks (the first refusal
/// is returned, naming the file and step, with the kind — and exit code — the real run would
/// have), then the plan as lines and `dry-run` journal records. Nothing is started or sent.
pub fn dry_run(experiment: &Experiment, target: &dyn Preflight) -> Result<DryRun, ChaosError> {
    let check = |what: String, spec: &ActionSpec| {
        target
            .check(spec)
            .map_err(|e| e.map_message(|m| format!("{}: {what}: {m}", experiment.path.display())))
    };
    let method: Vec<Checked> = experiment
        .method
        .iter()
        .enumerate()
        .map(|(i, step)| {
            check(
                format!("method[{i}] `{}` ({})", step.name, step.action.kind()),
                &step.action,
            )
        })
        .collect::<Result<_, _>>()?;
    let rollbacks: Vec<Checked> = experiment
        .rollbacks
        .iter()
        .enumerate()
        .map(|(i, r)| {
            check(
                format!("rollbacks[{i}] `{}` ({})", r.name, r.action.kind()),
                &r.action,
            )
        })
        .collect::<Result<_, _>>()?;

    let mut lines = vec![format!(
        "experiment {} on target {} (dry run: nothing is started or sent)",
        experiment.metadata.name,
        experiment.target.name()
    )];
    if let Some(s) = &experiment.steady_state {
        let names: Vec<&str> = s.set.slos.iter().map(|slo| slo.name.as_str()).collect();
        lines.push(format!(
            "steady state ({}): check [{}] for {} before the method",
            s.origin,
            names.join(", "),
            humantime::format_duration(s.before)
        ));
    }
    for h in &experiment.safety.halt {
        lines.push(format!(
            "halt when `{}` fails over the last {} (checked every {})",
            h.slo,
            humantime::format_duration(experiment.safety.halt_window),
            humantime::format_duration(experiment.safety.halt_every)
        ));
    }
    let now = Utc::now();
    let mut records = Vec::new();
    let record = |kind: &str, name: &str, steps: &[String]| ActionRecord {
        action: kind.to_string(),
        target: name.to_string(),
        started_at: now,
        ended_at: None,
        outcome: Outcome::DryRun,
        affected: Vec::new(),
        recovery: None,
        detail: Some(steps.join("; ")),
    };
    for planned in timeline(&experiment.method) {
        let step = &experiment.method[planned.step];
        let steps = &method[planned.step].steps;
        lines.push(format!(
            "t+{} {} ({}):",
            humantime::format_duration(planned.offset),
            planned.name,
            step.action.kind()
        ));
        lines.extend(steps.iter().map(|s| format!("    {s}")));
        records.push(record(step.action.kind(), &planned.name, steps));
    }
    if experiment.steady_state.is_some() {
        lines.push(
            "steady state during: judged from the first action's start through the last recovery"
                .into(),
        );
    }
    for (rollback, checked) in experiment.rollbacks.iter().zip(&rollbacks) {
        lines.push(format!(
            "rollback {} ({}), always:",
            rollback.name,
            rollback.action.kind()
        ));
        lines.extend(checked.steps.iter().map(|s| format!("    {s}")));
        records.push(record(
            rollback.action.kind(),
            &rollback.name,
            &checked.steps,
        ));
    }
    if let Some(s) = &experiment.steady_state {
        lines.push(format!(
            "steady state after: check again for {}, from the end of the last recovery and the rollbacks",
            humantime::format_duration(s.after)
        ));
    }
    for expected in &experiment.alerts.expect {
        lines.push(format!(
            "alert {} must fire within {} of the method's start (Prometheus ALERTS, read after the experiment)",
            expected.name,
            humantime::format_duration(expected.within)
        ));
    }
    for name in &experiment.alerts.forbid {
        lines.push(format!("alert {name} must not fire during the experiment"));
    }

    lines.push("safety checks passed (the same rules a real run applies):".into());
    lines.extend(target.target().into_iter().map(|l| format!("    {l}")));
    let named = experiment
        .method
        .iter()
        .map(|s| &s.name)
        .zip(&method)
        .chain(experiment.rollbacks.iter().map(|r| &r.name).zip(&rollbacks));
    let mut deferred = Vec::new();
    for (name, checked) in named {
        lines.extend(checked.passed.iter().map(|p| format!("    {name}: {p}")));
        deferred.extend(checked.deferred.iter().map(|d| format!("{name}: {d}")));
    }
    if let Some(s) = &experiment.steady_state {
        deferred.push(format!(
            "steady state: the sources of [{}] answer with data (unknown fails the run unless allow_unknown)",
            s.set
                .source_kinds()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !experiment.alerts.is_empty() {
        deferred.push(format!(
            "alerts: Prometheus has alerting rules named {}",
            experiment.alerts.names().collect::<Vec<_>>().join(", ")
        ));
    }
    if deferred.is_empty() {
        lines.push("deferred to the live target: nothing".into());
    } else {
        lines.push(
            "deferred to the live target (checked by the real run when it gets there):".into(),
        );
        lines.extend(deferred.iter().map(|d| format!("    {d}")));
    }
    Ok(DryRun {
        lines,
        records,
        deferred,
    })
}
