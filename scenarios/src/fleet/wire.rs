//! Measurements on the wire: a recorder's [`Interval`] becomes a proto message on the worker,
//! and the coordinator adds each message it receives into that worker's [`Measurements`], so
//! that the sum of the intervals is exactly what the worker's own recorder holds at the end.
//! A worker's live metrics ([`Figures`]) travel with its intervals when the coordinator serves
//! them; they are cumulative and simply replace the previous ones.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reports::{ErrorCounts, ErrorKind, HistogramError, LatencyHistogram};

use super::proto;
use crate::live::{Buckets, Figures, TransactionFigures};
use crate::recorder::{Interval, Measurements, SeriesStats, Slice, slice_mut};

/// The proto message for one interval of a worker.
pub fn encode(interval: &Interval) -> Result<proto::Interval, HistogramError> {
    let series = |stats: &SeriesStats| -> Result<proto::Series, HistogramError> {
        Ok(proto::Series {
            requests: stats.requests,
            errors: stats.errors,
            latency: stats.latency.to_v2_bytes()?,
            corrected: stats
                .corrected
                .as_ref()
                .map(LatencyHistogram::to_v2_bytes)
                .transpose()?,
        })
    };
    let named = |map: &BTreeMap<&'static str, SeriesStats>| {
        map.iter()
            .map(|(name, stats)| Ok((name.to_string(), series(stats)?)))
            .collect::<Result<_, HistogramError>>()
    };
    Ok(proto::Interval {
        totals: Some(series(&interval.totals)?),
        transactions: named(&interval.transactions)?,
        status_classes: named(&interval.status_classes)?,
        errors_by_kind: Some(errors(&interval.errors_by_kind)),
        error_samples: interval
            .error_samples
            .iter()
            .map(|((kind, transaction, message), count)| proto::ErrorSample {
                kind: kind.to_string(),
                transaction: transaction.clone(),
                message: message.clone(),
                count: *count,
            })
            .collect(),
        slices: interval
            .slices
            .iter()
            .map(|(second, slice)| {
                Ok(proto::Slice {
                    second: *second as u64,
                    stats: Some(series(&slice.stats)?),
                    errors_by_kind: Some(errors(&slice.errors_by_kind)),
                    active_users: slice.active_users,
                })
            })
            .collect::<Result<_, HistogramError>>()?,
        max_lateness_us: u64::try_from(interval.max_lateness.as_micros()).unwrap_or(u64::MAX),
        ..Default::default()
    })
}

/// Why a worker's message cannot be added up.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("histogram: {0}")]
    Histogram(#[from] HistogramError),
    #[error("unknown error kind `{0}`")]
    ErrorKind(String),
    #[error("slice second {0} is beyond any run")]
    Second(u64),
    #[error("live histogram with {0} buckets, expected {1}")]
    Buckets(usize, usize),
}

/// A worker's live metrics, for the wire.
pub fn live_figures(figures: &Figures) -> proto::LiveFigures {
    let histogram = |buckets: &Buckets| proto::LiveHistogram {
        counts: buckets.counts.to_vec(),
        sum_seconds: buckets.sum,
        count: buckets.count,
    };
    proto::LiveFigures {
        transactions: figures
            .transactions
            .iter()
            .map(|(name, t)| {
                let transaction = proto::LiveTransaction {
                    requests: t.requests,
                    errors: t.errors.clone().into_iter().collect(),
                    latency: Some(histogram(&t.latency)),
                };
                (name.clone(), transaction)
            })
            .collect(),
        active_users: figures.active_users,
        lateness: Some(histogram(&figures.lateness)),
    }
}

/// A worker's live metrics, from the wire; error kinds and bucket counts are checked.
pub fn figures(live: &proto::LiveFigures) -> Result<Figures, WireError> {
    let buckets = |histogram: &Option<proto::LiveHistogram>| -> Result<Buckets, WireError> {
        let mut buckets = Buckets::default();
        let Some(histogram) = histogram else {
            return Ok(buckets);
        };
        let expected = buckets.counts.len();
        if histogram.counts.len() != expected {
            return Err(WireError::Buckets(histogram.counts.len(), expected));
        }
        buckets.counts.copy_from_slice(&histogram.counts);
        buckets.sum = histogram.sum_seconds;
        buckets.count = histogram.count;
        Ok(buckets)
    };
    let mut figures = Figures {
        active_users: live.active_users,
        lateness: buckets(&live.lateness)?,
        ..Default::default()
    };
    for (name, t) in &live.transactions {
        let mut errors = BTreeMap::new();
        for (text, count) in &t.errors {
            errors.insert(kind(text)?.to_string(), *count);
        }
        figures.transactions.insert(
            name.clone(),
            TransactionFigures {
                requests: t.requests,
                errors,
                latency: buckets(&t.latency)?,
            },
        );
    }
    Ok(figures)
}

/// Empty measurements, as a worker's recorder starts.
pub fn empty(corrected: bool) -> Measurements {
    Measurements {
        totals: SeriesStats::new(corrected, LatencyHistogram::fine),
        transactions: BTreeMap::new(),
        status_classes: BTreeMap::new(),
        errors_by_kind: ErrorCounts::default(),
        error_samples: BTreeMap::new(),
        slices: Vec::new(),
        max_lateness: Duration::ZERO,
    }
}

/// Longest run a slice index may point into (a week): a guard against a garbled second making
/// the coordinator allocate without bound.
const MAX_SECOND: u64 = 7 * 24 * 3600;

/// Adds one interval into `into`, the way the worker's recorder added each request.
pub fn add(
    into: &mut Measurements,
    interval: &proto::Interval,
    corrected: bool,
) -> Result<(), WireError> {
    if let Some(totals) = &interval.totals {
        add_series(&mut into.totals, totals)?;
    }
    for (name, series) in &interval.transactions {
        let stats = into
            .transactions
            .entry(intern(name))
            .or_insert_with(|| SeriesStats::new(corrected, LatencyHistogram::fine));
        add_series(stats, series)?;
    }
    for (class, series) in &interval.status_classes {
        let stats = into
            .status_classes
            .entry(intern(class))
            .or_insert_with(|| SeriesStats::new(false, LatencyHistogram::fine));
        add_series(stats, series)?;
    }
    if let Some(counts) = &interval.errors_by_kind {
        add_errors(&mut into.errors_by_kind, counts);
    }
    for sample in &interval.error_samples {
        let key = (
            kind(&sample.kind)?,
            sample.transaction.clone(),
            sample.message.clone(),
        );
        *into.error_samples.entry(key).or_insert(0) += sample.count;
    }
    for slice in &interval.slices {
        if slice.second > MAX_SECOND {
            return Err(WireError::Second(slice.second));
        }
        let into_slice: &mut Slice = slice_mut(&mut into.slices, slice.second as usize, corrected);
        if let Some(stats) = &slice.stats {
            add_series(&mut into_slice.stats, stats)?;
        }
        if let Some(counts) = &slice.errors_by_kind {
            add_errors(&mut into_slice.errors_by_kind, counts);
        }
        into_slice.active_users = into_slice.active_users.max(slice.active_users);
    }
    into.max_lateness = into
        .max_lateness
        .max(Duration::from_micros(interval.max_lateness_us));
    Ok(())
}

fn add_series(into: &mut SeriesStats, from: &proto::Series) -> Result<(), HistogramError> {
    into.requests += from.requests;
    into.errors += from.errors;
    into.latency
        .merge(&LatencyHistogram::from_v2_bytes(&from.latency)?)?;
    if let (Some(into), Some(from)) = (&mut into.corrected, &from.corrected) {
        into.merge(&LatencyHistogram::from_v2_bytes(from)?)?;
    }
    Ok(())
}

fn errors(counts: &ErrorCounts) -> proto::ErrorCounts {
    proto::ErrorCounts {
        connect: counts.connect,
        timeout: counts.timeout,
        status: counts.status,
        check: counts.check,
        other: counts.other,
    }
}

fn add_errors(into: &mut ErrorCounts, from: &proto::ErrorCounts) {
    into.connect += from.connect;
    into.timeout += from.timeout;
    into.status += from.status;
    into.check += from.check;
    into.other += from.other;
}

fn kind(text: &str) -> Result<ErrorKind, WireError> {
    [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Status,
        ErrorKind::Check,
        ErrorKind::Other,
    ]
    .into_iter()
    .find(|k| k.to_string() == text)
    .ok_or_else(|| WireError::ErrorKind(text.to_string()))
}

/// The recorder keys transactions by `&'static str` (names come from the compiled scenario);
/// names arriving over the wire are interned once each, so a run leaks one copy of each distinct
/// transaction name, not one per interval.
fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::recorder::{Recorder, RequestRecord};

    fn record(transaction: &'static str, ms: u64, error: Option<ErrorKind>) -> RequestRecord {
        RequestRecord {
            transaction,
            latency: Duration::from_millis(ms),
            lateness: Duration::from_millis(ms / 3),
            status: Some(if error.is_some() { 503 } else { 200 }),
            error: error.map(|k| (k, format!("{k} at {ms}"))),
        }
    }

    /// The sum of the streamed intervals is what the recorder holds, field for field.
    #[test]
    fn intervals_add_up_to_the_recorders_measurements() {
        let origin = Instant::now();
        let recorder = Recorder::starting_at(origin, true).with_intervals();
        let mut received = empty(true);
        for i in 0..3_000u64 {
            let failed = (i % 7 == 0).then_some(ErrorKind::Status);
            let tx = if i % 3 == 0 { "a" } else { "b" };
            recorder.record_at(
                origin + Duration::from_millis(i * 2),
                record(tx, 1 + i % 250, failed),
            );
            if i % 500 == 499 {
                let interval = recorder.take_interval().unwrap();
                add(&mut received, &encode(&interval).unwrap(), true).unwrap();
            }
        }
        let last = recorder.take_interval().unwrap();
        add(&mut received, &encode(&last).unwrap(), true).unwrap();

        let own = recorder.measurements();
        assert_eq!(received.totals.requests, own.totals.requests);
        assert_eq!(received.totals.errors, own.totals.errors);
        assert_eq!(
            received.totals.latency.inner().len(),
            own.totals.latency.inner().len()
        );
        assert_eq!(received.totals.latency.stats(), own.totals.latency.stats());
        assert_eq!(
            received.totals.corrected.as_ref().unwrap().stats(),
            own.totals.corrected.as_ref().unwrap().stats()
        );
        assert_eq!(received.errors_by_kind, own.errors_by_kind);
        assert_eq!(received.error_samples, own.error_samples);
        assert_eq!(received.max_lateness, own.max_lateness);
        assert_eq!(received.slices.len(), own.slices.len());
        for (a, b) in received.slices.iter().zip(&own.slices) {
            assert_eq!(a.stats.requests, b.stats.requests);
            assert_eq!(a.stats.latency.stats(), b.stats.latency.stats());
            assert_eq!(a.errors_by_kind, b.errors_by_kind);
        }
        for (name, stats) in &own.transactions {
            assert_eq!(received.transactions[name].requests, stats.requests);
            assert_eq!(
                received.transactions[name].latency.stats(),
                stats.latency.stats()
            );
        }
        assert_eq!(
            received.status_classes.keys().collect::<Vec<_>>(),
            own.status_classes.keys().collect::<Vec<_>>()
        );
    }

    #[test]
    fn live_figures_survive_the_wire_and_bad_ones_are_refused() {
        use crate::live::{LiveMetrics, LiveSink};
        let metrics = LiveMetrics::new();
        metrics.request("a", Duration::from_millis(3), None);
        metrics.request("a", Duration::from_secs(30), Some(ErrorKind::Timeout));
        metrics.request("b", Duration::from_millis(60), Some(ErrorKind::Check));
        metrics.iteration_started(Duration::from_millis(2));
        metrics.active_users(5);
        let sent = metrics.figures();
        assert_eq!(figures(&live_figures(&sent)).unwrap(), sent);

        let mut bad = live_figures(&sent);
        bad.transactions
            .get_mut("a")
            .unwrap()
            .errors
            .insert("gremlins".into(), 1);
        assert!(matches!(figures(&bad), Err(WireError::ErrorKind(k)) if k == "gremlins"));
        let mut short = live_figures(&sent);
        short.lateness.as_mut().unwrap().counts.pop();
        assert!(matches!(figures(&short), Err(WireError::Buckets(13, 14))));
    }

    #[test]
    fn a_recorder_without_intervals_gives_none() {
        assert!(Recorder::new(false).take_interval().is_none());
    }
}
