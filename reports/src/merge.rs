//! Merging the reports of distributed load workers into one report that reads like one run.
//!
//! `shakedown run --workers N --worker-index I` makes each worker run its share of one load
//! profile and write an ordinary report. Percentiles cannot be added or averaged, so [`merge`]
//! adds the counts and merges the HDR histograms the reports carry, then derives every rate,
//! percentile and threshold again from the merged data — with the same derivations a run uses
//! (the `recompute` methods of [`crate::derive`]). The time series is aligned on the
//! wall clock, so workers that started a little apart still add up second by second.
//! SCHEMA.md ("Merged reports") documents what each field of a merged report means.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::derive::{MAX_ERROR_SAMPLES, round_to};
use crate::error::HistogramError;
use crate::histogram::LatencyHistogram;
use crate::model::{
    ArrivalStats, ErrorCounts, ErrorKind, JournalEvent, ProfileSummary, Report, StatusClassStats,
    TimeSlice, Totals, TransactionStats, Verdict, error_samples_from,
};
use crate::threshold::{Threshold, ThresholdResult};

/// Why worker reports could not be merged. `index` is the position of the offending report in
/// the slice given to [`merge`], so a caller can name its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: give at least one worker report")]
    Empty,
    #[error(
        "worker report {run_id} cannot be merged with worker report {first_run_id}: {reason} \
         (they must be shares of one run of one profile)"
    )]
    Incompatible {
        index: usize,
        run_id: String,
        first_run_id: String,
        reason: String,
    },
    #[error("worker report {run_id}: {reason}")]
    Invalid {
        index: usize,
        run_id: String,
        reason: String,
    },
    /// The same worker's report given twice: merging it would count its requests twice.
    #[error("worker report {run_id} is given twice: {reason} (each worker's report counts once)")]
    Duplicate {
        index: usize,
        /// Position of the report it duplicates.
        first: usize,
        run_id: String,
        reason: String,
    },
}

impl MergeError {
    /// Position of the report the error is about, `None` for [`MergeError::Empty`].
    pub fn index(&self) -> Option<usize> {
        match self {
            MergeError::Empty => None,
            MergeError::Incompatible { index, .. }
            | MergeError::Invalid { index, .. }
            | MergeError::Duplicate { index, .. } => Some(*index),
        }
    }

    /// Position of the report the offending one was compared with, if any.
    pub fn other_index(&self) -> Option<usize> {
        match self {
            MergeError::Incompatible { .. } => Some(0),
            MergeError::Duplicate { first, .. } => Some(*first),
            MergeError::Empty | MergeError::Invalid { .. } => None,
        }
    }
}

/// Merges the reports of the workers of one distributed run into one report.
///
/// Counts are summed and histograms merged per total, transaction, status class and wall-clock
/// second; rates, percentiles, thresholds and the verdict are recomputed from the merged data.
/// SLO verdicts are dropped (judge the merged report with `shakedown slo check`). Refuses
/// reports of different scenarios, profiles, schema versions, load models, stage plans or
/// worker counts, and the same worker twice (same `run_id` or same worker index).
pub fn merge(reports: &[Report]) -> Result<Report, MergeError> {
    let first = reports.first().ok_or(MergeError::Empty)?;
    for (index, report) in reports.iter().enumerate().skip(1) {
        if let Some(reason) = incompatibility(first, report) {
            return Err(MergeError::Incompatible {
                index,
                run_id: report.run_id.clone(),
                first_run_id: first.run_id.clone(),
                reason,
            });
        }
        if let Some((earlier, reason)) = duplicate(&reports[..index], report) {
            return Err(MergeError::Duplicate {
                index,
                first: earlier,
                run_id: report.run_id.clone(),
                reason,
            });
        }
    }

    let started_at = min_max(reports.iter().map(|r| r.started_at)).0;
    let ended_at = min_max(reports.iter().map(|r| r.ended_at)).1;
    let actual_duration_s = round_to(seconds_between(started_at, ended_at), 3);
    let earliest = reports
        .iter()
        .min_by(|a, b| (a.started_at, &a.run_id).cmp(&(b.started_at, &b.run_id)))
        .unwrap_or(first);
    let corrected = reports
        .iter()
        .any(|r| r.totals.corrected_histogram.is_some());

    let mut merged = Report {
        schema_version: first.schema_version,
        run_id: format!("merged-{}", earliest.run_id),
        scenario: first.scenario.clone(),
        target: distinct(reports.iter().map(|r| r.target.as_str())).join(", "),
        profile: merged_profile(reports),
        started_at,
        ended_at,
        planned_duration_s: reports
            .iter()
            .map(|r| r.planned_duration_s)
            .fold(0.0, f64::max),
        actual_duration_s,
        partial: reports.iter().any(|r| r.partial),
        partial_reason: partial_reason(reports),
        totals: Totals {
            requests: 0,
            errors: 0,
            error_rate: 0.0,
            rps: 0.0,
            latency: None,
            corrected_latency: None,
            histogram: LatencyHistogram::fine(),
            corrected_histogram: corrected.then(LatencyHistogram::fine),
        },
        transactions: Vec::new(),
        errors_by_kind: ErrorCounts::default(),
        error_samples: Vec::new(),
        status_classes: Vec::new(),
        timeseries: Vec::new(),
        arrivals: merged_arrivals(reports),
        thresholds: Vec::new(),
        verdict: Verdict::Fail,
        slos: Vec::new(),
        journal: merged_journal(reports),
        // Server-side figures are asked of Prometheus for one window; the merged run's is
        // asked anew by whoever merges live (percentiles of parts do not add up).
        server_side: None,
        // Who merged, from which files, is stamped by the command that merges; what is known
        // here is whether any part's generator could not keep up.
        provenance: crate::Provenance {
            generator: crate::GeneratorHealth::worst_of(
                reports
                    .iter()
                    .filter_map(|r| Some((r.run_id.as_str(), r.provenance.generator.as_ref()?))),
            ),
            ..Default::default()
        },
        workers: Vec::new(),
    };

    let mut transactions: BTreeMap<String, TransactionStats> = BTreeMap::new();
    let mut classes: BTreeMap<String, StatusClassStats> = BTreeMap::new();
    let mut samples: BTreeMap<(ErrorKind, String, String), u64> = BTreeMap::new();
    let mut slices: Vec<TimeSlice> = Vec::new();
    for (index, report) in reports.iter().enumerate() {
        let invalid = |what: String, error: HistogramError| MergeError::Invalid {
            index,
            run_id: report.run_id.clone(),
            reason: format!("{what}: {error:#}"),
        };

        let totals = &mut merged.totals;
        totals.requests += report.totals.requests;
        totals.errors += report.totals.errors;
        add_histograms(
            (&mut totals.histogram, &mut totals.corrected_histogram),
            (&report.totals.histogram, &report.totals.corrected_histogram),
            LatencyHistogram::fine,
        )
        .map_err(|e| invalid("totals histogram".into(), e))?;

        for tx in &report.transactions {
            let into = transactions
                .entry(tx.name.clone())
                .or_insert_with(|| TransactionStats::empty(&tx.name, corrected));
            into.requests += tx.requests;
            into.errors += tx.errors;
            add_histograms(
                (&mut into.histogram, &mut into.corrected_histogram),
                (&tx.histogram, &tx.corrected_histogram),
                LatencyHistogram::fine,
            )
            .map_err(|e| invalid(format!("transaction {}", tx.name), e))?;
        }

        for class in &report.status_classes {
            let into = classes
                .entry(class.class.clone())
                .or_insert_with(|| StatusClassStats::empty(&class.class));
            into.requests += class.requests;
            into.histogram
                .merge(&class.histogram)
                .map_err(|e| invalid(format!("status class {}", class.class), e))?;
        }

        add_error_counts(&mut merged.errors_by_kind, &report.errors_by_kind);
        for sample in &report.error_samples {
            let key = (
                sample.kind,
                sample.transaction.clone(),
                sample.message.clone(),
            );
            *samples.entry(key).or_insert(0) += sample.count;
        }

        // Slice `s` of this worker covers [its start + s, its start + s + 1): on the merged
        // clock that is second floor(offset + s) = whole seconds of the offset + s.
        let shift = (report.started_at - started_at).num_milliseconds().max(0) as u64 / 1000;
        for slice in &report.timeseries {
            let second = shift + slice.second;
            while slices.len() as u64 <= second {
                slices.push(TimeSlice::empty(slices.len() as u64, corrected));
            }
            let into = &mut slices[second as usize];
            into.requests += slice.requests;
            into.errors += slice.errors;
            add_error_counts(&mut into.errors_by_kind, &slice.errors_by_kind);
            into.active_users += slice.active_users;
            add_histograms(
                (&mut into.histogram, &mut into.corrected_histogram),
                (&slice.histogram, &slice.corrected_histogram),
                LatencyHistogram::coarse,
            )
            .map_err(|e| invalid(format!("time slice {}", slice.second), e))?;
        }
    }
    // Like a run: one slice per started second of the actual duration, even a quiet one.
    while (slices.len() as f64) < actual_duration_s.ceil() {
        slices.push(TimeSlice::empty(slices.len() as u64, corrected));
    }

    merged.totals.recompute(actual_duration_s);
    merged.transactions = transactions.into_values().collect();
    merged.status_classes = classes.into_values().collect();
    for tx in &mut merged.transactions {
        tx.recompute();
    }
    for class in &mut merged.status_classes {
        class.recompute();
    }
    for slice in &mut slices {
        slice.recompute();
    }
    merged.timeseries = slices;
    merged.error_samples = error_samples_from(samples);
    merged.error_samples.truncate(MAX_ERROR_SAMPLES);
    merged.thresholds = reevaluated_thresholds(reports, &merged.totals)?;
    merged.recompute_verdict();
    Ok(merged)
}

/// Why `other` is not a share of the same run as `first`; `None` when it is.
fn incompatibility(first: &Report, other: &Report) -> Option<String> {
    let (a, b) = (&first.profile, &other.profile);
    if first.schema_version != other.schema_version {
        return Some(format!(
            "schema_version {} differs from {}",
            other.schema_version, first.schema_version
        ));
    }
    if first.scenario != other.scenario {
        return Some(format!(
            "scenario `{}` differs from `{}`",
            other.scenario, first.scenario
        ));
    }
    if a.whole_name() != b.whole_name() {
        return Some(format!(
            "profile `{}` differs from `{}`",
            b.whole_name(),
            a.whole_name()
        ));
    }
    let workers = |p: &ProfileSummary| p.worker_share().map(|w| w.workers);
    if workers(a) != workers(b) {
        let text = |n: Option<u32>| n.map_or("a whole run".to_string(), |n| format!("{n} workers"));
        return Some(format!(
            "it is a share of {}, not of {}",
            text(workers(b)),
            text(workers(a))
        ));
    }
    if a.model != b.model {
        return Some(format!("{} load model differs from {}", b.model, a.model));
    }
    if a.stages.len() != b.stages.len() {
        return Some(format!(
            "{} profile stages differ from {}",
            b.stages.len(),
            a.stages.len()
        ));
    }
    a.stages
        .iter()
        .zip(&b.stages)
        .position(|(x, y)| (x.duration_s - y.duration_s).abs() > 1e-6)
        .map(|i| {
            format!(
                "stage {} lasts {} s, not {} s",
                i + 1,
                b.stages[i].duration_s,
                a.stages[i].duration_s
            )
        })
}

/// Whether `report` is one of `earlier` again: the same run, or the same worker's share.
/// Returns the earlier one's position and what they have in common.
fn duplicate(earlier: &[Report], report: &Report) -> Option<(usize, String)> {
    earlier.iter().enumerate().find_map(|(i, other)| {
        if other.run_id == report.run_id {
            return Some((i, format!("run_id {} appears twice", report.run_id)));
        }
        match (other.profile.worker_share(), report.profile.worker_share()) {
            (Some(a), Some(b)) if a.index == b.index => Some((
                i,
                format!(
                    "{b} ran in two reports ({} and {})",
                    other.run_id, report.run_id
                ),
            )),
            _ => None,
        }
    })
}

/// The whole profile — its name without any worker share — with the workers' shares added
/// back up, and the number of workers recorded.
fn merged_profile(reports: &[Report]) -> ProfileSummary {
    let mut profile = reports[0].profile.clone();
    profile.name = profile.whole_name().to_string();
    profile.worker = None;
    profile.merged_workers = Some(reports.len() as u32);
    for (i, stage) in profile.stages.iter_mut().enumerate() {
        stage.target = reports.iter().map(|r| r.profile.stages[i].target).sum();
    }
    profile.start_rate = sum_present(reports.iter().map(|r| r.profile.start_rate));
    profile.max_users = sum_present(reports.iter().map(|r| r.profile.max_users));
    let note = format!("merged from {} workers", reports.len());
    profile.description = Some(match profile.description {
        Some(text) => format!("{text} ({note})"),
        None => note,
    });
    profile
}

fn partial_reason(reports: &[Report]) -> Option<String> {
    let reasons: Vec<String> = reports
        .iter()
        .filter(|r| r.partial)
        .map(|r| {
            let why = r.partial_reason.as_deref().unwrap_or("reason not recorded");
            format!("worker report {}: {why}", r.run_id)
        })
        .collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

fn merged_arrivals(reports: &[Report]) -> Option<ArrivalStats> {
    reports
        .iter()
        .filter_map(|r| r.arrivals)
        .reduce(|a, b| ArrivalStats {
            scheduled_iterations: a.scheduled_iterations + b.scheduled_iterations,
            started_iterations: a.started_iterations + b.started_iterations,
            max_lateness_ms: a.max_lateness_ms.max(b.max_lateness_ms),
        })
}

fn merged_journal(reports: &[Report]) -> Vec<JournalEvent> {
    let mut journal: Vec<JournalEvent> = reports
        .iter()
        .flat_map(|r| r.journal.iter().cloned())
        .collect();
    journal.sort_by_key(|e| e.at);
    journal
}

/// Every threshold any worker was judged by (first appearance first), judged again on the
/// merged totals.
fn reevaluated_thresholds(
    reports: &[Report],
    totals: &Totals,
) -> Result<Vec<ThresholdResult>, MergeError> {
    let mut seen: Vec<&str> = Vec::new();
    let mut results = Vec::new();
    for (index, report) in reports.iter().enumerate() {
        for result in &report.thresholds {
            if seen.contains(&result.name.as_str()) {
                continue;
            }
            seen.push(&result.name);
            let threshold: Threshold = result.name.parse().map_err(|e| MergeError::Invalid {
                index,
                run_id: report.run_id.clone(),
                reason: format!("{e}"),
            })?;
            results.push(threshold.evaluate(totals));
        }
    }
    Ok(results)
}

/// Adds `from` into `into`: the plain histograms, and the corrected ones where `from` has one.
fn add_histograms(
    (into, into_corrected): (&mut LatencyHistogram, &mut Option<LatencyHistogram>),
    (from, from_corrected): (&LatencyHistogram, &Option<LatencyHistogram>),
    fresh: fn() -> LatencyHistogram,
) -> Result<(), HistogramError> {
    into.merge(from)?;
    if let Some(from_corrected) = from_corrected {
        into_corrected
            .get_or_insert_with(fresh)
            .merge(from_corrected)?;
    }
    Ok(())
}

fn add_error_counts(into: &mut ErrorCounts, from: &ErrorCounts) {
    into.connect += from.connect;
    into.timeout += from.timeout;
    into.status += from.status;
    into.check += from.check;
    into.other += from.other;
}

/// The sum of the values that are present, `None` when none is.
fn sum_present<T: std::iter::Sum<T>>(values: impl Iterator<Item = Option<T>>) -> Option<T> {
    let mut values = values.flatten().peekable();
    values.peek().is_some().then(|| values.sum())
}

fn min_max(times: impl Iterator<Item = DateTime<Utc>>) -> (DateTime<Utc>, DateTime<Utc>) {
    times.fold(
        (DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC),
        |(lo, hi), t| (lo.min(t), hi.max(t)),
    )
}

/// The distinct values in order of first appearance.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for value in values {
        if !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::fixtures::sample_report;
    use crate::model::{LoadModel, SCHEMA_VERSION, SlicePercentiles, StageSummary, WorkerShare};
    use crate::threshold::default_thresholds;

    /// One request: (second, transaction, latency µs, error).
    type Request = (u64, &'static str, u64, Option<ErrorKind>);

    /// Lateness added to every request's corrected latency in open-model workers.
    const LATENESS_US: u64 = 5_000;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7).unwrap()
    }

    /// A closed-model worker's report (see [`worker_of`]).
    fn worker(
        run_id: &str,
        started_at: DateTime<Utc>,
        seconds: u64,
        users: u32,
        requests: &[Request],
    ) -> Report {
        worker_of(
            LoadModel::Closed,
            run_id,
            started_at,
            seconds,
            users,
            requests,
        )
    }

    /// A worker's report of `seconds` seconds at `users` users, built the way a run builds one:
    /// record every request, derive every number with the `recompute` methods. Open-model
    /// requests are corrected by [`LATENESS_US`].
    fn worker_of(
        model: LoadModel,
        run_id: &str,
        started_at: DateTime<Utc>,
        seconds: u64,
        users: u32,
        requests: &[Request],
    ) -> Report {
        let mut report = sample_report();
        report.profile.model = model;
        report.run_id = run_id.to_string();
        report.started_at = started_at;
        report.ended_at = started_at + Duration::seconds(seconds as i64);
        report.planned_duration_s = seconds as f64;
        report.actual_duration_s = seconds as f64;
        report.profile.stages = vec![StageSummary {
            duration_s: seconds as f64,
            target: f64::from(users),
        }];
        let open = report.profile.model == LoadModel::Open;
        report.totals = Totals {
            requests: 0,
            errors: 0,
            error_rate: 0.0,
            rps: 0.0,
            latency: None,
            corrected_latency: None,
            histogram: LatencyHistogram::fine(),
            corrected_histogram: open.then(LatencyHistogram::fine),
        };
        report.errors_by_kind = ErrorCounts::default();
        report.timeseries = (0..seconds).map(|s| TimeSlice::empty(s, open)).collect();
        for slice in &mut report.timeseries {
            slice.active_users = users;
        }
        let mut transactions: BTreeMap<&str, TransactionStats> = BTreeMap::new();
        let mut classes: BTreeMap<&str, StatusClassStats> = BTreeMap::new();
        let mut samples = BTreeMap::new();
        for &(second, name, micros, error) in requests {
            let tx = transactions
                .entry(name)
                .or_insert_with(|| TransactionStats::empty(name, open));
            let class = if error.is_some() { "5xx" } else { "2xx" };
            let class = classes
                .entry(class)
                .or_insert_with(|| StatusClassStats::empty(class));
            let slice = &mut report.timeseries[second as usize];
            let totals = &mut report.totals;
            for histogram in [
                &mut totals.histogram,
                &mut tx.histogram,
                &mut class.histogram,
                &mut slice.histogram,
            ] {
                histogram.record_micros(micros);
            }
            for corrected in [
                &mut totals.corrected_histogram,
                &mut tx.corrected_histogram,
                &mut slice.corrected_histogram,
            ]
            .into_iter()
            .flatten()
            {
                corrected.record_micros(micros + LATENESS_US);
            }
            totals.requests += 1;
            tx.requests += 1;
            class.requests += 1;
            slice.requests += 1;
            if let Some(kind) = error {
                totals.errors += 1;
                tx.errors += 1;
                slice.errors += 1;
                slice.errors_by_kind.add(kind);
                report.errors_by_kind.add(kind);
                *samples
                    .entry((kind, name.to_string(), format!("{kind} failure")))
                    .or_insert(0) += 1;
            }
        }
        report.totals.recompute(seconds as f64);
        report.transactions = transactions.into_values().collect();
        report.status_classes = classes.into_values().collect();
        report
            .transactions
            .iter_mut()
            .for_each(TransactionStats::recompute);
        report
            .status_classes
            .iter_mut()
            .for_each(StatusClassStats::recompute);
        report.timeseries.iter_mut().for_each(TimeSlice::recompute);
        report.error_samples = error_samples_from(samples);
        report.thresholds = default_thresholds()
            .iter()
            .map(|t| t.evaluate(&report.totals))
            .collect();
        report.slos.clear();
        report.journal.clear();
        report.recompute_verdict();
        assert_eq!(report.consistency_problems(), Vec::<String>::new());
        report
    }

    /// `count` requests of `name` spread over `seconds` seconds, latencies evenly from
    /// `from_us` to `to_us`; every `error_every`-th fails with a status error (0: none).
    fn load(
        name: &'static str,
        count: u64,
        seconds: u64,
        (from_us, to_us): (u64, u64),
        error_every: u64,
    ) -> Vec<Request> {
        (0..count)
            .map(|i| {
                let micros = from_us + (to_us - from_us) * i / (count - 1).max(1);
                let failed = error_every > 0 && i % error_every == 0;
                (
                    i % seconds,
                    name,
                    micros,
                    failed.then_some(ErrorKind::Status),
                )
            })
            .collect()
    }

    fn union_of(requests: &[&[Request]], corrected: bool) -> LatencyHistogram {
        let mut union = LatencyHistogram::fine();
        for &(_, _, micros, _) in requests.iter().copied().flatten() {
            union.record_micros(micros + if corrected { LATENESS_US } else { 0 });
        }
        union
    }

    fn assert_consistent(report: &Report) {
        assert_eq!(report.consistency_problems(), Vec::<String>::new());
        let total = report.totals.requests;
        let series: u64 = report.timeseries.iter().map(|s| s.requests).sum();
        let transactions: u64 = report.transactions.iter().map(|t| t.requests).sum();
        let classes: u64 = report.status_classes.iter().map(|c| c.requests).sum();
        assert_eq!((series, transactions, classes), (total, total, total));
        let seconds: Vec<u64> = report.timeseries.iter().map(|s| s.second).collect();
        assert_eq!(
            seconds,
            (0..report.timeseries.len() as u64).collect::<Vec<_>>()
        );
    }

    #[test]
    fn percentiles_are_those_of_all_values_together_and_counts_add_up() {
        let fast = [
            load("browse", 400, 10, (10_000, 50_000), 0),
            load("checkout", 100, 10, (40_000, 90_000), 20),
        ]
        .concat();
        let slow = load("browse", 100, 10, (300_000, 900_000), 10);
        let a = worker("a", t0(), 10, 3, &fast);
        let b = worker("b", t0(), 10, 2, &slow);
        let merged = merge(&[a.clone(), b.clone()]).unwrap();

        assert_consistent(&merged);
        assert_eq!(merged.totals.requests, 600);
        assert_eq!(merged.totals.errors, 5 + 10);
        assert_eq!(merged.totals.error_rate, 0.025);
        assert_eq!(merged.totals.rps, 60.0);
        assert_eq!(merged.errors_by_kind.status, 15);

        let union = union_of(&[&fast, &slow], false);
        let stats = merged.totals.latency.unwrap();
        assert_eq!(Some(stats), union.stats());
        assert_eq!(merged.totals.histogram.count(), 600);
        // Not what averaging the workers' percentiles would claim.
        let (pa, pb) = (a.totals.latency.unwrap(), b.totals.latency.unwrap());
        assert!((stats.p99_ms - (pa.p99_ms + pb.p99_ms) / 2.0).abs() > 50.0);
        assert!((stats.p50_ms - (pa.p50_ms + pb.p50_ms) / 2.0).abs() > 50.0);

        let browse = &merged.transactions[0];
        assert_eq!(
            (browse.name.as_str(), browse.requests, browse.errors),
            ("browse", 500, 10)
        );
        assert_eq!(browse.error_rate, 0.02);
        let browse_union = union_of(&[&fast[..400], &slow], false);
        assert_eq!(browse.latency, browse_union.stats());
        assert_eq!(merged.transactions[1].name, "checkout");
        let classes: Vec<(&str, u64)> = merged
            .status_classes
            .iter()
            .map(|c| (c.class.as_str(), c.requests))
            .collect();
        assert_eq!(classes, [("2xx", 585), ("5xx", 15)]);
        let mut failed = LatencyHistogram::fine();
        for &(_, _, micros, error) in fast.iter().chain(&slow) {
            if error.is_some() {
                failed.record_micros(micros);
            }
        }
        assert_eq!(merged.status_classes[1].latency, failed.stats());

        // Slice percentiles come from the merged per-second histograms too.
        let mut second_0 = LatencyHistogram::coarse();
        for &(s, _, micros, _) in fast.iter().chain(&slow) {
            if s == 0 {
                second_0.record_micros(micros);
            }
        }
        assert_eq!(
            merged.timeseries[0].latency,
            SlicePercentiles::of(&second_0)
        );
        assert_eq!(merged.timeseries[0].active_users, 5);
        assert_eq!(merged.profile.stages[0].target, 5.0);
    }

    #[test]
    fn time_series_is_aligned_on_the_wall_clock() {
        let a = worker(
            "a",
            t0(),
            10,
            1,
            &load("browse", 100, 10, (1_000, 2_000), 0),
        );
        let b = worker(
            "b",
            t0() + Duration::seconds(2),
            10,
            1,
            &load("browse", 30, 10, (1_000, 2_000), 3),
        );
        let merged = merge(&[b.clone(), a.clone()]).unwrap();
        assert_consistent(&merged);
        assert_eq!(merged.started_at, a.started_at);
        assert_eq!(merged.ended_at, b.ended_at);
        assert_eq!(merged.actual_duration_s, 12.0);
        assert_eq!(merged.planned_duration_s, 10.0);
        assert_eq!(merged.totals.rps, round_to(130.0 / 12.0, 3));
        assert_eq!(merged.timeseries.len(), 12);
        let requests: Vec<u64> = merged.timeseries.iter().map(|s| s.requests).collect();
        assert_eq!(requests, [10, 10, 13, 13, 13, 13, 13, 13, 13, 13, 3, 3]);
        let users: Vec<u32> = merged.timeseries.iter().map(|s| s.active_users).collect();
        assert_eq!(users, [1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1]);
        // B's slice 0 (1 of its 10 errors) lands in merged second 2.
        assert_eq!(merged.timeseries[2].errors, b.timeseries[0].errors);
        assert_eq!(merged.timeseries[2].errors_by_kind.status, 1);
        // Order-independent: the same result whichever report comes first.
        assert_eq!(merged, merge(&[a.clone(), b.clone()]).unwrap());
        assert_eq!(merged.run_id, "merged-a");

        // A fraction of a second of offset: B's second 0 starts inside merged second 2.
        let mut late = b.clone();
        late.started_at = t0() + Duration::milliseconds(2_700);
        late.ended_at = late.started_at + Duration::seconds(10);
        let merged = merge(&[a.clone(), late]).unwrap();
        assert_consistent(&merged);
        assert_eq!(merged.timeseries[2].requests, 13);
        assert_eq!(merged.actual_duration_s, 12.7);
        assert_eq!(merged.timeseries.len(), 13, "one slice per started second");
        assert_eq!(merged.timeseries[12].requests, 0);

        // A gap between workers is filled with empty seconds.
        let mut after = b.clone();
        after.started_at = t0() + Duration::seconds(15);
        after.ended_at = after.started_at + Duration::seconds(10);
        let merged = merge(&[a, after]).unwrap();
        assert_consistent(&merged);
        assert_eq!(merged.timeseries.len(), 25);
        assert!(
            merged.timeseries[10..15]
                .iter()
                .all(|s| s.requests == 0 && s.latency.is_none() && s.active_users == 0)
        );
        assert_eq!(merged.timeseries[15].requests, 3);
    }

    #[test]
    fn thresholds_are_judged_again_on_the_merged_numbers() {
        // Worker b alone fails p95<500ms; merged with a's much larger share of fast requests
        // the run's p95 is fast, so the merged run passes.
        let a = worker(
            "a",
            t0(),
            10,
            9,
            &load("browse", 990, 10, (10_000, 100_000), 0),
        );
        let b = worker(
            "b",
            t0(),
            10,
            1,
            &load("browse", 10, 10, (800_000, 900_000), 0),
        );
        assert_eq!(a.verdict, Verdict::Pass);
        assert_eq!(b.verdict, Verdict::Fail);
        let merged = merge(&[a.clone(), b.clone()]).unwrap();
        let p95 = &merged.thresholds[0];
        assert_eq!(p95.name, "p95<500ms");
        assert_eq!(p95.measured, Some(merged.totals.latency.unwrap().p95_ms));
        assert!(p95.measured.unwrap() < 100.0, "{p95:?}");
        assert_eq!(merged.thresholds.len(), 3);
        assert_eq!(merged.verdict, Verdict::Pass);

        // With an even split the slow half drags the merged p95 over the objective.
        let b = worker(
            "b",
            t0(),
            10,
            9,
            &load("browse", 990, 10, (800_000, 900_000), 0),
        );
        let merged = merge(&[a, b]).unwrap();
        assert_eq!(merged.thresholds[0].status, Verdict::Fail);
        assert_eq!(merged.verdict, Verdict::Fail);
        assert_eq!(merged.failure_reasons(), ["threshold failed: p95<500ms"]);
    }

    #[test]
    fn open_model_merges_corrected_latency_arrivals_and_rates() {
        let open = |run_id: &str, requests: &[Request], lateness_ms: f64| {
            let mut report = worker_of(LoadModel::Open, run_id, t0(), 10, 5, requests);
            report.profile.start_rate = Some(1.0);
            report.profile.max_users = Some(50);
            report.arrivals = Some(ArrivalStats {
                scheduled_iterations: 50,
                started_iterations: 49,
                max_lateness_ms: lateness_ms,
            });
            report
        };
        let a_requests = load("ingest", 200, 10, (1_000, 20_000), 0);
        let b_requests = load("ingest", 50, 10, (50_000, 400_000), 0);
        let a = open("a", &a_requests, 12.5);
        let b = open("b", &b_requests, 80.0);
        let merged = merge(&[a, b]).unwrap();
        assert_consistent(&merged);
        let union = union_of(&[&a_requests, &b_requests], true);
        assert_eq!(merged.totals.corrected_latency, union.stats());
        assert_eq!(merged.transactions[0].corrected_latency, union.stats());
        assert_eq!(
            merged.thresholds[0].measured,
            Some(union.stats().unwrap().p95_ms),
            "open-model latency thresholds use the corrected latency"
        );
        assert_eq!(
            merged.arrivals,
            Some(ArrivalStats {
                scheduled_iterations: 100,
                started_iterations: 98,
                max_lateness_ms: 80.0,
            })
        );
        assert_eq!(merged.profile.start_rate, Some(2.0));
        assert_eq!(merged.profile.max_users, Some(100));
        assert_eq!(merged.profile.stages[0].target, 10.0);
        assert!(
            merged
                .timeseries
                .iter()
                .all(|s| s.corrected_latency.is_some())
        );
    }

    #[test]
    fn samples_journal_slos_partial_and_profile_are_merged() {
        let a = sample_report();
        let mut b = sample_report();
        b.run_id = "b".into();
        b.started_at += Duration::seconds(2);
        b.ended_at += Duration::seconds(2);
        b.journal[0].at += Duration::seconds(-10);
        b.partial = true;
        b.partial_reason = Some("interrupted (Ctrl-C)".into());
        let merged = merge(&[a.clone(), b.clone()]).unwrap();
        assert_consistent(&merged);
        assert_eq!(merged.run_id, format!("merged-{}", a.run_id));
        assert_eq!(merged.totals.requests, 2 * a.totals.requests);
        assert_eq!(merged.errors_by_kind.connect, 2 * a.errors_by_kind.connect);
        assert_eq!(merged.error_samples.len(), a.error_samples.len());
        for sample in &merged.error_samples {
            let single = a
                .error_samples
                .iter()
                .find(|s| {
                    (s.kind, &s.transaction, &s.message)
                        == (sample.kind, &sample.transaction, &sample.message)
                })
                .unwrap();
            assert_eq!(sample.count, 2 * single.count);
        }
        assert!(merged.slos.is_empty(), "SLOs are judged after the merge");
        let journal: Vec<_> = merged.journal.iter().map(|e| e.at).collect();
        assert_eq!(journal, [b.journal[0].at, a.journal[0].at]);
        assert!(merged.partial);
        assert_eq!(
            merged.partial_reason.as_deref(),
            Some("worker report b: interrupted (Ctrl-C)")
        );
        assert_eq!(merged.verdict, Verdict::Fail);
        assert_eq!(merged.profile.name, a.profile.name);
        assert_eq!(
            merged.profile.description.as_deref(),
            Some("a few users for a few seconds (merged from 2 workers)")
        );
        let targets: Vec<f64> = merged.profile.stages.iter().map(|s| s.target).collect();
        assert_eq!(targets, [4.0, 0.0]);
        assert_eq!(merged.target, a.target);
        assert_eq!(merged.schema_version, SCHEMA_VERSION);

        // Distinct messages beyond the cap: the most frequent are kept, most frequent first.
        let many = |r: &Report, offset: u64| {
            let mut r = r.clone();
            r.error_samples = (0..40)
                .map(|i| crate::model::ErrorSample {
                    kind: ErrorKind::Check,
                    transaction: "t".into(),
                    message: format!("message {}", i + offset),
                    count: i + offset,
                })
                .collect();
            r
        };
        let merged = merge(&[many(&a, 0), many(&b, 30)]).unwrap();
        assert_eq!(merged.error_samples.len(), MAX_ERROR_SAMPLES);
        let counts: Vec<u64> = merged.error_samples.iter().map(|s| s.count).collect();
        assert_eq!(counts[..3], [78, 76, 74]);
        assert!(counts.windows(2).all(|w| w[0] >= w[1]));
        // Messages 30..39 appear in both workers: their counts add up.
        let shared = merged
            .error_samples
            .iter()
            .find(|s| s.message == "message 39");
        assert_eq!(shared.map(|s| s.count), Some(39 + 39));
    }

    #[test]
    fn reports_that_are_not_shares_of_one_run_are_refused() {
        assert_eq!(merge(&[]), Err(MergeError::Empty));
        let a = sample_report();
        let refused = |change: fn(&mut Report), expected: &str| {
            let mut b = sample_report();
            b.run_id = "b".into();
            change(&mut b);
            let mut a2 = a.clone();
            a2.run_id = "a2".into();
            let error = merge(&[a.clone(), a2, b]).unwrap_err();
            assert_eq!(error.index(), Some(2), "{error}");
            let message = error.to_string();
            assert!(
                message.starts_with("worker report b cannot be merged"),
                "{message}"
            );
            assert!(message.contains(expected), "{message}");
        };
        refused(
            |b| b.scenario = "checkout".into(),
            "scenario `checkout` differs from `browse`",
        );
        refused(|b| b.schema_version = 0, "schema_version 0 differs from 1");
        refused(
            |b| b.profile.model = LoadModel::Open,
            "open load model differs from closed",
        );
        refused(
            |b| {
                b.profile.stages.pop();
            },
            "1 profile stages differ from 2",
        );
        refused(
            |b| b.profile.stages[1].duration_s = 6.0,
            "stage 2 lasts 6 s, not 5 s",
        );

        refused(
            |b| b.profile.name = "k6-baseline".into(),
            "profile `k6-baseline` differs from `smoke`",
        );
        refused(
            |b| {
                b.profile.worker = Some(WorkerShare {
                    index: 1,
                    workers: 2,
                })
            },
            "it is a share of 2 workers, not of a whole run",
        );

        let mut bad = sample_report();
        bad.thresholds[0].name = "p95 fast".into();
        let error = merge(&[bad]).unwrap_err();
        assert_eq!(error.index(), Some(0));
        assert!(
            error.to_string().contains("invalid threshold `p95 fast`"),
            "{error}"
        );
    }

    #[test]
    fn the_same_worker_twice_is_refused() {
        let a = sample_report();
        let error = merge(&[a.clone(), a.clone()]).unwrap_err();
        assert_eq!((error.index(), error.other_index()), (Some(1), Some(0)));
        assert!(
            error
                .to_string()
                .contains(&format!("run_id {} appears twice", a.run_id)),
            "{error}"
        );

        let share = |run_id: &str, index: u32| {
            let mut r = sample_report();
            r.run_id = run_id.into();
            r.profile.worker = Some(WorkerShare { index, workers: 3 });
            r
        };
        let error = merge(&[share("w0", 0), share("w1", 1), share("w1-again", 1)]).unwrap_err();
        assert_eq!((error.index(), error.other_index()), (Some(2), Some(1)));
        assert!(
            error
                .to_string()
                .contains("worker 2 of 3 ran in two reports (w1 and w1-again)"),
            "{error}"
        );

        // Reports written before the share had its own field carry it in the profile name.
        let old = |run_id: &str, index: u32| {
            let mut r = sample_report();
            r.run_id = run_id.into();
            r.profile.name = format!("smoke (worker {index} of 2)");
            r
        };
        assert!(matches!(
            merge(&[old("x", 1), old("y", 1)]),
            Err(MergeError::Duplicate { .. })
        ));
        let merged = merge(&[old("x", 1), old("y", 2)]).unwrap();
        assert_eq!(merged.profile.name, "smoke");
    }

    /// A merged run is degraded when one of its parts was, and says which part; who merged
    /// (command, files) is the merging command's to stamp.
    #[test]
    fn a_degraded_part_degrades_the_merged_run() {
        let share = |run_id: &str, index: u32, cpu_s: f64| {
            let mut r = sample_report();
            r.run_id = run_id.into();
            r.profile.worker = Some(WorkerShare { index, workers: 2 });
            r.provenance = crate::Provenance {
                command_line: Some(format!("shakedown run --worker-index {index}")),
                generator: Some(crate::GeneratorHealth::judge(
                    Some(crate::provenance::CpuUsage {
                        process_cpu_s: cpu_s,
                        wall_s: 10.0,
                        cores: 2,
                        host_busy: None,
                    }),
                    None,
                )),
                ..Default::default()
            };
            r
        };
        let merged = merge(&[share("w0", 0, 2.0), share("w1", 1, 19.5)]).unwrap();
        let generator = merged.provenance.generator.as_ref().unwrap();
        assert!(generator.degraded);
        assert_eq!(generator.cpu_cores_used, Some(1.95));
        assert_eq!(generator.why.len(), 1);
        assert!(generator.why[0].starts_with("w1: "), "{:?}", generator.why);
        assert_eq!(merged.provenance.command_line, None);

        let calm = merge(&[share("w0", 0, 2.0), share("w1", 1, 3.0)]).unwrap();
        assert!(!calm.provenance.generator.unwrap().degraded);
    }

    #[test]
    fn the_merged_profile_is_the_whole_one() {
        let share = |run_id: &str, index: u32| {
            let mut r = sample_report();
            r.run_id = run_id.into();
            r.profile.worker = Some(WorkerShare { index, workers: 2 });
            r
        };
        let merged = merge(&[share("w0", 0), share("w1", 1)]).unwrap();
        assert_eq!(merged.profile.name, "smoke");
        assert_eq!(merged.profile.worker, None);
        assert_eq!(merged.profile.merged_workers, Some(2));
    }

    #[test]
    fn one_report_merges_into_the_same_numbers() {
        let single = sample_report();
        let merged = merge(std::slice::from_ref(&single)).unwrap();
        assert_consistent(&merged);
        assert_eq!(merged.totals.latency, single.totals.latency);
        assert_eq!(merged.transactions, single.transactions);
        assert_eq!(merged.status_classes, single.status_classes);
        assert_eq!(merged.timeseries, single.timeseries);
        let judged = |r: &Report| -> Vec<(String, Verdict)> {
            r.thresholds
                .iter()
                .map(|t| (t.name.clone(), t.status))
                .collect()
        };
        assert_eq!(judged(&merged), judged(&single));
        assert_eq!(merged.error_samples, single.error_samples);
    }
}
