//! A small but complete report for the renderer and model tests.
//!
//! Built the way a run builds one — record latencies into histograms, derive every number
//! from them — so the fixture is internally consistent by construction, and a test that
//! breaks a count knows it broke something real.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};

use crate::LatencyHistogram;
use crate::model::*;
use crate::threshold::default_thresholds;

/// One synthetic request: (second, transaction, latency µs, status, error kind).
type Request = (u64, &'static str, u64, Option<u16>, Option<ErrorKind>);

fn requests() -> Vec<Request> {
    let mut out = Vec::new();
    for second in 0..10u64 {
        for i in 0..20u64 {
            let latency = 20_000 + i * 1_500 + second * 200;
            out.push((second, "list_products", latency, Some(200), None));
            if i % 2 == 0 {
                out.push((second, "get_product", latency / 2, Some(200), None));
            }
        }
        // One failed checkout per second: a 503 on odd seconds, a refused connection on even.
        if second % 2 == 1 {
            out.push((
                second,
                "place_order",
                80_000,
                Some(503),
                Some(ErrorKind::Status),
            ));
        } else {
            out.push((second, "place_order", 1_000, None, Some(ErrorKind::Connect)));
        }
    }
    out
}

/// A complete report of a 10-second closed-model run with one SLO and one journal event.
pub fn sample_report() -> Report {
    let requests = requests();
    let started_at = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
    let mut totals_histogram = LatencyHistogram::fine();
    let mut errors_by_kind = ErrorCounts::default();
    let mut per_transaction: BTreeMap<&str, (u64, u64, LatencyHistogram)> = BTreeMap::new();
    let mut per_class: BTreeMap<String, (u64, LatencyHistogram)> = BTreeMap::new();
    let mut slices: Vec<(u64, u64, ErrorCounts, LatencyHistogram)> = (0..10)
        .map(|_| (0, 0, ErrorCounts::default(), LatencyHistogram::coarse()))
        .collect();
    let mut samples = BTreeMap::new();
    for (second, name, micros, status, error) in &requests {
        totals_histogram.record_micros(*micros);
        let tx = per_transaction
            .entry(name)
            .or_insert_with(|| (0, 0, LatencyHistogram::fine()));
        tx.0 += 1;
        tx.2.record_micros(*micros);
        let class = status.map_or("none".to_string(), |s| format!("{}xx", s / 100));
        let cls = per_class
            .entry(class)
            .or_insert_with(|| (0, LatencyHistogram::fine()));
        cls.0 += 1;
        cls.1.record_micros(*micros);
        let slice = &mut slices[*second as usize];
        slice.0 += 1;
        slice.3.record_micros(*micros);
        if let Some(kind) = error {
            tx.1 += 1;
            slice.1 += 1;
            slice.2.add(*kind);
            errors_by_kind.add(*kind);
            *samples
                .entry((*kind, name.to_string(), format!("{kind} failure")))
                .or_insert(0) += 1;
        }
    }
    let total = requests.len() as u64;
    let errors = errors_by_kind.total();
    let totals = Totals {
        requests: total,
        errors,
        error_rate: errors as f64 / total as f64,
        rps: total as f64 / 10.0,
        latency: totals_histogram.stats(),
        corrected_latency: None,
        histogram: totals_histogram,
        corrected_histogram: None,
    };
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        run_id: "0194f6b2-0000-7000-8000-000000000000".into(),
        scenario: "browse".into(),
        target: "http://127.0.0.1:8080".into(),
        profile: ProfileSummary {
            name: "smoke".into(),
            description: Some("a few users for a few seconds".into()),
            model: LoadModel::Closed,
            stages: vec![
                StageSummary {
                    duration_s: 5.0,
                    target: 2.0,
                },
                StageSummary {
                    duration_s: 5.0,
                    target: 0.0,
                },
            ],
            start_rate: None,
            max_users: None,
            worker: None,
            merged_workers: None,
        },
        started_at,
        ended_at: started_at + chrono::Duration::seconds(10),
        planned_duration_s: 10.0,
        actual_duration_s: 10.0,
        partial: false,
        partial_reason: None,
        thresholds: default_thresholds()
            .iter()
            .map(|t| t.evaluate(&totals))
            .collect(),
        totals,
        transactions: per_transaction
            .into_iter()
            .map(|(name, (requests, errors, histogram))| TransactionStats {
                name: name.to_string(),
                requests,
                errors,
                error_rate: errors as f64 / requests as f64,
                latency: histogram.stats(),
                corrected_latency: None,
                histogram,
                corrected_histogram: None,
            })
            .collect(),
        errors_by_kind,
        error_samples: error_samples_from(samples),
        status_classes: per_class
            .into_iter()
            .map(|(class, (requests, histogram))| StatusClassStats {
                class,
                requests,
                latency: histogram.stats(),
                histogram,
            })
            .collect(),
        timeseries: slices
            .into_iter()
            .enumerate()
            .map(
                |(second, (requests, errors, errors_by_kind, histogram))| TimeSlice {
                    second: second as u64,
                    requests,
                    errors,
                    errors_by_kind,
                    active_users: 2,
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
        slos: vec![SloVerdict {
            name: "checkout-availability".into(),
            status: SloStatus::Pass,
            measured: Some(0.9995),
            unit: Some("ratio".into()),
            objective: "availability >= 99.9 %".into(),
            source: "prometheus".into(),
            query: Some("sum(rate(http_requests_total{code!~\"5..\"}[5m]))".into()),
            window: Some("5m".into()),
            message: None,
        }],
        journal: vec![JournalEvent {
            at: started_at + chrono::Duration::seconds(4),
            ended_at: Some(started_at + chrono::Duration::seconds(6)),
            kind: "chaos.kill-pod".into(),
            target: "payments".into(),
            outcome: "ok".into(),
            detail: Some("pod payments-7d9 | deleted".into()),
        }],
        server_side: Some(crate::ServerSide {
            source: "prometheus http://prometheus:9090, service=\"api-gateway\"".into(),
            queries: vec!["histogram_quantile(0.95, …)".into()],
            routes: vec![crate::RouteLatency {
                transaction: "checkout".into(),
                method: "POST".into(),
                route: "/api/v1/orders".into(),
                client: crate::Percentiles {
                    p50_ms: Some(120.0),
                    p95_ms: Some(310.0),
                    p99_ms: Some(480.0),
                },
                server: crate::Percentiles {
                    p50_ms: Some(95.0),
                    p95_ms: Some(240.0),
                    p99_ms: Some(400.0),
                },
                gap_p95_ms: Some(70.0),
            }],
            unmatched: vec!["browse".into()],
        }),
        workers: Vec::new(),
        provenance: crate::Provenance {
            shakedown: Some(crate::provenance::Build {
                version: "0.1.0".into(),
                commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
                dirty: false,
                profile: "release".into(),
            }),
            command_line: Some("shakedown run checkout --profile 'my profile.yaml'".into()),
            target: Some("http://127.0.0.1:8080".into()),
            started_at: Some(started_at),
            ended_at: Some(started_at + chrono::Duration::seconds(10)),
            host: Some(crate::provenance::Host {
                name: "ci-runner-7".into(),
                os: "Debian GNU/Linux 13 (trixie)".into(),
                kernel: Some("6.12.0".into()),
                arch: "x86_64".into(),
                cpus: 2,
            }),
            files: vec![crate::provenance::InputFile {
                role: "profile".into(),
                path: "my profile.yaml".into(),
                sha256: Some(
                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
                ),
                bytes: Some(3),
            }],
            queries: vec!["histogram_quantile(0.95, …)".into()],
            generator: Some(crate::provenance::GeneratorHealth::judge(
                Some(crate::provenance::CpuUsage {
                    process_cpu_s: 19.0,
                    wall_s: 10.0,
                    cores: 2,
                    host_busy: Some(0.97),
                }),
                None,
            )),
        },
    };
    report.recompute_verdict();
    report
}
