//! The capacity search itself: run each step of a [`CapacityPlan`] in turn, let the caller judge
//! it (SLOs) and keep it (write its report), and stop at the first step that breaks, at a load
//! that could not run, or when cancelled. In the library rather than the CLI so that the rules
//! — what stops the search, what a step that could not be judged means — are tested here.

use std::future::Future;

use reports::Report;
use tokio_util::sync::CancellationToken;

use super::{CapacityPlan, CapacityResult, StepResult};
use crate::{Profile, RunError, RunSpec};

/// What the caller does with each step.
pub trait Steps {
    /// Why the caller could not judge or keep a step.
    type Error;

    /// Judges a step's report beyond its thresholds (e.g. attaches SLO verdicts). `Err` means the
    /// step could not be judged: the step is still kept and recorded, and the search stops.
    fn judge(
        &mut self,
        users: u32,
        report: &mut Report,
    ) -> impl Future<Output = Result<(), Self::Error>>;

    /// Keeps a step's report (e.g. writes it). `Err` aborts the search at once.
    fn keep(&mut self, users: u32, report: &Report) -> Result<(), Self::Error>;

    /// A progress line for the operator.
    fn say(&mut self, line: String);
}

/// Why the search stopped before it reached an answer.
#[derive(Debug)]
pub enum Stop<E> {
    /// A step's load could not run (a bad scenario or target, an unreachable target). Its
    /// partial report, if any, was kept.
    Load(RunError),
    /// The caller could not judge a step.
    Judge(E),
}

/// The outcome of a search: the result (also when it stopped early) and why it stopped early.
#[derive(Debug)]
pub struct Searched<E> {
    pub result: CapacityResult,
    pub stopped: Option<Stop<E>>,
}

impl<E> Searched<E> {
    /// The search reached an answer, some step held, and at least `require` users did.
    pub fn holds(&self, require: Option<u32>) -> bool {
        let held = self.result.highest_holding.unwrap_or(0);
        let enough = require.is_none_or(|required| held >= required);
        self.stopped.is_none()
            && self.result.highest_holding.is_some()
            && self.result.interrupted.is_none()
            && enough
    }
}

/// Runs `plan`'s steps of `scenario` against `target`, with `base`'s thresholds, think time and
/// timeout. `Err` only when [`Steps::keep`] failed.
pub async fn search<S: Steps>(
    plan: &CapacityPlan,
    scenario: &str,
    target: &str,
    base: Option<&Profile>,
    quiet: bool,
    cancel: &CancellationToken,
    steps: &mut S,
) -> Result<Searched<S::Error>, S::Error> {
    let mut result = CapacityResult::new(scenario, target);
    let mut stopped = None;
    // Read and compiled once: every step runs the same scenario (a file's feeders included).
    let resolved = match crate::Scenario::resolve(scenario) {
        Ok(resolved) => resolved,
        Err(error) => {
            return Ok(Searched {
                result,
                stopped: Some(Stop::Load(error.into())),
            });
        }
    };
    let levels = plan.levels();
    for (n, users) in levels.iter().copied().enumerate() {
        steps.say(format!(
            "step {}/{}: {users} users for {}",
            n + 1,
            levels.len(),
            humantime::format_duration(plan.hold)
        ));
        let spec = RunSpec {
            scenario: scenario.to_string(),
            target: target.to_string(),
            profile: plan.profile(users, base),
            quiet,
            thresholds: Vec::new(),
        };
        let mut report = match crate::execute_scenario(&resolved, spec, cancel).await {
            Ok(report) => report,
            Err(error) if error.is_usage() => {
                stopped = Some(Stop::Load(error));
                break;
            }
            Err(error) => {
                result.interrupted = Some(error.to_string());
                if let Some(report) = error.partial_report() {
                    steps.keep(users, report)?;
                }
                stopped = Some(Stop::Load(error));
                break;
            }
        };
        if let Err(error) = steps.judge(users, &mut report).await {
            result.interrupted = Some("an SLO source failed".to_string());
            stopped = Some(Stop::Judge(error));
        }
        steps.keep(users, &report)?;
        if report.partial {
            result.interrupted = report.partial_reason.clone();
        }
        let go_on = result.record(StepResult::of(users, &report));
        steps.say(format!(
            "  {} requests, {:.1} req/s: {}",
            report.totals.requests,
            report.totals.rps,
            if go_on { "held" } else { "broke" }
        ));
        if !go_on || stopped.is_some() || report.partial {
            break;
        }
    }
    Ok(Searched { result, stopped })
}
