//! Capacity planning: step the load up until the system stops meeting its objectives, and report
//! the highest load that held.
//!
//! Each step is an ordinary closed-model run — ramp to N users, hold — judged like any run
//! (thresholds, and SLOs when the caller attaches them), so a step's report means exactly what a
//! `shakedown run` report means. The search stops at the first step that fails: beyond a
//! breaking point, more load only measures the damage.

use std::time::Duration;

use reports::{Report, Verdict};
use serde::{Deserialize, Serialize};

use crate::profile::{DEFAULT_REQUEST_TIMEOUT, Load, Profile, UserStage};

mod search;

pub use search::{Searched, Steps, Stop, search};

/// A capacity plan that makes no sense; the message names the flag.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("--start must be at least 1 user")]
    NoStart,
    #[error("--step must be at least 1 user")]
    NoStep,
    #[error("--max ({max}) must not be below --start ({start})")]
    MaxBelowStart { max: u32, start: u32 },
    #[error("--hold must be longer than zero")]
    NoHold,
}

/// The steps to try: `start`, `start + step`, ... up to `max` users.
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
                max: self.max,
                start: self.start,
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
        Profile {
            name: format!("capacity-{users}"),
            description: Some(format!(
                "capacity step: {users} users for {}",
                humantime::format_duration(self.hold)
            )),
            load: Load::Closed { stages },
            thresholds: base.map(|p| p.thresholds.clone()).unwrap_or_default(),
            think_time: base.and_then(|p| p.think_time),
            request_timeout: base.map_or(DEFAULT_REQUEST_TIMEOUT, |p| p.request_timeout),
            worker: None,
        }
    }
}

/// One step as it went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub users: u32,
    pub run_id: String,
    pub requests: u64,
    pub rps: f64,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub error_rate: f64,
    pub passed: bool,
    /// Why the step failed; empty when it passed.
    pub failure_reasons: Vec<String>,
}

impl StepResult {
    /// The step's figures from its run report (after any SLOs were attached).
    pub fn of(users: u32, report: &Report) -> StepResult {
        let latency = report.totals.corrected_latency.or(report.totals.latency);
        StepResult {
            users,
            run_id: report.run_id.clone(),
            requests: report.totals.requests,
            rps: report.totals.rps,
            p95_ms: latency.map(|l| l.p95_ms),
            p99_ms: latency.map(|l| l.p99_ms),
            error_rate: report.totals.error_rate,
            passed: report.verdict == Verdict::Pass,
            failure_reasons: report.failure_reasons(),
        }
    }
}

/// The answer of a capacity search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityResult {
    pub scenario: String,
    pub target: String,
    pub steps: Vec<StepResult>,
    /// Users of the highest step that held, `None` when even the first failed.
    pub highest_holding: Option<u32>,
    /// Users of the first step that failed, `None` when every step up to `max` held.
    pub breaking_point: Option<u32>,
    /// The search ended early (Ctrl-C, unreachable target) before reaching an answer.
    pub interrupted: Option<String>,
}

impl CapacityResult {
    pub fn new(scenario: &str, target: &str) -> Self {
        CapacityResult {
            scenario: scenario.to_string(),
            target: target.to_string(),
            steps: Vec::new(),
            highest_holding: None,
            breaking_point: None,
            interrupted: None,
        }
    }

    /// Records a step; returns whether the search should go on.
    pub fn record(&mut self, step: StepResult) -> bool {
        let go_on = step.passed;
        if step.passed {
            self.highest_holding = Some(step.users);
        } else if self.breaking_point.is_none() {
            self.breaking_point = Some(step.users);
        }
        self.steps.push(step);
        go_on
    }

    /// The step that held at the highest load.
    pub fn holding_step(&self) -> Option<&StepResult> {
        let users = self.highest_holding?;
        self.steps.iter().find(|s| s.users == users && s.passed)
    }

    /// A Markdown summary: the answer first, then every step.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## Capacity of `{}` against `{}`\n\n",
            self.scenario, self.target
        );
        match (self.holding_step(), self.breaking_point) {
            (Some(held), Some(broke)) => out.push_str(&format!(
                "**Highest load that held: {} users** ({:.1} req/s). It broke at {broke} users.\n\n",
                held.users, held.rps
            )),
            (Some(held), None) => out.push_str(&format!(
                "**Every step held, up to {} users** ({:.1} req/s): the breaking point is above the plan's maximum.\n\n",
                held.users, held.rps
            )),
            (None, Some(broke)) => out.push_str(&format!(
                "**No step held**: the first step ({broke} users) already failed.\n\n"
            )),
            (None, None) => out.push_str("**No step completed.**\n\n"),
        }
        if let Some(why) = &self.interrupted {
            out.push_str(&format!("The search stopped early: {why}.\n\n"));
        }
        out.push_str("| users | requests | req/s | p95 | p99 | errors | verdict |\n");
        out.push_str("|--:|--:|--:|--:|--:|--:|---|\n");
        for s in &self.steps {
            let ms = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1} ms"));
            let verdict = if s.passed {
                "✅ held".to_string()
            } else {
                format!("❌ {}", s.failure_reasons.join("; "))
            };
            out.push_str(&format!(
                "| {} | {} | {:.1} | {} | {} | {:.2} % | {verdict} |\n",
                s.users,
                s.requests,
                s.rps,
                ms(s.p95_ms),
                ms(s.p99_ms),
                s.error_rate * 100.0
            ));
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
            users,
            run_id: format!("run-{users}"),
            requests: 100 * u64::from(users),
            rps: f64::from(users) * 2.0,
            p95_ms: Some(100.0),
            p99_ms: Some(200.0),
            error_rate: 0.0,
            passed,
            failure_reasons: if passed {
                vec![]
            } else {
                vec!["threshold p95<500ms failed".into()]
            },
        }
    }

    #[test]
    fn the_answer_is_the_last_step_before_the_first_failure() {
        let mut result = CapacityResult::new("browse", "http://x");
        assert!(result.record(step(10, true)));
        assert!(result.record(step(20, true)));
        assert!(!result.record(step(30, false)));
        assert_eq!(result.highest_holding, Some(20));
        assert_eq!(result.breaking_point, Some(30));
        let md = result.markdown();
        assert!(md.contains("Highest load that held: 20 users"), "{md}");
        assert!(md.contains("broke at 30 users"), "{md}");
        assert!(md.contains("threshold p95<500ms failed"), "{md}");
    }

    #[test]
    fn no_holding_step_and_no_breaking_point_are_said_plainly() {
        let mut failed = CapacityResult::new("browse", "http://x");
        failed.record(step(10, false));
        assert_eq!(failed.highest_holding, None);
        assert!(failed.markdown().contains("No step held"));

        let mut held = CapacityResult::new("browse", "http://x");
        held.record(step(10, true));
        assert_eq!(held.breaking_point, None);
        assert!(held.markdown().contains("above the plan's maximum"));
    }
}
