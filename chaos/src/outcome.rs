//! What an experiment run produced, and what it means: the verdicts a report carries (the
//! steady state before/during/after, the experiment itself) and its [`Conclusion`], which the CLI
//! turns into an exit code.

use reports::{SloStatus, SloVerdict};
use slo::CheckOutcome;

use crate::error::ChaosError;
use crate::journal::{ActionRecord, Outcome};
use crate::steady::PhaseVerdict;

/// What a run concludes, worst last: the order matters, the worst conclusion of several wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Conclusion {
    /// The steady state held, nothing halted, every action recovered.
    Pass,
    /// The experiment ran and the system did not hold (or an action failed).
    Failed,
    /// An action was refused by a safety rule or is malformed; an SLO was rejected by its source.
    Invalid,
    /// A target or an SLO source could not be reached.
    Unreachable,
}

#[derive(Debug, Default)]
pub struct ExperimentOutcome {
    /// Every probe and action, in the order they ended.
    pub journal: Vec<ActionRecord>,
    pub before: Option<CheckOutcome>,
    pub during: Option<CheckOutcome>,
    pub after: Option<CheckOutcome>,
    /// Why a halt condition stopped the method.
    pub halted: Option<String>,
    /// Ctrl-C (or the load ended) before the experiment was over.
    pub interrupted: bool,
    /// Errors actions returned (refused, unreachable, failed).
    pub errors: Vec<ChaosError>,
    pub allow_unknown: bool,
    /// When the experiment started (the steady state before, or the method without one).
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the method started; `None` when it did not run.
    pub method_started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The expected and forbidden alerts, judged after the experiment (see `crate::alerts`).
    pub alerts: Vec<crate::alerts::AlertVerdict>,
}

impl ExperimentOutcome {
    /// Why the experiment failed, one line each; empty when it passed.
    pub fn failures(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some(why) = &self.halted {
            reasons.push(why.clone());
        }
        if self.interrupted {
            reasons.push("interrupted before the experiment was over".into());
        }
        for (phase, checked) in [("before", &self.before), ("after", &self.after)] {
            if let Some(c) = checked {
                let verdict = PhaseVerdict::of(c, self.allow_unknown);
                if !verdict.passes() {
                    reasons.push(format!("steady state {phase} the method: {verdict}"));
                }
            }
        }
        for alert in self.alerts.iter().filter(|a| !a.holds()) {
            reasons.push(alert.text());
        }
        for record in &self.journal {
            if record.outcome == Outcome::Failed
                && !record.is_probe()
                && record.action != crate::alerts::RECORD
            {
                reasons.push(format!(
                    "{} {} failed: {}",
                    record.action,
                    record.target,
                    record.detail.as_deref().unwrap_or("")
                ));
            }
        }
        reasons
    }

    /// Pass, failed, invalid (an action was refused or malformed) or unreachable (a target or
    /// SLO source); an error that is not a plain failure wins over the verdicts.
    pub fn conclusion(&self) -> Conclusion {
        let worst_error = self
            .errors
            .iter()
            .map(ChaosError::conclusion)
            .filter(|c| *c != Conclusion::Failed)
            .max();
        if let Some(conclusion) = worst_error {
            return conclusion;
        }
        for checked in [&self.before, &self.after].into_iter().flatten() {
            match checked.gate(self.allow_unknown) {
                slo::Gate::Invalid => return Conclusion::Invalid,
                slo::Gate::Unreachable => return Conclusion::Unreachable,
                _ => {}
            }
        }
        if self.failures().is_empty() {
            Conclusion::Pass
        } else {
            Conclusion::Failed
        }
    }

    /// The verdicts for the report: `before: X` and `after: X` gate the run; `during: X` is
    /// informational (a failure there is shown as `warn`, since degradation during the method
    /// is expected and bounded by the halt conditions); `experiment` sums up the rest.
    pub fn verdicts(&self) -> Vec<SloVerdict> {
        let mut verdicts = Vec::new();
        let mut phase = |name: &str, checked: &Option<CheckOutcome>, gating: bool| {
            for c in checked.iter().flat_map(|c| &c.results) {
                let mut v = c.verdict.clone();
                v.name = format!("{name}: {}", v.name);
                if v.status == SloStatus::Unknown && !self.allow_unknown && gating {
                    v.status = SloStatus::Fail;
                    v.message = Some(format!(
                        "unknown, and the gate requires data: {}",
                        v.message.unwrap_or_default()
                    ));
                }
                if !gating && v.status == SloStatus::Fail {
                    v.status = SloStatus::Warn;
                    v.message = Some(format!(
                        "failed during the method (informational){}",
                        v.message.map(|m| format!(": {m}")).unwrap_or_default()
                    ));
                }
                verdicts.push(v);
            }
        };
        phase("before", &self.before, true);
        phase("during", &self.during, false);
        phase("after", &self.after, true);
        let failures = self.failures();
        // Unknowns let through by allow_unknown are said, never folded into "holds".
        let allowed_unknowns: Vec<String> = [("before", &self.before), ("after", &self.after)]
            .into_iter()
            .filter_map(|(phase, checked)| {
                let verdict = PhaseVerdict::of(checked.as_ref()?, self.allow_unknown);
                matches!(verdict, PhaseVerdict::Unknown { allowed: true, .. })
                    .then(|| format!("steady state {phase}: {verdict}"))
            })
            .collect();
        let recoveries: Vec<String> = self
            .journal
            .iter()
            .filter_map(|r| {
                r.recovery.map(|d| {
                    format!(
                        "{} {} recovered in {:.1} s",
                        r.action,
                        r.target,
                        d.as_secs_f64()
                    )
                })
            })
            .collect();
        verdicts.extend(self.alerts.iter().map(|a| a.to_slo_verdict()));
        let holds = if self.alerts.is_empty() {
            ""
        } else {
            ", the expected alerts fire in time and the forbidden ones do not"
        };
        verdicts.push(SloVerdict {
            name: "experiment".into(),
            status: if failures.is_empty() {
                SloStatus::Pass
            } else {
                SloStatus::Fail
            },
            measured: None,
            unit: None,
            objective: format!("steady state holds before and after (unknown only if allowed), no halt, every action recovers{holds}"),
            source: "chaos".into(),
            query: None,
            window: None,
            message: Some(if failures.is_empty() {
                allowed_unknowns
                    .into_iter()
                    .chain(recoveries)
                    .chain(self.alerts.iter().map(|a| a.text()))
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                failures.join("; ")
            }),
        });
        verdicts
    }
}

impl ExperimentOutcome {
    /// The journal, the reasons it failed and the verdict, for the operator (one line each).
    pub fn summary(&self) -> String {
        let mut out = String::from("journal:\n");
        for r in &self.journal {
            out.push_str(&format!(
                "  {} {:<22} {:<28} {:<8}{}{}\n",
                r.started_at.format("%H:%M:%S%.3f"),
                r.action,
                r.target,
                r.outcome.as_str(),
                r.recovery
                    .map(|d| format!(" recovered in {:.1} s", d.as_secs_f64()))
                    .unwrap_or_default(),
                r.detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ));
        }
        let failures = self.failures();
        for reason in &failures {
            out.push_str(&format!("  - {reason}\n"));
        }
        out.push_str(&format!(
            "experiment: {}\n",
            if failures.is_empty() { "PASS" } else { "FAIL" }
        ));
        out
    }
}
