//! Derived figures: how counts and HDR histograms become rates and percentiles. A run's report
//! (`scenarios`' assemble) and a merge of worker reports use the same derivations, so a merged
//! report reads exactly like a run and the two can never drift apart.

use crate::histogram::LatencyHistogram;
use crate::model::{
    ErrorCounts, SlicePercentiles, StatusClassStats, TimeSlice, Totals, TransactionStats,
};

/// Most distinct error messages a report keeps (SCHEMA.md: "at most 50 kept"); a merged report
/// keeps the most frequent ones.
pub const MAX_ERROR_SAMPLES: usize = 50;

impl Totals {
    /// Derives the error rate, throughput over `duration_s` and latency statistics from the
    /// counts and histograms.
    pub fn recompute(&mut self, duration_s: f64) {
        self.error_rate = ratio(self.errors, self.requests);
        self.rps = if duration_s > 0.0 {
            round_to(self.requests as f64 / duration_s, 3)
        } else {
            0.0
        };
        self.latency = self.histogram.stats();
        self.corrected_latency = self
            .corrected_histogram
            .as_ref()
            .and_then(LatencyHistogram::stats);
    }
}

impl TransactionStats {
    /// No requests yet; `corrected` gives it a corrected histogram (open model).
    pub fn empty(name: &str, corrected: bool) -> Self {
        TransactionStats {
            name: name.to_string(),
            requests: 0,
            errors: 0,
            error_rate: 0.0,
            latency: None,
            corrected_latency: None,
            histogram: LatencyHistogram::fine(),
            corrected_histogram: corrected.then(LatencyHistogram::fine),
        }
    }

    /// Derives the error rate and latency statistics from the counts and histograms.
    pub fn recompute(&mut self) {
        self.error_rate = ratio(self.errors, self.requests);
        self.latency = self.histogram.stats();
        self.corrected_latency = self
            .corrected_histogram
            .as_ref()
            .and_then(LatencyHistogram::stats);
    }
}

impl StatusClassStats {
    /// No requests yet.
    pub fn empty(class: &str) -> Self {
        StatusClassStats {
            class: class.to_string(),
            requests: 0,
            latency: None,
            histogram: LatencyHistogram::fine(),
        }
    }

    /// Derives the latency statistics from the histogram.
    pub fn recompute(&mut self) {
        self.latency = self.histogram.stats();
    }
}

impl SlicePercentiles {
    /// p50/p95/p99 of a slice's histogram, `None` when it is empty.
    pub fn of(histogram: &LatencyHistogram) -> Option<Self> {
        histogram.stats().map(|s| SlicePercentiles {
            p50_ms: s.p50_ms,
            p95_ms: s.p95_ms,
            p99_ms: s.p99_ms,
        })
    }
}

impl TimeSlice {
    /// A second in which nothing completed; `corrected` gives it a corrected histogram.
    pub fn empty(second: u64, corrected: bool) -> Self {
        TimeSlice {
            second,
            requests: 0,
            errors: 0,
            errors_by_kind: ErrorCounts::default(),
            active_users: 0,
            latency: None,
            corrected_latency: None,
            histogram: LatencyHistogram::coarse(),
            corrected_histogram: corrected.then(LatencyHistogram::coarse),
        }
    }

    /// Derives the slice percentiles from the histograms.
    pub fn recompute(&mut self) {
        self.latency = SlicePercentiles::of(&self.histogram);
        self.corrected_latency = self
            .corrected_histogram
            .as_ref()
            .and_then(SlicePercentiles::of);
    }
}

/// `part / whole` to six decimals, 0 without a whole: how a report writes every rate (runs and
/// merges alike).
pub fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round_to(part as f64 / whole as f64, 6)
    }
}

/// Rounds to `decimals` places so the JSON shows meaningful digits only.
pub fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}
