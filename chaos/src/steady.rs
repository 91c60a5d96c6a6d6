//! The steady-state hypothesis as the runner sees it: "judge it over this window" and "should
//! the method stop now?". [`SloHypothesis`] answers both with the SLO engine; tests answer with
//! fakes, so halting and rollbacks are tested without Prometheus.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use reports::JournalEvent;
use slo::{
    CheckContext, CheckOutcome, Gate, Marks, SloSet, SloStatus, SourceKind, Sources, Window,
};

use crate::model::{HaltCondition, Safety, SteadyState};

pub trait Hypothesis: Send + Sync {
    /// Judges the hypothesis over `[from, to]`; returns once `to` has passed (live sources
    /// sample until then). `journal` gives recovery SLIs their `event:` marks.
    fn check<'a>(
        &'a self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        journal: &'a [JournalEvent],
    ) -> BoxFuture<'a, CheckOutcome>;

    /// `Some(reason)` when a halt condition is met right now.
    fn halt(&self) -> BoxFuture<'_, Option<String>>;

    /// Whether SLOs without data pass.
    fn allow_unknown(&self) -> bool;

    /// How long after a window's end its data is complete: the "during" check waits this long
    /// (beside the rollbacks and the "after" check, so nothing else is delayed).
    fn settle(&self) -> Duration {
        Duration::ZERO
    }

    /// The first instant at or after `at` where a window can start without counting anything
    /// from before `at`: the "after" check starts there, so the fault's tail is not judged as
    /// its aftermath. Whole seconds unless the sources count in coarser steps.
    fn clean_start(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        slo::clean_start(at, Duration::from_secs(1))
    }
}

/// Prometheus has the last samples of a window one scrape after its end: the embedded stack
/// scrapes every second, so two seconds leave a scrape and a margin.
const PROMETHEUS_SETTLE: Duration = Duration::from_secs(2);

/// The hypothesis of an experiment file, judged with the SLO engine.
pub struct SloHypothesis {
    set: SloSet,
    /// The halt conditions as an SLO set (each SLO with its halt bound as objective).
    halt_set: Option<SloSet>,
    halt_window: Duration,
    sources: Sources,
    allow_unknown: bool,
}

impl SloHypothesis {
    pub fn new(steady: &SteadyState, safety: &Safety, sources: Sources) -> SloHypothesis {
        SloHypothesis {
            set: steady.set.clone(),
            halt_set: halt_set(&steady.set, &safety.halt),
            halt_window: safety.halt_window,
            sources,
            allow_unknown: steady.allow_unknown,
        }
    }
}

/// The SLOs named by halt conditions, with the halt bound as their objective.
pub fn halt_set(set: &SloSet, halt: &[HaltCondition]) -> Option<SloSet> {
    if halt.is_empty() {
        return None;
    }
    let slos = halt
        .iter()
        .filter_map(|h| {
            let mut slo = set.slos.iter().find(|s| s.name == h.slo)?.clone();
            if let Some(objective) = &h.objective {
                slo.objective = *objective;
            }
            Some(slo)
        })
        .collect();
    let mut halt_set = set.clone();
    halt_set.metadata.name = format!("{} (halt conditions)", set.metadata.name);
    halt_set.slos = slos;
    Some(halt_set)
}

impl SloHypothesis {
    /// Prometheus SLIs count whole steps of the set's `step`, on multiples of it.
    fn counts_in_steps(&self) -> bool {
        self.set.source_kinds().contains(&SourceKind::Prometheus)
    }
}

impl Hypothesis for SloHypothesis {
    fn check<'a>(
        &'a self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        journal: &'a [JournalEvent],
    ) -> BoxFuture<'a, CheckOutcome> {
        async move {
            let to = whole_seconds_end(to).max(from + chrono::Duration::seconds(1));
            let window = Window::new(from, to, &self.set.defaults)
                .expect("a window of at least one second")
                .with_marks(Marks {
                    load_end: None,
                    events: journal.to_vec(),
                });
            let ctx = CheckContext {
                window,
                sources: self.sources.clone(),
            };
            slo::check(&self.set, &ctx).await
        }
        .boxed()
    }

    fn halt(&self) -> BoxFuture<'_, Option<String>> {
        async move {
            let set = self.halt_set.as_ref()?;
            let to = Utc::now();
            let from = to - chrono::Duration::from_std(self.halt_window).ok()?;
            let window = Window::new(from, to, &set.defaults).ok()?;
            let ctx = CheckContext {
                window,
                sources: self.sources.clone(),
            };
            let outcome = slo::check(set, &ctx).await;
            halt_reason(&outcome)
        }
        .boxed()
    }

    fn allow_unknown(&self) -> bool {
        self.allow_unknown
    }

    fn settle(&self) -> Duration {
        if self.counts_in_steps() {
            PROMETHEUS_SETTLE
        } else {
            Duration::ZERO
        }
    }

    fn clean_start(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let step = if self.counts_in_steps() {
            self.set.defaults.step
        } else {
            Duration::from_secs(1)
        };
        slo::clean_start(at, step)
    }
}

/// The SLO engine's windows are whole seconds and it truncates both ends: the end is rounded up
/// first, so the last fraction of a second (a recovery that ends at .8 s) stays inside.
fn whole_seconds_end(to: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    if to.timestamp_subsec_nanos() > 0 {
        to.trunc_subsecs(0) + chrono::Duration::seconds(1)
    } else {
        to
    }
}

/// Why a halt check stops the method: the failed SLOs with what was measured. Unknown (no
/// data yet) never halts — the absence of evidence is not a breach.
pub fn halt_reason(outcome: &CheckOutcome) -> Option<String> {
    let failed: Vec<String> = outcome
        .results
        .iter()
        .filter(|c| c.verdict.status == SloStatus::Fail)
        .map(|c| {
            let v = &c.verdict;
            let measured = v
                .measured
                .map(|m| {
                    format!(
                        "{m:.3}{}",
                        v.unit
                            .as_deref()
                            .map(|u| format!(" {u}"))
                            .unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "?".into());
            format!("{} = {measured} breaks {}", v.name, v.objective)
        })
        .collect();
    (!failed.is_empty()).then(|| format!("halted: {}", failed.join("; ")))
}

/// What one phase's check (before, during or after) says about the hypothesis. `unknown` is
/// its own answer, never "holds": with `allow_unknown` it passes the gate, and is still
/// printed and reported as unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhaseVerdict {
    /// Every SLO passed (or warned).
    Holds,
    /// `count` SLOs had no data (the others passed); `allowed` when `allow_unknown` is set.
    Unknown { count: usize, allowed: bool },
    /// An SLO failed.
    Fails,
    /// An SLO source could not be reached: nothing was checked (never allowed).
    Unreachable,
    /// An SLO cannot be judged as written (rejected query, source not configured).
    Invalid,
}

impl PhaseVerdict {
    /// Judges a phase's check with the gate rules of the SLO engine (a failure wins, then a
    /// configuration problem, then an unreachable source, then missing data).
    pub fn of(outcome: &CheckOutcome, allow_unknown: bool) -> PhaseVerdict {
        let unknown = outcome.count(SloStatus::Unknown);
        match outcome.gate(allow_unknown) {
            Gate::Failed if outcome.count(SloStatus::Fail) > 0 => PhaseVerdict::Fails,
            Gate::Failed => PhaseVerdict::Unknown {
                count: unknown,
                allowed: false,
            },
            Gate::Invalid => PhaseVerdict::Invalid,
            Gate::Unreachable => PhaseVerdict::Unreachable,
            Gate::Pass if unknown > 0 => PhaseVerdict::Unknown {
                count: unknown,
                allowed: true,
            },
            Gate::Pass => PhaseVerdict::Holds,
        }
    }

    /// Whether the phase passes the gate: it holds, or its unknowns are explicitly allowed.
    pub fn passes(self) -> bool {
        matches!(
            self,
            PhaseVerdict::Holds | PhaseVerdict::Unknown { allowed: true, .. }
        )
    }

    /// The journal outcome of the phase's probe.
    pub fn outcome(self) -> crate::journal::Outcome {
        use crate::journal::Outcome;
        match self {
            PhaseVerdict::Holds => Outcome::Ok,
            PhaseVerdict::Fails => Outcome::Failed,
            PhaseVerdict::Unknown { .. } | PhaseVerdict::Unreachable | PhaseVerdict::Invalid => {
                Outcome::Unknown
            }
        }
    }
}

impl std::fmt::Display for PhaseVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PhaseVerdict::Holds => write!(f, "holds"),
            PhaseVerdict::Unknown {
                count,
                allowed: true,
            } => write!(
                f,
                "unknown ({count} SLO(s) without data; accepted because allow_unknown is set)"
            ),
            PhaseVerdict::Unknown {
                count,
                allowed: false,
            } => write!(
                f,
                "unknown ({count} SLO(s) without data), so it does NOT hold (allow_unknown is off)"
            ),
            PhaseVerdict::Fails => write!(f, "does NOT hold"),
            PhaseVerdict::Unreachable => {
                write!(
                    f,
                    "unknown (an SLO source is unreachable), so it does NOT hold"
                )
            }
            PhaseVerdict::Invalid => write!(
                f,
                "unknown (an SLO cannot be judged: rejected query or source not configured), so it does NOT hold"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn hypothesis(defaults: &str) -> SloHypothesis {
        let text = format!(
            "apiVersion: shakedown/v1\nkind: Experiment\nmetadata: {{name: t}}\ntarget: {{local: {{}}}}\nsteady_state:\n{defaults}  slos:\n    - name: p95\n      sli: {{latency: {{quantile: 0.95}}}}\n      objective: {{lt: 500ms}}\nmethod:\n  - name: a\n    action: {{process-kill: {{service: order}}}}\n"
        );
        let experiment = crate::parse(&text, std::path::Path::new("t.yaml")).unwrap();
        SloHypothesis::new(
            experiment.steady_state.as_ref().unwrap(),
            &experiment.safety,
            Sources::new(),
        )
    }

    #[test]
    fn the_after_window_of_prometheus_slis_starts_on_the_next_step() {
        // 1_700_000_010 is a multiple of 15; the fault's tail ends 1.814 s later.
        let recovered = Utc.timestamp_opt(1_700_000_011, 814_000_000).unwrap();
        let at = |s| Utc.timestamp_opt(s, 0).unwrap();
        // The default step (15 s) would count from 1_700_000_010, 1.8 s of fault included.
        assert_eq!(hypothesis("").clean_start(recovered), at(1_700_000_025));
        let one_second = hypothesis("  defaults: {step: 1s}\n");
        assert_eq!(one_second.clean_start(recovered), at(1_700_000_012));
    }
}
