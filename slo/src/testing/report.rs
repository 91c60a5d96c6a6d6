//! Run reports with known numbers, built the way a run builds them (latencies recorded into
//! HDR histograms, every count derived from the same requests), so they are internally
//! consistent and their percentiles are known to the test that made them.

use chrono::{DateTime, Duration, Utc};
use reports::{
    ErrorCounts, ErrorKind, LatencyHistogram, LoadModel, ProfileSummary, Report, SCHEMA_VERSION,
    SlicePercentiles, StageSummary, StatusClassStats, TimeSlice, Totals, TransactionStats, Verdict,
    default_thresholds,
};

/// The requests of one transaction.
#[derive(Clone, Debug)]
pub struct TransactionSpec {
    pub name: String,
    /// One latency per request, in microseconds.
    pub latencies_us: Vec<u64>,
    /// How many of the requests (the first ones) failed with HTTP 500.
    pub errors: u64,
}

impl TransactionSpec {
    pub fn new(name: &str, latencies_us: Vec<u64>, errors: u64) -> TransactionSpec {
        assert!(errors as usize <= latencies_us.len());
        TransactionSpec {
            name: name.to_string(),
            latencies_us,
            errors,
        }
    }
}

/// A complete closed-model report of `seconds` seconds starting at `started_at`; request `i`
/// of every transaction completes in second `i % seconds`.
pub fn run_report(
    started_at: DateTime<Utc>,
    seconds: u64,
    transactions: &[TransactionSpec],
) -> Report {
    assert!(seconds > 0);
    let mut totals_histogram = LatencyHistogram::fine();
    let mut errors_by_kind = ErrorCounts::default();
    let mut ok_class = (0, LatencyHistogram::fine());
    let mut error_class = (0, LatencyHistogram::fine());
    let mut slices: Vec<(u64, u64, ErrorCounts, LatencyHistogram)> = (0..seconds)
        .map(|_| (0, 0, ErrorCounts::default(), LatencyHistogram::coarse()))
        .collect();
    let mut stats = Vec::new();
    for spec in transactions {
        let mut histogram = LatencyHistogram::fine();
        for (i, micros) in spec.latencies_us.iter().enumerate() {
            let failed = (i as u64) < spec.errors;
            histogram.record_micros(*micros);
            totals_histogram.record_micros(*micros);
            let slice = &mut slices[i % seconds as usize];
            slice.0 += 1;
            slice.3.record_micros(*micros);
            let class = if failed {
                &mut error_class
            } else {
                &mut ok_class
            };
            class.0 += 1;
            class.1.record_micros(*micros);
            if failed {
                slice.1 += 1;
                slice.2.add(ErrorKind::Status);
                errors_by_kind.add(ErrorKind::Status);
            }
        }
        let requests = spec.latencies_us.len() as u64;
        stats.push(TransactionStats {
            name: spec.name.clone(),
            requests,
            errors: spec.errors,
            error_rate: ratio(spec.errors, requests),
            latency: histogram.stats(),
            corrected_latency: None,
            histogram,
            corrected_histogram: None,
        });
    }
    stats.sort_by(|a, b| a.name.cmp(&b.name));
    let requests: u64 = stats.iter().map(|t| t.requests).sum();
    let errors = errors_by_kind.total();
    let totals = Totals {
        requests,
        errors,
        error_rate: ratio(errors, requests),
        rps: requests as f64 / seconds as f64,
        latency: totals_histogram.stats(),
        corrected_latency: None,
        histogram: totals_histogram,
        corrected_histogram: None,
    };
    let status_classes = [("2xx", ok_class), ("5xx", error_class)]
        .into_iter()
        .filter(|(_, (n, _))| *n > 0)
        .map(|(class, (requests, histogram))| StatusClassStats {
            class: class.to_string(),
            requests,
            latency: histogram.stats(),
            histogram,
        })
        .collect();
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        run_id: format!("test-{}", started_at.timestamp()),
        scenario: "test".into(),
        target: "http://127.0.0.1:8080".into(),
        profile: ProfileSummary {
            name: "test".into(),
            description: None,
            model: LoadModel::Closed,
            stages: vec![StageSummary {
                duration_s: seconds as f64,
                target: 1.0,
            }],
            start_rate: None,
            max_users: None,
            worker: None,
            merged_workers: None,
        },
        started_at,
        ended_at: started_at + Duration::seconds(seconds as i64),
        planned_duration_s: seconds as f64,
        actual_duration_s: seconds as f64,
        partial: false,
        partial_reason: None,
        thresholds: default_thresholds()
            .iter()
            .map(|t| t.evaluate(&totals))
            .collect(),
        totals,
        transactions: stats,
        errors_by_kind,
        error_samples: Vec::new(),
        status_classes,
        timeseries: slices
            .into_iter()
            .enumerate()
            .map(
                |(second, (requests, errors, errors_by_kind, histogram))| TimeSlice {
                    second: second as u64,
                    requests,
                    errors,
                    errors_by_kind,
                    active_users: 1,
                    latency: histogram.stats().map(|s| SlicePercentiles {
                        p50_ms: s.p50_ms,
                        p95_ms: s.p95_ms,
                        p99_ms: s.p99_ms,
                    }),
                    corrected_latency: None,
                    histogram,
                    corrected_histogram: None,
                },
            )
            .collect(),
        arrivals: None,
        verdict: Verdict::Pass,
        slos: Vec::new(),
        journal: Vec::new(),
        server_side: None,
        provenance: Default::default(),
        workers: Vec::new(),
    };
    report.recompute_verdict();
    report
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// `count` latencies spread evenly from `from_us` to `to_us` (inclusive).
pub fn spread(count: usize, from_us: u64, to_us: u64) -> Vec<u64> {
    if count <= 1 {
        return vec![from_us; count];
    }
    (0..count)
        .map(|i| from_us + (to_us - from_us) * i as u64 / (count as u64 - 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn reports_are_consistent() {
        let report = run_report(
            Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap(),
            10,
            &[
                TransactionSpec::new("browse", spread(100, 10_000, 109_000), 0),
                TransactionSpec::new("checkout", spread(50, 100_000, 149_000), 5),
            ],
        );
        assert_eq!(report.consistency_problems(), Vec::<String>::new());
        assert_eq!(report.totals.requests, 150);
        assert_eq!(report.totals.errors, 5);
    }
}
