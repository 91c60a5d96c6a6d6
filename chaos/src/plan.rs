//! The method as a timeline: each step's occurrences (`at`, `repeat_every`, `count`) expanded
//! and ordered, how long the whole method lasts, and the dry run — the exact plan printed,
//! nothing sent.

use std::time::Duration;

use chrono::Utc;

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

/// The dry run: the plan as lines, and the journal records (`dry-run`) the report shows.
/// `describe` gives the exact requests or steps of one action on the experiment's target.
pub fn dry_run(
    experiment: &Experiment,
    describe: &dyn Fn(&ActionSpec) -> Vec<String>,
) -> (Vec<String>, Vec<ActionRecord>) {
    let mut lines = vec![format!(
        "experiment {} on target {} (dry run: nothing is sent)",
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
        let steps = describe(&step.action);
        lines.push(format!(
            "t+{} {} ({}):",
            humantime::format_duration(planned.offset),
            planned.name,
            step.action.kind()
        ));
        lines.extend(steps.iter().map(|s| format!("    {s}")));
        records.push(record(step.action.kind(), &planned.name, &steps));
    }
    for rollback in &experiment.rollbacks {
        let steps = describe(&rollback.action);
        lines.push(format!(
            "rollback {} ({}), always:",
            rollback.name,
            rollback.action.kind()
        ));
        lines.extend(steps.iter().map(|s| format!("    {s}")));
        records.push(record(rollback.action.kind(), &rollback.name, &steps));
    }
    if let Some(s) = &experiment.steady_state {
        lines.push(format!(
            "steady state: check again for {} after the rollbacks",
            humantime::format_duration(s.after)
        ));
    }
    (lines, records)
}
