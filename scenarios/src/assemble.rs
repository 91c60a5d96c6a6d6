//! Turns what the recorder measured into the report.
//!
//! Every number is derived from the recorded histograms and counters here, in one place, so
//! the report's totals, transaction table and time series always describe the same requests.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reports::derive::round_to;
use reports::{
    ArrivalStats, ErrorCounts, LatencyHistogram, Report, SCHEMA_VERSION, StatusClassStats,
    Threshold, TimeSlice, Totals, TransactionStats, Verdict, error_samples_from,
};

use crate::profile::Profile;
use crate::recorder::{Measurements, SeriesStats, Slice};

/// Facts about the run that are not measurements.
pub struct RunFacts<'a> {
    pub run_id: String,
    pub scenario: &'a str,
    pub target: &'a str,
    pub profile: &'a Profile,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub actual_duration: Duration,
    /// Why the run is partial; `None` when it completed its plan.
    pub partial_reason: Option<String>,
    pub thresholds: &'a [Threshold],
    pub arrivals: Option<ArrivalStats>,
}

/// Builds the report and judges its thresholds and verdict.
pub fn assemble(facts: RunFacts<'_>, measurements: Measurements) -> Report {
    let actual_s = round_to(facts.actual_duration.as_secs_f64(), 3);
    let Measurements {
        totals,
        transactions,
        status_classes,
        errors_by_kind,
        error_samples,
        slices,
        max_lateness: _,
    } = measurements;

    let mut totals = Totals {
        requests: totals.requests,
        errors: totals.errors,
        error_rate: 0.0,
        rps: 0.0,
        latency: None,
        corrected_latency: None,
        histogram: totals.latency,
        corrected_histogram: totals.corrected,
    };
    totals.recompute(actual_s);
    let thresholds = facts
        .thresholds
        .iter()
        .map(|t| t.evaluate(&totals))
        .collect();

    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        run_id: facts.run_id,
        scenario: facts.scenario.to_string(),
        target: facts.target.to_string(),
        profile: facts.profile.summary(),
        started_at: facts.started_at,
        ended_at: facts.ended_at,
        planned_duration_s: facts.profile.planned_duration().as_secs_f64(),
        actual_duration_s: actual_s,
        partial: facts.partial_reason.is_some(),
        partial_reason: facts.partial_reason,
        totals,
        transactions: transactions
            .into_iter()
            .map(|(name, stats)| transaction_stats(name, stats))
            .collect(),
        errors_by_kind,
        error_samples: error_samples_from(error_samples),
        status_classes: status_classes
            .into_iter()
            .map(|(class, stats)| {
                let mut class = StatusClassStats {
                    class: class.to_string(),
                    requests: stats.requests,
                    latency: None,
                    histogram: stats.latency,
                };
                class.recompute();
                class
            })
            .collect(),
        timeseries: time_series(slices, facts.actual_duration),
        arrivals: facts.arrivals,
        thresholds,
        verdict: Verdict::Fail,
        slos: Vec::new(),
        journal: Vec::new(),
        server_side: None,
        provenance: Default::default(),
        workers: Vec::new(),
    };
    report.recompute_verdict();
    report
}

fn transaction_stats(name: &str, stats: SeriesStats) -> TransactionStats {
    let mut transaction = TransactionStats {
        name: name.to_string(),
        requests: stats.requests,
        errors: stats.errors,
        error_rate: 0.0,
        latency: None,
        corrected_latency: None,
        histogram: stats.latency,
        corrected_histogram: stats.corrected,
    };
    transaction.recompute();
    transaction
}

/// One entry per second of the run, including seconds in which nothing finished.
fn time_series(mut slices: Vec<Slice>, actual: Duration) -> Vec<TimeSlice> {
    let seconds = (actual.as_secs_f64().ceil() as usize).max(slices.len());
    let corrected = slices.iter().any(|s| s.stats.corrected.is_some());
    while slices.len() < seconds {
        slices.push(Slice {
            stats: SeriesStats {
                requests: 0,
                errors: 0,
                latency: LatencyHistogram::coarse(),
                corrected: corrected.then(LatencyHistogram::coarse),
            },
            errors_by_kind: ErrorCounts::default(),
            active_users: 0,
        });
    }
    slices
        .into_iter()
        .enumerate()
        .map(|(second, slice)| {
            let mut time_slice = TimeSlice {
                second: second as u64,
                requests: slice.stats.requests,
                errors: slice.stats.errors,
                errors_by_kind: slice.errors_by_kind,
                active_users: slice.active_users,
                latency: None,
                corrected_latency: None,
                histogram: slice.stats.latency,
                corrected_histogram: slice.stats.corrected,
            };
            time_slice.recompute();
            time_slice
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use reports::{ErrorKind, default_thresholds};

    use super::*;
    use crate::recorder::{Recorder, RequestRecord};

    #[test]
    fn counts_agree_across_totals_transactions_and_time_series() {
        let origin = Instant::now();
        let recorder = Recorder::starting_at(origin, true);
        let names = ["list_products", "get_product", "search_products"];
        for i in 0..500u64 {
            let failed = i % 17 == 0;
            recorder.record_at(
                origin + Duration::from_millis(i * 7),
                RequestRecord {
                    transaction: names[(i % 3) as usize],
                    latency: Duration::from_micros(1_000 + i * 13),
                    lateness: Duration::from_millis(i % 5),
                    status: Some(if failed { 500 } else { 200 }),
                    error: failed.then(|| (ErrorKind::Status, "expected 200, got 500".into())),
                },
            );
        }
        let profile = Profile::builtin("smoke").unwrap();
        let started_at = Utc::now();
        let report = assemble(
            RunFacts {
                run_id: "test".into(),
                scenario: "browse",
                target: "http://127.0.0.1:1",
                profile: &profile,
                started_at,
                ended_at: started_at,
                actual_duration: Duration::from_millis(4_000),
                partial_reason: None,
                thresholds: &default_thresholds(),
                arrivals: None,
            },
            recorder.measurements(),
        );

        assert_eq!(report.totals.requests, 500);
        let sum_series: u64 = report.timeseries.iter().map(|s| s.requests).sum();
        let sum_transactions: u64 = report.transactions.iter().map(|t| t.requests).sum();
        assert_eq!(sum_series, 500);
        assert_eq!(sum_transactions, 500);
        assert_eq!(report.consistency_problems(), Vec::<String>::new());
        assert_eq!(report.timeseries.len(), 4, "4 s run, one slice per second");
        assert_eq!(report.errors_by_kind.status, 30);
        // One distinct message per transaction that failed.
        assert_eq!(report.error_samples.len(), 3);
        assert_eq!(
            report.error_samples.iter().map(|s| s.count).sum::<u64>(),
            30
        );
        assert!(
            report.totals.corrected_latency.unwrap().max_ms
                >= report.totals.latency.unwrap().max_ms
        );
        assert_eq!(report.thresholds.len(), 3);
        assert_eq!(
            report.verdict,
            reports::Verdict::Fail,
            "6 % errors fail error_rate<5%"
        );
    }

    #[test]
    fn quiet_seconds_still_get_a_slice() {
        let origin = Instant::now();
        let recorder = Recorder::starting_at(origin, false);
        recorder.record_at(
            origin,
            RequestRecord {
                transaction: "health",
                latency: Duration::from_millis(1),
                lateness: Duration::ZERO,
                status: Some(200),
                error: None,
            },
        );
        let series = time_series(recorder.measurements().slices, Duration::from_millis(2_100));
        assert_eq!(series.len(), 3);
        assert_eq!(series[0].requests, 1);
        assert_eq!(series[2].requests, 0);
        assert_eq!(series[2].latency, None);
    }
}
