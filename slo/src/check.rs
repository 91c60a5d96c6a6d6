//! The entry point: measure every SLO of a set over one window and judge it.
//!
//! SLOs are measured concurrently — live sources sample for the whole window, so measuring
//! them one after another would multiply the wait. Whatever goes wrong with one SLO becomes
//! its own `unknown` verdict; a check always returns one verdict per SLO.

use futures::future::join_all;
use reports::{SloStatus, SloVerdict};

use crate::evaluate::evaluate;
use crate::model::{Slo, SloSet};
use crate::outcome::{CheckOutcome, Checked, Problem};
use crate::sources::{
    Measured, Missing, Probe, Reading, SourceError, SourceErrorKind, Sources, configure_hint,
};
use crate::window::Window;

/// Everything a check needs besides the SLO set.
#[derive(Clone)]
pub struct CheckContext {
    pub window: Window,
    pub sources: Sources,
}

/// Measures and judges every SLO of `set` over `ctx.window`. Returns when the slowest source
/// is done: at the window's end at the earliest for live sources.
pub async fn check(set: &SloSet, ctx: &CheckContext) -> CheckOutcome {
    let results = join_all(set.slos.iter().map(|slo| check_one(slo, ctx))).await;
    CheckOutcome {
        set: set.metadata.name.clone(),
        from: ctx.window.from,
        to: ctx.window.to,
        results,
        partial_run: ctx.window.partial_run.clone(),
    }
}

async fn check_one(slo: &Slo, ctx: &CheckContext) -> Checked {
    let kind = slo.source_kind();
    let (probe, result) = match ctx.sources.get(kind) {
        Ok(source) => {
            let probe = source.describe(&slo.sli, &ctx.window);
            let result = source.measure(&slo.sli, &ctx.window).await;
            (probe, result.map_err(Failure::Source))
        }
        Err(missing) => {
            let probe = Probe {
                source: kind.to_string(),
                query: None,
            };
            let failure = match missing {
                Missing::NotConfigured => {
                    Failure::NotConfigured(format!("no {kind} source ({})", configure_hint(kind)))
                }
                Missing::Broken(error) => Failure::Source(error.clone()),
            };
            (probe, Err(failure))
        }
    };
    judged(slo, &ctx.window, probe, result)
}

/// Why there is no reading.
enum Failure {
    Source(SourceError),
    NotConfigured(String),
}

fn judged(slo: &Slo, window: &Window, probe: Probe, result: Result<Reading, Failure>) -> Checked {
    let unit = slo.sli.unit();
    let (status, measured, message, problem) = match result {
        Ok(reading) => {
            let status = evaluate(&slo.objective, &reading.measured);
            let message = match (reading.measured, reading.note) {
                (Measured::NoData, note) => Some(format!(
                    "no data: {}",
                    note.unwrap_or_else(|| "nothing to measure".into())
                )),
                (Measured::AtLeast(bound), note) => Some(format!(
                    "at least {}{}",
                    unit.format(bound),
                    note.map(|n| format!("; {n}")).unwrap_or_default()
                )),
                (Measured::Exact(_), note) => note,
            };
            let problem = (status == SloStatus::Unknown).then_some(Problem::NoData);
            (status, reading.measured.value(), message, problem)
        }
        Err(Failure::Source(error)) => {
            let problem = match error.kind {
                SourceErrorKind::Unreachable => Problem::Unreachable,
                SourceErrorKind::Rejected => Problem::Rejected,
            };
            (
                SloStatus::Unknown,
                None,
                Some(error.to_string()),
                Some(problem),
            )
        }
        Err(Failure::NotConfigured(why)) => (
            SloStatus::Unknown,
            None,
            Some(format!("not configured: {why}")),
            Some(Problem::NotConfigured),
        ),
    };
    let (measured, report_unit) = match measured {
        Some(value) => {
            let (value, unit) = unit.for_report(value);
            (Some(value), unit)
        }
        None => (None, unit.for_report(0.0).1),
    };
    Checked {
        verdict: SloVerdict {
            name: slo.name.clone(),
            status,
            measured,
            unit: report_unit.map(str::to_string),
            objective: slo.objective.text(&slo.sli.quantity(), unit),
            source: probe.source,
            query: probe.query,
            window: Some(window.describe()),
            message,
        },
        description: slo.description.clone(),
        from: window.from,
        to: window.to,
        problem,
    }
}
