//! Capacity planning: step the load up until the system stops meeting its objectives, report
//! the highest load that held, and fit a scalability model to the steps.
//!
//! Two searches. **Users** (closed model): ramp to N users and hold, N rising linearly; the
//! search stops at the first step that fails — beyond a breaking point, more load only measures
//! the damage. **Rate** (open model): what arrival rate is sustainable? Double the rate until a
//! step fails (bracketing), then bisect between the last rate that held and the first that
//! failed until they are within the resolution: few steps, a bounded and announced number.
//! Every step is an ordinary run judged like any run (thresholds, and SLOs when the caller
//! attaches them); an open-model step must also keep up (see [`kept_up`]), because a queue that
//! grows through a short hold can still be inside the latency thresholds at its end.
//! The steps then feed the Universal Scalability Law ([`usl`]) and the latency knee.

use std::time::Duration;

use reports::{LatencyHistogram, Report, Verdict};
use serde::{Deserialize, Serialize};

use crate::profile::{DEFAULT_REQUEST_TIMEOUT, Load, Profile, RateStage, UserStage};

pub mod render;
pub mod saturation;
mod search;
pub mod usl;

pub use saturation::{Saturation, ServiceFigures};
pub use search::{Plan, Searched, Step, Steps, Stop, search};

/// A capacity plan that makes no sense; the message names the flag.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("--start must be at least 1 user")]
    NoStart,
    #[error("--step must be at least 1 user")]
    NoStep,
    #[error("--max ({max}) must not be below --start ({start})")]
    MaxBelowStart { max: f64, start: f64 },
    #[error("--hold must be longer than zero")]
    NoHold,
    #[error("--start must be a rate above 0 requests per second")]
    NoStartRate,
    #[error("--resolution must be a percentage above 0 % and below 100 %, like 5%")]
    Resolution,
    #[error(
        "--hold must be at least 4s with --rate: a step is judged on whether its latency grew \
         between the first and the last third of the hold"
    )]
    ShortRateHold,
}

/// The user steps to try: `start`, `start + step`, ... up to `max` users.
#[derive(Clone, Debug, PartialEq)]
pub struct CapacityPlan {
    pub start: u32,
    pub step: u32,
    pub max: u32,
    /// How long each step holds its users (after the ramp).
    pub hold: Duration,
    /// How long each step takes to ramp from zero to its users.
    pub ramp: Duration,
}

impl CapacityPlan {
    /// Checks the plan makes sense; the message names the flag.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.start == 0 {
            return Err(PlanError::NoStart);
        }
        if self.step == 0 {
            return Err(PlanError::NoStep);
        }
        if self.max < self.start {
            return Err(PlanError::MaxBelowStart {
                max: self.max.into(),
                start: self.start.into(),
            });
        }
        if self.hold.is_zero() {
            return Err(PlanError::NoHold);
        }
        Ok(())
    }

    /// The user counts of every step, ascending; the last one is `max` when the steps do not
    /// land on it exactly, so the ceiling the caller named is always tried.
    pub fn levels(&self) -> Vec<u32> {
        let mut levels: Vec<u32> = (0..)
            .map(|k| self.start.saturating_add(k * self.step))
            .take_while(|users| *users <= self.max)
            .collect();
        if levels.last() != Some(&self.max) {
            levels.push(self.max);
        }
        levels
    }

    /// The profile of one step: ramp to `users`, hold, with `base`'s think time, timeout and
    /// thresholds.
    pub fn profile(&self, users: u32, base: Option<&Profile>) -> Profile {
        let stages = vec![
            UserStage {
                duration: self.ramp,
                users,
            },
            UserStage {
                duration: self.hold,
                users,
            },
        ];
        step_profile(
            format!("capacity-{users}"),
            format!(
                "capacity step: {users} users for {}",
                humantime::format_duration(self.hold)
            ),
            Load::Closed { stages },
            base,
        )
    }
}

/// The shortest hold of a rate step: three whole seconds to compare once the partial ones at
/// either end are left out.
const MIN_RATE_HOLD: Duration = Duration::from_secs(4);

/// The open-model search: bracket from `start` by doubling up to `max`, then bisect to
/// `resolution`.
#[derive(Clone, Debug, PartialEq)]
pub struct RatePlan {
    /// Iterations per second of the first step.
    pub start: f64,
    /// The highest rate tried.
    pub max: f64,
    /// The search ends when the rate that held and the one that failed are closer than this
    /// fraction of the one that held.
    pub resolution: f64,
    pub hold: Duration,
    /// How long each step ramps from zero to its rate before the hold is judged.
    pub warmup: Duration,
}

impl RatePlan {
    pub fn validate(&self) -> Result<(), PlanError> {
        if !(self.start > 0.0 && self.start.is_finite()) {
            return Err(PlanError::NoStartRate);
        }
        if self.max < self.start || !self.max.is_finite() {
            return Err(PlanError::MaxBelowStart {
                max: self.max,
                start: self.start,
            });
        }
        if !(self.resolution > 0.0 && self.resolution < 1.0) {
            return Err(PlanError::Resolution);
        }
        if self.hold < MIN_RATE_HOLD {
            return Err(PlanError::ShortRateHold);
        }
        Ok(())
    }

    /// The most steps the search can take: the doublings from `start` to `max`, then the
    /// halvings of an interval at most as wide as the rate that held, down to the resolution.
    pub fn max_steps(&self) -> usize {
        let doublings = (self.max / self.start).log2().ceil().max(0.0) as usize + 1;
        let halvings = (1.0 / self.resolution).log2().ceil().max(0.0) as usize;
        doublings + halvings
    }

    /// One step: ramp from zero to `rate` over the warm-up, hold it. Users enough for every
    /// iteration to last a second at that rate; a system slower than that runs the generator
    /// out of users, which shows as lateness — and the corrected latency, which judges the step,
    /// counts lateness. More users would only slow every step's start (Goose starts them all
    /// before the first arrival).
    pub fn profile(&self, rate: f64, base: Option<&Profile>) -> Profile {
        let stages = vec![
            RateStage {
                duration: self.warmup,
                rate,
            },
            RateStage {
                duration: self.hold,
                rate,
            },
        ];
        let max_users = rate.ceil().clamp(8.0, 4096.0) as u32;
        step_profile(
            format!("capacity-{}rps", trim(rate)),
            format!(
                "capacity step: {} iterations/s for {}",
                trim(rate),
                humantime::format_duration(self.hold)
            ),
            Load::Open {
                start_rate: 0.0,
                max_users,
                stages,
            },
            base,
        )
    }
}

fn step_profile(name: String, description: String, load: Load, base: Option<&Profile>) -> Profile {
    Profile {
        name,
        description: Some(description),
        load,
        thresholds: base.map(|p| p.thresholds.clone()).unwrap_or_default(),
        think_time: base.and_then(|p| p.think_time),
        request_timeout: base.map_or(DEFAULT_REQUEST_TIMEOUT, |p| p.request_timeout),
        worker: None,
        aborts: Vec::new(),
    }
}

/// `105`, `52.5`: a rate without trailing zeros.
fn trim(rate: f64) -> String {
    let text = format!("{rate:.1}");
    text.strip_suffix(".0").unwrap_or(&text).to_string()
}

/// The rate search's state: the highest rate that held, the lowest that failed.
#[derive(Clone, Debug, PartialEq)]
pub struct Bisection {
    plan: RatePlan,
    held: Option<f64>,
    failed: Option<f64>,
}

impl Bisection {
    pub fn new(plan: RatePlan) -> Self {
        Self {
            plan,
            held: None,
            failed: None,
        }
    }

    pub fn first(&self) -> f64 {
        self.plan.start
    }

    /// Records how `rate` went; the next rate to try, `None` when the answer is known.
    pub fn next(&mut self, rate: f64, passed: bool) -> Option<f64> {
        if passed {
            self.held = Some(self.held.map_or(rate, |h| h.max(rate)));
        } else {
            self.failed = Some(self.failed.map_or(rate, |f| f.min(rate)));
        }
        match (self.held, self.failed) {
            // Nothing held, not even the start: there is no rate to bisect towards.
            (None, _) => None,
            (Some(held), None) if held >= self.plan.max => None,
            (Some(held), None) => Some((held * 2.0).min(self.plan.max)),
            (Some(held), Some(failed)) => {
                ((failed - held) / held > self.plan.resolution).then(|| (held + failed) / 2.0)
            }
        }
    }
}

/// Whether an open-model step kept up with its arrivals: the latency counted from each
/// iteration's intended start (which includes any wait for the system or the generator) in
/// the last third of the hold is within 1.5× (+5 ms) of the first third's. A system past its
/// capacity builds a queue, and a queue grows for as long as the hold lasts; a system within
/// it has a flat latency, whatever its level. `None` when the hold has too few seconds with
/// traffic to compare. The step's report is the source: its per-second corrected histograms.
pub fn kept_up(report: &Report, warmup: Duration) -> Option<KeptUp> {
    let hold = hold_slices(report, warmup);
    if hold.len() < 3 {
        return None;
    }
    let third = hold.len() / 3;
    let p50 = |slices: &[&reports::TimeSlice]| {
        let mut merged = LatencyHistogram::fine();
        for slice in slices {
            let histogram = slice
                .corrected_histogram
                .as_ref()
                .unwrap_or(&slice.histogram);
            merged.merge(histogram).ok()?;
        }
        merged.quantile_ms(0.5)
    };
    let first = p50(&hold[..third])?;
    let last = p50(&hold[hold.len() - third..])?;
    Some(KeptUp {
        first_p50_ms: first,
        last_p50_ms: last,
        held: last <= first * 1.5 + 5.0,
    })
}

/// How the corrected median moved through an open-model step's hold.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeptUp {
    pub first_p50_ms: f64,
    pub last_p50_ms: f64,
    pub held: bool,
}

/// The whole seconds of a step's hold: counted from its first second with traffic (a run's
/// clock starts before its users do — an open-model step starts all its users first), after the
/// ramp and that first, partial, second; without the last one, partial too.
fn hold_slices(report: &Report, ramp: Duration) -> Vec<&reports::TimeSlice> {
    let Some(origin) = report.timeseries.iter().find(|s| s.requests > 0) else {
        return Vec::new();
    };
    let skip = origin.second + ramp.as_secs_f64().ceil() as u64;
    let mut slices: Vec<&reports::TimeSlice> = report
        .timeseries
        .iter()
        .filter(|s| s.second > skip)
        .collect();
    slices.pop();
    slices
}

/// Throughput and mean latency over a step's hold: the steady state the model is fitted to.
fn steady_state(report: &Report, ramp: Duration) -> Option<(f64, f64)> {
    let hold = hold_slices(report, ramp);
    if hold.is_empty() {
        return None;
    }
    let mut merged = LatencyHistogram::fine();
    for slice in &hold {
        merged.merge(&slice.histogram).ok()?;
    }
    let requests: u64 = hold.iter().map(|s| s.requests).sum();
    let mean_ms = merged.stats()?.mean_ms;
    Some((requests as f64 / hold.len() as f64, mean_ms))
}

/// What a search varies: users (closed model) or arrival rate (open model).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    Users,
    Rate,
}

impl Dimension {
    /// How a load of this dimension reads: `40 users`, `105 req/s`.
    pub fn describe(self, load: f64) -> String {
        match self {
            Dimension::Users => format!("{} users", trim(load)),
            Dimension::Rate => format!("{} iterations/s", trim(load)),
        }
    }
}

/// One step as it went.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Users (closed model) or iterations per second (open model) of the step.
    pub load: f64,
    pub run_id: String,
    pub requests: u64,
    pub rps: f64,
    /// Throughput over the hold only (requests/s), without the ramp.
    #[serde(default)]
    pub steady_rps: Option<f64>,
    /// Mean latency over the hold, ms.
    #[serde(default)]
    pub mean_ms: Option<f64>,
    /// Work in the system by Little's law (steady throughput × mean latency).
    #[serde(default)]
    pub concurrency: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub error_rate: f64,
    /// Open model: whether the step kept up with its arrivals (see [`kept_up`]).
    #[serde(default)]
    pub kept_up: Option<KeptUp>,
    pub passed: bool,
    /// Why the step failed; empty when it passed.
    pub failure_reasons: Vec<String>,
    /// Why the load generator could not keep up during this step (empty when it did): the
    /// step measured the generator as much as the system.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generator_degraded: Vec<String>,
    /// What each service did during the hold, when Prometheus was there to ask.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceFigures>,
}

impl StepResult {
    /// The step's figures from its run report (after any SLOs were attached); `ramp` is the
    /// part of the run before the hold.
    pub fn of(load: f64, report: &Report, ramp: Duration) -> StepResult {
        let latency = report.totals.corrected_latency.or(report.totals.latency);
        let steady = steady_state(report, ramp);
        StepResult {
            load,
            run_id: report.run_id.clone(),
            requests: report.totals.requests,
            rps: report.totals.rps,
            steady_rps: steady.map(|(x, _)| x),
            mean_ms: steady.map(|(_, r)| r),
            concurrency: steady.map(|(x, r)| x * r / 1000.0),
            p50_ms: latency.map(|l| l.p50_ms),
            p95_ms: latency.map(|l| l.p95_ms),
            p99_ms: latency.map(|l| l.p99_ms),
            error_rate: report.totals.error_rate,
            kept_up: None,
            passed: report.verdict == Verdict::Pass,
            failure_reasons: report.failure_reasons(),
            generator_degraded: report.provenance.degraded_because().to_vec(),
            services: Vec::new(),
        }
    }

    /// Fails an open-model step whose queue grew through its hold.
    pub fn judge_keeping_up(&mut self, kept: Option<KeptUp>) {
        self.kept_up = kept;
        if let Some(kept) = kept
            && !kept.held
        {
            self.passed = false;
            self.failure_reasons.push(format!(
                "did not keep up: the median from the intended start grew from {:.1} ms to \
                 {:.1} ms during the hold (a queue building)",
                kept.first_p50_ms, kept.last_p50_ms
            ));
        }
    }
}

/// The answer of a capacity search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityResult {
    pub scenario: String,
    pub target: String,
    pub dimension: Dimension,
    /// In the order they ran (a rate search's bisection goes down as well as up).
    pub steps: Vec<StepResult>,
    /// The highest load that held below the lowest that failed, `None` when none held.
    pub highest_holding: Option<f64>,
    /// The lowest load that failed, `None` when every step held.
    pub breaking_point: Option<f64>,
    /// The search ended early (Ctrl-C, unreachable target) before reaching an answer.
    pub interrupted: Option<String>,
    /// The Universal Scalability Law fitted to the steps, when it could be.
    #[serde(default)]
    pub model: Option<usl::UslFit>,
    /// Why there is no model.
    #[serde(default)]
    pub model_error: Option<String>,
    /// The load at which p95 latency turns up (Kneedle), when the curve has a knee.
    #[serde(default)]
    pub knee: Option<f64>,
    /// The p95 objective the steps were judged by (threshold `p95<…`), in ms, for the charts.
    #[serde(default)]
    pub p95_objective_ms: Option<f64>,
    /// The CPU one service may use, in cores, when known: CPU saturation is judged against it.
    #[serde(default)]
    pub service_cpu_limit: Option<f64>,
    /// The services that saturated, the first one first (see [`saturation`]).
    #[serde(default)]
    pub saturation: Vec<Saturation>,
    /// Why per-service figures are missing from some steps (Prometheus failed to answer).
    #[serde(default)]
    pub services_error: Option<String>,
    /// What produced the search (build, command line, host, inputs, queries); filled in by
    /// the command that writes it.
    #[serde(default, skip_serializing_if = "reports::Provenance::is_empty")]
    pub provenance: reports::Provenance,
}

impl CapacityResult {
    pub fn new(scenario: &str, target: &str, dimension: Dimension) -> Self {
        CapacityResult {
            scenario: scenario.to_string(),
            target: target.to_string(),
            dimension,
            steps: Vec::new(),
            highest_holding: None,
            breaking_point: None,
            interrupted: None,
            model: None,
            model_error: None,
            knee: None,
            p95_objective_ms: None,
            service_cpu_limit: None,
            saturation: Vec::new(),
            services_error: None,
            provenance: reports::Provenance::default(),
        }
    }

    /// Records a step; returns whether it passed.
    pub fn record(&mut self, step: StepResult) -> bool {
        let passed = step.passed;
        if passed {
            self.highest_holding =
                Some(self.highest_holding.map_or(step.load, |h| h.max(step.load)));
        } else {
            self.breaking_point = Some(self.breaking_point.map_or(step.load, |b| b.min(step.load)));
        }
        self.steps.push(step);
        passed
    }

    /// The step that held at the highest load.
    pub fn holding_step(&self) -> Option<&StepResult> {
        let load = self.highest_holding?;
        self.steps.iter().find(|s| s.load == load && s.passed)
    }

    /// Fits the scalability model and finds the knee, from the steps with traffic.
    pub fn analyze(&mut self) {
        let points: Vec<usl::Point> = self
            .steps
            .iter()
            .filter_map(|s| {
                Some(usl::Point {
                    concurrency: s.concurrency?,
                    throughput: s.steady_rps?,
                })
            })
            .collect();
        match usl::fit(&points) {
            Ok(fit) => {
                self.model = Some(fit);
                self.model_error = None;
            }
            Err(error) => {
                self.model = None;
                self.model_error = Some(error.to_string());
            }
        }
        let curve: Vec<(f64, f64)> = self
            .steps
            .iter()
            .filter_map(|s| Some((s.load, s.p95_ms?)))
            .collect();
        self.knee = usl::knee(&curve);
        self.saturation = saturation::saturated(
            &self.steps,
            &saturation::Rules {
                p95_objective_ms: self.p95_objective_ms,
                cpu_limit_cores: self.service_cpu_limit,
                ..saturation::Rules::default()
            },
        );
    }

    /// The steps ordered by load, for tables and charts.
    pub fn by_load(&self) -> Vec<&StepResult> {
        let mut steps: Vec<&StepResult> = self.steps.iter().collect();
        steps.sort_by(|a, b| a.load.total_cmp(&b.load));
        steps
    }

    /// A Markdown summary: the answer first, the model, then every step.
    pub fn markdown(&self) -> String {
        let d = self.dimension;
        let mut out = format!(
            "## Capacity of `{}` against `{}`\n\n",
            self.scenario, self.target
        );
        match (self.holding_step(), self.breaking_point) {
            (Some(held), Some(broke)) => out.push_str(&format!(
                "**Highest load that held: {}** ({:.1} req/s). It broke at {}.\n\n",
                d.describe(held.load),
                held.rps,
                d.describe(broke)
            )),
            (Some(held), None) => out.push_str(&format!(
                "**Every step held, up to {}** ({:.1} req/s): the breaking point is above the plan's maximum.\n\n",
                d.describe(held.load),
                held.rps
            )),
            (None, Some(broke)) => out.push_str(&format!(
                "**No step held**: the first step ({}) already failed.\n\n",
                d.describe(broke)
            )),
            (None, None) => out.push_str("**No step completed.**\n\n"),
        }
        if let Some(why) = &self.interrupted {
            out.push_str(&format!("The search stopped early: {why}.\n\n"));
        }
        let degraded: Vec<String> = self
            .by_load()
            .iter()
            .filter(|s| !s.generator_degraded.is_empty())
            .map(|s| {
                format!(
                    "{} ({})",
                    d.describe(s.load),
                    s.generator_degraded.join("; ")
                )
            })
            .collect();
        if !degraded.is_empty() {
            out.push_str(&format!(
                "> **Degraded generator** at {}: those steps measured the load generator as \
                 much as the system.\n\n",
                degraded.join(", ")
            ));
        }
        out.push_str(&self.model_markdown());
        out.push_str(&self.saturation_markdown());
        out.push_str(&format!(
            "| {} | concurrency (X·R) | requests | req/s (hold) | p50 | p95 | p99 | errors | verdict |\n",
            match d {
                Dimension::Users => "users",
                Dimension::Rate => "iterations/s",
            }
        ));
        out.push_str("|--:|--:|--:|--:|--:|--:|--:|--:|---|\n");
        for s in self.by_load() {
            let ms = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1} ms"));
            let verdict = if s.passed {
                "✅ held".to_string()
            } else {
                format!("❌ {}", s.failure_reasons.join("; "))
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {:.2} % | {verdict} |\n",
                trim(s.load),
                s.concurrency.map_or("–".to_string(), |n| format!("{n:.1}")),
                s.requests,
                s.steady_rps
                    .map_or(format!("{:.1}", s.rps), |x| format!("{x:.1}")),
                ms(s.p50_ms),
                ms(s.p95_ms),
                ms(s.p99_ms),
                s.error_rate * 100.0
            ));
        }
        out
    }

    /// Which service saturated first and the services' p95 at every load.
    fn saturation_markdown(&self) -> String {
        let mut out = String::new();
        let steps = self.by_load();
        let mut names: Vec<&str> = steps
            .iter()
            .flat_map(|s| s.services.iter().map(|f| f.name.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        if names.is_empty() && self.services_error.is_none() {
            return out;
        }
        out.push_str("### What breaks first\n\n");
        let d = self.dimension;
        match self.saturation.first() {
            Some(first) => out.push_str(&format!(
                "**{}** saturated first, at {} (step {}): {}.\n\n",
                first.service,
                d.describe(first.load),
                first.step,
                first.signs.join("; ")
            )),
            None if !names.is_empty() => {
                out.push_str("No service saturated at the loads measured.\n\n")
            }
            None => {}
        }
        for later in self.saturation.iter().skip(1) {
            out.push_str(&format!(
                "- then **{}** at {} (step {}): {}{}\n",
                later.service,
                d.describe(later.load),
                later.step,
                later.signs.join("; "),
                if later.waits_on_dependencies {
                    " — waiting on its dependencies (its own calls slowed down as much)"
                } else {
                    ""
                }
            ));
        }
        if self.saturation.len() > 1 {
            out.push('\n');
        }
        if let Some(why) = &self.services_error {
            out.push_str(&format!("Per-service figures are incomplete: {why}.\n\n"));
        }
        if names.is_empty() {
            return out;
        }
        out.push_str("p95 / CPU cores of each service during each step's hold:\n\n| service |");
        for s in &steps {
            out.push_str(&format!(" {} |", trim(s.load)));
        }
        out.push_str("\n|---|");
        out.push_str(&"--:|".repeat(steps.len()));
        out.push('\n');
        for name in names {
            out.push_str(&format!("| {name} |"));
            for s in &steps {
                let cell =
                    s.services
                        .iter()
                        .find(|f| f.name == name)
                        .map_or("–".to_string(), |f| {
                            format!(
                                "{} / {}",
                                f.p95_ms.map_or("–".into(), |v| format!("{v:.1} ms")),
                                f.cpu_cores.map_or("–".into(), |v| format!("{v:.2}"))
                            )
                        });
                out.push_str(&format!(" {cell} |"));
            }
            out.push('\n');
        }
        out.push('\n');
        out
    }

    fn model_markdown(&self) -> String {
        let mut out = String::new();
        match (&self.model, &self.model_error) {
            (Some(fit), _) => {
                let interval = |e: usl::Estimate, digits: usize| {
                    format!(
                        "{:.digits$} (95 % CI {:.digits$} … {:.digits$})",
                        e.value, e.low, e.high
                    )
                };
                out.push_str("### Scalability model (Universal Scalability Law)\n\n");
                out.push_str(&format!(
                    "X(N) = λN / (1 + σ(N−1) + κN(N−1)), fitted to {} steps, R² = {:.3}\n\n",
                    fit.points, fit.r_squared
                ));
                out.push_str(&format!(
                    "- λ = {} req/s per unit of concurrency\n- σ (contention) = {}\n- κ (coherency) = {}\n",
                    interval(fit.lambda, 2),
                    interval(fit.sigma, 4),
                    interval(fit.kappa, 6)
                ));
                match (fit.peak_concurrency, fit.peak_throughput) {
                    (Some(n), Some(x)) => out.push_str(&format!(
                        "- predicted peak: **{x:.1} req/s at a concurrency of {n:.1}**; more load beyond it lowers throughput\n"
                    )),
                    _ => out.push_str(
                        "- no coherency cost measured: the model predicts no peak within reach\n",
                    ),
                }
            }
            (None, Some(why)) => out.push_str(&format!("No scalability model: {why}.\n")),
            (None, None) => {}
        }
        if let Some(knee) = self.knee {
            out.push_str(&format!(
                "- latency knee: p95 turns up at {}\n",
                self.dimension.describe(knee)
            ));
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(start: u32, step: u32, max: u32) -> CapacityPlan {
        CapacityPlan {
            start,
            step,
            max,
            hold: Duration::from_secs(10),
            ramp: Duration::from_secs(2),
        }
    }

    #[test]
    fn levels_step_up_and_always_try_the_maximum() {
        assert_eq!(plan(10, 10, 40).levels(), vec![10, 20, 30, 40]);
        assert_eq!(plan(10, 20, 45).levels(), vec![10, 30, 45]);
        assert_eq!(plan(5, 1, 5).levels(), vec![5]);
    }

    #[test]
    fn bad_plans_name_the_flag() {
        assert!(
            plan(0, 1, 5)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("--start")
        );
        assert!(
            plan(1, 0, 5)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("--step")
        );
        assert!(
            plan(6, 1, 5)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("--max")
        );
        assert!(plan(1, 1, 5).validate().is_ok());
    }

    #[test]
    fn a_step_profile_ramps_then_holds() {
        let profile = plan(10, 10, 40).profile(30, None);
        assert_eq!(profile.planned_duration(), Duration::from_secs(12));
        assert_eq!(profile.peak_users(), 30);
        assert_eq!(profile.request_timeout, DEFAULT_REQUEST_TIMEOUT);
    }

    fn step(users: u32, passed: bool) -> StepResult {
        StepResult {
            load: users.into(),
            run_id: format!("run-{users}"),
            requests: 100 * u64::from(users),
            rps: f64::from(users) * 2.0,
            steady_rps: Some(f64::from(users) * 2.0),
            mean_ms: Some(50.0),
            concurrency: Some(f64::from(users) * 0.1),
            p50_ms: Some(50.0),
            p95_ms: Some(100.0),
            p99_ms: Some(200.0),
            error_rate: 0.0,
            kept_up: None,
            services: Vec::new(),
            passed,
            failure_reasons: if passed {
                vec![]
            } else {
                vec!["threshold p95<500ms failed".into()]
            },
            generator_degraded: Vec::new(),
        }
    }

    #[test]
    fn the_answer_is_the_last_step_before_the_first_failure() {
        let mut result = CapacityResult::new("browse", "http://x", Dimension::Users);
        assert!(result.record(step(10, true)));
        assert!(result.record(step(20, true)));
        assert!(!result.record(step(30, false)));
        assert_eq!(result.highest_holding, Some(20.0));
        assert_eq!(result.breaking_point, Some(30.0));
        let md = result.markdown();
        assert!(md.contains("Highest load that held: 20 users"), "{md}");
        assert!(md.contains("broke at 30 users"), "{md}");
        assert!(md.contains("threshold p95<500ms failed"), "{md}");
    }

    #[test]
    fn no_holding_step_and_no_breaking_point_are_said_plainly() {
        let mut failed = CapacityResult::new("browse", "http://x", Dimension::Users);
        failed.record(step(10, false));
        assert_eq!(failed.highest_holding, None);
        assert!(failed.markdown().contains("No step held"));

        let mut held = CapacityResult::new("browse", "http://x", Dimension::Users);
        held.record(step(10, true));
        assert_eq!(held.breaking_point, None);
        assert!(held.markdown().contains("above the plan's maximum"));
    }

    fn rates(start: f64, max: f64, resolution: f64) -> RatePlan {
        RatePlan {
            start,
            max,
            resolution,
            hold: Duration::from_secs(4),
            warmup: Duration::from_secs(1),
        }
    }

    /// Runs the bisection against a system that sustains `capacity`: the rates tried.
    fn tried(plan: RatePlan, capacity: f64) -> (Vec<f64>, Option<f64>) {
        let mut search = Bisection::new(plan);
        let mut rate = Some(search.first());
        let mut tried = Vec::new();
        while let Some(r) = rate {
            tried.push(r);
            rate = search.next(r, r <= capacity);
        }
        (tried, search.held)
    }

    #[test]
    fn the_rate_search_brackets_then_bisects_within_the_announced_steps() {
        let plan = rates(20.0, 400.0, 0.05);
        assert_eq!(plan.max_steps(), 6 + 5);
        for capacity in [20.0, 37.0, 100.0, 150.0, 399.0] {
            let (tried, held) = tried(plan.clone(), capacity);
            assert!(tried.len() <= plan.max_steps(), "{capacity}: {tried:?}");
            let held = held.unwrap();
            assert!(held <= capacity, "{capacity}: {tried:?}");
            assert!(
                (capacity - held) / held <= 0.05,
                "{capacity}: held {held}, {tried:?}"
            );
        }
        assert_eq!(tried(plan.clone(), 100.0).0[..4], [20.0, 40.0, 80.0, 160.0]);
        // Everything holds: the maximum is the answer, and the search ends there.
        let (tried_all, held) = tried(plan.clone(), 1000.0);
        assert_eq!(held, Some(400.0));
        assert_eq!(tried_all.last(), Some(&400.0));
        // Even the start fails: no answer, one step.
        assert_eq!(tried(plan, 10.0), (vec![20.0], None));
    }

    #[test]
    fn bad_rate_plans_name_the_flag() {
        assert_eq!(
            rates(0.0, 10.0, 0.05).validate(),
            Err(PlanError::NoStartRate)
        );
        assert!(matches!(
            rates(20.0, 10.0, 0.05).validate(),
            Err(PlanError::MaxBelowStart { .. })
        ));
        assert_eq!(rates(1.0, 10.0, 0.0).validate(), Err(PlanError::Resolution));
        assert_eq!(rates(1.0, 10.0, 1.0).validate(), Err(PlanError::Resolution));
        let mut short = rates(1.0, 10.0, 0.05);
        short.hold = Duration::from_secs(3);
        assert_eq!(short.validate(), Err(PlanError::ShortRateHold));
        assert!(rates(1.0, 10.0, 0.05).validate().is_ok());
    }

    #[test]
    fn a_rate_step_is_an_open_model_warmup_and_hold() {
        let profile = rates(20.0, 400.0, 0.05).profile(105.0, None);
        assert_eq!(profile.planned_duration(), Duration::from_secs(5));
        assert_eq!(profile.name, "capacity-105rps");
        match profile.load {
            Load::Open {
                start_rate,
                max_users,
                stages,
            } => {
                assert_eq!(start_rate, 0.0);
                assert_eq!(max_users, 105);
                assert!(stages.iter().all(|s| s.rate == 105.0));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_model_and_the_knee_come_from_the_steps() {
        let mut result = CapacityResult::new("browse", "http://x", Dimension::Users);
        // Points on X(N) = 100N / (1 + 0.05(N−1) + 0.002N(N−1)), latency R = N/X.
        for (users, n) in [
            (1, 1.0),
            (2, 2.0),
            (4, 4.0),
            (8, 8.0),
            (16, 16.0),
            (32, 32.0),
        ] {
            let x = 100.0 * n / (1.0 + 0.05 * (n - 1.0) + 0.002 * n * (n - 1.0));
            let mut s = step(users, true);
            s.steady_rps = Some(x);
            s.concurrency = Some(n);
            s.p95_ms = Some(n / x * 1000.0 * 1.5);
            result.record(s);
        }
        result.analyze();
        let fit = result.model.clone().unwrap();
        assert!((fit.sigma.value - 0.05).abs() < 1e-4, "{fit:?}");
        assert!(result.knee.is_some());
        let md = result.markdown();
        assert!(md.contains("Universal Scalability Law"), "{md}");
        assert!(md.contains("predicted peak"), "{md}");

        let mut thin = CapacityResult::new("browse", "http://x", Dimension::Users);
        thin.record(step(1, true));
        thin.analyze();
        assert!(thin.model.is_none());
        assert!(
            thin.markdown()
                .contains("No scalability model: the model needs at least 4 steps")
        );
    }
}
