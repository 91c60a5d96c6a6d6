//! The steady-state hypothesis as the runner sees it: "judge it over this window" and "should
//! the method stop now?". [`SloHypothesis`] answers both with the SLO engine; tests answer with
//! fakes, so halting and rollbacks are tested without Prometheus.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use reports::JournalEvent;
use slo::{CheckContext, CheckOutcome, Gate, Marks, SloSet, SloStatus, Sources, Window};

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
}

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

impl Hypothesis for SloHypothesis {
    fn check<'a>(
        &'a self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        journal: &'a [JournalEvent],
    ) -> BoxFuture<'a, CheckOutcome> {
        async move {
            // Whole seconds, at least one: the SLO engine's windows are whole seconds.
            let to = to.max(from + chrono::Duration::seconds(1));
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

/// Whether a phase's outcome holds the hypothesis.
pub fn holds(outcome: &CheckOutcome, allow_unknown: bool) -> bool {
    outcome.gate(allow_unknown) == Gate::Pass
}
