//! The capacity search itself: run each step of a [`CapacityPlan`] in turn, let the caller judge
//! it (SLOs) and keep it (write its report), and stop at the first step that breaks, at a load
//! that could not run, or when cancelled. In the library rather than the CLI so that the rules
//! — what stops the search, what a step that could not be judged means — are tested here.

use std::future::Future;
use std::time::Duration;

use reports::Report;
use tokio_util::sync::CancellationToken;

use super::{
    Bisection, CapacityPlan, CapacityResult, Dimension, RatePlan, ServiceFigures, StepResult,
    kept_up, trim,
};
use crate::{Profile, RunError, RunSpec};

/// Which search to run.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    Users(CapacityPlan),
    Rate(RatePlan),
}

impl Plan {
    fn dimension(&self) -> Dimension {
        match self {
            Plan::Users(_) => Dimension::Users,
            Plan::Rate(_) => Dimension::Rate,
        }
    }

    /// The most steps the search can take, announced before the first one.
    pub fn max_steps(&self) -> usize {
        match self {
            Plan::Users(plan) => plan.levels().len(),
            Plan::Rate(plan) => plan.max_steps(),
        }
    }

    fn hold(&self) -> std::time::Duration {
        match self {
            Plan::Users(plan) => plan.hold,
            Plan::Rate(plan) => plan.hold,
        }
    }

    fn ramp(&self) -> std::time::Duration {
        match self {
            Plan::Users(plan) => plan.ramp,
            Plan::Rate(plan) => plan.warmup,
        }
    }
}

/// One step of a search, as the caller sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// 1-based, in the order the steps run.
    pub number: usize,
    /// Users, or iterations per second.
    pub load: f64,
    /// A name for the step's files: `step-00010` (users), `step-03-105rps` (rate).
    pub label: String,
}

/// The loads to try, one after the other, each chosen from how the previous ones went.
enum Ladder {
    Users(std::vec::IntoIter<u32>),
    Rate(Bisection),
}

impl Ladder {
    fn of(plan: &Plan) -> (Self, Option<f64>) {
        match plan {
            Plan::Users(plan) => {
                let mut levels = plan.levels().into_iter();
                let first = levels.next().map(f64::from);
                (Ladder::Users(levels), first)
            }
            Plan::Rate(plan) => {
                let bisection = Bisection::new(plan.clone());
                let first = Some(bisection.first());
                (Ladder::Rate(bisection), first)
            }
        }
    }

    /// The next load after `load` went `passed`; a user search stops at its first failure.
    fn next(&mut self, load: f64, passed: bool) -> Option<f64> {
        match self {
            Ladder::Users(levels) => passed.then(|| levels.next().map(f64::from)).flatten(),
            Ladder::Rate(bisection) => bisection.next(load, passed),
        }
    }
}

/// What the caller does with each step.
pub trait Steps {
    /// Why the caller could not judge or keep a step.
    type Error;

    /// Judges a step's report beyond its thresholds (e.g. attaches SLO verdicts). `Err` means the
    /// step could not be judged: the step is still kept and recorded, and the search stops.
    fn judge(
        &mut self,
        step: &Step,
        report: &mut Report,
    ) -> impl Future<Output = Result<(), Self::Error>>;

    /// Keeps a step's report (e.g. writes it). `Err` aborts the search at once.
    fn keep(&mut self, step: &Step, report: &Report) -> Result<(), Self::Error>;

    /// A progress line for the operator.
    fn say(&mut self, line: String);

    /// What each service did during the step's hold (the report's run after `ramp`), e.g. from
    /// Prometheus; empty when there is no one to ask. `Err` says why the figures are missing;
    /// the search goes on without them.
    fn services(
        &mut self,
        _step: &Step,
        _report: &Report,
        _ramp: Duration,
    ) -> impl Future<Output = Result<Vec<ServiceFigures>, String>> {
        async { Ok(Vec::new()) }
    }

    /// The CPU one service may use, in cores, when known (CPU saturation is judged against it).
    fn service_cpu_limit(&self) -> Option<f64> {
        None
    }

    /// Live metrics every step feeds (see [`crate::live`]); none by default.
    fn live(&self) -> Option<std::sync::Arc<dyn crate::live::LiveSink>> {
        None
    }
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
    /// The search reached an answer, some step held, and at least `require` load did.
    pub fn holds(&self, require: Option<f64>) -> bool {
        let held = self.result.highest_holding.unwrap_or(0.0);
        let enough = require.is_none_or(|required| held >= required);
        self.stopped.is_none()
            && self.result.highest_holding.is_some()
            && self.result.interrupted.is_none()
            && enough
    }
}

/// Runs `plan`'s steps of `scenario` against `target`, with `base`'s thresholds, think time and
/// timeout, then fits the model to the steps. `Err` only when [`Steps::keep`] failed.
pub async fn search<S: Steps>(
    plan: &Plan,
    scenario: &str,
    target: &str,
    base: Option<&Profile>,
    quiet: bool,
    cancel: &CancellationToken,
    steps: &mut S,
) -> Result<Searched<S::Error>, S::Error> {
    let mut result = CapacityResult::new(scenario, target, plan.dimension());
    result.p95_objective_ms = p95_objective_ms(base);
    result.service_cpu_limit = steps.service_cpu_limit();
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
    let dimension = plan.dimension();
    let most = plan.max_steps();
    steps.say(format!(
        "capacity search: at most {most} steps of {} hold each",
        humantime::format_duration(plan.hold())
    ));
    let (mut ladder, mut next) = Ladder::of(plan);
    let mut number = 0;
    while let Some(load) = next {
        number += 1;
        let step = Step {
            number,
            load,
            label: match plan {
                Plan::Users(_) => format!("step-{:05}", load as u32),
                Plan::Rate(_) => format!("step-{number:02}-{}rps", trim(load)),
            },
        };
        steps.say(format!(
            "step {number}/{most}: {} for {}",
            dimension.describe(load),
            humantime::format_duration(plan.hold())
        ));
        let profile = match plan {
            Plan::Users(plan) => plan.profile(load as u32, base),
            Plan::Rate(plan) => plan.profile(load, base),
        };
        let spec = RunSpec {
            scenario: scenario.to_string(),
            target: target.to_string(),
            profile,
            quiet,
            thresholds: Vec::new(),
            live: steps.live(),
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
                    steps.keep(&step, report)?;
                }
                stopped = Some(Stop::Load(error));
                break;
            }
        };
        if let Err(error) = steps.judge(&step, &mut report).await {
            result.interrupted = Some("an SLO source failed".to_string());
            stopped = Some(Stop::Judge(error));
        }
        steps.keep(&step, &report)?;
        if report.partial {
            result.interrupted = report.partial_reason.clone();
        }
        let mut figures = StepResult::of(load, &report, plan.ramp());
        match steps.services(&step, &report, plan.ramp()).await {
            Ok(services) => figures.services = services,
            Err(why) => {
                steps.say(format!("  per-service figures missing: {why}"));
                result.services_error.get_or_insert(why);
            }
        }
        if let Plan::Rate(plan) = plan {
            figures.judge_keeping_up(kept_up(&report, plan.warmup));
        }
        let passed = result.record(figures);
        steps.say(format!(
            "  {} requests, {:.1} req/s: {}",
            report.totals.requests,
            report.totals.rps,
            if passed { "held" } else { "broke" }
        ));
        if stopped.is_some() || report.partial {
            break;
        }
        next = ladder.next(load, passed);
    }
    result.analyze();
    Ok(Searched { result, stopped })
}

/// The p95 objective the steps are judged by: the base profile's `p95<…` threshold, or the
/// default thresholds' when it has none.
fn p95_objective_ms(base: Option<&Profile>) -> Option<f64> {
    use reports::{Comparison, ThresholdMetric};
    let thresholds = base
        .map(|p| p.thresholds.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(reports::default_thresholds);
    thresholds
        .iter()
        .find(|t| {
            t.metric == ThresholdMetric::P95
                && matches!(t.comparison, Comparison::Less | Comparison::LessOrEqual)
        })
        .map(|t| t.objective)
}
