//! The coordinator's live view of the cluster: what the progress line shows (requests/s, p95 of
//! the last interval, errors, workers connected) and the merged totals that abort thresholds
//! are judged on while the run goes on, and the live metrics (`shakedown_*`) a coordinator
//! serves: the sum of its workers'.

use reports::{LatencyHistogram, Totals};

use super::state::{End, Fleet};
use crate::live::Figures;

/// One look at the whole fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub connected: u32,
    pub workers: u32,
    /// Requests of every worker's latest interval (about one second each).
    pub rps: u64,
    /// p95 over every worker's latest interval, ms.
    pub p95_ms: Option<f64>,
    pub requests: u64,
    pub errors: u64,
}

impl Live {
    pub fn of(fleet: &Fleet) -> Live {
        let slots = fleet.slots();
        let mut recent = LatencyHistogram::fine();
        let mut live = Live {
            connected: 0,
            workers: fleet.workers,
            rps: 0,
            p95_ms: None,
            requests: 0,
            errors: 0,
        };
        for slot in slots.iter() {
            live.connected += u32::from(slot.commands.is_some());
            live.requests += slot.measurements.totals.requests;
            live.errors += slot.measurements.totals.errors;
            if let Some((requests, _, histogram)) = &slot.last_interval {
                live.rps += requests;
                // Both are fine histograms; a merge only fails on a corrupt one, which then
                // just does not count in this one-second view.
                let _ = recent.merge(histogram);
            }
        }
        live.p95_ms = recent.quantile_ms(0.95);
        live
    }

    pub fn line(&self) -> String {
        let p95 = self
            .p95_ms
            .map_or("-".to_string(), |ms| format!("{ms:.1} ms"));
        format!(
            "workers {}/{} · {} req/s · p95 {p95} · {} requests · {} errors",
            self.connected, self.workers, self.rps, self.requests, self.errors
        )
    }
}

/// The run-wide totals of every worker so far, as a merged report would compute them over
/// `elapsed_s` seconds.
pub fn merged_totals(fleet: &Fleet, elapsed_s: f64) -> Totals {
    let slots = fleet.slots();
    let mut totals = Totals {
        requests: 0,
        errors: 0,
        error_rate: 0.0,
        rps: 0.0,
        latency: None,
        corrected_latency: None,
        histogram: LatencyHistogram::fine(),
        corrected_histogram: fleet.corrected.then(LatencyHistogram::fine),
    };
    for slot in slots.iter() {
        let from = &slot.measurements.totals;
        totals.requests += from.requests;
        totals.errors += from.errors;
        let _ = totals.histogram.merge(&from.latency);
        if let (Some(into), Some(from)) = (&mut totals.corrected_histogram, &from.corrected) {
            let _ = into.merge(from);
        }
    }
    totals.recompute(elapsed_s);
    totals
}

/// The live metrics of the whole fleet: the sum of every worker's latest figures (cumulative, so
/// a worker that ended keeps counting what it did). Users are counted only for workers still
/// streaming or that finished (then 0): a worker that went missing runs nobody we know of.
pub fn live_figures(fleet: &Fleet) -> Figures {
    let mut sum = Figures::default();
    for slot in fleet.slots().iter() {
        if let Some(figures) = &slot.live {
            sum.add(figures);
            if matches!(slot.end, End::Disconnected(_)) {
                sum.active_users -= figures.active_users;
            }
        }
    }
    sum
}
