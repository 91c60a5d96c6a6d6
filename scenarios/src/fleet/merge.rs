//! The one report of a coordinated run: each worker's report is rebuilt from what it streamed
//! (the same assembly a worker does for its own report), then the reports are merged exactly as
//! `shakedown report merge` merges files, and the per-worker breakdown is added.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reports::{ArrivalStats, Report, WorkerBreakdown, WorkerStatus};

use super::error::FleetError;
use super::state::{End, Fleet, Slot};
use crate::assemble::{RunFacts, assemble};
use crate::profile::Profile;

/// An open-model worker whose iterations started this late (ms) behind schedule is flagged: its
/// generator could not keep up, so its share was not sent as planned.
pub const BEHIND_MS: f64 = 250.0;
/// A worker that started its load this late (ms) after the agreed instant is flagged.
pub const LATE_START_MS: f64 = 1000.0;

/// The facts every worker shares.
pub struct RunContext<'a> {
    pub run_id: String,
    pub scenario: &'a str,
    pub target: &'a str,
    /// Each worker's share, by index.
    pub shares: &'a [Profile],
}

pub fn at_us(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

/// The report of one worker, as its own recorder would have written it, from what it sent;
/// `None` when its load never started.
fn worker_report(index: usize, slot: &Slot, ctx: &RunContext<'_>) -> Option<Report> {
    let run_id = slot.run_id.clone()?;
    let started_at = slot.started_at?;
    let profile = &ctx.shares[index];
    let (ended_at, actual_duration, partial_reason, arrivals) = match &slot.end {
        End::Finished(finished) => (
            Utc.timestamp_nanos(finished.ended_at_ns),
            Duration::from_secs_f64(finished.actual_duration_s.max(0.0)),
            finished.partial_reason.clone(),
            finished.arrivals.map(arrival_stats),
        ),
        End::Disconnected(_) | End::Running => {
            let reason = match &slot.end {
                End::Disconnected(reason) => reason.clone(),
                _ => "did not finish".to_string(),
            };
            let ended_at = slot.last_cut_at.unwrap_or(started_at);
            let actual = (ended_at - started_at).to_std().unwrap_or_default();
            let arrivals = slot.arrivals.map(|a| ArrivalStats {
                max_lateness_ms: slot.measurements.max_lateness.as_secs_f64() * 1000.0,
                ..arrival_stats(a)
            });
            (
                ended_at,
                actual,
                Some(format!(
                    "worker {index} ({}) {reason}; its data up to its last interval is kept",
                    slot.name
                )),
                arrivals,
            )
        }
    };
    let thresholds = crate::runner::effective_profile_thresholds(profile);
    let mut report = assemble(
        RunFacts {
            run_id,
            scenario: ctx.scenario,
            target: ctx.target,
            profile,
            started_at,
            ended_at,
            actual_duration,
            partial_reason,
            thresholds: &thresholds,
            arrivals,
        },
        slot.measurements.clone(),
    );
    // Its CPU stays on the worker; how far behind its schedule it fell is in its stream.
    if arrivals.is_some() {
        report.provenance.generator = Some(reports::GeneratorHealth::judge(
            None,
            crate::runner::open_model(arrivals),
        ));
    }
    Some(report)
}

fn arrival_stats(a: super::proto::Arrivals) -> ArrivalStats {
    ArrivalStats {
        scheduled_iterations: a.scheduled_iterations,
        started_iterations: a.started_iterations,
        max_lateness_ms: a.max_lateness_ms,
    }
}

/// The reports rebuilt from every worker that started, in share order.
pub fn worker_reports(fleet: &Fleet, ctx: &RunContext<'_>) -> Vec<(usize, Report)> {
    let slots = fleet.slots();
    slots
        .iter()
        .enumerate()
        .filter_map(|(index, slot)| worker_report(index, slot, ctx).map(|r| (index, r)))
        .collect()
}

/// The run's one report: the merge of the workers' reports, with the coordinator's run id, the
/// per-worker breakdown, and partial when a worker is missing or the run was stopped.
pub fn fleet_report(fleet: &Fleet, ctx: &RunContext<'_>) -> Result<Report, FleetError> {
    let rebuilt = worker_reports(fleet, ctx);
    let reports: Vec<Report> = rebuilt.iter().map(|(_, r)| r.clone()).collect();
    let mut report = reports::merge(&reports).map_err(|e| FleetError::NoData(e.to_string()))?;
    report.run_id = ctx.run_id.clone();

    let slots = fleet.slots();
    let mut missing = Vec::new();
    for (index, slot) in slots.iter().enumerate() {
        let own = rebuilt.iter().find(|(i, _)| *i == index).map(|(_, r)| r);
        if own.is_none() {
            let why = match &slot.end {
                End::Disconnected(reason) => reason.clone(),
                _ => "never started its load".to_string(),
            };
            missing.push(format!("worker {index} ({}) {why}", slot.name));
        }
        report.workers.push(breakdown(index, slot, own));
    }
    let mut reasons: Vec<String> = report.partial_reason.take().into_iter().collect();
    reasons.extend(missing);
    if let Some(stop) = fleet.stop_reason() {
        reasons.insert(0, format!("stopped: {stop}"));
    }
    report.partial = !reasons.is_empty();
    report.partial_reason = (!reasons.is_empty()).then(|| reasons.join("; "));
    report.recompute_verdict();
    Ok(report)
}

fn breakdown(index: usize, slot: &Slot, own: Option<&Report>) -> WorkerBreakdown {
    let max_lateness_ms = slot.measurements.max_lateness.as_secs_f64() * 1000.0;
    let start_lateness_ms = slot.start_lateness_us as f64 / 1000.0;
    let (status, mut flags) = match &slot.end {
        End::Finished(_) => (WorkerStatus::Finished, Vec::new()),
        End::Disconnected(reason) => (WorkerStatus::Disconnected, vec![reason.clone()]),
        End::Running => (
            WorkerStatus::Disconnected,
            vec!["did not finish".to_string()],
        ),
    };
    if max_lateness_ms > BEHIND_MS {
        flags.push(format!(
            "its generator fell behind: iterations started up to {max_lateness_ms:.0} ms late"
        ));
    }
    if let Some(a) = slot.arrivals
        && a.started_iterations + a.scheduled_iterations / 100 < a.scheduled_iterations
    {
        flags.push(format!(
            "its generator fell behind: {} of {} scheduled iterations started",
            a.started_iterations, a.scheduled_iterations
        ));
    }
    if start_lateness_ms > LATE_START_MS {
        flags.push(format!(
            "started {start_lateness_ms:.0} ms after the agreed instant"
        ));
    }
    WorkerBreakdown {
        index: index as u32,
        name: slot.name.clone(),
        run_id: slot.run_id.clone(),
        requests: slot.measurements.totals.requests,
        errors: slot.measurements.totals.errors,
        p95_ms: own
            .and_then(|r| r.totals.latency)
            .map(|latency| latency.p95_ms),
        clock_offset_ms: slot.clock_offset_us as f64 / 1000.0,
        start_lateness_ms,
        max_lateness_ms,
        status,
        flag: (!flags.is_empty()).then(|| flags.join("; ")),
    }
}
